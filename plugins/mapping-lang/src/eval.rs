//! Parsed expressions and their evaluation.

use std::fmt;

use crate::functions;
use crate::parse::{self, Node, ParseError};
use crate::value::{Attributes, Value};

/// An expression could not be evaluated for one record: a type error (`Left("x", "a")`), a
/// regex computed at evaluation time that does not compile, a list where one value was needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError {
    /// The function that failed, e.g. `Left`.
    pub function: &'static str,
    /// What went wrong.
    pub message: String,
}

impl EvalError {
    pub(crate) fn new(function: &'static str, message: impl Into<String>) -> Self {
        EvalError {
            function,
            message: message.into(),
        }
    }
}

/// `Left: the count must be a whole number, got "a"`.
impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.function, self.message)
    }
}

impl std::error::Error for EvalError {}

pub(crate) fn eval<'a, A: Attributes + ?Sized>(node: &'a Node, attrs: &'a A) -> Result<Value<'a>, EvalError> {
    match node {
        Node::Null => Ok(Value::Null),
        Node::Str(s) => Ok(Value::str(s)),
        Node::Num(n) => Ok(Value::Num(*n)),
        Node::Bool(b) => Ok(Value::Bool(*b)),
        Node::Attr(name) => Ok(attrs.lookup(name)),
        Node::Call(c) => functions::call(c, attrs),
    }
}

/// A parsed expression, ready to be evaluated against any number of records.
///
/// Parsing resolves function names, checks argument counts and compiles literal regexes, so
/// evaluation only walks the tree.
#[derive(Debug)]
pub struct Expr {
    root: Node,
    source: String,
}

impl Expr {
    /// Parses `source`; errors carry a 1-based line and column.
    pub fn parse(source: &str) -> Result<Expr, ParseError> {
        Ok(Expr {
            root: parse::parse(source)?,
            source: source.to_string(),
        })
    }

    /// Evaluates the expression against a record's attributes. The result may borrow from
    /// both the expression and the record.
    pub fn eval<'a, A: Attributes + ?Sized>(&'a self, attrs: &'a A) -> Result<Value<'a>, EvalError> {
        eval(&self.root, attrs)
    }

    /// The text the expression was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }
}

impl std::str::FromStr for Expr {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Expr::parse(s)
    }
}

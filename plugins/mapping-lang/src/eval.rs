//! Parsed expressions and their evaluation.

use std::fmt;

use crate::functions;
use crate::parse::{self, Node, ParseError};
use crate::value::{Attributes, Value, same_name};

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
        Node::Attr(name, slot) => Ok(attrs.lookup_slot(*slot, name)),
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

    /// Numbers every attribute the expression reads by its name's position in `names` (ASCII
    /// case-insensitive), adding the names not there yet: see [`Attributes::lookup_slot`].
    pub(crate) fn number_attributes(&mut self, names: &mut Vec<String>) {
        fn walk(node: &mut Node, names: &mut Vec<String>) {
            match node {
                Node::Attr(name, slot) => *slot = slot_of(name, names),
                Node::Call(c) => c.args.iter_mut().for_each(|a| walk(a, names)),
                Node::Null | Node::Str(_) | Node::Num(_) | Node::Bool(_) => {}
            }
        }
        walk(&mut self.root, names)
    }

    /// The text the expression was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// The position of `name` in `names` (ASCII case-insensitive), added at the end if missing.
pub(crate) fn slot_of(name: &str, names: &mut Vec<String>) -> usize {
    match names.iter().position(|n| same_name(n, name)) {
        Some(i) => i,
        None => {
            names.push(name.to_string());
            names.len() - 1
        }
    }
}

impl std::str::FromStr for Expr {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Expr::parse(s)
    }
}

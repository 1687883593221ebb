//! The filter grammar of RFC 7644 §3.4.2.2 — `eq ne co sw ew pr gt ge lt le`, `and`, `or`,
//! `not (…)`, parentheses, `emails[type eq "work" and value co "@x"]`, URN-qualified paths —
//! parsed into a [`Filter`] and evaluated against a resource through its schema.
//!
//! Written by hand, not with a parser crate: the grammar is small, the positions in errors
//! matter to the IdP admin reading them, and the input is hostile, so nesting is bounded
//! ([`MAX_DEPTH`]) and nothing panics (the `scim_filter` fuzz target holds it to that).

use std::cmp::Ordering;
use std::fmt;

use serde_json::Value;

use crate::error::{ScimError, ScimType};
use crate::path::{AttrPath, PatchPath};
use crate::schema::{AttrType, Attribute, Home, ResourceSchema};
use crate::time;

/// How deep parentheses, `not` and value filters may nest: deeper is an `invalidFilter`, so a
/// hostile `((((…` cannot exhaust the stack.
pub const MAX_DEPTH: usize = 64;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// Equal.
    Eq,
    /// Not equal.
    Ne,
    /// Contains (strings).
    Co,
    /// Starts with.
    Sw,
    /// Ends with.
    Ew,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Ge,
    /// Less than.
    Lt,
    /// Less than or equal.
    Le,
}

impl CompareOp {
    fn from_word(word: &str) -> Option<CompareOp> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            _ => return None,
        })
    }

    /// The operator as the grammar spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    fn is_ordering(self) -> bool {
        matches!(self, CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le)
    }
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `path op value`; `value` is a string, number, boolean or null.
    Compare {
        /// The attribute compared.
        path: AttrPath,
        /// The operator.
        op: CompareOp,
        /// The literal.
        value: Value,
    },
    /// `path pr`: the attribute has a value.
    Present(AttrPath),
    /// Every one holds (two or more).
    And(Vec<Filter>),
    /// One holds (two or more).
    Or(Vec<Filter>),
    /// `not (filter)`.
    Not(Box<Filter>),
    /// `attr[filter]`: one value of a complex attribute satisfies `filter`, whose paths name
    /// the attribute's sub-attributes.
    ValuePath {
        /// The complex attribute.
        attr: AttrPath,
        /// The filter on each of its values.
        filter: Box<Filter>,
    },
}

impl Filter {
    /// Parses a filter; a 400 `invalidFilter` whose detail names the position and what was
    /// expected there.
    pub fn parse(text: &str) -> Result<Filter, ScimError> {
        let mut p = Parser::new(text, ScimType::InvalidFilter);
        let f = p.filter(Nesting::Top)?;
        p.end()?;
        Ok(f)
    }

    /// Whether `resource` satisfies the filter: names compared case-insensitively, strings by
    /// the schema's `caseExact`, dateTimes as instants, any value of a multi-valued attribute
    /// sufficing. A comparison on an attribute the schema does not know is false.
    pub fn matches(&self, resource: &Value, schema: &ResourceSchema) -> bool {
        self.eval(resource, Scope::Resource(schema))
    }

    /// `attr eq value` at the top of the filter (Entra's and Okta's `userName eq "…"`), which
    /// a store can answer from an index.
    pub fn equality(&self) -> Option<(&AttrPath, &Value)> {
        match self {
            Filter::Compare {
                path,
                op: CompareOp::Eq,
                value,
            } => Some((path, value)),
            _ => None,
        }
    }

    /// Refuses what RFC 7644 §3.4.2.2 makes an error rather than a non-match: `gt`, `ge`,
    /// `lt`, `le` on a boolean or binary attribute; `invalidFilter` naming it.
    pub fn validate(&self, schema: &ResourceSchema) -> Result<(), ScimError> {
        self.check(Scope::Resource(schema))
    }

    fn check(&self, scope: Scope<'_>) -> Result<(), ScimError> {
        match self {
            Filter::Compare { path, op, .. } if op.is_ordering() => {
                if let Some(attr) = scope.attribute(path)
                    && matches!(attr.kind, AttrType::Boolean | AttrType::Binary)
                {
                    return Err(ScimError::bad(
                        ScimType::InvalidFilter,
                        format!(
                            "invalid filter: \"{path} {}\" orders a {} attribute, which has no order; use eq or ne",
                            op.as_str(),
                            if attr.kind == AttrType::Boolean {
                                "boolean"
                            } else {
                                "binary"
                            },
                        ),
                    ));
                }
                Ok(())
            }
            Filter::Compare { .. } | Filter::Present(_) => Ok(()),
            Filter::And(fs) | Filter::Or(fs) => fs.iter().try_for_each(|f| f.check(scope)),
            Filter::Not(f) => f.check(scope),
            Filter::ValuePath { attr, filter } => match scope.attribute(attr) {
                Some(a) => filter.check(Scope::Element(a)),
                None => Ok(()),
            },
        }
    }

    fn eval(&self, node: &Value, scope: Scope<'_>) -> bool {
        match self {
            Filter::Compare { path, op, value } => {
                let Some((attr, values)) = scope.resolve(node, path) else {
                    return false;
                };
                compare_all(attr, &values, *op, value)
            }
            Filter::Present(path) => scope
                .resolve(node, path)
                .is_some_and(|(_, values)| values.iter().any(|v| present(v))),
            Filter::And(fs) => fs.iter().all(|f| f.eval(node, scope)),
            Filter::Or(fs) => fs.iter().any(|f| f.eval(node, scope)),
            Filter::Not(f) => !f.eval(node, scope),
            Filter::ValuePath { attr, filter } => {
                if attr.sub.is_some() {
                    return false;
                }
                let Some((a, values)) = scope.resolve(node, attr) else {
                    return false;
                };
                a.kind == AttrType::Complex && values.iter().any(|v| filter.eval(v, Scope::Element(a)))
            }
        }
    }

    /// Whether `element` (one value of the complex attribute `attr`) satisfies this filter,
    /// whose paths name `attr`'s sub-attributes: PATCH's `members[value eq "x"]`.
    pub fn matches_value(&self, element: &Value, attr: &Attribute) -> bool {
        self.eval(element, Scope::Element(attr))
    }
}

/// What a filter's paths are resolved against.
#[derive(Clone, Copy)]
enum Scope<'a> {
    /// A resource of this schema.
    Resource(&'a ResourceSchema),
    /// One value of this complex attribute (inside `attr[…]`).
    Element(&'a Attribute),
}

impl<'a> Scope<'a> {
    fn attribute(self, path: &AttrPath) -> Option<&'a Attribute> {
        match self {
            Scope::Resource(schema) => schema.find(path),
            Scope::Element(parent) if path.urn.is_none() && path.sub.is_none() => parent.sub(&path.name),
            Scope::Element(_) => None,
        }
    }

    /// The attribute a path names and its values in `node` (arrays flattened); `None` when
    /// the schema does not know the attribute.
    fn resolve<'v>(self, node: &'v Value, path: &AttrPath) -> Option<(&'a Attribute, Vec<&'v Value>)> {
        match self {
            Scope::Resource(schema) => {
                let (home, top) = schema.locate(path)?;
                let container = match home {
                    Home::Core => Some(node),
                    Home::Extension(urn) => get_ci(node, urn),
                };
                let mut values = Vec::new();
                if let Some(v) = container.and_then(|c| get_ci(c, top.name)) {
                    flatten(v, &mut values);
                }
                match &path.sub {
                    None => Some((top, values)),
                    Some(sub) => {
                        let attr = top.sub(sub)?;
                        let mut subs = Vec::new();
                        for v in values {
                            if let Some(s) = get_ci(v, sub) {
                                flatten(s, &mut subs);
                            }
                        }
                        Some((attr, subs))
                    }
                }
            }
            Scope::Element(parent) => {
                if path.urn.is_some() || path.sub.is_some() {
                    return None;
                }
                let attr = parent.sub(&path.name)?;
                let mut values = Vec::new();
                if let Some(v) = get_ci(node, attr.name) {
                    flatten(v, &mut values);
                }
                Some((attr, values))
            }
        }
    }
}

fn flatten<'v>(v: &'v Value, out: &mut Vec<&'v Value>) {
    match v {
        Value::Array(items) => out.extend(items.iter()),
        v => out.push(v),
    }
}

/// A key of an object, compared case-insensitively (an exact match first).
pub(crate) fn get_ci<'v>(node: &'v Value, key: &str) -> Option<&'v Value> {
    let obj = node.as_object()?;
    obj.get(key)
        .or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// Whether a value counts as present for `pr` (RFC 7644: not null, not empty).
pub(crate) fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(present),
        Value::Object(o) => o.values().any(present),
        _ => true,
    }
}

fn compare_all(attr: &Attribute, values: &[&Value], op: CompareOp, literal: &Value) -> bool {
    // A complex attribute compared as a whole is compared by its `value` (`emails co "@x"`).
    if attr.kind == AttrType::Complex {
        let Some(value_attr) = attr.sub("value") else {
            return false;
        };
        let mut inner = Vec::new();
        for v in values {
            if let Some(x) = get_ci(v, "value") {
                flatten(x, &mut inner);
            }
        }
        return compare_all(value_attr, &inner, op, literal);
    }
    if literal.is_null() {
        return match op {
            CompareOp::Eq => !values.iter().any(|v| present(v)),
            CompareOp::Ne => values.iter().any(|v| present(v)),
            _ => false,
        };
    }
    match op {
        CompareOp::Ne => !values.iter().any(|v| compare(attr, v, CompareOp::Eq, literal)),
        op => values.iter().any(|v| compare(attr, v, op, literal)),
    }
}

/// A boolean as SCIM clients send it: `true`, or Entra's `"True"`.
pub(crate) fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn ordered(ord: Option<Ordering>, op: CompareOp) -> bool {
    let Some(ord) = ord else { return false };
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

fn compare_text(a: &str, b: &str, op: CompareOp, case_exact: bool) -> bool {
    let (a, b) = if case_exact {
        (a.to_string(), b.to_string())
    } else {
        (a.to_lowercase(), b.to_lowercase())
    };
    match op {
        CompareOp::Co => a.contains(&b),
        CompareOp::Sw => a.starts_with(&b),
        CompareOp::Ew => a.ends_with(&b),
        op => ordered(Some(a.cmp(&b)), op),
    }
}

/// Orders two numbers: exactly as integers when both are, else as floats.
pub(crate) fn compare_numbers(a: &serde_json::Number, b: &serde_json::Number) -> Option<Ordering> {
    match (a.as_i64(), b.as_i64(), a.as_u64(), b.as_u64()) {
        (Some(x), Some(y), _, _) => Some(x.cmp(&y)),
        (_, _, Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

fn compare(attr: &Attribute, value: &Value, op: CompareOp, literal: &Value) -> bool {
    match attr.kind {
        AttrType::String | AttrType::Reference | AttrType::Binary => match (value.as_str(), literal.as_str()) {
            (Some(a), Some(b)) => compare_text(a, b, op, attr.case_exact),
            _ => false,
        },
        AttrType::Boolean => op == CompareOp::Eq && as_bool(value).is_some() && as_bool(value) == as_bool(literal),
        AttrType::Integer | AttrType::Decimal => match (value, literal) {
            (Value::Number(a), Value::Number(b)) => ordered(compare_numbers(a, b), op),
            _ => false,
        },
        AttrType::DateTime => match (value.as_str(), literal.as_str()) {
            (Some(a), Some(b)) if matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew) => {
                compare_text(a, b, op, false)
            }
            (Some(a), Some(b)) => match (time::parse(a), time::parse(b)) {
                (Some(x), Some(y)) => ordered(Some(x.cmp(&y)), op),
                _ => false,
            },
            _ => false,
        },
        AttrType::Complex => false,
    }
}

impl fmt::Display for Filter {
    /// The filter in the grammar's syntax, parenthesised where precedence needs it, so that
    /// parsing it again gives the same filter.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Compare { path, op, value } => write!(f, "{path} {} {value}", op.as_str()),
            Filter::Present(path) => write!(f, "{path} pr"),
            Filter::And(fs) => {
                for (i, x) in fs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" and ")?;
                    }
                    match x {
                        Filter::Or(_) | Filter::And(_) => write!(f, "({x})")?,
                        x => write!(f, "{x}")?,
                    }
                }
                Ok(())
            }
            Filter::Or(fs) => {
                for (i, x) in fs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or ")?;
                    }
                    match x {
                        Filter::Or(_) => write!(f, "({x})")?,
                        x => write!(f, "{x}")?,
                    }
                }
                Ok(())
            }
            Filter::Not(x) => write!(f, "not ({x})"),
            Filter::ValuePath { attr, filter } => write!(f, "{attr}[{filter}]"),
        }
    }
}

/// Where the parser is: at the top, or inside `attr[…]`, where another `[` may not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nesting {
    /// A whole filter.
    Top,
    /// A value filter.
    Value,
}

/// The recursive-descent parser for filters and paths, over bytes of the text (every token
/// it stops at is ASCII, so every position is a char boundary).
pub(crate) struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
    kind: ScimType,
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'$')
}

impl<'a> Parser<'a> {
    pub(crate) fn new(src: &'a str, kind: ScimType) -> Parser<'a> {
        Parser {
            src,
            pos: 0,
            depth: 0,
            kind,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn error_at(&self, at: usize, expected: &str) -> ScimError {
        let column = self.src.get(..at).map_or(at, |s| s.chars().count()) + 1;
        let found = match self.src.get(at..).and_then(|s| s.chars().next()) {
            Some(c) => format!("found {c:?}"),
            None => "found the end".to_string(),
        };
        let shown: String = self.src.chars().take(200).collect();
        let ellipsis = if shown.len() < self.src.len() { "…" } else { "" };
        let noun = if self.kind == ScimType::InvalidFilter {
            "filter"
        } else {
            "path"
        };
        ScimError::bad(
            self.kind,
            format!(
                "invalid {noun} at character {column}: expected {expected}, {found} (in the {noun} '{shown}{ellipsis}')"
            ),
        )
    }

    fn error(&self, expected: &str) -> ScimError {
        self.error_at(self.pos, expected)
    }

    /// Whether the text ends here (after blanks); an error naming what could have followed.
    pub(crate) fn end(&mut self) -> Result<(), ScimError> {
        if self.kind == ScimType::InvalidFilter {
            self.skip_ws();
        }
        if self.pos < self.src.len() {
            let expected = if self.kind == ScimType::InvalidFilter {
                "\"and\", \"or\" or the end of the filter"
            } else {
                "the end of the path"
            };
            return Err(self.error(expected));
        }
        Ok(())
    }

    /// A case-insensitive keyword, not followed by a name character; consumed when present.
    fn keyword(&mut self, word: &str) -> bool {
        let end = self.pos + word.len();
        let matches = self
            .src
            .get(self.pos..end)
            .is_some_and(|s| s.eq_ignore_ascii_case(word))
            && !self.src.as_bytes().get(end).is_some_and(|b| is_name_byte(*b));
        if matches {
            self.pos = end;
        }
        matches
    }

    fn enter(&mut self) -> Result<(), ScimError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(&format!(
                "at most {MAX_DEPTH} levels of parentheses, \"not\" and \"[\"; simplify the filter"
            )));
        }
        Ok(())
    }

    /// `or`-separated terms (lowest precedence).
    pub(crate) fn filter(&mut self, nesting: Nesting) -> Result<Filter, ScimError> {
        self.enter()?;
        let mut terms = vec![self.and_terms(nesting)?];
        loop {
            let save = self.pos;
            self.skip_ws();
            if self.keyword("or") {
                terms.push(self.and_terms(nesting)?);
            } else {
                self.pos = save;
                break;
            }
        }
        self.depth -= 1;
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Filter::Or(terms)
        })
    }

    fn and_terms(&mut self, nesting: Nesting) -> Result<Filter, ScimError> {
        let mut terms = vec![self.unary(nesting)?];
        loop {
            let save = self.pos;
            self.skip_ws();
            if self.keyword("and") {
                terms.push(self.unary(nesting)?);
            } else {
                self.pos = save;
                break;
            }
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Filter::And(terms)
        })
    }

    fn unary(&mut self, nesting: Nesting) -> Result<Filter, ScimError> {
        self.skip_ws();
        let start = self.pos;
        if self.keyword("not") {
            self.skip_ws();
            if self.peek() == Some(b'(') {
                return Ok(Filter::Not(Box::new(self.group(nesting)?)));
            }
            // An attribute called `not`.
            self.pos = start;
        }
        if self.peek() == Some(b'(') {
            return self.group(nesting);
        }
        self.attr_expression(nesting)
    }

    fn group(&mut self, nesting: Nesting) -> Result<Filter, ScimError> {
        self.pos += 1; // the '(' the caller saw
        let f = self.filter(nesting)?;
        self.skip_ws();
        if self.peek() != Some(b')') {
            return Err(self.error("\")\", \"and\" or \"or\""));
        }
        self.pos += 1;
        Ok(f)
    }

    fn attr_expression(&mut self, nesting: Nesting) -> Result<Filter, ScimError> {
        let path = self.attr_path()?;
        if self.peek() == Some(b'[') {
            if nesting == Nesting::Value {
                return Err(self.error("an operator; a value filter cannot hold another \"[\""));
            }
            if path.sub.is_some() {
                return Err(self.error("an operator; \"[\" follows an attribute, not a sub-attribute"));
            }
            self.enter()?;
            self.pos += 1;
            let filter = self.filter(Nesting::Value)?;
            self.skip_ws();
            if self.peek() != Some(b']') {
                return Err(self.error("\"]\", \"and\" or \"or\""));
            }
            self.pos += 1;
            self.depth -= 1;
            return Ok(Filter::ValuePath {
                attr: path,
                filter: Box::new(filter),
            });
        }
        self.skip_ws();
        let op_start = self.pos;
        let word = self.word();
        if word.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present(path));
        }
        let Some(op) = CompareOp::from_word(word) else {
            return Err(self.error_at(op_start, "an operator (eq, ne, co, sw, ew, gt, ge, lt, le or pr)"));
        };
        self.skip_ws();
        let value = self.value()?;
        Ok(Filter::Compare { path, op, value })
    }

    fn word(&mut self) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(is_name_byte) {
            self.pos += 1;
        }
        &self.src[start..self.pos]
    }

    fn value(&mut self) -> Result<Value, ScimError> {
        let start = self.pos;
        let expected = "a value: a string in double quotes, a number, true, false or null";
        match self.peek() {
            Some(b'"') => {
                let bytes = self.src.as_bytes();
                let mut i = self.pos + 1;
                loop {
                    match bytes.get(i) {
                        None => return Err(self.error_at(start, "a string closed by '\"'")),
                        Some(b'\\') => i += 2,
                        Some(b'"') => break,
                        Some(_) => i += 1,
                    }
                }
                let literal = self.src.get(start..=i).unwrap_or_default();
                match serde_json::from_str::<String>(literal) {
                    Ok(s) => {
                        self.pos = i + 1;
                        Ok(Value::String(s))
                    }
                    Err(e) => Err(self.error_at(
                        start,
                        &format!("a JSON string (valid escapes, no raw control characters: {e})"),
                    )),
                }
            }
            Some(b'-' | b'0'..=b'9') => {
                let bytes = self.src.as_bytes();
                let mut i = self.pos;
                while bytes
                    .get(i)
                    .is_some_and(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
                {
                    i += 1;
                }
                match serde_json::from_str::<serde_json::Number>(&self.src[start..i]) {
                    Ok(n) => {
                        self.pos = i;
                        Ok(Value::Number(n))
                    }
                    Err(_) => Err(self.error_at(start, "a JSON number such as 42, -1.5 or 1e3")),
                }
            }
            _ => {
                let word = self.word();
                match word.to_ascii_lowercase().as_str() {
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    "null" => Ok(Value::Null),
                    _ => Err(self.error_at(start, expected)),
                }
            }
        }
    }

    /// `[urn:…:]name[.sub]`: the URN is everything up to the last `:`.
    pub(crate) fn attr_path(&mut self) -> Result<AttrPath, ScimError> {
        let start = self.pos;
        let bytes = self.src.as_bytes();
        while bytes
            .get(self.pos)
            .is_some_and(|b| is_name_byte(*b) || matches!(b, b':' | b'.'))
        {
            self.pos += 1;
        }
        let token = &self.src[start..self.pos];
        let (urn, rest, rest_at) = match token.rfind(':') {
            Some(colon) if token.len() >= 4 && token[..4].eq_ignore_ascii_case("urn:") => {
                (Some(token[..colon].to_string()), &token[colon + 1..], start + colon + 1)
            }
            _ => (None, token, start),
        };
        let (name, sub) = match rest.split_once('.') {
            Some((n, s)) => (n, Some(s)),
            None => (rest, None),
        };
        let valid = |s: &str| {
            s.as_bytes()
                .first()
                .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'$')
                && s.bytes().all(is_name_byte)
        };
        if !valid(name) {
            return Err(self.error_at(
                if name.is_empty() && urn.is_some() {
                    rest_at
                } else {
                    start
                },
                "an attribute name (a letter, then letters, digits, '-' or '_')",
            ));
        }
        if let Some(s) = sub
            && !valid(s)
        {
            let sub_at = rest_at + name.len() + 1;
            return Err(match s.find('.') {
                Some(dot) if valid(&s[..dot]) => {
                    self.error_at(sub_at + dot, "no second '.': one level of sub-attribute only")
                }
                _ => self.error_at(sub_at, "a sub-attribute name after '.'"),
            });
        }
        Ok(AttrPath {
            urn,
            name: name.to_string(),
            sub: sub.map(str::to_string),
        })
    }

    /// A PATCH path: `attrPath`, or `attr[valFilter]` optionally followed by `.sub`.
    pub(crate) fn patch_path(&mut self) -> Result<PatchPath, ScimError> {
        let attr = self.attr_path()?;
        if self.peek() != Some(b'[') {
            return Ok(PatchPath {
                attr,
                filter: None,
                sub: None,
            });
        }
        if attr.sub.is_some() {
            return Err(self.error("the end of the path; \"[\" follows an attribute, not a sub-attribute"));
        }
        self.pos += 1;
        let filter = self.filter(Nesting::Value)?;
        self.skip_ws();
        if self.peek() != Some(b']') {
            return Err(self.error("\"]\", \"and\" or \"or\""));
        }
        self.pos += 1;
        let sub = if self.peek() == Some(b'.') {
            self.pos += 1;
            let at = self.pos;
            let word = self.word();
            if !word
                .as_bytes()
                .first()
                .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'$')
            {
                return Err(self.error_at(at, "a sub-attribute name after '.'"));
            }
            Some(word.to_string())
        } else {
            None
        };
        Ok(PatchPath {
            attr,
            filter: Some(filter),
            sub,
        })
    }
}

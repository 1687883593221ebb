//! Okta's `search` and `filter` expressions: a small real parser for what the Management API
//! accepts (`eq`, `sw`, `co`, `pr`, `gt`/`ge`/`lt`/`le`, `and`, `or`, parentheses) over the
//! attributes a listing knows. An expression Okta would refuse is refused here too, with the
//! reason a client gets back in `errorCauses`.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    Eq,
    Sw,
    Co,
    Gt,
    Ge,
    Lt,
    Le,
    Pr,
}

impl Op {
    fn parse(word: &str) -> Option<Op> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => Op::Eq,
            "sw" => Op::Sw,
            "co" => Op::Co,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            "pr" => Op::Pr,
            _ => return None,
        })
    }

    fn is_ordering(self) -> bool {
        matches!(self, Op::Gt | Op::Ge | Op::Lt | Op::Le)
    }
}

/// A literal on the right of an operator.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Lit {
    Str(String),
    Date(DateTime<Utc>),
    Num(f64),
    Bool(bool),
    Null,
}

/// A parsed expression.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp { attr: String, op: Op, value: Lit },
}

/// What an attribute holds, as far as an expression cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// Text, or a profile value of any JSON type.
    Text,
    /// A timestamp: compared as one, and written as an ISO-8601 string.
    Date,
}

/// An attribute's value on one object.
pub(super) enum Val<'a> {
    Absent,
    Str(&'a str),
    Date(DateTime<Utc>),
    Json(&'a Value),
}

/// The attributes a listing's objects have.
pub(super) trait Fields {
    /// The value of `attr` (an attribute [`parse`] accepted).
    fn get(&self, attr: &str) -> Val<'_>;
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Open,
    Close,
    Word(String),
    Str(String),
}

fn tokens(text: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '(' => out.push(Tok::Open),
            ')' => out.push(Tok::Close),
            '"' => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err(format!("the string starting at character {at} is not closed")),
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, e)) => s.push(e),
                            None => return Err(format!("the string starting at character {at} is not closed")),
                        },
                        Some((_, c)) => s.push(c),
                    }
                }
                out.push(Tok::Str(s));
            }
            c if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | ':') => {
                let mut w = String::from(c);
                while let Some(&(_, n)) = chars.peek() {
                    if n.is_ascii_alphanumeric() || matches!(n, '.' | '_' | '-' | '+' | ':') {
                        w.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(Tok::Word(w));
            }
            other => return Err(format!("unexpected character '{other}' at {at}")),
        }
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    at: usize,
    kind: &'a dyn Fn(&str) -> Option<Kind>,
}

impl Parser<'_> {
    fn peek_word(&self, word: &str) -> bool {
        matches!(self.toks.get(self.at), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.peek_word("or") {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.primary()?;
        while self.peek_word("and") {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.primary()?));
        }
        Ok(left)
    }

    fn primary(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Tok::Open) => {
                let e = self.or()?;
                match self.next() {
                    Some(Tok::Close) => Ok(e),
                    _ => Err("a parenthesis is not closed".into()),
                }
            }
            Some(Tok::Word(attr)) if attr.eq_ignore_ascii_case("not") => {
                Err("the 'not' operator is not supported".into())
            }
            Some(Tok::Word(attr)) => self.comparison(attr),
            Some(Tok::Str(s)) => Err(format!("expected an attribute, found \"{s}\"")),
            Some(Tok::Close) => Err("unexpected ')'".into()),
            None => Err("the expression ends too early".into()),
        }
    }

    fn comparison(&mut self, attr: String) -> Result<Expr, String> {
        let kind = (self.kind)(&attr).ok_or_else(|| format!("unknown property '{attr}'"))?;
        let op = match self.next() {
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("ne") => {
                return Err("the 'ne' operator is not supported".into());
            }
            Some(Tok::Word(w)) => Op::parse(&w).ok_or_else(|| format!("unknown operator '{w}' after '{attr}'"))?,
            _ => return Err(format!("expected an operator after '{attr}'")),
        };
        if kind == Kind::Date && matches!(op, Op::Sw | Op::Co) {
            return Err(format!("'{attr}' is a date: use eq, gt, ge, lt or le"));
        }
        if op == Op::Pr {
            return Ok(Expr::Cmp {
                attr,
                op,
                value: Lit::Null,
            });
        }
        let value = match (self.next(), kind) {
            (Some(Tok::Str(s)), Kind::Date) => Lit::Date(
                DateTime::parse_from_rfc3339(&s)
                    .map_err(|_| format!("'{s}' is not a valid date for '{attr}'"))?
                    .with_timezone(&Utc),
            ),
            (Some(Tok::Str(s)), Kind::Text) => Lit::Str(s),
            (Some(Tok::Word(w)), Kind::Text) => match w.to_ascii_lowercase().as_str() {
                "true" => Lit::Bool(true),
                "false" => Lit::Bool(false),
                "null" => Lit::Null,
                _ => Lit::Num(w.parse().map_err(|_| format!("'{w}' is not a value; quote strings"))?),
            },
            (Some(Tok::Word(w)), Kind::Date) => return Err(format!("'{w}' is not a valid date for '{attr}'")),
            _ => return Err(format!("expected a value after '{attr}'")),
        };
        Ok(Expr::Cmp { attr, op, value })
    }
}

/// Parses `text`, whose attributes `kind` knows (`None`: unknown property).
pub(super) fn parse(text: &str, kind: &dyn Fn(&str) -> Option<Kind>) -> Result<Expr, String> {
    let toks = tokens(text)?;
    if toks.is_empty() {
        return Err("the expression is empty".into());
    }
    let mut p = Parser { toks, at: 0, kind };
    let e = p.or()?;
    match p.toks.get(p.at) {
        None => Ok(e),
        Some(t) => Err(format!("unexpected {t:?} after a complete expression")),
    }
}

/// Refuses what `filter` does not allow (a narrower language than `search`): only the listed
/// attributes, `eq` only, and the ordering operators on the listed date attributes.
pub(super) fn check_filter(e: &Expr, attrs: &[&str], ordered: &[&str]) -> Result<(), String> {
    match e {
        Expr::And(a, b) | Expr::Or(a, b) => {
            check_filter(a, attrs, ordered)?;
            check_filter(b, attrs, ordered)
        }
        Expr::Cmp { attr, op, .. } => {
            if !attrs.contains(&attr.as_str()) {
                return Err(format!("'{attr}' cannot be filtered on; use search"));
            }
            let allowed = *op == Op::Eq || (op.is_ordering() && ordered.contains(&attr.as_str()));
            if allowed {
                Ok(())
            } else {
                Err(format!("filter does not support this operator on '{attr}'; use search"))
            }
        }
    }
}

impl Expr {
    /// Whether `f` satisfies the expression.
    pub(super) fn matches(&self, f: &dyn Fields) -> bool {
        match self {
            Expr::And(a, b) => a.matches(f) && b.matches(f),
            Expr::Or(a, b) => a.matches(f) || b.matches(f),
            Expr::Cmp { attr, op, value } => compare(&f.get(attr), *op, value),
        }
    }
}

fn compare(v: &Val<'_>, op: Op, lit: &Lit) -> bool {
    match v {
        Val::Absent => false,
        _ if op == Op::Pr => !matches!(v, Val::Json(Value::Null)),
        Val::Str(s) => text(s, op, lit),
        Val::Date(d) => match lit {
            Lit::Date(l) => ordered(d.cmp(l), op),
            _ => false,
        },
        Val::Json(j) => json(j, op, lit),
    }
}

fn json(j: &Value, op: Op, lit: &Lit) -> bool {
    match (j, lit) {
        (Value::String(s), _) => text(s, op, lit),
        (Value::Array(items), _) => items.iter().any(|i| json(i, op, lit)),
        (Value::Bool(b), Lit::Bool(l)) => op == Op::Eq && b == l,
        (Value::Number(n), Lit::Num(l)) => n
            .as_f64()
            .and_then(|n| n.partial_cmp(l))
            .is_some_and(|o| ordered(o, op)),
        (Value::Null, Lit::Null) => op == Op::Eq,
        _ => false,
    }
}

fn text(s: &str, op: Op, lit: &Lit) -> bool {
    let Lit::Str(l) = lit else {
        return false;
    };
    // Okta compares strings without regard to case.
    let (s, l) = (s.to_lowercase(), l.to_lowercase());
    match op {
        Op::Sw => s.starts_with(&l),
        Op::Co => s.contains(&l),
        _ => ordered(s.cmp(&l), op),
    }
}

fn ordered(o: std::cmp::Ordering, op: Op) -> bool {
    use std::cmp::Ordering::*;
    match op {
        Op::Eq => o == Equal,
        Op::Gt => o == Greater,
        Op::Ge => o != Less,
        Op::Lt => o == Less,
        Op::Le => o != Greater,
        Op::Sw | Op::Co | Op::Pr => false,
    }
}

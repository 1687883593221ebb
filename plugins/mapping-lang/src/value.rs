//! Values of the expression language and the conversions between them.

use std::borrow::Cow;
use std::fmt;

/// The value of an expression.
///
/// Strings borrow from the expression's literals or from the record's attributes where they
/// can, so evaluating `[mail]` copies nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// No value: a missing attribute, `null`, or a function's "nothing".
    Null,
    /// A string.
    Str(Cow<'a, str>),
    /// A number (literals, `Count`, `InStr`).
    Num(f64),
    /// A boolean (`true`, `false`, the predicates).
    Bool(bool),
    /// A list of strings: a multi-valued attribute, or the result of `Split`.
    List(Vec<Cow<'a, str>>),
}

impl<'a> Value<'a> {
    /// A borrowed string value.
    pub fn str(s: &'a str) -> Self {
        Value::Str(Cow::Borrowed(s))
    }

    /// An owned string value.
    pub fn string(s: String) -> Self {
        Value::Str(Cow::Owned(s))
    }

    /// True for `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// True for `null`, the empty string and the empty list.
    pub fn is_null_or_empty(&self) -> bool {
        match self {
            Value::Null => true,
            Value::Str(s) => s.is_empty(),
            Value::List(l) => l.is_empty(),
            Value::Num(_) | Value::Bool(_) => false,
        }
    }

    /// The kind of value, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Str(_) => "a string",
            Value::Num(_) => "a number",
            Value::Bool(_) => "a boolean",
            Value::List(_) => "a list",
        }
    }

    /// The value with every borrowed string copied, detached from the record and expression.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Null => Value::Null,
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
            Value::Num(n) => Value::Num(n),
            Value::Bool(b) => Value::Bool(b),
            Value::List(l) => Value::List(l.into_iter().map(|s| Cow::Owned(s.into_owned())).collect()),
        }
    }

    /// The value as text when it is one value: strings as they are, numbers and booleans
    /// formatted, a one-element list as its element. `Ok(None)` for null; `Err` (with a short
    /// description) for a list of several values.
    pub fn scalar_text(&self) -> Result<Option<Cow<'_, str>>, String> {
        match self {
            Value::Null => Ok(None),
            Value::Str(s) => Ok(Some(Cow::Borrowed(s.as_ref()))),
            Value::Num(n) => Ok(Some(Cow::Owned(format_number(*n)))),
            Value::Bool(b) => Ok(Some(Cow::Borrowed(if *b { "true" } else { "false" }))),
            Value::List(l) if l.len() == 1 => Ok(Some(Cow::Borrowed(l[0].as_ref()))),
            Value::List(l) if l.is_empty() => Ok(None),
            Value::List(l) => Err(format!("a list of {} values", l.len())),
        }
    }
}

/// Numbers print without a fraction when they are whole: `3`, not `3.0`.
pub fn format_number(n: f64) -> String {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// A string for error messages: quoted, and shortened when long.
pub(crate) fn quote(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() > MAX {
        let short: String = s.chars().take(MAX).collect();
        format!("{:?}…", short)
    } else {
        format!("{s:?}")
    }
}

/// Null as `null`, strings quoted, numbers and booleans as literals, lists as `["a", "b"]`.
impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Str(s) => write!(f, "{:?}", s.as_ref()),
            Value::Num(n) => f.write_str(&format_number(*n)),
            Value::Bool(b) => write!(f, "{b}"),
            Value::List(l) => {
                f.write_str("[")?;
                for (i, s) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{:?}", s.as_ref())?;
                }
                f.write_str("]")
            }
        }
    }
}

/// Where an expression reads `[name]` from.
pub trait Attributes {
    /// The value of attribute `name`: `Null` when missing, `Str` for one value, `List` for
    /// several.
    fn lookup(&self, name: &str) -> Value<'_>;

    /// [`Attributes::lookup`] of a name a mapping numbered when it was parsed (`slot`), so a
    /// memo of one record can answer repeated lookups of a name without scanning again.
    fn lookup_slot(&self, slot: usize, name: &str) -> Value<'_> {
        let _ = slot;
        self.lookup(name)
    }
}

/// Whether two attribute names are the same, ASCII case-insensitively. Checked eight bytes at a
/// time for the usual case, a mapping spelling a name as the connector does: byte-at-a-time
/// case folding is most of a lookup inside a WebAssembly guest.
#[inline]
pub fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let (a8, a_rest) = a.as_chunks::<8>();
    let (b8, b_rest) = b.as_chunks::<8>();
    let exact = a8
        .iter()
        .zip(b8)
        .all(|(x, y)| u64::from_ne_bytes(*x) == u64::from_ne_bytes(*y))
        && a_rest.iter().zip(b_rest).all(|(x, y)| x == y);
    exact || a.eq_ignore_ascii_case(b)
}

/// Collects the values of `name` (ASCII case-insensitive) from a list of (name, value) pairs in
/// one pass, borrowing them.
pub fn lookup_pairs<'a, S: AsRef<str>>(pairs: &'a [(S, S)], name: &str) -> Value<'a> {
    let mut first: Option<&'a str> = None;
    let mut more: Option<Vec<Cow<'a, str>>> = None;
    for (n, v) in pairs {
        let (n, v) = (n.as_ref(), v.as_ref());
        if same_name(n, name) {
            match (&mut more, first) {
                (Some(list), _) => list.push(Cow::Borrowed(v)),
                (None, Some(f)) => more = Some(vec![Cow::Borrowed(f), Cow::Borrowed(v)]),
                (None, None) => first = Some(v),
            }
        }
    }
    match (more, first) {
        (Some(list), _) => Value::List(list),
        (None, Some(f)) => Value::str(f),
        (None, None) => Value::Null,
    }
}

impl Attributes for [(String, String)] {
    fn lookup(&self, name: &str) -> Value<'_> {
        lookup_pairs(self, name)
    }
}

impl Attributes for Vec<(String, String)> {
    fn lookup(&self, name: &str) -> Value<'_> {
        lookup_pairs(self, name)
    }
}

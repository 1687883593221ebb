//! The built-in functions: their table (names, argument counts, documentation) and their
//! evaluation.
//!
//! Conventions, shared by all functions:
//! * A string function given `null` returns `null`; given a list, it applies to every element
//!   and returns a list. Numbers and booleans are used as their text.
//! * Predicates (`Contains`, `Equals`, `RegexMatch` …) given a list are true when any element
//!   matches, and false for `null`.
//! * Counts and positions are in characters (Unicode scalar values), 1-based like Entra's.

use std::borrow::Cow;
use std::collections::HashSet;

use regex::Regex;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::eval::{EvalError, eval};
use crate::parse::{Call, Node, Replace7};
use crate::regex_util;
use crate::value::{Attributes, Value, format_number, quote};

/// Marks a function that takes any number of arguments from its minimum on.
const MANY: usize = usize::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    ToLower,
    ToUpper,
    Trim,
    Replace,
    RegexReplace,
    RegexMatch,
    Split,
    Join,
    Left,
    Right,
    Mid,
    Append,
    Coalesce,
    Iif,
    Switch,
    NormalizeDiacritics,
    StripSpaces,
    Word,
    StripDomain,
    Not,
    And,
    Or,
    IsNull,
    IsNullOrEmpty,
    IsPresent,
    IsString,
    Contains,
    StartsWith,
    EndsWith,
    Equals,
    InStr,
    PCase,
    RemoveDuplicates,
    Count,
    Item,
    CStr,
    CBool,
    First,
    Last,
}

/// One built-in function, as documented.
#[derive(Debug)]
pub struct FunctionInfo {
    pub(crate) func: Func,
    /// Its name; calls match it case-insensitively.
    pub name: &'static str,
    /// Fewest arguments.
    pub min_args: usize,
    /// Most arguments (`usize::MAX`: no limit).
    pub max_args: usize,
    /// The parameters as documented, e.g. `source, n` (`?` marks an optional one).
    pub params: &'static str,
    /// What it returns.
    pub returns: &'static str,
    /// One line of documentation.
    pub description: &'static str,
}

pub(crate) type Spec = FunctionInfo;

macro_rules! f {
    ($func:ident, $name:literal, $min:expr, $max:expr, $params:literal, $returns:literal, $doc:literal) => {
        FunctionInfo {
            func: Func::$func,
            name: $name,
            min_args: $min,
            max_args: $max,
            params: $params,
            returns: $returns,
            description: $doc,
        }
    };
}

/// Every built-in function.
pub static FUNCTIONS: &[FunctionInfo] = &[
    f!(
        ToLower,
        "ToLower",
        1,
        2,
        "source, culture?",
        "string",
        "Lower-cases (Unicode rules; culture is accepted and ignored)."
    ),
    f!(
        ToUpper,
        "ToUpper",
        1,
        2,
        "source, culture?",
        "string",
        "Upper-cases (Unicode rules; culture is accepted and ignored)."
    ),
    f!(
        Trim,
        "Trim",
        1,
        1,
        "source",
        "string",
        "Removes leading and trailing whitespace."
    ),
    f!(
        Replace,
        "Replace",
        3,
        7,
        "source, find, replacement",
        "string",
        "Replaces every occurrence of find (literal, case-sensitive); also Entra's 7-argument form."
    ),
    f!(
        RegexReplace,
        "RegexReplace",
        3,
        3,
        "source, pattern, replacement",
        "string",
        "Replaces every match of the regex; replacement may use $1, ${1}, ${name}; $$ is a dollar."
    ),
    f!(
        RegexMatch,
        "RegexMatch",
        2,
        2,
        "source, pattern",
        "boolean",
        "True when the regex matches somewhere in source."
    ),
    f!(
        Split,
        "Split",
        2,
        2,
        "source, delimiter",
        "list",
        "Splits at every delimiter; an empty source gives an empty list."
    ),
    f!(
        Join,
        "Join",
        2,
        MANY,
        "separator, value, …",
        "string",
        "Joins the values with separator; lists are flattened, nulls skipped."
    ),
    f!(
        Left,
        "Left",
        2,
        2,
        "source, n",
        "string",
        "The first n characters (all of them when shorter; source when n < 0)."
    ),
    f!(
        Right,
        "Right",
        2,
        2,
        "source, n",
        "string",
        "The last n characters (all of them when shorter; source when n < 0)."
    ),
    f!(
        Mid,
        "Mid",
        3,
        3,
        "source, start, length",
        "string",
        "length characters from start (1-based); shorter or empty past the end."
    ),
    f!(
        Append,
        "Append",
        2,
        2,
        "source, suffix",
        "string",
        "source followed by suffix; null when source is null."
    ),
    f!(
        Coalesce,
        "Coalesce",
        1,
        MANY,
        "value, …",
        "any",
        "The first value that is neither null nor empty."
    ),
    f!(
        Iif,
        "IIF",
        3,
        3,
        "condition, ifTrue, ifFalse",
        "any",
        "ifTrue when condition is true, else ifFalse (only one is evaluated)."
    ),
    f!(
        Switch,
        "Switch",
        4,
        MANY,
        "source, default, key, value, …",
        "any",
        "The value of the first key equal to source (exact), else default."
    ),
    f!(
        NormalizeDiacritics,
        "NormalizeDiacritics",
        1,
        1,
        "source",
        "string",
        "Removes accents and maps letters like ø, ß, æ, ł to ASCII (Zoë → Zoe)."
    ),
    f!(
        StripSpaces,
        "StripSpaces",
        1,
        1,
        "source",
        "string",
        "Removes every whitespace character."
    ),
    f!(
        Word,
        "Word",
        3,
        3,
        "source, n, delimiters",
        "string",
        "The n-th word (1-based), words being separated by any of the delimiter characters; \"\" when there is none."
    ),
    f!(
        StripDomain,
        "StripDomain",
        1,
        1,
        "value",
        "string",
        "Drops @domain of a UPN or email and the DOMAIN\\ prefix of DOMAIN\\user."
    ),
    f!(Not, "Not", 1, 1, "condition", "boolean", "The opposite of condition."),
    f!(
        And,
        "And",
        2,
        MANY,
        "condition, …",
        "boolean",
        "True when every condition is (evaluated left to right, stops at the first false)."
    ),
    f!(
        Or,
        "Or",
        2,
        MANY,
        "condition, …",
        "boolean",
        "True when any condition is (evaluated left to right, stops at the first true)."
    ),
    f!(
        IsNull,
        "IsNull",
        1,
        1,
        "value",
        "boolean",
        "True when value is null (a missing attribute)."
    ),
    f!(
        IsNullOrEmpty,
        "IsNullOrEmpty",
        1,
        1,
        "value",
        "boolean",
        "True when value is null, \"\" or an empty list."
    ),
    f!(
        IsPresent,
        "IsPresent",
        1,
        1,
        "value",
        "boolean",
        "The opposite of IsNullOrEmpty."
    ),
    f!(
        IsString,
        "IsString",
        1,
        1,
        "value",
        "boolean",
        "True when value is a string."
    ),
    f!(
        Contains,
        "Contains",
        2,
        2,
        "source, text",
        "boolean",
        "True when source contains text (case-insensitive)."
    ),
    f!(
        StartsWith,
        "StartsWith",
        2,
        2,
        "source, text",
        "boolean",
        "True when source starts with text (case-insensitive)."
    ),
    f!(
        EndsWith,
        "EndsWith",
        2,
        2,
        "source, text",
        "boolean",
        "True when source ends with text (case-insensitive)."
    ),
    f!(
        Equals,
        "Equals",
        2,
        2,
        "value1, value2",
        "boolean",
        "True when the values are equal: numbers numerically, text case-insensitively; null equals only null."
    ),
    f!(
        InStr,
        "InStr",
        2,
        4,
        "value1, value2, start?, compareType?",
        "number",
        "1-based position of value2 in value1 from start, 0 when absent; compareType vbBinaryCompare (default) or vbTextCompare."
    ),
    f!(
        PCase,
        "PCase",
        1,
        2,
        "source, wordSeparators?",
        "string",
        "Upper-cases the first letter of every word and lower-cases the rest (default separators: whitespace and -)."
    ),
    f!(
        RemoveDuplicates,
        "RemoveDuplicates",
        1,
        1,
        "list",
        "list",
        "The list without repeated values (first kept, order kept)."
    ),
    f!(
        Count,
        "Count",
        1,
        1,
        "list",
        "number",
        "Number of values: 0 for null, 1 for a single value."
    ),
    f!(
        Item,
        "Item",
        2,
        2,
        "list, n",
        "string",
        "The n-th value (1-based); null when out of range."
    ),
    f!(
        CStr,
        "CStr",
        1,
        1,
        "value",
        "string",
        "The value as text (numbers without a needless fraction, true/false)."
    ),
    f!(
        CBool,
        "CBool",
        1,
        1,
        "value",
        "boolean",
        "true/false/yes/no (any case) or a number (non-zero is true) as a boolean; null is false."
    ),
    f!(
        First,
        "First",
        1,
        1,
        "list",
        "string",
        "The first value; null for null or an empty list."
    ),
    f!(
        Last,
        "Last",
        1,
        1,
        "list",
        "string",
        "The last value; null for null or an empty list."
    ),
];

/// The function called `name` (case-insensitive).
pub(crate) fn lookup(name: &str) -> Option<&'static Spec> {
    FUNCTIONS.iter().find(|f| f.name.eq_ignore_ascii_case(name))
}

/// Why an Entra function that Roster leaves out is not there.
pub(crate) fn not_offered(name: &str) -> Option<&'static str> {
    const CLOCK: &[&str] = &[
        "Now",
        "Guid",
        "RandomString",
        "DateAdd",
        "DateDiff",
        "FormatDateTime",
        "NumFromDate",
        "DateFromNum",
        "CDate",
    ];
    const OTHER: &[&str] = &[
        "AppRoleAssignmentsComplex",
        "SingleAppRoleAssignment",
        "SelectUniqueValue",
        "Redact",
        "IgnoreFlowIfNullOrEmpty",
        "BitAnd",
        "ConvertToBase64",
        "ConvertToUTF8Hex",
        "AssertNotNull",
    ];
    if CLOCK.iter().any(|n| n.eq_ignore_ascii_case(name)) {
        Some("transforms are pure (no clock, no randomness, no dates), so a record always maps the same way")
    } else if OTHER.iter().any(|n| n.eq_ignore_ascii_case(name)) {
        Some("it depends on Entra's provisioning engine; see the README for the list of functions")
    } else {
        None
    }
}

/// The known function closest to a misspelt name, if one is close.
pub(crate) fn suggest(name: &str) -> Option<&'static str> {
    let lower = name.to_lowercase();
    FUNCTIONS
        .iter()
        .map(|f| (distance(&lower, &f.name.to_lowercase()), f.name))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// Levenshtein distance on characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// `Some(message)` when `n` arguments do not suit `spec`.
pub(crate) fn check_arity(spec: &Spec, n: usize) -> Option<String> {
    let plural = |k: usize| if k == 1 { "argument" } else { "arguments" };
    match spec.func {
        Func::Replace if n != 3 && n != 7 => Some(format!(
            "Replace takes 3 arguments (source, find, replacement) or Entra's 7 (source, oldValue, regexPattern, \
             regexGroupName, replacementValue, replacementAttributeName, template), found {n}"
        )),
        Func::Switch if n < 4 || !n.is_multiple_of(2) => Some(format!(
            "Switch takes an even number of arguments, at least 4 (source, default, key, value, …), found {n}"
        )),
        _ if n >= spec.min_args && n <= spec.max_args => None,
        _ if spec.max_args == MANY => Some(format!(
            "{} takes at least {} {} ({}), found {n}",
            spec.name,
            spec.min_args,
            plural(spec.min_args),
            spec.params
        )),
        _ if spec.min_args == spec.max_args => Some(format!(
            "{} takes {} {} ({}), found {n}",
            spec.name,
            spec.min_args,
            plural(spec.min_args),
            spec.params
        )),
        _ => Some(format!(
            "{} takes {} to {} arguments ({}), found {n}",
            spec.name, spec.min_args, spec.max_args, spec.params
        )),
    }
}

/// The index of the argument holding a regex pattern, if the call has one.
pub(crate) fn pattern_index(call: &Call) -> Option<usize> {
    match (call.spec.func, call.replace7) {
        (Func::RegexReplace | Func::RegexMatch, _) => Some(1),
        (Func::Replace, Some(Replace7::Regex | Replace7::RegexGroup | Replace7::Fallback)) => Some(2),
        _ => None,
    }
}

type R<'a> = Result<Value<'a>, EvalError>;

fn fail(c: &Call, message: impl Into<String>) -> EvalError {
    EvalError::new(c.spec.name, message)
}

/// Applies `f` to the text of `v`, or of each of its elements; null stays null.
fn map_text<'a>(v: Value<'a>, mut f: impl FnMut(Cow<'a, str>) -> Cow<'a, str>) -> Value<'a> {
    match v {
        Value::Null => Value::Null,
        Value::Str(s) => Value::Str(f(s)),
        Value::Num(n) => Value::Str(f(Cow::Owned(format_number(n)))),
        Value::Bool(b) => Value::Str(f(Cow::Borrowed(if b { "true" } else { "false" }))),
        Value::List(l) => Value::List(l.into_iter().map(f).collect()),
    }
}

/// A borrowed view of `s` narrowed by `f`, without copying when `s` is borrowed.
fn narrow<'a>(s: Cow<'a, str>, f: impl Fn(&str) -> &str) -> Cow<'a, str> {
    match s {
        Cow::Borrowed(b) => Cow::Borrowed(f(b)),
        Cow::Owned(o) => {
            let t = f(&o);
            if t.len() == o.len() {
                Cow::Owned(o)
            } else {
                Cow::Owned(t.to_string())
            }
        }
    }
}

/// True when `f` holds for the text of `v` or of any of its elements; false for null.
fn any_text(v: &Value<'_>, f: impl Fn(&str) -> bool) -> bool {
    match v {
        Value::Null => false,
        Value::Str(s) => f(s),
        Value::Num(n) => f(&format_number(*n)),
        Value::Bool(b) => f(if *b { "true" } else { "false" }),
        Value::List(l) => l.iter().any(|s| f(s)),
    }
}

/// The single text of an argument (`None` for null); a list of several values is an error.
fn text<'v>(c: &Call, what: &str, v: &'v Value<'_>) -> Result<Option<Cow<'v, str>>, EvalError> {
    v.scalar_text()
        .map_err(|kind| fail(c, format!("{what} must be one value, got {kind}")))
}

/// A whole number argument; null, booleans, lists and non-numeric text are errors.
fn int(c: &Call, what: &str, v: &Value<'_>) -> Result<i64, EvalError> {
    let bad = |got: String| fail(c, format!("{what} must be a whole number, got {got}"));
    let n = match v {
        Value::Num(n) => *n,
        Value::Str(s) => s.trim().parse::<f64>().map_err(|_| bad(quote(s)))?,
        Value::List(l) if l.len() == 1 => l[0].trim().parse::<f64>().map_err(|_| bad(quote(&l[0])))?,
        Value::List(l) => return Err(bad(format!("a list of {} values", l.len()))),
        other => return Err(bad(other.kind().to_string())),
    };
    if n.fract() != 0.0 || !n.is_finite() {
        return Err(bad(format_number(n)));
    }
    Ok(n.clamp(i64::MIN as f64, i64::MAX as f64) as i64)
}

/// A condition: booleans, true/false/yes/no in any case, numbers (non-zero is true), null is
/// false.
pub(crate) fn truth(v: &Value<'_>) -> Result<bool, String> {
    fn text_truth(s: &str) -> Option<bool> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("yes") {
            Some(true)
        } else if t.eq_ignore_ascii_case("false") || t.eq_ignore_ascii_case("no") {
            Some(false)
        } else {
            t.parse::<f64>().ok().filter(|n| n.is_finite()).map(|n| n != 0.0)
        }
    }
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Null => Ok(false),
        Value::Num(n) => Ok(*n != 0.0),
        Value::Str(s) => text_truth(s).ok_or_else(|| quote(s)),
        Value::List(l) if l.len() == 1 => text_truth(&l[0]).ok_or_else(|| quote(&l[0])),
        Value::List(l) => Err(format!("a list of {} values", l.len())),
    }
}

fn cond<'a, A: Attributes + ?Sized>(c: &'a Call, i: usize, attrs: &'a A) -> Result<bool, EvalError> {
    let v = eval(&c.args[i], attrs)?;
    truth(&v).map_err(|got| fail(c, format!("the condition must be true or false, got {got}")))
}

/// One character for case-insensitive comparison.
fn fold(c: char) -> char {
    if c.is_ascii() {
        c.to_ascii_lowercase()
    } else {
        c.to_lowercase().next().unwrap_or(c)
    }
}

pub(crate) fn ci_eq(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.chars().map(fold).eq(b.chars().map(fold))
    }
}

fn ci_starts(h: &str, n: &str) -> bool {
    let mut hs = h.chars().map(fold);
    n.chars().map(fold).all(|c| hs.next() == Some(c))
}

fn ci_ends(h: &str, n: &str) -> bool {
    let mut hs = h.chars().rev().map(fold);
    n.chars().rev().map(fold).all(|c| hs.next() == Some(c))
}

/// Character index of the first occurrence of `needle` in `hay` at or after character `from`.
fn find_chars(hay: &str, needle: &str, from: usize, ci: bool) -> Option<usize> {
    let prep = |s: &str| -> Vec<char> { s.chars().map(|c| if ci { fold(c) } else { c }).collect() };
    let (h, n) = (prep(hay), prep(needle));
    if n.len() > h.len() || from > h.len() - n.len() {
        return None;
    }
    (from..=h.len() - n.len()).find(|&i| h[i..i + n.len()] == n[..])
}

fn ci_contains(h: &str, n: &str) -> bool {
    if h.is_ascii() && n.is_ascii() {
        n.is_empty()
            || h.as_bytes()
                .windows(n.len())
                .any(|w| w.eq_ignore_ascii_case(n.as_bytes()))
    } else {
        find_chars(h, n, 0, true).is_some()
    }
}

/// Byte offset of character `n` of `s` (its length when `s` is shorter).
fn char_byte(s: &str, n: usize) -> usize {
    s.char_indices().nth(n).map_or(s.len(), |(i, _)| i)
}

fn lower(s: Cow<'_, str>) -> Cow<'_, str> {
    if s.is_ascii() {
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(s.to_ascii_lowercase())
        } else {
            s
        }
    } else if s.chars().all(|c| {
        let mut l = c.to_lowercase();
        l.next() == Some(c) && l.next().is_none()
    }) {
        s
    } else {
        Cow::Owned(s.to_lowercase())
    }
}

fn upper(s: Cow<'_, str>) -> Cow<'_, str> {
    if s.is_ascii() {
        if s.bytes().any(|b| b.is_ascii_lowercase()) {
            Cow::Owned(s.to_ascii_uppercase())
        } else {
            s
        }
    } else if s.chars().all(|c| {
        let mut u = c.to_uppercase();
        u.next() == Some(c) && u.next().is_none()
    }) {
        s
    } else {
        Cow::Owned(s.to_uppercase())
    }
}

/// Letters that carry no combining mark in Unicode but have a usual ASCII spelling.
fn ascii_letter(c: char) -> Option<&'static str> {
    Some(match c {
        'ø' => "o",
        'Ø' => "O",
        'æ' => "ae",
        'Æ' => "AE",
        'œ' => "oe",
        'Œ' => "OE",
        'ß' => "ss",
        'ẞ' => "SS",
        'đ' | 'ð' => "d",
        'Đ' | 'Ð' => "D",
        'ł' => "l",
        'Ł' => "L",
        'þ' => "th",
        'Þ' => "Th",
        'ı' => "i",
        'ħ' => "h",
        'Ħ' => "H",
        'ŧ' => "t",
        'Ŧ' => "T",
        'ŋ' => "n",
        'Ŋ' => "N",
        'ĸ' => "k",
        _ => return None,
    })
}

fn strip_diacritics(s: Cow<'_, str>) -> Cow<'_, str> {
    if s.is_ascii() {
        return s;
    }
    let mut out = String::with_capacity(s.len());
    for c in s.nfd() {
        if is_combining_mark(c) {
            continue;
        }
        match ascii_letter(c) {
            Some(r) => out.push_str(r),
            None => out.push(c),
        }
    }
    // Scripts whose letters decompose without marks (Hangul) are put back together.
    Cow::Owned(out.nfc().collect())
}

fn strip_domain(s: &str) -> &str {
    let s = s.split_once('\\').map_or(s, |(_, user)| user);
    s.rsplit_once('@').map_or(s, |(local, _)| local)
}

fn pcase(s: &str, separators: Option<&str>) -> String {
    let is_sep = |c: char| match separators {
        Some(seps) => seps.contains(c),
        None => c.is_whitespace() || c == '-',
    };
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if is_sep(c) {
            out.push(c);
            start = true;
        } else if start {
            out.extend(c.to_uppercase());
            start = false;
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

fn regex_replace<'a>(re: &Regex, s: Cow<'a, str>, rep: &str) -> Cow<'a, str> {
    match s {
        Cow::Borrowed(b) => re.replace_all(b, rep),
        Cow::Owned(o) => {
            let changed = match re.replace_all(&o, rep) {
                Cow::Owned(n) => Some(n),
                Cow::Borrowed(_) => None,
            };
            Cow::Owned(changed.unwrap_or(o))
        }
    }
}

/// Every match's `group` replaced by `rep` (Entra's Replace with regexGroupName).
fn replace_group(re: &Regex, s: &str, group: &str, rep: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for caps in re.captures_iter(s) {
        let m = match group.parse::<usize>() {
            Ok(i) => caps.get(i),
            Err(_) => caps.name(group),
        };
        if let Some(m) = m {
            out.push_str(&s[last..m.start()]);
            out.push_str(rep);
            last = m.end();
        }
    }
    out.push_str(&s[last..]);
    out
}

fn group_of<'h>(re: &Regex, s: &'h str, group: &str) -> Option<&'h str> {
    let caps = re.captures(s)?;
    let m = match group.parse::<usize>() {
        Ok(i) => caps.get(i),
        Err(_) => caps.name(group),
    };
    m.map(|m| m.as_str())
}

/// Runs `f` with the call's regex: compiled at parse time for a literal pattern, else compiled
/// from the pattern argument's value through the per-thread cache.
fn with_regex<T>(
    c: &Call,
    pattern: &Value<'_>,
    f: impl FnOnce(&Regex) -> Result<T, EvalError>,
) -> Result<T, EvalError> {
    if let Some(re) = &c.regex {
        return f(re);
    }
    let p = text(c, "the pattern", pattern)?.ok_or_else(|| fail(c, "the pattern is null"))?;
    regex_util::with_dynamic(&p, f).map_err(|e| fail(c, e))?
}

/// Evaluates a call.
pub(crate) fn call<'a, A: Attributes + ?Sized>(c: &'a Call, attrs: &'a A) -> R<'a> {
    let arg = |i: usize| eval(&c.args[i], attrs);
    Ok(match c.spec.func {
        Func::ToLower => map_text(arg(0)?, lower),
        Func::ToUpper => map_text(arg(0)?, upper),
        Func::Trim => map_text(arg(0)?, |s| narrow(s, str::trim)),
        Func::StripSpaces => map_text(arg(0)?, |s| {
            if s.chars().any(char::is_whitespace) {
                Cow::Owned(s.chars().filter(|c| !c.is_whitespace()).collect())
            } else {
                s
            }
        }),
        Func::StripDomain => map_text(arg(0)?, |s| narrow(s, strip_domain)),
        Func::NormalizeDiacritics => map_text(arg(0)?, strip_diacritics),
        Func::Replace if c.replace7.is_some() => return replace7(c, attrs),
        Func::Replace => {
            let source = arg(0)?;
            let (find, rep) = (arg(1)?, arg(2)?);
            let find = text(c, "find", &find)?;
            let rep = text(c, "the replacement", &rep)?.unwrap_or_default();
            match find {
                Some(find) if !find.is_empty() => map_text(source, |s| {
                    if s.contains(find.as_ref()) {
                        Cow::Owned(s.replace(find.as_ref(), &rep))
                    } else {
                        s
                    }
                }),
                _ => source,
            }
        }
        Func::RegexReplace => {
            let source = arg(0)?;
            let (pattern, rep) = (arg(1)?, arg(2)?);
            let rep = text(c, "the replacement", &rep)?.unwrap_or_default();
            with_regex(c, &pattern, |re| Ok(map_text(source, |s| regex_replace(re, s, &rep))))?
        }
        Func::RegexMatch => {
            let source = arg(0)?;
            let pattern = arg(1)?;
            Value::Bool(with_regex(c, &pattern, |re| Ok(any_text(&source, |s| re.is_match(s))))?)
        }
        Func::Split => {
            let source = arg(0)?;
            let delim = arg(1)?;
            let delim = text(c, "the delimiter", &delim)?.unwrap_or_default();
            let mut out = Vec::new();
            let mut push = |s: Cow<'a, str>| {
                if s.is_empty() {
                } else if delim.is_empty() {
                    out.push(s);
                } else {
                    match s {
                        Cow::Borrowed(b) => out.extend(b.split(delim.as_ref()).map(Cow::Borrowed)),
                        Cow::Owned(o) => out.extend(o.split(delim.as_ref()).map(|p| Cow::Owned(p.to_string()))),
                    }
                }
            };
            match source {
                Value::Null => return Ok(Value::Null),
                Value::List(l) => l.into_iter().for_each(&mut push),
                other => {
                    if let Ok(Some(t)) = other.scalar_text() {
                        push(Cow::Owned(t.into_owned()));
                    }
                }
            }
            Value::List(out)
        }
        Func::Join => {
            let sep = arg(0)?;
            let sep = text(c, "the separator", &sep)?.unwrap_or_default();
            let mut out = String::new();
            let mut first = true;
            let mut add = |s: &str| {
                if !first {
                    out.push_str(&sep);
                }
                out.push_str(s);
                first = false;
            };
            for i in 1..c.args.len() {
                match arg(i)? {
                    Value::Null => {}
                    Value::List(l) => l.iter().for_each(|s| add(s)),
                    Value::Str(s) => add(&s),
                    Value::Num(n) => add(&format_number(n)),
                    Value::Bool(b) => add(if b { "true" } else { "false" }),
                }
            }
            Value::string(out)
        }
        Func::Left | Func::Right => {
            let source = arg(0)?;
            let n = int(c, "the count", &arg(1)?)?;
            if n < 0 {
                return Ok(source);
            }
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            let left = c.spec.func == Func::Left;
            map_text(source, |s| {
                narrow(s, |x| {
                    if left {
                        &x[..char_byte(x, n)]
                    } else {
                        let count = x.chars().count();
                        &x[char_byte(x, count.saturating_sub(n))..]
                    }
                })
            })
        }
        Func::Mid => {
            let source = arg(0)?;
            let start = int(c, "start", &arg(1)?)?;
            let len = int(c, "length", &arg(2)?)?;
            if start < 1 {
                return Err(fail(c, format!("start must be 1 or more, got {start}")));
            }
            if len < 0 {
                return Err(fail(c, format!("length must not be negative, got {len}")));
            }
            let from = usize::try_from(start - 1).unwrap_or(usize::MAX);
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            map_text(source, |s| {
                narrow(s, |x| {
                    let a = char_byte(x, from);
                    let b = a + char_byte(&x[a..], len);
                    &x[a..b]
                })
            })
        }
        Func::Append => {
            let source = arg(0)?;
            let suffix = arg(1)?;
            match text(c, "the suffix", &suffix)? {
                Some(suffix) if !suffix.is_empty() => map_text(source, |s| {
                    let mut o = s.into_owned();
                    o.push_str(&suffix);
                    Cow::Owned(o)
                }),
                _ => source,
            }
        }
        Func::Coalesce => {
            for i in 0..c.args.len() {
                let v = arg(i)?;
                if !v.is_null_or_empty() {
                    return Ok(v);
                }
            }
            Value::Null
        }
        Func::Iif => {
            if cond(c, 0, attrs)? {
                arg(1)?
            } else {
                arg(2)?
            }
        }
        Func::Switch => {
            let source = arg(0)?;
            if let Some(src) = text(c, "the source", &source)? {
                for pair in c.args[2..].chunks(2) {
                    let key = eval(&pair[0], attrs)?;
                    if text(c, "a key", &key)?.is_some_and(|k| k == src) {
                        return eval(&pair[1], attrs);
                    }
                }
            }
            arg(1)?
        }
        Func::Word => {
            let source = arg(0)?;
            let n = int(c, "the word number", &arg(1)?)?;
            let delims = arg(2)?;
            let delims = text(c, "the delimiters", &delims)?;
            let delims = delims.as_deref().unwrap_or(" ");
            if n < 1 {
                return Ok(map_text(source, |_| Cow::Borrowed("")));
            }
            let n = usize::try_from(n - 1).unwrap_or(usize::MAX);
            map_text(source, |s| {
                narrow(s, |x| {
                    x.split(|ch| delims.contains(ch))
                        .filter(|w| !w.is_empty())
                        .nth(n)
                        .unwrap_or("")
                })
            })
        }
        Func::Not => Value::Bool(!cond(c, 0, attrs)?),
        Func::And => {
            for i in 0..c.args.len() {
                if !cond(c, i, attrs)? {
                    return Ok(Value::Bool(false));
                }
            }
            Value::Bool(true)
        }
        Func::Or => {
            for i in 0..c.args.len() {
                if cond(c, i, attrs)? {
                    return Ok(Value::Bool(true));
                }
            }
            Value::Bool(false)
        }
        Func::IsNull => Value::Bool(arg(0)?.is_null()),
        Func::IsNullOrEmpty => Value::Bool(arg(0)?.is_null_or_empty()),
        Func::IsPresent => Value::Bool(!arg(0)?.is_null_or_empty()),
        Func::IsString => Value::Bool(matches!(arg(0)?, Value::Str(_))),
        Func::Contains | Func::StartsWith | Func::EndsWith => {
            let source = arg(0)?;
            let t = arg(1)?;
            let Some(t) = text(c, "the text", &t)? else {
                return Ok(Value::Bool(false));
            };
            let f: fn(&str, &str) -> bool = match c.spec.func {
                Func::Contains => ci_contains,
                Func::StartsWith => ci_starts,
                _ => ci_ends,
            };
            Value::Bool(any_text(&source, |s| f(s, &t)))
        }
        Func::Equals => {
            let (a, b) = (arg(0)?, arg(1)?);
            Value::Bool(match (&a, &b) {
                (Value::Null, Value::Null) => true,
                (Value::Null, _) | (_, Value::Null) => false,
                (Value::Num(x), Value::Num(y)) => x == y,
                _ => match text(c, "value2", &b)? {
                    Some(t) => any_text(&a, |s| ci_eq(s, &t)),
                    None => a.is_null_or_empty(),
                },
            })
        }
        Func::InStr => {
            let hay = arg(0)?;
            let needle = arg(1)?;
            let start = match c.args.get(2) {
                Some(n) if !matches!(n, Node::Null) => int(c, "start", &eval(n, attrs)?)?,
                _ => 1,
            };
            if start < 1 {
                return Err(fail(c, format!("start must be 1 or more, got {start}")));
            }
            let ci = match c.args.get(3) {
                None => false,
                Some(n) => {
                    let v = eval(n, attrs)?;
                    match text(c, "compareType", &v)?.as_deref() {
                        None => false,
                        Some(t) if t.eq_ignore_ascii_case("vbBinaryCompare") || t.eq_ignore_ascii_case("binary") => {
                            false
                        }
                        Some(t) if t.eq_ignore_ascii_case("vbTextCompare") || t.eq_ignore_ascii_case("text") => true,
                        Some(t) => {
                            return Err(fail(
                                c,
                                format!("compareType must be vbBinaryCompare or vbTextCompare, got {}", quote(t)),
                            ));
                        }
                    }
                }
            };
            let (Some(h), Some(n)) = (text(c, "value1", &hay)?, text(c, "value2", &needle)?) else {
                return Ok(Value::Num(0.0));
            };
            let from = usize::try_from(start - 1).unwrap_or(usize::MAX);
            Value::Num(find_chars(&h, &n, from, ci).map_or(0.0, |i| (i + 1) as f64))
        }
        Func::PCase => {
            let source = arg(0)?;
            let seps = match c.args.get(1) {
                Some(n) => eval(n, attrs)?,
                None => Value::Null,
            };
            let seps = text(c, "wordSeparators", &seps)?;
            let seps = seps.as_deref().filter(|s| !s.is_empty());
            map_text(source, |s| Cow::Owned(pcase(&s, seps)))
        }
        Func::RemoveDuplicates => match arg(0)? {
            Value::List(l) => {
                let mut seen = HashSet::with_capacity(l.len());
                let mut out = Vec::with_capacity(l.len());
                for s in l {
                    if seen.insert(s.clone()) {
                        out.push(s);
                    }
                }
                Value::List(out)
            }
            other => other,
        },
        Func::Count => Value::Num(match arg(0)? {
            Value::Null => 0.0,
            Value::List(l) => l.len() as f64,
            _ => 1.0,
        }),
        Func::Item | Func::First | Func::Last => {
            let v = arg(0)?;
            let n = if c.spec.func == Func::Item {
                Some(int(c, "the index", &arg(1)?)?)
            } else {
                None
            };
            let mut items: Vec<Cow<'a, str>> = match v {
                Value::Null => return Ok(Value::Null),
                Value::List(l) => l,
                Value::Str(s) => vec![s],
                other => match other.scalar_text() {
                    Ok(Some(t)) => vec![Cow::Owned(t.into_owned())],
                    _ => return Ok(Value::Null),
                },
            };
            let index = match (c.spec.func, n) {
                (Func::First, _) => Some(0),
                (Func::Last, _) => items.len().checked_sub(1),
                (_, Some(n)) if n >= 1 => usize::try_from(n - 1).ok(),
                _ => None,
            };
            match index {
                Some(i) if i < items.len() => Value::Str(items.swap_remove(i)),
                _ => Value::Null,
            }
        }
        Func::CStr => match arg(0)? {
            Value::Num(n) => Value::string(format_number(n)),
            Value::Bool(b) => Value::str(if b { "true" } else { "false" }),
            other => other,
        },
        Func::CBool => {
            let v = arg(0)?;
            Value::Bool(truth(&v).map_err(|got| fail(c, format!("cannot make a boolean of {got}")))?)
        }
    })
}

/// Entra's 7-argument Replace, in the form chosen at parse time.
fn replace7<'a, A: Attributes + ?Sized>(c: &'a Call, attrs: &'a A) -> R<'a> {
    let arg = |i: usize| eval(&c.args[i], attrs);
    let source = arg(0)?;
    match c.replace7 {
        Some(Replace7::Literal) => {
            let (old, rep) = (arg(1)?, arg(4)?);
            let old = text(c, "oldValue", &old)?.unwrap_or_default();
            let rep = text(c, "replacementValue", &rep)?.unwrap_or_default();
            if old.is_empty() {
                return Ok(source);
            }
            Ok(map_text(source, |s| {
                if s.contains(old.as_ref()) {
                    Cow::Owned(s.replace(old.as_ref(), &rep))
                } else {
                    s
                }
            }))
        }
        Some(Replace7::Template) => {
            let (old, template) = (arg(1)?, arg(6)?);
            let old = text(c, "oldValue", &old)?.unwrap_or_default();
            let template = text(c, "template", &template)?.unwrap_or_default();
            let Some(src) = text(c, "the source", &source)? else {
                return Ok(Value::Null);
            };
            if old.is_empty() {
                return Ok(Value::string(template.into_owned()));
            }
            Ok(Value::string(template.replace(old.as_ref(), &src)))
        }
        Some(Replace7::Regex) => {
            let (pattern, rep) = (arg(2)?, arg(4)?);
            let rep = text(c, "replacementValue", &rep)?.unwrap_or_default();
            with_regex(c, &pattern, |re| Ok(map_text(source, |s| regex_replace(re, s, &rep))))
        }
        Some(Replace7::RegexGroup) => {
            let (pattern, group, rep) = (arg(2)?, arg(3)?, arg(4)?);
            let group = text(c, "regexGroupName", &group)?.unwrap_or_default();
            let rep = text(c, "replacementValue", &rep)?.unwrap_or_default();
            with_regex(c, &pattern, |re| {
                Ok(map_text(source, |s| Cow::Owned(replace_group(re, &s, &group, &rep))))
            })
        }
        Some(Replace7::Fallback) | None => {
            if !source.is_null_or_empty() {
                return Ok(source);
            }
            let (pattern, group, other) = (arg(2)?, arg(3)?, arg(5)?);
            let group = text(c, "regexGroupName", &group)?.unwrap_or_default();
            let Some(other) = text(c, "replacementAttributeName", &other)? else {
                return Ok(Value::Null);
            };
            with_regex(c, &pattern, |re| {
                Ok(group_of(re, &other, &group).map_or(Value::Null, |g| Value::string(g.to_string())))
            })
        }
    }
}

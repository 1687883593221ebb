//! OData system query options: parsing `$select`, `$top`, `$count`, and a small recursive-descent
//! `$filter` parser and evaluator (eq, ne, in, startswith, endswith, and, or, not, parentheses).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::{GErr, GResult};

/// A property value as filters and renderers see it.
#[derive(Debug, Clone, Copy)]
pub(super) enum FVal<'a> {
    /// The type has no such property, or an extension is unset: not rendered.
    Absent,
    /// Null.
    Null,
    /// A string.
    Str(&'a str),
    /// A boolean.
    Bool(bool),
    /// A string collection.
    Coll(&'a [String]),
    /// Any other JSON (extension values).
    Json(&'a Value),
}

impl FVal<'_> {
    fn to_json(self) -> Value {
        match self {
            FVal::Absent | FVal::Null => Value::Null,
            FVal::Str(s) => Value::String(s.to_string()),
            FVal::Bool(b) => Value::Bool(b),
            FVal::Coll(c) => Value::Array(c.iter().map(|s| Value::String(s.clone())).collect()),
            FVal::Json(v) => v.clone(),
        }
    }
}

/// Objects whose properties can be read by name.
pub(super) trait Fields {
    /// The property's value (canonical name).
    fn field(&self, name: &str) -> FVal<'_>;
}

/// Entity types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    User,
    Group,
    ServicePrincipal,
    /// Members lists: users and groups mixed.
    DirectoryObject,
}

impl Kind {
    fn type_name(self) -> &'static str {
        match self {
            Kind::User => "microsoft.graph.user",
            Kind::Group => "microsoft.graph.group",
            Kind::ServicePrincipal => "microsoft.graph.servicePrincipal",
            Kind::DirectoryObject => "microsoft.graph.directoryObject",
        }
    }

    fn resource(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Group => "Group",
            Kind::ServicePrincipal => "ServicePrincipal",
            Kind::DirectoryObject => "DirectoryObject",
        }
    }

    fn props(self) -> &'static [&'static str] {
        match self {
            Kind::User => USER_PROPS,
            Kind::Group => GROUP_PROPS,
            Kind::ServicePrincipal => SP_PROPS,
            Kind::DirectoryObject => &[],
        }
    }

    /// Properties returned without `$select`.
    pub(super) fn defaults(self) -> &'static [&'static str] {
        match self {
            Kind::User => USER_DEFAULT,
            Kind::Group => GROUP_DEFAULT,
            Kind::ServicePrincipal => SP_PROPS,
            Kind::DirectoryObject => &["id"],
        }
    }
}

const USER_PROPS: &[&str] = &[
    "id",
    "userPrincipalName",
    "mail",
    "displayName",
    "givenName",
    "surname",
    "accountEnabled",
    "employeeId",
    "department",
    "onPremisesSamAccountName",
    "otherMails",
    "userType",
    "mailNickname",
    "jobTitle",
];
const USER_DEFAULT: &[&str] = &[
    "id",
    "displayName",
    "givenName",
    "surname",
    "mail",
    "userPrincipalName",
    "jobTitle",
];
const GROUP_PROPS: &[&str] = &[
    "id",
    "displayName",
    "description",
    "mailNickname",
    "securityEnabled",
    "mail",
];
const GROUP_DEFAULT: &[&str] = &["id", "displayName", "description", "mailNickname", "securityEnabled"];
const SP_PROPS: &[&str] = &["id", "appId", "displayName", "servicePrincipalType", "accountEnabled"];

/// The canonical name of a property of `kind` (case-insensitive match), if it has one.
fn canonical(kind: Kind, name: &str, exts: &BTreeMap<String, String>) -> Option<String> {
    let find = |props: &[&str]| {
        props
            .iter()
            .find(|p| p.eq_ignore_ascii_case(name))
            .map(|p| p.to_string())
    };
    match kind {
        Kind::DirectoryObject => find(USER_PROPS)
            .or_else(|| find(GROUP_PROPS))
            .or_else(|| exts.get(&name.to_lowercase()).cloned()),
        Kind::User => find(USER_PROPS).or_else(|| exts.get(&name.to_lowercase()).cloned()),
        _ => find(kind.props()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PType {
    Str,
    Bool,
    Coll,
    /// Extensions: whatever was stored.
    Any,
}

fn prop_type(name: &str) -> PType {
    match name {
        "accountEnabled" | "securityEnabled" => PType::Bool,
        "otherMails" => PType::Coll,
        n if n.starts_with("extension_") => PType::Any,
        _ => PType::Str,
    }
}

/// The system query options of a request.
#[derive(Debug, Default)]
pub(super) struct Query {
    /// Every pair, `$` keys lower-cased, in order (for links).
    pub pairs: Vec<(String, String)>,
    pub select: Option<String>,
    pub filter: Option<String>,
    pub top: Option<String>,
    pub skiptoken: Option<String>,
    pub deltatoken: Option<String>,
    pub count: Option<String>,
    pub search: Option<String>,
    pub expand: Option<String>,
    pub orderby: Option<String>,
    pub skip: Option<String>,
}

impl Query {
    /// Sorts the decoded pairs into options; `$` names are case-insensitive and may not repeat.
    pub fn parse(raw: &[(String, String)]) -> GResult<Query> {
        let mut q = Query::default();
        for (k, v) in raw {
            if !k.starts_with('$') {
                q.pairs.push((k.clone(), v.clone()));
                continue;
            }
            let key = k.to_ascii_lowercase();
            let slot = match key.as_str() {
                "$select" => &mut q.select,
                "$filter" => &mut q.filter,
                "$top" => &mut q.top,
                "$skiptoken" => &mut q.skiptoken,
                "$deltatoken" => &mut q.deltatoken,
                "$count" => &mut q.count,
                "$search" => &mut q.search,
                "$expand" => &mut q.expand,
                "$orderby" => &mut q.orderby,
                "$skip" => &mut q.skip,
                _ => return Err(GErr::bad(format!("Unrecognized query option '{k}'."))),
            };
            if slot.is_some() {
                return Err(GErr::bad(format!("Query option '{k}' was specified more than once.")));
            }
            *slot = Some(v.clone());
            q.pairs.push((key, v.clone()));
        }
        Ok(q)
    }

    /// Refuses the options this simulator (and Roster) does not use.
    pub fn refuse_unsupported(&self) -> GResult<()> {
        for (name, v) in [
            ("$expand", &self.expand),
            ("$orderby", &self.orderby),
            ("$search", &self.search),
        ] {
            if v.is_some() {
                return Err(GErr::unsupported(format!(
                    "The query option '{name}' is not supported."
                )));
            }
        }
        if self.skip.is_some() {
            return Err(GErr::bad("'$skip' is not supported by the service."));
        }
        Ok(())
    }

    /// `$top` (1..=999, default 100).
    pub fn top(&self) -> GResult<usize> {
        let Some(t) = &self.top else {
            return Ok(100);
        };
        match t.trim().parse::<usize>() {
            Ok(n) if (1..=999).contains(&n) => Ok(n),
            _ => Err(GErr::bad(format!(
                "Invalid page size specified: '{t}'. Must be between 1 and 999 inclusive."
            ))),
        }
    }

    /// `$count=true`, which needs `ConsistencyLevel: eventual`.
    pub fn count(&self, eventual: bool) -> GResult<bool> {
        match self.count.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("false") => Ok(false),
            Some("true") if eventual => Ok(true),
            Some("true") => Err(GErr::bad("$count is not currently supported.")),
            Some(_) => Err(GErr::bad(format!(
                "The value '{}' is not valid for the $count query option; it must be true or false.",
                self.count.as_deref().unwrap_or("")
            ))),
        }
    }

    /// The query string for a link: every option as given except the skip and delta tokens,
    /// then `extra`.
    pub fn link_query(&self, extra: Option<(&str, &str)>) -> String {
        let mut parts: Vec<String> = self
            .pairs
            .iter()
            .filter(|(k, _)| k != "$skiptoken" && k != "$deltatoken")
            .map(|(k, v)| format!("{}={}", super::pct_encode(k), super::pct_encode(v)))
            .collect();
        if let Some((k, v)) = extra {
            parts.push(format!("{k}={}", super::pct_encode(v)));
        }
        parts.join("&")
    }
}

/// A `$select` list (canonical names, `id` first) or the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Sel {
    Default,
    List(Vec<String>),
}

impl Sel {
    /// Parses `$select` for `kind`; `members` is allowed when `allow_members` (groups delta).
    pub fn parse(raw: Option<&str>, kind: Kind, exts: &BTreeMap<String, String>, allow_members: bool) -> GResult<Sel> {
        let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
            return Ok(Sel::Default);
        };
        let mut out = vec!["id".to_string()];
        for p in raw.split(',').map(str::trim) {
            if p.is_empty() {
                return Err(GErr::bad(format!(
                    "Syntax error: an empty term is not valid in the $select expression '{raw}'."
                )));
            }
            let name = if allow_members && p.eq_ignore_ascii_case("members") {
                Some("members".to_string())
            } else {
                canonical(kind, p, exts)
            };
            let Some(name) = name else {
                return Err(GErr::bad(format!(
                    "Could not find a property named '{p}' on type '{}'.",
                    kind.type_name()
                )));
            };
            if !out.contains(&name) {
                out.push(name);
            }
        }
        Ok(Sel::List(out))
    }

    /// The names to render for an object of `kind` (`members` excluded).
    pub fn names(&self, kind: Kind) -> Vec<&str> {
        match self {
            Sel::Default => kind.defaults().to_vec(),
            Sel::List(l) => l.iter().map(String::as_str).filter(|n| *n != "members").collect(),
        }
    }

    /// Whether `members` was selected.
    pub fn has_members(&self) -> bool {
        matches!(self, Sel::List(l) if l.iter().any(|n| n == "members"))
    }

    /// `(a,b)` for `@odata.context`, or nothing for the defaults.
    pub fn context(&self) -> String {
        match self {
            Sel::Default => String::new(),
            Sel::List(l) => format!("({})", l.join(",")),
        }
    }

    /// The list stored in delta tokens (empty = defaults).
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Sel::Default => Vec::new(),
            Sel::List(l) => l.clone(),
        }
    }

    /// The inverse of `to_vec`.
    pub fn from_vec(v: Vec<String>) -> Sel {
        if v.is_empty() { Sel::Default } else { Sel::List(v) }
    }
}

/// Renders the named properties of an object. Absent ones are skipped; with `omit_unset`
/// (delta), null ones and empty collections too.
pub(super) fn render<F: Fields>(o: &F, names: &[&str], omit_unset: bool) -> Map<String, Value> {
    let mut m = Map::new();
    for n in names {
        let v = o.field(n);
        match v {
            FVal::Absent => continue,
            FVal::Null if omit_unset => continue,
            FVal::Coll(c) if omit_unset && c.is_empty() => continue,
            _ => {}
        }
        m.insert(n.to_string(), v.to_json());
    }
    m
}

/// A literal in a filter.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Lit {
    /// A string, as written and lower-cased.
    Str(String, String),
    Bool(bool),
    Null,
}

/// A parsed `$filter`.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Eq(String, Lit),
    Ne(String, Lit),
    In(String, Vec<Lit>),
    StartsWith(String, String),
    EndsWith(String, String),
}

fn ieq(s: &str, lower: &str) -> bool {
    s.chars().flat_map(char::to_lowercase).eq(lower.chars())
}

fn lit_eq(v: FVal<'_>, l: &Lit) -> bool {
    match (v, l) {
        (FVal::Null | FVal::Absent, Lit::Null) => true,
        (FVal::Str(s), Lit::Str(_, lower)) => ieq(s, lower),
        (FVal::Bool(b), Lit::Bool(x)) => b == *x,
        (FVal::Json(j), Lit::Str(_, lower)) => ieq(&j.to_string(), lower),
        _ => false,
    }
}

impl Filter {
    /// Whether an object matches.
    pub fn eval<F: Fields>(&self, o: &F) -> bool {
        match self {
            Filter::And(a, b) => a.eval(o) && b.eval(o),
            Filter::Or(a, b) => a.eval(o) || b.eval(o),
            Filter::Not(a) => !a.eval(o),
            Filter::Eq(p, l) => lit_eq(o.field(p), l),
            Filter::Ne(p, l) => !lit_eq(o.field(p), l),
            Filter::In(p, ls) => {
                let v = o.field(p);
                ls.iter().any(|l| lit_eq(v, l))
            }
            Filter::StartsWith(p, lower) => match o.field(p) {
                FVal::Str(s) => {
                    let mut it = s.chars().flat_map(char::to_lowercase);
                    lower.chars().all(|c| it.next() == Some(c))
                }
                _ => false,
            },
            Filter::EndsWith(p, lower) => match o.field(p) {
                FVal::Str(s) => s.to_lowercase().ends_with(lower.as_str()),
                _ => false,
            },
        }
    }

    fn first_prop(&self) -> &str {
        match self {
            Filter::And(a, _) | Filter::Or(a, _) | Filter::Not(a) => a.first_prop(),
            Filter::Eq(p, _)
            | Filter::Ne(p, _)
            | Filter::In(p, _)
            | Filter::StartsWith(p, _)
            | Filter::EndsWith(p, _) => p,
        }
    }

    /// The ids an object must have to match (from `id eq`/`id in` clauses at the top of the
    /// filter, through `and` and `or`), or `None` when the filter does not pin them.
    pub fn id_candidates(&self) -> Option<BTreeSet<String>> {
        match self {
            Filter::Eq(p, Lit::Str(raw, _)) if p == "id" => Some(BTreeSet::from([raw.clone()])),
            Filter::In(p, lits) if p == "id" => Some(
                lits.iter()
                    .filter_map(|l| match l {
                        Lit::Str(raw, _) => Some(raw.clone()),
                        _ => None,
                    })
                    .collect(),
            ),
            Filter::Or(a, b) => {
                let mut c = a.id_candidates()?;
                c.extend(b.id_candidates()?);
                Some(c)
            }
            Filter::And(a, b) => match (a.id_candidates(), b.id_candidates()) {
                (Some(x), Some(y)) => Some(x.intersection(&y).cloned().collect()),
                (x, y) => x.or(y),
            },
            _ => None,
        }
    }

    /// The ids of `id eq 'a' or id eq 'b' …`, or `None` for any other shape.
    pub fn id_list(&self) -> Option<Vec<String>> {
        match self {
            Filter::Or(a, b) => {
                let mut v = a.id_list()?;
                v.extend(b.id_list()?);
                Some(v)
            }
            Filter::Eq(p, Lit::Str(raw, _)) if p == "id" => Some(vec![raw.clone()]),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    LParen,
    RParen,
    Comma,
}

/// Splits a filter into tokens with their (character) positions.
fn tokenize(src: &str) -> GResult<Vec<(usize, Tok)>> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => {
                out.push((start, Tok::LParen));
                i += 1;
            }
            ')' => {
                out.push((start, Tok::RParen));
                i += 1;
            }
            ',' => {
                out.push((start, Tok::Comma));
                i += 1;
            }
            '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(GErr::bad(format!(
                                "Syntax error: unterminated string literal at position {start} in '{src}'."
                            )));
                        }
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            s.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push((start, Tok::Str(s)));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | '.')) {
                    i += 1;
                }
                out.push((start, Tok::Ident(chars[start..i].iter().collect())));
            }
            c if c.is_ascii_digit() || c == '-' => {
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '.' | '-' | ':')) {
                    i += 1;
                }
                out.push((start, Tok::Num(chars[start..i].iter().collect())));
            }
            other => {
                return Err(GErr::bad(format!(
                    "Syntax error: character '{other}' is not valid at position {start} in '{src}'."
                )));
            }
        }
    }
    Ok(out)
}

/// A parsed filter and the property of its first clause that needs an advanced query.
#[derive(Debug)]
pub(super) struct Parsed {
    pub expr: Filter,
    pub advanced: Option<String>,
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<(usize, Tok)>,
    at: usize,
    kind: Kind,
    exts: &'a BTreeMap<String, String>,
    advanced: Option<String>,
    depth: usize,
    clauses: usize,
}

/// Values an `in` list may hold.
const MAX_IN: usize = 15;
/// Nesting depth of parentheses and `not`, so deep input cannot exhaust the stack.
const MAX_DEPTH: usize = 64;
/// Clauses joined by `and`/`or` (each adds a level to the tree evaluation recurses through).
const MAX_CLAUSES: usize = 500;

impl Parser<'_> {
    fn pos(&self) -> usize {
        self.toks
            .get(self.at)
            .map_or_else(|| self.src.chars().count(), |(p, _)| *p)
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(_, t)| t)
    }

    fn syntax(&self, expected: &str) -> GErr {
        let found = match self.peek() {
            None => "the end of the filter".to_string(),
            Some(Tok::Ident(s) | Tok::Num(s)) => format!("'{s}'"),
            Some(Tok::Str(s)) => format!("'{}'", s.replace('\'', "''")),
            Some(Tok::LParen) => "'('".into(),
            Some(Tok::RParen) => "')'".into(),
            Some(Tok::Comma) => "','".into(),
        };
        GErr::bad(format!(
            "Syntax error at position {} in '{}': expected {expected}, found {found}.",
            self.pos(),
            self.src
        ))
    }

    fn keyword(&mut self, kw: &str) -> bool {
        if let Some(Tok::Ident(s)) = self.peek()
            && s.eq_ignore_ascii_case(kw)
        {
            self.at += 1;
            return true;
        }
        false
    }

    fn expect(&mut self, t: Tok, what: &str) -> GResult<()> {
        if self.peek() == Some(&t) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.syntax(what))
        }
    }

    fn joined(&mut self) -> GResult<()> {
        self.clauses += 1;
        if self.clauses > MAX_CLAUSES {
            return Err(GErr::bad(format!(
                "The filter has more than {MAX_CLAUSES} clauses at position {} in '{}'.",
                self.pos(),
                self.src
            )));
        }
        Ok(())
    }

    fn or(&mut self) -> GResult<Filter> {
        let mut l = self.and()?;
        while self.keyword("or") {
            self.joined()?;
            let r = self.and()?;
            l = Filter::Or(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn and(&mut self) -> GResult<Filter> {
        let mut l = self.unary()?;
        while self.keyword("and") {
            self.joined()?;
            let r = self.unary()?;
            l = Filter::And(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn unary(&mut self) -> GResult<Filter> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(GErr::bad(format!(
                "The filter is nested too deeply at position {} in '{}'.",
                self.pos(),
                self.src
            )));
        }
        let r = if self.keyword("not") {
            let inner = self.unary()?;
            self.mark_advanced(inner.first_prop().to_string());
            Ok(Filter::Not(Box::new(inner)))
        } else {
            self.primary()
        };
        self.depth -= 1;
        r
    }

    fn mark_advanced(&mut self, prop: String) {
        if self.advanced.is_none() {
            self.advanced = Some(prop);
        }
    }

    fn primary(&mut self) -> GResult<Filter> {
        let pos = self.pos();
        match self.peek().cloned() {
            Some(Tok::LParen) => {
                self.at += 1;
                let e = self.or()?;
                self.expect(Tok::RParen, "')'")?;
                Ok(e)
            }
            Some(Tok::Ident(name)) => {
                self.at += 1;
                if self.peek() == Some(&Tok::LParen) {
                    return self.function(&name, pos);
                }
                let prop = self.property(&name, pos)?;
                let op_pos = self.pos();
                let op = match self.peek() {
                    Some(Tok::Ident(op)) => op.to_ascii_lowercase(),
                    _ => return Err(self.syntax("an operator (eq, ne, in)")),
                };
                self.at += 1;
                match op.as_str() {
                    "eq" | "ne" => {
                        let lit = self.literal()?;
                        self.check_type(&prop, &lit, op_pos)?;
                        if op == "eq" {
                            Ok(Filter::Eq(prop, lit))
                        } else {
                            self.mark_advanced(prop.clone());
                            Ok(Filter::Ne(prop, lit))
                        }
                    }
                    "in" => {
                        self.expect(Tok::LParen, "'('")?;
                        let mut lits = vec![self.literal()?];
                        while self.peek() == Some(&Tok::Comma) {
                            self.at += 1;
                            lits.push(self.literal()?);
                        }
                        self.expect(Tok::RParen, "')' or ','")?;
                        if lits.len() > MAX_IN {
                            return Err(GErr::bad(format!(
                                "Too many values ({}) in the 'in' operator at position {op_pos} in '{}'; at most {MAX_IN} are allowed.",
                                lits.len(),
                                self.src
                            )));
                        }
                        for l in &lits {
                            self.check_type(&prop, l, op_pos)?;
                        }
                        Ok(Filter::In(prop, lits))
                    }
                    "gt" | "ge" | "lt" | "le" | "has" => Err(GErr::unsupported(format!(
                        "Unsupported or invalid query filter clause specified for property '{prop}' of resource '{}'.",
                        self.kind.resource()
                    ))),
                    _ => {
                        self.at -= 1;
                        Err(self.syntax("an operator (eq, ne, in)"))
                    }
                }
            }
            _ => Err(self.syntax("a property, a function, 'not' or '('")),
        }
    }

    fn function(&mut self, name: &str, pos: usize) -> GResult<Filter> {
        let f = name.to_ascii_lowercase();
        if f != "startswith" && f != "endswith" {
            return Err(GErr::bad(format!(
                "Unknown function '{name}' at position {pos} in '{}'.",
                self.src
            )));
        }
        self.at += 1; // (
        let ppos = self.pos();
        let pname = match self.peek().cloned() {
            Some(Tok::Ident(p)) => p,
            _ => return Err(self.syntax("a property")),
        };
        self.at += 1;
        let prop = self.property(&pname, ppos)?;
        self.expect(Tok::Comma, "','")?;
        let lit = match self.peek().cloned() {
            Some(Tok::Str(s)) => s,
            _ => return Err(self.syntax("a string literal")),
        };
        self.at += 1;
        self.expect(Tok::RParen, "')'")?;
        if !matches!(prop_type(&prop), PType::Str | PType::Any) {
            return Err(GErr::unsupported(format!(
                "Unsupported or invalid query filter clause specified for property '{prop}' of resource '{}'.",
                self.kind.resource()
            )));
        }
        let lower = lit.to_lowercase();
        if f == "startswith" {
            Ok(Filter::StartsWith(prop, lower))
        } else {
            self.mark_advanced(prop.clone());
            Ok(Filter::EndsWith(prop, lower))
        }
    }

    fn property(&self, name: &str, pos: usize) -> GResult<String> {
        canonical(self.kind, name, self.exts).ok_or_else(|| {
            GErr::bad(format!(
                "Could not find a property named '{name}' on type '{}' at position {pos} in '{}'.",
                self.kind.type_name(),
                self.src
            ))
        })
    }

    fn literal(&mut self) -> GResult<Lit> {
        let lit = match self.peek() {
            Some(Tok::Str(s)) => Lit::Str(s.clone(), s.to_lowercase()),
            Some(Tok::Ident(s)) if s == "true" => Lit::Bool(true),
            Some(Tok::Ident(s)) if s == "false" => Lit::Bool(false),
            Some(Tok::Ident(s)) if s == "null" => Lit::Null,
            Some(Tok::Num(n)) => {
                return Err(GErr::bad(format!(
                    "Numeric literal '{n}' at position {} in '{}' does not match any property type; quote strings.",
                    self.pos(),
                    self.src
                )));
            }
            _ => return Err(self.syntax("a literal ('string', true, false or null)")),
        };
        self.at += 1;
        Ok(lit)
    }

    fn check_type(&self, prop: &str, lit: &Lit, pos: usize) -> GResult<()> {
        let ok = match (prop_type(prop), lit) {
            (PType::Any, _) | (_, Lit::Null) => true,
            (PType::Str, Lit::Str(..)) | (PType::Bool, Lit::Bool(_)) => true,
            (PType::Coll, _) => {
                return Err(GErr::unsupported(format!(
                    "Unsupported or invalid query filter clause specified for property '{prop}' of resource '{}'.",
                    self.kind.resource()
                )));
            }
            _ => false,
        };
        if ok {
            return Ok(());
        }
        let (want, got) = match prop_type(prop) {
            PType::Bool => ("Edm.Boolean", "Edm.String"),
            _ => ("Edm.String", "Edm.Boolean"),
        };
        Err(GErr::bad(format!(
            "A binary operator with incompatible types was detected. Found operand types '{want}' and '{got}' for operator kind 'Equal' at position {pos} in '{}'.",
            self.src
        )))
    }
}

/// Parses a `$filter` over properties of `kind`.
pub(super) fn parse_filter(src: &str, kind: Kind, exts: &BTreeMap<String, String>) -> GResult<Parsed> {
    let mut p = Parser {
        src,
        toks: tokenize(src)?,
        at: 0,
        kind,
        exts,
        advanced: None,
        depth: 0,
        clauses: 0,
    };
    let expr = p.or()?;
    if p.at < p.toks.len() {
        return Err(p.syntax("'and', 'or' or the end of the filter"));
    }
    Ok(Parsed {
        expr,
        advanced: p.advanced,
    })
}

/// Parses `$filter` for a list request and checks the advanced-query rule: `ne`, `not` and
/// `endsWith` need `ConsistencyLevel: eventual` and `$count=true`.
pub(super) fn list_filter(
    src: Option<&str>,
    kind: Kind,
    exts: &BTreeMap<String, String>,
    eventual: bool,
    count: bool,
) -> GResult<Option<Filter>> {
    let Some(src) = src else {
        return Ok(None);
    };
    if src.trim().is_empty() {
        return Err(GErr::bad("The $filter query option is empty."));
    }
    let p = parse_filter(src, kind, exts)?;
    if let Some(prop) = p.advanced
        && !(eventual && count)
    {
        return Err(GErr::unsupported(format!(
            "Unsupported or invalid query filter clause specified for property '{prop}' of resource '{}'.",
            kind.resource()
        )));
    }
    Ok(Some(p.expr))
}

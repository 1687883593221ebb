//! The mapping: user field expressions, user scoping and group rules, parsed and validated
//! once from JSON, then applied to records.

use std::borrow::Cow;
use std::cell::RefCell;
use std::cmp::Ordering;
use std::fmt;

use regex::Regex;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value as Json;

use crate::eval::Expr;
use crate::functions::{ci_eq, truth};
use crate::regex_util;
use crate::value::{Attributes, Value, lookup_pairs, quote};

/// A user as the mapping sees it: the fields of the WIT `user` record except the id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// The login name the source proposes.
    pub username: String,
    /// The email address, if any.
    pub email: Option<String>,
    /// The display name, if any.
    pub display_name: Option<String>,
    /// False when the identity provider says the account is disabled.
    pub active: bool,
    /// Raw attributes (name, value); a multi-valued attribute appears once per value.
    pub attributes: Vec<(String, String)>,
}

/// A user the mapping reads without owning it: [`Record`], or [`RecordView`] over borrowed
/// strings (a packed batch).
pub trait UserRecord: Attributes {
    /// False when the identity provider says the account is disabled.
    fn active(&self) -> bool;
}

/// A user's fields borrowed from elsewhere (a transform's input buffer): what the mapping reads
/// when it should copy nothing it does not change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordView<'a> {
    /// The login name the source proposes.
    pub username: &'a str,
    /// The email address, if any.
    pub email: Option<&'a str>,
    /// The display name, if any.
    pub display_name: Option<&'a str>,
    /// False when the identity provider says the account is disabled.
    pub active: bool,
    /// Raw attributes (name, value).
    pub attributes: Vec<(&'a str, &'a str)>,
}

/// `[username]`, `[email]`, `[display_name]` and `[active]` read the record's fields (as the
/// connector or an earlier transform set them); any other name reads the raw attributes.
/// Names compare ASCII case-insensitively.
fn lookup_user<'a, S: AsRef<str>>(
    name: &str,
    username: &'a str,
    email: Option<&'a str>,
    display_name: Option<&'a str>,
    active: bool,
    attributes: &'a [(S, S)],
) -> Value<'a> {
    if name.eq_ignore_ascii_case("username") {
        Value::str(username)
    } else if name.eq_ignore_ascii_case("email") {
        email.map_or(Value::Null, Value::str)
    } else if name.eq_ignore_ascii_case("display_name") {
        display_name.map_or(Value::Null, Value::str)
    } else if name.eq_ignore_ascii_case("active") {
        Value::Bool(active)
    } else {
        lookup_pairs(attributes, name)
    }
}

impl Attributes for Record {
    fn lookup(&self, name: &str) -> Value<'_> {
        lookup_user(
            name,
            &self.username,
            self.email.as_deref(),
            self.display_name.as_deref(),
            self.active,
            &self.attributes,
        )
    }
}

impl UserRecord for Record {
    fn active(&self) -> bool {
        self.active
    }
}

impl Attributes for RecordView<'_> {
    fn lookup(&self, name: &str) -> Value<'_> {
        lookup_user(
            name,
            self.username,
            self.email,
            self.display_name,
            self.active,
            &self.attributes,
        )
    }
}

impl UserRecord for RecordView<'_> {
    fn active(&self) -> bool {
        self.active
    }
}

/// A group as the mapping sees it: the fields of the WIT `group` record except the id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupRecord {
    /// The group's name.
    pub name: String,
    /// Its description, if any.
    pub description: Option<String>,
    /// Raw attributes (name, value).
    pub attributes: Vec<(String, String)>,
}

/// `[name]` and `[description]` read the fields; any other name reads the raw attributes.
impl Attributes for GroupRecord {
    fn lookup(&self, name: &str) -> Value<'_> {
        if name.eq_ignore_ascii_case("name") {
            Value::str(&self.name)
        } else if name.eq_ignore_ascii_case("description") {
            self.description.as_deref().map_or(Value::Null, Value::str)
        } else {
            lookup_pairs(&self.attributes, name)
        }
    }
}

/// What became of one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The user is kept, as mapped; `reason` names the scope rule and the fields applied.
    Keep {
        /// The mapped user.
        user: Record,
        /// e.g. `scope rule 'engineering'; mapped username, email`.
        reason: String,
    },
    /// The user is filtered out.
    Drop {
        /// e.g. `out of scope: no scoping rule matched`.
        reason: String,
    },
    /// An expression failed for this user: the user is skipped, the run goes on.
    Failed {
        /// e.g. `user.username: Left: the count must be a whole number, got "a"`.
        error: String,
    },
}

/// What became of one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupOutcome {
    /// The group becomes `groups`: none (filtered out), one (kept or renamed) or several
    /// (fan-out). Each keeps the input's description and attributes.
    Mapped {
        /// The resulting groups.
        groups: Vec<GroupRecord>,
        /// e.g. `rule 1: ^AAD-(.*)$ → $1`, `excluded by 'bb-legacy'`.
        reason: String,
    },
    /// The rules produced an unusable result (an empty name): the group is skipped.
    Failed {
        /// What went wrong, naming the rule.
        error: String,
    },
}

/// A mapping that does not parse or validate, with the path of the offending field
/// (`user.display_name`, `groups.rules[2].match`, `scope.rules[0].all[1].op`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingError {
    /// Where in the mapping; empty for a JSON syntax error.
    pub path: String,
    /// What is wrong; expression errors start with `line L, column C:`.
    pub message: String,
}

impl fmt::Display for MappingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for MappingError {}

fn err(path: impl Into<String>, message: impl Into<String>) -> MappingError {
    MappingError {
        path: path.into(),
        message: message.into(),
    }
}

/// Deserialises one part of the mapping, naming its path in the error.
fn part<T: DeserializeOwned>(path: &str, v: Json) -> Result<T, MappingError> {
    serde_json::from_value(v).map_err(|e| err(path, e.to_string()))
}

/// A parsed, validated mapping. Cheap to apply; build it once per settings string.
#[derive(Debug, Default)]
pub struct Mapping {
    username: Option<Expr>,
    email: Option<Expr>,
    display_name: Option<Expr>,
    active: Option<Expr>,
    /// Attributes to set, in name order; `None` removes the attribute.
    attributes: Vec<(String, Option<Expr>)>,
    scope: Option<Scope>,
    groups: Groups,
    /// `mapped username, email …`, or empty when no field is mapped.
    fields_reason: String,
    /// How many distinct attribute names the user expressions and scope read (their slots).
    slots: usize,
}

#[derive(Debug)]
struct Scope {
    rules: Vec<ScopeRule>,
    include_inactive: bool,
}

#[derive(Debug)]
struct ScopeRule {
    /// The kept user's full reason when this rule admits it.
    reason: String,
    all: Vec<Condition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equals,
    NotEquals,
    RegexMatch,
    NotRegexMatch,
    IsNull,
    IsNotNull,
    GreaterThan,
    LessThan,
    IsTrue,
    IsFalse,
}

/// The operator names, as written in a mapping.
const OPS: &[(&str, Op)] = &[
    ("equals", Op::Equals),
    ("not-equals", Op::NotEquals),
    ("regex-match", Op::RegexMatch),
    ("not-regex-match", Op::NotRegexMatch),
    ("is-null", Op::IsNull),
    ("is-not-null", Op::IsNotNull),
    ("greater-than", Op::GreaterThan),
    ("less-than", Op::LessThan),
    ("is-true", Op::IsTrue),
    ("is-false", Op::IsFalse),
];

#[derive(Debug)]
struct Condition {
    attribute: String,
    /// The attribute's slot ([`Attributes::lookup_slot`]).
    slot: usize,
    op: Op,
    value: String,
    number: Option<f64>,
    regex: Option<Regex>,
}

#[derive(Debug, Default)]
struct Groups {
    include: Vec<NamePattern>,
    exclude: Vec<NamePattern>,
    rules: Vec<GroupRule>,
    skip_unmatched: bool,
    case: Case,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Case {
    Lower,
    Upper,
    #[default]
    Keep,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Unmatched {
    #[default]
    Pass,
    Skip,
}

/// A group name to match: a plain name (case-insensitive) or a regex.
#[derive(Debug)]
struct NamePattern {
    written: String,
    kind: NameKind,
}

#[derive(Debug)]
enum NameKind {
    Name(String),
    Regex(Regex),
}

/// Characters that make an include/exclude entry a regex (`.` alone does not: group names
/// often contain dots).
const REGEX_CHARS: &[char] = &['^', '$', '*', '+', '?', '(', ')', '[', ']', '{', '}', '|', '\\'];

impl NamePattern {
    fn parse(path: &str, written: &str) -> Result<Self, MappingError> {
        let kind = if let Some(re) = written.strip_prefix("re:") {
            NameKind::Regex(regex_util::compile_ci(re).map_err(|e| err(path, e))?)
        } else if let Some(name) = written.strip_prefix("name:") {
            NameKind::Name(name.to_string())
        } else if written.contains(REGEX_CHARS) {
            NameKind::Regex(regex_util::compile_ci(written).map_err(|e| err(path, e))?)
        } else {
            NameKind::Name(written.to_string())
        };
        Ok(NamePattern {
            written: written.to_string(),
            kind,
        })
    }

    fn matches(&self, name: &str) -> bool {
        match &self.kind {
            NameKind::Name(n) => ci_eq(n, name),
            NameKind::Regex(re) => re.is_match(name),
        }
    }
}

#[derive(Debug)]
struct GroupRule {
    label: String,
    matcher: RuleMatch,
    to: Vec<String>,
}

#[derive(Debug)]
enum RuleMatch {
    Regex(Regex),
    Name(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeSpec {
    #[serde(default)]
    rules: Vec<Json>,
    #[serde(default = "yes")]
    include_inactive: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeRuleSpec {
    name: Option<String>,
    #[serde(default)]
    all: Vec<Json>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConditionSpec {
    attribute: String,
    op: String,
    #[serde(default)]
    value: Json,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupsSpec {
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    rules: Vec<Json>,
    #[serde(default)]
    unmatched: Unmatched,
    #[serde(default)]
    case: Case,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupRuleSpec {
    #[serde(rename = "match")]
    pattern: Option<String>,
    name: Option<String>,
    to: Vec<String>,
}

/// A user field: an expression string, or a JSON boolean/number as a constant; null or
/// absent leaves the field as it is.
fn field_expr(path: &str, v: Option<Json>) -> Result<Option<Expr>, MappingError> {
    let text = match v {
        None | Some(Json::Null) => return Ok(None),
        Some(Json::String(s)) => s,
        Some(Json::Bool(b)) => b.to_string(),
        Some(Json::Number(n)) => n.to_string(),
        Some(other) => return Err(err(path, format!("expected an expression (a string), found {other}"))),
    };
    Expr::parse(&text).map(Some).map_err(|e| err(path, e.to_string()))
}

fn parse_op(path: &str, written: &str) -> Result<Op, MappingError> {
    let norm = written.trim().to_ascii_lowercase().replace([' ', '_'], "-");
    OPS.iter().find(|(n, _)| *n == norm).map(|(_, op)| *op).ok_or_else(|| {
        let names: Vec<&str> = OPS.iter().map(|(n, _)| *n).collect();
        err(
            path,
            format!(
                "unknown operator {}; expected one of {}",
                quote(written),
                names.join(", ")
            ),
        )
    })
}

impl Mapping {
    /// Parses and validates a mapping written in JSON: every expression and regex is compiled
    /// here, so applying the mapping can only fail on data. Blank input is the empty mapping
    /// (users and groups pass unchanged).
    pub fn parse(json: &str) -> Result<Mapping, MappingError> {
        if json.trim().is_empty() {
            return Ok(Mapping::default());
        }
        let root: Json = serde_json::from_str(json).map_err(|e| err("", format!("invalid mapping JSON: {e}")))?;
        Mapping::from_json(root)
    }

    /// Like [`Mapping::parse`], from a JSON value (e.g. one converted from TOML).
    pub fn from_json(root: Json) -> Result<Mapping, MappingError> {
        let Json::Object(mut root) = root else {
            return Err(err("", "the mapping must be a JSON object with user, scope and groups"));
        };
        let mut m = Mapping::default();
        if let Some(user) = root.remove("user") {
            m.parse_user(user)?;
        }
        if let Some(scope) = root.remove("scope") {
            m.scope = Some(parse_scope(scope, &m.fields_reason)?);
        }
        if let Some(groups) = root.remove("groups") {
            m.groups = parse_groups(groups)?;
        }
        if let Some(key) = root.keys().next() {
            return Err(err(key.as_str(), "unknown field; expected user, scope or groups"));
        }
        m.number_attributes();
        Ok(m)
    }

    /// Numbers the attribute names every user expression and scope condition reads, so that
    /// [`Mapping::decide`] looks each one up once per user however many rules read it.
    fn number_attributes(&mut self) {
        let mut names = Vec::new();
        let exprs = [
            &mut self.username,
            &mut self.email,
            &mut self.display_name,
            &mut self.active,
        ];
        for e in exprs.into_iter().flatten() {
            e.number_attributes(&mut names);
        }
        for e in self.attributes.iter_mut().filter_map(|(_, e)| e.as_mut()) {
            e.number_attributes(&mut names);
        }
        for rule in self.scope.iter_mut().flat_map(|s| s.rules.iter_mut()) {
            for c in &mut rule.all {
                c.slot = crate::eval::slot_of(&c.attribute, &mut names);
            }
        }
        self.slots = names.len();
    }

    fn parse_user(&mut self, user: Json) -> Result<(), MappingError> {
        let Json::Object(mut user) = user else {
            return Err(err("user", "expected an object of field expressions"));
        };
        self.username = field_expr("user.username", user.remove("username"))?;
        self.email = field_expr("user.email", user.remove("email"))?;
        self.display_name = field_expr("user.display_name", user.remove("display_name"))?;
        self.active = field_expr("user.active", user.remove("active"))?;
        match user.remove("attributes") {
            None | Some(Json::Null) => {}
            Some(Json::Object(attrs)) => {
                for (name, v) in attrs {
                    let path = format!("user.attributes.{name}");
                    if name.trim().is_empty() {
                        return Err(err(path, "an attribute needs a name"));
                    }
                    let expr = field_expr(&path, Some(v))?;
                    self.attributes.push((name, expr));
                }
            }
            Some(other) => {
                return Err(err(
                    "user.attributes",
                    format!("expected an object of attribute name → expression, found {other}"),
                ));
            }
        }
        if let Some(key) = user.keys().next() {
            return Err(err(
                format!("user.{key}"),
                "unknown field; expected username, email, display_name, active or attributes",
            ));
        }
        let mut fields: Vec<String> = [
            ("username", &self.username),
            ("email", &self.email),
            ("display_name", &self.display_name),
            ("active", &self.active),
        ]
        .iter()
        .filter(|(_, e)| e.is_some())
        .map(|(n, _)| n.to_string())
        .collect();
        fields.extend(self.attributes.iter().map(|(n, _)| format!("attributes.{n}")));
        if !fields.is_empty() {
            self.fields_reason = format!("mapped {}", fields.join(", "));
        }
        Ok(())
    }

    /// Applies scope and field expressions to a user. Pure; evaluation errors concern this
    /// user only.
    pub fn map_user(&self, user: &Record) -> Outcome {
        match self.decide(user) {
            Verdict::Keep { reason, changes } => {
                let mut out = user.clone();
                changes.apply(&mut out);
                Outcome::Keep {
                    user: out,
                    reason: reason.into_owned(),
                }
            }
            Verdict::Drop { reason } => Outcome::Drop {
                reason: reason.into_owned(),
            },
            Verdict::Failed { error } => Outcome::Failed { error },
        }
    }

    /// [`Mapping::map_user`] taking the record by value, so nothing is copied that is not
    /// changed.
    pub fn map_user_owned(&self, mut user: Record) -> Outcome {
        match self.decide(&user) {
            Verdict::Keep { reason, changes } => {
                changes.apply(&mut user);
                Outcome::Keep {
                    user,
                    reason: reason.into_owned(),
                }
            }
            Verdict::Drop { reason } => Outcome::Drop {
                reason: reason.into_owned(),
            },
            Verdict::Failed { error } => Outcome::Failed { error },
        }
    }

    /// What the mapping decides for `user`, as the changes to make rather than a new record:
    /// a caller holding borrowed fields copies only what changed.
    /// [`Mapping::map_user`] is this plus [`Changes::apply`].
    pub fn decide<U: UserRecord + ?Sized>(&self, user: &U) -> Verdict<'_> {
        let memo = Memo {
            user,
            values: RefCell::new(vec![None; self.slots]),
        };
        match self.decide_inner(&memo) {
            Ok(Decision::Keep(reason, changes)) => Verdict::Keep { reason, changes },
            Ok(Decision::Drop(reason)) => Verdict::Drop { reason },
            Err(error) => Verdict::Failed { error },
        }
    }

    fn decide_inner<U: UserRecord + ?Sized>(&self, user: &U) -> Result<Decision<'_>, String> {
        let reason = match &self.scope {
            None => None,
            Some(scope) => {
                if !scope.include_inactive && !user.active() {
                    return Ok(Decision::Drop(Cow::Borrowed(
                        "out of scope: inactive users are excluded (scope.include_inactive is false)",
                    )));
                }
                if scope.rules.is_empty() {
                    None
                } else {
                    match scope.rules.iter().find(|r| r.all.iter().all(|c| c.holds(user))) {
                        Some(rule) => Some(Cow::Borrowed(rule.reason.as_str())),
                        None => {
                            return Ok(Decision::Drop(Cow::Borrowed("out of scope: no scoping rule matched")));
                        }
                    }
                }
            }
        };
        let reason = reason.unwrap_or(Cow::Borrowed(if self.fields_reason.is_empty() {
            "no user mapping; unchanged"
        } else {
            self.fields_reason.as_str()
        }));
        let mut c = Changes::default();
        if let Some(e) = &self.username {
            let v = eval_text("user.username", e, user)?;
            match v {
                Some(s) if !s.is_empty() => c.username = Some(s),
                Some(_) => return Err("user.username: evaluated to an empty string; a user needs a username".into()),
                None => return Err("user.username: evaluated to null; a user needs a username".into()),
            }
        }
        if let Some(e) = &self.email {
            c.email = Some(eval_text("user.email", e, user)?.filter(|s| !s.is_empty()));
        }
        if let Some(e) = &self.display_name {
            c.display_name = Some(eval_text("user.display_name", e, user)?.filter(|s| !s.is_empty()));
        }
        if let Some(e) = &self.active {
            let v = e.eval(user).map_err(|e| format!("user.active: {e}"))?;
            if v.is_null() {
                return Err("user.active: evaluated to null; expected true or false".into());
            }
            c.active = Some(truth(&v).map_err(|got| format!("user.active: expected true or false, got {got}"))?);
        }
        for (name, e) in &self.attributes {
            let values = match e {
                None => Vec::new(),
                Some(e) => match e.eval(user).map_err(|err| format!("user.attributes.{name}: {err}"))? {
                    Value::Null => Vec::new(),
                    Value::List(l) => l.into_iter().filter(|s| !s.is_empty()).map(Cow::into_owned).collect(),
                    other => match other.scalar_text() {
                        Ok(Some(t)) if !t.is_empty() => vec![t.into_owned()],
                        _ => Vec::new(),
                    },
                },
            };
            c.attributes.push((name, values));
        }
        Ok(Decision::Keep(reason, c))
    }

    /// Applies include, exclude and the group rules to a group. Pure.
    pub fn map_group(&self, group: &GroupRecord) -> GroupOutcome {
        match self.groups.names(&group.name) {
            Ok((names, reason)) => GroupOutcome::Mapped {
                groups: names
                    .into_iter()
                    .map(|name| GroupRecord {
                        name,
                        description: group.description.clone(),
                        attributes: group.attributes.clone(),
                    })
                    .collect(),
                reason,
            },
            Err(error) => GroupOutcome::Failed { error },
        }
    }

    /// The Bitbucket group names a source group called `name` becomes, with the reason.
    /// `Err` when a rule produced an empty name.
    pub fn map_group_name(&self, name: &str) -> Result<(Vec<String>, String), String> {
        self.groups.names(name)
    }
}

/// A user whose attribute lookups by slot are remembered for one decision.
struct Memo<'u, U: ?Sized> {
    user: &'u U,
    values: RefCell<Vec<Option<Value<'u>>>>,
}

impl<U: UserRecord + ?Sized> Attributes for Memo<'_, U> {
    fn lookup(&self, name: &str) -> Value<'_> {
        self.user.lookup(name)
    }

    fn lookup_slot(&self, slot: usize, name: &str) -> Value<'_> {
        let mut values = self.values.borrow_mut();
        match values.get_mut(slot) {
            Some(Some(v)) => v.clone(),
            Some(empty) => empty.insert(self.user.lookup(name)).clone(),
            None => self.user.lookup(name),
        }
    }
}

impl<U: UserRecord + ?Sized> UserRecord for Memo<'_, U> {
    fn active(&self) -> bool {
        self.user.active()
    }
}

enum Decision<'m> {
    Keep(Cow<'m, str>, Changes<'m>),
    Drop(Cow<'m, str>),
}

/// What the mapping decided for one user (see [`Mapping::decide`]).
#[derive(Debug)]
pub enum Verdict<'m> {
    /// Kept, with these changes; `reason` as in [`Outcome::Keep`].
    Keep {
        /// Which rule decided (borrowed from the mapping: nothing to copy per user).
        reason: Cow<'m, str>,
        /// What to change.
        changes: Changes<'m>,
    },
    /// Filtered out.
    Drop {
        /// Why.
        reason: Cow<'m, str>,
    },
    /// An expression failed for this user.
    Failed {
        /// Which field, and why.
        error: String,
    },
}

/// The owned results of a user's field expressions, applied after all were evaluated (every
/// expression sees the input record). A field left `None` keeps the input's value.
#[derive(Debug, Default)]
pub struct Changes<'m> {
    /// The new username.
    pub username: Option<String>,
    /// The new email (`Some(None)`: none).
    pub email: Option<Option<String>>,
    /// The new display name (`Some(None)`: none).
    pub display_name: Option<Option<String>>,
    /// The new active flag.
    pub active: Option<bool>,
    /// Attributes replaced: every value of the name (ASCII case-insensitive) gives way to these.
    pub attributes: Vec<(&'m str, Vec<String>)>,
}

impl<'m> Changes<'m> {
    /// Applies the changes to an owned record.
    pub fn apply(self, user: &mut Record) {
        if let Some(u) = self.username {
            user.username = u;
        }
        if let Some(e) = self.email {
            user.email = e;
        }
        if let Some(d) = self.display_name {
            user.display_name = d;
        }
        if let Some(a) = self.active {
            user.active = a;
        }
        for (name, values) in self.attributes {
            user.attributes.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            user.attributes
                .extend(values.into_iter().map(|v| (name.to_string(), v)));
        }
    }
}

/// Evaluates a field expression to one owned string (`None` for null or an empty list).
fn eval_text<U: UserRecord + ?Sized>(path: &str, e: &Expr, user: &U) -> Result<Option<String>, String> {
    let v = e.eval(user).map_err(|e| format!("{path}: {e}"))?;
    match v {
        Value::Str(s) => Ok(Some(s.into_owned())),
        other => other
            .scalar_text()
            .map(|t| t.map(Cow::into_owned))
            .map_err(|kind| format!("{path}: evaluated to {kind}; pick one with First(), Item() or Join()")),
    }
}

fn parse_scope(v: Json, fields_reason: &str) -> Result<Scope, MappingError> {
    let spec: ScopeSpec = part("scope", v)?;
    let mut rules = Vec::with_capacity(spec.rules.len());
    for (i, r) in spec.rules.into_iter().enumerate() {
        let path = format!("scope.rules[{i}]");
        let r: ScopeRuleSpec = part(&path, r)?;
        let mut all = Vec::with_capacity(r.all.len());
        for (j, c) in r.all.into_iter().enumerate() {
            let path = format!("{path}.all[{j}]");
            let c: ConditionSpec = part(&path, c)?;
            all.push(Condition::parse(&path, c)?);
        }
        let label = match &r.name {
            Some(n) => format!("scope rule {}", quote_name(n)),
            None => format!("scope rule {}", i + 1),
        };
        let reason = if fields_reason.is_empty() {
            label
        } else {
            format!("{label}; {fields_reason}")
        };
        rules.push(ScopeRule { reason, all });
    }
    Ok(Scope {
        rules,
        include_inactive: spec.include_inactive,
    })
}

/// `'name'`, as reasons quote rule names and patterns.
fn quote_name(n: &str) -> String {
    format!("'{n}'")
}

impl Condition {
    fn parse(path: &str, c: ConditionSpec) -> Result<Self, MappingError> {
        let op = parse_op(&format!("{path}.op"), &c.op)?;
        if c.attribute.trim().is_empty() {
            return Err(err(format!("{path}.attribute"), "expected an attribute name"));
        }
        let needs_value = !matches!(op, Op::IsNull | Op::IsNotNull | Op::IsTrue | Op::IsFalse);
        let value = match c.value {
            Json::Null => None,
            Json::String(s) => Some(s),
            Json::Number(n) => Some(n.to_string()),
            Json::Bool(b) => Some(b.to_string()),
            other => {
                return Err(err(
                    format!("{path}.value"),
                    format!("expected a string or a number, found {other}"),
                ));
            }
        };
        let value = match (needs_value, value) {
            (true, Some(v)) => v,
            (true, None) => return Err(err(format!("{path}.value"), format!("operator {} needs a value", c.op))),
            (false, Some(_)) => {
                return Err(err(
                    format!("{path}.value"),
                    format!("operator {} takes no value", c.op),
                ));
            }
            (false, None) => String::new(),
        };
        let regex = match op {
            Op::RegexMatch | Op::NotRegexMatch => {
                Some(regex_util::compile(&value).map_err(|e| err(format!("{path}.value"), e))?)
            }
            _ => None,
        };
        Ok(Condition {
            slot: crate::parse::NO_SLOT,
            attribute: c.attribute.trim().to_string(),
            op,
            number: value.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
            value,
            regex,
        })
    }

    fn holds<U: UserRecord + ?Sized>(&self, user: &U) -> bool {
        let v = user.lookup_slot(self.slot, &self.attribute);
        let any = |f: &dyn Fn(&str) -> bool| match &v {
            Value::Null => false,
            Value::Str(s) => f(s),
            Value::Bool(b) => f(if *b { "true" } else { "false" }),
            Value::List(l) => l.iter().any(|s| f(s)),
            Value::Num(n) => f(&crate::value::format_number(*n)),
        };
        let regex = || self.regex.as_ref().is_some_and(|re| any(&|s| re.is_match(s)));
        match self.op {
            Op::Equals => any(&|s| s == self.value),
            Op::NotEquals => !any(&|s| s == self.value),
            Op::RegexMatch => regex(),
            Op::NotRegexMatch => !regex(),
            Op::IsNull => !any(&|s| !s.is_empty()),
            Op::IsNotNull => any(&|s| !s.is_empty()),
            Op::GreaterThan => any(&|s| self.compare(s) == Some(Ordering::Greater)),
            Op::LessThan => any(&|s| self.compare(s) == Some(Ordering::Less)),
            Op::IsTrue => any(&|s| s.trim().eq_ignore_ascii_case("true")),
            Op::IsFalse => any(&|s| s.trim().eq_ignore_ascii_case("false")),
        }
    }

    /// `s` compared with the condition's value: as numbers when both are, else as strings.
    fn compare(&self, s: &str) -> Option<Ordering> {
        match (self.number, s.trim().parse::<f64>()) {
            (Some(b), Ok(a)) => a.partial_cmp(&b),
            _ => Some(s.cmp(&self.value)),
        }
    }
}

fn parse_groups(v: Json) -> Result<Groups, MappingError> {
    let spec: GroupsSpec = part("groups", v)?;
    let include = (spec.include.iter().enumerate())
        .map(|(i, p)| NamePattern::parse(&format!("groups.include[{i}]"), p))
        .collect::<Result<_, _>>()?;
    let exclude = (spec.exclude.iter().enumerate())
        .map(|(i, p)| NamePattern::parse(&format!("groups.exclude[{i}]"), p))
        .collect::<Result<_, _>>()?;
    let mut rules = Vec::with_capacity(spec.rules.len());
    for (i, r) in spec.rules.into_iter().enumerate() {
        let path = format!("groups.rules[{i}]");
        let r: GroupRuleSpec = part(&path, r)?;
        let targets = if r.to.is_empty() {
            "nothing (dropped)".to_string()
        } else {
            r.to.join(", ")
        };
        let (matcher, written) = match (r.pattern, r.name) {
            (Some(p), None) => {
                let re = regex_util::compile_ci(&p).map_err(|e| err(format!("{path}.match"), e))?;
                (RuleMatch::Regex(re), p)
            }
            (None, Some(n)) => (RuleMatch::Name(n.clone()), n),
            _ => {
                return Err(err(
                    path,
                    "a rule has either match (a regex) or name (a group name), not both",
                ));
            }
        };
        for (j, t) in r.to.iter().enumerate() {
            if t.trim().is_empty() {
                return Err(err(format!("{path}.to[{j}]"), "expected a group name"));
            }
        }
        rules.push(GroupRule {
            label: format!("rule {}: {written} → {targets}", i + 1),
            matcher,
            to: r.to,
        });
    }
    Ok(Groups {
        include,
        exclude,
        rules,
        skip_unmatched: spec.unmatched == Unmatched::Skip,
        case: spec.case,
    })
}

impl Groups {
    fn names(&self, name: &str) -> Result<(Vec<String>, String), String> {
        let mut prefix = String::new();
        if !self.include.is_empty() {
            match self.include.iter().find(|p| p.matches(name)) {
                Some(p) => prefix = format!("included by {}; ", quote_name(&p.written)),
                None => return Ok((Vec::new(), "not included: matches none of groups.include".into())),
            }
        }
        if let Some(p) = self.exclude.iter().find(|p| p.matches(name)) {
            return Ok((Vec::new(), format!("excluded by {}", quote_name(&p.written))));
        }
        let mut decided = None;
        for rule in &self.rules {
            let names: Option<Vec<String>> = match &rule.matcher {
                RuleMatch::Name(n) => ci_eq(n, name).then(|| rule.to.clone()),
                RuleMatch::Regex(re) => re.captures(name).map(|caps| {
                    (rule.to.iter())
                        .map(|t| {
                            let mut out = String::new();
                            caps.expand(t, &mut out);
                            out
                        })
                        .collect()
                }),
            };
            if let Some(names) = names {
                decided = Some((names, rule.label.as_str()));
                break;
            }
        }
        let (names, reason) = match decided {
            Some((names, label)) => (names, label),
            None if self.skip_unmatched => (Vec::new(), "no rule matched; skipped"),
            None => (vec![name.to_string()], "no rule matched; passed through"),
        };
        let mut out: Vec<String> = Vec::with_capacity(names.len());
        for n in names {
            let n = n.trim();
            if n.is_empty() {
                return Err(format!(
                    "{reason}: the result for {} is an empty group name",
                    quote(name)
                ));
            }
            let n = match self.case {
                Case::Keep => n.to_string(),
                Case::Lower => n.to_lowercase(),
                Case::Upper => n.to_uppercase(),
            };
            if !out.iter().any(|o| ci_eq(o, &n)) {
                out.push(n);
            }
        }
        Ok((out, format!("{prefix}{reason}")))
    }
}

//! The search restriction of `POST /search` (crowd-rest.md §4 "Search restriction"): null,
//! property and boolean restrictions, in XML (what Crowd's Java client sends) or JSON (the
//! `restriction-type` form other clients send), and how a user or group is matched against one.

use std::borrow::Cow;

use serde_json::Value;

use crate::date::parse_date;

/// Why a restriction was refused: the message a 400 ILLEGAL_ARGUMENT carries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(String);

fn bad(message: impl Into<String>) -> Malformed {
    Malformed(message.into())
}

/// How a property restriction compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `EXACTLY_MATCHES`.
    Exactly,
    /// `STARTS_WITH`.
    StartsWith,
    /// `CONTAINS`.
    Contains,
    /// `LESS_THAN`.
    Less,
    /// `GREATER_THAN`.
    Greater,
    /// `NULL`: the property is absent or empty.
    Null,
}

impl Mode {
    /// From its name (`EXACTLY_MATCHES`), in any case.
    pub fn parse(s: &str) -> Result<Mode, Malformed> {
        Ok(match s.trim().to_ascii_uppercase().as_str() {
            "EXACTLY_MATCHES" => Mode::Exactly,
            "STARTS_WITH" => Mode::StartsWith,
            "CONTAINS" => Mode::Contains,
            "LESS_THAN" => Mode::Less,
            "GREATER_THAN" => Mode::Greater,
            "NULL" => Mode::Null,
            other => {
                return Err(bad(format!(
                    "match-mode `{other}` is not one of EXACTLY_MATCHES, STARTS_WITH, CONTAINS, LESS_THAN, GREATER_THAN, NULL"
                )));
            }
        })
    }
}

/// A restriction's value, read as its declared type says (text lower-cased: names and values
/// compare case-insensitively, as in Crowd).
#[derive(Clone, Debug, PartialEq)]
pub enum Wanted {
    /// No value (`NULL`).
    None,
    /// A STRING, lower-cased.
    Text(String),
    /// A BOOLEAN.
    Flag(bool),
    /// A DATE, as epoch milliseconds.
    Date(i64),
}

/// How the parts of a boolean restriction combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logic {
    /// Every part selects.
    And,
    /// Some part selects.
    Or,
}

/// A search restriction.
#[derive(Clone, Debug, PartialEq)]
pub enum Restriction {
    /// `null-search-restriction`, or no body: everything.
    All,
    /// A property compared with a value.
    Property {
        /// The property (`name`, `email`, a custom attribute).
        name: String,
        /// How it compares.
        mode: Mode,
        /// What with.
        value: Wanted,
    },
    /// Parts combined with AND or OR.
    Boolean {
        /// AND or OR.
        logic: Logic,
        /// The parts.
        parts: Vec<Restriction>,
    },
}

/// A property of a user or group, as restrictions compare it.
pub enum Prop<'a> {
    /// A text (names and values compare case-insensitively).
    Text(&'a str),
    /// A multi-valued custom attribute: selected when one of its values is.
    Values(Cow<'a, [String]>),
    /// A flag (`active`).
    Flag(bool),
    /// A date, as epoch milliseconds.
    Date(i64),
    /// Not there: only `NULL` selects it.
    Absent,
}

/// What a restriction can be matched against: a user or a group, as each side keeps it.
pub trait Subject {
    /// The property `name` (Crowd's term keys: `name`, `email`, `firstName`, …).
    fn property(&self, name: &str) -> Prop<'_>;
}

fn text_matches(have: &str, mode: Mode, want: &str) -> bool {
    let have = have.to_lowercase();
    match mode {
        Mode::Exactly => have == want,
        Mode::StartsWith => have.starts_with(want),
        Mode::Contains => have.contains(want),
        Mode::Less => have.as_str() < want,
        Mode::Greater => have.as_str() > want,
        Mode::Null => have.is_empty(),
    }
}

impl Restriction {
    /// From a request body: XML, JSON, or nothing (everything).
    pub fn parse(body: &[u8]) -> Result<Restriction, Malformed> {
        let text = std::str::from_utf8(body).map_err(|_| bad("the search restriction is not UTF-8"))?;
        let text = text.trim();
        if text.is_empty() {
            return Ok(Restriction::All);
        }
        if text.starts_with('{') {
            let v: Value = serde_json::from_str(text)
                .map_err(|e| bad(format!("the search restriction is not valid JSON: {e}")))?;
            return Self::from_json(&v, 0);
        }
        let doc = roxmltree::Document::parse(text)
            .map_err(|e| bad(format!("the search restriction is not well-formed XML: {e}")))?;
        Self::from_xml(doc.root_element(), 0)
    }

    /// Whether this restriction selects everything (no need to look at each entity).
    pub fn is_all(&self) -> bool {
        matches!(self, Restriction::All)
    }

    fn from_xml(n: roxmltree::Node<'_, '_>, depth: usize) -> Result<Restriction, Malformed> {
        if depth > MAX_DEPTH {
            return Err(bad(format!("boolean restrictions nest deeper than {MAX_DEPTH} levels")));
        }
        let child_text = |parent: roxmltree::Node<'_, '_>, tag: &str| {
            parent
                .children()
                .find(|c| c.has_tag_name(tag))
                .map(|c| c.text().unwrap_or("").to_string())
        };
        match n.tag_name().name() {
            "null-search-restriction" => Ok(Restriction::All),
            "property-search-restriction" => {
                let prop = n
                    .children()
                    .find(|c| c.has_tag_name("property"))
                    .ok_or_else(|| bad("a <property-search-restriction> needs a <property>"))?;
                let name = child_text(prop, "name")
                    .filter(|s| !s.trim().is_empty())
                    .ok_or_else(|| bad("a <property> needs a <name> (such as name, email, active)"))?;
                let kind = child_text(prop, "type").unwrap_or_else(|| "STRING".into());
                let mode = Mode::parse(
                    &child_text(n, "match-mode")
                        .ok_or_else(|| bad(format!("the restriction on `{name}` needs a <match-mode>")))?,
                )?;
                Self::property(name.trim().to_string(), &kind, mode, child_text(n, "value"))
            }
            "boolean-search-restriction" => {
                let logic = Self::logic(n.attribute("boolean-logic"))?;
                let parts = n
                    .children()
                    .find(|c| c.has_tag_name("restrictions"))
                    .into_iter()
                    .flat_map(|r| r.children().filter(roxmltree::Node::is_element))
                    .map(|c| Self::from_xml(c, depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Restriction::Boolean { logic, parts })
            }
            other => Err(bad(format!(
                "<{other}> is not a search restriction: send <null-search-restriction/>, <property-search-restriction> or <boolean-search-restriction>"
            ))),
        }
    }

    fn from_json(v: &Value, depth: usize) -> Result<Restriction, Malformed> {
        if depth > MAX_DEPTH {
            return Err(bad(format!("boolean restrictions nest deeper than {MAX_DEPTH} levels")));
        }
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        match s(v, "restriction-type").as_deref() {
            Some("null-search-restriction" | "null") => Ok(Restriction::All),
            Some("property-search-restriction" | "property") => {
                let prop = v
                    .get("property")
                    .ok_or_else(|| bad("a property-search-restriction needs a `property`"))?;
                let name = s(prop, "name").ok_or_else(|| bad("a `property` needs a `name`"))?;
                let kind = s(prop, "type").unwrap_or_else(|| "STRING".into());
                let mode = Mode::parse(
                    &s(v, "match-mode")
                        .ok_or_else(|| bad(format!("the restriction on `{name}` needs a `match-mode`")))?,
                )?;
                Self::property(name, &kind, mode, s(v, "value"))
            }
            Some("boolean-search-restriction" | "boolean") => {
                let logic = Self::logic(v.get("boolean-logic").and_then(Value::as_str))?;
                let parts = v
                    .get("restrictions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|p| Self::from_json(p, depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Restriction::Boolean { logic, parts })
            }
            _ => Err(bad(
                "`restriction-type` must be null-search-restriction, property-search-restriction or boolean-search-restriction",
            )),
        }
    }

    fn logic(v: Option<&str>) -> Result<Logic, Malformed> {
        match v.map(str::to_ascii_uppercase).as_deref() {
            Some("AND") => Ok(Logic::And),
            Some("OR") => Ok(Logic::Or),
            Some(other) => Err(bad(format!("boolean-logic must be AND or OR, not `{other}`"))),
            None => Err(bad(
                "a boolean-search-restriction needs boolean-logic=\"AND\" or \"OR\"",
            )),
        }
    }

    fn property(name: String, kind: &str, mode: Mode, value: Option<String>) -> Result<Restriction, Malformed> {
        let value = match (mode, value) {
            (Mode::Null, _) => Wanted::None,
            (_, None) => return Err(bad(format!("the restriction on `{name}` needs a <value>"))),
            (_, Some(v)) => match kind.trim().to_ascii_uppercase().as_str() {
                "STRING" => Wanted::Text(v.to_lowercase()),
                "BOOLEAN" => Wanted::Flag(
                    v.trim()
                        .to_ascii_lowercase()
                        .parse()
                        .map_err(|_| bad(format!("`{v}` (for `{name}`) is not true or false")))?,
                ),
                "DATE" => Wanted::Date(parse_date(&v).ok_or_else(|| {
                    bad(format!(
                        "`{v}` (for `{name}`) is not a date such as 2024-01-02T03:04:05.678+0000"
                    ))
                })?),
                other => {
                    return Err(bad(format!(
                        "the type `{other}` of `{name}` is not STRING, BOOLEAN or DATE"
                    )));
                }
            },
        };
        Ok(Restriction::Property { name, mode, value })
    }

    /// Whether `subject` is selected.
    pub fn matches(&self, subject: &dyn Subject) -> bool {
        match self {
            Restriction::All => true,
            Restriction::Boolean {
                logic: Logic::And,
                parts,
            } => parts.iter().all(|p| p.matches(subject)),
            Restriction::Boolean {
                logic: Logic::Or,
                parts,
            } => parts.iter().any(|p| p.matches(subject)),
            Restriction::Property { name, mode, value } => match (subject.property(name), value) {
                (Prop::Absent, _) => *mode == Mode::Null,
                (Prop::Text(t), Wanted::None) => t.is_empty(),
                (Prop::Values(vs), Wanted::None) => vs.is_empty(),
                (_, Wanted::None) => false,
                (Prop::Text(t), Wanted::Text(w)) => text_matches(t, *mode, w),
                (Prop::Values(vs), Wanted::Text(w)) => vs.iter().any(|t| text_matches(t, *mode, w)),
                (Prop::Flag(b), Wanted::Flag(w)) => *mode == Mode::Exactly && b == *w,
                (Prop::Flag(b), Wanted::Text(w)) => *mode == Mode::Exactly && w == if b { "true" } else { "false" },
                (Prop::Date(d), Wanted::Date(w)) => match mode {
                    Mode::Exactly => d == *w,
                    Mode::Less => d < *w,
                    Mode::Greater => d > *w,
                    _ => false,
                },
                _ => false,
            },
        }
    }
}

/// How deep boolean restrictions may nest: a bound on the recursion a body can cause.
const MAX_DEPTH: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restrictions_parse_from_xml_and_json_and_refuse_nonsense_naming_it() {
        let xml = br#"<boolean-search-restriction boolean-logic="or"><restrictions>
            <property-search-restriction><property><name>email</name><type>STRING</type></property>
            <match-mode>EXACTLY_MATCHES</match-mode><value>Bob@X</value></property-search-restriction>
            <null-search-restriction/></restrictions></boolean-search-restriction>"#;
        let want = Restriction::Boolean {
            logic: Logic::Or,
            parts: vec![
                Restriction::Property {
                    name: "email".into(),
                    mode: Mode::Exactly,
                    value: Wanted::Text("bob@x".into()),
                },
                Restriction::All,
            ],
        };
        assert_eq!(Restriction::parse(xml), Ok(want.clone()));
        let json = br#"{"restriction-type":"boolean-search-restriction","boolean-logic":"OR","restrictions":[
            {"restriction-type":"property-search-restriction","property":{"name":"email","type":"STRING"},
             "match-mode":"EXACTLY_MATCHES","value":"Bob@X"},{"restriction-type":"null-search-restriction"}]}"#;
        assert_eq!(Restriction::parse(json), Ok(want));
        assert_eq!(Restriction::parse(b"  "), Ok(Restriction::All));
        for (body, says) in [
            (&b"<search/>"[..], "<search> is not a search restriction"),
            (
                b"<property-search-restriction><property><name>n</name></property><match-mode>SOUNDS_LIKE</match-mode><value>x</value></property-search-restriction>",
                "SOUNDS_LIKE",
            ),
            (
                b"<property-search-restriction><property><name>n</name></property><match-mode>EXACTLY_MATCHES</match-mode></property-search-restriction>",
                "needs a <value>",
            ),
            (b"<boolean-search-restriction boolean-logic=\"XOR\"/>", "XOR"),
            (b"<unclosed", "not well-formed XML"),
            (b"{\"restriction-type\":\"nope\"}", "restriction-type"),
        ] {
            let e = Restriction::parse(body).expect_err("refused");
            assert!(e.0.contains(says), "{e} should say {says}");
        }
    }

    struct Person {
        name: &'static str,
        active: bool,
        created: i64,
        teams: Vec<String>,
    }

    impl Subject for Person {
        fn property(&self, name: &str) -> Prop<'_> {
            match name {
                "name" => Prop::Text(self.name),
                "active" => Prop::Flag(self.active),
                "createdDate" => Prop::Date(self.created),
                "team" => Prop::Values(Cow::Borrowed(&self.teams)),
                _ => Prop::Absent,
            }
        }
    }

    fn select(xml: &str, who: &Person) -> bool {
        Restriction::parse(xml.as_bytes()).expect("parses").matches(who)
    }

    fn prop(name: &str, kind: &str, mode: &str, value: &str) -> String {
        format!(
            "<property-search-restriction><property><name>{name}</name><type>{kind}</type></property>\
             <match-mode>{mode}</match-mode><value>{value}</value></property-search-restriction>"
        )
    }

    #[test]
    fn users_are_selected_by_text_flag_date_and_attribute_values_case_insensitively() {
        let ann = Person {
            name: "Ann.Lee",
            active: true,
            created: 1_704_164_645_678,
            teams: vec!["R&D".into(), "Ops".into()],
        };
        assert!(select(&prop("name", "STRING", "STARTS_WITH", "ann"), &ann));
        assert!(select(&prop("name", "STRING", "CONTAINS", "LEE"), &ann));
        assert!(!select(&prop("name", "STRING", "EXACTLY_MATCHES", "ann"), &ann));
        assert!(select(&prop("active", "BOOLEAN", "EXACTLY_MATCHES", "True"), &ann));
        assert!(select(&prop("active", "STRING", "EXACTLY_MATCHES", "true"), &ann));
        assert!(select(
            &prop("createdDate", "DATE", "GREATER_THAN", "2024-01-01T00:00:00.000+0000"),
            &ann
        ));
        assert!(!select(
            &prop("createdDate", "DATE", "LESS_THAN", "2024-01-01T00:00:00.000+0000"),
            &ann
        ));
        assert!(select(&prop("team", "STRING", "EXACTLY_MATCHES", "r&amp;d"), &ann));
        assert!(select(&prop("department", "STRING", "NULL", ""), &ann));
        assert!(!select(&prop("department", "STRING", "EXACTLY_MATCHES", "x"), &ann));
        let both = format!(
            "<boolean-search-restriction boolean-logic=\"AND\"><restrictions>{}{}</restrictions></boolean-search-restriction>",
            prop("name", "STRING", "STARTS_WITH", "ann"),
            prop("active", "BOOLEAN", "EXACTLY_MATCHES", "false"),
        );
        assert!(!select(&both, &ann));
        assert!(select(&both.replace("AND", "OR"), &ann));
    }

    #[test]
    fn a_restriction_nested_without_end_is_refused_not_followed() {
        let deep = format!(
            "{}<null-search-restriction/>{}",
            "<boolean-search-restriction boolean-logic=\"AND\"><restrictions>".repeat(40),
            "</restrictions></boolean-search-restriction>".repeat(40)
        );
        let e = Restriction::parse(deep.as_bytes()).expect_err("refused");
        assert!(e.to_string().contains("nest deeper"), "{e}");
    }
}

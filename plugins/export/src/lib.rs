//! The directory export Roster reads: the one definition of its records and of both of its
//! forms, shared by the `file` connector (which reads a source's export) and the host (which
//! reads sample records for previews in the same form).
//!
//! * JSON ([`Format::Json`]): one document,
//!   `{"users": [User…], "groups": [Group…], "memberships": [Membership…]}`, each list optional.
//! * JSON Lines ([`Format::JsonLines`]): one record per line with a `kind`:
//!   `{"kind": "user", …}`, `{"kind": "group", …}`, `{"kind": "membership", …}`; blank lines are
//!   skipped. Read from a byte offset ([`JsonLines`]), so a reader can page through it.
//!
//! Records: User `{"id", "username", "email"?, "display_name"?, "active"? (default true),
//! "attributes"? {name: value or [values]}}`; Group `{"id", "name", "description"?,
//! "attributes"?}`; Membership `{"group", "member", "member_is_group"? (default false)}` —
//! `group` and `member` are ids. Unknown fields are refused, so a misspelt field is an error
//! rather than a silently missing value. Attributes come out as `(name, value)` pairs in name
//! order, one pair per value.

use std::collections::BTreeMap;
use std::io::BufRead;

use serde::{Deserialize, Deserializer};

/// A person in the export.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// The source's immutable id.
    pub id: String,
    /// The login name.
    pub username: String,
    /// Email address.
    pub email: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// False for a disabled account; true when absent.
    #[serde(default = "yes")]
    pub active: bool,
    /// `(name, value)` pairs, in name order, one per value.
    #[serde(default, deserialize_with = "attributes")]
    pub attributes: Vec<(String, String)>,
}

/// A group in the export.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// The source's immutable id.
    pub id: String,
    /// The group's name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// `(name, value)` pairs, in name order, one per value.
    #[serde(default, deserialize_with = "attributes")]
    pub attributes: Vec<(String, String)>,
}

/// "`member` is a direct member of `group`", both by id.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Membership {
    /// The group's id.
    pub group: String,
    /// The member's id.
    pub member: String,
    /// The member is a group (nested); false when absent.
    #[serde(default)]
    pub member_is_group: bool,
}

/// One record: a line of a JSON Lines export, or an entry of a document's lists.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Record {
    /// `"kind": "user"`.
    User(User),
    /// `"kind": "group"`.
    Group(Group),
    /// `"kind": "membership"`.
    Membership(Membership),
}

impl Record {
    /// Parses one JSON Lines record.
    pub fn from_json_line(line: &str) -> Result<Record, ParseError> {
        serde_json::from_str(line).map_err(ParseError::from)
    }
}

/// A JSON export.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// Users.
    #[serde(default)]
    pub users: Vec<User>,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<Group>,
    /// Memberships.
    #[serde(default)]
    pub memberships: Vec<Membership>,
}

impl Document {
    /// Parses a JSON export.
    pub fn from_json(bytes: &[u8]) -> Result<Document, ParseError> {
        serde_json::from_slice(bytes).map_err(ParseError::from)
    }

    /// Records of every kind.
    pub fn len(&self) -> usize {
        self.users.len() + self.groups.len() + self.memberships.len()
    }

    /// True when the export holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The record at `index` in export order: users, then groups, then memberships (so a
    /// reader paging by index delivers groups before the memberships that name them).
    pub fn record(&self, index: usize) -> Option<Record> {
        let groups_at = self.users.len();
        let memberships_at = groups_at + self.groups.len();
        if index < groups_at {
            self.users.get(index).cloned().map(Record::User)
        } else if index < memberships_at {
            self.groups.get(index - groups_at).cloned().map(Record::Group)
        } else {
            self.memberships
                .get(index - memberships_at)
                .cloned()
                .map(Record::Membership)
        }
    }
}

/// Which form an export file has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON document.
    Json,
    /// One record per line.
    JsonLines,
}

impl Format {
    /// By the file's extension: `.jsonl` is JSON Lines, anything else a JSON document.
    pub fn of(path: &str) -> Format {
        if path.ends_with(".jsonl") {
            Format::JsonLines
        } else {
            Format::Json
        }
    }
}

/// Why a text is not an export, and where (1-based line and column; 0 when the failure has
/// no position, such as a read error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Line of the mistake.
    pub line: usize,
    /// Column of the mistake.
    pub column: usize,
    /// What is wrong, e.g. "unknown field `usrname`, expected one of …".
    pub message: String,
}

impl From<serde_json::Error> for ParseError {
    fn from(e: serde_json::Error) -> Self {
        let (line, column) = (e.line(), e.column());
        let full = e.to_string();
        // serde_json appends the position to its message; it is reported once, up front.
        let message = full
            .strip_suffix(&format!(" at line {line} column {column}"))
            .unwrap_or(&full)
            .to_string();
        ParseError { line, column, message }
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "line {}, column {}: {}", self.line, self.column, self.message)
        }
    }
}

impl std::error::Error for ParseError {}

/// Why the next JSON Lines record could not be read.
#[derive(Debug)]
pub enum LineError {
    /// Reading failed (or the file is not UTF-8).
    Io(std::io::Error),
    /// The line starting at byte `offset` is not a record.
    Invalid {
        /// Byte offset of the line's start.
        offset: u64,
        /// What is wrong with it; the line and column are within that line.
        error: ParseError,
    },
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LineError::Io(e) => write!(f, "{e}"),
            LineError::Invalid { offset, error } => write!(f, "at byte {offset}: not a valid record ({error})"),
        }
    }
}

impl std::error::Error for LineError {}

/// Reads a JSON Lines export record by record from a byte offset; [`JsonLines::offset`] is
/// where a later reader continues.
#[derive(Debug)]
pub struct JsonLines<R> {
    reader: R,
    offset: u64,
    line: String,
}

impl<R: BufRead> JsonLines<R> {
    /// A reader over `reader`, which is positioned at byte `offset` of the export.
    pub fn new(reader: R, offset: u64) -> Self {
        JsonLines {
            reader,
            offset,
            line: String::new(),
        }
    }

    /// The byte after the last line read: where the next record starts.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next record; `None` at the end of the export.
    pub fn next_record(&mut self) -> Result<Option<Record>, LineError> {
        loop {
            self.line.clear();
            let n = self.reader.read_line(&mut self.line).map_err(LineError::Io)?;
            if n == 0 {
                return Ok(None);
            }
            let start = self.offset;
            self.offset += n as u64;
            if self.line.trim().is_empty() {
                continue;
            }
            return Record::from_json_line(&self.line)
                .map(Some)
                .map_err(|error| LineError::Invalid { offset: start, error });
        }
    }
}

fn yes() -> bool {
    true
}

/// One attribute value or several.
#[derive(Deserialize)]
#[serde(untagged)]
enum AttrValue {
    One(String),
    Many(Vec<String>),
}

/// `{name: value or [values]}` as `(name, value)` pairs in name order.
fn attributes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    let map = BTreeMap::<String, AttrValue>::deserialize(d)?;
    Ok(map
        .into_iter()
        .flat_map(|(name, value)| match value {
            AttrValue::One(v) => vec![(name, v)],
            AttrValue::Many(vs) => vs.into_iter().map(|v| (name.clone(), v)).collect(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_reads_defaults_and_attributes() {
        let doc = Document::from_json(
            br#"{"users": [{"id": "s1", "username": "Zed", "active": false},
                           {"id": "s2", "username": "Amy", "email": "a@x", "display_name": "Amy",
                            "attributes": {"dept": ["b", "a"], "cost": "7"}}],
                 "groups": [{"id": "g", "name": "team", "attributes": {"kind": "x"}}],
                 "memberships": [{"group": "g", "member": "s1"}, {"group": "g", "member": "h", "member_is_group": true}]}"#,
        )
        .unwrap();
        assert!(!doc.users[0].active && doc.users[1].active);
        assert_eq!(
            doc.users[1].attributes,
            vec![
                ("cost".to_string(), "7".to_string()),
                ("dept".to_string(), "b".to_string()),
                ("dept".to_string(), "a".to_string())
            ]
        );
        assert_eq!(doc.groups[0].attributes, vec![("kind".to_string(), "x".to_string())]);
        assert!(!doc.memberships[0].member_is_group && doc.memberships[1].member_is_group);
        assert_eq!(doc.len(), 5);
        assert!(matches!(doc.record(2), Some(Record::Group(g)) if g.id == "g"));
        assert!(matches!(doc.record(4), Some(Record::Membership(m)) if m.member == "h"));
        assert_eq!(doc.record(5), None);
        assert_eq!(Document::from_json(b"{}").unwrap(), Document::default());
    }

    #[test]
    fn mistakes_are_refused_with_line_and_column() {
        let e = Document::from_json(b"{\"users\": [{\"id\": 1}]}").unwrap_err();
        assert_eq!((e.line, e.column), (1, 19));
        assert_eq!(
            e.to_string(),
            "line 1, column 19: invalid type: integer `1`, expected a string"
        );
        let e = Document::from_json(b"{\"users\": [\n {\"id\": \"a\", \"username\": \"b\", \"mail\": \"x\"}]}")
            .unwrap_err();
        assert!(
            e.to_string().starts_with("line 2, column ") && e.message.contains("unknown field `mail`"),
            "{e}"
        );
        let e = Document::from_json(b"{\"people\": []}").unwrap_err();
        assert!(e.message.contains("unknown field `people`"), "{e}");
        let e = Document::from_json(b"{\"users\": [").unwrap_err();
        assert!(e.message.contains("EOF"), "{e}");
        let e =
            Document::from_json(br#"{"users": [{"id": "a", "username": "b", "attributes": {"x": 1}}]}"#).unwrap_err();
        assert!(e.message.contains("untagged enum AttrValue"), "{e}");
    }

    #[test]
    fn json_lines_are_read_from_an_offset_skipping_blank_lines() {
        let text = "{\"kind\": \"user\", \"id\": \"u\", \"username\": \"u\"}\n\n{\"kind\": \"group\", \"id\": \"g\", \"name\": \"g\"}\n{\"kind\": \"membership\", \"group\": \"g\", \"member\": \"u\"}";
        let mut lines = JsonLines::new(text.as_bytes(), 0);
        assert!(matches!(lines.next_record().unwrap(), Some(Record::User(_))));
        let after_user = lines.offset();
        assert!(matches!(lines.next_record().unwrap(), Some(Record::Group(_))));
        let mut resumed = JsonLines::new(&text.as_bytes()[after_user as usize..], after_user);
        assert!(matches!(resumed.next_record().unwrap(), Some(Record::Group(_))));
        assert!(matches!(resumed.next_record().unwrap(), Some(Record::Membership(_))));
        assert!(resumed.next_record().unwrap().is_none());
        assert_eq!(resumed.offset(), text.len() as u64);
    }

    #[test]
    fn a_bad_line_names_its_byte_offset() {
        let text =
            "{\"kind\": \"user\", \"id\": \"u\", \"username\": \"u\"}\n{\"kind\": \"user\", \"id\": \"u-9\", \"userna";
        let mut lines = JsonLines::new(text.as_bytes(), 0);
        lines.next_record().unwrap();
        let err = lines.next_record().unwrap_err();
        assert!(matches!(&err, LineError::Invalid { offset: 45, .. }), "{err:?}");
        assert!(err.to_string().contains("not a valid record"), "{err}");
        for bad in [
            r#"{"kind": "robot", "id": "r"}"#,
            r#"{"id": "u", "username": "u"}"#,
            r#"{"kind": "user", "id": "u", "username": "u", "extra": 1}"#,
        ] {
            assert!(Record::from_json_line(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_format_follows_the_extension() {
        assert_eq!(Format::of("directory.jsonl"), Format::JsonLines);
        assert_eq!(Format::of("directory.json"), Format::Json);
        assert_eq!(Format::of("export"), Format::Json);
    }
}

//! `file`: a Roster connector that reads users, groups and memberships from an export file in
//! the folder the source grants it (mounted read-only at `/data`; it can read nothing else).
//!
//! Two formats, chosen by the file's extension:
//!
//! * `.json` — one document:
//!   `{"users": [User…], "groups": [Group…], "memberships": [Membership…]}`
//! * `.jsonl` — JSON Lines, one record per line with a `kind`: `{"kind": "user", …}`,
//!   `{"kind": "group", …}`, `{"kind": "membership", …}`. Read page by page from a byte offset,
//!   so memory stays flat however large the export.
//!
//! Records: User `{"id", "username", "email"?, "display_name"?, "active"? (default true),
//! "attributes"? {name: value or [values]}}`; Group `{"id", "name", "description"?,
//! "attributes"?}`; Membership `{"group", "member", "member_is_group"? (default false)}` — `group`
//! and `member` are ids. Settings: `{"path": "directory.json", "page_size": 1000}`.
//!
//! Incremental fetches: the delta token is the file's size and modification time, so an
//! incremental run over an unchanged export reads nothing, and a changed export asks the host
//! for a full read (`expired-delta`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Seek, SeekFrom};

use roster_sdk::{Connector, Group, Membership, Page, PluginError, PluginInfo, User};
use serde::{Deserialize, Serialize};

const ROOT: &str = "/data";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    path: String,
    #[serde(default = "default_page")]
    page_size: usize,
}

fn default_page() -> usize {
    1000
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AttrValue {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUser {
    id: String,
    username: String,
    email: Option<String>,
    display_name: Option<String>,
    #[serde(default = "yes")]
    active: bool,
    #[serde(default)]
    attributes: BTreeMap<String, AttrValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGroup {
    id: String,
    name: String,
    description: Option<String>,
    #[serde(default)]
    attributes: BTreeMap<String, AttrValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMembership {
    group: String,
    member: String,
    #[serde(default)]
    member_is_group: bool,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Line {
    User(FileUser),
    Group(FileGroup),
    Membership(FileMembership),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default)]
    users: Vec<FileUser>,
    #[serde(default)]
    groups: Vec<FileGroup>,
    #[serde(default)]
    memberships: Vec<FileMembership>,
}

/// Where the next page starts: a record index (`.json`) or a byte offset (`.jsonl`).
#[derive(Serialize, Deserialize)]
struct Cursor {
    at: u64,
}

fn yes() -> bool {
    true
}

fn attrs(a: BTreeMap<String, AttrValue>) -> Vec<(String, String)> {
    a.into_iter()
        .flat_map(|(k, v)| match v {
            AttrValue::One(s) => vec![(k, s)],
            AttrValue::Many(list) => list.into_iter().map(|s| (k.clone(), s)).collect(),
        })
        .collect()
}

impl From<FileUser> for User {
    fn from(u: FileUser) -> User {
        User {
            id: u.id,
            username: u.username,
            email: u.email,
            display_name: u.display_name,
            active: u.active,
            attributes: attrs(u.attributes),
        }
    }
}

impl From<FileGroup> for Group {
    fn from(g: FileGroup) -> Group {
        Group {
            id: g.id,
            name: g.name,
            description: g.description,
            attributes: attrs(g.attributes),
        }
    }
}

impl From<FileMembership> for Membership {
    fn from(m: FileMembership) -> Membership {
        Membership {
            group_id: m.group,
            member_id: m.member,
            member_is_group: m.member_is_group,
        }
    }
}

fn settings(raw: &str) -> Result<Settings, PluginError> {
    let s: Settings = roster_sdk::settings::parse(raw)?;
    if s.path.contains("..") || s.path.starts_with('/') {
        return Err(PluginError::Config(format!(
            "`path` {:?} must be a file name inside the source's `files` folder",
            s.path
        )));
    }
    if s.page_size == 0 {
        return Err(PluginError::Config("`page_size` must be at least 1".into()));
    }
    Ok(s)
}

fn open(s: &Settings) -> Result<std::fs::File, PluginError> {
    std::fs::File::open(format!("{ROOT}/{}", s.path)).map_err(|e| {
        PluginError::Config(format!(
            "cannot open {} in the source's `files` folder: {e} (is `files` set for this source?)",
            s.path
        ))
    })
}

/// "size-mtime" of the export, the connector's delta token.
fn version(s: &Settings) -> Result<String, PluginError> {
    let meta = open(s)?
        .metadata()
        .map_err(|e| PluginError::Fatal(format!("cannot read the metadata of {}: {e}", s.path)))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok(format!("{}-{modified}", meta.len()))
}

fn add(page: &mut Page, record: Line) {
    match record {
        Line::User(u) => page.users.push(u.into()),
        Line::Group(g) => page.groups.push(g.into()),
        Line::Membership(m) => page.memberships.push(m.into()),
    }
}

fn fetch_lines(s: &Settings, at: u64) -> Result<Page, PluginError> {
    let mut file = open(s)?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    file.seek(SeekFrom::Start(at))
        .map_err(|e| PluginError::Fatal(format!("cannot seek in {}: {e}", s.path)))?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let mut page = Page::empty();
    let mut offset = at;
    let mut line = String::new();
    let mut records = 0;
    while records < s.page_size {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| PluginError::Fatal(format!("cannot read {}: {e}", s.path)))?;
        if n == 0 {
            return Ok(page);
        }
        let start = offset;
        offset += n as u64;
        if line.trim().is_empty() {
            continue;
        }
        let record: Line = serde_json::from_str(&line).map_err(|e| {
            PluginError::Fatal(format!(
                "{} at byte {start}: not a valid record ({e}); fix the export",
                s.path
            ))
        })?;
        add(&mut page, record);
        records += 1;
    }
    if offset < total {
        page.next = Some(roster_sdk::paging::encode(&Cursor { at: offset })?);
    }
    Ok(page)
}

fn fetch_document(s: &Settings, at: u64) -> Result<Page, PluginError> {
    let file = open(s)?;
    let doc: Document = serde_json::from_reader(BufReader::new(file))
        .map_err(|e| PluginError::Fatal(format!("{} is not a valid export: {e}; fix the file", s.path)))?;
    let users = doc.users.into_iter().map(Line::User);
    let groups = doc.groups.into_iter().map(Line::Group);
    let memberships = doc.memberships.into_iter().map(Line::Membership);
    let all = users.chain(groups).chain(memberships);
    let mut page = Page::empty();
    let mut rest = all.skip(at as usize);
    for record in rest.by_ref().take(s.page_size) {
        add(&mut page, record);
    }
    if rest.next().is_some() {
        page.next = Some(roster_sdk::paging::encode(&Cursor {
            at: at + s.page_size as u64,
        })?);
    }
    Ok(page)
}

struct FileConnector;

impl Connector for FileConnector {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "file".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Reads users, groups and memberships from a JSON or JSON Lines export".into(),
            settings_schema: r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object", "additionalProperties": false, "required": ["path"],
  "properties": {
    "path": {"type": "string", "description": "file name inside the source's files folder (.json or .jsonl)"},
    "page_size": {"type": "integer", "minimum": 1, "default": 1000}
  }
}"#
            .into(),
        }
    }

    fn check(settings_json: String) -> Result<(), PluginError> {
        let s = settings(&settings_json)?;
        open(&s).map(drop)
    }

    fn fetch(settings_json: String, cursor: Option<String>, delta: Option<String>) -> Result<Page, PluginError> {
        let s = settings(&settings_json)?;
        // An export has no change log: the delta token is the file's size and modification
        // time. Unchanged → nothing to report; changed → the host falls back to a full read.
        let token = version(&s)?;
        match delta {
            Some(d) if d == token => {
                return Ok(Page {
                    delta_token: Some(token),
                    ..Page::empty()
                });
            }
            Some(_) => {
                return Err(PluginError::ExpiredDelta(format!(
                    "{} changed since the last fetch",
                    s.path
                )));
            }
            None => {}
        }
        let at = roster_sdk::paging::decode::<Cursor>(cursor.as_deref())?.map_or(0, |c| c.at);
        let mut page = if s.path.ends_with(".jsonl") {
            fetch_lines(&s, at)?
        } else {
            fetch_document(&s, at)?
        };
        if page.next.is_none() {
            page.delta_token = Some(token);
        }
        Ok(page)
    }
}

roster_sdk::export_connector!(FileConnector);

//! `file`: a Roster connector that reads users, groups and memberships from an export file in
//! the folder the source grants it (mounted read-only at `/data`; it can read nothing else).
//!
//! The export's two forms and its records are defined once, in `roster-export`: a `.json`
//! document or `.jsonl` JSON Lines, chosen by the file's extension. Settings:
//! `{"path": "directory.json", "page_size": 1000}`.
//!
//! Every page costs what it reads. JSON Lines are read from the byte offset the cursor keeps.
//! A JSON document cannot be entered half-way, so it is parsed once per fetch and kept in the
//! instance (which the host keeps for the whole fetch), keyed by the file's path, size and
//! modification time, checked on every page: a changed file is parsed again, never served
//! stale. Parsing it for every page, as this connector once did, made a 200,000-membership
//! export take 20 times longer as `.json` than as `.jsonl`.
//!
//! Incremental fetches: the delta state is the file's size and modification time, so an
//! incremental run over an unchanged export reads nothing, and a changed export asks the host
//! for a full read (`expired-delta`).

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::rc::Rc;

use roster_export::{Document, Format, JsonLines, Record};
use roster_sdk::driver::{Begin, Budget, Fetch, Next, Records, Work};

use roster_sdk::idp::Idp;
use roster_sdk::settings::SourceSettings;
use roster_sdk::{Group, Imports, Membership, PluginError, User};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where the host mounts the source's `files` folder.
const ROOT: &str = "/data";

/// The settings object of a `file` source.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Export file (JSON or JSON Lines)")]
pub struct Settings {
    /// File name inside the source's files folder (.json or .jsonl).
    pub path: String,
    /// Records per page.
    #[serde(default = "default_page")]
    #[schemars(range(min = 1))]
    pub page_size: usize,
}

fn default_page() -> usize {
    1000
}

impl SourceSettings for Settings {
    const OUTSIDE_SCOPE: &'static [&'static str] = &["page_size"];

    fn validate(&mut self) -> Result<(), PluginError> {
        if self.path.contains("..") || self.path.starts_with('/') {
            return Err(PluginError::Config(format!(
                "`path` {:?} must be a file name inside the source's `files` folder",
                self.path
            )));
        }
        if self.page_size == 0 {
            return Err(PluginError::Config("`page_size` must be at least 1".into()));
        }
        Ok(())
    }
}

/// The connector for one source's settings.
pub struct FileExport {
    s: Settings,
    root: PathBuf,
}

thread_local! {
    /// The last JSON document parsed, for the pages after the first.
    static PARSED: RefCell<Option<Parsed>> = const { RefCell::new(None) };
    /// Bytes handed to the JSON parser by this instance: what a page costs.
    static PARSE_WORK: Cell<u64> = const { Cell::new(0) };
}

struct Parsed {
    file: PathBuf,
    version: String,
    doc: Rc<Document>,
}

impl FileExport {
    fn file(&self) -> PathBuf {
        self.root.join(&self.s.path)
    }

    fn open(&self) -> Result<File, PluginError> {
        let file = self.file();
        File::open(&file).map_err(|e| {
            let (file, path) = (file.display(), &self.s.path);
            PluginError::Config(match e.kind() {
                std::io::ErrorKind::NotFound => format!(
                    "the export file '{file}' does not exist — check the source's `path` ({path:?}) and that its `files` folder holds that file"
                ),
                std::io::ErrorKind::IsADirectory => format!(
                    "the export file '{file}' is a folder — set the source's `path` to the export file inside it"
                ),
                // Any other reason: the host puts the sandbox's error number in words.
                _ => format!(
                    "cannot open the export file '{file}': {e} — check the source's `path` ({path:?}) and `files` folder"
                ),
            })
        })
    }

    /// The open export, its length and its "size-mtime" version (the delta state).
    fn open_versioned(&self) -> Result<(File, u64, String), PluginError> {
        let file = self.open()?;
        let meta = file
            .metadata()
            .map_err(|e| PluginError::Fatal(format!("cannot read the metadata of {}: {e}", self.s.path)))?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        Ok((file, meta.len(), format!("{}-{modified}", meta.len())))
    }

    fn lines(&self, at: u64, work: &mut Work<'_>) -> Result<Next<u64, String>, PluginError> {
        let (mut file, len, version) = self.open_versioned()?;
        file.seek(SeekFrom::Start(at))
            .map_err(|e| PluginError::Fatal(format!("cannot seek in {}: {e}", self.s.path)))?;
        let mut lines = JsonLines::new(BufReader::with_capacity(256 * 1024, file), at);
        let mut read = 0;
        let result = loop {
            if read >= work.room() {
                break Ok(if lines.offset() < len {
                    Next::Continue(lines.offset())
                } else {
                    Next::Done(Some(version))
                });
            }
            match lines.next_record() {
                Ok(Some(record)) => {
                    add(&mut work.out, record);
                    read += 1;
                }
                Ok(None) => break Ok(Next::Done(Some(version))),
                Err(roster_export::LineError::Io(e)) => {
                    break Err(PluginError::Fatal(format!("cannot read {}: {e}", self.s.path)));
                }
                Err(invalid) => {
                    break Err(PluginError::Fatal(format!("{} {invalid}; fix the export", self.s.path)));
                }
            }
        };
        PARSE_WORK.with(|w| w.set(w.get() + (lines.offset() - at)));
        result
    }

    fn document(&self, at: u64, work: &mut Work<'_>) -> Result<Next<u64, String>, PluginError> {
        let (file, _, version) = self.open_versioned()?;
        let doc = self.parsed(file, &version)?;
        let start = usize::try_from(at).unwrap_or(usize::MAX).min(doc.len());
        let end = start.saturating_add(work.room()).min(doc.len());
        for record in (start..end).filter_map(|i| doc.record(i)) {
            add(&mut work.out, record);
        }
        Ok(if end < doc.len() {
            Next::Continue(end as u64)
        } else {
            Next::Done(Some(version))
        })
    }

    /// The document of this version of the file: kept from an earlier page, or parsed now.
    fn parsed(&self, mut file: File, version: &str) -> Result<Rc<Document>, PluginError> {
        let path = self.file();
        let kept = PARSED.with(|p| {
            p.borrow()
                .as_ref()
                .filter(|k| k.file == path && k.version == version)
                .map(|k| Rc::clone(&k.doc))
        });
        if let Some(doc) = kept {
            return Ok(doc);
        }
        // Free the old document before reading the new one: an instance has a memory limit.
        PARSED.with(|p| p.borrow_mut().take());
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut bytes)
            .map_err(|e| PluginError::Fatal(format!("cannot read {}: {e}", self.s.path)))?;
        PARSE_WORK.with(|w| w.set(w.get() + bytes.len() as u64));
        let doc =
            Rc::new(Document::from_json(&bytes).map_err(|e| {
                PluginError::Fatal(format!("{} is not a valid export: {e}; fix the file", self.s.path))
            })?);
        PARSED.with(|p| {
            *p.borrow_mut() = Some(Parsed {
                file: path,
                version: version.to_string(),
                doc: Rc::clone(&doc),
            })
        });
        Ok(doc)
    }
}

fn add(out: &mut Records, record: Record) {
    match record {
        Record::User(u) => out.users.push(User {
            id: u.id,
            username: u.username,
            email: u.email,
            display_name: u.display_name,
            active: u.active,
            attributes: u.attributes,
        }),
        Record::Group(g) => out.groups.push(Group {
            id: g.id,
            name: g.name,
            description: g.description,
            attributes: g.attributes,
        }),
        Record::Membership(m) => out.memberships.push(Membership {
            group_id: m.group,
            member_id: m.member,
            member_is_group: m.member_is_group,
        }),
    }
}

impl Idp for FileExport {
    const NAME: &'static str = "file";
    const DESCRIPTION: &'static str = "Reads users, groups and memberships from a JSON or JSON Lines export";
    type Settings = Settings;

    fn new(s: Settings) -> Self {
        FileExport { s, root: ROOT.into() }
    }

    fn check(&self, _: &Imports<'_>) -> Result<(), PluginError> {
        self.open().map(drop)
    }

    fn budget(&self) -> Budget {
        Budget {
            records: self.s.page_size,
            ..Budget::default()
        }
    }
}

impl Fetch for FileExport {
    /// A record index (`.json`) or a byte offset (`.jsonl`).
    type Cursor = u64;
    /// The export's "size-mtime".
    type Delta = String;

    fn begin(&self, from: Begin<String>, _: &mut Work<'_>) -> Result<Next<u64, String>, PluginError> {
        match from {
            Begin::Full => Ok(Next::Continue(0)),
            // An export has no change log: unchanged → nothing to report; changed → the host
            // falls back to a full read.
            Begin::Incremental(seen) => {
                let (_, _, now) = self.open_versioned()?;
                if seen == now {
                    Ok(Next::Done(Some(now)))
                } else {
                    Err(PluginError::ExpiredDelta(format!(
                        "{} changed since the last fetch",
                        self.s.path
                    )))
                }
            }
        }
    }

    fn step(&self, at: u64, work: &mut Work<'_>) -> Result<Next<u64, String>, PluginError> {
        match Format::of(&self.s.path) {
            Format::JsonLines => self.lines(at, work),
            Format::Json => self.document(at, work),
        }
    }
}

roster_sdk::export_idp!(FileExport);

#[cfg(test)]
mod tests {
    use std::path::Path;

    use roster_sdk::Page;
    use roster_sdk::driver::{Driver, Job};
    use roster_sdk::http::HostTransport;
    use roster_sdk::settings::{self, Fingerprint};

    use super::*;

    /// A folder of its own under the system's temporary folder, removed on drop.
    struct Folder(PathBuf);

    impl Folder {
        fn new(name: &str) -> Folder {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let dir = std::env::temp_dir().join(format!("roster-file-{name}-{}-{nanos}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Folder(dir)
        }

        fn write(&self, name: &str, text: &str) {
            std::fs::write(self.0.join(name), text).unwrap();
        }
    }

    impl Drop for Folder {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn connector(root: &Path, settings_json: &str) -> FileExport {
        FileExport {
            s: settings::read(settings_json).unwrap(),
            root: root.to_path_buf(),
        }
    }

    fn page(d: &mut Driver, f: &FileExport, cursor: Option<&str>, delta: Option<&str>) -> Result<Page, PluginError> {
        let job = Job {
            connector: "file",
            http: &HostTransport,
            ldap: &roster_sdk::ldap::NoDirectory,
            budget: f.budget(),
            scope: Fingerprint::of(&f.s).unwrap(),
        };
        d.page(f, &job, cursor, delta)
    }

    /// What a whole fetch returned.
    #[derive(Debug, PartialEq)]
    struct Fetched {
        /// (users, groups, memberships) per page.
        sizes: Vec<(usize, usize, usize)>,
        /// Every record's id, in page order.
        ids: Vec<String>,
        /// The last page's delta token.
        token: String,
    }

    fn fetch_all(f: &FileExport) -> Result<Fetched, PluginError> {
        let mut d = Driver::default();
        let (mut sizes, mut ids) = (vec![], vec![]);
        let mut cursor = None;
        loop {
            let p = page(&mut d, f, cursor.as_deref(), None)?;
            sizes.push((p.users.len(), p.groups.len(), p.memberships.len()));
            ids.extend(p.users.iter().map(|u| u.id.clone()));
            ids.extend(p.groups.iter().map(|g| g.id.clone()));
            ids.extend(p.memberships.iter().map(|m| format!("{}>{}", m.group_id, m.member_id)));
            cursor = p.next;
            if cursor.is_none() {
                let token = p.delta_token.unwrap_or_default();
                return Ok(Fetched { sizes, ids, token });
            }
        }
    }

    /// An export of `users` users, `groups` groups and every user in every group.
    fn export(users: usize, groups: usize) -> (String, String) {
        let us: Vec<String> = (0..users)
            .map(|i| format!(r#"{{"id": "u{i}", "username": "user{i}", "attributes": {{"dept": ["a", "b"]}}}}"#))
            .collect();
        let gs: Vec<String> = (0..groups)
            .map(|i| format!(r#"{{"id": "g{i}", "name": "group{i}"}}"#))
            .collect();
        let ms: Vec<String> = (0..groups)
            .flat_map(|g| (0..users).map(move |u| format!(r#"{{"group": "g{g}", "member": "u{u}"}}"#)))
            .collect();
        let json = format!(
            "{{\"users\": [{}],\n \"groups\": [{}],\n \"memberships\": [{}]}}",
            us.join(",\n"),
            gs.join(",\n"),
            ms.join(",\n")
        );
        let tagged = |kind: &str, r: &String| format!("{{\"kind\": \"{kind}\", {}", &r[1..]);
        let lines: Vec<String> = us
            .iter()
            .map(|r| tagged("user", r))
            .chain(gs.iter().map(|r| tagged("group", r)))
            .chain(ms.iter().map(|r| tagged("membership", r)))
            .collect();
        (json, lines.join("\n") + "\n")
    }

    fn parse_work() -> u64 {
        PARSE_WORK.with(Cell::get)
    }

    #[test]
    fn both_forms_page_alike_and_a_page_costs_what_it_reads() {
        let dir = Folder::new("forms");
        let (json, jsonl) = export(200, 20);
        dir.write("d.json", &json);
        dir.write("d.jsonl", &jsonl);
        let before = parse_work();
        let from_json = fetch_all(&connector(&dir.0, r#"{"path":"d.json","page_size":50}"#)).unwrap();
        // 4,220 records in 85 pages; parsing the document for each would be 85 times its size.
        assert_eq!(from_json.sizes.len(), 85);
        assert_eq!(from_json.sizes[0], (50, 0, 0));
        assert_eq!(from_json.sizes[4], (0, 20, 30));
        let json_work = parse_work() - before;
        assert_eq!(json_work, json.len() as u64, "the document is parsed once per fetch");
        let before = parse_work();
        let from_lines = fetch_all(&connector(&dir.0, r#"{"path":"d.jsonl","page_size":50}"#)).unwrap();
        assert_eq!(parse_work() - before, jsonl.len() as u64, "each line is read once");
        assert_eq!((from_lines.sizes, from_lines.ids), (from_json.sizes, from_json.ids));
    }

    #[test]
    fn a_changed_document_is_parsed_again_not_served_stale() {
        let dir = Folder::new("changed");
        let (json, _) = export(10, 1);
        dir.write("d.json", &json);
        let f = connector(&dir.0, r#"{"path":"d.json","page_size":5}"#);
        let mut d = Driver::default();
        let first = page(&mut d, &f, None, None).unwrap();
        assert_eq!(first.users[0].id, "u0");
        let (json, _) = export(12, 1);
        dir.write("d.json", &json.replace("\"id\": \"u", "\"id\": \"v"));
        let second = page(&mut d, &f, first.next.as_deref(), None).unwrap();
        assert_eq!(second.users[0].id, "v5", "{:?}", second.users);
    }

    #[test]
    fn an_unchanged_export_reads_nothing_incrementally_and_a_changed_one_asks_for_a_full_fetch() {
        let dir = Folder::new("delta");
        let (json, _) = export(3, 1);
        dir.write("d.json", &json);
        let f = connector(&dir.0, r#"{"path":"d.json"}"#);
        let token = fetch_all(&f).unwrap().token;
        let again = page(&mut Driver::default(), &f, None, Some(&token)).unwrap();
        assert!(again.users.is_empty() && again.next.is_none());
        assert_eq!(again.delta_token.as_deref(), Some(token.as_str()));
        dir.write("d.json", &json.replace("user0", "user00"));
        let err = page(&mut Driver::default(), &f, None, Some(&token)).unwrap_err();
        assert!(
            matches!(&err, PluginError::ExpiredDelta(m) if m.contains("d.json changed since the last fetch")),
            "{err:?}"
        );
        // A token made for another file of the folder is refused before the file is compared.
        dir.write("e.json", &json);
        let other = connector(&dir.0, r#"{"path":"e.json"}"#);
        let err = page(&mut Driver::default(), &other, None, Some(&token)).unwrap_err();
        assert!(
            matches!(&err, PluginError::ExpiredDelta(m) if m.contains("scope")),
            "{err:?}"
        );
    }

    #[test]
    fn broken_exports_are_errors_that_say_where() {
        let dir = Folder::new("broken");
        dir.write(
            "d.json",
            "{\"users\": [{\"id\": \"a\", \"username\": \"b\"},\n {\"id\": 7}]}",
        );
        let err = fetch_all(&connector(&dir.0, r#"{"path":"d.json"}"#)).unwrap_err();
        assert!(
            matches!(&err, PluginError::Fatal(m) if m.contains("d.json is not a valid export: line 2, column")),
            "{err:?}"
        );
        dir.write(
            "d.jsonl",
            "{\"kind\": \"user\", \"id\": \"u\", \"username\": \"u\"}\n{\"kind\": \"user\", \"id\": \"u-9\", \"userna",
        );
        let err = fetch_all(&connector(&dir.0, r#"{"path":"d.jsonl"}"#)).unwrap_err();
        assert!(
            matches!(&err, PluginError::Fatal(m) if m.contains("d.jsonl at byte 45: not a valid record")),
            "{err:?}"
        );
        let err = fetch_all(&connector(&dir.0, r#"{"path":"missing.json"}"#)).unwrap_err();
        assert!(
            matches!(&err, PluginError::Config(m) if m.contains("export file '") && m.contains("missing.json' does not exist")),
            "{err:?}"
        );
    }

    #[test]
    fn settings_are_checked_and_described() {
        for (json, expected) in [
            (r#"{"path":"../etc/passwd"}"#, "must be a file name"),
            (r#"{"path":"/etc/passwd"}"#, "must be a file name"),
            (r#"{"path":"d.json","page_size":0}"#, "at least 1"),
            (r#"{"path":"d.json","pagesize":5}"#, "unknown field `pagesize`"),
            (r#"{}"#, "missing field `path`"),
        ] {
            let err = settings::read::<Settings>(json).unwrap_err();
            assert!(
                matches!(&err, PluginError::Config(m) if m.contains(expected)),
                "{json}: {err:?}"
            );
        }
        let schema: serde_json::Value = serde_json::from_str(&settings::schema::<Settings>()).unwrap();
        assert_eq!(schema["required"], serde_json::json!(["path"]));
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["properties"]["page_size"]["default"], 1000);
        assert!(settings::undeclared_outside_scope::<Settings>().is_empty());
    }
}

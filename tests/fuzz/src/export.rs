//! Directory exports (`roster-export`), the `file` connector's page decoder: the JSON document
//! and JSON Lines forms.
//!
//! Input: the export file's bytes.

use std::collections::BTreeMap;

use roster_export::{Document, JsonLines, LineError, Record};
use serde_json::{Value, json};

/// A JSON document: what it holds, record by record, must read back the same from the JSON
/// Lines form of the same records.
pub fn json(data: &[u8]) {
    let doc = match Document::from_json(data) {
        Ok(doc) => doc,
        Err(e) => {
            assert!(!e.message.is_empty(), "an error without a message: {e:?}");
            return;
        }
    };
    let records: Vec<Record> = (0..doc.len()).map(|i| doc.record(i).expect("index < len")).collect();
    assert_eq!(doc.record(doc.len()), None);
    assert_eq!(doc.is_empty(), records.is_empty());
    let lines: String = records.iter().map(|r| format!("{}\n", line(r))).collect();
    let mut reader = JsonLines::new(lines.as_bytes(), 0);
    for r in &records {
        let back = reader.next_record().expect("a line this function wrote");
        assert_eq!(back.as_ref(), Some(r), "the JSON Lines form reads back differently");
    }
    assert!(reader.next_record().expect("the end").is_none());
}

/// `attributes` as the export writes them: name → one value or a list.
fn attributes(pairs: &[(String, String)]) -> Value {
    let mut map: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (n, v) in pairs {
        map.entry(n).or_default().push(v);
    }
    json!(map)
}

/// A record as one JSON Lines line.
fn line(r: &Record) -> Value {
    match r {
        Record::User(u) => json!({
            "kind": "user", "id": u.id, "username": u.username, "email": u.email,
            "display_name": u.display_name, "active": u.active, "attributes": attributes(&u.attributes),
        }),
        Record::Group(g) => json!({
            "kind": "group", "id": g.id, "name": g.name, "description": g.description,
            "attributes": attributes(&g.attributes),
        }),
        Record::Membership(m) => json!({
            "kind": "membership", "group": m.group, "member": m.member, "member_is_group": m.member_is_group,
        }),
    }
}

/// At most this many records are read from one input: enough for any corpus entry.
const MAX_RECORDS: usize = 10_000;

/// A JSON Lines export read record by record: offsets only advance, stay within the file, and
/// a reader started at any offset reached reads on exactly as the first one does (how the
/// connector pages).
pub fn json_lines(data: &[u8]) {
    let mut reader = JsonLines::new(data, 0);
    for _ in 0..MAX_RECORDS {
        let at = reader.offset();
        assert!(at <= data.len() as u64, "offset {at} past the end ({})", data.len());
        let mut resumed = JsonLines::new(&data[at as usize..], at);
        let next = reader.next_record();
        let again = resumed.next_record();
        match (&next, &again) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "a reader resumed at byte {at} reads differently"),
            (Err(LineError::Invalid { offset: a, .. }), Err(LineError::Invalid { offset: b, .. })) => {
                assert_eq!(a, b);
                assert!(
                    *a >= at && *a < data.len() as u64,
                    "error offset {a} outside the unread part"
                );
            }
            (Err(LineError::Io(_)), Err(LineError::Io(_))) => {}
            (a, b) => panic!("a reader resumed at byte {at} disagrees: {a:?} / {b:?}"),
        }
        assert_eq!(reader.offset(), resumed.offset());
        match next {
            Ok(Some(_)) => assert!(reader.offset() > at, "a record read without advancing"),
            Ok(None) | Err(_) => return,
        }
    }
}

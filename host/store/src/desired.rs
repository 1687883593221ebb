//! The desired state, kept between runs: brought up to date after each merge, read by whatever
//! serves or reconciles it. Members are stored one line per group (not one row per membership):
//! a million memberships are a few thousand rows.
//!
//! Saving compares the new state with the stored one row by row, in key order (a merge of two
//! sorted streams), and writes only what changed: a resync where nothing changed reads the
//! table once and writes nothing, and memory holds one stored row at a time plus the changes.

use std::collections::HashMap;
use std::sync::Arc;

use roster_model::{Desired, Members, Person};
use rusqlite::{Transaction, params};

use super::{Result, Store, json_col, now_ms};

/// A change to one row of a keyed table.
enum Change<'a, T: ?Sized> {
    /// Insert or replace the row `key` with `value`.
    Put(&'a str, &'a T),
    /// Delete the row `key`.
    Delete(String),
}

/// The changes that turn the stored rows (read in key order by `sql`, each `(key, text)`) into
/// `wanted` (in key order too): `same` says whether a stored row's text already matches.
fn diff<'a, T>(
    tx: &Transaction<'_>,
    sql: &str,
    wanted: &'a std::collections::BTreeMap<String, T>,
    same: impl Fn(&T, &rusqlite::Row<'_>) -> rusqlite::Result<bool>,
) -> Result<Vec<Change<'a, T>>> {
    let mut changes = Vec::new();
    let mut want = wanted.iter().peekable();
    let mut st = tx.prepare(sql)?;
    let mut rows = st.query([])?;
    while let Some(row) = rows.next()? {
        let key: String = row.get(0)?;
        loop {
            match want.peek() {
                Some((k, _)) if k.as_str() < key.as_str() => {
                    let (k, v) = want.next().expect("peeked");
                    changes.push(Change::Put(k, v));
                }
                Some((k, v)) if k.as_str() == key.as_str() => {
                    if !same(v, row)? {
                        changes.push(Change::Put(k, v));
                    }
                    want.next();
                    break;
                }
                _ => {
                    changes.push(Change::Delete(key));
                    break;
                }
            }
        }
    }
    changes.extend(want.map(|(k, v)| Change::Put(k, v)));
    Ok(changes)
}

fn members_text(members: &Members) -> String {
    let mut text = String::with_capacity(members.len() * 12);
    for m in members {
        text.push_str(m);
        text.push('\n');
    }
    text
}

fn records_json(p: &Person) -> String {
    serde_json::to_string(&p.records).unwrap_or_default()
}

impl Store {
    /// Makes the stored desired state `desired` (its persons, groups and warnings), writing
    /// only the rows that differ.
    pub fn save_desired(&self, desired: &Desired) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let persons = diff(
            &tx,
            "SELECT key, username, email, display_name, active, records FROM desired_persons ORDER BY key",
            &desired.persons,
            |p, row| {
                Ok(row.get_ref(1)?.as_str().ok() == Some(p.username.as_str())
                    && row.get::<_, Option<String>>(2)? == p.email
                    && row.get::<_, Option<String>>(3)? == p.display_name
                    && row.get::<_, bool>(4)? == p.active
                    && row.get_ref(5)?.as_str().ok() == Some(records_json(p).as_str()))
            },
        )?;
        {
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO desired_persons (key, username, email, display_name, active, records) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            let mut delete = tx.prepare_cached("DELETE FROM desired_persons WHERE key = ?1")?;
            for c in persons {
                match c {
                    Change::Put(key, p) => {
                        put.execute(params![
                            key,
                            p.username,
                            p.email,
                            p.display_name,
                            p.active,
                            records_json(p)
                        ])?;
                    }
                    Change::Delete(key) => {
                        delete.execute([key])?;
                    }
                }
            }
        }
        let groups = diff(
            &tx,
            "SELECT name, members FROM desired_groups ORDER BY name",
            &desired.groups,
            |m, row| {
                let stored = row.get_ref(1)?.as_str().unwrap_or("");
                // Compare line by line without building the new text.
                let mut lines = stored.lines();
                Ok(m.iter().all(|x| lines.next() == Some(&**x)) && lines.next().is_none())
            },
        )?;
        {
            let mut put = tx.prepare_cached("INSERT OR REPLACE INTO desired_groups (name, members) VALUES (?1, ?2)")?;
            let mut delete = tx.prepare_cached("DELETE FROM desired_groups WHERE name = ?1")?;
            for c in groups {
                match c {
                    Change::Put(name, members) => {
                        put.execute(params![name, members_text(members)])?;
                    }
                    Change::Delete(name) => {
                        delete.execute([name])?;
                    }
                }
            }
        }
        tx.execute(
            "INSERT INTO desired_meta (id, saved_at, warnings) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET saved_at = ?1, warnings = ?2",
            params![now_ms(), serde_json::to_string(&desired.warnings).unwrap_or_default()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The stored desired state and when it was saved (unix ms); `None` before the first merge.
    /// Records the sources could not map are not kept: they matter only to the run that met them.
    pub fn load_desired(&self) -> Result<Option<(Desired, i64)>> {
        let conn = self.reader();
        let meta: Option<(i64, String)> = rusqlite::OptionalExtension::optional(conn.query_row(
            "SELECT saved_at, warnings FROM desired_meta WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        ))?;
        let Some((saved_at, warnings)) = meta else {
            return Ok(None);
        };
        let mut out = Desired {
            warnings: json_col("desired_meta.warnings", &warnings)?,
            ..Desired::default()
        };
        let mut st = conn.prepare("SELECT key, username, email, display_name, active, records FROM desired_persons")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get::<_, String>(5)?,
            ))
        })?;
        let mut keys: HashMap<String, Arc<str>> = HashMap::new();
        for row in rows {
            let (key, username, email, display_name, active, records) = row?;
            keys.insert(key.clone(), Arc::from(key.as_str()));
            out.persons.insert(
                key,
                Person {
                    username,
                    email,
                    display_name,
                    active,
                    records: json_col("desired_persons.records", &records)?,
                },
            );
        }
        let mut st = conn.prepare("SELECT name, members FROM desired_groups")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (name, members) = row?;
            let set = out.groups.entry(name).or_default();
            for m in members.lines() {
                set.insert(keys.get(m).cloned().unwrap_or_else(|| Arc::from(m)));
            }
        }
        Ok(Some((out, saved_at)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Key;

    #[test]
    fn the_desired_state_survives_a_round_trip_and_is_replaced_whole() {
        let store = Store::memory(Key::from_bytes([1; 32])).unwrap();
        assert!(store.load_desired().unwrap().is_none());
        let mut d = Desired::default();
        for (key, active) in [("alice", true), ("bob", false)] {
            d.persons.insert(
                key.into(),
                Person {
                    username: key.to_uppercase(),
                    email: Some(format!("{key}@example.com")),
                    display_name: None,
                    active,
                    records: vec![("hr".into(), format!("id-{key}"))],
                },
            );
        }
        d.groups.entry("dev".into()).or_default().insert(Arc::from("alice"));
        d.groups.entry("empty".into()).or_default();
        d.warnings.push("a cycle".into());
        store.save_desired(&d).unwrap();
        let (back, _) = store.load_desired().unwrap().unwrap();
        assert_eq!(back.persons, d.persons);
        assert_eq!(back.groups, d.groups);
        assert_eq!(back.warnings, d.warnings);

        d.persons.remove("bob");
        d.groups.remove("empty");
        d.persons.get_mut("alice").unwrap().email = None;
        d.persons.insert(
            "carol".into(),
            Person {
                username: "carol".into(),
                email: None,
                display_name: Some("Carol".into()),
                active: true,
                records: vec![("hr".into(), "id-carol".into())],
            },
        );
        d.groups.get_mut("dev").unwrap().insert(Arc::from("carol"));
        d.groups.entry("aaa".into()).or_default().insert(Arc::from("alice"));
        store.save_desired(&d).unwrap();
        let (back, _) = store.load_desired().unwrap().unwrap();
        assert_eq!(back.persons, d.persons, "changed, added and removed persons");
        assert_eq!(back.groups, d.groups, "changed, added and removed groups");
    }
}

//! The desired state, kept between runs: replaced whole after each merge, read by whatever
//! serves or reconciles it. Members are stored one line per group (not one row per membership):
//! a million memberships are a few thousand rows, written and read in well under a second.

use std::collections::HashMap;
use std::sync::Arc;

use roster_model::{Desired, Person};
use rusqlite::params;

use super::{Result, Store, json_col, now_ms};

impl Store {
    /// Replaces the stored desired state with `desired` (its persons, groups and warnings).
    pub fn save_desired(&self, desired: &Desired) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM desired_persons", [])?;
        tx.execute("DELETE FROM desired_groups", [])?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO desired_persons (key, username, email, display_name, active, records) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (key, p) in &desired.persons {
                let records = serde_json::to_string(&p.records).unwrap_or_default();
                st.execute(params![key, p.username, p.email, p.display_name, p.active, records])?;
            }
            let mut st = tx.prepare_cached("INSERT INTO desired_groups (name, members) VALUES (?1, ?2)")?;
            let mut text = String::new();
            for (name, members) in &desired.groups {
                text.clear();
                for m in members {
                    text.push_str(m);
                    text.push('\n');
                }
                st.execute(params![name, text])?;
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
        store.save_desired(&d).unwrap();
        let (back, _) = store.load_desired().unwrap().unwrap();
        assert_eq!(back.persons.keys().collect::<Vec<_>>(), ["alice"]);
        assert_eq!(back.groups.keys().collect::<Vec<_>>(), ["dev"]);
    }
}

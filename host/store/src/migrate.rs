//! Numbered migrations from `migrations/`, embedded in the binary, applied in order, each
//! recorded with its sha256 so an edited or unknown migration is refused.

use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};

use super::{Result, StoreError, now_ms};

/// (version, file name, SQL), in order.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "0001_init.sql", include_str!("../../../migrations/0001_init.sql")),
    (
        2,
        "0002_transform_settings.sql",
        include_str!("../../../migrations/0002_transform_settings.sql"),
    ),
    (
        3,
        "0003_api_and_schedules.sql",
        include_str!("../../../migrations/0003_api_and_schedules.sql"),
    ),
    (
        4,
        "0004_api_target.sql",
        include_str!("../../../migrations/0004_api_target.sql"),
    ),
    (
        5,
        "0005_desired.sql",
        include_str!("../../../migrations/0005_desired.sql"),
    ),
    (
        6,
        "0006_run_holder.sql",
        include_str!("../../../migrations/0006_run_holder.sql"),
    ),
    (
        7,
        "0007_guard_window.sql",
        include_str!("../../../migrations/0007_guard_window.sql"),
    ),
    (8, "0008_scim.sql", include_str!("../../../migrations/0008_scim.sql")),
    (9, "0009_crowd.sql", include_str!("../../../migrations/0009_crowd.sql")),
    (
        10,
        "0010_target_accounts.sql",
        include_str!("../../../migrations/0010_target_accounts.sql"),
    ),
    (
        12,
        "0012_crowd_app_licences.sql",
        include_str!("../../../migrations/0012_crowd_app_licences.sql"),
    ),
    (
        13,
        "0013_ui_sessions.sql",
        include_str!("../../../migrations/0013_ui_sessions.sql"),
    ),
    (14, "0014_drift.sql", include_str!("../../../migrations/0014_drift.sql")),
];

fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

pub(super) fn apply(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )?;
    let applied: Vec<(i64, String, String)> = {
        let mut st = conn.prepare("SELECT version, name, checksum FROM schema_migrations ORDER BY version")?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?
    };
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if let Some((db, _, _)) = applied.iter().find(|(v, _, _)| *v > known) {
        return Err(StoreError::TooNew { db: *db, known });
    }
    for (version, name, recorded) in &applied {
        let Some((_, _, sql)) = MIGRATIONS.iter().find(|m| m.0 == *version) else {
            return Err(StoreError::TooNew { db: *version, known });
        };
        let current = checksum(sql);
        if &current != recorded {
            return Err(StoreError::MigrationChanged {
                name: name.clone(),
                recorded: recorded.clone(),
                current,
            });
        }
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| !applied.iter().any(|a| a.0 == m.0)) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?1, ?2, ?3, ?4)",
            params![version, name, checksum(sql), now_ms()],
        )?;
        tx.commit()?;
        tracing::info!(migration = name, "applied database migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_once_and_refuses_edited_or_newer_schemas() {
        let mut conn = Connection::open_in_memory().unwrap();
        apply(&mut conn).unwrap();
        apply(&mut conn).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, MIGRATIONS.len() as i64);

        conn.execute("UPDATE schema_migrations SET checksum = 'abc' WHERE version = 1", [])
            .unwrap();
        let err = apply(&mut conn).unwrap_err().to_string();
        assert!(err.contains("0001_init.sql was changed after it was applied"), "{err}");

        conn.execute(
            "UPDATE schema_migrations SET checksum = ?1 WHERE version = 1",
            [checksum(MIGRATIONS[0].2)],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO schema_migrations VALUES (99, '0099_future.sql', 'x', 0)",
            [],
        )
        .unwrap();
        let err = apply(&mut conn).unwrap_err().to_string();
        assert!(err.contains("schema version 99, newer than this Roster"), "{err}");
    }
}

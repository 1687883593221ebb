//! The audit log: every administrative action, who, when, from where.

use rusqlite::params;

use super::{Result, Store, now_ms};

/// One audit entry.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEntry {
    /// Sequence number.
    pub id: i64,
    /// Unix ms.
    pub at: i64,
    /// Who (`cli:<os user>`, a token name, `scheduler`).
    pub actor: String,
    /// From where (`local`, an IP address).
    pub origin: String,
    /// What (`plan.approve`, `sync.apply`, `source.update`).
    pub action: String,
    /// On what.
    pub subject: String,
    /// Details.
    pub detail: Option<String>,
}

impl Store {
    /// Appends to the audit log.
    pub fn audit(&self, actor: &str, origin: &str, action: &str, subject: &str, detail: Option<&str>) -> Result<()> {
        self.conn().execute(
            "INSERT INTO audit (at, actor, origin, action, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![now_ms(), actor, origin, action, subject, detail],
        )?;
        Ok(())
    }

    /// The newest `limit` entries, newest first.
    pub fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        let conn = self.reader();
        let mut st =
            conn.prepare("SELECT id, at, actor, origin, action, subject, detail FROM audit ORDER BY id DESC LIMIT ?1")?;
        let rows = st.query_map([limit], |r| {
            Ok(AuditEntry {
                id: r.get(0)?,
                at: r.get(1)?,
                actor: r.get(2)?,
                origin: r.get(3)?,
                action: r.get(4)?,
                subject: r.get(5)?,
                detail: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

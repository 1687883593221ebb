//! Configured sources. Secrets are sealed before they reach SQLite and are only ever opened
//! for the runtime; no listing returns them.

use rusqlite::{OptionalExtension, params};

use super::{Result, Store, StoreError, json_col, now_ms};

/// A source as stored, without its secrets.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SourceRow {
    /// Stable id, e.g. `hr`.
    pub id: String,
    /// Connector plugin name.
    pub plugin: String,
    /// Directory order: lower wins.
    pub priority: i64,
    /// Disabled sources are not fetched.
    pub enabled: bool,
    /// Everything but secrets: plugin settings, network policy, limits, transforms.
    pub config: serde_json::Value,
    /// `file` (roster.toml; read-only through the API) or `api`.
    pub origin: String,
    /// Last change, Unix ms.
    pub updated_at: i64,
}

impl Store {
    /// Creates or replaces a source; `secrets` is the JSON list of secrets, sealed here.
    pub fn upsert_source(&self, row: &SourceRow, secrets: &serde_json::Value) -> Result<()> {
        let sealed = self.key.seal(secrets.to_string().as_bytes())?;
        self.conn().execute(
            "INSERT INTO sources (id, plugin, priority, enabled, config, secrets, updated_at, origin) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT(id) DO UPDATE SET plugin = ?2, priority = ?3, enabled = ?4, config = ?5, secrets = ?6, updated_at = ?7, origin = ?8",
            params![row.id, row.plugin, row.priority, row.enabled, row.config.to_string(), sealed, now_ms(), row.origin],
        )?;
        Ok(())
    }

    /// Replaces a source's configuration, keeping its sealed secrets (secrets are write-only).
    pub fn update_source_keeping_secrets(&self, row: &SourceRow) -> Result<()> {
        self.conn().execute(
            "UPDATE sources SET plugin = ?2, priority = ?3, enabled = ?4, config = ?5, updated_at = ?6, origin = ?7 WHERE id = ?1",
            params![row.id, row.plugin, row.priority, row.enabled, row.config.to_string(), now_ms(), row.origin],
        )?;
        Ok(())
    }

    /// Removes the sources defined in roster.toml that are no longer in `keep` (and their
    /// mirrors and cursors); sources created through the API stay.
    pub fn retain_sources(&self, keep: &[String]) -> Result<Vec<String>> {
        let existing: Vec<String> = self
            .sources()?
            .into_iter()
            .filter(|s| s.origin == "file" && !keep.contains(&s.id))
            .map(|s| s.id)
            .collect();
        for id in &existing {
            self.delete_source(id)?;
        }
        Ok(existing)
    }

    /// Removes a source, its mirror, cursor, accepted settings, schedule history, and what
    /// identity providers pushed to it with the tokens they pushed with: a source created
    /// again under the same id starts empty and opens to no token of the old one.
    pub fn delete_source(&self, id: &str) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute("DELETE FROM sources WHERE id = ?1", [id])?;
        for table in [
            "mirror_users",
            "mirror_groups",
            "mirror_memberships",
            "cursors",
            "transform_settings",
            "schedule_state",
            "scim_resources",
            "scim_tokens",
        ] {
            tx.execute(&format!("DELETE FROM {table} WHERE source = ?1"), [id])?;
        }
        tx.commit()?;
        Ok(n == 1)
    }

    /// One source.
    pub fn source(&self, id: &str) -> Result<Option<SourceRow>> {
        Ok(self.sources()?.into_iter().find(|s| s.id == id))
    }

    /// Every source in directory order.
    pub fn sources(&self) -> Result<Vec<SourceRow>> {
        let conn = self.reader();
        let mut st = conn.prepare(
            "SELECT id, plugin, priority, enabled, config, updated_at, origin FROM sources ORDER BY priority, id",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get::<_, String>(4)?,
                r.get(5)?,
                r.get::<_, String>(6)?,
            ))
        })?;
        rows.map(|r| {
            let (id, plugin, priority, enabled, config, updated_at, origin) = r?;
            Ok(SourceRow {
                id,
                plugin,
                priority,
                enabled,
                config: json_col("sources.config", &config)?,
                updated_at,
                origin,
            })
        })
        .collect()
    }

    /// The source's secrets, opened, in the shape its caller reads them as (the directory reads
    /// the runtime's secrets: name, value, hosts, kind).
    pub fn source_secrets<T: serde::de::DeserializeOwned>(&self, id: &str) -> Result<Vec<T>> {
        let sealed: Option<Option<Vec<u8>>> = self
            .reader()
            .query_row("SELECT secrets FROM sources WHERE id = ?1", [id], |r| r.get(0))
            .optional()?;
        let Some(sealed) = sealed else {
            return Err(StoreError::NotFound(format!("no source named '{id}'")));
        };
        let Some(sealed) = sealed else { return Ok(Vec::new()) };
        let plain = self.key.open(&sealed)?;
        serde_json::from_slice(&plain).map_err(|e| StoreError::Json {
            what: "sources.secrets",
            detail: e.to_string(),
        })
    }
}

//! Transform settings a chain step last accepted (`transform_settings`): what a broken settings
//! file falls back to.

use rusqlite::{OptionalExtension, params};

use super::{Result, Store, now_ms};

/// Settings a transform accepted.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AcceptedSettings {
    /// The settings JSON.
    pub settings: String,
    /// Its sha256.
    pub sha256: String,
    /// The file it came from.
    pub file: Option<String>,
    /// When it was accepted (unix ms).
    pub accepted_at: i64,
}

impl Store {
    /// Records the settings step `step` of `source`'s chain accepted.
    pub fn accept_settings(
        &self,
        source: &str,
        step: usize,
        plugin: &str,
        file: Option<&str>,
        settings: &str,
        sha256: &str,
    ) -> Result<()> {
        self.conn().execute(
            "INSERT INTO transform_settings (source, step, plugin, file, settings, sha256, accepted_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(source, step) DO UPDATE SET plugin = ?3, file = ?4, settings = ?5, sha256 = ?6, accepted_at = ?7
             WHERE sha256 != ?6 OR plugin != ?3",
            params![source, step as i64, plugin, file, settings, sha256, now_ms()],
        )?;
        Ok(())
    }

    /// The settings step `step` of `source`'s chain last accepted, if it was this plugin's.
    pub fn accepted_settings(&self, source: &str, step: usize, plugin: &str) -> Result<Option<AcceptedSettings>> {
        Ok(self
            .reader()
            .query_row(
                "SELECT settings, sha256, file, accepted_at FROM transform_settings WHERE source = ?1 AND step = ?2 AND plugin = ?3",
                params![source, step as i64, plugin],
                |r| {
                    Ok(AcceptedSettings {
                        settings: r.get(0)?,
                        sha256: r.get(1)?,
                        file: r.get(2)?,
                        accepted_at: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }
}

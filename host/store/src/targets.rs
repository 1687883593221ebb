//! The target created through the API (`api_target`): sealed as a whole, since it carries the
//! Bitbucket password or token; opened only to build the engine.

use rusqlite::{OptionalExtension, params};

use super::{Result, Store, StoreError, now_ms};

impl Store {
    /// The target created through the API, credentials included: (id, configuration JSON).
    pub fn api_target(&self) -> Result<Option<(String, serde_json::Value)>> {
        let row: Option<(String, Vec<u8>)> = self
            .reader()
            .query_row("SELECT id, sealed FROM api_target LIMIT 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let Some((id, sealed)) = row else { return Ok(None) };
        let plain = self.key.open(&sealed)?;
        let value = serde_json::from_slice(&plain).map_err(|e| StoreError::Json {
            what: "api_target.sealed",
            detail: e.to_string(),
        })?;
        Ok(Some((id, value)))
    }

    /// Creates or replaces the target created through the API (there is at most one).
    pub fn put_api_target(&self, id: &str, config: &serde_json::Value) -> Result<()> {
        let sealed = self.key.seal(config.to_string().as_bytes())?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM api_target WHERE id <> ?1", [id])?;
        tx.execute(
            "INSERT INTO api_target (id, sealed, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET sealed = ?2, updated_at = ?3",
            params![id, sealed, now_ms()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Forgets the target created through the API; false when there was none with this id.
    pub fn delete_api_target(&self, id: &str) -> Result<bool> {
        Ok(self.conn().execute("DELETE FROM api_target WHERE id = ?1", [id])? > 0)
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;
    use crate::crypto::Key;

    #[test]
    fn the_target_is_sealed_replaced_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let store = Store::open(&path, Key::from_bytes([1; 32])).unwrap();
        assert!(store.api_target().unwrap().is_none());
        let t = serde_json::json!({"id": "bb", "url": "http://x", "username": "roster", "token": {"value": "s3cr3t-token"}});
        store.put_api_target("bb", &t).unwrap();
        assert_eq!(store.api_target().unwrap().unwrap(), ("bb".to_string(), t.clone()));
        // On disk the token is not readable.
        drop(store);
        for file in ["r.db", "r.db-wal"] {
            let raw = std::fs::read(dir.path().join(file)).unwrap_or_default();
            assert!(!raw.windows(12).any(|w| w == b"s3cr3t-token"), "{file}");
        }
        let store = Store::open(&path, Key::from_bytes([1; 32])).unwrap();
        // A new id replaces the old one: there is one target.
        store.put_api_target("other", &t).unwrap();
        assert_eq!(store.api_target().unwrap().unwrap().0, "other");
        assert!(!store.delete_api_target("bb").unwrap());
        assert!(store.delete_api_target("other").unwrap());
        assert!(store.api_target().unwrap().is_none());
    }
}

//! The targets created through the API (`api_target`, one row per target id): each sealed as a
//! whole, since it carries the password or token; opened only to build the engines.

use rusqlite::params;

use super::{Result, Store, StoreError, now_ms};

impl Store {
    /// The targets created through the API, credentials included: (id, configuration JSON), in
    /// the order they were first created.
    pub fn api_targets(&self) -> Result<Vec<(String, serde_json::Value)>> {
        let rows: Vec<(String, Vec<u8>)> = {
            let conn = self.reader();
            let mut st = conn.prepare("SELECT id, sealed FROM api_target ORDER BY rowid")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        rows.into_iter()
            .map(|(id, sealed)| {
                let plain = self.key.open(&sealed)?;
                let value = serde_json::from_slice(&plain).map_err(|e| StoreError::Json {
                    what: "api_target.sealed",
                    detail: e.to_string(),
                })?;
                Ok((id, value))
            })
            .collect()
    }

    /// The target created through the API with this id, credentials included.
    pub fn api_target(&self, id: &str) -> Result<Option<serde_json::Value>> {
        Ok(self.api_targets()?.into_iter().find(|(i, _)| i == id).map(|(_, v)| v))
    }

    /// Creates or replaces the target created through the API with this id (others are kept).
    pub fn put_api_target(&self, id: &str, config: &serde_json::Value) -> Result<()> {
        let sealed = self.key.seal(config.to_string().as_bytes())?;
        self.conn().execute(
            "INSERT INTO api_target (id, sealed, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET sealed = ?2, updated_at = ?3",
            params![id, sealed, now_ms()],
        )?;
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
        assert!(store.api_targets().unwrap().is_empty());
        let t = serde_json::json!({"id": "bb", "url": "http://x", "username": "roster", "token": {"value": "s3cr3t-token"}});
        store.put_api_target("bb", &t).unwrap();
        assert_eq!(store.api_target("bb").unwrap().unwrap(), t.clone());
        // On disk the token is not readable.
        drop(store);
        for file in ["r.db", "r.db-wal"] {
            let raw = std::fs::read(dir.path().join(file)).unwrap_or_default();
            assert!(!raw.windows(12).any(|w| w == b"s3cr3t-token"), "{file}");
        }
        let store = Store::open(&path, Key::from_bytes([1; 32])).unwrap();
        // Another id is another target, kept beside the first, in the order created.
        store.put_api_target("other", &t).unwrap();
        store.put_api_target("bb", &t).unwrap();
        let ids: Vec<String> = store.api_targets().unwrap().into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, ["bb", "other"]);
        assert!(!store.delete_api_target("gone").unwrap());
        assert!(store.delete_api_target("other").unwrap());
        assert!(store.delete_api_target("bb").unwrap());
        assert!(store.api_targets().unwrap().is_empty());
    }
}

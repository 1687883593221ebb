//! API tokens (`api_tokens`): created by `roster token create`, shown once, stored as a sha256
//! hash, revocable. A token is `roster_<40 hex>`; only its hash can be looked up.

use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::{Result, Store, StoreError, now_ms};

/// What a token may do; each role includes the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything but secrets.
    Viewer,
    /// Also triggers and cancels runs, syncs single users, tests connections, previews.
    Operator,
    /// Also changes configuration, approves and rejects plans, uploads plugins.
    Admin,
}

impl Role {
    /// The name used in configuration, the CLI and the OpenAPI document.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Role, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(format!("unknown role `{other}`: use admin, operator or viewer")),
        }
    }
}

/// A token as listed (never its value).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TokenRow {
    /// Id (for revoking).
    pub id: i64,
    /// Who or what it is for.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Unix ms.
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
    /// Unix ms of its last use.
    pub last_used_at: Option<i64>,
    /// Unix ms of its revocation.
    pub revoked_at: Option<i64>,
}

/// What is kept of a token: its sha256, hex (API and SCIM tokens alike).
pub(crate) fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new token: `prefix` and `bytes` random bytes in hex; only its [`hash`] is stored.
pub(crate) fn mint(prefix: &str, bytes: usize) -> Result<String> {
    let mut b = vec![0u8; bytes];
    crate::fill_random(&mut b, "a token")?;
    Ok(format!("{prefix}{}", hex::encode(b)))
}

/// A token row as read: id, name, role, created_at, created_by, last_used_at, revoked_at.
type RawToken = (i64, String, String, i64, String, Option<i64>, Option<i64>);

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawToken> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn to_token((id, name, role, created_at, created_by, last_used_at, revoked_at): RawToken) -> Result<TokenRow> {
    let role = role.parse().map_err(|e: String| StoreError::Json {
        what: "api_tokens.role",
        detail: e,
    })?;
    Ok(TokenRow {
        id,
        name,
        role,
        created_at,
        created_by,
        last_used_at,
        revoked_at,
    })
}

const COLUMNS: &str = "id, name, role, created_at, created_by, last_used_at, revoked_at";

impl Store {
    /// Creates a token; returns its row and the token itself, which is not kept anywhere.
    pub fn create_token(&self, name: &str, role: Role, created_by: &str) -> Result<(TokenRow, String)> {
        let token = mint("roster_", 20)?;
        let conn = self.conn();
        conn.execute(
            "INSERT INTO api_tokens (name, role, sha256, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![name, role.as_str(), hash(&token), now_ms(), created_by],
        )?;
        let id = conn.last_insert_rowid();
        drop(conn);
        let row = self
            .tokens()?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or_else(|| StoreError::NotFound(format!("token {id}")))?;
        Ok((row, token))
    }

    /// The live token matching `token`, noting its use (to the minute: every request reads,
    /// but only the first in a minute writes, and not while a run holds the writer — a busy
    /// writer must never hold up authentication).
    pub fn verify_token(&self, token: &str) -> Result<Option<TokenRow>> {
        let found = self
            .reader()
            .query_row(
                &format!("SELECT {COLUMNS} FROM api_tokens WHERE sha256 = ?1 AND revoked_at IS NULL"),
                [hash(token)],
                row,
            )
            .optional()?;
        let Some(found) = found else { return Ok(None) };
        let now = now_ms();
        if found.5.is_none_or(|last| now - last >= 60_000)
            && let Some(conn) = self.try_conn()
        {
            conn.execute(
                "UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1",
                params![found.0, now],
            )?;
        }
        to_token(found).map(Some)
    }

    /// Every token, revoked ones included, newest first.
    pub fn tokens(&self) -> Result<Vec<TokenRow>> {
        let conn = self.reader();
        let mut st = conn.prepare(&format!("SELECT {COLUMNS} FROM api_tokens ORDER BY id DESC"))?;
        let rows: Vec<_> = st.query_map([], row)?.collect::<rusqlite::Result<_>>()?;
        rows.into_iter().map(to_token).collect()
    }

    /// Revokes a token; false when there is no live token with that id.
    pub fn revoke_token(&self, id: i64) -> Result<bool> {
        Ok(self.conn().execute(
            "UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, now_ms()],
        )? == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Key;

    #[test]
    fn tokens_are_kept_as_hashes_and_can_be_revoked() {
        let s = Store::memory(Key::from_bytes([3; 32])).unwrap();
        let (row, token) = s.create_token("ci", Role::Operator, "test").unwrap();
        assert!(token.starts_with("roster_") && token.len() == 47, "{token}");
        assert_eq!(s.verify_token(&token).unwrap().unwrap().role, Role::Operator);
        assert!(s.verify_token("roster_0000").unwrap().is_none());
        let stored: String = s
            .conn()
            .query_row("SELECT sha256 FROM api_tokens WHERE id = ?1", [row.id], |r| r.get(0))
            .unwrap();
        assert_ne!(stored, token);
        assert!(s.revoke_token(row.id).unwrap());
        assert!(!s.revoke_token(row.id).unwrap());
        assert!(s.verify_token(&token).unwrap().is_none());
        assert!(s.tokens().unwrap()[0].revoked_at.is_some());
    }

    /// `roster token revoke` runs in another process than `roster serve`: the server must
    /// refuse the token at its next request.
    #[test]
    fn a_token_revoked_through_another_connection_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roster.db");
        let server = Store::open(&path, Key::from_bytes([3; 32])).unwrap();
        let (row, token) = server.create_token("ci", Role::Viewer, "test").unwrap();
        assert!(server.verify_token(&token).unwrap().is_some());
        let cli = Store::open(&path, Key::from_bytes([3; 32])).unwrap();
        assert!(cli.revoke_token(row.id).unwrap());
        assert!(server.verify_token(&token).unwrap().is_none());
    }
}

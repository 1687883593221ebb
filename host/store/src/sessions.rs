//! Sessions of the admin pages (`ui_sessions`): opened by logging in with an API token, they act
//! with that token's name and role while the token is live. The cookie carries a random id of
//! which only the sha256 is kept; each session has its own CSRF (synchroniser) token.

use rusqlite::{OptionalExtension, params};

use super::tokens::{hash, mint};
use super::{Result, Role, Store, StoreError, now_ms};

/// A session ends after this long without a request (ms).
pub const SESSION_IDLE_MS: i64 = 2 * 60 * 60 * 1000;
/// A session ends this long after login whatever its use (ms).
pub const SESSION_LIFETIME_MS: i64 = 12 * 60 * 60 * 1000;

/// A live session, as a request finds it.
#[derive(Debug, Clone, PartialEq)]
pub struct UiSession {
    /// The token it logged in with (its id).
    pub token_id: i64,
    /// That token's name.
    pub token_name: String,
    /// That token's role.
    pub role: Role,
    /// The synchroniser token every change must carry.
    pub csrf: String,
    /// Unix ms of login.
    pub created_at: i64,
}

impl Store {
    /// Opens a session for the live token `token`; returns the session's id (for the cookie,
    /// kept nowhere) and the session. `None`: the token is unknown or revoked.
    pub fn open_session(&self, token: &str) -> Result<Option<(String, UiSession)>> {
        let Some(found) = self.verify_token(token)? else {
            return Ok(None);
        };
        let id = mint("", 32)?;
        let csrf = mint("", 32)?;
        let now = now_ms();
        let conn = self.conn();
        // Expired sessions go at each login, so the table never outgrows the live ones.
        conn.execute(
            "DELETE FROM ui_sessions WHERE last_seen_at < ?1 OR created_at < ?2",
            params![now - SESSION_IDLE_MS, now - SESSION_LIFETIME_MS],
        )?;
        conn.execute(
            "INSERT INTO ui_sessions (id_sha256, token_id, csrf, created_at, last_seen_at) VALUES (?1, ?2, ?3, ?4, ?4)",
            params![hash(&id), found.id, csrf, now],
        )?;
        Ok(Some((
            id,
            UiSession {
                token_id: found.id,
                token_name: found.name,
                role: found.role,
                csrf,
                created_at: now,
            },
        )))
    }

    /// The live session with id `id`: not expired, and its token not revoked. Notes its use to
    /// the minute, and not while a run holds the writer (reading a page must never wait for it).
    pub fn session(&self, id: &str) -> Result<Option<UiSession>> {
        let now = now_ms();
        let found = self
            .reader()
            .query_row(
                "SELECT s.token_id, t.name, t.role, s.csrf, s.created_at, s.last_seen_at
                 FROM ui_sessions s JOIN api_tokens t ON t.id = s.token_id
                 WHERE s.id_sha256 = ?1 AND t.revoked_at IS NULL
                   AND s.last_seen_at >= ?2 AND s.created_at >= ?3",
                params![hash(id), now - SESSION_IDLE_MS, now - SESSION_LIFETIME_MS],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, i64>(5)?,
                    ))
                },
            )
            .optional()?;
        let Some((token_id, token_name, role, csrf, created_at, last_seen)) = found else {
            return Ok(None);
        };
        if now - last_seen >= 60_000
            && let Some(conn) = self.try_conn()
        {
            conn.execute(
                "UPDATE ui_sessions SET last_seen_at = ?2 WHERE id_sha256 = ?1",
                params![hash(id), now],
            )?;
        }
        let role = role.parse().map_err(|e: String| StoreError::Json {
            what: "api_tokens.role",
            detail: e,
        })?;
        Ok(Some(UiSession {
            token_id,
            token_name,
            role,
            csrf,
            created_at,
        }))
    }

    /// Ends the session `id` (logout); false when there was none.
    pub fn close_session(&self, id: &str) -> Result<bool> {
        Ok(self
            .conn()
            .execute("DELETE FROM ui_sessions WHERE id_sha256 = ?1", [hash(id)])?
            == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Key;

    #[test]
    fn a_session_lives_while_its_token_does_and_ends_at_logout() {
        let s = Store::memory(Key::from_bytes([4; 32])).unwrap();
        let (row, token) = s.create_token("alice", Role::Operator, "test").unwrap();
        assert!(s.open_session("roster_nosuch").unwrap().is_none());
        let (id, opened) = s.open_session(&token).unwrap().unwrap();
        assert_eq!(opened.role, Role::Operator);
        assert_eq!(opened.token_name, "alice");
        let found = s.session(&id).unwrap().unwrap();
        assert_eq!(found, opened);
        // Only the hash of the id is stored.
        let stored: String = s
            .conn()
            .query_row("SELECT id_sha256 FROM ui_sessions", [], |r| r.get(0))
            .unwrap();
        assert_ne!(stored, id);
        // A second login is a second session with its own CSRF token.
        let (id2, second) = s.open_session(&token).unwrap().unwrap();
        assert_ne!(id2, id);
        assert_ne!(second.csrf, opened.csrf);
        assert!(s.close_session(&id).unwrap());
        assert!(s.session(&id).unwrap().is_none());
        assert!(!s.close_session(&id).unwrap());
        // Revoking the token ends its sessions at once.
        assert!(s.session(&id2).unwrap().is_some());
        s.revoke_token(row.id).unwrap();
        assert!(s.session(&id2).unwrap().is_none());
    }

    #[test]
    fn an_idle_session_expires() {
        let s = Store::memory(Key::from_bytes([4; 32])).unwrap();
        let (_, token) = s.create_token("bob", Role::Viewer, "test").unwrap();
        let (id, _) = s.open_session(&token).unwrap().unwrap();
        s.conn()
            .execute(
                "UPDATE ui_sessions SET last_seen_at = last_seen_at - ?1",
                [SESSION_IDLE_MS + 1],
            )
            .unwrap();
        assert!(s.session(&id).unwrap().is_none());
    }
}

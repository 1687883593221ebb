//! Applications allowed to read the served directory (`crowd_apps`), as Jira's "User server →
//! Add application" has them: a name, a password Roster generates and shows once (only its
//! SHA-256 is kept), the addresses it may call from, and the groups it may see.

use base64::Engine;
use rusqlite::{OptionalExtension, params};

use super::tokens::hash;
use super::{Result, Store, StoreError, json_col, now_ms};

/// An application allowed to read the served directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CrowdApp {
    /// Its name, as given (the HTTP Basic user name it calls with).
    pub name: String,
    /// Addresses and CIDR ranges it may call from.
    pub allowed: Vec<String>,
    /// The groups it sees (and their members); None: every group.
    pub groups: Option<Vec<String>>,
    /// Unix ms.
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
    /// Unix ms of its last use (to the minute).
    pub last_used_at: Option<i64>,
    /// What it licenses: the licence guard counts it on its own.
    pub licence: AppLicence,
}

/// What an application licenses: the active members of its licensed groups (those it can
/// see), up to its seats.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AppLicence {
    /// Groups whose members hold a licence in it (none: it licenses no one Roster counts).
    pub licensed_groups: Vec<String>,
    /// The users its licence allows (None: unlimited).
    pub seats: Option<i64>,
}

const COLUMNS: &str = "name, allowed, groups, created_at, created_by, last_used_at, licensed_groups, seats";

/// An application row as read: name, allowed, groups, created_at, created_by, last_used_at,
/// licensed_groups, seats.
type RawApp = (
    String,
    String,
    Option<String>,
    i64,
    String,
    Option<i64>,
    String,
    Option<i64>,
);

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawApp> {
    row_from(r, 0)
}

/// The application's columns starting at column `at`.
fn row_from(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<RawApp> {
    Ok((
        r.get(at)?,
        r.get(at + 1)?,
        r.get(at + 2)?,
        r.get(at + 3)?,
        r.get(at + 4)?,
        r.get(at + 5)?,
        r.get(at + 6)?,
        r.get(at + 7)?,
    ))
}

fn to_app(
    (name, allowed, groups, created_at, created_by, last_used_at, licensed_groups, seats): RawApp,
) -> Result<CrowdApp> {
    Ok(CrowdApp {
        name,
        allowed: json_col("crowd_apps.allowed", &allowed)?,
        groups: groups.map(|g| json_col("crowd_apps.groups", &g)).transpose()?,
        created_at,
        created_by,
        last_used_at,
        licence: AppLicence {
            licensed_groups: json_col("crowd_apps.licensed_groups", &licensed_groups)?,
            seats,
        },
    })
}

/// The licence checked (no negative seats, no blank group), its groups as JSON.
fn licence_json(licence: &AppLicence) -> Result<String> {
    if let Some(n) = licence.seats.filter(|n| *n < 0) {
        return Err(StoreError::Invalid(format!(
            "{n} is not a number of seats; give 0 or more, or none for no limit"
        )));
    }
    if licence.licensed_groups.iter().any(|g| g.trim().is_empty()) {
        return Err(StoreError::Invalid(
            "a licensed group's name is empty; name every group".into(),
        ));
    }
    serde_json::to_string(&licence.licensed_groups).map_err(|e| StoreError::Json {
        what: "crowd_apps.licensed_groups",
        detail: e.to_string(),
    })
}

/// A new password: 32 random bytes, base64url without padding (43 characters).
fn new_password() -> Result<String> {
    let mut b = [0u8; 32];
    crate::fill_random(&mut b, "a password")?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

/// Equal, in a time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    subtle::ConstantTimeEq::ct_eq(a.as_bytes(), b.as_bytes()).into()
}

/// The name is the HTTP Basic user name: it cannot be empty or hold a colon.
fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.contains(':') {
        return Err(StoreError::Invalid(format!(
            "{name:?} cannot name an application: its name is the user name it signs in with, so it must not be empty nor contain ':'"
        )));
    }
    Ok(())
}

/// The addresses, trimmed, each checked to be an address or a CIDR range; as JSON.
fn allowed_json(allowed: &[String]) -> Result<String> {
    let trimmed: Vec<String> = allowed.iter().map(|a| a.trim().to_string()).collect();
    for a in &trimmed {
        roster_http::addr::parse_range(a).map_err(StoreError::Invalid)?;
    }
    serde_json::to_string(&trimmed).map_err(|e| StoreError::Json {
        what: "crowd_apps.allowed",
        detail: e.to_string(),
    })
}

fn groups_json(groups: Option<&[String]>) -> Result<Option<String>> {
    groups
        .map(|g| {
            serde_json::to_string(g).map_err(|e| StoreError::Json {
                what: "crowd_apps.groups",
                detail: e.to_string(),
            })
        })
        .transpose()
}

fn no_app(name: &str) -> StoreError {
    StoreError::NotFound(format!(
        "there is no application named {name:?} for the served directory; create it first"
    ))
}

impl Store {
    /// Creates `name` with a fresh generated password, returned once (only its hash is kept);
    /// error if the name exists (case-insensitive) or an address is neither IP nor CIDR.
    pub fn crowd_app_create(
        &self,
        name: &str,
        allowed: &[String],
        groups: Option<&[String]>,
        actor: &str,
    ) -> Result<(CrowdApp, String)> {
        self.crowd_app_create_licensed(name, allowed, groups, &AppLicence::default(), actor)
    }

    /// [`Store::crowd_app_create`], with what the application licenses.
    pub fn crowd_app_create_licensed(
        &self,
        name: &str,
        allowed: &[String],
        groups: Option<&[String]>,
        licence: &AppLicence,
        actor: &str,
    ) -> Result<(CrowdApp, String)> {
        check_name(name)?;
        let allowed = allowed_json(allowed)?;
        let groups = groups_json(groups)?;
        let licensed = licence_json(licence)?;
        let password = new_password()?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let exists: Option<String> = tx
            .query_row(
                "SELECT name FROM crowd_apps WHERE lname = ?1",
                [name.to_lowercase()],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(existing) = exists {
            return Err(StoreError::Conflict(format!(
                "an application named {existing:?} exists already (names are compared in any case); choose another name, or rotate its password"
            )));
        }
        tx.execute(
            "INSERT INTO crowd_apps (lname, name, sha256, allowed, groups, created_at, created_by, \
             licensed_groups, seats) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                name.to_lowercase(),
                name,
                hash(&password),
                allowed,
                groups,
                now_ms(),
                actor,
                licensed,
                licence.seats
            ],
        )?;
        let app = tx.query_row(
            &format!("SELECT {COLUMNS} FROM crowd_apps WHERE lname = ?1"),
            [name.to_lowercase()],
            row,
        )?;
        tx.commit()?;
        Ok((to_app(app)?, password))
    }

    /// Every application, by name.
    pub fn crowd_apps(&self) -> Result<Vec<CrowdApp>> {
        let conn = self.reader();
        let mut st = conn.prepare(&format!("SELECT {COLUMNS} FROM crowd_apps ORDER BY lname"))?;
        let rows: Vec<RawApp> = st.query_map([], row)?.collect::<rusqlite::Result<_>>()?;
        rows.into_iter().map(to_app).collect()
    }

    /// The application named `name`, in any case.
    pub fn crowd_app(&self, name: &str) -> Result<Option<CrowdApp>> {
        let found = self
            .reader()
            .query_row(
                &format!("SELECT {COLUMNS} FROM crowd_apps WHERE lname = ?1"),
                [name.to_lowercase()],
                row,
            )
            .optional()?;
        found.map(to_app).transpose()
    }

    /// The application if `password` is its password (constant-time compare of hashes).
    pub fn crowd_app_verify(&self, name: &str, password: &str) -> Result<Option<CrowdApp>> {
        let offered = hash(password);
        let found: Option<(String, RawApp)> = self
            .reader()
            .query_row(
                &format!("SELECT sha256, {COLUMNS} FROM crowd_apps WHERE lname = ?1"),
                [name.to_lowercase()],
                |r| Ok((r.get(0)?, row_from(r, 1)?)),
            )
            .optional()?;
        match found {
            Some((stored, app)) if same(&stored, &offered) => to_app(app).map(Some),
            _ => Ok(None),
        }
    }

    /// Replaces the addresses and the visible groups of `name`.
    pub fn crowd_app_update(&self, name: &str, allowed: &[String], groups: Option<&[String]>) -> Result<CrowdApp> {
        let allowed = allowed_json(allowed)?;
        let groups = groups_json(groups)?;
        let changed = self.conn().execute(
            "UPDATE crowd_apps SET allowed = ?2, groups = ?3 WHERE lname = ?1",
            params![name.to_lowercase(), allowed, groups],
        )?;
        if changed == 0 {
            return Err(no_app(name));
        }
        self.crowd_app(name)?.ok_or_else(|| no_app(name))
    }

    /// Replaces what `name` licenses.
    pub fn crowd_app_set_licence(&self, name: &str, licence: &AppLicence) -> Result<CrowdApp> {
        let licensed = licence_json(licence)?;
        let changed = self.conn().execute(
            "UPDATE crowd_apps SET licensed_groups = ?2, seats = ?3 WHERE lname = ?1",
            params![name.to_lowercase(), licensed, licence.seats],
        )?;
        if changed == 0 {
            return Err(no_app(name));
        }
        self.crowd_app(name)?.ok_or_else(|| no_app(name))
    }

    /// Gives `name` a new generated password, returned once; the old one stops working at once.
    pub fn crowd_app_rotate(&self, name: &str) -> Result<String> {
        let password = new_password()?;
        let changed = self.conn().execute(
            "UPDATE crowd_apps SET sha256 = ?2 WHERE lname = ?1",
            params![name.to_lowercase(), hash(&password)],
        )?;
        if changed == 0 {
            return Err(no_app(name));
        }
        Ok(password)
    }

    /// Deletes `name`; false when there is none.
    pub fn crowd_app_delete(&self, name: &str) -> Result<bool> {
        Ok(self
            .conn()
            .execute("DELETE FROM crowd_apps WHERE lname = ?1", [name.to_lowercase()])?
            > 0)
    }

    /// Notes that `name` called at `at` (Unix ms): written at most once a minute, and not while
    /// the writer is busy — a run's writes must never hold up an application's request.
    pub fn crowd_app_used(&self, name: &str, at: i64) -> Result<()> {
        if let Some(conn) = self.try_conn() {
            conn.execute(
                "UPDATE crowd_apps SET last_used_at = ?2 WHERE lname = ?1 \
                 AND (last_used_at IS NULL OR last_used_at <= ?2 - 60000)",
                params![name.to_lowercase(), at],
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Key;

    fn store() -> Store {
        Store::memory(Key::from_bytes([9; 32])).unwrap()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_application_signs_in_with_the_password_shown_once_until_it_is_rotated() {
        let s = store();
        let (app, password) = s
            .crowd_app_create("Jira", &strings(&["10.0.0.0/8", " 192.0.2.7 "]), None, "admin")
            .unwrap();
        assert_eq!(app.name, "Jira");
        assert_eq!(app.allowed, ["10.0.0.0/8", "192.0.2.7"]);
        assert_eq!(
            (app.groups, app.created_by.as_str(), app.last_used_at),
            (None, "admin", None)
        );
        assert_eq!(password.len(), 43, "32 bytes, base64url: {password}");
        assert!(
            password
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );

        // Only the hash is kept.
        let stored: String = s
            .conn()
            .query_row("SELECT sha256 FROM crowd_apps", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, hash(&password));
        assert!(!stored.contains(&password));

        assert_eq!(s.crowd_app_verify("jira", &password).unwrap().unwrap().name, "Jira");
        assert!(s.crowd_app_verify("Jira", "wrong").unwrap().is_none());
        assert!(s.crowd_app_verify("Jira", "").unwrap().is_none());
        assert!(s.crowd_app_verify("confluence", &password).unwrap().is_none());

        let rotated = s.crowd_app_rotate("JIRA").unwrap();
        assert_ne!(rotated, password);
        assert!(
            s.crowd_app_verify("Jira", &password).unwrap().is_none(),
            "the old password is refused"
        );
        assert!(s.crowd_app_verify("Jira", &rotated).unwrap().is_some());

        assert!(s.crowd_app_delete("jira").unwrap());
        assert!(!s.crowd_app_delete("jira").unwrap());
        assert!(s.crowd_app_verify("Jira", &rotated).unwrap().is_none());
        assert!(matches!(s.crowd_app_rotate("jira"), Err(StoreError::NotFound(_))));
    }

    #[test]
    fn names_are_unique_in_any_case_and_addresses_must_be_addresses() {
        let s = store();
        let (_, one) = s.crowd_app_create("jira", &strings(&["::1"]), None, "a").unwrap();
        let err = s.crowd_app_create("JIRA", &[], None, "a").unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        let err = s
            .crowd_app_create("bitbucket", &strings(&["10.0.0.1", "intranet"]), None, "a")
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid(m) if m.contains("\"intranet\"")),
            "{err:?}"
        );
        assert!(matches!(
            s.crowd_app_create("a:b", &[], None, "a"),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            s.crowd_app_create(" ", &[], None, "a"),
            Err(StoreError::Invalid(_))
        ));
        assert_eq!(s.crowd_apps().unwrap().len(), 1, "refused applications are not created");
        assert!(s.crowd_app_verify("jira", &one).unwrap().is_some());
    }

    #[test]
    fn addresses_and_visible_groups_can_be_changed_and_use_is_noted_to_the_minute() {
        let s = store();
        s.crowd_app_create("bamboo", &strings(&["127.0.0.1"]), None, "a")
            .unwrap();
        s.crowd_app_create("Confluence", &[], Some(&strings(&["wiki-users"])), "a")
            .unwrap();
        let apps = s.crowd_apps().unwrap();
        assert_eq!(
            apps.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
            ["bamboo", "Confluence"]
        );
        assert_eq!(apps[1].groups.as_deref(), Some(&strings(&["wiki-users"])[..]));

        let app = s
            .crowd_app_update("BAMBOO", &strings(&["10.1.0.0/16"]), Some(&strings(&["ci"])))
            .unwrap();
        assert_eq!(
            (app.allowed, app.groups),
            (strings(&["10.1.0.0/16"]), Some(strings(&["ci"])))
        );
        assert!(matches!(
            s.crowd_app_update("bamboo", &strings(&["10.1.0.0/33"]), None),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            s.crowd_app_update("nope", &[], None),
            Err(StoreError::NotFound(_))
        ));

        s.crowd_app_used("bamboo", 1_000_000).unwrap();
        s.crowd_app_used("bamboo", 1_030_000).unwrap();
        assert_eq!(s.crowd_app("bamboo").unwrap().unwrap().last_used_at, Some(1_000_000));
        s.crowd_app_used("Bamboo", 1_060_000).unwrap();
        assert_eq!(s.crowd_app("bamboo").unwrap().unwrap().last_used_at, Some(1_060_000));
        assert!(s.crowd_app("nope").unwrap().is_none());
    }

    #[test]
    fn passwords_are_compared_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert!(!same("", "a"));
    }

    #[test]
    fn what_an_application_licenses_is_kept_and_replaced_whole() {
        let s = store();
        let (app, _) = s.crowd_app_create("bitbucket", &strings(&["::1"]), None, "a").unwrap();
        assert_eq!(
            app.licence,
            AppLicence::default(),
            "licenses nothing Roster counts, unlimited"
        );
        let jira = AppLicence {
            licensed_groups: strings(&["jira-users", "jira-software-users"]),
            seats: Some(10),
        };
        let (app, _) = s
            .crowd_app_create_licensed("jira", &strings(&["::1"]), None, &jira, "a")
            .unwrap();
        assert_eq!(app.licence, jira);
        assert_eq!(s.crowd_app("JIRA").unwrap().unwrap().licence, jira);
        // Changing the addresses leaves the licence alone.
        let app = s.crowd_app_update("jira", &strings(&["10.0.0.1"]), None).unwrap();
        assert_eq!(app.licence, jira);
        let raised = AppLicence {
            licensed_groups: strings(&["jira-users"]),
            seats: Some(11),
        };
        assert_eq!(s.crowd_app_set_licence("Jira", &raised).unwrap().licence, raised);
        for bad in [
            AppLicence {
                licensed_groups: Vec::new(),
                seats: Some(-1),
            },
            AppLicence {
                licensed_groups: strings(&[" "]),
                seats: None,
            },
        ] {
            assert!(matches!(
                s.crowd_app_set_licence("jira", &bad),
                Err(StoreError::Invalid(_))
            ));
        }
        assert_eq!(
            s.crowd_app("jira").unwrap().unwrap().licence,
            raised,
            "refused: unchanged"
        );
        assert!(matches!(
            s.crowd_app_set_licence("confluence", &raised),
            Err(StoreError::NotFound(_))
        ));
    }
}

//! The directory store: SQLite (bundled, WAL) behind one narrow module, so SQL stays here.
//!
//! Tables and why they exist: `migrations/0001_init.sql`. Each submodule owns one group of
//! tables: `sources` (configuration and sealed secrets), `mirror` (staging and the committed
//! mirror), `identities` (IdP record ↔ Bitbucket account), `runs` (runs, plans, results),
//! `settings` (transform settings last accepted), `tokens` (API tokens, hashed), `schedules`
//! (what the scheduler remembers), `scim` (what identity providers push, and their tokens),
//! `target_accounts` (which target account each name is, and calls to metered targets),
//! `destroyed` (what applied runs took away, for the guard's
//! rolling window), `audit`, `served` (the directory served as a Crowd server, and its change
//! log), `crowd_apps` (the applications allowed to read it).

mod audit;
mod crowd_apps;
pub mod crypto;
mod desired;
mod destroyed;
mod drift;
mod files;
mod identities;
mod lock;
mod migrate;
mod mirror;
mod presence;
mod runs;
mod schedules;
mod scim;
mod served;
mod sessions;
mod settings;
mod sources;
mod target_accounts;
mod targets;
mod tokens;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

pub use audit::AuditEntry;
pub use crowd_apps::{AppLicence, CrowdApp};
pub use destroyed::{Destroyed, Review, WindowTotals};
pub use drift::{Adopted, Baseline};
pub use files::prepare_data_dir;
pub use identities::{Identity, IdentityState};
pub use lock::TargetLock;
pub use migrate::MIGRATIONS;
pub use mirror::{MirrorGroup, MirrorMembership, MirrorSnapshot, MirrorUser, Removed, Repeated};
pub use runs::{PausedRun, PlanRow, ResultRow, RunFilter, RunRow};
pub use schedules::ScheduleState;
pub use scim::{
    MemberOp, MemberRef, Members, Mirrored, Pruned, ScimKind, ScimLookup, ScimMember, ScimResource, ScimTokenRow,
    ScimWrite, ScimWriteError, new_scim_id,
};
pub use served::{
    EventKind, EventOp, EventsSince, ServedApplied, ServedChange, ServedEvent, ServedGroup, ServedState, ServedUser,
    ServedView,
};
pub use sessions::{SESSION_IDLE_MS, SESSION_LIFETIME_MS, UiSession};
pub use settings::AcceptedSettings;
pub use sources::SourceRow;
pub use target_accounts::{CallTaken, CallWindow, TargetAccount};
pub use tokens::{Role, TokenRow};

/// Errors of the store; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A migration that was applied has been edited since.
    #[error(
        "migration {name} was changed after it was applied to this database (recorded checksum {recorded}, file now {current}); restore the original file — applied migrations are never edited, add a new one instead"
    )]
    MigrationChanged {
        /// The migration file.
        name: String,
        /// Checksum in the database.
        recorded: String,
        /// Checksum of the file in this binary.
        current: String,
    },
    /// The database was written by a newer Roster.
    #[error(
        "the database is at schema version {db}, newer than this Roster knows ({known}); run the Roster version that wrote it, or a newer one"
    )]
    TooNew {
        /// Version in the database.
        db: i64,
        /// Highest version this binary knows.
        known: i64,
    },
    /// Secrets could not be sealed or opened.
    #[error("{0}")]
    Crypto(String),
    /// The key given does not open the secrets sealed in the database.
    #[error(
        "{key} does not open the {sealed} secret(s) sealed in {db}: it is not the key they were sealed with. Restore that key (the secret.key backed up with the database, or the ROSTER_SECRET_KEY used before), or run `roster secrets reset --yes` to forget the sealed secrets and give them again"
    )]
    WrongKey {
        /// Where the key came from.
        key: String,
        /// The database.
        db: String,
        /// Sealed rows it does not open.
        sealed: usize,
    },
    /// The key file is missing while secrets are sealed in the database.
    #[error(
        "the key file {file} is missing, and {db} holds {sealed} secret(s) sealed with the key it held; Roster does not make a new key over them. Restore the key file from the backup taken with the database (or set ROSTER_SECRET_KEY to that key), or run `roster secrets reset --yes` to forget the sealed secrets and give them again"
    )]
    KeyMissing {
        /// The key file.
        file: String,
        /// The database.
        db: String,
        /// Sealed rows.
        sealed: usize,
    },
    /// The data folder's files could not be created or given their modes.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// A JSON column did not parse.
    #[error("corrupt JSON in {what}: {detail}")]
    Json {
        /// Which column.
        what: &'static str,
        /// The parser's words.
        detail: String,
    },
    /// Something asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Another run holds the target.
    #[error("{0}")]
    Busy(String),
    /// A change to the served directory names users or groups it does not hold.
    #[error(
        "the served directory has no {kind} named {}; read the target again (the next run plans from what it holds)",
        names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
    )]
    NotServed {
        /// "user" or "group".
        kind: &'static str,
        /// The names it does not hold.
        names: Vec<String>,
    },
    /// What was asked contradicts what is stored (a name taken); the message says which.
    #[error("{0}")]
    Conflict(String),
    /// What was given is not acceptable (an empty name, an address that is none); the message
    /// says which and what is accepted.
    #[error("{0}")]
    Invalid(String),
}

/// Result of store operations.
pub type Result<T> = std::result::Result<T, StoreError>;

/// Fills `buf` with random bytes for `what` (named in the error: keys, tokens, ids, names).
pub(crate) fn fill_random(buf: &mut [u8], what: &str) -> Result<()> {
    getrandom::fill(buf).map_err(|e| StoreError::Crypto(format!("no randomness for {what}: {e}")))
}

/// A random (version 4) UUID for `what`: the form identity providers and Crowd clients expect
/// of an id.
pub(crate) fn new_uuid(what: &str) -> Result<String> {
    let mut b = [0u8; 16];
    fill_random(&mut b, what)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

/// The store. Cheap to share behind an `Arc`. One connection writes (SQLite has one writer);
/// a few more read, so listing runs or serving a page never waits for a run's bulk write (WAL
/// lets readers see the last commit while the writer works). Async code calls it through
/// [`Store::blocking`], so SQLite never holds up an async worker.
pub struct Store {
    conn: Mutex<rusqlite::Connection>,
    readers: Vec<Mutex<rusqlite::Connection>>,
    key: crypto::Key,
    /// The database file (none in memory): run locks live beside it.
    path: Option<PathBuf>,
    /// This store's presence file, named by each run it starts (see `presence`).
    presence: presence::Presence,
}

/// Connections that only read, besides the writer (a file database only: an in-memory one is
/// private to its connection, so it reads through the writer).
const READERS: usize = 4;

/// A column holding one of the model's words (a run state, a trigger, …), typed; a word this
/// Roster does not know is a conversion error naming the column's value.
pub(crate) fn word<T: std::str::FromStr<Err = String>>(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    text.parse()
        .map_err(|e: String| rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, e.into()))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Store {
    /// Opens (or creates, 0600) the database, applies pending migrations and checks applied
    /// A key for another purpose (the plugin cache's MAC), derived from the secret key this
    /// store was opened with: the secret key itself never leaves the store.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        self.key.derive(purpose)
    }

    /// ones; refuses a key that does not open the secrets sealed in it.
    pub fn open(path: &Path, key: crypto::Key) -> Result<Store> {
        let store = Self::open_unchecked(path, key)?;
        store.check_key("the secret key")?;
        Ok(store)
    }

    /// Opens the database with the key `source` names. A missing key file is created only
    /// while nothing is sealed in the database: a lost key is never silently replaced.
    pub fn open_with(path: &Path, source: &crypto::KeySource) -> Result<Store> {
        match (crypto::Key::read(source)?, source) {
            (Some(key), _) => {
                let store = Self::open_unchecked(path, key)?;
                store.check_key(&source.describe())?;
                Ok(store)
            }
            (None, crypto::KeySource::File(file)) => {
                let key = crypto::Key::generate()?;
                let store = Self::open_unchecked(path, key.clone())?;
                let sealed = store.sealed_rows()?.len();
                if sealed > 0 {
                    return Err(StoreError::KeyMissing {
                        file: file.display().to_string(),
                        db: path.display().to_string(),
                        sealed,
                    });
                }
                key.write_new(file)?;
                Ok(store)
            }
            (None, crypto::KeySource::Env(_)) => Err(StoreError::Crypto("ROSTER_SECRET_KEY is empty".into())),
        }
    }

    /// Forgets every sealed secret (the sources' secrets, the target created through the API)
    /// so that the key `source` names — made anew when its file is missing — seals from now on.
    pub fn reset_sealed(path: &Path, source: &crypto::KeySource) -> Result<Forgotten> {
        let (key, new_file) = match (crypto::Key::read(source)?, source) {
            (Some(key), _) => (key, None),
            (None, crypto::KeySource::File(file)) => (crypto::Key::generate()?, Some(file)),
            (None, crypto::KeySource::Env(_)) => return Err(StoreError::Crypto("ROSTER_SECRET_KEY is empty".into())),
        };
        let store = Self::open_unchecked(path, key.clone())?;
        let forgotten = store.forget_sealed()?;
        if let Some(file) = new_file {
            key.write_new(file)?;
        }
        Ok(forgotten)
    }

    fn open_unchecked(path: &Path, key: crypto::Key) -> Result<Store> {
        files::prepare_database(path).map_err(|source| StoreError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let conn = rusqlite::Connection::open(path)?;
        let mut store = Self::init(conn, key, Some(path.to_path_buf()))?;
        for _ in 0..READERS {
            let r = rusqlite::Connection::open_with_flags(
                path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            // 2 MiB each: readers serve short API queries and one-pass mirror scans, which a large
            // cache would only hold on to.
            r.pragma_update(None, "cache_size", -2048)?;
            r.busy_timeout(std::time::Duration::from_secs(10))?;
            store.readers.push(Mutex::new(r));
        }
        Ok(store)
    }

    /// Every sealed value in the database: the sources' secrets and the target created
    /// through the API.
    fn sealed_rows(&self) -> Result<Vec<Vec<u8>>> {
        let conn = self.conn();
        let mut st = conn
            .prepare("SELECT secrets FROM sources WHERE secrets IS NOT NULL UNION ALL SELECT sealed FROM api_target")?;
        let rows = st.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Refuses a key that does not open every sealed value (`key` says where it came from).
    fn check_key(&self, key: &str) -> Result<()> {
        let rows = self.sealed_rows()?;
        let closed = rows.iter().filter(|r| self.key.open(r).is_err()).count();
        if closed > 0 {
            return Err(StoreError::WrongKey {
                key: key.to_string(),
                db: self
                    .path
                    .as_ref()
                    .map_or_else(|| "the database".to_string(), |p| p.display().to_string()),
                sealed: closed,
            });
        }
        Ok(())
    }

    /// Forgets every sealed value; what was forgotten.
    fn forget_sealed(&self) -> Result<Forgotten> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let sources: Vec<String> = {
            let mut st = tx.prepare("SELECT id FROM sources WHERE secrets IS NOT NULL ORDER BY id")?;
            let rows = st.query_map([], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let targets: Vec<String> = {
            let mut st = tx.prepare("SELECT id FROM api_target ORDER BY rowid")?;
            let rows = st.query_map([], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        tx.execute("UPDATE sources SET secrets = NULL WHERE secrets IS NOT NULL", [])?;
        tx.execute("DELETE FROM api_target", [])?;
        tx.commit()?;
        Ok(Forgotten { sources, targets })
    }

    /// An in-memory store, for tests.
    pub fn memory(key: crypto::Key) -> Result<Store> {
        Self::init(rusqlite::Connection::open_in_memory()?, key, None)
    }

    fn init(mut conn: rusqlite::Connection, key: crypto::Key, path: Option<PathBuf>) -> Result<Store> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // 16 MiB of page cache: large staging inserts and promotions touch many index pages.
        conn.pragma_update(None, "cache_size", -16384)?;
        // Checkpoint the WAL every ~40 MB instead of every 4 MB: large fetches write in bulk.
        conn.pragma_update(None, "wal_autocheckpoint", 10000)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        migrate::apply(&mut conn)?;
        let presence = presence::Presence::claim(path.as_deref())?;
        Ok(Store {
            conn: Mutex::new(conn),
            readers: Vec::new(),
            key,
            path,
            presence,
        })
    }

    /// Claims `target` for one run, against every process using this database; an error
    /// naming the holder when another run has it. `holder` says who, for that message.
    pub fn hold_target(&self, target: &str, holder: &str) -> Result<TargetLock> {
        lock::hold(self.path.as_deref(), target, holder)
    }

    /// Runs `f` off the async scheduler: how async code uses the store, so a query or a bulk
    /// write never stalls the other tasks of its worker (an API request, a SCIM push, another
    /// run's progress). On a multi-threaded runtime this worker hands its other tasks to a
    /// fresh one while `f` runs on this thread (`block_in_place`): the rows a run stages are
    /// allocated and freed by the thread that made them, which keeps the allocator's per-thread
    /// caches — and so the peak memory — as small as running inline (BENCHMARKS.md). On a
    /// current-thread runtime (tests) there is no other worker, and `f` runs inline.
    pub async fn blocking<T, F>(self: &std::sync::Arc<Self>, f: F) -> T
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> T + Send + 'static,
    {
        use tokio::runtime::{Handle, RuntimeFlavor};
        match Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(|| f(self)),
            _ => f(self),
        }
    }

    /// A connection for reading: a free reader, else the first one to come free (the writer for
    /// an in-memory store).
    pub(crate) fn reader(&self) -> MutexGuard<'_, rusqlite::Connection> {
        for r in &self.readers {
            if let Ok(guard) = r.try_lock() {
                return guard;
            }
        }
        match self.readers.first() {
            Some(r) => r.lock().unwrap_or_else(|p| p.into_inner()),
            None => self.conn(),
        }
    }

    /// The writer, if no one holds it now.
    pub(crate) fn try_conn(&self) -> Option<MutexGuard<'_, rusqlite::Connection>> {
        match self.conn.try_lock() {
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, rusqlite::Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The writer, each commit through it durable until it is dropped. The store runs WAL with
    /// `synchronous=NORMAL`, where the last commits before a power loss may roll back: right for
    /// a run, which is re-planned from its sources, wrong for a write someone was told is done
    /// (an identity provider's push answered 2xx is never sent again). `FULL` syncs the WAL at
    /// each commit; `NORMAL` is restored when the guard goes.
    pub(crate) fn durable_conn(&self) -> Result<Durable<'_>> {
        let conn = self.conn();
        conn.pragma_update(None, "synchronous", "FULL")?;
        Ok(Durable(conn))
    }
}

/// The writer with `synchronous=FULL` (see [`Store::durable_conn`]).
pub(crate) struct Durable<'a>(MutexGuard<'a, rusqlite::Connection>);

impl std::ops::Deref for Durable<'_> {
    type Target = rusqlite::Connection;
    fn deref(&self) -> &rusqlite::Connection {
        &self.0
    }
}

impl std::ops::DerefMut for Durable<'_> {
    fn deref_mut(&mut self) -> &mut rusqlite::Connection {
        &mut self.0
    }
}

impl Drop for Durable<'_> {
    fn drop(&mut self) {
        // Left at FULL, the writer would only be slower, never less safe.
        if let Err(e) = self.0.pragma_update(None, "synchronous", "NORMAL") {
            tracing::warn!("could not restore synchronous=NORMAL on the store's writer: {e}");
        }
    }
}

/// What [`Store::reset_sealed`] forgot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forgotten {
    /// Sources whose secrets were sealed.
    pub sources: Vec<String>,
    /// The targets created through the API (all of each is sealed, so all of them go).
    pub targets: Vec<String>,
}

pub(crate) fn json_col<T: serde::de::DeserializeOwned>(what: &'static str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Json {
        what,
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod key_tests {
    use super::*;
    use crypto::{Key, KeySource};

    fn seal_something(store: &Store) {
        let row = SourceRow {
            id: "hr".into(),
            plugin: "file".into(),
            priority: 1,
            enabled: true,
            config: serde_json::json!({}),
            origin: "api".into(),
            updated_at: 0,
        };
        store
            .upsert_source(
                &row,
                &serde_json::json!([{"name": "pw", "value": "s3cret", "hosts": []}]),
            )
            .unwrap();
        store
            .put_api_target("bb", &serde_json::json!({"id": "bb", "token": {"value": "t0k"}}))
            .unwrap();
    }

    #[test]
    fn a_wrong_key_is_refused_while_secrets_are_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("roster.db");
        drop(Store::open(&db, Key::from_bytes([2; 32])).unwrap());
        // Nothing sealed yet: any key will do.
        let store = Store::open(&db, Key::from_bytes([1; 32])).unwrap();
        seal_something(&store);
        drop(store);
        let err = Store::open(&db, Key::from_bytes([2; 32])).err().unwrap();
        assert!(matches!(err, StoreError::WrongKey { sealed: 2, .. }), "{err}");
        assert!(err.to_string().contains("roster secrets reset"), "{err}");
        assert!(Store::open(&db, Key::from_bytes([1; 32])).is_ok());
    }

    #[test]
    fn a_lost_key_file_is_not_replaced_while_secrets_are_sealed_until_they_are_reset() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("roster.db");
        let file = dir.path().join("secret.key");
        let source = KeySource::File(file.clone());
        let store = Store::open_with(&db, &source).unwrap();
        assert!(file.is_file(), "created while nothing is sealed");
        seal_something(&store);
        drop(store);
        assert!(Store::open_with(&db, &source).is_ok(), "the same key opens them");
        std::fs::remove_file(&file).unwrap();
        let err = Store::open_with(&db, &source).err().unwrap();
        assert!(matches!(err, StoreError::KeyMissing { sealed: 2, .. }), "{err}");
        assert!(err.to_string().contains("roster secrets reset --yes"), "{err}");
        assert!(!file.exists(), "no new key is made over sealed secrets");
        // A wrong key given instead is refused too.
        let other = KeySource::Env(base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            [5u8; 32],
        ));
        assert!(matches!(
            Store::open_with(&db, &other),
            Err(StoreError::WrongKey { .. })
        ));

        let forgotten = Store::reset_sealed(&db, &source).unwrap();
        assert_eq!(
            forgotten,
            Forgotten {
                sources: vec!["hr".into()],
                targets: vec!["bb".into()]
            }
        );
        assert!(file.is_file(), "the reset made a new key");
        let store = Store::open_with(&db, &source).unwrap();
        assert!(store.api_targets().unwrap().is_empty());
        assert!(store.source_secrets::<serde_json::Value>("hr").unwrap().is_empty());
        assert_eq!(store.sources().unwrap().len(), 1, "the source itself stays");
    }

    #[cfg(unix)]
    #[test]
    fn the_database_its_wal_and_the_key_file_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("roster.db");
        let store = Store::open_with(&db, &KeySource::File(dir.path().join("secret.key"))).unwrap();
        seal_something(&store);
        let _lock = store.hold_target("bb", "test").unwrap();
        let mode = |name: &str| std::fs::metadata(dir.path().join(name)).unwrap().permissions().mode() & 0o777;
        for f in [
            "roster.db",
            "roster.db-wal",
            "roster.db-shm",
            "secret.key",
            "roster.db.bb.lock",
        ] {
            assert_eq!(mode(f), 0o600, "{f}");
        }
    }
}

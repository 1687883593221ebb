//! The directory store: SQLite (bundled, WAL) behind one narrow module, so SQL stays here.
//!
//! Tables and why they exist: `migrations/0001_init.sql`. Each submodule owns one group of
//! tables: `sources` (configuration and sealed secrets), `mirror` (staging and the committed
//! mirror), `identities` (IdP record ↔ Bitbucket account), `runs` (runs, plans, results),
//! `settings` (transform settings last accepted), `tokens` (API tokens, hashed), `schedules`
//! (what the scheduler remembers), `destroyed` (what applied runs took away, for the guard's
//! rolling window), `audit`.

mod audit;
pub mod crypto;
mod desired;
mod destroyed;
mod identities;
mod lock;
mod migrate;
mod mirror;
mod runs;
mod schedules;
mod settings;
mod sources;
mod targets;
mod tokens;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

pub use audit::AuditEntry;
pub use destroyed::{Destroyed, Review, WindowTotals};
pub use identities::{Identity, IdentityState};
pub use lock::TargetLock;
pub use migrate::MIGRATIONS;
pub use mirror::{MirrorGroup, MirrorMembership, MirrorUser, Removed};
pub use runs::{PlanRow, ResultRow, RunFilter, RunRow};
pub use schedules::ScheduleState;
pub use settings::AcceptedSettings;
pub use sources::SourceRow;
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
}

/// Result of store operations.
pub type Result<T> = std::result::Result<T, StoreError>;

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
    /// Opens (or creates) the database, applies pending migrations and checks applied ones.
    pub fn open(path: &Path, key: crypto::Key) -> Result<Store> {
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
        Ok(Store {
            conn: Mutex::new(conn),
            readers: Vec::new(),
            key,
            path,
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
}

pub(crate) fn json_col<T: serde::de::DeserializeOwned>(what: &'static str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Json {
        what,
        detail: e.to_string(),
    })
}

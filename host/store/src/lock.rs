//! One run at a time per target, across processes: `roster serve`, a `roster sync` from a
//! shell and a cron job may share one data folder. An advisory lock on a file beside the
//! database (`flock`, released by the kernel when the holder exits, even killed) says who runs.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::{Result, StoreError};

/// Held while a run of one target is in progress; dropping it lets the next one in.
#[derive(Debug)]
pub struct TargetLock {
    _file: Option<File>,
}

/// The lock file of `target` beside the database at `db`.
fn lock_path(db: &Path, target: &str) -> PathBuf {
    let name = db
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Target ids are validated as letters, digits, - and _ (config), so they are safe in a name.
    db.with_file_name(format!("{name}.{target}.lock"))
}

/// Takes the lock of `target` or says who holds it. `db` is none for an in-memory store,
/// which no other process can see.
pub(super) fn hold(db: Option<&Path>, target: &str, holder: &str) -> Result<TargetLock> {
    let Some(db) = db else {
        return Ok(TargetLock { _file: None });
    };
    let path = lock_path(db, target);
    let io = |e: std::io::Error| StoreError::Busy(format!("cannot open the run lock {}: {e}", path.display()));
    let mut file = crate::files::private_options(crate::files::Create::IfMissing)
        .open(&path)
        .map_err(io)?;
    crate::files::tighten(&path, crate::files::FILE_MODE).map_err(io)?;
    match file.try_lock() {
        Ok(()) => {
            // Who holds it, for the message the next one gets; the lock itself is the flock.
            let _ = file.set_len(0);
            let _ = file.rewind();
            let _ = write!(file, "{holder} (pid {})", std::process::id());
            Ok(TargetLock { _file: Some(file) })
        }
        Err(TryLockError::WouldBlock) => {
            let mut who = String::new();
            let _ = file.read_to_string(&mut who);
            let who = if who.trim().is_empty() {
                "another run".to_string()
            } else {
                who
            };
            Err(StoreError::Busy(format!(
                "target '{target}' is being synced by {who}; wait for it to end (one run at a time per target)"
            )))
        }
        Err(TryLockError::Error(e)) => Err(io(e)),
    }
}

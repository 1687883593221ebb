//! Which process runs a run. Each open store holds a presence file beside the database
//! (`<db>.live/<pid>-<random>`) locked for as long as it is open — `flock`, which the kernel
//! releases when the process exits, even killed — and each run records the name of its
//! store's file. A run left `running` whose file nobody holds any more was cut short (killed,
//! crashed, restarted) and can be marked `interrupted`; a run of a live process, this one or
//! another, is left alone. A process id alone would not do: ids are reused.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use super::{Result, StoreError};

/// This store's presence: its name, and for a file database the locked file.
#[derive(Debug)]
pub(crate) struct Presence {
    name: String,
    file: Option<(PathBuf, File)>,
}

/// Whether the process behind a presence name still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// It holds its file (or it is this store).
    Alive,
    /// Nobody holds its file: the process ended.
    Gone,
}

/// The folder of presence files beside the database at `db`.
fn folder(db: &Path) -> PathBuf {
    let name = db
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    db.with_file_name(format!("{name}.live"))
}

fn io(what: &Path, e: std::io::Error) -> StoreError {
    StoreError::Busy(format!(
        "cannot keep the presence file {} beside the database ({e}); check that the data folder is writable",
        what.display()
    ))
}

/// A name for this store: the process id for a person reading the folder, random bytes so a
/// reused id never passes for its predecessor.
fn fresh_name() -> Result<String> {
    let mut b = [0u8; 8];
    crate::fill_random(&mut b, "a presence name")?;
    Ok(format!("{}-{}", std::process::id(), hex::encode(b)))
}

/// A name this store could have written: no separators, no dot files (half-made ones).
fn plausible(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

impl Presence {
    /// Claims a presence for a store of the database at `db` (none: in memory, where no other
    /// process can see the runs).
    pub(crate) fn claim(db: Option<&Path>) -> Result<Presence> {
        let name = fresh_name()?;
        let Some(db) = db else {
            return Ok(Presence { name, file: None });
        };
        let dir = folder(db);
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir).map_err(|e| io(&dir, e))?;
        // Locked under a dot name, then renamed: a sweep never sees the file unlocked and takes
        // a live process for a dead one.
        let tmp = dir.join(format!(".{name}"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| io(&tmp, e))?;
        file.try_lock().map_err(|e| io(&tmp, e.into()))?;
        let path = dir.join(&name);
        std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
        Ok(Presence {
            name,
            file: Some((path, file)),
        })
    }

    /// This store's name, recorded with each run it starts.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Whether the store named `name` is still open somewhere. An answer the file system
    /// cannot give counts as alive: a run is never marked interrupted on a guess.
    pub(crate) fn liveness(&self, name: &str) -> Liveness {
        if name == self.name {
            return Liveness::Alive;
        }
        let Some((own, _)) = &self.file else {
            // In memory, every run was started by this store.
            return Liveness::Gone;
        };
        if !plausible(name) {
            return Liveness::Gone;
        }
        let Some(dir) = own.parent() else {
            return Liveness::Alive;
        };
        let path = dir.join(name);
        match OpenOptions::new().read(true).write(true).open(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Liveness::Gone,
            Err(e) => {
                tracing::warn!(file = %path.display(), "cannot tell whether the process of a run still runs: {e}");
                Liveness::Alive
            }
            Ok(file) => match file.try_lock() {
                Ok(()) => {
                    // Its process is gone; the file only said so.
                    let _ = std::fs::remove_file(&path);
                    Liveness::Gone
                }
                Err(TryLockError::WouldBlock) => Liveness::Alive,
                Err(TryLockError::Error(e)) => {
                    tracing::warn!(file = %path.display(), "cannot tell whether the process of a run still runs: {e}");
                    Liveness::Alive
                }
            },
        }
    }

    /// Removes the files of processes that ended (the kernel released their locks, but nobody
    /// removed the files: they were killed).
    pub(crate) fn sweep(&self) {
        let Some((own, _)) = &self.file else { return };
        let Some(dir) = own.parent() else { return };
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if plausible(&name) {
                self.liveness(&name);
            }
        }
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        if let Some((path, _file)) = &self.file {
            // Removed while still locked (the lock goes with the handle, right after).
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_presence_is_alive_while_held_and_gone_after() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("roster.db");
        let a = Presence::claim(Some(&db)).unwrap();
        let b = Presence::claim(Some(&db)).unwrap();
        assert_ne!(a.name(), b.name());
        assert_eq!(a.liveness(b.name()), Liveness::Alive, "another open store is alive");
        assert_eq!(a.liveness(a.name()), Liveness::Alive);
        let gone = b.name().to_string();
        // A killed process leaves its file behind, unlocked.
        let (path, file) = b
            .file
            .as_ref()
            .map(|(p, f)| (p.clone(), f.try_clone().unwrap()))
            .unwrap();
        std::mem::forget(b);
        file.unlock().unwrap();
        drop(file);
        assert!(path.exists());
        assert_eq!(a.liveness(&gone), Liveness::Gone);
        assert!(!path.exists(), "the stale file is removed");
        assert_eq!(a.liveness(&gone), Liveness::Gone, "and stays gone");
        assert_eq!(a.liveness("../etc"), Liveness::Gone);
    }
}

//! The data folder and the files Roster keeps in it (the database with its WAL and shared
//! memory, the key file, the run locks) are its own: the folder is created 0700 and every
//! file 0600, whatever the umask. Looser modes found on start are tightened, with a warning.

use std::path::Path;

/// Mode of the data folder.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file Roster writes into it.
pub const FILE_MODE: u32 = 0o600;

/// Creates the data folder (0700), or tightens an existing one; what it had to tighten, if
/// anything, already logged as a warning. The files in it are tightened by their owners when
/// they are opened ([`crate::Store::open`], [`crate::crypto::Key`]).
pub fn prepare_data_dir(dir: &Path) -> std::io::Result<Option<String>> {
    if !dir.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
        builder.create(dir)?;
    }
    tighten(dir, DIR_MODE)
}

/// The database at `db` and its WAL and shared-memory files: created 0600 when missing (SQLite
/// gives its WAL and shared memory the database's mode), tightened when looser.
pub(crate) fn prepare_database(db: &Path) -> std::io::Result<()> {
    if !db.exists() {
        // An empty file is an empty database.
        private_options(Create::New).open(db)?;
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let path = std::path::PathBuf::from(name);
        if path.is_file() {
            tighten(&path, FILE_MODE)?;
        }
    }
    Ok(())
}

/// Takes away from `path` every permission `mode` does not give; what was done, if anything.
pub(crate) fn tighten(path: &Path, mode: u32) -> std::io::Result<Option<String>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let now = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if now & !mode != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
            let note = format!(
                "{} was readable or writable by others (mode {now:o}); set to {mode:o}",
                path.display()
            );
            tracing::warn!("{note}");
            return Ok(Some(note));
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(None)
}

/// Whether opening a private file may find one already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Create {
    /// It must not exist yet.
    New,
    /// Created if missing, kept as it is if there.
    IfMissing,
}

/// Options that open a file for reading and writing, created with mode 0600 (the umask can
/// only take more away).
pub(crate) fn private_options(create: Create) -> std::fs::OpenOptions {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true);
    match create {
        Create::New => opts.create_new(true),
        Create::IfMissing => opts.create(true).truncate(false),
    };
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, FILE_MODE);
    opts
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_data_folder_and_the_database_are_private_and_loose_modes_are_tightened() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        assert_eq!(prepare_data_dir(&dir).unwrap(), None);
        assert_eq!(mode(&dir), 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(prepare_data_dir(&dir).unwrap().unwrap().contains("755"));
        assert_eq!(mode(&dir), 0o700);

        let db = dir.join("roster.db");
        prepare_database(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        for f in ["roster.db", "roster.db-wal", "roster.db-shm"] {
            std::fs::write(dir.join(f), b"").unwrap();
            std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o664)).unwrap();
        }
        prepare_database(&db).unwrap();
        for f in ["roster.db", "roster.db-wal", "roster.db-shm"] {
            assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
        }
    }
}

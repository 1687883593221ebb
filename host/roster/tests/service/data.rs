//! The data folder as the `roster` binary leaves it: private whatever the umask, loose modes
//! tightened on start, and a lost or wrong secret key refused (never replaced) while secrets
//! are sealed, until `roster secrets reset --yes` forgets them.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use roster_store::Store;
use roster_store::crypto::KeySource;

/// `roster --data-dir DATA ARGS…` under umask 000, with no `ROSTER_SECRET_KEY`.
fn roster(data: &Path, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_roster"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("ROSTER_SECRET_KEY")
        .output()
        .unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn the_data_folder_is_private_and_a_lost_key_is_refused_until_the_secrets_are_reset() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let created = roster(&data, &["token", "create", "--role", "viewer", "--name", "ops"]);
    assert!(created.status.success(), "{}", stderr(&created));
    assert_eq!(mode(&data), 0o700);
    for f in ["roster.db", "roster.db-wal", "roster.db-shm", "secret.key"] {
        let p = data.join(f);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{f}");
        }
    }
    assert_eq!(mode(&data.join("secret.key")), 0o600);

    // Loosened by hand: tightened on the next start, with a warning.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(data.join("roster.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let listed = roster(&data, &["token", "list"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(
        stderr(&listed).contains("readable or writable by others"),
        "{}",
        stderr(&listed)
    );
    assert_eq!((mode(&data), mode(&data.join("roster.db"))), (0o700, 0o600));

    // A target created through the API is sealed with the key.
    let key_file = data.join("secret.key");
    let store = Store::open_with(&data.join("roster.db"), &KeySource::File(key_file.clone())).unwrap();
    let target = serde_json::json!({"id": "bb", "url": "https://bitbucket.example", "username": "roster", "token": {"value": "t0k-91c2"}});
    store.put_api_target("bb", &target).unwrap();
    drop(store);

    // The key file is lost: refused with what to do, and no new key is made.
    std::fs::remove_file(&key_file).unwrap();
    let refused = roster(&data, &["token", "list"]);
    assert!(!refused.status.success());
    let why = stderr(&refused);
    assert!(
        why.contains("secret.key is missing") && why.contains("roster secrets reset --yes"),
        "{why}"
    );
    assert!(!key_file.exists(), "a lost key is never silently replaced");
    // Another key is refused too.
    std::fs::write(&key_file, "BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU=").unwrap();
    let wrong = roster(&data, &["token", "list"]);
    assert!(!wrong.status.success());
    assert!(
        stderr(&wrong).contains("does not open the 1 secret(s)"),
        "{}",
        stderr(&wrong)
    );
    std::fs::remove_file(&key_file).unwrap();

    // The reset asks to be sure, then forgets the sealed secrets and makes a new key.
    let unsure = roster(&data, &["secrets", "reset"]);
    assert!(
        !unsure.status.success() && stderr(&unsure).contains("--yes"),
        "{}",
        stderr(&unsure)
    );
    assert!(!key_file.exists());
    let reset = roster(&data, &["secrets", "reset", "--yes"]);
    assert!(reset.status.success(), "{}", stderr(&reset));
    assert!(String::from_utf8_lossy(&reset.stdout).contains("target 'bb'"));
    assert_eq!(mode(&key_file), 0o600);
    let listed = roster(&data, &["token", "list"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let store = Store::open_with(&data.join("roster.db"), &KeySource::File(key_file)).unwrap();
    assert!(store.api_targets().unwrap().is_empty());
    assert!(store.audit_log(10).unwrap().iter().any(|e| e.action == "secrets.reset"));
}

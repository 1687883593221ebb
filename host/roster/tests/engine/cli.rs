//! The `roster` command line.

use crate::common;

use std::process::Command;

#[test]
fn plugins_list_prints_world_version_and_sha_and_names_failures() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(common::component("normalize"), plugins.join("normalize.wasm")).unwrap();
    std::fs::copy(common::component("fixture_hostile"), plugins.join("hostile.wasm")).unwrap();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_roster"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(["plugins", "list"])
            .output()
            .unwrap()
    };

    let out = run();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sha = &roster_runtime::loader::sha256_hex(&std::fs::read(common::component("normalize")).unwrap())[..12];
    let row = stdout
        .lines()
        .find(|l| l.starts_with("normalize"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols, ["normalize", "transform", "0.1.0", "-", sha, "normalize.wasm"]);
    assert!(stdout.contains("VERIFIES PASSWORDS"), "{stdout}");
    let hostile: Vec<&str> = stdout
        .lines()
        .find(|l| l.starts_with("hostile"))
        .unwrap_or_else(|| panic!("{stdout}"))
        .split_whitespace()
        .collect();
    assert_eq!(hostile[..4], ["hostile", "connector", "1.0.0", "no"], "{stdout}");

    std::fs::copy(common::component("fixture_future_major"), plugins.join("future.wasm")).unwrap();
    let out = run();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        stdout.contains("FAILED") && stdout.contains("future.wasm") && stdout.contains("roster:plugin@0.2.0"),
        "{stdout}"
    );
}

/// `--log-format json` makes every log line a JSON object (level, message, fields, target) for
/// log shippers; the default is plain text for people.
#[test]
fn logs_are_json_lines_when_asked_and_text_otherwise() {
    let run = |format: &str| {
        // A new data folder: opening it logs the new key and each migration at info.
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_roster"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--log-format", format, "check"])
            .env_remove("RUST_BACKTRACE")
            .env("ROSTER_LOG", "info")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let json = run("json");
    let logged: Vec<serde_json::Value> = json
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        logged.iter().any(|v| v["level"] == "INFO"
            && v["fields"]["message"] == "applied database migration"
            && v["fields"]["migration"] == "0001_init.sql"
            && v["target"] == "roster_store::migrate"),
        "{json}"
    );
    let human = run("human");
    assert!(human.contains("applied database migration"), "{human}");
    assert!(!human.lines().any(|l| l.starts_with('{')), "{human}");
}

/// A source that pushes to Roster (SCIM) has nothing to fetch: `roster fetch` and `roster sync`
/// say so and succeed (sync plans from its mirror as last pushed) instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_and_sync_say_a_pushed_source_is_not_fetched() {
    let sim = roster_sim::bitbucket::BitbucketSim::start(common::world::bitbucket()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("roster.toml");
    std::fs::write(
        &config,
        format!(
            "[[source]]\nid = \"entra\"\n[source.push]\nprotocol = \"scim\"\n\n[target]\nurl = \"{}\"\nusername = \"admin\"\npassword = {{ value = \"password\" }}\ndefault_groups = [\"bitbucket-users\"]\n",
            sim.url()
        ),
    )
    .unwrap();
    for command in ["fetch", "sync"] {
        let (data, config) = (dir.path().to_path_buf(), config.clone());
        let out = tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_roster"))
                .arg("--data-dir")
                .arg(data)
                .arg("--config")
                .arg(config)
                .arg(command)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{command}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("entra") && stdout.contains("pushed to Roster: nothing fetched"),
            "{command}: {stdout}"
        );
    }
}

/// Runs `roster` with this data folder and configuration; the output.
fn roster(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_roster"));
    cmd.arg("--data-dir")
        .arg(dir)
        .arg("--config")
        .arg(dir.join("roster.toml"))
        .args(args)
        .env_remove("ROSTER_TZ")
        .env_remove("TZ");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Times are dates in the zone asked for (`--tz`, `ROSTER_TZ`), never raw unix milliseconds:
/// `roster runs list` shows when each run started, `roster runs show` gives RFC 3339 with the
/// zone's offset; an unknown zone is refused by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_show_their_times_as_dates_in_the_zone_asked_for() {
    let sim = roster_sim::bitbucket::BitbucketSim::start(common::world::bitbucket()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("roster.toml"),
        format!(
            "[[source]]\nid = \"entra\"\n[source.push]\nprotocol = \"scim\"\n\n[target]\nurl = \"{}\"\nusername = \"admin\"\npassword = {{ value = \"password\" }}\ndefault_groups = [\"bitbucket-users\"]\n",
            sim.url()
        ),
    )
    .unwrap();
    let data = dir.path().to_path_buf();
    let before = chrono::Utc::now();
    let (list, show, utc, bad) = tokio::task::spawn_blocking(move || {
        let sync = roster(&data, &["sync"], &[]);
        assert!(sync.status.success(), "{}", text(&sync));
        (
            roster(&data, &["runs", "list"], &[("ROSTER_TZ", "Asia/Tokyo")]),
            roster(&data, &["--tz", "Asia/Tokyo", "runs", "show", "1"], &[]),
            roster(&data, &["--tz", "UTC", "runs", "list"], &[]),
            roster(&data, &["--tz", "Mars/Olympus_Mons", "runs", "list"], &[]),
        )
    })
    .await
    .unwrap();
    let listed = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(list.status.success(), "{}", text(&list));
    assert!(
        listed.lines().next().unwrap().contains("STARTED") && !listed.contains("unix ms"),
        "{listed}"
    );
    let row = listed.lines().nth(1).unwrap_or_else(|| panic!("{listed}"));
    let run: serde_json::Value =
        serde_json::from_slice(&show.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&show)));
    let started = run["started_at"].as_str().unwrap_or_else(|| panic!("{run}"));
    assert!(started.ends_with("+09:00"), "{started}");
    let at = chrono::DateTime::parse_from_rfc3339(started).unwrap();
    assert!(
        (at.timestamp() - before.timestamp()).abs() < 120,
        "{started} vs {before}"
    );
    assert!(
        row.contains(&at.format("%Y-%m-%d %H:%M:%S JST").to_string()),
        "the start as a date in Tokyo, as `runs show` has it: {row} / {started}"
    );
    let utc = String::from_utf8_lossy(&utc.stdout).to_string();
    assert!(
        utc.contains(&at.to_utc().format("%Y-%m-%d %H:%M:%S UTC").to_string()),
        "{utc}"
    );
    assert!(!bad.status.success());
    let said = text(&bad);
    assert!(
        said.contains("'Mars/Olympus_Mons'") && said.contains("Europe/Berlin"),
        "{said}"
    );
}

/// A configuration naming a plugin that is not loaded is refused when it is read — by the CLI
/// commands and by `roster serve` — naming the plugin and listing the plugins there, instead of
/// failing its first run with "plugin 'nosuch' - (sha256 -, -)".
#[test]
fn a_source_naming_a_plugin_that_is_not_loaded_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(common::component("normalize"), plugins.join("normalize.wasm")).unwrap();
    let write = |source: &str| {
        std::fs::write(
            dir.path().join("roster.toml"),
            format!("[[source]]\nid = \"hr\"\n{source}\n"),
        )
        .unwrap()
    };
    write("plugin = \"nosuch\"");
    for args in [&["check"][..], &["fetch"], &["sync", "--dry-run"]] {
        let out = roster(dir.path(), args, &[]);
        assert!(!out.status.success(), "{args:?}: {}", text(&out));
        let said = text(&out);
        assert!(
            said.contains("source 'hr' names the connector plugin 'nosuch', which is not loaded")
                && said.contains("the plugins loaded are normalize (transform)"),
            "{args:?}: {said}"
        );
        assert!(!said.contains("sha256 -"), "{said}");
    }
    // A transform is a plugin too; and a push source has no connector to miss.
    write("[source.push]\nprotocol = \"scim\"\n[[source.transforms]]\nplugin = \"mapping\"");
    let said = text(&roster(dir.path(), &["check"], &[]));
    assert!(
        said.contains("names the transform plugin 'mapping' in transform step 1, which is not loaded"),
        "{said}"
    );
    write("plugin = \"normalize\"");
    let said = text(&roster(dir.path(), &["check"], &[]));
    assert!(
        said.contains("names 'normalize' as its connector, but it is a transform plugin"),
        "{said}"
    );
    // `roster serve` refuses to start rather than serve a configuration that cannot run.
    write("plugin = \"nosuch\"");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_roster"))
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--config")
        .arg(dir.path().join("roster.toml"))
        .args(["serve", "--listen", "127.0.0.1:0", "--no-schedule"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = serve.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            serve.kill().unwrap();
            panic!("roster serve started with a source naming a missing plugin");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let out = serve.wait_with_output().unwrap();
    assert!(!status.success());
    let said = text(&out);
    assert!(
        said.contains("'nosuch'") && said.contains("normalize (transform)"),
        "{said}"
    );
}

/// A missing export file is said in the administrator's words — which file, and which setting
/// to check — not as the sandbox's "No such file or directory (os error 44)".
#[test]
fn a_missing_export_file_is_named_in_the_users_words() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::create_dir_all(dir.path().join("exports")).unwrap();
    std::fs::copy(common::component("file"), plugins.join("file.wasm")).unwrap();
    std::fs::write(
        dir.path().join("roster.toml"),
        "[[source]]\nid = \"hr\"\nplugin = \"file\"\nfiles = \"exports\"\nsettings = { path = \"users.json\" }\n",
    )
    .unwrap();
    for args in [&["check"][..], &["fetch"]] {
        let out = roster(dir.path(), args, &[]);
        assert!(!out.status.success(), "{args:?}: {}", text(&out));
        let said = text(&out);
        assert!(
            said.contains("the export file '/data/users.json' does not exist — check the source's `path`"),
            "{args:?}: {said}"
        );
        assert!(!said.contains("os error"), "{args:?}: {said}");
    }
}

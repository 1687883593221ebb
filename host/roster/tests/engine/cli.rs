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
    assert_eq!(cols, ["normalize", "transform", "0.1.0", sha, "normalize.wasm"]);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("hostile") && l.contains("connector") && l.contains("1.0.0")),
        "{stdout}"
    );

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

//! Authoring custom transforms: the example in `plugins/examples/` — Rust on the SDK, JavaScript
//! through jco/ComponentizeJS, Python through componentize-py — loads in the host and maps one
//! table of sample users and groups the same way in every language, reasons and errors included.
//!
//! The Rust example is built with the plugins workspace and always tested. The JavaScript and
//! Python ones need their toolchains (`plugins/examples/build.sh` installs them into
//! `plugins/examples/.tools/`), so their tests are ignored by `cargo test` and run by `.ci/run`:
//! `cargo test -p roster --test runtime -- --ignored authoring::`.

use crate::common;

use std::path::PathBuf;

use roster_runtime::types::{Group, GroupOutcome, User};
use roster_runtime::{
    GuestFailure, JobFailure, Limits, LoadReport, Runtime, RuntimeConfig, SourceAccess, StepOutcome, World,
};

/// The plugin names the three examples report from `describe`.
const RUST: &str = "contractors-rust";

fn attrs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn user(id: &str, username: &str, active: bool, attributes: &[(&str, &str)]) -> User {
    User {
        id: id.into(),
        username: username.into(),
        email: Some(format!("{id}@example.com")),
        display_name: Some(format!("Person {id}")),
        active,
        attributes: attrs(attributes),
    }
}

fn group(id: &str, name: &str) -> Group {
    Group {
        id: id.into(),
        name: name.into(),
        description: Some(format!("{name} (from the IdP)")),
        attributes: attrs(&[("source", "idp")]),
    }
}

/// What the transform should make of one input record.
#[derive(Debug)]
enum Expect {
    /// Unchanged, no reason: no rule decided.
    Pass,
    /// Unchanged, with this reason.
    Kept(&'static str),
    /// Username changed to the first, for the reason in the second.
    Renamed(&'static str, &'static str),
    /// Filtered out, with this reason.
    Dropped(&'static str),
    /// Could not be evaluated: skipped, with this error.
    Error(&'static str),
    /// A vendor group: kept, and fanned out to the named group, with this reason.
    FanOut(&'static str, &'static str),
}

/// The settings under test with their sample users and groups, and the expected outcomes.
struct Case {
    settings: &'static str,
    users: Vec<(User, Expect)>,
    groups: Vec<(Group, Expect)>,
}

fn cases() -> Vec<Case> {
    use Expect::*;
    vec![
        Case {
            settings: "{}",
            users: vec![
                (user("u1", "alice", true, &[("employeeType", "Employee")]), Pass),
                (
                    user(
                        "u2",
                        "bob",
                        true,
                        &[("department", "R&D"), ("employeeType", "Contractor")],
                    ),
                    Renamed("bob-ext", "contractor (employeeType=Contractor): bob → bob-ext"),
                ),
                (
                    user("u3", "carol-ext", true, &[("employeeType", "  contractor ")]),
                    Kept("contractor (employeeType=contractor): username already ends with -ext"),
                ),
                (
                    user("u4", "dave", false, &[("employeeType", "Contractor")]),
                    Dropped("contractor (employeeType=Contractor): inactive, dropped"),
                ),
                (
                    user(
                        "u5",
                        "erin",
                        true,
                        &[("employeeType", "Contractor"), ("employeeType", "Employee")],
                    ),
                    Error("employeeType has 2 different values (Contractor, Employee); expected one"),
                ),
                (user("u6", "frank", false, &[]), Pass),
                (
                    user(
                        "u7",
                        "grace",
                        true,
                        &[("employeeType", "CONTRACTOR"), ("employeeType", "contractor")],
                    ),
                    Renamed("grace-ext", "contractor (employeeType=CONTRACTOR): grace → grace-ext"),
                ),
                (
                    user(
                        "u8",
                        "zoë.ünal",
                        true,
                        &[("employeeType", "Contractor"), ("city", "Zürich")],
                    ),
                    Renamed(
                        "zoë.ünal-ext",
                        "contractor (employeeType=Contractor): zoë.ünal → zoë.ünal-ext",
                    ),
                ),
                (user("u9", "heidi", true, &[("EmployeeType", "Contractor")]), Pass),
            ],
            groups: vec![
                (group("g1", "developers"), Pass),
                (
                    group("g2", "Vendor-Acme"),
                    FanOut("contractors", "vendor group Acme: members also join contractors"),
                ),
                (
                    group("g3", "Vendor-  Globex "),
                    FanOut("contractors", "vendor group Globex: members also join contractors"),
                ),
                (
                    group("g4", "Vendor- "),
                    Error("vendor group \"Vendor- \" has no vendor name after \"Vendor-\""),
                ),
                (group("g5", "vendor-initech"), Pass),
            ],
        },
        Case {
            settings: r#"{"attribute": "workerType", "values": ["Freelancer", " vendor staff "], "suffix": ".x",
                "drop_inactive": false, "vendor_prefix": "EXT_", "contractors_group": "externals"}"#,
            users: vec![
                (
                    user("u10", "ivan", false, &[("workerType", "freelancer")]),
                    Renamed("ivan.x", "contractor (workerType=freelancer): ivan → ivan.x"),
                ),
                (
                    user("u11", "judy", true, &[("workerType", "Vendor Staff")]),
                    Renamed("judy.x", "contractor (workerType=Vendor Staff): judy → judy.x"),
                ),
                (user("u12", "mallory", true, &[("employeeType", "Contractor")]), Pass),
                (
                    user(
                        "u13",
                        "niaj",
                        true,
                        &[("workerType", "Freelancer"), ("workerType", "Employee")],
                    ),
                    Error("workerType has 2 different values (Freelancer, Employee); expected one"),
                ),
            ],
            groups: vec![
                (
                    group("g6", "EXT_Umbrella"),
                    FanOut("externals", "vendor group Umbrella: members also join externals"),
                ),
                (group("g7", "Vendor-Acme"), Pass),
            ],
        },
    ]
}

/// Settings every language must refuse with exactly this `config` message (a prefix for the
/// one that quotes the JSON parser, whose words differ by language).
const KNOWN: &str = "(known: attribute, values, suffix, drop_inactive, vendor_prefix, contractors_group)";

fn bad_settings() -> Vec<(&'static str, String)> {
    let e = |m: &str| format!("invalid settings: {m}");
    vec![
        (
            r#"{"sufix": "-x", "Attribute": "a"}"#,
            e(&format!("unknown setting `Attribute`, `sufix` {KNOWN}")),
        ),
        (r#"{"suffix": 5}"#, e("`suffix` must be a non-empty string")),
        (r#"{"suffix": ""}"#, e("`suffix` must be a non-empty string")),
        (r#"{"attribute": null}"#, e("`attribute` must be a non-empty string")),
        // Checked in a fixed order: `values` before `suffix`, whatever the JSON's order.
        (
            r#"{"suffix": 5, "values": []}"#,
            e("`values` must be a non-empty list of strings"),
        ),
        (
            r#"{"values": ["a", 1]}"#,
            e("`values` must be a non-empty list of strings"),
        ),
        (r#"{"drop_inactive": 1}"#, e("`drop_inactive` must be true or false")),
        (
            r#"{"contractors_group": ["x"]}"#,
            e("`contractors_group` must be a non-empty string"),
        ),
        ("[1, 2]", e("expected a JSON object")),
        ("{not json", e("not JSON: ")),
    ]
}

/// Checks one outcome against what was expected; returns the outcome as text for comparing
/// languages with each other.
fn check_user(plugin: &str, input: &User, expect: &Expect, got: &StepOutcome) -> String {
    let ctx = format!("{plugin}: user {} ({expect:?}): got {got:?}", input.id);
    let unchanged = |u: Option<&User>| assert_eq!(format!("{u:?}"), format!("{:?}", Some(input)), "{ctx}");
    match expect {
        Expect::Pass => {
            unchanged(got.user());
            assert_eq!((got.reason(), got.error()), (None, None), "{ctx}");
        }
        Expect::Kept(reason) => {
            unchanged(got.user());
            assert_eq!((got.reason(), got.error()), (Some(*reason), None), "{ctx}");
        }
        Expect::Renamed(name, reason) => {
            let renamed = User {
                username: name.to_string(),
                ..input.clone()
            };
            assert_eq!(format!("{:?}", got.user()), format!("{:?}", Some(renamed)), "{ctx}");
            assert_eq!((got.reason(), got.error()), (Some(*reason), None), "{ctx}");
        }
        Expect::Dropped(reason) => {
            assert!(got.user().is_none(), "{ctx}");
            assert_eq!((got.reason(), got.error()), (Some(*reason), None), "{ctx}");
        }
        Expect::Error(error) => {
            assert!(got.user().is_none(), "{ctx}");
            assert_eq!(got.error(), Some(*error), "{ctx}");
        }
        Expect::FanOut(..) => unreachable!("not a user expectation"),
    }
    format!("{got:?}")
}

fn check_group(plugin: &str, input: &Group, expect: &Expect, got: &GroupOutcome) -> String {
    let ctx = format!("{plugin}: group {} ({expect:?}): got {got:?}", input.id);
    match expect {
        Expect::Pass => {
            assert_eq!(
                format!("{:?}", got.groups),
                format!("{:?}", vec![input.clone()]),
                "{ctx}"
            );
            assert_eq!((got.reason.as_deref(), got.error.as_deref()), (None, None), "{ctx}");
        }
        Expect::FanOut(to, reason) => {
            let everyone = Group {
                id: input.id.clone(),
                name: to.to_string(),
                description: None,
                attributes: Vec::new(),
            };
            assert_eq!(
                format!("{:?}", got.groups),
                format!("{:?}", vec![input.clone(), everyone]),
                "{ctx}"
            );
            assert_eq!(
                (got.reason.as_deref(), got.error.as_deref()),
                (Some(*reason), None),
                "{ctx}"
            );
        }
        Expect::Error(error) => {
            assert!(got.groups.is_empty(), "{ctx}");
            assert_eq!(got.error.as_deref(), Some(*error), "{ctx}");
        }
        _ => unreachable!("not a group expectation"),
    }
    format!("{got:?}")
}

/// Runs the whole table, the refused settings and `describe` through one plugin; returns a
/// transcript of every outcome and message, which must be identical across languages.
async fn run_table(rt: &Runtime, plugin: &str) -> Vec<String> {
    let loaded = rt.plugin(plugin).unwrap_or_else(|| panic!("{plugin} is not loaded"));
    assert_eq!(loaded.world, World::Transform);
    assert_eq!(loaded.label.version, "0.1.0");
    assert!(
        loaded.description.contains("Contractors get a username suffix"),
        "{}",
        loaded.description
    );
    let mut transcript = vec![
        loaded.description.clone(),
        // The schema's text may differ in spacing; its meaning may not.
        serde_json::from_str::<serde_json::Value>(&loaded.settings_schema)
            .expect("the settings schema is JSON")
            .to_string(),
    ];
    let mut job = rt
        .job(plugin, Limits::default(), SourceAccess::none())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for case in cases() {
        let users: Vec<User> = case.users.iter().map(|(u, _)| u.clone()).collect();
        let out = job
            .map_users(case.settings, users.clone())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.len(), users.len());
        for ((input, expect), got) in case.users.iter().zip(&out) {
            transcript.push(check_user(plugin, input, expect, got));
        }
        let groups: Vec<Group> = case.groups.iter().map(|(g, _)| g.clone()).collect();
        let out = job
            .map_groups(case.settings, &groups)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.len(), groups.len());
        for ((input, expect), got) in case.groups.iter().zip(&out) {
            transcript.push(check_group(plugin, input, expect, got));
        }
    }
    // Empty settings mean the defaults; an empty batch is fine.
    assert!(job.map_users("", Vec::new()).await.unwrap().is_empty(), "{plugin}");
    let defaults = job
        .map_users("", vec![user("u2", "bob", true, &[("employeeType", "Contractor")])])
        .await
        .unwrap();
    assert_eq!(defaults[0].user().map(|u| u.username.as_str()), Some("bob-ext"));
    // Bad settings are refused even for an empty batch (the host checks a new settings file that
    // way), for users and groups alike, with the same words in every language.
    for (settings, message) in bad_settings() {
        for groups in [false, true] {
            let message = message.clone();
            let failure = if groups {
                job.map_groups(settings, &[]).await.map(|_| ())
            } else {
                job.map_users(settings, Vec::new()).await.map(|_| ())
            };
            let err = failure.expect_err(settings);
            let JobFailure::Guest(GuestFailure::Config(got)) = &err.failure else {
                panic!("{plugin}: {settings}: expected a config error, got {err}")
            };
            assert!(
                got.starts_with(&message) && (message.ends_with(": ") || got == &message),
                "{plugin}: {settings}: {got:?} is not {message:?}"
            );
            // The JSON parser's own words differ by language; everything else must match.
            transcript.push(if message.ends_with(": ") { message } else { got.clone() });
        }
    }
    // A guest error leaves the instance usable.
    assert!(job.map_users("{}", Vec::new()).await.is_ok(), "{plugin}");
    transcript
}

/// A runtime over a fresh plugins folder holding these files, every one loaded.
async fn runtime(files: &[(PathBuf, &str)]) -> (Runtime, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for (file, as_name) in files {
        std::fs::copy(file, plugins.join(as_name)).unwrap();
    }
    let mut config = RuntimeConfig::new(&plugins, common::shared_cache(), common::test_cache_key());
    config.max_concurrent_jobs = 4;
    config.max_memory_mib = 256;
    let rt = Runtime::new(config).unwrap();
    for report in rt.reload().await {
        if let LoadReport::Failed { error, .. } = report {
            panic!("{error}");
        }
    }
    (rt, dir)
}

fn rust_example() -> PathBuf {
    common::component("example_transform_rust")
}

#[tokio::test]
async fn the_rust_example_maps_the_table() {
    let (rt, _dir) = runtime(&[(rust_example(), "example_transform_rust.wasm")]).await;
    let transcript = run_table(&rt, RUST).await;
    assert!(transcript.len() > 20);
}

/// The JavaScript and Python examples, built by `plugins/examples/build.sh` (which installs jco
/// and componentize-py into `plugins/examples/.tools/` the first time).
mod toolchains {
    use std::path::Path;
    use std::process::Command;
    use std::sync::OnceLock;
    use std::time::Instant;

    use super::*;

    const JAVASCRIPT: &str = "contractors-javascript";
    const PYTHON: &str = "contractors-python";

    /// Builds the examples once per test binary; returns the folder holding the components.
    fn built() -> &'static Path {
        static OUT: OnceLock<PathBuf> = OnceLock::new();
        OUT.get_or_init(|| {
            let out = common::repo().join("target/authoring-examples");
            let script = common::repo().join("plugins/examples/build.sh");
            let started = Instant::now();
            let status = Command::new("bash")
                .arg(&script)
                .arg(&out)
                .status()
                .expect("running plugins/examples/build.sh");
            assert!(
                status.success(),
                "{} failed; it needs node/npm and python3 with venv (see plugins/examples/README.md)",
                script.display()
            );
            eprintln!("examples built in {:.1?}", started.elapsed());
            out
        })
    }

    fn example(file: &str) -> PathBuf {
        let p = built().join(file);
        assert!(p.is_file(), "{} was not built", p.display());
        p
    }

    /// Runs the table through the Rust example and `other` in one runtime: both must meet the
    /// table, and agree on every message, the description and the settings schema.
    async fn agrees_with_rust(file: &str, other: &str) {
        let (rt, _dir) = runtime(&[(rust_example(), "rust.wasm"), (example(file), file)]).await;
        let rust = run_table(&rt, RUST).await;
        let theirs = run_table(&rt, other).await;
        assert_eq!(rust.len(), theirs.len(), "{other}");
        for (r, t) in rust.iter().zip(&theirs) {
            assert_eq!(r, t, "{RUST} and {other} differ");
        }
    }

    #[tokio::test]
    #[ignore = "needs jco from npm; .ci/run runs it"]
    async fn the_javascript_example_maps_the_table_as_the_rust_one_does() {
        agrees_with_rust("example_transform_javascript.wasm", JAVASCRIPT).await;
    }

    #[tokio::test]
    #[ignore = "needs componentize-py from PyPI; .ci/run runs it"]
    async fn the_python_example_maps_the_table_as_the_rust_one_does() {
        agrees_with_rust("example_transform_python.wasm", PYTHON).await;
    }
}

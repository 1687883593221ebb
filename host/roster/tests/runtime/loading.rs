//! Loading, versioning and hot swap of plugin files.

use crate::common;

use std::time::{Duration, Instant};

use common::{PROMPT, TestRuntime};
use roster_runtime::{Limits, LoadReport, SourceAccess, World};

fn limits() -> Limits {
    Limits {
        call_timeout_secs: 30.0,
        ..Limits::default()
    }
}

async fn fetch_username(rt: &roster_runtime::Runtime, mode: serde_json::Value) -> String {
    let mut job = rt.job("hostile", limits(), SourceAccess::none()).await.unwrap();
    let page = job.fetch(&mode.to_string(), None, None).await.unwrap();
    page.users[0].username.clone()
}

#[tokio::test]
async fn plugins_are_listed_with_world_version_and_sha() {
    let rt = TestRuntime::new(&[("fixture_hostile", "hostile.wasm"), ("normalize", "normalize.wasm")]).await;
    let plugins = rt.runtime.plugins();
    let summary: Vec<(String, World, String)> = plugins
        .iter()
        .map(|p| (p.label.name.clone(), p.world, p.label.version.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            ("hostile".into(), World::Connector, "1.0.0".into()),
            ("normalize".into(), World::Transform, "0.1.0".into())
        ]
    );
    let sha = roster_runtime::loader::sha256_hex(&std::fs::read(common::component("normalize")).unwrap());
    assert_eq!(plugins[1].label.sha256, sha);
}

#[tokio::test]
async fn a_second_load_comes_from_the_compile_cache() {
    let first = TestRuntime::new(&[("normalize", "normalize.wasm")]).await;
    drop(first);
    let second = TestRuntime::new(&[("normalize", "normalize.wasm")]).await;
    assert!(second.runtime.plugin("normalize").unwrap().from_cache);
}

/// The one engine folder inside a cache folder.
fn engine_dir(cache: &std::path::Path) -> std::path::PathBuf {
    let dirs: Vec<_> = std::fs::read_dir(cache).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

fn sha_of(crate_file: &str) -> String {
    roster_runtime::loader::sha256_hex(&std::fs::read(common::component(crate_file)).unwrap())
}

/// Precompiled code is native code, so a cache file is used only if its MAC — keyed by a
/// secret the cache folder does not hold — proves this host wrote it for that very plugin. A
/// planted file (another plugin's code under this plugin's name, with or without a MAC of
/// another key) and a modified one are compiled again and overwritten, never run; the folder
/// and files are the owner's alone.
#[tokio::test]
async fn a_planted_or_modified_cache_file_is_compiled_again_not_run() {
    use std::os::unix::fs::PermissionsExt;
    let key = || roster_runtime::CacheKey::new([1; 32]);
    let files = [("fixture_hostile", "hostile.wasm")];
    let cache = tempfile::tempdir().unwrap();
    let ours = cache.path().join("cache");
    let first = TestRuntime::with_cache(&files, &ours, key()).await;
    assert!(!first.runtime.plugin("hostile").unwrap().from_cache);
    drop(first);
    let dir = engine_dir(&ours);
    let cached = dir.join(format!("{}.cwasm", sha_of("fixture_hostile")));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!((mode(&ours), mode(&dir), mode(&cached)), (0o700, 0o700, 0o600));
    let again = TestRuntime::with_cache(&files, &ours, key()).await;
    assert!(again.runtime.plugin("hostile").unwrap().from_cache);
    drop(again);

    // Another plugin's compiled code, made by a host with another key.
    let theirs = cache.path().join("theirs");
    drop(
        TestRuntime::with_cache(
            &[("normalize", "normalize.wasm")],
            &theirs,
            roster_runtime::CacheKey::new([2; 32]),
        )
        .await,
    );
    let foreign = std::fs::read(engine_dir(&theirs).join(format!("{}.cwasm", sha_of("normalize")))).unwrap();
    let original = std::fs::read(&cached).unwrap();
    let mut flipped = original.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 1;
    for (what, planted) in [
        ("foreign code with its MAC", foreign.clone()),
        ("foreign code without a MAC", foreign[..foreign.len() - 32].to_vec()),
        ("our file with one byte changed", flipped),
    ] {
        std::fs::write(&cached, &planted).unwrap();
        let rt = TestRuntime::with_cache(&files, &ours, key()).await;
        let loaded = rt.runtime.plugins();
        assert_eq!(loaded.len(), 1, "{what}");
        assert_eq!(loaded[0].label.name, "hostile", "{what}: the planted code ran");
        assert!(!loaded[0].from_cache, "{what}: the planted file was used");
        assert_eq!(
            fetch_username(&rt.runtime, serde_json::json!({"mode": "ok"})).await,
            "hostile@1.0.0"
        );
        let rewritten = std::fs::read(&cached).unwrap();
        assert_ne!(rewritten, planted, "{what}: the planted file was not replaced");
        assert_eq!(mode(&cached), 0o600);
    }
    // A host with another key does not trust this host's files either.
    let other = TestRuntime::with_cache(&files, &ours, roster_runtime::CacheKey::new([3; 32])).await;
    assert!(!other.runtime.plugin("hostile").unwrap().from_cache);
}

#[tokio::test]
async fn a_plugin_built_for_another_wit_major_is_refused_naming_both_versions() {
    let rt = TestRuntime::new(&[]).await;
    std::fs::copy(
        common::component("fixture_future_major"),
        rt.plugins_dir().join("future.wasm"),
    )
    .unwrap();
    let reports = rt.runtime.reload().await;
    let [LoadReport::Failed { error, .. }] = reports.as_slice() else {
        panic!("{reports:?}")
    };
    assert!(
        error.contains("built for roster:plugin@0.2.0")
            && error.contains(&format!("serves roster:plugin@{}", roster_runtime::WIT_VERSION)),
        "{error}"
    );
    assert!(rt.runtime.plugin("future").is_none());
    assert_eq!(rt.runtime.load_errors().len(), 1);
}

#[tokio::test]
async fn files_that_are_not_components_are_refused_in_plain_words() {
    let rt = TestRuntime::new(&[]).await;
    std::fs::write(rt.plugins_dir().join("junk.wasm"), b"this is not wasm").unwrap();
    let reports = rt.runtime.reload().await;
    let [LoadReport::Failed { error, .. }] = reports.as_slice() else {
        panic!("{reports:?}")
    };
    assert!(
        error.contains("junk.wasm") && error.contains("not a WebAssembly component"),
        "{error}"
    );
}

#[tokio::test]
async fn hot_swap_keeps_a_running_job_on_the_version_it_started_with() {
    let rt = TestRuntime::new(&[("fixture_hostile", "hostile.wasm")]).await;
    // Compile v2 into the cache first, so the swap below is quick even in a debug build.
    rt.runtime
        .prepare(&common::component("fixture_hostile_v2"))
        .await
        .unwrap();
    let runtime = rt.runtime.clone();
    let long =
        tokio::spawn(async move { fetch_username(&runtime, serde_json::json!({"mode": "slow", "ms": 1500})).await });
    tokio::time::sleep(Duration::from_millis(300)).await;

    rt.put("fixture_hostile_v2", "hostile.wasm");
    let reports = rt.runtime.reload().await;
    let [LoadReport::Replaced { old, new }] = reports.as_slice() else {
        panic!("{reports:?}")
    };
    assert_eq!((old.version.as_str(), new.version.as_str()), ("1.0.0", "2.0.0"));
    assert!(
        !long.is_finished(),
        "the long job should still be running during the swap"
    );

    assert_eq!(
        fetch_username(&rt.runtime, serde_json::json!({"mode": "ok"})).await,
        "hostile@2.0.0"
    );
    assert_eq!(long.await.unwrap(), "hostile@1.0.0");
}

#[tokio::test]
async fn a_broken_new_file_is_rejected_and_the_previous_version_keeps_serving() {
    let rt = TestRuntime::new(&[("fixture_hostile", "hostile.wasm")]).await;
    std::fs::write(rt.plugins_dir().join("hostile.wasm"), b"\0asm garbage").unwrap();
    let reports = rt.runtime.reload().await;
    assert!(matches!(reports.as_slice(), [LoadReport::Failed { .. }]), "{reports:?}");
    assert_eq!(rt.runtime.plugin("hostile").unwrap().label.version, "1.0.0");
    assert_eq!(
        fetch_username(&rt.runtime, serde_json::json!({"mode": "ok"})).await,
        "hostile@1.0.0"
    );
    assert!(rt.runtime.load_errors()[0].1.contains("hostile.wasm"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_picks_up_a_new_version_without_a_restart() {
    let rt = TestRuntime::new(&[("fixture_hostile", "hostile.wasm")]).await;
    let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let told = heard.clone();
    let _watch = rt
        .runtime
        .watch(move |reports| {
            told.lock().unwrap().extend(reports.iter().map(|r| match r {
                LoadReport::Replaced { old, new } => {
                    format!("replaced {} {} by {}", old.name, old.version, new.version)
                }
                LoadReport::Removed(l) => format!("removed {}", l.name),
                other => format!("{other:?}"),
            }))
        })
        .unwrap();
    rt.put("fixture_hostile_v2", "hostile.wasm");
    let started = Instant::now();
    while rt.runtime.plugin("hostile").unwrap().label.version != "2.0.0" {
        assert!(started.elapsed() < PROMPT, "the watcher did not reload the plugin");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        fetch_username(&rt.runtime, serde_json::json!({"mode": "ok"})).await,
        "hostile@2.0.0"
    );
    // Removing the file withdraws the plugin from new jobs.
    std::fs::remove_file(rt.plugins_dir().join("hostile.wasm")).unwrap();
    while rt.runtime.plugin("hostile").is_some() {
        assert!(started.elapsed() < PROMPT, "the watcher did not notice the removal");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Each change is told to whoever watches (the service's audit log).
    let expected = ["replaced hostile 1.0.0 by 2.0.0", "removed hostile"];
    while heard.lock().unwrap().as_slice() != expected {
        assert!(started.elapsed() < PROMPT, "{:?}", heard.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn two_files_claiming_one_name_are_reported() {
    let rt = TestRuntime::new(&[("fixture_hostile", "a.wasm")]).await;
    std::fs::copy(common::component("fixture_hostile_v2"), rt.plugins_dir().join("b.wasm")).unwrap();
    let reports = rt.runtime.reload().await;
    let [LoadReport::Failed { error, .. }] = reports.as_slice() else {
        panic!("{reports:?}")
    };
    assert!(
        error.contains("already provided by") && error.contains("a.wasm"),
        "{error}"
    );
}

/// The versioning policy: a host whose WIT gained an import in a compatible version (the next
/// patch) still links plugins built against this one, through wasmtime's semver-aware linker.
/// Built here with a dynamic linker that defines the host interface at the next patch plus one
/// new function, as a future Roster would.
#[tokio::test]
async fn an_additive_wit_change_keeps_old_plugins_linking() {
    use wasmtime::component::{Component, Linker, Val};
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    let engine = wasmtime::Engine::new(&config).unwrap();
    let component = Component::from_file(&engine, common::component("fixture_hostile")).unwrap();

    struct Ctx {
        wasi: wasmtime_wasi::WasiCtx,
        table: wasmtime::component::ResourceTable,
    }
    impl wasmtime_wasi::WasiView for Ctx {
        fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
            wasmtime_wasi::WasiCtxView {
                ctx: &mut self.wasi,
                table: &mut self.table,
            }
        }
    }
    let next_host = |version: &str| {
        let mut linker: Linker<Ctx> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
        linker.instance(&format!("roster:plugin/types@{version}")).unwrap();
        let mut host = linker.instance(&format!("roster:plugin/host@{version}")).unwrap();
        for f in ["http", "sign-jwt", "log", "a-function-added-in-a-later-version"] {
            host.func_new(f, |_, _, _: &[Val], _: &mut [Val]| Ok(())).unwrap();
        }
        linker
    };
    let now = semver::Version::parse(roster_runtime::WIT_VERSION).unwrap();
    let next_patch = format!("{}.{}.{}", now.major, now.minor, now.patch + 1);
    assert!(
        next_host(&next_patch).instantiate_pre(&component).is_ok(),
        "a {next_patch} host must link a {now} plugin"
    );
    let refused = next_host("0.2.0")
        .instantiate_pre(&component)
        .err()
        .expect("a 0.2.0 host must not link a 0.1.0 plugin");
    assert!(
        format!("{refused:?}").contains(&format!("roster:plugin/host@{now}")),
        "{refused:?}"
    );
}

/// A transform built against the frozen copy of `roster:plugin@0.1.0` (before packed batches)
/// loads on this host and is called record by record, with the same results a packed call
/// would give.
#[tokio::test]
async fn a_transform_built_for_wit_0_1_0_still_loads_and_maps_record_by_record() {
    use roster_runtime::types::User;
    let rt = TestRuntime::new(&[("fixture_transform_v010", "old.wasm")]).await;
    let old = rt.runtime.plugin("transform-v010").expect("the 0.1.0 transform loads");
    assert_eq!(old.world, World::Transform);
    let mut job = rt
        .runtime
        .job("transform-v010", limits(), SourceAccess::none())
        .await
        .unwrap();
    assert!(!job.is_packed(), "a 0.1.0 transform has no packed functions");
    let users: Vec<User> = ["alice", "xavier"]
        .iter()
        .map(|n| User {
            id: format!("id-{n}"),
            username: n.to_string(),
            email: None,
            display_name: None,
            active: true,
            attributes: vec![],
        })
        .collect();
    let out = job.map_users("{}", users).await.unwrap();
    assert_eq!(out[0].user().unwrap().username, "ALICE");
    assert!(out[1].user().is_none());
    assert_eq!(out[1].reason(), Some("starts with x"));
}

/// A connector built against the frozen copy of `roster:plugin@0.1.1` (before `credentials`)
/// loads on this host, fetches, and is reported as not verifying passwords; asked where a
/// password is checked, it answers that it cannot say. The `ldap` connector (0.1.2) verifies.
#[tokio::test]
async fn a_connector_built_for_wit_0_1_1_still_loads_and_does_not_verify_passwords() {
    let rt = TestRuntime::new(&[("fixture_connector_v011", "old.wasm"), ("ldap", "ldap.wasm")]).await;
    let old = rt.runtime.plugin("connector-v011").expect("the 0.1.1 connector loads");
    assert_eq!(old.world, World::Connector);
    assert!(!old.verifies_passwords(), "a 0.1.1 connector has no credentials export");
    let mut job = rt
        .runtime
        .job("connector-v011", limits(), SourceAccess::none())
        .await
        .unwrap();
    let page = job.fetch("{}", None, None).await.unwrap();
    assert_eq!(page.users[0].username, "old-timer");
    assert_eq!(
        job.password_check("{}", "id-old-timer", "old-timer").await.unwrap(),
        None
    );

    let ldap = rt.runtime.plugin("ldap").expect("the ldap connector loads");
    assert!(ldap.verifies_passwords(), "the ldap connector exports credentials");
}

//! End-to-end syncs from a file source into the Bitbucket simulator: the engine's promises.

use crate::common;

use common::Configured;
use common::world::{World, bitbucket};
use roster_engine::Op;
use roster_sim::bitbucket::Permission;
use roster_sim::directory::Directory;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_users_with_nesting_sync_exactly_and_the_second_run_writes_nothing() {
    let d = Directory::generate(1000, 100, 3);
    let w = World::new(&d, bitbucket()).await;
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(r.summary.planned["create-user"], 1000);
    assert_eq!(r.summary.planned["create-group"], 100);
    w.assert_matches(&d);
    // Nested memberships came through: team-00000 ⊃ team-00001 ⊃ team-00002 ⊃ team-00003.
    let expected = d.expected_members();
    assert!(expected["team-00000"].is_superset(&expected["team-00003"]));

    let writes = w.bb_writes();
    let again = w.sync().await;
    assert_eq!(again.state, "succeeded");
    assert!(
        again.summary.planned.is_empty(),
        "second run planned {:?}",
        again.summary.planned
    );
    assert_eq!(w.bb_writes(), writes, "the second run must not write");

    // Bitbucket calls of the first run vs the floor: creates + group creates + ⌈adds per group ÷ batch⌉.
    let floor: usize = expected.values().map(|m| m.len().div_ceil(500)).sum::<usize>() + 1000usize.div_ceil(500);
    assert_eq!(
        r.summary.planned["add-members"], floor,
        "one add-users call per 500 members of each group"
    );
    assert_eq!(
        r.summary.api_calls_total as usize - reads(&r),
        1000 + 100 + floor,
        "writes = the floor, nothing more"
    );
}

/// GET calls of a run (the reads before planning).
fn reads(r: &roster_serve::RunReport) -> usize {
    r.summary
        .api_calls
        .iter()
        .filter(|(k, _)| k.starts_with("GET "))
        .map(|(_, v)| *v as usize)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_writes_nothing_and_lists_the_plan() {
    let d = Directory::generate(50, 10, 2);
    let w = World::new(&d, bitbucket()).await;
    let r = w.run(roster_engine::Writes::DryRun).await;
    assert_eq!(r.state, "planned");
    assert_eq!(w.bb_writes(), 0);
    let ops = w.store.plan_ops(r.plan_id.as_deref().unwrap()).unwrap();
    assert_eq!(ops.iter().filter(|o| o.1 == "create-user").count(), 50);
    assert!(ops.iter().all(|o| !o.4.is_empty()), "every operation has a reason");
    assert_eq!(w.store.plan(r.plan_id.as_deref().unwrap()).unwrap().state, "draft");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idp_rename_is_a_bitbucket_rename_with_memberships_kept() {
    let mut d = Directory::generate(40, 8, 3);
    let w = World::new(&d, bitbucket()).await;
    w.sync().await;
    let before: Vec<String> = w.groups_of("user000005");
    assert!(before.len() >= 2);
    d.users[5].username = "jane.doe".into();
    w.write(&d);
    let writes = w.bb_writes();
    let r = w.sync().await;
    assert_eq!(
        r.summary.planned.get("rename-user"),
        Some(&1),
        "{:?}",
        r.summary.planned
    );
    assert_eq!(r.summary.planned.len(), 1, "a rename only: {:?}", r.summary.planned);
    assert_eq!(w.bb_writes(), writes + 1);
    {
        let s = w.sim.lock();
        assert!(s.users().contains_key("jane.doe") && !s.users().contains_key("user000005"));
    }
    assert_eq!(before, w.groups_of("jane.doe"));
    // An email change is an update, not a delete + create.
    d.users[6].email = "new.address@example.com".into();
    w.write(&d);
    let r = w.sync().await;
    assert_eq!(r.summary.planned.len(), 1);
    assert_eq!(r.summary.planned.get("update-user"), Some(&1));
    w.assert_matches(&d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_or_truncated_fetch_never_deletes() {
    let d = Directory::generate(60, 6, 2);
    let mut w = World::new(&d, bitbucket()).await;
    w.target_extra = "deprovision = \"delete\"\nthreshold = { count = 1000, percent = 100 }".into();
    w.sync().await;
    let users_before = w.sim.lock().users().len();

    // The export disappears: the fetch fails on its first page. With no source read, the run
    // fails and plans nothing.
    std::fs::remove_file(w.files_dir().join("directory.json")).unwrap();
    let r = w.sync().await;
    assert_eq!(r.state, "failed");
    assert!(r.plan_id.is_none());
    assert!(!r.summary.fetch[0].complete);
    assert_eq!(r.summary.planned.get("delete-user"), None);
    assert_eq!(w.sim.lock().users().len(), users_before);

    // A truncated export: half the users, then a broken line, read page by page.
    w.file_name = "directory.jsonl".into();
    let mut half = d.clone();
    half.users.truncate(30);
    w.write(&half);
    let path = w.files_dir().join("directory.jsonl");
    let mut text = std::fs::read_to_string(&path).unwrap();
    let cut = text.len() * 3 / 4;
    text.truncate(text[..cut].rfind('\n').unwrap() + 1);
    text.push_str("{\"kind\": \"user\", \"id\": \"u-999\", \"userna");
    std::fs::write(&path, text).unwrap();
    let writes = w.bb_writes();
    let r = w
        .runner()
        .sync(
            &roster_serve::SyncOptions {
                trigger: roster_model::Trigger::Cli,
                actor: "test".into(),
                ..Default::default()
            },
            &roster_model::Quiet,
        )
        .await
        .unwrap();
    assert_eq!(r.state, "failed", "{:?}", r.summary.warnings);
    assert!(
        r.summary.fetch[0]
            .error
            .as_deref()
            .unwrap()
            .contains("not a valid record"),
        "{:?}",
        r.summary.fetch[0]
    );
    assert_eq!(w.bb_writes(), writes, "an incomplete fetch must not change Bitbucket");
    assert_eq!(w.sim.lock().users().len(), users_before);
    w.file_name = "directory.json".into();
    w.write(&d);
    assert!(w.sync().await.summary.planned.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_one_source_fails_the_others_are_synced_and_every_removal_is_withheld() {
    let mut d = Directory::generate(40, 4, 1);
    let mut w = World::new(&d, bitbucket()).await;
    w.target_extra = "deprovision = \"delete\"\nthreshold = { count = 1000, percent = 100 }".into();
    let contractors = Directory::generate(3, 0, 0);
    let mut extra = contractors.clone();
    for u in &mut extra.users {
        u.id = format!("c-{}", u.id);
        u.username = format!("contractor-{}", u.username);
    }
    extra.write_json(&w.files_dir().join("contractors.json")).unwrap();
    let files = w.files_dir().display().to_string();
    let two_sources = |w: &World| {
        format!(
            "{}\n[[source]]\nid = \"contractors\"\nplugin = \"file\"\npriority = 20\nfiles = \"{files}\"\nsettings = {{ path = \"contractors.json\" }}\n",
            w.config_text()
        )
    };
    let run = |w: &World| {
        let config = roster_serve::Config::parse(&two_sources(w), w.rt.dir.path(), &common::kinds()).unwrap();
        let engine =
            roster_serve::Runner::new(w.store.clone(), w.rt.runtime.clone(), config, &common::kinds()).unwrap();
        async move {
            let opts = roster_serve::SyncOptions {
                trigger: roster_model::Trigger::Cli,
                actor: "test".into(),
                ..Default::default()
            };
            engine.sync(&opts, &roster_model::Quiet).await.unwrap()
        }
    };
    assert_eq!(run(&w).await.state, "succeeded");
    let users_before = w.sim.lock().users().len();
    assert_eq!(users_before, 40 + 3 + 1);
    // hr drops two people and renames one; the contractors' export is gone.
    d.users.truncate(38);
    d.users[0].display_name = "Still Updated".into();
    w.write(&d);
    std::fs::remove_file(w.files_dir().join("contractors.json")).unwrap();
    let r = run(&w).await;
    assert_eq!(r.state, "partial", "{:?}", r.summary.warnings);
    assert_eq!(
        r.summary.planned.get("update-user"),
        Some(&1),
        "{:?}",
        r.summary.planned
    );
    assert_eq!(r.summary.planned.get("delete-user"), None, "{:?}", r.summary.planned);
    assert!(
        r.summary
            .warnings
            .iter()
            .any(|x| x.contains("contractors") && x.contains("withheld")),
        "{:?}",
        r.summary.warnings
    );
    assert_eq!(w.sim.lock().users().len(), users_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_over_the_threshold_is_held_and_only_that_exact_plan_can_be_approved() {
    let mut d = Directory::generate(100, 10, 2);
    let mut w = World::new(&d, bitbucket()).await;
    w.target_extra = "threshold = { count = 5, percent = 50 }".into();
    w.sync().await;

    d.users.truncate(90);
    w.write(&d);
    let writes = w.bb_writes();
    let first = w.sync().await;
    assert_eq!(first.state, "held");
    assert_eq!(first.summary.guard.as_ref().unwrap().deprovisions, 10);
    assert_eq!(w.bb_writes(), writes, "a held plan writes nothing");

    // The directory changes again: the new plan supersedes the first, which can no longer be approved.
    d.users.truncate(88);
    w.write(&d);
    let second = w.sync().await;
    assert_eq!(second.state, "held");
    let engine = w.runner();
    let err = engine
        .approve(
            first.plan_id.as_deref().unwrap(),
            first.plan_hash.as_deref().unwrap(),
            "admin",
            "",
            &roster_model::Quiet,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("superseded"), "{err}");
    let err = engine
        .approve(
            second.plan_id.as_deref().unwrap(),
            "0000000000000000",
            "admin",
            "",
            &roster_model::Quiet,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("you reviewed a different plan"), "{err}");

    // Something new arrives after the plan was made: approval applies the plan, nothing else.
    let mut later = d.clone();
    later.users.push(roster_sim::directory::DirUser {
        id: "u-new".into(),
        username: "newcomer".into(),
        email: "n@example.com".into(),
        display_name: "New Comer".into(),
        active: true,
    });
    w.write(&later);
    let applied = engine
        .approve(
            second.plan_id.as_deref().unwrap(),
            &second.plan_hash.as_deref().unwrap()[..12],
            "admin",
            "",
            &roster_model::Quiet,
        )
        .await
        .unwrap();
    assert_eq!(applied.state, "succeeded");
    assert_eq!(applied.summary.planned.get("deactivate-user"), Some(&12));
    assert_eq!(
        applied.summary.applied.done,
        second.summary.planned.values().sum::<usize>()
    );
    {
        let s = w.sim.lock();
        assert!(
            !s.users().contains_key("newcomer"),
            "approval must not apply anything outside the plan"
        );
        assert!(
            !s.licensed_users().contains("user000095"),
            "deactivated users lose their licence"
        );
        assert!(s.users().contains_key("user000095"), "disable keeps the account");
    }
    let err = engine
        .approve(
            second.plan_id.as_deref().unwrap(),
            second.plan_hash.as_deref().unwrap(),
            "admin",
            "",
            &roster_model::Quiet,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is applied"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_over_the_licence_is_refused_with_the_seat_delta() {
    let d = Directory::generate(30, 3, 1);
    let mut state = bitbucket();
    state.max_users = Some(20);
    let w = World::new(&d, state).await;
    let r = w.sync().await;
    assert_eq!(r.state, "refused");
    let why = r.summary.guard.as_ref().unwrap().refused.clone().unwrap();
    assert!(why.contains("30 more user(s): 1 in use + 30 = 31 > 20 seats"), "{why}");
    assert_eq!(w.bb_writes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_accounts_and_admin_groups_are_never_changed() {
    let mut d = Directory::generate(20, 4, 2);
    let mut state = bitbucket();
    state.grant_group("team-00001", Permission::Admin);
    state.add_group("team-00001", &["admin"]);
    let mut w = World::new(&d, state).await;
    w.target_extra = "protected_users = [\"user000007\"]\ndeprovision = \"delete\"".into();
    w.sync().await;
    assert_eq!(
        w.sim.lock().groups()["team-00001"].iter().collect::<Vec<_>>(),
        ["admin"],
        "an ADMIN group's members are not managed"
    );
    assert!(
        !w.sim.lock().users().contains_key("user000007"),
        "a protected account is not created either"
    );
    // Protected existing account: its details are not updated and it is never deprovisioned.
    w.sim
        .lock()
        .add_user("user000008", "Local Admin", "la@example.com", true);
    d.users
        .retain(|u| u.username != "user000007" && u.username != "user000008");
    w.write(&d);
    w.target_extra = "protected_users = [\"user000008\"]\ndeprovision = \"delete\"".into();
    let r = w.sync().await;
    assert!(w.sim.lock().users().contains_key("user000008"));
    assert!(w.sim.lock().users().contains_key("admin"));
    assert_eq!(
        r.summary.planned.get("delete-user"),
        None,
        "nothing Roster owns left the source: {:?}",
        r.summary.planned
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colliding_account_roster_does_not_own_is_reported_and_left_alone() {
    let d = Directory::generate(10, 2, 1);
    let mut state = bitbucket();
    state.add_user("user000003", "Someone Else", "someone@ldap.example", false);
    let mut w = World::new(&d, state).await;
    let r = w.sync().await;
    assert_eq!(r.summary.collisions.len(), 1);
    assert!(
        r.summary.collisions[0].why.contains("Delegated LDAP"),
        "{:?}",
        r.summary.collisions
    );
    {
        let s = w.sim.lock();
        assert_eq!(s.users()["user000003"].display_name, "Someone Else");
        assert!(!s.groups()["bitbucket-users"].contains("user000003"));
    }
    // With adoption allowed, a mutable account is taken over and brought in line.
    w.sim.lock().add_user("user000004", "Old Name", "old@example.com", true);
    w.target_extra = "adopt_existing_users = true".into();
    let _ = w.sync().await;
    assert_eq!(w.sim.lock().users()["user000004"].display_name, "User 000004");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_user_is_deactivated_and_comes_back_with_memberships() {
    let mut d = Directory::generate(30, 5, 2);
    let w = World::new(&d, bitbucket()).await;
    w.sync().await;
    let groups_before: Vec<String> = w.groups_of("user000002");
    d.users[2].active = false;
    w.write(&d);
    let r = w.sync().await;
    assert_eq!(
        r.summary.planned.get("deactivate-user"),
        Some(&1),
        "{:?}",
        r.summary.planned
    );
    assert!(!w.sim.lock().licensed_users().contains("user000002"));
    assert!(w.sync().await.summary.planned.is_empty(), "deactivation is stable");
    d.users[2].active = true;
    w.write(&d);
    w.sync().await;
    let groups_after: Vec<String> = w.groups_of("user000002");
    assert_eq!(groups_before, groups_after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_results_export_as_json_and_csv() {
    let d = Directory::generate(5, 2, 1);
    let w = World::new(&d, bitbucket()).await;
    let r = w.sync().await;
    let rows = roster_engine::export_rows(&w.store, r.run_id).unwrap();
    assert!(rows.iter().all(|x| x.outcome == "done"));
    let csv = roster_engine::export_csv(&rows);
    assert!(csv.starts_with("seq,kind,subject,reason,outcome,status,attempts,message,finished_at\n"));
    assert!(
        rows.iter().all(|x| x.attempts == Some(1)),
        "one request per operation when nothing fails"
    );
    assert_eq!(csv.lines().count(), rows.len() + 1);
    let run = w.store.run(r.run_id).unwrap();
    let summary = run.summary.unwrap();
    assert!(
        summary["api_calls"]["POST /admin/users"].as_u64() == Some(5),
        "{summary}"
    );
    assert!(summary["stage_ms"]["apply"].is_u64());
    let _ = Op::CreateGroup { group: String::new() };
}

/// `roster sync` as a child process over the world's data folder and configuration.
fn roster_sync(w: &World) -> std::process::Command {
    use base64::Engine as _;
    let config = w.rt.dir.path().join("roster.toml");
    std::fs::write(&config, w.config_text()).unwrap();
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_roster"));
    c.arg("--data-dir")
        .arg(w.rt.dir.path())
        .arg("--plugins-dir")
        .arg(w.rt.plugins_dir())
        .arg("--config")
        .arg(&config)
        .arg("sync")
        .env(
            "ROSTER_SECRET_KEY",
            base64::engine::general_purpose::STANDARD.encode([9u8; 32]),
        );
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_during_apply_converges_on_the_next_run_without_duplicates() {
    let d = Directory::generate(600, 20, 2);
    let mut state = bitbucket();
    state.set_rate_limit(150.0, 20);
    let w = World::new(&d, state).await;
    let mut child = roster_sync(&w)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while w.bb_writes() < 250 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the child made {} writes",
            w.bb_writes()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child finished before it could be killed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let users_at_kill = w.sim.lock().users().len();
    assert!(
        users_at_kill > 1 && users_at_kill < 601,
        "killed mid-apply: {users_at_kill} users"
    );

    w.sim.lock().set_rate_limit(100_000.0, 100_000);
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary);
    assert!(
        r.summary.collisions.is_empty(),
        "accounts created by the killed run are Roster's: {:?}",
        r.summary.collisions
    );
    assert_eq!(w.sim.lock().users().len(), 601);
    w.assert_matches(&d);
    assert!(w.sync().await.summary.planned.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn why_names_the_path_through_nested_groups() {
    let d = Directory::generate(40, 8, 1);
    let w = World::new(&d, bitbucket()).await;
    w.sync().await;
    let engine = w.runner();
    // team-00000 ⊃ team-00001 ⊃ team-00002 ⊃ team-00003: a direct member of team-00003 is in team-00000 through the chain.
    let expected = d.expected_members();
    let direct = &expected["team-00003"];
    let user = direct.iter().next().unwrap();
    let why = engine.why(user, "team-00000").await.unwrap();
    assert!(
        why.contains(&format!(
            "{user} ∈ team-00003 ∈ team-00002 ∈ team-00001 ∈ team-00000 (hr)"
        )),
        "{why}"
    );
    let why = engine.why(user, "team-00003").await.unwrap();
    assert!(why.contains("direct member of team-00003 in hr"), "{why}");
    let why = engine.why("nobody", "team-00000").await.unwrap();
    assert!(why.contains("not in any source"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_sealed_in_the_store_and_never_listed() {
    let d = Directory::generate(3, 1, 1);
    let mut w = World::new(&d, bitbucket()).await;
    w.target_extra = String::new();
    let text = w.config_text().replace(
        "[[source.transforms]]",
        "[[source.secrets]]\nname = \"api_token\"\nvalue = \"sekrit-VALUE-4711\"\nhosts = [\"https://idp.example\"]\nuse = { header = \"Authorization\" }\n[[source.transforms]]",
    );
    let config = roster_serve::Config::parse(&text, w.rt.dir.path(), &common::kinds()).unwrap();
    let _engine = roster_serve::Runner::new(w.store.clone(), w.rt.runtime.clone(), config, &common::kinds()).unwrap();
    let listed = serde_json::to_string(&w.store.sources().unwrap()).unwrap();
    assert!(!listed.contains("sekrit-VALUE-4711"), "{listed}");
    assert_eq!(
        w.store.source_secrets::<roster_runtime::secrets::Secret>("hr").unwrap()[0]
            .value
            .expose(),
        "sekrit-VALUE-4711"
    );
    drop(_engine);
    let mut raw = std::fs::read(w.rt.dir.path().join("roster.db")).unwrap();
    if let Ok(wal) = std::fs::read(w.rt.dir.path().join("roster.db-wal")) {
        raw.extend(wal);
    }
    assert!(
        !raw.windows(17).any(|x| x == b"sekrit-VALUE-4711"),
        "the secret is stored in the clear"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deprovision_keep_reports_and_changes_nothing() {
    let mut d = Directory::generate(10, 2, 1);
    let mut w = World::new(&d, bitbucket()).await;
    w.target_extra = "deprovision = \"keep\"".into();
    w.sync().await;
    d.users.truncate(9);
    w.write(&d);
    let writes = w.bb_writes();
    let r = w.sync().await;
    assert!(
        r.summary
            .skipped
            .iter()
            .any(|s| s.subject == "user000009" && s.why.contains("deprovision = keep")),
        "{:?}",
        r.summary.skipped
    );
    assert!(w.sim.lock().licensed_users().contains("user000009"));
    // Kept means kept: no membership is removed either.
    assert_eq!(w.bb_writes(), writes);
    assert!(w.groups_of("user000009").contains(&"bitbucket-users".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_run_over_an_unchanged_export_reads_nothing_and_a_changed_one_falls_back_to_full() {
    let mut d = Directory::generate(20, 3, 1);
    let w = World::new(&d, bitbucket()).await;
    w.sync().await;
    let incremental = roster_serve::SyncOptions {
        fetch: roster_directory::FetchMode::Incremental,
        trigger: roster_model::Trigger::Cli,
        actor: "test".into(),
        ..Default::default()
    };
    let r = w.runner().sync(&incremental, &roster_model::Quiet).await.unwrap();
    assert_eq!(
        (r.summary.fetch[0].mode.as_str(), r.summary.fetch[0].users),
        ("incremental", 0)
    );
    assert!(r.summary.planned.is_empty());
    std::thread::sleep(std::time::Duration::from_millis(20));
    d.users[0].display_name = "Changed".into();
    w.write(&d);
    let r = w.runner().sync(&incremental, &roster_model::Quiet).await.unwrap();
    assert_eq!(r.summary.fetch[0].mode, "full");
    assert!(
        r.summary.fetch[0]
            .fell_back
            .as_deref()
            .unwrap()
            .contains("changed since the last fetch"),
        "{:?}",
        r.summary.fetch[0]
    );
    assert!(
        r.summary
            .warnings
            .iter()
            .any(|w| w.contains("full fetch was made instead")),
        "{:?}",
        r.summary.warnings
    );
    assert_eq!(r.summary.planned.get("update-user"), Some(&1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_keeps_unmanaged_memberships_unless_told_otherwise() {
    let mut d = Directory::generate(10, 2, 1);
    let mut w = World::new(&d, bitbucket()).await;
    w.target_extra = "threshold = { count = 100, percent = 100 }".into();
    w.sync().await;
    w.sim.lock().add_group("local-reviewers", &["user000001", "user000002"]);
    d.users[1].active = false;
    d.users[2].active = false;
    w.write(&d);
    // Default: only what licenses the account goes; a local group Roster does not manage stays.
    let _ = w.sync().await;
    assert_eq!(w.groups_of("user000001"), ["local-reviewers"]);
    // keep_unmanaged_memberships = false: every group but protected ones is left.
    d.users[1].active = true;
    w.write(&d);
    w.sync().await;
    d.users[1].active = false;
    w.write(&d);
    w.target_extra = "threshold = { count = 100, percent = 100 }\nkeep_unmanaged_memberships = false".into();
    let r = w.sync().await;
    assert_eq!(
        r.summary.planned.get("deactivate-user"),
        Some(&1),
        "{:?}",
        r.summary.planned
    );
    assert!(w.groups_of("user000001").is_empty(), "{:?}", w.groups_of("user000001"));
    assert_eq!(
        w.groups_of("user000002"),
        ["local-reviewers"],
        "an account deactivated earlier is not touched again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_account_roster_owns_is_neither_updated_nor_deprovisioned() {
    let mut d = Directory::generate(20, 2, 1);
    let mut w = World::new(&d, bitbucket()).await;
    w.target_extra = "deprovision = \"delete\"\nthreshold = { count = 100, percent = 100 }".into();
    w.sync().await;
    w.target_extra
        .push_str("\nprotected_users = [\"user000005\", \"user000006\"]");
    d.users[5].display_name = "Renamed By IdP".into();
    d.users.remove(6);
    w.write(&d);
    let writes = w.bb_writes();
    let r = w.sync().await;
    assert!(r.summary.planned.is_empty(), "{:?}", r.summary.planned);
    assert_eq!(w.bb_writes(), writes);
    assert!(
        r.summary
            .skipped
            .iter()
            .any(|s| s.subject == "user000005" && s.why == "protected account"),
        "{:?}",
        r.summary.skipped
    );
    assert!(
        r.summary
            .skipped
            .iter()
            .any(|s| s.subject == "user000006" && s.why.contains("not deprovisioned")),
        "{:?}",
        r.summary.skipped
    );
    let s = w.sim.lock();
    assert_eq!(s.users()["user000005"].display_name, "User 000005");
    assert!(s.users().contains_key("user000006"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_call_is_retried_and_the_result_counts_the_attempts() {
    let d = Directory::generate(5, 1, 1);
    let w = World::new(&d, bitbucket()).await;
    w.sim.lock().inject(roster_sim::bitbucket::Fault {
        method: Some(axum::http::Method::POST),
        path_contains: "/admin/groups/add-users".into(),
        status: 503,
        remaining: 1,
    });
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary);
    let rows = roster_engine::export_rows(&w.store, r.run_id).unwrap();
    let adds: Vec<_> = rows.iter().filter(|x| x.kind == "add-members").collect();
    assert!(adds.iter().any(|x| x.attempts == Some(2)), "{adds:?}");
    w.assert_matches(&d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_user_sync_reaches_what_a_full_run_would_for_that_person() {
    use roster_sim::directory::{DirGroup, DirMembership, DirUser};
    let mut d = Directory::generate(60, 8, 2);
    let w = World::new(&d, bitbucket()).await;
    let files = w.files_dir().display().to_string();
    let mut contractors = Directory::default();
    contractors.groups.push(DirGroup {
        id: "cg-1".into(),
        name: "contract-staff".into(),
    });
    contractors.write_json(&w.files_dir().join("contractors.json")).unwrap();
    let text = format!(
        "{}\n[[source]]\nid = \"contractors\"\nplugin = \"file\"\npriority = 20\nfiles = \"{files}\"\nsettings = {{ path = \"contractors.json\" }}\n",
        w.config_text()
    );
    let engine = || {
        let config = roster_serve::Config::parse(&text, w.rt.dir.path(), &common::kinds()).unwrap();
        roster_serve::Runner::new(w.store.clone(), w.rt.runtime.clone(), config, &common::kinds()).unwrap()
    };
    let opts = |writes| roster_serve::SyncOptions {
        writes,
        trigger: roster_model::Trigger::Cli,
        actor: "test".into(),
        ..Default::default()
    };
    assert_eq!(
        engine()
            .sync(&opts(roster_engine::Writes::Apply), &roster_model::Quiet)
            .await
            .unwrap()
            .state,
        "succeeded"
    );
    // A new hire: in hr, a direct member of the deepest group of a nested chain
    // (team-00000 ⊃ 01 ⊃ 02 ⊃ 03); in the contractors' export under another id, in a group there.
    d.users.push(DirUser {
        id: "u-new".into(),
        username: "newhire".into(),
        email: "newhire@example.com".into(),
        display_name: "New Hire".into(),
        active: true,
    });
    d.memberships.push(DirMembership {
        group: "g-00003".into(),
        member: "u-new".into(),
        member_is_group: false,
    });
    w.write(&d);
    contractors.users.push(DirUser {
        id: "c-77".into(),
        username: "newhire".into(),
        email: "newhire@example.com".into(),
        display_name: "New Hire (contractor)".into(),
        active: true,
    });
    contractors.memberships.push(DirMembership {
        group: "cg-1".into(),
        member: "c-77".into(),
        member_is_group: false,
    });
    contractors.write_json(&w.files_dir().join("contractors.json")).unwrap();
    // Asked for by hr's id only: the contractors' record is found through the username.
    let key = roster_directory::UserKey {
        id: Some("u-new".into()),
        username: None,
        source: None,
    };
    let r = engine()
        .sync_user(&key, &opts(roster_engine::Writes::Apply), &roster_model::Quiet)
        .await
        .unwrap();
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(
        w.groups_of("newhire"),
        [
            "bitbucket-users",
            "contract-staff",
            "team-00000",
            "team-00001",
            "team-00002",
            "team-00003"
        ]
    );
    assert_eq!(w.sim.lock().users()["newhire"].display_name, "New Hire");
    // A full run has nothing left to do: the single-user sync reached the same state.
    let dry = engine()
        .sync(&opts(roster_engine::Writes::DryRun), &roster_model::Quiet)
        .await
        .unwrap();
    assert!(dry.summary.planned.is_empty(), "{:?}", dry.summary.planned);
}

/// One run at a time per target, across processes sharing the data folder: while another run
/// holds the target, `roster sync` in a second process and a run in this one are refused,
/// naming the holder, write nothing and are recorded as refused; once it ends, runs go ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_cannot_run_a_target_while_another_run_holds_it() {
    let d = Directory::generate(20, 3, 1);
    let w = World::new(&d, bitbucket()).await;
    let target = w.runner().config().target().unwrap().id.clone();
    let lock = w.store.hold_target(&target, "run 41 (schedule, by scheduler)").unwrap();

    let out = roster_sync(&w).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "target '{target}' is being synced by run 41 (schedule, by scheduler)"
        )),
        "{stderr}"
    );
    let opts = roster_serve::SyncOptions {
        trigger: roster_model::Trigger::Cli,
        actor: "test".into(),
        ..Default::default()
    };
    let err = w.runner().sync(&opts, &roster_model::Quiet).await.unwrap_err();
    assert!(err.to_string().contains("is being synced by run 41"), "{err}");
    assert_eq!(w.bb_writes(), 0);
    let runs = w.store.runs(10).unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r.state == "refused"), "{runs:?}");

    drop(lock);
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded");
    w.assert_matches(&d);
}

//! Transform chains end to end: settings files re-read at every run (a broken one refused, the
//! last accepted one kept), required groups, starting groups for new accounts, previews.

use crate::common;

use common::Configured;
use common::world::{World, bitbucket};
use roster_directory::Sample;
use roster_model::Quiet;
use roster_serve::Config;
use roster_serve::{RunReport, Runner, SyncOptions};
use roster_sim::directory::Directory;

const NORMALIZE_STEP: &str = "[[source.transforms]]\nplugin = \"normalize\"\n";

/// The world's configuration with its transform chain replaced by `chain` and `source_extra`
/// added to the source.
fn config(w: &World, chain: &str, source_extra: &str) -> String {
    let text = w.config_text();
    assert!(text.contains(NORMALIZE_STEP));
    text.replace(NORMALIZE_STEP, &format!("{source_extra}\n{chain}"))
}

fn engine(w: &World, text: &str) -> Runner {
    let config = Config::parse(text, w.rt.dir.path(), &common::kinds()).unwrap();
    Runner::new(w.store.clone(), w.rt.runtime.clone(), config, &common::kinds()).unwrap()
}

async fn sync(w: &World, text: &str) -> RunReport {
    let opts = SyncOptions {
        trigger: roster_model::Trigger::Cli,
        actor: "test".into(),
        ..Default::default()
    };
    engine(w, text).sync(&opts, &Quiet).await.unwrap()
}

/// Usernames as UPNs with upper case, so `normalize`'s settings visibly change them.
fn upn_directory() -> Directory {
    let mut d = Directory::generate(12, 3, 1);
    for u in &mut d.users {
        u.username = format!("{}@Example.COM", u.username.to_uppercase());
    }
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settings_file_is_reread_each_run_and_a_broken_one_keeps_the_last_accepted() {
    let d = upn_directory();
    let mut w = World::new(&d, bitbucket()).await;
    // The new settings rename every account: a mass rename the default threshold would hold.
    w.target_extra = "threshold = { renames = { count = 50, percent = 100, floor = 5 } }".into();
    let file = w.rt.dir.path().join("normalize.toml");
    let text = config(
        &w,
        &format!(
            "[[source.transforms]]\nplugin = \"normalize\"\nsettings_file = \"{}\"\n",
            file.display()
        ),
        "",
    );
    std::fs::write(&file, "strip_domain = false\n").unwrap();
    let r = sync(&w, &text).await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert!(w.sim.lock().users().contains_key("user000001@example.com"));

    // A new version: the next run uses it (accounts renamed, not recreated).
    std::fs::write(&file, "strip_domain = true\n").unwrap();
    let r = sync(&w, &text).await;
    assert_eq!(
        r.summary.planned.get("rename-user"),
        Some(&12),
        "{:?}",
        r.summary.planned
    );
    assert!(w.sim.lock().users().contains_key("user000001"));

    // A broken version is refused with its error; the accepted one keeps serving: no change.
    std::fs::write(&file, "strip_domian = true\n").unwrap();
    let writes = w.bb_writes();
    let r = sync(&w, &text).await;
    assert_eq!(r.state, "succeeded");
    assert_eq!(w.bb_writes(), writes, "{:?}", r.summary.planned);
    let warning = r.summary.warnings.iter().find(|x| x.contains("was refused")).unwrap();
    assert!(
        warning.contains("normalize.toml") && warning.contains("strip_domian"),
        "{warning}"
    );
    // So is a file that is not even TOML.
    std::fs::write(&file, "strip_domain = \n").unwrap();
    let r = sync(&w, &text).await;
    assert!(r.summary.warnings.iter().any(|x| x.contains("was refused")));
    assert_eq!(w.bb_writes(), writes);

    // Fixed again: used at once.
    std::fs::write(&file, "strip_domain = false\n").unwrap();
    let r = sync(&w, &text).await;
    assert_eq!(r.summary.planned.get("rename-user"), Some(&12));
    assert!(!r.summary.warnings.iter().any(|x| x.contains("was refused")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_settings_file_with_nothing_accepted_before_fails_the_run_cleanly() {
    let d = upn_directory();
    let w = World::new(&d, bitbucket()).await;
    let file = w.rt.dir.path().join("normalize.json");
    std::fs::write(&file, "{\"strip_domain\": tru}").unwrap();
    let text = config(
        &w,
        &format!(
            "[[source.transforms]]\nplugin = \"normalize\"\nsettings_file = \"{}\"\n",
            file.display()
        ),
        "",
    );
    let opts = SyncOptions::default();
    let err = engine(&w, &text).sync(&opts, &Quiet).await.unwrap_err().to_string();
    assert!(
        err.contains("normalize.json") && err.contains("line 1, column"),
        "{err}"
    );
    assert!(err.contains("no earlier version"), "{err}");
    assert_eq!(w.bb_writes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_groups_keep_only_their_members_nested_ones_included() {
    // team-00000 ⊃ team-00001 ⊃ team-00002 ⊃ team-00003 (Directory::generate's chains).
    let d = Directory::generate(40, 8, 1);
    let w = World::new(&d, bitbucket()).await;
    let text = config(
        &w,
        NORMALIZE_STEP,
        "required_groups = [\"TEAM-00001\", \"no-such-group\"]",
    );
    let r = sync(&w, &text).await;
    assert_eq!(r.state, "succeeded");
    let expected = &d.expected_members()["team-00001"];
    let mut licensed = w.sim.lock().licensed_users();
    licensed.remove("admin");
    assert_eq!(&licensed, expected, "only team-00001's members, through nesting too");
    assert!(
        r.summary
            .warnings
            .iter()
            .any(|x| x.contains("'no-such-group' is not in the source"))
    );
    assert!(
        r.summary
            .warnings
            .iter()
            .any(|x| x.contains(&format!("{} user(s) left out", 40 - expected.len())))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_accounts_start_in_new_user_groups_which_are_never_enforced_afterwards() {
    let d = Directory::generate(6, 2, 1);
    let mut state = bitbucket();
    state.add_group("onboarding", &[]);
    let mut w = World::new(&d, state).await;
    w.target_extra = "new_user_groups = [\"onboarding\", \"missing-group\"]".into();
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded");
    assert_eq!(w.sim.lock().groups()["onboarding"].len(), 6);
    assert!(r.summary.skipped.iter().any(|s| s.subject == "missing-group"));
    // Someone leaves onboarding in Bitbucket: Roster does not put them back.
    let before = w.bb_writes();
    w.sim.lock().remove_member("onboarding", "user000002");
    let r = w.sync().await;
    assert!(r.summary.planned.is_empty(), "{:?}", r.summary.planned);
    assert_eq!(w.bb_writes(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_shows_each_record_before_every_step_and_after_and_writes_nothing() {
    let d = upn_directory();
    let w = World::new(&d, bitbucket()).await;
    let text = config(
        &w,
        "[[source.transforms]]\nplugin = \"normalize\"\nsettings = { strip_domain = true, drop_inactive = true }\n",
        "required_groups = [\"team-00000\"]",
    );
    let e = engine(&w, &text);
    // Over the mirror (filled by a fetch).
    e.fetch(&SyncOptions::default(), &Quiet).await.unwrap();
    let t = e.preview("hr", None).await.unwrap();
    assert_eq!(t.users.len(), 12);
    let member = &d.expected_members()["team-00000"];
    for u in &t.users {
        let short = u.before.username.split('@').next().unwrap().to_lowercase();
        if member.contains(&u.before.username.to_lowercase()) {
            assert_eq!(u.after.as_ref().unwrap().username, short, "{u:?}");
            assert_eq!(u.steps[0].plugin, "normalize");
            assert_eq!(u.steps[0].outcome, "kept");
        } else {
            assert!(u.after.is_none());
            assert_eq!(u.steps[0].plugin, "required_groups");
            assert!(u.steps[0].reason.as_deref().unwrap().contains("team-00000"), "{u:?}");
        }
    }
    // Over sample records: an inactive one is dropped with normalize's reason.
    let sample = Sample::from_json(
        r#"{"users": [{"id": "s1", "username": "Zed@X.org", "active": false},
                      {"id": "s2", "username": "Amy@X.org", "attributes": {"dept": ["a", "b"]}}],
            "groups": [{"id": "g", "name": "team-00000"}],
            "memberships": [{"group": "g", "member": "s1"}, {"group": "g", "member": "s2"}]}"#,
    )
    .unwrap();
    let t = e.preview("hr", Some(sample)).await.unwrap();
    assert_eq!(t.users[0].steps[0].outcome, "dropped");
    assert!(t.users[0].steps[0].reason.is_some(), "{:?}", t.users[0]);
    assert_eq!(t.users[1].after.as_ref().unwrap().username, "amy");
    assert_eq!(t.groups[0].after, vec!["team-00000".to_string()]);
    assert_eq!(w.bb_writes(), 0, "a preview writes nothing");
    assert!(
        Sample::from_json(r#"{"users": [{"id": 1}]}"#)
            .unwrap_err()
            .contains("line 1")
    );
}

/// A directory in the `file` connector's form with the attributes a mapping reads.
const STAFF: &str = r#"{
  "users": [
    {"id": "1", "username": "Alice@Contoso.com", "email": "alice@contoso.com",
     "attributes": {"givenName": "Alice", "surname": "Archer", "department": "Engineering"}},
    {"id": "2", "username": "Bob@Contoso.com", "email": "bob@contoso.com",
     "attributes": {"givenName": "Bob", "surname": "Baker", "department": "Operations"}},
    {"id": "3", "username": "Carl@Contoso.com", "email": "carl@contoso.com",
     "attributes": {"givenName": "Carl", "surname": "Cole", "department": "Contractors"}},
    {"id": "4", "username": "Dora@Contoso.com", "email": "dora@contoso.com",
     "attributes": {"givenName": "Dora", "department": "Engineering"}}
  ],
  "groups": [
    {"id": "g1", "name": "AAD-Dev"}, {"id": "g2", "name": "AAD-Ops"}, {"id": "g3", "name": "Engineering"},
    {"id": "g4", "name": "bb-legacy"}, {"id": "g5", "name": "Marketing"}
  ],
  "memberships": [
    {"group": "g1", "member": "1"}, {"group": "g2", "member": "2"}, {"group": "g3", "member": "4"},
    {"group": "g4", "member": "1"}, {"group": "g5", "member": "2"}, {"group": "g1", "member": "3"}
  ]
}"#;

const MAPPING: &str = r#"
[user]
username = 'ToLower(StripDomain([username]))'
display_name = 'Join(" ", [givenName], [surname])'

[[scope.rules]]
name = "staff"
all = [{ attribute = "department", op = "not-equals", value = "Contractors" }]

[groups]
exclude = ["bb-legacy"]
unmatched = "skip"
case = "lower"

[[groups.rules]]
match = "^AAD-(.*)$"
to = ["$1"]

[[groups.rules]]
name = "Engineering"
to = ["dev", "eng"]
"#;

/// A world whose source reads `STAFF` through the `mapping` transform with `mapping` as its
/// settings file.
async fn staff_world(mapping: &str) -> (World, String, std::path::PathBuf) {
    let w = World::new(&Directory::default(), bitbucket()).await;
    w.rt.put("mapping", "mapping.wasm");
    w.rt.runtime.reload().await;
    std::fs::write(w.files_dir().join("directory.json"), STAFF).unwrap();
    let file = w.rt.dir.path().join("mapping.toml");
    std::fs::write(&file, mapping).unwrap();
    let text = config(
        &w,
        &format!(
            "[[source.transforms]]\nplugin = \"mapping\"\nsettings_file = \"{}\"\n",
            file.display()
        ),
        "",
    );
    (w, text, file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_decides_usernames_names_scope_and_groups() {
    let (w, text, _) = staff_world(MAPPING).await;
    let r = sync(&w, &text).await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    let bb = w.sim.lock();
    let users: Vec<&str> = bb
        .users()
        .keys()
        .map(String::as_str)
        .filter(|u| *u != "admin")
        .collect();
    assert_eq!(users, ["alice", "bob", "dora"], "the contractor is out of scope");
    assert_eq!(bb.users()["alice"].display_name, "Alice Archer");
    assert_eq!(bb.users()["dora"].display_name, "Dora", "Join skips what is missing");
    let group = |g: &str| bb.groups().get(g).cloned();
    use std::collections::BTreeSet;
    let set = |xs: &[&str]| Some(xs.iter().map(|x| x.to_string()).collect::<BTreeSet<_>>());
    assert_eq!(
        group("dev"),
        set(&["alice", "dora"]),
        "AAD-Dev and Engineering both become dev"
    );
    assert_eq!(group("eng"), set(&["dora"]));
    assert_eq!(group("ops"), set(&["bob"]));
    assert_eq!(group("bb-legacy"), None, "excluded");
    assert_eq!(group("marketing"), None, "no rule matched and unmatched = skip");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_mapping_is_refused_with_line_and_column_and_the_old_one_stays() {
    let (w, text, file) = staff_world(MAPPING).await;
    assert_eq!(sync(&w, &text).await.state, "succeeded");
    let writes = w.bb_writes();
    std::fs::write(
        &file,
        MAPPING.replace(
            "'ToLower(StripDomain([username]))'",
            "'ToLower(StripDomain([username])'",
        ),
    )
    .unwrap();
    let r = sync(&w, &text).await;
    assert_eq!(r.state, "succeeded");
    assert_eq!(
        w.bb_writes(),
        writes,
        "the accepted mapping kept serving: nothing changed"
    );
    let warning = r.summary.warnings.iter().find(|x| x.contains("was refused")).unwrap();
    assert!(
        warning.contains("user.username") && warning.contains("line 1, column"),
        "{warning}"
    );
    // Fixed: the next run uses the new mapping at once.
    std::fs::write(
        &file,
        MAPPING.replace(
            "ToLower(StripDomain([username]))",
            "Append(ToLower(StripDomain([username])), \"2\")",
        ),
    )
    .unwrap();
    let r = sync(&w, &text).await;
    assert_eq!(
        r.summary.planned.get("rename-user"),
        Some(&3),
        "{:?}",
        r.summary.planned
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_the_mapping_cannot_evaluate_is_skipped_with_its_reason_and_the_run_goes_on() {
    let mapping = "[user]\nusername = 'Left([username], [department])'\n";
    let (w, text, _) = staff_world(mapping).await;
    let r = sync(&w, &text).await;
    assert_eq!(r.state, "succeeded");
    assert_eq!(w.sim.lock().users().len(), 1, "every user failed: Left needs a number");
    let skipped: Vec<&String> = r
        .summary
        .warnings
        .iter()
        .filter(|x| x.contains("skipped by mapping"))
        .collect();
    assert_eq!(skipped.len(), 4, "{:?}", r.summary.warnings);
    assert!(
        skipped[0].contains("user.username") && skipped[0].contains("Left"),
        "{}",
        skipped[0]
    );
}

/// A user the mapping can no longer evaluate is unknown this run, not gone: their account is
/// neither deprovisioned nor stripped of its groups, and the run says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_the_mapping_cannot_evaluate_keeps_their_account_and_groups() {
    let d = Directory::generate(12, 3, 1);
    let w = World::new(&d, bitbucket()).await;
    w.rt.put("mapping", "mapping.wasm");
    w.rt.runtime.reload().await;
    let good = config(
        &w,
        "[[source.transforms]]\nplugin = \"mapping\"\nsettings = { user = { username = 'ToLower([username])' } }\n",
        "",
    );
    let r = sync(&w, &good).await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    let victim = d.users[1].username.to_lowercase();
    let groups = w.groups_of(&victim);
    assert!(groups.len() > 1, "{groups:?}");

    // Only the victim's username now fails to evaluate (Left needs a number).
    let broken = good.replace(
        "'ToLower([username])'",
        &format!("'Switch(ToLower([username]), ToLower([username]), \"{victim}\", Left([username], \"x\"))'"),
    );
    let writes = w.bb_writes();
    let r = sync(&w, &broken).await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert!(r.summary.planned.is_empty(), "{:?}", r.summary.planned);
    assert_eq!(w.bb_writes(), writes);
    assert_eq!(w.groups_of(&victim), groups);
    assert!(
        r.summary
            .skipped
            .iter()
            .any(|s| s.subject == victim && s.why.contains("could not be mapped")),
        "{:?}",
        r.summary.skipped
    );
    assert!(
        r.summary
            .warnings
            .iter()
            .any(|x| x.contains("skipped by mapping") && x.contains("Left")),
        "{:?}",
        r.summary.warnings
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_runs_in_order_and_the_preview_names_the_rule_that_decided() {
    let (w, _, file) = staff_world(MAPPING).await;
    let step = |plugin: &str, settings: &str| format!("[[source.transforms]]\nplugin = \"{plugin}\"\n{settings}\n");
    let mapping_step = step("mapping", &format!("settings_file = \"{}\"", file.display()));
    let append = step(
        "mapping",
        "settings = { user = { username = 'Append([username], \".x\")' } }",
    );
    let strip = step("normalize", "settings = { strip_domain = true }");
    // strip then append: alice.x; append then strip: alice (the suffix went with the domain).
    let e = engine(&w, &config(&w, &format!("{strip}{append}"), ""));
    e.fetch(&SyncOptions::default(), &Quiet).await.unwrap();
    let a = e.preview("hr", None).await.unwrap();
    assert_eq!(a.users[0].after.as_ref().unwrap().username, "alice.x");
    let b = engine(&w, &config(&w, &format!("{append}{strip}"), ""))
        .preview("hr", None)
        .await
        .unwrap();
    assert_eq!(b.users[0].after.as_ref().unwrap().username, "alice");
    assert_eq!(b.users[0].steps.len(), 2);
    assert_eq!(
        (b.users[0].steps[0].plugin.as_str(), b.users[0].steps[1].plugin.as_str()),
        ("mapping", "normalize")
    );

    let t = engine(&w, &config(&w, &mapping_step, ""))
        .preview("hr", None)
        .await
        .unwrap();
    let carl = t.users.iter().find(|u| u.id == "3").unwrap();
    assert!(carl.after.is_none());
    assert_eq!(
        carl.steps[0].reason.as_deref(),
        Some("out of scope: no scoping rule matched")
    );
    let alice = t.users.iter().find(|u| u.id == "1").unwrap();
    assert!(
        alice.steps[0].reason.as_deref().unwrap().contains("scope rule 'staff'"),
        "{alice:?}"
    );
    assert_eq!(alice.before.username, "Alice@Contoso.com");
    let dev = t.groups.iter().find(|g| g.before == "AAD-Dev").unwrap();
    assert_eq!(dev.after, vec!["dev".to_string()]);
    assert!(
        dev.steps[0].reason.as_deref().unwrap().contains("^AAD-(.*)$"),
        "{dev:?}"
    );
    let legacy = t.groups.iter().find(|g| g.before == "bb-legacy").unwrap();
    assert!(legacy.after.is_empty());
    assert!(
        legacy.steps[0].reason.as_deref().unwrap().contains("excluded"),
        "{legacy:?}"
    );
}

/// Packed batches (0.1.1) and record-by-record calls give the same outcomes, byte for byte:
/// kept, rewritten, dropped with a reason, failed with an error, groups fanned out or dropped,
/// with empty strings, non-ASCII text and missing optional fields.
#[tokio::test]
async fn packed_and_record_by_record_calls_give_the_same_outcomes() {
    use roster_runtime::types::{Group, User};
    use roster_runtime::{Limits, SourceAccess};
    let rt = common::TestRuntime::new(&[("mapping", "mapping.wasm")]).await;
    let settings = r#"{
      "user": {"username": "ToLower(StripDomain([userPrincipalName]))",
               "display_name": "NormalizeDiacritics([displayName])",
               "attributes": {"first": "Left([displayName], [n])"}},
      "scope": {"rules": [{"name": "staff", "all": [{"attribute": "employeeId", "op": "is-not-null"}]}]},
      "groups": {"unmatched": "skip", "rules": [{"match": "^AAD-(.*)$", "to": ["$1"]},
                                                {"name": "Engineering", "to": ["dev", "eng"]}]}
    }"#;
    let user = |i: usize, upn: &str, display: Option<&str>, n: &str, employee: bool| {
        let mut attributes = vec![
            ("userPrincipalName".to_string(), upn.to_string()),
            ("n".to_string(), n.to_string()),
        ];
        if let Some(d) = display {
            attributes.push(("displayName".into(), d.into()));
        }
        if employee {
            attributes.push(("employeeId".into(), format!("E{i}")));
        }
        User {
            id: format!("id-{i}"),
            username: upn.into(),
            email: i.is_multiple_of(2).then(|| format!("u{i}@example.com")),
            display_name: display.map(str::to_string),
            active: !i.is_multiple_of(3),
            attributes,
        }
    };
    let users = vec![
        user(0, "Zoë.Ångström@Contoso.COM", Some("Zoë Ångström"), "2", true),
        user(1, "plain@contoso.com", None, "1", true),
        user(2, "contractor@contoso.com", Some("C"), "1", false),
        user(3, "", Some(""), "0", true),
        user(4, "bad@contoso.com", Some("Bad"), "not-a-number", true),
        user(5, "日本@例え.jp", Some("日本 語"), "1", true),
    ];
    let groups: Vec<Group> = ["AAD-dev", "Engineering", "Other", ""]
        .iter()
        .enumerate()
        .map(|(i, n)| Group {
            id: format!("g{i}"),
            name: n.to_string(),
            description: (i == 0).then(|| "ünïcode".to_string()),
            attributes: vec![("k".into(), "v".into())],
        })
        .collect();
    let run = |packed: bool| {
        let (rt, users, groups) = (&rt, &users, &groups);
        async move {
            let mut job = rt
                .runtime
                .job("mapping", Limits::default(), SourceAccess::none())
                .await
                .unwrap();
            if !packed {
                job.prefer_records();
            }
            assert_eq!(
                job.is_packed(),
                packed,
                "the SDK-built mapping exports packed functions"
            );
            let u = job.map_users(settings, users.clone()).await.unwrap();
            let g = job.map_groups(settings, groups).await.unwrap();
            (format!("{u:?}"), format!("{g:?}"))
        }
    };
    let (packed_users, packed_groups) = run(true).await;
    let (record_users, record_groups) = run(false).await;
    assert_eq!(packed_users, record_users);
    assert_eq!(packed_groups, record_groups);
    // The batch really exercised each kind of outcome.
    for needle in [
        "zoë.ångström",
        "Zoe Angstrom",
        "Kept {",
        "Dropped {",
        "Failed {",
        "reason: Some(",
        "\"dev\"",
        "\"eng\"",
    ] {
        assert!(
            packed_users.contains(needle) || packed_groups.contains(needle),
            "{needle} in {packed_users}\n{packed_groups}"
        );
    }
}

/// `roster preview` and `POST /api/v1/sources/{id}/preview` show what the engine's preview
/// shows, with the warnings a run would give (a refused mapping file, and the version used
/// instead), and write nothing: not Bitbucket, and not the accepted version of a settings file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previews_from_the_cli_and_the_api_warn_as_a_run_would_and_remember_nothing() {
    let (w, text, file) = staff_world(MAPPING).await;
    assert_eq!(sync(&w, &text).await.state, "succeeded");
    let writes = w.bb_writes();
    let alice_after = |t: &roster_directory::transform::Traces| {
        t.users
            .iter()
            .find(|u| u.id == "1")
            .unwrap()
            .after
            .as_ref()
            .unwrap()
            .username
            .clone()
    };
    // A new, valid mapping is previewed, but only a run makes it the one to fall back on.
    std::fs::write(&file, MAPPING.replace("ToLower(StripDomain", "ToUpper(StripDomain")).unwrap();
    let t = engine(&w, &text).preview("hr", None).await.unwrap();
    assert_eq!(alice_after(&t), "ALICE");
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    std::fs::write(&file, "[user]\nusername = 'ToLower(\n").unwrap();
    let t = engine(&w, &text).preview("hr", None).await.unwrap();
    assert_eq!(alice_after(&t), "alice", "the version the last run accepted");
    assert!(
        t.warnings
            .iter()
            .any(|x| x.contains("was refused") && x.contains("keeps the version accepted")),
        "{:?}",
        t.warnings
    );

    // The CLI, as a separate process over the same data folder.
    std::fs::write(w.rt.dir.path().join("roster.toml"), &text).unwrap();
    let (_, cli) = common::roster_json(w.rt.dir.path(), &["preview", "hr", "--only", "alice"]);
    assert_eq!(cli["users"].as_array().unwrap().len(), 1, "{cli}");
    assert_eq!(cli["users"][0]["after"]["username"], "alice");
    assert!(cli["warnings"].to_string().contains("was refused"), "{cli}");

    // The API.
    let path = w.rt.dir.path().join("roster.toml");
    let service = roster_serve::Service::new(w.store.clone(), w.rt.runtime.clone(), &path, common::kinds()).unwrap();
    let (_, token) = w
        .store
        .create_token("op", roster_store::Role::Operator, "test")
        .unwrap();
    let (base, server) = common::api::serve(service).await;
    let answer = reqwest::Client::new()
        .post(format!("{base}/api/v1/sources/hr/preview"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"only": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let api: serde_json::Value = answer.json().await.unwrap();
    server.abort();
    assert_eq!(api["users"], cli["users"], "the API and the CLI show the same traces");
    assert_eq!(api["warnings"], cli["warnings"]);
    assert_eq!(w.bb_writes(), writes, "previews write nothing to Bitbucket");
}

//! The fault matrix: every fault the simulators' kit injects, at every stage of a run — fetch
//! (the `entra` connector against the Graph simulator), read target (the Bitbucket simulator's
//! GETs) and apply (its writes) — once and always. A run with the fault either completes
//! correctly (Bitbucket holds exactly what the tenant says) or fails cleanly (state `failed`,
//! no destructive write taken in, an error naming the source or target, the stage and the
//! cause); the next run without the fault converges, so nothing is lost.
//!
//! The test writes the outcome of every combination as Markdown rows to
//! `target/fault-matrix.md` (and prints them with `--nocapture`); RELIABILITY.md's table is
//! that file.

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::Method;
use futures::StreamExt as _;
use roster_model::{Quiet, RunState, Trigger};
use roster_runtime::Runtime;
use roster_serve::{Config, RunError, Runner, SyncOptions};
use roster_sim::bitbucket::BitbucketSim;
use roster_sim::directory::{DirMembership, DirUser, Directory};
use roster_sim::graph::{GraphSim, GraphUser};
use roster_sim::kit::{Cut, Fault, FaultRule, Outcome, RouteMatch, Times};
use roster_sim::scenario::{EntraSource, entra_source_config};
use roster_store::Store;
use roster_store::crypto::Key;

use common::entra::{CLIENT, DOMAIN, SECRET, TENANT, tenant};
use common::world::bitbucket;

/// Where in a run a fault strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Reading the source: Graph's answers to the connector (token requests spared).
    Fetch,
    /// Reading the target: Bitbucket's answers to GETs.
    Read,
    /// Applying the plan: Bitbucket's answers to writes.
    Apply,
}

impl Stage {
    const ALL: [Stage; 3] = [Stage::Fetch, Stage::Read, Stage::Apply];

    /// The words a clean failure's message uses for this stage and who was being talked to.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Stage::Fetch => ("source 'entra'", "fetch"),
            Stage::Read => ("target 'bitbucket'", "read"),
            Stage::Apply => ("target 'bitbucket'", "apply"),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Stage::Fetch => "fetch (Graph simulator)",
            Stage::Read => "read target (Bitbucket simulator, GET)",
            Stage::Apply => "apply (Bitbucket simulator, POST/PUT/DELETE)",
        }
    }

    /// The rule that puts `fault` at this stage: from the request after the first [`SKIP`]
    /// matching ones on, so the stage has begun (a page read, a write made) when it strikes.
    fn rule(self, fault: Fault, times: Times) -> FaultRule {
        let graph = RouteMatch::Not(Box::new(RouteMatch::path("/*/oauth2/v2.0/token")));
        let rule = FaultRule::new(fault).skip_first(SKIP).times(times);
        match self {
            Stage::Fetch => rule.on(Method::GET, graph),
            Stage::Read => rule.on(Method::GET, RouteMatch::prefix("/rest/api/")),
            Stage::Apply => rule.writes(RouteMatch::prefix("/rest/api/")),
        }
    }
}

/// Matching requests let through before a fault strikes.
const SKIP: u32 = 1;

/// One fault of the matrix.
struct Injected {
    name: &'static str,
    fault: Fault,
    /// Words of which a clean failure's message must hold one: the cause, as Roster says it.
    cause: &'static [&'static str],
}

/// Requests to the target time out after this (the `Hang` outlasts it).
const TIMEOUT_SECS: u64 = 1;

fn faults() -> Vec<Injected> {
    vec![
        Injected {
            name: "429 with Retry-After",
            fault: Fault::throttled(Some(1)),
            cause: &["429"],
        },
        Injected {
            name: "429 without Retry-After",
            fault: Fault::throttled(None),
            cause: &["429"],
        },
        Injected {
            name: "500",
            fault: Fault::status(500),
            cause: &["500"],
        },
        Injected {
            name: "502",
            fault: Fault::status(502),
            cause: &["502"],
        },
        Injected {
            name: "503",
            fault: Fault::status(503),
            cause: &["503"],
        },
        Injected {
            name: "timeout",
            fault: Fault::Hang(Duration::from_secs(TIMEOUT_SECS * 4)),
            cause: &["timed out"],
        },
        Injected {
            name: "connection reset",
            fault: Fault::Reset(Cut::BeforeServing),
            cause: &["connection", "reset", "closed"],
        },
        Injected {
            name: "truncated JSON",
            fault: Fault::TruncatedBody,
            cause: &["JSON", "EOF", "parse"],
        },
        Injected {
            name: "wrong content type (HTML 200)",
            fault: Fault::WrongContentType,
            cause: &["HTML", "text/html"],
        },
        Injected {
            name: "empty page mid-listing",
            fault: Fault::EmptyPage,
            cause: &["empty pages"],
        },
        Injected {
            name: "looping cursor",
            fault: Fault::LoopingCursor,
            cause: &["loop", "already read", "nextPageStart", "endless"],
        },
        Injected {
            name: "expired token",
            fault: Fault::ExpiredToken,
            cause: &["401", "token", "credentials"],
        },
    ]
}

/// A tenant, a Bitbucket instance synced from it once, and a second version of the tenant
/// whose sync creates, renames, updates, adds, removes and deprovisions.
struct Trial {
    graph: GraphSim,
    bb: BitbucketSim,
    store: Arc<Store>,
    dir: tempfile::TempDir,
    runtime: Runtime,
    /// What the tenant says after the changes.
    expected: Directory,
}

impl Trial {
    async fn new(runtime: Runtime) -> Trial {
        let mut d = Directory::generate(12, 4, 2);
        let graph = GraphSim::start(tenant(&d)).await;
        let bb = BitbucketSim::start(bitbucket()).await;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("roster.db"), Key::from_bytes([5; 32])).unwrap());
        let mut t = Trial {
            graph,
            bb,
            store,
            dir,
            runtime,
            expected: d.clone(),
        };
        let (state, error, _) = t.sync().await;
        assert_eq!(state, RunState::Succeeded, "the first sync, without faults: {error}");
        assert_eq!(t.mismatch(&d), None);
        t.change(&mut d);
        t.expected = d;
        t.bb.log().clear();
        t
    }

    /// Two newcomers in a group (creates, adds), a rename, a new display name, a membership
    /// ended (a removal) and a disabled account (deprovisioning).
    fn change(&self, d: &mut Directory) {
        let mut g = self.graph.lock();
        for i in 0..2 {
            let id = format!("u-new-{i}");
            let username = format!("newcomer{i}");
            let email = format!("{username}@example.com");
            g.add_user(GraphUser {
                id: id.clone(),
                user_principal_name: format!("{username}@{DOMAIN}"),
                mail: Some(email.clone()),
                display_name: format!("Newcomer {i}"),
                account_enabled: true,
                user_type: "Member".into(),
                ..GraphUser::default()
            });
            g.add_member("g-00001", &id);
            d.users.push(DirUser {
                id: id.clone(),
                username,
                email,
                display_name: format!("Newcomer {i}"),
                active: true,
            });
            d.memberships.push(DirMembership {
                group: "g-00001".into(),
                member: id,
                member_is_group: false,
            });
        }
        let renamed = &mut d.users[2];
        renamed.username = "renamed000002".into();
        g.update_user(&renamed.id, |u| {
            u.user_principal_name = format!("renamed000002@{DOMAIN}")
        });
        let shown = &mut d.users[3];
        shown.display_name = "Shown Differently".into();
        g.update_user(&shown.id, |u| u.display_name = "Shown Differently".into());
        let disabled = &mut d.users[5];
        disabled.active = false;
        g.update_user(&disabled.id, |u| u.account_enabled = false);
        // Ends a direct membership of the bottom of the nesting chain: that group loses a
        // member, and so do the groups above it unless they hold the user themselves.
        let (renamed, disabled) = (d.users[2].id.clone(), d.users[5].id.clone());
        let leaver = d
            .memberships
            .iter()
            .position(|m| m.group == "g-00003" && !m.member_is_group && m.member != renamed && m.member != disabled)
            .expect("a direct member of team-00003");
        let m = d.memberships.remove(leaver);
        g.remove_member(&m.group, &m.member);
    }

    fn config_text(&self) -> String {
        let url = self.graph.url();
        let source = EntraSource {
            graph_url: url,
            tenant_id: TENANT.into(),
            client_id: CLIENT.into(),
            secret: SECRET.into(),
            // Short waits so that a fault that lasts is given up on in seconds.
            source: format!(
                "limits = {{ request_timeout_secs = {TIMEOUT_SECS}, max_http_retries = 1, max_retry_wait_secs = 2 }}"
            ),
            ..EntraSource::default()
        };
        let target = format!(
            "threshold = {{ count = 50, percent = 100 }}\nmax_retries = 2\nrequest_timeout_secs = {TIMEOUT_SECS}"
        );
        entra_source_config(&source, &self.bb.url(), &target)
    }

    /// A full sync: how it ended and why (the recorded error, or the warnings).
    async fn sync(&self) -> (RunState, String, BTreeMap<String, usize>) {
        let kinds = common::kinds();
        let config = Config::parse(&self.config_text(), self.dir.path(), &kinds).unwrap();
        let runner = Runner::new(self.store.clone(), self.runtime.clone(), config, &kinds).unwrap();
        let opts = SyncOptions::new(Trigger::Cli, "test");
        let result = runner.sync(&opts, &Quiet).await;
        let run = self.store.runs(1).unwrap().remove(0);
        match result {
            Ok(r) => (r.state, r.summary.warnings.join("; "), r.summary.planned),
            Err(e @ (RunError::Engine(_) | RunError::Directory(_))) => {
                (run.state, run.error.unwrap_or_else(|| e.to_string()), BTreeMap::new())
            }
            Err(e) => panic!("the run could not be made at all: {e}"),
        }
    }

    /// Why Bitbucket does not hold what `d` says, if it does not.
    fn mismatch(&self, d: &Directory) -> Option<String> {
        let s = self.bb.lock();
        let mut wrong = Vec::new();
        for u in d.users.iter().filter(|u| u.active) {
            match s.users().get(&u.username.to_lowercase()) {
                None => wrong.push(format!("{} missing", u.username)),
                Some(got) if (got.display_name.as_str(), got.email.as_str()) != (&u.display_name[..], &u.email[..]) => {
                    wrong.push(format!("{} has other details", u.username))
                }
                Some(_) => {}
            }
        }
        for (group, members) in d.expected_members() {
            let got = s.groups().get(&group).cloned().unwrap_or_default();
            if got != members {
                let lost: Vec<_> = members.difference(&got).collect();
                let extra: Vec<_> = got.difference(&members).collect();
                wrong.push(format!("{group}: missing {lost:?}, extra {extra:?}"));
            }
        }
        let licensed = s.groups().get("bitbucket-users").cloned().unwrap_or_default();
        let active = d.active_usernames();
        if licensed != active {
            wrong.push(format!(
                "bitbucket-users: missing {:?}, extra {:?}",
                active.difference(&licensed).collect::<Vec<_>>(),
                licensed.difference(&active).collect::<Vec<_>>()
            ));
        }
        (!wrong.is_empty()).then(|| wrong.join("; "))
    }

    /// Memberships and accounts of `d` that Bitbucket lacks: what a run lost.
    fn lost(&self, d: &Directory) -> usize {
        let s = self.bb.lock();
        let accounts = d
            .users
            .iter()
            .filter(|u| u.active && !s.users().contains_key(&u.username.to_lowercase()))
            .count();
        let memberships: usize = d
            .expected_members()
            .iter()
            .map(|(g, m)| {
                let got = s.groups().get(g).cloned().unwrap_or_default();
                m.difference(&got).count()
            })
            .sum();
        accounts + memberships
    }

    /// Writes Bitbucket took in that take something away — deletions, renames, membership
    /// and permission removals, erasures — besides the first `spared` writes, which were made
    /// before the fault struck.
    fn destructive_writes(&self, spared: usize) -> usize {
        self.bb
            .log()
            .entries()
            .iter()
            .filter(|l| l.method != Method::GET)
            .skip(spared)
            .filter(|l| l.outcome == Outcome::Served && l.status.is_some_and(|s| s.is_success()))
            .filter(|l| {
                let path = l.target.split('?').next().unwrap_or_default();
                let below = path.split_once("/admin/").map_or("", |(_, p)| p);
                l.method == Method::DELETE
                    || (l.method == Method::POST
                        && [
                            "users/rename",
                            "users/remove-group",
                            "groups/remove-user",
                            "users/erasure",
                        ]
                        .contains(&below))
            })
            .count()
    }
}

/// How one combination went.
struct Row {
    fault: &'static str,
    stage: Stage,
    times: &'static str,
    did: String,
    destructive: String,
    lost: usize,
    /// Why the row breaks the promise, if it does.
    broken: Option<String>,
}

impl Row {
    fn markdown(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {} | {} |",
            self.fault,
            self.times,
            self.stage.label(),
            self.did.replace('|', "\\|").replace('\n', " "),
            self.destructive,
            self.lost
        )
    }
}

/// The longest a combination may take: the waits it is configured for, with room for a slow
/// machine. A hang or a loop shows up as a run past it.
const PER_RUN: Duration = Duration::from_secs(60);

async fn trial(runtime: Runtime, stage: Stage, f: &Injected, times: Times) -> Row {
    let t = Trial::new(runtime).await;
    let faults = match stage {
        Stage::Fetch => t.graph.faults(),
        Stage::Read | Stage::Apply => t.bb.faults(),
    };
    let rule = faults.add(stage.rule(f.fault.clone(), times));
    let started = Instant::now();
    let outcome = tokio::time::timeout(PER_RUN, t.sync()).await;
    let took = started.elapsed();
    let fired = faults.fired(rule);
    faults.clear();
    let mut row = Row {
        fault: f.name,
        stage,
        times: match times {
            Times::Always => "always",
            _ => "once",
        },
        did: String::new(),
        destructive: String::new(),
        lost: 0,
        broken: None,
    };
    let Ok((state, why, planned)) = outcome else {
        row.did = format!("did not end within {PER_RUN:?}");
        row.broken = Some(row.did.clone());
        return row;
    };
    // The writes the apply stage's fault lets through come first in the log: the plan's first
    // stage (one rename) ends before the next starts. Graph's and the read stage's faults
    // strike before Bitbucket is written to at all.
    let spared = match stage {
        Stage::Apply => SKIP as usize,
        Stage::Fetch | Stage::Read => 0,
    };
    let destructive = t.destructive_writes(spared);
    let (who, stage_word) = stage.names();
    let correct = t.mismatch(&t.expected);
    match state {
        RunState::Succeeded if correct.is_none() => {
            let takes_away: usize = [
                "remove-member",
                "deactivate-user",
                "rename-user",
                "delete-user",
                "delete-group",
            ]
            .iter()
            .filter_map(|k| planned.get(*k))
            .sum();
            row.did = format!(
                "completed correctly in {:.1} s, {fired} faulted answer(s) absorbed",
                took.as_secs_f64()
            );
            row.destructive = format!("0 beyond the plan's {takes_away}");
        }
        // Throttling that outlasts the retries pauses the run instead (the next one continues):
        // as clean as a failure, naming the cause, nothing destructive after it.
        RunState::Failed | RunState::Paused => {
            row.did = format!("{state} cleanly in {:.1} s: {}", took.as_secs_f64(), shorten(&why));
            row.destructive = destructive.to_string();
            let names_cause = f.cause.iter().any(|c| why.to_lowercase().contains(&c.to_lowercase()));
            if destructive > 0 {
                let log: Vec<String> =
                    t.bb.log()
                        .entries()
                        .iter()
                        .map(|l| format!("{} {} {:?} {:?}", l.method, l.target, l.status, l.outcome))
                        .collect();
                row.broken = Some(format!(
                    "{destructive} destructive write(s) by a failed run after the fault struck:\n{}",
                    log.join("\n")
                ));
            } else if !(why.contains(&format!("{who}: {stage_word}:")) && names_cause) {
                row.broken = Some(format!(
                    "the error does not begin `{who}: {stage_word}:` and name the cause ({:?}): {why}",
                    f.cause
                ));
            }
        }
        other => {
            row.did = format!("{other}: {}", correct.as_deref().unwrap_or(&why));
            row.destructive = destructive.to_string();
            row.broken = Some(format!("ended {other}, neither correct nor a clean failure: {why}"));
        }
    }
    if fired == 0 {
        row.broken = Some("the fault never struck: the combination proves nothing".into());
    }
    // Without the fault, the next run converges: nothing was lost.
    let (state, why, _) = t.sync().await;
    row.lost = t.lost(&t.expected);
    if state != RunState::Succeeded || t.mismatch(&t.expected).is_some() {
        let wrong = t.mismatch(&t.expected).unwrap_or(why);
        row.broken
            .get_or_insert(format!("the next run did not converge ({state}): {wrong}"));
    }
    row
}

/// The start of a message, for the table: who and which stage, and the cause.
fn shorten(why: &str) -> String {
    let one = why.split("; nothing was").next().unwrap_or(why);
    match one.char_indices().nth(240) {
        Some((cut, _)) => format!("{}…", &one[..cut]),
        None => one.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_at_every_stage_completes_correctly_or_fails_cleanly_and_loses_nothing() {
    let rt = common::TestRuntime::new(&[("entra", "entra.wasm"), ("normalize", "normalize.wasm")]).await;
    let all = faults();
    let mut cases = Vec::new();
    for stage in Stage::ALL {
        for f in &all {
            // Writes are not pages: paging faults have no apply stage.
            let paging = matches!(f.fault, Fault::EmptyPage | Fault::LoopingCursor);
            if stage == Stage::Apply && paging {
                continue;
            }
            for times in [Times::Once, Times::Always] {
                cases.push((stage, f, times));
            }
        }
    }
    let started = Instant::now();
    let rows: Vec<Row> = futures::stream::iter(cases)
        .map(|(stage, f, times)| trial(rt.runtime.clone(), stage, f, times))
        .buffered(4)
        .collect()
        .await;
    let mut table = String::from(
        "| fault | how often | where | what Roster did | destructive writes | data lost |\n|---|---|---|---|---|---|\n",
    );
    for r in &rows {
        table.push_str(&r.markdown());
        table.push('\n');
    }
    println!("{table}");
    println!(
        "{} combinations in {:.0} s",
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    let out = common::repo().join("target/fault-matrix.md");
    std::fs::write(&out, &table).unwrap();
    let broken: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            r.broken
                .as_ref()
                .map(|b| format!("{} / {} / {}: {b}", r.fault, r.times, r.stage.label()))
        })
        .collect();
    assert!(broken.is_empty(), "{} broken:\n{}", broken.len(), broken.join("\n"));
}

//! The mapping transform: 100,000 users through a ten-rule mapping in the WebAssembly component
//! vs the same mapping evaluated natively by the same crate (`roster-mapping`); prints the
//! Markdown kept in BENCHMARKS.md.
//!
//! `cargo bench -p roster --bench mapping` (release). Both sides run in this process: each round
//! measures every row once, one after the other, and the ratio is taken within each round
//! (the machine's speed drifts between rounds); medians are reported.
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::TestRuntime;
use roster_directory::transform::BATCH;
use roster_mapping::{Mapping, Outcome, Record};
use roster_runtime::job::read_packed_user_outcomes;
use roster_runtime::types::{Group, GroupOutcome, User, UserOutcome};
use roster_runtime::{Limits, SourceAccess};

/// The allocator the `roster` binary uses (`host/src/main.rs`), so both sides allocate as a
/// run does.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USERS: usize = 100_000;
const ROUNDS: usize = 7;

/// Eight expressions and a scope rule with two conditions: ten rules.
const MAPPING: &str = r#"{
  "user": {
    "username": "ToLower(StripDomain([userPrincipalName]))",
    "email": "ToLower(Coalesce([mail], [userPrincipalName]))",
    "display_name": "Coalesce([displayName], Join(\" \", [givenName], [surname]))",
    "active": "[accountEnabled]",
    "attributes": {
      "costCenter": "Switch([department], \"0000\", \"Engineering\", \"4711\", \"Sales\", \"4712\")",
      "initials": "Append(Left([givenName], 1), Left([surname], 1))",
      "plainName": "NormalizeDiacritics(StripSpaces([displayName]))",
      "upnDomain": "RegexReplace([userPrincipalName], \"^[^@]*@\", \"\")"
    }
  },
  "scope": {"rules": [{"name": "staff", "all": [
    {"attribute": "department", "op": "not-equals", "value": "Contractors"},
    {"attribute": "employeeId", "op": "is-not-null"}]}]}
}"#;

fn users() -> Vec<User> {
    let departments = ["Engineering", "Sales", "Support", "Contractors"];
    (0..USERS)
        .map(|i| {
            let given = if i % 7 == 0 { "Zoë" } else { "Anna" };
            let attrs = [
                ("userPrincipalName", format!("Anna.Smith{i}@Contoso.COM")),
                ("mail", format!("anna.smith{i}@contoso.com")),
                ("displayName", format!("{given} Smith {i}")),
                ("givenName", given.to_string()),
                ("surname", "Smith".to_string()),
                ("accountEnabled", if i % 50 == 0 { "false" } else { "true" }.to_string()),
                ("department", departments[i % departments.len()].to_string()),
                ("employeeId", format!("E{i:06}")),
            ];
            User {
                id: format!("8f2c{i:08}-4d1e-4b7a-9c55-1f0e2a3b4c5d"),
                username: attrs[0].1.clone(),
                email: Some(attrs[1].1.clone()),
                display_name: Some(attrs[2].1.clone()),
                active: i % 50 != 0,
                attributes: attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            }
        })
        .collect()
}

// The host's own conversions (as `runtime::job` expands them), for the host-share row.
roster_wire::conversions!(User, Group, UserOutcome, GroupOutcome);

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The native side does what the component's glue does: records in, outcomes out.
fn native(mapping: &Mapping, users: &[User]) -> (usize, usize) {
    let (mut kept, mut dropped) = (0, 0);
    for u in users {
        let record = Record {
            username: u.username.clone(),
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            active: u.active,
            attributes: u.attributes.clone(),
        };
        match mapping.map_user_owned(record) {
            Outcome::Keep { user, .. } => {
                std::hint::black_box(user);
                kept += 1
            }
            Outcome::Drop { .. } => dropped += 1,
            Outcome::Failed { error } => panic!("{error}"),
        }
    }
    (kept, dropped)
}

/// What one measurement of one round took, and what it decided: (kept, dropped).
type Measured = (Duration, (usize, usize));

#[tokio::main]
async fn main() {
    let rt = TestRuntime::new(&[("mapping", "mapping.wasm")]).await;
    let users = users();
    let limits = Limits {
        call_timeout_secs: 60.0,
        ..Limits::default()
    };
    let mapping = Mapping::parse(MAPPING).unwrap();
    let empty = Mapping::parse("{}").unwrap();

    // As a run does it: one job for the chain step, batches of BATCH users. Each side copies
    // the users it is given, as the native side does.
    let wasm = |settings: &'static str, packed: bool| {
        let (rt, users, limits) = (&rt, &users, &limits);
        async move {
            let started = Instant::now();
            let mut job = rt
                .runtime
                .job("mapping", limits.clone(), SourceAccess::none())
                .await
                .unwrap();
            if !packed {
                job.prefer_records();
            }
            assert_eq!(job.is_packed(), packed);
            let (mut kept, mut dropped) = (0, 0);
            for batch in users.chunks(BATCH) {
                for o in job.map_users(settings, batch.to_vec()).await.unwrap() {
                    assert!(o.error().is_none(), "{:?}", o.error());
                    if o.user().is_some() { kept += 1 } else { dropped += 1 }
                }
            }
            (started.elapsed(), (kept, dropped))
        }
    };
    let native_run = |m: &Mapping| -> Measured {
        let started = Instant::now();
        let counts = native(m, &users);
        (started.elapsed(), counts)
    };
    // The host's share of the packed path with no guest in between: copy and encode each
    // batch, then read an answer of as many empty patches back and apply them.
    let host_share = || {
        let started = Instant::now();
        for batch in users.chunks(BATCH) {
            let owned = batch.to_vec();
            std::hint::black_box(roster_wire::encode_users(owned.iter().map(user_ref)));
            let mut w = roster_wire::Writer::new(owned.len(), 0);
            for _ in &owned {
                w.patched_user(roster_wire::PatchFields::default(), [], Some("scope rule \"staff\""));
            }
            let answer = w.finish();
            let reader = roster_wire::Reader::new(&answer).unwrap();
            std::hint::black_box(read_packed_user_outcomes(reader, owned).unwrap());
        }
        started.elapsed()
    };

    // The machine is shared and its speed drifts: every round measures everything once, one
    // after the other, and the ratios are taken within each round.
    let mut rows: [Vec<Duration>; 7] = Default::default();
    let (mut packed_ratio, mut records_ratio) = (Vec::new(), Vec::new());
    let mut counts = Vec::new();
    for _ in 0..ROUNDS {
        let packed = wasm(MAPPING, true).await;
        let native = native_run(&mapping);
        let records = wasm(MAPPING, false).await;
        counts.extend([packed.1, native.1, records.1]);
        packed_ratio.push(packed.0.as_secs_f64() / native.0.as_secs_f64());
        records_ratio.push(records.0.as_secs_f64() / native.0.as_secs_f64());
        let round = [
            packed.0,
            native.0,
            wasm("{}", true).await.0,
            native_run(&empty).0,
            host_share(),
            records.0,
            wasm("{}", false).await.0,
        ];
        for (row, d) in rows.iter_mut().zip(round) {
            row.push(d);
        }
    }
    assert!(
        counts.windows(2).all(|w| w[0] == w[1]),
        "packed, record by record and native decide the same: {counts:?}"
    );
    let labels = [
        format!(
            "{USERS} users through the ten-rule mapping in the WASM component, batches packed (batches of {BATCH}, one job)"
        ),
        "the same users through the same mapping natively (`roster-mapping`)".to_string(),
        "the same users through an empty mapping in the WASM component, packed: the boundary alone".to_string(),
        "the empty mapping natively: what the boundary measurement also spends inside the guest".to_string(),
        "the host's share of a packed call alone: copy and encode each batch, read back and apply as many empty patches"
            .to_string(),
        "the ten-rule mapping in the WASM component, record by record (a 0.1.0 transform's path)".to_string(),
        "the empty mapping, record by record: that path's boundary alone".to_string(),
    ];
    println!("| measurement | result | target |");
    println!("|---|---|---|");
    for (what, times) in labels.iter().zip(rows) {
        let d = median(times);
        println!(
            "| {what}, median of {ROUNDS} | {:.0} ms ({:.2} µs/user) | — |",
            d.as_secs_f64() * 1e3,
            d.as_secs_f64() * 1e6 / USERS as f64
        );
    }
    let (lo, hi) = (
        packed_ratio.iter().copied().fold(f64::INFINITY, f64::min),
        packed_ratio.iter().copied().fold(0.0, f64::max),
    );
    println!(
        "| WASM (packed) ÷ native, median of the {ROUNDS} rounds' ratios (range {lo:.2}–{hi:.2}) | {:.2}× | ≤ 2× |",
        median_f(packed_ratio)
    );
    println!(
        "| WASM (record by record) ÷ native, median of the rounds' ratios | {:.2}× | — |",
        median_f(records_ratio)
    );
    println!(
        "\nkept {} and dropped {} (out of scope) on both sides",
        counts[0].0, counts[0].1
    );
}

fn median_f(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

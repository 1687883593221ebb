//! The mapping transform: 100,000 users through a ten-rule mapping in the WebAssembly component
//! vs the same mapping evaluated natively by the same crate (`roster-mapping`); prints the
//! Markdown kept in BENCHMARKS.md.
//!
//! `cargo bench -p roster --bench mapping` (release). Both sides run in this process, one after
//! the other, several times; medians are reported, and their ratio.
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::TestRuntime;
use roster::runtime::bindings::{Group, GroupOutcome, User, UserOutcome};
use roster::runtime::{Limits, SourceAccess};
use roster::sync::transform::BATCH;
use roster_mapping::{Mapping, Outcome, Record};

const USERS: usize = 100_000;
const ROUNDS: usize = 5;

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

#[tokio::main]
async fn main() {
    let rt = TestRuntime::new(&[("mapping", "mapping.wasm")]).await;
    let users = users();
    let limits = Limits {
        call_timeout_secs: 60.0,
        ..Limits::default()
    };
    let mapping = Mapping::parse(MAPPING).unwrap();

    // As a run does it: one job for the chain step, batches of BATCH users.
    let wasm = |settings: &'static str, packed: bool| {
        let (rt, users, limits) = (&rt, &users, &limits);
        async move {
            let mut times = Vec::new();
            let mut counts = (0, 0);
            for _ in 0..ROUNDS {
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
                    for o in job.map_users(settings, batch).await.unwrap() {
                        assert!(o.error.is_none(), "{:?}", o.error);
                        if o.user.is_some() { kept += 1 } else { dropped += 1 }
                    }
                }
                times.push(started.elapsed());
                counts = (kept, dropped);
            }
            (median(times), counts)
        }
    };
    let (boundary, _) = wasm("{}", true).await;
    let (w, wasm_counts) = wasm(MAPPING, true).await;
    let (records, record_counts) = wasm(MAPPING, false).await;
    let (records_boundary, _) = wasm("{}", false).await;
    assert_eq!(
        wasm_counts, record_counts,
        "packed and record by record decide the same"
    );
    let mut native_times = Vec::new();
    let mut native_counts = (0, 0);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        native_counts = native(&mapping, &users);
        native_times.push(started.elapsed());
    }
    assert_eq!(wasm_counts, native_counts, "both sides decide the same");
    let n = median(native_times);
    let empty = Mapping::parse("{}").unwrap();
    let mut empty_times = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        native(&empty, &users);
        empty_times.push(started.elapsed());
    }
    let ne = median(empty_times);
    // The host's share of the packed path: encoding each batch and decoding as many records
    // back (what reading the outcomes costs), with no guest in between.
    let mut host_times = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for batch in users.chunks(BATCH) {
            let bytes = roster_wire::encode_users(batch.iter().map(user_ref));
            std::hint::black_box(roster_wire::decode_users(&bytes).unwrap());
        }
        host_times.push(started.elapsed());
    }
    let host = median(host_times);
    println!("| measurement | result | target |");
    println!("|---|---|---|");
    for (what, d) in [
        (
            format!(
                "{USERS} users through the ten-rule mapping in the WASM component, batches packed (batches of {BATCH}, one job)"
            ),
            w,
        ),
        (
            "the same users through the same mapping natively (`roster-mapping`)".to_string(),
            n,
        ),
        (
            "the same users through an empty mapping in the WASM component, packed: the boundary alone".to_string(),
            boundary,
        ),
        (
            "the empty mapping natively: what the boundary measurement also spends inside the guest".to_string(),
            ne,
        ),
        (
            "the host's share of a packed call alone: encode each batch, decode as many users back, natively"
                .to_string(),
            host,
        ),
        (
            "the ten-rule mapping in the WASM component, record by record (a 0.1.0 transform's path)".to_string(),
            records,
        ),
        (
            "the empty mapping, record by record: that path's boundary alone".to_string(),
            records_boundary,
        ),
    ] {
        println!(
            "| {what}, median of {ROUNDS} | {:.0} ms ({:.2} µs/user) | — |",
            d.as_secs_f64() * 1e3,
            d.as_secs_f64() * 1e6 / USERS as f64
        );
    }
    println!(
        "| WASM (packed) ÷ native | {:.2}× | ≤ 2× |",
        w.as_secs_f64() / n.as_secs_f64()
    );
    println!(
        "| WASM (record by record) ÷ native | {:.2}× | — |",
        records.as_secs_f64() / n.as_secs_f64()
    );
    println!(
        "\nkept {} and dropped {} (out of scope) on both sides",
        native_counts.0, native_counts.1
    );
}

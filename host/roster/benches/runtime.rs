//! Plugin-runtime benchmarks; prints the Markdown table kept in BENCHMARKS.md.
//!
//! `cargo bench -p roster --bench runtime` (release build). Medians of many iterations, all
//! measured in one run so the ratios hold on a noisy machine.
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../../../plugins/normalize/src/rules.rs"]
#[allow(dead_code)]
mod rules;

use std::time::{Duration, Instant};

use common::TestRuntime;
use roster_runtime::types::User;
use roster_runtime::{Limits, Runtime, RuntimeConfig, SourceAccess, StepOutcome};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn users(n: usize) -> Vec<User> {
    (0..n)
        .map(|i| User {
            id: format!("8f2c{i:08}-4d1e-4b7a-9c55-1f0e2a3b4c5d"),
            username: format!("  First.Last{i}@Corp.Example.com "),
            email: Some(format!("First.Last{i}@Corp.Example.com")),
            display_name: Some(format!("First   Last {i}")),
            active: i % 10 != 0,
            attributes: vec![
                ("department".into(), "Engineering".into()),
                ("employeeId".into(), format!("E{i:06}")),
                ("jobTitle".into(), "Software Engineer".into()),
            ],
        })
        .collect()
}

/// The host's borrowed view of a user, as the packed path encodes it.
fn user_ref(u: &User) -> roster_wire::UserRef<'_> {
    roster_wire::UserRef {
        id: &u.id,
        username: &u.username,
        email: u.email.as_deref(),
        display_name: u.display_name.as_deref(),
        active: u.active,
        attributes: &u.attributes,
    }
}

/// What the guest does with a packed batch (the SDK's default `map-users-packed`: decode into
/// owned users, map them, encode each outcome whole), natively over the same `rules.rs`.
fn native_packed_guest(settings: &rules::Settings, batch: &[u8]) -> Vec<u8> {
    let users = roster_wire::Reader::new(batch)
        .and_then(|r| r.all(|r| r.user()))
        .unwrap();
    let mut w = roster_wire::Writer::new(users.len(), users.len() * 256);
    for mut u in users {
        if let Some(reason) = rules::drop_reason(settings, u.active) {
            w.user_outcome(None, Some(reason), None);
            continue;
        }
        u.username = rules::username(settings, &u.username);
        u.email = u.email.as_deref().and_then(rules::email);
        u.display_name = u.display_name.as_deref().and_then(rules::display_name);
        w.user_outcome(Some(roster_wire::UserRef::from(&u)), None, None);
    }
    w.finish()
}

/// The normalize transform's per-user glue, natively, over the very same `rules.rs`.
fn native_map(settings: &rules::Settings, users: &[User]) -> Vec<StepOutcome> {
    users
        .iter()
        .cloned()
        .map(|mut u| {
            if let Some(reason) = rules::drop_reason(settings, u.active) {
                return StepOutcome::Dropped {
                    input: u,
                    reason: Some(reason.into()),
                };
            }
            u.username = rules::username(settings, &u.username);
            u.email = u.email.as_deref().and_then(rules::email);
            u.display_name = u.display_name.as_deref().and_then(rules::display_name);
            StepOutcome::Kept { user: u, reason: None }
        })
        .collect()
}

#[tokio::main]
async fn main() {
    let limits = Limits {
        call_timeout_secs: 30.0,
        ..Limits::default()
    };
    let rt = TestRuntime::new(&[("normalize", "normalize.wasm")]).await;
    let plugin = rt.runtime.plugin("normalize").unwrap();

    // 1. Per-job instantiation: fresh Store + InstancePre::instantiate (pooling), then drop.
    for _ in 0..200 {
        drop(
            rt.runtime
                .start(plugin.clone(), limits.clone(), SourceAccess::none())
                .await
                .unwrap(),
        );
    }
    let mut samples = Vec::new();
    for _ in 0..5000 {
        let t = Instant::now();
        let job = rt
            .runtime
            .start(plugin.clone(), limits.clone(), SourceAccess::none())
            .await
            .unwrap();
        samples.push(t.elapsed());
        drop(job);
    }
    let instantiate = median(samples);
    let mut samples = Vec::new();
    for _ in 0..2000 {
        let t = Instant::now();
        let mut job = rt
            .runtime
            .start(plugin.clone(), limits.clone(), SourceAccess::none())
            .await
            .unwrap();
        job.describe().await.unwrap();
        drop(job);
        samples.push(t.elapsed());
    }
    let job_roundtrip = median(samples);

    // 2. Cold compile vs cached load of the same component (full prepare: read, sha256,
    //    compile or map the cache, validate, link, describe).
    let wasm = common::component("normalize");
    let mut cold = Vec::new();
    let mut cached = Vec::new();
    for _ in 0..5 {
        let cache = tempfile::tempdir().unwrap();
        let fresh = Runtime::new(RuntimeConfig::new(
            rt.plugins_dir(),
            cache.path(),
            common::test_cache_key(),
        ))
        .unwrap();
        let t = Instant::now();
        fresh.prepare(&wasm).await.unwrap();
        cold.push(t.elapsed());
        for _ in 0..20 {
            let t = Instant::now();
            let p = fresh.prepare(&wasm).await.unwrap();
            cached.push(t.elapsed());
            assert!(p.from_cache);
        }
    }
    let (cold, cached) = (median(cold), median(cached));

    // 3 + 4. A page of 1,000 users through the transform, round trip, vs native.
    let page = users(1000);
    let settings_json = r#"{"strip_domain": true, "drop_inactive": true}"#;
    let mut job = rt
        .runtime
        .start(plugin.clone(), limits.clone(), SourceAccess::none())
        .await
        .unwrap();
    let wasm_out = job.map_users(settings_json, page.clone()).await.unwrap();
    let settings: rules::Settings = serde_json::from_str(settings_json).unwrap();
    let native_out = native_map(&settings, &page);
    assert_eq!(
        format!("{wasm_out:?}"),
        format!("{native_out:?}"),
        "WASM and native must agree"
    );
    let mut wasm_samples = Vec::new();
    let mut native_samples = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        std::hint::black_box(job.map_users(settings_json, page.clone()).await.unwrap());
        wasm_samples.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(native_map(&settings, std::hint::black_box(&page)));
        native_samples.push(t.elapsed());
    }
    let (wasm_page, native_page) = (median(wasm_samples), median(native_samples));

    // 5. Where the packed round trip's time goes, each step timed alone on the same page: the
    //    host's clone of the page (the call takes the users by value), its encoding, the guest's
    //    work done natively, the host reading the answer back, and the record-by-record path
    //    for comparison.
    assert!(job.is_packed(), "normalize exports transform-packed");
    let batch = roster_wire::encode_users(page.iter().map(user_ref));
    let answer = native_packed_guest(&settings, &batch);
    let mut records = rt
        .runtime
        .start(plugin.clone(), limits.clone(), SourceAccess::none())
        .await
        .unwrap();
    records.prefer_records();
    let mut split: [Vec<Duration>; 5] = Default::default();
    for _ in 0..300 {
        let t = Instant::now();
        let copy = std::hint::black_box(page.clone());
        split[0].push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(roster_wire::encode_users(copy.iter().map(user_ref)));
        split[1].push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(native_packed_guest(&settings, std::hint::black_box(&batch)));
        split[2].push(t.elapsed());
        let t = Instant::now();
        let r = roster_wire::Reader::new(&answer).unwrap();
        std::hint::black_box(roster_runtime::job::read_packed_user_outcomes(r, copy).unwrap());
        split[3].push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(records.map_users(settings_json, page.clone()).await.unwrap());
        split[4].push(t.elapsed());
    }
    let [clone, encode, guest_native, decode, by_records] = split.map(median);

    let us = |d: Duration| format!("{:.1} µs", d.as_secs_f64() * 1e6);
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
    println!("| measurement | result | target |");
    println!("|---|---|---|");
    println!(
        "| new job: fresh Store + instantiate from InstancePre (pooling), median of 5,000 | {} | ≤ 50 µs |",
        us(instantiate)
    );
    println!(
        "| new job + `describe()` call + drop, median of 2,000 | {} | — |",
        us(job_roundtrip)
    );
    println!(
        "| cold load: compile with Cranelift + validate + link + describe, median of 5 | {} | — |",
        ms(cold)
    );
    println!(
        "| cached load: map the `.cwasm` + validate + link + describe, median of 100 | {} | ≤ 5 ms |",
        ms(cached)
    );
    println!(
        "| cold ÷ cached | {:.0}× | — |",
        cold.as_secs_f64() / cached.as_secs_f64()
    );
    println!(
        "| 1,000 users through `normalize` in WASM, round trip, median of 300 | {} | ≤ 2 ms |",
        ms(wasm_page)
    );
    println!(
        "| the same 1,000 users through the same rules natively | {} | — |",
        ms(native_page)
    );
    println!(
        "| WASM ÷ native | {:.1}× | — |",
        wasm_page.as_secs_f64() / native_page.as_secs_f64()
    );
    println!();
    println!("| the packed round trip of 1,000 users, step by step (medians of 300) | time |");
    println!("|---|---|");
    println!("| host: clone the page (the call takes it by value) | {} |", us(clone));
    println!("| host: encode the batch ({} bytes) | {} |", batch.len(), us(encode));
    println!(
        "| guest's work natively: decode, rules, encode the answer ({} bytes) | {} |",
        answer.len(),
        us(guest_native)
    );
    println!("| host: read the answer into outcomes | {} |", us(decode));
    let host_side = clone + encode + decode;
    println!(
        "| round trip − host steps = the call into WASM (guest work, copies in and out) | {} |",
        us(wasm_page.saturating_sub(host_side))
    );
    println!(
        "| the same 1,000 users record by record (`prefer_records`) | {} |",
        ms(by_records)
    );
}

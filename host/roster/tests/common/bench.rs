//! What the connector benchmarks print: one Markdown row per scenario.

use std::time::Duration;

use roster_sim::directory::Directory;

/// One row of a connector benchmark's table, from what `roster fetch --json` (or `sync`)
/// reported: the scenario, the directory, the mode, the wall time, the requests against the
/// floor, what was read, Roster's peak RSS and where the time went. Panics on an incomplete
/// fetch: a benchmark of a failed read measures nothing.
pub fn fetch_row(name: &str, d: &Directory, wall: Duration, report: &serde_json::Value, requests: u64, floor: u64) {
    let f = &report["summary"]["fetch"][0];
    let rss = report["summary"]["peak_rss_mib"].as_f64().unwrap_or(0.0);
    println!(
        "| {name} | {} users, {} groups, {} memberships | {} | {:.2} s | {} | {:.2} | {} pages, {} users, {} groups, {} memberships, {} removals | {:.0} MiB | connector {:.2} s, store {:.2} s |",
        d.users.len(),
        d.groups.len(),
        d.memberships.len(),
        f["mode"].as_str().unwrap_or("?"),
        wall.as_secs_f64(),
        requests,
        requests as f64 / floor as f64,
        f["pages"],
        f["users"],
        f["groups"],
        f["memberships"],
        f["removals"],
        rss,
        f["connector_ms"].as_u64().unwrap_or(0) as f64 / 1000.0,
        f["store_ms"].as_u64().unwrap_or(0) as f64 / 1000.0,
    );
    assert!(f["complete"].as_bool().unwrap_or(false), "{name}: {f}");
}

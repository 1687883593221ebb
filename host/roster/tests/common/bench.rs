//! What the connector benchmarks print: one Markdown row per scenario.

use std::path::Path;
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

/// What one `roster fetch` took and reported, and the API calls the simulator answered meanwhile.
pub struct Fetched {
    /// Wall time of the `roster` process.
    pub wall: Duration,
    /// API calls answered during the run.
    pub calls: u64,
    /// `roster fetch --json`'s report.
    pub report: serde_json::Value,
}

/// Runs `roster fetch EXTRA… --json` over the data folder `data`, off the async workers the
/// simulator answers on; `calls` reads the simulator's running count of API calls.
pub async fn fetch(data: &Path, extra: &[&'static str], calls: impl Fn() -> u64) -> Fetched {
    let before = calls();
    let data = data.to_path_buf();
    let args: Vec<&'static str> = std::iter::once("fetch").chain(extra.iter().copied()).collect();
    let (wall, report) = tokio::task::spawn_blocking(move || super::roster_json(&data, &args))
        .await
        .unwrap();
    Fetched {
        wall,
        calls: calls() - before,
        report,
    }
}

//! Schedules (`roster-schedule`): intervals, Unix and Quartz cron expressions, and the
//! `[source.schedule]` table, with their fire times.
//!
//! Input: the schedule text (an expression, a TOML table as `roster.toml` writes it, or the
//! JSON object the REST API takes), then optionally a NUL and bytes that [`arbitrary`] turns
//! into the instants to ask about (without them, a few fixed ones).

use arbitrary::Unstructured;
use chrono::{DateTime, Duration, Utc};
use roster_schedule::{Schedule, ScheduleConfig};

use crate::split::{parts, text};

/// Instants to ask about: ordinary ones, the ends of the year range Quartz takes, and the
/// ends of what chrono represents (a schedule must answer `None` there, never panic).
fn fixed_instants() -> Vec<DateTime<Utc>> {
    [
        0,
        1_700_000_000,
        1_709_164_799, // 2024-02-28 23:59:59, before a leap day
        4_102_444_800, // 2100-01-01, not a leap year
        7_258_118_399, // 2199-12-31 23:59:59, the last second Quartz's year field reaches
        -62_135_596_800,
        253_402_300_799,
    ]
    .into_iter()
    .filter_map(|s| DateTime::from_timestamp(s, 0))
    .chain([DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC])
    .collect()
}

fn instants(rest: &[&[u8]]) -> Vec<DateTime<Utc>> {
    let Some(bytes) = rest.first() else {
        return fixed_instants();
    };
    let mut u = Unstructured::new(bytes);
    let mut out = Vec::new();
    while out.len() < 4 && !u.is_empty() {
        // Mostly within the years schedules are about; sometimes anywhere chrono reaches.
        let secs = match u.int_in_range(0..=3u8) {
            Ok(0) => u.arbitrary::<i64>().unwrap_or(0),
            _ => u.int_in_range(0..=7_300_000_000i64).unwrap_or(0),
        };
        let nanos = u.int_in_range(0..=999_999_999u32).unwrap_or(0);
        if let Some(t) = DateTime::from_timestamp(secs, nanos) {
            out.push(t);
        }
    }
    if out.is_empty() { fixed_instants() } else { out }
}

/// Reads the text the way Roster would meet it, then checks the schedule's fire times against
/// each other: forwards (`next_after`, `upcoming`) and backwards (`missed_between`) must agree.
pub fn run(data: &[u8]) {
    let p = parts(data);
    let source = text(p[0]);
    let trimmed = source.trim_start();
    let schedule = if trimmed.starts_with('{') {
        match serde_json::from_str::<ScheduleConfig>(trimmed) {
            Ok(c) => config(&c),
            Err(_) => return,
        }
    } else if trimmed.contains('=') {
        match toml::from_str::<ScheduleConfig>(trimmed) {
            Ok(c) => config(&c),
            Err(_) => return,
        }
    } else {
        match source.parse::<Schedule>() {
            Ok(s) => Some(s),
            Err(e) => {
                assert!(!e.to_string().is_empty());
                None
            }
        }
    };
    let Some(s) = schedule else { return };
    assert!(!s.describe().is_empty());
    for t in instants(&p[1..]) {
        fire_times(&s, t);
    }
}

/// A configured schedule: refused with a message, or valid in every field it holds.
fn config(c: &ScheduleConfig) -> Option<Schedule> {
    match c.schedule() {
        Ok(s) => {
            assert!(
                c.full_every_hours.is_finite() && c.full_every_hours >= 0.0,
                "full_every_hours {} accepted: the scheduler would compare against it forever",
                c.full_every_hours
            );
            Some(s)
        }
        Err(e) => {
            assert!(!e.is_empty());
            None
        }
    }
}

fn fire_times(s: &Schedule, t: DateTime<Utc>) {
    let Some(next) = s.next_after(t) else { return };
    assert!(next > t, "{s}: next_after({t}) = {next}, not after it");
    assert_eq!(
        next.timestamp_subsec_nanos(),
        0,
        "{s}: fire time {next} is not a whole second"
    );
    let upcoming = s.upcoming(t, 3);
    assert_eq!(
        upcoming.first(),
        Some(&next),
        "{s}: upcoming({t}) does not start at next_after"
    );
    assert!(
        upcoming.windows(2).all(|w| w[0] < w[1]),
        "{s}: upcoming({t}) = {upcoming:?}"
    );
    // Nothing fires in (t, next), so the latest fire time up to `next` after `t` is `next`.
    assert_eq!(
        s.missed_between(t, next),
        Some(next),
        "{s}: missed_between({t}, {next}) disagrees with next_after({t})"
    );
    if let Some(before) = next.checked_sub_signed(Duration::seconds(1))
        && before > t
    {
        assert_eq!(
            s.missed_between(t, before),
            None,
            "{s}: missed_between({t}, {before}) found a fire time next_after({t}) = {next} skipped"
        );
    }
}

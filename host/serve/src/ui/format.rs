//! How the pages show times and durations to people: dates (RFC 3339 in UTC, turned into the
//! browser's local time by `app.js`), never epoch milliseconds.

/// A moment, for a `<time datetime>`: its RFC 3339 form and the text shown.
#[derive(Debug, Clone, PartialEq)]
pub struct When {
    /// RFC 3339, UTC (`2026-12-06T03:04:05Z`).
    pub iso: String,
    /// `2026-12-06 03:04:05 UTC`.
    pub text: String,
}

/// `ms` since the epoch as a [`When`]; `None` for a time chrono cannot represent.
pub fn when(ms: i64) -> Option<When> {
    let t = chrono::DateTime::from_timestamp_millis(ms)?;
    Some(When {
        iso: t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        text: t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    })
}

/// An RFC 3339 time (as the schedule gives it) as a [`When`].
pub fn when_rfc3339(text: &str) -> Option<When> {
    let t = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    when(t.timestamp_millis())
}

/// A duration in milliseconds for people: `850 ms`, `12.4 s`, `3 min 05 s`, `2 h 07 min`.
pub fn duration_ms(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {:02} s", ms / 60_000, (ms % 60_000) / 1000),
        _ => format!("{} h {:02} min", ms / 3_600_000, (ms % 3_600_000) / 60_000),
    }
}

/// How long ago `ms` was, from `now` (both epoch ms): `4 min ago`.
pub fn ago(ms: i64, now: i64) -> String {
    let d = (now - ms).max(0) as u64;
    format!("{} ago", duration_ms(d))
}

/// A run in progress for people: its stage, how far, and how long (the dashboard's and the run
/// page's live parts show the same words).
pub struct Gauge {
    /// The stage's name (`starting` before the first).
    pub stage: String,
    /// Items of the stage done.
    pub done: u64,
    /// Items of the stage in all, when known.
    pub total: Option<u64>,
    /// The whole run's percent, when known.
    pub percent: Option<u32>,
    /// Time left, or `unknown yet`.
    pub eta: String,
    /// Time since the run started.
    pub elapsed: String,
}

impl Gauge {
    /// The gauge of a run in progress.
    pub fn of(s: &crate::service::runs::LiveStatus) -> Gauge {
        let stage = s.stage.as_ref();
        Gauge {
            stage: stage.map_or_else(|| "starting".to_string(), |st| st.name.clone()),
            done: stage.map_or(0, |st| st.done),
            total: stage.and_then(|st| st.total),
            percent: s.percent.map(|p| p.clamp(0.0, 100.0).round() as u32),
            eta: s
                .eta_seconds
                .map_or_else(|| "unknown yet".to_string(), |e| duration_ms((e * 1000.0) as u64)),
            elapsed: duration_ms(s.elapsed_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_dates_not_epoch_milliseconds() {
        let w = when(1_765_000_000_123).unwrap();
        assert_eq!(w.iso, "2025-12-06T05:46:40Z");
        assert_eq!(w.text, "2025-12-06 05:46:40 UTC");
        assert_eq!(
            when_rfc3339("2026-12-06T01:00:00+01:00").unwrap().iso,
            "2026-12-06T00:00:00Z"
        );
        assert_eq!(duration_ms(850), "850 ms");
        assert_eq!(duration_ms(12_400), "12.4 s");
        assert_eq!(duration_ms(185_000), "3 min 05 s");
        assert_eq!(duration_ms(7_620_000), "2 h 07 min");
        assert_eq!(ago(1_000, 61_000), "1 min 00 s ago");
    }
}

//! Times as the command line shows them: dates in the local zone, or the zone `--tz` /
//! `ROSTER_TZ` names. The store keeps unix milliseconds; nothing a person reads shows them raw.

use anyhow::Context;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

use crate::Cli;

/// The zone the command line shows times in.
#[derive(Debug, Clone)]
pub struct Clock {
    tz: TimeZone,
}

impl Clock {
    /// The zone `--tz` / `ROSTER_TZ` names (an IANA name such as `Europe/Berlin`, or `UTC`),
    /// else the system's (`TZ`, then /etc/localtime; UTC when neither says).
    pub fn from_cli(cli: &Cli) -> anyhow::Result<Clock> {
        Clock::named(cli.tz.as_deref())
    }

    /// The zone named, or the system's when `None`.
    pub fn named(name: Option<&str>) -> anyhow::Result<Clock> {
        let tz = match name.map(str::trim).filter(|n| !n.is_empty()) {
            Some(name) => TimeZone::get(name).with_context(|| {
                format!(
                    "unknown time zone '{name}' (from --tz or ROSTER_TZ): give an IANA zone name such as Europe/Berlin or America/New_York, or UTC"
                )
            })?,
            None => TimeZone::try_system().unwrap_or(TimeZone::UTC),
        };
        Ok(Clock { tz })
    }

    fn zoned(&self, ms: i64) -> Option<Zoned> {
        Timestamp::from_millisecond(ms)
            .ok()
            .map(|t| t.to_zoned(self.tz.clone()))
    }

    /// `ms` as a date for a table: `2026-12-06 14:05:09 CET`.
    pub fn show(&self, ms: i64) -> String {
        self.zoned(ms).map_or_else(
            || format!("{ms} ms (out of range)"),
            |z| z.strftime("%Y-%m-%d %H:%M:%S %Z").to_string(),
        )
    }

    /// An optional time as [`Clock::show`] does, or `none` when there is none.
    pub fn show_or(&self, ms: Option<i64>, none: &str) -> String {
        ms.map_or_else(|| none.to_string(), |ms| self.show(ms))
    }

    /// `ms` as RFC 3339 with the zone's offset (`2026-12-06T14:05:09.123+01:00`), for JSON.
    pub fn rfc3339(&self, ms: i64) -> Option<String> {
        self.zoned(ms)
            .map(|z| z.timestamp().display_with_offset(z.offset()).to_string())
    }

    /// A record printed as JSON with its times (`at` and `…_at` fields holding unix ms) as
    /// RFC 3339 in the zone.
    pub fn json_times(&self, mut value: serde_json::Value) -> serde_json::Value {
        if let Some(fields) = value.as_object_mut() {
            for (key, v) in fields.iter_mut() {
                if (key == "at" || key.ends_with("_at"))
                    && let Some(text) = v.as_i64().and_then(|ms| self.rfc3339(ms))
                {
                    *v = serde_json::Value::String(text);
                }
            }
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_zone_shows_its_local_date_with_its_abbreviation() {
        // 2026-01-01T00:00:00Z: still New Year's Eve in New York, already morning in Tokyo.
        let ms = 1_767_225_600_000;
        let ny = Clock::named(Some("America/New_York")).unwrap();
        assert_eq!(ny.show(ms), "2025-12-31 19:00:00 EST");
        assert_eq!(ny.rfc3339(ms + 5).unwrap(), "2025-12-31T19:00:00.005-05:00");
        let utc = Clock::named(Some("UTC")).unwrap();
        assert_eq!(utc.show(ms), "2026-01-01 00:00:00 UTC");
        assert_eq!(utc.show_or(None, "never"), "never");
        let json = ny.json_times(serde_json::json!({"id": 3, "started_at": ms, "finished_at": null}));
        assert_eq!(
            json,
            serde_json::json!({"id": 3, "started_at": "2025-12-31T19:00:00-05:00", "finished_at": null})
        );
    }

    #[test]
    fn an_unknown_zone_is_refused_with_examples() {
        let err = Clock::named(Some("Europe/Berln")).unwrap_err().to_string();
        assert!(err.contains("'Europe/Berln'") && err.contains("Europe/Berlin"), "{err}");
    }
}

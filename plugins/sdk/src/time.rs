//! Timestamps as HTTP APIs write them — RFC 3339 / ISO 8601 in UTC with milliseconds,
//! `2026-12-03T21:30:00.000Z` (Okta's `lastUpdated`, OneLogin's `updated_at`) — and the
//! calendar arithmetic LDAP's GeneralizedTime shares, in one place.

use std::time::{SystemTime, UNIX_EPOCH};

/// `t` as `2026-12-03T21:30:00.000Z` (before 1970: the epoch): the form APIs take in
/// `updated_since`, `lastUpdated gt "…"` and the like.
pub fn iso8601(t: SystemTime) -> String {
    format_millis(t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0))
}

/// `2026-12-03T21:30:00.000Z` for milliseconds since the epoch.
pub fn format_millis(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        ms.rem_euclid(1000)
    )
}

/// Milliseconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.fff]Z` (or `+00:00`); `None` for
/// anything else.
pub fn parse(s: &str) -> Option<i64> {
    let s = s.trim();
    let s = s.strip_suffix('Z').or_else(|| s.strip_suffix("+00:00"))?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|x| x.parse::<i64>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.splitn(3, ':').map(|x| x.parse::<i64>().ok());
    let (h, mi, se) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let digits: String = frac.chars().chain("000".chars()).take(3).collect();
    let millis: i64 = digits.parse().ok()?;
    let days = days_from_civil(y, mo, da);
    Some(((days * 86_400 + h * 3600 + mi * 60 + se) * 1000) + millis)
}

/// The proleptic Gregorian date of a number of days since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
pub(crate) fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn timestamps_are_written_as_iso_8601_utc() {
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            iso8601(UNIX_EPOCH + Duration::from_millis(1_796_333_400_250)),
            "2026-12-03T21:30:00.250Z"
        );
        // A leap day and the turn of a century that is not a leap year.
        assert_eq!(
            iso8601(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            iso8601(UNIX_EPOCH + Duration::from_secs(4_107_542_399)),
            "2100-02-28T23:59:59.000Z"
        );
    }

    #[test]
    fn timestamps_round_trip() {
        let ms = parse("2026-12-03T21:30:00.000Z").unwrap();
        assert_eq!(ms, 1_796_333_400_000);
        assert_eq!(format_millis(ms), "2026-12-03T21:30:00.000Z");
        assert_eq!(format_millis(ms - 60_000 + 7), "2026-12-03T21:29:00.007Z");
        assert_eq!(format_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            parse("2024-02-29T23:59:59.5Z"),
            Some(parse("2024-03-01T00:00:00Z").unwrap() - 500)
        );
        assert_eq!(parse("2024-02-29T23:59:59+00:00").map(|m| m % 1000), Some(0));
        for bad in ["", "2024-13-01T00:00:00Z", "yesterday", "2024-01-01T00:00:00"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}

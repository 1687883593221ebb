//! Crowd's dates: xs:dateTime with milliseconds (`2024-01-02T03:04:05.678+0000`, what the Java
//! client writes in a DATE restriction) read into, and written from, epoch milliseconds.

use chrono::{DateTime, NaiveDateTime};

/// xs:dateTime as Crowd's clients write it (with `Z`, `+0000`, `+00:00` or `+00`, a fraction
/// of any length or none, or no offset at all, read as UTC) → epoch milliseconds; None for
/// anything else.
pub fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    // `%.f` takes any fraction or none; `%#z` takes `+0000`, `+00:00`, `+00` and `Z`.
    let t = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%#z")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc().fixed_offset()))
        .ok()?;
    Some(t.timestamp_millis())
}

/// Epoch milliseconds → xs:dateTime with milliseconds, in UTC (`2024-01-02T03:04:05.678Z`);
/// an instant chrono cannot represent is written as the epoch.
pub fn iso(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_in_the_clients_format_and_its_neighbours() {
        let base = parse_date("2024-01-02T03:04:05.678+0000").unwrap();
        assert_eq!(base, 1_704_164_645_678);
        assert_eq!(parse_date("2024-01-02T03:04:05.678Z"), Some(base));
        assert_eq!(parse_date("2024-01-02T04:04:05.678+01:00"), Some(base));
        assert_eq!(parse_date("2024-01-02T04:04:05.678+01"), Some(base));
        assert_eq!(parse_date("2024-01-01T22:04:05.678-0500"), Some(base));
        assert_eq!(parse_date(" 2024-01-02T03:04:05.678 "), Some(base));
        assert_eq!(parse_date("2024-01-02T03:04:05.6789Z"), Some(base));
        assert_eq!(parse_date("2024-01-02T03:04:05.6Z"), Some(base - 78));
        assert_eq!(parse_date("2024-01-02T03:04:05Z"), Some(base - 678));
        assert_eq!(parse_date("1969-12-31T23:59:59.999Z"), Some(-1));
        assert_eq!(parse_date("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
        for bad in [
            "",
            "2024-13-02T03:04:05Z",
            "2023-02-29T00:00:00Z",
            "2024-01-02T24:00:00Z",
            "yesterday",
            "2024-01-02 03:04:05Z",
            "2024-01-02T03:04:05+1",
            "2024-01-02T03:04:05.Z",
            "2024-01-02T03:04:05Zjunk",
            "２０２４-01-02T03:04:05Z",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn instants_are_written_in_utc_with_milliseconds_and_read_back() {
        assert_eq!(iso(1_704_164_645_678), "2024-01-02T03:04:05.678Z");
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(iso(i64::MAX), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(i64::MIN), "1970-01-01T00:00:00.000Z");
        for ms in [0, 951_782_400_000, 1_709_164_800_123, 4_102_444_799_999] {
            assert_eq!(parse_date(&iso(ms)), Some(ms));
        }
    }
}

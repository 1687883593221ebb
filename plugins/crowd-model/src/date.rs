//! Crowd's dates: xs:dateTime with milliseconds (`2024-01-02T03:04:05.678+0000`, what the Java
//! client writes in a DATE restriction) read into, and written from, epoch milliseconds.
//! Written here because the two conversions are small and the crate must build for
//! wasm32-wasip2 without a time crate.

/// Years written as they are; an instant outside them is written as the epoch.
const YEARS: std::ops::RangeInclusive<i64> = 0..=9999;

/// `yyyy-MM-dd'T'HH:mm:ss[.SSS][Z]` → epoch milliseconds. The zone may be `Z`, `+HH`, `+HHMM`
/// or `+HH:MM`, or missing (UTC); the fraction has any number of digits, cut to milliseconds.
/// `None` for anything else, including impossible dates.
pub fn parse_date(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    let digits = |from: usize, n: usize| -> Option<i64> {
        let part = b.get(from..from + n)?;
        part.iter().try_fold(0i64, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(at(4, b'-') && at(7, b'-') && at(10, b'T') && at(13, b':') && at(16, b':')) {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if at(i, b'.') {
        i += 1;
        let start = i;
        while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            if i - start < 3 {
                millis = millis * 10 + i64::from(c - b'0');
            }
            i += 1;
        }
        match i - start {
            0 => return None,
            1 => millis *= 100,
            2 => millis *= 10,
            _ => {}
        }
    }
    let offset_minutes = match &b[i..] {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (h, m) = match rest.len() {
                2 => (digits(i + 1, 2)?, 0),
                4 => (digits(i + 1, 2)?, digits(i + 3, 2)?),
                5 if rest[2] == b':' => (digits(i + 1, 2)?, digits(i + 4, 2)?),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            if *sign == b'-' { -(h * 60 + m) } else { h * 60 + m }
        }
        _ => return None,
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

/// Epoch milliseconds → xs:dateTime with milliseconds, in UTC (`2024-01-02T03:04:05.678Z`).
pub fn iso(ms: i64) -> String {
    let (days, in_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(days);
    let (year, month, day, in_day) = if YEARS.contains(&year) {
        (year, month, day, in_day)
    } else {
        (1970, 1, 1, 0)
    };
    let (h, m, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day since 1970-01-01 (the inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
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

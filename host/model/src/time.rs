//! Times at Roster's edges (the REST API, run exports): RFC 3339 in UTC. The store keeps unix
//! milliseconds; conversion happens here only, so every field reads the same way.

use chrono::{DateTime, SecondsFormat, Utc};

/// Unix milliseconds as RFC 3339 in UTC with milliseconds (`2026-12-06T02:51:21.123Z`); `None`
/// when outside the dates chrono represents (±262,000 years).
pub fn format(ms: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(ms).map(|t| format_time(&t))
}

/// A UTC time as RFC 3339 with milliseconds (the form every API time takes).
pub fn format_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An RFC 3339 time (any offset) as unix milliseconds; the error says what was expected.
pub fn parse(text: &str) -> Result<i64, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("`{text}` is not an RFC 3339 time such as 2026-01-31T09:00:00Z ({e})"))
}

/// serde `with` module: a unix-milliseconds field read and written as RFC 3339.
pub mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `ms` as RFC 3339.
    pub fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        let text =
            super::format(*ms).ok_or_else(|| serde::ser::Error::custom(format!("time {ms} ms is out of range")))?;
        s.serialize_str(&text)
    }

    /// Reads RFC 3339 into unix milliseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let text = String::deserialize(d)?;
        super::parse(&text).map_err(serde::de::Error::custom)
    }

    /// The same for an optional field (`null` when absent).
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        /// Writes `ms` as RFC 3339, or `null`.
        pub fn serialize<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
            match ms {
                Some(ms) => super::serialize(ms, s),
                None => s.serialize_none(),
            }
        }

        /// Reads RFC 3339 or `null`.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|text| super::super::parse(&text).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct At {
        #[serde(with = "rfc3339")]
        at: i64,
        #[serde(with = "rfc3339::option")]
        until: Option<i64>,
    }

    #[test]
    fn unix_ms_round_trip_through_rfc3339_in_utc() {
        let at = At {
            at: 1_767_225_600_123,
            until: None,
        };
        let json = serde_json::to_value(&at).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"at": "2026-01-01T00:00:00.123Z", "until": null})
        );
        assert_eq!(serde_json::from_value::<At>(json).unwrap(), at);
        assert_eq!(parse("2026-01-01T01:00:00+01:00"), Ok(1_767_225_600_000));
    }

    #[test]
    fn a_time_that_is_not_rfc3339_is_refused_with_an_example() {
        let err = parse("1767225600000").unwrap_err();
        assert!(err.contains("not an RFC 3339 time such as"), "{err}");
        assert!(
            serde_json::to_value(At {
                at: i64::MAX,
                until: None
            })
            .is_err()
        );
    }
}

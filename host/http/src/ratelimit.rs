//! The rate-limit headers identity providers send with every answer — Okta's
//! `X-Rate-Limit-Limit/-Remaining/-Reset`, OneLogin's and GitHub-style `X-RateLimit-*`, the IETF
//! draft's `RateLimit-*` — read once, here, so that a source slows down *before* the server
//! answers 429, and waits out a 429 that carries no `Retry-After` until the window resets.
//!
//! Connectors never parse these headers: the waiting must happen in the host's per-source
//! [`crate::Budget`], which every job of the source shares, and a plugin has no clock to sleep on.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A `Reset` value at least this large is a Unix time (Okta, GitHub); smaller ones are seconds
/// from now (OneLogin, the IETF draft). No window is 30 years long, and no clock is before 2001.
const EPOCH_THRESHOLD: u64 = 1_000_000_000;

/// The share of a window's requests below which the source is paced rather than left to
/// spend the rest in a burst (Okta's guidance: do not plan on using all of a limit).
const PACE_BELOW: f64 = 0.1;

/// What the server said about the current rate-limit window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests the window allows, when sent.
    pub limit: Option<u64>,
    /// Requests left in the window.
    pub remaining: u64,
    /// Time until the window resets.
    pub reset_in: Duration,
}

impl RateLimit {
    /// Reads the headers of one answer; `None` when they are absent or not numbers.
    pub fn from_headers(headers: &http::HeaderMap, now: SystemTime) -> Option<RateLimit> {
        let read = |suffix: &str| {
            ["x-rate-limit-", "x-ratelimit-", "ratelimit-"]
                .iter()
                .find_map(|prefix| {
                    headers
                        .get(format!("{prefix}{suffix}"))?
                        .to_str()
                        .ok()?
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        };
        let remaining = read("remaining")?;
        let reset = read("reset")?;
        let reset_in = if reset >= EPOCH_THRESHOLD {
            // A reset beyond what the clock can hold is garbage, not a window.
            let at = UNIX_EPOCH.checked_add(Duration::from_secs(reset))?;
            at.duration_since(now).unwrap_or(Duration::ZERO)
        } else {
            Duration::from_secs(reset)
        };
        Some(RateLimit {
            limit: read("limit"),
            remaining,
            reset_in,
        })
    }

    /// How long the source should hold its next request: the rest of the window when nothing
    /// is left, an even share of it when little is left (so the remaining requests spread over
    /// the window instead of meeting a 429), nothing otherwise.
    pub fn pause(&self) -> Option<Duration> {
        if self.reset_in.is_zero() {
            return None;
        }
        if self.remaining == 0 {
            return Some(self.reset_in);
        }
        let low = match self.limit {
            Some(limit) if limit > 0 => (self.remaining as f64) < limit as f64 * PACE_BELOW,
            _ => false,
        };
        // In floating point: `remaining + 1` may not fit any integer type the division takes.
        low.then(|| self.reset_in.div_f64(self.remaining as f64 + 1.0))
    }

    /// True when the window has no request left: a 429 now means "wait for the reset", not
    /// "back off a little".
    pub fn spent(&self) -> bool {
        self.remaining == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    #[test]
    fn okta_s_reset_is_a_unix_time_and_onelogin_s_a_number_of_seconds() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let okta = headers(&[
            ("X-Rate-Limit-Limit", "600"),
            ("X-Rate-Limit-Remaining", "0"),
            ("X-Rate-Limit-Reset", "1800000042"),
        ]);
        let r = RateLimit::from_headers(&okta, now).unwrap();
        assert_eq!(
            (r.limit, r.remaining, r.reset_in),
            (Some(600), 0, Duration::from_secs(42))
        );
        assert_eq!(r.pause(), Some(Duration::from_secs(42)));
        let onelogin = headers(&[
            ("X-RateLimit-Limit", "5000"),
            ("X-RateLimit-Remaining", "4999"),
            ("X-RateLimit-Reset", "1200"),
        ]);
        let r = RateLimit::from_headers(&onelogin, now).unwrap();
        assert_eq!(r.reset_in, Duration::from_secs(1200));
        assert_eq!(r.pause(), None, "plenty left: no pause");
    }

    #[test]
    fn little_left_spreads_the_rest_over_the_window() {
        let r = RateLimit {
            limit: Some(600),
            remaining: 9,
            reset_in: Duration::from_secs(30),
        };
        assert_eq!(r.pause(), Some(Duration::from_secs(3)));
        let past = RateLimit {
            reset_in: Duration::ZERO,
            remaining: 0,
            ..r
        };
        assert_eq!(past.pause(), None, "a window already over holds nothing");
    }

    #[test]
    fn absent_or_garbled_headers_say_nothing() {
        let now = SystemTime::now();
        assert_eq!(RateLimit::from_headers(&headers(&[]), now), None);
        let garbled = headers(&[("X-Rate-Limit-Remaining", "lots"), ("X-Rate-Limit-Reset", "soon")]);
        assert_eq!(RateLimit::from_headers(&garbled, now), None);
        let past = headers(&[("X-Rate-Limit-Remaining", "0"), ("X-Rate-Limit-Reset", "1000000000")]);
        assert_eq!(RateLimit::from_headers(&past, now).unwrap().pause(), None);
    }

    #[test]
    fn hostile_numbers_are_read_without_panicking() {
        let now = SystemTime::now();
        let far = headers(&[
            ("X-Rate-Limit-Remaining", "0"),
            ("X-Rate-Limit-Reset", "18446744073709551615"),
        ]);
        assert_eq!(
            RateLimit::from_headers(&far, now),
            None,
            "a reset past the clock's range"
        );
        let huge = headers(&[
            ("X-Rate-Limit-Limit", "18446744073709551615"),
            ("X-Rate-Limit-Remaining", "1000000000000"),
            ("X-Rate-Limit-Reset", "999999999"),
        ]);
        let r = RateLimit::from_headers(&huge, now).unwrap();
        let pause = r.pause().expect("little left of a huge limit is still paced");
        assert!(pause < Duration::from_secs(1), "{pause:?}");
        let max_remaining = RateLimit {
            limit: None,
            remaining: u64::MAX,
            reset_in: Duration::from_secs(60),
        };
        assert_eq!(max_remaining.pause(), None);
        assert!(!max_remaining.spent());
    }
}

/// The reasons Google's APIs give a 403 for a spent quota (the Admin SDK's "Limits and
/// quotas" guide: retry with exponential backoff); `dailyLimitExceeded` and the like are not
/// here, since waiting minutes would not lift them.
const QUOTA_REASONS: &[&str] = &["rateLimitExceeded", "userRateLimitExceeded"];

/// Whether a 403's body is a spent quota rather than a refusal, as Google's APIs say it:
/// `{"error":{"code":403,"errors":[{"reason":"userRateLimitExceeded"}]}}`.
pub fn is_quota_refusal(body: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    v.pointer("/error/errors")
        .and_then(serde_json::Value::as_array)
        .is_some_and(|errors| {
            errors.iter().any(|e| {
                e.get("reason")
                    .and_then(serde_json::Value::as_str)
                    .is_some_and(|r| QUOTA_REASONS.contains(&r))
            })
        })
}

#[cfg(test)]
mod quota_tests {
    use super::is_quota_refusal;

    #[test]
    fn only_googles_quota_reasons_make_a_403_throttling() {
        let quota = |reason: &str| {
            format!(
                r#"{{"error":{{"code":403,"message":"Quota exceeded","errors":[{{"domain":"usageLimits","reason":"{reason}"}}],"status":"PERMISSION_DENIED"}}}}"#
            )
        };
        assert!(is_quota_refusal(quota("userRateLimitExceeded").as_bytes()));
        assert!(is_quota_refusal(quota("rateLimitExceeded").as_bytes()));
        assert!(!is_quota_refusal(quota("forbidden").as_bytes()));
        assert!(!is_quota_refusal(quota("dailyLimitExceeded").as_bytes()));
        let not_authorized = br#"{"error":{"code":403,"message":"Not Authorized to access this resource/api","errors":[{"message":"Not Authorized to access this resource/api","domain":"global","reason":"forbidden"}]}}"#;
        assert!(!is_quota_refusal(not_authorized));
        assert!(!is_quota_refusal(b"<html>Forbidden</html>"));
        assert!(!is_quota_refusal(br#"{"errorCode":"E0000006"}"#));
    }
}

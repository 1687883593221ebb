//! A per-source request budget: a token bucket shared by every job of the source, plus a
//! cool-down that a 429/503 with Retry-After imposes on all of them at once.

use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

/// Requests per second and burst.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Requests that may go at once after a quiet period.
    pub burst: u32,
}

impl Default for BudgetConfig {
    /// 20 requests/s, burst 40: under every IdP's documented limit (Okta's strictest listing
    /// endpoint allows 600/min = 10/s per org, so Okta sources should lower it).
    fn default() -> Self {
        BudgetConfig {
            per_second: 20.0,
            burst: 40,
        }
    }
}

#[derive(Debug)]
struct State {
    tokens: f64,
    refilled_at: Instant,
    cool_until: Option<Instant>,
    per_second: f64,
    burst: f64,
}

/// The budget of one source (or target).
#[derive(Debug)]
pub struct Budget {
    state: Mutex<State>,
}

impl Budget {
    /// A full bucket.
    pub fn new(config: BudgetConfig) -> Self {
        let (per_second, burst) = (config.per_second.max(0.001), f64::from(config.burst.max(1)));
        Budget {
            state: Mutex::new(State {
                tokens: burst,
                refilled_at: Instant::now(),
                cool_until: None,
                per_second,
                burst,
            }),
        }
    }

    /// Waits until a request may go; returns how long it waited.
    pub async fn acquire(&self) -> Duration {
        let started = Instant::now();
        loop {
            let wait = {
                let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                let elapsed = now.saturating_duration_since(s.refilled_at).as_secs_f64();
                s.tokens = (s.tokens + elapsed * s.per_second).min(s.burst);
                s.refilled_at = now;
                match s.cool_until {
                    Some(until) if until > now => until - now,
                    _ if s.tokens >= 1.0 => {
                        s.tokens -= 1.0;
                        return started.elapsed();
                    }
                    _ => Duration::from_secs_f64((1.0 - s.tokens) / s.per_second),
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Takes one request if one may go now; otherwise how long until one may (what a server
    /// answers a client with as Retry-After, instead of making it wait).
    pub fn try_acquire(&self) -> Result<(), Duration> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(s.refilled_at).as_secs_f64();
        s.tokens = (s.tokens + elapsed * s.per_second).min(s.burst);
        s.refilled_at = now;
        match s.cool_until {
            Some(until) if until > now => Err(until - now),
            _ if s.tokens >= 1.0 => {
                s.tokens -= 1.0;
                Ok(())
            }
            _ => Err(Duration::from_secs_f64((1.0 - s.tokens) / s.per_second)),
        }
    }

    /// Lowers the rate and burst to what the server announced (`X-RateLimit-*` on a 429), so
    /// later requests are paced instead of throttled. Never raises them.
    pub fn adopt(&self, per_second: f64, burst: u32) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if per_second > 0.0 && per_second < s.per_second {
            s.per_second = per_second;
        }
        let burst = f64::from(burst.max(1));
        if burst < s.burst {
            s.burst = burst;
            s.tokens = s.tokens.min(burst);
        }
    }

    /// When the current cool-down ends, if one is in force.
    pub fn held_until(&self) -> Option<Instant> {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.cool_until.filter(|u| *u > Instant::now())
    }

    /// Pauses every job of the source for `wait` (the server said Retry-After).
    pub fn cool_down(&self, wait: Duration) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let until = Instant::now() + wait;
        if s.cool_until.is_none_or(|u| u < until) {
            s.cool_until = Some(until);
        }
    }
}

/// A `Retry-After` header as a wait: delay-seconds or an HTTP date (RFC 9110 §10.2.3); a date
/// in the past means "now".
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let v = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn try_acquire_says_how_long_to_wait_instead_of_waiting() {
        let b = Budget::new(BudgetConfig {
            per_second: 2.0,
            burst: 3,
        });
        for _ in 0..3 {
            assert_eq!(b.try_acquire(), Ok(()));
        }
        assert_eq!(b.try_acquire(), Err(Duration::from_millis(500)));
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(b.try_acquire(), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn burst_then_rate() {
        let b = Budget::new(BudgetConfig {
            per_second: 10.0,
            burst: 5,
        });
        let start = Instant::now();
        for _ in 0..5 {
            b.acquire().await;
        }
        assert!(start.elapsed() < Duration::from_millis(1));
        for _ in 0..10 {
            b.acquire().await;
        }
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(990) && took <= Duration::from_millis(1100),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_announced_limit_paces_later_requests() {
        let b = Budget::new(BudgetConfig {
            per_second: 1000.0,
            burst: 1000,
        });
        b.adopt(5.0, 2);
        b.adopt(50.0, 10); // never raised again
        let start = Instant::now();
        for _ in 0..12 {
            b.acquire().await;
        }
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(1990) && took <= Duration::from_millis(2100),
            "{took:?}"
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = http::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", " 7 ".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            "retry-after",
            httpdate::fmt_http_date(std::time::SystemTime::UNIX_EPOCH)
                .parse()
                .unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[tokio::test(start_paused = true)]
    async fn cool_down_holds_everyone() {
        let b = Budget::new(BudgetConfig {
            per_second: 100.0,
            burst: 10,
        });
        b.cool_down(Duration::from_secs(3));
        let waited = b.acquire().await;
        assert!(waited >= Duration::from_secs(3), "{waited:?}");
    }
}

//! How many requests go to a server at once: a fixed number, or a limit found at run time
//! (additive increase while the server's latency holds, multiplicative decrease when it rises or
//! the server answers 429 or 503). A real server answers in tens of milliseconds and has a worker
//! pool: past it, answers slow down and then fail, so what a client can sustain is the server's
//! business and is learnt, not guessed.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Requests in flight when nothing is configured (and where an adaptive limit starts).
pub const DEFAULT_CONCURRENCY: usize = 8;
/// The highest an adaptive limit goes unless told.
pub const DEFAULT_ADAPTIVE_MAX: usize = 32;
/// The most a setting may ask for: a connection each, and no admin API serves more.
pub const MAX_CONCURRENCY: usize = 256;

/// Latency this many times the quietest seen says the server is queueing: back off.
const TOLERANCE: f64 = 1.4;
/// Past the limit at which the server last refused, the limit grows this many times slower:
/// it probes for capacity the server may have gained, without a 503 every few round trips.
const PROBE_SLOWER: f64 = 16.0;
/// What a back-off keeps of the limit.
const BACKOFF: f64 = 0.75;

/// How many requests Roster keeps in flight at a server: `concurrency = 8`,
/// `concurrency = "adaptive"` or `concurrency = { adaptive = { max = 32 } }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    /// This many, always.
    Fixed(usize),
    /// Found at run time within these bounds.
    Adaptive(Adaptive),
}

impl Default for Concurrency {
    fn default() -> Self {
        Concurrency::Fixed(DEFAULT_CONCURRENCY)
    }
}

/// The bounds of an adaptive limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adaptive {
    /// Where the limit starts.
    #[serde(default = "default_initial")]
    pub initial: usize,
    /// It never goes below this.
    #[serde(default = "one")]
    pub min: usize,
    /// Nor above this.
    #[serde(default = "default_max")]
    pub max: usize,
}

impl Default for Adaptive {
    fn default() -> Self {
        Adaptive {
            initial: DEFAULT_CONCURRENCY,
            min: 1,
            max: DEFAULT_ADAPTIVE_MAX,
        }
    }
}

fn default_initial() -> usize {
    DEFAULT_CONCURRENCY
}
fn one() -> usize {
    1
}
fn default_max() -> usize {
    DEFAULT_ADAPTIVE_MAX
}

impl Concurrency {
    /// The most requests it ever allows in flight (what callers size their queues to).
    pub fn most(&self) -> usize {
        match self {
            Concurrency::Fixed(n) => (*n).max(1),
            Concurrency::Adaptive(a) => a.max.max(1),
        }
    }

    /// Checks the numbers; the message names the setting and what to write instead.
    pub fn validate(&self, field: &str) -> Result<(), String> {
        match *self {
            Concurrency::Fixed(n) if !(1..=MAX_CONCURRENCY).contains(&n) => Err(format!(
                "{field} {n} must be between 1 and {MAX_CONCURRENCY} (or \"adaptive\")"
            )),
            Concurrency::Adaptive(a) if a.min == 0 || a.min > a.max || a.max > MAX_CONCURRENCY => Err(format!(
                "{field}.adaptive: min {} and max {} must satisfy 1 ≤ min ≤ max ≤ {MAX_CONCURRENCY}",
                a.min, a.max
            )),
            Concurrency::Adaptive(a) if !(a.min..=a.max).contains(&a.initial) => Err(format!(
                "{field}.adaptive.initial {} must be between min {} and max {}",
                a.initial, a.min, a.max
            )),
            _ => Ok(()),
        }
    }
}

const FORMS: &str = "a number of requests in flight (8), \"adaptive\", or { adaptive = { max = 32 } }";

impl<'de> Deserialize<'de> for Concurrency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = serde_json::Value::deserialize(d)?;
        match &v {
            serde_json::Value::Number(n) => n
                .as_u64()
                .map(|n| Concurrency::Fixed(n as usize))
                .ok_or_else(|| D::Error::custom(format!("concurrency {n}: expected {FORMS}"))),
            serde_json::Value::String(s) if s == "adaptive" => Ok(Concurrency::Adaptive(Adaptive::default())),
            serde_json::Value::Object(o) if o.len() == 1 && o.contains_key("adaptive") => {
                serde_json::from_value(o["adaptive"].clone())
                    .map(Concurrency::Adaptive)
                    .map_err(|e| D::Error::custom(format!("concurrency.adaptive: {e}")))
            }
            other => Err(D::Error::custom(format!("concurrency {other}: expected {FORMS}"))),
        }
    }
}

impl Serialize for Concurrency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Table<'a> {
            adaptive: &'a Adaptive,
        }
        match self {
            Concurrency::Fixed(n) => s.serialize_u64(*n as u64),
            Concurrency::Adaptive(adaptive) => Table { adaptive }.serialize(s),
        }
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Concurrency {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        let fixed = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(MAX_CONCURRENCY as f64))
            .description(Some("requests in flight, always"));
        let word = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["adaptive"]))
            .description(Some("an adaptive limit with the default bounds (start 8, 1 to 32)"));
        let bound = |d: &str| {
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .description(Some(d))
        };
        let table = ObjectBuilder::new().property(
            "adaptive",
            ObjectBuilder::new()
                .property("initial", bound("where the limit starts (default 8)"))
                .property("min", bound("lowest limit (default 1)"))
                .property("max", bound("highest limit (default 32)")),
        );
        OneOfBuilder::new()
            .item(fixed)
            .item(word)
            .item(table)
            .description(Some("How many requests Roster keeps in flight at the target"))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Concurrency {}

/// What an adaptive limit came to over a run, for its summary.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Settled {
    /// The limit at the end of the run: what the server sustained.
    pub limit: usize,
    /// The lowest it went.
    pub lowest: usize,
    /// The highest it went.
    pub highest: usize,
    /// Times it backed off (rising latency, 429 or 503).
    pub backoffs: u64,
}

/// How a request ended, for the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    /// The server answered (any status but the two below).
    Served,
    /// It said slow down (429) or that it is at capacity (503).
    Overloaded,
    /// No answer (a transport error): says nothing about the server's pace.
    Lost,
}

#[derive(Debug)]
struct State {
    limit: f64,
    in_flight: usize,
    /// The quietest latency seen, drifting slowly up so one lucky sample does not rule forever.
    baseline: Option<f64>,
    /// Recent latency (moving average).
    recent: Option<f64>,
    last_backoff: Option<Instant>,
    /// Just under the limit at which the server last answered 429 or 503.
    ceiling: Option<f64>,
    lowest: usize,
    highest: usize,
    backoffs: u64,
}

/// Keeps the requests to one server within its [`Concurrency`]; shared by everything that calls
/// that server, so reads and writes of every stage count against one limit.
#[derive(Debug)]
pub struct Limiter {
    mode: Concurrency,
    state: Mutex<State>,
    freed: Notify,
}

/// A request's place in flight; give it back with [`Permit::done`] (dropping it frees the place
/// without a sample).
#[derive(Debug)]
pub struct Permit<'a> {
    limiter: &'a Limiter,
    since: Instant,
    open: bool,
}

impl Limiter {
    /// A limiter for `mode`.
    pub fn new(mode: Concurrency) -> Limiter {
        let start = match mode {
            Concurrency::Fixed(n) => n.max(1),
            Concurrency::Adaptive(a) => a.initial.clamp(a.min.max(1), a.max.max(1)),
        };
        Limiter {
            mode,
            state: Mutex::new(State {
                limit: start as f64,
                in_flight: 0,
                baseline: None,
                recent: None,
                last_backoff: None,
                ceiling: None,
                lowest: start,
                highest: start,
                backoffs: 0,
            }),
            freed: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits for a place in flight.
    pub async fn acquire(&self) -> Permit<'_> {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before the check, so a place freed in between wakes this waiter.
            freed.as_mut().enable();
            {
                let mut s = self.state();
                if (s.in_flight as f64) < s.limit.floor().max(1.0) {
                    s.in_flight += 1;
                    return Permit {
                        limiter: self,
                        since: Instant::now(),
                        open: true,
                    };
                }
            }
            freed.await;
        }
    }

    /// Whether the limit is found at run time (and backs off on its own).
    pub fn adapts(&self) -> bool {
        matches!(self.mode, Concurrency::Adaptive(_))
    }

    /// The most it ever allows in flight.
    pub fn most(&self) -> usize {
        self.mode.most()
    }

    /// The limit now.
    pub fn limit(&self) -> usize {
        self.state().limit.floor() as usize
    }

    /// What an adaptive limit came to; `None` for a fixed one.
    pub fn settled(&self) -> Option<Settled> {
        let Concurrency::Adaptive(_) = self.mode else {
            return None;
        };
        let s = self.state();
        Some(Settled {
            limit: s.limit.floor() as usize,
            lowest: s.lowest,
            highest: s.highest,
            backoffs: s.backoffs,
        })
    }

    /// Starts a new run's record (the limit itself carries over: the server is the same).
    pub fn reset_record(&self) {
        let mut s = self.state();
        let now = s.limit.floor() as usize;
        (s.lowest, s.highest, s.backoffs) = (now, now, 0);
    }

    fn release(&self, took: Duration, how: Option<Answered>) {
        let mut s = self.state();
        s.in_flight = s.in_flight.saturating_sub(1);
        if let (Concurrency::Adaptive(a), Some(how)) = (self.mode, how) {
            adapt(&mut s, &a, took.as_secs_f64(), how);
        }
        drop(s);
        self.freed.notify_waiters();
    }
}

/// AIMD on latency: one more place per limit's worth of quick answers while the server is kept
/// busy (sixteen times slower past where the server last refused); a quarter less, at most once
/// per round trip, when answers slow past the tolerance or the server says 429/503.
fn adapt(s: &mut State, a: &Adaptive, took: f64, how: Answered) {
    let now = Instant::now();
    let round_trip = s.recent.unwrap_or(took).max(0.001);
    let may_back_off = s
        .last_backoff
        .is_none_or(|at| now.duration_since(at).as_secs_f64() >= round_trip);
    let back_off = match how {
        Answered::Lost => return,
        Answered::Overloaded => true,
        Answered::Served => {
            let baseline = match s.baseline {
                Some(b) if took < b => took,
                Some(b) => b + (took - b) * 0.001,
                None => took,
            };
            s.baseline = Some(baseline);
            let recent = s.recent.map_or(took, |r| r + (took - r) * 0.2);
            s.recent = Some(recent);
            recent > baseline * TOLERANCE
        }
    };
    if back_off {
        if may_back_off {
            if how == Answered::Overloaded {
                s.ceiling = Some((s.limit - 1.0).max(a.min as f64));
            }
            s.limit = (s.limit * BACKOFF).max(a.min as f64);
            s.last_backoff = Some(now);
            s.backoffs += 1;
        }
    } else if s.in_flight + 2 >= s.limit.floor() as usize {
        // Raised only while the limit is what holds requests back, not while there is little to do.
        let step = match s.ceiling {
            Some(c) if s.limit >= c => 1.0 / (s.limit * PROBE_SLOWER),
            _ => 1.0 / s.limit,
        };
        s.limit = (s.limit + step).min(a.max as f64);
    }
    let now_limit = s.limit.floor() as usize;
    s.lowest = s.lowest.min(now_limit);
    s.highest = s.highest.max(now_limit);
}

impl Permit<'_> {
    /// Gives the place back, telling the limit how the request went.
    pub fn done(mut self, how: Answered) {
        self.open = false;
        self.limiter.release(self.since.elapsed(), Some(how));
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.open {
            self.limiter.release(self.since.elapsed(), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_like: serde_json::Value) -> Result<Concurrency, String> {
        serde_json::from_value(toml_like).map_err(|e| e.to_string())
    }

    #[test]
    fn the_three_forms_read_and_write_back() {
        use serde_json::json;
        assert_eq!(parse(json!(8)).unwrap(), Concurrency::Fixed(8));
        assert_eq!(
            parse(json!("adaptive")).unwrap(),
            Concurrency::Adaptive(Adaptive::default())
        );
        let a = parse(json!({"adaptive": {"max": 12}})).unwrap();
        assert_eq!(
            a,
            Concurrency::Adaptive(Adaptive {
                initial: 8,
                min: 1,
                max: 12
            })
        );
        assert_eq!(parse(serde_json::to_value(a).unwrap()).unwrap(), a);
        assert_eq!(serde_json::to_value(Concurrency::Fixed(3)).unwrap(), json!(3));
        let e = parse(json!("fast")).unwrap_err();
        assert!(e.contains("\"adaptive\"") && e.contains("fast"), "{e}");
        let e = parse(json!({"adaptive": {"maximum": 3}})).unwrap_err();
        assert!(e.contains("maximum"), "{e}");
        let e = Concurrency::Adaptive(Adaptive {
            initial: 8,
            min: 1,
            max: 4,
        })
        .validate("target concurrency")
        .unwrap_err();
        assert!(e.contains("initial 8"), "{e}");
        assert!(Concurrency::Fixed(0).validate("target concurrency").is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_fixed_limit_holds_requests_at_its_number() {
        let l = Limiter::new(Concurrency::Fixed(2));
        let (a, b) = (l.acquire().await, l.acquire().await);
        let third = tokio::time::timeout(Duration::from_secs(1), l.acquire()).await;
        assert!(third.is_err(), "a third place was given");
        a.done(Answered::Overloaded);
        let c = tokio::time::timeout(Duration::from_secs(1), l.acquire()).await.unwrap();
        assert_eq!(l.limit(), 2, "a fixed limit never moves");
        assert_eq!(l.settled(), None);
        drop((b, c));
    }

    /// Runs `n` requests through `l` one round trip at a time, each round as many as the limit
    /// allows, against a server whose latency is `base` up to `pool` at once and grows with the
    /// queue past it; past `pool + queue` it answers 503.
    async fn serve(l: &Limiter, n: usize, pool: usize, queue: usize) {
        let base = Duration::from_millis(20);
        let mut left = n;
        while left > 0 {
            let mut permits = Vec::new();
            while permits.len() < left {
                match tokio::time::timeout(Duration::ZERO, l.acquire()).await {
                    Ok(p) => permits.push(p),
                    Err(_) => break,
                }
            }
            let k = permits.len();
            let slow = base.mul_f64((k as f64 / pool as f64).max(1.0));
            tokio::time::sleep(slow).await;
            for (i, p) in permits.into_iter().enumerate() {
                if i >= pool + queue {
                    p.done(Answered::Overloaded);
                } else {
                    p.done(Answered::Served);
                    left -= 1;
                }
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_adaptive_limit_rises_while_latency_holds_and_backs_off_on_503() {
        let l = Limiter::new(Concurrency::Adaptive(Adaptive {
            initial: 2,
            min: 1,
            max: 16,
        }));
        // A server with room for 16 keeps its latency: the limit climbs to the top.
        serve(&l, 2_000, 64, 0).await;
        assert_eq!(l.limit(), 16);
        l.reset_record();
        // Now one serving 4 at once with 1 queued: 503s and slow answers bring it down near 4.
        serve(&l, 2_000, 4, 1).await;
        let s = l.settled().unwrap();
        assert!(s.backoffs > 0, "{s:?}");
        assert!((3..=7).contains(&s.limit), "settled at {s:?}, not near the server's 4");
        assert!(s.lowest < 16 && s.highest == 16, "{s:?}");
    }
}

//! One retry policy for every HTTP client Roster runs (the Bitbucket writer, the plugins' HTTP
//! import, the alert webhooks): which answers are worth another try, and how long to wait —
//! the server's `Retry-After` when it gives one, else exponential backoff — within a number of
//! attempts, a longest wait and, optionally, a deadline.
//!
//! The clients keep their loops (each knows what a transient failure looks like for its
//! protocol and what to count), and ask [`Retry::next_wait`] whether and how long to wait.

use std::time::Duration;

use tokio::time::Instant;

/// How a client retries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// Wait before the first retry without `Retry-After`; doubles after each.
    pub backoff: Duration,
    /// Longest wait between two attempts, `Retry-After` included.
    pub max_wait: Duration,
    /// What a wait longer than `max_wait` means.
    pub long_waits: LongWait,
}

/// What to do when a wait would be longer than [`RetryPolicy::max_wait`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LongWait {
    /// Wait `max_wait` and try again (Roster's own clients: the work must get done).
    Shorten,
    /// Stop retrying and hand back the answer (the plugins' import: a connector is better told
    /// it was throttled than kept waiting for minutes inside one call).
    GiveUp,
}

/// Statuses a server uses for "try again later": throttling and a busy or restarting backend.
pub fn transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// The retry state of one request.
#[derive(Debug)]
pub struct Retry {
    policy: RetryPolicy,
    attempt: u32,
    deadline: Option<Instant>,
}

impl Retry {
    /// The state before the first attempt.
    pub fn new(policy: RetryPolicy) -> Self {
        Retry {
            policy,
            attempt: 0,
            deadline: None,
        }
    }

    /// The same, but no wait may end after `deadline` (a plugin call's time limit).
    pub fn until(policy: RetryPolicy, deadline: Instant) -> Self {
        Retry {
            deadline: Some(deadline),
            ..Retry::new(policy)
        }
    }

    /// Retries made so far.
    pub fn retries(&self) -> u32 {
        self.attempt
    }

    /// After a failed attempt: how long to wait before the next one, or `None` to give up.
    /// `retry_after` is what the server asked for, if anything.
    pub fn next_wait(&mut self, retry_after: Option<Duration>) -> Option<Duration> {
        if self.attempt >= self.policy.retries {
            return None;
        }
        let backoff = self.policy.backoff.saturating_mul(1 << self.attempt.min(16));
        let mut wait = retry_after.unwrap_or(backoff);
        if wait > self.policy.max_wait {
            match self.policy.long_waits {
                LongWait::Shorten => wait = self.policy.max_wait,
                LongWait::GiveUp => return None,
            }
        }
        if self.deadline.is_some_and(|d| Instant::now() + wait >= d) {
            return None;
        }
        self.attempt += 1;
        Some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(long_waits: LongWait) -> RetryPolicy {
        RetryPolicy {
            retries: 3,
            backoff: Duration::from_millis(100),
            max_wait: Duration::from_secs(2),
            long_waits,
        }
    }

    #[test]
    fn backoff_doubles_and_stops_after_the_retries() {
        let mut r = Retry::new(policy(LongWait::Shorten));
        let waits: Vec<_> = std::iter::from_fn(|| r.next_wait(None)).collect();
        assert_eq!(
            waits,
            [100, 200, 400].map(Duration::from_millis),
            "three retries, doubling"
        );
        assert_eq!(r.retries(), 3);
    }

    #[test]
    fn retry_after_wins_and_is_capped_or_refused() {
        let mut r = Retry::new(policy(LongWait::Shorten));
        assert_eq!(r.next_wait(Some(Duration::from_secs(1))), Some(Duration::from_secs(1)));
        assert_eq!(r.next_wait(Some(Duration::from_secs(60))), Some(Duration::from_secs(2)));
        let mut r = Retry::new(policy(LongWait::GiveUp));
        assert_eq!(r.next_wait(Some(Duration::from_secs(60))), None);
    }

    #[tokio::test(start_paused = true)]
    async fn no_wait_ends_past_the_deadline() {
        let mut r = Retry::until(policy(LongWait::Shorten), Instant::now() + Duration::from_millis(250));
        assert_eq!(r.next_wait(None), Some(Duration::from_millis(100)));
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(
            r.next_wait(None),
            None,
            "the next wait, 200 ms, would end 50 ms past the deadline"
        );
    }
}

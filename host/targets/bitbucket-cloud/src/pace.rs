//! Roster's own pace for a call Cloud limits per minute apart from its hourly pool: sending
//! invitations, 100 a minute per user (support.atlassian.com/bitbucket-cloud/docs/
//! api-request-limits/, "Sending invitations"). A first sync inviting hundreds of people then
//! sends them at that pace instead of running into 429s; a 429 that still comes (another
//! process with the same credential, a limit lowered) is waited on in [`crate::http`].

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Invitations sent per [`INVITATION_WINDOW`], as Cloud allows them.
pub(crate) const INVITATIONS_PER_WINDOW: usize = 100;

/// The window Cloud counts invitations in.
pub(crate) const INVITATION_WINDOW: Duration = Duration::from_secs(60);

/// At most `calls` in any stretch of `window`, in this process.
pub(crate) struct Pace {
    calls: usize,
    window: Duration,
    /// When each call in the window went, oldest first. Held across the wait, so callers take
    /// their turns in order.
    sent: Mutex<VecDeque<Instant>>,
}

impl Pace {
    /// `calls` in any stretch of `window` (at least one).
    pub(crate) fn new(calls: usize, window: Duration) -> Pace {
        Pace {
            calls: calls.max(1),
            window,
            sent: Mutex::new(VecDeque::new()),
        }
    }

    /// Cloud's pace for sending invitations.
    pub(crate) fn invitations() -> Pace {
        Pace::new(INVITATIONS_PER_WINDOW, INVITATION_WINDOW)
    }

    /// Waits until a call may go (the oldest in the window has left it), and counts it.
    pub(crate) async fn turn(&self) {
        let mut sent = self.sent.lock().await;
        loop {
            let now = Instant::now();
            while sent
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) >= self.window)
            {
                sent.pop_front();
            }
            match sent.front() {
                Some(oldest) if sent.len() >= self.calls => tokio::time::sleep_until(*oldest + self.window).await,
                _ => {
                    sent.push_back(now);
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_past_the_window_s_allowance_wait_for_the_oldest_to_leave_it() {
        let pace = Pace::new(3, Duration::from_millis(300));
        let start = Instant::now();
        for _ in 0..3 {
            pace.turn().await;
        }
        assert!(start.elapsed() < Duration::from_millis(100), "three go at once");
        pace.turn().await;
        let fourth = start.elapsed();
        assert!(fourth >= Duration::from_millis(300), "the fourth waited: {fourth:?}");
        assert!(fourth < Duration::from_millis(600), "only for the oldest: {fourth:?}");
    }
}

//! Roster's hourly budget towards a workspace. Bitbucket Cloud meters authenticated calls per
//! user or token over a rolling hour, about 1,000 an hour, and answers 429 past it
//! (vendor-apis.md §3, support.atlassian.com/bitbucket-cloud/docs/api-request-limits/). Every
//! call, reads included, is recorded with its time in the store, so the budget spans runs and
//! processes; when the window is spent no call is sent and the operation fails with the budget
//! error (429): the run stops and the next one continues — Roster never waits an hour.

use std::sync::Arc;
use std::time::Duration;

use roster_engine::CallBudget;
use roster_store::{CallTaken, Store, now_ms};

use crate::error::CloudError;
use crate::settings::HourlyBudget;

/// How long a window is taken as spent after a 429 that gave no Retry-After (Cloud's rolling
/// window frees calls one by one; a minute is Roster's guess, and the next 429 says again).
const SPENT_WITHOUT_RETRY_AFTER: Duration = Duration::from_secs(60);

/// One target's hourly budget, kept in the store.
pub(crate) struct Meter {
    store: Arc<Store>,
    target_id: String,
    workspace: String,
    configured: HourlyBudget,
}

impl Meter {
    /// The budget of target `target_id` towards `workspace`.
    pub(crate) fn new(store: Arc<Store>, target_id: &str, workspace: &str, configured: HourlyBudget) -> Meter {
        Meter {
            store,
            target_id: target_id.to_string(),
            workspace: workspace.to_string(),
            configured,
        }
    }

    fn window_ms(&self) -> i64 {
        i64::try_from(self.configured.window_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }

    fn spent(&self, calls: u64, frees_at_ms: i64) -> CloudError {
        CloudError::BudgetSpent {
            workspace: self.workspace.clone(),
            calls,
            window_secs: self.configured.window_secs,
            frees_at_ms,
        }
    }

    /// Takes one call, or answers the budget error when the window is spent (nothing is sent).
    pub(crate) async fn take(&self) -> Result<(), CloudError> {
        let (id, window, calls) = (self.target_id.clone(), self.window_ms(), self.configured.calls);
        let taken = self
            .store
            .blocking(move |s| s.take_target_call(&id, now_ms(), window, calls))
            .await?;
        match taken {
            CallTaken::Taken => Ok(()),
            CallTaken::Spent { calls, frees_at_ms } => Err(self.spent(calls, frees_at_ms)),
        }
    }

    /// Cloud answered 429: its limit is `limit` (X-RateLimit-Limit) when it said, and the window
    /// is spent until Retry-After. Answers the budget error the call fails with when it cannot
    /// wait that long.
    pub(crate) async fn throttled(
        &self,
        limit: Option<u64>,
        retry_after: Option<Duration>,
    ) -> Result<CloudError, CloudError> {
        // A rolling window is never spent for longer than the window itself; a longer
        // Retry-After (a timestamp sent for seconds) would otherwise pause the target for good,
        // since a pause is only ever lengthened.
        let longest = Duration::from_secs(self.configured.window_secs);
        let wait = retry_after.unwrap_or(SPENT_WITHOUT_RETRY_AFTER).min(longest);
        let now = now_ms();
        let until = now.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2));
        let (id, window) = (self.target_id.clone(), self.window_ms());
        self.store
            .blocking(move |s| s.target_throttled(&id, limit, until, now, window))
            .await?;
        let calls = limit.map_or(self.configured.calls, |l| l.min(self.configured.calls));
        Ok(self.spent(calls, until))
    }

    /// The budget now, for the plan's ETA, after a read that took `read_calls` calls.
    pub(crate) fn budget(&self, read_calls: u64) -> Result<CallBudget, CloudError> {
        let w = self
            .store
            .target_call_window(&self.target_id, now_ms(), self.window_ms(), self.configured.calls)?;
        Ok(CallBudget {
            calls: w.calls,
            window_secs: self.configured.window_secs,
            available_now: w.available,
            read_calls,
        })
    }
}

#[cfg(test)]
mod tests {
    use roster_store::crypto::Key;

    use super::*;

    #[tokio::test]
    async fn an_absurd_retry_after_pauses_the_target_for_a_window_at_most() {
        let store = Arc::new(Store::memory(Key::from_bytes([5; 32])).unwrap());
        let budget = HourlyBudget {
            calls: 1000,
            window_secs: 3600,
        };
        let meter = Meter::new(store, "cloud", "acme", budget);
        // A proxy that sends a timestamp where Cloud sends seconds.
        let e = meter
            .throttled(None, Some(Duration::from_secs(1_764_950_400)))
            .await
            .unwrap();
        let CloudError::BudgetSpent { frees_at_ms, .. } = e else {
            panic!("{e}")
        };
        assert!(
            frees_at_ms <= now_ms() + 3_600_000,
            "paused past one window: {frees_at_ms}"
        );
    }
}

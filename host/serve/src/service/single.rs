//! Single-user sync through the service: it claims the target like any run.

use std::sync::Arc;

use roster_directory::UserKey;
use roster_model::RunMode;

use super::runs::LiveProgress;
use super::{Service, ServiceError};
use crate::runner::{RunError, RunReport, SyncOptions};

/// The holder id a single-user sync claims the target with (its run id is made inside).
const SINGLE: i64 = -1;

impl Service {
    /// Fetches (incrementally), plans and applies for one person, for every target (or the one
    /// `opts` names); answers when done, with each target's run in configuration order.
    pub async fn sync_user(
        self: &Arc<Self>,
        key: &UserKey,
        opts: &SyncOptions,
    ) -> Result<Vec<RunReport>, ServiceError> {
        let runner = self.runner();
        runner.engine()?;
        let progress = Arc::new(LiveProgress::new(
            SINGLE,
            opts.trigger,
            RunMode::SingleUser,
            Vec::new(),
            0.0,
        ));
        self.runs.claim(progress.clone())?;
        let result = runner.sync_user_each(key, opts, progress.as_ref()).await;
        self.runs.release(SINGLE);
        let mut reports = Vec::new();
        let mut first_error: Option<ServiceError> = None;
        let mut recorded = Vec::new();
        for (run_id, r) in result? {
            match r {
                Ok(report) => {
                    reports.push(report.clone());
                    recorded.push((run_id, Ok(report)));
                }
                // The first failure is the answer (a user no source has is a 404); every run
                // is recorded and alerted on all the same.
                Err(e) => {
                    let said = e.to_string();
                    first_error.get_or_insert(e.into());
                    recorded.push((run_id, Err(RunError::Shared(said))));
                }
            }
        }
        self.after_runs(recorded).await;
        match first_error {
            Some(e) => Err(e),
            None => Ok(reports),
        }
    }
}

//! Single-user sync through the service: it claims the target like any run.

use std::sync::Arc;

use roster_directory::UserKey;
use roster_model::RunMode;

use super::runs::LiveProgress;
use super::{Service, ServiceError};
use crate::runner::{RunReport, SyncOptions};

/// The holder id a single-user sync claims the target with (its run id is made inside).
const SINGLE: i64 = -1;

impl Service {
    /// Fetches (incrementally), plans and applies for one person; answers when done.
    pub async fn sync_user(self: &Arc<Self>, key: &UserKey, opts: &SyncOptions) -> Result<RunReport, ServiceError> {
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
        let result = runner.sync_user(key, opts, progress.as_ref()).await;
        self.runs.release(SINGLE);
        let report = result?;
        self.after_run(report.run_id, Ok(report.clone())).await;
        Ok(report)
    }
}

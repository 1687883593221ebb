//! What can go wrong talking to Bitbucket Cloud (or Atlassian's SCIM API), each saying which
//! call and what to do.

use roster_engine::TargetError;

/// A failed Bitbucket Cloud (or SCIM) call, or a refusal before any call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CloudError {
    /// The service answered with an error status.
    #[error("{service} {endpoint} answered {status}: {message}")]
    Api {
        /// "Bitbucket Cloud" or "Atlassian SCIM".
        service: &'static str,
        /// "GET /2.0/workspaces/{ws}/members".
        endpoint: String,
        /// HTTP status.
        status: u16,
        /// The message (and detail) from the error body.
        message: String,
    },
    /// The service could not be reached.
    #[error("cannot reach {service} for {endpoint}: {detail}")]
    Transport {
        /// "Bitbucket Cloud" or "Atlassian SCIM".
        service: &'static str,
        /// The call.
        endpoint: String,
        /// What failed.
        detail: String,
    },
    /// The answer was not what the API documents.
    #[error("{service} {endpoint} answered something unexpected: {detail}")]
    Decode {
        /// "Bitbucket Cloud" or "Atlassian SCIM".
        service: &'static str,
        /// The call.
        endpoint: String,
        /// What did not parse.
        detail: String,
    },
    /// Roster's call budget for the workspace is spent: no call was sent.
    #[error(
        "Bitbucket Cloud's call budget for workspace {workspace} is spent ({calls} calls in the last {}); the next run after {} UTC continues",
        window_text(*window_secs),
        utc_hh_mm(*frees_at_ms)
    )]
    BudgetSpent {
        /// The workspace.
        workspace: String,
        /// Calls allowed per window.
        calls: u64,
        /// The window, in seconds.
        window_secs: u64,
        /// When the next call may go (ms since the epoch).
        frees_at_ms: i64,
    },
    /// The workspace is administered elsewhere than the target's settings say.
    #[error("{0}")]
    Mode(String),
    /// The operation cannot be carried out on Bitbucket Cloud: the plan was not made for it.
    #[error("{0}")]
    Refused(String),
    /// The operation names an account with no Atlassian account Roster knows of (an invitation
    /// not accepted yet): this operation fails, the run goes on (status 404).
    #[error("{0}")]
    NoAccount(String),
    /// Roster's own records (account mapping, call budget) could not be read or written.
    #[error("Roster's store: {0}")]
    Store(String),
}

impl CloudError {
    /// HTTP status, if the service answered (429 when the budget is spent).
    pub fn status(&self) -> Option<u16> {
        match self {
            CloudError::Api { status, .. } => Some(*status),
            CloudError::BudgetSpent { .. } => Some(429),
            CloudError::NoAccount(_) => Some(404),
            _ => None,
        }
    }

    /// True for the budget error: the run stops here and the next one continues.
    pub fn is_budget(&self) -> bool {
        matches!(self, CloudError::BudgetSpent { .. })
    }
}

impl From<CloudError> for TargetError {
    fn from(e: CloudError) -> TargetError {
        TargetError {
            status: e.status(),
            message: e.to_string(),
        }
    }
}

impl From<roster_store::StoreError> for CloudError {
    fn from(e: roster_store::StoreError) -> CloudError {
        CloudError::Store(e.to_string())
    }
}

/// "60 min", "90 s", "2 h".
pub(crate) fn window_text(secs: u64) -> String {
    if secs >= 7200 && secs.is_multiple_of(3600) {
        format!("{} h", secs / 3600)
    } else if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

/// "14:05" for a time in ms since the epoch, rounded up to the minute (a call frees at 14:04:10
/// is free after 14:05).
pub(crate) fn utc_hh_mm(ms: i64) -> String {
    let minute = (ms + 59_999).div_euclid(60_000);
    let of_day = minute.rem_euclid(24 * 60);
    format!("{:02}:{:02}", of_day / 60, of_day % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_error_says_when_the_next_run_continues() {
        let e = CloudError::BudgetSpent {
            workspace: "acme".into(),
            calls: 1000,
            window_secs: 3600,
            // 2026-12-05 14:04:10 UTC
            frees_at_ms: 1_796_479_450_000,
        };
        assert_eq!(
            e.to_string(),
            "Bitbucket Cloud's call budget for workspace acme is spent (1000 calls in the last 60 min); the next run after 14:05 UTC continues"
        );
        let t = TargetError::from(e);
        assert_eq!(t.status, Some(429));
    }

    #[test]
    fn windows_read_as_people_say_them() {
        assert_eq!(window_text(3600), "60 min");
        assert_eq!(window_text(7200), "2 h");
        assert_eq!(window_text(90), "90 s");
        assert_eq!(utc_hh_mm(0), "00:00");
        assert_eq!(utc_hh_mm(1), "00:01");
    }
}

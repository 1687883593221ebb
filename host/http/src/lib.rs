//! What every HTTP client of Roster shares — the Bitbucket writer, the plugins' `http` import,
//! the alert webhooks: request budgets (`budget`), how many requests go at once (`limit`), the servers' rate-limit windows
//! (`ratelimit`), one retry policy (`retry`), the text of an error chain (`error`), and secret
//! values that never print (`secret`).
//!
//! Knows no vendor, no plugin and no store: it sits at the bottom of the crate graph.

pub mod addr;
pub mod budget;
pub mod error;
pub mod limit;
pub mod ratelimit;
pub mod retry;
pub mod secret;

pub use budget::{Budget, BudgetConfig, retry_after};
pub use error::{innermost, json_fault};
pub use limit::{Adaptive, Answered, Concurrency, Limiter, Permit, Settled};
pub use ratelimit::{RateLimit, is_quota_refusal};
pub use retry::{LongWait, Retry, RetryPolicy, transient_status};
pub use secret::{SecretRef, SecretValue};

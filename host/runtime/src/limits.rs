//! Per-job limits (configurable per source) and engine-wide settings.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// What one job of a plugin may use. Every field has a safe default; a source overrides any.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Linear memory the plugin may grow to, in MiB.
    pub memory_mib: u32,
    /// Wall-clock deadline of each call into the plugin, host I/O included, in seconds.
    pub call_timeout_secs: f64,
    /// Largest result a call may return (sum of its strings), in bytes.
    pub max_output_bytes: usize,
    /// Largest request body a connector may send, in bytes.
    pub max_request_bytes: usize,
    /// Largest response body a connector may receive, in bytes.
    pub max_response_bytes: usize,
    /// Timeout of one HTTP request, in seconds (never past the call's deadline).
    pub request_timeout_secs: f64,
    /// How often the host retries a 429/503 before handing it to the plugin.
    pub max_http_retries: u32,
    /// The longest Retry-After the host waits out; a longer one goes back to the plugin.
    pub max_retry_wait_secs: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: 128,
            call_timeout_secs: 120.0,
            max_output_bytes: 32 << 20,
            max_request_bytes: 1 << 20,
            max_response_bytes: 16 << 20,
            request_timeout_secs: 30.0,
            max_http_retries: 5,
            max_retry_wait_secs: 120.0,
        }
    }
}

impl Limits {
    /// The call deadline as a duration.
    pub fn call_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.call_timeout_secs.max(0.001))
    }
    /// The per-request timeout as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.request_timeout_secs.max(0.001))
    }
    /// The longest Retry-After honoured, as a duration.
    pub fn max_retry_wait(&self) -> Duration {
        Duration::from_secs_f64(self.max_retry_wait_secs.max(0.0))
    }
    /// The memory cap in bytes.
    pub fn memory_bytes(&self) -> usize {
        (self.memory_mib as usize) << 20
    }
}

/// Engine-wide settings, fixed for the life of the process.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The folder scanned for `.wasm` components.
    pub plugins_dir: PathBuf,
    /// Where precompiled components are cached.
    pub cache_dir: PathBuf,
    /// The key of the cache files' MACs.
    pub cache_key: crate::loader::CacheKey,
    /// Jobs that may run at once (size of the instance pool).
    pub max_concurrent_jobs: u32,
    /// Upper bound for any source's `memory_mib` (each pool slot reserves this much address space).
    pub max_memory_mib: u32,
    /// How often the epoch ticker advances; the granularity of deadlines.
    pub epoch_tick: Duration,
}

impl RuntimeConfig {
    /// Defaults for the given folders; `cache_key` makes the cache tamper-evident.
    pub fn new(
        plugins_dir: impl Into<PathBuf>,
        cache_dir: impl Into<PathBuf>,
        cache_key: crate::loader::CacheKey,
    ) -> Self {
        RuntimeConfig {
            plugins_dir: plugins_dir.into(),
            cache_dir: cache_dir.into(),
            cache_key,
            max_concurrent_jobs: 32,
            max_memory_mib: 1024,
            epoch_tick: Duration::from_millis(10),
        }
    }
}

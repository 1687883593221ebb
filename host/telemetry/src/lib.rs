//! What Roster tells the outside world about itself: Prometheus metrics (`metrics`) and webhook
//! alerts (`alerts`). Logs are `tracing`, set up by the binary.

pub mod alerts;
pub mod metrics;

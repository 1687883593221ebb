//! The alerts that fired lately, kept in memory for the dashboard and `GET /api/v1/alerts`:
//! webhooks tell the outside; this tells whoever opens the pages, and whether the webhooks
//! got it.

use std::collections::VecDeque;
use std::sync::Mutex;

use roster_telemetry::alerts::{AlertEvent, AlertKind, Delivery};

/// How many alerts are kept; older ones are forgotten (the webhooks and the log have them).
pub const KEPT: usize = 50;

/// How an alert's delivery to the webhooks went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertDelivery {
    /// No webhook wants this kind of alert: it was only kept here.
    NoWebhook,
    /// Being delivered (a webhook that is down is retried for up to a minute).
    Sending,
    /// Every webhook that wants it accepted it.
    Delivered,
    /// At least one webhook did not accept it; why, per webhook (no URL in it).
    Failed(String),
}

/// One alert that fired.
#[derive(Debug, Clone)]
pub struct FiredAlert {
    /// Sequence number in this process, from 1.
    pub id: u64,
    /// When it fired (unix ms).
    pub at_ms: i64,
    /// What kind of alert.
    pub kind: AlertKind,
    /// The target, source or run it is about.
    pub subject: String,
    /// The alert's message, as the webhooks got it.
    pub message: String,
    /// How its delivery went.
    pub delivery: AlertDelivery,
}

/// The target, source or run an alert is about.
fn subject(event: &AlertEvent) -> String {
    match event {
        AlertEvent::RunFailed { run_id, target, .. } => format!("target {target}, run {run_id}"),
        AlertEvent::PlanHeld { plan_id, target, .. } => format!("target {target}, plan {plan_id}"),
        AlertEvent::Stale { source, .. } => format!("source {source}"),
        AlertEvent::VolumeSpike { source_or_target, .. } => source_or_target.clone(),
        AlertEvent::Drift { run_id, target, .. } => format!("target {target}, run {run_id}"),
    }
}

/// The last [`KEPT`] alerts, newest last.
#[derive(Debug, Default)]
pub struct FiredAlerts {
    inner: Mutex<(u64, VecDeque<FiredAlert>)>,
}

impl FiredAlerts {
    /// Keeps `event`, fired at `at_ms`, with its delivery so far; returns its id.
    pub fn record(&self, event: &AlertEvent, at_ms: i64, delivery: AlertDelivery) -> u64 {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (next, kept) = &mut *guard;
        *next += 1;
        if kept.len() == KEPT {
            kept.pop_front();
        }
        kept.push_back(FiredAlert {
            id: *next,
            at_ms,
            kind: event.kind(),
            subject: subject(event),
            message: event.summary(),
            delivery,
        });
        *next
    }

    /// Records how alert `id`'s delivery ended (nothing when it has been forgotten since).
    pub fn delivered(&self, id: u64, deliveries: &[Delivery]) {
        let failed: Vec<String> = deliveries
            .iter()
            .filter(|d| !d.delivered)
            .map(|d| format!("{}: {}", d.endpoint, d.error.as_deref().unwrap_or("not accepted")))
            .collect();
        let outcome = if failed.is_empty() {
            AlertDelivery::Delivered
        } else {
            AlertDelivery::Failed(failed.join("; "))
        };
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(a) = guard.1.iter_mut().find(|a| a.id == id) {
            a.delivery = outcome;
        }
    }

    /// The kept alerts, newest first.
    pub fn newest_first(&self) -> Vec<FiredAlert> {
        let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        guard.1.iter().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stale(source: &str) -> AlertEvent {
        AlertEvent::Stale {
            source: source.to_string(),
            feed: roster_telemetry::alerts::StaleFeed::Pulled,
            last_success_unix: None,
            hours: 3.0,
        }
    }

    #[test]
    fn keeps_the_last_fifty_newest_first_with_their_delivery() {
        let fired = FiredAlerts::default();
        for i in 0..(KEPT + 5) {
            fired.record(&stale(&format!("s{i}")), i as i64, AlertDelivery::Sending);
        }
        let kept = fired.newest_first();
        assert_eq!(kept.len(), KEPT);
        assert_eq!(kept[0].subject, format!("source s{}", KEPT + 4));
        assert_eq!(kept[KEPT - 1].subject, "source s5");
        let id = kept[0].id;
        fired.delivered(
            id,
            &[Delivery {
                index: 0,
                endpoint: "https://hooks.example.com/…".into(),
                attempts: 3,
                delivered: false,
                status: Some(500),
                error: Some("answered 500".into()),
            }],
        );
        assert_eq!(
            fired.newest_first()[0].delivery,
            AlertDelivery::Failed("https://hooks.example.com/…: answered 500".into())
        );
        // Forgotten alerts are not resurrected.
        fired.delivered(1, &[]);
        assert!(fired.newest_first().iter().all(|a| a.id != 1));
    }
}

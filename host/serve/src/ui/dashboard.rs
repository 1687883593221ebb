//! The dashboard (`/ui`): each source with its connector, state, last and next run and
//! staleness; each target with its licence; runs in progress (a fragment htmx polls); the
//! alerts that fired lately and whether their webhooks got them; and the runs that failed or
//! wait for approval.

use askama::Template;
use askama_web::WebTemplate;
use roster_model::RunState;
use roster_store::{RunFilter, RunRow, now_ms};

use super::format::{Gauge, When, ago, when, when_rfc3339};
use super::{Chrome, Nav, Ui, UiResult};
use crate::runner::Summary;
use crate::service::fired::{AlertDelivery, FiredAlert};

/// A source's row.
pub struct SourceRowView {
    id: String,
    connector: String,
    state: String,
    last_run: Option<RunLink>,
    next_run: Option<When>,
    schedule: String,
    last_success: Option<When>,
    staleness: String,
    stale: bool,
}

/// A run as a link with its state and start.
pub struct RunLink {
    pub(super) id: i64,
    pub(super) state: String,
    pub(super) started: Option<When>,
    pub(super) target: String,
    pub(super) mode: String,
    pub(super) trigger: String,
    pub(super) plan_id: Option<String>,
    pub(super) error: Option<String>,
}

impl RunLink {
    /// A run's link.
    pub fn of(r: &RunRow) -> RunLink {
        RunLink {
            id: r.id,
            state: r.state.as_str().to_string(),
            started: when(r.started_at),
            target: r.target.clone(),
            mode: r.mode.as_str().to_string(),
            trigger: r.trigger.as_str().to_string(),
            plan_id: r.plan_id.clone(),
            error: r.error.clone(),
        }
    }
}

/// A target's row: its licence as its last run's guard counted it.
pub struct TargetRowView {
    id: String,
    kind: String,
    licences: Vec<LicenceRow>,
    as_of: Option<RunLink>,
}

/// One licence's seats.
pub struct LicenceRow {
    name: String,
    used: i64,
    limit: String,
    over: bool,
}

/// An alert that fired, for the dashboard.
pub struct AlertRow {
    at: Option<When>,
    kind: &'static str,
    subject: String,
    message: String,
    delivery: String,
    failed: bool,
}

impl AlertRow {
    fn of(a: FiredAlert) -> AlertRow {
        let (delivery, failed) = match a.delivery {
            AlertDelivery::NoWebhook => ("kept here only: no webhook wants it".to_string(), false),
            AlertDelivery::Sending => ("sending".to_string(), false),
            AlertDelivery::Delivered => ("delivered".to_string(), false),
            AlertDelivery::Failed(why) => (format!("not delivered: {why}"), true),
        };
        AlertRow {
            at: when(a.at_ms),
            kind: a.kind.as_str(),
            subject: a.subject,
            message: a.message,
            delivery,
            failed,
        }
    }
}

/// A run in progress, for the live fragment.
pub struct Live {
    id: i64,
    target: String,
    gauge: Gauge,
    cancelling: bool,
}

/// The dashboard.
#[derive(Template, WebTemplate)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    chrome: Chrome,
    sources: Vec<SourceRowView>,
    targets: Vec<TargetRowView>,
    live: Vec<Live>,
    attention: Vec<RunLink>,
    alerts: Vec<AlertRow>,
    kept: usize,
}

/// The live fragment alone (htmx polls it).
#[derive(Template, WebTemplate)]
#[template(path = "dashboard.html", block = "in_progress")]
pub struct InProgressFragment {
    live: Vec<Live>,
}

/// The runs in progress now.
pub async fn live_runs(ui: &Ui) -> UiResult<Vec<Live>> {
    let mut live = Vec::new();
    for p in ui.service().runs.all() {
        let s = p.status();
        let id = s.run_id;
        let target = ui
            .service()
            .store
            .blocking(move |store| store.run(id).map(|r| r.target))
            .await
            .unwrap_or_default();
        live.push(Live {
            id,
            target,
            gauge: Gauge::of(&s),
            cancelling: s.cancelling,
        });
    }
    Ok(live)
}

/// `GET /ui`.
pub async fn page(ui: Ui) -> UiResult<DashboardPage> {
    let config = ui.service().config();
    let now = now_ms();
    let stale_after_h = config
        .alerts
        .iter()
        .map(|a| a.stale_after_hours)
        .filter(|h| *h > 0.0)
        .fold(None, |m: Option<f64>, h| Some(m.map_or(h, |m| m.min(h))));
    let mut sources = Vec::new();
    for s in &config.sources {
        let id = s.id.clone();
        let (last, st) = ui
            .service()
            .store
            .blocking(move |store| {
                let f = RunFilter {
                    source: Some(&id),
                    ..RunFilter::default()
                };
                Ok::<_, roster_store::StoreError>((store.runs_filtered(&f, 1)?, store.schedule_state(&id).ok()))
            })
            .await?;
        let next_run = match (s.schedule().ok(), s.scheduled() && s.enabled) {
            (Some(sch), true) => sch
                .upcoming(chrono::Utc::now(), 1)
                .into_iter()
                .next()
                .and_then(|t| when_rfc3339(&t.to_rfc3339())),
            _ => None,
        };
        let schedule = match (s.schedule().ok(), s.scheduled()) {
            (Some(sch), true) => sch.describe(),
            _ => "not scheduled".to_string(),
        };
        let last_success = st.as_ref().and_then(|st| st.last_success_at);
        let (staleness, stale) = match (last_success, stale_after_h) {
            (Some(at), Some(h)) if (now - at) as f64 > h * 3_600_000.0 => (
                format!(
                    "stale: no success for {} (alerts after {h} h)",
                    ago(at, now).trim_end_matches(" ago")
                ),
                true,
            ),
            (Some(at), _) => (format!("last success {}", ago(at, now)), false),
            (None, _) => ("never succeeded".to_string(), !last.is_empty()),
        };
        let push = ui.service().push_state(s);
        let state = match (&push, s.enabled) {
            (_, false) => "disabled".to_string(),
            (Some(p), true) if p.failed_runs > 0 => {
                format!("pushes: {} pending, {} failed run(s)", p.pending_pushes, p.failed_runs)
            }
            (Some(p), true) => format!("pushes: {} pending", p.pending_pushes),
            (None, true) => "enabled".to_string(),
        };
        // A push source runs when it pushes; its next run is the one its queue has due.
        let next_run = next_run.or_else(|| push.as_ref().and_then(|p| p.next_run_at).and_then(when));
        sources.push(SourceRowView {
            id: s.id.clone(),
            connector: s.feed_label(),
            state,
            last_run: last.first().map(RunLink::of),
            next_run,
            schedule,
            last_success: last_success.and_then(when),
            staleness,
            stale,
        });
    }
    let mut targets = Vec::new();
    for t in &config.targets {
        let id = t.id.clone();
        let last = ui
            .service()
            .store
            .blocking(move |store| {
                let f = RunFilter {
                    target: Some(&id),
                    ..RunFilter::default()
                };
                store.runs_filtered(&f, 20)
            })
            .await?;
        // The newest run whose guard counted the seats.
        let counted = last.iter().find_map(|r| {
            let summary: Summary = serde_json::from_value(r.summary.clone()?).ok()?;
            Some((r, summary.guard?))
        });
        let (licences, as_of) = match counted {
            Some((r, v)) => {
                let mut rows: Vec<LicenceRow> = v
                    .licences
                    .iter()
                    .map(|l| LicenceRow {
                        name: l.name.clone(),
                        used: l.seats_in_use,
                        limit: l.seat_limit.map_or_else(|| "unlimited".to_string(), |n| n.to_string()),
                        over: l.over,
                    })
                    .collect();
                if rows.is_empty() {
                    rows.push(LicenceRow {
                        name: t.kind.clone(),
                        used: v.seats_in_use,
                        limit: v.seat_limit.map_or_else(|| "unlimited".to_string(), |n| n.to_string()),
                        over: v.seat_limit.is_some_and(|l| v.licensed_after as i64 > l),
                    });
                }
                (rows, Some(RunLink::of(r)))
            }
            None => (Vec::new(), None),
        };
        targets.push(TargetRowView {
            id: t.id.clone(),
            kind: t.kind.clone(),
            licences,
            as_of,
        });
    }
    let attention = ui
        .service()
        .store
        .blocking(move |store| {
            let mut out = Vec::new();
            for state in [RunState::Held, RunState::Failed, RunState::Refused, RunState::Partial] {
                let f = RunFilter {
                    state: Some(state),
                    since: Some(now - 7 * 24 * 3_600_000),
                    ..RunFilter::default()
                };
                out.extend(store.runs_filtered(&f, 10)?);
            }
            out.sort_by_key(|r| std::cmp::Reverse(r.id));
            out.truncate(10);
            Ok::<_, roster_store::StoreError>(out)
        })
        .await?;
    Ok(DashboardPage {
        chrome: ui.chrome("Dashboard", Nav::Dashboard),
        sources,
        targets,
        live: live_runs(&ui).await?,
        attention: attention.iter().map(RunLink::of).collect(),
        kept: crate::service::fired::KEPT,
        alerts: ui
            .service()
            .fired
            .newest_first()
            .into_iter()
            .map(AlertRow::of)
            .collect(),
    })
}

/// `GET /ui/fragments/in-progress`: the runs in progress, for htmx to swap in.
pub async fn in_progress(ui: Ui) -> UiResult<InProgressFragment> {
    Ok(InProgressFragment {
        live: live_runs(&ui).await?,
    })
}

//! Runs: the history with filters and the form that starts a sync (`/ui/runs`); a run's page
//! with its stages, timings and requests (`/ui/runs/{id}`), its live progress (a fragment htmx
//! polls until the run ends), and its per-object results with search, filters and export.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use roster_engine::ExportRow;
use roster_model::{Outcome, RunState, Trigger};
use roster_store::{RunFilter, RunRow};

use super::dashboard::RunLink;
use super::format::{Gauge, When, duration_ms, when};
use super::{Chrome, Nav, Ui, UiError, UiResult};
use crate::runner::Summary;
use crate::service::{RequestedMode, RunRequest};

/// The history's filters, as the form sends them (empty: any).
#[derive(Debug, Default, Deserialize)]
pub struct RunsFilter {
    #[serde(default)]
    state: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    trigger: String,
}

/// A choice in a filter's `<select>`.
pub struct Choice {
    value: String,
    selected: bool,
}

fn choices<'a>(values: impl IntoIterator<Item = &'a str>, chosen: &str) -> Vec<Choice> {
    values
        .into_iter()
        .map(|v| Choice {
            value: v.to_string(),
            selected: v == chosen,
        })
        .collect()
}

/// The history.
#[derive(Template, WebTemplate)]
#[template(path = "runs.html")]
pub struct RunsPage {
    chrome: Chrome,
    runs: Vec<RunLink>,
    states: Vec<Choice>,
    targets: Vec<Choice>,
    triggers: Vec<Choice>,
    filtered: bool,
}

/// `GET /ui/runs`.
pub async fn list(ui: Ui, Query(f): Query<RunsFilter>) -> UiResult<RunsPage> {
    let state = none_if_empty(&f.state)
        .map(|s| s.parse::<RunState>())
        .transpose()
        .map_err(|e| UiError::bad_request(format!("state: {e}")))?;
    let trigger = none_if_empty(&f.trigger)
        .map(|s| s.parse::<Trigger>())
        .transpose()
        .map_err(|e| UiError::bad_request(format!("trigger: {e}")))?;
    let target = none_if_empty(&f.target).map(str::to_string);
    let runs = ui
        .service()
        .store
        .blocking(move |store| {
            let filter = RunFilter {
                state,
                trigger,
                target: target.as_deref(),
                ..RunFilter::default()
            };
            store.runs_filtered(&filter, 200)
        })
        .await?;
    let config = ui.service().config();
    Ok(RunsPage {
        chrome: ui.chrome("Runs", Nav::Runs),
        runs: runs.iter().map(RunLink::of).collect(),
        states: choices(RunState::ALL.iter().map(|s| s.as_str()), &f.state),
        targets: choices(config.targets.iter().map(|t| t.id.as_str()), &f.target),
        triggers: choices(Trigger::ALL.iter().map(|t| t.as_str()), &f.trigger),
        filtered: !(f.state.is_empty() && f.target.is_empty() && f.trigger.is_empty()),
    })
}

fn none_if_empty(s: &str) -> Option<&str> {
    (!s.trim().is_empty()).then_some(s.trim())
}

/// The start form.
#[derive(Debug, Deserialize)]
pub struct StartForm {
    #[serde(default)]
    mode: String,
    #[serde(default)]
    target: String,
}

/// `POST /ui/runs` (operator and up, as `POST /api/v1/runs`): starts a sync and shows its run.
pub async fn start(ui: Ui, axum::Form(form): axum::Form<StartForm>) -> UiResult<Redirect> {
    ui.require(Method::POST, "/api/v1/runs")?;
    let mode = match form.mode.as_str() {
        "" | "full" => RequestedMode::Full,
        "incremental" => RequestedMode::Incremental,
        "dry-run" => RequestedMode::DryRun,
        other => {
            return Err(UiError::bad_request(format!(
                "unknown mode '{other}': choose full, incremental or dry-run"
            )));
        }
    };
    let service = ui.service().clone();
    let ids = service.start_runs(RunRequest {
        sources: Vec::new(),
        mode,
        trigger: Trigger::Api,
        actor: ui.caller.actor.clone(),
        origin: ui.caller.ip.clone(),
        target: none_if_empty(&form.target).map(str::to_string),
    })?;
    for id in &ids {
        let id = *id;
        let target = service.store.blocking(move |s| s.run(id)).await?.target;
        // The same audit entry the API writes for a run it starts.
        ui.caller
            .audit(
                &service,
                "run.start",
                &format!("run {id}"),
                Some(&format!("target {target}")),
            )
            .await?;
    }
    let first = ids
        .first()
        .ok_or_else(|| UiError::new(StatusCode::CONFLICT, "no target to run; define one first"))?;
    Ok(Redirect::to(&format!("/ui/runs/{first}")))
}

/// A stage's line: its name and time.
pub struct StageLine {
    name: String,
    took: String,
}

/// Requests to one IdP (per source) or the target.
pub struct RequestLine {
    what: String,
    requests: u64,
    throttled: u64,
}

/// A run's live part.
pub struct Progress {
    running: bool,
    state: String,
    /// Only while it runs.
    gauge: Option<Gauge>,
    /// How long it took, once it ended.
    took: String,
    finished: Vec<StageLine>,
}

/// A run's page.
#[derive(Template, WebTemplate)]
#[template(path = "run.html")]
pub struct RunPage {
    chrome: Chrome,
    run: RunLink,
    sources: String,
    finished: Option<When>,
    progress: Progress,
    stages: Vec<StageLine>,
    requests: Vec<RequestLine>,
    endpoints: Vec<RequestLine>,
    planned: Vec<(String, usize)>,
    applied: String,
    held: Option<String>,
    refused: Option<String>,
    warnings: Vec<String>,
}

/// A run's progress alone (htmx polls it).
#[derive(Template, WebTemplate)]
#[template(path = "run.html", block = "progress")]
pub struct ProgressFragment {
    // The Cancel button lives in the fragment, so it goes away with the run.
    chrome: Chrome,
    run: RunLink,
    progress: Progress,
}

async fn run_row(ui: &Ui, id: i64) -> UiResult<RunRow> {
    ui.service()
        .store
        .blocking(move |store| store.run(id))
        .await
        .map_err(|_| UiError::not_found(format!("no run {id}; see the list of runs (/ui/runs)")))
}

fn progress_of(ui: &Ui, r: &RunRow) -> Progress {
    let live = ui.service().runs.get(r.id).map(|p| p.status());
    let state = if live.is_some() { "running" } else { r.state.as_str() };
    match live {
        Some(s) => Progress {
            running: true,
            state: state.to_string(),
            gauge: Some(Gauge::of(&s)),
            took: String::new(),
            finished: s
                .finished_stages
                .iter()
                .map(|(name, ms)| StageLine {
                    name: name.clone(),
                    took: duration_ms(*ms),
                })
                .collect(),
        },
        None => Progress {
            running: false,
            state: state.to_string(),
            gauge: None,
            took: r
                .finished_at
                .map(|f| duration_ms((f - r.started_at).max(0) as u64))
                .unwrap_or_default(),
            finished: Vec::new(),
        },
    }
}

/// `GET /ui/runs/{id}`.
pub async fn one(ui: Ui, Path(id): Path<i64>) -> UiResult<RunPage> {
    let r = run_row(&ui, id).await?;
    let summary: Option<Summary> = r.summary.clone().and_then(|s| serde_json::from_value(s).ok());
    let s = summary.unwrap_or_default();
    let mut requests: Vec<RequestLine> = s
        .fetch
        .iter()
        .map(|f| RequestLine {
            what: format!("source {}", f.source),
            requests: f.idp_requests,
            throttled: f.idp_throttled,
        })
        .collect();
    if s.api_calls_total > 0 || s.throttled > 0 {
        requests.push(RequestLine {
            what: format!("target {}", r.target),
            requests: s.api_calls_total,
            throttled: s.throttled,
        });
    }
    let verdict = s.guard.clone();
    Ok(RunPage {
        chrome: ui.chrome(format!("Run {id}"), Nav::Runs),
        sources: r.sources.join(", "),
        finished: r.finished_at.and_then(when),
        progress: progress_of(&ui, &r),
        stages: s
            .stage_ms
            .iter()
            .map(|(name, ms)| StageLine {
                name: name.clone(),
                took: duration_ms(*ms),
            })
            .collect(),
        requests,
        endpoints: s
            .api_calls
            .iter()
            .map(|(e, n)| RequestLine {
                what: e.clone(),
                requests: *n,
                throttled: 0,
            })
            .collect(),
        planned: s.planned.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        applied: serde_json::to_value(s.applied)
            .ok()
            .and_then(|v| v.as_object().cloned())
            .map(|o| o.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "))
            .unwrap_or_default(),
        held: verdict.as_ref().and_then(|v| v.held.clone()),
        refused: verdict.as_ref().and_then(|v| v.refused.clone()),
        warnings: s.warnings.clone(),
        run: RunLink::of(&r),
    })
}

/// `GET /ui/runs/{id}/progress`: answers 286 once the run has ended, which stops htmx polling.
pub async fn progress(ui: Ui, Path(id): Path<i64>) -> UiResult<Response> {
    let r = run_row(&ui, id).await?;
    let progress = progress_of(&ui, &r);
    let status = if progress.running {
        StatusCode::OK
    } else {
        StatusCode::from_u16(286).unwrap_or(StatusCode::OK)
    };
    Ok((
        status,
        ProgressFragment {
            chrome: ui.chrome(format!("Run {id}"), Nav::Runs),
            run: RunLink::of(&r),
            progress,
        },
    )
        .into_response())
}

/// `POST /ui/runs/{id}/cancel` (operator and up, as `POST /api/v1/runs/{id}/cancel`): asks a
/// running run to stop; what is in flight finishes and is recorded.
pub async fn cancel(ui: Ui, Path(id): Path<i64>) -> UiResult<Redirect> {
    ui.require(Method::POST, "/api/v1/runs/{id}/cancel")?;
    run_row(&ui, id).await?;
    ui.service().cancel(id)?;
    // The same audit entry the API writes.
    ui.caller
        .audit(ui.service(), "run.cancel", &format!("run {id}"), None)
        .await?;
    Ok(Redirect::to(&format!("/ui/runs/{id}")))
}

/// The results' search and filters.
#[derive(Debug, Default, Deserialize)]
pub struct ResultsFilter {
    #[serde(default)]
    q: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    kind: String,
}

/// One result row.
pub struct ResultLine {
    seq: i64,
    kind: String,
    subject: String,
    reason: String,
    outcome: String,
    status: String,
    attempts: String,
    message: String,
    finished: Option<When>,
}

/// A run's results.
#[derive(Template, WebTemplate)]
#[template(path = "results.html")]
pub struct ResultsPage {
    chrome: Chrome,
    run_id: i64,
    q: String,
    outcomes: Vec<Choice>,
    kinds: Vec<Choice>,
    rows: Vec<ResultLine>,
    /// Rows matching the filters (more than shown when over [`MAX_ROWS`]).
    matching: usize,
    total: usize,
}

/// Rows one results page shows at most; the export has them all.
const MAX_ROWS: usize = 2000;

async fn export_rows(ui: &Ui, id: i64) -> UiResult<Vec<ExportRow>> {
    run_row(ui, id).await?;
    Ok(ui
        .service()
        .store
        .blocking(move |store| roster_engine::export_rows(store, id))
        .await?)
}

/// `GET /ui/runs/{id}/results`.
pub async fn results(ui: Ui, Path(id): Path<i64>, Query(f): Query<ResultsFilter>) -> UiResult<ResultsPage> {
    let rows = export_rows(&ui, id).await?;
    let total = rows.len();
    let mut kinds: Vec<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let kinds = choices(kinds, &f.kind);
    let q = f.q.trim().to_lowercase();
    let matching: Vec<&ExportRow> = rows
        .iter()
        .filter(|r| f.outcome.is_empty() || r.outcome.as_str() == f.outcome)
        .filter(|r| f.kind.is_empty() || r.kind == f.kind)
        .filter(|r| {
            q.is_empty()
                || r.subject.to_lowercase().contains(&q)
                || r.reason.to_lowercase().contains(&q)
                || r.message.as_deref().is_some_and(|m| m.to_lowercase().contains(&q))
        })
        .collect();
    let shown = matching
        .iter()
        .take(MAX_ROWS)
        .map(|r| ResultLine {
            seq: r.seq,
            kind: r.kind.clone(),
            subject: r.subject.clone(),
            reason: r.reason.clone(),
            outcome: r.outcome.as_str().to_string(),
            status: r.status.map(|s| s.to_string()).unwrap_or_default(),
            attempts: r.attempts.map(|s| s.to_string()).unwrap_or_default(),
            message: r.message.clone().unwrap_or_default(),
            finished: r.finished_at.and_then(when),
        })
        .collect();
    Ok(ResultsPage {
        chrome: ui.chrome(format!("Results of run {id}"), Nav::Runs),
        run_id: id,
        q: f.q.clone(),
        outcomes: choices(Outcome::ALL.iter().map(|o| o.as_str()), &f.outcome),
        kinds,
        rows: shown,
        matching: matching.len(),
        total,
    })
}

/// `GET /ui/runs/{id}/results.csv`: the same CSV as the API's export.
pub async fn export_csv(ui: Ui, Path(id): Path<i64>) -> UiResult<Response> {
    let rows = export_rows(&ui, id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"roster-run-{id}.csv\""),
            ),
        ],
        roster_engine::export_csv(&rows),
    )
        .into_response())
}

/// `GET /ui/runs/{id}/results.json`: the same JSON as the API's export.
pub async fn export_json(ui: Ui, Path(id): Path<i64>) -> UiResult<Response> {
    let rows = export_rows(&ui, id).await?;
    Ok((
        [(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"roster-run-{id}.json\""),
        )],
        axum::Json(rows),
    )
        .into_response())
}

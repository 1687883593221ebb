//! The audit log (`/ui/audit`, as `GET /api/v1/audit`): every change, who made it, when and
//! from where, newest first.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::Query;
use axum::http::Method;
use serde::Deserialize;

use super::format::{When, when};
use super::{Chrome, Nav, Ui, UiError, UiResult};

/// An entry.
pub struct Entry {
    at: Option<When>,
    actor: String,
    origin: String,
    action: String,
    subject: String,
    detail: String,
}

/// The audit page.
#[derive(Template, WebTemplate)]
#[template(path = "audit.html")]
pub struct AuditPage {
    chrome: Chrome,
    entries: Vec<Entry>,
    limit: u32,
}

/// How many entries.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    limit: Option<u32>,
}

/// `GET /ui/audit`.
pub async fn page(ui: Ui, Query(q): Query<AuditQuery>) -> UiResult<AuditPage> {
    ui.require(Method::GET, "/api/v1/audit")?;
    let limit = q.limit.unwrap_or(200);
    if !(1..=10_000).contains(&limit) {
        return Err(UiError::bad_request("limit must be 1 to 10000"));
    }
    let entries = ui.service().store.blocking(move |store| store.audit_log(limit)).await?;
    Ok(AuditPage {
        chrome: ui.chrome("Audit log", Nav::Audit),
        entries: entries
            .into_iter()
            .map(|e| Entry {
                at: when(e.at),
                actor: e.actor,
                origin: e.origin,
                action: e.action,
                subject: e.subject,
                detail: e.detail.unwrap_or_default(),
            })
            .collect(),
        limit,
    })
}

//! The fetch stage: a connector's pages into the run's staging area, promoted into the mirror
//! only when the fetch completes. An expired delta token falls back to a full fetch; transient
//! errors are retried a few times; anything else leaves the mirror as it was.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use roster_model::Progress;
use roster_runtime::types::{Page, RemovalKind};
use roster_runtime::{GuestFailure, Runtime, SourceAccess};
use roster_store::{MirrorGroup, MirrorMembership, MirrorUser, Removed, Repeated, Store};

use crate::config::SourceConfig;

/// Retries of a page that failed with a transient error.
const PAGE_RETRIES: u32 = 3;
/// A fetch that pages more than this is assumed to loop.
const MAX_PAGES: u64 = 1_000_000;

/// How one source's fetch went.
#[derive(Debug, Clone, Serialize, serde::Deserialize, Default, utoipa::ToSchema)]
pub struct FetchReport {
    /// Source id.
    pub source: String,
    /// "full", "incremental", or "push" (a pushed source: nothing fetched).
    pub mode: String,
    /// The mirror was updated.
    pub complete: bool,
    /// Pages read.
    pub pages: u64,
    /// Users, groups and memberships read (incremental: changes).
    pub users: u64,
    /// Groups read.
    pub groups: u64,
    /// Memberships read.
    pub memberships: u64,
    /// Removals read (incremental).
    pub removals: u64,
    /// Why the incremental fetch became a full one.
    pub fell_back: Option<String>,
    /// Why the fetch did not complete.
    pub error: Option<String>,
    /// Milliseconds spent in the connector (its HTTP calls included).
    pub connector_ms: u64,
    /// Requests the connector made to the identity provider (retries included).
    pub idp_requests: u64,
    /// Of those, answered 429 or 503 (waited out by the host).
    pub idp_throttled: u64,
    /// Milliseconds spent writing staging and updating the mirror.
    pub store_ms: u64,
    /// What the administrator should know about the source's data (ids it listed twice).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

fn removal(kind: RemovalKind) -> Removed {
    match kind {
        RemovalKind::SoftDeleted => Removed::SoftDeleted,
        RemovalKind::Deleted => Removed::Deleted,
    }
}

/// Counts a page into the report.
fn count(page: &Page, report: &mut FetchReport) {
    report.users += page.users.len() as u64;
    report.groups += page.groups.len() as u64;
    report.memberships += (page.memberships.len() + page.removed_memberships.len()) as u64;
    report.removals += (page.removed_users.len() + page.removed_groups.len()) as u64;
}

/// Writes a page into the run's staging area (on the blocking pool: a page is thousands of rows).
async fn stage(store: &Arc<Store>, run_id: i64, source: &str, page: Page) -> Result<Repeated, String> {
    let source = source.to_string();
    store
        .blocking(move |store| stage_rows(store, run_id, &source, page))
        .await
}

fn stage_rows(store: &Store, run_id: i64, source: &str, page: Page) -> Result<Repeated, String> {
    let mut users: Vec<MirrorUser> = page
        .users
        .into_iter()
        .map(|u| MirrorUser {
            ext_id: u.id,
            username: u.username,
            email: u.email,
            display_name: u.display_name,
            active: u.active,
            attributes: u.attributes,
            removed: None,
        })
        .collect();
    users.extend(page.removed_users.into_iter().map(|r| MirrorUser {
        ext_id: r.id,
        username: String::new(),
        email: None,
        display_name: None,
        active: false,
        attributes: Vec::new(),
        removed: Some(removal(r.kind)),
    }));
    let mut groups: Vec<MirrorGroup> = page
        .groups
        .into_iter()
        .map(|g| MirrorGroup {
            ext_id: g.id,
            name: g.name,
            description: g.description,
            attributes: g.attributes,
            removed: None,
        })
        .collect();
    groups.extend(page.removed_groups.into_iter().map(|r| MirrorGroup {
        ext_id: r.id,
        name: String::new(),
        description: None,
        attributes: Vec::new(),
        removed: Some(removal(r.kind)),
    }));
    let mut memberships: Vec<MirrorMembership> = page
        .memberships
        .into_iter()
        .map(|m| MirrorMembership {
            group_id: m.group_id,
            member_id: m.member_id,
            member_is_group: m.member_is_group,
            removed: false,
        })
        .collect();
    memberships.extend(page.removed_memberships.into_iter().map(|m| MirrorMembership {
        group_id: m.group_id,
        member_id: m.member_id,
        member_is_group: m.member_is_group,
        removed: true,
    }));
    store
        .stage_page(run_id, source, &users, &groups, &memberships)
        .map_err(|e| e.to_string())
}

/// Full or incremental.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchMode {
    /// Everything the source has.
    Full,
    /// The changes since the last fetch, where the source kept a delta token.
    Incremental,
}

/// The report for a source that pushes to Roster: its mirror is kept by its pushes (each
/// durable before it was answered), so it is complete as it stands and nothing is fetched.
pub fn pushed(source: &SourceConfig) -> FetchReport {
    FetchReport {
        source: source.id.clone(),
        mode: "push".into(),
        complete: true,
        ..FetchReport::default()
    }
}

/// Fetches one source into the mirror through its connector plugin; a push source is
/// [`pushed`] (nothing to fetch).
pub async fn fetch_source(
    runtime: &Runtime,
    store: &Arc<Store>,
    run_id: i64,
    source: &SourceConfig,
    access: Arc<SourceAccess>,
    mode: FetchMode,
    progress: &dyn Progress,
) -> FetchReport {
    let plugin = match source.feed() {
        crate::Feed::Pull(plugin) => plugin,
        crate::Feed::Push(_) => return pushed(source),
    };
    let mut report = FetchReport {
        source: source.id.clone(),
        ..FetchReport::default()
    };
    let mut delta = if mode == FetchMode::Incremental {
        store.cursor(&source.id).ok().flatten()
    } else {
        None
    };
    report.mode = if delta.is_some() { "incremental" } else { "full" }.into();
    let settings = source.settings.to_string();
    let counted_from = access.counts();
    let counts = access.clone();
    let mut job = match runtime.job(plugin, source.limits.clone(), access).await {
        Ok(j) => j,
        Err(e) => {
            report.error = Some(e.to_string());
            return report;
        }
    };
    progress.stage(&format!("fetch {}", source.id), 0);
    let mut cursor: Option<String> = None;
    let mut attempt = 0;
    let mut repeated = Repeated::default();
    loop {
        if progress.cancelled() {
            report.error = Some("the run was cancelled".into());
            break;
        }
        let called = std::time::Instant::now();
        let fetched = job.fetch(&settings, cursor.as_deref(), delta.as_deref()).await;
        report.connector_ms += called.elapsed().as_millis() as u64;
        let stored = std::time::Instant::now();
        match fetched {
            Ok(page) => {
                attempt = 0;
                if let Some(total) = page.total_hint {
                    progress.set_total(total);
                }
                let (next, token) = (page.next.clone(), page.delta_token.clone());
                // Progress counts objects (users, groups, removals), as `total-hint` does.
                let n = (page.users.len() + page.groups.len() + page.removed_users.len() + page.removed_groups.len())
                    as u64;
                count(&page, &mut report);
                match stage(store, run_id, &source.id, page).await {
                    Ok(r) => {
                        repeated.users.extend(r.users);
                        repeated.groups.extend(r.groups);
                    }
                    Err(e) => {
                        report.error = Some(format!("cannot stage page {}: {e}", report.pages + 1));
                        break;
                    }
                }
                report.pages += 1;
                report.store_ms += stored.elapsed().as_millis() as u64;
                progress.advance(n);
                if next.is_some() && next == cursor {
                    report.error =
                        Some("the connector returned the same cursor twice; stopping to avoid an endless fetch".into());
                    break;
                }
                cursor = next;
                if cursor.is_none() {
                    let (id, full) = (source.id.clone(), delta.is_none());
                    let promoted = store
                        .blocking(move |store| match full {
                            true => store.promote_full(run_id, &id, token.as_deref()),
                            false => store.promote_delta(run_id, &id, token.as_deref()),
                        })
                        .await;
                    match promoted {
                        Ok(()) => report.complete = true,
                        Err(e) => report.error = Some(format!("cannot update the mirror: {e}")),
                    }
                    report.store_ms += stored.elapsed().as_millis() as u64;
                    break;
                }
                if report.pages >= MAX_PAGES {
                    report.error = Some(format!("more than {MAX_PAGES} pages; stopping"));
                    break;
                }
            }
            Err(e) => match e.guest() {
                Some(GuestFailure::ExpiredDelta(why)) if delta.is_some() => {
                    tracing::warn!(source = %source.id, "delta token rejected ({why}); falling back to a full fetch");
                    report.fell_back = Some(format!(
                        "the delta token was rejected ({why}); a full fetch was made instead"
                    ));
                    report.mode = "full".into();
                    let _ = store.discard_staging(run_id, &source.id);
                    repeated = Repeated::default();
                    report.pages = 0;
                    (report.users, report.groups, report.memberships, report.removals) = (0, 0, 0, 0);
                    delta = None;
                    cursor = None;
                }
                Some(GuestFailure::Transient(why)) if attempt < PAGE_RETRIES => {
                    attempt += 1;
                    tracing::warn!(source = %source.id, attempt, "page failed transiently ({why}); retrying");
                    tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
                }
                _ => {
                    report.error = Some(e.to_string());
                    break;
                }
            },
        }
    }
    progress.finish();
    // A delta may list an object once per change; a full listing should list it once. The last
    // record of an id is the one kept, so one id never becomes two accounts or groups.
    if report.mode == "full" {
        for (kind, ids) in [("user", &repeated.users), ("group", &repeated.groups)] {
            if ids.is_empty() {
                continue;
            }
            let mut shown: Vec<&str> = ids.iter().take(10).map(String::as_str).collect();
            shown.dedup();
            report.warnings.push(format!(
                "the source listed {} {kind} id(s) more than once ({}{}); the last record of each was kept — check the export or the connector",
                ids.len(),
                shown.join(", "),
                if ids.len() > 10 { ", …" } else { "" }
            ));
        }
    }
    let requests = counts.counts() - counted_from;
    report.idp_requests = requests.sent;
    report.idp_throttled = requests.throttled;
    if !report.complete {
        let _ = store.discard_staging(run_id, &source.id);
    }
    report
}

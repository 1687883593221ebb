//! The transform stage: a source's mirror through its chain of transform plugins, in batches.
//! A record a transform cannot evaluate is skipped with its reason; the run goes on.
//!
//! Settings files (a mapping) are re-read at every run and checked by the transform itself
//! (an empty batch with the new settings) before they are used; a broken file is refused with
//! its error and the version the step last accepted keeps serving (`store::settings`).
//! `required_groups` narrows a source to the members of some of its groups before the chain.
//! With tracing on, every step's outcome for every record is kept for previews.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use roster_runtime::types::{Group, User};
use roster_runtime::{Job, Runtime, SourceAccess, StepOutcome};
use roster_store::{MirrorGroup, MirrorMembership, MirrorUser, Removed, Store};

use crate::DirectoryError;
use crate::config::{SourceConfig, TransformConfig};

/// Records per call into a transform (the boundary costs ~2 µs per user; see BENCHMARKS.md).
pub const BATCH: usize = 1000;

/// A user after the chain; the IdP id is the input's, whatever a transform returned.
#[derive(Debug, Clone)]
pub struct MappedUser {
    /// IdP immutable id.
    pub ext_id: String,
    /// Username to use in Bitbucket.
    pub username: String,
    /// Email.
    pub email: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Enabled and not soft-deleted.
    pub active: bool,
}

/// One source's records after its chain.
#[derive(Debug, Default)]
pub struct Transformed {
    /// Kept users.
    pub users: Vec<MappedUser>,
    /// Group id → Bitbucket group names (none: filtered; several: fan-out) and its IdP name.
    pub groups: HashMap<String, (String, Vec<String>)>,
    /// Memberships as the IdP reported them (ids).
    pub memberships: Vec<MirrorMembership>,
    /// Records skipped, with why.
    pub warnings: Vec<String>,
    /// IdP ids of users a step could not evaluate: unknown this run, not gone (their accounts
    /// are left as they are; see `plan`).
    pub unmapped: Vec<String>,
}

/// What the stage needs besides the records.
pub struct ChainContext<'a> {
    /// Where transforms run.
    pub runtime: &'a Runtime,
    /// Where accepted settings are kept.
    pub store: &'a Store,
    /// Relative settings files are resolved against this folder (the configuration's).
    pub base_dir: &'a Path,
    /// Whether a settings file the transform accepts is remembered as the version to fall
    /// back on.
    pub remember: Remember,
}

/// What a chain remembers of the settings files its transforms accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remember {
    /// Runs: the accepted version is kept, to fall back on when a later one is refused.
    Accepted,
    /// Previews: nothing is written.
    Nothing,
}

/// Whether a chain keeps every step's outcome for every record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trace {
    /// Previews: every step of every record.
    On,
    /// Runs: only the result.
    Off,
}

/// A user as a step saw it or left it (the fields Bitbucket gets).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct UserView {
    /// Username.
    pub username: String,
    /// Email.
    pub email: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Active.
    pub active: bool,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            username: u.username.clone(),
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            active: u.active,
        }
    }
}

/// What one step did to one record.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StepTrace {
    /// The transform.
    pub plugin: String,
    /// kept, dropped, or error.
    pub outcome: String,
    /// The user afterwards (kept users).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<UserView>,
    /// The group names afterwards (groups).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// Which rule decided.
    pub reason: Option<String>,
    /// Why the record could not be evaluated.
    pub error: Option<String>,
}

/// One user through the chain: before, each step, after.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserTrace {
    /// IdP id.
    pub id: String,
    /// As the source reported it.
    pub before: UserView,
    /// Step by step (stops where the user was dropped).
    pub steps: Vec<StepTrace>,
    /// What Bitbucket would get; `None`: left out.
    pub after: Option<UserView>,
}

/// One group through the chain.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GroupTrace {
    /// IdP id.
    pub id: String,
    /// IdP name.
    pub before: String,
    /// Step by step.
    pub steps: Vec<StepTrace>,
    /// Bitbucket group names (empty: left out).
    pub after: Vec<String>,
}

/// Every record's way through the chain (previews).
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Traces {
    /// Users.
    pub users: Vec<UserTrace>,
    /// Groups.
    pub groups: Vec<GroupTrace>,
    /// What the run would warn about: a refused settings file (and the version used instead),
    /// records skipped with their errors, required groups missing.
    pub warnings: Vec<String>,
}

impl Traces {
    /// Keeps the records whose id or name contains `only` (case-insensitive), then at most
    /// `limit` users and `limit` groups; returns how many users and groups matched before the
    /// limit.
    pub fn narrow(&mut self, only: Option<&str>, limit: usize) -> (usize, usize) {
        if let Some(needle) = only.map(str::to_lowercase) {
            let hit =
                |id: &str, name: &str| id.to_lowercase().contains(&needle) || name.to_lowercase().contains(&needle);
            self.users.retain(|u| hit(&u.id, &u.before.username));
            self.groups.retain(|g| hit(&g.id, &g.before));
        }
        let matched = (self.users.len(), self.groups.len());
        self.users.truncate(limit);
        self.groups.truncate(limit);
        matched
    }
}

fn to_wit_user(u: MirrorUser) -> User {
    User {
        active: u.active && u.removed != Some(Removed::SoftDeleted),
        id: u.ext_id,
        username: u.username,
        email: u.email,
        display_name: u.display_name,
        attributes: u.attributes,
    }
}

fn transform_error(source: &SourceConfig, detail: impl std::fmt::Display) -> DirectoryError {
    DirectoryError::Transform {
        id: source.id.clone(),
        detail: detail.to_string(),
    }
}

/// A settings file as the JSON a transform receives: `.toml` is converted, `.json` checked.
pub fn read_settings_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let is_toml = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    let value: serde_json::Value = if is_toml {
        toml::from_str::<toml::Value>(&text)
            .map_err(|e| e.to_string())
            .and_then(|v| serde_json::to_value(v).map_err(|e| e.to_string()))?
    } else {
        serde_json::from_str(&text).map_err(|e| format!("line {}, column {}: {e}", e.line(), e.column()))?
    };
    Ok(value.to_string())
}

/// Whether the transform behind `job` accepts `settings`: it maps an empty batch of users and
/// one of groups with them, so a mapping that does not parse is refused with its own error.
pub async fn accepts(job: &mut Job, settings: &str) -> Result<(), String> {
    job.map_users(settings, Vec::new()).await.map_err(|e| e.to_string())?;
    job.map_groups(settings, &[])
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The settings step `i` runs with: inline ones as written; a file's current version once the
/// transform accepts it, else the version last accepted (with a warning), else an error.
async fn step_settings(
    ctx: &ChainContext<'_>,
    source: &SourceConfig,
    i: usize,
    step: &TransformConfig,
    job: &mut Job,
    warnings: &mut Vec<String>,
) -> Result<String, DirectoryError> {
    let Some(file) = &step.settings_file else {
        return Ok(step.settings.to_string());
    };
    let path = ctx.base_dir.join(file);
    let shown = path.display().to_string();
    let fresh = match read_settings_file(&path) {
        Ok(settings) => accepts(job, &settings).await.map(|()| settings),
        Err(e) => Err(e),
    };
    match fresh {
        Ok(settings) => {
            if ctx.remember == Remember::Accepted {
                let sha = hex::encode(Sha256::digest(settings.as_bytes()));
                ctx.store
                    .accept_settings(&source.id, i, &step.plugin, Some(&shown), &settings, &sha)?;
            }
            Ok(settings)
        }
        Err(why) => match ctx.store.accepted_settings(&source.id, i, &step.plugin)? {
            Some(previous) => {
                let when = std::time::UNIX_EPOCH + std::time::Duration::from_millis(previous.accepted_at.max(0) as u64);
                let msg = format!(
                    "source '{}': {shown} was refused ({why}); step {} ({}) keeps the version accepted on {} (sha256 {})",
                    source.id,
                    i + 1,
                    step.plugin,
                    httpdate::fmt_http_date(when),
                    previous.sha256.get(..12).unwrap_or(&previous.sha256),
                );
                tracing::warn!("{msg}");
                warnings.push(msg);
                Ok(previous.settings)
            }
            None => Err(transform_error(
                source,
                format!(
                    "{shown} was refused ({why}), and no earlier version of it was ever accepted; fix the file and run again"
                ),
            )),
        },
    }
}

/// The ids of users in at least one of `required` groups (by name, nested groups included).
fn required_members(
    source: &SourceConfig,
    groups: &[MirrorGroup],
    memberships: &[MirrorMembership],
    warnings: &mut Vec<String>,
) -> Option<HashSet<String>> {
    if source.required_groups.is_empty() {
        return None;
    }
    let wanted: Vec<&MirrorGroup> = groups
        .iter()
        .filter(|g| source.required_groups.iter().any(|r| r.eq_ignore_ascii_case(&g.name)))
        .collect();
    for r in &source.required_groups {
        if !wanted.iter().any(|g| g.name.eq_ignore_ascii_case(r)) {
            warnings.push(format!(
                "source '{}': required group '{r}' is not in the source; nobody qualifies through it",
                source.id
            ));
        }
    }
    let (flat, _) = crate::merge::flatten(memberships);
    Some(
        wanted
            .iter()
            .filter_map(|g| flat.get(g.ext_id.as_str()))
            .flatten()
            .map(|u| u.to_string())
            .collect(),
    )
}

fn record_user_step(traces: &mut HashMap<String, UserTrace>, id: &str, step: StepTrace) {
    if let Some(t) = traces.get_mut(id) {
        t.steps.push(step);
    }
}

/// Runs the source's chain over its mirror.
pub async fn run_chain(
    ctx: &ChainContext<'_>,
    source: &SourceConfig,
    users: Vec<MirrorUser>,
    groups: Vec<MirrorGroup>,
    memberships: Vec<MirrorMembership>,
) -> Result<Transformed, DirectoryError> {
    run_chain_traced(ctx, source, users, groups, memberships, Trace::Off)
        .await
        .map(|(t, _)| t)
}

/// Runs the source's chain; with [`Trace::On`], also every step's outcome for every record.
pub async fn run_chain_traced(
    ctx: &ChainContext<'_>,
    source: &SourceConfig,
    users: Vec<MirrorUser>,
    groups: Vec<MirrorGroup>,
    memberships: Vec<MirrorMembership>,
    trace: Trace,
) -> Result<(Transformed, Traces), DirectoryError> {
    let trace = trace == Trace::On;
    let mut warnings = Vec::new();
    let mut user_traces: HashMap<String, UserTrace> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let required = required_members(source, &groups, &memberships, &mut warnings);
    let mut current: Vec<User> = Vec::with_capacity(users.len());
    let mut left_out = 0usize;
    for u in users.into_iter().map(to_wit_user) {
        let admitted = required.as_ref().is_none_or(|r| r.contains(&u.id));
        if trace {
            order.push(u.id.clone());
            let mut t = UserTrace {
                id: u.id.clone(),
                before: UserView::from(&u),
                steps: Vec::new(),
                after: None,
            };
            if !admitted {
                t.steps.push(StepTrace {
                    plugin: "required_groups".into(),
                    outcome: "dropped".into(),
                    user: None,
                    groups: None,
                    reason: Some(format!(
                        "not a member of any required group ({})",
                        source.required_groups.join(", ")
                    )),
                    error: None,
                });
            }
            user_traces.insert(u.id.clone(), t);
        }
        if admitted {
            current.push(u);
        } else {
            left_out += 1;
        }
    }
    if left_out > 0 {
        warnings.push(format!(
            "source '{}': {left_out} user(s) left out: not members of the required groups ({})",
            source.id,
            source.required_groups.join(", ")
        ));
    }
    let mut group_traces: Vec<GroupTrace> = Vec::new();
    let mut unmapped: Vec<String> = Vec::new();
    let mut current_groups: Vec<(String, String, Vec<Group>)> = groups
        .into_iter()
        .map(|g| {
            if trace {
                group_traces.push(GroupTrace {
                    id: g.ext_id.clone(),
                    before: g.name.clone(),
                    steps: Vec::new(),
                    after: Vec::new(),
                });
            }
            let wit = Group {
                id: g.ext_id.clone(),
                name: g.name.clone(),
                description: g.description,
                attributes: g.attributes,
            };
            (g.ext_id, g.name, vec![wit])
        })
        .collect();
    for (i, step) in source.transforms.iter().enumerate() {
        let mut job = ctx
            .runtime
            .job(&step.plugin, step.limits.clone(), SourceAccess::none())
            .await
            .map_err(|e| transform_error(source, e))?;
        let settings = step_settings(ctx, source, i, step, &mut job, &mut warnings).await?;
        let mut next = Vec::with_capacity(current.len());
        let mut pending = current.into_iter();
        loop {
            let batch: Vec<User> = pending.by_ref().take(BATCH).collect();
            if batch.is_empty() {
                break;
            }
            let outcomes = job
                .map_users(&settings, batch)
                .await
                .map_err(|e| transform_error(source, e))?;
            for outcome in outcomes {
                if trace {
                    let (kind, id, view) = match &outcome {
                        StepOutcome::Kept { user, .. } => ("kept", &user.id, Some(UserView::from(user))),
                        StepOutcome::Dropped { input, .. } => ("dropped", &input.id, None),
                        StepOutcome::Failed { input, .. } => ("error", &input.id, None),
                    };
                    let st = StepTrace {
                        plugin: step.plugin.clone(),
                        outcome: kind.into(),
                        user: view,
                        groups: None,
                        reason: outcome.reason().map(str::to_owned),
                        error: outcome.error().map(str::to_owned),
                    };
                    record_user_step(&mut user_traces, id, st);
                }
                match outcome {
                    StepOutcome::Failed { input, error, .. } => {
                        warnings.push(format!(
                            "{}: user {} ({}) skipped by {}: {error}",
                            source.id, input.username, input.id, step.plugin
                        ));
                        unmapped.push(input.id);
                    }
                    StepOutcome::Kept { user, .. } => next.push(user),
                    StepOutcome::Dropped { .. } => {}
                }
            }
        }
        current = next;
        // Groups in batches too: every pending output group, remembering which input it came from.
        let pending: Vec<(usize, Group)> = current_groups
            .iter_mut()
            .enumerate()
            .flat_map(|(i, (_, _, outs))| std::mem::take(outs).into_iter().map(move |g| (i, g)))
            .collect();
        for batch in pending.chunks(BATCH) {
            let inputs: Vec<Group> = batch.iter().map(|(_, g)| g.clone()).collect();
            let mapped = job
                .map_groups(&settings, &inputs)
                .await
                .map_err(|e| transform_error(source, e))?;
            for ((gi, input), o) in batch.iter().zip(mapped) {
                if trace {
                    let outcome = match (&o.error, o.groups.is_empty()) {
                        (Some(_), _) => "error",
                        (None, true) => "dropped",
                        (None, false) => "kept",
                    };
                    group_traces[*gi].steps.push(StepTrace {
                        plugin: step.plugin.clone(),
                        outcome: outcome.into(),
                        user: None,
                        groups: Some(o.groups.iter().map(|g| g.name.clone()).collect()),
                        reason: o.reason.clone(),
                        error: o.error.clone(),
                    });
                }
                match o.error {
                    Some(err) => warnings.push(format!(
                        "{}: group {} ({}) skipped by {}: {err}",
                        source.id, input.name, input.id, step.plugin
                    )),
                    None => current_groups[*gi].2.extend(o.groups),
                }
            }
        }
    }
    if trace {
        for u in &current {
            if let Some(t) = user_traces.get_mut(&u.id) {
                t.after = Some(UserView::from(u));
            }
        }
        for (t, (_, _, outs)) in group_traces.iter_mut().zip(&current_groups) {
            t.after = outs.iter().map(|g| g.name.clone()).collect();
        }
    }
    let users = current
        .into_iter()
        .map(|u| MappedUser {
            ext_id: u.id,
            username: u.username,
            email: u.email,
            display_name: u.display_name,
            active: u.active,
        })
        .collect();
    let groups = current_groups
        .into_iter()
        .map(|(id, name, outs)| (id, (name, outs.into_iter().map(|g| g.name).collect())))
        .collect();
    let traces = Traces {
        users: order.into_iter().filter_map(|id| user_traces.remove(&id)).collect(),
        groups: group_traces,
        warnings: if trace { warnings.clone() } else { Vec::new() },
    };
    Ok((
        Transformed {
            users,
            groups,
            memberships,
            warnings,
            unmapped,
        },
        traces,
    ))
}

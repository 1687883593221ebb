//! One job: a fresh `Store` and instance of one plugin version, with its limits. A connector
//! job lives for a whole fetch (its token cache lives in the instance); a transform job for a
//! run's batches. After a trap the instance is never entered again.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, StoreLimitsBuilder, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtxBuilder};

use crate::bindings::v0_1 as wit;
use crate::bindings::v0_1::connector::ConnectorPlugin;
use crate::bindings::v0_1::connector_credentials::ConnectorPluginCredentials;
use crate::bindings::v0_1::transform::TransformPlugin;
use crate::bindings::v0_1::transform_packed::TransformPluginPacked;
use crate::error::{JobError, JobFailure};
use crate::limits::Limits;
use crate::net::SourceAccess;
use crate::state::{HostState, STDERR_CAPACITY};
use crate::types::{Group, GroupOutcome, Membership, Page, PasswordCheck, PluginInfo, Removal, User, UserOutcome};
use crate::{LoadedPlugin, Prepared};
use roster_wire as wire;

/// Traps counted since the metrics last looked, by (plugin, kind): a plugin that is stopped is
/// news for monitoring even when the run goes on. Counts, not a log, so an unscraped server
/// holds at most one entry per plugin and kind.
static TRAPS: std::sync::Mutex<std::collections::BTreeMap<(String, &'static str), u64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// The traps counted since the last call: ((plugin name, deadline | memory | panic | other), n).
pub fn take_traps() -> Vec<((String, &'static str), u64)> {
    std::mem::take(&mut *TRAPS.lock().unwrap_or_else(|p| p.into_inner()))
        .into_iter()
        .collect()
}

/// Which packed function to call.
enum Packed {
    Users,
    Groups,
}

roster_wire::conversions!(User, Group, UserOutcome, GroupOutcome);

/// After the deadline, how long the host waits for a call stuck in host I/O before dropping it.
const DEADLINE_GRACE: Duration = Duration::from_millis(50);

/// What a call into the guest can end with: a value, the guest's error, a trap, or the deadline.
type CallOutcome<T> = Result<wasmtime::Result<Result<T, wit::GuestError>>, tokio::time::error::Elapsed>;

/// What one transform step made of a user it was given ([`Job::map_users`]).
#[derive(Debug, Clone)]
pub enum StepOutcome {
    /// Kept as `user` (with the input's id).
    Kept {
        /// The user as the transform left it.
        user: User,
        /// Which rule decided.
        reason: Option<String>,
    },
    /// Filtered out; the input given back.
    Dropped {
        /// The user as it was sent.
        input: User,
        /// Why.
        reason: Option<String>,
    },
    /// The transform could not evaluate this user; the input given back.
    Failed {
        /// The user as it was sent.
        input: User,
        /// Why.
        error: String,
        /// A reason the transform gave as well, if any.
        reason: Option<String>,
    },
}

/// The user a transform's answer keeps, as it wrote it.
enum Answer<'a> {
    /// Every field given.
    Whole(User),
    /// Changes to the input user (packed answers only).
    Patch(wire::Patch<'a>),
}

impl StepOutcome {
    /// What became of `input`, whichever way the answer crossed: an error wins over a user, as
    /// the contract says, and a kept user keeps the input's id.
    fn settle(input: User, kept: Option<Answer<'_>>, reason: Option<String>, error: Option<String>) -> StepOutcome {
        match (kept, error) {
            (_, Some(error)) => StepOutcome::Failed { input, error, reason },
            (None, None) => StepOutcome::Dropped { input, reason },
            (Some(Answer::Whole(mut user)), None) => {
                user.id = input.id;
                StepOutcome::Kept { user, reason }
            }
            (Some(Answer::Patch(p)), None) => {
                let mut user = input;
                patch_user(&mut user, &p);
                StepOutcome::Kept { user, reason }
            }
        }
    }

    /// The kept user, if kept.
    pub fn user(&self) -> Option<&User> {
        match self {
            StepOutcome::Kept { user, .. } => Some(user),
            _ => None,
        }
    }

    /// Which rule decided.
    pub fn reason(&self) -> Option<&str> {
        match self {
            StepOutcome::Kept { reason, .. }
            | StepOutcome::Dropped { reason, .. }
            | StepOutcome::Failed { reason, .. } => reason.as_deref(),
        }
    }

    /// Why the user could not be evaluated, if it could not.
    pub fn error(&self) -> Option<&str> {
        match self {
            StepOutcome::Failed { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Reads a packed answer to `users` (its count already checked): each kept user is its input
/// record with the answer's patch applied, or rebuilt from a whole user the transform sent.
pub fn read_packed_user_outcomes(
    mut r: wire::Reader<'_>,
    users: Vec<User>,
) -> Result<Vec<StepOutcome>, wire::DecodeError> {
    let mut out = Vec::with_capacity(users.len());
    for input in users {
        let o = r.user_outcome_view()?;
        let kept = o.user.map(|kept| match kept {
            wire::KeptUser::Whole(v) => Answer::Whole(user(wire::User::from(&v))),
            wire::KeptUser::Patch(p) => Answer::Patch(p),
        });
        let (reason, error) = (o.reason.map(str::to_owned), o.error.map(str::to_owned));
        out.push(StepOutcome::settle(input, kept, reason, error));
    }
    r.end()?;
    Ok(out)
}

/// Transforms see a clock frozen at the Unix epoch: their output depends on their input only.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// The "random" bytes transforms see: the same every time (language runtimes seed hash tables
/// from them, which must not make a transform's output vary).
fn fixed_random() -> wasmtime_wasi::Deterministic {
    wasmtime_wasi::Deterministic::new((0u8..=255).map(|b| b.wrapping_mul(167).wrapping_add(13)).collect())
}

/// The instance's export handles; `Arc` so a call can hold them while borrowing the store.
enum Instance {
    /// The connector's functions, and `credentials` when it exports them.
    Connector(Arc<ConnectorPlugin>, Option<Arc<ConnectorPluginCredentials>>),
    /// The record-by-record functions, and the packed ones when the transform exports them.
    Transform(Arc<TransformPlugin>, Option<Arc<TransformPluginPacked>>),
}

/// A running instance of a plugin.
pub struct Job {
    plugin: Arc<LoadedPlugin>,
    store: Store<HostState>,
    instance: Instance,
    poisoned: bool,
    /// Calls go packed when the transform can take them.
    use_packed: bool,
    _permit: OwnedSemaphorePermit,
}

impl Job {
    pub(crate) async fn start(
        plugin: Arc<LoadedPlugin>,
        limits: Limits,
        access: Arc<SourceAccess>,
        permit: OwnedSemaphorePermit,
        engine: &wasmtime::Engine,
    ) -> Result<Job, JobError> {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stderr(stderr.clone());
        if matches!(plugin.prepared, Prepared::Transform { .. }) {
            // Pure: the same input gives the same output, in a preview as in a run.
            wasi.wall_clock(FrozenClock)
                .monotonic_clock(FrozenClock)
                .secure_random(fixed_random())
                .insecure_random(fixed_random())
                .insecure_random_seed(0);
        } else if let Some(dir) = access.files() {
            wasi.preopened_dir(dir, "/data", wasmtime_wasi::FsPerms::ReadOnly)
                .map_err(|e| JobError {
                    plugin: Box::new(plugin.label.clone()),
                    failure: JobFailure::Start(format!("cannot open the source's files folder {}: {e}", dir.display())),
                })?;
        }
        let state = HostState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            store_limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes())
                .instances(64)
                .tables(64)
                .memories(16)
                .trap_on_grow_failure(true)
                .build(),
            limits,
            deadline: Instant::now(),
            access,
            plugin: Arc::from(format!("{} {}", plugin.label.name, plugin.label.version)),
            stderr,
            log_lines: 0,
        };
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.store_limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                // Not plain `Yield`: tokio's LIFO slot would re-poll us at once (wasmtime#10667).
                Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())))
            }
        });
        let timeout = store.data().limits.call_timeout();
        store.data_mut().deadline = Instant::now() + timeout;
        let instance = match &plugin.prepared {
            Prepared::Connector { pre, credentials } => match pre.instance_pre().instantiate_async(&mut store).await {
                Ok(instance) => ConnectorPlugin::new(&mut store, &instance).and_then(|base| {
                    let credentials = match credentials {
                        true => Some(Arc::new(ConnectorPluginCredentials::new(&mut store, &instance)?)),
                        false => None,
                    };
                    Ok(Instance::Connector(Arc::new(base), credentials))
                }),
                Err(e) => Err(e),
            },
            Prepared::Transform { pre, packed } => match pre.instance_pre().instantiate_async(&mut store).await {
                Ok(instance) => TransformPlugin::new(&mut store, &instance).and_then(|base| {
                    let packed = match packed {
                        true => Some(Arc::new(TransformPluginPacked::new(&mut store, &instance)?)),
                        false => None,
                    };
                    Ok(Instance::Transform(Arc::new(base), packed))
                }),
                Err(e) => Err(e),
            },
        };
        let instance = instance.map_err(|e| JobError {
            plugin: Box::new(plugin.label.clone()),
            failure: JobFailure::Start(crate::loader::root_cause(&e)),
        })?;
        Ok(Job {
            plugin,
            store,
            instance,
            poisoned: false,
            use_packed: true,
            _permit: permit,
        })
    }

    /// The plugin version this job runs on.
    pub fn plugin(&self) -> &LoadedPlugin {
        &self.plugin
    }

    fn fail(&self, failure: JobFailure) -> JobError {
        let kind = match &failure {
            JobFailure::Deadline(_) => Some("deadline"),
            JobFailure::Memory(_) => Some("memory"),
            JobFailure::Panic(_) => Some("panic"),
            JobFailure::Trap { .. } => Some("other"),
            _ => None,
        };
        if let Some(kind) = kind {
            *TRAPS
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry((self.plugin.label.name.clone(), kind))
                .or_default() += 1;
        }
        JobError {
            plugin: Box::new(self.plugin.label.clone()),
            failure,
        }
    }

    fn connector(&self) -> Result<&Arc<ConnectorPlugin>, JobError> {
        match &self.instance {
            Instance::Connector(c, _) => Ok(c),
            Instance::Transform(..) => Err(self.fail(JobFailure::WrongWorld {
                actual: "transform",
                wanted: "connector",
            })),
        }
    }

    fn transform(&self) -> Result<&Arc<TransformPlugin>, JobError> {
        match &self.instance {
            Instance::Transform(t, _) => Ok(t),
            Instance::Connector(..) => Err(self.fail(JobFailure::WrongWorld {
                actual: "connector",
                wanted: "transform",
            })),
        }
    }

    /// Arms the deadline for a call; refuses to enter an instance that trapped before.
    fn begin(&mut self) -> Result<Duration, JobError> {
        if self.poisoned {
            return Err(self.fail(JobFailure::Start(
                "this job's instance crashed earlier; start a new job".into(),
            )));
        }
        let timeout = self.store.data().limits.call_timeout();
        self.store.data_mut().deadline = Instant::now() + timeout;
        Ok(timeout)
    }

    /// Turns a call's outcome into a value or a plain-words failure.
    fn finish<T>(&mut self, outcome: CallOutcome<T>, timeout: Duration) -> Result<T, JobError> {
        let failure = match outcome {
            Ok(Ok(Ok(value))) => return Ok(value),
            Ok(Ok(Err(guest))) => JobFailure::Guest(guest.into()),
            Ok(Err(trap)) => {
                self.poisoned = true;
                classify_trap(&trap, &self.store)
            }
            Err(_elapsed) => {
                self.poisoned = true;
                JobFailure::Deadline(timeout)
            }
        };
        Err(self.fail(failure))
    }

    /// `describe()`.
    pub async fn describe(&mut self) -> Result<PluginInfo, JobError> {
        let timeout = self.begin()?;
        let out = match &self.instance {
            Instance::Connector(c, _) => {
                let c = c.clone();
                tokio::time::timeout(
                    timeout + DEADLINE_GRACE,
                    c.roster_plugin_connector().call_describe(&mut self.store),
                )
                .await
            }
            Instance::Transform(t, _) => {
                let t = t.clone();
                tokio::time::timeout(
                    timeout + DEADLINE_GRACE,
                    t.roster_plugin_transform().call_describe(&mut self.store),
                )
                .await
            }
        };
        self.finish(out.map(|r| r.map(Ok)), timeout).map(PluginInfo::from)
    }

    /// A connector's `check(settings)`.
    pub async fn check(&mut self, settings: &str) -> Result<(), JobError> {
        let c = self.connector()?.clone();
        let timeout = self.begin()?;
        let out = tokio::time::timeout(
            timeout + DEADLINE_GRACE,
            c.roster_plugin_connector().call_check(&mut self.store, settings),
        )
        .await;
        self.finish(out, timeout)
    }

    /// A connector's `fetch(settings, cursor, delta)`: one page.
    pub async fn fetch(&mut self, settings: &str, cursor: Option<&str>, delta: Option<&str>) -> Result<Page, JobError> {
        let c = self.connector()?.clone();
        let timeout = self.begin()?;
        let call = c
            .roster_plugin_connector()
            .call_fetch(&mut self.store, settings, cursor, delta);
        let out = tokio::time::timeout(timeout + DEADLINE_GRACE, call).await;
        let page = Page::from(self.finish(out, timeout)?);
        self.check_output(page_size(&page))?;
        Ok(page)
    }

    /// A connector's `password-check-for(settings, person)` (WIT 0.1.2): where the password of
    /// the person with this source's id `id`, served as `username`, is checked. `Ok(None)` when
    /// the connector does not export `credentials` (built before 0.1.2, or a source whose
    /// people log in elsewhere) as when it answers that it cannot check this person.
    pub async fn password_check(
        &mut self,
        settings: &str,
        id: &str,
        username: &str,
    ) -> Result<Option<PasswordCheck>, JobError> {
        self.connector()?;
        let Instance::Connector(_, Some(c)) = &self.instance else {
            return Ok(None);
        };
        let c = c.clone();
        let timeout = self.begin()?;
        let person = crate::bindings::v0_1::connector_credentials::exports::roster::plugin::credentials::Person {
            id: id.to_string(),
            username: username.to_string(),
        };
        let call = c
            .roster_plugin_credentials()
            .call_password_check_for(&mut self.store, settings, &person);
        let out = tokio::time::timeout(timeout + DEADLINE_GRACE, call).await;
        Ok(self.finish(out, timeout)?.map(PasswordCheck::from))
    }

    /// A transform's `map-users`: what became of each user, in order. Packed when the
    /// transform exports `transform-packed`, record by record otherwise; the same outcomes either
    /// way. Takes the users by value: a kept user is the input record with the transform's
    /// changes applied (a packed transform sends only those), and it keeps the input's id.
    pub async fn map_users(&mut self, settings: &str, users: Vec<User>) -> Result<Vec<StepOutcome>, JobError> {
        match self.packed()? {
            Some(p) => {
                let batch = wire::encode_users(users.iter().map(user_ref));
                let bytes = self.call_packed(&p, settings, batch, Packed::Users).await?;
                let unreadable = |job: &Job, e| job.fail(JobFailure::Contract(format!("map-users-packed: {e}")));
                let r = wire::Reader::new(&bytes).map_err(|e| unreadable(self, e))?;
                if r.count() != users.len() {
                    return Err(self.outcome_count("map-users-packed", r.count(), users.len()));
                }
                let out = read_packed_user_outcomes(r, users).map_err(|e| unreadable(self, e))?;
                // The users as patched count against the output cap as whole ones would: the
                // same batch passes or fails it either way.
                self.check_output(out.iter().map(step_size).sum())?;
                Ok(out)
            }
            None => {
                let t = self.transform()?.clone();
                let timeout = self.begin()?;
                // Moved into the generated type and back after the call: no copies.
                let sent: Vec<wit::User> = users.into_iter().map(wit::User::from).collect();
                let call = t
                    .roster_plugin_transform()
                    .call_map_users(&mut self.store, settings, &sent);
                let out = tokio::time::timeout(timeout + DEADLINE_GRACE, call).await;
                let users: Vec<User> = sent.into_iter().map(User::from).collect();
                let out: Vec<UserOutcome> = self.finish(out, timeout)?.into_iter().map(UserOutcome::from).collect();
                self.check_output(
                    out.iter()
                        .map(|o| o.user.as_ref().map_or(0, user_size) + note_size(&o.reason, &o.error))
                        .sum(),
                )?;
                if out.len() != users.len() {
                    return Err(self.outcome_count("map-users", out.len(), users.len()));
                }
                Ok(users
                    .into_iter()
                    .zip(out)
                    .map(|(input, o)| StepOutcome::settle(input, o.user.map(Answer::Whole), o.reason, o.error))
                    .collect())
            }
        }
    }

    fn outcome_count(&self, function: &str, got: usize, sent: usize) -> JobError {
        self.fail(JobFailure::Contract(format!(
            "{function} returned {got} outcomes for {sent} users"
        )))
    }

    /// A transform's `map-groups`: one outcome per input, in order (packed when it can be).
    pub async fn map_groups(&mut self, settings: &str, groups: &[Group]) -> Result<Vec<GroupOutcome>, JobError> {
        let out = match self.packed()? {
            Some(p) => {
                let batch = wire::encode_groups(groups.iter().map(group_ref));
                let bytes = self.call_packed(&p, settings, batch, Packed::Groups).await?;
                wire::Reader::new(&bytes)
                    .and_then(|r| r.all(|r| r.group_outcome().map(group_outcome)))
                    .map_err(|e| self.fail(JobFailure::Contract(format!("map-groups-packed: {e}"))))?
            }
            None => {
                let t = self.transform()?.clone();
                let timeout = self.begin()?;
                let sent: Vec<wit::Group> = groups.iter().cloned().map(wit::Group::from).collect();
                let call = t
                    .roster_plugin_transform()
                    .call_map_groups(&mut self.store, settings, &sent);
                let out = tokio::time::timeout(timeout + DEADLINE_GRACE, call).await;
                self.finish(out, timeout)?.into_iter().map(GroupOutcome::from).collect()
            }
        };
        self.check_output(
            out.iter()
                .map(|o| o.groups.iter().map(group_size).sum::<usize>() + note_size(&o.reason, &o.error))
                .sum(),
        )?;
        if out.len() != groups.len() {
            return Err(self.fail(JobFailure::Contract(format!(
                "map-groups returned {} outcomes for {} groups",
                out.len(),
                groups.len()
            ))));
        }
        Ok(out)
    }

    /// Whether this transform's batches cross packed (it exports `transform-packed`).
    pub fn is_packed(&self) -> bool {
        self.use_packed && matches!(&self.instance, Instance::Transform(_, Some(_)))
    }

    /// Calls the record-by-record functions even when packed ones exist: to compare both, or
    /// to rule the packed path out when diagnosing a transform.
    pub fn prefer_records(&mut self) {
        self.use_packed = false;
    }

    /// The packed functions, when this transform has them and they are wanted.
    fn packed(&self) -> Result<Option<Arc<TransformPluginPacked>>, JobError> {
        self.transform()?;
        Ok(match &self.instance {
            Instance::Transform(_, p) if self.use_packed => p.clone(),
            _ => None,
        })
    }

    /// One packed call; the answer's size is capped like any output before it is decoded.
    async fn call_packed(
        &mut self,
        p: &TransformPluginPacked,
        settings: &str,
        batch: Vec<u8>,
        which: Packed,
    ) -> Result<Vec<u8>, JobError> {
        let timeout = self.begin()?;
        let f = p.roster_plugin_transform_packed();
        let out = match which {
            Packed::Users => {
                tokio::time::timeout(
                    timeout + DEADLINE_GRACE,
                    f.call_map_users_packed(&mut self.store, settings, &batch),
                )
                .await
            }
            Packed::Groups => {
                tokio::time::timeout(
                    timeout + DEADLINE_GRACE,
                    f.call_map_groups_packed(&mut self.store, settings, &batch),
                )
                .await
            }
        };
        let bytes = self.finish(out, timeout)?;
        self.check_output(bytes.len())?;
        Ok(bytes)
    }

    fn check_output(&self, size: usize) -> Result<(), JobError> {
        let cap = self.store.data().limits.max_output_bytes;
        if size > cap {
            return Err(self.fail(JobFailure::OutputTooLarge { size, cap }));
        }
        Ok(())
    }
}

fn classify_trap(err: &wasmtime::Error, store: &Store<HostState>) -> JobFailure {
    let state = store.data();
    let chain = crate::loader::root_cause(err);
    if chain.contains("forcing trap when growing memory") || chain.contains("maximum size exceeded") {
        return JobFailure::Memory(state.limits.memory_mib);
    }
    let stderr = String::from_utf8_lossy(&state.stderr.contents()).trim().to_string();
    let stderr = state.access.secrets().redact_str(&stderr);
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => JobFailure::Deadline(state.limits.call_timeout()),
        Some(Trap::UnreachableCodeReached) if !stderr.is_empty() => JobFailure::Panic(panic_message(&stderr)),
        Some(Trap::UnreachableCodeReached) => {
            JobFailure::Panic("the plugin aborted (reached `unreachable`) without a message".into())
        }
        Some(trap) => JobFailure::Trap {
            kind: trap.to_string(),
            detail: tail(&stderr),
        },
        None => JobFailure::Trap {
            kind: chain,
            detail: tail(&stderr),
        },
    }
}

/// Rust prints `thread '<unnamed>' panicked at src/x.rs:1:2:\nmessage`; keep the useful part,
/// and what the guest wrote before it (a Python or JavaScript runtime prints the exception and
/// its traceback there, then panics with a generic message).
fn panic_message(stderr: &str) -> String {
    match stderr.find("panicked at ") {
        Some(i) => {
            let panic = stderr[i + "panicked at ".len()..]
                .lines()
                .take(4)
                .collect::<Vec<_>>()
                .join(" ");
            let before = stderr[..i].rsplit_once('\n').map_or("", |(b, _)| b).trim();
            if before.is_empty() {
                panic
            } else {
                let lines: Vec<&str> = before.lines().collect();
                format!(
                    "{panic}; the plugin wrote: {}",
                    lines[lines.len().saturating_sub(8)..].join(" | ")
                )
            }
        }
        None => tail(stderr).trim_start_matches(": ").to_string(),
    }
}

fn tail(stderr: &str) -> String {
    if stderr.is_empty() {
        return String::new();
    }
    let lines: Vec<&str> = stderr.lines().collect();
    format!(": {}", lines[lines.len().saturating_sub(5)..].join(" | "))
}

/// What a record-by-record answer would have held for this outcome ([`Job::map_users`]).
fn step_size(o: &StepOutcome) -> usize {
    let notes = o.reason().map_or(0, str::len) + o.error().map_or(0, str::len);
    notes + o.user().map_or(0, user_size)
}

fn note_size(reason: &Option<String>, error: &Option<String>) -> usize {
    reason.as_ref().map_or(0, String::len) + error.as_ref().map_or(0, String::len)
}

fn attrs_size(a: &[(String, String)]) -> usize {
    a.iter().map(|(k, v)| k.len() + v.len()).sum()
}

fn user_size(u: &User) -> usize {
    u.id.len()
        + u.username.len()
        + u.email.as_ref().map_or(0, String::len)
        + u.display_name.as_ref().map_or(0, String::len)
        + attrs_size(&u.attributes)
}

fn group_size(g: &Group) -> usize {
    g.id.len() + g.name.len() + g.description.as_ref().map_or(0, String::len) + attrs_size(&g.attributes)
}

fn page_size(p: &Page) -> usize {
    let m = |v: &[Membership]| {
        v.iter()
            .map(|m| m.group_id.len() + m.member_id.len() + 1)
            .sum::<usize>()
    };
    let r = |v: &[Removal]| v.iter().map(|r| r.id.len() + 1).sum::<usize>();
    p.users.iter().map(user_size).sum::<usize>()
        + p.groups.iter().map(group_size).sum::<usize>()
        + m(&p.memberships)
        + m(&p.removed_memberships)
        + r(&p.removed_users)
        + r(&p.removed_groups)
        + p.next.as_ref().map_or(0, String::len)
        + p.delta_token.as_ref().map_or(0, String::len)
}

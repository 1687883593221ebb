//! The directory: every source fetched (`fetch`), run through its transform chain
//! (`transform`) and merged by priority (`merge`) into the desired state — persons, groups and
//! flattened memberships — which is kept in the store (`roster_store::Store::save_desired`).
//!
//! It needs no target: checking, fetching, previewing and `why` work before any target is
//! defined, and whatever reads the desired state (the engine, later a Crowd-compatible server
//! or SCIM) reads the same one. It knows identity providers only as plugins.

pub mod config;
pub mod fetch;
pub mod merge;
mod sample;
pub mod transform;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use roster_model::{Desired, Members, Progress};
use roster_runtime::secrets::Secret;
use roster_runtime::{Runtime, SourceAccess};
use roster_store::{MirrorGroup, MirrorMembership, MirrorUser, SourceRow, Store, StoreError, now_ms};
use serde::{Deserialize, Serialize};

pub use config::{Feed, PushConfig, PushProtocol, SecretConfig, SourceConfig, TransformConfig, valid_id};
pub use fetch::{FetchMode, FetchReport};
pub use sample::Sample;

/// Why the directory could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A transform failed as a whole (not one record).
    #[error("source '{id}': transform failed: {detail}")]
    Transform {
        /// Source id.
        id: String,
        /// What failed.
        detail: String,
    },
    /// A source's configuration is unusable.
    #[error("{0}")]
    Config(String),
    /// What was asked for does not exist (a source, a user no source has).
    #[error("{0}")]
    NotFound(String),
}

/// What a source's connector said when asked whether it can work.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CheckReport {
    /// Source id.
    pub source: String,
    /// Its connector.
    pub plugin: String,
    /// The connector is satisfied.
    pub ok: bool,
    /// Otherwise, why not.
    pub error: Option<String>,
    /// How long the check took.
    pub ms: u64,
}

/// Which person to look for: an IdP id (optionally of one source) or a username.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct UserKey {
    /// The IdP's immutable id of the user.
    pub id: Option<String>,
    /// The username (after transforms, as in the target) or as the IdP reports it.
    pub username: Option<String>,
    /// Only this source (and only its fetch).
    pub source: Option<String>,
}

/// What checking a person's password came to ([`Directory::verify_password`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordOutcome {
    /// The source's directory accepted the password.
    Accepted {
        /// The source that checked it.
        source: String,
    },
    /// The source's directory refused it (wrong password), or it was empty.
    Refused {
        /// The source that checked it.
        source: String,
    },
    /// Right password, but expired or to be changed before use.
    Expired {
        /// The source that checked it.
        source: String,
    },
    /// The directory says the account is disabled or locked.
    Inactive {
        /// The source that checked it.
        source: String,
    },
    /// None of the person's sources can verify passwords (their people log in by single
    /// sign-on, or the connector does not export `credentials`).
    NoSource,
    /// The source that can verify the password could not be asked (its directory is
    /// unreachable, its settings are wrong): not a wrong password.
    Unavailable {
        /// The source.
        source: String,
        /// Why, for the log (no password in it).
        reason: String,
    },
}

/// Which sources a command means when it names none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Among {
    /// The enabled ones (runs, fetches).
    Enabled,
    /// Every one (checks).
    All,
}

/// A source's mirror: users, groups, memberships.
type MirrorRecords = (Vec<MirrorUser>, Vec<MirrorGroup>, Vec<MirrorMembership>);

fn ms(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

/// The directory of one configuration.
pub struct Directory {
    store: Arc<Store>,
    runtime: Runtime,
    /// In directory order (priority, then id).
    sources: Vec<SourceConfig>,
    base_dir: PathBuf,
    attribute_priority: BTreeMap<String, Vec<String>>,
    accesses: HashMap<String, Arc<SourceAccess>>,
}

impl Directory {
    /// The directory of `sources` (relative paths against `base_dir`). Stores roster.toml's
    /// sources (secrets sealed), forgets the ones the file no longer has, drops from each push
    /// source's mirror what no push made (`Store::scim_prune_unbacked`), and builds each
    /// source's host-side access. `attribute_priority` says which source wins an attribute.
    pub fn new(
        store: Arc<Store>,
        runtime: Runtime,
        sources: Vec<SourceConfig>,
        base_dir: &Path,
        attribute_priority: BTreeMap<String, Vec<String>>,
    ) -> Result<Directory, DirectoryError> {
        let mut accesses = HashMap::new();
        for s in &sources {
            // Sources created through the API are stored by the API, secrets included.
            if s.origin == roster_model::DefinedIn::File {
                let secrets = s.resolved_secrets(base_dir).map_err(DirectoryError::Config)?;
                let row = SourceRow {
                    id: s.id.clone(),
                    plugin: s.feed_label(),
                    priority: s.priority,
                    enabled: s.enabled,
                    config: s.stored(),
                    updated_at: now_ms(),
                    origin: "file".into(),
                };
                store.upsert_source(&row, &secrets)?;
            }
            let files = s.files.as_ref().map(|f| base_dir.join(f));
            let secrets: Vec<Secret> = store.source_secrets(&s.id)?;
            let access = SourceAccess::with_files(&s.id, s.network.clone(), secrets, s.budget, files)
                .map_err(|e| DirectoryError::Config(format!("source '{}': {e}", s.id)))?;
            accesses.insert(s.id.clone(), access);
            if let Feed::Push(_) = s.feed() {
                // A source that was pulled and is pushed to now (same id) keeps what its
                // fetches wrote, which the identity provider can neither see nor delete and no
                // fetch will drop: dropped here, so the next run plans their removal — under
                // the guard, which holds a mass one for an administrator to approve.
                let pruned = store.scim_prune_unbacked(&s.id)?;
                if !pruned.is_empty() {
                    tracing::warn!(
                        source = %s.id,
                        users = pruned.users,
                        groups = pruned.groups,
                        memberships = pruned.memberships,
                        "the push source's mirror held records no push made (read while it was pulled); they are dropped, and the next run plans their removal until the identity provider pushes them"
                    );
                }
            }
        }
        let from_file: Vec<String> = sources
            .iter()
            .filter(|s| s.origin == roster_model::DefinedIn::File)
            .map(|s| s.id.clone())
            .collect();
        store.retain_sources(&from_file)?;
        Ok(Directory {
            store,
            runtime,
            sources,
            base_dir: base_dir.to_path_buf(),
            attribute_priority,
            accesses,
        })
    }

    /// Every source, in directory order.
    pub fn sources(&self) -> &[SourceConfig] {
        &self.sources
    }

    /// The source with this id.
    pub fn source(&self, id: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.id == id)
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The plugin runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The ids of the sources `named` (all of `among` when none are); an unknown name is an
    /// error saying where sources are defined.
    pub fn wanted(&self, named: &[String], among: Among) -> Result<Vec<String>, DirectoryError> {
        let known: Vec<&SourceConfig> = self
            .sources
            .iter()
            .filter(|s| among == Among::All || s.enabled)
            .collect();
        for n in named {
            if !known.iter().any(|s| &s.id == n) {
                let enabled = if among == Among::Enabled { "enabled " } else { "" };
                return Err(DirectoryError::NotFound(format!(
                    "no {enabled}source named '{n}'; see the configuration's [[source]] entries"
                )));
            }
        }
        Ok(if named.is_empty() {
            known.iter().map(|s| s.id.clone()).collect()
        } else {
            named.to_vec()
        })
    }

    /// Asks each named source's connector whether it can work (credentials, permissions,
    /// scope): `Ok(())` or the connector's reason, with the time it took.
    pub async fn check(&self, named: &[String]) -> Result<Vec<CheckReport>, DirectoryError> {
        let wanted = self.wanted(named, Among::All)?;
        let mut out = Vec::new();
        for s in self.sources.iter().filter(|s| wanted.contains(&s.id)) {
            let t = Instant::now();
            let access = self.accesses[&s.id].clone();
            let result = match s.feed() {
                Feed::Pull(plugin) => match self.runtime.job(plugin, s.limits.clone(), access).await {
                    Ok(mut job) => job.check(&s.settings.to_string()).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                },
                // Nothing to ask: the source calls Roster. Whether it can is its token's business.
                Feed::Push(_) => Ok(()),
            };
            out.push(CheckReport {
                source: s.id.clone(),
                plugin: s.feed_label(),
                ok: result.is_ok(),
                error: result.err(),
                ms: ms(t),
            });
        }
        Ok(out)
    }

    /// Checks `password` for the person whose records (source id, the source's id of them) are
    /// `records`, served as `username`: the first enabled source, in priority order, that holds
    /// one of the records and whose connector says where the password is checked (WIT 0.1.2
    /// `credentials`: the `ldap` connector, a bind as the person's DN) decides. An empty
    /// password is refused here, before any source is asked.
    pub async fn verify_password(
        &self,
        records: &[roster_model::Record],
        username: &str,
        password: &str,
    ) -> PasswordOutcome {
        use roster_runtime::ldap::PasswordVerdict;
        use roster_runtime::types::PasswordCheck;
        for s in self.sources.iter().filter(|s| s.enabled) {
            let Some((_, id)) = records.iter().find(|(source, _)| *source == s.id) else {
                continue;
            };
            let Feed::Pull(plugin) = s.feed() else { continue };
            if !self.runtime.plugin(plugin).is_some_and(|p| p.verifies_passwords()) {
                continue;
            }
            if password.is_empty() {
                return PasswordOutcome::Refused { source: s.id.clone() };
            }
            let unavailable = |reason: String| PasswordOutcome::Unavailable {
                source: s.id.clone(),
                reason,
            };
            let access = self.accesses[&s.id].clone();
            let check = match self.runtime.job(plugin, s.limits.clone(), access.clone()).await {
                Ok(mut job) => job.password_check(&s.settings.to_string(), id, username).await,
                Err(e) => return unavailable(e.to_string()),
            };
            let bind = match check {
                Ok(Some(PasswordCheck::LdapBind(bind))) => bind,
                Ok(None) => continue,
                Err(e) => return unavailable(e.to_string()),
            };
            let deadline = tokio::time::Instant::now() + s.limits.call_timeout();
            let source = s.id.clone();
            return match access.verify_password(&bind, password, &s.limits, deadline).await {
                Ok(PasswordVerdict::Accepted) => PasswordOutcome::Accepted { source },
                Ok(PasswordVerdict::Refused) => PasswordOutcome::Refused { source },
                Ok(PasswordVerdict::Expired) => PasswordOutcome::Expired { source },
                Ok(PasswordVerdict::Inactive) => PasswordOutcome::Inactive { source },
                Err(e) => unavailable(e.to_string()),
            };
        }
        PasswordOutcome::NoSource
    }

    /// Fetches the sources `wanted` (ids, enabled ones) into their mirrors, staged under run
    /// `run_id`: one report per source. A fetch that does not complete leaves its mirror as it
    /// was.
    pub async fn fetch(
        &self,
        run_id: i64,
        wanted: &[String],
        mode: FetchMode,
        progress: &dyn Progress,
    ) -> Vec<FetchReport> {
        let mut reports = Vec::new();
        for s in self.sources.iter().filter(|s| s.enabled && wanted.contains(&s.id)) {
            let access = self.accesses[&s.id].clone();
            reports.push(fetch::fetch_source(&self.runtime, &self.store, run_id, s, access, mode, progress).await);
        }
        reports
    }

    fn chain_context(&self, remember: transform::Remember) -> transform::ChainContext<'_> {
        transform::ChainContext {
            runtime: &self.runtime,
            store: &self.store,
            base_dir: &self.base_dir,
            remember,
        }
    }

    /// A source's whole mirror as of one moment (one read transaction: SCIM pushes write while
    /// runs read), read on the blocking pool.
    async fn mirror(&self, source: &str) -> Result<MirrorRecords, DirectoryError> {
        let source = source.to_string();
        let read = self.store.blocking(move |store| store.mirror_snapshot(&source)).await?;
        Ok((read.users, read.groups, read.memberships))
    }

    /// Every enabled source's mirror through its transform chain.
    async fn transformed(&self) -> Result<Vec<merge::SourceInput<'_>>, DirectoryError> {
        let mut inputs = Vec::new();
        for s in self.sources.iter().filter(|s| s.enabled) {
            let (users, groups, memberships) = self.mirror(&s.id).await?;
            let data = transform::run_chain(
                &self.chain_context(transform::Remember::Accepted),
                s,
                users,
                groups,
                memberships,
            )
            .await?;
            inputs.push(merge::SourceInput { id: &s.id, data });
        }
        Ok(inputs)
    }

    /// The desired state from the mirrors as they stand: every enabled source through its
    /// transforms, merged; kept in the store for whatever reads it next. Times the stages into
    /// `stage_ms` (`transform`, `merge`).
    pub async fn desired(&self, stage_ms: &mut BTreeMap<String, u64>) -> Result<Desired, DirectoryError> {
        let t = Instant::now();
        let mut inputs = self.transformed().await?;
        stage_ms.insert("transform".into(), ms(t));
        let t = Instant::now();
        let desired = merge::desired(&mut inputs, &self.attribute_priority);
        drop(inputs);
        let desired = self
            .store
            .blocking(move |store| store.save_desired(&desired).map(|()| desired))
            .await?;
        stage_ms.insert("merge".into(), ms(t));
        Ok(desired)
    }

    /// Runs a source's transform chain over sample records, or over its mirror, and shows each
    /// record before, after every step (with the rule that decided) and at the end, with the
    /// warnings a run would give. Writes nothing.
    pub async fn preview(&self, source: &str, sample: Option<Sample>) -> Result<transform::Traces, DirectoryError> {
        let s = self.source(source).ok_or_else(|| {
            DirectoryError::Config(format!(
                "no source named '{source}'; see the configuration's [[source]] entries"
            ))
        })?;
        self.preview_of(s, sample).await
    }

    /// [`Directory::preview`] with `source` as given rather than as configured: a draft of a
    /// configured source's chain (the mapping editor's) over that source's mirror or `sample`.
    pub async fn preview_of(
        &self,
        source: &SourceConfig,
        sample: Option<Sample>,
    ) -> Result<transform::Traces, DirectoryError> {
        let (users, groups, memberships) = match sample {
            Some(sample) => (sample.users, sample.groups, sample.memberships),
            None => self.mirror(&source.id).await?,
        };
        // Read-only: a settings file the transform accepts now is not remembered as accepted.
        let ctx = self.chain_context(transform::Remember::Nothing);
        let (_, traces) =
            transform::run_chain_traced(&ctx, source, users, groups, memberships, transform::Trace::On).await?;
        Ok(traces)
    }

    /// Why `user` is (or is not) to be a member of `group`, from the mirrors as they stand.
    /// `default_groups` are the target's, when there is one.
    pub async fn why(&self, user: &str, group: &str, default_groups: &[String]) -> Result<String, DirectoryError> {
        let mut inputs = self.transformed().await?;
        let mut desired = merge::desired(&mut inputs, &self.attribute_priority);
        desired.add_to_every_active(default_groups);
        let key = merge::person_key(user);
        let Some(person) = desired.persons.get(&key) else {
            return Ok(format!("{user} is not in any source (after transforms)"));
        };
        let sources: Vec<&str> = person.records.iter().map(|(s, _)| s.as_str()).collect();
        if !desired.groups.get(group).is_some_and(|m| m.contains(key.as_str())) {
            return Ok(format!(
                "{user} ({}) is not a member of {group} in any source",
                sources.join(", ")
            ));
        }
        let how = merge::explain(&inputs, &desired, default_groups, group, &key)
            .unwrap_or_else(|| format!("member of {group} in {}", sources.join(", ")));
        let state = if person.active {
            ""
        } else {
            " — but the account is disabled in its source, so the membership is not applied"
        };
        Ok(format!("{user} is in {group}: {how}{state}"))
    }

    /// One person's desired state, computed from the records that may be theirs rather than
    /// the whole directory: records with the id, records whose username, email or attributes
    /// contain the name (then the username the transforms gave them, for their records in
    /// other sources), records already linked to them in `target`; every group and every
    /// group-in-group membership, so nesting, group rules and `required_groups` decide as in a
    /// full run. A person those records do not reveal (a mapping that invents names) is looked
    /// for in the whole directory. Returns the person's lower-case username and the desired
    /// state cut down to them, or `None` when no source has them.
    pub async fn desired_for(
        &self,
        key: &UserKey,
        target: &str,
        stage_ms: &mut BTreeMap<String, u64>,
    ) -> Result<Option<(String, Desired)>, DirectoryError> {
        let enabled: Vec<&SourceConfig> = self.sources.iter().filter(|s| s.enabled).collect();
        let mut needles: BTreeSet<String> = key
            .username
            .iter()
            .chain(key.id.iter())
            .map(|n| merge::person_key(n))
            .filter(|n| !n.is_empty())
            .collect();
        for _ in 0..2 {
            let records: Vec<(String, String)> = key
                .id
                .iter()
                .flat_map(|id| enabled.iter().map(move |s| (s.id.clone(), id.clone())))
                .collect();
            let names: Vec<String> = needles.iter().cloned().collect();
            let linked = self.store.identities_matching(target, &names, &records)?;
            let t = Instant::now();
            let mut inputs = Vec::new();
            for s in &enabled {
                let ids: Vec<String> = key
                    .id
                    .iter()
                    .cloned()
                    .chain(linked.iter().filter(|i| i.source == s.id).map(|i| i.ext_id.clone()))
                    .collect();
                // One read transaction, as `mirror`: a push may write meanwhile.
                let read = self.store.mirror_snapshot_matching(&s.id, &ids, &names)?;
                let data = transform::run_chain(
                    &self.chain_context(transform::Remember::Accepted),
                    s,
                    read.users,
                    read.groups,
                    read.memberships,
                )
                .await?;
                inputs.push(merge::SourceInput { id: &s.id, data });
            }
            *stage_ms.entry("transform".into()).or_default() += ms(t);
            let t = Instant::now();
            let desired = merge::desired(&mut inputs, &self.attribute_priority);
            *stage_ms.entry("merge".into()).or_default() += ms(t);
            let Some((person_key, found)) = restrict(&desired, key) else {
                break;
            };
            // Found by id or by a raw name: once more with the username the transforms gave,
            // which finds the person's records in the other sources.
            if needles.insert(person_key.clone()) {
                continue;
            }
            return Ok(Some((person_key, found)));
        }
        let t = Instant::now();
        let mut inputs = self.transformed().await?;
        *stage_ms.entry("transform".into()).or_default() += ms(t);
        let desired = merge::desired(&mut inputs, &self.attribute_priority);
        Ok(restrict(&desired, key))
    }
}

/// The desired state cut down to the person `key` names: that person, and each group with
/// that person alone. `None` when no source has them.
fn restrict(desired: &Desired, key: &UserKey) -> Option<(String, Desired)> {
    let wanted_id = key.id.as_deref();
    let wanted_name = key.username.as_deref().map(str::to_lowercase);
    let (person_key, person) = desired.persons.iter().find(|(k, p)| {
        let by_id = wanted_id.is_some_and(|id| {
            p.records
                .iter()
                .any(|(s, e)| e == id && key.source.as_deref().is_none_or(|want| want == s))
        });
        let by_name = wanted_name.as_deref().is_some_and(|n| *k == n);
        by_id || by_name
    })?;
    let mut out = Desired::default();
    let shared: Arc<str> = Arc::from(person_key.as_str());
    for (g, members) in &desired.groups {
        let set: &mut Members = out.groups.entry(g.clone()).or_default();
        if members.contains(person_key.as_str()) {
            set.insert(shared.clone());
        }
    }
    out.persons.insert(person_key.clone(), person.clone());
    Some((person_key.clone(), out))
}

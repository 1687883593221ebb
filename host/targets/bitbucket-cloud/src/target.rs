//! Bitbucket Cloud behind the engine's [`Target`] trait, and the `bitbucket-cloud` kind. The
//! configured mode decides the capabilities (they are static per target): without
//! `[target.scim]` the workspace is administered in Bitbucket (mode one, `read`/`apply` here),
//! with it at admin.atlassian.com (mode two, `crate::scim`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use roster_engine::{
    Accounts, AddMembers, CallBudget, CallCounts, Capabilities, Connection, Disable, Fields, Groups, Op, OpOutcome,
    Patience, Profiles, ReadScope, Rename, Target, TargetCheck, TargetConfig, TargetError, TargetKind, TargetState,
};
use roster_store::Store;

use crate::budget::Meter;
use crate::client::Client;
use crate::http::{Api, ApiConfig, Credential, REQUESTS};
use crate::scim::Scim;
use crate::settings::Settings;

/// The kind's name in configuration.
pub const KIND: &str = "bitbucket-cloud";

/// How the workspace is administered, as configured.
pub(crate) enum Mode {
    /// In Bitbucket: 1.0 groups and invitations.
    Bitbucket,
    /// At admin.atlassian.com: SCIM.
    Scim(Box<Scim>),
}

/// What the last read found that names alone do not say: each key's account id, each group's
/// slug. Operations resolve through it (an account with no Roster name is keyed by its id).
#[derive(Debug, Default)]
pub(crate) struct Known {
    /// Lower-case key (Roster name, or account id) → account id.
    pub accounts: BTreeMap<String, String>,
    /// Group name → slug.
    pub slugs: BTreeMap<String, String>,
    /// Group name → members' account ids.
    pub members: BTreeMap<String, BTreeSet<String>>,
}

/// Bitbucket Cloud as a target.
pub struct BitbucketCloudTarget {
    pub(crate) settings: Settings,
    pub(crate) target_id: String,
    pub(crate) invite_group: Option<String>,
    /// Groups never changed (`protected_groups`): deleting an account, which here is leaving
    /// every group, leaves these alone.
    pub(crate) protected_groups: BTreeSet<String>,
    pub(crate) client: Client,
    pub(crate) store: Arc<Store>,
    pub(crate) mode: Mode,
    pub(crate) known: Mutex<Known>,
}

impl BitbucketCloudTarget {
    /// The target `config` describes (`base` resolves relative credential files); `store`
    /// keeps its account mapping and its hourly budget.
    pub fn new(
        config: &TargetConfig,
        base: &Path,
        patience: Patience,
        store: Arc<Store>,
    ) -> Result<BitbucketCloudTarget, String> {
        let settings = Settings::of(config)?;
        let basic = settings.basic(base)?;
        let configured = Duration::from_secs(config.request_timeout_secs.max(1));
        let timeout = match patience {
            Patience::Run => configured,
            Patience::Check => configured.min(Duration::from_secs(10)),
        };
        let meter = Arc::new(Meter::new(
            store.clone(),
            &config.id,
            &settings.workspace,
            settings.hourly_budget,
        ));
        let api = Api::new(ApiConfig {
            service: "Bitbucket Cloud",
            base: settings.url.clone(),
            credential: Credential::Basic {
                username: basic.username,
                password: basic.password,
            },
            pacing: config.budget,
            meter: Some(meter),
            max_retries: config.max_retries,
            timeout,
            patience,
        })
        .map_err(|e| e.to_string())?;
        let mode = match (&settings.scim, settings.scim_key(base)?) {
            (Some(scim), Some(key)) => {
                // Atlassian's SCIM API is metered apart from Bitbucket's hourly limit.
                let api = Api::new(ApiConfig {
                    service: "Atlassian SCIM",
                    base: scim.url.clone(),
                    credential: Credential::Bearer(key),
                    pacing: config.budget,
                    meter: None,
                    max_retries: config.max_retries,
                    timeout,
                    patience,
                })
                .map_err(|e| e.to_string())?;
                Mode::Scim(Box::new(Scim::new(scim, api, store.clone(), &config.id)))
            }
            _ => Mode::Bitbucket,
        };
        Ok(BitbucketCloudTarget {
            invite_group: settings.invite_group(config),
            protected_groups: config.protected_groups.iter().cloned().collect(),
            target_id: config.id.clone(),
            client: Client::new(api, &settings.workspace),
            settings,
            store,
            mode,
            known: Mutex::new(Known::default()),
        })
    }

    pub(crate) fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Target for BitbucketCloudTarget {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn product(&self) -> &'static str {
        "Bitbucket Cloud"
    }

    fn capabilities(&self) -> Capabilities {
        match &self.mode {
            Mode::Scim(scim) => scim.capabilities(),
            Mode::Bitbucket => Capabilities {
                // Atlassian accounts are keyed by account id; a username change is an update
                // of nothing.
                rename: Rename::Unsupported,
                // 1.0 adds one member per call.
                add_members: AddMembers::OneAtATime,
                // No deactivate call: removal from the workspace's groups.
                disable: Disable::Unlicense,
                // Roster's names never reach Bitbucket (accounts are invited by email), so
                // only the address's length matters.
                fields: Fields {
                    max_chars: 255,
                    username_forbids: "",
                },
                groups: Groups::Keep,
                accounts: Accounts::Invite,
                profiles: Profiles::ReadOnly,
            },
        }
    }

    fn account(&self) -> &str {
        &self.settings.username
    }

    async fn read(&self, scope: &ReadScope<'_>) -> Result<TargetState, TargetError> {
        self.read_state(scope).await.map_err(TargetError::from)
    }

    async fn read_accounts(
        &self,
        names: &BTreeSet<String>,
        groups: &BTreeSet<String>,
    ) -> Result<TargetState, TargetError> {
        self.read_names(names, groups).await.map_err(TargetError::from)
    }

    async fn apply(&self, op: &Op) -> OpOutcome {
        let (result, requests) = REQUESTS
            .scope(std::cell::Cell::new(0), async {
                let result = match &self.mode {
                    Mode::Scim(scim) => scim.apply(op).await,
                    Mode::Bitbucket => self.execute(op).await,
                };
                (result, REQUESTS.with(|n| n.get()))
            })
            .await;
        OpOutcome {
            result: result.map_err(TargetError::from),
            requests,
        }
    }

    fn calls(&self) -> CallCounts {
        let (mut by_endpoint, mut throttled) = self.client.api().call_counts();
        if let Mode::Scim(scim) = &self.mode {
            let (more, t) = scim.api().call_counts();
            by_endpoint.extend(more);
            throttled += t;
        }
        CallCounts {
            by_endpoint,
            throttled,
            concurrency: None,
        }
    }

    fn reset_calls(&self) {
        self.client.api().reset_counts();
        if let Mode::Scim(scim) = &self.mode {
            scim.api().reset_counts();
        }
    }

    async fn check(&self) -> TargetCheck {
        self.check_target().await
    }

    fn call_budget(&self) -> Option<CallBudget> {
        // Mode two's operations go to SCIM, which Bitbucket's hourly meter does not count.
        match &self.mode {
            Mode::Scim(_) => None,
            // Called once the run has read the target: the calls counted so far are its read.
            Mode::Bitbucket => self.client.api().meter().and_then(|m| {
                match m.budget(self.client.api().call_counts().0.values().sum()) {
                    Ok(b) => Some(b),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not read Bitbucket Cloud's call budget");
                        None
                    }
                }
            }),
        }
    }
}

/// The `bitbucket-cloud` kind, for the binary's registry.
pub struct Kind;

impl TargetKind for Kind {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn validate(&self, config: &TargetConfig, base: &Path) -> Result<(), String> {
        config.require_fixed_concurrency()?;
        let s = Settings::of(config)?;
        s.basic(base)?;
        s.scim_key(base).map(drop)
    }

    fn describe(&self, config: &TargetConfig) -> Connection {
        let field = |name: &str| config.connection.get(name).and_then(|v| v.as_str()).map(str::to_string);
        Connection {
            url: Some(field("url").unwrap_or_else(|| crate::settings::DEFAULT_URL.into())),
            account: field("username"),
            credential: Some(
                if config.connection.contains_key("api_token") {
                    "api_token"
                } else {
                    "app_password"
                }
                .into(),
            ),
        }
    }

    fn credential_fields(&self) -> &'static [&'static str] {
        &["app_password", "api_token", "scim.api_key"]
    }

    fn build(
        &self,
        config: &TargetConfig,
        base: &Path,
        patience: Patience,
        store: &Arc<Store>,
    ) -> Result<Arc<dyn Target>, String> {
        Ok(Arc::new(BitbucketCloudTarget::new(
            config,
            base,
            patience,
            store.clone(),
        )?))
    }
}

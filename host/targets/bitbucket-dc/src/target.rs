//! Bitbucket Data Center behind the engine's [`Target`] trait, and its settings in a
//! `[target]` table (`url`, `username`, `password` or `token`).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use roster_engine::{
    Accounts, AddMembers, CallCounts, Capabilities, Connection, Disable, Fields, Groups, Op, OpOutcome, Patience,
    Profiles, ReadScope, Rename, Target, TargetCheck, TargetConfig, TargetError, TargetKind, TargetState,
};
use roster_http::SecretRef;
use serde::Deserialize;

use crate::client::{Auth, BbError, BitbucketDc, ClientConfig, REQUESTS};

/// The kind's own fields of a `[target]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Base URL, e.g. `https://bitbucket.example.com`.
    pub url: String,
    /// The account Roster uses (always protected).
    pub username: String,
    /// Its password (Basic auth), or
    pub password: Option<SecretRef>,
    /// a personal access token (Bearer).
    pub token: Option<SecretRef>,
}

impl Settings {
    /// The settings of `config`, checked; every message names the field.
    pub fn of(config: &TargetConfig) -> Result<Settings, String> {
        let s: Settings = serde_json::from_value(serde_json::Value::Object(config.connection.clone()))
            .map_err(|e| format!("target: {e}"))?;
        let url = url::Url::parse(&s.url).map_err(|e| format!("target url {:?}: {e}", s.url))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("target url {:?} must be http or https", s.url));
        }
        if s.password.is_some() == s.token.is_some() {
            return Err("target: give exactly one of `password` or `token`".into());
        }
        Ok(s)
    }

    /// The credentials, resolved (`base` resolves a relative file).
    pub fn auth(&self, base: &Path) -> Result<Auth, String> {
        match (&self.password, &self.token) {
            (Some(p), None) => Ok(Auth::Basic {
                username: self.username.clone(),
                password: p.resolve(base, "target password")?,
            }),
            (None, Some(tok)) => Ok(Auth::Bearer {
                token: tok.resolve(base, "target token")?,
                username: self.username.clone(),
            }),
            _ => Err("target: give exactly one of `password` or `token`".into()),
        }
    }
}

/// Bitbucket Data Center as a target.
pub struct BitbucketDcTarget {
    client: BitbucketDc,
    url: String,
}

impl BitbucketDcTarget {
    /// The target `config` describes (`base` resolves relative credential files).
    pub fn new(config: &TargetConfig, base: &Path, patience: Patience) -> Result<BitbucketDcTarget, String> {
        let settings = Settings::of(config)?;
        let configured = Duration::from_secs(config.request_timeout_secs.max(1));
        let (timeout, max_retries) = match patience {
            Patience::Run => (configured, config.max_retries),
            Patience::Check => (configured.min(Duration::from_secs(10)), 1),
        };
        let client = BitbucketDc::new(ClientConfig {
            url: settings.url.clone(),
            auth: settings.auth(base)?,
            budget: config.budget,
            max_retries,
            timeout,
            concurrency: config.concurrency,
        })
        .map_err(|e| e.to_string())?;
        Ok(BitbucketDcTarget {
            client,
            url: settings.url,
        })
    }

    /// The client, for callers that need Data Center itself (the demo, tests).
    pub fn client(&self) -> &BitbucketDc {
        &self.client
    }

    async fn execute(&self, op: &Op) -> Result<Option<String>, BbError> {
        let client = &self.client;
        match op {
            Op::CreateGroup { group } => already(client.create_group(group).await, 409, "group already existed"),
            Op::RenameUser { from, to, .. } => client.rename_user(from, to).await.map(|()| None),
            Op::CreateUser {
                user,
                display_name,
                email,
                ..
            } => {
                let password = random_password().map_err(|e| BbError::Transport {
                    endpoint: "POST /admin/users".into(),
                    detail: e,
                })?;
                already(
                    client.create_user(user, display_name, email, &password).await,
                    409,
                    "account already existed (created by an earlier, interrupted run)",
                )
            }
            // Taking over an account is the store's business; Data Center has nothing to do.
            Op::AdoptUser { .. } => Ok(None),
            Op::UpdateUser {
                user,
                display_name,
                email,
                ..
            } => client.update_user(user, display_name, email).await.map(|()| None),
            Op::AddMembers { group, users } => match client.add_users_to_group(group, users).await {
                Ok(()) => Ok(None),
                // All or nothing in Bitbucket: if one user is missing, add the others one by one.
                Err(e) if e.status() == Some(404) && users.len() > 1 => {
                    let mut failed = Vec::new();
                    for u in users {
                        if let Err(e) = client.add_users_to_group(group, std::slice::from_ref(u)).await {
                            failed.push(format!("{u}: {e}"));
                        }
                    }
                    if failed.is_empty() {
                        Ok(None)
                    } else {
                        Err(BbError::Api {
                            endpoint: "POST /admin/groups/add-users".into(),
                            status: 404,
                            exception: None,
                            message: failed.join("; "),
                        })
                    }
                }
                Err(e) => Err(e),
            },
            Op::RemoveMember { group, user } => already(
                client.remove_user_from_group(user, group).await,
                404,
                "was not a member",
            ),
            Op::Deactivate {
                user,
                groups,
                revoke_permission,
                leave_other_groups,
            } => {
                for g in groups {
                    already(client.remove_user_from_group(user, g).await, 404, "")?;
                }
                if let Some(keep) = leave_other_groups {
                    for g in client.user_groups(user).await? {
                        if !keep.contains(&g) {
                            already(client.remove_user_from_group(user, &g).await, 404, "")?;
                        }
                    }
                }
                if *revoke_permission {
                    already(client.revoke_user_permissions(user).await, 404, "")?;
                }
                Ok(None)
            }
            Op::DeleteUser { user, erase } => {
                let note = already(client.delete_user(user).await, 404, "account was already gone")?;
                if *erase {
                    client.erase_user(user).await?;
                }
                Ok(note)
            }
            // Answered by `apply` before any call.
            Op::DeleteGroup { .. } => Ok(None),
        }
    }
}

/// A 404 on removal, or a 409 on creation, means the state is already what the plan wants.
fn already(r: Result<(), BbError>, status: u16, note: &str) -> Result<Option<String>, BbError> {
    match r {
        Ok(()) => Ok(None),
        Err(e) if e.status() == Some(status) => Ok(Some(note.to_string())),
        Err(e) => Err(e),
    }
}

/// A password nobody knows: accounts Roster creates sign in through the IdP (SSO). Without
/// randomness there is no such password, so the account is not created.
fn random_password() -> Result<String, String> {
    password_from(getrandom::fill)
}

/// A password from 24 bytes of `fill`; a failure of `fill` is an error, never a weaker password.
fn password_from(fill: impl FnOnce(&mut [u8]) -> Result<(), getrandom::Error>) -> Result<String, String> {
    let mut b = [0u8; 24];
    fill(&mut b).map_err(|e| {
        format!("the system's random source failed ({e}); no account is created with a guessable password")
    })?;
    use base64::Engine as _;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

fn target_error(e: BbError) -> TargetError {
    TargetError {
        status: e.status(),
        message: e.to_string(),
    }
}

#[async_trait]
impl Target for BitbucketDcTarget {
    fn kind(&self) -> &'static str {
        "bitbucket-dc"
    }

    fn product(&self) -> &'static str {
        "Bitbucket"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            rename: Rename::Native,
            add_members: AddMembers::Bulk,
            disable: Disable::Unlicense,
            // Bitbucket's internal directory keeps names, display names and emails in 255-character
            // columns, and a username is the root of the account's URL slug, where '/' and '\\'
            // would break paths (Roster's rule: not confirmed against a live server).
            fields: Fields {
                max_chars: 255,
                username_forbids: "/\\",
            },
            groups: Groups::Keep,
            accounts: Accounts::Create,
            profiles: Profiles::Managed,
        }
    }

    fn account(&self) -> &str {
        self.client.username()
    }

    async fn read(&self, scope: &ReadScope<'_>) -> Result<TargetState, TargetError> {
        crate::read::read(&self.client, scope.groups, scope.concurrency)
            .await
            .map_err(target_error)
    }

    async fn read_accounts(
        &self,
        names: &BTreeSet<String>,
        groups: &BTreeSet<String>,
    ) -> Result<TargetState, TargetError> {
        crate::read::read_accounts(&self.client, names, groups)
            .await
            .map_err(target_error)
    }

    async fn apply(&self, op: &Op) -> OpOutcome {
        if let Op::DeleteGroup { group } = op {
            // Data Center keeps groups a source dropped (`Groups::Keep`): they may carry
            // permissions an administrator granted.
            return OpOutcome {
                result: Err(TargetError::other(format!(
                    "deleting group {group} is never planned for Bitbucket Data Center, which keeps groups; this plan was not made for this target: reject it and run again"
                ))),
                requests: 0,
            };
        }
        let (result, requests) = REQUESTS
            .scope(std::cell::Cell::new(0), async {
                let result = self.execute(op).await;
                (result, REQUESTS.with(|n| n.get()))
            })
            .await;
        OpOutcome {
            result: result.map_err(target_error),
            requests,
        }
    }

    fn calls(&self) -> CallCounts {
        let (by_endpoint, throttled) = self.client.call_counts();
        CallCounts {
            by_endpoint,
            throttled,
            concurrency: self.client.concurrency(),
        }
    }

    fn reset_calls(&self) {
        self.client.reset_counts();
    }

    async fn check(&self) -> TargetCheck {
        self.client.check(&self.url).await
    }
}

/// The `bitbucket-dc` kind, for the binary's registry.
pub struct Kind;

impl TargetKind for Kind {
    fn kind(&self) -> &'static str {
        "bitbucket-dc"
    }

    fn validate(&self, config: &TargetConfig, base: &Path) -> Result<(), String> {
        Settings::of(config)?.auth(base).map(drop)
    }

    fn describe(&self, config: &TargetConfig) -> Connection {
        let field = |name: &str| config.connection.get(name).and_then(|v| v.as_str()).map(str::to_string);
        Connection {
            url: field("url"),
            account: field("username"),
            credential: Some(
                if config.connection.contains_key("token") {
                    "token"
                } else {
                    "password"
                }
                .into(),
            ),
        }
    }

    fn credential_fields(&self) -> &'static [&'static str] {
        &["password", "token"]
    }

    fn build(
        &self,
        config: &TargetConfig,
        base: &Path,
        patience: Patience,
        _store: &Arc<roster_store::Store>,
    ) -> Result<Arc<dyn Target>, String> {
        Ok(Arc::new(BitbucketDcTarget::new(config, base, patience)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_random_source_creates_no_password() {
        let failed = password_from(|_| Err(getrandom::Error::UNSUPPORTED));
        assert!(failed.unwrap_err().contains("random source failed"));
    }

    #[test]
    fn passwords_are_long_and_never_repeat() {
        let (a, b) = (random_password().unwrap(), random_password().unwrap());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}

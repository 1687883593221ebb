//! The Bitbucket target through the API: created, replaced or deleted when roster.toml has no
//! `[target]` (a file's target is read-only here), and tested. Roster writes to one Bitbucket
//! instance, so there is at most one target.

use std::time::Duration;

use super::{Service, ServiceError, merged_config};
use crate::config::{Config, DefinedIn, TargetConfig};
use crate::targets::bitbucket_dc::check::TargetCheck;
use crate::targets::bitbucket_dc::{BitbucketDc, ClientConfig};

impl Service {
    /// Creates or replaces the target defined through the API; true when it was created.
    /// Credentials are write-only: a replacement without `password` or `token` keeps the stored
    /// ones.
    pub fn put_target(&self, mut target: TargetConfig) -> Result<bool, ServiceError> {
        let file = Config::load(&self.config_path).map_err(|e| ServiceError::Invalid(e.to_string()))?;
        if let Some(t) = file.target {
            return Err(ServiceError::Conflict(format!(
                "the target '{}' is defined in roster.toml ([target]); change it there, or remove it from the file to manage the target through the API",
                t.id
            )));
        }
        let existing = self.store.api_target()?;
        if let Some((id, stored)) = &existing {
            if *id != target.id {
                return Err(ServiceError::Conflict(format!(
                    "Roster writes to one Bitbucket instance and it is '{id}'; change it with PUT /api/v1/targets/{id}, or DELETE it first"
                )));
            }
            if target.password.is_none() && target.token.is_none() {
                let kept: TargetConfig = serde_json::from_value(stored.clone()).map_err(|e| {
                    ServiceError::Internal(format!(
                        "the stored target '{id}' cannot be read ({e}); give its credentials again"
                    ))
                })?;
                target.password = kept.password;
                target.token = kept.token;
            }
        }
        for (what, secret) in [("password", &target.password), ("token", &target.token)] {
            if secret
                .as_ref()
                .is_some_and(|s| s.value.is_none() || s.env.is_some() || s.file.is_some())
            {
                return Err(ServiceError::Invalid(format!(
                    "{what}: give its value (kept sealed, never shown again); `env` and `file` name things on the server and belong in roster.toml"
                )));
            }
        }
        target.origin = DefinedIn::Api;
        // The configuration as it would be, validated before anything is stored.
        let mut candidate = merged_config(&self.config_path, &self.store)?;
        candidate.validate_target(&target).map_err(ServiceError::Invalid)?;
        candidate.target = Some(target.clone());
        candidate.target_auth(&target).map_err(ServiceError::Invalid)?;
        let value = serde_json::to_value(&target).map_err(|e| ServiceError::Internal(e.to_string()))?;
        self.store.put_api_target(&target.id, &value)?;
        self.reload_config()?;
        Ok(existing.is_none())
    }

    /// Deletes the target defined through the API; nothing runs until another is defined.
    pub fn delete_target(&self, id: &str) -> Result<(), ServiceError> {
        let config = self.config();
        match config.target {
            Some(t) if t.id == id && t.origin == DefinedIn::File => Err(ServiceError::Conflict(format!(
                "the target '{id}' is defined in roster.toml; remove it there"
            ))),
            Some(t) if t.id == id => {
                if let Some(run) = self.runs.busy() {
                    return Err(ServiceError::Conflict(format!(
                        "run {run} is writing to '{id}'; delete the target when it has ended"
                    )));
                }
                self.store.delete_api_target(id)?;
                self.reload_config()
            }
            _ => Err(ServiceError::NotFound(format!("no target named '{id}'"))),
        }
    }

    /// Tests the target's connection: credentials, administrator rights, licence.
    pub async fn check_target(&self, id: &str) -> Result<TargetCheck, ServiceError> {
        let config = self.config();
        let t = config
            .target
            .as_ref()
            .filter(|t| t.id == id)
            .ok_or_else(|| ServiceError::NotFound(format!("no target named '{id}'")))?;
        // A check answers in seconds: one retry, a short timeout.
        let client = BitbucketDc::new(ClientConfig {
            url: t.url.clone(),
            auth: config.target_auth(t).map_err(ServiceError::Invalid)?,
            budget: t.budget,
            max_retries: 1,
            timeout: Duration::from_secs(10),
        })
        .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        Ok(client.check(&t.url).await)
    }
}

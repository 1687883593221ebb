//! Targets through the API: created, replaced or deleted by id, beside roster.toml's (a file's
//! target is read-only here), and tested. Several may be defined (at most one
//! `crowd-directory`). Which settings are credentials is the kind's to say: they are write-only, and a
//! replacement that leaves them all out keeps the stored ones — unless it moves the target to
//! another origin (scheme, host or port), which must be given the credentials again: a stored
//! credential never follows a changed url to a host it was not given for.

use roster_engine::{Patience, TargetCheck, TargetConfig};
use roster_model::DefinedIn;
use serde_json::{Map, Value};

use super::{Service, ServiceError, merged_config};
use crate::config::Config;

/// The origin (scheme, host, port) of a target's url; none when there is no url or it does
/// not parse, which no stored credential follows either.
fn origin_of(url: Option<&str>) -> Option<url::Origin> {
    let origin = url::Url::parse(url?).ok()?.origin();
    origin.is_tuple().then_some(origin)
}

/// The setting at `path` (`api_token`, or `scim.api_key` in the `scim` table).
fn field<'a>(settings: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let (first, rest) = path.split_once('.').map_or((path, None), |(a, b)| (a, Some(b)));
    let v = settings.get(first)?;
    match rest {
        None => Some(v),
        Some(rest) => field(v.as_object()?, rest),
    }
}

/// Sets the setting at `path` when its table is there: a kept credential never brings back a
/// table the replacement left out (a Cloud target moved off SCIM keeps no SCIM key).
fn put_field(settings: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            settings.insert(path.to_string(), value);
        }
        Some((first, rest)) => {
            if let Some(table) = settings.get_mut(first).and_then(Value::as_object_mut) {
                put_field(table, rest, value);
            }
        }
    }
}

impl Service {
    /// Creates or replaces a target defined through the API (by its id); true when it was
    /// created.
    pub fn put_target(&self, mut target: TargetConfig) -> Result<bool, ServiceError> {
        let file = Config::load(&self.config_path, &self.kinds).map_err(|e| ServiceError::Invalid(e.to_string()))?;
        if let Some(t) = file.target_named(&target.id) {
            return Err(ServiceError::Conflict(format!(
                "the target '{}' is defined in roster.toml ([target]); change it there, or remove it from the file to manage the target through the API",
                t.id
            )));
        }
        let kind = self.kinds.get(&target.kind).map_err(ServiceError::Invalid)?;
        let credentials = kind.credential_fields();
        let existing = self.store.api_target(&target.id)?;
        if let Some(stored) = &existing {
            let id = &target.id;
            if !credentials.iter().any(|f| field(&target.connection, f).is_some()) {
                let kept: TargetConfig = serde_json::from_value(stored.clone()).map_err(|e| {
                    ServiceError::Internal(format!(
                        "the stored target '{id}' cannot be read ({e}); give its credentials again"
                    ))
                })?;
                if kept.kind == target.kind {
                    let (was, now) = (kind.describe(&kept).url, kind.describe(&target).url);
                    if origin_of(was.as_deref()) != origin_of(now.as_deref()) {
                        return Err(ServiceError::Invalid(format!(
                            "url: the target moves from {} to {}; give its {} again, since the stored one is only ever sent where it was given for",
                            was.as_deref().unwrap_or("(none)"),
                            now.as_deref().unwrap_or("(none)"),
                            credentials.join(" or ")
                        )));
                    }
                    // A credential kept in a table (`scim.api_key`) goes to that table's own
                    // `url`: it is only kept while that stays on the same origin too.
                    for f in credentials {
                        let Some((table, _)) = f.split_once('.') else { continue };
                        if field(&target.connection, table).is_none() || field(&kept.connection, f).is_none() {
                            continue;
                        }
                        let url = |c: &serde_json::Map<String, Value>| {
                            field(c, &format!("{table}.url"))
                                .and_then(Value::as_str)
                                .map(str::to_string)
                        };
                        let (was, now) = (url(&kept.connection), url(&target.connection));
                        if was != now && origin_of(was.as_deref()) != origin_of(now.as_deref()) {
                            return Err(ServiceError::Invalid(format!(
                                "{table}.url: it moves from {} to {}; give {f} again, since the stored one is only ever sent where it was given for",
                                was.as_deref().unwrap_or("(the default)"),
                                now.as_deref().unwrap_or("(the default)"),
                            )));
                        }
                    }
                    for f in credentials {
                        if let Some(v) = field(&kept.connection, f) {
                            put_field(&mut target.connection, f, v.clone());
                        }
                    }
                }
            }
        }
        for f in credentials {
            let Some(v) = field(&target.connection, f) else {
                continue;
            };
            let inline = serde_json::from_value::<roster_http::SecretRef>(v.clone()).is_ok_and(|s| s.is_inline_value());
            if !inline {
                return Err(ServiceError::Invalid(format!(
                    "{f}: give its value (kept sealed, never shown again); `env` and `file` name things on the server and belong in roster.toml"
                )));
            }
        }
        target.origin = DefinedIn::Api;
        // The configuration as it would be, validated before anything is stored.
        let mut candidate = merged_config(&self.config_path, &self.store, &self.kinds)?;
        candidate
            .validate_target(&target, &self.kinds)
            .map_err(ServiceError::Invalid)?;
        match candidate.targets.iter_mut().find(|t| t.id == target.id) {
            Some(t) => *t = target.clone(),
            None => candidate.targets.push(target.clone()),
        }
        candidate
            .validate_together(&self.kinds)
            .map_err(ServiceError::Invalid)?;
        let value = serde_json::to_value(&target).map_err(|e| ServiceError::Internal(e.to_string()))?;
        self.store.put_api_target(&target.id, &value)?;
        self.reload_config()?;
        Ok(existing.is_none())
    }

    /// Deletes a target defined through the API; the others keep running.
    pub fn delete_target(&self, id: &str) -> Result<(), ServiceError> {
        let config = self.config();
        match config.target_named(id) {
            Some(t) if t.origin == DefinedIn::File => Err(ServiceError::Conflict(format!(
                "the target '{id}' is defined in roster.toml; remove it there"
            ))),
            Some(_) => {
                if let Some(run) = self.runs.busy() {
                    return Err(ServiceError::Conflict(format!(
                        "run {run} is writing to '{id}'; delete the target when it has ended"
                    )));
                }
                self.store.delete_api_target(id)?;
                self.reload_config()
            }
            None => Err(ServiceError::NotFound(format!("no target named '{id}'"))),
        }
    }

    /// Tests the target's connection: credentials, administrator rights, licence.
    pub async fn check_target(&self, id: &str) -> Result<TargetCheck, ServiceError> {
        let config = self.config();
        let t = config
            .target_named(id)
            .ok_or_else(|| ServiceError::NotFound(format!("no target named '{id}'")))?;
        // A check answers in seconds: one retry, a short timeout.
        let target = self
            .kinds
            .get(&t.kind)
            .and_then(|k| k.build(t, &config.base_dir, Patience::Check, &self.store))
            .map_err(ServiceError::Invalid)?;
        Ok(target.check().await)
    }
}

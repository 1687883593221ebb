//! The kind's own fields of a `[target]` table, checked; every message names the field.

use std::path::Path;

use roster_engine::TargetConfig;
use roster_http::{SecretRef, SecretValue};
use serde::Deserialize;

/// Where Bitbucket's API is unless `url` says otherwise.
pub const DEFAULT_URL: &str = "https://api.bitbucket.org";
/// Where Atlassian's SCIM API is unless `[target.scim] url` says otherwise.
pub const DEFAULT_SCIM_URL: &str = "https://api.atlassian.com";

/// The settings of a `bitbucket-cloud` target.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The workspace's slug (`acme` in bitbucket.org/acme).
    pub workspace: String,
    /// The account Roster acts as (always protected); the Basic-auth user.
    pub username: String,
    /// An app password, or
    pub app_password: Option<SecretRef>,
    /// an Atlassian API token (with the account's email as `username`).
    pub api_token: Option<SecretRef>,
    /// Bitbucket's API base URL (tests point it at the simulator).
    #[serde(default = "default_url")]
    pub url: String,
    /// Mode one: the group invitations go to (default: the target's first default group).
    pub invite_group: Option<String>,
    /// The plan's user limit (Cloud's API does not say it).
    pub seats: Option<i64>,
    /// Calls Roster allows itself over a rolling window.
    #[serde(default)]
    pub hourly_budget: HourlyBudget,
    /// Mode two: groups granting Bitbucket product access.
    #[serde(default)]
    pub licensed_groups: Vec<String>,
    /// Mode two: groups of administrators.
    #[serde(default)]
    pub admin_groups: Vec<String>,
    /// Present: the workspace is administered at admin.atlassian.com (mode two).
    pub scim: Option<ScimSettings>,
}

/// `[target.scim]`: Atlassian's user-provisioning directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScimSettings {
    /// The directory's id (admin.atlassian.com → Settings → User provisioning).
    pub directory_id: String,
    /// The directory API key (a bearer token).
    pub api_key: SecretRef,
    /// The SCIM API's base URL.
    #[serde(default = "default_scim_url")]
    pub url: String,
}

/// `hourly_budget = { calls, window_secs }`: Bitbucket Cloud meters authenticated calls per
/// user or token over a rolling hour (about 1,000 an hour; vendor-apis.md §3, "API request
/// limits").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HourlyBudget {
    /// Calls allowed per window.
    #[serde(default = "default_calls")]
    pub calls: u64,
    /// The window, in seconds.
    #[serde(default = "default_window_secs")]
    pub window_secs: u64,
}

impl Default for HourlyBudget {
    fn default() -> Self {
        HourlyBudget {
            calls: default_calls(),
            window_secs: default_window_secs(),
        }
    }
}

fn default_url() -> String {
    DEFAULT_URL.into()
}

fn default_scim_url() -> String {
    DEFAULT_SCIM_URL.into()
}

fn default_calls() -> u64 {
    1000
}

fn default_window_secs() -> u64 {
    3600
}

/// How Roster signs in to Bitbucket.
#[derive(Debug, Clone)]
pub struct Basic {
    /// The Basic-auth user.
    pub username: String,
    /// The app password or API token.
    pub password: SecretValue,
}

impl Settings {
    /// The settings of `config`, checked; every message names the field.
    pub fn of(config: &TargetConfig) -> Result<Settings, String> {
        let s: Settings = serde_json::from_value(serde_json::Value::Object(config.connection.clone()))
            .map_err(|e| format!("target: {e}"))?;
        http_url("target url", &s.url)?;
        if s.workspace.trim().is_empty() || s.workspace.contains(['/', '?', '#', ' ']) {
            return Err(format!(
                "target workspace {:?} is not a workspace slug (the `acme` of bitbucket.org/acme)",
                s.workspace
            ));
        }
        if s.username.trim().is_empty() {
            return Err("target username is empty: give the account Roster acts as".into());
        }
        if s.app_password.is_some() == s.api_token.is_some() {
            return Err("target: give exactly one of `app_password` or `api_token`".into());
        }
        if s.hourly_budget.calls == 0 {
            return Err("target hourly_budget.calls must be at least 1".into());
        }
        if s.hourly_budget.window_secs == 0 {
            return Err("target hourly_budget.window_secs must be at least 1".into());
        }
        if s.seats.is_some_and(|n| n < 0) {
            return Err("target seats must not be negative".into());
        }
        match &s.scim {
            Some(scim) => {
                http_url("target scim.url", &scim.url)?;
                if scim.directory_id.trim().is_empty() {
                    return Err("target scim.directory_id is empty: admin.atlassian.com → Settings → User provisioning shows it".into());
                }
                if s.invite_group.is_some() {
                    return Err("target invite_group applies to workspaces administered in Bitbucket; with [target.scim] Roster creates users through SCIM: remove invite_group".into());
                }
            }
            None => {
                for (field, set) in [
                    ("licensed_groups", &s.licensed_groups),
                    ("admin_groups", &s.admin_groups),
                ] {
                    if !set.is_empty() {
                        return Err(format!(
                            "target {field} applies only with [target.scim] (a workspace administered at admin.atlassian.com); in Bitbucket, group permissions say which groups license and administer"
                        ));
                    }
                }
                if s.invite_group(config).is_none() {
                    return Err("target invite_group is not set and the target has no default_groups: name the group invitations go to (invite_group = \"developers\")".into());
                }
            }
        }
        Ok(s)
    }

    /// Mode one: the group invitations go to.
    pub fn invite_group(&self, config: &TargetConfig) -> Option<String> {
        self.invite_group
            .clone()
            .or_else(|| config.default_groups.first().cloned())
    }

    /// The Bitbucket credentials, resolved (`base` resolves a relative file).
    pub fn basic(&self, base: &Path) -> Result<Basic, String> {
        let password = match (&self.app_password, &self.api_token) {
            (Some(p), None) => p.resolve(base, "target app_password")?,
            (None, Some(t)) => t.resolve(base, "target api_token")?,
            _ => return Err("target: give exactly one of `app_password` or `api_token`".into()),
        };
        Ok(Basic {
            username: self.username.clone(),
            password,
        })
    }

    /// The SCIM directory API key, resolved, when `[target.scim]` is set.
    pub fn scim_key(&self, base: &Path) -> Result<Option<SecretValue>, String> {
        self.scim
            .as_ref()
            .map(|s| s.api_key.resolve(base, "target scim.api_key"))
            .transpose()
    }
}

fn http_url(field: &str, value: &str) -> Result<(), String> {
    let url = url::Url::parse(value).map_err(|e| format!("{field} {value:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{field} {value:?} must be http or https"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(settings: serde_json::Value, default_groups: &[&str]) -> TargetConfig {
        let mut v = serde_json::json!({ "id": "cloud", "kind": "bitbucket-cloud", "default_groups": default_groups });
        if let (Some(o), Some(s)) = (v.as_object_mut(), settings.as_object()) {
            o.extend(s.clone());
        }
        serde_json::from_value(v).unwrap()
    }

    fn base() -> serde_json::Value {
        serde_json::json!({"workspace": "acme", "username": "roster-bot", "app_password": {"value": "p"}})
    }

    fn with(extra: serde_json::Value) -> serde_json::Value {
        let mut b = base();
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        b
    }

    #[test]
    fn defaults_and_the_invite_group() {
        let c = config(base(), &["developers"]);
        let s = Settings::of(&c).unwrap();
        assert_eq!(s.url, DEFAULT_URL);
        assert_eq!(
            s.hourly_budget,
            HourlyBudget {
                calls: 1000,
                window_secs: 3600
            }
        );
        assert_eq!(s.invite_group(&c).as_deref(), Some("developers"));
        let c = config(with(serde_json::json!({"invite_group": "staff"})), &["developers"]);
        assert_eq!(Settings::of(&c).unwrap().invite_group(&c).as_deref(), Some("staff"));
    }

    #[test]
    fn every_refusal_names_the_field() {
        let cases = [
            (with(serde_json::json!({})), &[][..], "invite_group"),
            (
                with(serde_json::json!({"api_token": {"value": "t"}})),
                &["d"][..],
                "app_password",
            ),
            (
                with(serde_json::json!({"hourly_budget": {"calls": 0}})),
                &["d"][..],
                "hourly_budget.calls",
            ),
            (
                with(serde_json::json!({"hourly_budget": {"window_secs": 0}})),
                &["d"][..],
                "hourly_budget.window_secs",
            ),
            (with(serde_json::json!({"url": "ftp://x"})), &["d"][..], "target url"),
            (with(serde_json::json!({"workspace": "a/b"})), &["d"][..], "workspace"),
            (
                with(serde_json::json!({"licensed_groups": ["x"]})),
                &["d"][..],
                "licensed_groups",
            ),
            (with(serde_json::json!({"seats": -1})), &["d"][..], "seats"),
            (with(serde_json::json!({"colour": "blue"})), &["d"][..], "colour"),
            (
                with(serde_json::json!({"scim": {"directory_id": "", "api_key": {"value": "k"}}})),
                &[][..],
                "scim.directory_id",
            ),
            (
                with(serde_json::json!({"scim": {"directory_id": "d", "api_key": {"value": "k"}, "token": 1}})),
                &[][..],
                "token",
            ),
        ];
        for (settings, groups, field) in cases {
            let e = Settings::of(&config(settings.clone(), groups)).unwrap_err();
            assert!(e.contains(field), "{settings}: {e}");
        }
    }

    #[test]
    fn scim_settings_parse_and_need_no_invite_group() {
        let c = config(
            with(serde_json::json!({
                "scim": {"directory_id": "dir-1", "api_key": {"value": "k"}},
                "licensed_groups": ["bitbucket-users"], "admin_groups": ["site-admins"]
            })),
            &[],
        );
        let s = Settings::of(&c).unwrap();
        let scim = s.scim.as_ref().unwrap();
        assert_eq!(
            (scim.directory_id.as_str(), scim.url.as_str()),
            ("dir-1", DEFAULT_SCIM_URL)
        );
        assert_eq!(s.scim_key(Path::new(".")).unwrap().unwrap().expose(), "k");
    }
}

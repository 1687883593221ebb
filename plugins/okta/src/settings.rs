//! The `okta` source's settings, as an administrator writes them in `roster.toml`, validated
//! before any request is made.

use roster_sdk::PluginError;
use roster_sdk::oauth::{ClientAuth, ClientCredentials, TokenBody};
use roster_sdk::settings::SourceSettings;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which users and groups the source covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Every user of the org (narrowed by `user_search`) and the groups `group_search` admits.
    #[default]
    Org,
    /// The groups listed in `groups` and their members.
    Groups,
    /// The users and groups assigned to the Okta application `app_id`.
    App,
}

/// How Roster authenticates to Okta.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AuthKind {
    /// An API token (`Authorization: SSWS …`) from the secret named by `api_token`.
    #[default]
    ApiToken,
    /// An OAuth 2.0 service app with `private_key_jwt`: the host signs the client assertion
    /// with the key named by `private_key`.
    ServiceApp,
}

/// An Okta user status (`UserStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Active.
    Active,
    /// Deactivated.
    Deprovisioned,
    /// Locked out after failed sign-ins.
    LockedOut,
    /// The password expired; the user signs in to change it.
    PasswordExpired,
    /// Activated by an admin, the user has not finished activation.
    Provisioned,
    /// A password reset is in progress.
    Recovery,
    /// Created, not activated.
    Staged,
    /// Suspended by an admin.
    Suspended,
}

/// Every status, for messages.
pub const ALL_STATUSES: &[&str] = &[
    "ACTIVE",
    "DEPROVISIONED",
    "LOCKED_OUT",
    "PASSWORD_EXPIRED",
    "PROVISIONED",
    "RECOVERY",
    "STAGED",
    "SUSPENDED",
];

impl Status {
    /// The status Okta names `name`; `None` for one this build does not know (a transitional
    /// status such as `ACTIVATING`).
    pub fn parse(name: &str) -> Option<Status> {
        serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
    }
}

/// The settings object of an `okta` source.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Okta (Management API)")]
pub struct Settings {
    /// The org's URL, e.g. `https://acme.okta.com` (no path).
    pub org_url: String,
    /// API token or OAuth service app.
    #[serde(default)]
    pub auth: AuthKind,
    /// `auth = "api-token"`: name of the host-held secret with the API token.
    #[serde(default = "default_api_token")]
    pub api_token: String,
    /// `auth = "service-app"`: the service app's client id.
    pub client_id: Option<String>,
    /// `auth = "service-app"`: name of the host-held secret with the signing key (PEM).
    #[serde(default = "default_private_key")]
    pub private_key: String,
    /// `auth = "service-app"`: the key's id (`kid`) as the Okta console shows it.
    pub key_id: Option<String>,
    /// Which users and groups to read.
    #[serde(default)]
    pub scope: Scope,
    /// `scope = "org"`: an Okta `search` expression ANDed to every user listing, e.g.
    /// `profile.department eq "Engineering"`.
    pub user_search: Option<String>,
    /// `scope = "org"`: an Okta `search` expression choosing the groups.
    #[serde(default = "default_group_search")]
    pub group_search: String,
    /// `scope = "groups"`: group ids (`00g…`) or names.
    #[serde(default)]
    pub groups: Vec<String>,
    /// `scope = "app"`: the application's id (`0oa…`).
    pub app_id: Option<String>,
    /// The Okta profile attribute that becomes the username (`login`, `email`, any other).
    #[serde(default = "default_username_attribute")]
    pub username_attribute: String,
    /// More Okta profile attributes passed to mappings as attributes.
    #[serde(default)]
    pub attributes: Vec<String>,
    /// The statuses that make a user active in Bitbucket; every other status is inactive.
    #[serde(default = "default_active_statuses")]
    pub active_statuses: Vec<String>,
    /// Users and groups per listing page (1–200, Okta's recommendation is 200).
    #[serde(default = "default_page_size")]
    #[schemars(range(min = 1, max = 200))]
    pub page_size: u32,
}

fn default_api_token() -> String {
    "api_token".into()
}
fn default_private_key() -> String {
    "private_key".into()
}
/// Okta and app groups; the BUILT_IN `Everyone` would put every user in one Bitbucket group.
pub const DEFAULT_GROUP_SEARCH: &str = r#"type eq "OKTA_GROUP" or type eq "APP_GROUP""#;
fn default_group_search() -> String {
    DEFAULT_GROUP_SEARCH.into()
}
fn default_username_attribute() -> String {
    "login".into()
}
fn default_active_statuses() -> Vec<String> {
    ["ACTIVE", "PROVISIONED", "RECOVERY", "PASSWORD_EXPIRED", "LOCKED_OUT"]
        .map(String::from)
        .to_vec()
}
fn default_page_size() -> u32 {
    200
}

fn config(msg: impl Into<String>) -> PluginError {
    PluginError::Config(msg.into())
}

/// An Okta profile attribute name: letters, digits and `_` (custom attributes included).
fn is_attribute_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A group id as Okta writes them.
pub fn is_group_id(s: &str) -> bool {
    s.len() == 20 && s.starts_with("00g") && s.chars().all(|c| c.is_ascii_alphanumeric())
}

fn org_url(raw: &str) -> Result<String, PluginError> {
    let parsed = roster_sdk::settings::service_url("org_url", raw, "https://acme.okta.com")?;
    let host = parsed.host_str().unwrap_or("");
    if parsed.path() != "/" {
        return Err(config(format!(
            "org_url `{raw}` must be the org's address without a path, e.g. https://acme.okta.com (not the admin console's -admin URL or an API path)"
        )));
    }
    if host.ends_with("-admin.okta.com") || host.ends_with("-admin.oktapreview.com") {
        return Err(config(format!(
            "org_url `{raw}` is the admin console's address: drop `-admin` (e.g. https://acme.okta.com)"
        )));
    }
    // Next-page links are checked to start with org_url, and Okta writes them with a lowercase
    // host and no default port: `https://Acme.okta.com:443/` must be written the same way.
    Ok(parsed.origin().ascii_serialization())
}

impl SourceSettings for Settings {
    // Credentials and page sizes decide how Okta is asked, not what it answers.
    const OUTSIDE_SCOPE: &'static [&'static str] =
        &["auth", "api_token", "client_id", "private_key", "key_id", "page_size"];

    fn validate(&mut self) -> Result<(), PluginError> {
        self.org_url = org_url(&self.org_url)?;
        if !(1..=200).contains(&self.page_size) {
            return Err(config(format!(
                "page_size {} is out of range: write 1 to 200 (Okta recommends 200)",
                self.page_size
            )));
        }
        match self.auth {
            AuthKind::ApiToken => {
                if self.api_token.trim().is_empty() {
                    return Err(config(
                        "api_token is empty: name the secret that holds the Okta API token",
                    ));
                }
            }
            AuthKind::ServiceApp => {
                if self.client_id.as_deref().is_none_or(|c| c.trim().is_empty()) {
                    return Err(config(
                        "auth = \"service-app\" needs client_id: the service app's Client ID from its General tab",
                    ));
                }
                if self.private_key.trim().is_empty() {
                    return Err(config(
                        "private_key is empty: name the secret that holds the service app's signing key",
                    ));
                }
            }
        }
        let u = self.username_attribute.trim();
        if !is_attribute_name(u) {
            return Err(config(format!(
                "username_attribute `{}` is not an Okta profile attribute name: write e.g. login, email or nickName",
                self.username_attribute
            )));
        }
        self.username_attribute = u.to_string();
        if let Some(bad) = self.attributes.iter().find(|a| !is_attribute_name(a)) {
            return Err(config(format!(
                "attributes: `{bad}` is not an Okta profile attribute name (letters, digits and _ only)"
            )));
        }
        let mut active = Vec::new();
        for name in &self.active_statuses {
            let st = Status::parse(name.trim()).ok_or_else(|| {
                config(format!(
                    "active_statuses: `{name}` is not an Okta user status; write some of {}",
                    ALL_STATUSES.join(", ")
                ))
            })?;
            active.push(st);
        }
        if active.is_empty() {
            return Err(config(format!(
                "active_statuses is empty, which would make every user inactive in Bitbucket: list the statuses of active users, e.g. [\"ACTIVE\"], or leave active_statuses out for the default ({})",
                default_active_statuses().join(", ")
            )));
        }
        active.sort();
        active.dedup();
        self.active_statuses = active
            .iter()
            .map(|s| {
                serde_json::to_value(s)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            })
            .collect();
        if self.group_search.trim().is_empty() {
            return Err(config(format!(
                "group_search is empty: write an Okta search expression, e.g. {DEFAULT_GROUP_SEARCH}"
            )));
        }
        if self.user_search.as_deref().is_some_and(|s| s.trim().is_empty()) {
            return Err(config(
                "user_search is empty: write an Okta search expression or leave it out",
            ));
        }
        let narrowed = self.user_search.is_some() || self.group_search != DEFAULT_GROUP_SEARCH;
        match self.scope {
            Scope::Org => {
                if !self.groups.is_empty() || self.app_id.is_some() {
                    return Err(config(
                        "`groups` and `app_id` need scope = \"groups\" or scope = \"app\"",
                    ));
                }
            }
            Scope::Groups => {
                self.groups.retain(|g| !g.trim().is_empty());
                if self.groups.is_empty() {
                    return Err(config(
                        "scope = \"groups\" needs `groups`: the ids (00g…) or names of the Okta groups to sync",
                    ));
                }
            }
            Scope::App => {
                if self.app_id.as_deref().is_none_or(|a| a.trim().is_empty()) {
                    return Err(config(
                        "scope = \"app\" needs app_id: the application's id (0oa…, in the app's URL in the admin console)",
                    ));
                }
            }
        }
        if self.scope != Scope::Org && narrowed {
            return Err(config(
                "`user_search` and `group_search` apply to scope = \"org\"; with groups or an app the scope already decides",
            ));
        }
        Ok(())
    }
}

impl Settings {
    /// Whether users of this status are active.
    pub fn is_active(&self, status: Status) -> bool {
        self.active_statuses.iter().any(|s| Status::parse(s) == Some(status))
    }

    /// The OAuth scopes the service app needs for this source.
    pub fn oauth_scopes(&self) -> Vec<&'static str> {
        let mut s = vec!["okta.users.read", "okta.groups.read"];
        if self.scope == Scope::App {
            s.push("okta.apps.read");
        }
        s
    }

    /// Service app: OAuth client credentials asking for `scopes`; `None` with an API token.
    pub fn credentials(&self, scopes: &[&str]) -> Option<ClientCredentials> {
        if self.auth != AuthKind::ServiceApp {
            return None;
        }
        Some(ClientCredentials {
            token_url: format!("{}/oauth2/v1/token", self.org_url),
            client_id: self.client_id.clone().unwrap_or_default(),
            auth: ClientAuth::Assertion {
                key_secret: self.private_key.clone(),
                header: self.key_id.iter().map(|k| ("kid".to_string(), k.clone())).collect(),
                alg: "RS256".into(),
            },
            scope: Some(scopes.join(" ")),
            body: TokenBody::Form,
        })
    }
}

#[cfg(test)]
mod tests {
    use roster_sdk::settings::{self, Fingerprint};

    use super::*;

    fn read(extra: &str) -> Result<Settings, PluginError> {
        settings::read(&format!(r#"{{"org_url":"https://acme.okta.com/"{extra}}}"#))
    }

    fn fingerprint(extra: &str) -> Fingerprint {
        Fingerprint::of(&read(extra).unwrap()).unwrap()
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = read("").unwrap();
        assert_eq!(s.org_url, "https://acme.okta.com");
        assert_eq!((s.scope, s.auth, s.page_size), (Scope::Org, AuthKind::ApiToken, 200));
        assert_eq!(s.username_attribute, "login");
        assert!(s.is_active(Status::LockedOut) && s.is_active(Status::Recovery));
        assert!(!s.is_active(Status::Suspended) && !s.is_active(Status::Deprovisioned) && !s.is_active(Status::Staged));
        assert!(s.credentials(&s.oauth_scopes()).is_none());
    }

    #[test]
    fn mistakes_name_the_field_and_what_to_write() {
        for (extra, expected) in [
            (r#","page_size":201"#, "page_size 201"),
            (r#","page_size":0"#, "1 to 200"),
            (
                r#","active_statuses":["ACTIVE","ENABLED"]"#,
                "`ENABLED` is not an Okta user status",
            ),
            (r#","scope":"groups""#, "needs `groups`"),
            (r#","scope":"app""#, "needs app_id"),
            (r#","auth":"service-app""#, "needs client_id"),
            (r#","username_attribute":"profile.login""#, "username_attribute"),
            (r#","attributes":["a b"]"#, "attributes: `a b`"),
            (r#","groups":["x"]"#, "need scope"),
            (
                r#","scope":"groups","groups":["x"],"user_search":"a""#,
                "apply to scope = \"org\"",
            ),
            (r#","group_search":" ""#, "group_search is empty"),
            (r#","active_statuses":[]"#, "active_statuses is empty"),
            (r#","scope":"tenant""#, "unknown variant `tenant`"),
            (r#","orgurl":"x""#, "unknown field `orgurl`"),
        ] {
            let err = read(extra).unwrap_err();
            assert!(
                matches!(&err, PluginError::Config(m) if m.contains(expected)),
                "{extra}: {err:?}"
            );
        }
        let err = read(r#","active_statuses":["NOPE"]"#).unwrap_err();
        assert!(
            err.to_string().contains("STAGED, SUSPENDED"),
            "lists the valid ones: {err}"
        );
        for url in [
            "http://acme.okta.com",
            "https://acme.okta.com/api/v1",
            "acme.okta.com",
            "https://acme-admin.okta.com",
        ] {
            let err = settings::read::<Settings>(&format!(r#"{{"org_url":"{url}"}}"#)).unwrap_err();
            assert!(
                matches!(&err, PluginError::Config(m) if m.contains("org_url")),
                "{url}: {err:?}"
            );
        }
        assert!(settings::read::<Settings>(r#"{"org_url":"http://127.0.0.1:8080"}"#).is_ok());
    }

    #[test]
    fn the_service_app_asks_for_the_scopes_it_needs_with_a_host_signed_assertion() {
        let s =
            read(r#","auth":"service-app","client_id":"0oa1","key_id":"k1","scope":"app","app_id":"0oa9""#).unwrap();
        let c = s.credentials(&s.oauth_scopes()).unwrap();
        assert_eq!(c.token_url, "https://acme.okta.com/oauth2/v1/token");
        assert_eq!(
            c.scope.as_deref(),
            Some("okta.users.read okta.groups.read okta.apps.read")
        );
        assert_eq!(
            c.auth,
            ClientAuth::Assertion {
                key_secret: "private_key".into(),
                header: vec![("kid".into(), "k1".into())],
                alg: "RS256".into()
            }
        );
    }

    #[test]
    fn every_setting_that_changes_records_changes_the_fingerprint() {
        let base = fingerprint("");
        for extra in [
            r#","user_search":"profile.department eq \"Eng\"""#,
            r#","group_search":"type eq \"OKTA_GROUP\"""#,
            r#","username_attribute":"email""#,
            r#","attributes":["department"]"#,
            r#","active_statuses":["ACTIVE"]"#,
            r#","scope":"groups","groups":["x"]"#,
        ] {
            assert_ne!(fingerprint(extra), base, "{extra}");
        }
        for extra in [r#","page_size":50"#, r#","api_token":"other""#] {
            assert_eq!(fingerprint(extra), base, "{extra}");
        }
        // The same statuses in another order are the same settings.
        assert_eq!(
            fingerprint(r#","active_statuses":["RECOVERY","ACTIVE"]"#),
            fingerprint(r#","active_statuses":["ACTIVE","RECOVERY"]"#)
        );
        assert!(settings::undeclared_outside_scope::<Settings>().is_empty());
    }

    #[test]
    fn org_url_is_written_as_okta_writes_its_links() {
        for (raw, written) in [
            ("https://Acme.OKTA.com:443/", "https://acme.okta.com"),
            ("HTTPS://acme.okta.com", "https://acme.okta.com"),
            (" https://acme.okta.com// ", "https://acme.okta.com"),
            ("https://acme.okta.com:8443", "https://acme.okta.com:8443"),
            ("http://LOCALHOST:80/", "http://localhost"),
        ] {
            let s = settings::read::<Settings>(&format!(r#"{{"org_url":"{raw}"}}"#)).unwrap();
            assert_eq!(s.org_url, written, "{raw}");
        }
        let err = settings::read::<Settings>(r#"{"org_url":"https://admin:pw@acme.okta.com"}"#).unwrap_err();
        assert!(
            matches!(&err, PluginError::Config(m) if m.contains("org_url") && m.contains("user name or password")),
            "{err:?}"
        );
    }

    #[test]
    fn group_ids_are_told_from_names() {
        assert!(is_group_id("00g1emaKYZTWRYYRRTSK"));
        assert!(!is_group_id("Bitbucket Users"));
        assert!(!is_group_id("00g1"));
    }
}

//! The `google` source's settings, as an administrator writes them in `roster.toml`, validated
//! before any request is made.

use roster_sdk::PluginError;
use roster_sdk::oauth::JwtBearer;
use roster_sdk::settings::SourceSettings;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Google's Directory API.
pub const API_URL: &str = "https://admin.googleapis.com";
/// Google's token endpoint, the assertion's `aud`.
pub const TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// Read users.
pub const USER_SCOPE: &str = "https://www.googleapis.com/auth/admin.directory.user.readonly";
/// Read groups and their members.
pub const GROUP_SCOPE: &str = "https://www.googleapis.com/auth/admin.directory.group.readonly";
/// Every scope the connector asks for, as the Admin console's domain-wide delegation lists them.
pub const SCOPES: &[&str] = &[USER_SCOPE, GROUP_SCOPE];

/// Who expands nested groups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Nesting {
    /// A group that is a member of a group is read as a nested membership; Roster flattens
    /// the nesting (and `roster why` shows the path). An incremental run re-reads only groups
    /// that changed.
    #[default]
    Roster,
    /// Google expands it (`includeDerivedMembership=true`): every user of a nested group is
    /// listed as a member of each group above it. An incremental run re-reads every group.
    Google,
}

/// Which of a user's addresses becomes the Bitbucket username.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Username {
    /// `primaryEmail`, e.g. `alice@acme.com`.
    #[default]
    PrimaryEmail,
    /// The part of `primaryEmail` before the `@`, e.g. `alice`.
    EmailLocalPart,
}

/// The settings object of a `google` source.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Google Workspace (Admin SDK Directory API)")]
pub struct Settings {
    /// The service account's email (`client_email` in its key file), the assertion's issuer.
    pub service_account: String,
    /// The Workspace admin the service account acts as through domain-wide delegation.
    pub admin_email: String,
    /// Name of the host-held signing-key secret: the service account's JSON key file (or the
    /// PEM private key from it).
    #[serde(default = "default_private_key")]
    pub private_key: String,
    /// The key's id (`private_key_id` in the key file), sent as the JWT's `kid`.
    pub key_id: Option<String>,
    /// The account to read: `my_customer` (the admin's own) or a customer id (`C0…`).
    #[serde(default = "default_customer")]
    pub customer: String,
    /// Read only this domain of the account (instead of `customer`).
    pub domain: Option<String>,
    /// A Directory `query` for users, e.g. `orgUnitPath=/Engineering` or `isSuspended=false`.
    pub user_query: Option<String>,
    /// A Directory `query` for groups, e.g. `email:eng*`.
    pub group_query: Option<String>,
    /// Who expands nested groups.
    #[serde(default)]
    pub nested_groups: Nesting,
    /// Which address becomes the username.
    #[serde(default)]
    pub username: Username,
    /// More user fields passed to mappings as attributes (`orgUnitPath`, `isAdmin`,
    /// `organizations`, …).
    #[serde(default)]
    pub attributes: Vec<String>,
    /// The Directory API's address (a simulator or proxy); Google's by default.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// The token endpoint (a simulator or proxy); Google's by default.
    #[serde(default = "default_token_url")]
    pub token_url: String,
}

fn default_private_key() -> String {
    "service_account_key".into()
}
fn default_customer() -> String {
    "my_customer".into()
}
fn default_api_url() -> String {
    API_URL.into()
}
fn default_token_url() -> String {
    TOKEN_URL.into()
}

fn config(msg: impl Into<String>) -> PluginError {
    PluginError::Config(msg.into())
}

/// User fields read into every record, so never attributes.
const RECORD_FIELDS: &[&str] = &["id", "primaryEmail", "name", "suspended", "archived"];

/// A user field name as Google writes them: letters and digits.
fn is_field_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric())
}

fn looks_like_email(s: &str) -> bool {
    matches!(s.split_once('@'), Some((local, domain)) if !local.is_empty() && domain.contains('.') && !s.contains(char::is_whitespace))
}

/// An https:// URL (plain http only on this machine, for a simulator), written as its origin
/// plus path without a trailing `/`.
fn base_url(name: &str, raw: &str, example: &str) -> Result<String, PluginError> {
    let parsed = roster_sdk::settings::service_url(name, raw, example)?;
    let path = parsed.path().trim_end_matches('/');
    Ok(format!("{}{path}", parsed.origin().ascii_serialization()))
}

impl SourceSettings for Settings {
    // Credentials and the token endpoint decide how Google is asked, not what it answers.
    const OUTSIDE_SCOPE: &'static [&'static str] =
        &["service_account", "admin_email", "private_key", "key_id", "token_url"];

    fn validate(&mut self) -> Result<(), PluginError> {
        self.service_account = self.service_account.trim().to_string();
        if !looks_like_email(&self.service_account) {
            return Err(config(format!(
                "service_account `{}` is not an email address: write the service account's email (`client_email` in its key file, e.g. roster@my-project.iam.gserviceaccount.com)",
                self.service_account
            )));
        }
        self.admin_email = self.admin_email.trim().to_string();
        if !looks_like_email(&self.admin_email) {
            return Err(config(format!(
                "admin_email `{}` is not an email address: write the Workspace admin Roster acts as (domain-wide delegation), e.g. admin@acme.com",
                self.admin_email
            )));
        }
        if self.admin_email.ends_with(".gserviceaccount.com") {
            return Err(config(
                "admin_email is a service account: write a Workspace user with an admin role; the service account acts as that user",
            ));
        }
        if self.private_key.trim().is_empty() {
            return Err(config(
                "private_key is empty: name the signing-key secret that holds the service account's JSON key file",
            ));
        }
        self.customer = self.customer.trim().to_string();
        if self.customer.is_empty() {
            return Err(config(
                "customer is empty: write my_customer (the admin's own account) or the customer id (C0…), or leave it out",
            ));
        }
        if let Some(d) = &self.domain {
            let d = d.trim().trim_start_matches('@').to_ascii_lowercase();
            if d.is_empty() || !d.contains('.') || d.contains(['/', ' ', '@']) {
                return Err(config(format!(
                    "domain `{d}` is not a domain name: write e.g. acme.com, or leave it out to read the whole account"
                )));
            }
            if self.customer != default_customer() {
                return Err(config(
                    "give `customer` or `domain`, not both: `domain` reads one domain of the admin's account",
                ));
            }
            self.domain = Some(d);
        }
        for (name, q) in [("user_query", &self.user_query), ("group_query", &self.group_query)] {
            if q.as_deref().is_some_and(|q| q.trim().is_empty()) {
                return Err(config(format!(
                    "{name} is empty: write a Directory search query or leave it out"
                )));
            }
        }
        if let Some(bad) = self.attributes.iter().find(|a| !is_field_name(a)) {
            return Err(config(format!(
                "attributes: `{bad}` is not a Google user field name (letters and digits, e.g. orgUnitPath)"
            )));
        }
        // These fields are the record itself (its id, username, names and active), not
        // attributes; `customSchemas` is not in the listing Roster reads (`projection=basic`).
        if let Some(taken) = self.attributes.iter().find(|a| RECORD_FIELDS.contains(&a.as_str())) {
            return Err(config(format!(
                "attributes: `{taken}` is already part of every user record (id, username, display name, email, active), not an attribute; leave it out"
            )));
        }
        if self.attributes.iter().any(|a| a == "customSchemas") {
            return Err(config(
                "attributes: `customSchemas` is not read (Roster lists users with projection=basic); use a standard field such as orgUnitPath, or leave it out",
            ));
        }
        self.api_url = base_url("api_url", &self.api_url, API_URL)?;
        self.token_url = base_url("token_url", &self.token_url, TOKEN_URL)?;
        Ok(())
    }
}

impl Settings {
    /// The JWT-bearer grant asking for `scopes`.
    pub fn grant(&self, scopes: &[&str]) -> JwtBearer {
        JwtBearer {
            token_url: self.token_url.clone(),
            issuer: self.service_account.clone(),
            subject: Some(self.admin_email.clone()),
            key_secret: self.private_key.clone(),
            header: self.key_id.iter().map(|k| ("kid".to_string(), k.clone())).collect(),
            alg: "RS256".into(),
            scope: Some(scopes.join(" ")),
        }
    }

    /// The account or domain every listing is narrowed to: `("customer", …)` or `("domain", …)`.
    pub fn owner(&self) -> (&'static str, &str) {
        match &self.domain {
            Some(d) => ("domain", d.as_str()),
            None => ("customer", self.customer.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use roster_sdk::settings::{self, Fingerprint};

    use super::*;

    const BASE: &str = r#""service_account":"roster@acme-sync.iam.gserviceaccount.com","admin_email":"admin@acme.com""#;

    fn read(extra: &str) -> Result<Settings, PluginError> {
        settings::read(&format!("{{{BASE}{extra}}}"))
    }

    fn fingerprint(extra: &str) -> Fingerprint {
        Fingerprint::of(&read(extra).unwrap()).unwrap()
    }

    #[test]
    fn defaults_are_google_s_endpoints_and_the_admin_s_own_account() {
        let s = read("").unwrap();
        assert_eq!((s.api_url.as_str(), s.token_url.as_str()), (API_URL, TOKEN_URL));
        assert_eq!(s.owner(), ("customer", "my_customer"));
        assert_eq!((s.nested_groups, s.username), (Nesting::Roster, Username::PrimaryEmail));
        let g = s.grant(SCOPES);
        assert_eq!(g.issuer, "roster@acme-sync.iam.gserviceaccount.com");
        assert_eq!(g.subject.as_deref(), Some("admin@acme.com"));
        assert_eq!(g.key_secret, "service_account_key");
        assert_eq!(
            g.scope.as_deref(),
            Some(
                "https://www.googleapis.com/auth/admin.directory.user.readonly https://www.googleapis.com/auth/admin.directory.group.readonly"
            )
        );
        let d = read(r#","domain":"@Eng.Acme.com","key_id":"k1""#).unwrap();
        assert_eq!(d.owner(), ("domain", "eng.acme.com"));
        assert_eq!(d.grant(SCOPES).header, vec![("kid".to_string(), "k1".to_string())]);
    }

    #[test]
    fn mistakes_name_the_field_and_what_to_write() {
        for (settings, expected) in [
            (
                r#"{"service_account":"roster","admin_email":"admin@acme.com"}"#.to_string(),
                "service_account `roster`",
            ),
            (
                r#"{"service_account":"r@p.iam.gserviceaccount.com","admin_email":"admin"}"#.into(),
                "admin_email `admin`",
            ),
            (
                r#"{"service_account":"r@p.iam.gserviceaccount.com","admin_email":"r@p.iam.gserviceaccount.com"}"#
                    .into(),
                "admin_email is a service account",
            ),
            (
                format!("{{{BASE},\"customer\":\"C01\",\"domain\":\"acme.com\"}}"),
                "not both",
            ),
            (format!("{{{BASE},\"domain\":\"acme\"}}"), "domain `acme`"),
            (format!("{{{BASE},\"user_query\":\" \"}}"), "user_query is empty"),
            (
                format!("{{{BASE},\"attributes\":[\"org unit\"]}}"),
                "attributes: `org unit`",
            ),
            (
                format!("{{{BASE},\"attributes\":[\"suspended\"]}}"),
                "attributes: `suspended` is already part of every user record",
            ),
            (
                format!("{{{BASE},\"attributes\":[\"customSchemas\"]}}"),
                "`customSchemas` is not read",
            ),
            (
                format!("{{{BASE},\"api_url\":\"http://admin.googleapis.com\"}}"),
                "api_url",
            ),
            (
                format!("{{{BASE},\"nested_groups\":\"ldap\"}}"),
                "unknown variant `ldap`",
            ),
            (format!("{{{BASE},\"costumer\":\"x\"}}"), "unknown field `costumer`"),
            (
                r#"{"admin_email":"admin@acme.com"}"#.into(),
                "missing field `service_account`",
            ),
        ] {
            let err = settings::read::<Settings>(&settings).unwrap_err();
            assert!(
                matches!(&err, PluginError::Config(m) if m.contains(expected)),
                "{settings}: {err:?}"
            );
        }
        let sim = read(r#","api_url":"http://127.0.0.1:8080/","token_url":"http://127.0.0.1:8080/token""#).unwrap();
        assert_eq!(sim.api_url, "http://127.0.0.1:8080");
        assert_eq!(sim.token_url, "http://127.0.0.1:8080/token");
    }

    #[test]
    fn settings_that_change_the_records_change_the_fingerprint_and_credentials_do_not() {
        let base = fingerprint("");
        for extra in [
            r#","domain":"acme.com""#,
            r#","user_query":"orgUnitPath=/Eng""#,
            r#","group_query":"email:eng*""#,
            r#","nested_groups":"google""#,
            r#","username":"email-local-part""#,
            r#","attributes":["orgUnitPath"]"#,
        ] {
            assert_ne!(fingerprint(extra), base, "{extra}");
        }
        for extra in [r#","key_id":"k2""#, r#","private_key":"other""#] {
            assert_eq!(fingerprint(extra), base, "{extra}");
        }
        assert!(settings::undeclared_outside_scope::<Settings>().is_empty());
    }
}

//! The `entra` source's settings, as an administrator writes them in `roster.toml`, validated
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
    /// Every user and group of the tenant, optionally narrowed by `user_filter` / `group_filter`.
    #[default]
    Tenant,
    /// The groups listed in `groups`, the groups nested in them, and their users (transitively).
    Groups,
    /// The users and groups assigned to an Enterprise Application (`app_id` or
    /// `service_principal_id`); assigned groups are expanded transitively.
    App,
}

/// How Roster proves it is the app registration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AuthKind {
    /// A client secret (the secret named by `client_secret`).
    #[default]
    Secret,
    /// A certificate: the host signs an RS256 client assertion with the key named by
    /// `certificate_key`; `certificate_thumbprint` identifies the uploaded certificate.
    Certificate,
}

/// Where a guest's email comes from (guests' `mail` is often empty).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GuestEmail {
    /// `mail`, else the first of `otherMails`.
    #[default]
    Mail,
    /// The first of `otherMails`, else `mail`.
    OtherMails,
}

/// The settings object of an `entra` source.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Microsoft Entra ID (Microsoft Graph)")]
pub struct Settings {
    /// Directory (tenant) id, or a verified domain such as `contoso.onmicrosoft.com`.
    pub tenant_id: String,
    /// Application (client) id of the app registration Roster signs in as.
    pub client_id: String,
    /// Secret or certificate.
    #[serde(default)]
    pub auth: AuthKind,
    /// Name of the host-held secret with the client secret's value.
    #[serde(default = "default_secret_name")]
    pub client_secret: String,
    /// Name of the host-held signing key (PEM) of the certificate.
    #[serde(default = "default_key_name")]
    pub certificate_key: String,
    /// SHA-1 thumbprint of the certificate, hex, as the Entra portal shows it.
    pub certificate_thumbprint: Option<String>,
    /// Microsoft Graph's base URL (another value for national clouds).
    #[serde(default = "default_graph_url")]
    pub graph_url: String,
    /// The sign-in authority's base URL.
    #[serde(default = "default_login_url")]
    pub login_url: String,
    /// Which users and groups to read.
    #[serde(default)]
    pub scope: Scope,
    /// `scope = "groups"`: group object ids or display names.
    #[serde(default)]
    pub groups: Vec<String>,
    /// `scope = "app"`: the Enterprise Application's application (client) id (or give
    /// `service_principal_id`).
    pub app_id: Option<String>,
    /// `scope = "app"`: the Enterprise Application's service principal object id (instead of
    /// `app_id`).
    pub service_principal_id: Option<String>,
    /// `scope = "tenant"`: an OData `$filter` on users, e.g. `accountEnabled eq true`.
    pub user_filter: Option<String>,
    /// `scope = "tenant"`: an OData `$filter` on groups, e.g. `startswith(displayName,'bb-')`.
    pub group_filter: Option<String>,
    /// The Graph user property that becomes the username.
    #[serde(default = "default_username_attribute")]
    pub username_attribute: String,
    /// Where guests' emails come from.
    #[serde(default)]
    pub guest_email: GuestEmail,
    /// Read guest users (`#EXT#` in the UPN) at all.
    #[serde(default = "yes")]
    pub include_guests: bool,
    /// Directory extension attributes to read (`extension_<appId without dashes>_<name>`).
    #[serde(default)]
    pub extension_attributes: Vec<String>,
    /// Further Graph user properties to read as attributes (e.g. `jobTitle`, `officeLocation`).
    #[serde(default)]
    pub attributes: Vec<String>,
    /// Objects per listing page (1–999).
    #[serde(default = "default_page_size")]
    #[schemars(range(min = 1, max = 999))]
    pub page_size: u32,
}

fn default_secret_name() -> String {
    "client_secret".into()
}
fn default_key_name() -> String {
    "certificate_key".into()
}
fn default_graph_url() -> String {
    "https://graph.microsoft.com".into()
}
fn default_login_url() -> String {
    "https://login.microsoftonline.com".into()
}
fn default_username_attribute() -> String {
    "userPrincipalName".into()
}
fn default_page_size() -> u32 {
    999
}
fn yes() -> bool {
    true
}

/// User properties always read: the mapping defaults and the attributes transforms expect.
pub const USER_PROPERTIES: &[&str] = &[
    "id",
    "userPrincipalName",
    "mail",
    "displayName",
    "givenName",
    "surname",
    "accountEnabled",
    "employeeId",
    "department",
    "onPremisesSamAccountName",
    "otherMails",
    "userType",
];

/// Group properties read.
pub const GROUP_PROPERTIES: &[&str] = &["id", "displayName", "description", "mailNickname", "securityEnabled"];

/// Properties that may serve as the username besides extension attributes.
const USERNAME_CANDIDATES: &[&str] = &[
    "userPrincipalName",
    "mail",
    "onPremisesSamAccountName",
    "employeeId",
    "mailNickname",
];

fn config(msg: impl Into<String>) -> PluginError {
    PluginError::Config(msg.into())
}

/// A Graph property name: letters, digits and `_` (extension attributes), nothing to escape.
fn is_property_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn base_url(what: &str, raw: &str) -> Result<String, PluginError> {
    let trimmed = raw.trim().trim_end_matches('/');
    let parsed = url::Url::parse(trimmed).map_err(|e| config(format!("{what} `{raw}` is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
        return Err(config(format!("{what} `{raw}` must be an https:// URL")));
    }
    Ok(trimmed.to_string())
}

impl SourceSettings for Settings {
    // Credentials, the sign-in endpoint and page sizes decide how Graph is asked, not what it
    // answers; everything else (tenant, scope, filters, attributes, guests) is in the fingerprint.
    const OUTSIDE_SCOPE: &'static [&'static str] = &[
        "client_id",
        "auth",
        "client_secret",
        "certificate_key",
        "certificate_thumbprint",
        "login_url",
        "page_size",
    ];

    fn validate(&mut self) -> Result<(), PluginError> {
        let tenant = self.tenant_id.trim();
        if tenant.is_empty()
            || !tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(config(format!(
                "tenant_id `{}` must be the directory (tenant) id or a verified domain such as contoso.onmicrosoft.com",
                self.tenant_id
            )));
        }
        self.tenant_id = tenant.to_string();
        if self.client_id.trim().is_empty() {
            return Err(config(
                "client_id is empty: give the app registration's application (client) id",
            ));
        }
        self.graph_url = base_url("graph_url", &self.graph_url)?;
        self.login_url = base_url("login_url", &self.login_url)?;
        if !(1..=999).contains(&self.page_size) {
            return Err(config(format!(
                "page_size {} is out of range: Graph pages hold 1 to 999 objects",
                self.page_size
            )));
        }
        if self.auth == AuthKind::Certificate {
            let thumb = self.certificate_thumbprint.as_deref().unwrap_or("");
            let hex: String = thumb.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
            if hex.len() != 40 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(config(
                    "certificate_thumbprint must be the certificate's SHA-1 thumbprint (40 hex digits, as the Entra portal shows it) when auth = \"certificate\"",
                ));
            }
            self.certificate_thumbprint = Some(hex);
        }
        for name in self.extension_attributes.iter().chain(&self.attributes) {
            if !is_property_name(name) {
                return Err(config(format!("`{name}` is not a Graph property name")));
            }
        }
        if let Some(bad) = self.extension_attributes.iter().find(|n| !n.starts_with("extension_")) {
            return Err(config(format!(
                "extension attribute `{bad}` must look like extension_<appId without dashes>_<name>"
            )));
        }
        let u = self.username_attribute.as_str();
        if !USERNAME_CANDIDATES.contains(&u) && !self.extension_attributes.iter().any(|e| e == u) {
            return Err(config(format!(
                "username_attribute `{u}` must be one of {} or one of extension_attributes",
                USERNAME_CANDIDATES.join(", ")
            )));
        }
        match self.scope {
            Scope::Tenant => {
                if !self.groups.is_empty() || self.app_id.is_some() || self.service_principal_id.is_some() {
                    return Err(config(
                        "`groups`, `app_id` and `service_principal_id` need scope = \"groups\" or \"app\"",
                    ));
                }
            }
            Scope::Groups => {
                if self.groups.iter().all(|g| g.trim().is_empty()) {
                    return Err(config(
                        "scope = \"groups\" needs `groups`: the ids or display names of the groups to sync from",
                    ));
                }
            }
            Scope::App => {
                if self.app_id.is_none() == self.service_principal_id.is_none() {
                    return Err(config(
                        "scope = \"app\" needs exactly one of `app_id` (the Enterprise Application's application id) or `service_principal_id`",
                    ));
                }
            }
        }
        if self.scope != Scope::Tenant && (self.user_filter.is_some() || self.group_filter.is_some()) {
            return Err(config(
                "`user_filter` and `group_filter` apply to scope = \"tenant\"; with groups or an app the scope already decides",
            ));
        }
        Ok(())
    }
}

impl Settings {
    /// The token endpoint of the tenant.
    pub fn token_url(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.login_url, self.tenant_id)
    }

    /// OAuth client credentials for Graph.
    pub fn credentials(&self) -> ClientCredentials {
        let auth = match self.auth {
            AuthKind::Secret => ClientAuth::Secret {
                secret: self.client_secret.clone(),
            },
            AuthKind::Certificate => ClientAuth::Assertion {
                key_secret: self.certificate_key.clone(),
                header: vec![(
                    "x5t".into(),
                    roster_sdk::oauth::x5t_from_thumbprint(self.certificate_thumbprint.as_deref().unwrap_or(""))
                        .unwrap_or_default(),
                )],
                alg: "RS256".into(),
            },
        };
        ClientCredentials {
            token_url: self.token_url(),
            client_id: self.client_id.clone(),
            auth,
            // The resource identifier is Graph's own URL (public and national clouds).
            scope: Some(format!("{}/.default", self.graph_url)),
            body: TokenBody::Form,
        }
    }

    /// The user properties to `$select`.
    pub fn user_select(&self) -> String {
        let mut props: Vec<&str> = USER_PROPERTIES.to_vec();
        let username = std::iter::once(&self.username_attribute);
        for extra in username.chain(&self.attributes).chain(&self.extension_attributes) {
            if !props.contains(&extra.as_str()) {
                props.push(extra);
            }
        }
        props.join(",")
    }
}

#[cfg(test)]
mod tests {
    use roster_sdk::settings::{self, Fingerprint};

    use super::*;

    fn parse(extra: &str) -> Settings {
        settings::read(&format!(r#"{{"tenant_id":"t","client_id":"c"{extra}}}"#)).unwrap()
    }

    fn fingerprint(extra: &str) -> Fingerprint {
        Fingerprint::of(&parse(extra)).unwrap()
    }

    #[test]
    fn the_username_attribute_is_always_read() {
        let s = parse(r#","username_attribute":"mailNickname""#);
        assert!(s.user_select().split(',').any(|p| p == "mailNickname"));
    }

    #[test]
    fn every_setting_that_changes_records_changes_the_fingerprint() {
        let base = fingerprint("");
        for extra in [
            r#","include_guests":false"#,
            r#","guest_email":"other-mails""#,
            r#","username_attribute":"mail""#,
            r#","user_filter":"accountEnabled eq true""#,
            r#","attributes":["jobTitle"]"#,
            r#","scope":"groups","groups":["x"]"#,
        ] {
            assert_ne!(fingerprint(extra), base, "{extra}");
        }
        assert_eq!(
            fingerprint(r#","page_size":100"#),
            base,
            "page size changes nothing read"
        );
        assert!(settings::undeclared_outside_scope::<Settings>().is_empty());
    }

    #[test]
    fn mistakes_are_named() {
        for (extra, expected) in [
            (r#","page_size":1000"#, "page_size 1000"),
            (r#","scope":"groups""#, "needs `groups`"),
            (r#","scope":"app""#, "exactly one of `app_id`"),
            (r#","auth":"certificate""#, "certificate_thumbprint"),
            (r#","username_attribute":"employeeNumber""#, "username_attribute"),
            (r#","graph_url":"ftp://x""#, "https://"),
            (
                r#","scope":"groups","groups":["a"],"user_filter":"x""#,
                "apply to scope",
            ),
        ] {
            let err =
                settings::read::<Settings>(&format!(r#"{{"tenant_id":"t","client_id":"c"{extra}}}"#)).unwrap_err();
            assert!(err.to_string().contains(expected), "{extra}: {err}");
        }
    }

    #[test]
    fn the_schema_describes_every_setting() {
        let schema: serde_json::Value = serde_json::from_str(&settings::schema::<Settings>()).unwrap();
        assert_eq!(schema["title"], "Microsoft Entra ID (Microsoft Graph)");
        assert_eq!(schema["required"], serde_json::json!(["tenant_id", "client_id"]));
        assert_eq!(schema["additionalProperties"], false);
        let props = schema["properties"].as_object().unwrap();
        assert_eq!(props.len(), 20);
        assert_eq!(props["page_size"]["maximum"], 999);
        assert_eq!(props["graph_url"]["default"], "https://graph.microsoft.com");
    }
}

//! The `onelogin` source's settings, as an administrator writes them in `roster.toml`, validated
//! before any request is made.

use roster_sdk::PluginError;
use roster_sdk::oauth::{ClientAuth, ClientCredentials, TokenBody};
use roster_sdk::settings::SourceSettings;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What becomes a Roster group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GroupsFrom {
    /// OneLogin roles (how most accounts grant access).
    #[default]
    Roles,
    /// OneLogin groups (API v1; a user is in at most one).
    Groups,
    /// Both, as `role:<id>` and `group:<id>` groups.
    RolesAndGroups,
}

impl GroupsFrom {
    /// Roles are read.
    pub fn roles(self) -> bool {
        matches!(self, GroupsFrom::Roles | GroupsFrom::RolesAndGroups)
    }

    /// Groups are read.
    pub fn groups(self) -> bool {
        matches!(self, GroupsFrom::Groups | GroupsFrom::RolesAndGroups)
    }
}

/// The user field that becomes the Bitbucket username.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UsernameAttribute {
    /// `username`.
    #[default]
    Username,
    /// `email`.
    Email,
    /// `samaccountname` (accounts synced from Active Directory).
    Samaccountname,
    /// `userprincipalname`.
    Userprincipalname,
}

impl UsernameAttribute {
    /// The field's name in OneLogin's user object.
    pub fn field(self) -> &'static str {
        match self {
            UsernameAttribute::Username => "username",
            UsernameAttribute::Email => "email",
            UsernameAttribute::Samaccountname => "samaccountname",
            UsernameAttribute::Userprincipalname => "userprincipalname",
        }
    }
}

/// A OneLogin user status (the API's `status` number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// 0: created, never activated.
    Unactivated,
    /// 1.
    Active,
    /// 2.
    Suspended,
    /// 3: locked after failed sign-ins.
    Locked,
    /// 4.
    PasswordExpired,
    /// 5.
    AwaitingPasswordReset,
    /// 7.
    PasswordPending,
    /// 8.
    SecurityQuestionsRequired,
}

impl Status {
    /// Every status, with its number.
    pub const ALL: [(Status, i64); 8] = [
        (Status::Unactivated, 0),
        (Status::Active, 1),
        (Status::Suspended, 2),
        (Status::Locked, 3),
        (Status::PasswordExpired, 4),
        (Status::AwaitingPasswordReset, 5),
        (Status::PasswordPending, 7),
        (Status::SecurityQuestionsRequired, 8),
    ];

    /// The status with OneLogin's number `n`, if it is one this connector knows.
    pub fn from_number(n: i64) -> Option<Status> {
        Status::ALL.iter().find(|(_, k)| *k == n).map(|(s, _)| *s)
    }

    /// The name administrators write in `active_statuses`.
    pub fn name(self) -> &'static str {
        match self {
            Status::Unactivated => "unactivated",
            Status::Active => "active",
            Status::Suspended => "suspended",
            Status::Locked => "locked",
            Status::PasswordExpired => "password-expired",
            Status::AwaitingPasswordReset => "awaiting-password-reset",
            Status::PasswordPending => "password-pending",
            Status::SecurityQuestionsRequired => "security-questions-required",
        }
    }
}

/// The settings object of a `onelogin` source.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "OneLogin (API v2)")]
pub struct Settings {
    /// The account's API domain, e.g. `https://acme.onelogin.com` (EU accounts too).
    pub api_url: String,
    /// The API credential's client id (Developers → API Credentials).
    pub client_id: String,
    /// Name of the host-held secret with the credential's client secret, bound with
    /// `use = { header = "Authorization" }`, `methods = ["POST"]` and
    /// `path = "/auth/oauth2/v2/token"` (the token request is the only one that carries it).
    #[serde(default = "default_secret_name")]
    pub client_secret: String,
    /// What becomes a Roster group: `roles`, `groups` or `roles-and-groups`.
    #[serde(default)]
    pub groups_from: GroupsFrom,
    /// Only these roles (names or ids) and the users who hold one; empty: every role and every
    /// user. Each role named is a group even while nobody holds it; a OneLogin group is one only
    /// while it holds one of these users.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The user field that becomes the username.
    #[serde(default)]
    pub username_attribute: UsernameAttribute,
    /// More user fields as attributes: top-level fields (`department`, `title`) or
    /// `custom_attributes.NAME`.
    #[serde(default)]
    pub attributes: Vec<String>,
    /// Statuses that count as active (with `state` approved or absent); the others are inactive.
    #[serde(default = "default_active_statuses")]
    pub active_statuses: Vec<Status>,
    /// Objects per request (`limit`, 1–1000).
    #[serde(default = "default_page_size")]
    #[schemars(range(min = 1, max = 1000))]
    pub page_size: u32,
}

fn default_secret_name() -> String {
    "client_secret".into()
}

fn default_active_statuses() -> Vec<Status> {
    vec![
        Status::Active,
        Status::Locked,
        Status::PasswordExpired,
        Status::AwaitingPasswordReset,
        Status::PasswordPending,
        Status::SecurityQuestionsRequired,
    ]
}

fn default_page_size() -> u32 {
    1000
}

/// The path of OneLogin's token endpoint under `api_url`.
pub const TOKEN_PATH: &str = "/auth/oauth2/v2/token";

/// The prefix of an attribute read from `custom_attributes`.
pub const CUSTOM: &str = "custom_attributes.";

fn config(msg: impl Into<String>) -> PluginError {
    PluginError::Config(msg.into())
}

/// A OneLogin field name: letters, digits and `_`.
fn is_field_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl SourceSettings for Settings {
    // The credential and page size decide how OneLogin is asked, not what it answers.
    const OUTSIDE_SCOPE: &'static [&'static str] = &["client_id", "client_secret", "page_size"];

    fn validate(&mut self) -> Result<(), PluginError> {
        let raw = self.api_url.clone();
        let trimmed = raw.trim().trim_end_matches('/');
        let parsed = url::Url::parse(trimmed).map_err(|e| {
            config(format!(
                "api_url `{raw}` is not a URL ({e}); use https://<subdomain>.onelogin.com"
            ))
        })?;
        if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
            return Err(config(format!(
                "api_url `{raw}` must be an https:// URL such as https://<subdomain>.onelogin.com"
            )));
        }
        if parsed.path() != "/" || parsed.query().is_some() {
            return Err(config(format!(
                "api_url `{raw}` must be the account's API domain alone, such as https://<subdomain>.onelogin.com (no path)"
            )));
        }
        self.api_url = trimmed.to_string();
        if self.client_id.trim().is_empty() || self.client_id.contains(':') {
            return Err(config(
                "client_id must be the API credential's client id (Developers → API Credentials); it is empty or holds a `:`",
            ));
        }
        if self.client_secret.trim().is_empty() {
            return Err(config(
                "client_secret must name the host secret that holds the client secret",
            ));
        }
        if !(1..=1000).contains(&self.page_size) {
            return Err(config(format!(
                "page_size {} is out of range: OneLogin returns 1 to 1000 objects per request",
                self.page_size
            )));
        }
        self.roles = self.roles.iter().map(|r| r.trim().to_string()).collect();
        if self.roles.iter().any(String::is_empty) {
            return Err(config("roles holds an empty entry: give role names or ids"));
        }
        if !self.roles.is_empty() && !self.groups_from.roles() {
            return Err(config(
                "roles narrows the roles read, so it needs groups_from = \"roles\" or \"roles-and-groups\"",
            ));
        }
        for a in &self.attributes {
            let name = a.strip_prefix(CUSTOM).unwrap_or(a);
            if !is_field_name(name) {
                return Err(config(format!(
                    "attributes: `{a}` is not a OneLogin user field; give a field such as `department` or `custom_attributes.NAME`"
                )));
            }
        }
        if self.active_statuses.is_empty() {
            return Err(config(
                "active_statuses is empty, which would make every user inactive; list the statuses that count as active",
            ));
        }
        self.active_statuses.sort();
        self.active_statuses.dedup();
        Ok(())
    }
}

impl Settings {
    /// The token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.api_url)
    }

    /// OneLogin's client credentials: HTTP Basic and a JSON body.
    pub fn credentials(&self) -> ClientCredentials {
        ClientCredentials {
            token_url: self.token_url(),
            client_id: self.client_id.clone(),
            auth: ClientAuth::Basic {
                secret: self.client_secret.clone(),
            },
            scope: None,
            body: TokenBody::Json,
        }
    }
}

#[cfg(test)]
mod tests {
    use roster_sdk::settings::{self, Fingerprint};

    use super::*;

    fn read(extra: &str) -> Result<Settings, PluginError> {
        settings::read(&format!(
            r#"{{"api_url":"https://acme.onelogin.com/","client_id":"c"{extra}}}"#
        ))
    }

    #[test]
    fn defaults_follow_the_contract() {
        let s = read("").unwrap();
        assert_eq!(s.api_url, "https://acme.onelogin.com");
        assert_eq!(s.token_url(), "https://acme.onelogin.com/auth/oauth2/v2/token");
        assert_eq!((s.groups_from, s.page_size), (GroupsFrom::Roles, 1000));
        assert_eq!(s.username_attribute.field(), "username");
        assert_eq!(s.client_secret, "client_secret");
        assert!(!s.active_statuses.contains(&Status::Suspended) && !s.active_statuses.contains(&Status::Unactivated));
        assert_eq!(s.active_statuses.len(), 6);
    }

    #[test]
    fn mistakes_name_the_setting() {
        for (extra, expected) in [
            (r#","page_size":0"#, "page_size 0"),
            (r#","page_size":1001"#, "page_size 1001"),
            (r#","groups_from":"groups","roles":["Eng"]"#, "roles narrows"),
            (r#","roles":[" "]"#, "roles holds an empty"),
            (
                r#","attributes":["custom_attributes.a b"]"#,
                "attributes: `custom_attributes.a b`",
            ),
            (r#","attributes":["x.y"]"#, "attributes: `x.y`"),
            (r#","active_statuses":[]"#, "active_statuses is empty"),
            (r#","active_statuses":["enabled"]"#, "unknown variant `enabled`"),
            (r#","username_attribute":"login""#, "unknown variant `login`"),
            (r#","groups_from":"teams""#, "unknown variant `teams`"),
            (r#","tenant":"x""#, "unknown field `tenant`"),
        ] {
            let err = read(extra).unwrap_err();
            assert!(
                matches!(&err, PluginError::Config(m) if m.contains(expected)),
                "{extra}: {err:?}"
            );
        }
        for (url, expected) in [
            ("ftp://acme.onelogin.com", "must be an https://"),
            ("acme.onelogin.com", "is not a URL"),
            ("https://acme.onelogin.com/api/2", "no path"),
        ] {
            let err = settings::read::<Settings>(&format!(r#"{{"api_url":"{url}","client_id":"c"}}"#)).unwrap_err();
            assert!(
                matches!(&err, PluginError::Config(m) if m.contains("api_url") && m.contains(expected)),
                "{url}: {err:?}"
            );
        }
        let err = settings::read::<Settings>(r#"{"api_url":"https://a.onelogin.com","client_id":"a:b"}"#).unwrap_err();
        assert!(err.to_string().contains("client_id"), "{err}");
        let err = settings::read::<Settings>(r#"{"client_id":"c"}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `api_url`"), "{err}");
    }

    #[test]
    fn the_fingerprint_covers_what_is_read_and_not_how() {
        let fp = |extra: &str| Fingerprint::of(&read(extra).unwrap()).unwrap();
        let base = fp("");
        for extra in [
            r#","groups_from":"roles-and-groups""#,
            r#","roles":["Eng"]"#,
            r#","username_attribute":"email""#,
            r#","attributes":["title"]"#,
            r#","active_statuses":["active"]"#,
        ] {
            assert_ne!(fp(extra), base, "{extra}");
        }
        for extra in [r#","page_size":50"#, r#","client_secret":"other""#] {
            assert_eq!(fp(extra), base, "{extra}");
        }
        let other_id =
            settings::read::<Settings>(r#"{"api_url":"https://acme.onelogin.com","client_id":"d"}"#).unwrap();
        assert_eq!(Fingerprint::of(&other_id).unwrap(), base);
        // The same statuses in another order are the same scope.
        assert_eq!(
            fp(r#","active_statuses":["locked","active"]"#),
            fp(r#","active_statuses":["active","locked","active"]"#)
        );
        assert!(settings::undeclared_outside_scope::<Settings>().is_empty());
    }

    #[test]
    fn the_schema_describes_every_setting() {
        let schema: serde_json::Value = serde_json::from_str(&settings::schema::<Settings>()).unwrap();
        assert_eq!(schema["title"], "OneLogin (API v2)");
        assert_eq!(schema["required"], serde_json::json!(["api_url", "client_id"]));
        assert_eq!(schema["additionalProperties"], false);
        let props = schema["properties"].as_object().unwrap();
        assert_eq!(props.len(), 9);
        assert_eq!(props["page_size"]["maximum"], 1000);
        assert_eq!(props["page_size"]["default"], 1000);
    }

    #[test]
    fn status_numbers_round_trip() {
        for (s, n) in Status::ALL {
            assert_eq!(Status::from_number(n), Some(s));
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.name()));
        }
        assert_eq!(Status::from_number(6), None);
    }
}

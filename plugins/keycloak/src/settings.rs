//! The `keycloak` source's settings, as an administrator writes them in `roster.toml`,
//! validated before any request is made.

use roster_sdk::PluginError;
use roster_sdk::oauth::{ClientAuth, ClientCredentials, TokenBody};
use roster_sdk::settings::SourceSettings;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a Keycloak group is named in Roster (and so in Bitbucket).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GroupNames {
    /// The group's path, `/engineering/backend`: unique in the realm.
    #[default]
    Path,
    /// The group's own name, `backend`: unique only among its siblings, so two sub-groups of
    /// the same name under different parents become one name in Bitbucket.
    Name,
}

/// What a sub-group means for its parent's members.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Subgroups {
    /// A sub-group is a member of its parent, so its members count as the parent's members too
    /// (Keycloak's own meaning: a sub-group's members inherit the parent's roles). Roster
    /// flattens the nesting.
    #[default]
    Nested,
    /// Every group holds its direct members only; sub-groups are separate groups.
    Separate,
}

/// The settings object of a `keycloak` source.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Keycloak (Admin REST API)")]
pub struct Settings {
    /// The server's address, e.g. `https://sso.example.com`; with the `/auth` prefix for
    /// Keycloak before 17 (WildFly distribution): `https://sso.example.com/auth`.
    pub base_url: String,
    /// The realm whose users and groups are read (its name, not its display name).
    pub realm: String,
    /// The confidential client with a service account, in that realm.
    pub client_id: String,
    /// Name of the host-held secret with the client's secret.
    #[serde(default = "default_client_secret")]
    pub client_secret: String,
    /// Groups by path (`/engineering/backend`, the default) or by name (`backend`).
    #[serde(default)]
    pub group_names: GroupNames,
    /// Whether a sub-group's members count as members of its parents (`nested`, the default).
    #[serde(default)]
    pub subgroups: Subgroups,
    /// What becomes the Bitbucket username: `username` (the default), `email`, or a user
    /// attribute's name.
    #[serde(default = "default_username_attribute")]
    pub username_attribute: String,
    /// Realm user attributes (`attributes` of the user) passed to mappings.
    #[serde(default)]
    pub attributes: Vec<String>,
    /// Users, groups and members per page (`max`; 1–1000).
    #[serde(default = "default_page_size")]
    #[schemars(range(min = 1, max = 1000))]
    pub page_size: u32,
}

fn default_client_secret() -> String {
    "client_secret".into()
}
fn default_username_attribute() -> String {
    "username".into()
}
/// Large enough that 100,000 users are 100 requests, small enough that a page with every
/// attribute (`briefRepresentation=false`) stays a few megabytes, far below the host's response cap.
fn default_page_size() -> u32 {
    1000
}

fn config(msg: impl Into<String>) -> PluginError {
    PluginError::Config(msg.into())
}

/// A Keycloak attribute name as an administrator can type one: no spaces or control characters.
fn is_attribute_name(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn base_url(raw: &str) -> Result<String, PluginError> {
    let parsed = roster_sdk::settings::service_url(
        "base_url",
        raw,
        "https://sso.example.com (https://sso.example.com/auth before Keycloak 17)",
    )?;
    let path = parsed.path().trim_end_matches('/');
    if path.contains("/realms/") || path.ends_with("/realms") || path.contains("/admin") {
        return Err(config(format!(
            "base_url `{raw}` includes an API path: write the server's address only (https://sso.example.com, or https://sso.example.com/auth before Keycloak 17) and the realm in `realm`"
        )));
    }
    Ok(format!("{}{path}", parsed.origin().ascii_serialization()))
}

impl SourceSettings for Settings {
    // Credentials and page sizes decide how Keycloak is asked, not what it answers.
    const OUTSIDE_SCOPE: &'static [&'static str] = &["client_id", "client_secret", "page_size"];

    fn validate(&mut self) -> Result<(), PluginError> {
        self.base_url = base_url(&self.base_url)?;
        let realm = self.realm.trim();
        if realm.is_empty() {
            return Err(config(
                "realm is empty: write the realm's name as the admin console's realm list shows it (e.g. acme), not its display name",
            ));
        }
        self.realm = realm.to_string();
        let client = self.client_id.trim();
        if client.is_empty() {
            return Err(config(
                "client_id is empty: write the Client ID of the confidential client whose service account Roster uses",
            ));
        }
        self.client_id = client.to_string();
        if self.client_secret.trim().is_empty() {
            return Err(config(
                "client_secret is empty: name the secret that holds the client's secret (Clients → the client → Credentials)",
            ));
        }
        if !(1..=1000).contains(&self.page_size) {
            return Err(config(format!(
                "page_size {} is out of range: write 1 to 1000",
                self.page_size
            )));
        }
        let u = self.username_attribute.trim();
        if !is_attribute_name(u) {
            return Err(config(format!(
                "username_attribute `{}` is not an attribute name: write username, email or a user attribute's name",
                self.username_attribute
            )));
        }
        self.username_attribute = u.to_string();
        if let Some(bad) = self.attributes.iter().find(|a| !is_attribute_name(a.trim())) {
            return Err(config(format!(
                "attributes: `{bad}` is not a user attribute name (no spaces)"
            )));
        }
        for a in &mut self.attributes {
            *a = a.trim().to_string();
        }
        self.attributes.sort();
        self.attributes.dedup();
        Ok(())
    }
}

impl Settings {
    /// `{base_url}/admin/realms/{realm}`: the Admin REST API of the realm.
    pub fn admin_url(&self) -> String {
        format!(
            "{}/admin/realms/{}",
            self.base_url,
            roster_sdk::http::path_segment(&self.realm)
        )
    }

    /// The realm's token endpoint.
    pub fn token_url(&self) -> String {
        format!(
            "{}/realms/{}/protocol/openid-connect/token",
            self.base_url,
            roster_sdk::http::path_segment(&self.realm)
        )
    }

    /// OAuth client credentials with the client secret in the body (Keycloak's default
    /// "Client Id and Secret" authenticator takes it there or as Basic).
    pub fn credentials(&self) -> ClientCredentials {
        ClientCredentials {
            token_url: self.token_url(),
            client_id: self.client_id.clone(),
            auth: ClientAuth::Secret {
                secret: self.client_secret.clone(),
            },
            scope: None,
            body: TokenBody::Form,
        }
    }
}

#[cfg(test)]
mod tests {
    use roster_sdk::settings::{self, Fingerprint};

    use super::*;

    /// The settings of a source, with `extra` (`,"name":value…`) added or replacing.
    fn read(extra: &str) -> Result<Settings, PluginError> {
        let mut base: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"base_url":"https://sso.example.com/","realm":"acme","client_id":"roster"}"#)
                .unwrap();
        let more: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&format!("{{{}}}", extra.trim_start_matches(','))).unwrap();
        base.extend(more);
        settings::read(&serde_json::Value::Object(base).to_string())
    }

    fn fingerprint(extra: &str) -> Fingerprint {
        Fingerprint::of(&read(extra).unwrap()).unwrap()
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = read("").unwrap();
        assert_eq!(s.base_url, "https://sso.example.com");
        assert_eq!((s.group_names, s.subgroups), (GroupNames::Path, Subgroups::Nested));
        assert_eq!((s.username_attribute.as_str(), s.page_size), ("username", 1000));
        assert_eq!(s.client_secret, "client_secret");
        assert_eq!(
            s.token_url(),
            "https://sso.example.com/realms/acme/protocol/openid-connect/token"
        );
        assert_eq!(s.admin_url(), "https://sso.example.com/admin/realms/acme");
        let c = s.credentials();
        assert_eq!(
            c.auth,
            ClientAuth::Secret {
                secret: "client_secret".into()
            }
        );
        assert_eq!(c.client_id, "roster");
    }

    #[test]
    fn the_auth_prefix_of_keycloak_before_17_comes_from_the_base_url() {
        let s = settings::read::<Settings>(
            r#"{"base_url":"https://SSO.example.com:443/auth/","realm":"acme","client_id":"roster"}"#,
        )
        .unwrap();
        assert_eq!(s.base_url, "https://sso.example.com/auth");
        assert_eq!(
            s.token_url(),
            "https://sso.example.com/auth/realms/acme/protocol/openid-connect/token"
        );
        assert_eq!(s.admin_url(), "https://sso.example.com/auth/admin/realms/acme");
    }

    #[test]
    fn mistakes_name_the_field_and_what_to_write() {
        for (extra, expected) in [
            (r#","page_size":1001"#, "page_size 1001"),
            (r#","page_size":0"#, "1 to 1000"),
            (r#","realm":" ""#, "realm is empty"),
            (r#","client_id":"""#, "client_id is empty"),
            (r#","client_secret":"""#, "client_secret is empty"),
            (r#","username_attribute":"a b""#, "username_attribute"),
            (r#","attributes":["a b"]"#, "attributes: `a b`"),
            (r#","group_names":"full""#, "unknown variant `full`"),
            (r#","subgroups":"flat""#, "unknown variant `flat`"),
            (r#","realms":"x""#, "unknown field `realms`"),
        ] {
            let err = read(extra).unwrap_err();
            assert!(
                matches!(&err, PluginError::Config(m) if m.contains(expected)),
                "{extra}: {err:?}"
            );
        }
        for url in [
            "http://sso.example.com",
            "sso.example.com",
            "https://sso.example.com/admin/realms/acme",
            "https://sso.example.com/realms/acme",
            "https://sso.example.com/?x=1",
            "https://admin:pw@sso.example.com",
        ] {
            let err = settings::read::<Settings>(&format!(
                r#"{{"base_url":"{url}","realm":"acme","client_id":"roster"}}"#
            ))
            .unwrap_err();
            assert!(
                matches!(&err, PluginError::Config(m) if m.contains("base_url")),
                "{url}: {err:?}"
            );
        }
        assert!(
            settings::read::<Settings>(r#"{"base_url":"http://127.0.0.1:8080","realm":"r","client_id":"c"}"#).is_ok()
        );
    }

    #[test]
    fn every_setting_that_changes_records_changes_the_fingerprint() {
        let base = fingerprint("");
        for extra in [
            r#","realm":"other""#,
            r#","base_url":"https://sso2.example.com""#,
            r#","group_names":"name""#,
            r#","subgroups":"separate""#,
            r#","username_attribute":"email""#,
            r#","attributes":["department"]"#,
        ] {
            assert_ne!(fingerprint(extra), base, "{extra}");
        }
        for extra in [
            r#","page_size":50"#,
            r#","client_secret":"other""#,
            r#","client_id":"other""#,
        ] {
            assert_eq!(fingerprint(extra), base, "{extra}");
        }
        assert!(settings::undeclared_outside_scope::<Settings>().is_empty());
    }
}

//! The `scim` source's settings, as an administrator writes them in `roster.toml`, validated
//! before any request is made.

use roster_sdk::PluginError;
use roster_sdk::oauth::{ClientAuth, ClientCredentials, TokenBody};
use roster_sdk::settings::SourceSettings;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where the OAuth client's secret goes in the token request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SecretIn {
    /// `client_secret` in the form body (`client_secret_post`).
    #[default]
    Body,
    /// `Authorization: Basic` (`client_secret_basic`); bind the secret with
    /// `use = { header = "Authorization" }`.
    Basic,
}

/// How Roster authenticates to the SCIM service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Auth {
    /// A static bearer token (`Authorization: Bearer …`) from a host-held secret.
    Bearer {
        /// Name of the secret that holds the token (default `token`).
        #[serde(default = "default_token")]
        token: String,
    },
    /// OAuth 2.0 client credentials at `token_url`; the API is then called with its token.
    ClientCredentials {
        /// The token endpoint.
        token_url: String,
        /// The client's id.
        client_id: String,
        /// Name of the secret that holds the client's secret (default `client_secret`).
        #[serde(default = "default_client_secret")]
        client_secret: String,
        /// Where the secret goes: `body` (the default) or `basic`.
        #[serde(default)]
        secret_in: SecretIn,
        /// `scope` of the token request, if the server wants one.
        scope: Option<String>,
    },
}

impl Default for Auth {
    fn default() -> Self {
        Auth::Bearer { token: default_token() }
    }
}

/// Which users are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Users {
    /// Every user the filter admits; an inactive one is inactive in Bitbucket.
    #[default]
    All,
    /// Only active users (`active eq true` added to the filter); an inactive one is then gone
    /// from the source, as if deleted.
    ActiveOnly,
}

/// Whether group members are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Members {
    /// From the groups listing; a group listed without `members` (a server that leaves them out
    /// of lists) is read again by id.
    #[default]
    Read,
    /// Groups only, without members (`excludedAttributes=members`).
    Skip,
}

/// The settings object of a `scim` source.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "SCIM 2.0 service")]
pub struct Settings {
    /// The SCIM base URL, the one `/Users` and `/Groups` are under, e.g.
    /// `https://idp.example.com/scim/v2`.
    pub base_url: String,
    /// A bearer token (the default, from the secret `token`) or OAuth client credentials.
    #[serde(default)]
    pub auth: Auth,
    /// A SCIM filter for users (`filter=`), e.g. `userType eq "Employee"`.
    pub user_filter: Option<String>,
    /// A SCIM filter for groups (`filter=`), e.g. `displayName sw "bb-"`.
    pub group_filter: Option<String>,
    /// `all` users (the default) or `active-only`.
    #[serde(default)]
    pub users: Users,
    /// Read group members (`read`, the default) or not (`skip`).
    #[serde(default)]
    pub members: Members,
    /// The user attribute that becomes the Bitbucket username: `userName` (the default),
    /// `email` (the primary e-mail), or a flat attribute name such as `externalId`,
    /// `emails.work` or `enterprise.employeeNumber`.
    #[serde(default = "default_username_attribute")]
    pub username_attribute: String,
    /// Only these user attributes are asked for (`attributes=`), besides those Roster needs;
    /// unset, the service returns its default set.
    pub attributes: Option<Vec<String>>,
    /// Resources per page (`count`; 1–1000). A service may cap it lower; Roster reads on.
    #[serde(default = "default_page_size")]
    #[schemars(range(min = 1, max = 1000))]
    pub page_size: u32,
}

fn default_token() -> String {
    "token".into()
}
fn default_client_secret() -> String {
    "client_secret".into()
}
fn default_username_attribute() -> String {
    "userName".into()
}
fn default_page_size() -> u32 {
    100
}

/// The attributes every user read needs, whatever `attributes` says.
pub const NEEDED_ATTRIBUTES: &[&str] = &["userName", "active", "displayName", "name", "emails"];

fn config(msg: impl Into<String>) -> PluginError {
    PluginError::Config(msg.into())
}

/// A SCIM attribute path as an administrator can type one: no spaces, quotes or control
/// characters (`emails.work`, `urn:…:enterprise:2.0:User:department`).
fn is_attribute_name(s: &str) -> bool {
    !s.is_empty()
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == ',')
}

fn base_url(raw: &str) -> Result<String, PluginError> {
    let example = "https://idp.example.com/scim/v2";
    let parsed = roster_sdk::settings::service_url("base_url", raw, example)?;
    let path = parsed.path().trim_end_matches('/');
    let last = path.rsplit('/').next().unwrap_or_default();
    if ["users", "groups", "serviceproviderconfig"].contains(&last.to_ascii_lowercase().as_str()) {
        return Err(config(format!(
            "base_url `{raw}` ends with /{last}: write the SCIM base URL that /Users and /Groups are under, e.g. {example}"
        )));
    }
    Ok(format!("{}{path}", parsed.origin().ascii_serialization()))
}

fn filter(name: &str, value: &mut Option<String>) -> Result<(), PluginError> {
    if let Some(f) = value {
        let t = f.trim();
        if t.is_empty() {
            return Err(config(format!(
                "{name} is empty: write a SCIM filter such as userName sw \"a\", or leave it out"
            )));
        }
        *f = t.to_string();
    }
    Ok(())
}

impl SourceSettings for Settings {
    // Credentials and page sizes decide how the service is asked, not what it answers.
    const OUTSIDE_SCOPE: &'static [&'static str] = &["auth", "page_size"];

    fn validate(&mut self) -> Result<(), PluginError> {
        self.base_url = base_url(&self.base_url)?;
        match &mut self.auth {
            Auth::Bearer { token } => {
                if token.trim().is_empty() {
                    return Err(config(
                        "auth.token is empty: name the secret that holds the SCIM bearer token",
                    ));
                }
            }
            Auth::ClientCredentials {
                token_url,
                client_id,
                client_secret,
                ..
            } => {
                let parsed = roster_sdk::settings::service_url(
                    "auth.token_url",
                    token_url,
                    "https://idp.example.com/oauth2/token",
                )?;
                *token_url = parsed.to_string();
                if client_id.trim().is_empty() {
                    return Err(config("auth.client_id is empty: write the OAuth client's id"));
                }
                *client_id = client_id.trim().to_string();
                if client_secret.trim().is_empty() {
                    return Err(config(
                        "auth.client_secret is empty: name the secret that holds the client's secret",
                    ));
                }
            }
        }
        filter("user_filter", &mut self.user_filter)?;
        filter("group_filter", &mut self.group_filter)?;
        if !(1..=1000).contains(&self.page_size) {
            return Err(config(format!(
                "page_size {} is out of range: write 1 to 1000",
                self.page_size
            )));
        }
        let u = self.username_attribute.trim();
        if !is_attribute_name(u) {
            return Err(config(format!(
                "username_attribute `{}` is not an attribute name: write userName, email, externalId or another user attribute",
                self.username_attribute
            )));
        }
        self.username_attribute = u.to_string();
        if let Some(list) = &mut self.attributes {
            if let Some(bad) = list.iter().find(|a| !is_attribute_name(a.trim())) {
                return Err(config(format!(
                    "attributes: `{bad}` is not a SCIM attribute name (no spaces, quotes or commas)"
                )));
            }
            for a in list.iter_mut() {
                *a = a.trim().to_string();
            }
            list.sort();
            list.dedup();
        }
        Ok(())
    }
}

/// How requests are authenticated, as the API client uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `Authorization: Bearer` with the placeholder of this secret, filled in by the host.
    Bearer(String),
    /// An OAuth client's token (cached for the job).
    OAuth(ClientCredentials),
}

impl Settings {
    /// The bearer token's secret, or the OAuth client.
    pub fn credentials(&self) -> Credentials {
        match &self.auth {
            Auth::Bearer { token } => Credentials::Bearer(token.clone()),
            Auth::ClientCredentials {
                token_url,
                client_id,
                client_secret,
                secret_in,
                scope,
            } => Credentials::OAuth(ClientCredentials {
                token_url: token_url.clone(),
                client_id: client_id.clone(),
                auth: match secret_in {
                    SecretIn::Body => ClientAuth::Secret {
                        secret: client_secret.clone(),
                    },
                    SecretIn::Basic => ClientAuth::Basic {
                        secret: client_secret.clone(),
                    },
                },
                scope: scope.clone(),
                body: TokenBody::Form,
            }),
        }
    }

    /// The user filter sent: `user_filter`, with `active eq true` for `users = "active-only"`.
    pub fn users_filter(&self) -> Option<String> {
        match (self.users, &self.user_filter) {
            (Users::All, f) => f.clone(),
            (Users::ActiveOnly, None) => Some("active eq true".into()),
            (Users::ActiveOnly, Some(f)) => Some(format!("({f}) and active eq true")),
        }
    }

    /// The `attributes` parameter of user listings, when the source narrows them.
    pub fn user_attributes(&self) -> Option<String> {
        let list = self.attributes.as_ref()?;
        let mut all: Vec<&str> = NEEDED_ATTRIBUTES.to_vec();
        // The username attribute's SCIM attribute: `emails.work` is under `emails`,
        // `enterprise.x` under the extension's URN.
        let u = self.username_attribute.as_str();
        let needed = match u.split_once('.') {
            Some(("enterprise", _)) => roster_scim::schema::ENTERPRISE_URN,
            Some((top, _)) => top,
            None if u == "email" => "emails",
            None => u,
        };
        all.push(needed);
        all.extend(list.iter().map(String::as_str));
        all.sort_unstable();
        all.dedup();
        Some(all.join(","))
    }
}

#[cfg(test)]
mod tests {
    use roster_sdk::settings::{self, Fingerprint};

    use super::*;

    fn read(extra: &str) -> Result<Settings, PluginError> {
        let mut base: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"base_url":"https://idp.example.com/scim/v2/"}"#).unwrap();
        let more: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&format!("{{{}}}", extra.trim_start_matches(','))).unwrap();
        base.extend(more);
        settings::read(&serde_json::Value::Object(base).to_string())
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = read("").unwrap();
        assert_eq!(s.base_url, "https://idp.example.com/scim/v2");
        assert_eq!(s.auth, Auth::Bearer { token: "token".into() });
        assert_eq!((s.users, s.members), (Users::All, Members::Read));
        assert_eq!((s.username_attribute.as_str(), s.page_size), ("userName", 100));
        assert_eq!((s.users_filter(), s.user_attributes()), (None, None));
        assert_eq!(s.credentials(), Credentials::Bearer("token".into()));
    }

    #[test]
    fn client_credentials_and_filters() {
        let s = read(
            r#","auth":{"type":"client-credentials","token_url":"https://idp.example.com/token","client_id":" roster ","secret_in":"basic"},
               "user_filter":"userType eq \"Employee\"","users":"active-only","attributes":["title"],"username_attribute":"emails.work""#,
        )
        .unwrap();
        let Credentials::OAuth(c) = s.credentials() else {
            panic!("client credentials")
        };
        assert_eq!(c.client_id, "roster");
        assert_eq!(
            c.auth,
            ClientAuth::Basic {
                secret: "client_secret".into()
            }
        );
        assert_eq!(
            s.users_filter().as_deref(),
            Some(r#"(userType eq "Employee") and active eq true"#)
        );
        assert_eq!(
            s.user_attributes().as_deref(),
            Some("active,displayName,emails,name,title,userName")
        );
    }

    #[test]
    fn mistakes_name_the_field_and_what_to_write() {
        for (extra, expected) in [
            (r#","page_size":0"#, "1 to 1000"),
            (r#","user_filter":" ""#, "user_filter is empty"),
            (r#","auth":{"type":"bearer","token":""}"#, "auth.token is empty"),
            (r#","auth":{"type":"basic"}"#, "unknown variant `basic`"),
            (
                r#","auth":{"type":"client-credentials","token_url":"http://x.example/t","client_id":"c"}"#,
                "auth.token_url",
            ),
            (r#","username_attribute":"a b""#, "username_attribute"),
            (r#","attributes":["a,b"]"#, "attributes: `a,b`"),
            (
                r#","base_url":"https://idp.example.com/scim/v2/Users""#,
                "ends with /Users",
            ),
            (r#","base_url":"http://idp.example.com/scim""#, "https://"),
            (r#","filter":"x""#, "unknown field `filter`"),
        ] {
            let err = read(extra).unwrap_err();
            assert!(
                matches!(&err, PluginError::Config(m) if m.contains(expected)),
                "{extra}: {err:?}"
            );
        }
    }

    #[test]
    fn every_setting_that_changes_records_changes_the_fingerprint() {
        let fp = |extra: &str| Fingerprint::of(&read(extra).unwrap()).unwrap();
        let base = fp("");
        for extra in [
            r#","base_url":"https://other.example.com/scim/v2""#,
            r#","user_filter":"title pr""#,
            r#","group_filter":"displayName sw \"a\"""#,
            r#","users":"active-only""#,
            r#","members":"skip""#,
            r#","username_attribute":"email""#,
            r#","attributes":["title"]"#,
        ] {
            assert_ne!(fp(extra), base, "{extra}");
        }
        for extra in [r#","page_size":50"#, r#","auth":{"type":"bearer","token":"other"}"#] {
            assert_eq!(fp(extra), base, "{extra}");
        }
        assert!(settings::undeclared_outside_scope::<Settings>().is_empty());
    }
}

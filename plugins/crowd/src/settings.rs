//! The `crowd` source's settings, named as the "Atlassian Jira" / "Atlassian Crowd" directory
//! screens of Bitbucket name them, validated before any request is made.

use roster_sdk::PluginError;
use roster_sdk::settings::SourceSettings;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The settings object of a `crowd` source.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Jira or Crowd (Crowd REST usermanagement/1)")]
pub struct Settings {
    /// Server URL: Jira's or Crowd's base URL, with its context path if it has one, e.g.
    /// `https://jira.example.com` or `https://crowd.example.com/crowd`.
    pub server_url: String,
    /// Application name, as added in Jira (User management → Jira user server) or Crowd
    /// (Applications).
    pub application_name: String,
    /// Name of the host-held secret with the application password.
    #[serde(default = "default_password_secret")]
    pub application_password: String,
    /// Use nested groups: read which groups are members of which (Roster flattens them).
    #[serde(default = "yes")]
    pub use_nested_groups: bool,
    /// Use incremental synchronisation: read only the changes since the last fetch (Crowd's
    /// event tokens) when the server offers it.
    #[serde(default = "yes")]
    pub use_incremental_sync: bool,
    /// Synchronisation interval in minutes: the source's schedule unless it has one of its own.
    #[serde(default = "default_interval")]
    #[schemars(range(min = 1))]
    pub sync_interval_minutes: u32,
    /// Users or groups per request; leave it out to read each listing in one request
    /// (`max-results=-1`), as Bitbucket's own directory does.
    #[schemars(range(min = 1))]
    pub page_size: Option<u32>,
    /// Read users' custom attributes (`expand=user,attributes`).
    #[serde(default = "yes")]
    pub user_attributes: bool,
}

fn default_password_secret() -> String {
    "application_password".into()
}
fn default_interval() -> u32 {
    60
}
fn yes() -> bool {
    true
}

fn config(msg: impl Into<String>) -> PluginError {
    PluginError::Config(msg.into())
}

/// The path of the API below the server URL (Jira's bundled plugin and Crowd alike).
const API: &str = "/rest/usermanagement/1";

impl SourceSettings for Settings {
    // The password, page sizes, the interval and whether deltas are used decide how and when the
    // server is asked, not what it answers; `use_incremental_sync` is checked by itself, so
    // turning it off says so instead of "scope changed".
    const OUTSIDE_SCOPE: &'static [&'static str] = &[
        "application_password",
        "page_size",
        "sync_interval_minutes",
        "use_incremental_sync",
    ];

    fn validate(&mut self) -> Result<(), PluginError> {
        let raw = self.server_url.trim();
        let trimmed = raw.trim_end_matches('/');
        let parsed = url::Url::parse(trimmed).map_err(|e| {
            config(format!(
                "server_url `{raw}` is not a URL ({e}): give Jira's or Crowd's base URL, e.g. https://jira.example.com"
            ))
        })?;
        if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
            return Err(config(format!(
                "server_url `{raw}` must be an https:// URL (Jira's or Crowd's base URL)"
            )));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(config(format!(
                "server_url `{raw}` must be the base URL only, without `?` or `#`"
            )));
        }
        if trimmed.ends_with(API) {
            return Err(config(format!(
                "server_url `{raw}` must be the base URL without {API}: Roster adds it"
            )));
        }
        self.server_url = trimmed.to_string();
        let name = self.application_name.trim();
        if name.is_empty() || name.contains(':') {
            return Err(config(
                "application_name must be the application's name as added in Jira or Crowd, non-empty and without `:`",
            ));
        }
        self.application_name = name.to_string();
        let secret = &self.application_password;
        if secret.is_empty()
            || !secret
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            // Never quoted: an administrator who pasted the password here would find it in logs.
            return Err(config(
                "application_password must be the NAME of the source's secret holding the password (letters, digits, `_`, `-`, `.`), not the password itself: put the password in a [[source.secrets]] entry and its name here",
            ));
        }
        if self.sync_interval_minutes == 0 {
            return Err(config("sync_interval_minutes must be at least 1"));
        }
        if self.page_size == Some(0) {
            return Err(config(
                "page_size must be at least 1; leave it out to read each listing in one request",
            ));
        }
        Ok(())
    }
}

impl Settings {
    /// The API's base: `server_url` + `/rest/usermanagement/1`.
    pub fn api(&self) -> String {
        format!("{}{API}", self.server_url)
    }

    /// `max-results` of listings: the page size, or `-1` (all).
    pub fn max_results(&self) -> String {
        self.page_size.map_or_else(|| "-1".to_string(), |n| n.to_string())
    }
}

#[cfg(test)]
mod tests {
    use roster_sdk::settings::{self, Fingerprint};

    use super::*;

    const BASE: &str = r#""server_url":"https://jira.example.com/jira/","application_name":"roster""#;

    fn parse(extra: &str) -> Result<Settings, PluginError> {
        settings::read(&format!("{{{BASE}{extra}}}"))
    }

    fn fingerprint(extra: &str) -> Fingerprint {
        Fingerprint::of(&parse(extra).unwrap()).unwrap()
    }

    #[test]
    fn defaults_are_atlassian_s_and_the_url_keeps_its_context_path() {
        let s = parse("").unwrap();
        assert_eq!(s.server_url, "https://jira.example.com/jira");
        assert_eq!(s.api(), "https://jira.example.com/jira/rest/usermanagement/1");
        assert_eq!(s.application_password, "application_password");
        assert!(s.use_nested_groups && s.use_incremental_sync && s.user_attributes);
        assert_eq!((s.sync_interval_minutes, s.page_size), (60, None));
        assert_eq!(s.max_results(), "-1");
        assert_eq!(parse(r#","page_size":500"#).unwrap().max_results(), "500");
    }

    #[test]
    fn the_fingerprint_holds_what_decides_the_records_only() {
        let base = fingerprint("");
        for extra in [r#","use_nested_groups":false"#, r#","user_attributes":false"#] {
            assert_ne!(fingerprint(extra), base, "{extra}");
        }
        for extra in [
            r#","page_size":100"#,
            r#","sync_interval_minutes":15"#,
            r#","application_password":"jira_pw""#,
            r#","use_incremental_sync":false"#,
        ] {
            assert_eq!(fingerprint(extra), base, "{extra}");
        }
        for other in [
            r#"{"server_url":"https://crowd.example.com","application_name":"roster"}"#,
            r#"{"server_url":"https://jira.example.com/jira","application_name":"bitbucket"}"#,
        ] {
            let other = settings::read::<Settings>(other).unwrap();
            assert_ne!(Fingerprint::of(&other).unwrap(), base, "{other:?}");
        }
        // The trailing `/` is not a change.
        let same =
            settings::read::<Settings>(r#"{"server_url":"https://jira.example.com/jira","application_name":"roster"}"#)
                .unwrap();
        assert_eq!(Fingerprint::of(&same).unwrap(), base);
        assert!(settings::undeclared_outside_scope::<Settings>().is_empty());
    }

    #[test]
    fn mistakes_are_named() {
        for (json, expected) in [
            (
                r#"{"server_url":"jira.example.com","application_name":"roster"}"#,
                "server_url `jira.example.com` is not a URL",
            ),
            (
                r#"{"server_url":"ftp://jira.example.com","application_name":"roster"}"#,
                "https://",
            ),
            (
                r#"{"server_url":"https://jira.example.com/rest/usermanagement/1","application_name":"roster"}"#,
                "without /rest/usermanagement/1",
            ),
            (
                r#"{"server_url":"https://jira.example.com?x=1","application_name":"roster"}"#,
                "without `?`",
            ),
            (
                r#"{"server_url":"https://j","application_name":" "}"#,
                "application_name",
            ),
            (r#"{"server_url":"https://j","application_name":"a:b"}"#, "without `:`"),
            (
                r#"{"server_url":"https://j","application_name":"r","page_size":0}"#,
                "page_size",
            ),
            (
                r#"{"server_url":"https://j","application_name":"r","sync_interval_minutes":0}"#,
                "sync_interval_minutes",
            ),
            (r#"{"server_url":"https://j"}"#, "missing field `application_name`"),
        ] {
            let err = settings::read::<Settings>(json).unwrap_err();
            assert!(
                matches!(&err, PluginError::Config(m) if m.contains(expected)),
                "{json}: {err:?}"
            );
        }
    }

    #[test]
    fn a_password_pasted_as_the_secret_name_is_refused_without_being_quoted() {
        let json = r#"{"server_url":"https://j","application_name":"r","application_password":"hunter 2!"}"#;
        let err = settings::read::<Settings>(json).unwrap_err();
        let PluginError::Config(m) = &err else {
            panic!("{err:?}")
        };
        assert!(m.contains("NAME of the source's secret"), "{m}");
        assert!(!m.contains("hunter"), "the value must never be quoted: {m}");
    }

    #[test]
    fn the_schema_describes_every_setting() {
        let schema: serde_json::Value = serde_json::from_str(&settings::schema::<Settings>()).unwrap();
        assert_eq!(
            schema["required"],
            serde_json::json!(["server_url", "application_name"])
        );
        assert_eq!(schema["additionalProperties"], false);
        let props = schema["properties"].as_object().unwrap();
        assert_eq!(props.len(), 8);
        assert_eq!(props["sync_interval_minutes"]["default"], 60);
        assert_eq!(props["application_password"]["default"], "application_password");
        assert!(
            props["server_url"]["description"]
                .as_str()
                .unwrap()
                .contains("context path")
        );
    }
}

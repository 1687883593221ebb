//! The normalisation rules, on plain strings so the host's benchmark can compile the very same
//! code natively (WASM vs native ratio in BENCHMARKS.md).

use serde::Deserialize;

/// Settings of the `normalize` transform; every field is optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Lower-case usernames (Bitbucket usernames are case-insensitive; default true).
    pub lowercase_username: bool,
    /// Strip `@domain` from usernames that are UPNs or emails (default false).
    pub strip_domain: bool,
    /// Filter out users the IdP marks inactive (default false: they reach the engine, which
    /// deprovisions them per the target's policy).
    pub drop_inactive: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            lowercase_username: true,
            strip_domain: false,
            drop_inactive: false,
        }
    }
}

/// The username Bitbucket should see.
pub fn username(settings: &Settings, raw: &str) -> String {
    let mut name = raw.trim();
    if settings.strip_domain
        && let Some((local, _)) = name.split_once('@')
    {
        name = local;
    }
    if settings.lowercase_username {
        name.to_lowercase()
    } else {
        name.to_string()
    }
}

/// Emails compare case-insensitively in practice; store them trimmed and lower-case.
pub fn email(raw: &str) -> Option<String> {
    let e = raw.trim();
    (!e.is_empty()).then(|| e.to_lowercase())
}

/// Display names with runs of whitespace collapsed.
pub fn display_name(raw: &str) -> Option<String> {
    let d = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    (!d.is_empty()).then_some(d)
}

/// Group names trimmed, inner whitespace collapsed.
pub fn group_name(raw: &str) -> String {
    raw.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `Some(reason)` when the user is filtered out.
pub fn drop_reason(settings: &Settings, active: bool) -> Option<&'static str> {
    (settings.drop_inactive && !active).then_some("inactive users are filtered out (drop_inactive)")
}

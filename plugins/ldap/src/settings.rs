//! The `ldap` source's settings, validated before any search, and the flavour presets
//! (OpenLDAP, Active Directory) resolved in one place: [`Flavour::preset`].

use roster_sdk::PluginError;
use roster_sdk::ldap::{self, Connection, Scope};
use roster_sdk::settings::SourceSettings;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which directory server the defaults suit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Flavour {
    /// OpenLDAP (and other RFC 4530 servers): `entryUUID`, `uid`, `modifyTimestamp`.
    #[default]
    Openldap,
    /// Active Directory: `objectGUID`, `sAMAccountName`, `userAccountControl`, `uSNChanged`.
    ActiveDirectory,
}

/// The defaults a flavour gives the settings left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// `user_filter`.
    pub user_filter: &'static str,
    /// `group_filter`.
    pub group_filter: &'static str,
    /// `id_attribute`.
    pub id_attribute: &'static str,
    /// `username_attribute`.
    pub username_attribute: &'static str,
}

impl Flavour {
    /// The defaults of this flavour.
    pub fn preset(self) -> Preset {
        match self {
            Flavour::Openldap => Preset {
                user_filter: "(objectClass=inetOrgPerson)",
                group_filter: "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))",
                id_attribute: "entryUUID",
                username_attribute: "uid",
            },
            Flavour::ActiveDirectory => Preset {
                user_filter: "(&(objectCategory=person)(objectClass=user))",
                group_filter: "(objectClass=group)",
                id_attribute: "objectGUID",
                username_attribute: "sAMAccountName",
            },
        }
    }
}

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TransportSetting {
    /// TLS from the first byte (`ldaps://`).
    Ldaps,
    /// StartTLS before the bind (`ldap://`).
    StartTls,
    /// No TLS at all (`ldap://`); the source must set `allow_plain_ldap`.
    Plain,
}

/// How deep a search goes below its base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ScopeSetting {
    /// The base entry only.
    Base,
    /// The entries right below the base.
    OneLevel,
    /// The base and everything below it.
    #[default]
    Subtree,
}

impl ScopeSetting {
    /// The scope of the `ldap` import.
    pub fn scope(self) -> Scope {
        match self {
            ScopeSetting::Base => Scope::Base,
            ScopeSetting::OneLevel => Scope::OneLevel,
            ScopeSetting::Subtree => Scope::Subtree,
        }
    }
}

/// The settings object of an `ldap` source.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "LDAP or Active Directory")]
pub struct Settings {
    /// The server: `ldaps://host[:port]` (port 636 by default) or `ldap://host[:port]` (389,
    /// protected with StartTLS unless `transport` says `plain`). Its origin must be in the
    /// source's `allow_hosts`.
    pub url: String,
    /// `ldaps`, `start-tls` or `plain`; by default `ldaps` for `ldaps://` and `start-tls` for
    /// `ldap://`. `plain` also needs the source's `allow_plain_ldap = true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<TransportSetting>,
    /// PEM certificate(s) to trust for this server instead of the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
    /// The DN Roster binds as, e.g. `cn=reader,dc=example,dc=org`; leave it out to bind
    /// anonymously.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_dn: Option<String>,
    /// The NAME of the source's secret holding the bind password (bound with
    /// `use = { ldap_bind = "<bind_dn>" }`).
    #[serde(default = "default_password_secret")]
    pub bind_password: String,
    /// `openldap` or `active-directory`: sets the defaults of the filters and attributes.
    #[serde(default)]
    pub flavour: Flavour,
    /// The directory's base DN, e.g. `dc=example,dc=org`.
    pub base_dn: String,
    /// Where users are searched; `base_dn` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_base_dn: Option<String>,
    /// Which entries are users (RFC 4515). OpenLDAP: `(objectClass=inetOrgPerson)`; AD:
    /// `(&(objectCategory=person)(objectClass=user))`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_filter: Option<String>,
    /// `base`, `one-level` or `subtree` (the default) below `user_base_dn`.
    #[serde(default)]
    pub user_scope: ScopeSetting,
    /// Where groups are searched; `base_dn` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_base_dn: Option<String>,
    /// Which entries are groups. OpenLDAP: groupOfNames, groupOfUniqueNames and posixGroup;
    /// AD: `(objectClass=group)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_filter: Option<String>,
    /// `base`, `one-level` or `subtree` (the default) below `group_base_dn`.
    #[serde(default)]
    pub group_scope: ScopeSetting,
    /// The immutable id of users and groups. OpenLDAP: `entryUUID`; AD: `objectGUID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_attribute: Option<String>,
    /// The login name. OpenLDAP: `uid`; AD: `sAMAccountName` (or `userPrincipalName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_attribute: Option<String>,
    /// The email address.
    #[serde(default = "default_email")]
    pub email_attribute: String,
    /// The display name; `cn` when an entry has none.
    #[serde(default = "default_display_name")]
    pub display_name_attribute: String,
    /// The group's name.
    #[serde(default = "default_group_name")]
    pub group_name_attribute: String,
    /// Further attributes read and passed to mappings (one attribute per value), e.g.
    /// `["department", "employeeType"]`.
    #[serde(default)]
    pub extra_attributes: Vec<String>,
    /// Naming contexts whose referrals are ignored, e.g. an Active Directory forest root's
    /// child domains (`["DC=child,DC=corp,DC=example"]`): each is one whose users you do not
    /// want. A referral to a DN listed or below one is skipped; any other fails the fetch.
    #[serde(default)]
    pub ignore_referrals: Vec<String>,
    /// A group that is a member of a group counts: its members are members too (Roster
    /// flattens, cycles detected).
    #[serde(default = "yes")]
    pub nested_groups: bool,
    /// Entries per page of the paged-results control (Active Directory answers at most 1000).
    #[serde(default = "default_page_size")]
    #[schemars(range(min = 1, max = 5000))]
    pub page_size: u32,
    /// Read only what changed since the last fetch (`modifyTimestamp` on OpenLDAP,
    /// `uSNChanged` on Active Directory); deletions are found by the scheduled full fetch.
    #[serde(default = "yes")]
    pub use_incremental_sync: bool,
    /// OpenLDAP incremental fetches: seconds read again before the newest `modifyTimestamp`
    /// of the last fetch, on top of that fetch's own duration, for entries changed while it
    /// ran, replication lag and clock steps. Entries read again unchanged are dropped.
    #[serde(default = "default_overlap")]
    #[schemars(range(max = 86400))]
    pub change_overlap_seconds: u32,
    /// Synchronisation interval in minutes: the source's schedule unless it has one of its own.
    #[serde(default = "default_interval")]
    #[schemars(range(min = 1))]
    pub sync_interval_minutes: u32,
}

fn default_password_secret() -> String {
    "bind_password".into()
}
fn default_email() -> String {
    "mail".into()
}
fn default_display_name() -> String {
    "displayName".into()
}
fn default_group_name() -> String {
    "cn".into()
}
fn default_page_size() -> u32 {
    500
}
fn default_overlap() -> u32 {
    300
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

/// The longest overlap an incremental fetch re-reads, in seconds.
pub const MAX_OVERLAP_SECONDS: u32 = 86_400;

/// The largest page the host serves.
pub const MAX_PAGE_SIZE: u32 = 5000;

/// A DN setting: non-empty and shaped `attr=value,…`.
fn check_dn(name: &str, dn: &str) -> Result<String, PluginError> {
    let dn = dn.trim();
    if dn.is_empty() || !dn.contains('=') {
        return Err(config(format!(
            "{name} `{dn}` is not a DN: write it as `attr=value,…`, e.g. dc=example,dc=org"
        )));
    }
    Ok(dn.to_string())
}

/// A filter setting: in parentheses, balanced (escapes are `\xx`, so no parenthesis is ever
/// escaped with a backslash alone).
fn check_filter(name: &str, filter: &str) -> Result<String, PluginError> {
    let f = filter.trim();
    let mut depth = 0i32;
    let mut balanced = f.starts_with('(') && f.ends_with(')');
    for (i, c) in f.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth < 0 || (depth == 0 && i + 1 < f.len()) {
            balanced = false;
        }
    }
    if !balanced || depth != 0 {
        return Err(config(format!(
            "{name} `{f}` is not an LDAP filter (RFC 4515): write it in parentheses, e.g. (objectClass=inetOrgPerson), with `(` and `)` balanced and escaped as \\28 and \\29 inside values"
        )));
    }
    Ok(f.to_string())
}

/// An attribute setting: a name or OID, letters, digits, `-`, `.` (options after `;`).
fn check_attribute(name: &str, attr: &str) -> Result<String, PluginError> {
    let a = attr.trim();
    let ok = !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ';'))
        && a.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !ok {
        return Err(config(format!(
            "{name} `{a}` is not an attribute name: letters, digits and `-`, e.g. mail"
        )));
    }
    Ok(a.to_string())
}

impl SourceSettings for Settings {
    // How the server is reached and asked (secret, TLS, page size, schedule) changes neither
    // which entries a fetch reads nor how their records look; `use_incremental_sync` is
    // checked by itself, so turning it off says so instead of "scope changed".
    const OUTSIDE_SCOPE: &'static [&'static str] = &[
        "bind_password",
        "transport",
        "ca_certificate",
        "page_size",
        "sync_interval_minutes",
        "use_incremental_sync",
        "change_overlap_seconds",
    ];

    fn validate(&mut self) -> Result<(), PluginError> {
        let raw = self.url.trim().trim_end_matches('/').to_string();
        let parsed = url::Url::parse(&raw).map_err(|e| {
            config(format!(
                "url `{raw}` is not a URL ({e}): write ldaps://host[:port] or ldap://host[:port]"
            ))
        })?;
        let scheme_transport = match parsed.scheme() {
            "ldaps" => TransportSetting::Ldaps,
            "ldap" => TransportSetting::StartTls,
            other => {
                return Err(config(format!(
                    "url `{raw}` has the scheme `{other}`: write ldaps://host[:port] or ldap://host[:port]"
                )));
            }
        };
        if parsed.host_str().is_none_or(str::is_empty)
            || !matches!(parsed.path(), "" | "/")
            || parsed.query().is_some()
            || parsed.fragment().is_some()
            || !parsed.username().is_empty()
            || parsed.password().is_some()
        {
            return Err(config(format!(
                "url `{raw}` must be the server only, ldaps://host[:port] or ldap://host[:port], without a user, path or query (the base DN is base_dn)"
            )));
        }
        self.url = raw.clone();
        let transport = self.transport.unwrap_or(scheme_transport);
        match (scheme_transport, transport) {
            (TransportSetting::Ldaps, TransportSetting::Ldaps)
            | (TransportSetting::StartTls, TransportSetting::StartTls | TransportSetting::Plain) => {}
            (TransportSetting::Ldaps, _) => {
                return Err(config(format!(
                    "transport `{}` contradicts url `{raw}`: an ldaps:// URL is TLS from the first byte; use an ldap:// URL for start-tls or plain",
                    transport_name(transport)
                )));
            }
            (_, _) => {
                return Err(config(format!(
                    "transport `ldaps` contradicts url `{raw}`: write the URL as ldaps://"
                )));
            }
        }
        if let Some(pem) = &self.ca_certificate
            && !pem.contains("-----BEGIN CERTIFICATE-----")
        {
            return Err(config(
                "ca_certificate must hold PEM certificates (-----BEGIN CERTIFICATE----- …)",
            ));
        }
        if let Some(dn) = &self.bind_dn {
            self.bind_dn = Some(check_dn("bind_dn", dn)?);
        }
        let secret = &self.bind_password;
        if secret.is_empty()
            || !secret
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            // Never quoted: an administrator who pasted the password here would find it in logs.
            return Err(config(
                "bind_password must be the NAME of the source's secret holding the password (letters, digits, `_`, `-`, `.`), not the password itself: put the password in a [[source.secrets]] entry and its name here",
            ));
        }
        self.base_dn = check_dn("base_dn", &self.base_dn)?;
        let preset = self.flavour.preset();
        self.user_base_dn = Some(check_dn(
            "user_base_dn",
            self.user_base_dn.as_deref().unwrap_or(&self.base_dn),
        )?);
        self.group_base_dn = Some(check_dn(
            "group_base_dn",
            self.group_base_dn.as_deref().unwrap_or(&self.base_dn),
        )?);
        self.user_filter = Some(check_filter(
            "user_filter",
            self.user_filter.as_deref().unwrap_or(preset.user_filter),
        )?);
        self.group_filter = Some(check_filter(
            "group_filter",
            self.group_filter.as_deref().unwrap_or(preset.group_filter),
        )?);
        self.id_attribute = Some(check_attribute(
            "id_attribute",
            self.id_attribute.as_deref().unwrap_or(preset.id_attribute),
        )?);
        self.username_attribute = Some(check_attribute(
            "username_attribute",
            self.username_attribute.as_deref().unwrap_or(preset.username_attribute),
        )?);
        self.email_attribute = check_attribute("email_attribute", &self.email_attribute)?;
        self.display_name_attribute = check_attribute("display_name_attribute", &self.display_name_attribute)?;
        self.group_name_attribute = check_attribute("group_name_attribute", &self.group_name_attribute)?;
        for a in &mut self.extra_attributes {
            *a = check_attribute("extra_attributes", a)?;
        }
        for dn in &mut self.ignore_referrals {
            *dn = check_dn("ignore_referrals", dn)?;
        }
        if !(1..=MAX_PAGE_SIZE).contains(&self.page_size) {
            return Err(config(format!(
                "page_size {} is out of range: 1 to {MAX_PAGE_SIZE} (Active Directory answers at most 1000 per page)",
                self.page_size
            )));
        }
        if self.sync_interval_minutes == 0 {
            return Err(config("sync_interval_minutes must be at least 1"));
        }
        if self.change_overlap_seconds > MAX_OVERLAP_SECONDS {
            return Err(config(format!(
                "change_overlap_seconds {} is out of range: 0 to {MAX_OVERLAP_SECONDS} (a day); a longer window re-reads more on every run and is what the scheduled full fetch is for",
                self.change_overlap_seconds
            )));
        }
        Ok(())
    }
}

fn transport_name(t: TransportSetting) -> &'static str {
    match t {
        TransportSetting::Ldaps => "ldaps",
        TransportSetting::StartTls => "start-tls",
        TransportSetting::Plain => "plain",
    }
}

impl Settings {
    /// The connection the host opens for this source.
    pub fn connection(&self) -> Connection {
        let scheme = if self.url.starts_with("ldaps:") {
            TransportSetting::Ldaps
        } else {
            TransportSetting::StartTls
        };
        Connection {
            url: self.url.clone(),
            transport: match self.transport.unwrap_or(scheme) {
                TransportSetting::Ldaps => ldap::Transport::Ldaps,
                TransportSetting::StartTls => ldap::Transport::StartTls,
                TransportSetting::Plain => ldap::Transport::Plain,
            },
            ca_certificates: self.ca_certificate.clone(),
            bind_dn: self.bind_dn.clone(),
            password_secret: self.bind_dn.as_ref().map(|_| self.bind_password.clone()),
        }
    }

    /// `user_base_dn`, or `base_dn`.
    pub fn user_base(&self) -> &str {
        self.user_base_dn.as_deref().unwrap_or(&self.base_dn)
    }

    /// `group_base_dn`, or `base_dn`.
    pub fn group_base(&self) -> &str {
        self.group_base_dn.as_deref().unwrap_or(&self.base_dn)
    }

    /// `user_filter`, or the flavour's.
    pub fn user_filter(&self) -> &str {
        self.user_filter.as_deref().unwrap_or(self.flavour.preset().user_filter)
    }

    /// `group_filter`, or the flavour's.
    pub fn group_filter(&self) -> &str {
        self.group_filter
            .as_deref()
            .unwrap_or(self.flavour.preset().group_filter)
    }

    /// `id_attribute`, or the flavour's.
    pub fn id_attribute(&self) -> &str {
        self.id_attribute
            .as_deref()
            .unwrap_or(self.flavour.preset().id_attribute)
    }

    /// `username_attribute`, or the flavour's.
    pub fn username_attribute(&self) -> &str {
        self.username_attribute
            .as_deref()
            .unwrap_or(self.flavour.preset().username_attribute)
    }

    /// The bind DN as messages name it.
    pub fn who(&self) -> String {
        match &self.bind_dn {
            Some(dn) => format!("bind DN {dn}"),
            None => "an anonymous bind".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use roster_sdk::settings::{self, Fingerprint};

    use super::*;

    const BASE: &str =
        r#""url":"ldaps://ldap.example.com/","bind_dn":"cn=reader,dc=example,dc=org","base_dn":"dc=example,dc=org""#;

    fn parse(extra: &str) -> Result<Settings, PluginError> {
        settings::read(&format!("{{{BASE}{extra}}}"))
    }

    fn fingerprint(extra: &str) -> Fingerprint {
        Fingerprint::of(&parse(extra).unwrap()).unwrap()
    }

    #[test]
    fn each_flavour_fills_in_its_own_defaults() {
        let s = parse("").unwrap();
        assert_eq!(
            (s.id_attribute(), s.username_attribute(), s.user_filter()),
            ("entryUUID", "uid", "(objectClass=inetOrgPerson)")
        );
        assert!(s.group_filter().contains("posixGroup"));
        assert_eq!(
            (s.user_base(), s.group_base()),
            ("dc=example,dc=org", "dc=example,dc=org")
        );
        assert_eq!(
            (s.page_size, s.nested_groups, s.use_incremental_sync),
            (500, true, true)
        );
        let c = s.connection();
        assert_eq!(
            (c.url.as_str(), c.transport),
            ("ldaps://ldap.example.com", ldap::Transport::Ldaps)
        );
        assert_eq!(c.password_secret.as_deref(), Some("bind_password"));
        let ad: Settings = settings::read(
            r#"{"url":"ldap://dc1.corp.example","flavour":"active-directory","base_dn":"DC=corp,DC=example","username_attribute":"userPrincipalName"}"#,
        )
        .unwrap();
        assert_eq!(
            (ad.id_attribute(), ad.username_attribute(), ad.group_filter()),
            ("objectGUID", "userPrincipalName", "(objectClass=group)")
        );
        assert_eq!(ad.user_filter(), "(&(objectCategory=person)(objectClass=user))");
        let c = ad.connection();
        assert_eq!(c.transport, ldap::Transport::StartTls);
        assert_eq!((c.bind_dn, c.password_secret), (None, None), "anonymous: no secret");
    }

    #[test]
    fn the_fingerprint_holds_what_decides_the_records_only() {
        let base = fingerprint("");
        for extra in [
            r#","user_filter":"(objectClass=person)""#,
            r#","flavour":"active-directory""#,
            r#","extra_attributes":["department"]"#,
            r#","nested_groups":false"#,
            r#","group_base_dn":"ou=groups,dc=example,dc=org""#,
        ] {
            assert_ne!(fingerprint(extra), base, "{extra}");
        }
        for extra in [
            r#","page_size":100"#,
            r#","bind_password":"other""#,
            r#","use_incremental_sync":false"#,
            r#","transport":"ldaps""#,
            r#","ca_certificate":"-----BEGIN CERTIFICATE-----x""#,
            // A default written out is no change.
            r#","id_attribute":"entryUUID","user_base_dn":"dc=example,dc=org""#,
        ] {
            assert_eq!(fingerprint(extra), base, "{extra}");
        }
        assert!(settings::undeclared_outside_scope::<Settings>().is_empty());
    }

    #[test]
    fn mistakes_are_named_with_what_to_write() {
        for (extra, expected) in [
            (r#","transport":"start-tls""#, "transport `start-tls` contradicts url"),
            (r#","page_size":0"#, "page_size 0"),
            (r#","page_size":6000"#, "page_size 6000"),
            (
                r#","user_filter":"objectClass=person""#,
                "user_filter `objectClass=person` is not an LDAP filter",
            ),
            (r#","group_filter":"(cn=a))(""#, "group_filter"),
            (r#","id_attribute":"entry UUID""#, "id_attribute `entry UUID`"),
            (r#","extra_attributes":["ok","(bad)"]"#, "extra_attributes `(bad)`"),
            (r#","user_base_dn":"people""#, "user_base_dn `people` is not a DN"),
            (r#","ca_certificate":"not a pem""#, "ca_certificate"),
            (r#","sync_interval_minutes":0"#, "sync_interval_minutes"),
            (r#","change_overlap_seconds":90000"#, "change_overlap_seconds 90000"),
            (r#","flavour":"novell""#, "unknown variant `novell`"),
        ] {
            let err = parse(extra).unwrap_err();
            assert!(
                matches!(&err, PluginError::Config(m) if m.contains(expected)),
                "{extra}: {err:?}"
            );
        }
        for (json, expected) in [
            (
                r#"{"url":"https://ldap.example.com","base_dn":"dc=x"}"#,
                "scheme `https`",
            ),
            (r#"{"url":"ldap.example.com","base_dn":"dc=x"}"#, "is not a URL"),
            (
                r#"{"url":"ldaps://ldap.example.com/dc=x","base_dn":"dc=x"}"#,
                "without a user, path or query",
            ),
            (
                r#"{"url":"ldap://h","transport":"ldaps","base_dn":"dc=x"}"#,
                "write the URL as ldaps://",
            ),
            (r#"{"url":"ldaps://h","base_dn":""}"#, "base_dn"),
            (r#"{"url":"ldaps://h"}"#, "missing field `base_dn`"),
        ] {
            let err = settings::read::<Settings>(json).unwrap_err();
            assert!(
                matches!(&err, PluginError::Config(m) if m.contains(expected)),
                "{json}: {err:?}"
            );
        }
        let plain: Settings =
            settings::read(r#"{"url":"ldap://h:3389","transport":"plain","base_dn":"dc=x"}"#).unwrap();
        assert_eq!(plain.connection().transport, ldap::Transport::Plain);
    }

    #[test]
    fn a_password_pasted_as_the_secret_name_is_refused_without_being_quoted() {
        let err = parse(r#","bind_password":"hunter 2!""#).unwrap_err();
        let PluginError::Config(m) = &err else {
            panic!("{err:?}")
        };
        assert!(
            m.contains("NAME of the source's secret") && !m.contains("hunter"),
            "{m}"
        );
    }

    #[test]
    fn the_schema_describes_every_setting() {
        let schema: serde_json::Value = serde_json::from_str(&settings::schema::<Settings>()).unwrap();
        assert_eq!(schema["required"], serde_json::json!(["url", "base_dn"]));
        assert_eq!(schema["additionalProperties"], false);
        let props = schema["properties"].as_object().unwrap();
        assert_eq!(props["page_size"]["maximum"], 5000);
        assert_eq!(props["bind_password"]["default"], "bind_password");
        assert!(
            props["id_attribute"]["description"]
                .as_str()
                .unwrap()
                .contains("objectGUID")
        );
    }
}

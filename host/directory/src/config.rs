//! A source as configuration describes it (`[[source]]` in roster.toml, or created through the
//! API): its connector and settings, what it may reach, its secrets, limits, transform chain
//! and schedule. Every error names the source and the field.

use std::path::{Path, PathBuf};

use roster_http::{BudgetConfig, SecretRef};
use roster_model::DefinedIn;
use roster_runtime::Limits;
use roster_runtime::capability::NetPolicy;
use roster_runtime::secrets::BindingSpec;
use roster_schedule::{DEFAULT_INTERVAL_MINUTES, MAX_INTERVAL_MINUTES, Schedule, ScheduleConfig};
use serde::Deserialize;

/// A secret of a source: its name, where its value comes from, and where it may be used.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretConfig {
    /// Name plugins use in `{{secret:NAME}}`.
    pub name: String,
    /// Where the value comes from.
    #[serde(flatten)]
    pub from: SecretRef,
    /// Where it may be used: `hosts`, `use`, `methods`, `path` (values) or `client_id`,
    /// `audience`, `subject` (signing keys).
    #[serde(flatten)]
    pub binding: BindingSpec,
}

/// One step of a source's transform chain.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TransformConfig {
    /// Transform plugin name.
    pub plugin: String,
    /// Its settings: the transform's own, free-form here; the plugin's `settings_schema`
    /// describes them.
    #[serde(default = "empty_object")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub settings: serde_json::Value,
    /// Or a file holding them (`.toml` or `.json`, relative to the configuration), re-read at
    /// every run: a new version is used once the transform accepts it; a broken one is refused
    /// and the version last accepted keeps serving.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub settings_file: Option<PathBuf>,
    /// Its limits.
    #[serde(default)]
    pub limits: Limits,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

/// One identity-provider connection.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Stable id (letters, digits, `-`, `_`).
    pub id: String,
    /// Connector plugin name, for a source Roster reads; see [`SourceConfig::feed`].
    pub plugin: Option<String>,
    /// How the source pushes to Roster, for a source that is pushed to rather than read.
    pub push: Option<PushConfig>,
    /// Directory order: lower wins when two sources describe the same person.
    #[serde(default = "default_priority")]
    pub priority: i64,
    /// Disabled sources are skipped.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The connector's settings.
    #[serde(default = "empty_object")]
    pub settings: serde_json::Value,
    /// A folder the connector may read (mounted read-only at `/data`).
    pub files: Option<PathBuf>,
    /// Where the connector may connect.
    #[serde(default, flatten)]
    pub network: NetPolicy,
    /// Named secrets (never serialised: sealed in the store instead).
    #[serde(default, skip_serializing)]
    pub secrets: Vec<SecretConfig>,
    /// Per-job limits of the connector.
    #[serde(default)]
    pub limits: Limits,
    /// Request budget towards the IdP.
    #[serde(default)]
    pub budget: BudgetConfig,
    /// Transform chain, in order.
    #[serde(default)]
    pub transforms: Vec<TransformConfig>,
    /// Only users who are members of one of these groups (IdP names, nested groups included)
    /// are synced from this source; empty: everyone the connector reads.
    #[serde(default)]
    pub required_groups: Vec<String>,
    /// When `roster serve` syncs this source.
    #[serde(default)]
    pub schedule: ScheduleConfig,
    /// Where the source was defined (roster.toml, or the API).
    #[serde(skip)]
    pub origin: DefinedIn,
}

/// How a source's records reach Roster: exactly one of `plugin` and `push` is set
/// ([`SourceConfig::validate`] refuses anything else).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Feed<'a> {
    /// Roster reads the source through this connector plugin, on a schedule or on demand.
    Pull(&'a str),
    /// The source pushes its changes to Roster (e.g. SCIM 2.0); nothing is fetched.
    Push(&'a PushConfig),
}

/// The protocol a pushing source speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PushProtocol {
    /// SCIM 2.0 (RFC 7643/7644) at `/scim/v2/{source}`.
    Scim,
}

/// `[source.push]`: how a source pushes to Roster, who may push, and how pushes become runs.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushConfig {
    /// The protocol.
    pub protocol: PushProtocol,
    /// Addresses (single or CIDR) allowed to push; empty: any address with the source's token.
    /// Behind a reverse proxy, `[api] trusted_proxies` says whose `X-Forwarded-For` counts.
    #[serde(default, deserialize_with = "roster_http::addr::ranges")]
    #[schema(value_type = Vec<String>)]
    pub allow_ips: Vec<ipnet::IpNet>,
    /// Requests a token may make per minute; more get a 429 with Retry-After.
    #[serde(default = "default_push_rate")]
    pub requests_per_minute: u32,
    /// The largest request body accepted, in KiB; larger gets a 413.
    #[serde(default = "default_push_body_kib")]
    pub max_body_kib: u32,
    /// A run starts once pushes have been quiet this long…
    #[serde(default = "default_push_debounce")]
    pub debounce_seconds: u64,
    /// …or this long after the first push it would carry, whichever comes first.
    #[serde(default = "default_push_max_delay")]
    pub max_delay_seconds: u64,
}

fn default_push_rate() -> u32 {
    1200
}
fn default_push_body_kib() -> u32 {
    1024
}
fn default_push_debounce() -> u64 {
    5
}
fn default_push_max_delay() -> u64 {
    30
}

/// The settings key a connector may offer for its source's sync interval.
const INTERVAL_SETTING: &str = "sync_interval_minutes";

fn yes() -> bool {
    true
}
fn default_priority() -> i64 {
    100
}

/// Whether an id is 1–64 letters, digits, `-` or `_` (sources and targets).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl SourceConfig {
    /// How the source's records reach Roster. Only meaningful after [`SourceConfig::validate`]
    /// (which refuses a source with both or neither); a source with both reads as pulled.
    pub fn feed(&self) -> Feed<'_> {
        match (&self.plugin, &self.push) {
            (Some(plugin), _) => Feed::Pull(plugin),
            (None, Some(push)) => Feed::Push(push),
            (None, None) => Feed::Pull(""),
        }
    }

    /// The connector plugin of a pulled source; `None` for a pushed one.
    pub fn plugin(&self) -> Option<&str> {
        match self.feed() {
            Feed::Pull(p) => Some(p),
            Feed::Push(_) => None,
        }
    }

    /// What lists show in a source's "plugin" column: the plugin, or `push:<protocol>`.
    pub fn feed_label(&self) -> String {
        match self.feed() {
            Feed::Pull(p) => p.to_string(),
            Feed::Push(push) => format!(
                "push:{}",
                serde_json::to_value(push.protocol)
                    .unwrap_or_default()
                    .as_str()
                    .unwrap_or_default()
            ),
        }
    }

    /// Checks the source's fields (`base` resolves relative paths); every message names the
    /// source and the field.
    pub fn validate(&self, base: &Path) -> Result<(), String> {
        if !valid_id(&self.id) {
            return Err(format!(
                "source id {:?} must be 1–64 letters, digits, '-' or '_'",
                self.id
            ));
        }
        match (&self.plugin, &self.push) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "source '{}': give `plugin` (Roster reads the source) or `[source.push]` (the source pushes to Roster), not both",
                    self.id
                ));
            }
            (None, None) => {
                return Err(format!(
                    "source '{}': name its connector with `plugin = \"…\"`, or add `[source.push]` with `protocol = \"scim\"` for an identity provider that pushes",
                    self.id
                ));
            }
            (Some(p), None) if p.is_empty() => {
                return Err(format!(
                    "source '{}': `plugin` is empty; name a connector plugin",
                    self.id
                ));
            }
            (None, Some(push)) => {
                if push.requests_per_minute == 0 || push.max_body_kib == 0 {
                    return Err(format!(
                        "source '{}' push: requests_per_minute and max_body_kib must be at least 1",
                        self.id
                    ));
                }
                if push.debounce_seconds > push.max_delay_seconds {
                    return Err(format!(
                        "source '{}' push: debounce_seconds ({}) must not exceed max_delay_seconds ({})",
                        self.id, push.debounce_seconds, push.max_delay_seconds
                    ));
                }
            }
            (Some(_), None) => {}
        }
        self.network
            .validate()
            .map_err(|e| format!("source '{}': {e}", self.id))?;
        if let Some(f) = &self.files {
            let dir = base.join(f);
            if !dir.is_dir() {
                return Err(format!(
                    "source '{}': `files` {} is not a folder",
                    self.id,
                    dir.display()
                ));
            }
        }
        for (i, t) in self.transforms.iter().enumerate() {
            let inline = t.settings.as_object().is_none_or(|o| !o.is_empty());
            if t.settings_file.is_some() && inline {
                return Err(format!(
                    "source '{}' transform {} ({}): give `settings` or `settings_file`, not both",
                    self.id,
                    i + 1,
                    t.plugin
                ));
            }
        }
        if self.schedule.enabled {
            self.schedule()?;
        }
        for secret in &self.secrets {
            let label = self.secret_label(secret);
            if !roster_runtime::secrets::valid_name(&secret.name) {
                return Err(format!(
                    "{label}: a secret's name is 1–64 letters, digits, `_`, `-` or `.`"
                ));
            }
            if self.secrets.iter().filter(|s| s.name == secret.name).count() > 1 {
                return Err(format!("{label} is defined twice"));
            }
            secret.binding.check().map_err(|e| format!("{label}: {e}"))?;
            secret.from.resolve(base, &label)?;
        }
        Ok(())
    }

    /// Refuses a source naming a plugin `runtime` does not serve as what the source uses it
    /// for (its connector, each transform step): the message names the plugin and lists those
    /// loaded. A disabled source is not checked (its plugin may be gone on purpose), nor is a
    /// push source's connector (it has none).
    pub fn check_plugins(&self, runtime: &roster_runtime::Runtime) -> Result<(), String> {
        use roster_runtime::loader::World;
        if !self.enabled {
            return Ok(());
        }
        let wanted = self.plugin().map(|p| (p, World::Connector, None)).into_iter().chain(
            self.transforms
                .iter()
                .enumerate()
                .map(|(i, t)| (t.plugin.as_str(), World::Transform, Some(i + 1))),
        );
        for (name, world, step) in wanted {
            let place = step.map_or_else(String::new, |n| format!(" in transform step {n}"));
            let problem = match runtime.plugin(name) {
                Some(p) if p.world == world => continue,
                Some(p) => format!(
                    "names '{name}'{}, but it is a {} plugin, not a {}",
                    if step.is_some() {
                        place.as_str()
                    } else {
                        " as its connector"
                    },
                    p.world.as_str(),
                    world.as_str()
                ),
                None => format!(
                    "names the {} plugin '{name}'{place}, which is not loaded",
                    world.as_str()
                ),
            };
            let loaded: Vec<String> = runtime
                .plugins()
                .iter()
                .map(|p| format!("{} ({})", p.label.name, p.world.as_str()))
                .collect();
            let loaded = match loaded.as_slice() {
                [] => "no plugins are loaded".to_string(),
                l => format!("the plugins loaded are {}", l.join(", ")),
            };
            return Err(format!(
                "source '{}' {problem}; {loaded} (from {}; `roster plugins list` shows them and the files that failed to load)",
                self.id,
                runtime.config().plugins_dir.display()
            ));
        }
        Ok(())
    }

    /// Whether `roster serve` runs this source on a schedule: its schedule is enabled and, for a
    /// push source (whose pushes start its runs), named explicitly with `every_minutes` or
    /// `cron` (a periodic run then re-plans from the mirror as last pushed).
    pub fn scheduled(&self) -> bool {
        self.schedule.enabled
            && match self.feed() {
                Feed::Pull(_) => true,
                Feed::Push(_) => self.schedule.every_minutes.is_some() || self.schedule.cron.is_some(),
            }
    }

    /// When `roster serve` syncs this source: its `schedule`, or, when that names no interval
    /// or cron expression, every `sync_interval_minutes` of its settings (the name Atlassian's
    /// directories give their interval, so a connector may offer it), else every 60 minutes.
    pub fn schedule(&self) -> Result<Schedule, String> {
        let label = |e: String| format!("source '{}' schedule: {e}", self.id);
        let minutes = match self.settings.get(INTERVAL_SETTING) {
            None | Some(serde_json::Value::Null) => DEFAULT_INTERVAL_MINUTES,
            Some(v) => v
                .as_u64()
                .and_then(|m| u32::try_from(m).ok())
                .filter(|m| (1..=MAX_INTERVAL_MINUTES).contains(m))
                .ok_or_else(|| {
                    format!(
                        "source '{}' settings.{INTERVAL_SETTING}: {v} is not a number of minutes; give a whole number from 1 to {MAX_INTERVAL_MINUTES}",
                        self.id
                    )
                })?,
        };
        self.schedule.schedule_or_every(minutes).map_err(label)
    }

    fn secret_label(&self, secret: &SecretConfig) -> String {
        format!("source '{}' secret '{}'", self.id, secret.name)
    }

    /// The source's secrets with their values resolved, as the JSON the store seals.
    pub fn resolved_secrets(&self, base: &Path) -> Result<serde_json::Value, String> {
        let list: Result<Vec<serde_json::Value>, String> = self
            .secrets
            .iter()
            .map(|s| {
                let v = s.from.resolve(base, &self.secret_label(s))?;
                let mut stored = serde_json::to_value(&s.binding).map_err(|e| e.to_string())?;
                if let Some(o) = stored.as_object_mut() {
                    o.insert("name".into(), s.name.clone().into());
                    o.insert("value".into(), v.expose().into());
                }
                Ok(stored)
            })
            .collect();
        list.map(serde_json::Value::Array)
    }

    /// The source as the store keeps it: everything but its secrets (sealed apart).
    pub fn stored(&self) -> serde_json::Value {
        let mut stored = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = stored.as_object_mut() {
            o.remove("secrets");
        }
        stored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(extra: &str) -> SourceConfig {
        toml::from_str(&format!("id = \"jira\"\nplugin = \"crowd\"\n{extra}")).unwrap()
    }

    #[test]
    fn a_source_is_pulled_by_a_plugin_or_pushed_never_both_nor_neither() {
        let pushed: SourceConfig = toml::from_str(
            "id = \"entra\"\n[push]\nprotocol = \"scim\"\nallow_ips = [\"20.0.0.0/8\", \"192.0.2.7\"]\n",
        )
        .unwrap();
        pushed.validate(Path::new(".")).unwrap();
        let Feed::Push(push) = pushed.feed() else {
            panic!("a [push] source reads as pulled: {:?}", pushed.feed())
        };
        assert_eq!(
            (push.protocol, push.allow_ips.len(), push.debounce_seconds),
            (PushProtocol::Scim, 2, 5)
        );
        assert_eq!((pushed.plugin(), pushed.feed_label().as_str()), (None, "push:scim"));
        assert_eq!(source("").feed(), Feed::Pull("crowd"));
        assert!(!pushed.scheduled(), "pushes start its runs; no interval by default");
        assert!(source("").scheduled());
        let polled: SourceConfig =
            toml::from_str("id = \"entra\"\nschedule = { every_minutes = 60 }\n[push]\nprotocol = \"scim\"\n").unwrap();
        assert!(polled.scheduled(), "an explicit schedule runs a push source too");

        let both = source("[push]\nprotocol = \"scim\"\n")
            .validate(Path::new("."))
            .unwrap_err();
        assert!(both.contains("not both"), "{both}");
        let neither: SourceConfig = toml::from_str("id = \"x\"\n").unwrap();
        let neither = neither.validate(Path::new(".")).unwrap_err();
        assert!(
            neither.contains("plugin = ") && neither.contains("[source.push]"),
            "{neither}"
        );
        let slow = source_pushed("debounce_seconds = 90\nmax_delay_seconds = 30\n");
        assert!(slow.contains("must not exceed"), "{slow}");
        let unknown: Result<SourceConfig, _> = toml::from_str("id = \"x\"\n[push]\nprotocol = \"ldap\"\n");
        assert!(unknown.is_err());
    }

    fn source_pushed(extra: &str) -> String {
        let s: SourceConfig = toml::from_str(&format!("id = \"entra\"\n[push]\nprotocol = \"scim\"\n{extra}")).unwrap();
        s.validate(Path::new(".")).unwrap_err()
    }

    #[test]
    fn an_ldap_source_parses_as_the_readme_writes_it() {
        let ldap = source(
            "allow_hosts = [\"ldaps://ldap.example.com\", \"ldap://dc1.example.com:3389\"]\n\
             allow_private_addresses = true\nallow_plain_ldap = true\n\
             [[secrets]]\nname = \"bind_password\"\nvalue = \"pw\"\n\
             hosts = [\"ldaps://ldap.example.com\"]\n\
             use = { ldap_bind = \"cn=reader,dc=example,dc=org\" }\n",
        );
        ldap.validate(Path::new(".")).unwrap();
        assert!(ldap.network.allow_plain_ldap);
        assert_eq!(ldap.network.allow_hosts[1].to_string(), "ldap://dc1.example.com:3389");
        assert_eq!(ldap.stored()["allow_plain_ldap"], true);
        // An ldap:// origin needs no `allow_insecure_http`: StartTLS protects it.
        source("allow_hosts = [\"ldap://ldap.example.com\"]")
            .validate(Path::new("."))
            .unwrap();
        let err = source(
            "allow_hosts = [\"ldaps://ldap.example.com\"]\n\
             [[secrets]]\nname = \"bind_password\"\nvalue = \"pw\"\n\
             hosts = [\"https://ldap.example.com\"]\nuse = { ldap_bind = \"cn=reader\" }\n",
        )
        .validate(Path::new("."))
        .unwrap_err();
        assert!(
            err.contains("source 'jira' secret 'bind_password'")
                && err.contains("not an exact ldap:// or ldaps:// origin"),
            "{err}"
        );
    }

    #[test]
    fn a_connectors_sync_interval_is_the_schedule_unless_the_source_gives_one() {
        let plain = source("");
        assert_eq!(plain.schedule().unwrap().describe(), "every 60 minutes");
        let jira = source("settings = { sync_interval_minutes = 15 }");
        assert_eq!(jira.schedule().unwrap().describe(), "every 15 minutes");
        let both = source("settings = { sync_interval_minutes = 15 }\nschedule = { every_minutes = 5 }");
        assert_eq!(both.schedule().unwrap().describe(), "every 5 minutes");
        let cron = source("settings = { sync_interval_minutes = 15 }\nschedule = { cron = \"0 0 * * *\" }");
        assert!(cron.schedule().unwrap().describe().contains("0 0 * * *"));
        for bad in ["0", "-5", "\"hourly\"", "10081"] {
            let err = source(&format!("settings = {{ sync_interval_minutes = {bad} }}"))
                .validate(Path::new("."))
                .unwrap_err();
            assert!(
                err.contains("source 'jira' settings.sync_interval_minutes") && err.contains("1 to 10080"),
                "{bad}: {err}"
            );
        }
    }
}

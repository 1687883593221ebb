//! The configuration file (`roster.toml`): sources, their plugins and limits, and the target
//! with its policy. Parsed into typed, validated settings; every error names the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::runtime::budget::BudgetConfig;
use crate::runtime::capability::{NetPolicy, Origin};
use crate::runtime::limits::Limits;
use crate::runtime::secrets::{SecretKind, SecretValue};

/// A configuration problem, in words that say what to fix.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// What is wrong.
    pub message: String,
}

/// Where a secret's value comes from. Exactly one of the three.
#[derive(Debug, Clone, Deserialize, serde::Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// The value itself (discouraged outside tests and demos).
    pub value: Option<String>,
    /// An environment variable holding it.
    pub env: Option<String>,
    /// A file holding it (trailing newline trimmed).
    pub file: Option<PathBuf>,
}

impl SecretRef {
    fn resolve(&self, base: &Path, what: &str) -> Result<SecretValue, String> {
        match (&self.value, &self.env, &self.file) {
            (Some(v), None, None) => Ok(SecretValue::new(v.clone())),
            (None, Some(var), None) => std::env::var(var)
                .map(SecretValue::new)
                .map_err(|_| format!("{what}: environment variable {var} is not set")),
            (None, None, Some(f)) => {
                let path = base.join(f);
                std::fs::read_to_string(&path)
                    .map(|s| SecretValue::new(s.trim_end().to_string()))
                    .map_err(|e| format!("{what}: cannot read {}: {e}", path.display()))
            }
            _ => Err(format!("{what}: give exactly one of `value`, `env` or `file`")),
        }
    }
}

/// A secret of a source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretConfig {
    /// Name plugins use in `{{secret:NAME}}`.
    pub name: String,
    /// Origins it may be sent to.
    pub hosts: Vec<Origin>,
    /// Value or signing key.
    #[serde(default)]
    pub kind: SecretKind,
    /// Where the value comes from.
    #[serde(flatten)]
    pub from: SecretRef,
}

/// One step of a source's transform chain.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TransformConfig {
    /// Transform plugin name.
    pub plugin: String,
    /// Its settings.
    #[serde(default = "empty_object")]
    pub settings: serde_json::Value,
    /// Or a file holding them (`.toml` or `.json`, relative to the configuration), re-read at
    /// every run: a new version is used once the transform accepts it; a broken one is refused
    /// and the version last accepted keeps serving.
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
    /// Connector plugin name.
    pub plugin: String,
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

/// Where a source was defined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefinedIn {
    /// In roster.toml: read-only through the API.
    #[default]
    File,
    /// Created through the API and kept in the store.
    Api,
}

impl DefinedIn {
    /// `file` or `api`.
    pub fn as_str(self) -> &'static str {
        match self {
            DefinedIn::File => "file",
            DefinedIn::Api => "api",
        }
    }
}

/// When a source is synced by `roster serve`: every `every_minutes` minutes (60 unless a cron
/// expression is given, as Atlassian's directories), or on a cron expression (Quartz, as
/// Atlassian administrators write them, or Unix 5-field; UTC).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Scheduled runs at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Interval in minutes.
    pub every_minutes: Option<u32>,
    /// Or a cron expression.
    pub cron: Option<String>,
    /// Scheduled runs use the source's delta token when it has one.
    #[serde(default = "yes")]
    pub incremental: bool,
    /// With `incremental`, a full fetch at least this often (hours) all the same.
    #[serde(default = "default_full_every")]
    pub full_every_hours: f64,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            enabled: true,
            every_minutes: None,
            cron: None,
            incremental: true,
            full_every_hours: default_full_every(),
        }
    }
}

fn default_full_every() -> f64 {
    24.0
}

impl ScheduleConfig {
    /// The schedule, validated.
    pub fn schedule(&self) -> Result<crate::scheduler::cron::Schedule, String> {
        use crate::scheduler::cron::Schedule;
        match (&self.cron, self.every_minutes) {
            (Some(_), Some(_)) => Err("give `every_minutes` or `cron`, not both".into()),
            (Some(c), None) => Schedule::cron(c).map_err(|e| format!("cron `{c}`: {e}")),
            (None, m) => Schedule::every(m.unwrap_or(60)).map_err(|e| e.to_string()),
        }
    }
}

/// The REST API's access rules.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Client addresses allowed (CIDR); empty: any address with a valid token.
    #[serde(default)]
    pub allow_ips: Vec<ipnet::IpNet>,
    /// Proxies whose `X-Forwarded-For` is believed (CIDR).
    #[serde(default)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// What happens to a Roster-managed account whose person left the IdP or was disabled there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Deprovision {
    /// Remove what licenses the account (memberships of groups with a global permission, and
    /// direct permissions); the account stays and comes back when the IdP enables it.
    Disable,
    /// Delete the account once its person is gone from every source; a person disabled or
    /// soft-deleted there (who can come back) is only disabled.
    Delete,
    /// Delete, then erase personal data (irreversible); disabled or soft-deleted: disabled.
    DeleteAndErase,
    /// Leave the account as it is (reported only).
    Keep,
}

/// Hold a plan that removes or deactivates more than this.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// Accounts deprovisioned in one plan.
    pub count: u32,
    /// Percent of the accounts Roster manages.
    pub percent: f64,
}

impl Default for Threshold {
    fn default() -> Self {
        Threshold {
            count: 50,
            percent: 10.0,
        }
    }
}

/// The Bitbucket Data Center instance and its policy.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// roster.toml or the API.
    #[serde(skip)]
    pub origin: DefinedIn,
    /// Stable id.
    #[serde(default = "default_target")]
    pub id: String,
    /// Base URL, e.g. `https://bitbucket.example.com`.
    pub url: String,
    /// The account Roster uses (always protected).
    pub username: String,
    /// Its password (Basic auth), or
    pub password: Option<SecretRef>,
    /// a personal access token (Bearer).
    pub token: Option<SecretRef>,
    /// Deprovisioning policy.
    #[serde(default = "default_deprovision")]
    pub deprovision: Deprovision,
    /// Deletion/deactivation threshold.
    #[serde(default)]
    pub threshold: Threshold,
    /// Accounts never changed (besides Roster's own and holders of ADMIN/SYS_ADMIN).
    #[serde(default)]
    pub protected_users: Vec<String>,
    /// Groups never changed (besides groups with ADMIN/SYS_ADMIN).
    #[serde(default)]
    pub protected_groups: Vec<String>,
    /// Take over existing Bitbucket accounts whose name matches an IdP user (else: report a
    /// collision and leave them alone).
    #[serde(default)]
    pub adopt_existing_users: bool,
    /// When disabling, keep memberships of groups Roster does not manage unless they license.
    #[serde(default = "yes")]
    pub keep_unmanaged_memberships: bool,
    /// Groups every active synced user is put in (e.g. the group holding LICENSED_USER).
    #[serde(default)]
    pub default_groups: Vec<String>,
    /// Groups a user is put in when Roster creates the account, and never managed afterwards
    /// (a starting point people may leave). They must exist in Bitbucket.
    #[serde(default)]
    pub new_user_groups: Vec<String>,
    /// Which source wins each attribute (`email`, `display_name`, `active`), in order; others
    /// follow the directory order.
    #[serde(default)]
    pub attribute_priority: BTreeMap<String, Vec<String>>,
    /// Writes in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Users per `add-users` call.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Request budget towards Bitbucket.
    #[serde(default = "default_target_budget")]
    pub budget: BudgetConfig,
    /// Retries of a throttled or failed call.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Identity-provider connections.
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceConfig>,
    /// The Bitbucket instance: roster.toml's `[target]`, else the one created through the API
    /// (`PUT /api/v1/targets/{id}`); none yet means nothing can run.
    #[serde(default)]
    pub target: Option<TargetConfig>,
    /// The REST API.
    #[serde(default)]
    pub api: ApiConfig,
    /// Webhooks told about failed runs, held plans, stale sources and unusual change volumes.
    #[serde(default, rename = "alert")]
    pub alerts: Vec<crate::telemetry::alerts::AlertConfig>,
    /// Where the file lives; relative paths are resolved against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

fn yes() -> bool {
    true
}
fn default_priority() -> i64 {
    100
}
fn default_target() -> String {
    "bitbucket".into()
}
fn default_deprovision() -> Deprovision {
    Deprovision::Disable
}
fn default_concurrency() -> usize {
    8
}
fn default_batch() -> usize {
    500
}
fn default_retries() -> u32 {
    6
}
fn default_target_budget() -> BudgetConfig {
    BudgetConfig {
        per_second: 200.0,
        burst: 200,
    }
}

/// What to do when no target is defined anywhere.
pub const NO_TARGET: &str = "no Bitbucket target is defined: add a [target] table to roster.toml, or create one through the API (PUT /api/v1/targets/bitbucket)";

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let err = |message: String| ConfigError {
            file: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let mut config: Config = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        config.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        config.validate().map_err(err)?;
        Ok(config)
    }

    /// Parses a configuration from text (relative paths against `base_dir`).
    pub fn parse(text: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        let err = |message: String| ConfigError {
            file: "(inline)".into(),
            message,
        };
        let mut config: Config = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        config.base_dir = base_dir.to_path_buf();
        config.validate().map_err(err)?;
        Ok(config)
    }

    /// Checks the whole configuration; every message names the field.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for s in &self.sources {
            if !valid_id(&s.id) {
                return Err(format!("source id {:?} must be 1–64 letters, digits, '-' or '_'", s.id));
            }
            if !seen.insert(&s.id) {
                return Err(format!("two sources are called '{}'", s.id));
            }
            s.network.validate().map_err(|e| format!("source '{}': {e}", s.id))?;
            if let Some(f) = &s.files {
                let dir = self.base_dir.join(f);
                if !dir.is_dir() {
                    return Err(format!("source '{}': `files` {} is not a folder", s.id, dir.display()));
                }
            }
            for (i, t) in s.transforms.iter().enumerate() {
                let inline = t.settings.as_object().is_none_or(|o| !o.is_empty());
                if t.settings_file.is_some() && inline {
                    return Err(format!(
                        "source '{}' transform {} ({}): give `settings` or `settings_file`, not both",
                        s.id,
                        i + 1,
                        t.plugin
                    ));
                }
            }
            if s.schedule.enabled {
                s.schedule
                    .schedule()
                    .map_err(|e| format!("source '{}' schedule: {e}", s.id))?;
            }
            for secret in &s.secrets {
                secret
                    .from
                    .resolve(&self.base_dir, &format!("source '{}' secret '{}'", s.id, secret.name))?;
            }
        }
        if let Some(t) = &self.target {
            self.validate_target(t)?;
        }
        Ok(())
    }

    /// Checks the target's fields; every message names the field.
    pub fn validate_target(&self, t: &TargetConfig) -> Result<(), String> {
        if !valid_id(&t.id) {
            return Err(format!("target id {:?} must be 1–64 letters, digits, '-' or '_'", t.id));
        }
        let url = url::Url::parse(&t.url).map_err(|e| format!("target url {:?}: {e}", t.url))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("target url {:?} must be http or https", t.url));
        }
        if t.password.is_some() == t.token.is_some() {
            return Err("target: give exactly one of `password` or `token`".into());
        }
        if !(0.0..=100.0).contains(&t.threshold.percent) {
            return Err(format!(
                "target threshold.percent {} must be between 0 and 100",
                t.threshold.percent
            ));
        }
        if t.concurrency == 0 || t.batch_size == 0 {
            return Err("target concurrency and batch_size must be at least 1".into());
        }
        for (attr, order) in &t.attribute_priority {
            if let Some(unknown) = order.iter().find(|s| !self.sources.iter().any(|x| &x.id == *s)) {
                return Err(format!(
                    "target attribute_priority.{attr} names unknown source '{unknown}'"
                ));
            }
        }
        Ok(())
    }

    /// The source with this id.
    pub fn source(&self, id: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.id == id)
    }

    /// A source's secrets with their values resolved, as the JSON the store seals.
    pub fn resolved_secrets(&self, source: &SourceConfig) -> Result<serde_json::Value, String> {
        let list: Result<Vec<serde_json::Value>, String> = source
            .secrets
            .iter()
            .map(|s| {
                let v = s
                    .from
                    .resolve(&self.base_dir, &format!("source '{}' secret '{}'", source.id, s.name))?;
                Ok(serde_json::json!({
                    "name": s.name, "value": v.expose(), "hosts": s.hosts,
                    "kind": if s.kind == SecretKind::SigningKey { "signing-key" } else { "value" },
                }))
            })
            .collect();
        list.map(serde_json::Value::Array)
    }

    /// The target, or what to do when there is none.
    pub fn target(&self) -> Result<&TargetConfig, String> {
        self.target.as_ref().ok_or_else(|| NO_TARGET.to_string())
    }

    /// The target's credentials.
    pub fn target_auth(&self, t: &TargetConfig) -> Result<crate::targets::bitbucket_dc::Auth, String> {
        match (&t.password, &t.token) {
            (Some(p), None) => Ok(crate::targets::bitbucket_dc::Auth::Basic {
                username: t.username.clone(),
                password: p.resolve(&self.base_dir, "target password")?,
            }),
            (None, Some(tok)) => Ok(crate::targets::bitbucket_dc::Auth::Bearer {
                token: tok.resolve(&self.base_dir, "target token")?,
                username: t.username.clone(),
            }),
            _ => Err("target: give exactly one of `password` or `token`".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [[source]]
        id = "hr"
        plugin = "file"
        settings = { path = "directory.json" }
        allow_hosts = ["https://login.example"]
        [[source.secrets]]
        name = "client_secret"
        value = "s3cret"
        hosts = ["https://login.example"]
        [[source.transforms]]
        plugin = "normalize"
        settings = { strip_domain = true }

        [target]
        url = "http://127.0.0.1:7990"
        username = "admin"
        password = { value = "password" }
        deprovision = "delete"
        threshold = { count = 5, percent = 20 }
    "#;

    #[test]
    fn a_good_file_parses_with_defaults() {
        let c = Config::parse(GOOD, Path::new(".")).unwrap();
        assert_eq!(c.sources[0].priority, 100);
        assert_eq!(c.sources[0].transforms[0].plugin, "normalize");
        let t = c.target().unwrap();
        assert_eq!(t.deprovision, Deprovision::Delete);
        assert_eq!(t.threshold.count, 5);
        let secrets = c.resolved_secrets(&c.sources[0]).unwrap();
        assert_eq!(secrets[0]["value"], "s3cret");
    }

    #[test]
    fn a_file_without_a_target_parses_and_says_how_to_add_one() {
        let text = &GOOD[..GOOD.find("[target]").unwrap()];
        let c = Config::parse(text, Path::new(".")).unwrap();
        let err = c.target().unwrap_err();
        assert!(err.contains("PUT /api/v1/targets/bitbucket"), "{err}");
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            (
                GOOD.replace("deprovision = \"delete\"", "deprovision = \"nuke\""),
                "unknown variant `nuke`",
            ),
            (
                GOOD.replace("plugin = \"file\"", "plugin = \"file\"\npriorty = 3"),
                "unknown field `priorty`",
            ),
            (
                GOOD.replace(
                    "https://login.example\"]\n        [[source.secrets]]",
                    "http://login.example\"]\n        [[source.secrets]]",
                ),
                "allow_insecure_http",
            ),
            (
                GOOD.replace("password = { value = \"password\" }", ""),
                "exactly one of `password` or `token`",
            ),
            (
                GOOD.replace("value = \"s3cret\"", "env = \"ROSTER_TEST_SURELY_UNSET\""),
                "ROSTER_TEST_SURELY_UNSET is not set",
            ),
            (GOOD.replace("id = \"hr\"", "id = \"h r\""), "source id \"h r\""),
        ];
        for (text, expected) in cases {
            let err = Config::parse(&text, Path::new(".")).unwrap_err().to_string();
            assert!(err.contains(expected), "expected {expected:?} in: {err}");
        }
    }
}

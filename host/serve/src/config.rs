//! The configuration file (`roster.toml`): sources, the targets with their policies, the REST
//! API's access rules and alert webhooks — composed from the types each crate owns
//! (`roster_directory::SourceConfig`, `roster_engine::TargetConfig`, …). Parsed into typed,
//! validated settings; every error names the field.

use std::path::{Path, PathBuf};

use roster_directory::{SourceConfig, valid_id};
use roster_engine::{TargetConfig, TargetKinds};
use serde::Deserialize;

/// A configuration problem, in words that say what to fix.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// What is wrong.
    pub message: String,
}

/// The REST API's access rules.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Client addresses allowed (single addresses or CIDR ranges); empty: any address with a
    /// valid token.
    #[serde(default, deserialize_with = "roster_http::addr::ranges")]
    pub allow_ips: Vec<ipnet::IpNet>,
    /// Proxies whose `X-Forwarded-For` is believed (single addresses or CIDR ranges); this
    /// applies to the SCIM endpoint too.
    #[serde(default, deserialize_with = "roster_http::addr::ranges")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How the admin pages' session cookie is sent.
    #[serde(default)]
    pub ui_cookie: UiCookie,
}

/// How the admin pages' session cookie is sent (`[api] ui_cookie`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UiCookie {
    /// `__Host-roster_session`, `Secure`: over HTTPS, or on `http://127.0.0.1` and
    /// `http://localhost`, which browsers treat as secure.
    #[default]
    Secure,
    /// `roster_session` without `Secure`, for plain HTTP on another address (a browser drops a
    /// `Secure` cookie there): only on a network where nobody can read the traffic.
    Plain,
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Identity-provider connections.
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceConfig>,
    /// The targets, in the order runs reconcile them: roster.toml's `[target]` (one) or
    /// `[[target]]` (several), then those created through the API (`PUT /api/v1/targets/{id}`);
    /// none yet means nothing can be applied.
    #[serde(default, rename = "target", deserialize_with = "one_or_many")]
    pub targets: Vec<TargetConfig>,
    /// The REST API.
    #[serde(default)]
    pub api: ApiConfig,
    /// Webhooks told about failed runs, held plans, stale sources and unusual change volumes.
    #[serde(default, rename = "alert")]
    pub alerts: Vec<roster_telemetry::alerts::AlertConfig>,
    /// Where the file lives; relative paths are resolved against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// `[target]` (one table) or `[[target]]` (an array of tables): files written for one target stay
/// valid. Each table is read on its own, so its errors keep their words (and say which table).
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<TargetConfig>, D::Error> {
    use serde::de::Error;
    match toml::Value::deserialize(d)? {
        toml::Value::Array(tables) => tables
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                t.try_into::<TargetConfig>()
                    .map_err(|e| D::Error::custom(format!("[[target]] number {}: {}", i + 1, e.message())))
            })
            .collect(),
        one => one
            .try_into::<TargetConfig>()
            .map(|t| vec![t])
            .map_err(|e| D::Error::custom(e.message())),
    }
}

/// The kind of target that is Roster's own Crowd directory: at most one per configuration.
pub const CROWD_DIRECTORY: &str = "crowd-directory";

/// What to do when no target is defined anywhere.
pub const NO_TARGET: &str = "no Bitbucket target is defined: add a [target] table to roster.toml, or create one through the API (PUT /api/v1/targets/bitbucket)";

impl Config {
    /// Reads and validates a configuration file; `kinds` check the target's own settings.
    pub fn load(path: &Path, kinds: &TargetKinds) -> Result<Config, ConfigError> {
        let err = |message: String| ConfigError {
            file: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let mut config: Config = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        config.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        config.validate(kinds).map_err(err)?;
        Ok(config)
    }

    /// Parses a configuration from text (relative paths against `base_dir`).
    pub fn parse(text: &str, base_dir: &Path, kinds: &TargetKinds) -> Result<Config, ConfigError> {
        let err = |message: String| ConfigError {
            file: "(inline)".into(),
            message,
        };
        let mut config: Config = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        config.base_dir = base_dir.to_path_buf();
        config.validate(kinds).map_err(err)?;
        Ok(config)
    }

    /// Checks the whole configuration; every message names the field.
    pub fn validate(&self, kinds: &TargetKinds) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for s in &self.sources {
            s.validate(&self.base_dir)?;
            if !seen.insert(&s.id) {
                return Err(format!("two sources are called '{}'", s.id));
            }
        }
        for t in &self.targets {
            self.validate_target(t, kinds)?;
        }
        self.validate_together(kinds)
    }

    /// Checks what several targets must agree on: distinct ids; distinct systems (two targets
    /// writing to one url would undo each other's changes); one `crowd-directory` (the served
    /// tables are one directory); one `attribute_priority` (the directory is merged once for
    /// every target).
    pub fn validate_together(&self, kinds: &TargetKinds) -> Result<(), String> {
        let url = |t: &TargetConfig| {
            kinds
                .get(&t.kind)
                .ok()
                .and_then(|k| k.describe(t).url)
                .map(|u| u.trim_end_matches('/').to_ascii_lowercase())
        };
        let place = |i: usize| match (self.targets[i].origin, self.targets.len()) {
            (roster_model::DefinedIn::Api, _) => "the target created through the API".to_string(),
            (_, 1) => "[target]".to_string(),
            _ => format!("[[target]] number {}", i + 1),
        };
        for (i, a) in self.targets.iter().enumerate() {
            for (j, b) in self.targets.iter().enumerate().skip(i + 1) {
                if a.id == b.id {
                    return Err(format!(
                        "two targets are called '{}': {} and {}; give each its own `id`",
                        a.id,
                        place(i),
                        place(j)
                    ));
                }
                if let (Some(x), Some(y)) = (url(a), url(b))
                    && a.kind == b.kind
                    && x == y
                {
                    return Err(format!(
                        "targets '{}' and '{}' both write to {x}: two targets on one system would undo each other's changes; keep one",
                        a.id, b.id
                    ));
                }
                if a.kind == CROWD_DIRECTORY && b.kind == CROWD_DIRECTORY {
                    return Err(format!(
                        "targets '{}' and '{}' are both of kind {CROWD_DIRECTORY}: Roster serves one Crowd directory, which every application (Jira, Confluence, …) reads with its own credentials (roster crowd-app add); keep one of them",
                        a.id, b.id
                    ));
                }
                if !a.attribute_priority.is_empty()
                    && !b.attribute_priority.is_empty()
                    && a.attribute_priority != b.attribute_priority
                {
                    return Err(format!(
                        "targets '{}' and '{}' give different attribute_priority: the sources are merged once for every target; give it on one target (or the same on each)",
                        a.id, b.id
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks the target: its policy, its kind's settings, the sources its policy names.
    pub fn validate_target(&self, t: &TargetConfig, kinds: &TargetKinds) -> Result<(), String> {
        if !valid_id(&t.id) {
            return Err(format!("target id {:?} must be 1–64 letters, digits, '-' or '_'", t.id));
        }
        kinds.get(&t.kind)?.validate(t, &self.base_dir)?;
        t.validate_policy()?;
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

    /// The first target (the only one, in most configurations), or what to do when there is
    /// none.
    pub fn target(&self) -> Result<&TargetConfig, String> {
        self.targets.first().ok_or_else(|| NO_TARGET.to_string())
    }

    /// The target with this id.
    pub fn target_named(&self, id: &str) -> Option<&TargetConfig> {
        self.targets.iter().find(|t| t.id == id)
    }

    /// The attribute priority the directory merges with: the one target that gives it (they
    /// agree, see [`Config::validate_together`]).
    pub fn attribute_priority(&self) -> std::collections::BTreeMap<String, Vec<String>> {
        self.targets
            .iter()
            .map(|t| &t.attribute_priority)
            .find(|p| !p.is_empty())
            .cloned()
            .unwrap_or_default()
    }

    /// The groups `why` counts as every synced user's: the default groups of every target.
    pub fn default_groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = Vec::new();
        for g in self.targets.iter().flat_map(|t| &t.default_groups) {
            if !groups.contains(g) {
                groups.push(g.clone());
            }
        }
        groups
    }
}

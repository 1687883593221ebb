//! The configuration file (`roster.toml`): sources, the target with its policy, the REST
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
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Identity-provider connections.
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceConfig>,
    /// The target: roster.toml's `[target]`, else the one created through the API
    /// (`PUT /api/v1/targets/{id}`); none yet means nothing can be applied.
    #[serde(default)]
    pub target: Option<TargetConfig>,
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
        if let Some(t) = &self.target {
            self.validate_target(t, kinds)?;
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

    /// The target, or what to do when there is none.
    pub fn target(&self) -> Result<&TargetConfig, String> {
        self.target.as_ref().ok_or_else(|| NO_TARGET.to_string())
    }
}

//! Secret values and where configuration says to find them. A value's `Debug` never prints it,
//! so a secret cannot reach a log line by being formatted with its holder.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A secret's value; its `Debug` never prints it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct SecretValue(String);

impl SecretValue {
    /// Wraps a value.
    pub fn new(v: impl Into<String>) -> Self {
        SecretValue(v.into())
    }
    /// The value, for the few places that must send or use it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where a secret's value comes from, as configuration writes it. Exactly one of the three.
#[derive(Debug, Clone, Deserialize, serde::Serialize, Default, PartialEq)]
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
    /// The value; `base` resolves a relative file, `what` names the secret in errors.
    pub fn resolve(&self, base: &Path, what: &str) -> Result<SecretValue, String> {
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

    /// True when the value is given inline (the only form the API accepts: `env` and `file`
    /// name things on the server).
    pub fn is_inline_value(&self) -> bool {
        self.value.is_some() && self.env.is_none() && self.file.is_none()
    }
}

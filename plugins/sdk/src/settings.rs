//! Reading a plugin's settings JSON into the plugin's own struct, with errors an administrator
//! can act on.

use serde::de::DeserializeOwned;

use crate::PluginError;

/// Parses the settings string; a missing or mistyped field is a `config` error naming it.
pub fn parse<T: DeserializeOwned>(settings: &str) -> Result<T, PluginError> {
    serde_json::from_str(settings).map_err(|e| PluginError::Config(format!("invalid settings: {e}")))
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct S {
        tenant_id: String,
    }

    #[test]
    fn missing_fields_are_named() {
        let err = super::parse::<S>("{}").unwrap_err();
        assert!(err.to_string().contains("missing field `tenant_id`"), "{err}");
    }
}

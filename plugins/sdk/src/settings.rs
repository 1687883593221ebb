//! A connector's settings: one struct that is parsed, validated, described (its JSON Schema is
//! derived from it) and fingerprinted (which settings decide what a fetch reads).
//!
//! ```ignore
//! #[derive(Serialize, Deserialize, JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! struct Settings {
//!     /// The directory's base URL.
//!     base_url: String,
//!     /// Objects per request.
//!     #[serde(default = "default_page_size")]
//!     #[schemars(range(min = 1, max = 200))]
//!     page_size: u32,
//! }
//! impl SourceSettings for Settings {
//!     const OUTSIDE_SCOPE: &'static [&'static str] = &["page_size"];
//!     fn validate(&mut self) -> Result<(), PluginError> { /* ranges, combinations */ Ok(()) }
//! }
//! ```

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::PluginError;

/// A connector's settings struct, as the SDK reads, describes and fingerprints it.
pub trait SourceSettings: DeserializeOwned + Serialize + JsonSchema {
    /// Top-level settings that change neither which objects a fetch reads nor how their records
    /// look (page sizes, credentials, the sign-in endpoint): changing them keeps a delta token
    /// usable. Every other setting is in the [`Fingerprint`], so a setting added later is
    /// scope-relevant unless declared otherwise — a needless full fetch is cheaper than an
    /// incremental one continued under a different scope.
    const OUTSIDE_SCOPE: &'static [&'static str] = &[];

    /// Checks what the types cannot say (ranges, combinations) and normalises values; every
    /// problem is a `config` error naming the setting.
    fn validate(&mut self) -> Result<(), PluginError> {
        Ok(())
    }
}

/// Parses the settings string; a missing or mistyped field is a `config` error naming it.
pub fn parse<T: DeserializeOwned>(settings: &str) -> Result<T, PluginError> {
    serde_json::from_str(settings).map_err(|e| PluginError::Config(format!("invalid settings: {e}")))
}

/// Parses and validates a connector's settings.
pub fn read<S: SourceSettings>(settings: &str) -> Result<S, PluginError> {
    let mut s: S = parse(settings)?;
    s.validate()?;
    Ok(s)
}

/// The JSON Schema (draft 2020-12) of a settings struct, for `describe`: field docs become
/// descriptions, serde defaults become `default`, `deny_unknown_fields` becomes
/// `additionalProperties: false`.
pub fn schema<S: JsonSchema>() -> String {
    let schema = schemars::schema_for!(S);
    serde_json::to_string_pretty(&schema).unwrap_or_else(|_| "{}".into())
}

/// The names of [`SourceSettings::OUTSIDE_SCOPE`] that are not top-level properties of the
/// settings' schema (a misspelt name would silently keep its setting in the fingerprint); for
/// a connector's unit tests.
pub fn undeclared_outside_scope<S: SourceSettings>() -> Vec<&'static str> {
    let schema = serde_json::to_value(schemars::schema_for!(S)).unwrap_or_default();
    let properties = schema.get("properties").and_then(Value::as_object);
    S::OUTSIDE_SCOPE
        .iter()
        .copied()
        .filter(|name| properties.is_none_or(|p| !p.contains_key(*name)))
        .collect()
}

/// A digest of the scope-relevant settings (all but [`SourceSettings::OUTSIDE_SCOPE`]), stored
/// in delta tokens so one made under other settings is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The fingerprint of validated settings: their canonical JSON (keys sorted) without the
    /// settings outside the scope, hashed.
    pub fn of<S: SourceSettings>(settings: &S) -> Result<Fingerprint, PluginError> {
        let mut value = serde_json::to_value(settings)
            .map_err(|e| PluginError::Fatal(format!("cannot fingerprint the settings: {e}")))?;
        if let Value::Object(map) = &mut value {
            for name in S::OUTSIDE_SCOPE {
                map.remove(*name);
            }
        }
        let mut canonical = String::new();
        write_canonical(&value, &mut canonical);
        Ok(Fingerprint(format!("{:016x}", fnv1a(canonical.as_bytes()))))
    }

    /// A fingerprint as stored in a token.
    pub fn from_stored(text: impl Into<String>) -> Fingerprint {
        Fingerprint(text.into())
    }

    /// The text stored in a token.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// JSON with object keys sorted, whatever map order serde_json was built with, so the
/// fingerprint does not depend on a feature another crate enables.
fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// FNV-1a, 64 bits: a stable digest, not a security measure (the token is the host's own data).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct S {
        tenant_id: String,
    }

    #[test]
    fn missing_fields_are_named() {
        let err = super::parse::<S>("{}").unwrap_err();
        assert!(err.to_string().contains("missing field `tenant_id`"), "{err}");
    }

    /// Settings of an imaginary connector.
    #[derive(Serialize, Deserialize, JsonSchema, Debug)]
    #[serde(deny_unknown_fields)]
    struct Demo {
        /// Where the directory is.
        base_url: String,
        /// Objects per request.
        #[serde(default = "fifty")]
        #[schemars(range(min = 1, max = 100))]
        page_size: u32,
        /// Groups to read.
        #[serde(default)]
        groups: Vec<String>,
    }

    fn fifty() -> u32 {
        50
    }

    impl SourceSettings for Demo {
        const OUTSIDE_SCOPE: &'static [&'static str] = &["page_size"];

        fn validate(&mut self) -> Result<(), PluginError> {
            if !(1..=100).contains(&self.page_size) {
                return Err(PluginError::Config(format!(
                    "page_size {} is out of range",
                    self.page_size
                )));
            }
            self.base_url = self.base_url.trim_end_matches('/').to_string();
            Ok(())
        }
    }

    #[test]
    fn settings_are_parsed_then_validated_and_errors_name_the_field() {
        let s: Demo = read(r#"{"base_url":"https://x/"}"#).unwrap();
        assert_eq!((s.base_url.as_str(), s.page_size), ("https://x", 50));
        let err = read::<Demo>(r#"{"base_url":"https://x","page_sise":3}"#).unwrap_err();
        assert!(
            matches!(&err, PluginError::Config(m) if m.contains("unknown field `page_sise`")),
            "{err:?}"
        );
        let err = read::<Demo>(r#"{"base_url":"https://x","page_size":0}"#).unwrap_err();
        assert!(
            matches!(&err, PluginError::Config(m) if m.contains("page_size 0")),
            "{err:?}"
        );
        assert!(matches!(read::<Demo>("not json"), Err(PluginError::Config(_))));
    }

    #[test]
    fn the_schema_is_derived_from_the_struct() {
        let schema: Value = serde_json::from_str(&schema::<Demo>()).unwrap();
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["required"], serde_json::json!(["base_url"]));
        let size = &schema["properties"]["page_size"];
        assert_eq!(
            (size["default"].as_u64(), size["minimum"].as_u64()),
            (Some(50), Some(1))
        );
        assert_eq!(size["description"], "Objects per request.");
    }

    #[test]
    fn the_fingerprint_ignores_settings_outside_the_scope_and_key_order() {
        let fp = |json: &str| Fingerprint::of(&read::<Demo>(json).unwrap()).unwrap();
        let base = fp(r#"{"base_url":"https://x","groups":["a"]}"#);
        assert_eq!(fp(r#"{"groups":["a"],"base_url":"https://x/","page_size":7}"#), base);
        assert_ne!(fp(r#"{"base_url":"https://x","groups":["b"]}"#), base);
        assert_ne!(fp(r#"{"base_url":"https://y","groups":["a"]}"#), base);
        assert!(undeclared_outside_scope::<Demo>().is_empty());
    }
}

/// A setting that holds a service's address: parsed, `https` (plain `http` only to this
/// machine, for a simulator or a local proxy: a token travels with every call), without a query,
/// fragment, user name or password. `example` is a correct value for the messages. The path is
/// left to the connector, whose rules for it differ.
pub fn service_url(setting: &str, raw: &str, example: &str) -> Result<url::Url, PluginError> {
    let config = |m: String| PluginError::Config(m);
    let trimmed = raw.trim().trim_end_matches('/');
    let parsed = url::Url::parse(trimmed).map_err(|e| {
        config(format!(
            "{setting} `{raw}` is not a URL ({e}): write the address, e.g. {example}"
        ))
    })?;
    let host = parsed.host_str().unwrap_or("");
    let loopback = matches!(host, "127.0.0.1" | "localhost" | "[::1]");
    let scheme_ok = parsed.scheme() == "https" || (parsed.scheme() == "http" && loopback);
    if !scheme_ok || host.is_empty() {
        return Err(config(format!(
            "{setting} `{raw}` must be an https:// URL such as {example}"
        )));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(config(format!(
            "{setting} `{raw}` must be the address without a query, e.g. {example}"
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(config(format!(
            "{setting} `{raw}` carries a user name or password: write the address alone, e.g. {example}, and put the credentials in a secret"
        )));
    }
    Ok(parsed)
}

#[cfg(test)]
mod service_url_tests {
    use super::service_url;
    use crate::PluginError;

    fn refused(raw: &str) -> String {
        match service_url("base_url", raw, "https://sso.example.com") {
            Err(PluginError::Config(m)) => m,
            other => panic!("{raw}: {other:?}"),
        }
    }

    #[test]
    fn https_anywhere_and_http_only_to_this_machine() {
        let u = service_url("base_url", " https://SSO.example.com/auth/ ", "x").unwrap();
        assert_eq!((u.host_str(), u.path()), (Some("sso.example.com"), "/auth"));
        assert!(service_url("base_url", "http://127.0.0.1:8080", "x").is_ok());
        assert!(refused("http://sso.example.com").contains("must be an https:// URL"));
        assert!(refused("sso.example.com").contains("is not a URL"));
        assert!(refused("https://sso.example.com/?realm=a").contains("without a query"));
        assert!(refused("https://admin:pw@sso.example.com").contains("user name or password"));
    }
}

//! Secrets stay in the host.
//!
//! A plugin writes `{{secret:NAME}}` in a header value or a request body; the host fills in the
//! value on the way out, and only when the request goes to an origin the secret is bound to.
//! Placeholders in URLs are never filled (URLs end up in logs and proxies). Every secret value
//! found in a response, a log line or an error message is turned back into its placeholder
//! before the plugin or the log sees it.

use memchr::memmem;
use serde::Deserialize;

use crate::capability::Origin;

/// What a secret may be used for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretKind {
    /// A value substituted into requests (client secret, API token, password).
    #[default]
    Value,
    /// A PEM private key, used only by `sign-jwt`; never substituted into requests.
    SigningKey,
}

pub use roster_http::SecretValue;

/// One named secret of a source and the origins it may be sent to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secret {
    /// The name plugins use in `{{secret:NAME}}`.
    pub name: String,
    /// The value.
    pub value: SecretValue,
    /// Origins the value may be sent to (for a signing key: the token endpoints it may sign for).
    pub hosts: Vec<Origin>,
    /// Value or signing key.
    #[serde(default)]
    pub kind: SecretKind,
}

/// A plugin asked for a secret that does not exist or cannot be used that way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// No secret of that name.
    #[error("secret `{0}` is not defined for this source; add it to the source's secrets")]
    Unknown(String),
    /// A value used as a key or the other way round.
    #[error("secret `{name}` is a {actual} and cannot be used as a {wanted}")]
    WrongKind {
        /// The secret's name.
        name: String,
        /// What it is.
        actual: &'static str,
        /// What it was used as.
        wanted: &'static str,
    },
}

/// The secrets of one source.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    list: Vec<Secret>,
}

const OPEN: &[u8] = b"{{secret:";
const CLOSE: &[u8] = b"}}";
/// Values shorter than this are not redacted from responses: they would match by chance.
const MIN_REDACT_LEN: usize = 4;

impl Secrets {
    /// The given secrets.
    pub fn new(list: Vec<Secret>) -> Self {
        Secrets { list }
    }

    fn get(&self, name: &str) -> Option<&Secret> {
        self.list.iter().find(|s| s.name == name)
    }

    /// Fills placeholders in `text` for secrets bound to `origin`; placeholders of secrets bound
    /// elsewhere stay as they are, unknown names are an error.
    pub fn fill(&self, text: &[u8], origin: &Origin) -> Result<Vec<u8>, SecretError> {
        let mut out = Vec::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = memmem::find(rest, OPEN) {
            let after = &rest[start + OPEN.len()..];
            let Some(end) = memmem::find(after, CLOSE) else { break };
            let name = String::from_utf8_lossy(&after[..end]);
            let whole = &rest[start..start + OPEN.len() + end + CLOSE.len()];
            out.extend_from_slice(&rest[..start]);
            let secret = self.get(&name).ok_or_else(|| SecretError::Unknown(name.to_string()))?;
            let bound = secret.hosts.iter().any(|h| h.admits(origin));
            if secret.kind == SecretKind::Value && bound {
                out.extend_from_slice(secret.value.expose().as_bytes());
            } else {
                out.extend_from_slice(whole);
            }
            rest = &rest[whole.len() + start..];
        }
        out.extend_from_slice(rest);
        Ok(out)
    }

    /// Replaces every secret value (plain or URL-encoded) in `data` with its placeholder.
    pub fn redact(&self, data: Vec<u8>) -> Vec<u8> {
        let mut data = data;
        for s in &self.list {
            let value = s.value.expose();
            if value.len() < MIN_REDACT_LEN {
                continue;
            }
            let placeholder = format!("{{{{secret:{}}}}}", s.name);
            let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
            for needle in [value, encoded.as_str()] {
                if memmem::find(&data, needle.as_bytes()).is_some() {
                    data = replace_all(&data, needle.as_bytes(), placeholder.as_bytes());
                }
            }
        }
        data
    }

    /// [`Secrets::redact`] for text.
    pub fn redact_str(&self, text: &str) -> String {
        String::from_utf8(self.redact(text.as_bytes().to_vec()))
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// The signing key named `name`, with the origins it may sign for.
    pub fn signing_key(&self, name: &str) -> Result<&Secret, SecretError> {
        let s = self.get(name).ok_or_else(|| SecretError::Unknown(name.to_string()))?;
        if s.kind != SecretKind::SigningKey {
            return Err(SecretError::WrongKind {
                name: name.to_string(),
                actual: "value",
                wanted: "signing key",
            });
        }
        Ok(s)
    }
}

fn replace_all(hay: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut last = 0;
    for pos in memmem::find_iter(hay, needle) {
        if pos < last {
            continue;
        }
        out.extend_from_slice(&hay[last..pos]);
        out.extend_from_slice(with);
        last = pos + needle.len();
    }
    out.extend_from_slice(&hay[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Secrets {
        Secrets::new(vec![
            Secret {
                name: "client_secret".into(),
                value: SecretValue::new("s3cr3t/value+x"),
                hosts: vec!["https://login.example".parse().unwrap()],
                kind: SecretKind::Value,
            },
            Secret {
                name: "key".into(),
                value: SecretValue::new("-----BEGIN PRIVATE KEY-----"),
                hosts: vec!["https://login.example".parse().unwrap()],
                kind: SecretKind::SigningKey,
            },
        ])
    }

    #[test]
    fn fills_only_for_bound_origins() {
        let s = secrets();
        let bound: Origin = "https://login.example".parse().unwrap();
        let other: Origin = "https://evil.example".parse().unwrap();
        let text = b"a={{secret:client_secret}}&b=1";
        assert_eq!(s.fill(text, &bound).unwrap(), b"a=s3cr3t/value+x&b=1");
        assert_eq!(s.fill(text, &other).unwrap(), text.to_vec());
        // Signing keys are never substituted, even for their own origin.
        assert_eq!(s.fill(b"{{secret:key}}", &bound).unwrap(), b"{{secret:key}}".to_vec());
        assert_eq!(
            s.fill(b"{{secret:nope}}", &bound),
            Err(SecretError::Unknown("nope".into()))
        );
        assert_eq!(
            s.fill(b"{{secret:unterminated", &bound).unwrap(),
            b"{{secret:unterminated".to_vec()
        );
    }

    #[test]
    fn redacts_plain_and_encoded_values() {
        let s = secrets();
        let echoed = b"got s3cr3t/value+x and s3cr3t%2Fvalue%2Bx".to_vec();
        assert_eq!(
            s.redact(echoed),
            b"got {{secret:client_secret}} and {{secret:client_secret}}".to_vec()
        );
        assert_eq!(s.redact_str("nothing here"), "nothing here");
    }

    #[test]
    fn debug_never_prints_values() {
        assert!(!format!("{:?}", secrets()).contains("s3cr3t"));
    }
}

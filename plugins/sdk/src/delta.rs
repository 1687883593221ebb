//! The delta token: the connector's own state for the next incremental fetch, wrapped with
//! what it was made under — the connector, the token format, the version of the connector's
//! state, and the [`Fingerprint`] of the scope-relevant settings.
//!
//! Every way a token can be unusable (not this format, another connector's, an older state
//! version, other scope settings, a state that no longer decodes) is `expired-delta`, which the
//! host answers with a full fetch: a delta token is never worth failing a run over.
//!
//! The token stays plain JSON (the connector's state is nested, not encoded), so an
//! administrator or a test can read what it holds.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::PluginError;
use crate::settings::Fingerprint;

/// The wrapper's own format; bumped when the fields below change.
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Envelope<S> {
    format: u32,
    connector: String,
    version: u32,
    scope: String,
    state: S,
}

/// How one connector's delta tokens are written and checked.
#[derive(Debug, Clone)]
pub struct DeltaFormat<'a> {
    /// The connector's name, in messages and in the token.
    pub connector: &'a str,
    /// The version of the connector's state ([`crate::driver::Fetch::DELTA_VERSION`]).
    pub version: u32,
    /// The fingerprint of the settings now.
    pub scope: &'a Fingerprint,
}

impl DeltaFormat<'_> {
    /// Wraps the connector's state into the token handed to the host.
    pub fn encode<S: Serialize>(&self, state: &S) -> Result<String, PluginError> {
        serde_json::to_string(&Envelope {
            format: FORMAT,
            connector: self.connector.to_string(),
            version: self.version,
            scope: self.scope.as_str().to_string(),
            state,
        })
        .map_err(|e| {
            PluginError::Fatal(format!(
                "the {} connector could not encode its delta token: {e}",
                self.connector
            ))
        })
    }

    /// Unwraps a token the host kept; anything but a token this build made under these scope
    /// settings is `expired-delta`.
    pub fn decode<S: DeserializeOwned>(&self, token: &str) -> Result<S, PluginError> {
        let expired = PluginError::ExpiredDelta;
        let name = self.connector;
        let t: Envelope<Value> = serde_json::from_str(token).map_err(|_| {
            expired(format!(
                "the delta token was not written by this version of the {name} connector"
            ))
        })?;
        if t.format != FORMAT {
            return Err(expired(format!(
                "the delta token has format {}, this version of the {name} connector writes {FORMAT}",
                t.format
            )));
        }
        if t.connector != name {
            return Err(expired(format!(
                "the delta token was made by the {} connector, not the {name} connector",
                t.connector
            )));
        }
        if t.version != self.version {
            return Err(expired(format!(
                "the delta token holds version {} of the {name} connector's state, this build writes {}",
                t.version, self.version
            )));
        }
        if t.scope != self.scope.as_str() {
            return Err(expired(
                "the source's scope or attributes changed since the last full fetch".to_string(),
            ));
        }
        serde_json::from_value(t.state).map_err(|e| {
            expired(format!(
                "the delta token's state was not written by this version of the {name} connector ({e})"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct State {
        link: String,
    }

    fn format<'a>(scope: &'a Fingerprint, version: u32) -> DeltaFormat<'a> {
        DeltaFormat {
            connector: "demo",
            version,
            scope,
        }
    }

    fn expired_with(result: Result<State, PluginError>, fragment: &str) {
        match result {
            Err(PluginError::ExpiredDelta(m)) => assert!(m.contains(fragment), "{m}"),
            other => panic!("expected expired-delta with `{fragment}`, got {other:?}"),
        }
    }

    #[test]
    fn a_token_round_trips_and_stays_readable() {
        let scope = Fingerprint::from_stored("abc");
        let token = format(&scope, 1)
            .encode(&State {
                link: "https://x/delta?deltatoken=1".into(),
            })
            .unwrap();
        assert!(token.contains("deltatoken=1"), "{token}");
        let back: State = format(&scope, 1).decode(&token).unwrap();
        assert_eq!(back.link, "https://x/delta?deltatoken=1");
    }

    #[test]
    fn every_unusable_token_is_expired_not_fatal() {
        let scope = Fingerprint::from_stored("abc");
        let token = format(&scope, 1).encode(&State { link: "l".into() }).unwrap();
        let other_scope = Fingerprint::from_stored("def");
        expired_with(format(&other_scope, 1).decode(&token), "scope or attributes changed");
        expired_with(format(&scope, 2).decode(&token), "version 1");
        expired_with(format(&scope, 1).decode("size-12345"), "not written by this version");
        expired_with(
            format(&scope, 1).decode(&token.replace("\"format\":1", "\"format\":9")),
            "format 9",
        );
        expired_with(
            format(&scope, 1).decode(&token.replace("\"demo\"", "\"other\"")),
            "made by the other connector",
        );
        expired_with(
            format(&scope, 1).decode(&token.replace("\"link\"", "\"lnk\"")),
            "state was not written",
        );
        // A token of the format before the SDK wrapped them (Entra's v2) is refused too.
        expired_with(
            format(&scope, 1).decode(r#"{"v":2,"fingerprint":"abc","users":"u"}"#),
            "not written by this version",
        );
    }
}

//! The host side of `sign-jwt`: client assertions signed with a key that never enters the
//! sandbox. The host, not the plugin, decides what an assertion says about who and how long:
//! `iss`, `sub` and `aud` are the ones the key is bound to, `iat`, `nbf`, `exp` and `jti` are
//! set here, so a plugin cannot mint a long-lived credential and carry it out.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Map, Value};

use crate::secrets::{KeyUse, Secrets};

/// The longest an assertion lives; a later `exp` asked for is cut to this.
pub const MAX_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// How long an assertion lives when the plugin does not ask.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// `nbf` is set this far back, for a token endpoint whose clock is a little behind.
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);
/// JOSE header fields a plugin may set: the algorithm and which certificate or key it is.
const HEADER_FIELDS: &[&str] = &["alg", "typ", "kid", "x5t", "x5t#S256"];

/// Signs `header.claims` with the named key. Errors are plain words for the plugin.
pub fn sign(secrets: &Secrets, key_name: &str, header_json: &str, claims_json: &str) -> Result<String, String> {
    sign_at(secrets, key_name, header_json, claims_json, SystemTime::now())
}

fn sign_at(
    secrets: &Secrets,
    key_name: &str,
    header_json: &str,
    claims_json: &str,
    now: SystemTime,
) -> Result<String, String> {
    let (key, bound) = secrets.signing_key(key_name).map_err(|e| e.to_string())?;
    let header: Map<String, Value> =
        serde_json::from_str(header_json).map_err(|e| format!("the JWT header is not a JSON object: {e}"))?;
    if let Some(field) = header.keys().find(|k| !HEADER_FIELDS.contains(&k.as_str())) {
        return Err(format!(
            "the JWT header field `{field}` is not allowed; a client assertion's header may hold {}",
            HEADER_FIELDS.join(", ")
        ));
    }
    let claims: Map<String, Value> =
        serde_json::from_str(claims_json).map_err(|e| format!("the JWT claims are not a JSON object: {e}"))?;
    let alg = match header.get("alg").and_then(|a| a.as_str()) {
        Some("RS256") => Algorithm::RS256,
        Some("PS256") => Algorithm::PS256,
        Some("ES256") => Algorithm::ES256,
        other => return Err(format!("JWT alg {other:?} is not supported; use RS256, PS256 or ES256")),
    };
    let claims = pinned_claims(key_name, bound, claims, now)?;
    let pem = key.value.expose().as_bytes();
    let encoding = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
        _ => EncodingKey::from_rsa_pem(pem),
    }
    .map_err(|e| format!("secret `{key_name}` is not a usable {alg:?} private key in PEM form: {e}"))?;
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(Value::Object(header).to_string()),
        URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string())
    );
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &encoding, alg).map_err(|e| format!("signing failed: {e}"))?;
    Ok(format!("{message}.{signature}"))
}

/// The plugin's claims with the ones the host decides put in: `iss`, `sub` and `aud` must be
/// the bound ones (or absent), `exp` is cut to [`MAX_LIFETIME`], `iat`, `nbf` and `jti` are the
/// host's. Other claims (`scope`, …) pass as they are.
fn pinned_claims(
    key_name: &str,
    bound: &KeyUse,
    mut claims: Map<String, Value>,
    now: SystemTime,
) -> Result<Map<String, Value>, String> {
    let pinned = [
        ("iss", bound.client_id.as_str(), "client_id"),
        ("sub", bound.subject.as_str(), "subject"),
    ];
    for (claim, value, setting) in pinned {
        match claims.get(claim) {
            None => {}
            Some(Value::String(s)) if s == value => {}
            Some(other) => {
                return Err(format!(
                    "key `{key_name}` signs only with {claim} = {value:?}, not {other}; if the connector's client id is right, set the secret's `{setting}` to it"
                ));
            }
        }
        claims.insert(claim.into(), value.into());
    }
    let asked: Vec<&str> = match claims.get("aud") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().map(|v| v.as_str().unwrap_or("")).collect(),
        Some(other) => return Err(format!("`aud` {other} is not a URL")),
    };
    for aud in asked {
        if crate::secrets::normalize_url(aud).as_deref() != Some(bound.audience.as_str()) {
            return Err(format!(
                "key `{key_name}` may sign only for {}, not for {aud:?}; set the secret's `audience` to the token endpoint the connector uses",
                bound.audience
            ));
        }
    }
    claims.insert("aud".into(), bound.audience.clone().into());
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "the host's clock is before 1970".to_string())?
        .as_secs();
    let latest = now + MAX_LIFETIME.as_secs();
    let exp = match claims.get("exp") {
        None => now + DEFAULT_LIFETIME.as_secs(),
        Some(v) => match v.as_u64() {
            Some(exp) if exp > now => exp.min(latest),
            Some(exp) => {
                return Err(format!(
                    "`exp` {exp} is not in the future; leave it out for {DEFAULT_LIFETIME:?}"
                ));
            }
            None => return Err(format!("`exp` {v} is not a number of seconds since 1970")),
        },
    };
    let mut jti = [0u8; 16];
    getrandom::fill(&mut jti).map_err(|e| format!("no randomness for the assertion's `jti`: {e}"))?;
    claims.insert("iat".into(), now.into());
    claims.insert("nbf".into(), now.saturating_sub(CLOCK_SKEW.as_secs()).into());
    claims.insert("exp".into(), exp.into());
    claims.insert("jti".into(), hex::encode(jti).into());
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::{BindingSpec, SecretKind};

    fn bound() -> KeyUse {
        KeyUse {
            client_id: "app".into(),
            subject: "app".into(),
            audience: "https://login.example/t/oauth2/v2.0/token".into(),
        }
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    const NOW: u64 = 1_700_000_000;

    fn at() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW)
    }

    #[test]
    fn the_host_sets_time_and_id_claims_and_cuts_long_lifetimes() {
        let year_2100 = 4_102_444_800u64;
        let c = pinned_claims(
            "k",
            &bound(),
            claims(serde_json::json!({"exp": year_2100, "iat": 1, "nbf": 1, "jti": "fixed", "scope": "s"})),
            at(),
        )
        .unwrap();
        assert_eq!(c["exp"], NOW + 600, "an assertion lives ten minutes at most");
        assert_eq!(c["iat"], NOW);
        assert_eq!(c["nbf"], NOW - 60);
        assert_ne!(c["jti"], "fixed");
        assert_eq!(c["jti"].as_str().unwrap().len(), 32);
        assert_eq!((c["iss"].as_str(), c["sub"].as_str()), (Some("app"), Some("app")));
        assert_eq!(c["aud"], "https://login.example/t/oauth2/v2.0/token");
        assert_eq!(c["scope"], "s");
        let other = pinned_claims("k", &bound(), Map::new(), at()).unwrap();
        assert_eq!(other["exp"], NOW + 300);
        assert_ne!(other["jti"], c["jti"], "each assertion has its own id");
        let shorter = pinned_claims("k", &bound(), claims(serde_json::json!({"exp": NOW + 120})), at()).unwrap();
        assert_eq!(shorter["exp"], NOW + 120);
    }

    #[test]
    fn plugins_cannot_choose_who_or_for_whom() {
        for (asked, expected) in [
            (serde_json::json!({"iss": "other-app"}), "signs only with iss = \"app\""),
            (
                serde_json::json!({"sub": "admin@corp"}),
                "signs only with sub = \"app\"",
            ),
            (
                serde_json::json!({"aud": "https://evil.example/token"}),
                "may sign only for https://login.example/t/oauth2/v2.0/token",
            ),
            (
                serde_json::json!({"aud": ["https://login.example/t/oauth2/v2.0/token", "https://evil.example"]}),
                "not for \"https://evil.example\"",
            ),
            (serde_json::json!({"exp": NOW - 1}), "not in the future"),
            (serde_json::json!({"exp": "2100-01-01"}), "not a number"),
        ] {
            let err = pinned_claims("k", &bound(), claims(asked.clone()), at()).unwrap_err();
            assert!(err.contains(expected), "{asked}: {err}");
        }
        // The bound values, written by the plugin, are fine; so is the audience in another case.
        let same =
            serde_json::json!({"iss": "app", "sub": "app", "aud": "https://LOGIN.example:443/t/oauth2/v2.0/token"});
        assert!(pinned_claims("k", &bound(), claims(same), at()).is_ok());
    }

    #[test]
    fn header_fields_are_limited_and_value_secrets_never_sign() {
        let secrets = Secrets::new(vec![
            crate::secrets::Secret::new(
                "key",
                crate::secrets::SecretValue::new("not a pem"),
                BindingSpec {
                    kind: SecretKind::SigningKey,
                    client_id: Some("app".into()),
                    audience: Some("https://login.example/t/oauth2/v2.0/token".into()),
                    ..BindingSpec::default()
                },
            ),
            crate::secrets::Secret::new(
                "token",
                crate::secrets::SecretValue::new("value-1234"),
                BindingSpec {
                    hosts: vec!["https://login.example".parse().unwrap()],
                    place: Some(crate::secrets::Place::Header("Authorization".into())),
                    ..BindingSpec::default()
                },
            ),
        ]);
        let err = sign(
            &secrets,
            "key",
            r#"{"alg":"RS256","jku":"https://evil.example/keys"}"#,
            "{}",
        )
        .unwrap_err();
        assert!(err.contains("header field `jku` is not allowed"), "{err}");
        let err = sign(&secrets, "token", r#"{"alg":"RS256"}"#, "{}").unwrap_err();
        assert!(err.contains("cannot be used as a signing key"), "{err}");
        let err = sign(&secrets, "key", r#"{"alg":"RS256"}"#, "{}").unwrap_err();
        assert!(err.contains("not a usable"), "{err}");
    }

    #[test]
    fn a_google_service_account_key_file_signs_a_delegation_assertion() {
        // Google's domain-wide delegation: iss the service account, sub the admin it acts as,
        // aud the token endpoint, and a `scope` claim that passes as the plugin wrote it.
        let pem = include_str!("../../roster/tests/fixtures/test-rsa-key.pem");
        let file = serde_json::json!({
            "type": "service_account", "private_key_id": "k1", "private_key": pem,
            "client_email": "roster@acme.iam.gserviceaccount.com",
        });
        // As the store keeps it: the key file's text as read from disk.
        let stored = serde_json::json!([{
            "name": "service_account_key", "kind": "signing-key",
            "client_id": "roster@acme.iam.gserviceaccount.com", "subject": "admin@acme.example",
            "audience": "https://oauth2.googleapis.com/token",
            "value": serde_json::to_string_pretty(&file).unwrap(),
        }]);
        let secrets = Secrets::new(serde_json::from_value(stored).unwrap());
        let scope = "https://www.googleapis.com/auth/admin.directory.user.readonly https://www.googleapis.com/auth/admin.directory.group.readonly";
        let claims = serde_json::json!({
            "iss": "roster@acme.iam.gserviceaccount.com", "sub": "admin@acme.example",
            "aud": "https://oauth2.googleapis.com/token", "scope": scope,
        });
        let jwt = sign(
            &secrets,
            "service_account_key",
            r#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#,
            &claims.to_string(),
        )
        .unwrap();
        let public = include_str!("../../roster/tests/fixtures/test-rsa-pub.pem");
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(public.as_bytes()).unwrap();
        let mut v = jsonwebtoken::Validation::new(Algorithm::RS256);
        v.set_audience(&["https://oauth2.googleapis.com/token"]);
        let got = jsonwebtoken::decode::<Map<String, Value>>(&jwt, &key, &v)
            .unwrap()
            .claims;
        assert_eq!(got["iss"], "roster@acme.iam.gserviceaccount.com");
        assert_eq!(got["sub"], "admin@acme.example");
        assert_eq!(got["scope"], scope);
        assert!(got["exp"].as_u64().unwrap() - got["iat"].as_u64().unwrap() <= 3600);
    }
}

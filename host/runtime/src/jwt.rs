//! The host side of `sign-jwt`: client assertions signed with a key that never enters the
//! sandbox. A key signs only for the token endpoint it is bound to (the `aud` claim).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};

use crate::secrets::Secrets;

/// Signs `header.claims` with the named key. Errors are plain words for the plugin.
pub fn sign(secrets: &Secrets, key_name: &str, header_json: &str, claims_json: &str) -> Result<String, String> {
    let (key, bound) = secrets.signing_key(key_name).map_err(|e| e.to_string())?;
    let header: serde_json::Value =
        serde_json::from_str(header_json).map_err(|e| format!("the JWT header is not JSON: {e}"))?;
    let claims: serde_json::Value =
        serde_json::from_str(claims_json).map_err(|e| format!("the JWT claims are not JSON: {e}"))?;
    let alg = match header.get("alg").and_then(|a| a.as_str()) {
        Some("RS256") => Algorithm::RS256,
        Some("PS256") => Algorithm::PS256,
        Some("ES256") => Algorithm::ES256,
        other => return Err(format!("JWT alg {other:?} is not supported; use RS256, PS256 or ES256")),
    };
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(serde_json::Value::String(s)) => vec![s.as_str()],
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str()).collect(),
        _ => Vec::new(),
    };
    if audiences.is_empty() {
        return Err("the JWT claims need an `aud`: the token endpoint the assertion is for".into());
    }
    for aud in audiences {
        if crate::secrets::normalize_url(aud).as_deref() != Some(bound.audience.as_str()) {
            return Err(format!(
                "key `{key_name}` may sign only for {}, not for {aud:?}; set the secret's `audience` to the token endpoint the connector uses",
                bound.audience
            ));
        }
    }
    let pem = key.value.expose().as_bytes();
    let encoding = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
        _ => EncodingKey::from_rsa_pem(pem),
    }
    .map_err(|e| format!("secret `{key_name}` is not a usable {alg:?} private key in PEM form: {e}"))?;
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &encoding, alg).map_err(|e| format!("signing failed: {e}"))?;
    Ok(format!("{message}.{signature}"))
}

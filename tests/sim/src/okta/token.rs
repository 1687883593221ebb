//! The org authorization server's token endpoint (`POST /oauth2/v1/token`) for service apps:
//! the client-credentials grant with a `private_key_jwt` client assertion (RS256, signed with a
//! registered key, `iss` = `sub` = client id, `aud` = this endpoint, `exp` in the future and at
//! most an hour away, a `jti` used once), scopes granted per app, DPoP when the app requires it,
//! answering in OAuth 2.0's error shape as Okta does.

use std::collections::BTreeSet;

use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Value, json};

use super::OktaState;
use super::routes::scopes;
use crate::kit::Req;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// An OAuth 2.0 error answer (`{"error", "error_description"}`).
pub(super) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    reply(status, json!({"error": error, "error_description": description}))
}

fn reply(status: StatusCode, body: Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    let h = r.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.insert("cache-control", HeaderValue::from_static("no-cache, no-store"));
    h.insert("pragma", HeaderValue::from_static("no-cache"));
    r
}

fn invalid_client(description: &str) -> Response {
    oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", description)
}

fn bad_request(error: &str, description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, error, description)
}

/// Answers `POST /oauth2/v1/token`.
pub(super) fn handle(s: &mut OktaState, req: &Req) -> Response {
    if req.method != Method::POST {
        return oauth_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "The token endpoint only accepts POST requests.",
        );
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&req.body).into_owned().collect();
    let param = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let Some(grant) = param("grant_type") else {
        return bad_request("invalid_request", "The request must include a 'grant_type' parameter.");
    };
    if grant != "client_credentials" {
        return bad_request(
            "unsupported_grant_type",
            &format!(
                "The authorization grant type is not supported by the authorization server. Configured grant types: [client_credentials]. Requested: '{grant}'."
            ),
        );
    }
    let Some(assertion) = param("client_assertion") else {
        return invalid_client(
            "Client authentication failed. Either the client or the client credentials are invalid.",
        );
    };
    if param("client_assertion_type") != Some(JWT_BEARER) {
        return bad_request(
            "invalid_request",
            "The client_assertion_type must be 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.",
        );
    }
    let audience = format!("{}/oauth2/v1/token", s.base(&req.headers));
    let client_id = match verify(s, assertion, param("client_id"), &audience) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(app) = s.service_apps.get(&client_id) else {
        return invalid_client("The client_id is invalid.");
    };
    if app.dpop && req.header("dpop").is_none() {
        return bad_request("invalid_dpop_proof", "The DPoP proof JWT header is missing.");
    }
    let Some(requested) = param("scope") else {
        return bad_request(
            "invalid_scope",
            "The authorization server resource does not have any configured default scopes, 'scope' must be provided.",
        );
    };
    let requested = scopes(requested);
    let missing: Vec<&str> = requested
        .iter()
        .filter(|sc| !app.scopes.contains(*sc))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return bad_request(
            "invalid_scope",
            &format!("The following scopes are not allowed: {}", missing.join(" ")),
        );
    }
    let scope = requested.iter().cloned().collect::<Vec<_>>().join(" ");
    let (token, lifetime) = s.issue_token(requested.iter().cloned().collect::<BTreeSet<_>>());
    reply(
        StatusCode::OK,
        json!({
            "token_type": "Bearer",
            "expires_in": lifetime,
            "access_token": token,
            "scope": scope,
        }),
    )
}

/// Checks a client assertion and returns the client id it authenticates.
#[allow(clippy::result_large_err)] // the error is the HTTP answer itself, returned at once
fn verify(s: &mut OktaState, assertion: &str, form_client: Option<&str>, audience: &str) -> Result<String, Response> {
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| invalid_client("The client_assertion is not a well-formed JWT."))?;
    let claims: Value =
        unverified_claims(assertion).ok_or_else(|| invalid_client("The client_assertion is not a well-formed JWT."))?;
    let claim = |name: &str| claims.get(name).and_then(Value::as_str);
    let Some(client_id) = claim("iss").map(str::to_string) else {
        return Err(invalid_client("The client_assertion token is missing the 'iss' claim."));
    };
    if form_client.is_some_and(|c| c != client_id) {
        return Err(invalid_client(
            "The client_id parameter does not match the 'iss' claim of the client_assertion.",
        ));
    }
    let Some(app) = s.service_apps.get(&client_id) else {
        return Err(invalid_client("The client_id is invalid."));
    };
    if claim("sub") != Some(client_id.as_str()) {
        return Err(invalid_client(
            "The client_assertion token's 'sub' claim must match its 'iss' claim, the client_id.",
        ));
    }
    if header.alg != Algorithm::RS256 {
        return Err(invalid_client(
            "The client_assertion signature algorithm is not supported; use RS256.",
        ));
    }
    // With a kid the key is the one registered under it; without, any registered key may do.
    let keys: Vec<&jsonwebtoken::DecodingKey> = app
        .keys
        .iter()
        .filter(|(kid, _)| header.kid.as_deref().is_none_or(|k| k == kid))
        .filter_map(|(_, key)| key.as_ref())
        .collect();
    if keys.is_empty() {
        return Err(invalid_client(&format!(
            "The client_assertion token's kid '{}' does not match any key registered for the client.",
            header.kid.as_deref().unwrap_or("")
        )));
    }
    let mut v = Validation::new(Algorithm::RS256);
    v.leeway = 0;
    v.validate_aud = false;
    v.set_required_spec_claims(&["exp"]);
    let mut expired = false;
    let verified = keys
        .iter()
        .any(|key| match jsonwebtoken::decode::<Value>(assertion, key, &v) {
            Ok(_) => true,
            Err(e) => {
                expired |= matches!(e.kind(), ErrorKind::ExpiredSignature | ErrorKind::ImmatureSignature);
                false
            }
        });
    if expired {
        return Err(invalid_client("The client_assertion token is expired."));
    }
    if !verified {
        return Err(invalid_client("The client_assertion signature is invalid."));
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == audience,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(audience)),
        _ => false,
    };
    if !aud_ok {
        return Err(invalid_client(
            "The audience claim for client_assertion must be the endpoint invoking the client_assertion.",
        ));
    }
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    if exp > chrono::Utc::now().timestamp() + 3600 {
        return Err(invalid_client(
            "The client_assertion token has an expiration too far in the future.",
        ));
    }
    if let Some(jti) = claim("jti")
        && !s.used_jtis.insert(jti.to_string())
    {
        return Err(invalid_client("The client_assertion token has already been used."));
    }
    Ok(client_id)
}

/// The claims of a JWT before its signature is checked (to find the client and its keys).
fn unverified_claims(jwt: &str) -> Option<Value> {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

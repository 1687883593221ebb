//! The Entra ID v2.0 token endpoint, client-credentials grant: a client secret or a certificate
//! assertion (RS256 JWT with `x5t`), answering Entra's error shape with `AADSTS` codes.

use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Value, json};

use super::{GraphState, entra_now, guid};
use crate::kit::Req;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// An Entra error answer.
pub(super) fn entra_error(status: StatusCode, error: &str, code: u32, message: &str) -> Response {
    let (trace, correlation, ts) = (guid(), guid(), entra_now());
    let body = json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {message} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {ts}"
        ),
        "error_codes": [code],
        "timestamp": ts,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    reply(status, body)
}

fn reply(status: StatusCode, body: Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    h.insert("cache-control", HeaderValue::from_static("no-store, no-cache"));
    h.insert("pragma", HeaderValue::from_static("no-cache"));
    r
}

fn missing(param: &str) -> Response {
    entra_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        900144,
        &format!("The request body must contain the following parameter: '{param}'."),
    )
}

pub(super) fn invalid_client(code: u32, message: &str) -> Response {
    entra_error(StatusCode::UNAUTHORIZED, "invalid_client", code, message)
}

const BAD_SIGNATURE: &str = "Client assertion failed signature validation.";

/// Answers `POST /{tenant}/oauth2/v2.0/token`.
pub(super) fn handle(s: &mut GraphState, req: &Req, tenant: &str) -> Response {
    if req.method != Method::POST {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900561,
            &format!(
                "The endpoint only accepts POST requests. Received a {} request.",
                req.method
            ),
        );
    }
    if !tenant.eq_ignore_ascii_case(&s.tenant_id) && !tenant.eq_ignore_ascii_case(&s.domain) {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&req.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let param = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let Some(grant) = param("grant_type") else {
        return missing("grant_type");
    };
    if grant != "client_credentials" {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{grant}'."),
        );
    }
    let Some(client_id) = param("client_id") else {
        return missing("client_id");
    };
    let Some(client) = s.clients.get(client_id).cloned() else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                s.domain
            ),
        );
    };
    let Some(scope) = param("scope") else {
        return missing("scope");
    };
    if !scope.split(' ').all(|sc| sc.ends_with("/.default")) {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        );
    }
    if let Some(assertion) = param("client_assertion") {
        if param("client_assertion_type") != Some(JWT_BEARER) {
            return entra_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                90014,
                "The required field 'client_assertion_type' is missing from the credential. Ensure that you have all the necessary parameters for the login request.",
            );
        }
        if let Err(r) = verify_assertion(assertion, client_id, tenant, &client.certs) {
            return r;
        }
    } else if let Some(secret) = param("client_secret") {
        if client.secret.as_deref() != Some(secret) {
            return invalid_client(
                7000215,
                &format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                ),
            );
        }
    } else {
        return invalid_client(
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        );
    }
    let (token, lifetime) = s.issue_token(client_id);
    reply(
        StatusCode::OK,
        json!({
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        }),
    )
}

/// Checks a client assertion: RS256 (or PS256) signed by a registered certificate named by
/// `x5t`, `iss` = `sub` = client id, `aud` ending with `/{tenant}/oauth2/v2.0/token`, `exp` in the
/// future (no leeway) and `nbf`, if present, not in the future.
#[allow(clippy::result_large_err)] // the error is the HTTP answer itself, returned at once
fn verify_assertion(assertion: &str, client_id: &str, tenant: &str, certs: &[super::Cert]) -> Result<(), Response> {
    let bad_signature = || invalid_client(700027, BAD_SIGNATURE);
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| bad_signature())?;
    let cert = certs
        .iter()
        .find(|c| header.x5t.as_deref() == Some(c.x5t.as_str()))
        .ok_or_else(bad_signature)?;
    let key = cert.key.as_ref().ok_or_else(bad_signature)?;
    let mut v = Validation::new(Algorithm::RS256);
    v.algorithms = vec![Algorithm::RS256, Algorithm::PS256];
    v.leeway = 0;
    v.validate_exp = true;
    v.validate_nbf = true;
    v.validate_aud = false;
    v.set_required_spec_claims(&["exp"]);
    let data = jsonwebtoken::decode::<Value>(assertion, key, &v).map_err(|e| match e.kind() {
        ErrorKind::ExpiredSignature
        | ErrorKind::ImmatureSignature
        | ErrorKind::MissingRequiredClaim(_)
        | ErrorKind::InvalidClaimFormat(_) => {
            invalid_client(700024, "Client assertion is not within its valid time range.")
        }
        _ => bad_signature(),
    })?;
    let claims = data.claims;
    let claim = |name: &str| claims.get(name).and_then(Value::as_str);
    if claim("iss") != Some(client_id) || claim("sub") != Some(client_id) {
        return Err(invalid_client(
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter.",
        ));
    }
    let suffix = format!("/{tenant}/oauth2/v2.0/token").to_lowercase();
    let aud_ok = |a: &str| a.to_lowercase().ends_with(&suffix);
    let aud_matches = match claims.get("aud") {
        Some(Value::String(a)) => aud_ok(a),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(aud_ok),
        _ => false,
    };
    if !aud_matches {
        return Err(invalid_client(
            700023,
            "Client assertion audience claim does not match Realm issuer.",
        ));
    }
    Ok(())
}

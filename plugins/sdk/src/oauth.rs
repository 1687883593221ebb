//! OAuth 2.0 client credentials (RFC 6749 §4.4), with a client secret (in the body or as HTTP
//! Basic) or a signed JWT client assertion (RFC 7523 §2.2), a form or JSON request body; the
//! JWT-bearer grant (RFC 7523 §2.1: a host-signed assertion *is* the grant, as Google's service
//! accounts with domain-wide delegation use it); and a token cache, shared by both grants, that
//! lives as long as the job.
//!
//! Secrets stay in the host: the secret is sent as a `{{secret:NAME}}` placeholder that the host
//! fills in on the way to the token endpoint (for Basic, [`crate::http::basic_auth`]: the host
//! also base64-encodes), and assertions are signed by the host's `sign-jwt` import with a key
//! the plugin only names.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::http::Transport;
use crate::{PluginError, Request, Response};

/// A token is renewed this long before the expiry the server announced.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(120);

/// A token is kept at most this long, whatever lifetime the server announced: token endpoints
/// grant an hour or so, and a larger `expires_in` (up to `u64::MAX` seconds) would overflow the
/// clock's arithmetic. A token revoked sooner is renewed on the API's 401 anyway.
pub const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// How the client proves who it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ClientAuth {
    /// `client_secret` in the request body; the value is the name of a host-held secret.
    Secret {
        /// Name of the secret in the source's settings, e.g. `client_secret`.
        secret: String,
    },
    /// `Authorization: Basic client_id:secret` (RFC 6749 §2.3.1 `client_secret_basic`, what
    /// OneLogin requires); neither the client id nor the secret goes in the body. The source
    /// binds the secret with `use = { header = "Authorization" }`.
    Basic {
        /// Name of the secret in the source's settings, e.g. `client_secret`.
        secret: String,
    },
    /// A JWT client assertion signed by the host with the named private key (Entra certificate
    /// credentials, Okta `private_key_jwt`).
    Assertion {
        /// Name of the secret that holds the PEM private key.
        key_secret: String,
        /// Extra JOSE header fields, e.g. `x5t` (the certificate thumbprint) or `kid`.
        header: Vec<(String, String)>,
        /// `RS256` (Entra, Okta) or `ES256`.
        alg: String,
    },
}

/// How the token request's fields are encoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TokenBody {
    /// `application/x-www-form-urlencoded`, as RFC 6749 says (Entra, Okta, most servers).
    #[default]
    Form,
    /// A JSON object of the same fields, `{"grant_type":"client_credentials"}` (OneLogin, whose
    /// token endpoint refuses a form).
    Json,
}

/// Where and how to get a token.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientCredentials {
    /// The token endpoint.
    pub token_url: String,
    /// The application (client) id.
    pub client_id: String,
    /// The secret or the signing key.
    pub auth: ClientAuth,
    /// `scope`, e.g. `https://graph.microsoft.com/.default`.
    pub scope: Option<String>,
    /// How the request's fields are encoded; [`TokenBody::Form`] (the default) unless the
    /// server wants JSON.
    pub body: TokenBody,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

struct Cached {
    token: String,
    renew_at: Instant,
}

/// What a cached token was granted for: the grant and everything it was asked with.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum GrantKey {
    ClientCredentials(ClientCredentials),
    JwtBearer(JwtBearer),
}

thread_local! {
    static CACHE: RefCell<HashMap<GrantKey, Cached>> = RefCell::new(HashMap::new());
}

/// A cached token for `key`, or a new one from `request`.
fn cached_token(
    key: GrantKey,
    request: impl FnOnce() -> Result<TokenResponse, PluginError>,
) -> Result<String, PluginError> {
    let now = Instant::now();
    let cached = CACHE.with(|c| {
        c.borrow()
            .get(&key)
            .filter(|t| t.renew_at > now)
            .map(|t| t.token.clone())
    });
    if let Some(token) = cached {
        return Ok(token);
    }
    let fresh = request()?;
    let lifetime = Duration::from_secs(fresh.expires_in.unwrap_or(3600)).min(MAX_LIFETIME);
    let renew_at = now + lifetime.saturating_sub(EXPIRY_MARGIN.min(lifetime / 2));
    CACHE.with(|c| {
        c.borrow_mut().insert(
            key,
            Cached {
                token: fresh.access_token.clone(),
                renew_at,
            },
        )
    });
    Ok(fresh.access_token)
}

/// Sends `req` with a bearer token from `token`; on a 401 drops the token (`forget`), gets a
/// new one once and tries again, so a token revoked or expired mid-run does not fail the run.
fn send_with_renewal(
    transport: &dyn Transport,
    req: Request,
    token: impl Fn() -> Result<String, PluginError>,
    forget: impl FnOnce(),
) -> Result<Response, PluginError> {
    let first = token()?;
    let resp = transport.send(req.clone().bearer(&first))?;
    if resp.status != 401 {
        return Ok(resp);
    }
    forget();
    let renewed = token()?;
    transport.send(req.bearer(&renewed))
}

/// Sends a token request; a 400 or 401 is an auth error quoting the OAuth `error` code (see
/// [`refusal_code`]), any other failure is classified as usual.
fn ask_token_endpoint(transport: &dyn Transport, token_url: &str, req: Request) -> Result<TokenResponse, PluginError> {
    let resp = transport.send(req)?;
    if resp.status == 400 || resp.status == 401 {
        // Token endpoints answer 400/401 with `invalid_client` for a bad secret. The OAuth
        // `error` code is quoted so a connector can say what to fix for its vendor
        // (`invalid_scope`: which grant; `invalid_dpop_proof`: a setting) — see
        // [`refusal_code`].
        let detail = crate::errors::error_detail(&resp.body);
        let code = serde_json::from_slice::<serde_json::Value>(&resp.body)
            .ok()
            .and_then(|v| v.get("error").and_then(|c| c.as_str()).map(str::to_string))
            .filter(|c| is_oauth_code(c))
            .map(|c| format!(" {c}"))
            .unwrap_or_default();
        return Err(PluginError::Auth(format!(
            "token request to {token_url} was refused ({}{code}): {detail}",
            resp.status
        )));
    }
    resp.error_for_status("token request")?.json("token request")
}

impl ClientCredentials {
    /// A cached token, or a new one from the token endpoint.
    pub fn token(&self, transport: &dyn Transport) -> Result<String, PluginError> {
        cached_token(GrantKey::ClientCredentials(self.clone()), || {
            self.request_token(transport)
        })
    }

    /// Drops the cached token, e.g. after the API answered 401 to it.
    pub fn forget(&self) {
        CACHE.with(|c| c.borrow_mut().remove(&GrantKey::ClientCredentials(self.clone())));
    }

    /// Sends `req` with a bearer token; on a 401 gets a new token once and tries again, so a
    /// token revoked or expired mid-run does not fail the run.
    pub fn send(&self, transport: &dyn Transport, req: Request) -> Result<Response, PluginError> {
        send_with_renewal(transport, req, || self.token(transport), || self.forget())
    }

    fn request_token(&self, transport: &dyn Transport) -> Result<TokenResponse, PluginError> {
        let mut fields: Vec<(&str, String)> = vec![("grant_type", "client_credentials".into())];
        let mut authorization = None;
        match &self.auth {
            ClientAuth::Secret { secret } => {
                fields.push(("client_id", self.client_id.clone()));
                fields.push(("client_secret", format!("{{{{secret:{secret}}}}}")));
            }
            ClientAuth::Basic { secret } => {
                authorization = Some(crate::http::basic_auth(&self.client_id, secret)?);
            }
            ClientAuth::Assertion {
                key_secret,
                header,
                alg,
            } => {
                let assertion = self.assertion(key_secret, header, alg)?;
                fields.push(("client_id", self.client_id.clone()));
                fields.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                ));
                fields.push(("client_assertion", assertion));
            }
        }
        if let Some(scope) = &self.scope {
            fields.push(("scope", scope.clone()));
        }
        let mut req = match self.body {
            TokenBody::Form => {
                let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
                Request::post_form(&self.token_url, &pairs)
            }
            TokenBody::Json => {
                let object: serde_json::Map<String, serde_json::Value> =
                    fields.into_iter().map(|(k, v)| (k.to_string(), v.into())).collect();
                Request::new("POST", &self.token_url).with_json("POST", &object)?
            }
        };
        if let Some(value) = authorization {
            req = req.header("authorization", value);
        }
        ask_token_endpoint(transport, &self.token_url, req)
    }

    fn assertion(&self, key_secret: &str, header: &[(String, String)], alg: &str) -> Result<String, PluginError> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut hdr = serde_json::Map::new();
        hdr.insert("alg".into(), alg.into());
        hdr.insert("typ".into(), "JWT".into());
        for (k, v) in header {
            hdr.insert(k.clone(), v.clone().into());
        }
        let claims = serde_json::json!({
            "aud": self.token_url,
            "iss": self.client_id,
            "sub": self.client_id,
            "jti": jti(now),
            "iat": now.as_secs(),
            "nbf": now.as_secs(),
            "exp": now.as_secs() + 300,
        });
        crate::sign_jwt(
            key_secret,
            &serde_json::Value::Object(hdr).to_string(),
            &claims.to_string(),
        )
    }
}

/// The JWT-bearer grant (RFC 7523 §2.1): the host signs an assertion with a key the plugin only
/// names, and the assertion is the grant — `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer
/// &assertion=…`, no client secret. Google's service accounts use it, with `sub` the user whose
/// access domain-wide delegation lends and `scope` a claim of the assertion.
///
/// The host pins `iss`, `sub` and `aud` to the signing key's binding (`client_id`, `subject`,
/// `audience`) and sets the times; the values here must agree or the host refuses to sign.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct JwtBearer {
    /// The token endpoint, the assertion's `aud`.
    pub token_url: String,
    /// `iss`: who issues the assertion (a Google service account's email).
    pub issuer: String,
    /// `sub`: whom the token acts for (the admin a Google service account impersonates); `None`
    /// leaves it to the host, which writes the key's bound subject.
    pub subject: Option<String>,
    /// Name of the secret that holds the private key.
    pub key_secret: String,
    /// Extra JOSE header fields, e.g. `kid`.
    pub header: Vec<(String, String)>,
    /// `RS256` (Google) or `ES256`.
    pub alg: String,
    /// The `scope` claim (space-separated), e.g. Google's Directory read-only scopes.
    pub scope: Option<String>,
}

/// The grant type of [`JwtBearer`]'s token request.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

impl JwtBearer {
    /// A cached token, or a new one from the token endpoint.
    pub fn token(&self, transport: &dyn Transport) -> Result<String, PluginError> {
        cached_token(GrantKey::JwtBearer(self.clone()), || {
            let assertion = self.assertion()?;
            ask_token_endpoint(transport, &self.token_url, self.token_request(&assertion))
        })
    }

    /// Drops the cached token, e.g. after the API answered 401 to it.
    pub fn forget(&self) {
        CACHE.with(|c| c.borrow_mut().remove(&GrantKey::JwtBearer(self.clone())));
    }

    /// Sends `req` with a bearer token; on a 401 gets a new token once and tries again.
    pub fn send(&self, transport: &dyn Transport, req: Request) -> Result<Response, PluginError> {
        send_with_renewal(transport, req, || self.token(transport), || self.forget())
    }

    /// The token request carrying `assertion`.
    pub fn token_request(&self, assertion: &str) -> Request {
        Request::post_form(
            &self.token_url,
            &[("grant_type", JWT_BEARER_GRANT), ("assertion", assertion)],
        )
    }

    /// The assertion's JOSE header and claims, as JSON, before the host signs them.
    pub fn assertion_parts(&self) -> (String, String) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut hdr = serde_json::Map::new();
        hdr.insert("alg".into(), self.alg.clone().into());
        hdr.insert("typ".into(), "JWT".into());
        for (k, v) in &self.header {
            hdr.insert(k.clone(), v.clone().into());
        }
        let mut claims = serde_json::Map::new();
        claims.insert("iss".into(), self.issuer.clone().into());
        if let Some(sub) = &self.subject {
            claims.insert("sub".into(), sub.clone().into());
        }
        if let Some(scope) = &self.scope {
            claims.insert("scope".into(), scope.clone().into());
        }
        claims.insert("aud".into(), self.token_url.clone().into());
        claims.insert("iat".into(), now.as_secs().into());
        // Google takes assertions of at most an hour; the host cuts `exp` shorter still.
        claims.insert("exp".into(), (now.as_secs() + 300).into());
        (
            serde_json::Value::Object(hdr).to_string(),
            serde_json::Value::Object(claims).to_string(),
        )
    }

    fn assertion(&self) -> Result<String, PluginError> {
        let (header, claims) = self.assertion_parts();
        crate::sign_jwt(&self.key_secret, &header, &claims)
    }
}

/// The OAuth 2.0 `error` code (RFC 6749 §5.2: `invalid_client`, `invalid_scope`, …) of a token
/// request the endpoint refused, from the error [`ClientCredentials::token`] returned.
pub fn refusal_code(e: &PluginError) -> Option<&str> {
    let PluginError::Auth(msg) = e else { return None };
    let rest = msg.strip_prefix("token request to ")?;
    let (_, after) = rest.split_once(" was refused (")?;
    let (inside, _) = after.split_once("): ")?;
    let (_, code) = inside.split_once(' ')?;
    is_oauth_code(code).then_some(code)
}

/// RFC 6749's `error` syntax, narrowed to what codes look like: lower case and `_`.
fn is_oauth_code(c: &str) -> bool {
    !c.is_empty() && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// A unique assertion id (RFC 7523 §3 lets servers refuse replays): the time and 64 random
/// bits from the host (WASI has no process id).
fn jti(now: Duration) -> String {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    format!("{}-{random:016x}", now.as_nanos())
}

/// The `x5t` JOSE header of a certificate from its SHA-1 thumbprint as portals show it (hex,
/// colons or spaces allowed): base64url of the thumbprint's bytes, without padding.
pub fn x5t_from_thumbprint(thumbprint_hex: &str) -> Result<String, PluginError> {
    use base64::Engine;
    let hex: Vec<u8> = thumbprint_hex.bytes().filter(|b| !matches!(b, b':' | b' ')).collect();
    let bad = || {
        PluginError::Config(format!(
            "certificate thumbprint `{thumbprint_hex}` is not hex digits (e.g. E32CDD30…)"
        ))
    };
    if hex.is_empty() || !hex.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes = hex
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok())
                .ok_or_else(bad)
        })
        .collect::<Result<Vec<u8>, _>>()?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    /// Answers token requests and API calls; counts each, rejects stale tokens with 401.
    struct FakeIdp {
        token_calls: Cell<u32>,
        api_calls: Cell<u32>,
        expires_in: u64,
        revoke_first_token: bool,
        last_token_body: RefCell<String>,
    }

    impl FakeIdp {
        fn new(expires_in: u64) -> Self {
            FakeIdp {
                token_calls: Cell::new(0),
                api_calls: Cell::new(0),
                expires_in,
                revoke_first_token: false,
                last_token_body: RefCell::new(String::new()),
            }
        }
    }

    impl Transport for FakeIdp {
        fn send(&self, req: Request) -> Result<Response, PluginError> {
            let ok = |body: String| Response {
                status: 200,
                headers: vec![],
                body: body.into_bytes(),
            };
            if req.url.ends_with("/token") {
                self.token_calls.set(self.token_calls.get() + 1);
                *self.last_token_body.borrow_mut() = String::from_utf8(req.body.unwrap()).unwrap();
                let n = self.token_calls.get();
                return Ok(ok(format!(
                    r#"{{"access_token":"t{n}","expires_in":{}}}"#,
                    self.expires_in
                )));
            }
            self.api_calls.set(self.api_calls.get() + 1);
            let auth = req
                .headers
                .iter()
                .find(|(k, _)| k == "authorization")
                .map(|(_, v)| v.clone());
            if self.revoke_first_token && auth.as_deref() == Some("Bearer t1") {
                return Ok(Response {
                    status: 401,
                    headers: vec![],
                    body: vec![],
                });
            }
            Ok(ok(format!("{auth:?}")))
        }
    }

    fn creds(url: &str) -> ClientCredentials {
        ClientCredentials {
            token_url: format!("{url}/token"),
            client_id: "app".into(),
            auth: ClientAuth::Secret {
                secret: "client_secret".into(),
            },
            scope: Some("https://graph.microsoft.com/.default".into()),
            body: TokenBody::Form,
        }
    }

    #[test]
    fn token_is_fetched_once_and_reused() {
        let idp = FakeIdp::new(3600);
        let cc = creds("https://a.example");
        for _ in 0..5 {
            cc.send(&idp, Request::get("https://api.example/users")).unwrap();
        }
        assert_eq!(idp.token_calls.get(), 1);
        assert_eq!(idp.api_calls.get(), 5);
        let body = idp.last_token_body.borrow().clone();
        assert!(body.contains("client_secret={{secret:client_secret}}"), "{body}");
        assert!(body.contains("grant_type=client_credentials"), "{body}");
    }

    #[test]
    fn short_lived_tokens_are_renewed() {
        let idp = FakeIdp::new(0);
        let cc = creds("https://b.example");
        cc.token(&idp).unwrap();
        cc.token(&idp).unwrap();
        assert_eq!(idp.token_calls.get(), 2);
    }

    #[test]
    fn a_rejected_token_is_renewed_once_and_the_call_retried() {
        let mut idp = FakeIdp::new(3600);
        idp.revoke_first_token = true;
        let cc = creds("https://c.example");
        let resp = cc.send(&idp, Request::get("https://api.example/users")).unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(String::from_utf8(resp.body).unwrap(), r#"Some("Bearer t2")"#);
        assert_eq!(idp.token_calls.get(), 2);
    }

    #[test]
    fn an_endless_lifetime_is_kept_a_day_at_most() {
        // Found by fuzzing (tests/fuzz, sdk_envelopes): `expires_in` near u64::MAX seconds
        // overflowed `Instant + Duration` and panicked the connector.
        for expires_in in [u64::MAX, u64::MAX / 1_000, 10_000_000_000] {
            let idp = FakeIdp::new(expires_in);
            let cc = creds(&format!("https://e{expires_in}.example"));
            assert_eq!(cc.token(&idp).unwrap(), "t1");
            assert_eq!(cc.token(&idp).unwrap(), "t1", "a long-lived token is reused");
            assert_eq!(idp.token_calls.get(), 1);
        }
    }

    #[test]
    fn thumbprints_become_x5t_headers() {
        let x5t = x5t_from_thumbprint("E3:2C:DD:30:40:D0:61:94:F9:DB:3F:90:4A:78:04:6B:FA:71:FA:EC").unwrap();
        assert_eq!(x5t, "4yzdMEDQYZT52z-QSngEa_px-uw");
        assert_eq!(
            x5t_from_thumbprint("e32cdd3040d06194f9db3f904a78046bfa71faec").unwrap(),
            x5t
        );
        assert!(x5t_from_thumbprint("xyz").is_err());
        assert!(x5t_from_thumbprint("").is_err());
    }

    /// Keeps the token request it is sent and answers it.
    #[derive(Default)]
    struct Recorder(RefCell<Option<Request>>);

    impl Transport for Recorder {
        fn send(&self, req: Request) -> Result<Response, PluginError> {
            *self.0.borrow_mut() = Some(req);
            Ok(Response {
                status: 200,
                headers: vec![],
                body: br#"{"access_token":"tok","expires_in":36000,"token_type":"bearer"}"#.to_vec(),
            })
        }
    }

    fn header<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
        req.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn basic_auth_with_a_json_body_sends_the_secret_only_in_the_header() {
        let cc = ClientCredentials {
            token_url: "https://acme.onelogin.example/auth/oauth2/v2/token".into(),
            client_id: "a1b2".into(),
            auth: ClientAuth::Basic {
                secret: "client_secret".into(),
            },
            scope: None,
            body: TokenBody::Json,
        };
        let t = Recorder::default();
        assert_eq!(cc.token(&t).unwrap(), "tok");
        let req = t.0.borrow_mut().take().unwrap();
        assert_eq!(req.method, "POST");
        assert_eq!(
            header(&req, "authorization"),
            Some("Basic a1b2:{{secret:client_secret}}")
        );
        assert_eq!(header(&req, "content-type"), Some("application/json"));
        let body: serde_json::Value = serde_json::from_slice(req.body.as_deref().unwrap()).unwrap();
        assert_eq!(body, serde_json::json!({"grant_type": "client_credentials"}));
    }

    #[test]
    fn a_json_body_carries_the_fields_a_form_would() {
        let cc = ClientCredentials {
            body: TokenBody::Json,
            ..creds("https://json.example")
        };
        let t = Recorder::default();
        cc.token(&t).unwrap();
        let req = t.0.borrow_mut().take().unwrap();
        assert_eq!(header(&req, "authorization"), None);
        let body: serde_json::Value = serde_json::from_slice(req.body.as_deref().unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "grant_type": "client_credentials",
                "client_id": "app",
                "client_secret": "{{secret:client_secret}}",
                "scope": "https://graph.microsoft.com/.default",
            })
        );
        // The form stays the default, with the same fields.
        assert_eq!(TokenBody::default(), TokenBody::Form);
        creds("https://form.example").token(&t).unwrap();
        let req = t.0.borrow_mut().take().unwrap();
        assert_eq!(header(&req, "content-type"), Some("application/x-www-form-urlencoded"));
        let form = String::from_utf8(req.body.unwrap()).unwrap();
        assert_eq!(
            form,
            "grant_type=client_credentials&client_id=app&client_secret={{secret:client_secret}}&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
        );
    }

    #[test]
    fn a_client_id_basic_cannot_carry_is_a_config_error() {
        let cc = ClientCredentials {
            client_id: "a:b".into(),
            auth: ClientAuth::Basic {
                secret: "client_secret".into(),
            },
            ..creds("https://colon.example")
        };
        let err = cc.token(&Recorder::default()).unwrap_err();
        assert!(
            matches!(&err, PluginError::Config(m) if m.contains("HTTP Basic")),
            "{err:?}"
        );
    }

    fn google() -> JwtBearer {
        JwtBearer {
            token_url: "https://oauth2.googleapis.com/token".into(),
            issuer: "roster@acme.iam.gserviceaccount.com".into(),
            subject: Some("admin@acme.example".into()),
            key_secret: "service_account_key".into(),
            header: vec![("kid".into(), "k1".into())],
            alg: "RS256".into(),
            scope: Some("https://www.googleapis.com/auth/admin.directory.user.readonly".into()),
        }
    }

    #[test]
    fn the_jwt_bearer_grant_sends_the_assertion_as_the_grant_without_a_client_secret() {
        let g = google();
        let req = g.token_request("h.c.s");
        assert_eq!(req.method, "POST");
        let form = String::from_utf8(req.body.unwrap()).unwrap();
        assert_eq!(
            form,
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=h.c.s"
        );
        let (header, claims) = g.assertion_parts();
        let header: serde_json::Value = serde_json::from_str(&header).unwrap();
        assert_eq!(header, serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "k1"}));
        let claims: serde_json::Value = serde_json::from_str(&claims).unwrap();
        assert_eq!(claims["iss"], "roster@acme.iam.gserviceaccount.com");
        assert_eq!(claims["sub"], "admin@acme.example");
        assert_eq!(claims["aud"], "https://oauth2.googleapis.com/token");
        assert_eq!(
            claims["scope"],
            "https://www.googleapis.com/auth/admin.directory.user.readonly"
        );
        let (iat, exp) = (claims["iat"].as_u64().unwrap(), claims["exp"].as_u64().unwrap());
        assert!(exp > iat && exp - iat <= 3600, "{iat} {exp}");
        let (_, no_sub) = JwtBearer { subject: None, ..g }.assertion_parts();
        assert!(!no_sub.contains("\"sub\""), "{no_sub}");
    }

    #[test]
    fn a_jwt_bearer_token_is_cached_apart_from_client_credentials_and_renewed_on_401() {
        // Outside the host the assertion cannot be signed: seed the cache as a granted token
        // would, and check the 401 renewal asks the endpoint (and reaches the signer) again.
        let g = google();
        CACHE.with(|c| {
            c.borrow_mut().insert(
                GrantKey::JwtBearer(g.clone()),
                Cached {
                    token: "t1".into(),
                    renew_at: Instant::now() + Duration::from_secs(600),
                },
            )
        });
        let mut idp = FakeIdp::new(3600);
        assert_eq!(g.token(&idp).unwrap(), "t1");
        let resp = g.send(&idp, Request::get("https://admin.googleapis.com/x")).unwrap();
        assert_eq!(String::from_utf8(resp.body).unwrap(), r#"Some("Bearer t1")"#);
        idp.revoke_first_token = true;
        let err = g
            .send(&idp, Request::get("https://admin.googleapis.com/x"))
            .unwrap_err();
        assert!(err.to_string().contains("sign-jwt"), "{err}");
        assert_eq!(idp.token_calls.get(), 0, "no token request without an assertion");
    }

    #[test]
    fn a_refused_secret_is_an_auth_error() {
        struct Refuse;
        impl Transport for Refuse {
            fn send(&self, _: Request) -> Result<Response, PluginError> {
                Ok(Response {
                    status: 401,
                    headers: vec![],
                    body: br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#.to_vec(),
                })
            }
        }
        let err = creds("https://d.example").token(&Refuse).unwrap_err();
        assert_eq!(refusal_code(&err), Some("invalid_client"));
        let PluginError::Auth(msg) = err else { panic!("{err:?}") };
        assert!(msg.contains("AADSTS7000215"), "{msg}");
        assert_eq!(
            refusal_code(&PluginError::Auth("token request to x was refused (400): y".into())),
            None
        );
        assert_eq!(refusal_code(&PluginError::Config("invalid_scope".into())), None);
    }
}

//! Secrets stay in the host, and go only where the administrator said they go.
//!
//! A plugin writes `{{secret:NAME}}` in a header value or a request body; the host fills in the
//! value on the way out only when that spot is the one the secret is bound to — one header, or
//! one field of a form or JSON body, of the given methods, to the given origins, under the
//! given path. A placeholder anywhere else (another header, another field, a URL, another
//! path, method or host) stops the request with an error naming the secret, where it was put
//! and where it may go. Every secret value found in a response, a log line or an error message,
//! raw or in a common encoding, is turned back into its placeholder before the plugin or the
//! log sees it.

use std::fmt;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;
use memchr::memmem;
use serde::{Deserialize, Serialize};

use crate::capability::Origin;

/// What a secret may be used for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum SecretKind {
    /// A value substituted into requests (client secret, API token, password).
    #[default]
    Value,
    /// A PEM private key, used only by `sign-jwt`; never substituted into requests.
    SigningKey,
}

impl SecretKind {
    /// `value` or `signing-key`, as configuration writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            SecretKind::Value => "value",
            SecretKind::SigningKey => "signing-key",
        }
    }
}

pub use roster_http::SecretValue;

/// The one spot of a request a value secret may be put in (`use = { header = "Authorization" }`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Place {
    /// The value of this header (any case), e.g. `Authorization`.
    Header(String),
    /// The value of this field of an `application/x-www-form-urlencoded` body.
    Form(String),
    /// The value of this member of the top-level object of a JSON body.
    Json(String),
    /// The password of a simple bind as this DN, on LDAP connections to `hosts` (the host
    /// binds; the plugin only names the secret).
    #[serde(rename = "ldap_bind")]
    LdapBind(String),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Header(h) => write!(f, "header `{h}`"),
            Place::Form(n) => write!(f, "form field `{n}`"),
            Place::Json(n) => write!(f, "JSON field `{n}`"),
            Place::LdapBind(dn) => write!(f, "the LDAP bind of `{dn}`"),
        }
    }
}

/// How a secret is bound, as configuration writes it: everything but its name and value.
/// [`BindingSpec::check`] turns it into a [`Binding`] or says what is missing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BindingSpec {
    /// `value` (default) or `signing-key`.
    #[serde(default)]
    pub kind: SecretKind,
    /// Value secrets: the exact origins (`https://host[:port]`, no wildcards) it may be sent to;
    /// for an LDAP bind password, the `ldap://` or `ldaps://` servers it may be used with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub hosts: Vec<Origin>,
    /// Value secrets: where in a request it goes: `{"header": "Authorization"}`,
    /// `{"form": "client_secret"}` or `{"json": "password"}`; or `{"ldap_bind": "DN"}` for the
    /// password the host binds with as that DN.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub place: Option<Place>,
    /// Value secrets: the HTTP methods it may be sent with; default any for a header, `POST`
    /// for a form or JSON field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// Value secrets: the path prefix it may be sent to (whole segments); default `/` for a
    /// header, required for a form or JSON field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Signing keys: the client id the assertion is issued by (`iss`, and `sub` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Signing keys: `sub` when it is not the client id (Google's domain-wide delegation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Signing keys: the token endpoint URL the assertion is for (`aud`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
}

/// Which methods a value secret may be sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Methods {
    /// Any method.
    Any,
    /// Only these (upper case).
    Only(Vec<String>),
}

/// Where a value secret may go, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueUse {
    /// Exact origins.
    pub hosts: Vec<Origin>,
    /// The header or field.
    pub place: Place,
    /// The methods.
    pub methods: Methods,
    /// The path prefix, starting with `/`.
    pub path: String,
}

/// What a signing key signs for, checked: the host pins these claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUse {
    /// `iss`.
    pub client_id: String,
    /// `sub`.
    pub subject: String,
    /// `aud`: the token endpoint URL.
    pub audience: String,
}

/// Where an LDAP bind password may be used, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapUse {
    /// Exact `ldap://` or `ldaps://` origins.
    pub hosts: Vec<Origin>,
    /// The DN it is the password of, as configured.
    pub dn: String,
}

/// A secret's binding, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// A value filled into one spot of requests.
    Value(ValueUse),
    /// A private key used by `sign-jwt` only.
    SigningKey(KeyUse),
    /// The password the host binds with to LDAP servers as one DN.
    LdapBind(LdapUse),
}

const VALUE_ONLY: &str = "`hosts`, `use`, `methods` and `path` belong to value secrets";

impl BindingSpec {
    /// The binding this describes, or what is wrong with it in words for the administrator
    /// (the caller names the source and the secret).
    pub fn check(&self) -> Result<Binding, String> {
        match (self.kind, &self.place) {
            (SecretKind::Value, Some(Place::LdapBind(dn))) => self.ldap_use(dn).map(Binding::LdapBind),
            (SecretKind::Value, _) => self.value_use().map(Binding::Value),
            (SecretKind::SigningKey, _) => self.key_use().map(Binding::SigningKey),
        }
    }

    fn ldap_use(&self, dn: &str) -> Result<LdapUse, String> {
        if self.methods.is_some() || self.path.is_some() {
            return Err("`methods` and `path` belong to secrets sent in HTTP requests; an LDAP bind password is bound by `hosts` and its DN".into());
        }
        if self.client_id.is_some() || self.subject.is_some() || self.audience.is_some() {
            return Err("`client_id`, `subject` and `audience` belong to signing keys (kind = \"signing-key\")".into());
        }
        if dn.trim().is_empty() {
            return Err("`use = { ldap_bind = … }` names no DN; give the DN this is the password of, e.g. ldap_bind = \"cn=reader,dc=example,dc=org\"".into());
        }
        if self.hosts.is_empty() {
            return Err(
                "give `hosts`: the LDAP servers it may be used with, e.g. hosts = [\"ldaps://ldap.example.com\"]"
                    .into(),
            );
        }
        if let Some(h) = self.hosts.iter().find(|h| h.scheme().is_http() || h.is_wildcard()) {
            return Err(format!(
                "`hosts` entry {h} is not an exact ldap:// or ldaps:// origin; an LDAP bind password is used only with the LDAP servers listed"
            ));
        }
        Ok(LdapUse {
            hosts: self.hosts.clone(),
            dn: dn.to_string(),
        })
    }

    fn value_use(&self) -> Result<ValueUse, String> {
        if self.client_id.is_some() || self.subject.is_some() || self.audience.is_some() {
            return Err("`client_id`, `subject` and `audience` belong to signing keys (kind = \"signing-key\")".into());
        }
        if self.hosts.is_empty() {
            return Err(
                "give `hosts`: the origins its value may be sent to, e.g. hosts = [\"https://login.example.com\"]"
                    .into(),
            );
        }
        if let Some(w) = self.hosts.iter().find(|h| h.is_wildcard()) {
            return Err(format!(
                "`hosts` entry {w} is a wildcard; a secret is bound to exact origins: list each host it is sent to"
            ));
        }
        if let Some(l) = self.hosts.iter().find(|h| !h.scheme().is_http()) {
            return Err(format!(
                "`hosts` entry {l} is an LDAP server; a secret sent in HTTP requests is bound to http(s) origins (an LDAP bind password says `use = {{ ldap_bind = \"DN\" }}`)"
            ));
        }
        let Some(place) = self.place.clone() else {
            return Err("say where its value goes: `use = { header = \"Authorization\" }`, `use = { form = \"client_secret\" }` or `use = { json = \"password\" }` (README: Secrets)".into());
        };
        let (Place::Header(n) | Place::Form(n) | Place::Json(n) | Place::LdapBind(n)) = &place;
        if n.trim().is_empty() || n.trim() != n {
            return Err(format!("`use` names {place}, which is not a name"));
        }
        if let Place::Header(h) = &place
            && http::HeaderName::from_bytes(h.as_bytes()).is_err()
        {
            return Err(format!("`use` names {place}, which is not a valid header name"));
        }
        let methods = match &self.methods {
            None if matches!(place, Place::Header(_)) => Methods::Any,
            None => Methods::Only(vec!["POST".into()]),
            Some(list) if list.is_empty() => {
                return Err("`methods` is empty, so nothing could use it; leave it out or list e.g. [\"POST\"]".into());
            }
            Some(list) => {
                let mut only = Vec::new();
                for m in list {
                    if m.is_empty() || !m.chars().all(|c| c.is_ascii_alphabetic()) {
                        return Err(format!("`methods` entry {m:?} is not an HTTP method"));
                    }
                    only.push(m.to_ascii_uppercase());
                }
                Methods::Only(only)
            }
        };
        let path = match (&self.path, &place) {
            (Some(p), _) => p.clone(),
            (None, Place::Header(_)) => "/".into(),
            (None, _) => {
                return Err(format!(
                    "give `path`: the path prefix of the endpoint its {place} is sent to, e.g. path = \"/contoso.onmicrosoft.com/oauth2/\""
                ));
            }
        };
        if !path.starts_with('/')
            || path.contains(['?', '#', '\\', '%'])
            || path.split('/').any(|seg| seg == "." || seg == "..")
        {
            return Err(format!(
                "`path` {path:?} must be a plain URL path starting with `/` (no query, `..` or escapes)"
            ));
        }
        Ok(ValueUse {
            hosts: self.hosts.clone(),
            place,
            methods,
            path,
        })
    }

    fn key_use(&self) -> Result<KeyUse, String> {
        if !self.hosts.is_empty() {
            return Err("`hosts` does not apply to a signing key: it is bound by `client_id` and `audience` (the token endpoint URL), e.g. audience = \"https://login.microsoftonline.com/TENANT/oauth2/v2.0/token\"".into());
        }
        if self.place.is_some() || self.methods.is_some() || self.path.is_some() {
            return Err(format!("{VALUE_ONLY}; a signing key never leaves the host"));
        }
        let client_id = match self.client_id.as_deref().map(str::trim) {
            Some(c) if !c.is_empty() => c.to_string(),
            _ => {
                return Err("give `client_id`: the application (client) id its assertions are issued by".into());
            }
        };
        let Some(audience) = self.audience.as_deref() else {
            return Err("give `audience`: the token endpoint URL its assertions are for, e.g. \"https://login.microsoftonline.com/TENANT/oauth2/v2.0/token\"".into());
        };
        let audience = normalize_url(audience)
            .ok_or_else(|| format!("`audience` {audience:?} is not an absolute http or https URL"))?;
        let subject = match self.subject.as_deref().map(str::trim) {
            Some("") => return Err("`subject` is empty; leave it out to use the client id".into()),
            Some(s) => s.to_string(),
            None => client_id.clone(),
        };
        Ok(KeyUse {
            client_id,
            subject,
            audience,
        })
    }
}

/// What a signing key's value is.
enum KeyFile {
    /// Not JSON: a PEM key, used as it is.
    Pem,
    /// A Google service-account key file; the PEM private key it holds.
    ServiceAccount(String),
    /// JSON that cannot serve as this key, and why.
    Refused(String),
}

/// The fields of Google's service-account key file (the JSON the Cloud console downloads) the
/// host reads; the others (`project_id`, `private_key_id`, `token_uri`, …) are ignored.
#[derive(Deserialize)]
struct ServiceAccountFile {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    private_key: Option<String>,
    client_email: Option<String>,
}

/// A signing key's value read as a PEM key or as Google's service-account key file, whose
/// `client_email` must be the bound client id (the JWT's `iss`).
fn service_account_key(value: &str, bound: &KeyUse) -> KeyFile {
    if !value.trim_start().starts_with('{') {
        return KeyFile::Pem;
    }
    let file: ServiceAccountFile = match serde_json::from_str(value) {
        Ok(f) => f,
        Err(e) => {
            return KeyFile::Refused(format!(
                "the key is JSON but not a Google service-account key file ({e}); give the PEM private key or the key file as downloaded (IAM & Admin → Service accounts → Keys → Add key → JSON)"
            ));
        }
    };
    if let Some(kind) = file.kind.as_deref().filter(|k| *k != "service_account") {
        return KeyFile::Refused(format!(
            "the key file is of type `{kind}`, not a service account's key (`service_account`); download a JSON key of the service account under IAM & Admin → Service accounts → Keys"
        ));
    }
    let Some(pem) = file.private_key.filter(|p| p.contains("PRIVATE KEY")) else {
        return KeyFile::Refused(
            "the key file has no `private_key`; download a new JSON key of the service account under IAM & Admin → Service accounts → Keys".into(),
        );
    };
    match file.client_email.as_deref().map(str::trim) {
        Some(email) if !email.eq_ignore_ascii_case(&bound.client_id) => KeyFile::Refused(format!(
            "the key file is the service account {email}'s, but the secret's `client_id` is {}; set client_id to {email} or use that account's key file",
            bound.client_id
        )),
        _ => KeyFile::ServiceAccount(pem),
    }
}

const NAME_RULE: &str = "a secret's name is 1–64 letters, digits, `_`, `-` or `.`";

/// Whether `name` can be a secret's name: nothing a placeholder or JSON would need to escape.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// An absolute http(s) URL without credentials or fragment, in its normal form.
pub(crate) fn normalize_url(s: &str) -> Option<String> {
    let u = url::Url::parse(s.trim()).ok()?;
    let ok = matches!(u.scheme(), "http" | "https")
        && u.host_str().is_some()
        && u.username().is_empty()
        && u.password().is_none()
        && u.fragment().is_none();
    ok.then(|| u.to_string())
}

/// One named secret of a source: its value and where it may be used.
#[derive(Clone, Deserialize)]
#[serde(from = "StoredSecret")]
pub struct Secret {
    /// The name plugins use in `{{secret:NAME}}`.
    pub name: String,
    /// The value.
    pub value: SecretValue,
    /// The binding as configured.
    pub spec: BindingSpec,
    /// The binding checked, or why it cannot be used (a secret stored before bindings existed).
    binding: Result<Binding, String>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("name", &self.name)
            .field("value", &self.value)
            .field("spec", &self.spec)
            .finish()
    }
}

/// A secret as the store keeps it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredSecret {
    name: String,
    value: SecretValue,
    #[serde(flatten)]
    spec: BindingSpec,
}

impl From<StoredSecret> for Secret {
    fn from(s: StoredSecret) -> Secret {
        Secret::new(s.name, s.value, s.spec)
    }
}

impl Secret {
    /// A secret bound as `spec` says. A spec that does not check out makes a secret that every
    /// use refuses with the reason, so a source stored by an older Roster still loads and says
    /// what to add.
    pub fn new(name: impl Into<String>, value: SecretValue, spec: BindingSpec) -> Secret {
        let name = name.into();
        let mut value = value;
        let binding = if valid_name(&name) {
            spec.check()
        } else {
            Err(NAME_RULE.into())
        };
        // A signing key may be given as Google's service-account key file: the PEM inside is
        // the key, and the file must be the bound client's (a key file for another account
        // would be refused by Google with an opaque `invalid_grant`).
        let binding = match binding {
            Ok(Binding::SigningKey(k)) => match service_account_key(value.expose(), &k) {
                KeyFile::Pem => Ok(Binding::SigningKey(k)),
                KeyFile::ServiceAccount(pem) => {
                    value = SecretValue::new(pem);
                    Ok(Binding::SigningKey(k))
                }
                KeyFile::Refused(why) => Err(why),
            },
            other => other,
        };
        Secret {
            name,
            value,
            spec,
            binding,
        }
    }

    /// Value or signing key.
    pub fn kind(&self) -> SecretKind {
        self.spec.kind
    }

    /// Why the secret cannot be used, if its binding does not check out.
    pub fn unusable(&self) -> Option<&str> {
        self.binding.as_ref().err().map(String::as_str)
    }
}

/// A plugin used a secret where it may not go, or one that does not exist.
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
    /// Put somewhere its binding does not allow.
    #[error(
        "secret `{name}` may not go in {put}; it is bound to {allowed} (change the secret's `use`, `methods`, `path` or `hosts` if that is where it belongs)"
    )]
    Misplaced {
        /// The secret's name.
        name: String,
        /// Where the plugin put it.
        put: String,
        /// Where it may go.
        allowed: String,
    },
    /// A Basic credential that is not `USER:{{secret:NAME}}`.
    #[error(
        "secret `{name}` is in the Basic credential of {header}, which {problem}; write `Basic USER:{{{{secret:{name}}}}}` (the SDK's `basic_auth`): the host fills in the password and base64-encodes `USER:PASSWORD`"
    )]
    MalformedBasic {
        /// The secret's name.
        name: String,
        /// The header, described.
        header: String,
        /// What is wrong with the credential.
        problem: String,
    },
    /// Its binding is incomplete (stored by an older Roster, or hand-edited).
    #[error("secret `{name}` cannot be used: {reason}; give the secret again with its binding")]
    Unusable {
        /// The secret's name.
        name: String,
        /// What is missing.
        reason: String,
    },
}

/// Where a request is going: what a value secret's binding is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Destination<'a> {
    /// Its origin.
    pub origin: &'a Origin,
    /// Its method, upper case.
    pub method: &'a str,
    /// Its URL path (normalised by URL parsing: no `.` or `..` segments).
    pub path: &'a str,
}

impl fmt::Display for Destination<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}{}", self.method, self.origin, self.path)
    }
}

/// The spot of a request a placeholder was found in.
enum Spot {
    /// A header value, by name.
    Header(String),
    /// A form field value, by its decoded name.
    Form(String),
    /// The value of a member of the top-level JSON object.
    Json(String),
    /// Anywhere else, described.
    Elsewhere(String),
}

impl Spot {
    fn is(&self, place: &Place) -> bool {
        match (self, place) {
            (Spot::Header(a), Place::Header(b)) => a.eq_ignore_ascii_case(b),
            (Spot::Form(a), Place::Form(b)) | (Spot::Json(a), Place::Json(b)) => a == b,
            _ => false,
        }
    }

    fn describe(&self) -> String {
        match self {
            Spot::Header(h) => format!("header `{h}`"),
            Spot::Form(n) => format!("form field `{n}`"),
            Spot::Json(n) => format!("JSON field `{n}`"),
            Spot::Elsewhere(d) => d.clone(),
        }
    }
}

impl ValueUse {
    fn admits(&self, spot: &Spot, to: &Destination) -> bool {
        spot.is(&self.place)
            && self.hosts.iter().any(|h| h.admits(to.origin))
            && match &self.methods {
                Methods::Any => true,
                Methods::Only(list) => list.iter().any(|m| m == to.method),
            }
            && path_under(to.path, &self.path)
    }

    fn describe(&self) -> String {
        let methods = match &self.methods {
            Methods::Any => "requests".to_string(),
            Methods::Only(list) => format!("{} requests", list.join("/")),
        };
        let hosts: Vec<String> = self.hosts.iter().map(ToString::to_string).collect();
        format!(
            "{} of {methods} to {} under {}",
            self.place,
            hosts.join(", "),
            self.path
        )
    }
}

/// Whether `path` is `prefix` or below it, segment by segment (`/oauth` does not admit `/oauthx`).
fn path_under(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// The secrets of one source.
#[derive(Clone, Default)]
pub struct Secrets {
    list: Vec<Secret>,
    /// Every redacted form of every value, longest match first.
    redactor: Option<AhoCorasick>,
    /// The placeholder each pattern of `redactor` is replaced by.
    placeholders: Vec<Vec<u8>>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The automaton would print its patterns, which are the values.
        f.debug_struct("Secrets")
            .field("list", &self.list)
            .finish_non_exhaustive()
    }
}

const OPEN: &[u8] = b"{{secret:";
const CLOSE: &[u8] = b"}}";
/// Values shorter than this are not redacted from responses: they would match by chance.
const MIN_REDACT_LEN: usize = 4;
/// Base64 text of a value shorter than this is not redacted: short runs of base64 match by
/// chance in tokens, cursors and photos.
const MIN_BASE64_LEN: usize = 12;

/// `(scheme, credential)` of a header value of the Basic scheme (any case, RFC 7617).
fn basic_credential(value: &[u8]) -> Option<(&[u8], &[u8])> {
    let space = memchr::memchr(b' ', value)?;
    let (scheme, rest) = value.split_at(space);
    scheme
        .eq_ignore_ascii_case(b"basic")
        .then(|| (scheme, rest.trim_ascii_start()))
}

/// Whether `text` has a `:` that is not the one inside a `{{secret:` (one pass).
fn colon_outside_placeholders(text: &[u8]) -> bool {
    let mut last = 0;
    for (start, end, _) in placeholders(text) {
        if memchr::memchr(b':', &text[last..start]).is_some() {
            return true;
        }
        last = end;
    }
    memchr::memchr(b':', &text[last..]).is_some()
}

/// A placeholder in `text`: its byte range and the name in it.
fn placeholders(text: &[u8]) -> impl Iterator<Item = (usize, usize, String)> + '_ {
    let mut from = 0;
    std::iter::from_fn(move || {
        let start = from + memmem::find(&text[from..], OPEN)?;
        let after = start + OPEN.len();
        let end = after + memmem::find(&text[after..], CLOSE)?;
        from = end + CLOSE.len();
        Some((start, from, String::from_utf8_lossy(&text[after..end]).into_owned()))
    })
}

impl Secrets {
    /// The given secrets.
    pub fn new(list: Vec<Secret>) -> Self {
        let mut patterns: Vec<String> = Vec::new();
        let mut placeholders = Vec::new();
        for s in &list {
            let placeholder = format!("{{{{secret:{}}}}}", s.name).into_bytes();
            for form in encodings(s.value.expose()) {
                if !patterns.contains(&form) {
                    patterns.push(form);
                    placeholders.push(placeholder.clone());
                }
            }
        }
        let redactor = (!patterns.is_empty()).then(|| {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&patterns)
                .expect("literal patterns always build")
        });
        Secrets {
            list,
            redactor,
            placeholders,
        }
    }

    fn get(&self, name: &str) -> Option<&Secret> {
        self.list.iter().find(|s| s.name == name)
    }

    /// The value secret `name` and where it may go.
    fn value_secret(&self, name: &str) -> Result<(&Secret, &ValueUse), SecretError> {
        let secret = self.get(name).ok_or_else(|| SecretError::Unknown(name.to_string()))?;
        match &secret.binding {
            Ok(Binding::Value(u)) => Ok((secret, u)),
            Ok(Binding::SigningKey(_)) => Err(SecretError::WrongKind {
                name: name.to_string(),
                actual: "signing key",
                wanted: "value in a request (only the host's sign-jwt uses it)",
            }),
            Ok(Binding::LdapBind(_)) => Err(SecretError::WrongKind {
                name: name.to_string(),
                actual: "bind password for LDAP",
                wanted: "value in a request (only the host's LDAP bind uses it)",
            }),
            Err(reason) => Err(SecretError::Unusable {
                name: name.to_string(),
                reason: reason.clone(),
            }),
        }
    }

    /// The value of `name` if it may go in `spot` of a request to `to`.
    fn permit(&self, name: &str, spot: &Spot, to: &Destination) -> Result<&str, SecretError> {
        let (secret, u) = self.value_secret(name)?;
        if u.admits(spot, to) {
            Ok(secret.value.expose())
        } else {
            Err(SecretError::Misplaced {
                name: name.to_string(),
                put: format!("{} of {to}", spot.describe()),
                allowed: u.describe(),
            })
        }
    }

    /// Why `name` may not go in `spot`, a spot no binding admits.
    fn refuse(&self, name: &str, spot: &Spot, to: &Destination) -> SecretError {
        match self.value_secret(name) {
            Ok((_, u)) => SecretError::Misplaced {
                name: name.to_string(),
                put: format!("{} of {to}", spot.describe()),
                allowed: u.describe(),
            },
            Err(e) => e,
        }
    }

    /// Refuses a URL with a placeholder in it: URLs end up in logs and proxies, so no secret
    /// ever goes there.
    pub fn check_url(&self, url: &str, to: &Destination) -> Result<(), SecretError> {
        match placeholders(url.as_bytes()).next() {
            Some((_, _, name)) => Err(self.refuse(&name, &Spot::Elsewhere("the URL".into()), to)),
            None => Ok(()),
        }
    }

    /// The value of header `name` with its placeholders filled. A `Basic USER:{{secret:NAME}}`
    /// value is filled and then base64-encoded as RFC 7617 wants it, since the plugin cannot
    /// encode a password it never sees.
    pub fn fill_header(&self, name: &str, value: &[u8], to: &Destination) -> Result<Vec<u8>, SecretError> {
        let spot = Spot::Header(name.to_string());
        if let Some((scheme, credential)) = basic_credential(value)
            && placeholders(credential).next().is_some()
        {
            return self.fill_basic(scheme, credential, &spot, to);
        }
        let mut out = Vec::with_capacity(value.len());
        let mut last = 0;
        for (start, end, secret) in placeholders(value) {
            out.extend_from_slice(&value[last..start]);
            out.extend_from_slice(self.permit(&secret, &spot, to)?.as_bytes());
            last = end;
        }
        out.extend_from_slice(&value[last..]);
        Ok(out)
    }

    /// `scheme credential` with the credential's password placeholder filled and the whole
    /// `user:password` base64-encoded; anything but exactly `USER:{{secret:NAME}}` is refused,
    /// since a secret in the user part or beside other text would not be a password.
    fn fill_basic(
        &self,
        scheme: &[u8],
        credential: &[u8],
        spot: &Spot,
        to: &Destination,
    ) -> Result<Vec<u8>, SecretError> {
        let first = placeholders(credential).next();
        let name = first.as_ref().map(|(_, _, n)| n.clone()).unwrap_or_default();
        let malformed = |problem: &str| SecretError::MalformedBasic {
            name: name.clone(),
            header: spot.describe(),
            problem: problem.to_string(),
        };
        // One pass: the first placeholder must be the whole password, right after `USER:`.
        // (A separator search that tested every `:` against every placeholder was quadratic in
        // what a hostile plugin can put in one header.)
        let Some((start, end, secret)) = first else {
            return Err(malformed("has no secret"));
        };
        let colon_after = colon_outside_placeholders(&credential[end..]);
        if start == 0 || credential[start - 1] != b':' {
            return Err(malformed(if colon_after {
                "puts the secret in the user part"
            } else if start == 0 {
                "has no user part (no `:` before the secret)"
            } else {
                "has more than the secret in the password part"
            }));
        }
        if end != credential.len() {
            return Err(malformed(if colon_after {
                "puts the secret in the user part"
            } else {
                "has more than the secret in the password part"
            }));
        }
        let user = &credential[..start - 1];
        if user.is_empty() {
            return Err(malformed("has an empty user part"));
        }
        if memchr::memchr(b':', user).is_some() {
            return Err(malformed("has more than the secret in the password part"));
        }
        let value = self.permit(&secret, spot, to)?;
        let mut plain = Vec::with_capacity(user.len() + 1 + value.len());
        plain.extend_from_slice(user);
        plain.push(b':');
        plain.extend_from_slice(value.as_bytes());
        let mut out = scheme.to_vec();
        out.push(b' ');
        out.extend_from_slice(base64::engine::general_purpose::STANDARD.encode(plain).as_bytes());
        Ok(out)
    }

    /// The body with its placeholders filled: only in the values of form or JSON fields, so
    /// `content_type` decides how it is read.
    pub fn fill_body(&self, body: &[u8], content_type: Option<&str>, to: &Destination) -> Result<Vec<u8>, SecretError> {
        if memmem::find(body, OPEN).is_none() {
            return Ok(body.to_vec());
        }
        let media = content_type
            .and_then(|c| c.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase())
            .unwrap_or_default();
        if media == "application/x-www-form-urlencoded" {
            self.fill_form(body, to)
        } else if media == "application/json" || media.ends_with("+json") {
            self.fill_json(body, to)
        } else {
            let shown = if media.is_empty() { "none".to_string() } else { media };
            let spot = Spot::Elsewhere(format!(
                "a body of content type {shown} (only form and JSON fields can carry a secret)"
            ));
            Err(self.refuse_first(body, &spot, to))
        }
    }

    fn fill_form(&self, body: &[u8], to: &Destination) -> Result<Vec<u8>, SecretError> {
        let mut out = Vec::with_capacity(body.len() + 64);
        for (i, pair) in body.split(|b| *b == b'&').enumerate() {
            if i > 0 {
                out.push(b'&');
            }
            let eq = memchr::memchr(b'=', pair).unwrap_or(pair.len());
            let (raw_name, value) = pair.split_at(eq);
            if placeholders(raw_name).next().is_some() {
                return Err(self.refuse_first(raw_name, &Spot::Elsewhere("the name of a form field".into()), to));
            }
            let name: String = url::form_urlencoded::parse(raw_name)
                .next()
                .map(|(k, _)| k.into_owned())
                .unwrap_or_default();
            let spot = Spot::Form(name);
            out.extend_from_slice(raw_name);
            let mut last = 0;
            for (start, end, secret) in placeholders(value) {
                out.extend_from_slice(&value[last..start]);
                let v = self.permit(&secret, &spot, to)?;
                out.extend(url::form_urlencoded::byte_serialize(v.as_bytes()).flat_map(str::bytes));
                last = end;
            }
            out.extend_from_slice(&value[last..]);
        }
        Ok(out)
    }

    fn fill_json(&self, body: &[u8], to: &Destination) -> Result<Vec<u8>, SecretError> {
        let Ok(doc) = serde_json::from_slice::<serde_json::Value>(body) else {
            return Err(self.refuse_first(body, &Spot::Elsewhere("a body that is not valid JSON".into()), to));
        };
        // Every placeholder the document holds is checked where it sits; the raw text is then
        // filled in place, so the body keeps its exact form. A placeholder holds no character
        // JSON escapes, so each raw one is one of those checked.
        self.check_json(&doc, "", true, to)?;
        let mut out = Vec::with_capacity(body.len() + 64);
        let mut last = 0;
        for (start, end, secret) in placeholders(body) {
            out.extend_from_slice(&body[last..start]);
            // Checked where it sits above; here only the value is wanted.
            let v = self.value_secret(&secret)?.0.value.expose();
            let escaped = serde_json::to_string(v).expect("a string always serialises");
            out.extend_from_slice(&escaped.as_bytes()[1..escaped.len() - 1]);
            last = end;
        }
        out.extend_from_slice(&body[last..]);
        Ok(out)
    }

    /// Why the first placeholder of `text` may not be where it is.
    fn refuse_first(&self, text: &[u8], spot: &Spot, to: &Destination) -> SecretError {
        match placeholders(text).next() {
            Some((_, _, name)) => self.refuse(&name, spot, to),
            None => SecretError::Unknown(String::new()),
        }
    }

    fn check_json(&self, v: &serde_json::Value, pointer: &str, top: bool, to: &Destination) -> Result<(), SecretError> {
        match v {
            serde_json::Value::String(s) => {
                for (_, _, name) in placeholders(s.as_bytes()) {
                    let spot = Spot::Elsewhere(format!(
                        "the JSON value at {}",
                        if pointer.is_empty() { "/" } else { pointer }
                    ));
                    self.permit(&name, &spot, to)?;
                }
            }
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.check_json(item, &format!("{pointer}/{i}"), false, to)?;
                }
            }
            serde_json::Value::Object(members) => {
                for (key, item) in members {
                    if placeholders(key.as_bytes()).next().is_some() {
                        return Err(self.refuse_first(
                            key.as_bytes(),
                            &Spot::Elsewhere("a JSON member name".into()),
                            to,
                        ));
                    }
                    match item {
                        serde_json::Value::String(s) if top => {
                            for (_, _, name) in placeholders(s.as_bytes()) {
                                self.permit(&name, &Spot::Json(key.clone()), to)?;
                            }
                        }
                        _ => self.check_json(item, &format!("{pointer}/{key}"), false, to)?,
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Replaces every secret value in `data` — raw, percent-encoded, JSON-escaped or base64 —
    /// with its placeholder.
    pub fn redact(&self, data: Vec<u8>) -> Vec<u8> {
        match &self.redactor {
            Some(ac) if ac.is_match(&data) => ac.replace_all_bytes(&data, &self.placeholders),
            _ => data,
        }
    }

    /// [`Secrets::redact`] for text.
    pub fn redact_str(&self, text: &str) -> String {
        String::from_utf8(self.redact(text.as_bytes().to_vec()))
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// The signing key named `name`, with what it signs for.
    pub fn signing_key(&self, name: &str) -> Result<(&Secret, &KeyUse), SecretError> {
        let s = self.get(name).ok_or_else(|| SecretError::Unknown(name.to_string()))?;
        match &s.binding {
            Ok(Binding::SigningKey(k)) => Ok((s, k)),
            Ok(Binding::Value(_) | Binding::LdapBind(_)) => Err(SecretError::WrongKind {
                name: name.to_string(),
                actual: "value",
                wanted: "signing key",
            }),
            Err(reason) => Err(SecretError::Unusable {
                name: name.to_string(),
                reason: reason.clone(),
            }),
        }
    }
}

impl Secrets {
    /// The password of `name` for a simple bind as `dn` on a connection to `origin`: only when
    /// the secret is bound with `use = { ldap_bind = DN }` to that DN (compared as DNs are:
    /// case and the spaces around `,`, `=` and `+` do not matter) and lists that origin.
    pub(crate) fn ldap_bind_password(&self, name: &str, origin: &Origin, dn: &str) -> Result<&str, SecretError> {
        let secret = self.get(name).ok_or_else(|| SecretError::Unknown(name.to_string()))?;
        let u = match &secret.binding {
            Ok(Binding::LdapBind(u)) => u,
            Ok(Binding::Value(_)) => {
                return Err(SecretError::WrongKind {
                    name: name.to_string(),
                    actual: "value for HTTP requests",
                    wanted: "bind password for LDAP (bind it with `use = { ldap_bind = \"DN\" }`)",
                });
            }
            Ok(Binding::SigningKey(_)) => {
                return Err(SecretError::WrongKind {
                    name: name.to_string(),
                    actual: "signing key",
                    wanted: "bind password for LDAP",
                });
            }
            Err(reason) => {
                return Err(SecretError::Unusable {
                    name: name.to_string(),
                    reason: reason.clone(),
                });
            }
        };
        if u.hosts.iter().any(|h| h.admits(origin)) && same_dn(&u.dn, dn) {
            Ok(secret.value.expose())
        } else {
            let hosts: Vec<String> = u.hosts.iter().map(ToString::to_string).collect();
            Err(SecretError::Misplaced {
                name: name.to_string(),
                put: format!("the LDAP bind of `{dn}` to {origin}"),
                allowed: format!("the LDAP bind of `{}` to {}", u.dn, hosts.join(", ")),
            })
        }
    }
}

/// Whether two DNs name the same entry as far as a binding goes: ASCII case and the spaces
/// around unescaped `,`, `=` and `+` are ignored (`CN=Reader, DC=corp` is `cn=reader,dc=corp`).
pub(crate) fn same_dn(a: &str, b: &str) -> bool {
    normalize_dn(a) == normalize_dn(b)
}

fn normalize_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    let mut chars = dn.trim().chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push('\\');
                if let Some(next) = chars.next() {
                    out.push(next.to_ascii_lowercase());
                }
            }
            ',' | '=' | '+' => {
                while out.ends_with(' ') && !out.ends_with("\\ ") {
                    out.pop();
                }
                out.push(c);
                chars = {
                    let rest = chars.as_str().trim_start_matches(' ');
                    rest.chars()
                };
            }
            c => out.push(c.to_ascii_lowercase()),
        }
    }
    out
}

/// A credential the host encoded for one request (a Basic `user:password`), redacted from that
/// request's answer whatever the password's length: the host made this encoding, so an endpoint
/// that echoes the header must not hand a short password back in a form too short for
/// [`encodings`] to know by chance.
#[derive(Debug, Clone)]
pub struct Echo {
    forms: Vec<Vec<u8>>,
    placeholder: Vec<u8>,
}

impl Echo {
    /// `data` with every form of this credential replaced by its secret's placeholder.
    fn redact(&self, mut data: Vec<u8>) -> Vec<u8> {
        for form in &self.forms {
            if memmem::find(&data, form).is_none() {
                continue;
            }
            let mut out = Vec::with_capacity(data.len());
            let mut rest = &data[..];
            while let Some(i) = memmem::find(rest, form) {
                out.extend_from_slice(&rest[..i]);
                out.extend_from_slice(&self.placeholder);
                rest = &rest[i + form.len()..];
            }
            out.extend_from_slice(rest);
            data = out;
        }
        data
    }
}

/// `data` with every form of the echoes replaced by their placeholders.
pub fn redact_echoes(data: Vec<u8>, echoes: &[Echo]) -> Vec<u8> {
    echoes.iter().fold(data, |d, e| e.redact(d))
}

impl Secrets {
    /// The credential in a header the host filled from `original` and encoded (a Basic
    /// credential; see [`Secrets::fill_header`]), to redact from the answer.
    pub fn echo_of(&self, original: &[u8], filled: &[u8]) -> Option<Echo> {
        let (_, credential) = basic_credential(original)?;
        let (_, _, name) = placeholders(credential).next()?;
        let (_, encoded) = basic_credential(filled)?;
        let text = std::str::from_utf8(encoded).ok()?;
        let mut forms: Vec<Vec<u8>> = Vec::new();
        for form in escaped_forms(text) {
            let form = form.into_bytes();
            if !forms.contains(&form) {
                forms.push(form);
            }
        }
        Some(Echo {
            forms,
            placeholder: format!("{{{{secret:{name}}}}}").into_bytes(),
        })
    }
}

/// A base64 text as a server may write it back: as is, JSON-escaped with `\/`, and
/// percent-encoded with upper- or lower-case hex.
fn escaped_forms(text: &str) -> Vec<String> {
    vec![
        text.to_string(),
        text.replace('/', "\\/"),
        percent_encode(text, URI_SAFE, UPPER_HEX, "%20"),
        percent_encode(text, URI_SAFE, LOWER_HEX, "%20"),
    ]
}

/// The forms a value takes in text that are worth redacting: raw; percent-encoded as forms
/// and as URIs encode it, with upper- or lower-case hex, `+` or `%20` for a space; JSON-escaped
/// (with `\/` and with `\u` escapes too); and base64, standard and URL-safe, at each of the
/// three offsets it can start at inside a longer encoded text (`user:secret` in a Basic header),
/// keeping only the characters that depend on the value alone.
fn encodings(value: &str) -> Vec<String> {
    let mut forms = Vec::new();
    if value.len() < MIN_REDACT_LEN {
        return forms;
    }
    forms.push(value.to_string());
    for keep in [FORM_SAFE, URI_SAFE] {
        for hex in [UPPER_HEX, LOWER_HEX] {
            for space in ["+", "%20"] {
                forms.push(percent_encode(value, keep, hex, space));
            }
        }
    }
    let json = serde_json::to_string(value).expect("a string always serialises");
    let json = json[1..json.len() - 1].to_string();
    forms.push(json.replace('/', "\\/"));
    forms.push(json_ascii(&json, LOWER_HEX));
    forms.push(json_ascii(&json, UPPER_HEX));
    forms.push(json);
    for engine in [
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        for offset in 0..3usize {
            let mut shifted = vec![0u8; offset];
            shifted.extend_from_slice(value.as_bytes());
            let text = engine.encode(&shifted);
            // Characters 6i..6i+6 bits; keep those wholly inside the value's bits.
            let first = (8 * offset).div_ceil(6);
            let end = 8 * shifted.len() / 6;
            if end > first && end - first >= MIN_BASE64_LEN {
                forms.extend(escaped_forms(&text[first..end]));
            }
        }
    }
    let mut unique = Vec::new();
    for f in forms {
        if !unique.contains(&f) {
            unique.push(f);
        }
    }
    unique
}

const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";
const LOWER_HEX: &[u8; 16] = b"0123456789abcdef";
/// Bytes `application/x-www-form-urlencoded` leaves as they are.
const FORM_SAFE: &[u8] = b"*-._";
/// Bytes RFC 3986 calls unreserved, besides letters and digits.
const URI_SAFE: &[u8] = b"-._~";

fn percent_encode(value: &str, keep: &[u8], hex: &[u8; 16], space: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(b as char);
        } else if b == b' ' {
            out.push_str(space);
        } else {
            out.push('%');
            out.push(hex[(b >> 4) as usize] as char);
            out.push(hex[(b & 15) as usize] as char);
        }
    }
    out
}

/// JSON text with every non-ASCII character as `\uXXXX` (UTF-16), as ASCII-only encoders write it.
fn json_ascii(json: &str, hex: &[u8; 16]) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
            continue;
        }
        let mut units = [0u16; 2];
        for u in c.encode_utf16(&mut units) {
            out.push_str("\\u");
            for shift in [12, 8, 4, 0] {
                out.push(hex[((*u >> shift) & 15) as usize] as char);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUE: &str = "s3cr3t/value+x ü";

    fn origin(s: &str) -> Origin {
        s.parse().unwrap()
    }

    fn form_secret() -> Secret {
        Secret::new(
            "client_secret",
            SecretValue::new(VALUE),
            BindingSpec {
                hosts: vec![origin("https://login.example")],
                place: Some(Place::Form("client_secret".into())),
                path: Some("/tenant/oauth2/".into()),
                ..BindingSpec::default()
            },
        )
    }

    fn secrets() -> Secrets {
        Secrets::new(vec![
            form_secret(),
            Secret::new(
                "token",
                SecretValue::new("tok-0123456789"),
                BindingSpec {
                    hosts: vec![origin("https://api.example")],
                    place: Some(Place::Header("Authorization".into())),
                    methods: Some(vec!["get".into()]),
                    ..BindingSpec::default()
                },
            ),
            Secret::new(
                "password",
                SecretValue::new("pa\"ss/wörd"),
                BindingSpec {
                    hosts: vec![origin("https://api.example")],
                    place: Some(Place::Json("password".into())),
                    path: Some("/login".into()),
                    ..BindingSpec::default()
                },
            ),
            Secret::new(
                "key",
                SecretValue::new("-----BEGIN PRIVATE KEY-----"),
                BindingSpec {
                    kind: SecretKind::SigningKey,
                    client_id: Some("app".into()),
                    audience: Some("https://login.example/tenant/oauth2/v2.0/token".into()),
                    ..BindingSpec::default()
                },
            ),
        ])
    }

    fn to<'a>(origin: &'a Origin, method: &'a str, path: &'a str) -> Destination<'a> {
        Destination { origin, method, path }
    }

    #[test]
    fn a_form_secret_fills_only_its_field_of_its_endpoint() {
        let s = secrets();
        let login = origin("https://login.example");
        let token = to(&login, "POST", "/tenant/oauth2/v2.0/token");
        let form = b"grant_type=x&client_secret={{secret:client_secret}}&scope=a";
        let filled = s
            .fill_body(form, Some("application/x-www-form-urlencoded"), &token)
            .unwrap();
        // The value is form-encoded, so the server decodes exactly the secret.
        assert_eq!(
            String::from_utf8(filled.clone()).unwrap(),
            "grant_type=x&client_secret=s3cr3t%2Fvalue%2Bx+%C3%BC&scope=a"
        );
        let decoded: Vec<(String, String)> = url::form_urlencoded::parse(&filled).into_owned().collect();
        assert_eq!(decoded[1], ("client_secret".to_string(), VALUE.to_string()));

        let evil = origin("https://evil.example");
        let refused = [
            // Another field, e.g. a profile attribute read back later.
            (
                &b"display_name={{secret:client_secret}}"[..],
                "application/x-www-form-urlencoded",
                token,
                "form field `display_name` of POST https://login.example/tenant/oauth2/v2.0/token",
            ),
            (
                b"{{secret:client_secret}}=1",
                "application/x-www-form-urlencoded",
                token,
                "the name of a form field",
            ),
            // Another path, another method, another host.
            (
                form,
                "application/x-www-form-urlencoded",
                to(&login, "POST", "/tenant/profile"),
                "POST https://login.example/tenant/profile",
            ),
            (
                form,
                "application/x-www-form-urlencoded",
                to(&login, "POST", "/tenant/oauth2x/token"),
                "/tenant/oauth2x/token",
            ),
            (
                form,
                "application/x-www-form-urlencoded",
                to(&login, "PUT", "/tenant/oauth2/v2.0/token"),
                "PUT https://login.example",
            ),
            (
                form,
                "application/x-www-form-urlencoded",
                to(&evil, "POST", "/tenant/oauth2/v2.0/token"),
                "POST https://evil.example",
            ),
            // The right field in a body that is not a form.
            (form, "text/plain", token, "a body of content type text/plain"),
            (
                br#"{"client_secret":"{{secret:client_secret}}"}"#,
                "application/json",
                token,
                "JSON field `client_secret`",
            ),
        ];
        for (body, ct, dest, put) in refused {
            let err = s.fill_body(body, Some(ct), &dest).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, SecretError::Misplaced { .. }), "{msg}");
            assert!(
                msg.contains("secret `client_secret` may not go in")
                    && msg.contains(put)
                    && msg.contains(
                        "bound to form field `client_secret` of POST requests to https://login.example under /tenant/oauth2/"
                    ),
                "{msg}"
            );
            assert!(!msg.contains("s3cr3t"), "{msg}");
        }
    }

    #[test]
    fn a_header_secret_fills_only_its_header_and_methods() {
        let s = secrets();
        let api = origin("https://api.example");
        let get = to(&api, "GET", "/v1/users");
        assert_eq!(
            s.fill_header("authorization", b"Bearer {{secret:token}}", &get)
                .unwrap(),
            b"Bearer tok-0123456789".to_vec()
        );
        let err = s
            .fill_header("X-Profile", b"{{secret:token}}", &get)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("header `X-Profile` of GET https://api.example/v1/users")
                && err.contains("bound to header `Authorization` of GET requests to https://api.example under /"),
            "{err}"
        );
        let patch = to(&api, "PATCH", "/v1/users/1");
        assert!(
            s.fill_header("Authorization", b"Bearer {{secret:token}}", &patch)
                .is_err()
        );
        let err = s
            .check_url("https://api.example/v1?k={{secret:token}}", &get)
            .unwrap_err()
            .to_string();
        assert!(err.contains("may not go in the URL of GET"), "{err}");
        // Signing keys never go into requests; unknown names are named.
        let err = s
            .fill_header("Authorization", b"{{secret:key}}", &get)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`key` is a signing key"), "{err}");
        assert_eq!(
            s.fill_header("Authorization", b"{{secret:nope}}", &get),
            Err(SecretError::Unknown("nope".into()))
        );
        assert_eq!(
            s.fill_header("Authorization", b"{{secret:unterminated", &get).unwrap(),
            b"{{secret:unterminated".to_vec()
        );
    }

    fn header_bound(name: &str, value: &str) -> Secrets {
        Secrets::new(vec![Secret::new(
            name,
            SecretValue::new(value),
            BindingSpec {
                hosts: vec![origin("https://jira.example")],
                place: Some(Place::Header("Authorization".into())),
                ..BindingSpec::default()
            },
        )])
    }

    #[test]
    fn a_short_basic_password_echoed_back_is_redacted_at_every_alignment_and_escape() {
        use base64::engine::general_purpose::STANDARD;
        // Too short for its base64 to be known by chance: only the request's own echo knows it.
        let s = header_bound("pw", "pw12");
        let jira = origin("https://jira.example");
        let get = to(&jira, "GET", "/echo");
        for user in ["u", "uu", "uuu"] {
            let original = format!("Basic {user}:{{{{secret:pw}}}}");
            let filled = s.fill_header("Authorization", original.as_bytes(), &get).unwrap();
            let echo = s.echo_of(original.as_bytes(), &filled).expect("an encoded credential");
            let b64 = STANDARD.encode(format!("{user}:pw12"));
            for shown in [
                b64.clone(),
                b64.replace('/', "\\/"),
                b64.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D"),
                b64.replace('+', "%2b").replace('/', "%2f").replace('=', "%3d"),
            ] {
                let body = format!(r#"{{"headers":{{"authorization":"Basic {shown}"}}}}"#);
                let out = redact_echoes(s.redact(body.into_bytes()), std::slice::from_ref(&echo));
                let out = String::from_utf8(out).unwrap();
                assert!(!out.contains(&shown) && out.contains("{{secret:pw}}"), "{user}: {out}");
            }
        }
        // A header the host did not encode is no echo.
        assert!(s.echo_of(b"Bearer {{secret:pw}}", b"Bearer pw12").is_none());
    }

    #[test]
    fn a_long_secrets_base64_is_redacted_when_a_server_escapes_its_slashes() {
        use base64::engine::general_purpose::STANDARD;
        // `?` bytes encode to `Pz8/`: every alignment has slashes a JSON or URL encoder escapes.
        let value = "????????????????????";
        let s = header_bound("pw", value);
        for user in ["u", "uu", "uuu"] {
            let b64 = STANDARD.encode(format!("{user}:{value}"));
            for shown in [
                b64.replace('/', "\\/"),
                b64.replace('/', "%2F"),
                b64.replace('/', "%2f"),
            ] {
                let out = s.redact_str(&shown);
                assert!(
                    out.contains("{{secret:pw}}") && out.len() < shown.len(),
                    "{user}: {shown} → {out}"
                );
            }
        }
    }

    #[test]
    fn a_basic_header_of_a_million_placeholders_is_refused_in_one_pass() {
        let s = header_bound("pw", "pw-0123456789");
        let jira = origin("https://jira.example");
        let mut value = b"Basic ".to_vec();
        for _ in 0..1_000_000 {
            value.extend_from_slice(b"{{secret:}}");
        }
        let err = s
            .fill_header("Authorization", &value, &to(&jira, "GET", "/"))
            .unwrap_err();
        assert!(matches!(err, SecretError::MalformedBasic { .. }), "{err}");
    }

    #[test]
    fn a_basic_credential_is_filled_then_encoded_and_its_echo_redacted() {
        use base64::engine::general_purpose::STANDARD;
        let password = "Jira-app-pa55word!";
        let s = Secrets::new(vec![Secret::new(
            "application_password",
            SecretValue::new(password),
            BindingSpec {
                hosts: vec![origin("https://jira.example")],
                place: Some(Place::Header("Authorization".into())),
                ..BindingSpec::default()
            },
        )]);
        let jira = origin("https://jira.example");
        let get = to(&jira, "GET", "/rest/usermanagement/1/event");
        let filled = s
            .fill_header("Authorization", b"Basic roster:{{secret:application_password}}", &get)
            .unwrap();
        let expected = format!("Basic {}", STANDARD.encode(format!("roster:{password}")));
        assert_eq!(String::from_utf8(filled.clone()).unwrap(), expected);
        // The scheme is matched in any case and kept as written.
        let lower = s
            .fill_header("Authorization", b"basic roster:{{secret:application_password}}", &get)
            .unwrap();
        assert_eq!(lower[6..], filled[6..]);
        assert!(lower.starts_with(b"basic "));
        // A server echoing the header (a debug page, an error) shows the placeholder, not the value.
        let echoed = format!("<error><message>bad header {expected}</message></error>");
        let redacted = s.redact_str(&echoed);
        assert!(redacted.contains("{{secret:application_password}}"), "{redacted}");
        assert!(
            !redacted.contains(&STANDARD.encode(format!("roster:{password}"))),
            "{redacted}"
        );
        // The binding still decides where it goes.
        let elsewhere = origin("https://evil.example");
        let err = s
            .fill_header(
                "Authorization",
                b"Basic roster:{{secret:application_password}}",
                &to(&elsewhere, "GET", "/"),
            )
            .unwrap_err();
        assert!(matches!(err, SecretError::Misplaced { .. }), "{err}");
        // Anything but USER:{{secret:NAME}} is refused, naming the problem.
        for (value, problem) in [
            (&b"Basic {{secret:application_password}}"[..], "has no user part"),
            (b"Basic :{{secret:application_password}}", "has an empty user part"),
            (
                b"Basic {{secret:application_password}}:x",
                "puts the secret in the user part",
            ),
            (
                b"Basic roster:pre{{secret:application_password}}",
                "more than the secret",
            ),
            (
                b"Basic roster:{{secret:application_password}}{{secret:application_password}}",
                "more than the secret",
            ),
        ] {
            let err = s.fill_header("Authorization", value, &get).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, SecretError::MalformedBasic { .. }), "{msg}");
            assert!(
                msg.contains(problem)
                    && msg
                        .contains("secret `application_password` is in the Basic credential of header `Authorization`")
                    && msg.contains("Basic USER:{{secret:application_password}}"),
                "{msg}"
            );
            assert!(!msg.contains(password), "{msg}");
        }
        // Other schemes, and a Basic credential without a placeholder, are left as written.
        assert_eq!(
            s.fill_header("Authorization", b"Basic cm9zdGVyOng=", &get).unwrap(),
            b"Basic cm9zdGVyOng=".to_vec()
        );
        assert_eq!(
            s.fill_header("Authorization", b"Bearer {{secret:application_password}}", &get)
                .unwrap(),
            format!("Bearer {password}").into_bytes()
        );
    }

    #[test]
    fn a_json_secret_fills_only_its_top_level_member() {
        let s = secrets();
        let api = origin("https://api.example");
        let login = to(&api, "POST", "/login");
        let body = br#"{ "user": "roster", "password": "{{secret:password}}" }"#;
        let filled = s
            .fill_body(body, Some("application/json; charset=utf-8"), &login)
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&filled).unwrap();
        assert_eq!(v["password"], "pa\"ss/wörd");
        assert!(
            filled.starts_with(b"{ \"user\": \"roster\", "),
            "the body keeps its form"
        );
        for (body, put) in [
            (
                &br#"{"profile": {"password": "{{secret:password}}"}}"#[..],
                "the JSON value at /profile/password",
            ),
            (br#"{"bio": "{{secret:password}}"}"#, "JSON field `bio`"),
            (br#"["{{secret:password}}"]"#, "the JSON value at /0"),
            (br#"{"{{secret:password}}": 1}"#, "a JSON member name"),
            (br#"{"password": {{secret:password}}}"#, "a body that is not valid JSON"),
        ] {
            let err = s
                .fill_body(body, Some("application/json"), &login)
                .unwrap_err()
                .to_string();
            assert!(err.contains(put), "{put}: {err}");
        }
    }

    #[test]
    fn bindings_are_checked_with_advice() {
        let value = |f: fn(&mut BindingSpec)| {
            let mut spec = BindingSpec {
                hosts: vec![origin("https://login.example")],
                place: Some(Place::Form("client_secret".into())),
                path: Some("/t/oauth2/".into()),
                ..BindingSpec::default()
            };
            f(&mut spec);
            spec.check()
        };
        assert!(value(|_| {}).is_ok());
        type Change = fn(&mut BindingSpec);
        let cases: [(Change, &str); 9] = [
            (|s| s.hosts = vec![origin("https://*.okta.com")], "is a wildcard"),
            (|s| s.hosts.clear(), "give `hosts`"),
            (|s| s.place = None, "say where its value goes"),
            (|s| s.path = None, "give `path`"),
            (|s| s.path = Some("/t/../admin".into()), "must be a plain URL path"),
            (|s| s.path = Some("oauth2".into()), "must be a plain URL path"),
            (|s| s.methods = Some(vec![]), "`methods` is empty"),
            (
                |s| s.place = Some(Place::Header("bad header".into())),
                "not a valid header name",
            ),
            (|s| s.audience = Some("https://x".into()), "belong to signing keys"),
        ];
        for (change, expected) in cases {
            let err = value(change).unwrap_err();
            assert!(err.contains(expected), "{expected}: {err}");
        }
        let key = |f: fn(&mut BindingSpec)| {
            let mut spec = BindingSpec {
                kind: SecretKind::SigningKey,
                client_id: Some("app".into()),
                audience: Some("https://login.example/t/oauth2/v2.0/token".into()),
                ..BindingSpec::default()
            };
            f(&mut spec);
            spec.check()
        };
        assert!(matches!(key(|_| {}), Ok(Binding::SigningKey(KeyUse { subject, .. })) if subject == "app"));
        for (change, expected) in [
            (
                (|s| s.hosts = vec![origin("https://login.example")]) as Change,
                "`hosts` does not apply to a signing key",
            ),
            (|s| s.client_id = None, "give `client_id`"),
            (|s| s.audience = None, "give `audience`"),
            (|s| s.audience = Some("login.example".into()), "not an absolute"),
            (
                |s| s.place = Some(Place::Header("Authorization".into())),
                "never leaves the host",
            ),
        ] {
            let err = key(change).unwrap_err();
            assert!(err.contains(expected), "{expected}: {err}");
        }
        // A secret whose binding does not check out loads, and refuses every use with the reason.
        let old = Secrets::new(vec![Secret::new(
            "old",
            SecretValue::new("old-value"),
            BindingSpec {
                hosts: vec![origin("https://login.example")],
                ..BindingSpec::default()
            },
        )]);
        let login = origin("https://login.example");
        let err = old
            .fill_header("Authorization", b"{{secret:old}}", &to(&login, "GET", "/"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot be used: say where its value goes"), "{err}");
    }

    fn google_key(value: &str) -> Secret {
        Secret::new(
            "service_account_key",
            SecretValue::new(value),
            BindingSpec {
                kind: SecretKind::SigningKey,
                client_id: Some("roster@acme-sync.iam.gserviceaccount.com".into()),
                subject: Some("admin@acme.example".into()),
                audience: Some("https://oauth2.googleapis.com/token".into()),
                ..BindingSpec::default()
            },
        )
    }

    const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n";

    #[test]
    fn a_google_key_file_signs_with_the_private_key_it_holds() {
        let file = serde_json::json!({
            "type": "service_account", "project_id": "acme-sync", "private_key_id": "abc123",
            "private_key": PEM, "client_email": "roster@acme-sync.iam.gserviceaccount.com",
            "client_id": "1034", "token_uri": "https://oauth2.googleapis.com/token"
        });
        let secrets = Secrets::new(vec![google_key(&file.to_string())]);
        let (key, bound) = secrets.signing_key("service_account_key").unwrap();
        assert_eq!(key.value.expose(), PEM);
        assert_eq!(bound.subject, "admin@acme.example");
        // A PEM key is used as it is.
        let secrets = Secrets::new(vec![google_key(PEM)]);
        assert_eq!(
            secrets.signing_key("service_account_key").unwrap().0.value.expose(),
            PEM
        );
    }

    #[test]
    fn a_key_file_that_cannot_sign_for_the_binding_says_what_to_fix() {
        for (file, expected) in [
            (
                serde_json::json!({"type": "service_account", "private_key": PEM, "client_email": "other@p.iam.gserviceaccount.com"}),
                "the key file is the service account other@p.iam.gserviceaccount.com's, but the secret's `client_id` is roster@acme-sync.iam.gserviceaccount.com",
            ),
            (
                serde_json::json!({"type": "service_account", "client_email": "roster@acme-sync.iam.gserviceaccount.com"}),
                "has no `private_key`",
            ),
            (
                serde_json::json!({"type": "authorized_user", "private_key": PEM}),
                "of type `authorized_user`",
            ),
            (
                serde_json::json!({"private_key": 7}),
                "not a Google service-account key file",
            ),
        ] {
            let secrets = Secrets::new(vec![google_key(&file.to_string())]);
            let err = secrets.signing_key("service_account_key").unwrap_err().to_string();
            assert!(err.contains(expected), "{file}: {err}");
        }
    }

    fn ldap_secret(dn: &str, hosts: &[&str]) -> Secrets {
        Secrets::new(vec![Secret::new(
            "bind_password",
            SecretValue::new("Bind-pa55word"),
            BindingSpec {
                hosts: hosts.iter().map(|h| origin(h)).collect(),
                place: Some(Place::LdapBind(dn.into())),
                ..BindingSpec::default()
            },
        )])
    }

    #[test]
    fn an_ldap_bind_password_serves_only_its_dn_on_its_servers() {
        let s = ldap_secret("cn=Reader,dc=example,dc=org", &["ldaps://ldap.example"]);
        let ldaps = origin("ldaps://ldap.example");
        for dn in ["cn=Reader,dc=example,dc=org", "CN=reader, DC=Example , dc = org"] {
            assert_eq!(
                s.ldap_bind_password("bind_password", &ldaps, dn),
                Ok("Bind-pa55word"),
                "{dn}"
            );
        }
        let misplaced = |origin: &Origin, dn: &str| {
            let err = s.ldap_bind_password("bind_password", origin, dn).unwrap_err();
            assert!(matches!(err, SecretError::Misplaced { .. }), "{err}");
            err.to_string()
        };
        let err = misplaced(&ldaps, "cn=admin,dc=example,dc=org");
        assert!(
            err.contains("may not go in the LDAP bind of `cn=admin,dc=example,dc=org`")
                && err.contains("bound to the LDAP bind of `cn=Reader,dc=example,dc=org` to ldaps://ldap.example"),
            "{err}"
        );
        misplaced(&origin("ldap://ldap.example"), "cn=Reader,dc=example,dc=org");
        misplaced(&origin("ldaps://evil.example"), "cn=Reader,dc=example,dc=org");
        // It never goes into an HTTP request, and an HTTP secret is no bind password.
        let https = origin("https://ldap.example");
        let err = s
            .fill_header("Authorization", b"{{secret:bind_password}}", &to(&https, "GET", "/"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("is a bind password for LDAP"), "{err}");
        let http_secret = secrets();
        let err = http_secret
            .ldap_bind_password("client_secret", &ldaps, "cn=Reader,dc=example,dc=org")
            .unwrap_err()
            .to_string();
        assert!(err.contains("use = { ldap_bind"), "{err}");
        assert_eq!(
            s.ldap_bind_password("nope", &ldaps, "cn=x"),
            Err(SecretError::Unknown("nope".into()))
        );
        // Its value is redacted like any other.
        assert_eq!(s.redact_str("echo Bind-pa55word"), "echo {{secret:bind_password}}");
    }

    #[test]
    fn ldap_bindings_are_checked_with_advice() {
        let check = |dn: &str, hosts: &[&str], f: fn(&mut BindingSpec)| {
            let mut spec = BindingSpec {
                hosts: hosts.iter().map(|h| origin(h)).collect(),
                place: Some(Place::LdapBind(dn.into())),
                ..BindingSpec::default()
            };
            f(&mut spec);
            spec.check()
        };
        assert!(matches!(
            check("cn=r,dc=x", &["ldap://dir.x"], |_| {}),
            Ok(Binding::LdapBind(LdapUse { dn, .. })) if dn == "cn=r,dc=x"
        ));
        for (err, expected) in [
            (check(" ", &["ldap://dir.x"], |_| {}), "names no DN"),
            (check("cn=r", &[], |_| {}), "give `hosts`"),
            (
                check("cn=r", &["https://dir.x"], |_| {}),
                "not an exact ldap:// or ldaps:// origin",
            ),
            (
                check("cn=r", &["ldap://*.x"], |_| {}),
                "not an exact ldap:// or ldaps:// origin",
            ),
            (
                check("cn=r", &["ldap://dir.x"], |s| s.path = Some("/".into())),
                "`methods` and `path`",
            ),
        ] {
            let err = err.unwrap_err();
            assert!(err.contains(expected), "{expected}: {err}");
        }
        // An HTTP secret is not bound to an LDAP server.
        let err = BindingSpec {
            hosts: vec![origin("ldaps://dir.x")],
            place: Some(Place::Header("Authorization".into())),
            ..BindingSpec::default()
        }
        .check()
        .unwrap_err();
        assert!(err.contains("is an LDAP server"), "{err}");
        // As configuration writes it.
        let stored = serde_json::json!({
            "name": "bind_password", "value": "v4lue",
            "hosts": ["ldaps://dir.x"], "use": {"ldap_bind": "cn=r,dc=x"}
        });
        let s: Secret = serde_json::from_value(stored).unwrap();
        assert!(matches!(&s.binding, Ok(Binding::LdapBind(_))), "{:?}", s.binding);
    }

    #[test]
    fn secrets_deserialise_from_the_stored_form() {
        let stored = serde_json::json!({
            "name": "client_secret", "value": "v4lue", "kind": "value",
            "hosts": ["https://login.example"], "use": {"form": "client_secret"}, "path": "/t/"
        });
        let s: Secret = serde_json::from_value(stored).unwrap();
        assert!(
            matches!(&s.binding, Ok(Binding::Value(ValueUse { path, place: Place::Form(f), .. })) if path == "/t/" && f == "client_secret"),
            "{:?}",
            s.binding
        );
        let typo = serde_json::json!({"name": "x", "value": "v", "hots": []});
        assert!(
            serde_json::from_value::<Secret>(typo)
                .unwrap_err()
                .to_string()
                .contains("unknown field `hots`")
        );
    }

    #[test]
    fn redacts_the_common_encodings_of_a_value() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE};
        let s = secrets();
        let p = "{{secret:client_secret}}";
        let forms = [
            VALUE.to_string(),
            "s3cr3t%2Fvalue%2Bx+%C3%BC".into(),
            "s3cr3t%2fvalue%2bx%20%c3%bc".into(),
            "s3cr3t%2Fvalue%2Bx%20%C3%BC".into(),
            "s3cr3t\\/value+x ü".into(),
            "s3cr3t/value+x \\u00fc".into(),
            "s3cr3t/value+x \\u00FC".into(),
        ];
        for form in forms {
            let echoed = format!("got {form} back");
            assert_eq!(s.redact_str(&echoed), format!("got {p} back"), "{form}");
        }
        let json = serde_json::to_string("pa\"ss/wörd").unwrap();
        assert_eq!(s.redact_str(&json), "\"{{secret:password}}\"");
        // Base64 at every offset, standard and URL-safe, e.g. inside a Basic credential.
        for prefix in ["", "u:", "us:", "use:"] {
            for b64 in [
                STANDARD.encode(format!("{prefix}{VALUE}")),
                URL_SAFE.encode(format!("{prefix}{VALUE}")),
            ] {
                let out = s.redact_str(&format!("Basic {b64}"));
                assert!(out.contains(p), "{prefix}: {b64} -> {out}");
                let left = out.replace(p, "");
                assert!(
                    left.len() <= "Basic ".len() + 12,
                    "{prefix}: only the edges remain: {out}"
                );
            }
        }
        assert_eq!(s.redact_str("nothing here"), "nothing here");
    }

    #[test]
    fn debug_never_prints_values() {
        let shown = format!("{:?}", secrets());
        assert!(!shown.contains("s3cr3t") && !shown.contains("tok-0123"), "{shown}");
    }
}

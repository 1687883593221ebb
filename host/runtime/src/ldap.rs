//! The host side of a connector's `ldap` import: read-only paged searches over connections the
//! host opens, secures and binds itself.
//!
//! Order of checks for every call: the URL's origin against the allowlist → the transport
//! against the scheme (TLS unless `allow_plain_ldap`) → the filter's length and depth, the
//! attributes and the base DN → the page size and controls → the bind password, only from a
//! secret bound to that DN and origin, never empty → the request budget → (when no
//! connection is open) the name resolved by the host, every address vetted by the
//! private-address rule, a TCP connection to a vetted address handed to the LDAP client (the
//! name is used only for TLS), StartTLS or LDAPS, the bind → one page → the page's size cap →
//! secret values redacted from what goes back.
//!
//! The LDAP client parses the server's bytes in the host. Its connection task, StartTLS with
//! the bind, and each search run in tasks of their own, so a panic in the client (malformed BER,
//! an unexpected result) fails the call and closes that connection; entries are decoded here
//! without panicking. What the client parses recursively from a plugin (filter, attributes,
//! base DN) is capped before it is called: a stack overflow cannot be caught.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::FutureExt as _;
use ldap3::asn1::{StructureTag, parse_tag};
use ldap3::controls::RawControl;
use ldap3::{LdapConnAsync, LdapConnSettings, LdapError as ClientError, StdStream};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use tokio::time::Instant;

use crate::capability::{Denied, Origin, Scheme};
use crate::limits::Limits;
use crate::net::SourceAccess;

/// The largest page a plugin may ask for (Active Directory caps pages at 1,000 anyway).
pub const MAX_PAGE_SIZE: u32 = 5000;
/// Connections one source may hold open at once; opening one more closes the least recently used.
const MAX_SESSIONS: usize = 4;
/// The paged-results control (RFC 2696): driven by `page-size` and `cookie`, never given as is.
const PAGED_RESULTS_OID: &str = "1.2.840.113556.1.4.319";
/// Request controls a plugin may send: read-only ones of Active Directory.
const ALLOWED_CONTROLS: &[(&str, &str)] = &[
    ("1.2.840.113556.1.4.417", "show deleted objects"),
    ("1.2.840.113556.1.4.1948", "range retrieval without errors"),
    ("1.2.840.113556.1.4.529", "extended DN"),
    ("1.2.840.113556.1.4.801", "security descriptor flags"),
];
/// Bytes in front of the server's cookie: the generation of the connection that issued it.
const GENERATION_BYTES: usize = 8;
/// The longest filter a plugin may send: the client parses and encodes a filter recursively.
pub const MAX_FILTER_BYTES: usize = 16 * 1024;
/// The deepest nesting of parentheses in a filter; the client's recursion would overflow the
/// host's stack on a deep enough one, which no panic guard can catch.
pub const MAX_FILTER_DEPTH: usize = 64;
/// The most attribute descriptions one search may ask for.
pub const MAX_ATTRIBUTES: usize = 256;
/// The longest attribute description (with options) one search may ask for.
pub const MAX_ATTRIBUTE_BYTES: usize = 256;
/// The longest base DN one search may give.
pub const MAX_BASE_DN_BYTES: usize = 4 * 1024;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TLS from the first byte (`ldaps://`).
    Ldaps,
    /// `ldap://` upgraded by StartTLS before the bind.
    StartTls,
    /// No TLS; needs the source's `allow_plain_ldap`.
    Plain,
}

/// Where to connect and as whom.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Connection {
    /// `ldap://host[:port]` or `ldaps://host[:port]`.
    pub url: String,
    /// TLS from the start, StartTLS, or none.
    pub transport: Transport,
    /// PEM certificates trusted for this server instead of the system's roots.
    pub ca_certificates: Option<String>,
    /// The DN to bind as; `None` binds anonymously.
    pub bind_dn: Option<String>,
    /// The secret holding the bind password.
    pub password_secret: Option<String>,
}

/// Where a person's password is checked: a simple bind as `dn` on a connection of its own
/// (WIT 0.1.2 `ldap-bind`, named by a connector that exports `credentials`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindAs {
    /// `ldap://host[:port]` or `ldaps://host[:port]`; its origin must be in the source's
    /// `allow_hosts`.
    pub url: String,
    /// TLS from the start, StartTLS, or none (`allow_plain_ldap`).
    pub transport: Transport,
    /// PEM certificates trusted for this server instead of the system's roots.
    pub ca_certificates: Option<String>,
    /// The person's DN.
    pub dn: String,
}

/// What the directory said of a password ([`SourceAccess::verify_password`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordVerdict {
    /// The bind succeeded.
    Accepted,
    /// Invalid credentials (result 49), or a password Roster never sends (empty, too long).
    Refused,
    /// The password is right but expired or must be changed first (Active Directory's
    /// `data 532` / `data 773` of result 49).
    Expired,
    /// The account is disabled, expired or locked out (Active Directory's `data 533`,
    /// `data 701`, `data 775` of result 49).
    Inactive,
}

/// The longest password sent to a directory; a longer one is refused without a bind.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// How deep a search goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The base entry only.
    Base,
    /// The base's children.
    OneLevel,
    /// The base and everything below it.
    Subtree,
}

/// A request control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    /// Its OID.
    pub oid: String,
    /// Whether the server must refuse the search when it does not know the control.
    pub critical: bool,
    /// Its BER value.
    pub value: Option<Vec<u8>>,
}

/// One page of a search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    /// The base DN.
    pub base: String,
    /// How deep.
    pub scope: Scope,
    /// An RFC 4515 filter.
    pub filter: String,
    /// Attribute descriptions to return.
    pub attributes: Vec<String>,
    /// Entries per page (paged-results control); 0 searches unpaged.
    pub page_size: u32,
    /// The previous page's cookie, as the host handed it out.
    pub cookie: Option<Vec<u8>>,
    /// Further request controls (only the read-only ones in `ALLOWED_CONTROLS`).
    pub controls: Vec<Control>,
}

/// An attribute of an entry, values as raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The description as the server returned it.
    pub name: String,
    /// Its values.
    pub values: Vec<Vec<u8>>,
}

/// One entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its DN.
    pub dn: String,
    /// Its attributes.
    pub attributes: Vec<Attribute>,
}

/// What one page returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPage {
    /// The entries.
    pub entries: Vec<Entry>,
    /// Referrals the server sent (not followed).
    pub referrals: Vec<String>,
    /// The cookie of the next page; `None` when the search is complete.
    pub cookie: Option<Vec<u8>>,
    /// 0, or 3 / 4 / 11 when the server stopped early (time, size, administrative limit).
    pub result_code: u32,
    /// The server's diagnostic message.
    pub message: String,
}

/// Why a search did not run; every message names what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LdapFailure {
    /// The source's settings (or the plugin's request) must change.
    #[error("{0}")]
    Config(String),
    /// The server refused the credentials or the access.
    #[error("{0}")]
    Auth(String),
    /// Worth trying again later.
    #[error("{0}")]
    Transient(String),
    /// Anything else.
    #[error("{0}")]
    Fatal(String),
    /// The cookie belongs to a connection that has since closed.
    #[error("the paged-results cookie belongs to an LDAP connection that has since closed; start the search again")]
    CookieExpired,
}

impl LdapFailure {
    fn map(self, f: impl FnOnce(String) -> String) -> LdapFailure {
        match self {
            LdapFailure::Config(m) => LdapFailure::Config(f(m)),
            LdapFailure::Auth(m) => LdapFailure::Auth(f(m)),
            LdapFailure::Transient(m) => LdapFailure::Transient(f(m)),
            LdapFailure::Fatal(m) => LdapFailure::Fatal(f(m)),
            LdapFailure::CookieExpired => LdapFailure::CookieExpired,
        }
    }
}

fn config(d: Denied) -> LdapFailure {
    LdapFailure::Config(d.to_string())
}

/// Identifies a connection: calls with the same connection record share it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SessionKey {
    origin: Origin,
    transport: Transport,
    ca_certificates: Option<String>,
    bind_dn: Option<String>,
    password_secret: Option<String>,
}

/// How a connection's task ended, when it did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Ended {
    #[default]
    Running,
    /// Closed by either side, or on an I/O error.
    Closed,
    /// The client could not read what the server sent (it panicked on malformed BER).
    Unreadable,
}

/// One open, bound connection.
struct Session {
    key: SessionKey,
    ldap: ldap3::Ldap,
    /// Unique in the process: a cookie issued on another connection never matches.
    generation: u64,
    ended: Arc<Mutex<Ended>>,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Session {
    fn alive(&mut self) -> bool {
        !self.ldap.is_closed() && !self.driver.is_finished()
    }
}

/// The LDAP connections of one source, kept open across calls and jobs.
#[derive(Default)]
pub(crate) struct LdapSessions {
    /// Least recently used first.
    open: tokio::sync::Mutex<Vec<Session>>,
}

impl std::fmt::Debug for LdapSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapSessions").finish_non_exhaustive()
    }
}

impl LdapSessions {
    /// Closes the connection of `key` if it is still the one of `generation`.
    async fn forget(&self, key: &SessionKey, generation: u64) {
        self.open
            .lock()
            .await
            .retain(|s| !(s.key == *key && s.generation == generation));
    }
}

static GENERATION: AtomicU64 = AtomicU64::new(1);

/// The bind a connection makes: none, or a DN with the password the host looked up.
enum Bind {
    Anonymous,
    Simple { dn: String, password: String },
}

/// Aborts a spawned task when its waiter gives up (a timeout drops the waiting future).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl SourceAccess {
    /// Runs one page of a read-only search for this source's connector, over the connection
    /// `conn` names (opened, secured and bound by the host on first use). Counts one request
    /// and waits for the source's budget; every message has the source's secret values
    /// redacted.
    pub async fn ldap_search(
        &self,
        conn: &Connection,
        req: SearchRequest,
        limits: &Limits,
        deadline: Instant,
    ) -> Result<SearchPage, LdapFailure> {
        let secrets = self.secrets();
        match self.ldap_search_unredacted(conn, req, limits, deadline).await {
            Ok(mut page) => {
                page.message = secrets.redact_str(&page.message);
                page.referrals = page.referrals.iter().map(|r| secrets.redact_str(r)).collect();
                for e in &mut page.entries {
                    e.dn = secrets.redact_str(&e.dn);
                    for a in &mut e.attributes {
                        for v in &mut a.values {
                            *v = secrets.redact(std::mem::take(v));
                        }
                    }
                }
                Ok(page)
            }
            Err(f) => Err(f.map(|m| secrets.redact_str(&m))),
        }
    }

    /// Checks `password` by a simple bind as `bind.dn` on a connection opened for this check
    /// alone — never one of the source's search connections, never kept: closed after the
    /// answer. The same rules as searches hold: the URL's origin in the allowlist, TLS unless
    /// `allow_plain_ldap`, the CA, the host's name resolution with every address vetted, the
    /// request timeout and the source's request budget. An empty password is refused before
    /// anything is sent: LDAP takes a DN with an empty password for an unauthenticated bind,
    /// which succeeds (RFC 4513 §5.1.2). The password is never logged nor put in a message.
    pub async fn verify_password(
        &self,
        bind: &BindAs,
        password: &str,
        limits: &Limits,
        deadline: Instant,
    ) -> Result<PasswordVerdict, LdapFailure> {
        if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
            return Ok(PasswordVerdict::Refused);
        }
        let secrets = self.secrets();
        self.verify_password_unredacted(bind, password, limits, deadline)
            .await
            .map_err(|f| f.map(|m| secrets.redact_str(&m)))
    }

    async fn verify_password_unredacted(
        &self,
        bind: &BindAs,
        password: &str,
        limits: &Limits,
        deadline: Instant,
    ) -> Result<PasswordVerdict, LdapFailure> {
        let origin = self.policy.check_ldap_url(&bind.url).map_err(config)?;
        check_transport(&origin, bind.transport, self.policy.allow_plain_ldap)?;
        if bind.dn.trim().is_empty() || bind.dn.len() > MAX_BASE_DN_BYTES {
            return Err(LdapFailure::Config(format!(
                "the connector named a DN of {} bytes to check a password against on {origin}; a DN is 1 to {MAX_BASE_DN_BYTES} bytes",
                bind.dn.len()
            )));
        }
        let key = SessionKey {
            origin: origin.clone(),
            transport: bind.transport,
            ca_certificates: bind.ca_certificates.clone(),
            bind_dn: Some(bind.dn.clone()),
            password_secret: None,
        };
        let _waited = self.budget.acquire().await;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(LdapFailure::Transient(format!(
                "the call's deadline passed before the password could be checked on {origin}"
            )));
        }
        let timeout = limits.request_timeout().min(left);
        self.sent.fetch_add(1, Ordering::Relaxed);
        let check = async {
            let (stream, tls) = dial(self, &key).await?;
            let mut task = AbortOnDrop(tokio::spawn(secure_and_check(
                stream,
                key.clone(),
                tls,
                password.to_string(),
            )));
            match (&mut task.0).await {
                Ok(verdict) => verdict,
                Err(join) => Err(LdapFailure::Fatal(format!(
                    "the LDAP client could not read the answer of {origin} to the password check ({}); the connection was closed",
                    if join.is_panic() {
                        "malformed or unexpected result"
                    } else {
                        "cancelled"
                    }
                ))),
            }
        };
        match tokio::time::timeout(timeout, check).await {
            Ok(verdict) => verdict,
            Err(_) => Err(LdapFailure::Transient(format!(
                "checking a password on {origin} took longer than {timeout:?} (`request_timeout_secs`)"
            ))),
        }
    }

    async fn ldap_search_unredacted(
        &self,
        conn: &Connection,
        req: SearchRequest,
        limits: &Limits,
        deadline: Instant,
    ) -> Result<SearchPage, LdapFailure> {
        let origin = self.policy.check_ldap_url(&conn.url).map_err(config)?;
        check_transport(&origin, conn.transport, self.policy.allow_plain_ldap)?;
        check_request(&req)?;
        let controls = request_controls(&req)?;
        let bind = match (&conn.bind_dn, &conn.password_secret) {
            (None, None) => Bind::Anonymous,
            (Some(dn), Some(name)) => {
                let password = self
                    .secrets()
                    .ldap_bind_password(name, &origin, dn)
                    .map_err(|e| LdapFailure::Config(e.to_string()))?;
                // RFC 4513 §5.1.2: a DN with an empty password is an unauthenticated bind,
                // which Active Directory accepts as anonymous and OpenLDAP refuses with 53.
                if password.is_empty() {
                    return Err(LdapFailure::Config(format!(
                        "secret `{name}` (the bind password of `{dn}`) is empty; an empty password makes the bind an unauthenticated (anonymous) one, so Roster does not send it: give the secret its value (an environment variable that is set but empty counts as empty)"
                    )));
                }
                Bind::Simple {
                    dn: dn.clone(),
                    password: password.to_string(),
                }
            }
            (Some(dn), None) => {
                return Err(LdapFailure::Config(format!(
                    "the connection to {origin} names bind DN `{dn}` but no password secret; a bind without a password is an anonymous one that many servers accept silently: name the secret holding its password"
                )));
            }
            (None, Some(name)) => {
                return Err(LdapFailure::Config(format!(
                    "the connection to {origin} names password secret `{name}` but no bind DN; give the DN the password belongs to"
                )));
            }
        };
        let (cookie_generation, server_cookie) = match &req.cookie {
            None => (None, Vec::new()),
            Some(c) if c.len() < GENERATION_BYTES => return Err(LdapFailure::CookieExpired),
            Some(c) => {
                let (generation, rest) = c.split_at(GENERATION_BYTES);
                let generation = u64::from_be_bytes(generation.try_into().expect("eight bytes"));
                (Some(generation), rest.to_vec())
            }
        };
        let key = SessionKey {
            origin: origin.clone(),
            transport: conn.transport,
            ca_certificates: conn.ca_certificates.clone(),
            bind_dn: conn.bind_dn.clone(),
            password_secret: conn.password_secret.clone(),
        };

        let waited = self.budget.acquire().await;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(LdapFailure::Transient(format!(
                "the call's deadline passed before the search on {origin} could be sent"
            )));
        }
        let timeout = limits.request_timeout().min(left);

        let (ldap, generation, ended) = {
            let mut open = self.ldap.open.lock().await;
            let found = open.iter().position(|s| s.key == key);
            let live = match found {
                Some(i) if open[i].alive() => {
                    let s = open.remove(i);
                    Some(s)
                }
                Some(i) => {
                    open.remove(i);
                    None
                }
                None => None,
            };
            let session = match (live, cookie_generation) {
                (Some(s), Some(g)) if s.generation != g => {
                    open.push(s);
                    return Err(LdapFailure::CookieExpired);
                }
                (Some(s), _) => s,
                (None, Some(_)) => return Err(LdapFailure::CookieExpired),
                (None, None) => {
                    let connecting = connect(self, &key, bind);
                    match tokio::time::timeout(timeout, connecting).await {
                        Ok(s) => s?,
                        Err(_) => {
                            return Err(LdapFailure::Transient(format!(
                                "connecting and binding to {origin} took longer than {timeout:?} (`request_timeout_secs`)"
                            )));
                        }
                    }
                }
            };
            let handle = (session.ldap.clone(), session.generation, session.ended.clone());
            open.push(session);
            if open.len() > MAX_SESSIONS {
                open.remove(0);
            }
            handle
        };

        // Connecting took part of the time; the search gets what is left of the call's.
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(LdapFailure::Transient(format!(
                "the call's deadline passed while connecting to {origin}"
            )));
        }
        let timeout = limits.request_timeout().min(left);
        self.sent.fetch_add(1, Ordering::Relaxed);
        let page_size = req.page_size;
        let base = req.base.clone();
        let cap = limits.max_response_bytes;
        let mut task = tokio::spawn(run_search(ldap, req, controls, server_cookie, timeout, cap));
        let outcome = match tokio::time::timeout(timeout, &mut task).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(join)) => {
                self.ldap.forget(&key, generation).await;
                return Err(LdapFailure::Fatal(format!(
                    "the LDAP client failed on an answer from {origin} it could not read ({}); the connection was closed",
                    if join.is_panic() { "malformed BER" } else { "cancelled" }
                )));
            }
            Err(_) => {
                task.abort();
                self.ldap.forget(&key, generation).await;
                return Err(LdapFailure::Transient(format!(
                    "the search under `{base}` on {origin} took longer than {timeout:?} (`request_timeout_secs`); the connection was closed"
                )));
            }
        };
        tracing::debug!(target: "roster::ldap", source = %self.source(), %origin, base = %base, page_size, budget_wait_ms = waited.as_millis() as u64, "search");
        let done = match outcome {
            Outcome::Done(done) => done,
            Outcome::TooBig => {
                self.ldap.forget(&key, generation).await;
                return Err(LdapFailure::Config(format!(
                    "a page of the search under `{base}` from {origin} is larger than this source's cap of {cap} bytes (`max_response_bytes`); ask for fewer entries per page or raise the cap"
                )));
            }
            Outcome::Unreadable(what) => {
                self.ldap.forget(&key, generation).await;
                return Err(LdapFailure::Fatal(format!(
                    "{origin} sent {what} Roster cannot read; the connection was closed"
                )));
            }
            Outcome::Client(e) => {
                let unreadable = how_it_ended(&ended).await == Ended::Unreadable;
                self.ldap.forget(&key, generation).await;
                return Err(search_error(e, &origin, &base, unreadable));
            }
        };
        let Done {
            entries,
            referrals,
            result,
            cookie,
        } = done;
        match result.rc {
            0 | 3 | 4 | 11 => {
                let cookie = match cookie {
                    Ok(Some(c)) if !c.is_empty() => {
                        let mut wrapped = generation.to_be_bytes().to_vec();
                        wrapped.extend_from_slice(&c);
                        Some(wrapped)
                    }
                    Ok(_) => None,
                    Err(()) => {
                        self.ldap.forget(&key, generation).await;
                        return Err(LdapFailure::Fatal(format!(
                            "{origin} sent a paged-results control Roster cannot read; the connection was closed"
                        )));
                    }
                };
                Ok(SearchPage {
                    entries,
                    referrals,
                    cookie,
                    result_code: result.rc,
                    message: result.text,
                })
            }
            rc => Err(result_failure(
                rc,
                &result.text,
                &result.refs,
                &origin,
                &base,
                cookie_generation.is_some(),
            )),
        }
    }
}

/// Whether `transport` fits the URL's scheme and the source's policy.
fn check_transport(origin: &Origin, transport: Transport, allow_plain: bool) -> Result<(), LdapFailure> {
    match (origin.scheme(), transport) {
        (Scheme::Ldaps, Transport::Ldaps) | (Scheme::Ldap, Transport::StartTls) => Ok(()),
        (Scheme::Ldap, Transport::Plain) if allow_plain => Ok(()),
        (Scheme::Ldap, Transport::Plain) => Err(config(Denied::PlainLdap(origin.to_string()))),
        (Scheme::Ldaps, other) => Err(LdapFailure::Config(format!(
            "{origin} is LDAP over TLS from the first byte, which contradicts transport `{}`; use an ldap:// URL for {}",
            transport_name(other),
            if other == Transport::StartTls {
                "StartTLS"
            } else {
                "plain LDAP"
            }
        ))),
        (_, _) => Err(LdapFailure::Config(format!(
            "{origin} is plain LDAP upgraded by StartTLS, which contradicts transport `ldaps`; use an ldaps:// URL for LDAPS"
        ))),
    }
}

fn transport_name(t: Transport) -> &'static str {
    match t {
        Transport::Ldaps => "ldaps",
        Transport::StartTls => "start-tls",
        Transport::Plain => "plain",
    }
}

/// Whether the request is small and shallow enough for the client, which parses and encodes it
/// recursively in the host: a stack overflow aborts the process, so it is refused before.
fn check_request(req: &SearchRequest) -> Result<(), LdapFailure> {
    if req.filter.len() > MAX_FILTER_BYTES {
        return Err(LdapFailure::Config(format!(
            "the filter of the search under `{}` is {} bytes long; at most {MAX_FILTER_BYTES} bytes are allowed: narrow it, or split the search",
            truncated(&req.base),
            req.filter.len()
        )));
    }
    let depth = filter_depth(&req.filter);
    if depth > MAX_FILTER_DEPTH {
        return Err(LdapFailure::Config(format!(
            "the filter of the search under `{}` nests parentheses {depth} deep; at most {MAX_FILTER_DEPTH} levels are allowed",
            truncated(&req.base)
        )));
    }
    if req.base.len() > MAX_BASE_DN_BYTES {
        return Err(LdapFailure::Config(format!(
            "the base DN `{}…` is {} bytes long; at most {MAX_BASE_DN_BYTES} bytes are allowed",
            truncated(&req.base),
            req.base.len()
        )));
    }
    if req.attributes.len() > MAX_ATTRIBUTES {
        return Err(LdapFailure::Config(format!(
            "the search under `{}` asks for {} attributes; at most {MAX_ATTRIBUTES} are allowed (`extra_attributes`)",
            truncated(&req.base),
            req.attributes.len()
        )));
    }
    if let Some(a) = req.attributes.iter().find(|a| a.len() > MAX_ATTRIBUTE_BYTES) {
        return Err(LdapFailure::Config(format!(
            "the attribute description `{}…` is {} bytes long; at most {MAX_ATTRIBUTE_BYTES} bytes are allowed (`extra_attributes`)",
            truncated(a),
            a.len()
        )));
    }
    Ok(())
}

/// The first 100 characters, for a message naming something a plugin sent.
fn truncated(s: &str) -> String {
    s.chars().take(100).collect()
}

/// How deep the parentheses of a filter nest; an escaped character never counts.
fn filter_depth(filter: &str) -> usize {
    let (mut depth, mut deepest, mut escaped) = (0usize, 0usize, false);
    for b in filter.bytes() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The request controls to send besides paged results, or the first one that may not be sent.
fn request_controls(req: &SearchRequest) -> Result<Vec<RawControl>, LdapFailure> {
    if req.page_size > MAX_PAGE_SIZE {
        return Err(LdapFailure::Config(format!(
            "a page of {} entries was asked for; at most {MAX_PAGE_SIZE} entries per page are allowed (Active Directory serves at most 1,000)",
            req.page_size
        )));
    }
    if req.page_size == 0 && req.cookie.is_some() {
        return Err(LdapFailure::Config(
            "a cookie continues a paged search: give the page size with it".into(),
        ));
    }
    let mut out = Vec::new();
    for c in &req.controls {
        if c.oid == PAGED_RESULTS_OID {
            return Err(LdapFailure::Config(format!(
                "control {PAGED_RESULTS_OID} (paged results) is driven by the page size and cookie of the search, not given as a control"
            )));
        }
        if !ALLOWED_CONTROLS.iter().any(|(oid, _)| *oid == c.oid) {
            let allowed: Vec<String> = ALLOWED_CONTROLS.iter().map(|(o, n)| format!("{o} ({n})")).collect();
            return Err(LdapFailure::Config(format!(
                "control {} may not be sent: Roster sends only read-only controls it knows ({})",
                c.oid.chars().take(100).collect::<String>(),
                allowed.join(", ")
            )));
        }
        out.push(RawControl {
            ctype: c.oid.clone(),
            crit: c.critical,
            val: c.value.clone(),
        });
    }
    Ok(out)
}

/// Opens, secures and binds a connection for `key`: the host resolves the name, vets every
/// address and connects to one itself, so the client never looks a name up. StartTLS and the
/// bind run in a task of their own: the client parses their answers with `expect`s, and a panic
/// there must fail this call, not the run that made it.
async fn connect(access: &SourceAccess, key: &SessionKey, bind: Bind) -> Result<Session, LdapFailure> {
    let origin = &key.origin;
    let (stream, tls) = dial(access, key).await?;
    let mut task = AbortOnDrop(tokio::spawn(secure_and_bind(stream, key.clone(), tls, bind)));
    match (&mut task.0).await {
        Ok(session) => session,
        Err(join) => Err(LdapFailure::Fatal(format!(
            "the LDAP client could not read the answer of {origin} to {} ({}); the connection was closed",
            match key.transport {
                Transport::StartTls => "StartTLS or the bind",
                _ => "the bind",
            },
            if join.is_panic() {
                "malformed or unexpected result"
            } else {
                "cancelled"
            }
        ))),
    }
}

/// A TCP connection to `key`'s server, and the TLS configuration to protect it with: the host
/// resolves the name and vets every address (the private-address rule) before connecting.
async fn dial(
    access: &SourceAccess,
    key: &SessionKey,
) -> Result<(std::net::TcpStream, Option<Arc<rustls::ClientConfig>>), LdapFailure> {
    let origin = &key.origin;
    let host = origin.host().trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, origin.port()))
        .await
        .map_err(|e| LdapFailure::Transient(format!("cannot resolve {host} for {origin}: {e}")))?
        .collect();
    for a in &addrs {
        access.policy.check_addr(origin.host(), a.ip()).map_err(config)?;
    }
    let mut last = None;
    let mut stream = None;
    for a in &addrs {
        match tokio::net::TcpStream::connect(a).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let Some(stream) = stream else {
        return Err(LdapFailure::Transient(format!(
            "cannot connect to {origin}: {}",
            last.map_or("the name resolved to no address".to_string(), |e| e.to_string())
        )));
    };
    let stream = stream
        .into_std()
        .map_err(|e| LdapFailure::Transient(format!("cannot connect to {origin}: {e}")))?;
    let tls = match key.transport {
        Transport::Plain => None,
        _ => Some(tls_config(key.ca_certificates.as_deref(), origin)?),
    };
    Ok((stream, tls))
}

/// StartTLS or LDAPS over the host's stream, then a bind as the person with their password, in
/// a task of its own like every parse of the server's answers. The connection is unbound and
/// closed whatever the answer: it serves this check only.
async fn secure_and_check(
    stream: std::net::TcpStream,
    key: SessionKey,
    tls: Option<Arc<rustls::ClientConfig>>,
    password: String,
) -> Result<PasswordVerdict, LdapFailure> {
    let origin = &key.origin;
    let dn = key.bind_dn.clone().unwrap_or_default();
    let session = secure(stream, &key, tls).await?;
    let mut ldap = session.ldap.clone();
    let result = match ldap.simple_bind(&dn, &password).await {
        Ok(result) => result,
        Err(e) if how_it_ended(&session.ended).await == Ended::Unreadable => {
            return Err(LdapFailure::Fatal(format!(
                "the LDAP client could not read the answer of {origin} to the password check (malformed BER; {e}); the connection was closed"
            )));
        }
        Err(e) => {
            return Err(LdapFailure::Transient(format!(
                "the password check on {origin} failed: {e}"
            )));
        }
    };
    drop(password);
    let _ = tokio::time::timeout(Duration::from_secs(1), ldap.unbind()).await;
    drop(session);
    match result.rc {
        0 => Ok(PasswordVerdict::Accepted),
        49 => Ok(ad_bind_refusal(&result.text)),
        8 | 13 => Err(LdapFailure::Config(format!(
            "the LDAP server {origin} wants a stronger protection for binds (result {}{}): use ldaps:// or StartTLS",
            result.rc,
            diagnostic(&result.text)
        ))),
        // OpenLDAP answers 53 to a simple bind its policy disallows for this entry.
        53 => Ok(PasswordVerdict::Refused),
        rc => Err(result_failure(rc, &result.text, &result.refs, origin, &dn, false)),
    }
}

/// What an invalid-credentials answer means: Active Directory says why in the diagnostic
/// (`…AcceptSecurityContext error, data 532, v…`); any other server, a wrong password.
pub fn ad_bind_refusal(text: &str) -> PasswordVerdict {
    let text = text.to_ascii_lowercase();
    let data = text
        .split_once("data ")
        .map(|(_, rest)| rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect::<String>());
    match data.as_deref() {
        Some("532" | "773") => PasswordVerdict::Expired,
        Some("533" | "701" | "775") => PasswordVerdict::Inactive,
        _ => PasswordVerdict::Refused,
    }
}

/// StartTLS or LDAPS over the host's stream, then the bind; run in a task of its own.
async fn secure_and_bind(
    stream: std::net::TcpStream,
    key: SessionKey,
    tls: Option<Arc<rustls::ClientConfig>>,
    bind: Bind,
) -> Result<Session, LdapFailure> {
    let origin = &key.origin;
    let session = secure(stream, &key, tls).await?;
    let mut ldap = session.ldap.clone();
    if let Bind::Simple { dn, password } = &bind {
        let result = match ldap.simple_bind(dn, password).await {
            Ok(result) => result,
            Err(e) if how_it_ended(&session.ended).await == Ended::Unreadable => {
                return Err(LdapFailure::Fatal(format!(
                    "the LDAP client could not read the answer of {origin} to the bind (malformed BER; {e}); the connection was closed"
                )));
            }
            Err(e) => return Err(LdapFailure::Transient(format!("the bind to {origin} failed: {e}"))),
        };
        match result.rc {
            0 => {}
            49 => {
                return Err(LdapFailure::Auth(format!(
                    "the LDAP server {origin} refused the bind of DN `{dn}` (invalid credentials): check the secret holding its password and the DN{}",
                    diagnostic(&result.text)
                )));
            }
            8 | 13 => {
                return Err(LdapFailure::Config(format!(
                    "the LDAP server {origin} wants a stronger protection for the bind of `{dn}` (result {}{}): use ldaps:// or StartTLS",
                    result.rc,
                    diagnostic(&result.text)
                )));
            }
            // Not a busy server: OpenLDAP answers so to an unauthenticated bind or a simple bind
            // its policy disallows, and trying again would only repeat it.
            53 => {
                return Err(LdapFailure::Config(format!(
                    "the LDAP server {origin} refused the bind of `{dn}`: unwilling to perform (result 53){}; check that the secret holds the DN's password and that the server allows simple binds for this DN",
                    diagnostic(&result.text)
                )));
            }
            rc => return Err(result_failure(rc, &result.text, &result.refs, origin, dn, false)),
        }
    }
    Ok(session)
}

/// StartTLS or LDAPS over the host's stream, with the task that drives the connection; no bind.
async fn secure(
    stream: std::net::TcpStream,
    key: &SessionKey,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Session, LdapFailure> {
    let origin = &key.origin;
    let host = origin.host().trim_start_matches('[').trim_end_matches(']');
    let mut settings = LdapConnSettings::new().set_std_stream(StdStream::Tcp(stream));
    if let Some(tls) = tls {
        settings = settings
            .set_starttls(key.transport == Transport::StartTls)
            .set_config(tls);
    }
    let url = format!("{}://{}:{}", origin.scheme().as_str(), origin.host(), origin.port());
    let (conn, ldap) = LdapConnAsync::with_settings(settings, &url)
        .await
        .map_err(|e| connect_error(&e, origin, host, key.transport))?;
    let ended = Arc::new(Mutex::new(Ended::Running));
    let driver = {
        let ended = ended.clone();
        let origin = origin.to_string();
        tokio::spawn(async move {
            let how = match AssertUnwindSafe(conn.drive()).catch_unwind().await {
                Ok(Ok(())) => Ended::Closed,
                Ok(Err(e)) => {
                    tracing::debug!(target: "roster::ldap", %origin, "LDAP connection closed: {e}");
                    Ended::Closed
                }
                Err(_) => {
                    tracing::warn!(target: "roster::ldap", %origin, "the LDAP client could not read an answer (malformed BER); connection closed");
                    Ended::Unreadable
                }
            };
            *ended.lock().unwrap_or_else(|p| p.into_inner()) = how;
        })
    };
    Ok(Session {
        key: key.clone(),
        ldap,
        generation: GENERATION.fetch_add(1, Ordering::Relaxed),
        ended,
        driver,
    })
}

/// How the connection's task ended. A search sees its connection close while that task is
/// still unwinding, so this waits a moment for the task to say why.
async fn how_it_ended(ended: &Mutex<Ended>) -> Ended {
    for _ in 0..20 {
        let now = *ended.lock().unwrap_or_else(|p| p.into_inner());
        if now != Ended::Running {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ended::Running
}

fn diagnostic(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!("; the server said: {}", text.chars().take(300).collect::<String>())
    }
}

/// The roots a connection trusts: the configured CA certificates, or the system's.
fn tls_config(ca: Option<&str>, origin: &Origin) -> Result<Arc<rustls::ClientConfig>, LdapFailure> {
    let roots = match ca {
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| {
                    LdapFailure::Config(format!(
                        "the CA certificates given for {origin} are not valid PEM ({e}); give the PEM text of the CA certificate, -----BEGIN CERTIFICATE----- included"
                    ))
                })?;
                roots.add(cert).map_err(|e| {
                    LdapFailure::Config(format!("a CA certificate given for {origin} cannot be used: {e}"))
                })?;
            }
            if roots.is_empty() {
                return Err(LdapFailure::Config(format!(
                    "the CA certificates given for {origin} hold no certificate; give the PEM text of the CA certificate, -----BEGIN CERTIFICATE----- included"
                )));
            }
            roots
        }
        None => system_roots().clone(),
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| LdapFailure::Fatal(format!("cannot set up TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn system_roots() -> &'static rustls::RootCertStore {
    static ROOTS: OnceLock<rustls::RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        roots
    })
}

/// Why opening a connection failed, in words that say what to change.
fn connect_error(e: &ClientError, origin: &Origin, host: &str, transport: Transport) -> LdapFailure {
    let tls = match e {
        ClientError::Rustls { source } => Some(source),
        ClientError::Io { source } => source.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        _ => None,
    };
    if let Some(problem) = tls {
        return LdapFailure::Config(tls_failure(problem, origin, host));
    }
    match e {
        ClientError::DNSName { .. } => LdapFailure::Config(format!(
            "`{host}` is not a name a TLS certificate can be checked against; connect to {origin} by its DNS name"
        )),
        ClientError::LdapResult { result } if transport == Transport::StartTls => LdapFailure::Config(format!(
            "{origin} refused StartTLS (result {}{}); configure TLS on the server, or use ldaps://",
            result.rc,
            diagnostic(&result.text)
        )),
        other => LdapFailure::Transient(format!("cannot open the LDAP connection to {origin}: {other}")),
    }
}

/// A TLS failure in words naming the problem (rustls's kind in brackets) and what fixes it.
fn tls_failure(e: &rustls::Error, origin: &Origin, host: &str) -> String {
    use rustls::CertificateError as C;
    let (problem, advice) = match e {
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => (
            "the server's certificate is not signed by a trusted CA (UnknownIssuer)".to_string(),
            "give the certificate of the CA that issued the server's certificate (`ca_certificate`)",
        ),
        rustls::Error::InvalidCertificate(C::NotValidForName) => (
            format!("the server's certificate does not hold the name `{host}` (NotValidForName)"),
            "connect by a name the certificate holds, or have the certificate reissued with this name",
        ),
        rustls::Error::InvalidCertificate(C::NotValidForNameContext { presented, .. }) => (
            format!(
                "the server's certificate does not hold the name `{host}`, only {} (NotValidForName)",
                presented.join(", ")
            ),
            "connect by a name the certificate holds, or have the certificate reissued with this name",
        ),
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => (
            "the server's certificate has expired (Expired)".to_string(),
            "renew the server's certificate",
        ),
        rustls::Error::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => (
            "the server's certificate is not valid yet (NotValidYet)".to_string(),
            "check the clocks of the server and of Roster's machine",
        ),
        rustls::Error::InvalidCertificate(C::Revoked) => (
            "the server's certificate has been revoked (Revoked)".to_string(),
            "give the server a new certificate",
        ),
        other => (
            other.to_string(),
            "check the server's TLS configuration and certificate, and the CA given in `ca_certificate`",
        ),
    };
    format!("TLS with {origin} failed for server name `{host}`: {problem}; {advice}")
}

/// A client error during a search: the connection is gone or the answer was unreadable.
fn search_error(e: ClientError, origin: &Origin, base: &str, unreadable: bool) -> LdapFailure {
    if unreadable {
        return LdapFailure::Fatal(format!(
            "the LDAP client could not read an answer from {origin} (malformed BER); the connection was closed"
        ));
    }
    match e {
        ClientError::FilterParsing => LdapFailure::Config(format!(
            "the filter of the search under `{base}` is not a valid RFC 4515 filter"
        )),
        ClientError::Timeout { .. } => LdapFailure::Transient(format!(
            "{origin} did not answer the search under `{base}` in time (`request_timeout_secs`)"
        )),
        other => LdapFailure::Transient(format!(
            "the search under `{base}` on {origin} failed: {other}; the connection was closed"
        )),
    }
}

/// A result code other than success or a limit, in words.
fn result_failure(rc: u32, text: &str, refs: &[String], origin: &Origin, subject: &str, cookie: bool) -> LdapFailure {
    let said = diagnostic(text);
    match rc {
        32 => LdapFailure::Config(format!(
            "the base DN `{subject}` does not exist on {origin} (noSuchObject){said}; check the base DN settings"
        )),
        50 => LdapFailure::Auth(format!(
            "{origin} refused access for `{subject}` (insufficientAccessRights){said}; grant the bind DN read access"
        )),
        49 => LdapFailure::Auth(format!("{origin} refused the credentials (invalid credentials){said}")),
        53 if cookie => LdapFailure::CookieExpired,
        51..=53 => LdapFailure::Transient(format!(
            "{origin} is busy or unavailable (result {rc}){said}; try again later"
        )),
        10 => LdapFailure::Config(format!(
            "{origin} referred `{subject}` to {}{said}; point the source at that server",
            if refs.is_empty() {
                "another server".to_string()
            } else {
                refs.join(", ")
            }
        )),
        _ => LdapFailure::Fatal(format!("{origin} answered `{subject}` with result {rc}{said}")),
    }
}

/// What a search task produced.
enum Outcome {
    Done(Done),
    TooBig,
    Unreadable(&'static str),
    Client(ClientError),
}

struct Done {
    entries: Vec<Entry>,
    referrals: Vec<String>,
    result: ldap3::LdapResult,
    /// The paged-results cookie, parsed here too: the parser recurses on the server's bytes.
    cookie: Result<Option<Vec<u8>>, ()>,
}

/// Runs one page on the connection's handle; spawned, so a panic in the client is a `JoinError`.
async fn run_search(
    mut ldap: ldap3::Ldap,
    req: SearchRequest,
    mut controls: Vec<RawControl>,
    cookie: Vec<u8>,
    timeout: Duration,
    cap: usize,
) -> Outcome {
    if req.page_size > 0 {
        controls.insert(
            0,
            RawControl::from(ldap3::controls::PagedResults {
                size: req.page_size as i32,
                cookie,
            }),
        );
    }
    let scope = match req.scope {
        Scope::Base => ldap3::Scope::Base,
        Scope::OneLevel => ldap3::Scope::OneLevel,
        Scope::Subtree => ldap3::Scope::Subtree,
    };
    if !controls.is_empty() {
        ldap.with_controls(controls);
    }
    ldap.with_timeout(timeout);
    let mut stream = match ldap
        .streaming_search(&req.base, scope, &req.filter, req.attributes)
        .await
    {
        Ok(s) => s,
        Err(e) => return Outcome::Client(e),
    };
    let mut entries = Vec::new();
    let mut referrals = Vec::new();
    let mut size = 0usize;
    loop {
        let item = match stream.next().await {
            Ok(Some(item)) => item,
            Ok(None) => break,
            Err(e) => return Outcome::Client(e),
        };
        if item.is_ref() {
            match read_referral(item.0) {
                Some(r) => {
                    size += r.iter().map(|u| u.len() + VALUE_OVERHEAD).sum::<usize>();
                    referrals.extend(r);
                }
                None => return Outcome::Unreadable("a referral"),
            }
        } else if item.is_intermediate() {
            continue;
        } else {
            match read_entry(item.0) {
                Some(e) => {
                    size += footprint(&e);
                    entries.push(e);
                }
                None => return Outcome::Unreadable("an entry"),
            }
        }
        if size > cap {
            return Outcome::TooBig;
        }
    }
    let result = stream.finish().await;
    let cookie = paged_cookie(&result.ctrls);
    Outcome::Done(Done {
        entries,
        referrals,
        result,
        cookie,
    })
}

/// What an entry's container costs in memory beyond its bytes (a `String` and a `Vec`).
const ENTRY_OVERHEAD: usize = 64;
/// What an attribute costs beyond its bytes (its name's `String` and its values' `Vec`).
const ATTRIBUTE_OVERHEAD: usize = 48;
/// What one value (a `Vec<u8>`) or referral costs beyond its bytes.
const VALUE_OVERHEAD: usize = 24;

/// The memory an entry holds, as counted against `max_response_bytes`: its bytes and what
/// holds them, so a server streaming empty entries or millions of empty values reaches the cap
/// as surely as one sending large values.
fn footprint(e: &Entry) -> usize {
    ENTRY_OVERHEAD
        + e.dn.len()
        + e.attributes
            .iter()
            .map(|a| {
                ATTRIBUTE_OVERHEAD + a.name.len() + a.values.iter().map(|v| v.len() + VALUE_OVERHEAD).sum::<usize>()
            })
            .sum::<usize>()
}

/// A SearchResultEntry, decoded without the client's panicking parser.
fn read_entry(tag: StructureTag) -> Option<Entry> {
    if tag.id != 4 {
        return None;
    }
    let mut parts = tag.expect_constructed()?.into_iter();
    let dn = String::from_utf8(parts.next()?.expect_primitive()?).ok()?;
    let mut attributes = Vec::new();
    for partial in parts.next()?.expect_constructed()? {
        let mut partial = partial.expect_constructed()?.into_iter();
        let name = String::from_utf8(partial.next()?.expect_primitive()?).ok()?;
        let values = partial
            .next()?
            .expect_constructed()?
            .into_iter()
            .map(StructureTag::expect_primitive)
            .collect::<Option<Vec<_>>>()?;
        attributes.push(Attribute { name, values });
    }
    Some(Entry { dn, attributes })
}

/// A SearchResultReference's URIs.
fn read_referral(tag: StructureTag) -> Option<Vec<String>> {
    tag.expect_constructed()?
        .into_iter()
        .map(|t| t.expect_primitive().and_then(|b| String::from_utf8(b).ok()))
        .collect()
}

/// The cookie of the paged-results response control: `Ok(None)` without the control (a server
/// that does not page), `Err` when its value is unreadable.
fn paged_cookie(ctrls: &[ldap3::controls::Control]) -> Result<Option<Vec<u8>>, ()> {
    let Some(raw) = ctrls.iter().map(|c| &c.1).find(|c| c.ctype == PAGED_RESULTS_OID) else {
        return Ok(None);
    };
    let value = raw.val.as_deref().ok_or(())?;
    let (_, tag) = parse_tag(value).map_err(|_| ())?;
    let mut parts = tag.expect_constructed().ok_or(())?.into_iter();
    let _size_estimate = parts.next().ok_or(())?;
    parts
        .next()
        .and_then(StructureTag::expect_primitive)
        .map(Some)
        .ok_or(())
}

#[cfg(test)]
mod tests;

//! LDAP over the host's `ldap` import, and what every directory connector needs around it.
//!
//! The host connects, protects the connection with TLS, binds with the source's secret and runs
//! one page of a read-only search per call; a connector never holds a socket or the bind
//! password. Everything goes through the [`Directory`] trait, so connectors are unit-tested
//! natively with a scripted directory. Around it:
//!
//! * [`Paging`]: a paged search (RFC 2696) one page per driver step, the cookie kept in the
//!   connector's cursor, started again when the host says the cookie expired, and a page the
//!   server capped (size, time or administrative limit) turned into an error instead of a
//!   listing that looks complete.
//! * [`values`] / [`first_text`]: attributes by base name, case-insensitively (Active Directory
//!   answers `member` as `member;range=0-1499`).
//! * [`complete_values`]: Active Directory's range retrieval of a large attribute.
//! * [`escape_filter_value`], [`escape_filter_bytes`]: RFC 4515 assertion values.
//! * [`GeneralizedTime`]: `modifyTimestamp` values, parsed and formatted.
//! * [`normalize_dn`]: DNs compared as LDAP compares them (case, spaces, escapes).
//! * [`ad_guid`]: Active Directory's `objectGUID` bytes as the GUID string Windows shows.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::PluginError;
pub use crate::bindings::roster::plugin::ldap::{
    Attribute, Connection, Control, Entry, LdapError, Scope, SearchPage, SearchRequest, Transport,
};

/// Something that runs searches: the host inside a component, a script in tests.
pub trait Directory {
    /// Runs one page of a search over `conn`.
    fn search(&self, conn: &Connection, req: SearchRequest) -> Result<SearchPage, LdapError>;
}

/// Searches through the host's `ldap` import (allow-listed, TLS, bound with the source's secret).
#[derive(Clone, Copy, Debug, Default)]
pub struct HostDirectory;

impl Directory for HostDirectory {
    fn search(&self, conn: &Connection, req: SearchRequest) -> Result<SearchPage, LdapError> {
        #[cfg(target_arch = "wasm32")]
        return crate::bindings::roster::plugin::ldap::search(conn, &req);
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = (conn, req);
            Err(LdapError::Failed(PluginError::Fatal(
                "the host's ldap import is only available inside Roster".into(),
            )))
        }
    }
}

/// No directory: the LDAP of a connector exported for HTTP only (`export_idp!(T)`). Every
/// search fails, saying how to export the connector with LDAP.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoDirectory;

impl Directory for NoDirectory {
    fn search(&self, _: &Connection, _: SearchRequest) -> Result<SearchPage, LdapError> {
        Err(LdapError::Failed(PluginError::Fatal(
            "this connector was exported without LDAP: export it with `roster_sdk::export_idp!(T, ldap)`".into(),
        )))
    }
}

/// The paged-results control's OID (RFC 2696); the host drives it from `page-size` and `cookie`.
pub const PAGED_RESULTS_OID: &str = "1.2.840.113556.1.4.319";

/// Active Directory's `LDAP_SERVER_RANGE_RETRIEVAL_NOERR_OID`: a range past the last value
/// returns nothing instead of `operationsError`.
pub const RANGE_NO_ERROR_OID: &str = "1.2.840.113556.1.4.1948";

/// Times a paged search is started again after its cookie expired before it is given up.
pub const MAX_RESTARTS: u32 = 3;

/// Requests a range retrieval of one attribute may make (1,500 values each on Active
/// Directory: 15 million values), after which the server is taken to be answering in circles.
pub const MAX_RANGE_REQUESTS: u32 = 10_000;

impl SearchRequest {
    /// A search of `base` with no paging, no cookie and no controls.
    pub fn new(base: &str, scope: Scope, filter: &str, attributes: &[&str]) -> Self {
        SearchRequest {
            base: base.to_string(),
            scope,
            filter: filter.to_string(),
            attributes: attributes.iter().map(|a| a.to_string()).collect(),
            page_size: 0,
            cookie: None,
            controls: Vec::new(),
        }
    }

    /// The same search, `size` entries per page.
    pub fn paged(mut self, size: u32) -> Self {
        self.page_size = size;
        self
    }
}

/// The words a run shows for a scope.
pub fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Base => "base",
        Scope::OneLevel => "one-level",
        Scope::Subtree => "subtree",
    }
}

/// Adds what was being done to a host error, keeping its class.
pub fn context(e: PluginError, what: &str) -> PluginError {
    match e {
        PluginError::Config(m) => PluginError::Config(format!("{what}: {m}")),
        PluginError::Auth(m) => PluginError::Auth(format!("{what}: {m}")),
        PluginError::Transient(m) => PluginError::Transient(format!("{what}: {m}")),
        PluginError::ExpiredDelta(m) => PluginError::ExpiredDelta(format!("{what}: {m}")),
        PluginError::Fatal(m) => PluginError::Fatal(format!("{what}: {m}")),
    }
}

/// One search, unpaged, whose cookie cannot expire: a `cookie-expired` answer is the host's
/// mistake and fails the call.
pub fn search_once(
    dir: &dyn Directory,
    conn: &Connection,
    req: SearchRequest,
    what: &str,
    referrals: &Referrals,
) -> Result<SearchPage, PluginError> {
    let page = match dir.search(conn, req) {
        Ok(page) => page,
        Err(LdapError::Failed(e)) => return Err(context(e, what)),
        Err(LdapError::CookieExpired) => {
            return Err(PluginError::Transient(format!(
                "{what}: the host reported an expired paging cookie for a search without one"
            )));
        }
    };
    limit_check(&page, conn, page.entries.len() as u64, what)?;
    referrals.check(&page, what)?;
    Ok(page)
}

/// Naming contexts Active Directory refers a search of the domain's root to, which hold no
/// users or groups of the domain: their referrals are no missing entries.
const AD_PARTITIONS: &[&str] = &["dc=domaindnszones,", "dc=forestdnszones,", "cn=configuration,"];

/// The DN of an LDAP URL (`ldap://host/DN?attrs…`), percent-decoded; empty when it has none.
fn referral_dn(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let Some((_, path)) = rest.split_once('/') else {
        return String::new();
    };
    let path = path.split('?').next().unwrap_or(path).as_bytes();
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            path[i],
            path.get(i + 1).and_then(|b| hex(*b)),
            path.get(i + 2).and_then(|b| hex(*b)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The naming contexts whose continuation references a search ignores: those whose entries the
/// administrator does not want (an Active Directory forest root's child domains, say), listed
/// as the connector's `ignore_referrals`. Any other referral fails the search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Referrals {
    /// Normalised DNs; a referral to one of them or below one is ignored.
    ignored: Vec<String>,
}

impl Referrals {
    /// Ignores referrals to each of `dns` and to anything below one of them.
    pub fn ignoring<S: AsRef<str>>(dns: &[S]) -> Self {
        Referrals {
            ignored: dns.iter().map(|d| normalize_dn(d.as_ref())).collect(),
        }
    }

    fn ignores(&self, dn: &str) -> bool {
        AD_PARTITIONS.iter().any(|p| dn.starts_with(p))
            || self
                .ignored
                .iter()
                .any(|i| !i.is_empty() && (dn == i || dn.ends_with(&format!(",{i}"))))
    }

    /// A search that answered with a continuation reference left entries unread: Roster does
    /// not chase referrals (another server, another bind), and a listing without those
    /// entries would deprovision them. Active Directory's referrals to its DNS and
    /// configuration partitions are the exception (a domain-root search always gets them and
    /// they hold nobody), and so are the naming contexts the administrator listed.
    fn check(&self, page: &SearchPage, what: &str) -> Result<(), PluginError> {
        let Some(url) = page
            .referrals
            .iter()
            .find(|url| !self.ignores(&normalize_dn(&referral_dn(url))))
        else {
            return Ok(());
        };
        Err(PluginError::Config(format!(
            "{what}: the LDAP server answered with a referral to {url}: entries below it are held elsewhere and Roster does not follow referrals; point user_base_dn/group_base_dn at the directory that holds the entries, or, if you do not want the users below it, add its DN to ignore_referrals. Nothing of this fetch was used"
        )))
    }
}

/// A page the server ended with a limit instead of success is an incomplete listing: treated
/// as complete, everyone after the limit would look deleted.
fn limit_check(page: &SearchPage, conn: &Connection, read: u64, what: &str) -> Result<(), PluginError> {
    let limit = match page.result_code {
        0 => return Ok(()),
        3 => "time limit exceeded",
        4 => "size limit exceeded",
        11 => "administrative limit exceeded",
        code => {
            return Err(PluginError::Fatal(format!(
                "{what}: the LDAP server ended the search with result code {code} ({})",
                page.message
            )));
        }
    };
    let who = match &conn.bind_dn {
        Some(dn) => format!("bind DN {dn}"),
        None => "anonymous binds".to_string(),
    };
    let dn = conn.bind_dn.as_deref().unwrap_or("…");
    let server = if page.message.is_empty() {
        String::new()
    } else {
        format!("; the server said: {}", page.message)
    };
    Err(PluginError::Config(format!(
        "{what}: the LDAP server capped the result at {read} entries ({limit}) for {who}: raise the limit for this DN (OpenLDAP: `limits dn.exact=\"{dn}\" size.prtotal=unlimited time=unlimited`; AD: MaxPageSize/MaxResultSetSize){server}. Nothing of this fetch was used"
    )))
}

/// Where a paged search stands between driver steps: the server's cookie, the entries read so
/// far, how often it was started again. Kept in the connector's cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paging {
    /// The server's cookie for the next page (base64); `None` before the first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cookie: Option<String>,
    /// Entries the search returned so far (for the limit message and progress).
    #[serde(default)]
    pub entries: u64,
    /// Times the search was started again after its cookie expired.
    #[serde(default)]
    restarts: u32,
}

/// One page of a paged search.
#[derive(Debug)]
pub struct Found {
    /// The entries on the page.
    pub entries: Vec<Entry>,
    /// False when this was the search's last page.
    pub more: bool,
    /// True when the search started again from its first page (its cookie expired): entries
    /// already read come again, and the caller keeps only those it has not seen.
    pub restarted: bool,
}

impl Paging {
    /// Reads the next page of `req` (its `cookie` is replaced by this search's).
    pub fn next(
        &mut self,
        dir: &dyn Directory,
        conn: &Connection,
        mut req: SearchRequest,
        what: &str,
        referrals: &Referrals,
    ) -> Result<Found, PluginError> {
        let mut restarted = false;
        loop {
            req.cookie = self.cookie()?;
            match dir.search(conn, req.clone()) {
                Ok(page) => {
                    let read = self.entries + page.entries.len() as u64;
                    limit_check(&page, conn, read, what)?;
                    referrals.check(&page, what)?;
                    let cookie = page.cookie.filter(|c| !c.is_empty());
                    if req.page_size == 0 && cookie.is_some() {
                        return Err(PluginError::Fatal(format!(
                            "{what}: the server returned a paging cookie for an unpaged search"
                        )));
                    }
                    let more = cookie.is_some();
                    self.cookie = cookie.map(|c| base64::engine::general_purpose::STANDARD.encode(c));
                    self.entries = read;
                    return Ok(Found {
                        entries: page.entries,
                        more,
                        restarted,
                    });
                }
                Err(LdapError::Failed(e)) => return Err(context(e, what)),
                Err(LdapError::CookieExpired) => {
                    if self.restarts >= MAX_RESTARTS {
                        return Err(PluginError::Transient(format!(
                            "{what}: the connection to the LDAP server was re-established {MAX_RESTARTS} times during one search, each time losing its paging cookie"
                        )));
                    }
                    crate::log(
                        crate::Level::Info,
                        &format!("{what}: the paging cookie expired with its connection; starting the search again"),
                    );
                    self.restarts += 1;
                    self.cookie = None;
                    self.entries = 0;
                    restarted = true;
                }
            }
        }
    }

    fn cookie(&self) -> Result<Option<Vec<u8>>, PluginError> {
        self.cookie
            .as_deref()
            .map(|c| {
                base64::engine::general_purpose::STANDARD.decode(c).map_err(|e| {
                    PluginError::Fatal(format!("the paging cookie kept in the cursor does not decode ({e})"))
                })
            })
            .transpose()
    }
}

/// The base name of an attribute description: `member;range=0-1499` → `member`.
pub fn base_name(description: &str) -> &str {
    description.split(';').next().unwrap_or(description)
}

/// The values of every attribute of `entry` whose base name is `name` (case-insensitive), in
/// the order the server sent them.
pub fn values<'a>(entry: &'a Entry, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    entry
        .attributes
        .iter()
        .filter(move |a| base_name(&a.name).eq_ignore_ascii_case(name))
        .flat_map(|a| a.values.iter().map(Vec::as_slice))
}

/// The first value of `name` as text; `None` when absent, empty or not UTF-8.
pub fn first_text<'a>(entry: &'a Entry, name: &'a str) -> Option<&'a str> {
    values(entry, name)
        .filter_map(|v| std::str::from_utf8(v).ok())
        .map(str::trim)
        .find(|v| !v.is_empty())
}

/// A range in an attribute description: `member;range=1500-*` → `(1500, None)`,
/// `member;range=0-1499` → `(0, Some(1499))`.
pub fn range_of(description: &str) -> Option<(u64, Option<u64>)> {
    description.split(';').skip(1).find_map(|option| {
        let (key, value) = option.split_once('=')?;
        if !key.eq_ignore_ascii_case("range") {
            return None;
        }
        let (low, high) = value.split_once('-')?;
        let low = low.parse().ok()?;
        let high = if high == "*" { None } else { Some(high.parse().ok()?) };
        Some((low, high))
    })
}

/// Every value of `name` on `entry`, following Active Directory's range retrieval: when the
/// server sent only a range (`member;range=0-1499`), the rest is read with base searches of the
/// entry for `member;range=1500-*` and on until the range ending in `*`.
pub fn complete_values(
    dir: &dyn Directory,
    conn: &Connection,
    entry: &Entry,
    name: &str,
    what: &str,
    referrals: &Referrals,
) -> Result<Vec<Vec<u8>>, PluginError> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut next_low = None;
    for a in entry
        .attributes
        .iter()
        .filter(|a| base_name(&a.name).eq_ignore_ascii_case(name))
    {
        out.extend(a.values.iter().cloned());
        if let Some((low, Some(high))) = range_of(&a.name) {
            next_low = Some(range_after(low, high, &a.name, &entry.dn, what)?);
        }
    }
    let mut requests = 0;
    while let Some(low) = next_low.take() {
        requests += 1;
        if requests > MAX_RANGE_REQUESTS {
            return Err(PluginError::Fatal(format!(
                "{what}: the range retrieval of {name} on {} did not end after {MAX_RANGE_REQUESTS} requests",
                entry.dn
            )));
        }
        let mut req = SearchRequest::new(
            &entry.dn,
            Scope::Base,
            "(objectClass=*)",
            &[&format!("{name};range={low}-*")],
        );
        req.controls.push(Control {
            oid: RANGE_NO_ERROR_OID.into(),
            critical: false,
            value: None,
        });
        let page = match search_once(dir, conn, req, what, referrals) {
            // The host's words for result code 32: the entry is gone, not a setting wrong.
            Err(PluginError::Config(m)) if m.contains("(noSuchObject)") => None,
            other => Some(other?),
        };
        let Some(found) = page.and_then(|page| {
            page.entries
                .into_iter()
                .find(|e| normalize_dn(&e.dn) == normalize_dn(&entry.dn))
        }) else {
            // Renamed or deleted between the requests: the values read so far are a part
            // of the list, and a part taken for the whole would remove the other members.
            return Err(PluginError::Transient(format!(
                "{what}: group {} changed while its {name} values were read (the read of values from {low} on found no entry); the next run reads again",
                entry.dn
            )));
        };
        for a in found
            .attributes
            .into_iter()
            .filter(|a| base_name(&a.name).eq_ignore_ascii_case(name))
        {
            match range_of(&a.name) {
                Some((got, _)) if got != low => {
                    return Err(PluginError::Fatal(format!(
                        "{what}: asked for {name} values from {low} of {}, the server answered {}",
                        entry.dn, a.name
                    )));
                }
                Some((got, Some(high))) if !a.values.is_empty() => {
                    next_low = Some(range_after(got, high, &a.name, &entry.dn, what)?);
                }
                _ => {}
            }
            out.extend(a.values);
        }
    }
    Ok(out)
}

/// Where the values after `low-high` start. A range that ends before it starts, or at the
/// largest number there is, cannot be continued: following it would ask for the same values
/// again (until [`MAX_RANGE_REQUESTS`]) or past the end of the numbers.
fn range_after(low: u64, high: u64, description: &str, dn: &str, what: &str) -> Result<u64, PluginError> {
    high.checked_add(1).filter(|next| *next > low).ok_or_else(|| {
        PluginError::Fatal(format!(
            "{what}: the server answered {description} for {dn}, a range that cannot be continued"
        ))
    })
}

/// An RFC 4515 assertion value for text: `*`, `(`, `)`, `\` and NUL escaped as `\xx`.
pub fn escape_filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// An RFC 4515 assertion value for binary data (`objectGUID`): every byte as `\xx`.
pub fn escape_filter_bytes(value: &[u8]) -> String {
    value.iter().map(|b| format!("\\{b:02x}")).collect()
}

/// Active Directory's 16-byte `objectGUID` as Windows writes it: Data1, Data2 and Data3 are
/// stored little-endian, Data4 as is (MS-DTYP 2.3.4.2). `None` for any other length.
pub fn ad_guid(bytes: &[u8]) -> Option<String> {
    let b: &[u8; 16] = bytes.try_into().ok()?;
    Some(format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    ))
}

/// An LDAP GeneralizedTime (`modifyTimestamp`), to the second, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GeneralizedTime {
    /// Seconds since 1970-01-01T00:00:00Z.
    secs: i64,
}

impl GeneralizedTime {
    /// The time `secs` seconds after 1970-01-01T00:00:00Z.
    pub fn from_unix(secs: i64) -> Self {
        GeneralizedTime { secs }
    }

    /// Seconds since 1970-01-01T00:00:00Z.
    pub fn unix(self) -> i64 {
        self.secs
    }

    /// Parses `YYYYMMDDHH[MM[SS]][(.|,)fraction](Z|±HH[MM])` (RFC 4517 §3.3.13); a fraction is
    /// cut off, so a filter built from the result with `>=` still matches the value.
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        let num = |s: &str| -> Option<i64> { s.parse().ok() };
        if t.len() < 11 || !t.is_char_boundary(10) || !t[..10].bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (year, month, day, hour) = (num(&t[..4])?, num(&t[4..6])?, num(&t[6..8])?, num(&t[8..10])?);
        let mut rest = &t[10..];
        let take_two = |rest: &mut &str| -> Option<i64> {
            if rest.len() >= 2 && rest.as_bytes()[..2].iter().all(u8::is_ascii_digit) {
                let v = rest[..2].parse().ok();
                *rest = &rest[2..];
                v
            } else {
                None
            }
        };
        let minute = take_two(&mut rest).unwrap_or(0);
        let second = take_two(&mut rest).unwrap_or(0);
        if let Some(r) = rest.strip_prefix(['.', ',']) {
            let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            if end == 0 {
                return None;
            }
            rest = &r[end..];
        }
        let offset = match rest.as_bytes().first()? {
            b'Z' if rest.len() == 1 => 0,
            sign @ (b'+' | b'-') => {
                let mut r = &rest[1..];
                let h = take_two(&mut r)?;
                let m = if r.is_empty() { 0 } else { take_two(&mut r)? };
                if !r.is_empty() || h > 23 || m > 59 {
                    return None;
                }
                let off = h * 3600 + m * 60;
                if *sign == b'+' { off } else { -off }
            }
            _ => return None,
        };
        // 60: a leap second, counted as the next minute's first.
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        let days = crate::time::days_from_civil(year, month, day);
        Some(GeneralizedTime {
            secs: days * 86_400 + hour * 3600 + minute * 60 + second - offset,
        })
    }

    /// `YYYYMMDDHHMMSSZ`, the form OpenLDAP writes and compares.
    pub fn format(self) -> String {
        let days = self.secs.div_euclid(86_400);
        let of_day = self.secs.rem_euclid(86_400);
        let (y, m, d) = crate::time::civil(days);
        format!(
            "{y:04}{m:02}{d:02}{:02}{:02}{:02}Z",
            of_day / 3600,
            of_day % 3600 / 60,
            of_day % 60
        )
    }
}

/// A DN in the form two DNs of the same entry share: attribute types and values in lower case,
/// spaces around `,`, `=` and `+` dropped, escapes (`\,`, `\2C`) decoded and written back one
/// way. Values are compared case-insensitively, as the usual naming attributes (`cn`, `uid`,
/// `ou`, `dc`) are; a malformed DN is normalised as far as it goes, never refused.
pub fn normalize_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    let mut part: Vec<u8> = Vec::new();
    // Bytes of `part` that came from escapes: their spaces are kept when trimming.
    let mut escaped_to = 0usize;
    let bytes = dn.as_bytes();
    let mut i = 0;
    let flush = |part: &mut Vec<u8>, escaped_to: usize, out: &mut String, sep: Option<char>| {
        let start = part.iter().position(|b| *b != b' ').unwrap_or(part.len());
        let mut end = part.len();
        while end > start && end > escaped_to && part[end - 1] == b' ' {
            end -= 1;
        }
        let text = String::from_utf8_lossy(&part[start..end]).to_lowercase();
        for (k, c) in text.chars().enumerate() {
            let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
                || (k == 0 && (c == '#' || c == ' '))
                || (k + 1 == text.chars().count() && c == ' ');
            if special {
                out.push('\\');
            }
            out.push(c);
        }
        if let Some(sep) = sep {
            out.push(sep);
        }
        part.clear();
    };
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if i + 1 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), bytes.get(i + 2).and_then(|b| hex(*b))) {
                    (Some(h), Some(l)) => {
                        part.push((h * 16 + l) as u8);
                        i += 3;
                    }
                    _ => {
                        part.push(bytes[i + 1]);
                        i += 2;
                    }
                }
                escaped_to = part.len();
            }
            b @ (b',' | b'=' | b'+' | b';') => {
                let sep = if b == b';' { ',' } else { b as char };
                flush(&mut part, escaped_to, &mut out, Some(sep));
                escaped_to = 0;
                i += 1;
            }
            b => {
                part.push(b);
                i += 1;
            }
        }
    }
    flush(&mut part, escaped_to, &mut out, None);
    out
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    #[test]
    fn filter_values_escape_what_rfc_4515_reserves() {
        assert_eq!(escape_filter_value("a*b(c)\\d\0"), "a\\2ab\\28c\\29\\5cd\\00");
        assert_eq!(escape_filter_value("Müller, Jörg"), "Müller, Jörg");
        assert_eq!(escape_filter_bytes(&[0xa1, 0x02, 0xff]), "\\a1\\02\\ff");
    }

    #[test]
    fn generalized_time_round_trips_and_reads_every_form_servers_send() {
        let t = GeneralizedTime::parse("20261203071319Z").unwrap();
        assert_eq!(t.format(), "20261203071319Z");
        assert_eq!(GeneralizedTime::parse("19700101000000Z").unwrap().unix(), 0);
        assert_eq!(
            GeneralizedTime::parse("20000229235959Z").unwrap().format(),
            "20000229235959Z"
        );
        // Active Directory's `.0Z`, a fraction, an offset, minutes only.
        assert_eq!(GeneralizedTime::parse("20261203071319.0Z"), Some(t));
        assert_eq!(GeneralizedTime::parse("20261203071319.381482Z"), Some(t));
        assert_eq!(GeneralizedTime::parse("20261203091319+0200"), Some(t));
        assert_eq!(GeneralizedTime::parse("20261203021319-05"), Some(t));
        assert_eq!(
            GeneralizedTime::parse("202612030713Z").unwrap().format(),
            "20261203071300Z"
        );
        assert!(GeneralizedTime::parse("20260101000000Z") < Some(t));
        for bad in [
            "",
            "2026120307",
            "20261303071319Z",
            "20261203071319",
            "2026120307131xZ",
            "20261203071319.Z",
            "é0261203071319Z",
        ] {
            assert_eq!(GeneralizedTime::parse(bad), None, "{bad}");
        }
        assert_eq!(GeneralizedTime::from_unix(-1).format(), "19691231235959Z");
    }

    #[test]
    fn dns_normalise_case_spaces_and_escapes_but_keep_escaped_commas_apart() {
        assert_eq!(
            normalize_dn("UID=Alice , OU=People,dc=Example, DC=org"),
            "uid=alice,ou=people,dc=example,dc=org"
        );
        let a = normalize_dn("CN=Smith\\, John,OU=Staff,DC=corp,DC=example");
        assert_eq!(a, "cn=smith\\, john,ou=staff,dc=corp,dc=example");
        assert_eq!(normalize_dn("cn=Smith\\2C John,ou=staff,dc=corp,dc=example"), a);
        assert_ne!(normalize_dn("cn=Smith,cn=John"), normalize_dn("cn=Smith\\,cn=John"));
        assert_eq!(normalize_dn("cn=a + sn=b,o=x"), "cn=a+sn=b,o=x");
        // Escaped trailing space is part of the value.
        assert_eq!(normalize_dn("cn=a\\ ,o=x"), "cn=a\\ ,o=x");
        assert_eq!(normalize_dn(""), "");
        // A lone trailing backslash stands for itself; normalising twice changes nothing.
        assert_eq!(normalize_dn("garbage\\"), "garbage\\\\");
        for dn in ["CN=Smith\\, John ,OU=x", "cn=#a\\ ,o=x", "garbage\\", "cn=a\\+b+sn=c"] {
            assert_eq!(normalize_dn(&normalize_dn(dn)), normalize_dn(dn), "{dn}");
        }
    }

    #[test]
    fn guids_are_written_as_windows_writes_them() {
        let bytes = [
            0x8c, 0xc8, 0xf8, 0xc2, 0x34, 0x83, 0x41, 0x10, 0x8a, 0x98, 0xef, 0xe2, 0x7c, 0x2e, 0x87, 0x23,
        ];
        assert_eq!(ad_guid(&bytes).unwrap(), "c2f8c88c-8334-1041-8a98-efe27c2e8723");
        assert_eq!(ad_guid(&bytes[..15]), None);
    }

    fn attr(name: &str, values: &[&str]) -> Attribute {
        Attribute {
            name: name.into(),
            values: values.iter().map(|v| v.as_bytes().to_vec()).collect(),
        }
    }

    fn entry(dn: &str, attributes: Vec<Attribute>) -> Entry {
        Entry {
            dn: dn.into(),
            attributes,
        }
    }

    #[test]
    fn attributes_are_found_by_base_name_whatever_their_case_and_options() {
        let e = entry(
            "cn=g",
            vec![attr("Member;range=0-1", &["a", "b"]), attr("CN", &["  ", "Group"])],
        );
        let members: Vec<&[u8]> = values(&e, "member").collect();
        assert_eq!(members, vec![b"a".as_slice(), b"b".as_slice()]);
        assert_eq!(first_text(&e, "cn"), Some("Group"));
        assert_eq!(first_text(&e, "mail"), None);
        assert_eq!(range_of("member;range=0-1499"), Some((0, Some(1499))));
        assert_eq!(range_of("member;RANGE=1500-*"), Some((1500, None)));
        assert_eq!(range_of("member"), None);
        assert_eq!(range_of("member;range=x-1"), None);
    }

    /// Answers searches from a script, one answer per call, and keeps the requests.
    #[derive(Default)]
    struct Script {
        answers: RefCell<Vec<Result<SearchPage, LdapError>>>,
        asked: RefCell<Vec<SearchRequest>>,
    }

    impl Directory for Script {
        fn search(&self, _: &Connection, req: SearchRequest) -> Result<SearchPage, LdapError> {
            self.asked.borrow_mut().push(req);
            self.answers.borrow_mut().remove(0)
        }
    }

    fn page(entries: Vec<Entry>, cookie: Option<&[u8]>, code: u32) -> Result<SearchPage, LdapError> {
        Ok(SearchPage {
            entries,
            referrals: vec![],
            cookie: cookie.map(<[u8]>::to_vec),
            result_code: code,
            message: if code == 4 {
                "Size limit exceeded".into()
            } else {
                String::new()
            },
        })
    }

    fn conn() -> Connection {
        Connection {
            url: "ldaps://ldap.test".into(),
            transport: Transport::Ldaps,
            ca_certificates: None,
            bind_dn: Some("cn=reader,dc=example,dc=org".into()),
            password_secret: Some("bind_password".into()),
        }
    }

    fn one(dn: &str) -> Entry {
        entry(dn, vec![])
    }

    #[test]
    fn a_paged_search_follows_cookies_and_starts_again_when_its_cookie_expired() {
        let dir = Script::default();
        dir.answers.borrow_mut().extend([
            page(vec![one("uid=a"), one("uid=b")], Some(b"c1"), 0),
            Err(LdapError::CookieExpired),
            page(vec![one("uid=a"), one("uid=b")], Some(b"c1'"), 0),
            page(vec![one("uid=c")], None, 0),
        ]);
        let req = SearchRequest::new("dc=x", Scope::Subtree, "(uid=*)", &["uid"]).paged(2);
        let mut p = Paging::default();
        let first = p
            .next(&dir, &conn(), req.clone(), "list users", &Referrals::default())
            .unwrap();
        assert!(first.more && !first.restarted && first.entries.len() == 2);
        // The paging state survives the cursor's trip through JSON.
        let mut p: Paging = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        let again = p
            .next(&dir, &conn(), req.clone(), "list users", &Referrals::default())
            .unwrap();
        assert!(again.more && again.restarted && again.entries.len() == 2);
        let last = p.next(&dir, &conn(), req, "list users", &Referrals::default()).unwrap();
        assert!(!last.more && !last.restarted);
        assert_eq!(p.entries, 3);
        let cookies: Vec<Option<Vec<u8>>> = dir.asked.borrow().iter().map(|r| r.cookie.clone()).collect();
        assert_eq!(cookies, vec![None, Some(b"c1".to_vec()), None, Some(b"c1'".to_vec())]);
    }

    #[test]
    fn a_cookie_that_keeps_expiring_ends_the_search_as_transient() {
        let dir = Script::default();
        for _ in 0..=MAX_RESTARTS {
            dir.answers.borrow_mut().push(Err(LdapError::CookieExpired));
        }
        let req = SearchRequest::new("dc=x", Scope::Subtree, "(uid=*)", &["uid"]).paged(2);
        let err = Paging::default()
            .next(&dir, &conn(), req, "list users", &Referrals::default())
            .unwrap_err();
        assert!(
            matches!(&err, PluginError::Transient(m) if m.contains("list users") && m.contains("re-established")),
            "{err:?}"
        );
    }

    #[test]
    fn a_capped_page_is_an_error_naming_the_count_the_limit_and_the_bind_dn() {
        let dir = Script::default();
        dir.answers.borrow_mut().extend([
            page(vec![one("uid=a"), one("uid=b")], Some(b"c"), 0),
            page(vec![one("uid=c")], None, 4),
        ]);
        let req = SearchRequest::new("dc=x", Scope::Subtree, "(uid=*)", &["uid"]).paged(2);
        let mut p = Paging::default();
        p.next(&dir, &conn(), req.clone(), "list users", &Referrals::default())
            .unwrap();
        let err = p
            .next(&dir, &conn(), req, "list users", &Referrals::default())
            .unwrap_err();
        let PluginError::Config(m) = &err else {
            panic!("{err:?}")
        };
        assert!(
            m.contains("capped the result at 3 entries (size limit exceeded)"),
            "{m}"
        );
        assert!(m.contains("for bind DN cn=reader,dc=example,dc=org"), "{m}");
        assert!(
            m.contains("limits dn.exact=\"cn=reader,dc=example,dc=org\" size.prtotal=unlimited"),
            "{m}"
        );
        for (code, words) in [(3, "time limit exceeded"), (11, "administrative limit exceeded")] {
            let dir = Script::default();
            dir.answers.borrow_mut().push(page(vec![], None, code));
            let err = search_once(
                &dir,
                &conn(),
                SearchRequest::new("", Scope::Base, "(objectClass=*)", &[]),
                "x",
                &Referrals::default(),
            )
            .unwrap_err();
            assert!(matches!(&err, PluginError::Config(m) if m.contains(words)), "{err:?}");
        }
    }

    #[test]
    fn host_failures_keep_their_class_and_gain_what_was_being_done() {
        let dir = Script::default();
        dir.answers
            .borrow_mut()
            .push(Err(LdapError::Failed(PluginError::Auth("invalid credentials".into()))));
        let err = search_once(
            &dir,
            &conn(),
            SearchRequest::new("", Scope::Base, "(objectClass=*)", &[]),
            "read the rootDSE",
            &Referrals::default(),
        )
        .unwrap_err();
        assert!(
            matches!(&err, PluginError::Auth(m) if m == "read the rootDSE: invalid credentials"),
            "{err:?}"
        );
    }

    #[test]
    fn range_retrieval_reads_every_chunk_until_the_one_ending_in_a_star() {
        let dir = Script::default();
        dir.answers.borrow_mut().extend([
            page(
                vec![entry("CN=G,DC=x", vec![attr("member;range=2-3", &["c", "d"])])],
                None,
                0,
            ),
            page(
                vec![entry("CN=G,DC=x", vec![attr("member;range=4-*", &["e"])])],
                None,
                0,
            ),
        ]);
        let g = entry(
            "CN=G,DC=x",
            vec![attr("cn", &["G"]), attr("member;range=0-1", &["a", "b"])],
        );
        let all = complete_values(&dir, &conn(), &g, "member", "list groups", &Referrals::default()).unwrap();
        let all: Vec<&str> = all.iter().map(|v| std::str::from_utf8(v).unwrap()).collect();
        assert_eq!(all, vec!["a", "b", "c", "d", "e"]);
        let asked = dir.asked.borrow();
        assert_eq!(asked[0].attributes, vec!["member;range=2-*".to_string()]);
        assert_eq!(asked[1].attributes, vec!["member;range=4-*".to_string()]);
        assert!(asked.iter().all(|r| r.base == "CN=G,DC=x" && r.scope == Scope::Base));
        assert!(
            asked[0]
                .controls
                .iter()
                .any(|c| c.oid == RANGE_NO_ERROR_OID && !c.critical)
        );
        // A plain attribute needs no further request.
        let plain = entry("cn=h", vec![attr("member", &["x"])]);
        assert_eq!(
            complete_values(&dir, &conn(), &plain, "member", "x", &Referrals::default())
                .unwrap()
                .len(),
            1
        );
        assert_eq!(dir.asked.borrow().len(), 2);
    }

    #[test]
    fn a_range_that_cannot_be_continued_is_an_error_not_a_panic_or_a_loop() {
        // Ending at the largest number: the next range would start past the end of the numbers.
        let dir = Script::default();
        let g = entry(
            "CN=G,DC=x",
            vec![attr("member;range=0-18446744073709551615", &["a", "b"])],
        );
        let err = complete_values(&dir, &conn(), &g, "member", "list groups", &Referrals::default()).unwrap_err();
        assert!(
            matches!(&err, PluginError::Fatal(m) if m.contains("member;range=0-18446744073709551615") && m.contains("CN=G,DC=x") && m.contains("cannot be continued")),
            "{err:?}"
        );
        // Ending before it starts, in a later answer: the same values would be asked for again.
        dir.answers.borrow_mut().push(page(
            vec![entry("CN=G,DC=x", vec![attr("member;range=2-1", &["c"])])],
            None,
            0,
        ));
        let g = entry("CN=G,DC=x", vec![attr("member;range=0-1", &["a", "b"])]);
        let err = complete_values(&dir, &conn(), &g, "member", "list groups", &Referrals::default()).unwrap_err();
        assert!(
            matches!(&err, PluginError::Fatal(m) if m.contains("member;range=2-1")),
            "{err:?}"
        );
        assert_eq!(dir.asked.borrow().len(), 1);
    }

    #[test]
    fn range_retrieval_that_loses_its_entry_is_transient_never_a_short_list() {
        let g = entry("CN=G,DC=x", vec![attr("member;range=0-1", &["a", "b"])]);
        let gone = Err(LdapError::Failed(PluginError::Config(
            "the base DN `CN=G,DC=x` does not exist on ldaps://dc (noSuchObject); check the base DN settings".into(),
        )));
        for answer in [page(vec![], None, 0), gone] {
            let dir = Script::default();
            dir.answers.borrow_mut().push(answer);
            let err = complete_values(&dir, &conn(), &g, "member", "list groups", &Referrals::default()).unwrap_err();
            assert!(
                matches!(&err, PluginError::Transient(m) if m.contains("CN=G,DC=x changed while its member values were read")),
                "{err:?}"
            );
        }
    }

    #[test]
    fn referrals_fail_a_search_unless_they_point_at_active_directory_s_own_partitions() {
        let with = |urls: &[&str]| {
            let dir = Script::default();
            let mut p = page(vec![one("uid=a")], None, 0).unwrap();
            p.referrals = urls.iter().map(|u| u.to_string()).collect();
            dir.answers.borrow_mut().push(Ok(p));
            let req = SearchRequest::new("dc=x", Scope::Subtree, "(uid=*)", &["uid"]).paged(2);
            Paging::default().next(&dir, &conn(), req, "list users", &Referrals::default())
        };
        with(&[
            "ldap://corp.test/DC=DomainDnsZones,DC=corp,DC=test",
            "ldap://corp.test/DC=ForestDnsZones,DC=corp,DC=test??base",
            "ldaps://corp.test:636/CN%3DConfiguration%2CDC%3Dcorp%2CDC%3Dtest",
        ])
        .unwrap();
        let err = with(&["ldap://b.example.org/ou=partners,dc=x"]).unwrap_err();
        assert!(
            matches!(&err, PluginError::Config(m) if m.contains("ldap://b.example.org/ou=partners,dc=x") && m.contains("does not follow referrals")),
            "{err:?}"
        );
        // A server's name alone (no DN) is entries elsewhere too.
        assert!(with(&["ldap://b.example.org"]).is_err());
    }

    #[test]
    fn referrals_to_listed_naming_contexts_or_below_them_are_ignored_and_others_still_fail() {
        let child = "ldap://child.corp.test/DC=child,DC=corp,DC=test";
        let with = |urls: &[&str], ignored: &[&str]| {
            let dir = Script::default();
            let mut p = page(vec![one("uid=a")], None, 0).unwrap();
            p.referrals = urls.iter().map(|u| u.to_string()).collect();
            dir.answers.borrow_mut().push(Ok(p));
            let req = SearchRequest::new("DC=corp,DC=test", Scope::Subtree, "(uid=*)", &["uid"]).paged(2);
            Paging::default().next(&dir, &conn(), req, "list users", &Referrals::ignoring(ignored))
        };
        let listed = ["dc=Child, dc=Corp, dc=Test"];
        let found = with(
            &[child, "ldap://child.corp.test/OU=Sales,DC=child,DC=corp,DC=test"],
            &listed,
        )
        .unwrap();
        assert_eq!(found.entries.len(), 1);
        // Unlisted: a sibling, and a name that merely ends like a listed one.
        for other in [
            "ldap://emea.corp.test/DC=emea,DC=corp,DC=test",
            "ldap://x.corp.test/DC=otherchild,DC=corp,DC=test",
        ] {
            let err = with(&[child, other], &listed).unwrap_err();
            assert!(
                matches!(&err, PluginError::Config(m) if m.contains(other) && m.contains("ignore_referrals")),
                "{err:?}"
            );
        }
        assert!(with(&[child], &[]).is_err());
    }
}

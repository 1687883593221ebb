//! Capabilities as data: "may this source's plugin reach that URL?".
//!
//! Every outbound request of a connector is checked here, and again after each redirect and at
//! DNS resolution (a name that resolves to a private address is refused unless the source allows
//! private addresses, which defeats DNS rebinding). LDAP connections (`ldap://`, `ldaps://`) go
//! through the same allowlist and address rule; an LDAP origin never admits an HTTP request, nor
//! the other way round.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use url::Url;

/// Why a URL or origin was refused; the message tells the administrator what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// Not an absolute http(s) URL.
    #[error("`{0}` is not an absolute http or https URL")]
    BadUrl(String),
    /// User names or passwords inside URLs are refused: credentials belong in secrets.
    #[error("`{0}` carries credentials in the URL; put them in a secret instead")]
    CredentialsInUrl(String),
    /// The origin is not in the source's allowlist.
    #[error(
        "{origin} is not in this source's allowed hosts ({allowed}); add it to the source's `allow_hosts` if it should be reachable"
    )]
    NotAllowed {
        /// The refused origin.
        origin: String,
        /// The allowlist, for the message.
        allowed: String,
    },
    /// Not an `ldap://` or `ldaps://` URL of a server (no path, no credentials).
    #[error("`{0}` is not an LDAP server URL; write ldap://host[:port] (StartTLS) or ldaps://host[:port]")]
    BadLdapUrl(String),
    /// An LDAP connection without any TLS, without the explicit opt-in.
    #[error(
        "{0} with transport `plain` would send the bind password and the directory's data unencrypted; use StartTLS (the default for ldap://) or ldaps://, or set `allow_plain_ldap: true` for this source if the server has no TLS"
    )]
    PlainLdap(String),
    /// Plain HTTP without the explicit opt-in.
    #[error(
        "{0} uses plain HTTP; use https, or set `allow_insecure_http: true` for this source if the server has no TLS"
    )]
    PlainHttp(String),
    /// The address is private, loopback or link-local and the source may not reach those.
    #[error(
        "{host} resolves to {addr}, a {class} address; set `allow_private_addresses: true` for this source if it is an internal server"
    )]
    PrivateAddress {
        /// The name that was resolved.
        host: String,
        /// The address it resolved to.
        addr: IpAddr,
        /// "private", "loopback", "link-local", …
        class: &'static str,
    },
}

/// The protocols an origin may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP (needs `allow_insecure_http`).
    Http,
    /// HTTPS.
    Https,
    /// LDAP on port 389 by default, upgraded by StartTLS unless the source allows plain LDAP.
    Ldap,
    /// LDAP over TLS, port 636 by default.
    Ldaps,
}

impl Scheme {
    fn parse(s: &str) -> Option<Scheme> {
        match s {
            "http" => Some(Scheme::Http),
            "https" => Some(Scheme::Https),
            "ldap" => Some(Scheme::Ldap),
            "ldaps" => Some(Scheme::Ldaps),
            _ => None,
        }
    }

    /// As URLs write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Ldap => "ldap",
            Scheme::Ldaps => "ldaps",
        }
    }

    /// The port an origin of this scheme has when it names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
            Scheme::Ldap => 389,
            Scheme::Ldaps => 636,
        }
    }

    /// True for the schemes of the `http` import.
    pub fn is_http(self) -> bool {
        matches!(self, Scheme::Http | Scheme::Https)
    }
}

/// `scheme://host[:port]`, with `*.` allowed as the first label of the host to match any
/// subdomain (not the domain itself).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Origin {
    scheme: Scheme,
    host: String,
    port: u16,
}

impl Origin {
    /// The origin of an http, https, ldap or ldaps URL.
    pub fn of(url: &Url) -> Result<Origin, Denied> {
        let scheme = Scheme::parse(url.scheme()).ok_or_else(|| Denied::BadUrl(url.to_string()))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Denied::CredentialsInUrl(redact_userinfo(url)));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| Denied::BadUrl(url.to_string()))?;
        // `ldap` is not a scheme the URL standard knows, so its port is never filled in.
        let port = url.port().unwrap_or(scheme.default_port());
        Ok(Origin {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// True for `https`.
    pub fn is_https(&self) -> bool {
        self.scheme == Scheme::Https
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The port (the scheme's default when the origin names none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host part (a name, an IPv4 literal or a bracketed IPv6 literal).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// True for a `*.domain` entry, which admits every subdomain.
    pub fn is_wildcard(&self) -> bool {
        self.host.starts_with("*.")
    }

    /// Whether this allowlist entry admits `other`.
    pub fn admits(&self, other: &Origin) -> bool {
        if self.scheme != other.scheme || self.port != other.port {
            return false;
        }
        match self.host.strip_prefix("*.") {
            Some(domain) => other.host.len() > domain.len() + 1 && other.host.ends_with(&format!(".{domain}")),
            None => self.host == other.host,
        }
    }
}

impl TryFrom<String> for Origin {
    type Error = Denied;
    fn try_from(s: String) -> Result<Self, Denied> {
        s.parse()
    }
}

impl From<Origin> for String {
    fn from(o: Origin) -> String {
        o.to_string()
    }
}

impl std::str::FromStr for Origin {
    type Err = Denied;
    fn from_str(s: &str) -> Result<Self, Denied> {
        let trimmed = s.trim().trim_end_matches('/');
        // `*.` is not a valid URL host; parse with a stand-in label and put the wildcard back.
        let (parsed, wildcard) = match trimmed.split_once("://*.") {
            Some((scheme, rest)) => (format!("{scheme}://wildcard.{rest}"), true),
            None => (trimmed.to_string(), false),
        };
        let url = Url::parse(&parsed).map_err(|_| Denied::BadUrl(s.to_string()))?;
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            return Err(Denied::BadUrl(format!(
                "{s} (an allowed host is scheme://host[:port], without a path)"
            )));
        }
        let mut origin = Origin::of(&url)?;
        if wildcard {
            origin.host = origin.host.replacen("wildcard.", "*.", 1);
        }
        Ok(origin)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.scheme.as_str();
        if self.port == self.scheme.default_port() {
            write!(f, "{scheme}://{}", self.host)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Where a source's connector may send requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetPolicy {
    /// Allowed origins (`scheme://host[:port]`, `*.` wildcard for subdomains).
    #[serde(default)]
    pub allow_hosts: Vec<Origin>,
    /// Plain `http://` origins are refused unless this is set.
    #[serde(default)]
    pub allow_insecure_http: bool,
    /// Private, loopback and link-local addresses are refused unless this is set.
    #[serde(default)]
    pub allow_private_addresses: bool,
    /// LDAP without any TLS (transport `plain`) is refused unless this is set; an `ldap://`
    /// origin alone needs no opt-in, since the host upgrades it with StartTLS.
    #[serde(default)]
    pub allow_plain_ldap: bool,
}

impl NetPolicy {
    /// Checks the policy itself: plain-HTTP entries need the opt-in.
    pub fn validate(&self) -> Result<(), Denied> {
        match self.allow_hosts.iter().find(|o| o.scheme == Scheme::Http) {
            Some(o) if !self.allow_insecure_http => Err(Denied::PlainHttp(o.to_string())),
            _ => Ok(()),
        }
    }

    /// May a request go to `url`? Returns its origin when it may. IP literals are checked
    /// against the private-address rule here; names are checked when they resolve.
    pub fn check_url(&self, url: &str) -> Result<(Url, Origin), Denied> {
        let parsed = Url::parse(url).map_err(|_| Denied::BadUrl(truncate(url)))?;
        let origin = Origin::of(&parsed)?;
        if !origin.scheme.is_http() {
            return Err(Denied::BadUrl(truncate(url)));
        }
        self.admit(&origin)?;
        if !origin.is_https() && !self.allow_insecure_http {
            return Err(Denied::PlainHttp(origin.to_string()));
        }
        if let Some(ip) = parsed.host().and_then(|h| match h {
            url::Host::Ipv4(a) => Some(IpAddr::V4(a)),
            url::Host::Ipv6(a) => Some(IpAddr::V6(a)),
            url::Host::Domain(_) => None,
        }) {
            self.check_addr(origin.host(), ip)?;
        }
        Ok((parsed, origin))
    }

    /// May an LDAP connection go to `url` (`ldap://host[:port]` or `ldaps://host[:port]`)?
    /// Returns its origin when it may; an IP literal is checked against the private-address
    /// rule here, a name when the caller resolves it. Whether TLS may be left out is the
    /// caller's to ask ([`NetPolicy::allow_plain_ldap`]).
    pub fn check_ldap_url(&self, url: &str) -> Result<Origin, Denied> {
        let bad = || Denied::BadLdapUrl(truncate(url));
        let parsed = Url::parse(url.trim()).map_err(|_| bad())?;
        let origin = Origin::of(&parsed).map_err(|e| match e {
            Denied::BadUrl(_) => bad(),
            other => other,
        })?;
        if origin.scheme.is_http()
            || !matches!(parsed.path(), "" | "/")
            || parsed.query().is_some()
            || parsed.fragment().is_some()
        {
            return Err(bad());
        }
        self.admit(&origin)?;
        // `ldap` URLs have opaque hosts: an IP literal arrives as text.
        let literal = origin.host().trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<IpAddr>() {
            self.check_addr(origin.host(), ip)?;
        }
        Ok(origin)
    }

    /// Whether the allowlist admits `origin`, or why not.
    fn admit(&self, origin: &Origin) -> Result<(), Denied> {
        if !self.allow_hosts.iter().any(|a| a.admits(origin)) {
            let allowed = if self.allow_hosts.is_empty() {
                "none".to_string()
            } else {
                self.allow_hosts
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(Denied::NotAllowed {
                origin: origin.to_string(),
                allowed,
            });
        }
        Ok(())
    }

    /// May a connection go to `addr`, which `host` resolved to?
    pub fn check_addr(&self, host: &str, addr: IpAddr) -> Result<(), Denied> {
        match (self.allow_private_addresses, non_public_class(addr)) {
            (false, Some(class)) => Err(Denied::PrivateAddress {
                host: host.to_string(),
                addr,
                class,
            }),
            _ => Ok(()),
        }
    }
}

/// The kind of non-public address `addr` is, or `None` for a public one. IPv6 forms that carry
/// an IPv4 address (mapped, compatible, NAT64, 6to4) are judged by the address they carry, so a
/// private IPv4 address cannot be reached by writing it in IPv6.
pub fn non_public_class(addr: IpAddr) -> Option<&'static str> {
    match addr {
        IpAddr::V4(a) => v4_class(a),
        IpAddr::V6(a) => match embedded_v4(a) {
            Some(v4) => v4_class(v4).or_else(|| v6_class(a)),
            None => v6_class(a),
        },
    }
}

/// The IPv4 address an IPv6 address carries: IPv4-mapped `::ffff:0:0/96`, IPv4-compatible
/// `::/96` (deprecated, but stacks still route it), NAT64 `64:ff9b::/96` and 6to4 `2002::/16`.
fn embedded_v4(a: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = a.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = a.to_ipv4_mapped() {
        Some(v4)
    } else if (s[..6] == [0; 6] && !a.is_loopback() && !a.is_unspecified()) || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        Some(low)
    } else if s[0] == 0x2002 {
        Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ))
    } else {
        None
    }
}

fn v4_class(a: Ipv4Addr) -> Option<&'static str> {
    let o = a.octets();
    if a.is_loopback() {
        Some("loopback")
    } else if a.is_private() {
        Some("private")
    } else if a.is_link_local() {
        Some("link-local")
    } else if a.is_unspecified() || o[0] == 0 {
        Some("unspecified")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("shared (carrier-grade NAT)")
    } else if o[0] == 198 && (o[1] & 0xfe) == 18 {
        Some("benchmarking")
    } else if o[..3] == [192, 0, 0] {
        Some("IETF protocol assignments")
    } else if a.is_broadcast() || a.is_multicast() || o[0] >= 240 {
        Some("reserved")
    } else {
        None
    }
}

fn v6_class(a: Ipv6Addr) -> Option<&'static str> {
    let s = a.segments();
    if a.is_loopback() {
        Some("loopback")
    } else if a.is_unspecified() {
        Some("unspecified")
    } else if a.is_unique_local() {
        Some("private (unique local)")
    } else if a.is_unicast_link_local() {
        Some("link-local")
    } else if (s[0] & 0xffc0) == 0xfec0 {
        Some("site-local")
    } else if a.is_multicast() {
        Some("reserved")
    } else if s[..3] == [0x64, 0xff9b, 1] {
        // Local-use NAT64 (RFC 8215): translated to whatever the operator's network holds.
        Some("NAT64 (local use)")
    } else if s[..2] == [0x2001, 0] {
        // Teredo tunnels to an address the host cannot judge.
        Some("Teredo tunnel")
    } else {
        None
    }
}

fn redact_userinfo(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

fn truncate(s: &str) -> String {
    s.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str], http: bool, private: bool) -> NetPolicy {
        NetPolicy {
            allow_hosts: hosts.iter().map(|h| h.parse().unwrap()).collect(),
            allow_insecure_http: http,
            allow_private_addresses: private,
            allow_plain_ldap: false,
        }
    }

    #[test]
    fn allowlist_table() {
        let p = policy(
            &[
                "https://graph.microsoft.com",
                "https://*.okta.com",
                "http://ldap.corp:8080",
            ],
            true,
            true,
        );
        let cases = [
            ("https://graph.microsoft.com/v1.0/users", true),
            ("https://GRAPH.microsoft.com:443/v1.0/users", true),
            ("https://graph.microsoft.com:8443/v1.0/users", false),
            ("http://graph.microsoft.com/v1.0/users", false),
            ("https://graph.microsoft.com.evil.io/", false),
            ("https://acme.okta.com/api/v1/users", true),
            ("https://okta.com/api/v1/users", false),
            ("https://a.b.okta.com/", true),
            ("https://evilokta.com/", false),
            ("http://ldap.corp:8080/x", true),
            ("http://ldap.corp/x", false),
            ("https://user:pw@graph.microsoft.com/", false),
            ("ftp://graph.microsoft.com/", false),
            ("/relative/path", false),
        ];
        for (url, ok) in cases {
            assert_eq!(p.check_url(url).is_ok(), ok, "{url}: {:?}", p.check_url(url));
        }
    }

    #[test]
    fn ldap_origins_admit_ldap_only_and_need_no_http_opt_in() {
        let p = policy(&["ldap://dir.corp", "ldaps://ad.corp", "https://api.corp"], false, true);
        // `ldap://` is upgraded by StartTLS, so it is not plain HTTP.
        assert!(p.validate().is_ok());
        assert_eq!(
            "ldap://dir.corp:389".parse::<Origin>().unwrap().to_string(),
            "ldap://dir.corp"
        );
        assert_eq!(
            "ldaps://AD.corp".parse::<Origin>().unwrap().to_string(),
            "ldaps://ad.corp"
        );
        for (url, ok) in [
            ("ldap://dir.corp", true),
            ("ldap://DIR.corp:389/", true),
            ("ldaps://ad.corp", true),
            ("ldaps://ad.corp:636", true),
            ("ldap://dir.corp:3389", false),
            ("ldaps://dir.corp", false),
            ("ldap://ad.corp", false),
            ("ldap://dir.corp/dc=corp??sub", false),
            ("ldap://user:pw@dir.corp", false),
            ("https://api.corp", false),
            ("ldapi:///run/slapd.sock", false),
        ] {
            assert_eq!(p.check_ldap_url(url).is_ok(), ok, "{url}: {:?}", p.check_ldap_url(url));
        }
        // An LDAP origin never admits an HTTP request, and an HTTP one no LDAP connection.
        for url in ["http://dir.corp:389/", "https://ad.corp:636/", "ldap://dir.corp/"] {
            assert!(p.check_url(url).is_err(), "{url}");
        }
        assert!(p.check_url("https://api.corp/x").is_ok());
        let err = p.check_ldap_url("https://api.corp").unwrap_err().to_string();
        assert!(err.contains("not an LDAP server URL"), "{err}");
        // An IP literal is judged by the private-address rule at once.
        let public_only = policy(&["ldap://10.0.0.5"], false, false);
        let err = public_only.check_ldap_url("ldap://10.0.0.5").unwrap_err().to_string();
        assert!(err.contains("allow_private_addresses"), "{err}");
    }

    #[test]
    fn plain_http_needs_the_opt_in() {
        let p = policy(&["http://intranet.corp"], false, true);
        assert!(matches!(p.validate(), Err(Denied::PlainHttp(_))));
        assert!(matches!(
            p.check_url("http://intranet.corp/"),
            Err(Denied::PlainHttp(_))
        ));
        assert!(policy(&["http://intranet.corp"], true, true).validate().is_ok());
    }

    #[test]
    fn private_addresses_table() {
        let cases = [
            ("127.0.0.1", Some("loopback")),
            ("10.1.2.3", Some("private")),
            ("172.16.0.1", Some("private")),
            ("192.168.1.1", Some("private")),
            ("169.254.169.254", Some("link-local")),
            ("100.64.0.1", Some("shared (carrier-grade NAT)")),
            ("0.0.0.0", Some("unspecified")),
            ("::1", Some("loopback")),
            ("fd00::1", Some("private (unique local)")),
            ("fe80::1", Some("link-local")),
            ("::ffff:10.0.0.1", Some("private")),
            ("198.18.0.1", Some("benchmarking")),
            ("198.19.255.254", Some("benchmarking")),
            ("198.20.0.1", None),
            ("192.0.0.8", Some("IETF protocol assignments")),
            ("192.0.1.1", None),
            // IPv6 forms carrying an IPv4 address are judged by that address.
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::10.0.0.1", Some("private")),
            ("::169.254.169.254", Some("link-local")),
            ("::20.190.128.1", None),
            ("64:ff9b::a9fe:a9fe", Some("link-local")),
            ("64:ff9b::7f00:1", Some("loopback")),
            ("64:ff9b::c0a8:101", Some("private")),
            ("64:ff9b::14be:8001", None),
            ("64:ff9b:1::1", Some("NAT64 (local use)")),
            ("2002:a00:1::1", Some("private")),
            ("2002:7f00:1::1", Some("loopback")),
            ("2002:c612:1::1", Some("benchmarking")),
            ("2002:14be:8001::1", None),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Some("Teredo tunnel")),
            ("2001:db8::1", None),
            ("fec0::1", Some("site-local")),
            ("feff::1", Some("site-local")),
            ("ff02::1", Some("reserved")),
            ("20.190.128.1", None),
            ("2603:1006::1", None),
        ];
        for (ip, class) in cases {
            assert_eq!(non_public_class(ip.parse().unwrap()), class, "{ip}");
        }
        let strict = policy(&["https://10.0.0.5", "https://[::1]:8443"], false, false);
        assert!(matches!(
            strict.check_url("https://10.0.0.5/users"),
            Err(Denied::PrivateAddress { .. })
        ));
        assert!(matches!(
            strict.check_url("https://[::1]:8443/"),
            Err(Denied::PrivateAddress { .. })
        ));
        let lax = policy(&["https://10.0.0.5"], false, true);
        assert!(lax.check_url("https://10.0.0.5/users").is_ok());
    }

    #[test]
    fn origins_parse_and_print() {
        let o: Origin = "https://Login.Microsoftonline.com/".parse().unwrap();
        assert_eq!(o.to_string(), "https://login.microsoftonline.com");
        let o: Origin = "http://127.0.0.1:8080".parse().unwrap();
        assert_eq!(o.to_string(), "http://127.0.0.1:8080");
        assert_eq!(
            "https://*.okta.com".parse::<Origin>().unwrap().to_string(),
            "https://*.okta.com"
        );
        assert!("https://x.com/path".parse::<Origin>().is_err());
        assert!("not a url".parse::<Origin>().is_err());
    }

    #[test]
    fn refusals_say_what_to_change() {
        let p = policy(&["https://graph.microsoft.com"], false, false);
        let msg = p.check_url("https://attacker.example/x").unwrap_err().to_string();
        assert!(
            msg.contains("https://attacker.example") && msg.contains("allow_hosts"),
            "{msg}"
        );
    }
}

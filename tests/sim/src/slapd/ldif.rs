//! LDIF (RFC 2849) as the OpenLDAP tools read and write it: records written for `ldapadd`,
//! `ldapmodify` and `slapadd`, entries read back from `ldapsearch -LLL`.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// One `attr: value` line; the value is base64 (`attr:: …`) when LDIF cannot carry it as
/// it is (RFC 2849 SAFE-STRING: no NUL, CR or LF, ASCII only, no leading space, `:` or `<`,
/// no trailing space).
pub(crate) fn line(out: &mut String, attr: &str, value: &str) {
    let safe = value
        .bytes()
        .all(|b| b.is_ascii() && b != 0 && b != b'\n' && b != b'\r')
        && !value.starts_with([' ', ':', '<'])
        && !value.ends_with(' ');
    if safe {
        out.push_str(&format!("{attr}: {value}\n"));
    } else {
        out.push_str(&format!("{attr}:: {}\n", STANDARD.encode(value)));
    }
}

/// `value` escaped for use as an RDN value (RFC 4514 §2.4).
pub(crate) fn escape_rdn(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

/// An entry as `ldapsearch` returned it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry {
    /// The entry's DN.
    pub dn: String,
    /// Attribute name (lower case) → values, in the order the server sent them.
    pub attrs: BTreeMap<String, Vec<String>>,
}

impl Entry {
    /// The values of `attr` (any case); none when the entry does not have it.
    pub fn values(&self, attr: &str) -> &[String] {
        self.attrs.get(&attr.to_lowercase()).map_or(&[], Vec::as_slice)
    }

    /// The first value of `attr`, if any.
    pub fn first(&self, attr: &str) -> Option<&str> {
        self.values(attr).first().map(String::as_str)
    }
}

/// Entries of `ldapsearch -LLL` output: folded lines joined, comments skipped, base64 values
/// decoded (bytes that are not UTF-8 are replaced, as binary attributes are not read here).
pub(crate) fn parse(text: &str) -> Vec<Entry> {
    let mut unfolded: Vec<String> = Vec::new();
    for raw in text.lines() {
        match (raw.strip_prefix(' '), unfolded.last_mut()) {
            (Some(rest), Some(prev)) => prev.push_str(rest),
            _ => unfolded.push(raw.to_string()),
        }
    }
    let mut entries = Vec::new();
    let mut current: Option<Entry> = None;
    for l in unfolded {
        if l.is_empty() {
            entries.extend(current.take());
            continue;
        }
        if l.starts_with('#') {
            continue;
        }
        let Some((attr, rest)) = l.split_once(':') else {
            continue;
        };
        let value = match rest.strip_prefix(':') {
            Some(b64) => STANDARD
                .decode(b64.trim())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default(),
            None => rest.strip_prefix(' ').unwrap_or(rest).to_string(),
        };
        if attr.eq_ignore_ascii_case("dn") {
            entries.extend(current.take());
            current = Some(Entry {
                dn: value,
                attrs: BTreeMap::new(),
            });
        } else if let Some(e) = current.as_mut() {
            e.attrs.entry(attr.to_lowercase()).or_default().push(value);
        }
    }
    entries.extend(current);
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_ldif_cannot_carry_plainly_are_base64() {
        let mut out = String::new();
        line(&mut out, "cn", "Ada Lovelace");
        line(&mut out, "cn", "Zoë");
        line(&mut out, "cn", ":colon");
        line(&mut out, "cn", "trailing ");
        assert_eq!(
            out,
            "cn: Ada Lovelace\ncn:: Wm/Dqw==\ncn:: OmNvbG9u\ncn:: dHJhaWxpbmcg\n"
        );
    }

    #[test]
    fn rdn_values_are_escaped_as_rfc_4514_says() {
        assert_eq!(escape_rdn("Smith, John"), "Smith\\, John");
        assert_eq!(escape_rdn("#1 team "), "\\#1 team\\ ");
        assert_eq!(escape_rdn("a=b+c"), "a\\=b\\+c");
    }

    #[test]
    fn search_output_is_read_back_with_folds_and_base64() {
        let text = "dn: uid=ada,ou=people,dc=example,dc=org\nuid: ada\ncn:: Wm/Dqw==\ndescrip\n tion: long\n  value\n\n# a comment\ndn: cn=x,dc=example,dc=org\nmember: a\nmember: b\n";
        let e = parse(text);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].dn, "uid=ada,ou=people,dc=example,dc=org");
        assert_eq!(e[0].first("CN"), Some("Zoë"));
        assert_eq!(e[0].first("description"), Some("long value"));
        assert_eq!(e[1].values("member"), ["a", "b"]);
        assert!(e[1].values("uid").is_empty());
    }
}

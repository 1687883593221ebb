//! Entries as Roster's records: ids from `entryUUID` or `objectGUID`, users with their mapped
//! attributes, groups, and the member values a group entry holds.

use base64::Engine;
use roster_sdk::ldap::{Entry, ad_guid, first_text, normalize_dn, values};
use roster_sdk::{Group, User};

use crate::settings::Settings;

/// Active Directory's `ADS_UF_ACCOUNTDISABLE` bit of `userAccountControl`.
pub const ACCOUNT_DISABLE: i64 = 0x2;

/// Why an entry was not made a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// It has no value of the id attribute.
    NoId,
    /// It has no value of the name attribute (username or group name).
    NoName,
}

/// The entry's immutable id: `objectGUID` (16 bytes) as the GUID string Windows shows, any
/// other 16-byte binary value the same way, text as it is.
pub fn id(entry: &Entry, attribute: &str) -> Option<String> {
    let raw = values(entry, attribute).find(|v| !v.is_empty())?;
    if attribute.eq_ignore_ascii_case("objectGUID") {
        return ad_guid(raw);
    }
    match std::str::from_utf8(raw) {
        Ok(text) => Some(text.trim().to_string()).filter(|t| !t.is_empty()),
        Err(_) => ad_guid(raw),
    }
}

/// An attribute value as text for mappings: UTF-8 as it is, binary as base64.
fn text(value: &[u8]) -> String {
    match std::str::from_utf8(value) {
        Ok(t) => t.to_string(),
        Err(_) => base64::engine::general_purpose::STANDARD.encode(value),
    }
}

/// The attributes passed to mappings: `dn`, then every value of the extra attributes.
fn attributes(entry: &Entry, s: &Settings) -> Vec<(String, String)> {
    let mut out = vec![("dn".to_string(), entry.dn.clone())];
    for name in &s.extra_attributes {
        out.extend(values(entry, name).map(|v| (name.clone(), text(v))));
    }
    out
}

/// A user entry as a user.
pub fn user(entry: &Entry, s: &Settings) -> Result<User, Skip> {
    let id = id(entry, s.id_attribute()).ok_or(Skip::NoId)?;
    let username = first_text(entry, s.username_attribute()).ok_or(Skip::NoName)?;
    let active = first_text(entry, "userAccountControl")
        .and_then(|v| v.parse::<i64>().ok())
        .is_none_or(|uac| uac & ACCOUNT_DISABLE == 0);
    Ok(User {
        id,
        username: username.to_string(),
        email: first_text(entry, &s.email_attribute).map(str::to_string),
        display_name: first_text(entry, &s.display_name_attribute)
            .or_else(|| first_text(entry, "cn"))
            .map(str::to_string),
        active,
        attributes: attributes(entry, s),
    })
}

/// A group entry as a group (its members are read apart).
pub fn group(entry: &Entry, s: &Settings) -> Result<Group, Skip> {
    let id = id(entry, s.id_attribute()).ok_or(Skip::NoId)?;
    let name = first_text(entry, &s.group_name_attribute).ok_or(Skip::NoName)?;
    Ok(Group {
        id,
        name: name.to_string(),
        description: first_text(entry, "description").map(str::to_string),
        attributes: attributes(entry, s),
    })
}

/// The DN of a `uniqueMember` value without its optional UID (`dn#'0101'B`, RFC 4517
/// NameAndOptionalUID).
pub fn strip_uid(value: &str) -> &str {
    match value.rsplit_once("#'") {
        Some((dn, uid)) if uid.ends_with("'B") && uid[..uid.len() - 2].chars().all(|c| c == '0' || c == '1') => dn,
        _ => value,
    }
}

/// How DNs are keyed in the index: normalised, with the source's `base_dn` cut off the end
/// (most of a DN's length); a DN outside `base_dn` keeps it whole behind a `,`, which no cut
/// key starts with.
#[derive(Debug, Clone)]
pub struct DnKeys {
    suffix: String,
    base: String,
}

impl DnKeys {
    /// Keys below `base_dn`.
    pub fn new(base_dn: &str) -> Self {
        let base = normalize_dn(base_dn);
        DnKeys {
            suffix: format!(",{base}"),
            base,
        }
    }

    /// The key of `dn`.
    pub fn key(&self, dn: &str) -> String {
        let n = normalize_dn(dn);
        if let Some(rest) = n.strip_suffix(&self.suffix) {
            rest.to_string()
        } else if n == self.base {
            "=".to_string()
        } else {
            format!(",{n}")
        }
    }
}

/// The user-name key of `memberUid` values and usernames: LDAP compares `uid` ignoring case.
pub fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_member_uids_are_cut_off_and_nothing_else() {
        assert_eq!(strip_uid("uid=a,dc=x#'0101'B"), "uid=a,dc=x");
        assert_eq!(strip_uid("uid=a,dc=x"), "uid=a,dc=x");
        assert_eq!(strip_uid("cn=#'x'B"), "cn=#'x'B");
    }

    #[test]
    fn dn_keys_cut_the_base_and_keep_outsiders_apart() {
        let k = DnKeys::new("DC=Example, DC=org");
        assert_eq!(k.key("uid=Alice,ou=People,dc=example,dc=org"), "uid=alice,ou=people");
        assert_eq!(k.key("uid=alice,dc=other"), ",uid=alice,dc=other");
        assert_eq!(k.key("dc=example,dc=org"), "=");
    }
}

//! `password-check-for` (WIT 0.1.2): where a person's password is checked. The person's entry
//! is searched by its id attribute (`entryUUID`, `objectGUID`), which survives renames and
//! moves, so the DN named is the one the directory holds now, not the one of the last fetch.
//! The host then binds as that DN with the password on a connection of its own; the password
//! never reaches this component.

use roster_sdk::PluginError;
use roster_sdk::ldap::{self, Directory, SearchRequest, escape_filter_bytes, escape_filter_value, search_once};

use crate::{LdapBind, PasswordCheck, Person};

use crate::fetch::Ctx;
use crate::model;
use crate::settings::Settings;

/// Where `person`'s password is checked: a bind as the entry whose id is `person.id`, on the
/// source's server. `None` when no entry of the user search has that id (the person left the
/// directory since the last fetch).
pub fn password_check(
    s: &Settings,
    person: &Person,
    dir: &dyn Directory,
) -> Result<Option<PasswordCheck>, PluginError> {
    if person.id.trim().is_empty() {
        return Err(PluginError::Config(
            "the person to check has no id; Roster links people to an entry's id attribute".into(),
        ));
    }
    let ctx = Ctx::new(s);
    let filter = format!(
        "(&{}{})",
        parenthesised(s.user_filter()),
        id_filter(s.id_attribute(), &person.id)?
    );
    let what = format!(
        "find the entry of {} (id {}) under {} to check their password",
        person.username,
        person.id,
        s.user_base()
    );
    let req = SearchRequest::new(s.user_base(), s.user_scope.scope(), &filter, &[s.id_attribute()]).paged(2);
    let found = search_once(dir, &ctx.conn, req, &what, &ctx.referrals)?;
    // The filter matched on the id; the id read back must be that id too (a server matching
    // case-insensitively, or a text id given for a binary attribute, must not pick someone else).
    let mut entries = found
        .entries
        .iter()
        .filter(|e| model::id(e, s.id_attribute()).is_some_and(|id| id.eq_ignore_ascii_case(&person.id)));
    let Some(entry) = entries.next() else {
        return Ok(None);
    };
    if entries.next().is_some() {
        return Err(PluginError::Config(format!(
            "{what}: two entries have {} {}; an id attribute must be unique (OpenLDAP: entryUUID; Active Directory: objectGUID)",
            s.id_attribute(),
            person.id
        )));
    }
    let conn = ctx.conn;
    Ok(Some(PasswordCheck::LdapBind(LdapBind {
        url: conn.url,
        transport: conn.transport,
        ca_certificates: conn.ca_certificates,
        dn: entry.dn.clone(),
    })))
}

/// A filter with its outer parentheses, as `(&…)` needs its parts.
fn parenthesised(filter: &str) -> String {
    let f = filter.trim();
    if f.starts_with('(') {
        f.to_string()
    } else {
        format!("({f})")
    }
}

/// `(attribute=value)` for the id: `objectGUID` as its 16 bytes (the GUID string Windows shows,
/// as [`ldap::ad_guid`] writes it), any other attribute as text.
fn id_filter(attribute: &str, id: &str) -> Result<String, PluginError> {
    if attribute.eq_ignore_ascii_case("objectGUID") {
        let bytes = guid_bytes(id).ok_or_else(|| {
            PluginError::Config(format!(
                "`{id}` is not an objectGUID as Roster writes one (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
            ))
        })?;
        return Ok(format!("({attribute}={})", escape_filter_bytes(&bytes)));
    }
    Ok(format!("({attribute}={})", escape_filter_value(id)))
}

/// The 16 bytes of a GUID string as [`ldap::ad_guid`] writes them (Data1–Data3 little-endian).
fn guid_bytes(text: &str) -> Option<Vec<u8>> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || text.len() != 36 {
        return None;
    }
    let b: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect::<Option<_>>()?;
    let out = vec![
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15],
    ];
    // Written back, it must be the text given.
    (ldap::ad_guid(&out)?.eq_ignore_ascii_case(text)).then_some(out)
}

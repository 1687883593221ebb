//! The `ldap` connector's reading of a directory's answers: search pages (entries with any DN,
//! attribute descriptions such as `member;range=0-1499`, any value bytes such as binary
//! `objectGUID`s, paging cookies, referrals, result codes), `cookie-expired` answers and host
//! failures, read through the SDK's driver in a full fetch, an incremental fetch from a delta
//! token, or a `check`, as OpenLDAP or as Active Directory.
//!
//! Input, LDIF-like lines (`\n`, a trailing `\r` dropped; `#` starts a comment):
//!
//! * the first line is a header, whose words say what to run (other words describe the seed):
//!   `full`, `delta` or `check`; `ad` for Active Directory; `flat` for nested groups off;
//!   `nosync` for incremental synchronisation off; `extra` for extra attributes; `upn` for
//!   `userPrincipalName` as the user name; `anon` for an anonymous bind; `bases` for user and
//!   group base DNs of their own;
//! * then the directory's answers in the order the connector searches, each starting with a
//!   line `--- …`: `--- expired` (the host lost the paging cookie), `--- config|auth|transient|
//!   fatal|expired-delta <message>` (the host failed the search so), `--- <code> <message>` (a
//!   page ending with that result code) or `--- <message>` (a page ending in success);
//! * in a page, before its first entry: `cookie: <bytes>` and `referral: <url>`; then entries,
//!   each `dn: <dn>` followed by its attributes, one value a line (`name: <bytes>`, or
//!   `name:: <base64>` as LDIF writes binary values; `name` alone is an attribute without
//!   values). Consecutive lines of one name are one attribute.
//!
//! A search past the last answer fails transiently (as a dropped connection does). When a fetch
//! ends with a delta token and answers remain, an incremental fetch from that token reads them.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use base64::Engine;
use ldap::Ldap;
use ldap::cursor::{DeltaState, Index, Mark, Members};
use ldap::settings::Settings;
use roster_sdk::delta::DeltaFormat;
use roster_sdk::driver::Fetch;
use roster_sdk::ldap::{Attribute, Connection, Directory, Entry, LdapError, SearchPage, SearchRequest};
use roster_sdk::settings::Fingerprint;
use roster_sdk::{Imports, Page, PluginError};

use crate::entra::{Outcome, drive, well_formed_records};
use crate::split::text;

/// Fetches one input may run: the first, then incremental ones from each one's token.
const MAX_FETCHES: usize = 3;

/// Searches past the last answer one input may see: each fetch or check stops at the first
/// failed search, so more means the connector keeps asking a directory that stopped answering.
const MAX_UNANSWERED: u32 = 2 * MAX_FETCHES as u32;

/// The largest page the host serves (the contract's cap; a larger ask is a config error).
const MAX_PAGE_SIZE: u32 = 5000;

/// The directory answering from the script.
struct Script {
    answers: RefCell<VecDeque<Result<SearchPage, LdapError>>>,
    /// Cookies the script handed out: the only ones the connector may send back.
    cookies: RefCell<HashSet<Vec<u8>>>,
    /// Set when a page ended with a size, time or administrative limit.
    capped: Cell<bool>,
    /// Ids of every entry served (as the connector reads them), for "plausible" memberships.
    served_ids: RefCell<HashSet<String>>,
    unanswered: Cell<u32>,
    settings: Settings,
}

impl Directory for Script {
    fn search(&self, _: &Connection, req: SearchRequest) -> Result<SearchPage, LdapError> {
        assert!(
            req.page_size <= MAX_PAGE_SIZE,
            "the connector asked for pages of {} entries; the host serves at most {MAX_PAGE_SIZE}",
            req.page_size
        );
        if let Some(cookie) = &req.cookie {
            assert!(
                self.cookies.borrow().contains(cookie),
                "the connector sent a paging cookie the server never gave: {cookie:?}"
            );
        }
        let Some(answer) = self.answers.borrow_mut().pop_front() else {
            let n = self.unanswered.get() + 1;
            self.unanswered.set(n);
            assert!(
                n <= MAX_UNANSWERED,
                "the connector keeps searching after its searches failed ({n} unanswered)"
            );
            return Err(LdapError::Failed(PluginError::Transient(
                "the connection was reset".into(),
            )));
        };
        if let Ok(page) = &answer {
            if let Some(c) = page.cookie.as_ref().filter(|c| !c.is_empty()) {
                self.cookies.borrow_mut().insert(c.clone());
            }
            if matches!(page.result_code, 3 | 4 | 11) {
                self.capped.set(true);
            }
            let id = self.settings.id_attribute();
            self.served_ids
                .borrow_mut()
                .extend(page.entries.iter().filter_map(|e| ldap::model::id(e, id)));
        }
        answer
    }
}

fn failed(kind: &str, message: &str) -> Option<LdapError> {
    let m = message.to_string();
    let e = match kind {
        "config" => PluginError::Config(m),
        "auth" => PluginError::Auth(m),
        "transient" => PluginError::Transient(m),
        "fatal" => PluginError::Fatal(m),
        "expired-delta" => PluginError::ExpiredDelta(m),
        _ => return None,
    };
    Some(LdapError::Failed(e))
}

/// An answer's header line (after `---`) as an error or an empty page.
fn answer_head(head: &str) -> Result<SearchPage, LdapError> {
    let head = head.trim();
    let (word, rest) = head.split_once(' ').unwrap_or((head, ""));
    if word == "expired" {
        return Err(LdapError::CookieExpired);
    }
    if let Some(e) = failed(word, rest.trim()) {
        return Err(e);
    }
    let (result_code, message) = match word.parse::<u64>() {
        Ok(code) => (u32::try_from(code).unwrap_or(u32::MAX), rest.trim()),
        Err(_) => (0, head),
    };
    Ok(SearchPage {
        entries: Vec::new(),
        referrals: Vec::new(),
        cookie: None,
        result_code,
        message: message.to_string(),
    })
}

/// A value line's name and bytes: `name: bytes`, `name:: base64` (bytes as written when not
/// base64), `name` (no value).
fn value_line(line: &[u8]) -> (String, Option<Vec<u8>>) {
    let Some(colon) = line.iter().position(|b| *b == b':') else {
        return (text(line).trim().to_string(), None);
    };
    let name = text(&line[..colon]).trim().to_string();
    let rest = &line[colon + 1..];
    let value = match rest {
        [b':', b64 @ ..] => {
            let b64 = b64.trim_ascii();
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap_or_else(|_| b64.to_vec())
        }
        [b' ', v @ ..] => v.to_vec(),
        v => v.to_vec(),
    };
    (name, Some(value))
}

/// The script's answers.
fn answers(lines: &[&[u8]]) -> VecDeque<Result<SearchPage, LdapError>> {
    let mut out: VecDeque<Result<SearchPage, LdapError>> = VecDeque::new();
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(head) = line.strip_prefix(b"---") {
            out.push_back(answer_head(&text(head)));
            continue;
        }
        if line.is_empty() || line.starts_with(b"#") {
            continue;
        }
        let Some(Ok(page)) = out.back_mut() else {
            continue;
        };
        let (name, value) = value_line(line);
        let first = page.entries.is_empty();
        if first && name.eq_ignore_ascii_case("cookie") {
            page.cookie = Some(value.unwrap_or_default());
        } else if first && name.eq_ignore_ascii_case("referral") {
            page.referrals.push(text(&value.unwrap_or_default()).into_owned());
        } else if name.eq_ignore_ascii_case("dn") {
            page.entries.push(Entry {
                dn: text(&value.unwrap_or_default()).into_owned(),
                attributes: Vec::new(),
            });
        } else if let Some(entry) = page.entries.last_mut() {
            match entry.attributes.last_mut() {
                Some(a) if a.name == name => a.values.extend(value),
                _ => entry.attributes.push(Attribute {
                    name,
                    values: value.into_iter().collect(),
                }),
            }
        }
    }
    out
}

fn settings(header: &Words) -> String {
    let mut s = String::from(r#"{"url":"ldaps://ldap.test","base_dn":"dc=example,dc=org","page_size":2"#);
    if !header.has("anon") {
        s.push_str(r#","bind_dn":"cn=reader,dc=example,dc=org""#);
    }
    if header.has("ad") {
        s.push_str(r#","flavour":"active-directory""#);
    }
    if header.has("flat") {
        s.push_str(r#","nested_groups":false"#);
    }
    if header.has("nosync") {
        s.push_str(r#","use_incremental_sync":false"#);
    }
    if header.has("extra") {
        s.push_str(r#","extra_attributes":["department","objectSid","memberOf"]"#);
    }
    if header.has("upn") {
        s.push_str(r#","username_attribute":"userPrincipalName""#);
    }
    if header.has("bases") {
        s.push_str(r#","user_base_dn":"ou=people,dc=example,dc=org","group_base_dn":"ou=groups,dc=example,dc=org""#);
    }
    s.push('}');
    s
}

/// The header line's words (so a seed's header can also say what the seed is).
struct Words(String);

impl Words {
    fn has(&self, word: &str) -> bool {
        self.0.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| w == word)
    }
}

/// The delta token format of these settings.
fn tokens(scope: &Fingerprint) -> DeltaFormat<'_> {
    DeltaFormat {
        connector: "ldap",
        version: <Ldap as Fetch>::DELTA_VERSION,
        scope,
    }
}

/// The state the last full fetch of a small directory would have left: two users, two groups
/// (the second holding the first), as OpenLDAP's timestamp mark or Active Directory's USN.
fn state(s: &Settings) -> DeltaState {
    let mark = match s.flavour {
        ldap::settings::Flavour::Openldap => Mark::Timestamp {
            at: Some("20240102030405Z".into()),
            // The overlap window an incremental fetch reads again (changes made while the
            // last fetch ran), with alice read inside it.
            from: Some("20240102025405Z".into()),
            seen: BTreeMap::from([("u:uuid-alice".into(), 0)]),
        },
        ldap::settings::Flavour::ActiveDirectory => Mark::Usn {
            usn: 12000,
            dc: "dc1.corp.test".into(),
            invocation: "c2f8c88c-8334-1041-8a98-efe27c2e8701".into(),
        },
    };
    let members = if s.use_incremental_sync {
        vec![
            Members {
                users: vec![0, 1],
                groups: vec![],
            },
            Members {
                users: vec![],
                groups: vec![0],
            },
        ]
    } else {
        Vec::new()
    };
    DeltaState {
        mark,
        index: Index {
            users: vec![
                ("uid=alice,ou=people".into(), "alice".into(), "uuid-alice".into()),
                ("uid=bob,ou=people".into(), "bob".into(), "uuid-bob".into()),
            ],
            groups: vec![
                ("cn=devs,ou=groups".into(), "uuid-devs".into()),
                ("cn=staff,ou=groups".into(), "uuid-staff".into()),
            ],
            members,
        },
    }
}

/// What one fetch gave, page by page.
#[derive(Default)]
struct Fetched {
    users: Vec<String>,
    groups: Vec<String>,
    memberships: Vec<(String, String, bool)>,
    token: Option<String>,
}

/// Runs the fetches (or the check) the header asks for against the scripted answers.
pub fn run(data: &[u8]) {
    replay(data);
}

/// What an input came to: each fetch's (or the check's) outcome, and the records of each
/// complete fetch as (users, groups, memberships and removed memberships).
#[derive(Debug, Default)]
struct Replay {
    outcomes: Vec<Outcome>,
    counts: Vec<(usize, usize, usize)>,
}

fn replay(data: &[u8]) -> Replay {
    let lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    let header = Words(text(lines[0]).to_ascii_lowercase());
    let settings_json = settings(&header);
    let s: Settings = roster_sdk::settings::read(&settings_json).expect("the body's settings are valid");
    let scope = Fingerprint::of(&s).expect("the body's settings fingerprint");
    let script = Script {
        answers: RefCell::new(answers(&lines[1..])),
        cookies: RefCell::default(),
        capped: Cell::new(false),
        served_ids: RefCell::default(),
        unanswered: Cell::new(0),
        settings: s.clone(),
    };
    let host = Imports::ldap(&script);
    let mut out = Replay::default();
    if header.has("check") {
        let outcome = drive::<Ldap>("check", &settings_json, None, &host, |_| {});
        capped_fails(&outcome, script.capped.get());
        out.outcomes.push(outcome);
        return out;
    }
    let mut delta: Option<(String, Option<Index>)> = header.has("delta").then(|| {
        let st = state(&s);
        let token = tokens(&scope).encode(&st).expect("a state encodes");
        (token, Some(st.index))
    });
    for _ in 0..MAX_FETCHES {
        script.capped.set(false);
        let fetched = RefCell::new(Fetched::default());
        let outcome = drive::<Ldap>(
            "fetch",
            &settings_json,
            delta.as_ref().map(|d| d.0.as_str()),
            &host,
            |page| {
                well_formed_records(page);
                note(&mut fetched.borrow_mut(), page);
            },
        );
        capped_fails(&outcome, script.capped.get());
        let done = matches!(outcome, Outcome::Done);
        out.outcomes.push(outcome);
        let fetched = fetched.into_inner();
        if !done {
            return out;
        }
        let before = delta.as_ref().and_then(|d| d.1.as_ref());
        plausible(&fetched, before, &script.served_ids.borrow());
        out.counts
            .push((fetched.users.len(), fetched.groups.len(), fetched.memberships.len()));
        let Some(token) = fetched.token else {
            return out;
        };
        let back: DeltaState = match tokens(&scope).decode(&token) {
            Ok(back) => back,
            Err(e) => panic!("the connector's own delta token does not read back: {e:?}"),
        };
        if script.answers.borrow().is_empty() {
            return out;
        }
        delta = Some((token, Some(back.index)));
    }
    out
}

/// A search the server ended at a size, time or administrative limit fails the fetch (or the
/// check) with a config error saying so: never a complete fetch, whose missing entries would
/// look deleted.
fn capped_fails(outcome: &Outcome, capped: bool) {
    if !capped {
        return;
    }
    assert!(
        matches!(outcome, Outcome::Failed(PluginError::Config(m)) if m.contains("capped the result at")),
        "a search was capped by a limit, yet the outcome is {outcome:?}"
    );
}

/// Notes a page's records.
fn note(f: &mut Fetched, page: &Page) {
    for u in &page.users {
        assert!(!u.username.trim().is_empty(), "a user without a name: {u:?}");
    }
    f.users.extend(page.users.iter().map(|u| u.id.clone()));
    f.groups.extend(page.groups.iter().map(|g| g.id.clone()));
    f.memberships.extend(
        page.memberships
            .iter()
            .chain(&page.removed_memberships)
            .map(|m| (m.group_id.clone(), m.member_id.clone(), m.member_is_group)),
    );
    if page.next.is_none() {
        f.token = page.delta_token.clone();
    }
}

/// A complete fetch's records hold together: a full fetch lists each user and group once, and
/// every membership links objects of this fetch (or, incrementally, of the last one); a member
/// that is a group may also be one the server listed without a name (the host ignores
/// memberships of unknown groups), never one it did not list at all.
fn plausible(f: &Fetched, before: Option<&Index>, served: &HashSet<String>) {
    let users: BTreeSet<&str> = f.users.iter().map(String::as_str).collect();
    let groups: BTreeSet<&str> = f.groups.iter().map(String::as_str).collect();
    if before.is_none() {
        assert_eq!(users.len(), f.users.len(), "a full fetch listed a user twice");
        assert_eq!(groups.len(), f.groups.len(), "a full fetch listed a group twice");
    }
    let old_users: BTreeSet<&str> = before
        .into_iter()
        .flat_map(|i| i.users.iter().map(|u| u.2.as_str()))
        .collect();
    let old_groups: BTreeSet<&str> = before
        .into_iter()
        .flat_map(|i| i.groups.iter().map(|g| g.1.as_str()))
        .collect();
    for (group, member, is_group) in &f.memberships {
        assert!(
            groups.contains(group.as_str()),
            "a membership of group {group}, which this fetch did not list"
        );
        let known = if *is_group {
            groups.contains(member.as_str()) || old_groups.contains(member.as_str()) || served.contains(member)
        } else {
            users.contains(member.as_str()) || old_users.contains(member.as_str())
        };
        assert!(
            known,
            "a membership of {group} names member {member} (group: {is_group}), read nowhere"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(name: &str) -> Replay {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("corpus/ldap_answers")
            .join(name);
        replay(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
    }

    fn failed(r: &Replay) -> &PluginError {
        match r.outcomes.last() {
            Some(Outcome::Failed(e)) => e,
            other => panic!("expected a failure, got {other:?} ({r:?})"),
        }
    }

    /// The seeds reach what they are named for, so the fuzzer starts from every pass of the
    /// connector rather than from inputs the script misreads.
    #[test]
    fn the_seeds_reach_what_they_are_named_for() {
        let r = seed("full-openldap");
        assert_eq!(r.counts, vec![(3, 3, 6)], "{r:?}");
        let r = seed("full-then-delta");
        assert_eq!(r.counts, vec![(3, 3, 6), (1, 1, 1)], "{r:?}");
        let r = seed("delta-openldap");
        assert_eq!(r.counts, vec![(2, 1, 2)], "{r:?}");
        let r = seed("full-ad-range");
        assert_eq!(r.counts, vec![(3, 1, 3)], "{r:?}");
        let r = seed("delta-ad");
        assert_eq!(r.counts, vec![(1, 0, 0)], "{r:?}");
        assert!(
            matches!(failed(&seed("delta-ad-restored")), PluginError::ExpiredDelta(m) if m.contains("invocationID"))
        );
        assert!(
            matches!(failed(&seed("full-size-limited")), PluginError::Config(m) if m.contains("capped the result at 3 entries (size limit exceeded)"))
        );
        let r = seed("full-cookie-expired");
        assert_eq!(r.counts, vec![(3, 3, 5)], "{r:?}");
        assert!(matches!(seed("check-openldap").outcomes[..], [Outcome::Done]));
        assert!(
            matches!(failed(&seed("check-bind-refused")), PluginError::Auth(m) if m.contains("invalid credentials"))
        );
        assert!(
            matches!(failed(&seed("check-admin-limit")), PluginError::Config(m) if m.contains("administrative limit exceeded"))
        );
        assert!(
            matches!(failed(&seed("full-referral-and-busy")), PluginError::Fatal(m) if m.contains("result code 10"))
        );
    }
}

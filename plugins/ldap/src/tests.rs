//! The connector against an in-memory directory that answers as slapd and Active Directory do:
//! RFC 4515 filters, scopes, paging cookies (which can expire), a size limit that caps paged
//! searches (slapd's `sizelimit`), and Active Directory's range retrieval (`MaxValRange`).

use std::cell::{Cell, RefCell};

use roster_sdk::ldap::{
    Attribute, Connection, Directory, Entry, LdapError, Scope, SearchPage, SearchRequest, normalize_dn,
};
use roster_sdk::{Imports, Page, PluginError};

use super::*;

const BASE: &str = "dc=example,dc=org";
const SETTINGS: &str = r#"{"url":"ldaps://ldap.test","bind_dn":"cn=reader,dc=example,dc=org","base_dn":"dc=example,dc=org","page_size":2,"extra_attributes":["departmentNumber"]}"#;

/// A directory in memory.
#[derive(Default)]
struct Fake {
    entries: RefCell<Vec<Entry>>,
    root: RefCell<Vec<Attribute>>,
    /// Entries a search may return in all (slapd's `sizelimit`, which paging does not lift).
    size_limit: Cell<Option<usize>>,
    /// Values of `member` per answer (Active Directory's `MaxValRange`).
    max_val_range: Cell<Option<usize>>,
    /// The next search with a cookie is answered `cookie-expired`.
    expire_cookie: Cell<bool>,
    /// Every search fails with this.
    refuse: RefCell<Option<PluginError>>,
    /// Continuation references every search below the rootDSE answers with.
    referrals: RefCell<Vec<String>>,
    /// Changes made to the directory just before the first search that matches, once each:
    /// what happens while a fetch runs.
    changes: RefCell<Vec<Change>>,
    asked: RefCell<Vec<SearchRequest>>,
}

type Change = (Box<dyn Fn(&SearchRequest) -> bool>, Box<dyn FnOnce(&Fake)>);

fn attr(name: &str, values: &[&str]) -> Attribute {
    Attribute {
        name: name.into(),
        values: values.iter().map(|v| v.as_bytes().to_vec()).collect(),
    }
}

fn bin(name: &str, value: &[u8]) -> Attribute {
    Attribute {
        name: name.into(),
        values: vec![value.to_vec()],
    }
}

fn get<'a>(e: &'a Entry, name: &str) -> Option<&'a Attribute> {
    e.attributes.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

/// Decodes `\xx` escapes of an assertion value.
fn unescape(v: &str) -> Vec<u8> {
    let b = v.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 2 < b.len() + 1 {
            out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Evaluates the RFC 4515 filter subset the connector writes: `&`, `|`, `!`, presence,
/// equality (case-insensitive) and `>=` (numeric when both sides are numbers).
fn matches(e: &Entry, f: &str) -> bool {
    let inner = &f[1..f.len() - 1];
    let list = |s: &str| -> Vec<String> {
        let (mut out, mut depth, mut start) = (vec![], 0, 0);
        for (i, c) in s.char_indices() {
            match c {
                '(' => {
                    if depth == 0 {
                        start = i;
                    }
                    depth += 1;
                }
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        out.push(s[start..=i].to_string());
                    }
                }
                _ => {}
            }
        }
        out
    };
    if let Some(rest) = inner.strip_prefix('&') {
        return list(rest).iter().all(|p| matches(e, p));
    }
    if let Some(rest) = inner.strip_prefix('|') {
        return list(rest).iter().any(|p| matches(e, p));
    }
    if let Some(rest) = inner.strip_prefix('!') {
        return !matches(e, rest);
    }
    let vals = |name: &str| get(e, name).map(|a| a.values.clone()).unwrap_or_default();
    if let Some((name, value)) = inner.split_once(">=") {
        let want = String::from_utf8(unescape(value)).unwrap();
        return vals(name).iter().any(|v| {
            let have = String::from_utf8_lossy(v);
            match (have.parse::<u64>(), want.parse::<u64>()) {
                (Ok(h), Ok(w)) => h >= w,
                _ => *have >= *want,
            }
        });
    }
    let (name, value) = inner.split_once('=').unwrap();
    if value == "*" {
        return !vals(name).is_empty();
    }
    let want = unescape(value).to_ascii_lowercase();
    vals(name).iter().any(|v| v.to_ascii_lowercase() == want)
}

fn in_scope(dn: &str, base: &str, scope: Scope) -> bool {
    let (dn, base) = (normalize_dn(dn), normalize_dn(base));
    match scope {
        Scope::Base => dn == base,
        Scope::Subtree => dn == base || dn.ends_with(&format!(",{base}")),
        Scope::OneLevel => dn.split_once(',').is_some_and(|(_, parent)| parent == base),
    }
}

impl Fake {
    /// Makes `change` just before the first search `when` matches.
    fn on(&self, when: impl Fn(&SearchRequest) -> bool + 'static, change: impl FnOnce(&Fake) + 'static) {
        self.changes.borrow_mut().push((Box::new(when), Box::new(change)));
    }

    fn add(&self, e: Entry) -> &Self {
        self.entries.borrow_mut().push(e);
        self
    }

    fn entry_mut(&self, dn: &str, f: impl FnOnce(&mut Entry)) {
        let mut entries = self.entries.borrow_mut();
        let e = entries
            .iter_mut()
            .find(|e| normalize_dn(&e.dn) == normalize_dn(dn))
            .unwrap();
        f(e);
    }

    /// Sets (replaces) an attribute of the entry `dn`.
    fn set(&self, dn: &str, a: Attribute) {
        self.entry_mut(dn, |e| {
            e.attributes.retain(|x| !x.name.eq_ignore_ascii_case(&a.name));
            e.attributes.push(a);
        });
    }

    fn project(&self, e: &Entry, wanted: &[String]) -> Entry {
        let mut attributes = vec![];
        for w in wanted {
            if w == "1.1" {
                continue;
            }
            let (base, range) = match w.split_once(";range=") {
                Some((b, r)) => (b, Some(r.split_once('-').unwrap().0.parse::<usize>().unwrap())),
                None => (w.as_str(), None),
            };
            let Some(a) = get(e, base) else { continue };
            match (self.max_val_range.get(), base.eq_ignore_ascii_case("member")) {
                (Some(max), true) if a.values.len() > max || range.is_some() => {
                    let low = range.unwrap_or(0);
                    if low >= a.values.len() {
                        continue;
                    }
                    let high = (low + max).min(a.values.len());
                    let end = if high == a.values.len() {
                        "*".to_string()
                    } else {
                        (high - 1).to_string()
                    };
                    attributes.push(Attribute {
                        name: format!("{};range={low}-{end}", a.name),
                        values: a.values[low..high].to_vec(),
                    });
                }
                _ => attributes.push(a.clone()),
            }
        }
        Entry {
            dn: e.dn.clone(),
            attributes,
        }
    }
}

fn page(entries: Vec<Entry>, cookie: Option<Vec<u8>>, code: u32, message: &str) -> SearchPage {
    SearchPage {
        entries,
        referrals: vec![],
        cookie,
        result_code: code,
        message: message.into(),
    }
}

impl Directory for Fake {
    fn search(&self, _: &Connection, req: SearchRequest) -> Result<SearchPage, LdapError> {
        self.asked.borrow_mut().push(req.clone());
        let due = self.changes.borrow().iter().position(|(when, _)| when(&req));
        if let Some(i) = due {
            let (_, change) = self.changes.borrow_mut().remove(i);
            change(self);
        }
        if let Some(e) = self.refuse.borrow().clone() {
            return Err(LdapError::Failed(e));
        }
        if req.base.is_empty() && req.scope == Scope::Base {
            let root = Entry {
                dn: String::new(),
                attributes: self.root.borrow().clone(),
            };
            return Ok(page(vec![self.project(&root, &req.attributes)], None, 0, ""));
        }
        let entries = self.entries.borrow();
        if !entries.iter().any(|e| normalize_dn(&e.dn) == normalize_dn(&req.base)) {
            // The host's words for noSuchObject.
            return Err(LdapError::Failed(PluginError::Config(format!(
                "the base DN `{}` does not exist on ldaps://ldap.test (noSuchObject); check the base DN settings",
                req.base
            ))));
        }
        if req.cookie.is_some() && self.expire_cookie.replace(false) {
            return Err(LdapError::CookieExpired);
        }
        let all: Vec<Entry> = entries
            .iter()
            .filter(|e| in_scope(&e.dn, &req.base, req.scope) && matches(e, &req.filter))
            .map(|e| self.project(e, &req.attributes))
            .collect();
        let from: usize = req
            .cookie
            .as_ref()
            .map(|c| String::from_utf8(c.clone()).unwrap().parse().unwrap())
            .unwrap_or(0);
        let size = if req.page_size == 0 {
            usize::MAX
        } else {
            req.page_size as usize
        };
        let to = from.saturating_add(size).min(all.len());
        if let Some(limit) = self.size_limit.get()
            && to > limit
        {
            let cut = all[from..limit.max(from)].to_vec();
            return Ok(page(cut, None, 4, "Size limit exceeded"));
        }
        let cookie = (to < all.len()).then(|| to.to_string().into_bytes());
        let mut answer = page(all[from..to].to_vec(), cookie, 0, "");
        answer.referrals = self.referrals.borrow().clone();
        Ok(answer)
    }
}

fn person(uid: &str, uuid: &str, at: &str) -> Entry {
    Entry {
        dn: format!("uid={uid},ou=people,{BASE}"),
        attributes: vec![
            attr("objectClass", &["top", "inetOrgPerson"]),
            attr("uid", &[uid]),
            attr("cn", &[&format!("{uid} Surname")]),
            attr("mail", &[&format!("{uid}@example.org")]),
            attr("entryUUID", &[uuid]),
            attr("modifyTimestamp", &[at]),
        ],
    }
}

fn group(cn: &str, uuid: &str, class: &str, members: (&str, &[&str]), at: &str) -> Entry {
    Entry {
        dn: format!("cn={cn},ou=groups,{BASE}"),
        attributes: vec![
            attr("objectClass", &["top", class]),
            attr("cn", &[cn]),
            attr("entryUUID", &[uuid]),
            attr(members.0, members.1),
            attr("modifyTimestamp", &[at]),
        ],
    }
}

const T0: &str = "20260101100000Z";
const T1: &str = "20260102100000Z";

/// An OpenLDAP directory: four people (one outside the user filter), a groupOfNames with
/// DNs written as people write them, a groupOfUniqueNames with a UID suffix, a posixGroup,
/// and `admins` nested in `devs`.
fn openldap() -> Fake {
    let d = Fake::default();
    *d.root.borrow_mut() = vec![
        attr("supportedControl", &["1.2.840.113556.1.4.319"]),
        attr("namingContexts", &[BASE]),
    ];
    let mut alice = person("alice", "u-alice", T0);
    alice.attributes.push(attr("displayName", &["Alice Liddell"]));
    alice.attributes.push(attr("departmentNumber", &["42", "43"]));
    let mut printer = person("printer", "u-printer", T0);
    printer.attributes[0] = attr("objectClass", &["device"]);
    d.add(Entry {
        dn: BASE.into(),
        attributes: vec![attr("objectClass", &["domain"])],
    })
    .add(alice)
    .add(person("bob", "u-bob", T0))
    .add(person("carol", "u-carol", T0))
    .add(printer)
    .add(group(
        "devs",
        "g-devs",
        "groupOfNames",
        (
            "member",
            &[
                "UID=Alice, OU=People, DC=Example, DC=Org",
                "uid=bob,ou=people,dc=example,dc=org",
                "cn=admins,ou=groups,dc=example,dc=org",
                "uid=printer,ou=people,dc=example,dc=org",
                "uid=ghost,ou=people,dc=example,dc=org",
            ],
        ),
        T0,
    ))
    .add(group(
        "admins",
        "g-admins",
        "groupOfUniqueNames",
        ("uniqueMember", &["uid=carol,ou=people,dc=example,dc=org#'0101'B"]),
        T0,
    ))
    .add(group(
        "staff",
        "g-staff",
        "posixGroup",
        ("memberUid", &["ALICE", "carol", "nobody"]),
        T0,
    ));
    d
}

fn fetch(d: &Fake, settings: &str, cursor: Option<&str>, delta: Option<&str>) -> Result<Page, PluginError> {
    roster_sdk::idp::fetch::<Ldap>(settings, cursor, delta, &Imports::ldap(d))
}

/// Every page of a fetch, merged: the records, the last page's token, the pages' count.
fn fetch_all(d: &Fake, settings: &str, delta: Option<&str>) -> Result<(Page, usize), PluginError> {
    let mut all = Page::empty();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let p = fetch(d, settings, cursor.as_deref(), delta)?;
        pages += 1;
        all.users.extend(p.users);
        all.groups.extend(p.groups);
        all.memberships.extend(p.memberships);
        all.removed_memberships.extend(p.removed_memberships);
        all.removed_users.extend(p.removed_users);
        all.removed_groups.extend(p.removed_groups);
        all.total_hint = p.total_hint;
        match p.next {
            Some(next) => cursor = Some(next),
            None => {
                all.delta_token = p.delta_token;
                return Ok((all, pages));
            }
        }
    }
}

fn links(ms: &[roster_sdk::Membership]) -> Vec<(String, String, bool)> {
    let mut v: Vec<_> = ms
        .iter()
        .map(|m| (m.group_id.clone(), m.member_id.clone(), m.member_is_group))
        .collect();
    v.sort();
    v
}

fn l(g: &str, m: &str, is_group: bool) -> (String, String, bool) {
    (g.into(), m.into(), is_group)
}

fn user_ids(p: &Page) -> Vec<&str> {
    p.users.iter().map(|u| u.id.as_str()).collect()
}

#[test]
fn a_full_fetch_reads_users_and_every_kind_of_group_with_nested_groups() {
    let d = openldap();
    let (all, _) = fetch_all(&d, SETTINGS, None).unwrap();
    assert_eq!(user_ids(&all), vec!["u-alice", "u-bob", "u-carol"]);
    let alice = &all.users[0];
    assert_eq!(
        (
            alice.username.as_str(),
            alice.email.as_deref(),
            alice.display_name.as_deref()
        ),
        ("alice", Some("alice@example.org"), Some("Alice Liddell"))
    );
    assert!(alice.active);
    assert_eq!(
        alice.attributes,
        vec![
            ("dn".to_string(), format!("uid=alice,ou=people,{BASE}")),
            ("departmentNumber".to_string(), "42".to_string()),
            ("departmentNumber".to_string(), "43".to_string()),
        ]
    );
    // No displayName: cn.
    assert_eq!(all.users[1].display_name.as_deref(), Some("bob Surname"));
    let mut groups: Vec<&str> = all.groups.iter().map(|g| g.name.as_str()).collect();
    groups.sort();
    assert_eq!(groups, vec!["admins", "devs", "staff"]);
    assert_eq!(
        links(&all.memberships),
        vec![
            l("g-admins", "u-carol", false),
            l("g-devs", "g-admins", true),
            l("g-devs", "u-alice", false),
            l("g-devs", "u-bob", false),
            l("g-staff", "u-alice", false),
            l("g-staff", "u-carol", false),
        ]
    );
    assert_eq!(all.total_hint, Some(6));
    assert!(all.delta_token.is_some());
    // Operational attributes are asked for by name, and every search pages.
    let asked = d.asked.borrow();
    let users = asked
        .iter()
        .find(|r| r.filter == "(objectClass=inetOrgPerson)")
        .unwrap();
    for a in [
        "entryUUID",
        "modifyTimestamp",
        "uid",
        "mail",
        "displayName",
        "cn",
        "departmentNumber",
    ] {
        assert!(users.attributes.iter().any(|x| x == a), "{a}: {:?}", users.attributes);
    }
    assert!(asked.iter().all(|r| r.page_size == 2));
}

#[test]
fn without_nested_groups_a_group_member_is_no_membership() {
    let d = openldap();
    let settings = SETTINGS.replace(r#""page_size":2"#, r#""page_size":2,"nested_groups":false"#);
    let (all, _) = fetch_all(&d, &settings, None).unwrap();
    assert!(!links(&all.memberships).contains(&l("g-devs", "g-admins", true)));
    assert_eq!(all.memberships.len(), 5);
}

#[test]
fn a_search_capped_by_a_size_limit_fails_the_fetch_instead_of_looking_complete() {
    let d = openldap();
    d.size_limit.set(Some(2));
    let settings = SETTINGS.replace(r#""page_size":2"#, r#""page_size":1"#);
    let err = fetch_all(&d, &settings, None).unwrap_err();
    let PluginError::Config(m) = &err else {
        panic!("{err:?}")
    };
    assert!(
        m.contains("capped the result at 2 entries (size limit exceeded)"),
        "{m}"
    );
    assert!(m.contains("bind DN cn=reader,dc=example,dc=org"), "{m}");
    assert!(m.contains("size.prtotal=unlimited"), "{m}");
}

#[test]
fn an_expired_cookie_starts_the_search_again_and_nobody_is_listed_twice() {
    let d = openldap();
    let settings = SETTINGS.replace(r#""page_size":2"#, r#""page_size":1"#);
    d.expire_cookie.set(true);
    let (all, _) = fetch_all(&d, &settings, None).unwrap();
    assert_eq!(user_ids(&all), vec!["u-alice", "u-bob", "u-carol"]);
    let mut groups: Vec<&str> = all.groups.iter().map(|g| g.id.as_str()).collect();
    groups.sort();
    groups.dedup();
    assert_eq!(groups.len(), all.groups.len(), "no group twice");
    assert_eq!(all.memberships.len(), 6);
    // The restart really happened: the users search asked twice without a cookie.
    let restarts = d
        .asked
        .borrow()
        .iter()
        .filter(|r| r.filter == "(objectClass=inetOrgPerson)" && r.cookie.is_none())
        .count();
    assert_eq!(restarts, 2);
}

#[test]
fn a_user_search_that_finds_nobody_fails_the_full_fetch() {
    let d = openldap();
    let settings = SETTINGS.replace(r#""page_size":2"#, r#""user_filter":"(objectClass=nobody)""#);
    let err = fetch_all(&d, &settings, None).unwrap_err();
    assert!(
        matches!(&err, PluginError::Config(m) if m.contains("the user search returned nobody") && m.contains("check user_base_dn and user_filter")),
        "{err:?}"
    );
}

#[test]
fn an_incremental_fetch_reads_only_changes_renames_and_removes_lost_memberships() {
    let d = openldap();
    let (full, _) = fetch_all(&d, SETTINGS, None).unwrap();
    let token = full.delta_token.unwrap();
    // Unchanged since: nothing, although the window returns every entry of its last five
    // minutes, but the groups naming someone no search returned (devs: ghost and printer,
    // staff: nobody), who may be users added after the users pass: read again, no change.
    d.asked.borrow_mut().clear();
    let (none, _) = fetch_all(&d, SETTINGS, Some(&token)).unwrap();
    assert!(none.users.is_empty() && none.memberships.is_empty(), "{none:?}");
    assert!(none.removed_memberships.is_empty(), "{none:?}");
    let mut again: Vec<&str> = none.groups.iter().map(|g| g.id.as_str()).collect();
    again.sort();
    assert_eq!(again, vec!["g-devs", "g-staff"]);
    assert!(
        d.asked
            .borrow()
            .iter()
            .any(|r| r.filter.contains("(modifyTimestamp>=20260101095500Z)")),
        "the window opens five minutes (and the fetch's duration) before the newest change"
    );
    // Bob renamed to robert (new DN, same entryUUID); devs loses alice, gains carol; dave new.
    d.entry_mut(&format!("uid=bob,ou=people,{BASE}"), |e| {
        e.dn = format!("uid=robert,ou=people,{BASE}");
    });
    let robert = format!("uid=robert,ou=people,{BASE}");
    d.set(&robert, attr("uid", &["robert"]));
    d.set(&robert, attr("modifyTimestamp", &[T1]));
    let devs = format!("cn=devs,ou=groups,{BASE}");
    d.set(
        &devs,
        attr(
            "member",
            &[
                "uid=robert,ou=people,dc=example,dc=org",
                "uid=carol,ou=people,dc=example,dc=org",
                "cn=admins,ou=groups,dc=example,dc=org",
            ],
        ),
    );
    d.set(&devs, attr("modifyTimestamp", &[T1]));
    d.add(person("dave", "u-dave", T1));
    let (delta, _) = fetch_all(&d, SETTINGS, Some(&token)).unwrap();
    assert_eq!(user_ids(&delta), vec!["u-bob", "u-dave"]);
    assert_eq!(delta.users[0].username, "robert");
    assert!(delta.removed_users.is_empty(), "LDAP shows no deletions");
    // devs changed; staff (still naming `nobody`) is read again inside the window, unchanged.
    let mut groups: Vec<&str> = delta.groups.iter().map(|g| g.id.as_str()).collect();
    groups.sort();
    assert_eq!(groups, vec!["g-devs", "g-staff"]);
    assert_eq!(links(&delta.memberships), vec![l("g-devs", "u-carol", false)]);
    assert_eq!(links(&delta.removed_memberships), vec![l("g-devs", "u-alice", false)]);
    // The next run continues from the newest timestamp, and the renamed user still counts.
    let token2 = delta.delta_token.unwrap();
    assert!(token2.contains(T1), "{token2}");
    d.set(&devs, attr("member", &["uid=robert,ou=people,dc=example,dc=org"]));
    d.set(&devs, attr("modifyTimestamp", &["20260103100000Z"]));
    let (again, _) = fetch_all(&d, SETTINGS, Some(&token2)).unwrap();
    assert_eq!(user_ids(&again), Vec::<&str>::new());
    assert!(again.memberships.is_empty());
    assert_eq!(
        links(&again.removed_memberships),
        vec![l("g-devs", "g-admins", true), l("g-devs", "u-carol", false)]
    );
}

#[test]
fn a_change_in_the_mark_s_own_second_is_not_lost() {
    let d = openldap();
    let (full, _) = fetch_all(&d, SETTINGS, None).unwrap();
    let token = full.delta_token.unwrap();
    // Changed again within the second the mark stands at.
    d.set(
        &format!("uid=carol,ou=people,{BASE}"),
        attr("mail", &["carol@new.example.org"]),
    );
    let (delta, _) = fetch_all(&d, SETTINGS, Some(&token)).unwrap();
    assert_eq!(user_ids(&delta), vec!["u-carol"]);
    assert_eq!(delta.users[0].email.as_deref(), Some("carol@new.example.org"));
}

#[test]
fn a_token_made_under_other_settings_or_with_incremental_off_asks_for_a_full_fetch() {
    let d = openldap();
    let (full, _) = fetch_all(&d, SETTINGS, None).unwrap();
    let token = full.delta_token.unwrap();
    let other = SETTINGS.replace(r#""page_size":2"#, r#""user_filter":"(objectClass=person)""#);
    let err = fetch(&d, &other, None, Some(&token)).unwrap_err();
    assert!(
        matches!(&err, PluginError::ExpiredDelta(m) if m.contains("scope")),
        "{err:?}"
    );
    let off = SETTINGS.replace(r#""page_size":2"#, r#""use_incremental_sync":false"#);
    let err = fetch(&d, &off, None, Some(&token)).unwrap_err();
    assert!(
        matches!(&err, PluginError::ExpiredDelta(m) if m.contains("use_incremental_sync is off")),
        "{err:?}"
    );
    let (no_token, _) = fetch_all(&d, &off, None).unwrap();
    assert!(no_token.delta_token.is_none());
}

const AD_SETTINGS: &str = r#"{"url":"ldaps://dc1.corp.test","bind_dn":"CN=roster,CN=Users,DC=corp,DC=test","flavour":"active-directory","base_dn":"DC=corp,DC=test","page_size":1000}"#;
const AD_BASE: &str = "DC=corp,DC=test";
const NTDS: &str =
    "CN=NTDS Settings,CN=DC1,CN=Servers,CN=Default-First-Site-Name,CN=Sites,CN=Configuration,DC=corp,DC=test";

fn guid(last: u8) -> Vec<u8> {
    vec![
        0x8c, 0xc8, 0xf8, 0xc2, 0x34, 0x83, 0x41, 0x10, 0x8a, 0x98, 0xef, 0xe2, 0x7c, 0x2e, 0x87, last,
    ]
}

fn ad_user(name: &str, last: u8, uac: &str, usn: &str) -> Entry {
    Entry {
        dn: format!("CN={name},CN=Users,{AD_BASE}"),
        attributes: vec![
            attr("objectClass", &["top", "person", "organizationalPerson", "user"]),
            attr("objectCategory", &["person"]),
            attr("sAMAccountName", &[name]),
            attr("cn", &[name]),
            attr("displayName", &[&format!("{name} (Corp)")]),
            bin("objectGUID", &guid(last)),
            attr("userAccountControl", &[uac]),
            attr("uSNChanged", &[usn]),
        ],
    }
}

/// An Active Directory shaped as Active Directory answers (per ldap.md §4; written by hand,
/// not recorded): a DC with its USN and invocationID, users with binary
/// GUIDs (one disabled: 514), a group of five members answered two values at a time.
fn active_directory() -> Fake {
    let d = Fake::default();
    *d.root.borrow_mut() = vec![
        attr("highestCommittedUSN", &["12000"]),
        attr("dnsHostName", &["dc1.corp.test"]),
        attr("dsServiceName", &[NTDS]),
        attr(
            "supportedControl",
            &["1.2.840.113556.1.4.319", "1.2.840.113556.1.4.1948"],
        ),
    ];
    d.max_val_range.set(Some(2));
    d.add(Entry {
        dn: AD_BASE.into(),
        attributes: vec![attr("objectClass", &["domainDNS"])],
    })
    .add(Entry {
        dn: NTDS.into(),
        attributes: vec![attr("objectClass", &["nTDSDSA"]), bin("invocationId", &guid(0x01))],
    });
    for (i, name) in ["ann", "ben", "cat", "dan", "eve"].iter().enumerate() {
        let uac = if *name == "ben" { "514" } else { "512" };
        d.add(ad_user(name, 0x10 + i as u8, uac, "11000"));
    }
    let members: Vec<String> = ["ann", "ben", "cat", "dan", "eve"]
        .iter()
        .map(|n| format!("CN={n},CN=Users,{AD_BASE}"))
        .collect();
    let members: Vec<&str> = members.iter().map(String::as_str).collect();
    d.add(Entry {
        dn: format!("CN=Engineering,OU=Groups,{AD_BASE}"),
        attributes: vec![
            attr("objectClass", &["top", "group"]),
            attr("cn", &["Engineering"]),
            bin("objectGUID", &guid(0xee)),
            attr("member", &members),
            attr("uSNChanged", &["11500"]),
        ],
    });
    d
}

#[test]
fn active_directory_guids_disabled_accounts_range_retrieval_and_usn_changes() {
    let d = active_directory();
    let (full, _) = fetch_all(&d, AD_SETTINGS, None).unwrap();
    assert_eq!(full.users.len(), 5);
    assert_eq!(full.users[0].id, "c2f8c88c-8334-1041-8a98-efe27c2e8710");
    assert_eq!(full.users[0].username, "ann");
    let ben = full.users.iter().find(|u| u.username == "ben").unwrap();
    assert!(!ben.active, "userAccountControl 514 has ACCOUNTDISABLE");
    assert!(full.users.iter().filter(|u| u.username != "ben").all(|u| u.active));
    assert_eq!(full.groups[0].id, "c2f8c88c-8334-1041-8a98-efe27c2e87ee");
    // Five members, answered two at a time: 0-1, then 2-3, then 4-*.
    assert_eq!(full.memberships.len(), 5);
    let ranges: Vec<Vec<String>> = d
        .asked
        .borrow()
        .iter()
        .filter(|r| r.attributes.iter().any(|a| a.contains(";range=")))
        .map(|r| r.attributes.clone())
        .collect();
    assert_eq!(
        ranges,
        vec![
            vec!["member;range=2-*".to_string()],
            vec!["member;range=4-*".to_string()]
        ]
    );
    let token = full.delta_token.unwrap();
    assert!(
        token.contains(r#""usn":12000"#) && token.contains("dc1.corp.test"),
        "{token}"
    );
    // A change after the mark: only it, asked for from USN 12001 on.
    d.root.borrow_mut()[0] = attr("highestCommittedUSN", &["12050"]);
    d.set(
        &format!("CN=ben,CN=Users,{AD_BASE}"),
        attr("userAccountControl", &["512"]),
    );
    d.set(&format!("CN=ben,CN=Users,{AD_BASE}"), attr("uSNChanged", &["12040"]));
    d.asked.borrow_mut().clear();
    let (delta, _) = fetch_all(&d, AD_SETTINGS, Some(&token)).unwrap();
    assert_eq!(delta.users.len(), 1);
    assert!(delta.users[0].active && delta.users[0].username == "ben");
    assert!(delta.groups.is_empty());
    assert!(
        d.asked
            .borrow()
            .iter()
            .any(|r| r.filter == "(&(&(objectCategory=person)(objectClass=user))(uSNChanged>=12001))"),
        "{:?}",
        d.asked.borrow().iter().map(|r| r.filter.clone()).collect::<Vec<_>>()
    );
    let next = delta.delta_token.unwrap();
    assert!(next.contains(r#""usn":12050"#), "{next}");
    // The DC restored from a backup: a new invocationID, the USNs mean nothing any more.
    d.set(NTDS, bin("invocationId", &guid(0x02)));
    let err = fetch(&d, AD_SETTINGS, None, Some(&next)).unwrap_err();
    assert!(
        matches!(&err, PluginError::ExpiredDelta(m) if m.contains("invocationID changed")),
        "{err:?}"
    );
    // Another DC answers behind the same name.
    d.set(NTDS, bin("invocationId", &guid(0x01)));
    d.root.borrow_mut()[1] = attr("dnsHostName", &["dc2.corp.test"]);
    let err = fetch(&d, AD_SETTINGS, None, Some(&next)).unwrap_err();
    assert!(
        matches!(&err, PluginError::ExpiredDelta(m) if m.contains("dc2.corp.test")),
        "{err:?}"
    );
}

fn check(d: &Fake, settings: &str) -> Result<(), PluginError> {
    roster_sdk::idp::check::<Ldap>(settings, &Imports::ldap(d))
}

#[test]
fn check_names_each_problem_and_the_setting_to_change() {
    let d = openldap();
    check(&d, SETTINGS).unwrap();
    *d.refuse.borrow_mut() = Some(PluginError::Auth(
        "the LDAP server refused the bind of DN cn=reader,dc=example,dc=org (invalid credentials): check the secret bind_password".into(),
    ));
    let err = check(&d, SETTINGS).unwrap_err();
    assert!(
        matches!(&err, PluginError::Auth(m) if m.contains("rootDSE") && m.contains("invalid credentials")),
        "{err:?}"
    );
    *d.refuse.borrow_mut() = None;
    let cases = [
        (
            SETTINGS.replace(r#""page_size":2"#, r#""user_base_dn":"ou=nowhere,dc=example,dc=org""#),
            "check user_base_dn",
        ),
        (
            SETTINGS.replace(r#""page_size":2"#, r#""user_filter":"(objectClass=nobody)""#),
            "the user search found nobody",
        ),
        (
            SETTINGS.replace(r#""page_size":2"#, r#""id_attribute":"nsUniqueId""#),
            "has no nsUniqueId",
        ),
        (
            SETTINGS.replace(r#""page_size":2"#, r#""username_attribute":"sAMAccountName""#),
            "check username_attribute",
        ),
    ];
    for (settings, expected) in cases {
        let err = check(&d, &settings).unwrap_err();
        assert!(
            matches!(&err, PluginError::Config(m) if m.contains(expected)),
            "{expected}: {err:?}"
        );
    }
    check(&active_directory(), AD_SETTINGS).unwrap();
}

#[test]
fn the_token_of_a_large_directory_stays_a_few_megabytes() {
    // 10,000 users, 1,000 groups of 200 members each: the benchmark directory's shape.
    let d = Fake::default();
    d.add(Entry {
        dn: BASE.into(),
        attributes: vec![attr("objectClass", &["domain"])],
    });
    for i in 0..10_000 {
        d.add(person(
            &format!("user{i:05}"),
            &format!("7b1c2d3e-0000-4000-8000-{i:012}"),
            T0,
        ));
    }
    for g in 0..1_000 {
        let members: Vec<String> = (0..200)
            .map(|k| format!("uid=user{:05},ou=people,{BASE}", (g * 37 + k * 41) % 10_000))
            .collect();
        let members: Vec<&str> = members.iter().map(String::as_str).collect();
        d.add(group(
            &format!("group{g:04}"),
            &format!("9a8b7c6d-0000-4000-8000-{g:012}"),
            "groupOfNames",
            ("member", &members),
            T0,
        ));
    }
    let settings = SETTINGS.replace(r#""page_size":2"#, r#""page_size":1000"#);
    let (all, pages) = fetch_all(&d, &settings, None).unwrap();
    assert_eq!(
        (all.users.len(), all.groups.len(), all.memberships.len()),
        (10_000, 1_000, 200_000)
    );
    let token = all.delta_token.unwrap();
    println!(
        "searches: {}, pages: {pages}, token: {} bytes",
        d.asked.borrow().len(),
        token.len()
    );
    let state: serde_json::Value = serde_json::from_str(&token).unwrap();
    for part in ["users", "groups", "members"] {
        println!("{part}: {} bytes", state["state"]["index"][part].to_string().len());
    }
    println!("mark: {} bytes", state["state"]["mark"].to_string().len());
    assert!(token.len() < 3_000_000, "{} bytes", token.len());
}

fn users_search(r: &SearchRequest) -> bool {
    r.filter.contains("inetOrgPerson") && !r.filter.contains("groupOfNames")
}

fn groups_search(r: &SearchRequest) -> bool {
    r.filter.contains("groupOfNames")
}

#[test]
fn a_change_to_an_entry_already_read_while_the_fetch_runs_is_read_by_the_next_fetch() {
    let d = openldap();
    let settings = SETTINGS.replace(r#""page_size":2"#, r#""page_size":1"#);
    // Alice (page 1) changes at 10:00:10 once read; bob (page 2) at 10:00:20 before his page:
    // the newest timestamp the fetch reads is bob's, later than alice's change.
    d.on(
        |r| users_search(r) && r.cookie.as_deref() == Some(b"1".as_slice()),
        |d| {
            let alice = format!("uid=alice,ou=people,{BASE}");
            d.set(&alice, attr("mail", &["alice@new.example.org"]));
            d.set(&alice, attr("modifyTimestamp", &["20260101100010Z"]));
            let bob = format!("uid=bob,ou=people,{BASE}");
            d.set(&bob, attr("modifyTimestamp", &["20260101100020Z"]));
        },
    );
    let (full, _) = fetch_all(&d, &settings, None).unwrap();
    let alice = full.users.iter().find(|u| u.id == "u-alice").unwrap();
    assert_eq!(
        alice.email.as_deref(),
        Some("alice@example.org"),
        "read before the change"
    );
    let token = full.delta_token.unwrap();
    let (delta, _) = fetch_all(&d, &settings, Some(&token)).unwrap();
    assert_eq!(
        user_ids(&delta),
        vec!["u-alice"],
        "bob is read again unchanged and dropped"
    );
    assert_eq!(delta.users[0].email.as_deref(), Some("alice@new.example.org"));
}

#[test]
fn a_user_added_with_a_membership_between_the_passes_is_read_with_it_by_the_next_fetch() {
    let d = openldap();
    // A script adds una, then adds her to admins, after the users pass and before the groups.
    d.on(groups_search, |d| {
        d.add(person("una", "u-una", "20260101100025Z"));
        let admins = format!("cn=admins,ou=groups,{BASE}");
        d.set(
            &admins,
            attr(
                "uniqueMember",
                &[
                    "uid=carol,ou=people,dc=example,dc=org#'0101'B",
                    "uid=una,ou=people,dc=example,dc=org",
                ],
            ),
        );
        d.set(&admins, attr("modifyTimestamp", &["20260101100030Z"]));
    });
    let (full, _) = fetch_all(&d, SETTINGS, None).unwrap();
    assert!(!user_ids(&full).contains(&"u-una"));
    assert!(!links(&full.memberships).contains(&l("g-admins", "u-una", false)));
    let token = full.delta_token.unwrap();
    let (delta, _) = fetch_all(&d, SETTINGS, Some(&token)).unwrap();
    assert_eq!(user_ids(&delta), vec!["u-una"]);
    assert_eq!(links(&delta.memberships), vec![l("g-admins", "u-una", false)]);
    assert!(delta.removed_memberships.is_empty());
    // Now that she resolves, admins is read once more in the window and then no longer.
    let token = delta.delta_token.unwrap();
    let (calm, _) = fetch_all(&d, SETTINGS, Some(&token)).unwrap();
    assert!(calm.users.is_empty() && calm.memberships.is_empty(), "{calm:?}");
    assert!(calm.groups.iter().all(|g| g.id != "g-admins"), "{:?}", calm.groups);
}

#[test]
fn a_group_nested_between_the_passes_under_split_bases_is_read_with_it_by_the_next_fetch() {
    let d = openldap();
    for ou in ["people", "groups"] {
        d.add(Entry {
            dn: format!("ou={ou},{BASE}"),
            attributes: vec![attr("objectClass", &["organizationalUnit"])],
        });
    }
    let settings = SETTINGS.replace(
        r#""page_size":2"#,
        r#""page_size":2,"user_base_dn":"ou=people,dc=example,dc=org","group_base_dn":"ou=groups,dc=example,dc=org""#,
    );
    // After the group ids pass and before the groups: a script creates auditors (listed after
    // admins) and nests it in admins. Auditors lies outside the user base.
    d.on(
        |r| groups_search(r) && r.attributes.iter().any(|a| a == "member"),
        |d| {
            d.add(group(
                "auditors",
                "g-auditors",
                "groupOfNames",
                ("member", &["uid=bob,ou=people,dc=example,dc=org"]),
                "20260101100025Z",
            ));
            let admins = format!("cn=admins,ou=groups,{BASE}");
            d.set(
                &admins,
                attr(
                    "uniqueMember",
                    &[
                        "uid=carol,ou=people,dc=example,dc=org#'0101'B",
                        "cn=auditors,ou=groups,dc=example,dc=org",
                    ],
                ),
            );
            d.set(&admins, attr("modifyTimestamp", &["20260101100030Z"]));
        },
    );
    let (full, _) = fetch_all(&d, &settings, None).unwrap();
    assert!(!links(&full.memberships).contains(&l("g-admins", "g-auditors", true)));
    let token = full.delta_token.unwrap();
    let (delta, _) = fetch_all(&d, &settings, Some(&token)).unwrap();
    assert!(
        links(&delta.memberships).contains(&l("g-admins", "g-auditors", true)),
        "{:?}",
        delta.memberships
    );
    assert!(delta.removed_memberships.is_empty());
}

#[test]
fn an_entry_stamped_in_the_future_does_not_hide_later_changes() {
    let d = openldap();
    // An LDIF import (or a replica with a wrong clock) stamped carol in 2099.
    d.set(
        &format!("uid=carol,ou=people,{BASE}"),
        attr("modifyTimestamp", &["20991231000000Z"]),
    );
    let (full, _) = fetch_all(&d, SETTINGS, None).unwrap();
    assert_eq!(user_ids(&full), vec!["u-alice", "u-bob", "u-carol"]);
    let token = full.delta_token.unwrap();
    // A real change, stamped by a server whose clock is right.
    let bob = format!("uid=bob,ou=people,{BASE}");
    d.set(&bob, attr("mail", &["robert@example.org"]));
    d.set(&bob, attr("modifyTimestamp", &[T1]));
    let (delta, _) = fetch_all(&d, SETTINGS, Some(&token)).unwrap();
    assert_eq!(user_ids(&delta), vec!["u-bob"]);
    assert_eq!(delta.users[0].email.as_deref(), Some("robert@example.org"));
}

#[test]
fn a_referral_fails_the_fetch_but_active_directory_s_partitions_are_ignored() {
    let d = openldap();
    let url = "ldap://partners.example.org/ou=partners,dc=example,dc=org";
    *d.referrals.borrow_mut() = vec![url.into()];
    let err = fetch_all(&d, SETTINGS, None).unwrap_err();
    let PluginError::Config(m) = &err else {
        panic!("{err:?}")
    };
    assert!(m.contains(url) && m.contains("does not follow referrals"), "{m}");
    assert!(m.contains("user_base_dn/group_base_dn"), "{m}");

    let d = active_directory();
    *d.referrals.borrow_mut() = vec![
        "ldap://corp.test/DC=DomainDnsZones,DC=corp,DC=test".into(),
        "ldap://corp.test/DC=ForestDnsZones,DC=corp,DC=test".into(),
        "ldap://corp.test/CN=Configuration,DC=corp,DC=test".into(),
    ];
    let (full, _) = fetch_all(&d, AD_SETTINGS, None).unwrap();
    assert_eq!((full.users.len(), full.memberships.len()), (5, 5));
    // A referral to a child domain is entries elsewhere, even on Active Directory.
    d.referrals
        .borrow_mut()
        .push("ldap://emea.corp.test/DC=emea,DC=corp,DC=test".into());
    let err = fetch_all(&d, AD_SETTINGS, None).unwrap_err();
    assert!(
        matches!(&err, PluginError::Config(m) if m.contains("emea.corp.test") && m.contains("ignore_referrals")),
        "{err:?}"
    );
    // A forest root whose child domain's users are not wanted: listed, its referral is ignored…
    let settings = AD_SETTINGS.replacen('{', r#"{"ignore_referrals":["DC=emea,DC=corp,DC=test"],"#, 1);
    let (full, _) = fetch_all(&d, &settings, None).unwrap();
    assert_eq!((full.users.len(), full.memberships.len()), (5, 5));
    // …and a child domain not listed still fails the fetch.
    d.referrals
        .borrow_mut()
        .push("ldap://apac.corp.test/DC=apac,DC=corp,DC=test".into());
    let err = fetch_all(&d, &settings, None).unwrap_err();
    assert!(
        matches!(&err, PluginError::Config(m) if m.contains("apac.corp.test")),
        "{err:?}"
    );
}

#[test]
fn a_domain_controller_that_changes_during_a_fetch_fails_it_as_transient() {
    let d = active_directory();
    // A cookie expires and the reconnect reaches another DC behind the same name.
    d.on(
        |r| r.filter == "(objectClass=group)",
        |d| d.root.borrow_mut()[1] = attr("dnsHostName", &["dc2.corp.test"]),
    );
    let err = fetch_all(&d, AD_SETTINGS, None).unwrap_err();
    assert!(
        matches!(&err, PluginError::Transient(m) if m.contains("the domain controller changed during the read (dc1.corp.test") && m.contains("→ dc2.corp.test") && m.contains("the next run reads again")),
        "{err:?}"
    );
    // Incrementally too: dc2 at the start, back on dc1 (another invocationID) by the end.
    let (full, _) = fetch_all(&d, AD_SETTINGS, None).unwrap();
    let token = full.delta_token.unwrap();
    d.on(
        |r| r.filter.starts_with("(&(objectClass=group)"),
        |d| d.set(NTDS, bin("invocationId", &guid(0x07))),
    );
    let err = fetch_all(&d, AD_SETTINGS, Some(&token)).unwrap_err();
    assert!(
        matches!(&err, PluginError::Transient(m) if m.contains("the domain controller changed during the read")),
        "{err:?}"
    );
}

#[test]
fn a_group_renamed_during_range_retrieval_is_read_again_whole_not_cut_short() {
    let d = active_directory();
    // Renamed between the values 2-3 and those from 4: the old DN answers noSuchObject.
    d.on(
        |r| r.attributes.iter().any(|a| a.contains(";range=4-")),
        |d| {
            d.entry_mut(&format!("CN=Engineering,OU=Groups,{AD_BASE}"), |e| {
                e.dn = format!("CN=Engineering Team,OU=Groups,{AD_BASE}");
            })
        },
    );
    let (full, _) = fetch_all(&d, AD_SETTINGS, None).unwrap();
    assert_eq!(full.groups.len(), 1);
    assert_eq!(
        full.groups[0].attributes[0].1,
        format!("CN=Engineering Team,OU=Groups,{AD_BASE}")
    );
    // Every member, none from a list cut short at the rename.
    assert_eq!(full.memberships.len(), 5, "{:?}", links(&full.memberships));
}

fn person_to_check(id: &str, username: &str) -> crate::Person {
    crate::Person {
        id: id.into(),
        username: username.into(),
    }
}

#[test]
fn the_password_is_checked_by_a_bind_as_the_entry_s_current_dn_found_by_its_id() {
    let d = openldap();
    let s: settings::Settings = serde_json::from_str(SETTINGS).unwrap();
    // Renamed since the last fetch: the id finds the entry under its new DN.
    d.entry_mut(&format!("uid=bob,ou=people,{BASE}"), |e| {
        e.dn = format!("uid=robert,ou=people,{BASE}")
    });
    let check = credentials::password_check(&s, &person_to_check("u-bob", "bob"), &d)
        .unwrap()
        .expect("bob's entry is found by its entryUUID");
    let crate::PasswordCheck::LdapBind(bind) = check;
    assert_eq!(bind.dn, format!("uid=robert,ou=people,{BASE}"));
    assert_eq!(bind.url, "ldaps://ldap.test");
    assert_eq!(bind.transport, roster_sdk::ldap::Transport::Ldaps);
    let asked = d.asked.borrow();
    let last = asked.last().unwrap();
    assert_eq!(last.filter, "(&(objectClass=inetOrgPerson)(entryUUID=u-bob))");
    assert_eq!(last.base, BASE);
    // Someone no longer in the directory cannot be checked there.
    drop(asked);
    assert!(
        credentials::password_check(&s, &person_to_check("u-gone", "gone"), &d)
            .unwrap()
            .is_none()
    );
    // An entry outside the user filter is not a user.
    assert!(
        credentials::password_check(&s, &person_to_check("u-printer", "printer"), &d)
            .unwrap()
            .is_none()
    );
}

#[test]
fn an_id_is_escaped_in_the_filter_and_active_directory_guids_are_searched_as_bytes() {
    let d = openldap();
    let s: settings::Settings = serde_json::from_str(SETTINGS).unwrap();
    // A hostile id cannot widen the filter to match everyone.
    assert!(
        credentials::password_check(&s, &person_to_check("*", "x"), &d)
            .unwrap()
            .is_none()
    );
    assert!(d.asked.borrow().last().unwrap().filter.contains("(entryUUID=\\2a)"));

    let ad = active_directory();
    let s: settings::Settings = serde_json::from_str(AD_SETTINGS).unwrap();
    let cat = roster_sdk::ldap::ad_guid(&guid(0x12)).unwrap();
    let crate::PasswordCheck::LdapBind(bind) = credentials::password_check(&s, &person_to_check(&cat, "cat"), &ad)
        .unwrap()
        .expect("cat's entry is found by its objectGUID");
    assert_eq!(bind.dn, format!("CN=cat,CN=Users,{AD_BASE}"));
    let asked = ad.asked.borrow();
    let filter = &asked.last().unwrap().filter;
    assert!(
        filter.ends_with("(objectGUID=\\8c\\c8\\f8\\c2\\34\\83\\41\\10\\8a\\98\\ef\\e2\\7c\\2e\\87\\12))"),
        "the GUID as its stored bytes: {filter}"
    );
    drop(asked);
    let err = credentials::password_check(&s, &person_to_check("not-a-guid", "cat"), &ad).unwrap_err();
    assert!(matches!(err, PluginError::Config(m) if m.contains("objectGUID")));
}

#[test]
fn a_directory_that_cannot_be_searched_is_an_error_not_a_person_without_password() {
    let d = openldap();
    *d.refuse.borrow_mut() = Some(PluginError::Transient("connection refused".into()));
    let s: settings::Settings = serde_json::from_str(SETTINGS).unwrap();
    let err = credentials::password_check(&s, &person_to_check("u-bob", "bob"), &d).unwrap_err();
    assert!(matches!(err, PluginError::Transient(m) if m.contains("connection refused")));
}

//! The connector against a scripted Keycloak realm: the token endpoint, users, groups with
//! sub-groups (the children endpoint of Keycloak 23+, or inline before), members, `first`/`max`
//! paging and Keycloak's error bodies, with every request logged.

use std::cell::{Cell, RefCell};

use roster_sdk::http::Transport;
use roster_sdk::{Imports, Page, PluginError, Request, Response};
use serde_json::{Value, json};

use super::*;

const BASE: &str = "https://sso.example.com";

/// How the realm answers group listings.
#[derive(Clone, Copy, PartialEq)]
enum Version {
    /// 23 and later: `subGroupCount`, `/children`.
    Current,
    /// Before 23: `subGroups` inline, no `/children`.
    Inline,
}

struct G {
    id: String,
    name: String,
    parent: Option<String>,
    members: Vec<String>,
}

struct Realm {
    users: RefCell<Vec<Value>>,
    groups: RefCell<Vec<G>>,
    version: Version,
    /// The realm-management roles the service account has.
    roles: RefCell<Vec<&'static str>>,
    /// The token endpoint's answer instead of a token.
    token_refusal: RefCell<Option<(u16, Value)>>,
    /// Answers instead of the API's: (path prefix, status, body), used once.
    faults: RefCell<Vec<(String, u16, String)>>,
    /// Users deleted after this many users requests.
    delete_after: Cell<Option<(usize, String)>>,
    log: RefCell<Vec<String>>,
    token_bodies: RefCell<Vec<String>>,
}

fn resp(status: u16, body: String) -> Response {
    Response {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.into_bytes(),
    }
}

impl Realm {
    /// Users alice (disabled: erin), groups /eng {alice} → /eng/backend {bob, carol} →
    /// /eng/backend/db {dave}, /sales {erin}, /empty {}.
    fn new(version: Version) -> Self {
        let r = Realm {
            users: RefCell::new(vec![]),
            groups: RefCell::new(vec![]),
            version,
            roles: RefCell::new(vec!["view-users", "query-groups"]),
            token_refusal: RefCell::new(None),
            faults: RefCell::new(vec![]),
            delete_after: Cell::new(None),
            log: RefCell::new(vec![]),
            token_bodies: RefCell::new(vec![]),
        };
        for (n, name, enabled) in [
            (1, "alice", true),
            (2, "bob", true),
            (3, "carol", true),
            (4, "dave", true),
            (5, "erin", false),
        ] {
            r.users.borrow_mut().push(json!({
                "id": format!("u{n}"), "username": name, "enabled": enabled,
                "email": format!("{name}@acme.test"), "emailVerified": true,
                "firstName": name.to_uppercase(), "lastName": "Doe",
                "attributes": {"department": [if n % 2 == 0 { "R&D" } else { "Ops" }], "phone": ["1", "2"]},
                "createdTimestamp": 1_700_000_000_000u64
            }));
        }
        for (id, name, parent, members) in [
            ("g-eng", "eng", None, vec!["u1"]),
            ("g-backend", "backend", Some("g-eng"), vec!["u2", "u3"]),
            ("g-db", "db", Some("g-backend"), vec!["u4"]),
            ("g-sales", "sales", None, vec!["u5"]),
            ("g-empty", "empty", None, vec![]),
        ] {
            r.groups.borrow_mut().push(G {
                id: id.into(),
                name: name.into(),
                parent: parent.map(String::from),
                members: members.into_iter().map(String::from).collect(),
            });
        }
        r
    }

    fn path(&self, id: &str) -> String {
        let groups = self.groups.borrow();
        let g = groups.iter().find(|g| g.id == id).unwrap();
        match &g.parent {
            Some(p) => format!("{}/{}", self.path(p), g.name),
            None => format!("/{}", g.name),
        }
    }

    fn group_json(&self, id: &str) -> Value {
        let children: Vec<String> = self
            .groups
            .borrow()
            .iter()
            .filter(|c| c.parent.as_deref() == Some(id))
            .map(|c| c.id.clone())
            .collect();
        let name = self.groups.borrow().iter().find(|g| g.id == id).unwrap().name.clone();
        let mut v = json!({"id": id, "name": name, "path": self.path(id), "subGroups": []});
        match self.version {
            Version::Current => v["subGroupCount"] = json!(children.len()),
            Version::Inline => {
                v["subGroups"] = Value::Array(children.iter().map(|c| self.group_json(c)).collect());
            }
        }
        v
    }

    fn page(items: Vec<Value>, query: &[(String, String)]) -> String {
        let get = |k: &str| {
            query
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.parse::<usize>().unwrap())
        };
        let first = get("first").unwrap_or(0);
        let max = get("max").unwrap_or(100);
        Value::Array(items.into_iter().skip(first).take(max).collect()).to_string()
    }

    fn handle(&self, req: &Request) -> Response {
        let url = url::Url::parse(&req.url).unwrap();
        let path = url.path().to_string();
        let query: Vec<(String, String)> = url
            .query_pairs()
            .map(|(a, b)| (a.into_owned(), b.into_owned()))
            .collect();
        self.log
            .borrow_mut()
            .push(format!("{path}?{}", url.query().unwrap_or("")));
        if path.ends_with("/protocol/openid-connect/token") {
            self.token_bodies
                .borrow_mut()
                .push(String::from_utf8(req.body.clone().unwrap()).unwrap());
            if !path.starts_with("/realms/acme/") {
                return resp(404, json!({"error": "Realm does not exist"}).to_string());
            }
            if let Some((status, body)) = self.token_refusal.borrow().clone() {
                return resp(status, body.to_string());
            }
            return resp(
                200,
                json!({"access_token": "tok", "expires_in": 300, "token_type": "Bearer"}).to_string(),
            );
        }
        let auth = req
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.as_str());
        if auth != Some("Bearer tok") {
            return resp(401, json!({"error": "HTTP 401 Unauthorized"}).to_string());
        }
        let fault = {
            let mut faults = self.faults.borrow_mut();
            let at = faults.iter().position(|(p, _, _)| path.starts_with(p.as_str()));
            at.map(|i| faults.remove(i))
        };
        if let Some((_, status, body)) = fault {
            return resp(status, body);
        }
        let rest = path.strip_prefix("/admin/realms/acme").unwrap();
        let forbidden = || resp(403, json!({"error": "HTTP 403 Forbidden"}).to_string());
        let has = |role: &str| self.roles.borrow().contains(&role);
        if rest == "/users" {
            if !has("view-users") {
                return forbidden();
            }
            let body = Self::page(self.users.borrow().clone(), &query);
            if let Some((n, id)) = self.delete_after.take() {
                if n <= 1 {
                    self.users.borrow_mut().retain(|u| u["id"] != id.as_str());
                } else {
                    self.delete_after.set(Some((n - 1, id)));
                }
            }
            return resp(200, body);
        }
        if rest == "/groups" {
            if !has("query-groups") && !has("view-users") {
                return forbidden();
            }
            let top: Vec<String> = self
                .groups
                .borrow()
                .iter()
                .filter(|g| g.parent.is_none())
                .map(|g| g.id.clone())
                .collect();
            return resp(
                200,
                Self::page(top.iter().map(|g| self.group_json(g)).collect(), &query),
            );
        }
        let parts: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
        if let ["groups", id, what] = parts[..] {
            if !has("view-users") {
                return forbidden();
            }
            let known = self.groups.borrow().iter().any(|g| g.id == id);
            if !known || (what == "children" && self.version == Version::Inline) {
                return resp(404, json!({"error": "Could not find group by id"}).to_string());
            }
            let items = match what {
                "children" => self
                    .groups
                    .borrow()
                    .iter()
                    .filter(|c| c.parent.as_deref() == Some(id))
                    .map(|c| c.id.clone())
                    .collect::<Vec<_>>()
                    .iter()
                    .map(|c| self.group_json(c))
                    .collect(),
                "members" => {
                    let groups = self.groups.borrow();
                    let g = groups.iter().find(|g| g.id == id).unwrap();
                    g.members.iter().map(|m| json!({"id": m, "username": m})).collect()
                }
                _ => panic!("{path}"),
            };
            return resp(200, Self::page(items, &query));
        }
        resp(
            404,
            json!({"error": "RESTEASY003210: Could not find resource"}).to_string(),
        )
    }

    fn requests(&self, fragment: &str) -> usize {
        self.log.borrow().iter().filter(|l| l.contains(fragment)).count()
    }
}

impl Transport for Realm {
    fn send(&self, req: Request) -> Result<Response, PluginError> {
        Ok(self.handle(&req))
    }
}

/// A source's settings, with `extra` (`,"name":value…`) added or replacing.
fn settings(extra: &str) -> String {
    let mut base = json!({"base_url": BASE, "realm": "acme", "client_id": "roster"});
    let more: serde_json::Map<String, Value> =
        serde_json::from_str(&format!("{{{}}}", extra.trim_start_matches(','))).unwrap();
    base.as_object_mut().unwrap().extend(more);
    base.to_string()
}

fn fetch_all(realm: &Realm, settings: &str) -> Result<Vec<Page>, PluginError> {
    let mut pages = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let p = roster_sdk::idp::fetch::<KeycloakIdp>(settings, cursor.as_deref(), None, &Imports::http(realm))?;
        cursor = p.next.clone();
        pages.push(p);
        if cursor.is_none() {
            return Ok(pages);
        }
    }
}

fn check(realm: &Realm, settings: &str) -> Result<(), PluginError> {
    roster_sdk::idp::check::<KeycloakIdp>(settings, &Imports::http(realm))
}

/// (group, member, member_is_group) of every membership, sorted.
fn links(pages: &[Page]) -> Vec<(String, String, bool)> {
    let mut v: Vec<_> = pages
        .iter()
        .flat_map(|p| &p.memberships)
        .map(|m| (m.group_id.clone(), m.member_id.clone(), m.member_is_group))
        .collect();
    v.sort();
    v
}

fn link(g: &str, m: &str, is_group: bool) -> (String, String, bool) {
    (g.into(), m.into(), is_group)
}

fn group_names(pages: &[Page]) -> Vec<(String, String)> {
    let mut v: Vec<_> = pages
        .iter()
        .flat_map(|p| &p.groups)
        .map(|g| (g.id.clone(), g.name.clone()))
        .collect();
    v.sort();
    v
}

#[test]
fn a_full_fetch_reads_users_groups_by_path_and_sub_groups_as_members_of_their_parent() {
    let realm = Realm::new(Version::Current);
    let pages = fetch_all(&realm, &settings(r#","page_size":2,"attributes":["department"]"#)).unwrap();
    let users: Vec<_> = pages.iter().flat_map(|p| &p.users).collect();
    assert_eq!(users.len(), 5);
    let erin = users.iter().find(|u| u.username == "erin").unwrap();
    assert!(!erin.active, "a disabled user is inactive");
    let alice = users.iter().find(|u| u.username == "alice").unwrap();
    assert!(alice.active);
    assert_eq!(alice.email.as_deref(), Some("alice@acme.test"));
    assert_eq!(alice.display_name.as_deref(), Some("ALICE Doe"));
    assert!(alice.attributes.contains(&("department".into(), "Ops".into())));
    assert!(
        !alice.attributes.iter().any(|(k, _)| k == "phone"),
        "only the listed attributes"
    );
    assert_eq!(
        group_names(&pages),
        vec![
            ("g-backend".into(), "/eng/backend".into()),
            ("g-db".into(), "/eng/backend/db".into()),
            ("g-empty".into(), "/empty".into()),
            ("g-eng".into(), "/eng".into()),
            ("g-sales".into(), "/sales".into()),
        ]
    );
    assert_eq!(
        links(&pages),
        vec![
            link("g-backend", "g-db", true),
            link("g-backend", "u2", false),
            link("g-backend", "u3", false),
            link("g-db", "u4", false),
            link("g-eng", "g-backend", true),
            link("g-eng", "u1", false),
            link("g-sales", "u5", false),
        ]
    );
    assert!(
        pages.last().unwrap().delta_token.is_none(),
        "no changed-since: no token"
    );
    // Users: pages of 2 (+1 overlap): 0-1, 1-3, 3-5 (short). Users carry attributes.
    assert_eq!(realm.requests("/users?"), 3);
    assert!(
        realm
            .log
            .borrow()
            .iter()
            .any(|l| l.ends_with("/users?first=1&max=3&briefRepresentation=false"))
    );
    assert!(
        realm
            .log
            .borrow()
            .iter()
            .any(|l| l.contains("/members?first=0&max=2&briefRepresentation=true"))
    );
    // Children are asked for only where subGroupCount says there are some.
    assert_eq!(realm.requests("/children"), 2);
    let body = realm.token_bodies.borrow()[0].clone();
    assert!(
        body.contains("grant_type=client_credentials") && body.contains("client_secret={{secret:client_secret}}"),
        "{body}"
    );
}

#[test]
fn keycloak_before_23_is_read_from_inline_sub_groups_to_the_same_records() {
    let current = Realm::new(Version::Current);
    let inline = Realm::new(Version::Inline);
    let a = fetch_all(&current, &settings("")).unwrap();
    let b = fetch_all(&inline, &settings("")).unwrap();
    assert_eq!(group_names(&a), group_names(&b));
    assert_eq!(links(&a), links(&b));
    assert_eq!(inline.requests("/children"), 0);
}

#[test]
fn names_and_separate_sub_groups_are_settings() {
    let realm = Realm::new(Version::Current);
    let pages = fetch_all(&realm, &settings(r#","group_names":"name","subgroups":"separate""#)).unwrap();
    assert!(group_names(&pages).contains(&("g-backend".into(), "backend".into())));
    assert!(links(&pages).iter().all(|(_, _, is_group)| !is_group));
    let g = pages.iter().flat_map(|p| &p.groups).find(|g| g.id == "g-db").unwrap();
    assert_eq!(g.attributes, vec![("path".to_string(), "/eng/backend/db".to_string())]);
}

#[test]
fn the_username_may_be_the_email_or_an_attribute() {
    let realm = Realm::new(Version::Current);
    let pages = fetch_all(&realm, &settings(r#","username_attribute":"email""#)).unwrap();
    assert!(
        pages
            .iter()
            .flat_map(|p| &p.users)
            .any(|u| u.username == "bob@acme.test")
    );
    let err = check(&realm, &settings(r#","username_attribute":"employeeNumber""#)).unwrap_err();
    assert!(
        matches!(&err, PluginError::Config(m) if m.contains("employeeNumber") && m.contains("alice")),
        "{err:?}"
    );
}

#[test]
fn check_names_a_wrong_realm_a_refused_client_and_each_missing_role() {
    let realm = Realm::new(Version::Current);
    check(&realm, &settings("")).unwrap();
    let err = check(&realm, &settings(r#","realm":"acmee""#)).unwrap_err();
    assert!(
        matches!(&err, PluginError::Config(m) if m.contains("no realm `acmee`")),
        "{err:?}"
    );
    *realm.token_refusal.borrow_mut() = Some((
        401,
        json!({"error": "unauthorized_client", "error_description": "Invalid client or Invalid client credentials"}),
    ));
    // The token of the first check is cached for the job; a new job asks again.
    roster_sdk::settings::read::<settings::Settings>(&settings(""))
        .unwrap()
        .credentials()
        .forget();
    let err = check(&realm, &settings("")).unwrap_err();
    assert!(
        matches!(&err, PluginError::Auth(m) if m.contains("client `roster`") && m.contains("Credentials tab")),
        "{err:?}"
    );
    *realm.token_refusal.borrow_mut() = None;
    *realm.roles.borrow_mut() = vec!["query-groups"];
    let err = check(&realm, &settings("")).unwrap_err();
    assert!(
        matches!(&err, PluginError::Auth(m) if m.contains("role view-users")),
        "{err:?}"
    );
    *realm.roles.borrow_mut() = vec![];
    let err = fetch_all(&realm, &settings("")).unwrap_err();
    assert!(
        matches!(&err, PluginError::Auth(m) if m.contains("role view-users")),
        "{err:?}"
    );
    realm.faults.borrow_mut().push((
        "/admin/realms/acme/groups".into(),
        403,
        r#"{"error":"HTTP 403 Forbidden"}"#.into(),
    ));
    *realm.roles.borrow_mut() = vec!["view-users", "query-groups"];
    let err = check(&realm, &settings("")).unwrap_err();
    assert!(
        matches!(&err, PluginError::Auth(m) if m.contains("list groups") && m.contains("role query-groups")),
        "{err:?}"
    );
}

#[test]
fn a_malformed_page_fails_naming_the_connector_page_and_field() {
    let realm = Realm::new(Version::Current);
    realm.faults.borrow_mut().push((
        "/admin/realms/acme/users".into(),
        200,
        r#"[{"id":"u1","username":"alice","enabled":"yes"}]"#.into(),
    ));
    let err = fetch_all(&realm, &settings("")).unwrap_err();
    assert!(
        matches!(&err, PluginError::Fatal(m) if m.starts_with("keycloak: list users (page /admin/realms/acme/users?first=0") && m.contains("[0].enabled")),
        "{err:?}"
    );
}

#[test]
fn a_user_deleted_while_users_are_read_costs_a_request_and_misses_no_one() {
    let realm = Realm::new(Version::Current);
    // After the first page (alice, bob), alice is deleted: carol moves to bob's place, and a
    // page asked for as before would start at dave.
    realm.delete_after.set(Some((1, "u1".into())));
    let pages = fetch_all(&realm, &settings(r#","page_size":2"#)).unwrap();
    let mut names: Vec<String> = pages
        .iter()
        .flat_map(|p| &p.users)
        .map(|u| u.username.clone())
        .collect();
    names.sort();
    assert_eq!(names, vec!["alice", "bob", "carol", "dave", "erin"]);
    assert_eq!(
        realm.requests("/users?"),
        4,
        "the moved page asked for again, a page earlier"
    );
}

#[test]
fn a_group_deleted_while_read_is_skipped_and_a_throttled_answer_is_transient() {
    let realm = Realm::new(Version::Current);
    realm.faults.borrow_mut().push((
        "/admin/realms/acme/groups/g-sales/members".into(),
        404,
        r#"{"error":"Could not find group by id"}"#.into(),
    ));
    let pages = fetch_all(&realm, &settings("")).unwrap();
    assert!(!links(&pages).iter().any(|(g, _, _)| g == "g-sales"));
    realm
        .faults
        .borrow_mut()
        .push(("/admin/realms/acme/users".into(), 429, String::new()));
    let err = fetch_all(&realm, &settings("")).unwrap_err();
    assert!(matches!(err, PluginError::Transient(_)), "{err:?}");
    // A 404 that is not Keycloak's word for a missing group (a proxy's page) fails the fetch
    // rather than emptying the group.
    realm.faults.borrow_mut().push((
        "/admin/realms/acme/groups/g-sales/members".into(),
        404,
        "<html><body>Not Found</body></html>".into(),
    ));
    let err = fetch_all(&realm, &settings("")).unwrap_err();
    assert!(err.to_string().contains("g-sales"), "{err:?}");
}

//! The connector against a scripted OneLogin account: the contract's routes, paging headers,
//! `Date`, error bodies and scopes, with every request logged.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, UNIX_EPOCH};

use roster_sdk::http::Transport;
use roster_sdk::time::iso8601;
use roster_sdk::{Imports, Page, PluginError, RemovalKind, Request, Response};
use serde_json::{Value, json};

use super::*;

const API: &str = "https://acme.onelogin.test";
const START: u64 = 1_796_333_400;

/// The `Authorization` forms API v1 takes: OneLogin documents `bearer:<token>`, its generated
/// SDKs send `Bearer <token>`.
#[derive(Clone, Copy, PartialEq)]
enum V1Auth {
    Either,
    /// Anything else is answered 400 "Authorization Information is incorrect", as documented.
    DocumentedOnly,
}

/// What an API credential may do.
#[derive(Clone, Copy, PartialEq)]
enum CredScope {
    AuthenticationOnly,
    ReadUsers,
    ReadAll,
}

struct Account {
    users: RefCell<Vec<Value>>,
    roles: RefCell<Vec<(i64, String)>>,
    /// (role, user)
    assigned: RefCell<BTreeSet<(i64, i64)>>,
    groups: RefCell<Vec<(i64, String)>>,
    /// The server's clock, unix seconds.
    now: Cell<u64>,
    scope: Cell<CredScope>,
    /// The token endpoint's answer instead of a token.
    token_refusal: RefCell<Option<Response>>,
    /// Answers instead of the API's: (path prefix, response), used once.
    faults: RefCell<Vec<(String, Response)>>,
    /// Page size of API v1's groups listing (OneLogin: 50).
    v1_page: usize,
    v1_auth: Cell<V1Auth>,
    /// The `Authorization` of each API v1 request.
    v1_headers: RefCell<Vec<String>>,
    log: RefCell<Vec<String>>,
    token_requests: RefCell<Vec<Request>>,
}

fn answer(status: u16, headers: Vec<(String, String)>, body: Value) -> Response {
    Response {
        status,
        headers,
        body: body.to_string().into_bytes(),
    }
}

fn v2_error(status: u16, name: &str) -> Response {
    answer(
        status,
        vec![],
        json!({"statusCode": status, "name": name, "message": name}),
    )
}

impl Account {
    /// Five users (5 suspended), roles Engineering {1,2}, Sales {3}, Empty {}, groups
    /// Berlin {1,4} and Paris {2}.
    fn new() -> Self {
        let a = Account {
            users: RefCell::new(vec![]),
            roles: RefCell::new(vec![
                (10, "Engineering".into()),
                (20, "Sales".into()),
                (30, "Empty".into()),
            ]),
            assigned: RefCell::new(BTreeSet::from([(10, 1), (10, 2), (20, 3)])),
            groups: RefCell::new(vec![(7, "Berlin".into()), (8, "Paris".into())]),
            now: Cell::new(START),
            scope: Cell::new(CredScope::ReadAll),
            token_refusal: RefCell::new(None),
            faults: RefCell::new(vec![]),
            v1_page: 1,
            v1_auth: Cell::new(V1Auth::Either),
            v1_headers: RefCell::new(vec![]),
            log: RefCell::new(vec![]),
            token_requests: RefCell::new(vec![]),
        };
        for (id, name, status, group) in [
            (1, "alice", 1, Some(7)),
            (2, "bob", 1, Some(8)),
            (3, "carol", 1, None),
            (4, "dave", 1, Some(7)),
            (5, "erin", 2, None),
        ] {
            a.users.borrow_mut().push(json!({
                "id": id, "username": name, "email": format!("{name}@acme.test"),
                "firstname": name.to_uppercase(), "lastname": "Doe", "status": status, "state": 1,
                "group_id": group, "updated_at": iso8601(UNIX_EPOCH + Duration::from_secs(START - 86_400)),
                "department": "R&D", "custom_attributes": {"cost_center": format!("CC{id}")}
            }));
        }
        a
    }

    /// Adds `n` active users with neither a role nor a group (ids from 100), so that a few
    /// changed users are not a mass update.
    fn with_bystanders(self, n: i64) -> Self {
        for id in 100..100 + n {
            self.users.borrow_mut().push(json!({
                "id": id, "username": format!("user{id}"), "status": 1, "state": 1, "group_id": null,
                "updated_at": iso8601(UNIX_EPOCH + Duration::from_secs(START - 86_400))
            }));
        }
        self
    }

    fn touch(&self, user: i64) {
        let stamp = iso8601(UNIX_EPOCH + Duration::from_secs(self.now.get()));
        for u in self.users.borrow_mut().iter_mut() {
            if u["id"] == user {
                u["updated_at"] = json!(stamp);
            }
        }
    }

    fn assign(&self, role: i64, user: i64) {
        self.assigned.borrow_mut().insert((role, user));
        self.touch(user);
    }

    fn unassign(&self, role: i64, user: i64) {
        self.assigned.borrow_mut().remove(&(role, user));
        self.touch(user);
    }

    fn edit(&self, user: i64, field: &str, value: Value) {
        for u in self.users.borrow_mut().iter_mut() {
            if u["id"] == user {
                u[field] = value.clone();
            }
        }
        self.touch(user);
    }

    fn fail_next(&self, path: &str, resp: Response) {
        self.faults.borrow_mut().push((path.to_string(), resp));
    }

    fn paths(&self) -> Vec<String> {
        self.log.borrow().clone()
    }

    fn calls(&self, prefix: &str) -> usize {
        self.log.borrow().iter().filter(|p| p.starts_with(prefix)).count()
    }

    /// One page of `items` from the `cursor` query value (an offset), with OneLogin's headers.
    fn page(&self, items: Vec<Value>, query: &BTreeMap<String, String>) -> Response {
        let limit: usize = query.get("limit").and_then(|l| l.parse().ok()).unwrap_or(50);
        let from: usize = query
            .get("cursor")
            .map_or(0, |c| c.trim_start_matches('o').parse().unwrap());
        let total = items.len();
        let slice: Vec<Value> = items.into_iter().skip(from).take(limit).collect();
        let mut headers = vec![("Total-Count".to_string(), total.to_string())];
        if from + limit < total {
            headers.push(("After-Cursor".into(), format!("o{}", from + limit)));
        }
        answer(200, headers, Value::Array(slice))
    }

    fn api(&self, path: &str, query: &BTreeMap<String, String>) -> Response {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match segments.as_slice() {
            ["api", "2", "users"] => {
                let since = query.get("updated_since");
                let users: Vec<Value> = self
                    .users
                    .borrow()
                    .iter()
                    .filter(|u| since.is_none_or(|s| u["updated_at"].as_str().unwrap() >= s.as_str()))
                    .cloned()
                    .collect();
                self.page(users, query)
            }
            ["api", "2", "users", id, "roles"] => {
                let id: i64 = id.parse().unwrap();
                if !self.users.borrow().iter().any(|u| u["id"] == id) {
                    return v2_error(404, "NotFound");
                }
                let roles: Vec<i64> = self
                    .assigned
                    .borrow()
                    .iter()
                    .filter(|(_, u)| *u == id)
                    .map(|(r, _)| *r)
                    .collect();
                answer(200, vec![], json!(roles))
            }
            ["api", "2", "roles"] => {
                let roles = self
                    .roles
                    .borrow()
                    .iter()
                    .map(|(id, name)| json!({"id": id, "name": name}))
                    .collect();
                self.page(roles, query)
            }
            ["api", "2", "roles", id, "users"] => {
                let id: i64 = id.parse().unwrap();
                if !self.roles.borrow().iter().any(|(r, _)| *r == id) {
                    return v2_error(404, "NotFound");
                }
                let users = self.users.borrow();
                let members = self
                    .assigned
                    .borrow()
                    .iter()
                    .filter(|(r, _)| *r == id)
                    .map(|(_, u)| {
                        let user = users.iter().find(|x| x["id"] == *u).unwrap();
                        json!({"id": u, "name": "x", "email": user["email"], "username": user["username"]})
                    })
                    .collect();
                self.page(members, query)
            }
            ["api", "1", "groups"] => {
                let groups = self.groups.borrow();
                let from: usize = query.get("after_cursor").map_or(0, |c| c.parse().unwrap());
                let data: Vec<Value> = groups
                    .iter()
                    .skip(from)
                    .take(self.v1_page)
                    .map(|(id, name)| json!({"id": id, "name": name, "reference": null}))
                    .collect();
                let after = (from + self.v1_page < groups.len()).then(|| (from + self.v1_page).to_string());
                answer(
                    200,
                    vec![],
                    json!({"status": {"error": false, "code": 200, "type": "success", "message": "Success"},
                           "pagination": {"before_cursor": null, "after_cursor": after, "previous_link": null, "next_link": null},
                           "data": data}),
                )
            }
            _ => v2_error(404, "NotFound"),
        }
    }
}

impl Transport for Account {
    fn send(&self, req: Request) -> Result<Response, PluginError> {
        let rest = req.url.strip_prefix(API).expect("a request outside api_url");
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let query: BTreeMap<String, String> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        let header = |name: &str| req.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        let mut resp = if path == settings::TOKEN_PATH {
            self.token_requests.borrow_mut().push(req.clone());
            match self.token_refusal.borrow().clone() {
                Some(refusal) => refusal,
                None => answer(
                    200,
                    vec![],
                    json!({"access_token": "tok", "created_at": "2026-12-03T21:30:00.000Z", "expires_in": 36000,
                           "refresh_token": "r", "token_type": "bearer", "account_id": 1}),
                ),
            }
        } else {
            self.log.borrow_mut().push(rest.to_string());
            let fault = {
                let mut faults = self.faults.borrow_mut();
                faults
                    .iter()
                    .position(|(p, _)| path.starts_with(p.as_str()))
                    .map(|i| faults.remove(i).1)
            };
            let authorization = header("authorization").unwrap_or_default();
            let v1 = path.starts_with("/api/1/");
            if v1 {
                self.v1_headers.borrow_mut().push(authorization.clone());
            }
            if let Some(f) = fault {
                f
            } else if v1 && authorization != "bearer:tok" && self.v1_auth.get() == V1Auth::DocumentedOnly {
                answer(
                    400,
                    vec![],
                    json!({"status": {"error": true, "code": 400, "type": "bad request", "message": "Authorization Information is incorrect"}}),
                )
            } else if !(authorization == "Bearer tok" || v1 && authorization == "bearer:tok")
                || self.scope.get() == CredScope::AuthenticationOnly
            {
                // OneLogin answers a credential of the "Authentication Only" scope like a bad token.
                v2_error(401, "Unauthorized")
            } else {
                self.api(path, &query)
            }
        };
        resp.headers.push((
            "Date".into(),
            httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(self.now.get())),
        ));
        Ok(resp)
    }
}

fn settings(extra: &str) -> String {
    format!(r#"{{"api_url":"{API}","client_id":"cid","page_size":2{extra}}}"#)
}

/// `settings` for another API credential: tokens are cached per credential for the thread, and
/// each scripted account hands out its own.
fn settings_as(client_id: &str, extra: &str) -> String {
    settings(extra).replace(r#""client_id":"cid""#, &format!(r#""client_id":"{client_id}""#))
}

/// Every page of one fetch, following `next`.
fn fetch_all(a: &Account, settings: &str, delta: Option<&str>) -> Result<Vec<Page>, PluginError> {
    let mut pages = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let p = roster_sdk::idp::fetch::<OneLogin>(settings, cursor.as_deref(), delta, &Imports::http(a))?;
        cursor = p.next.clone();
        pages.push(p);
        if cursor.is_none() {
            return Ok(pages);
        }
    }
}

/// What a whole fetch read, in comparable form.
#[derive(Debug, Default)]
struct Read {
    users: BTreeMap<String, roster_sdk::User>,
    groups: BTreeMap<String, String>,
    memberships: BTreeSet<(String, String)>,
    removed_memberships: BTreeSet<(String, String)>,
    removed_users: Vec<(String, RemovalKind)>,
    removed_groups: Vec<(String, RemovalKind)>,
    token: String,
}

fn read(pages: &[Page]) -> Read {
    let mut r = Read::default();
    for p in pages {
        for u in &p.users {
            r.users.insert(u.id.clone(), u.clone());
        }
        for g in &p.groups {
            r.groups.insert(g.id.clone(), g.name.clone());
        }
        r.memberships
            .extend(p.memberships.iter().map(|m| (m.group_id.clone(), m.member_id.clone())));
        r.removed_memberships.extend(
            p.removed_memberships
                .iter()
                .map(|m| (m.group_id.clone(), m.member_id.clone())),
        );
        r.removed_users
            .extend(p.removed_users.iter().map(|x| (x.id.clone(), x.kind)));
        r.removed_groups
            .extend(p.removed_groups.iter().map(|x| (x.id.clone(), x.kind)));
    }
    r.token = pages.last().and_then(|p| p.delta_token.clone()).unwrap_or_default();
    r
}

fn pairs(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items.iter().map(|(g, u)| (g.to_string(), u.to_string())).collect()
}

fn attr<'u>(u: &'u roster_sdk::User, name: &str) -> Vec<&'u str> {
    u.attributes
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn a_full_fetch_reads_roles_their_users_groups_and_users_page_by_page() {
    let a = Account::new();
    let s =
        settings(r#","groups_from":"roles-and-groups","attributes":["department","custom_attributes.cost_center"]"#);
    // Tokens are cached per credential for the thread, which another test may have run on.
    roster_sdk::settings::read::<Settings>(&s)
        .unwrap()
        .credentials()
        .forget();
    let r = read(&fetch_all(&a, &s, None).unwrap());
    assert_eq!(r.users.keys().collect::<Vec<_>>(), vec!["1", "2", "3", "4", "5"]);
    let alice = &r.users["1"];
    assert_eq!(
        (
            alice.username.as_str(),
            alice.email.as_deref(),
            alice.display_name.as_deref(),
            alice.active
        ),
        ("alice", Some("alice@acme.test"), Some("ALICE Doe"), true)
    );
    assert_eq!(attr(alice, "custom_attributes.cost_center"), vec!["CC1"]);
    assert_eq!(attr(alice, "department"), vec!["R&D"]);
    assert_eq!(attr(alice, "status"), vec!["active"]);
    assert!(!r.users["5"].active, "suspended");
    assert_eq!(attr(&r.users["5"], "status"), vec!["suspended"]);
    let groups: Vec<(&str, &str)> = r.groups.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        groups,
        vec![
            ("group:7", "Berlin"),
            ("group:8", "Paris"),
            ("role:10", "Engineering"),
            ("role:20", "Sales"),
            ("role:30", "Empty")
        ]
    );
    assert_eq!(
        r.memberships,
        pairs(&[
            ("role:10", "1"),
            ("role:10", "2"),
            ("role:20", "3"),
            ("group:7", "1"),
            ("group:7", "4"),
            ("group:8", "2")
        ])
    );
    // Paging by After-Cursor with the same limit; v1 groups by after_cursor; a role without
    // users costs its one call.
    let log = a.paths();
    for expected in [
        "/api/2/users?limit=2",
        "/api/2/users?limit=2&cursor=o2",
        "/api/2/users?limit=2&cursor=o4",
        "/api/2/roles?limit=2",
        "/api/2/roles?limit=2&cursor=o2",
        "/api/2/roles/30/users?limit=2",
        "/api/1/groups",
        "/api/1/groups?after_cursor=1",
    ] {
        assert!(log.iter().any(|p| p == expected), "{expected} not in {log:?}");
    }
    assert_eq!(log.len(), 3 + 2 + 3 + 2, "{log:?}");
    // The token: HTTP Basic with the host's secret, a JSON body, fetched once.
    let tokens = a.token_requests.borrow();
    assert_eq!(tokens.len(), 1);
    let t = &tokens[0];
    assert!(
        t.headers
            .contains(&("authorization".into(), "Basic cid:{{secret:client_secret}}".into()))
    );
    assert!(t.headers.contains(&("content-type".into(), "application/json".into())));
    assert_eq!(
        serde_json::from_slice::<Value>(t.body.as_deref().unwrap()).unwrap(),
        json!({"grant_type": "client_credentials"})
    );
}

#[test]
fn groups_alone_cost_no_role_calls_and_roles_alone_no_group_calls() {
    let a = Account::new();
    let r = read(&fetch_all(&a, &settings(r#","groups_from":"groups""#), None).unwrap());
    assert_eq!(r.groups.keys().collect::<Vec<_>>(), vec!["group:7", "group:8"]);
    assert_eq!(
        r.memberships,
        pairs(&[("group:7", "1"), ("group:7", "4"), ("group:8", "2")])
    );
    assert_eq!(a.calls("/api/2/roles"), 0);
    let a = Account::new();
    let r = read(&fetch_all(&a, &settings(""), None).unwrap());
    assert!(r.groups.keys().all(|g| g.starts_with("role:")));
    assert_eq!(a.calls("/api/1/groups"), 0);
    assert_eq!(r.users.len(), 5, "without a roles filter every user is read");
}

#[test]
fn the_roles_filter_reads_only_those_roles_and_the_users_who_hold_one() {
    let a = Account::new();
    let s = settings(r#","groups_from":"roles-and-groups","roles":["engineering"]"#);
    let r = read(&fetch_all(&a, &s, None).unwrap());
    assert_eq!(r.users.keys().collect::<Vec<_>>(), vec!["1", "2"]);
    assert_eq!(
        r.groups.keys().collect::<Vec<_>>(),
        vec!["group:7", "group:8", "role:10"]
    );
    assert_eq!(
        r.memberships,
        pairs(&[("role:10", "1"), ("role:10", "2"), ("group:7", "1"), ("group:8", "2")])
    );
    assert_eq!(a.calls("/api/2/roles/"), 1, "only the filtered role's users are listed");
    let err = fetch_all(&a, &settings(r#","roles":["Marketing"]"#), None).unwrap_err();
    assert!(
        matches!(&err, PluginError::Config(m) if m.contains("`Marketing`")),
        "{err:?}"
    );
}

#[test]
fn an_incremental_fetch_reads_only_changed_users_and_reports_added_and_removed_memberships() {
    let a = Account::new().with_bystanders(2);
    let s = settings(r#","groups_from":"roles-and-groups""#);
    let full = read(&fetch_all(&a, &s, None).unwrap());
    a.now.set(START + 3_600);
    a.assign(20, 1); // alice joins Sales
    a.unassign(10, 2); // bob leaves Engineering
    a.edit(4, "status", json!(2)); // dave suspended
    a.edit(4, "group_id", json!(8)); // and moved to Paris
    a.now.set(START + 3_700);
    a.log.borrow_mut().clear();
    let changes = read(&fetch_all(&a, &s, Some(&full.token)).unwrap());
    assert_eq!(changes.users.keys().collect::<Vec<_>>(), vec!["1", "2", "4"]);
    assert!(!changes.users["4"].active);
    assert_eq!(changes.memberships, pairs(&[("role:20", "1"), ("group:8", "4")]));
    assert_eq!(
        changes.removed_memberships,
        pairs(&[("role:10", "2"), ("group:7", "4")])
    );
    assert!(changes.groups.is_empty() && changes.removed_groups.is_empty() && changes.removed_users.is_empty());
    // The server's clock of the full fetch, a minute back.
    let since = iso8601(UNIX_EPOCH + Duration::from_secs(START - 60));
    let log = a.paths();
    let listing = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("updated_since", &since)
        .finish()
        .replace('+', "%20");
    assert!(
        log.iter().any(|p| p == &format!("/api/2/users?limit=2&{listing}")),
        "{log:?}"
    );
    // ⌈3 changed ÷ 2⌉ user pages + 3 users' roles + ⌈3 roles ÷ 2⌉ + 2 group pages.
    assert_eq!(log.len(), 2 + 3 + 2 + 2, "{log:?}");
    // The next incremental fetch starts from this one's clock and finds nothing.
    assert!(
        changes.token.contains(&format!("\"since\":{}", START + 3_700 - 60)),
        "{}",
        changes.token
    );
    a.now.set(START + 7_200);
    let quiet = read(&fetch_all(&a, &s, Some(&changes.token)).unwrap());
    assert!(quiet.users.is_empty() && quiet.memberships.is_empty() && quiet.removed_memberships.is_empty());
    // Within the minute of overlap a user is read again, and nothing changes twice.
    a.edit(1, "title", json!("Lead"));
    a.now.set(START + 7_230);
    let overlap = read(&fetch_all(&a, &s, Some(&quiet.token)).unwrap());
    assert_eq!(overlap.users.keys().collect::<Vec<_>>(), vec!["1"]);
    a.now.set(START + 7_260);
    let again = read(&fetch_all(&a, &s, Some(&overlap.token)).unwrap());
    assert_eq!(
        again.users.keys().collect::<Vec<_>>(),
        vec!["1"],
        "updated within a minute of the last fetch"
    );
    assert!(again.memberships.is_empty() && again.removed_memberships.is_empty());
}

#[test]
fn vanished_roles_and_groups_are_removed_with_their_memberships_and_renamed_ones_re_read() {
    let a = Account::new();
    let s = settings(r#","groups_from":"roles-and-groups""#);
    let full = read(&fetch_all(&a, &s, None).unwrap());
    a.roles.borrow_mut().retain(|(id, _)| *id != 10);
    a.roles.borrow_mut().iter_mut().for_each(|(id, name)| {
        if *id == 20 {
            *name = "Sales EMEA".into();
        }
    });
    a.roles.borrow_mut().push((40, "Support".into()));
    a.groups.borrow_mut().retain(|(id, _)| *id != 8);
    let changes = read(&fetch_all(&a, &s, Some(&full.token)).unwrap());
    assert_eq!(
        changes.removed_groups,
        vec![
            ("role:10".to_string(), RemovalKind::Deleted),
            ("group:8".to_string(), RemovalKind::Deleted)
        ]
    );
    assert_eq!(
        changes.removed_memberships,
        pairs(&[("role:10", "1"), ("role:10", "2"), ("group:8", "2")])
    );
    let groups: Vec<(&str, &str)> = changes.groups.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(groups, vec![("role:20", "Sales EMEA"), ("role:40", "Support")]);
    // Nothing is reported twice: the roles are gone from the state too.
    let again = read(&fetch_all(&a, &s, Some(&changes.token)).unwrap());
    assert!(again.removed_groups.is_empty() && again.removed_memberships.is_empty() && again.groups.is_empty());
}

#[test]
fn under_a_roles_filter_users_enter_and_leave_the_scope_with_the_role() {
    let a = Account::new().with_bystanders(2);
    let s = settings(r#","roles":["10"]"#);
    let full = read(&fetch_all(&a, &s, None).unwrap());
    assert_eq!(full.users.keys().collect::<Vec<_>>(), vec!["1", "2"]);
    a.now.set(START + 600);
    a.assign(10, 3);
    a.unassign(10, 2);
    a.assign(20, 4); // outside the scope: read, but not a record
    let changes = read(&fetch_all(&a, &s, Some(&full.token)).unwrap());
    assert_eq!(changes.users.keys().collect::<Vec<_>>(), vec!["3"]);
    assert_eq!(changes.memberships, pairs(&[("role:10", "3")]));
    assert_eq!(changes.removed_memberships, pairs(&[("role:10", "2")]));
    assert_eq!(changes.removed_users, vec![("2".to_string(), RemovalKind::SoftDeleted)]);
}

#[test]
fn a_filter_whose_roles_changed_is_read_in_full_or_stops_naming_the_role() {
    let a = Account::new();
    let by_name = settings(r#","roles":["Engineering"]"#);
    let full = read(&fetch_all(&a, &by_name, None).unwrap());
    assert_eq!(full.users.keys().collect::<Vec<_>>(), vec!["1", "2"]);
    // Engineering deleted and created again: the name the filter gives is another role now,
    // so the users the token holds as in scope are not the scope; the connector says so and
    // the host reads in full.
    a.roles.borrow_mut().retain(|(id, _)| *id != 10);
    a.assigned.borrow_mut().retain(|(role, _)| *role != 10);
    a.roles.borrow_mut().push((11, "Engineering".into()));
    a.assign(11, 3);
    let err = fetch_all(&a, &by_name, Some(&full.token)).unwrap_err();
    assert!(
        matches!(&err, PluginError::ExpiredDelta(m) if m.contains("the roles named in `roles` are other roles now")),
        "{err:?}"
    );
    let again = read(&fetch_all(&a, &by_name, None).unwrap());
    assert_eq!(again.users.keys().collect::<Vec<_>>(), vec!["3"]);
    assert_eq!(again.memberships, pairs(&[("role:11", "3")]));
    // A role the filter names by id deleted: nothing has that id, incrementally as in full.
    let by_id = settings(r#","roles":["20"]"#);
    let full = read(&fetch_all(&a, &by_id, None).unwrap());
    a.roles.borrow_mut().retain(|(id, _)| *id != 20);
    for delta in [Some(full.token.as_str()), None] {
        let err = fetch_all(&a, &by_id, delta).unwrap_err();
        assert!(
            matches!(&err, PluginError::Config(m) if m.contains("no role named or numbered `20`")),
            "{delta:?}: {err:?}"
        );
    }
}

#[test]
fn a_user_deleted_between_the_listing_and_its_roles_is_left_to_the_next_full_fetch() {
    let a = Account::new();
    let s = settings("");
    let full = read(&fetch_all(&a, &s, None).unwrap());
    a.now.set(START + 600);
    a.assign(20, 2);
    a.fail_next("/api/2/users/2/roles", v2_error(404, "NotFound"));
    let changes = read(&fetch_all(&a, &s, Some(&full.token)).unwrap());
    assert!(changes.users.is_empty() && changes.memberships.is_empty() && changes.removed_users.is_empty());
}

#[test]
fn a_failed_page_is_retried_without_reading_memberships_twice_into_the_state() {
    let a = Account::new();
    let s = settings("");
    // Sales' users fail once after the page has read Engineering's.
    a.fail_next("/api/2/roles/20/users", v2_error(503, "ServiceUnavailable"));
    let mut pages = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let p = match roster_sdk::idp::fetch::<OneLogin>(&s, cursor.as_deref(), None, &Imports::http(&a)) {
            Ok(p) => p,
            Err(e) => panic!("{e:?}"),
        };
        cursor = p.next.clone();
        pages.push(p);
        if cursor.is_none() {
            break;
        }
    }
    assert!(pages.len() >= 2, "the failure ended a page");
    let full = read(&pages);
    assert_eq!(
        full.memberships,
        pairs(&[("role:10", "1"), ("role:10", "2"), ("role:20", "3")])
    );
    let state: Value = serde_json::from_str(&full.token).unwrap();
    let index = &state["state"]["role_members"]["g"];
    assert_eq!(index["role:10"].as_array().unwrap().len(), 2, "{state}");
    assert_eq!(index["role:20"].as_array().unwrap().len(), 1, "{state}");
}

#[test]
fn check_names_each_problem() {
    let n = Cell::new(0);
    let check = |a: &Account, extra: &str| {
        n.set(n.get() + 1);
        let s = settings_as(&format!("c{}", n.get()), extra);
        roster_sdk::idp::check::<OneLogin>(&s, &Imports::http(a))
    };
    let a = Account::new();
    check(&a, r#","groups_from":"roles-and-groups","roles":["Sales"]"#).unwrap();

    let refused = Account::new();
    *refused.token_refusal.borrow_mut() = Some(answer(
        401,
        vec![],
        json!({"status": {"error": true, "code": 401, "type": "Unauthorized", "message": "Authentication Failure"}}),
    ));
    let e = check(&refused, "").unwrap_err();
    assert!(
        matches!(&e, PluginError::Auth(m) if m.contains("Authentication Failure") && m.contains("check client_id and the secret")),
        "{e:?}"
    );

    let elsewhere = Account::new();
    *elsewhere.token_refusal.borrow_mut() = Some(answer(404, vec![], json!({"message": "no route"})));
    let e = check(&elsewhere, "").unwrap_err();
    assert!(
        matches!(&e, PluginError::Config(m) if m.contains("api_url should be https://<subdomain>.onelogin.com")),
        "{e:?}"
    );

    let auth_only = Account::new();
    auth_only.scope.set(CredScope::AuthenticationOnly);
    let e = check(&auth_only, "").unwrap_err();
    assert!(
        matches!(&e, PluginError::Auth(m) if m.contains("/api/2/users") && m.contains("the scope \"Read users\" (the least") && m.contains("Developers → API Credentials")),
        "{e:?}"
    );

    // "Read users" is the least privilege: it reads users, roles and (API v1) groups.
    let users_only = Account::new();
    users_only.scope.set(CredScope::ReadUsers);
    check(&users_only, r#","groups_from":"roles-and-groups","roles":["Sales"]"#).unwrap();
    let r = read(
        &fetch_all(
            &users_only,
            &settings_as("read-users", r#","groups_from":"roles-and-groups""#),
            None,
        )
        .unwrap(),
    );
    assert!(
        r.groups.contains_key("group:7") && r.groups.contains_key("role:10"),
        "{:?}",
        r.groups
    );

    let e = check(&a, r#","roles":["Marketing"]"#).unwrap_err();
    assert!(
        matches!(&e, PluginError::Config(m) if m.contains("roles: OneLogin has no role named or numbered `Marketing`")),
        "{e:?}"
    );
    a.roles.borrow_mut().push((21, "Sales".into()));
    let e = check(&a, r#","roles":["Sales"]"#).unwrap_err();
    assert!(
        matches!(&e, PluginError::Config(m) if m.contains("2 OneLogin roles are named `Sales` (ids 20, 21)")),
        "{e:?}"
    );
}

#[test]
fn malformed_pages_fail_naming_the_connector_the_listing_and_the_field() {
    let bad = |path: &str, body: &str| {
        let a = Account::new();
        a.fail_next(
            path,
            Response {
                status: 200,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: body.as_bytes().to_vec(),
            },
        );
        fetch_all(&a, &settings(r#","groups_from":"roles-and-groups""#), None).unwrap_err()
    };
    let cases = [
        (
            "/api/2/users",
            r#"[{"id":1,"username":"a","status":1},{"id":2,"user"#,
            "onelogin: GET /api/2/users, page 1",
            "at `[1]",
        ),
        (
            "/api/2/users",
            r#"[{"id":1,"username":"a","status":"active"}]"#,
            "onelogin: GET /api/2/users, page 1",
            "field `status`",
        ),
        (
            "/api/2/users",
            r#"{"data":[]}"#,
            "onelogin: GET /api/2/users, page 1",
            "expected a sequence",
        ),
        (
            "/api/2/roles",
            r#"[{"id":"ten","name":"Engineering"}]"#,
            "onelogin: GET /api/2/roles, page 1",
            "at `[0].id`",
        ),
        (
            "/api/2/roles/10/users",
            r#"[{"id":null}]"#,
            "onelogin: GET /api/2/roles/10/users, page 1",
            "at `[0].id`",
        ),
        (
            "/api/1/groups",
            r#"{"pagination":{"after_cursor":null},"data":[{"id":7,"name":false}]}"#,
            "onelogin: GET /api/1/groups, page 1",
            "at `data[0].name`",
        ),
    ];
    for (path, body, listing, field) in cases {
        let e = bad(path, body);
        assert!(
            matches!(&e, PluginError::Fatal(m) if m.starts_with(listing) && m.contains(field)),
            "{path} {body}: {e:?}"
        );
    }
}

#[test]
fn a_server_that_pages_in_a_circle_is_stopped() {
    let a = Account::new();
    for _ in 0..3 {
        a.fail_next(
            "/api/2/users",
            answer(
                200,
                vec![("After-Cursor".into(), "same".into())],
                json!([{"id": 1, "username": "a", "status": 1}]),
            ),
        );
    }
    let e = fetch_all(&a, &settings(r#","groups_from":"groups""#), None).unwrap_err();
    assert!(
        matches!(&e, PluginError::Fatal(m) if m.starts_with("onelogin: GET /api/2/users, page 2") && m.contains("same next-page link")),
        "{e:?}"
    );
}

#[test]
fn throttling_and_server_errors_are_transient_and_a_token_refused_mid_run_is_renewed() {
    let a = Account::new();
    a.fail_next("/api/2/roles", v2_error(429, "TooManyRequests"));
    let e = fetch_all(&a, &settings(""), None).unwrap_err();
    assert!(
        matches!(&e, PluginError::Transient(m) if m.contains("TooManyRequests")),
        "{e:?}"
    );
    // An expired token: OneLogin answers 401, Roster takes a new one and goes on.
    let a = Account::new();
    a.fail_next("/api/2/users", v2_error(401, "Unauthorized"));
    let r = read(&fetch_all(&a, &settings_as("renewed", ""), None).unwrap());
    assert_eq!(r.users.len(), 5);
    assert_eq!(a.token_requests.borrow().len(), 2);
}

#[test]
fn api_v1_gets_the_documented_bearer_colon_form_when_it_refuses_bearer() {
    let a = Account::new();
    a.v1_auth.set(V1Auth::DocumentedOnly);
    let s = settings_as("v1-documented", r#","groups_from":"groups""#);
    roster_sdk::idp::check::<OneLogin>(&s, &Imports::http(&a)).unwrap();
    let r = read(&fetch_all(&a, &s, None).unwrap());
    assert_eq!(r.groups.keys().collect::<Vec<_>>(), vec!["group:7", "group:8"]);
    assert_eq!(
        r.memberships,
        pairs(&[("group:7", "1"), ("group:7", "4"), ("group:8", "2")])
    );
    // `Bearer` once, refused; then the documented form, remembered for the account's later
    // v1 calls (the fetch's two group pages). API v2 keeps `Bearer`.
    assert_eq!(
        *a.v1_headers.borrow(),
        vec!["Bearer tok", "bearer:tok", "bearer:tok", "bearer:tok"]
    );
    // An account that takes `Bearer` on v1 is sent nothing else.
    let a = Account::new();
    read(&fetch_all(&a, &settings_as("v1-either", r#","groups_from":"groups""#), None).unwrap());
    assert_eq!(*a.v1_headers.borrow(), vec!["Bearer tok", "Bearer tok"]);
}

#[test]
fn a_mass_update_is_read_in_full_without_paging_through_the_changes() {
    let a = Account::new();
    let s = settings("");
    let full = read(&fetch_all(&a, &s, None).unwrap());
    a.now.set(START + 600);
    for user in [1, 3, 5] {
        a.edit(user, "department", json!("Reorg"));
    }
    a.log.borrow_mut().clear();
    let err = fetch_all(&a, &s, Some(&full.token)).unwrap_err();
    assert!(
        matches!(&err, PluginError::ExpiredDelta(m) if m.contains("3 users changed") && m.contains("half of the 5")),
        "{err:?}"
    );
    // Total-Count said it on the first page: no further page, no user's roles.
    let users_pages: Vec<String> = a
        .paths()
        .into_iter()
        .filter(|p| p.starts_with("/api/2/users"))
        .collect();
    assert_eq!(users_pages.len(), 1, "{users_pages:?}");
    assert!(!users_pages[0].contains("cursor="), "{users_pages:?}");
    // Without Total-Count the pages read so far decide, as soon as they tell.
    a.fail_next(
        "/api/2/users",
        answer(
            200,
            vec![],
            json!([{"id": 1, "username": "alice", "status": 1}, {"id": 3, "username": "carol", "status": 1},
                   {"id": 5, "username": "erin", "status": 2}]),
        ),
    );
    let err = fetch_all(&a, &s, Some(&full.token)).unwrap_err();
    assert!(
        matches!(&err, PluginError::ExpiredDelta(m) if m.contains("3 users changed")),
        "{err:?}"
    );
    // The host reads in full instead; after it, two changes of five are read incrementally.
    a.now.set(START + 1_200);
    let refetched = read(&fetch_all(&a, &s, None).unwrap());
    assert_eq!(refetched.users.len(), 5);
    a.now.set(START + 1_800);
    a.edit(1, "department", json!("R&D"));
    a.edit(2, "department", json!("R&D"));
    let few = read(&fetch_all(&a, &s, Some(&refetched.token)).unwrap());
    assert_eq!(few.users.keys().collect::<Vec<_>>(), vec!["1", "2"]);
}

#[test]
fn the_mass_update_threshold() {
    use crate::fetch::{MASS_UPDATE, mass_update};
    assert!(mass_update(MASS_UPDATE, 1_000_000).is_none());
    assert!(mass_update(MASS_UPDATE + 1, 1_000_000).is_some_and(|m| m.contains("more than 10000")));
    assert!(mass_update(2, 5).is_none());
    assert!(mass_update(3, 5).is_some());
    assert!(mass_update(3, 6).is_none());
    assert!(mass_update(0, 0).is_none());
    assert!(mass_update(1, 0).is_some(), "an account that was empty");
    assert!(mass_update(u64::MAX, u64::MAX).is_some());
}

#[test]
fn under_a_roles_filter_only_groups_holding_a_user_in_scope_are_groups() {
    let a = Account::new().with_bystanders(4);
    // Sales is carol (3), in no group; Berlin holds alice and dave, Paris bob: none in scope.
    let s = settings(r#","groups_from":"roles-and-groups","roles":["Sales","Empty"]"#);
    let full = read(&fetch_all(&a, &s, None).unwrap());
    assert_eq!(full.users.keys().collect::<Vec<_>>(), vec!["3"]);
    // The roles the filter names are groups even while nobody holds them.
    assert_eq!(full.groups.keys().collect::<Vec<_>>(), vec!["role:20", "role:30"]);
    assert_eq!(full.memberships, pairs(&[("role:20", "3")]));

    // Carol moves to Paris: it becomes a group, with her in it.
    a.now.set(START + 600);
    a.edit(3, "group_id", json!(8));
    a.edit(1, "title", json!("Lead")); // out of scope: read, nothing emitted
    let joined = read(&fetch_all(&a, &s, Some(&full.token)).unwrap());
    assert_eq!(joined.groups.keys().collect::<Vec<_>>(), vec!["group:8"]);
    assert_eq!(joined.memberships, pairs(&[("group:8", "3")]));
    assert!(joined.removed_groups.is_empty(), "{:?}", joined.removed_groups);

    // Paris renamed: emitted again under its new name; Berlin deleted: never a group, so no
    // removal either.
    a.now.set(START + 1_200);
    a.groups.borrow_mut().retain(|(id, _)| *id != 7);
    a.groups
        .borrow_mut()
        .iter_mut()
        .for_each(|(_, name)| *name = "Paris 2".into());
    let renamed = read(&fetch_all(&a, &s, Some(&joined.token)).unwrap());
    let groups: Vec<(&str, &str)> = renamed.groups.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(groups, vec![("group:8", "Paris 2")]);
    assert!(renamed.removed_groups.is_empty(), "{:?}", renamed.removed_groups);

    // Carol leaves Paris, its last user in scope: it leaves with her membership.
    a.now.set(START + 1_800);
    a.edit(3, "group_id", Value::Null);
    let left = read(&fetch_all(&a, &s, Some(&renamed.token)).unwrap());
    assert_eq!(left.removed_memberships, pairs(&[("group:8", "3")]));
    assert_eq!(
        left.removed_groups,
        vec![("group:8".to_string(), RemovalKind::SoftDeleted)]
    );
    assert!(left.groups.is_empty());
    // And the next full fetch agrees.
    let again = read(&fetch_all(&a, &s, None).unwrap());
    assert_eq!(again.groups.keys().collect::<Vec<_>>(), vec!["role:20", "role:30"]);
}

#[test]
fn a_user_listed_twice_while_the_changes_are_paged_has_its_roles_read_once() {
    let a = Account::new();
    let s = settings("");
    let full = read(&fetch_all(&a, &s, None).unwrap());
    a.now.set(START + 600);
    a.assign(20, 1);
    // Updated again between two pages: OneLogin lists alice on both.
    a.fail_next(
        "/api/2/users",
        answer(
            200,
            vec![("After-Cursor".into(), "o1".into())],
            json!([{"id": 1, "username": "alice", "status": 1}]),
        ),
    );
    a.fail_next(
        "/api/2/users",
        answer(200, vec![], json!([{"id": 1, "username": "alice", "status": 1}])),
    );
    a.log.borrow_mut().clear();
    let changes = read(&fetch_all(&a, &s, Some(&full.token)).unwrap());
    assert_eq!(changes.memberships, pairs(&[("role:20", "1")]));
    assert_eq!(a.calls("/api/2/users/1/roles"), 1, "{:?}", a.paths());
}

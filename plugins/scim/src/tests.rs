//! The connector against a scripted SCIM service: users, groups with members (listed, or left
//! out of lists), `startIndex`/`count` paging with the service's own cap on `count`, a listing
//! that moves between pages, SCIM error bodies, with every request logged.

use std::cell::{Cell, RefCell};

use roster_sdk::http::Transport;
use roster_sdk::{Imports, Page, PluginError, Request, Response};
use serde_json::{Value, json};

use super::*;

const BASE: &str = "https://idp.example.com/scim/v2";
const TOKEN_HEADER: &str = "Bearer {{secret:token}}";

struct Service {
    users: RefCell<Vec<Value>>,
    groups: RefCell<Vec<Value>>,
    /// Lists leave `members` out (read each group by id).
    members_in_lists: bool,
    /// The most resources a page holds, whatever `count` asked.
    cap: usize,
    /// The user deleted after this many users requests.
    delete_after: Cell<Option<(usize, &'static str)>>,
    /// Answers instead of the service's: (path suffix, status, body), used once.
    faults: RefCell<Vec<(String, u16, String)>>,
    log: RefCell<Vec<String>>,
    token_bodies: RefCell<Vec<String>>,
}

fn resp(status: u16, body: String) -> Response {
    Response {
        status,
        headers: vec![("content-type".into(), "application/scim+json".into())],
        body: body.into_bytes(),
    }
}

fn error(status: u16, scim_type: Option<&str>, detail: &str) -> String {
    let mut e = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": status.to_string(), "detail": detail});
    if let Some(t) = scim_type {
        e["scimType"] = json!(t);
    }
    e.to_string()
}

impl Service {
    /// Users alice, bob, carol, dave, erin (inactive); groups eng {alice, backend}, backend
    /// {bob, carol}, sales {erin}, empty {}.
    fn new() -> Self {
        let s = Service {
            users: RefCell::new(vec![]),
            groups: RefCell::new(vec![]),
            members_in_lists: true,
            cap: 1000,
            delete_after: Cell::new(None),
            faults: RefCell::new(vec![]),
            log: RefCell::new(vec![]),
            token_bodies: RefCell::new(vec![]),
        };
        for (n, name) in ["alice", "bob", "carol", "dave", "erin"].iter().enumerate() {
            s.users.borrow_mut().push(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "id": format!("u{n}"), "userName": name, "active": *name != "erin",
                "name": {"givenName": name.to_uppercase(), "familyName": "Doe"},
                "emails": [{"value": format!("{name}@acme.test"), "type": "work", "primary": true}],
                roster_scim::schema::ENTERPRISE_URN: {"employeeNumber": format!("E{n}")}
            }));
        }
        for (id, name, members) in [
            (
                "g-eng",
                "eng",
                json!([{"value": "u0", "type": "User"}, {"value": "g-backend", "type": "Group"}]),
            ),
            ("g-backend", "backend", json!([{"value": "u1"}, {"value": "u2"}])),
            ("g-sales", "sales", json!([{"value": "u4"}])),
            ("g-empty", "empty", json!([])),
        ] {
            s.groups
                .borrow_mut()
                .push(json!({"id": id, "displayName": name, "members": members}));
        }
        s
    }

    fn list(&self, items: Vec<Value>, query: &[(String, String)]) -> String {
        let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let start: usize = get("startIndex").map_or(1, |v| v.parse().unwrap());
        let count: usize = get("count").map_or(100, |v| v.parse().unwrap());
        let mut items = items;
        if get("filter").as_deref() == Some("active eq true") {
            items.retain(|u| u["active"] == json!(true));
        }
        let total = items.len();
        let page: Vec<Value> = items
            .into_iter()
            .skip(start.max(1) - 1)
            .take(count.min(self.cap))
            .collect();
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
               "totalResults": total, "startIndex": start, "itemsPerPage": page.len(), "Resources": page})
        .to_string()
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
        if path == "/oauth2/token" {
            self.token_bodies
                .borrow_mut()
                .push(String::from_utf8(req.body.clone().unwrap_or_default()).unwrap());
            return resp(
                200,
                json!({"access_token": "oauth-tok", "expires_in": 300, "token_type": "Bearer"}).to_string(),
            );
        }
        let auth = req
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.as_str());
        if auth != Some(TOKEN_HEADER) && auth != Some("Bearer oauth-tok") {
            return resp(401, error(401, None, "Authorization failure"));
        }
        let fault = {
            let mut faults = self.faults.borrow_mut();
            let at = faults.iter().position(|(p, _, _)| path.ends_with(p.as_str()));
            at.map(|i| faults.remove(i))
        };
        if let Some((_, status, body)) = fault {
            return resp(status, body);
        }
        let rest = path.strip_prefix("/scim/v2").unwrap_or("/elsewhere");
        match rest {
            "/ServiceProviderConfig" => resp(
                200,
                json!({"schemas": [check::SPC_URN], "patch": {"supported": true}, "filter": {"supported": true, "maxResults": 200}})
                    .to_string(),
            ),
            "/Users" => {
                if query.iter().any(|(k, v)| k == "filter" && v == "bad(") {
                    return resp(400, error(400, Some("invalidFilter"), "invalid syntax at column 4"));
                }
                let body = self.list(self.users.borrow().clone(), &query);
                if let Some((n, id)) = self.delete_after.take() {
                    if n <= 1 {
                        self.users.borrow_mut().retain(|u| u["id"] != id);
                    } else {
                        self.delete_after.set(Some((n - 1, id)));
                    }
                }
                resp(200, body)
            }
            "/Groups" => {
                let mut groups = self.groups.borrow().clone();
                if !self.members_in_lists {
                    for g in &mut groups {
                        g.as_object_mut().unwrap().remove("members");
                    }
                }
                resp(200, self.list(groups, &query))
            }
            _ => match rest.strip_prefix("/Groups/") {
                Some(id) => match self.groups.borrow().iter().find(|g| g["id"] == id) {
                    Some(g) => resp(200, g.to_string()),
                    None => resp(404, error(404, None, "Resource not found")),
                },
                None => resp(404, "<html>Not Found</html>".into()),
            },
        }
    }

    fn requests(&self, fragment: &str) -> usize {
        self.log.borrow().iter().filter(|l| l.contains(fragment)).count()
    }
}

impl Transport for Service {
    fn send(&self, req: Request) -> Result<Response, PluginError> {
        Ok(self.handle(&req))
    }
}

fn settings(extra: &str) -> String {
    let mut base = json!({"base_url": BASE});
    let more: serde_json::Map<String, Value> =
        serde_json::from_str(&format!("{{{}}}", extra.trim_start_matches(','))).unwrap();
    base.as_object_mut().unwrap().extend(more);
    base.to_string()
}

fn fetch_all(service: &Service, settings: &str) -> Result<Vec<Page>, PluginError> {
    let mut pages = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let p = roster_sdk::idp::fetch::<ScimIdp>(settings, cursor.as_deref(), None, &Imports::http(service))?;
        cursor = p.next.clone();
        pages.push(p);
        if cursor.is_none() {
            return Ok(pages);
        }
        assert!(pages.len() < 200, "the fetch does not end");
    }
}

fn check(service: &Service, settings: &str) -> Result<(), PluginError> {
    roster_sdk::idp::check::<ScimIdp>(settings, &Imports::http(service))
}

fn usernames(pages: &[Page]) -> Vec<String> {
    let mut v: Vec<String> = pages
        .iter()
        .flat_map(|p| &p.users)
        .map(|u| u.username.clone())
        .collect();
    v.sort();
    v
}

fn links(pages: &[Page]) -> Vec<(String, String, bool)> {
    let mut v: Vec<(String, String, bool)> = pages
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

#[test]
fn users_groups_and_members_are_read_in_pages() {
    let svc = Service::new();
    let pages = fetch_all(&svc, &settings(r#","page_size":2"#)).unwrap();
    assert_eq!(usernames(&pages), ["alice", "bob", "carol", "dave", "erin"]);
    let erin = pages
        .iter()
        .flat_map(|p| &p.users)
        .find(|u| u.username == "erin")
        .unwrap();
    assert!(!erin.active);
    assert_eq!(erin.email.as_deref(), Some("erin@acme.test"));
    assert_eq!(erin.display_name.as_deref(), Some("ERIN Doe"));
    assert!(
        erin.attributes
            .contains(&("enterprise.employeeNumber".into(), "E4".into()))
    );
    let mut groups: Vec<String> = pages.iter().flat_map(|p| &p.groups).map(|g| g.name.clone()).collect();
    groups.sort();
    assert_eq!(groups, ["backend", "empty", "eng", "sales"]);
    assert_eq!(
        links(&pages),
        [
            link("g-backend", "u1", false),
            link("g-backend", "u2", false),
            link("g-eng", "g-backend", true),
            link("g-eng", "u0", false),
            link("g-sales", "u4", false),
        ]
    );
    // 5 users in pages of 2 with one item of overlap: 1-2, 2-4, 4-6; startIndex is 1-based.
    assert_eq!(svc.requests("/Users?"), 3);
    assert!(
        svc.log
            .borrow()
            .iter()
            .any(|l| l.ends_with("/Users?startIndex=1&count=2"))
    );
    assert!(
        svc.log
            .borrow()
            .iter()
            .any(|l| l.ends_with("/Users?startIndex=2&count=3"))
    );
    assert_eq!(svc.requests("/Groups/"), 0, "members came with the listing");
    assert!(pages.last().unwrap().delta_token.is_none(), "no change feed: no token");
    assert_eq!(
        pages.last().unwrap().total_hint,
        Some(9),
        "totalResults announces the users and groups"
    );
}

#[test]
fn a_service_that_caps_pages_below_the_count_is_read_to_its_total() {
    let mut svc = Service::new();
    svc.cap = 2;
    let pages = fetch_all(&svc, &settings(r#","page_size":10"#)).unwrap();
    assert_eq!(usernames(&pages), ["alice", "bob", "carol", "dave", "erin"]);
    assert_eq!(links(&pages).len(), 5);
}

#[test]
fn groups_listed_without_members_are_read_by_id() {
    let mut svc = Service::new();
    svc.members_in_lists = false;
    let pages = fetch_all(&svc, &settings("")).unwrap();
    assert_eq!(links(&pages).len(), 5);
    assert_eq!(svc.requests("/Groups/"), 4);
    // Not asked for when members are skipped.
    let svc = Service::new();
    let pages = fetch_all(&svc, &settings(r#","members":"skip""#)).unwrap();
    assert!(links(&pages).is_empty());
    assert!(
        svc.log
            .borrow()
            .iter()
            .any(|l| l.contains("excludedAttributes=members"))
    );
}

#[test]
fn a_user_deleted_between_pages_does_not_hide_the_next_one() {
    let svc = Service::new();
    // After the first page (alice, bob), alice is deleted: carol moves to position 2.
    svc.delete_after.set(Some((1, "u0")));
    let pages = fetch_all(&svc, &settings(r#","page_size":2"#)).unwrap();
    assert_eq!(usernames(&pages), ["alice", "bob", "carol", "dave", "erin"]);
}

#[test]
fn active_only_and_the_username_attribute_are_settings() {
    let svc = Service::new();
    let pages = fetch_all(
        &svc,
        &settings(r#","users":"active-only","username_attribute":"email""#),
    )
    .unwrap();
    assert_eq!(
        usernames(&pages),
        ["alice@acme.test", "bob@acme.test", "carol@acme.test", "dave@acme.test"]
    );
    assert!(svc.log.borrow().iter().any(|l| l.contains("filter=active%20eq%20true")));
    let pages = fetch_all(&svc, &settings(r#","username_attribute":"enterprise.employeeNumber""#)).unwrap();
    assert_eq!(usernames(&pages), ["E0", "E1", "E2", "E3", "E4"]);
    let err = check(&svc, &settings(r#","username_attribute":"nickName""#)).unwrap_err();
    assert!(
        matches!(&err, PluginError::Config(m) if m.contains("nickName") && m.contains("alice")),
        "{err:?}"
    );
}

#[test]
fn check_names_a_refused_token_a_url_that_is_not_scim_and_a_bad_filter() {
    let svc = Service::new();
    check(&svc, &settings("")).unwrap();
    let err = check(&svc, &settings(r#","auth":{"type":"bearer","token":"other"}"#)).unwrap_err();
    assert!(
        matches!(&err, PluginError::Auth(m) if m.contains("`other` secret") && m.contains("SCIM 401: Authorization failure")),
        "{err:?}"
    );
    let err = check(&svc, &settings(r#","base_url":"https://idp.example.com/api""#)).unwrap_err();
    assert!(
        matches!(&err, PluginError::Config(m) if m.contains("not a SCIM 2.0 service") && m.contains("/ServiceProviderConfig")),
        "{err:?}"
    );
    svc.faults
        .borrow_mut()
        .push(("/ServiceProviderConfig".into(), 200, "<html>Welcome</html>".into()));
    let err = check(&svc, &settings("")).unwrap_err();
    assert!(
        matches!(&err, PluginError::Config(m) if m.contains("is not JSON")),
        "{err:?}"
    );
    svc.faults.borrow_mut().push((
        "/ServiceProviderConfig".into(),
        200,
        json!({"schemas": [check::SPC_URN], "patch": {"supported": false}, "filter": {"supported": false}}).to_string(),
    ));
    let err = check(&svc, &settings(r#","users":"active-only""#)).unwrap_err();
    assert!(
        matches!(&err, PluginError::Config(m) if m.contains("does not support filters")),
        "{err:?}"
    );
    let err = check(&svc, &settings(r#","user_filter":"bad(""#)).unwrap_err();
    assert!(
        matches!(&err, PluginError::Config(m) if m.contains("InvalidFilter") && m.contains("correct user_filter")),
        "{err:?}"
    );
}

#[test]
fn a_malformed_page_is_refused_naming_the_page_and_the_field() {
    let svc = Service::new();
    svc.faults
        .borrow_mut()
        .push(("/Users".into(), 200, json!({"Resources": [{"id": "x"}]}).to_string()));
    let err = fetch_all(&svc, &settings("")).unwrap_err();
    assert!(
        matches!(&err, PluginError::Fatal(m) if m.contains("list users (page /Users?startIndex=1&count=100)") && m.contains("totalResults")),
        "{err:?}"
    );
    svc.faults.borrow_mut().push((
        "/Users".into(),
        200,
        json!({"totalResults": 1, "Resources": [{"id": "x", "active": true}]}).to_string(),
    ));
    let err = fetch_all(&svc, &settings("")).unwrap_err();
    assert!(
        matches!(&err, PluginError::Fatal(m) if m.contains("user 0 of the page") && m.contains("userName")),
        "{err:?}"
    );
    svc.faults
        .borrow_mut()
        .push(("/Users".into(), 503, error(503, None, "try later")));
    let err = fetch_all(&svc, &settings("")).unwrap_err();
    assert!(
        matches!(&err, PluginError::Transient(m) if m.contains("list users") && m.contains("SCIM 503: try later")),
        "{err:?}"
    );
}

#[test]
fn oauth_client_credentials_get_a_token_and_the_secret_stays_in_the_host() {
    let svc = Service::new();
    let s = settings(
        r#","auth":{"type":"client-credentials","token_url":"https://idp.example.com/oauth2/token","client_id":"roster"}"#,
    );
    check(&svc, &s).unwrap();
    let pages = fetch_all(&svc, &s).unwrap();
    assert_eq!(usernames(&pages).len(), 5);
    let body = svc.token_bodies.borrow()[0].clone();
    assert!(
        body.contains("grant_type=client_credentials") && body.contains("client_secret={{secret:client_secret}}"),
        "{body}"
    );
}

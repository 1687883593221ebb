//! The connector against a scripted Google Workspace: the token endpoint (the JWT-bearer grant,
//! Google's OAuth error bodies), users, groups and members answered from data with `pageToken`
//! paging, Google's error documents and quota refusals — so each test asserts what the
//! connector asks and what reaches Roster. `sign-jwt` is stood in for by an unsigned JWT whose
//! claims the token endpoint reads.

use std::cell::{Cell, RefCell};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use google::GoogleIdp;
use roster_sdk::http::Transport;
use roster_sdk::{Imports, Page, PluginError, Request, Response};
use serde_json::{Value, json};

const SA: &str = "roster@acme-sync.iam.gserviceaccount.com";
const ADMIN: &str = "admin@acme.com";
const USER_SCOPE: &str = "https://www.googleapis.com/auth/admin.directory.user.readonly";
const GROUP_SCOPE: &str = "https://www.googleapis.com/auth/admin.directory.group.readonly";

#[derive(Clone)]
struct U {
    id: String,
    email: String,
    suspended: bool,
    archived: bool,
}

#[derive(Clone)]
struct G {
    id: String,
    name: String,
    /// (`USER` or `GROUP`, id).
    members: Vec<(&'static str, String)>,
    etag: u32,
}

/// A scripted failure: path prefix, status, body; answered once.
type Fault = (String, u16, String);

#[derive(Default)]
struct Workspace {
    users: RefCell<Vec<U>>,
    groups: RefCell<Vec<G>>,
    /// Objects per page, whatever maxResults asks (Google may return fewer).
    page: Cell<usize>,
    /// Every API request, path and query, without the host.
    log: RefCell<Vec<String>>,
    /// Token requests' scopes.
    token_scopes: RefCell<Vec<String>>,
    faults: RefCell<Vec<Fault>>,
    /// Scopes the delegation grants; `None`: no delegation at all.
    delegated: RefCell<Option<Vec<String>>>,
    /// The key is not the service account's.
    bad_key: Cell<bool>,
    /// The impersonated user is not an admin.
    not_admin: Cell<bool>,
    /// The Admin SDK API is not enabled in the service account's project.
    api_disabled: Cell<bool>,
}

fn uid(n: u32) -> String {
    format!("1{n:020}")
}
fn gid(n: u32) -> String {
    format!("0{n:016x}")
}

fn google_error(code: u16, message: &str, reason: &str) -> String {
    json!({"error": {"code": code, "message": message, "errors": [{"message": message, "domain": "global", "reason": reason}]}})
        .to_string()
}

impl Workspace {
    /// Users u1…u5 (u3 suspended, u4 archived); groups eng {u1, u2, nested ops}, ops {u3},
    /// all {eng}, empty.
    fn new() -> Self {
        let w = Workspace::default();
        w.page.set(2);
        *w.delegated.borrow_mut() = Some(vec![USER_SCOPE.into(), GROUP_SCOPE.into()]);
        for n in 1..=5 {
            w.users.borrow_mut().push(U {
                id: uid(n),
                email: format!("user{n}@acme.com"),
                suspended: n == 3,
                archived: n == 4,
            });
        }
        let g = |n: u32, name: &str, members: Vec<(&'static str, String)>| G {
            id: gid(n),
            name: name.into(),
            members,
            etag: 1,
        };
        *w.groups.borrow_mut() = vec![
            g(1, "eng", vec![("USER", uid(1)), ("USER", uid(2)), ("GROUP", gid(2))]),
            g(2, "ops", vec![("USER", uid(3))]),
            g(3, "all", vec![("GROUP", gid(1))]),
            g(4, "empty", vec![]),
        ];
        w
    }

    fn api_calls(&self, prefix: &str) -> usize {
        self.log.borrow().iter().filter(|l| l.starts_with(prefix)).count()
    }

    fn paged(&self, items: Vec<Value>, field: &str, token: Option<&str>) -> Value {
        let start: usize = token.map_or(0, |t| t.trim_start_matches('p').parse().unwrap());
        let end = (start + self.page.get()).min(items.len());
        let mut page = json!({"kind": format!("admin#directory#{field}"), "etag": "\"e\""});
        if end > start {
            page[field] = Value::Array(items[start..end].to_vec());
        }
        if end < items.len() {
            page["nextPageToken"] = json!(format!("p{end}"));
        }
        page
    }

    fn token(&self, req: &Request) -> (u16, String) {
        let body = String::from_utf8(req.body.clone().unwrap()).unwrap();
        let form: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
        assert_eq!(
            form[0],
            (
                "grant_type".into(),
                "urn:ietf:params:oauth:grant-type:jwt-bearer".into()
            )
        );
        let jwt = &form[1].1;
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jwt.split('.').nth(1).unwrap()).unwrap()).unwrap();
        assert_eq!(
            (claims["iss"].as_str(), claims["sub"].as_str()),
            (Some(SA), Some(ADMIN))
        );
        assert_eq!(claims["aud"], "https://oauth2.googleapis.com/token");
        let scope = claims["scope"].as_str().unwrap().to_string();
        self.token_scopes.borrow_mut().push(scope.clone());
        if self.bad_key.get() {
            return (
                400,
                json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}).to_string(),
            );
        }
        let granted = self.delegated.borrow().clone().unwrap_or_default();
        if scope.split(' ').any(|s| !granted.iter().any(|g| g == s)) {
            return (
                401,
                json!({"error": "unauthorized_client", "error_description": "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested."}).to_string(),
            );
        }
        (
            200,
            json!({"access_token": "ya29.t", "expires_in": 3599, "token_type": "Bearer"}).to_string(),
        )
    }

    fn api(&self, path: &str, q: &[(String, String)]) -> (u16, String) {
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        if self.api_disabled.get() {
            // Google's answer, as sent for a project without the API.
            let message = "Admin SDK API has not been used in project 1039 before or it is disabled. Enable it by visiting https://console.developers.google.com/apis/api/admin.googleapis.com/overview?project=1039 then retry.";
            let body = json!({"error": {"code": 403, "message": message, "status": "PERMISSION_DENIED",
                "errors": [{"message": message, "domain": "usageLimits", "reason": "accessNotConfigured"}]}});
            return (403, body.to_string());
        }
        if self.not_admin.get() {
            return (
                403,
                google_error(403, "Not Authorized to access this resource/api", "forbidden"),
            );
        }
        let path = path.strip_prefix("/admin/directory/v1").unwrap();
        if path == "/users" {
            assert_eq!(get("customer"), Some("my_customer"));
            assert!(matches!(get("maxResults"), Some("500" | "1")), "{q:?}");
            let users: Vec<Value> = self
                .users
                .borrow()
                .iter()
                .map(|u| json!({"kind": "admin#directory#user", "id": u.id, "primaryEmail": u.email,
                    "name": {"fullName": format!("User {}", u.id)}, "suspended": u.suspended, "archived": u.archived, "orgUnitPath": "/"}))
                .collect();
            return (200, self.paged(users, "users", get("pageToken")).to_string());
        }
        if path == "/groups" {
            assert!(matches!(get("maxResults"), Some("200" | "1")), "{q:?}");
            let groups: Vec<Value> = self
                .groups
                .borrow()
                .iter()
                .map(|g| json!({"kind": "admin#directory#group", "id": g.id, "email": format!("{}@acme.com", g.name),
                    "name": g.name, "directMembersCount": g.members.len().to_string(), "etag": format!("\"g{}\"", g.etag)}))
                .collect();
            return (200, self.paged(groups, "groups", get("pageToken")).to_string());
        }
        let group = path.strip_prefix("/groups/").unwrap().strip_suffix("/members").unwrap();
        assert_eq!(get("maxResults"), Some("200"));
        let Some(g) = self.groups.borrow().iter().find(|g| g.id == group).cloned() else {
            return (404, google_error(404, "Resource Not Found: groupKey", "notFound"));
        };
        let members: Vec<Value> = g
            .members
            .iter()
            .map(|(t, id)| json!({"kind": "admin#directory#member", "id": id, "type": t, "role": "MEMBER", "status": "ACTIVE"}))
            .collect();
        (200, self.paged(members, "members", get("pageToken")).to_string())
    }
}

impl Transport for Workspace {
    fn send(&self, req: Request) -> Result<Response, PluginError> {
        let (status, body) = if req.url == "https://oauth2.googleapis.com/token" {
            self.token(&req)
        } else {
            let u = url::Url::parse(&req.url).unwrap();
            let logged = format!("{}?{}", u.path(), u.query().unwrap_or(""));
            self.log.borrow_mut().push(logged.clone());
            let fault = {
                let mut faults = self.faults.borrow_mut();
                let at = faults.iter().position(|(p, _, _)| logged.starts_with(p.as_str()));
                at.map(|i| faults.remove(i))
            };
            match fault {
                Some((_, status, body)) => (status, body),
                None => {
                    let q: Vec<(String, String)> = u.query_pairs().into_owned().collect();
                    self.api(u.path(), &q)
                }
            }
        };
        Ok(Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into_bytes(),
        })
    }
}

fn settings(extra: &str) -> String {
    format!(r#"{{"service_account":"{SA}","admin_email":"{ADMIN}"{extra}}}"#)
}

/// Stands in for the host's `sign-jwt`: the claims, unsigned.
fn unsigned_jwt() {
    roster_sdk::sign_jwt_natively_with(|key, header, claims| {
        assert_eq!(key, "service_account_key");
        Ok(format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        ))
    });
}

/// Every page of a fetch.
fn fetch_all(w: &Workspace, settings: &str, delta: Option<&str>) -> Result<Page, PluginError> {
    unsigned_jwt();
    let mut all = Page::empty();
    let mut cursor: Option<String> = None;
    loop {
        let p = roster_sdk::idp::fetch::<GoogleIdp>(settings, cursor.as_deref(), delta, &Imports::http(w))?;
        all.users.extend(p.users);
        all.groups.extend(p.groups);
        all.memberships.extend(p.memberships);
        all.removed_memberships.extend(p.removed_memberships);
        all.removed_users.extend(p.removed_users);
        all.removed_groups.extend(p.removed_groups);
        all.delta_token = p.delta_token;
        cursor = p.next;
        if cursor.is_none() {
            return Ok(all);
        }
    }
}

fn check(w: &Workspace, settings: &str) -> Result<(), PluginError> {
    unsigned_jwt();
    roster_sdk::idp::check::<GoogleIdp>(settings, &Imports::http(w))
}

fn ids<T>(items: &[T], id: impl Fn(&T) -> String) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(id).collect();
    v.sort();
    v
}

fn links(ms: &[roster_sdk::Membership]) -> Vec<(String, String, bool)> {
    let mut v: Vec<_> = ms
        .iter()
        .map(|m| (m.group_id.clone(), m.member_id.clone(), m.member_is_group))
        .collect();
    v.sort();
    v
}

#[test]
fn a_full_fetch_pages_by_token_reads_nested_groups_and_skips_empty_groups() {
    let w = Workspace::new();
    let p = fetch_all(&w, &settings(""), None).unwrap();
    assert_eq!(p.users.len(), 5);
    let active: Vec<(String, bool)> = p.users.iter().map(|u| (u.username.clone(), u.active)).collect();
    assert!(
        active.contains(&("user3@acme.com".into(), false)),
        "suspended: {active:?}"
    );
    assert!(
        active.contains(&("user4@acme.com".into(), false)),
        "archived: {active:?}"
    );
    assert!(active.contains(&("user5@acme.com".into(), true)));
    assert_eq!(p.groups.len(), 4);
    assert_eq!(
        links(&p.memberships),
        vec![
            (gid(1), gid(2), true),
            (gid(1), uid(1), false),
            (gid(1), uid(2), false),
            (gid(2), uid(3), false),
            (gid(3), gid(1), true),
        ]
    );
    // 3 pages of users, 2 of groups, eng's members on 2 pages, ops and all on one; none for empty.
    assert_eq!(w.api_calls("/admin/directory/v1/users"), 3);
    assert_eq!(w.api_calls("/admin/directory/v1/groups?"), 2);
    assert_eq!(
        w.api_calls(&format!("/admin/directory/v1/groups/{}/members", gid(1))),
        2
    );
    assert_eq!(
        w.api_calls(&format!("/admin/directory/v1/groups/{}/members", gid(4))),
        0
    );
    assert!(w.log.borrow().iter().any(|l| l.contains("pageToken=p2")));
    assert_eq!(w.token_scopes.borrow().len(), 1, "one token for the whole fetch");
    assert!(p.delta_token.is_some());
}

#[test]
fn google_expands_nested_groups_when_asked() {
    let w = Workspace::new();
    fetch_all(&w, &settings(r#","nested_groups":"google""#), None).unwrap();
    assert!(
        w.log
            .borrow()
            .iter()
            .filter(|l| l.contains("/members"))
            .all(|l| l.contains("includeDerivedMembership=true"))
    );
}

#[test]
fn an_incremental_fetch_lists_again_and_reads_only_changed_groups_members() {
    let w = Workspace::new();
    let s = settings("");
    let full = fetch_all(&w, &s, None).unwrap();
    let token = full.delta_token.unwrap();
    // Nothing changed: listings only, nothing emitted.
    w.log.borrow_mut().clear();
    let same = fetch_all(&w, &s, Some(&token)).unwrap();
    assert!(same.users.is_empty() && same.groups.is_empty() && same.memberships.is_empty());
    assert_eq!(w.api_calls("/admin/directory/v1/groups/"), 0, "{:?}", w.log.borrow());
    assert_eq!(w.log.borrow().len(), 3 + 2);
    // u2 suspended, u5 deleted, u6 new; u2 leaves eng and u6 joins ops; the empty group deleted.
    w.users.borrow_mut()[1].suspended = true;
    w.users.borrow_mut().retain(|u| u.id != uid(5));
    w.users.borrow_mut().push(U {
        id: uid(6),
        email: "user6@acme.com".into(),
        suspended: false,
        archived: false,
    });
    {
        let mut groups = w.groups.borrow_mut();
        groups[0].members.retain(|(_, m)| *m != uid(2));
        groups[1].members.push(("USER", uid(6)));
        groups.retain(|g| g.id != gid(4));
    }
    w.log.borrow_mut().clear();
    let p = fetch_all(&w, &s, Some(&same.delta_token.unwrap())).unwrap();
    assert_eq!(ids(&p.users, |u| u.id.clone()), vec![uid(2), uid(6)]);
    assert_eq!(ids(&p.removed_users, |r| r.id.clone()), vec![uid(5)]);
    assert_eq!(ids(&p.groups, |g| g.id.clone()), vec![gid(1), gid(2)]);
    assert_eq!(ids(&p.removed_groups, |r| r.id.clone()), vec![gid(4)]);
    assert_eq!(links(&p.memberships), vec![(gid(2), uid(6), false)]);
    assert_eq!(links(&p.removed_memberships), vec![(gid(1), uid(2), false)]);
    assert_eq!(w.api_calls("/admin/directory/v1/groups/"), 2, "eng and ops only");
}

#[test]
fn malformed_pages_fail_naming_the_connector_the_page_and_the_field() {
    let w = Workspace::new();
    w.faults.borrow_mut().push((
        "/admin/directory/v1/users?customer=my_customer&maxResults=500&pageToken=p2".into(),
        200,
        json!({"users": [{"id": "1", "suspended": false}], "nextPageToken": "p4"}).to_string(),
    ));
    let err = fetch_all(&w, &settings(""), None).unwrap_err().to_string();
    assert!(
        err.contains(
            "google: list users (page /admin/directory/v1/users?customer=my_customer&maxResults=500&pageToken=p2)"
        ) && err.contains("users[0]")
            && err.contains("primaryEmail"),
        "{err}"
    );
    let w = Workspace::new();
    w.faults.borrow_mut().push((
        "/admin/directory/v1/groups?".into(),
        200,
        json!({"groups": [{"id": "g", "name": "n", "directMembersCount": "many"}]}).to_string(),
    ));
    let err = fetch_all(&w, &settings(""), None).unwrap_err().to_string();
    assert!(
        err.contains("list groups") && err.contains("groups[0].directMembersCount"),
        "{err}"
    );
}

#[test]
fn a_page_token_handed_out_again_stops_the_fetch() {
    let w = Workspace::new();
    w.faults.borrow_mut().push((
        "/admin/directory/v1/users?customer=my_customer&maxResults=500&pageToken=p2".into(),
        200,
        json!({"users": [], "nextPageToken": "p2"}).to_string(),
    ));
    let err = fetch_all(&w, &settings(""), None).unwrap_err();
    assert!(matches!(err, PluginError::Fatal(_)), "{err:?}");
}

#[test]
fn a_quota_refusal_that_reaches_the_connector_is_transient_and_the_fetch_continues_from_the_failed_page() {
    let w = Workspace::new();
    let quota = || {
        google_error(
            403,
            "Quota exceeded for quota metric 'Queries'",
            "userRateLimitExceeded",
        )
    };
    w.faults
        .borrow_mut()
        .push(("/admin/directory/v1/users?".into(), 403, quota()));
    let err = fetch_all(&w, &settings(""), None).unwrap_err();
    assert!(
        matches!(&err, PluginError::Transient(m) if m.contains("quota is spent")),
        "{err:?}"
    );
    // After users were read, the page returns them and the next call goes on from the groups.
    w.log.borrow_mut().clear();
    w.faults
        .borrow_mut()
        .push(("/admin/directory/v1/groups?".into(), 403, quota()));
    let p = fetch_all(&w, &settings(""), None).unwrap();
    assert_eq!((p.users.len(), p.groups.len()), (5, 4));
    assert_eq!(w.api_calls("/admin/directory/v1/users?"), 3, "users are not read again");
    assert_eq!(
        w.api_calls("/admin/directory/v1/groups?customer=my_customer&maxResults=200"),
        3
    );
}

#[test]
fn check_names_the_key_the_delegation_the_scope_and_the_admin() {
    let w = Workspace::new();
    check(&w, &settings("")).unwrap();
    w.bad_key.set(true);
    let e = check(&w, &settings("")).unwrap_err().to_string();
    assert!(
        e.contains("Invalid JWT Signature") && e.contains("create a new JSON key"),
        "{e}"
    );
    let w = Workspace::new();
    *w.delegated.borrow_mut() = None;
    let e = check(&w, &settings("")).unwrap_err().to_string();
    assert!(
        e.contains("unauthorized_client") && e.contains("Domain-wide delegation") && e.contains(ADMIN),
        "{e}"
    );
    let w = Workspace::new();
    *w.delegated.borrow_mut() = Some(vec![USER_SCOPE.into()]);
    let e = check(&w, &settings("")).unwrap_err().to_string();
    assert!(e.contains(&format!("does not grant {GROUP_SCOPE}")), "{e}");
    let w = Workspace::new();
    w.not_admin.set(true);
    let e = check(&w, &settings("")).unwrap_err().to_string();
    assert!(
        e.contains("list users and list groups") && e.contains("is not an admin") && e.contains("Admin roles"),
        "{e}"
    );
    // A 403 for an API not enabled is not a missing admin role: it says to enable the API.
    let w = Workspace::new();
    w.api_disabled.set(true);
    let e = check(&w, &settings("")).unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(e, PluginError::Config(_))
            && text.contains("enable the Admin SDK API")
            && !text.contains("admin role"),
        "{text}"
    );
}

#[test]
fn a_refused_key_fails_the_fetch_before_anything_is_read() {
    let w = Workspace::new();
    w.bad_key.set(true);
    assert!(matches!(fetch_all(&w, &settings(""), None), Err(PluginError::Auth(_))));
    assert!(w.log.borrow().is_empty());
}

#[test]
fn a_group_deleted_while_its_members_are_read_is_left_out() {
    let w = Workspace::new();
    w.faults.borrow_mut().push((
        format!("/admin/directory/v1/groups/{}/members", gid(2)),
        404,
        google_error(404, "Resource Not Found: groupKey", "notFound"),
    ));
    let p = fetch_all(&w, &settings(""), None).unwrap();
    assert!(!p.groups.iter().any(|g| g.id == gid(2)));
    assert!(!p.memberships.iter().any(|m| m.group_id == gid(2)));
}

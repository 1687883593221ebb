//! The connector against a scripted Jira whose answers are shaped as crowd-rest.md §4 shows
//! them: users, groups, the membership document, events and the error entity.

use std::cell::RefCell;
use std::collections::HashMap;

use roster_sdk::http::Transport;
use roster_sdk::{Membership, Page, PluginError, Removal, RemovalKind, Request, Response};

use super::*;

const API: &str = "https://jira.test/jira/rest/usermanagement/1";
const SETTINGS: &str = r#"{"server_url":"https://jira.test/jira/","application_name":"roster"}"#;

/// A Jira answering the routes it was given (`"GET /event"`, `"POST /search?…"`, path and
/// query below the API), and 404 with Crowd's error entity to anything else.
#[derive(Default)]
struct Jira {
    routes: RefCell<HashMap<String, Vec<Response>>>,
    /// Routes the transport fails with an error instead of an answer.
    failing: RefCell<Vec<(String, PluginError)>>,
    sent: RefCell<Vec<Request>>,
}

fn with_version(status: u16, body: &str) -> Response {
    Response {
        status,
        headers: vec![
            ("X-Embedded-Crowd-Version".into(), "Jira/9.12.1".into()),
            ("Content-Type".into(), "application/xml".into()),
        ],
        body: body.as_bytes().to_vec(),
    }
}

fn error(status: u16, reason: &str, message: &str) -> Response {
    with_version(
        status,
        &format!("<error><reason>{reason}</reason><message>{message}</message></error>"),
    )
}

impl Jira {
    /// Answers `route` with `resp` from now on (several calls queue answers, the last repeats).
    fn on(&self, route: &str, resp: Response) -> &Self {
        self.routes
            .borrow_mut()
            .entry(route.to_string())
            .or_default()
            .push(resp);
        self
    }

    fn ok(&self, route: &str, body: &str) -> &Self {
        self.on(route, with_version(200, body))
    }

    /// The routes requested, in order.
    fn log(&self) -> Vec<String> {
        self.sent.borrow().iter().map(route).collect()
    }

    /// Resets the connection of every request to `route` from now on.
    fn drop_connection(&self, route: &str) -> &Self {
        self.fail(
            route,
            PluginError::Transient(format!("{route}: the connection was reset")),
        )
    }

    /// Fails every request to `route` with `e` (as the host fails it) from now on.
    fn fail(&self, route: &str, e: PluginError) -> &Self {
        self.failing.borrow_mut().push((route.to_string(), e));
        self
    }

    fn clear_log(&self) {
        self.sent.borrow_mut().clear();
    }
}

fn route(req: &Request) -> String {
    format!("{} {}", req.method, req.url.strip_prefix(API).unwrap_or(&req.url))
}

impl Transport for Jira {
    fn send(&self, req: Request) -> Result<Response, PluginError> {
        let key = route(&req);
        self.sent.borrow_mut().push(req);
        if let Some((_, e)) = self.failing.borrow().iter().find(|(r, _)| *r == key) {
            return Err(e.clone());
        }
        let mut routes = self.routes.borrow_mut();
        Ok(match routes.get_mut(&key) {
            Some(list) if list.len() > 1 => list.remove(0),
            Some(list) => list[0].clone(),
            None => error(404, "ILLEGAL_ARGUMENT", &format!("no route {key}")),
        })
    }
}

const USERS: &str = "POST /search?entity-type=user&start-index=0&max-results=-1&expand=user,attributes";
const GROUPS: &str = "POST /search?entity-type=group&start-index=0&max-results=-1&expand=group";

const USER_LIST: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<users expand="user">
  <user name="alice" expand="attributes">
    <link rel="self" href="https://jira.test/jira/rest/usermanagement/1/user?username=alice"/>
    <first-name>Alice</first-name><last-name>Liddell</last-name><display-name>Alice Liddell</display-name>
    <email>alice@example.com</email><password><link rel="edit" href="x"/></password><active>true</active>
    <attributes><attribute name="team"><values><value>core</value><value>web</value></values></attribute></attributes>
    <key>JIRAUSER10100</key>
  </user>
  <user name="bob"><display-name>Bob</display-name><email>bob@example.com</email><active>false</active><key>JIRAUSER10200</key></user>
  <user name="Carol"><email>carol@example.com</email><active>true</active></user>
  <user name="erin"><active>true</active></user>
</users>"#;

const GROUP_LIST: &str = r#"<groups expand="group">
  <group name="Developers"><description>People who write code</description><type>GROUP</type><active>true</active></group>
  <group name="jira-users"><type>GROUP</type><active>true</active></group>
  <group name="Admins"><type>GROUP</type><active>false</active></group>
  <group name="developers"><type>GROUP</type><active>true</active></group>
</groups>"#;

const MEMBERSHIPS: &str = r#"<memberships>
 <membership group="Developers">
  <users><user name="alice"/><user name="CAROL"/></users>
  <groups><group name="Admins"/></groups>
 </membership>
 <membership group="jira-users">
  <users><user name="alice"/><user name="bob"/><user name="ghost"/></users>
  <groups><group name="developers"/></groups>
 </membership>
 <membership group="unknown-group"><users><user name="alice"/></users></membership>
 <membership group="Admins"><users><user name="bob"/></users><groups/></membership>
</memberships>"#;

/// The directory above: four users (two with Jira keys), three groups (one listed twice in
/// another case), Admins nested in Developers, Developers nested in jira-users.
fn jira() -> Jira {
    let j = Jira::default();
    j.ok(
        "GET /event",
        r#"<events newEventToken="T1" incrementalSynchronisationAvailable="true"/>"#,
    )
    .ok(USERS, USER_LIST)
    .ok(GROUPS, GROUP_LIST)
    .ok("GET /group/membership", MEMBERSHIPS);
    j
}

fn fetch(j: &Jira, settings: &str, cursor: Option<&str>, delta: Option<&str>) -> Result<Page, PluginError> {
    roster_sdk::idp::fetch::<Crowd>(settings, cursor, delta, &roster_sdk::Imports::http(j))
}

/// Every page of a fetch, merged: the records and the last page's token.
fn fetch_all(j: &Jira, settings: &str, delta: Option<&str>) -> Result<Page, PluginError> {
    let mut all = Page::empty();
    let mut cursor: Option<String> = None;
    loop {
        let p = fetch(j, settings, cursor.as_deref(), delta)?;
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
                return Ok(all);
            }
        }
    }
}

fn links(ms: &[Membership]) -> Vec<(String, String, bool)> {
    let mut v: Vec<_> = ms
        .iter()
        .map(|m| (m.group_id.clone(), m.member_id.clone(), m.member_is_group))
        .collect();
    v.sort();
    v
}

fn l(g: &str, m: &str, is_group: bool) -> (String, String, bool) {
    (g.to_string(), m.to_string(), is_group)
}

fn ids<T>(items: &[T], id: impl Fn(&T) -> &str) -> Vec<String> {
    items.iter().map(|x| id(x).to_string()).collect()
}

fn removed(items: &[Removal]) -> Vec<String> {
    assert!(items.iter().all(|r| r.kind == RemovalKind::Deleted));
    ids(items, |r| &r.id)
}

/// Compares errors by variant and message (the generated type has no `PartialEq`).
fn same(a: PluginError, b: PluginError) {
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn full_links() -> Vec<(String, String, bool)> {
    vec![
        l("admins", "JIRAUSER10200", false),
        l("developers", "Carol", false),
        l("developers", "JIRAUSER10100", false),
        l("developers", "admins", true),
        l("jira-users", "JIRAUSER10100", false),
        l("jira-users", "JIRAUSER10200", false),
        l("jira-users", "developers", true),
    ]
}

#[test]
fn a_full_fetch_reads_every_user_group_and_direct_membership_as_atlassian_s_client_asks() {
    let j = jira();
    let page = fetch_all(&j, SETTINGS, None).unwrap();
    assert_eq!(
        j.log(),
        vec!["GET /event", USERS, GROUPS, "GET /group/membership"],
        "the token first, then one request per listing"
    );
    for req in j.sent.borrow().iter() {
        assert_eq!(
            header(req, "authorization"),
            Some("Basic roster:{{secret:application_password}}")
        );
        assert_eq!(header(req, "accept"), Some("application/xml"));
        assert_eq!(header(req, "x-atlassian-token"), Some("no-check"));
    }
    let search = &j.sent.borrow()[1];
    assert_eq!(header(search, "content-type"), Some("application/xml; charset=UTF-8"));
    assert!(String::from_utf8_lossy(search.body.as_deref().unwrap()).ends_with("<null-search-restriction/>"));

    let alice = &page.users[0];
    assert_eq!(
        (
            alice.id.as_str(),
            alice.username.as_str(),
            alice.email.as_deref(),
            alice.display_name.as_deref(),
            alice.active
        ),
        (
            "JIRAUSER10100",
            "alice",
            Some("alice@example.com"),
            Some("Alice Liddell"),
            true
        )
    );
    let attrs: Vec<(&str, &str)> = alice.attributes.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(
        attrs,
        vec![
            ("first-name", "Alice"),
            ("last-name", "Liddell"),
            ("key", "JIRAUSER10100"),
            ("team", "core"),
            ("team", "web")
        ]
    );
    assert_eq!(
        ids(&page.users, |u| &u.id),
        vec!["JIRAUSER10100", "JIRAUSER10200", "Carol", "erin"]
    );
    assert_eq!(
        page.users.iter().map(|u| u.active).collect::<Vec<_>>(),
        vec![true, false, true, true]
    );
    // "developers" is "Developers" again to Crowd: listed once; Admins kept though inactive.
    assert_eq!(ids(&page.groups, |g| &g.id), vec!["developers", "jira-users", "admins"]);
    assert_eq!(page.groups[0].name, "Developers");
    assert_eq!(page.groups[0].description.as_deref(), Some("People who write code"));
    assert_eq!(
        page.groups[2].attributes,
        vec![("active".to_string(), "false".to_string())]
    );
    // Names are matched case-insensitively; a ghost user and an unknown group are skipped.
    assert_eq!(links(&page.memberships), full_links());
    assert_eq!(page.total_hint, Some(7));
    let token = page.delta_token.unwrap();
    assert!(token.contains(r#""token":"T1""#), "{token}");
    assert!(
        token.contains(r#""alice":"JIRAUSER10100""#) && token.contains(r#""carol":"Carol""#),
        "{token}"
    );
    assert!(
        token.contains(r#""erin":"erin""#),
        "every user is known, so membership events about them cost no lookup: {token}"
    );
}

#[test]
fn without_nested_groups_only_users_are_members() {
    let j = jira();
    let settings = SETTINGS.replace('}', r#","use_nested_groups":false}"#);
    let page = fetch_all(&j, &settings, None).unwrap();
    let users_only: Vec<_> = full_links().into_iter().filter(|(_, _, g)| !g).collect();
    assert_eq!(links(&page.memberships), users_only);
}

#[test]
fn a_server_without_the_membership_document_is_read_group_by_group() {
    let j = jira();
    j.routes.borrow_mut().remove("GET /group/membership");
    j.on("GET /group/membership", with_version(404, ""))
        .ok(
            "GET /group/user/direct?groupname=Admins&start-index=0&max-results=-1",
            r#"<users><user name="bob"><link rel="self" href="x"/></user></users>"#,
        )
        .ok(
            "GET /group/child-group/direct?groupname=Admins&start-index=0&max-results=-1",
            "<groups/>",
        )
        .ok(
            "GET /group/user/direct?groupname=Developers&start-index=0&max-results=-1",
            r#"<users><user name="alice"/><user name="CAROL"/></users>"#,
        )
        .ok(
            "GET /group/child-group/direct?groupname=Developers&start-index=0&max-results=-1",
            r#"<groups><group name="Admins"/></groups>"#,
        )
        .ok(
            "GET /group/user/direct?groupname=jira-users&start-index=0&max-results=-1",
            r#"<users><user name="alice"/><user name="bob"/><user name="ghost"/></users>"#,
        )
        .ok(
            "GET /group/child-group/direct?groupname=jira-users&start-index=0&max-results=-1",
            r#"<groups><group name="developers"/></groups>"#,
        );
    let page = fetch_all(&j, SETTINGS, None).unwrap();
    assert_eq!(links(&page.memberships), full_links());
    let per_group = j.log().iter().filter(|r| r.contains("/direct?")).count();
    assert_eq!(per_group, 6, "two listings per group: {:?}", j.log());
    assert!(page.delta_token.unwrap().contains(r#""token":"T1""#));

    // Without nested groups, only the users of each group are listed.
    j.clear_log();
    let settings = SETTINGS.replace('}', r#","use_nested_groups":false}"#);
    let page = fetch_all(&j, &settings, None).unwrap();
    assert_eq!(page.memberships.iter().filter(|m| m.member_is_group).count(), 0);
    assert_eq!(j.log().iter().filter(|r| r.contains("/child-group/")).count(), 0);
    assert_eq!(j.log().iter().filter(|r| r.contains("/group/user/direct")).count(), 3);
}

fn users_at(start: u32) -> String {
    format!("POST /search?entity-type=user&start-index={start}&max-results=2&expand=user,attributes")
}

fn groups_at(start: u32) -> String {
    format!("POST /search?entity-type=group&start-index={start}&max-results=2&expand=group")
}

fn user_xml(name: &str, key: Option<&str>) -> String {
    let key = key.map(|k| format!("<key>{k}</key>")).unwrap_or_default();
    format!(r#"<user name="{name}"><active>true</active>{key}</user>"#)
}

#[test]
fn with_a_page_size_pages_overlap_by_one_and_end_on_a_page_with_nothing_new() {
    let j = jira();
    let (alice, bob, carol) = (
        user_xml("alice", Some("JIRAUSER10100")),
        user_xml("bob", Some("JIRAUSER10200")),
        user_xml("Carol", None),
    );
    j.ok(&users_at(0), &format!("<users>{alice}{bob}</users>"))
        .ok(&users_at(1), &format!("<users>{bob}{carol}</users>"))
        .ok(&users_at(2), &format!("<users>{carol}</users>"))
        .ok(
            &groups_at(0),
            r#"<groups><group name="Developers"><active>true</active></group><group name="jira-users"><active>true</active></group></groups>"#,
        )
        .ok(
            &groups_at(1),
            r#"<groups><group name="jira-users"><active>true</active></group><group name="Admins"><active>true</active></group></groups>"#,
        )
        .ok(&groups_at(2), r#"<groups><group name="Admins"><active>true</active></group></groups>"#);
    let settings = SETTINGS.replace('}', r#","page_size":2}"#);
    let page = fetch_all(&j, &settings, None).unwrap();
    assert_eq!(
        j.log(),
        vec![
            "GET /event".to_string(),
            users_at(0),
            users_at(1),
            users_at(2),
            groups_at(0),
            groups_at(1),
            groups_at(2),
            "GET /group/membership".into()
        ]
    );
    assert_eq!(
        ids(&page.users, |u| &u.id),
        vec!["JIRAUSER10100", "JIRAUSER10200", "Carol"],
        "each user once"
    );
    assert_eq!(ids(&page.groups, |g| &g.id), vec!["developers", "jira-users", "admins"]);
    assert_eq!(links(&page.memberships), full_links());
}

#[test]
fn a_user_deleted_between_two_pages_shifts_nobody_past_the_boundary() {
    let j = jira();
    let (alice, bob, carol, dave) = (
        user_xml("alice", Some("JIRAUSER10100")),
        user_xml("bob", Some("JIRAUSER10200")),
        user_xml("Carol", None),
        user_xml("dave", None),
    );
    // alice, bob | carol, dave; bob is deleted after the first page, so the second page of the
    // listing as it is now starts one place later than the first one ended.
    j.ok(&users_at(0), &format!("<users>{alice}{bob}</users>"))
        .ok(&users_at(1), &format!("<users>{carol}{dave}</users>"))
        .ok(&users_at(2), &format!("<users>{dave}</users>"))
        .ok(&groups_at(0), "<groups/>");
    let settings = SETTINGS.replace('}', r#","page_size":2}"#);
    let page = fetch_all(&j, &settings, None).unwrap();
    assert_eq!(
        ids(&page.users, |u| &u.username),
        vec!["alice", "bob", "Carol", "dave"],
        "Carol is read, not deprovisioned"
    );

    // The same in a group's member listing, on a server without the membership document.
    let j = jira();
    j.routes.borrow_mut().remove("GET /group/membership");
    let members = |start: u32| format!("GET /group/user/direct?groupname=Developers&start-index={start}&max-results=2");
    j.on("GET /group/membership", with_version(404, ""))
        .ok(&users_at(0), &format!("<users>{alice}{bob}</users>"))
        .ok(&users_at(1), &format!("<users>{bob}{carol}</users>"))
        .ok(&users_at(2), &format!("<users>{carol}</users>"))
        .ok(
            &groups_at(0),
            r#"<groups><group name="Developers"><active>true</active></group></groups>"#,
        )
        .ok(&groups_at(1), "<groups/>")
        .ok(&members(0), r#"<users><user name="alice"/><user name="bob"/></users>"#)
        .ok(&members(1), r#"<users><user name="carol"/></users>"#)
        .ok(&members(2), "<users/>")
        .ok(
            "GET /group/child-group/direct?groupname=Developers&start-index=0&max-results=2",
            "<groups/>",
        );
    let page = fetch_all(&j, &settings, None).unwrap();
    assert_eq!(
        links(&page.memberships),
        vec![
            l("developers", "Carol", false),
            l("developers", "JIRAUSER10100", false),
            l("developers", "JIRAUSER10200", false),
        ]
    );
}

#[test]
fn an_answer_without_the_crowd_header_is_not_a_crowd_rest_service() {
    let j = Jira::default();
    j.on(
        "GET /event",
        Response {
            status: 200,
            headers: vec![("Content-Type".into(), "text/html".into())],
            body: b"<html>Welcome to nginx</html>".to_vec(),
        },
    );
    let err = fetch(&j, SETTINGS, None, None).unwrap_err();
    same(
        err,
        PluginError::Config(format!(
            "{API}/event is not a Crowd REST service (no X-Embedded-Crowd-Version header): check server_url — it is the Jira or Crowd base URL, e.g. https://jira.example.com or https://jira.example.com/jira"
        )),
    );
    // Neither is a 404 without it: that is another web server's page.
    let j = Jira::default();
    j.on(
        "GET /event",
        Response {
            status: 404,
            headers: vec![],
            body: b"Not Found".to_vec(),
        },
    );
    assert!(
        matches!(fetch(&j, SETTINGS, None, None), Err(PluginError::Config(m)) if m.contains("not a Crowd REST service"))
    );
}

fn bare(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
    Response {
        status,
        headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn a_proxy_answering_for_jira_is_retried_or_named_not_taken_for_a_wrong_url() {
    let event_fails_with = |resp: Response| {
        let j = Jira::default();
        j.on("GET /event", resp);
        fetch(&j, SETTINGS, None, None).unwrap_err()
    };
    // Throttling or a server error from the load balancer: retried, its Retry-After kept.
    for status in [408, 429, 500, 503] {
        let e = event_fails_with(bare(status, &[("Retry-After", "7")], "Too busy"));
        assert!(
            matches!(&e, PluginError::Transient(m) if m.contains("proxy or load balancer") && m.contains("retry after 7 s") && m.contains("Too busy")),
            "{status}: {e:?}"
        );
    }
    // A single sign-on gateway's refusal: named as such, not as a wrong URL or password.
    for status in [401, 403] {
        let e = event_fails_with(bare(status, &[("WWW-Authenticate", "Negotiate")], "Sign in"));
        assert!(
            matches!(&e, PluginError::Auth(m) if m.contains("proxy or single sign-on gateway")
                && m.contains("https://jira.test/jira/rest/usermanagement/1")
                && !m.contains("wrong application name")),
            "{status}: {e:?}"
        );
    }
}

#[test]
fn a_crowd_error_keeps_the_status_s_retry_after_and_crowd_s_words() {
    let j = jira();
    j.routes.borrow_mut().remove(USERS);
    j.on(
        USERS,
        Response {
            headers: vec![
                ("X-Embedded-Crowd-Version".into(), "Crowd/5.1.6".into()),
                ("Retry-After".into(), "30".into()),
            ],
            ..error(503, "OPERATION_FAILED", "directory busy")
        },
    );
    same(
        fetch(&j, SETTINGS, None, None).unwrap_err(),
        PluginError::Transient(
            "list users (POST /search?entity-type=user): the server is unavailable or throttling (503) (server asked to retry after 30 s): Crowd says OPERATION_FAILED: directory busy".into(),
        ),
    );
}

#[test]
fn refusals_name_what_to_fix() {
    let cases: Vec<(Response, PluginError)> = vec![
        (
            Response {
                headers: vec![
                    ("X-Embedded-Crowd-Version".into(), "Jira/9.12.1".into()),
                    ("WWW-Authenticate".into(), "BASIC realm=\"Crowd REST Service\"".into()),
                ],
                ..with_version(401, "Application failed to authenticate")
            },
            PluginError::Auth(
                "Jira refused application 'roster': wrong application name or password (Jira: User management → Jira user server; Crowd: Applications) (search users (POST /search))".into(),
            ),
        ),
        (
            with_version(
                403,
                r#"<html><body><h1>HTTP Status 403 - Client with address &quot;203.0.113.9&quot; is forbidden from making requests to the application, roster.</h1></body></html>"#,
            ),
            PluginError::Auth(
                "Jira refuses requests from 203.0.113.9: add 203.0.113.9 (or its range) to the application's IP addresses (Jira: User management → Jira user server → application 'roster'; Crowd: Applications → 'roster' → Remote addresses) (search users (POST /search))".into(),
            ),
        ),
        (
            error(403, "APPLICATION_PERMISSION_DENIED", "Application roster may not search users"),
            PluginError::Auth(
                "no permission: Jira refused application 'roster' to search users (POST /search) (APPLICATION_PERMISSION_DENIED: Application roster may not search users)".into(),
            ),
        ),
    ];
    for (resp, expected) in cases {
        let j = Jira::default();
        j.on(
            "POST /search?entity-type=user&start-index=0&max-results=1&expand=user",
            resp,
        );
        same(
            roster_sdk::idp::check::<Crowd>(SETTINGS, &roster_sdk::Imports::http(&j)).unwrap_err(),
            expected,
        );
    }
    // A proxy's 503 while Jira restarts is retried, not a wrong URL.
    let j = Jira::default();
    j.on(
        "GET /event",
        Response {
            status: 503,
            headers: vec![],
            body: b"Service Unavailable".to_vec(),
        },
    );
    assert!(matches!(fetch(&j, SETTINGS, None, None), Err(PluginError::Transient(m)) if m.contains("proxy")));
    // Other errors quote Crowd's reason; 5xx is transient.
    let j = jira();
    j.routes.borrow_mut().remove(USERS);
    j.on(USERS, error(500, "OPERATION_FAILED", "database gone"));
    same(
        fetch(&j, SETTINGS, None, None).unwrap_err(),
        PluginError::Transient(
            "list users (POST /search?entity-type=user): the server is unavailable or throttling (500): Jira says OPERATION_FAILED: database gone".into(),
        ),
    );
}

const ANY_USER: &str = "POST /search?entity-type=user&start-index=0&max-results=1";
const ONE_USER: &str = r#"<users><user name="admin"><link rel="self" href="x"/></user></users>"#;

#[test]
fn check_searches_as_test_connection_does_and_warns_about_a_missing_event_token() {
    let j = Jira::default();
    j.ok(
        "POST /search?entity-type=user&start-index=0&max-results=1&expand=user",
        "<users/>",
    )
    .ok(ANY_USER, ONE_USER)
    .ok("GET /event", r#"<events incrementalSynchronisationAvailable="false"/>"#);
    roster_sdk::idp::check::<Crowd>(SETTINGS, &roster_sdk::Imports::http(&j)).unwrap();
    let sent = j.sent.borrow();
    let body = String::from_utf8_lossy(sent[0].body.as_deref().unwrap()).into_owned();
    assert!(
        body.contains("<property-search-restriction><property><name>name</name><type>STRING</type></property><match-mode>NULL</match-mode></property-search-restriction>"),
        "{body}"
    );
    let body = String::from_utf8_lossy(sent[1].body.as_deref().unwrap()).into_owned();
    assert!(body.ends_with("<null-search-restriction/>"), "{body}");
    assert_eq!(sent.len(), 3);
    drop(sent);
    // Without incremental synchronisation, no event request.
    let j = Jira::default();
    j.ok(
        "POST /search?entity-type=user&start-index=0&max-results=1&expand=user",
        "<users/>",
    )
    .ok(ANY_USER, ONE_USER);
    let settings = SETTINGS.replace('}', r#","use_incremental_sync":false}"#);
    roster_sdk::idp::check::<Crowd>(&settings, &roster_sdk::Imports::http(&j)).unwrap();
    assert_eq!(j.log().len(), 2);
    // A search answer that is not a user list is not a working server.
    let j = Jira::default();
    j.ok(
        "POST /search?entity-type=user&start-index=0&max-results=1&expand=user",
        "<html/>",
    );
    assert!(
        matches!(roster_sdk::idp::check::<Crowd>(SETTINGS, &roster_sdk::Imports::http(&j)), Err(PluginError::Fatal(m)) if m.contains("<html>"))
    );
}

#[test]
fn a_cut_off_answer_fails_the_fetch_and_nothing_completes() {
    let j = jira();
    j.routes.borrow_mut().remove(USERS);
    j.ok(USERS, &USER_LIST[..USER_LIST.len() / 2]);
    let err = fetch(&j, SETTINGS, None, None).unwrap_err();
    assert!(
        matches!(&err, PluginError::Transient(m) if m.starts_with("list users (POST /search?entity-type=user): the answer is not complete XML")),
        "{err:?}"
    );
    // Cut off at the membership document, after users and groups were read: the records read
    // come back for the host's retry, but the fetch never completes, so nothing is applied.
    let j = jira();
    j.routes.borrow_mut().remove("GET /group/membership");
    j.ok("GET /group/membership", &MEMBERSHIPS[..MEMBERSHIPS.len() - 20]);
    let first = fetch(&j, SETTINGS, None, None).unwrap();
    assert!(first.next.is_some() && first.delta_token.is_none());
    let again = fetch(&j, SETTINGS, first.next.as_deref(), None).unwrap_err();
    assert!(
        matches!(&again, PluginError::Transient(m) if m.contains("GET /group/membership")),
        "{again:?}"
    );
}

/// The token of a full fetch of [`jira`].
fn full_token(j: &Jira, settings: &str) -> String {
    fetch_all(j, settings, None).unwrap().delta_token.unwrap()
}

const EVENTS: &str = r#"<events newEventToken="T2">
  <userEvent><operation>CREATED</operation>
    <user name="dave"><display-name>Dave</display-name><active>true</active><key>JIRAUSER10300</key>
      <attributes><link rel="self" href="x"/></attributes></user>
    <storedAttributes><attribute name="team"><values><value>qa</value></values></attribute></storedAttributes><deletedAttributes/></userEvent>
  <userEvent><operation>UPDATED</operation>
    <user name="alice.smith"><email>alice@example.com</email><active>true</active><key>JIRAUSER10100</key></user></userEvent>
  <userEvent><operation>DELETED</operation><user name="bob"/></userEvent>
  <userEvent><operation>CREATED</operation>
    <user name="robert"><display-name>Robert</display-name><active>true</active><key>JIRAUSER10200</key><attributes/></user></userEvent>
  <userEvent><operation>DELETED</operation><user name="Carol"/></userEvent>
  <groupEvent><operation>CREATED</operation><group name="QA"><description>Testers</description><active>true</active></group></groupEvent>
  <groupEvent><operation>DELETED</operation><group name="Admins"/></groupEvent>
  <userMembershipEvent><operation>CREATED</operation><childUser name="dave"/>
    <parentGroups><group name="QA"/><group name="jira-users"/></parentGroups></userMembershipEvent>
  <userMembershipEvent><operation>DELETED</operation><childUser name="alice.smith"/>
    <parentGroups><group name="jira-users"/></parentGroups></userMembershipEvent>
  <userMembershipEvent><operation>UPDATED</operation><childUser name="robert"/>
    <parentGroups><group name="Developers"/></parentGroups></userMembershipEvent>
  <userMembershipEvent><operation>CREATED</operation><childUser name="erin"/>
    <parentGroups><group name="developers"/></parentGroups></userMembershipEvent>
  <groupMembershipEvent><operation>UPDATED</operation><group name="QA"/>
    <parentGroups><group name="jira-users"/></parentGroups><childGroups/></groupMembershipEvent>
  <userMembershipEvent><operation>CREATED</operation><childUser name="dave"/>
    <parentGroups><group name="Developers"/></parentGroups></userMembershipEvent>
  <userMembershipEvent><operation>DELETED</operation><childUser name="dave"/>
    <parentGroups><group name="Developers"/></parentGroups></userMembershipEvent>
  <userMembershipEvent><operation>CREATED</operation><childUser name="Carol"/>
    <parentGroups><group name="QA"/></parentGroups></userMembershipEvent>
</events>"#;

#[test]
fn an_incremental_fetch_applies_the_events_as_one_net_change_per_object() {
    let j = jira();
    let token = full_token(&j, SETTINGS);
    j.clear_log();
    j.ok("GET /event/T1", EVENTS)
        .ok(
            "GET /user?username=alice.smith&expand=attributes",
            r#"<user name="alice.smith"><first-name>Alice</first-name><last-name>Smith</last-name><email>alice@example.com</email><active>true</active><key>JIRAUSER10100</key>
               <attributes><attribute name="team"><values><value>core</value></values></attribute></attributes></user>"#,
        )
        .ok(
            "GET /user?username=erin&expand=attributes",
            r#"<user name="erin"><active>true</active></user>"#,
        )
        .ok(
            "GET /user?username=robert&expand=attributes",
            r#"<user name="robert"><display-name>Robert</display-name><active>true</active><key>JIRAUSER10200</key><attributes/></user>"#,
        )
        .ok(
            "GET /user?username=dave&expand=attributes",
            r#"<user name="dave"><display-name>Dave</display-name><active>true</active><key>JIRAUSER10300</key>
               <attributes><link rel="self" href="x"/><attribute name="team"><values><value>qa</value></values></attribute></attributes></user>"#,
        );
    let page = fetch_all(&j, SETTINGS, Some(&token)).unwrap();
    assert_eq!(
        j.log(),
        vec![
            "GET /event/T1",
            "GET /user?username=alice.smith&expand=attributes",
            "GET /user?username=robert&expand=attributes",
            "GET /user?username=dave&expand=attributes",
        ],
        "one request for the events, one per user they change; erin is known already"
    );
    // Both forms of a rename end as one record under the key, and no removal.
    assert_eq!(
        ids(&page.users, |u| &u.id),
        vec!["JIRAUSER10100", "JIRAUSER10200", "JIRAUSER10300"]
    );
    assert_eq!(ids(&page.users, |u| &u.username), vec!["alice.smith", "robert", "dave"]);
    assert!(page.users[0].attributes.contains(&("last-name".into(), "Smith".into())));
    assert!(page.users[2].attributes.contains(&("team".into(), "qa".into())));
    assert_eq!(removed(&page.removed_users), vec!["Carol"]);
    assert_eq!(ids(&page.groups, |g| &g.id), vec!["qa"]);
    assert_eq!(removed(&page.removed_groups), vec!["admins"]);
    assert_eq!(
        links(&page.memberships),
        vec![
            l("developers", "JIRAUSER10200", false),
            l("developers", "erin", false),
            l("jira-users", "JIRAUSER10300", false),
            l("jira-users", "qa", true),
            l("qa", "JIRAUSER10300", false),
        ]
    );
    assert_eq!(
        links(&page.removed_memberships),
        vec![
            l("developers", "JIRAUSER10300", false),
            l("developers", "qa", true),
            l("jira-users", "JIRAUSER10100", false),
            l("jira-users", "JIRAUSER10200", false),
            l("qa", "JIRAUSER10200", false),
            l("qa", "developers", true),
            l("qa", "jira-users", true),
            l("qa", "qa", true),
        ]
    );
    let next = page.delta_token.unwrap();
    assert!(next.contains(r#""token":"T2""#), "{next}");
    assert!(
        next.contains(r#""alice.smith":"JIRAUSER10100""#) && next.contains(r#""robert":"JIRAUSER10200""#),
        "{next}"
    );
    assert!(!next.contains(r#""bob""#) && !next.contains(r#""carol""#), "{next}");
    assert!(next.contains(r#""groups":["developers","jira-users","qa"]"#), "{next}");
}

#[test]
fn a_rename_told_as_created_then_deleted_keeps_the_user() {
    let j = jira();
    let token = full_token(&j, SETTINGS);
    j.ok(
        "GET /event/T1",
        r#"<events newEventToken="T2">
          <userEvent><operation>CREATED</operation><user name="bobby"><active>true</active><key>JIRAUSER10200</key><attributes/></user></userEvent>
          <userEvent><operation>DELETED</operation><user name="bob"/></userEvent>
          <userMembershipEvent><operation>CREATED</operation><childUser name="bobby"/><parentGroups><group name="Developers"/></parentGroups></userMembershipEvent>
        </events>"#,
    )
    .ok(
        "GET /user?username=bobby&expand=attributes",
        r#"<user name="bobby"><active>true</active><key>JIRAUSER10200</key><attributes/></user>"#,
    );
    let page = fetch_all(&j, SETTINGS, Some(&token)).unwrap();
    assert_eq!(ids(&page.users, |u| &u.username), vec!["bobby"]);
    assert_eq!(page.users[0].id, "JIRAUSER10200");
    assert!(page.removed_users.is_empty(), "{:?}", page.removed_users);
    assert_eq!(links(&page.memberships), vec![l("developers", "JIRAUSER10200", false)]);
    assert!(page.removed_memberships.is_empty());
}

#[test]
fn a_membership_event_for_an_unknown_name_costs_one_lookup_and_a_missing_user_is_skipped() {
    let j = jira();
    let token = full_token(&j, SETTINGS);
    j.clear_log();
    j.ok(
        "GET /event/T1",
        r#"<events newEventToken="T2">
          <userMembershipEvent><operation>CREATED</operation><childUser name="frank"/><parentGroups><group name="QA-less"/><group name="jira-users"/></parentGroups></userMembershipEvent>
          <userMembershipEvent><operation>CREATED</operation><childUser name="Frank"/><parentGroups><group name="Developers"/></parentGroups></userMembershipEvent>
          <userMembershipEvent><operation>CREATED</operation><childUser name="nobody"/><parentGroups><group name="Developers"/></parentGroups></userMembershipEvent>
        </events>"#,
    )
    .ok(
        "GET /user?username=frank&expand=attributes",
        r#"<user name="frank"><active>true</active><key>JIRAUSER10500</key></user>"#,
    )
    .on("GET /user?username=nobody&expand=attributes", error(404, "USER_NOT_FOUND", "User <nobody> does not exist"));
    let page = fetch_all(&j, SETTINGS, Some(&token)).unwrap();
    assert_eq!(
        j.log(),
        vec![
            "GET /event/T1",
            "GET /user?username=frank&expand=attributes",
            "GET /user?username=nobody&expand=attributes"
        ]
    );
    // A group Roster does not know is not given members.
    assert_eq!(
        links(&page.memberships),
        vec![
            l("developers", "JIRAUSER10500", false),
            l("jira-users", "JIRAUSER10500", false)
        ]
    );
}

#[test]
fn a_token_the_server_refuses_or_cannot_have_asks_for_a_full_fetch_saying_why() {
    let j = jira();
    let token = full_token(&j, SETTINGS);
    let expired_with = |resp: Response, fragment: &str| {
        let j = jira();
        j.on("GET /event/T1", resp);
        match fetch(&j, SETTINGS, None, Some(&token)) {
            Err(PluginError::ExpiredDelta(m)) => assert!(m.contains(fragment), "{fragment}: {m}"),
            other => panic!("{fragment}: {other:?}"),
        }
    };
    expired_with(
        error(410, "EVENT_TOKEN_EXPIRED", "Event token T1 has expired"),
        "the server no longer knows the event token (EVENT_TOKEN_EXPIRED: Event token T1 has expired)",
    );
    expired_with(
        error(
            400,
            "INCREMENTAL_SYNC_NOT_AVAILABLE",
            "Incremental synchronisation is not available",
        ),
        "not available (INCREMENTAL_SYNC_NOT_AVAILABLE",
    );
    expired_with(with_version(404, ""), "answered 404");
    expired_with(
        with_version(200, r#"<events incrementalSynchronisationAvailable="false"/>"#),
        "incrementalSynchronisationAvailable=false",
    );

    // A server that said at the full fetch it has no incremental synchronisation.
    let j = jira();
    j.routes.borrow_mut().remove("GET /event");
    j.ok("GET /event", r#"<events incrementalSynchronisationAvailable="false"/>"#);
    let no_token = full_token(&j, SETTINGS);
    j.clear_log();
    let err = fetch(&j, SETTINGS, None, Some(&no_token)).unwrap_err();
    same(
        err,
        PluginError::ExpiredDelta(
            "the server says incremental synchronisation is not available (incrementalSynchronisationAvailable=false)"
                .into(),
        ),
    );
    assert!(j.log().is_empty(), "nothing to ask the server");
    // Turned off after the full fetch, or off during it.
    let off = SETTINGS.replace('}', r#","use_incremental_sync":false}"#);
    same(
        fetch(&j, &off, None, Some(&token)).unwrap_err(),
        PluginError::ExpiredDelta("use_incremental_sync is off".into()),
    );
    // Off during it: no token at all, so no run warns about what the administrator chose.
    let j = jira();
    let page = fetch_all(&j, &off, None).unwrap();
    assert!(!j.log().contains(&"GET /event".to_string()));
    assert_eq!(page.users.len(), 4);
    assert_eq!(page.delta_token, None);
    // A server saying so in the events answer is named by what it is.
    let j = jira();
    j.on(
        "GET /event/T1",
        Response {
            headers: vec![("X-Embedded-Crowd-Version".into(), "Crowd/5.1.6".into())],
            ..with_version(200, r#"<events incrementalSynchronisationAvailable="false"/>"#)
        },
    );
    same(
        fetch(&j, SETTINGS, None, Some(&token)).unwrap_err(),
        PluginError::ExpiredDelta(
            "Crowd says incremental synchronisation is not available (incrementalSynchronisationAvailable=false)"
                .into(),
        ),
    );
}

#[test]
fn a_token_from_other_scope_settings_is_expired_and_from_a_new_page_size_is_not() {
    let j = jira();
    let token = full_token(&j, SETTINGS);
    j.ok("GET /event/T1", r#"<events newEventToken="T2"/>"#);
    let paged = SETTINGS.replace('}', r#","page_size":100,"sync_interval_minutes":5}"#);
    assert!(fetch(&j, &paged, None, Some(&token)).is_ok());
    for changed in [r#","use_nested_groups":false}"#, r#","user_attributes":false}"#] {
        let err = fetch(&j, &SETTINGS.replace('}', changed), None, Some(&token)).unwrap_err();
        assert!(
            matches!(&err, PluginError::ExpiredDelta(m) if m.contains("scope or attributes changed")),
            "{changed}: {err:?}"
        );
    }
}

#[test]
fn the_event_token_travels_as_one_path_segment() {
    let j = jira();
    j.routes.borrow_mut().remove("GET /event");
    j.ok(
        "GET /event",
        r#"<events newEventToken="1234:5/6 7" incrementalSynchronisationAvailable="true"/>"#,
    );
    let token = full_token(&j, SETTINGS);
    j.clear_log();
    j.ok("GET /event/1234%3A5%2F6%207", r#"<events newEventToken="next"/>"#);
    let page = fetch_all(&j, SETTINGS, Some(&token)).unwrap();
    assert_eq!(j.log(), vec!["GET /event/1234%3A5%2F6%207"]);
    assert!(page.delta_token.unwrap().contains(r#""token":"next""#));
}

#[test]
fn an_event_of_a_kind_roster_does_not_know_is_skipped_whatever_its_operation() {
    let j = jira();
    let token = full_token(&j, SETTINGS);
    j.ok(
        "GET /event/T1",
        r#"<events newEventToken="T2">
          <webhookEvent><operation>PINGED</operation><webhook id="7"/></webhookEvent>
          <aliasEvent/>
          <groupEvent><operation>CREATED</operation><group name="QA"><active>true</active></group></groupEvent>
        </events>"#,
    );
    let page = fetch_all(&j, SETTINGS, Some(&token)).unwrap();
    assert_eq!(ids(&page.groups, |g| &g.id), vec!["qa"]);
    assert!(page.delta_token.unwrap().contains(r#""token":"T2""#));
}

#[test]
fn a_failed_event_token_request_is_logged_and_the_full_fetch_goes_on() {
    for answer in [
        error(500, "OPERATION_FAILED", "event store unavailable"),
        error(400, "ILLEGAL_ARGUMENT", "no events here"),
        with_version(200, "<html>maintenance</html>"),
    ] {
        let j = jira();
        j.routes.borrow_mut().remove("GET /event");
        j.on("GET /event", answer);
        let page = fetch_all(&j, SETTINGS, None).unwrap();
        assert_eq!(page.users.len(), 4);
        assert_eq!(links(&page.memberships), full_links());
        // The next incremental run reads in full again, and says why.
        let token = page.delta_token.unwrap();
        match fetch(&j, SETTINGS, None, Some(&token)) {
            Err(PluginError::ExpiredDelta(m)) => {
                assert!(
                    m.starts_with("the last full fetch could not take an event token"),
                    "{m}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
    // No answer at all is retried: the listings would fail the same way.
    let j = jira();
    j.drop_connection("GET /event");
    assert!(matches!(fetch(&j, SETTINGS, None, None), Err(PluginError::Transient(m)) if m.contains("reset")));
}

#[test]
fn an_application_that_sees_no_users_fails_check_and_the_full_fetch() {
    let j = Jira::default();
    j.ok(
        "POST /search?entity-type=user&start-index=0&max-results=1&expand=user",
        "<users/>",
    )
    .ok(ANY_USER, "<users/>");
    let err = roster_sdk::idp::check::<Crowd>(SETTINGS, &roster_sdk::Imports::http(&j)).unwrap_err();
    assert!(
        matches!(&err, PluginError::Config(m) if m.starts_with("Jira lists no users to application 'roster': the application sees no users. Give it a directory (Crowd: Applications → 'roster' → Directories")),
        "{err:?}"
    );
    // A full fetch answered an empty users listing fails instead of reading everyone as gone.
    let j = jira();
    j.routes.borrow_mut().remove(USERS);
    j.ok(USERS, r#"<users expand="user"/>"#);
    let err = fetch_all(&j, SETTINGS, None).unwrap_err();
    assert!(
        matches!(&err, PluginError::Fatal(m) if m.contains("the application sees no users") && m.contains("never read as everyone having left")),
        "{err:?}"
    );
}

#[test]
fn an_answer_too_large_for_the_host_says_which_limit_or_setting_to_change() {
    let j = jira();
    j.fail(
        USERS,
        PluginError::Config(
            "the response from https://jira.test is larger than this source's cap of 16777216 bytes (`max_response_bytes`)".into(),
        ),
    );
    let err = fetch(&j, SETTINGS, None, None).unwrap_err();
    assert!(
        matches!(&err, PluginError::Config(m) if m.starts_with("list users (POST /search?entity-type=user): the response from https://jira.test is larger")
            && m.contains("`limits = { max_response_bytes = … }`")
            && m.contains("set `page_size`")),
        "{err:?}"
    );
    // Other refusals of the host pass as they are.
    let j = jira();
    j.fail(
        USERS,
        PluginError::Config("https://jira.test is not in allow_hosts".into()),
    );
    same(
        fetch(&j, SETTINGS, None, None).unwrap_err(),
        PluginError::Config("https://jira.test is not in allow_hosts".into()),
    );
}

/// Bytes allocated and not yet freed by this thread, and the most there were since [`peak`]
/// was reset: a listing's memory shows without other tests' allocations in the count.
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    pub struct Counting;

    thread_local! {
        static LIVE: Cell<isize> = const { Cell::new(0) };
        static PEAK: Cell<isize> = const { Cell::new(0) };
    }

    fn add(n: isize) {
        let _ = LIVE.try_with(|l| {
            l.set(l.get() + n);
            let _ = PEAK.try_with(|p| p.set(p.get().max(l.get())));
        });
    }

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            add(layout.size() as isize);
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            add(-(layout.size() as isize));
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    /// Bytes live now.
    pub fn live() -> isize {
        LIVE.with(Cell::get)
    }

    /// Starts measuring the peak from now.
    pub fn reset_peak() {
        PEAK.with(|p| p.set(live()));
    }

    /// The most bytes live since [`reset_peak`].
    pub fn peak() -> isize {
        PEAK.with(Cell::get)
    }
}

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

#[test]
fn a_listing_becomes_records_one_user_at_a_time_not_element_trees_first() {
    let n = 3_000;
    let mut users = String::from(r#"<users expand="user">"#);
    for i in 0..n {
        users.push_str(&format!(
            r#"<user name="user{i}" expand="attributes"><link rel="self" href="https://jira.test/jira/rest/usermanagement/1/user?username=user{i}"/><first-name>First</first-name><last-name>Last</last-name><display-name>User {i}</display-name><email>user{i}@example.com</email><password><link rel="edit" href="https://jira.test/jira/rest/usermanagement/1/user/password?username=user{i}"/></password><key>JIRAUSER{i}</key><active>true</active><created-date>2024-01-02T03:04:05.678Z</created-date><updated-date>2024-01-02T03:04:05.678Z</updated-date><attributes><link rel="self" href="x"/><attribute name="team"><link rel="self" href="x"/><values><value>core</value></values></attribute></attributes></user>"#
        ));
    }
    users.push_str("</users>");
    let j = jira();
    j.routes.borrow_mut().remove(USERS);
    j.ok(USERS, &users);
    // The first page: the event token and the users (the page's record budget is then spent).
    let before = counting::live();
    counting::reset_peak();
    let page = fetch(&j, SETTINGS, None, None).unwrap();
    let kept = counting::live() - before;
    let transient = counting::peak() - before - kept;
    assert_eq!(page.users.len(), n);
    // What is held on the way besides the page: the answer (the script hands out a copy), the
    // records' vectors growing, one element tree — not a tree per user, which alone is larger
    // than the answer.
    let answer = users.len() as isize;
    assert!(
        transient < answer + kept,
        "{transient} bytes held on the way for an answer of {answer} bytes and a page of {kept}"
    );
}

#[test]
fn a_changed_user_is_read_whole_and_one_gone_since_its_event_is_removed() {
    let j = jira();
    let token = full_token(&j, SETTINGS);
    j.clear_log();
    // As Crowd writes user events: the entity's attributes hold only a link.
    j.ok(
        "GET /event/T1",
        r#"<events newEventToken="T2">
          <userEvent><operation>UPDATED</operation><user name="alice"><display-name>Alice L.</display-name><active>true</active><key>JIRAUSER10100</key><attributes><link rel="self" href="x"/></attributes></user>
            <storedAttributes><attribute name="nickname"><values><value>al</value></values></attribute></storedAttributes><deletedAttributes/></userEvent>
          <userEvent><operation>UPDATED</operation><user name="bob"><active>true</active><key>JIRAUSER10200</key><attributes><link rel="self" href="x"/></attributes></user>
            <storedAttributes/><deletedAttributes/></userEvent>
        </events>"#,
    )
    .ok(
        "GET /user?username=alice&expand=attributes",
        r#"<user name="alice"><display-name>Alice L.</display-name><active>true</active><key>JIRAUSER10100</key>
           <attributes><attribute name="team"><values><value>core</value><value>web</value></values></attribute>
           <attribute name="nickname"><values><value>al</value></values></attribute></attributes></user>"#,
    )
    .on(
        "GET /user?username=bob&expand=attributes",
        error(404, "USER_NOT_FOUND", "User <bob> does not exist"),
    );
    let page = fetch_all(&j, SETTINGS, Some(&token)).unwrap();
    assert_eq!(
        j.log(),
        vec![
            "GET /event/T1",
            "GET /user?username=alice&expand=attributes",
            "GET /user?username=bob&expand=attributes"
        ]
    );
    // Every attribute the user has, not only those the event names (a transform scoping by
    // `team` keeps Alice).
    assert_eq!(ids(&page.users, |u| &u.id), vec!["JIRAUSER10100"]);
    let team: Vec<&str> = page.users[0]
        .attributes
        .iter()
        .filter(|(n, _)| n == "team")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(team, vec!["core", "web"]);
    assert_eq!(removed(&page.removed_users), vec!["JIRAUSER10200"]);
    // Without attributes, the event is the whole record: no request per user.
    let j = jira();
    j.ok(
        "POST /search?entity-type=user&start-index=0&max-results=-1&expand=user",
        USER_LIST,
    );
    let bare = SETTINGS.replace('}', r#","user_attributes":false}"#);
    let token = full_token(&j, &bare);
    j.clear_log();
    j.ok(
        "GET /event/T1",
        r#"<events newEventToken="T2"><userEvent><operation>UPDATED</operation><user name="alice"><display-name>Alice L.</display-name><active>true</active><key>JIRAUSER10100</key></user></userEvent></events>"#,
    );
    let page = fetch_all(&j, &bare, Some(&token)).unwrap();
    assert_eq!(j.log(), vec!["GET /event/T1"]);
    assert_eq!(page.users[0].display_name.as_deref(), Some("Alice L."));
}

#[test]
fn membership_events_naming_hundreds_of_unseen_users_ask_for_a_full_fetch() {
    let j = jira();
    let token = full_token(&j, SETTINGS);
    let mut events = String::from(r#"<events newEventToken="T2">"#);
    for i in 0..=crate::delta::MAX_LOOKUPS {
        events.push_str(&format!(
            r#"<userMembershipEvent><operation>CREATED</operation><childUser name="new{i}"/><parentGroups><group name="jira-users"/></parentGroups></userMembershipEvent>"#
        ));
        j.ok(
            &format!("GET /user?username=new{i}&expand=attributes"),
            &format!(r#"<user name="new{i}"><active>true</active></user>"#),
        );
    }
    events.push_str("</events>");
    j.ok("GET /event/T1", &events);
    j.clear_log();
    match fetch(&j, SETTINGS, None, Some(&token)) {
        Err(PluginError::ExpiredDelta(m)) => assert_eq!(
            m,
            "more than 200 membership events name users Roster has not seen; reading in full is cheaper"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(j.log().len(), 1 + crate::delta::MAX_LOOKUPS, "it stopped at the bound");
}

#[test]
fn a_batch_changing_more_users_than_are_worth_reading_one_by_one_asks_for_a_full_fetch() {
    let j = jira();
    let token = full_token(&j, SETTINGS);
    let batch = |n: usize| {
        let mut events = String::from(r#"<events newEventToken="T2">"#);
        for i in 0..n {
            events.push_str(&format!(
                r#"<userEvent><operation>CREATED</operation><user name="hire{i}"><active>true</active><key>JIRAUSER2{i:04}</key><attributes><link rel="self" href="x"/></attributes></user></userEvent>"#
            ));
            j.ok(
                &format!("GET /user?username=hire{i}&expand=attributes"),
                &format!(r#"<user name="hire{i}"><active>true</active><key>JIRAUSER2{i:04}</key></user>"#),
            );
        }
        events.push_str("</events>");
        events
    };
    // At the bound, each is read again and arrives whole.
    j.on("GET /event/T1", with_version(200, &batch(crate::delta::MAX_REREADS)));
    let page = fetch(&j, SETTINGS, None, Some(&token)).unwrap();
    assert_eq!(page.users.len(), crate::delta::MAX_REREADS);
    // One more, and not one of them is read: a full fetch is asked for instead.
    let more = batch(crate::delta::MAX_REREADS + 1);
    j.routes.borrow_mut().remove("GET /event/T1");
    j.on("GET /event/T1", with_version(200, &more));
    j.clear_log();
    match fetch(&j, SETTINGS, None, Some(&token)) {
        Err(PluginError::ExpiredDelta(m)) => assert!(m.starts_with("501 users were created or changed"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(j.log().len(), 1, "only the events were read");
}

#[test]
fn a_batch_of_many_whole_set_membership_events_asks_for_a_full_fetch() {
    let j = jira();
    let token = full_token(&j, SETTINGS);
    let updated = |n: usize| {
        let mut events = String::from(r#"<events newEventToken="T2">"#);
        for _ in 0..n {
            events.push_str(r#"<userMembershipEvent><operation>UPDATED</operation><childUser name="alice"/><parentGroups><group name="Developers"/></parentGroups></userMembershipEvent>"#);
        }
        events.push_str("</events>");
        events
    };
    j.ok(
        "GET /user?username=alice&expand=attributes",
        r#"<user name="alice"><active>true</active><key>JIRAUSER10100</key></user>"#,
    );
    // Fifty are applied.
    j.on(
        "GET /event/T1",
        with_version(200, &updated(crate::delta::MAX_REPLACEMENTS)),
    );
    let page = fetch_all(&j, SETTINGS, Some(&token)).unwrap();
    assert_eq!(links(&page.memberships), vec![l("developers", "JIRAUSER10100", false)]);
    // One more, and a full listing is the smaller answer.
    j.routes.borrow_mut().remove("GET /event/T1");
    j.on(
        "GET /event/T1",
        with_version(200, &updated(crate::delta::MAX_REPLACEMENTS + 1)),
    );
    match fetch(&j, SETTINGS, None, Some(&token)) {
        Err(PluginError::ExpiredDelta(m)) => {
            assert!(
                m.starts_with("more than 50 membership events replace a member's whole set of groups"),
                "{m}"
            )
        }
        other => panic!("{other:?}"),
    }
    // As many membership changes as a large directory has in all: read in full instead.
    let mut events = String::from(
        r#"<events newEventToken="T2"><userMembershipEvent><operation>CREATED</operation><childUser name="alice"/><parentGroups>"#,
    );
    for i in 0..=crate::delta::MAX_LINKS {
        events.push_str(&format!(r#"<group name="g{i}"/>"#));
    }
    events.push_str("</parentGroups></userMembershipEvent></events>");
    j.routes.borrow_mut().remove("GET /event/T1");
    j.on("GET /event/T1", with_version(200, &events));
    match fetch(&j, SETTINGS, None, Some(&token)) {
        Err(PluginError::ExpiredDelta(m)) => assert_eq!(
            m,
            "the events change more than 200000 memberships; reading in full is cheaper"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_user_whose_key_changed_asks_for_a_full_fetch_instead_of_becoming_two() {
    let j = jira();
    let token = full_token(&j, SETTINGS);
    // bob was JIRAUSER10200 at the full fetch; an event now gives the name another key.
    j.ok(
        "GET /event/T1",
        r#"<events newEventToken="T2"><userEvent><operation>UPDATED</operation><user name="bob"><active>true</active><key>JIRAUSER99999</key><attributes/></user></userEvent></events>"#,
    );
    match fetch(&j, SETTINGS, None, Some(&token)) {
        Err(PluginError::ExpiredDelta(m)) => assert_eq!(
            m,
            "user bob's key changed from JIRAUSER10200 to JIRAUSER99999; reading in full"
        ),
        other => panic!("{other:?}"),
    }
    // A name deleted and given to a new person in the same batch is two people, rightly.
    let j = jira();
    j.ok(
        "GET /event/T1",
        r#"<events newEventToken="T2">
          <userEvent><operation>DELETED</operation><user name="bob"/></userEvent>
          <userEvent><operation>CREATED</operation><user name="bob"><active>true</active><key>JIRAUSER99999</key><attributes/></user></userEvent>
        </events>"#,
    )
    .ok(
        "GET /user?username=bob&expand=attributes",
        r#"<user name="bob"><active>true</active><key>JIRAUSER99999</key></user>"#,
    );
    let page = fetch_all(&j, SETTINGS, Some(&token)).unwrap();
    assert_eq!(ids(&page.users, |u| &u.id), vec!["JIRAUSER99999"]);
    assert_eq!(removed(&page.removed_users), vec!["JIRAUSER10200"]);
}

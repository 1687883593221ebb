//! The connector against a scripted Okta org: listings answered from data like Okta answers
//! them (a search or filter includes DEPROVISIONED users, a plain listing does not; a search
//! may lag; `Link` paging; `Date` headers; Okta's error bodies), so each test asserts what the
//! connector asks and what reaches Roster.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use okta::OktaIdp;
use roster_sdk::http::Transport;
use roster_sdk::{Imports, Page, PluginError, Request, Response};
use serde_json::{Value, json};

const ORG: &str = "https://acme.okta.com";
/// 2026-12-03T21:30:00Z.
const T0: i64 = 1_796_333_400_000;

#[derive(Clone)]
struct U {
    id: String,
    status: &'static str,
    login: String,
    dept: &'static str,
    updated: i64,
}

#[derive(Clone)]
struct G {
    id: String,
    name: String,
    kind: &'static str,
    members: Vec<String>,
    updated: i64,
    members_updated: i64,
    /// The `usersCount` Okta reports, when it lags the members.
    stale_count: Option<usize>,
}

/// Users and groups assigned to an application.
type Assignments = (Vec<String>, Vec<String>);
/// A scripted failure: path prefix, status, body, an extra header.
type Fault = (String, u16, String, Option<(String, String)>);

#[derive(Default)]
struct Org {
    users: RefCell<Vec<U>>,
    groups: RefCell<Vec<G>>,
    /// App id → (assigned users, assigned groups).
    apps: RefCell<BTreeMap<String, Assignments>>,
    now: Cell<i64>,
    /// Every request, path and query, without the org.
    log: RefCell<Vec<String>>,
    /// Path prefix → (status, body, extra header) answered once.
    faults: RefCell<Vec<Fault>>,
    /// Path prefix → a body answered instead of the real page, once.
    corrupt: RefCell<Vec<(String, String)>>,
    /// Link headers point elsewhere.
    foreign_links: Cell<bool>,
    /// How long a user's change takes to show in a users `search` (Okta's search is eventually
    /// consistent; `filter` is not).
    search_lag: Cell<i64>,
}

fn gid(n: u32) -> String {
    format!("00g{n:017}")
}
fn uid(n: u32) -> String {
    format!("00u{n:017}")
}

fn iso(ms: i64) -> String {
    roster_sdk::time::format_millis(ms)
}

fn http_date(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms as u64);
    // RFC 7231 IMF-fixdate, as httpdate formats it.
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let days = secs / 86_400;
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let s = iso(ms);
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m: usize = s[5..7].parse().unwrap();
    format!("{wd}, {} {} {} {} GMT", &s[8..10], months[m - 1], &s[0..4], &s[11..19])
}

fn err(status: u16, code: &str, summary: &str) -> (u16, String) {
    (
        status,
        json!({"errorCode": code, "errorSummary": summary, "errorLink": code, "errorId": "oae1", "errorCauses": []})
            .to_string(),
    )
}

impl Org {
    /// Five users (u5 DEPROVISIONED), groups devs {u1,u2,u3}, ops {u3}, empty, and Everyone.
    fn new() -> Self {
        let o = Org::default();
        o.now.set(T0);
        let statuses = ["ACTIVE", "ACTIVE", "SUSPENDED", "LOCKED_OUT", "DEPROVISIONED"];
        for (i, st) in statuses.iter().enumerate() {
            let n = i as u32 + 1;
            o.users.borrow_mut().push(U {
                id: uid(n),
                status: st,
                login: format!("user{n}@acme.com"),
                dept: if n.is_multiple_of(2) { "Eng" } else { "Ops" },
                updated: T0 - 86_400_000,
            });
        }
        let group = |n: u32, name: &str, kind: &'static str, members: &[u32]| G {
            id: gid(n),
            name: name.into(),
            kind,
            members: members.iter().map(|m| uid(*m)).collect(),
            updated: T0 - 86_400_000,
            members_updated: T0 - 86_400_000,
            stale_count: None,
        };
        o.groups.borrow_mut().extend([
            group(1, "devs", "OKTA_GROUP", &[1, 2, 3]),
            group(2, "ops", "APP_GROUP", &[3]),
            group(3, "empty", "OKTA_GROUP", &[]),
            group(4, "Everyone", "BUILT_IN", &[1, 2, 3, 4, 5]),
        ]);
        o
    }

    fn tick(&self, ms: i64) {
        self.now.set(self.now.get() + ms);
    }

    fn update_user(&self, id: &str, f: impl FnOnce(&mut U)) {
        let now = self.now.get();
        let mut users = self.users.borrow_mut();
        let u = users.iter_mut().find(|u| u.id == id).unwrap();
        f(u);
        u.updated = now;
    }

    fn update_group(&self, id: &str, f: impl FnOnce(&mut G)) {
        let now = self.now.get();
        let mut groups = self.groups.borrow_mut();
        let g = groups.iter_mut().find(|g| g.id == id).unwrap();
        f(g);
        g.members_updated = now;
    }

    fn user_json(&self, u: &U) -> Value {
        json!({"id": u.id, "status": u.status, "lastUpdated": iso(u.updated),
               "profile": {"login": u.login, "email": u.login, "firstName": "F", "lastName": u.id, "department": u.dept}})
    }

    fn group_json(&self, g: &G) -> Value {
        json!({"id": g.id, "type": g.kind, "lastUpdated": iso(g.updated), "lastMembershipUpdated": iso(g.members_updated),
               "profile": {"name": g.name, "description": null},
               "_embedded": {"stats": {"usersCount": g.stale_count.unwrap_or(g.members.len())}}})
    }

    fn calls(&self, prefix: &str) -> usize {
        self.log.borrow().iter().filter(|p| p.starts_with(prefix)).count()
    }

    /// A page of `items` from `after`, with a Link to the next one.
    fn paged(&self, url: &url::Url, items: Vec<Value>, default_limit: usize) -> (u16, String, Option<String>) {
        let q: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(default_limit);
        let after: usize = q.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
        let page: Vec<Value> = items.iter().skip(after).take(limit).cloned().collect();
        let link = (after + limit < items.len()).then(|| {
            let mut next = url.clone();
            let pairs: Vec<(String, String)> = q
                .iter()
                .filter(|(k, _)| *k != "after")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            next.query_pairs_mut()
                .clear()
                .extend_pairs(pairs)
                .append_pair("after", &(after + limit).to_string());
            let target = if self.foreign_links.get() {
                next.as_str().replace(ORG, "https://evil.example")
            } else {
                next.to_string()
            };
            // As Okta does: one `Link` header per link, `self` first.
            format!(r#"<{target}>; rel="next""#)
        });
        (200, Value::Array(page).to_string(), link)
    }

    fn since_in(search: &str, field: &str) -> Option<i64> {
        let at = search.find(&format!("{field} gt \""))? + field.len() + 5;
        roster_sdk::time::parse(&search[at..at + 24])
    }

    fn answer(&self, url: &url::Url) -> (u16, String, Option<String>) {
        let path = url.path();
        let q: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        let search = q.get("search").cloned();
        if search.as_deref().is_some_and(|s| s.contains(" eqq ")) {
            let (st, mut body) = err(400, "E0000031", "Invalid search criteria.");
            body = body.replace(
                "\"errorCauses\":[]",
                "\"errorCauses\":[{\"errorSummary\":\"Invalid search near eqq\"}]",
            );
            return (st, body, None);
        }
        let segs: Vec<&str> = path.trim_start_matches("/api/v1/").split('/').collect();
        let not_found = |what: &str| {
            let (s, b) = err(404, "E0000007", &format!("Not found: Resource not found: {what}"));
            (s, b, None)
        };
        match segs.as_slice() {
            ["users"] => {
                let users = self.users.borrow();
                let filter = q.get("filter").cloned();
                let now = self.now.get();
                let items = users
                    .iter()
                    .filter(|u| match (&search, &filter) {
                        // A plain listing omits DEPROVISIONED users, as Okta does.
                        (None, None) => u.status != "DEPROVISIONED",
                        (None, Some(f)) => Self::since_in(f, "lastUpdated").is_none_or(|t| u.updated > t),
                        // The search index has not caught up with a change younger than the lag.
                        (Some(s), _) => {
                            now - u.updated >= self.search_lag.get()
                                && Self::since_in(s, "lastUpdated").is_none_or(|t| u.updated > t)
                                && (!s.contains("profile.department eq \"Eng\"") || u.dept == "Eng")
                        }
                    })
                    .map(|u| self.user_json(u))
                    .collect();
                self.paged(url, items, 200)
            }
            ["groups"] => {
                let groups = self.groups.borrow();
                let items = groups
                    .iter()
                    .filter(|g| match &search {
                        None => true,
                        Some(s) if s.starts_with("profile.name eq \"") => {
                            let name = &s["profile.name eq \"".len()..s.len() - 1];
                            // Okta's eq on names is case-insensitive.
                            g.name.eq_ignore_ascii_case(name)
                        }
                        Some(s) => {
                            let kind = (s.contains("\"OKTA_GROUP\"") && g.kind == "OKTA_GROUP")
                                || (s.contains("\"APP_GROUP\"") && g.kind == "APP_GROUP");
                            let changed = match Self::since_in(s, "lastUpdated") {
                                None => true,
                                Some(t) => g.updated > t || g.members_updated > t,
                            };
                            kind && changed
                        }
                    })
                    .map(|g| self.group_json(g))
                    .collect();
                self.paged(url, items, 200)
            }
            ["groups", id] => match self.groups.borrow().iter().find(|g| g.id == *id) {
                Some(g) => (200, self.group_json(g).to_string(), None),
                None => not_found(&format!("{id} (UserGroup)")),
            },
            ["groups", id, "users"] => {
                let groups = self.groups.borrow();
                let Some(g) = groups.iter().find(|g| g.id == *id) else {
                    return not_found(&format!("{id} (UserGroup)"));
                };
                let users = self.users.borrow();
                let items = g
                    .members
                    .iter()
                    .filter_map(|m| users.iter().find(|u| &u.id == m))
                    .map(|u| self.user_json(u))
                    .collect();
                self.paged(url, items, 1000)
            }
            ["apps", id, rest @ ..] => {
                let apps = self.apps.borrow();
                let Some((users, groups)) = apps.get(*id) else {
                    return not_found(&format!("{id} (AppInstance)"));
                };
                match rest {
                    [] => (200, json!({"id": id, "label": "Bitbucket"}).to_string(), None),
                    ["users"] => {
                        let all = self.users.borrow();
                        let items = users
                            .iter()
                            .filter_map(|m| all.iter().find(|u| &u.id == m))
                            .map(|u| json!({"id": u.id, "scope": "USER", "_embedded": {"user": self.user_json(u)}}))
                            .collect();
                        self.paged(url, items, 50)
                    }
                    ["groups"] => {
                        let items = groups
                            .iter()
                            .map(|g| json!({"id": g, "priority": 0, "profile": {}}))
                            .collect();
                        self.paged(url, items, 20)
                    }
                    _ => not_found(id),
                }
            }
            _ => not_found(path),
        }
    }
}

impl Transport for Org {
    fn send(&self, req: Request) -> Result<Response, PluginError> {
        let url = url::Url::parse(&req.url).unwrap();
        assert_eq!(url.origin().ascii_serialization(), ORG, "requests stay on the org");
        let auth = req
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.as_str());
        assert!(auth == Some("SSWS {{secret:api_token}}"), "{auth:?}");
        let rest = url[url::Position::BeforePath..].to_string();
        self.log.borrow_mut().push(rest.clone());
        let date = ("Date".to_string(), http_date(self.now.get()));
        let mut faults = self.faults.borrow_mut();
        if let Some(i) = faults.iter().position(|(p, ..)| rest.starts_with(p.as_str())) {
            let (_, status, body, header) = faults.remove(i);
            let mut headers = vec![date];
            headers.extend(header);
            return Ok(Response {
                status,
                headers,
                body: body.into_bytes(),
            });
        }
        let (status, mut body, link) = self.answer(&url);
        let mut corrupt = self.corrupt.borrow_mut();
        if let Some(i) = corrupt.iter().position(|(p, _)| rest.starts_with(p.as_str())) {
            body = corrupt.remove(i).1;
        }
        let mut headers = vec![date, ("Content-Type".into(), "application/json".into())];
        headers.push(("Link".into(), format!(r#"<{url}>; rel="self""#)));
        headers.extend(link.map(|l| ("Link".to_string(), l)));
        Ok(Response {
            status,
            headers,
            body: body.into_bytes(),
        })
    }
}

fn settings(extra: &str) -> String {
    format!(r#"{{"org_url":"{ORG}"{extra}}}"#)
}

/// Every page of a fetch.
fn fetch_all(org: &Org, settings: &str, delta: Option<&str>) -> Result<Page, PluginError> {
    let mut all = Page::empty();
    let mut cursor: Option<String> = None;
    loop {
        let p = roster_sdk::idp::fetch::<OktaIdp>(settings, cursor.as_deref(), delta, &Imports::http(org))?;
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

fn check(org: &Org, settings: &str) -> Result<(), PluginError> {
    roster_sdk::idp::check::<OktaIdp>(settings, &Imports::http(org))
}

fn user_ids(p: &Page) -> Vec<String> {
    let mut v: Vec<String> = p.users.iter().map(|u| u.id.clone()).collect();
    v.sort();
    v
}

fn pairs(ms: &[roster_sdk::Membership]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = ms.iter().map(|m| (m.group_id.clone(), m.member_id.clone())).collect();
    v.sort();
    v
}

#[test]
fn a_full_fetch_of_the_org_pages_by_link_includes_deprovisioned_users_and_skips_empty_groups() {
    let org = Org::new();
    let p = fetch_all(&org, &settings(r#","page_size":2"#), None).unwrap();
    assert_eq!(
        user_ids(&p),
        (1..=5).map(uid).collect::<Vec<_>>(),
        "DEPROVISIONED included"
    );
    let active: Vec<bool> = (1..=5)
        .map(|n| p.users.iter().find(|u| u.id == uid(n)).unwrap().active)
        .collect();
    assert_eq!(
        active,
        vec![true, true, false, true, false],
        "SUSPENDED and DEPROVISIONED inactive"
    );
    assert!(
        org.log.borrow()[0].contains("filter=lastUpdated%20gt%20%221970-01-01T00%3A00%3A00.000Z%22"),
        "{:?}",
        org.log.borrow()[0]
    );
    assert_eq!(
        org.calls("/api/v1/users?"),
        3,
        "five users, two per page, following Link"
    );
    let mut names: Vec<&str> = p.groups.iter().map(|g| g.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        vec!["devs", "empty", "ops"],
        "BUILT_IN Everyone is not read by default"
    );
    assert_eq!(
        pairs(&p.memberships),
        vec![(gid(1), uid(1)), (gid(1), uid(2)), (gid(1), uid(3)), (gid(2), uid(3))]
    );
    assert_eq!(
        org.calls(&format!("/api/v1/groups/{}/users", gid(3))),
        0,
        "usersCount 0: no members request"
    );
    assert!(p.delta_token.is_some());
}

#[test]
fn an_incremental_fetch_reads_only_the_changes_from_okta_s_clock_and_reports_who_left_a_group() {
    let org = Org::new();
    let s = settings("");
    let full = fetch_all(&org, &s, None).unwrap();
    let token = full.delta_token.unwrap();
    assert!(
        token.contains(&iso(T0 - 300_000)),
        "since = the first answer's Date minus five minutes (groups are found by a search): {token}"
    );
    org.tick(3_600_000);
    org.update_user(&uid(2), |u| u.status = "DEPROVISIONED");
    org.update_group(&gid(1), |g| g.members = vec![uid(1), uid(3), uid(4)]);
    org.tick(600_000);
    org.log.borrow_mut().clear();
    let inc = fetch_all(&org, &s, Some(&token)).unwrap();
    assert_eq!(user_ids(&inc), vec![uid(2)]);
    assert!(!inc.users[0].active, "deprovisioned, read through a filter");
    assert_eq!(
        inc.groups.iter().map(|g| g.id.clone()).collect::<Vec<_>>(),
        vec![gid(1)]
    );
    assert_eq!(pairs(&inc.memberships), vec![(gid(1), uid(4))]);
    assert_eq!(pairs(&inc.removed_memberships), vec![(gid(1), uid(2))]);
    assert!(inc.removed_users.is_empty(), "nobody reads as deleted");
    assert_eq!(
        org.log.borrow().len(),
        3,
        "changed users, changed groups, one group's members: {:?}",
        org.log.borrow()
    );
    assert!(
        org.log.borrow()[1].contains("lastMembershipUpdated%20gt"),
        "{:?}",
        org.log.borrow()
    );
    // Nothing changed: two requests, nothing read, and the clock moves on.
    org.tick(3_600_000);
    org.log.borrow_mut().clear();
    let next = inc.delta_token.unwrap();
    let quiet = fetch_all(&org, &s, Some(&next)).unwrap();
    assert!(quiet.users.is_empty() && quiet.memberships.is_empty() && quiet.removed_memberships.is_empty());
    assert_eq!(org.log.borrow().len(), 2);
    assert!(
        quiet
            .delta_token
            .unwrap()
            .contains(&iso(T0 + 2 * 3_600_000 + 600_000 - 300_000))
    );
}

#[test]
fn a_group_emptied_since_the_last_fetch_reports_its_removals_from_its_members_listing() {
    let org = Org::new();
    let s = settings("");
    let token = fetch_all(&org, &s, None).unwrap().delta_token.unwrap();
    org.tick(60_000);
    org.update_group(&gid(2), |g| g.members.clear());
    // A changed group known to be empty, then and now, costs no members request.
    org.update_group(&gid(3), |g| g.name = "still empty".into());
    org.log.borrow_mut().clear();
    let inc = fetch_all(&org, &s, Some(&token)).unwrap();
    assert_eq!(pairs(&inc.removed_memberships), vec![(gid(2), uid(3))]);
    assert_eq!(org.calls(&format!("/api/v1/groups/{}/users", gid(2))), 1);
    assert_eq!(org.calls(&format!("/api/v1/groups/{}/users", gid(3))), 0);
    assert!(inc.groups.iter().any(|g| g.name == "still empty"));
}

#[test]
fn a_member_count_of_zero_that_lags_the_members_removes_nobody() {
    let org = Org::new();
    let s = settings("");
    let token = fetch_all(&org, &s, None).unwrap().delta_token.unwrap();
    org.tick(60_000);
    // ops changes (u3 leaves and rejoins) and Okta's count has not caught up.
    org.update_group(&gid(2), |g| g.stale_count = Some(0));
    let inc = fetch_all(&org, &s, Some(&token)).unwrap();
    assert!(
        inc.removed_memberships.is_empty(),
        "u3 is still in ops: {:?}",
        inc.removed_memberships
    );
    assert_eq!(
        org.calls(&format!("/api/v1/groups/{}/users", gid(2))),
        2,
        "full and incremental"
    );
}

#[test]
fn users_are_read_through_a_filter_so_a_change_the_search_index_has_not_caught_up_with_is_read() {
    let org = Org::new();
    org.search_lag.set(600_000);
    let s = settings("");
    let token = fetch_all(&org, &s, None).unwrap().delta_token.unwrap();
    org.tick(3_600_000);
    org.update_user(&uid(1), |u| u.status = "SUSPENDED");
    org.tick(30_000);
    org.log.borrow_mut().clear();
    let inc = fetch_all(&org, &s, Some(&token)).unwrap();
    assert_eq!(user_ids(&inc), vec![uid(1)], "suspended half a minute ago");
    assert!(!inc.users[0].active);
    assert!(
        org.log.borrow()[0].starts_with("/api/v1/users?filter=lastUpdated%20gt%20"),
        "{:?}",
        org.log.borrow()
    );
}

#[test]
fn with_user_search_a_change_the_search_shows_late_is_read_by_the_next_run() {
    let org = Org::new();
    // Shown by the search three minutes after it was made.
    org.search_lag.set(180_000);
    let s = settings(r#","user_search":"profile.department eq \"Eng\"""#);
    let token = fetch_all(&org, &s, None).unwrap().delta_token.unwrap();
    assert!(token.contains(&iso(T0 - 300_000)), "{token}");
    org.tick(3_600_000);
    org.update_user(&uid(2), |u| u.status = "SUSPENDED");
    org.tick(90_000);
    let first = fetch_all(&org, &s, Some(&token)).unwrap();
    assert!(first.users.is_empty(), "not in the search index yet");
    org.tick(600_000);
    let second = fetch_all(&org, &s, Some(&first.delta_token.unwrap())).unwrap();
    assert_eq!(user_ids(&second), vec![uid(2)]);
    assert!(!second.users[0].active);
}

#[test]
fn the_overlap_is_a_minute_only_when_no_change_is_found_through_a_search() {
    let since = |extra: &str| {
        let org = Org::new();
        let token = fetch_all(&org, &settings(extra), None).unwrap().delta_token.unwrap();
        let minutes = [1, 5].into_iter().find(|m| token.contains(&iso(T0 - m * 60_000)));
        minutes.unwrap_or_else(|| panic!("{extra}: {token}"))
    };
    assert_eq!(since(&format!(r#","scope":"groups","groups":["{}"]"#, gid(1))), 1);
    assert_eq!(since(r#","scope":"groups","groups":["devs"]"#), 5, "a name is searched");
    assert_eq!(since(""), 5, "group_search is a search");
}

#[test]
fn user_search_narrows_every_user_listing_and_a_refused_search_is_quoted() {
    let org = Org::new();
    let s = settings(r#","user_search":"profile.department eq \"Eng\"""#);
    let p = fetch_all(&org, &s, None).unwrap();
    assert_eq!(user_ids(&p), vec![uid(2), uid(4)]);
    assert!(
        org.log.borrow()[0]
            .starts_with("/api/v1/users?search=%28profile.department%20eq%20%22Eng%22%29%20and%20lastUpdated")
    );
    let bad = settings(r#","user_search":"profile.department eqq \"Eng\"""#);
    let e = fetch_all(&org, &bad, None).unwrap_err();
    assert!(
        matches!(&e, PluginError::Config(m) if m.contains(r#"`(profile.department eqq "Eng") and lastUpdated gt"#) && m.contains("Invalid search near eqq")),
        "{e:?}"
    );
    let e = check(&org, &bad).unwrap_err();
    assert!(
        matches!(&e, PluginError::Config(m) if m.contains(r#"`profile.department eqq "Eng"`"#)),
        "{e:?}"
    );
}

#[test]
fn the_groups_scope_reads_listed_groups_by_name_or_id_and_their_members() {
    let org = Org::new();
    let s = settings(&format!(r#","scope":"groups","groups":["DEVS","{}"]"#, gid(2)));
    let p = fetch_all(&org, &s, None).unwrap();
    assert_eq!(user_ids(&p), vec![uid(1), uid(2), uid(3)]);
    assert_eq!(p.groups.len(), 2);
    assert_eq!(pairs(&p.memberships).len(), 4);
    assert_eq!(org.calls("/api/v1/users"), 0, "users come with the members");
    let token = p.delta_token.unwrap();
    // u3 leaves ops but stays in devs; u2 leaves devs, its only group: out of scope.
    org.tick(120_000);
    org.update_group(&gid(1), |g| g.members = vec![uid(1), uid(3)]);
    org.update_user(&uid(1), |u| u.login = "renamed@acme.com".into());
    org.update_user(&uid(4), |u| u.login = "outside@acme.com".into());
    org.log.borrow_mut().clear();
    let inc = fetch_all(&org, &s, Some(&token)).unwrap();
    assert_eq!(
        user_ids(&inc),
        vec![uid(1)],
        "the changed user outside the groups is not reported"
    );
    assert_eq!(pairs(&inc.removed_memberships), vec![(gid(1), uid(2))]);
    assert_eq!(
        inc.removed_users.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        vec![uid(2)]
    );
    assert_eq!(
        org.calls(&format!("/api/v1/groups/{}/users", gid(2))),
        0,
        "ops unchanged: members not read"
    );
    assert_eq!(org.calls(&format!("/api/v1/groups/{}/users", gid(1))), 1);
}

#[test]
fn a_user_moving_between_two_listed_groups_stays_in_scope() {
    let org = Org::new();
    let s = settings(&format!(r#","scope":"groups","groups":["devs","{}"]"#, gid(2)));
    let token = fetch_all(&org, &s, None).unwrap().delta_token.unwrap();
    // u1 leaves devs (read first) for ops (read second) between two runs.
    org.tick(120_000);
    org.update_group(&gid(1), |g| g.members = vec![uid(2), uid(3)]);
    org.update_group(&gid(2), |g| g.members = vec![uid(3), uid(1)]);
    let inc = fetch_all(&org, &s, Some(&token)).unwrap();
    assert!(
        inc.removed_users.is_empty(),
        "u1 is still in a listed group: {:?}",
        inc.removed_users
    );
    assert_eq!(pairs(&inc.removed_memberships), vec![(gid(1), uid(1))]);
    assert_eq!(pairs(&inc.memberships), vec![(gid(2), uid(1))]);
    // Still in scope: the next run reports u1's changes.
    org.tick(600_000);
    org.update_user(&uid(1), |u| u.login = "moved@acme.com".into());
    let next = fetch_all(&org, &s, Some(&inc.delta_token.unwrap())).unwrap();
    assert_eq!(user_ids(&next), vec![uid(1)]);
    assert!(next.users[0].active && next.users[0].username == "moved@acme.com");
    assert!(next.removed_users.is_empty());
}

#[test]
fn unknown_and_ambiguous_groups_are_named_by_check_and_fetch() {
    let org = Org::new();
    let twin = G {
        id: gid(9),
        name: "Devs".into(),
        ..org.groups.borrow()[0].clone()
    };
    org.groups.borrow_mut().push(twin);
    let s = settings(&format!(r#","scope":"groups","groups":["nobody","devs","{}"]"#, gid(8)));
    let e = check(&org, &s).unwrap_err();
    let PluginError::Config(m) = &e else { panic!("{e:?}") };
    assert!(m.contains("no group named `nobody`"), "{m}");
    assert!(
        m.contains("2 Okta groups are named `devs`") && m.contains(&gid(9)),
        "{m}"
    );
    assert!(m.contains(&format!("no group with the id {}", gid(8))), "{m}");
    assert!(matches!(fetch_all(&org, &s, None), Err(PluginError::Config(_))));
}

#[test]
fn the_app_scope_reads_assignments_and_an_incremental_run_reports_unassignments() {
    let org = Org::new();
    org.apps
        .borrow_mut()
        .insert("0oaapp".into(), (vec![uid(1), uid(3), uid(5)], vec![gid(1), gid(2)]));
    let s = settings(r#","scope":"app","app_id":"0oaapp""#);
    let p = fetch_all(&org, &s, None).unwrap();
    assert_eq!(user_ids(&p), vec![uid(1), uid(3), uid(5)]);
    assert_eq!(p.groups.len(), 2);
    assert_eq!(
        pairs(&p.memberships),
        vec![(gid(1), uid(1)), (gid(1), uid(3)), (gid(2), uid(3))],
        "members the app does not see (u2) are left out"
    );
    assert!(
        org.log
            .borrow()
            .iter()
            .any(|l| l.contains("/users?limit=500&expand=user"))
    );
    let token = p.delta_token.unwrap();
    org.apps
        .borrow_mut()
        .insert("0oaapp".into(), (vec![uid(1), uid(5)], vec![gid(1)]));
    let inc = fetch_all(&org, &s, Some(&token)).unwrap();
    assert_eq!(
        inc.removed_users.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        vec![uid(3)]
    );
    assert_eq!(
        inc.removed_groups.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        vec![gid(2)]
    );
    assert_eq!(pairs(&inc.removed_memberships), vec![(gid(1), uid(3))]);
    let e = check(&org, &settings(r#","scope":"app","app_id":"0oanone""#)).unwrap_err();
    assert!(
        matches!(&e, PluginError::Config(m) if m.contains("no application with the id 0oanone")),
        "{e:?}"
    );
}

#[test]
fn malformed_pages_fail_naming_the_connector_the_page_and_the_field() {
    let org = Org::new();
    let s = settings(r#","page_size":2"#);
    org.corrupt.borrow_mut().push((
        "/api/v1/users?".into(),
        r#"[{"id":"00u1","status":"ACTIVE","profile":{"login":"a"}},{"id":"00u2","sta"#.into(),
    ));
    let e = fetch_all(&org, &s, None).unwrap_err();
    assert!(
        matches!(&e, PluginError::Fatal(m) if m.contains("okta: list users (page /api/v1/users?") && m.contains("at `[1]")),
        "{e:?}"
    );
    org.corrupt.borrow_mut().push((
        format!("/api/v1/groups/{}/users", gid(1)),
        r#"[{"id":"00u1","status":"ACTIVE","profile":"login=a"}]"#.into(),
    ));
    let e = fetch_all(&org, &s, None).unwrap_err();
    assert!(
        matches!(&e, PluginError::Fatal(m) if m.contains(&format!("list the members of group {}", gid(1))) && m.contains("at `[0].profile`") && m.contains("invalid type")),
        "{e:?}"
    );
    org.corrupt
        .borrow_mut()
        .push(("/api/v1/groups?".into(), r#"[{"id":7,"profile":{"name":"x"}}]"#.into()));
    let e = fetch_all(&org, &s, None).unwrap_err();
    assert!(
        matches!(&e, PluginError::Fatal(m) if m.contains("at `[0].id`")),
        "{e:?}"
    );
}

#[test]
fn a_next_link_off_the_org_is_refused() {
    let org = Org::new();
    org.foreign_links.set(true);
    let e = fetch_all(&org, &settings(r#","page_size":2"#), None).unwrap_err();
    assert!(
        matches!(&e, PluginError::Fatal(m) if m.contains("refusing to follow")),
        "{e:?}"
    );
}

#[test]
fn an_org_url_written_with_capitals_a_default_port_and_a_slash_follows_okta_s_next_links() {
    let org = Org::new();
    let p = fetch_all(&org, r#"{"org_url":"https://ACME.Okta.com:443/","page_size":2}"#, None).unwrap();
    assert_eq!(user_ids(&p).len(), 5, "every page of users read");
    assert_eq!(org.calls("/api/v1/users?"), 3);
}

#[test]
fn check_names_an_invalid_token_and_every_listing_the_admin_may_not_read() {
    let org = Org::new();
    check(&org, &settings("")).unwrap();
    let (st, body) = err(401, "E0000011", "Invalid token provided");
    org.faults.borrow_mut().push(("/api/v1/users".into(), st, body, None));
    let e = check(&org, &settings("")).unwrap_err();
    assert!(
        matches!(&e, PluginError::Auth(m) if m.contains("Security → API → Tokens")),
        "{e:?}"
    );
    let (st, body) = err(
        403,
        "E0000006",
        "You do not have permission to perform the requested action",
    );
    org.faults.borrow_mut().push(("/api/v1/groups".into(), st, body, None));
    let e = check(&org, &settings("")).unwrap_err();
    assert!(
        matches!(&e, PluginError::Auth(m) if m.contains("list groups") && !m.contains("list users") && m.contains("Read-only Administrator")),
        "{e:?}"
    );
    // A fetch refused a listing fails the same way and writes nothing.
    let (st, body) = err(401, "E0000011", "Invalid token provided");
    org.faults.borrow_mut().push(("/api/v1/users".into(), st, body, None));
    assert!(matches!(
        fetch_all(&org, &settings(""), None),
        Err(PluginError::Auth(_))
    ));
}

#[test]
fn check_names_a_username_attribute_the_users_do_not_have_and_where_to_change_it() {
    let org = Org::new();
    check(&org, &settings(r#","username_attribute":"department""#)).unwrap();
    let e = check(&org, &settings(r#","username_attribute":"employeeNumber""#)).unwrap_err();
    assert!(
        matches!(&e, PluginError::Config(m) if m.contains("username_attribute")
            && m.contains("`employeeNumber`")
            && m.contains("user1@acme.com")
            && m.contains("Profile Editor")),
        "{e:?}"
    );
}

#[test]
fn a_listing_refused_for_a_missing_scope_names_the_scope_to_grant() {
    // The token itself needs the host's signer (`sign-jwt`); the token endpoint's refusals are
    // tested in check.rs. Here: a token granted without a scope an API call needs.
    let org = Org::new();
    let (st, body) = err(
        403,
        "E0000006",
        "You do not have permission to perform the requested action",
    );
    let header = (
        "WWW-Authenticate".to_string(),
        r#"Bearer authorization_uri="x", realm="IdP", scope="okta.groups.read", error="insufficient_scope", error_description="The access token provided does not contain the required scopes.""#.to_string(),
    );
    org.faults
        .borrow_mut()
        .push(("/api/v1/groups".into(), st, body, Some(header)));
    let e = check(&org, &settings("")).unwrap_err();
    assert!(
        matches!(&e, PluginError::Auth(m) if m.contains("grant okta.groups.read under the app's Okta API Scopes")),
        "{e:?}"
    );
}

#[test]
fn a_throttled_listing_is_transient_and_the_fetch_continues_from_the_failed_page() {
    let org = Org::new();
    let s = settings(r#","page_size":2"#);
    let (st, body) = err(
        429,
        "E0000047",
        "API call exceeded rate limit due to too many requests.",
    );
    org.faults.borrow_mut().push(("/api/v1/groups?".into(), st, body, None));
    let first = roster_sdk::idp::fetch::<OktaIdp>(&s, None, None, &Imports::http(&org)).unwrap();
    assert_eq!(first.users.len(), 5, "the users read before the 429 are kept");
    let rest = roster_sdk::idp::fetch::<OktaIdp>(&s, first.next.as_deref(), None, &Imports::http(&org)).unwrap();
    assert_eq!(rest.groups.len(), 3);
    assert!(rest.next.is_none() && rest.delta_token.is_some());
}

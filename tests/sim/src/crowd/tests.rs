//! Tests of the Jira/Crowd simulator, over HTTP with `reqwest` against `CrowdSim::start`, the
//! answers read with an XML parser as a client reads them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method};
use serde_json::Value;

use super::*;
use crate::directory::Directory;
use crate::kit::{Cut, Fault, FaultRule};

const APP: &str = "roster";
const PASSWORD: &str = "app-password";

struct T {
    sim: CrowdSim,
    http: reqwest::Client,
}

#[derive(Debug)]
struct Ans {
    status: u16,
    headers: HeaderMap,
    text: String,
}

impl Ans {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    fn doc(&self) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(&self.text).unwrap_or_else(|e| panic!("not XML ({e}): {}", self.text))
    }

    fn root(&self) -> String {
        self.doc().root_element().tag_name().name().to_string()
    }

    /// The `name` attributes of the root's child elements called `tag`.
    fn names(&self, tag: &str) -> Vec<String> {
        self.doc()
            .root_element()
            .children()
            .filter(|n| n.has_tag_name(tag))
            .map(|n| n.attribute("name").unwrap_or("").to_string())
            .collect()
    }

    /// `(reason, message)` of an `<error>` entity.
    fn error(&self) -> (String, String) {
        let doc = self.doc();
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "error", "{}", self.text);
        let text = |t: &str| {
            root.children()
                .find(|n| n.has_tag_name(t))
                .and_then(|n| n.text())
                .unwrap_or("")
                .to_string()
        };
        (text("reason"), text("message"))
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

/// The text of `parent`'s child element `tag`.
fn child<'a>(parent: roxmltree::Node<'a, '_>, tag: &str) -> Option<&'a str> {
    parent.children().find(|n| n.has_tag_name(tag)).and_then(|n| n.text())
}

fn alice() -> CrowdUser {
    let mut u = CrowdUser::new("alice", "1:k-alice", "Alice Liddell", "alice@example.com");
    u.attributes = vec![
        ("department".into(), vec!["R&D".into()]),
        ("phones".into(), vec!["1".into(), "2".into()]),
    ];
    u
}

/// A small server: alice and bob in `devs`, `devs` nested in `staff`, and the application.
fn small(product: Product) -> CrowdState {
    let mut s = CrowdState::new(product);
    s.add_application(APP, PASSWORD, &["127.0.0.1"]);
    s.add_user(alice());
    s.add_user(CrowdUser::new("Bob", "1:k-bob", "Bob Builder", "bob@example.com"));
    s.add_group(CrowdGroup::new("devs"));
    s.add_group(CrowdGroup {
        name: "staff".into(),
        description: Some("Everyone <employed>".into()),
        active: true,
    });
    s.add_user_to_group("alice", "devs");
    s.add_user_to_group("bob", "devs");
    s.add_group_to_group("devs", "staff");
    s
}

impl T {
    async fn new(state: CrowdState) -> T {
        T {
            sim: CrowdSim::start(state).await,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{API}{path}", self.sim.url())
    }

    async fn send(&self, b: reqwest::RequestBuilder) -> Ans {
        let r = b.send().await.expect("an answer");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        Ans {
            status,
            headers,
            text: r.text().await.expect("a whole body"),
        }
    }

    /// A GET as the Java client sends it (application, XML).
    async fn get(&self, path: &str) -> Ans {
        self.send(
            self.http
                .get(self.url(path))
                .basic_auth(APP, Some(PASSWORD))
                .header("accept", "application/xml"),
        )
        .await
    }

    async fn get_json(&self, path: &str) -> Ans {
        self.send(
            self.http
                .get(self.url(path))
                .basic_auth(APP, Some(PASSWORD))
                .header("accept", "application/json"),
        )
        .await
    }

    /// `POST /search` with an XML restriction.
    async fn search(&self, query: &str, restriction: &str) -> Ans {
        self.send(
            self.http
                .post(self.url(&format!("/search?{query}")))
                .basic_auth(APP, Some(PASSWORD))
                .header("accept", "application/xml")
                .header("content-type", "application/xml; charset=UTF-8")
                .body(restriction.to_string()),
        )
        .await
    }

    async fn all_users(&self) -> Ans {
        self.search(
            "entity-type=user&start-index=0&max-results=-1&expand=user",
            "<null-search-restriction/>",
        )
        .await
    }

    /// The events since `token`, as `(kind, operation, subject)` triples, and the new token.
    async fn events_since(&self, token: &str) -> (Vec<(String, String, String)>, String) {
        let a = self.get(&format!("/event/{token}")).await;
        assert_eq!(a.status, 200, "{}", a.text);
        let doc = a.doc();
        let root = doc.root_element();
        let new = root.attribute("newEventToken").expect("a new token").to_string();
        let events = root
            .children()
            .filter(roxmltree::Node::is_element)
            .map(|e| {
                let kind = e.tag_name().name().to_string();
                let op = child(e, "operation").unwrap_or("").to_string();
                let subject = match kind.as_str() {
                    "userEvent" | "groupEvent" => {
                        let tag = if kind == "userEvent" { "user" } else { "group" };
                        let n = e.children().find(|n| n.has_tag_name(tag)).expect("the entity");
                        n.attribute("name").unwrap_or("").to_string()
                    }
                    "userMembershipEvent" | "groupMembershipEvent" => {
                        let tag = if kind == "userMembershipEvent" {
                            "childUser"
                        } else {
                            "group"
                        };
                        let who = e.children().find(|n| n.has_tag_name(tag)).expect("the child");
                        let parents: Vec<&str> = e
                            .children()
                            .find(|n| n.has_tag_name("parentGroups"))
                            .expect("parentGroups")
                            .children()
                            .filter_map(|g| g.attribute("name"))
                            .collect();
                        format!("{} -> {}", who.attribute("name").unwrap_or(""), parents.join(","))
                    }
                    other => panic!("unknown event {other}"),
                };
                (kind, op, subject)
            })
            .collect();
        (events, new)
    }

    async fn token(&self) -> String {
        let a = self.get("/event").await;
        assert_eq!(a.status, 200, "{}", a.text);
        let doc = a.doc();
        assert_eq!(
            doc.root_element().attribute("incrementalSynchronisationAvailable"),
            Some("true")
        );
        doc.root_element()
            .attribute("newEventToken")
            .expect("a token")
            .to_string()
    }
}

fn ev(kind: &str, op: &str, subject: &str) -> (String, String, String) {
    (kind.into(), op.into(), subject.into())
}

fn assert_crowd_headers(a: &Ans, product: Product) {
    assert_eq!(a.header("x-embedded-crowd-version"), product.version_header(), "{a:?}");
    assert_eq!(a.header("x-crowd-user-management-version"), "1.4", "{a:?}");
    assert_eq!(a.header("cache-control"), "no-cache", "{a:?}");
}

#[tokio::test]
async fn every_answer_says_it_is_a_crowd_rest_service() {
    let t = T::new(small(Product::Jira)).await;
    let ok = t.get("/user?username=alice").await;
    assert_eq!(ok.status, 200);
    let no_auth = t.send(t.http.get(t.url("/user?username=alice"))).await;
    assert_eq!(no_auth.status, 401);
    let missing = t.get("/user?username=nobody").await;
    assert_eq!(missing.status, 404);
    let write = t
        .send(
            t.http
                .delete(t.url("/user?username=alice"))
                .basic_auth(APP, Some(PASSWORD)),
        )
        .await;
    assert_eq!(write.status, 403);
    t.sim.lock().expire_event_tokens();
    let gone = t.get("/event/anything").await;
    assert_eq!(gone.status, 410);
    t.sim.lock().set_allowed_addresses(APP, &["10.0.0.0/8"]);
    let refused = t.get("/user?username=alice").await;
    assert_eq!(refused.status, 403);
    for a in [&ok, &no_auth, &missing, &write, &gone, &refused] {
        assert_crowd_headers(a, Product::Jira);
    }
    // Outside the API there is no Crowd service, so no header either: how a client tells a
    // wrong server URL from a Crowd server.
    let outside = t
        .send(
            t.http
                .get(format!("{}/rest/api/1.0/users", t.sim.url()))
                .basic_auth(APP, Some(PASSWORD)),
        )
        .await;
    assert_eq!(outside.status, 404);
    assert_eq!(outside.header("x-embedded-crowd-version"), "");

    let crowd = T::new(small(Product::Crowd)).await;
    assert_crowd_headers(&crowd.get("/group?groupname=devs").await, Product::Crowd);
}

#[tokio::test]
async fn bad_application_credentials_get_crowds_challenge_and_text() {
    let t = T::new(small(Product::Jira)).await;
    let cases = [
        t.send(t.http.get(t.url("/user?username=alice"))).await,
        t.send(t.http.get(t.url("/user?username=alice")).basic_auth(APP, Some("wrong")))
            .await,
        t.send(
            t.http
                .get(t.url("/user?username=alice"))
                .basic_auth("jira-app", Some(PASSWORD)),
        )
        .await,
        t.send(
            t.http
                .get(t.url("/user?username=alice"))
                .header("authorization", "Basic not-base64!"),
        )
        .await,
        t.send(t.http.get(t.url("/user?username=alice")).bearer_auth(PASSWORD))
            .await,
    ];
    for a in &cases {
        assert_eq!(a.status, 401, "{a:?}");
        assert_eq!(a.header("www-authenticate"), "BASIC realm=\"Crowd REST Service\"");
        assert_eq!(a.header("content-type"), "text/plain;charset=UTF-8");
        assert_eq!(a.text, "Application failed to authenticate");
    }
    // The application name is case-insensitive, as in Crowd; the password is not.
    let a = t
        .send(
            t.http
                .get(t.url("/user?username=alice"))
                .basic_auth("ROSTER", Some(PASSWORD)),
        )
        .await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn the_allowed_addresses_admit_single_addresses_and_ranges_and_refuse_the_rest() {
    let t = T::new(small(Product::Jira)).await;
    for allowed in [
        &["127.0.0.1"][..],
        &["127.0.0.0/8"],
        &["10.0.0.0/8", "127.0.0.1/32"],
        &["::1", "127.0.0.1"],
    ] {
        t.sim.lock().set_allowed_addresses(APP, allowed);
        assert_eq!(t.get("/user?username=alice").await.status, 200, "{allowed:?}");
    }
    for allowed in [&["10.0.0.0/8"][..], &["127.0.0.2"], &[], &["::1"]] {
        t.sim.lock().set_allowed_addresses(APP, allowed);
        let a = t.get("/user?username=alice").await;
        assert_eq!(a.status, 403, "{allowed:?}");
        assert!(a.header("content-type").starts_with("text/html"), "{a:?}");
        assert!(
            a.text.contains(
                "Client with address &quot;127.0.0.1&quot; is forbidden from making requests to the application, roster."
            ),
            "{}",
            a.text
        );
        // Crowd checks the address before the password: a wrong one is refused the same way.
        let wrong = t
            .send(t.http.get(t.url("/user?username=alice")).basic_auth(APP, Some("wrong")))
            .await;
        assert_eq!(wrong.status, 403);
    }
}

#[tokio::test]
async fn ipv6_clients_are_checked_and_named_as_java_writes_them() {
    let mut s = small(Product::Crowd);
    s.set_allowed_addresses(APP, &["::1"]);
    let sim = CrowdSim::try_start_on("[::1]:0".parse().unwrap(), s)
        .await
        .expect("IPv6 loopback");
    let t = T {
        sim,
        http: reqwest::Client::new(),
    };
    assert!(t.sim.url().starts_with("http://[::1]:"));
    assert_eq!(t.get("/user?username=alice").await.status, 200);
    t.sim.lock().set_allowed_addresses(APP, &["::/0"]);
    assert_eq!(t.get("/user?username=alice").await.status, 200);
    t.sim.lock().set_allowed_addresses(APP, &["127.0.0.1", "fd00::/8"]);
    let a = t.get("/user?username=alice").await;
    assert_eq!(a.status, 403);
    assert!(
        a.text
            .contains("Client with address &quot;0:0:0:0:0:0:0:1&quot; is forbidden"),
        "{}",
        a.text
    );
    assert!(parse_allowed_address("10.0.0.0/33").is_err());
    assert!(
        parse_allowed_address("jira.example.com")
            .unwrap_err()
            .contains("jira.example.com")
    );
}

#[tokio::test]
async fn a_search_for_all_returns_every_entity_and_pages_when_asked() {
    let d = Directory::generate(2500, 100, 3);
    let mut s = CrowdState::from_directory(&d, Product::Jira);
    s.add_application(APP, PASSWORD, &["127.0.0.0/8"]);
    let t = T::new(s).await;

    let all = t.all_users().await;
    assert_eq!(all.status, 200);
    let names = all.names("user");
    assert_eq!(names.len(), 2500, "-1 is never truncated");
    let want: BTreeSet<String> = d.users.iter().map(|u| u.username.clone()).collect();
    assert_eq!(names.iter().cloned().collect::<BTreeSet<_>>(), want);

    // Without max-results the server's default page is 1000.
    let default = t
        .search("entity-type=user", "<null-search-restriction/>")
        .await
        .names("user");
    assert_eq!(default.len(), 1000);

    // Pages as a client that asks for 1000 at a time walks them: the last one short.
    let mut walked = Vec::new();
    for start in (0..).step_by(1000) {
        let page = t
            .search(
                &format!("entity-type=user&start-index={start}&max-results=1000"),
                "<null-search-restriction/>",
            )
            .await
            .names("user");
        let short = page.len() < 1000;
        walked.extend(page);
        if short {
            break;
        }
    }
    assert_eq!(walked, names, "pages follow the order of the whole listing");

    let groups = t
        .search(
            "entity-type=group&start-index=0&max-results=-1&expand=group",
            "<null-search-restriction/>",
        )
        .await;
    assert_eq!(groups.names("group").len(), 100);

    for bad in [
        "entity-type=user&max-results=0",
        "entity-type=user&max-results=-2",
        "entity-type=user&start-index=-1",
        "entity-type=user&max-results=many",
        "entity-type=person",
        "max-results=-1",
    ] {
        let a = t.search(bad, "<null-search-restriction/>").await;
        assert_eq!(a.status, 400, "{bad}");
        assert_eq!(a.error().0, "ILLEGAL_ARGUMENT", "{bad}");
    }
}

#[tokio::test]
async fn expand_chooses_minimal_or_full_entities_and_attributes() {
    let t = T::new(small(Product::Jira)).await;
    let minimal = t
        .search("entity-type=user&max-results=-1", "<null-search-restriction/>")
        .await;
    let doc = minimal.doc();
    let first = doc.root_element().first_element_child().unwrap();
    assert_eq!(first.attribute("name"), Some("alice"));
    let kids: Vec<&str> = first
        .children()
        .filter(roxmltree::Node::is_element)
        .map(|n| n.tag_name().name())
        .collect();
    assert_eq!(kids, ["link"], "a minimal user is its name and a link");

    let full = t
        .search(
            "entity-type=user&max-results=-1&expand=user",
            "<null-search-restriction/>",
        )
        .await;
    let doc = full.doc();
    let users: Vec<_> = doc
        .root_element()
        .children()
        .filter(|n| n.has_tag_name("user"))
        .collect();
    assert_eq!(users.len(), 2);
    let a = users[0];
    assert_eq!(child(a, "first-name"), Some("Alice"));
    assert_eq!(child(a, "last-name"), Some("Liddell"));
    assert_eq!(child(a, "display-name"), Some("Alice Liddell"));
    assert_eq!(child(a, "email"), Some("alice@example.com"));
    assert_eq!(child(a, "active"), Some("true"));
    assert_eq!(child(a, "key"), Some("1:k-alice"));
    let created = child(a, "created-date").unwrap();
    assert!(
        created.len() == 24 && created.ends_with('Z') && created.as_bytes()[10] == b'T',
        "{created}"
    );
    assert!(child(a, "updated-date").is_some());
    let attrs = a.children().find(|n| n.has_tag_name("attributes")).unwrap();
    assert_eq!(attrs.children().filter(|n| n.has_tag_name("attribute")).count(), 0);
    // Stored case is kept; order is by lower-cased name.
    assert_eq!(users[1].attribute("name"), Some("Bob"));

    let with_attrs = t
        .search(
            "entity-type=user&max-results=-1&expand=user,attributes",
            "<null-search-restriction/>",
        )
        .await;
    let doc = with_attrs.doc();
    let a = doc.root_element().first_element_child().unwrap();
    let attrs: BTreeMap<String, Vec<String>> = a
        .children()
        .find(|n| n.has_tag_name("attributes"))
        .unwrap()
        .children()
        .filter(|n| n.has_tag_name("attribute"))
        .map(|at| {
            let values = at
                .children()
                .find(|n| n.has_tag_name("values"))
                .unwrap()
                .children()
                .filter_map(|v| v.text().map(str::to_string))
                .collect();
            (at.attribute("name").unwrap().to_string(), values)
        })
        .collect();
    assert_eq!(attrs["department"], ["R&D"]);
    assert_eq!(attrs["phones"], ["1", "2"]);

    let groups = t
        .search(
            "entity-type=group&max-results=-1&expand=group",
            "<null-search-restriction/>",
        )
        .await;
    let doc = groups.doc();
    let staff = doc
        .root_element()
        .children()
        .find(|n| n.attribute("name") == Some("staff"))
        .unwrap();
    assert_eq!(child(staff, "type"), Some("GROUP"));
    assert_eq!(child(staff, "active"), Some("true"));
    assert_eq!(child(staff, "description"), Some("Everyone <employed>"));
}

#[tokio::test]
async fn json_is_served_when_asked_with_the_xml_names_as_keys() {
    let t = T::new(small(Product::Jira)).await;
    let a = t.get_json("/user?username=alice&expand=attributes").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), "application/json");
    let u = a.json();
    assert_eq!(u["name"], "alice");
    assert_eq!(u["first-name"], "Alice");
    assert_eq!(u["display-name"], "Alice Liddell");
    assert_eq!(u["key"], "1:k-alice");
    assert_eq!(u["active"], true);
    assert_eq!(u["attributes"]["attributes"][0]["name"], "department");
    assert_eq!(u["attributes"]["attributes"][0]["values"][0], "R&D");

    let list = t
        .send(
            t.http
                .post(t.url("/search?entity-type=group&max-results=-1"))
                .basic_auth(APP, Some(PASSWORD))
                .header("accept", "application/json")
                .header("content-type", "application/json")
                .body(r#"{"restriction-type":"null-search-restriction"}"#),
        )
        .await
        .json();
    let names: Vec<&str> = list["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["devs", "staff"]);
    let missing = t.get_json("/group?groupname=nope").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["reason"], "GROUP_NOT_FOUND");

    // The XML default: no Accept at all, or both offered.
    let none = t
        .send(
            t.http
                .get(t.url("/user?username=alice"))
                .basic_auth(APP, Some(PASSWORD)),
        )
        .await;
    assert_eq!(none.header("content-type"), "application/xml");
    assert_eq!(none.root(), "user");
    // The membership document and events are XML whatever is asked.
    for path in ["/group/membership", "/event"] {
        let a = t.get_json(path).await;
        assert_eq!(a.header("content-type"), "application/xml", "{path}");
        a.doc();
    }
}

#[tokio::test]
async fn the_membership_document_lists_every_direct_membership_of_the_directory() {
    let d = Directory::generate(300, 40, 4);
    let mut s = CrowdState::from_directory(&d, Product::Crowd);
    s.add_application(APP, PASSWORD, &["127.0.0.1"]);
    let t = T::new(s).await;
    let a = t.get("/group/membership").await;
    assert_eq!(a.status, 200);
    let doc = a.doc();
    let mut got: BTreeSet<(String, String, bool)> = BTreeSet::new();
    let mut groups = 0;
    for m in doc.root_element().children().filter(|n| n.has_tag_name("membership")) {
        groups += 1;
        let g = m.attribute("group").unwrap().to_string();
        for (list, tag, is_group) in [("users", "user", false), ("groups", "group", true)] {
            let l = m.children().find(|n| n.has_tag_name(list)).unwrap();
            for member in l.children().filter(|n| n.has_tag_name(tag)) {
                got.insert((g.clone(), member.attribute("name").unwrap().to_string(), is_group));
            }
        }
    }
    let group_name: BTreeMap<&str, &str> = d.groups.iter().map(|g| (g.id.as_str(), g.name.as_str())).collect();
    let user_name: BTreeMap<&str, &str> = d.users.iter().map(|u| (u.id.as_str(), u.username.as_str())).collect();
    let want: BTreeSet<(String, String, bool)> = d
        .memberships
        .iter()
        .map(|m| {
            let member = if m.member_is_group {
                group_name[m.member.as_str()]
            } else {
                user_name[m.member.as_str()]
            };
            (
                group_name[m.group.as_str()].to_string(),
                member.to_string(),
                m.member_is_group,
            )
        })
        .collect();
    assert_eq!(groups, 40);
    assert_eq!(got, want);

    t.sim.lock().without_membership_document();
    let old = t.get("/group/membership").await;
    assert_eq!(old.status, 404);
    assert_crowd_headers(&old, Product::Crowd);
}

#[tokio::test]
async fn lookups_listings_and_membership_tests_follow_the_directory() {
    let t = T::new(small(Product::Jira)).await;
    let u = t.get("/user?username=ALICE").await;
    assert_eq!((u.status, u.root()), (200, "user".to_string()));
    assert_eq!(t.get("/user?key=1:k-bob").await.names("link").len(), 1);
    assert_eq!(
        t.get("/user?key=1:k-bob").await.doc().root_element().attribute("name"),
        Some("Bob")
    );
    let nobody = t.get("/user?username=nobody").await;
    assert_eq!((nobody.status, nobody.error().0), (404, "USER_NOT_FOUND".to_string()));
    assert_eq!(t.get("/user").await.error().0, "ILLEGAL_ARGUMENT");
    let nogroup = t.get("/group?groupname=nope").await;
    assert_eq!(
        (nogroup.status, nogroup.error().0),
        (404, "GROUP_NOT_FOUND".to_string())
    );

    assert_eq!(
        t.get("/group/user/direct?groupname=devs").await.names("user"),
        ["alice", "Bob"]
    );
    assert_eq!(
        t.get("/group/user/direct?groupname=staff").await.names("user"),
        Vec::<String>::new()
    );
    assert_eq!(
        t.get("/group/user/nested?groupname=staff").await.names("user"),
        ["alice", "Bob"]
    );
    assert_eq!(
        t.get("/group/user/direct?groupname=nope").await.names("user"),
        Vec::<String>::new()
    );
    assert_eq!(
        t.get("/group/child-group/direct?groupname=staff").await.names("group"),
        ["devs"]
    );
    assert_eq!(
        t.get("/group/parent-group/direct?groupname=devs").await.names("group"),
        ["staff"]
    );
    assert_eq!(t.get("/user/group/direct?username=bob").await.names("group"), ["devs"]);
    assert_eq!(
        t.get("/user/group/nested?username=bob").await.names("group"),
        ["devs", "staff"]
    );
    assert_eq!(t.get("/user/group/direct?username=nobody").await.status, 404);
    let paged = t
        .get("/group/user/direct?groupname=devs&start-index=1&max-results=1&expand=user")
        .await;
    assert_eq!(paged.names("user"), ["Bob"]);

    assert_eq!(
        t.get("/group/user/direct?groupname=devs&username=alice").await.status,
        200
    );
    let not = t.get("/group/user/direct?groupname=staff&username=alice").await;
    assert_eq!((not.status, not.error().0), (404, "MEMBERSHIP_NOT_FOUND".to_string()));
    assert_eq!(
        t.get("/group/user/nested?groupname=staff&username=alice").await.status,
        200
    );
    assert_eq!(
        t.get("/group/child-group/direct?groupname=staff&child-groupname=devs")
            .await
            .status,
        200
    );
    assert_eq!(
        t.get("/group/child-group/direct?groupname=devs&child-groupname=staff")
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn searches_honour_property_and_boolean_restrictions() {
    let t = T::new(small(Product::Jira)).await;
    let q = "entity-type=user&max-results=-1";
    let by_email = t
        .search(
            q,
            "<property-search-restriction><property><name>email</name><type>STRING</type></property>\
             <match-mode>EXACTLY_MATCHES</match-mode><value>BOB@example.com</value></property-search-restriction>",
        )
        .await;
    assert_eq!(by_email.names("user"), ["Bob"]);
    // What the Java client's testConnection sends: no user has no name, and the answer is 200.
    let name_null = t
        .search(
            "entity-type=user&start-index=0&max-results=1&expand=user",
            "<property-search-restriction><property><name>name</name><type>STRING</type></property>\
             <match-mode>NULL</match-mode></property-search-restriction>",
        )
        .await;
    assert_eq!((name_null.status, name_null.names("user").len()), (200, 0));
    let either = t
        .search(
            q,
            "<boolean-search-restriction boolean-logic=\"OR\"><restrictions>\
             <property-search-restriction><property><name>name</name><type>STRING</type></property>\
             <match-mode>STARTS_WITH</match-mode><value>al</value></property-search-restriction>\
             <property-search-restriction><property><name>department</name><type>STRING</type></property>\
             <match-mode>CONTAINS</match-mode><value>nothing</value></property-search-restriction>\
             </restrictions></boolean-search-restriction>",
        )
        .await;
    assert_eq!(either.names("user"), ["alice"]);
    let by_attribute = t
        .search(
            q,
            "<property-search-restriction><property><name>department</name><type>STRING</type></property>\
             <match-mode>EXACTLY_MATCHES</match-mode><value>r&amp;d</value></property-search-restriction>",
        )
        .await;
    assert_eq!(by_attribute.names("user"), ["alice"]);
    let since = t
        .search(
            q,
            "<property-search-restriction><property><name>createdDate</name><type>DATE</type></property>\
             <match-mode>GREATER_THAN</match-mode><value>2000-01-01T00:00:00.000+0000</value></property-search-restriction>",
        )
        .await;
    assert_eq!(since.names("user").len(), 2);
    let garbage = t.search(q, "<property-search-restriction>").await;
    assert_eq!(
        (garbage.status, garbage.error().0),
        (400, "ILLEGAL_ARGUMENT".to_string())
    );
}

#[tokio::test]
async fn events_list_exactly_the_changes_since_a_token_in_order() {
    let t = T::new(small(Product::Jira)).await;
    let t0 = t.token().await;
    let (none, same) = t.events_since(&t0).await;
    assert!(none.is_empty());
    assert_eq!(same, t0, "no change, same position");
    {
        let mut s = t.sim.lock();
        s.add_user(CrowdUser::new(
            "carol",
            "1:k-carol",
            "Carol Danvers",
            "carol@example.com",
        ));
        s.add_user_to_group("carol", "devs");
        s.update_user("alice", |u| {
            u.active = false;
            u.attributes.retain(|(n, _)| n != "phones");
        });
        s.add_group(CrowdGroup::new("ops"));
        s.add_group_to_group("ops", "staff");
        s.remove_user_from_group("bob", "devs");
        s.remove_group_from_group("devs", "staff");
        s.remove_group("ops");
        s.remove_user("bob");
    }
    let (events, t1) = t.events_since(&t0).await;
    assert_eq!(
        events,
        [
            ev("userEvent", "CREATED", "carol"),
            ev("userMembershipEvent", "CREATED", "carol -> devs"),
            ev("userEvent", "UPDATED", "alice"),
            ev("groupEvent", "CREATED", "ops"),
            ev("groupMembershipEvent", "CREATED", "ops -> staff"),
            ev("userMembershipEvent", "DELETED", "Bob -> devs"),
            ev("groupMembershipEvent", "DELETED", "devs -> staff"),
            ev("groupEvent", "DELETED", "ops"),
            ev("userEvent", "DELETED", "Bob"),
        ]
    );
    assert_ne!(t1, t0);
    assert!(
        t1.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "URL-safe: {t1}"
    );
    let (after, t2) = t.events_since(&t1).await;
    assert!(after.is_empty(), "the new token starts after these events");
    assert_eq!(t2, t1);
    // The old token still answers the same events: a client that lost the answer asks again.
    assert_eq!(t.events_since(&t0).await.0.len(), 9);

    // The updated user arrives whole, with the attribute it lost named.
    let a = t.get(&format!("/event/{t0}")).await;
    let doc = a.doc();
    let update = doc
        .root_element()
        .children()
        .filter(|n| n.has_tag_name("userEvent"))
        .nth(1)
        .unwrap();
    let user = update.children().find(|n| n.has_tag_name("user")).unwrap();
    assert_eq!(child(user, "active"), Some("false"));
    assert_eq!(child(user, "email"), Some("alice@example.com"));
    let deleted: Vec<&str> = update
        .children()
        .find(|n| n.has_tag_name("deletedAttributes"))
        .unwrap()
        .children()
        .filter_map(|n| n.attribute("name"))
        .collect();
    assert_eq!(deleted, ["phones"]);
    // As Crowd writes a user event: the entity's attributes only linked, the ones it has now in
    // storedAttributes — a client wanting them whole reads the user.
    let names = |list: roxmltree::Node<'_, '_>| -> Vec<String> {
        list.children()
            .filter(|n| n.has_tag_name("attribute"))
            .filter_map(|n| n.attribute("name"))
            .map(str::to_string)
            .collect()
    };
    let entity_attrs = user.children().find(|n| n.has_tag_name("attributes")).unwrap();
    assert!(entity_attrs.children().any(|n| n.has_tag_name("link")));
    assert!(names(entity_attrs).is_empty(), "only a link in the entity");
    let stored = update.children().find(|n| n.has_tag_name("storedAttributes")).unwrap();
    assert_eq!(names(stored), ["department"]);
    // /event/{t} leaves incrementalSynchronisationAvailable unset, as Crowd's server does.
    assert_eq!(
        doc.root_element().attribute("incrementalSynchronisationAvailable"),
        None
    );
}

#[tokio::test]
async fn a_rename_keeps_the_key_and_the_memberships() {
    let t = T::new(small(Product::Jira)).await;
    let t0 = t.token().await;
    t.sim.lock().rename_user("alice", "alice.liddell");
    let (events, _) = t.events_since(&t0).await;
    assert_eq!(
        events,
        [
            ev("userEvent", "DELETED", "alice"),
            ev("userEvent", "CREATED", "alice.liddell"),
            ev("userMembershipEvent", "CREATED", "alice.liddell -> devs"),
        ]
    );
    let a = t.get(&format!("/event/{t0}")).await;
    let doc = a.doc();
    let created = doc
        .root_element()
        .children()
        .filter(|n| n.has_tag_name("userEvent"))
        .nth(1)
        .unwrap();
    let user = created.children().find(|n| n.has_tag_name("user")).unwrap();
    assert_eq!(child(user, "key"), Some("1:k-alice"), "the key survives the rename");

    {
        let s = t.sim.lock();
        assert!(s.user("alice").is_none());
        assert_eq!(
            s.user("alice.liddell").and_then(|u| u.key.as_deref()),
            Some("1:k-alice")
        );
        assert_eq!(s.user_groups("alice.liddell"), ["devs"]);
    }
    let by_key = t.get("/user?key=1:k-alice").await;
    assert_eq!(by_key.doc().root_element().attribute("name"), Some("alice.liddell"));
    assert_eq!(
        t.get("/group/user/direct?groupname=devs").await.names("user"),
        ["alice.liddell", "Bob"]
    );
}

#[tokio::test]
async fn set_user_groups_is_one_absolute_update() {
    let t = T::new(small(Product::Jira)).await;
    t.sim.lock().add_group(CrowdGroup::new("ops"));
    let t0 = t.token().await;
    t.sim.lock().set_user_groups("bob", &["staff", "ops", "no-such-group"]);
    let (events, _) = t.events_since(&t0).await;
    assert_eq!(events, [ev("userMembershipEvent", "UPDATED", "Bob -> ops,staff")]);
    assert_eq!(t.sim.lock().user_groups("bob"), ["ops", "staff"]);
    assert_eq!(
        t.get("/group/user/direct?groupname=devs").await.names("user"),
        ["alice"]
    );
}

#[tokio::test]
async fn expired_made_up_and_unavailable_tokens_are_refused_as_crowd_refuses_them() {
    let t = T::new(small(Product::Jira)).await;
    let t0 = t.token().await;
    let forged = t.get("/event/1700000000000:42").await;
    assert_eq!(
        (forged.status, forged.error().0),
        (410, "EVENT_TOKEN_EXPIRED".to_string())
    );
    t.sim.lock().expire_event_tokens();
    let gone = t.get(&format!("/event/{t0}")).await;
    assert_eq!((gone.status, gone.error().0), (410, "EVENT_TOKEN_EXPIRED".to_string()));
    // A token issued after the expiry works.
    let t1 = t.token().await;
    assert_eq!(t.get(&format!("/event/{t1}")).await.status, 200);

    t.sim.lock().disable_incremental_sync();
    let a = t.get("/event").await;
    assert_eq!(a.status, 200);
    let doc = a.doc();
    assert_eq!(
        doc.root_element().attribute("incrementalSynchronisationAvailable"),
        Some("false")
    );
    assert_eq!(doc.root_element().attribute("newEventToken"), None);
    let refused = t.get(&format!("/event/{t1}")).await;
    assert_eq!(
        (refused.status, refused.error().0),
        (400, "INCREMENTAL_SYNC_NOT_AVAILABLE".to_string())
    );
}

#[tokio::test]
async fn writes_and_an_application_without_permission_are_refused_with_the_entity() {
    let t = T::new(small(Product::Jira)).await;
    let calls = [
        (Method::POST, "/user"),
        (Method::PUT, "/user?username=alice"),
        (Method::DELETE, "/user?username=alice"),
        (Method::POST, "/group/user/direct?groupname=devs"),
        (
            Method::DELETE,
            "/group/child-group/direct?groupname=staff&child-groupname=devs",
        ),
        (Method::POST, "/user/rename?username=alice"),
    ];
    for (m, path) in calls {
        let a = t
            .send(
                t.http
                    .request(m.clone(), t.url(path))
                    .basic_auth(APP, Some(PASSWORD))
                    .header("content-type", "application/xml")
                    .body("<user name=\"x\"/>"),
            )
            .await;
        assert_eq!(
            (a.status, a.error().0),
            (403, "APPLICATION_PERMISSION_DENIED".to_string()),
            "{m} {path}"
        );
    }
    assert_eq!(t.sim.lock().user_groups("alice"), ["devs"], "nothing changed");

    t.sim.lock().deny_permission(APP);
    for path in ["/user?username=alice", "/group/membership", "/event"] {
        let a = t.get(path).await;
        assert_eq!(
            (a.status, a.error().0),
            (403, "APPLICATION_PERMISSION_DENIED".to_string()),
            "{path}"
        );
        assert!(a.error().1.contains("roster"));
    }
    let search = t.all_users().await;
    assert_eq!(search.status, 403);
}

#[tokio::test]
async fn injected_faults_answer_with_crowds_headers_and_entity() {
    let t = T::new(small(Product::Crowd)).await;
    t.sim.faults().add(
        FaultRule::new(Fault::status(500))
            .on(Method::POST, RouteMatch::path("/rest/usermanagement/1/search"))
            .times(kit::Times::Once),
    );
    let failed = t.all_users().await;
    assert_eq!((failed.status, failed.error().0), (500, "OPERATION_FAILED".to_string()));
    assert_crowd_headers(&failed, Product::Crowd);
    assert_eq!(t.all_users().await.status, 200, "once");

    t.sim
        .faults()
        .add(FaultRule::new(Fault::TruncatedBody).route(RouteMatch::path("/rest/usermanagement/1/group/membership")));
    let cut = t.get("/group/membership").await;
    assert_eq!(cut.status, 200);
    assert!(
        roxmltree::Document::parse(&cut.text).is_err(),
        "half a document: {}",
        cut.text
    );

    t.sim.faults().add(
        FaultRule::new(Fault::Reset(Cut::MidBody)).on(Method::POST, RouteMatch::path("/rest/usermanagement/1/search")),
    );
    let r = t
        .http
        .post(t.url("/search?entity-type=user&max-results=-1&expand=user"))
        .basic_auth(APP, Some(PASSWORD))
        .body("<null-search-restriction/>")
        .send()
        .await
        .expect("headers arrive");
    assert!(r.text().await.is_err(), "the body stops short of its length");

    t.sim.faults().add(
        FaultRule::new(Fault::Hang(Duration::from_secs(30))).route(RouteMatch::prefix("/rest/usermanagement/1/event")),
    );
    let started = Instant::now();
    let hung = t
        .http
        .get(t.url("/event"))
        .basic_auth(APP, Some(PASSWORD))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(hung.is_err() && started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn calls_count_the_api_requests_answered_refusals_included() {
    let t = T::new(small(Product::Jira)).await;
    t.get("/user?username=alice").await;
    t.send(t.http.get(t.url("/user?username=alice"))).await;
    t.get("/group/membership").await;
    t.send(t.http.get(format!("{}/status", t.sim.url()))).await;
    assert_eq!(t.sim.lock().calls(), 3);
    t.sim.lock().set_rate_limit(0.001, 1);
    assert_eq!(t.get("/event").await.status, 200);
    let limited = t.get("/event").await;
    assert_eq!(limited.status, 429);
    assert!(!limited.header("retry-after").is_empty());
    assert_crowd_headers(&limited, Product::Jira);
    assert_eq!(t.sim.lock().calls(), 5);
}

#[tokio::test]
async fn from_directory_keys_users_by_the_directory_id() {
    let d = Directory::generate(10, 4, 2);
    let s = CrowdState::from_directory(&d, Product::Jira);
    let u = s.user("user000003").unwrap();
    assert_eq!(u.key.as_deref(), Some("u-000003"));
    assert_eq!((u.first_name.as_str(), u.last_name.as_str()), ("User", "000003"));
    assert_eq!(s.event_count(), 0, "the initial content is no change");
    let want: Vec<String> = d
        .memberships
        .iter()
        .filter(|m| m.member == "u-000003")
        .map(|m| d.groups.iter().find(|g| g.id == m.group).unwrap().name.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(s.user_groups("user000003"), want);
}

/// The benchmark's directory (10,000 users, 1,000 groups, 200,000 memberships) served whole:
/// each answer well under a second. Slow in debug builds:
/// `cargo test -p roster-sim --release -- --ignored scale`.
#[tokio::test]
#[ignore = "release builds only"]
async fn scale_a_full_directory_is_served_in_well_under_a_second() {
    let d = Directory::generate(10_000, 1_000, 20);
    let mut s = CrowdState::from_directory(&d, Product::Jira);
    s.add_application(APP, PASSWORD, &["127.0.0.1"]);
    let t = T::new(s).await;
    let started = Instant::now();
    let users = t.all_users().await;
    let took_users = started.elapsed();
    assert_eq!(users.names("user").len(), 10_000);
    let started = Instant::now();
    let m = t.get("/group/membership").await;
    let took_memberships = started.elapsed();
    let members = m
        .doc()
        .descendants()
        .filter(|n| n.has_tag_name("user") || n.has_tag_name("group"))
        .count();
    assert_eq!(members, d.memberships.len());
    eprintln!(
        "users: {took_users:?} ({} bytes); memberships: {took_memberships:?} ({} bytes, {members})",
        users.text.len(),
        m.text.len()
    );
    assert!(took_users < Duration::from_millis(800), "{took_users:?}");
    assert!(took_memberships < Duration::from_millis(800), "{took_memberships:?}");
}

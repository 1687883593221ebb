//! Roster as a Crowd user server: the `usermanagement/1` endpoint (`/rest/usermanagement/1`)
//! served on 127.0.0.1 over real HTTP, read as Bitbucket's "Atlassian Crowd" directory reads
//! it (crowd-rest.md §5–§7). The served directory is seeded through the store
//! (`Store::served_apply`), as the `crowd-directory` target writes it; applications through
//! `Store::crowd_app_create`.

use crate::common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::Configured;
use common::world::{World, bitbucket};
use reqwest::Method;
use roster_serve::service::Service;
use roster_sim::directory::Directory;
use roster_store::ServedChange;

const API: &str = "/rest/usermanagement/1";

/// The users seeded: more than one keyset page (1,000) so full answers are streamed in pages.
const USERS: usize = 2_345;

/// `[api] trusted_proxies`: the loopback peer is a proxy whose `X-Forwarded-For` is believed.
const TRUSTING: &str = "[api]\ntrusted_proxies = [\"127.0.0.1\"]\n";

struct CrowdWorld {
    world: World,
    /// The endpoint of a service that trusts the loopback proxy.
    base: String,
    /// The same store served by a service that trusts no proxy.
    untrusting: String,
    http: reqwest::Client,
    /// `bitbucket` (every group, from loopback), `scoped` (developers only), `office` (only
    /// from 192.0.2.0/24): name → password.
    passwords: std::collections::HashMap<&'static str, String>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for CrowdWorld {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// An answer: status, headers, body text.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn doc(&self) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(&self.text).unwrap_or_else(|e| panic!("not XML ({e}): {}", self.text))
    }

    /// `(reason, message)` of an `<error>` entity.
    fn error(&self) -> (String, String) {
        let doc = self.doc();
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "error", "{}", self.text);
        (child_text(root, "reason"), child_text(root, "message"))
    }
}

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, tag: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name(tag))
}

fn child_text(n: roxmltree::Node<'_, '_>, tag: &str) -> String {
    child(n, tag)
        .map(|c| c.text().unwrap_or("").to_string())
        .unwrap_or_else(|| panic!("<{}> has no <{tag}>", n.tag_name().name()))
}

/// The `name` attributes of `root`'s element children.
fn names(doc: &roxmltree::Document<'_>) -> Vec<String> {
    doc.root_element()
        .children()
        .filter(roxmltree::Node::is_element)
        .map(|n| n.attribute("name").unwrap().to_string())
        .collect()
}

/// Short forms of the served-directory changes these tests make; each must be taken.
trait Seed {
    fn change(&self, change: ServedChange);
    fn group(&self, name: &str) {
        self.change(ServedChange::CreateGroup { group: name.into() });
    }
    fn user(
        &self,
        name: impl Into<String>,
        display: impl Into<String>,
        email: impl Into<String>,
        records: &[(&str, &str)],
    ) {
        self.change(ServedChange::CreateUser {
            user: name.into(),
            display_name: display.into(),
            email: email.into(),
            records: records.iter().map(|(s, id)| (s.to_string(), id.to_string())).collect(),
        });
    }
    fn add(&self, group: impl Into<String>, users: Vec<String>) {
        self.change(ServedChange::AddMembers {
            group: group.into(),
            users,
        });
    }
    fn rename(&self, from: impl Into<String>, to: impl Into<String>) {
        self.change(ServedChange::RenameUser {
            from: from.into(),
            to: to.into(),
            records: vec![],
        });
    }
}

impl Seed for roster_store::Store {
    fn change(&self, change: ServedChange) {
        self.served_apply(&change).unwrap();
    }
}

fn user_name(i: usize) -> String {
    format!("user{i:05}")
}

/// The served directory: `developers` (every third user), `admins` (user00000..00009),
/// `bitbucket-users` (everyone), one user with markup in the display name, one inactive.
fn seed(store: &roster_store::Store) {
    for g in ["bitbucket-users", "developers", "admins"] {
        store.group(g);
    }
    for i in 0..USERS {
        store.user(
            user_name(i),
            format!("User Number{i}"),
            format!("{}@example.com", user_name(i)),
            &[("hr", &format!("e{i}")), ("entra", &format!("o{i}"))],
        );
    }
    store.user(
        "Mallory",
        "<script>alert('x')</script> & Co",
        "mallory@example.com",
        &[("hr", "m")],
    );
    let all: Vec<String> = (0..USERS).map(user_name).chain(["Mallory".to_string()]).collect();
    store.add("bitbucket-users", all);
    store.add("developers", (0..USERS).step_by(3).map(user_name).collect());
    store.add("admins", (0..10).map(user_name).collect());
    store
        .served_apply(&ServedChange::Deactivate {
            user: user_name(1),
            leave: vec!["bitbucket-users".into(), "admins".into()],
        })
        .unwrap();
}

/// Serves `world`'s store with its configuration plus `extra`, written to `file`.
async fn serve(world: &World, file: &str, extra: &str) -> (String, tokio::task::JoinHandle<()>) {
    let path = world.rt.dir.path().join(file);
    std::fs::write(&path, format!("{}\n{extra}", world.config_text())).unwrap();
    let service = Service::new(world.store.clone(), world.rt.runtime.clone(), &path, common::kinds()).unwrap();
    common::api::serve(service).await
}

impl CrowdWorld {
    async fn start() -> CrowdWorld {
        let world = World::new(&Directory::generate(4, 2, 1), bitbucket()).await;
        seed(&world.store);
        let mut passwords = std::collections::HashMap::new();
        let create = |name: &str, allowed: &[&str], groups: Option<&[&str]>| {
            let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
            let groups: Option<Vec<String>> = groups.map(|g| g.iter().map(|s| s.to_string()).collect());
            world
                .store
                .crowd_app_create(name, &allowed, groups.as_deref(), "test")
                .unwrap()
                .1
        };
        passwords.insert("bitbucket", create("bitbucket", &["127.0.0.1", "::1"], None));
        passwords.insert("scoped", create("scoped", &["127.0.0.0/8"], Some(&["Developers"])));
        passwords.insert("office", create("office", &["192.0.2.0/24"], None));
        let (base, trusting_task) = serve(&world, "roster.toml", TRUSTING).await;
        let (untrusting, untrusting_task) = serve(&world, "untrusting.toml", "").await;
        let tasks = vec![trusting_task, untrusting_task];
        CrowdWorld {
            world,
            base,
            untrusting,
            http: reqwest::Client::new(),
            passwords,
            tasks,
        }
    }

    fn store(&self) -> &Arc<roster_store::Store> {
        &self.world.store
    }

    /// A request to `{API}{path}` as application `app`, asking for XML as Crowd's client does.
    fn req(&self, app: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.req_at(&self.base, app, method, path)
    }

    fn req_at(&self, base: &str, app: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{base}{API}{path}"))
            .basic_auth(app, Some(&self.passwords[app]))
            .header("accept", "application/xml")
            .header("x-atlassian-token", "no-check")
    }

    async fn send(&self, r: reqwest::RequestBuilder) -> Answer {
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        Answer { status, headers, text }
    }

    async fn get(&self, app: &str, path: &str) -> Answer {
        self.send(self.req(app, Method::GET, path)).await
    }

    /// `POST /search` with a restriction body, as `RestCrowdClient` sends it.
    async fn search(&self, app: &str, query: &str, restriction: &str) -> Answer {
        self.send(
            self.req(app, Method::POST, &format!("/search?{query}"))
                .header("content-type", "application/xml; charset=UTF-8")
                .body(restriction.to_string()),
        )
        .await
    }
}

const NULL_RESTRICTION: &str =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><null-search-restriction/>";

fn assert_crowd_headers(a: &Answer, what: &str) {
    assert!(
        a.header("x-embedded-crowd-version")
            .is_some_and(|v| v.starts_with("Roster/")),
        "{what} ({}) lacks X-Embedded-Crowd-Version: {:?}",
        a.status,
        a.headers
    );
    assert_eq!(a.header("cache-control"), Some("no-cache"), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sync_reads_every_user_group_and_membership_and_answers_carry_crowds_headers() {
    let w = CrowdWorld::start().await;

    // Full sync, step 2: one request, -1, never truncated; every user with <key> and <active>.
    let users = w
        .search(
            "bitbucket",
            "entity-type=user&start-index=0&max-results=-1&expand=user",
            NULL_RESTRICTION,
        )
        .await;
    assert_eq!(users.status, 200, "{}", users.text);
    assert_crowd_headers(&users, "search");
    let doc = users.doc();
    let list: Vec<_> = doc
        .root_element()
        .children()
        .filter(roxmltree::Node::is_element)
        .collect();
    assert_eq!(list.len(), USERS + 1, "every served user, across keyset pages");
    let mut keys = BTreeSet::new();
    for u in &list {
        assert!(keys.insert(child_text(*u, "key")), "keys are unique");
        let active = child_text(*u, "active");
        let expected = if u.attribute("name") == Some("user00001") {
            "false"
        } else {
            "true"
        };
        assert_eq!(active, expected, "{:?}", u.attribute("name"));
        assert!(child_text(*u, "created-date").ends_with('Z'));
        assert!(child(*u, "attributes").is_none(), "attributes only when expanded");
    }
    let listed = names(&doc);
    let mut sorted = listed.clone();
    sorted.sort_by_key(|n| n.to_lowercase());
    assert_eq!(listed, sorted, "ordered by name");

    // The default is 1,000; start-index and max-results page.
    let default = w
        .search("bitbucket", "entity-type=user&expand=user", NULL_RESTRICTION)
        .await;
    assert_eq!(names(&default.doc()).len(), 1000);
    let page = w
        .search(
            "bitbucket",
            "entity-type=user&start-index=1000&max-results=3",
            NULL_RESTRICTION,
        )
        .await;
    assert_eq!(names(&page.doc()), &listed[1000..1003]);

    // With attributes: Roster's records, one value each.
    let with = w
        .search(
            "bitbucket",
            "entity-type=user&start-index=0&max-results=2&expand=user,attributes",
            NULL_RESTRICTION,
        )
        .await;
    let doc = with.doc();
    let first = doc
        .root_element()
        .children()
        .find(|u| u.attribute("name") == Some("user00000"))
        .unwrap();
    let attr = child(child(first, "attributes").unwrap(), "attribute").unwrap();
    assert_eq!(attr.attribute("name"), Some("roster.records"));
    let values: Vec<&str> = attr
        .descendants()
        .filter(|n| n.has_tag_name("value"))
        .filter_map(|n| n.text())
        .collect();
    assert_eq!(values.len(), 2, "{}", with.text);
    assert!(values.contains(&"hr:e0"), "{values:?}");

    // What the connection test sends: name NULL, one result.
    let test = w
        .search(
            "bitbucket",
            "entity-type=user&start-index=0&max-results=1&expand=user",
            "<property-search-restriction><property><name>name</name><type>STRING</type></property><match-mode>NULL</match-mode></property-search-restriction>",
        )
        .await;
    assert_eq!(
        (test.status, names(&test.doc()).len()),
        (200, 0),
        "every user has a name"
    );

    // Groups, then the membership document.
    let groups = w
        .search(
            "bitbucket",
            "entity-type=group&start-index=0&max-results=-1&expand=group",
            NULL_RESTRICTION,
        )
        .await;
    let doc = groups.doc();
    assert_eq!(names(&doc), ["admins", "bitbucket-users", "developers"]);
    for g in doc.root_element().children().filter(roxmltree::Node::is_element) {
        assert_eq!(child_text(g, "active"), "true");
        assert_eq!(child_text(g, "type"), "GROUP");
    }
    let starts = w
        .search(
            "bitbucket",
            "entity-type=group&max-results=-1",
            "<boolean-search-restriction boolean-logic=\"or\"><restrictions><property-search-restriction><property><name>name</name><type>STRING</type></property><match-mode>STARTS_WITH</match-mode><value>DEV</value></property-search-restriction><property-search-restriction><property><name>name</name><type>STRING</type></property><match-mode>EXACTLY_MATCHES</match-mode><value>admins</value></property-search-restriction></restrictions></boolean-search-restriction>",
        )
        .await;
    assert_eq!(names(&starts.doc()), ["admins", "developers"]);

    let m = w.get("bitbucket", "/group/membership").await;
    assert_eq!(m.status, 200, "{}", m.text);
    assert_crowd_headers(&m, "membership");
    let doc = m.doc();
    let memberships: Vec<_> = doc
        .root_element()
        .children()
        .filter(roxmltree::Node::is_element)
        .collect();
    assert_eq!(memberships.len(), 3);
    let members_of = |g: &str| -> usize {
        let m = memberships.iter().find(|m| m.attribute("group") == Some(g)).unwrap();
        child(*m, "users")
            .unwrap()
            .children()
            .filter(roxmltree::Node::is_element)
            .count()
    };
    assert_eq!(members_of("admins"), 9, "user00001 left admins");
    assert_eq!(
        members_of("bitbucket-users"),
        USERS,
        "everyone but user00001, plus Mallory"
    );
    assert_eq!(members_of("developers"), USERS.div_ceil(3));

    // Lookups.
    let u = w.get("bitbucket", "/user?username=USER00002").await;
    assert_eq!(u.status, 200, "{}", u.text);
    let doc = u.doc();
    let key = child_text(doc.root_element(), "key");
    assert_eq!(doc.root_element().attribute("name"), Some("user00002"));
    assert_eq!(child_text(doc.root_element(), "first-name"), "User");
    assert_eq!(child_text(doc.root_element(), "last-name"), "Number2");
    let by_key = w.get("bitbucket", &format!("/user?key={key}")).await;
    assert_eq!(by_key.doc().root_element().attribute("name"), Some("user00002"));
    let missing = w.get("bitbucket", "/user?username=nobody").await;
    assert_eq!(missing.status, 404);
    assert_crowd_headers(&missing, "user not found");
    assert_eq!(missing.error().0, "USER_NOT_FOUND");
    let g = w.get("bitbucket", "/group?groupname=Developers").await;
    assert_eq!(g.doc().root_element().attribute("name"), Some("developers"));
    assert_eq!(
        w.get("bitbucket", "/group?groupname=nope").await.error().0,
        "GROUP_NOT_FOUND"
    );
    let direct = w
        .get(
            "bitbucket",
            "/user/group/direct?username=user00012&start-index=0&max-results=-1",
        )
        .await;
    assert_eq!(names(&direct.doc()), ["bitbucket-users", "developers"]);
    let members = w
        .get(
            "bitbucket",
            "/group/user/direct?groupname=admins&start-index=0&max-results=-1&expand=user",
        )
        .await;
    assert_eq!(names(&members.doc()).len(), 9);
    let is_member = w
        .get("bitbucket", "/group/user/direct?groupname=admins&username=user00002")
        .await;
    assert_eq!(is_member.status, 200);
    let not_member = w
        .get("bitbucket", "/group/user/direct?groupname=admins&username=user00001")
        .await;
    assert_eq!(
        (not_member.status, not_member.error().0.as_str()),
        (404, "MEMBERSHIP_NOT_FOUND")
    );
    let children = w
        .get(
            "bitbucket",
            "/group/child-group/direct?groupname=admins&start-index=0&max-results=-1",
        )
        .await;
    assert_eq!((children.status, names(&children.doc()).len()), (200, 0), "flat");

    // JSON when asked for JSON only.
    let json = w
        .send(
            w.http
                .get(format!("{}{API}/user?username=user00002", w.base))
                .basic_auth("bitbucket", Some(&w.passwords["bitbucket"]))
                .header("accept", "application/json"),
        )
        .await;
    let v: serde_json::Value = serde_json::from_str(&json.text).unwrap();
    assert_eq!(
        (v["name"].as_str(), v["active"].as_bool()),
        (Some("user00002"), Some(true))
    );
    let json = w
        .send(
            w.http
                .post(format!(
                    "{}{API}/search?entity-type=user&max-results=-1&expand=user,attributes",
                    w.base
                ))
                .basic_auth("bitbucket", Some(&w.passwords["bitbucket"]))
                .header("accept", "application/json")
                .body(r#"{"restriction-type":"property-search-restriction","property":{"name":"active","type":"BOOLEAN"},"match-mode":"EXACTLY_MATCHES","value":"false"}"#),
        )
        .await;
    assert_eq!(json.status, 200, "{}", json.text);
    let v: serde_json::Value = serde_json::from_str(&json.text).unwrap();
    let users = v["users"].as_array().unwrap();
    assert_eq!(users.len(), 1, "the one inactive user: {}", json.text);
    assert_eq!(users[0]["name"], "user00001");
    assert_eq!(users[0]["attributes"]["attributes"][0]["name"], "roster.records");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_wants_an_applications_password_and_one_of_its_addresses() {
    let w = CrowdWorld::start().await;
    let url = format!("{}{API}/user?username=user00002", w.base);

    // No credentials, a wrong password, an unknown application, a malformed header: 401 with
    // the challenge and a text body.
    for r in [
        w.http.get(&url),
        w.http.get(&url).basic_auth("bitbucket", Some("wrong")),
        w.http.get(&url).basic_auth("jira", Some(&w.passwords["bitbucket"])),
        w.http.get(&url).header("authorization", "Basic !!"),
    ] {
        let a = w.send(r).await;
        assert_eq!(a.status, 401, "{}", a.text);
        assert_crowd_headers(&a, "401");
        assert_eq!(a.header("www-authenticate"), Some("BASIC realm=\"Crowd REST Service\""));
        assert!(a.text.starts_with("Application failed to authenticate"), "{}", a.text);
    }

    // `office` may call only from 192.0.2.0/24: the loopback peer is refused…
    let a = w.get("office", "/user?username=user00002").await;
    assert_eq!(a.status, 403, "{}", a.text);
    assert_crowd_headers(&a, "403");
    assert!(a.text.contains("127.0.0.1"), "{}", a.text);
    // …a client behind the trusted loopback proxy is let through…
    let via = w
        .send(
            w.req("office", Method::GET, "/user?username=user00002")
                .header("x-forwarded-for", "192.0.2.40"),
        )
        .await;
    assert_eq!(via.status, 200, "{}", via.text);
    // …but the right-most untrusted hop counts, not what the client wrote to the left of it…
    let spoofed = w
        .send(
            w.req("office", Method::GET, "/user?username=user00002")
                .header("x-forwarded-for", "192.0.2.40, 203.0.113.9"),
        )
        .await;
    assert_eq!(spoofed.status, 403, "{}", spoofed.text);
    // …and from a peer that is not a trusted proxy, X-Forwarded-For is not believed.
    let untrusted = w
        .send(
            w.req_at(&w.untrusting, "office", Method::GET, "/user?username=user00002")
                .header("x-forwarded-for", "192.0.2.40"),
        )
        .await;
    assert_eq!(untrusted.status, 403, "{}", untrusted.text);
    let bitbucket = w
        .send(w.req_at(&w.untrusting, "bitbucket", Method::GET, "/user?username=user00002"))
        .await;
    assert_eq!(bitbucket.status, 200, "{}", bitbucket.text);

    // A use is recorded (at most once a minute).
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        w.store()
            .crowd_app("bitbucket")
            .unwrap()
            .unwrap()
            .last_used_at
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_passwords_and_mistakes_are_refused_in_crowds_terms() {
    let w = CrowdWorld::start().await;
    let before = w.store().served_state().unwrap();

    for (method, path, body) in [
        (Method::POST, "/user", "<user name=\"eve\"><active>true</active></user>"),
        (
            Method::PUT,
            "/user?username=user00002",
            "<user name=\"user00002\"><active>false</active></user>",
        ),
        (Method::DELETE, "/user?username=user00002", ""),
        (
            Method::PUT,
            "/user/password?username=user00002",
            "<password><value>x</value></password>",
        ),
        (
            Method::POST,
            "/user/rename?username=user00002",
            "<new-name>x</new-name>",
        ),
        (
            Method::POST,
            "/group",
            "<group name=\"g\"><type>GROUP</type><active>true</active></group>",
        ),
        (Method::DELETE, "/group?groupname=admins", ""),
        (
            Method::POST,
            "/group/user/direct?groupname=admins",
            "<user name=\"user00100\"/>",
        ),
        (
            Method::DELETE,
            "/group/user/direct?groupname=admins&username=user00002",
            "",
        ),
        (
            Method::POST,
            "/user/group/direct?username=user00100",
            "<group name=\"admins\"/>",
        ),
    ] {
        let a = w
            .send(
                w.req("bitbucket", method.clone(), path)
                    .header("content-type", "application/xml")
                    .body(body),
            )
            .await;
        assert_eq!(a.status, 403, "{method} {path}: {}", a.text);
        assert_crowd_headers(&a, "write");
        assert_eq!(a.error().0, "APPLICATION_PERMISSION_DENIED", "{method} {path}");
    }
    assert_eq!(w.store().served_state().unwrap(), before, "nothing changed");

    let auth = w
        .send(
            w.req("bitbucket", Method::POST, "/authentication?username=user00002")
                .body("<password><value>secret</value></password>"),
        )
        .await;
    assert_eq!(
        (auth.status, auth.error().0.as_str()),
        (400, "INVALID_USER_AUTHENTICATION")
    );
    let notify = w
        .send(
            w.req("bitbucket", Method::POST, "/authentication/notify?username=user00002")
                .body("<password/>"),
        )
        .await;
    assert_eq!(notify.status, 404);
    notify.error();

    // A malformed restriction is the client's mistake, named.
    for (body, says) in [
        ("<null-search-restriction", "not well-formed XML"),
        (
            "<search-everything/>",
            "<search-everything> is not a search restriction",
        ),
        (
            "<property-search-restriction><property><name>email</name></property><match-mode>SOUNDS_LIKE</match-mode><value>x</value></property-search-restriction>",
            "SOUNDS_LIKE",
        ),
    ] {
        let a = w.search("bitbucket", "entity-type=user&max-results=-1", body).await;
        assert_eq!(a.status, 400, "{body}: {}", a.text);
        let (reason, message) = a.error();
        assert_eq!(reason, "ILLEGAL_ARGUMENT");
        assert!(message.contains(says), "{message} should name {says}");
    }
    for (query, says) in [
        ("max-results=-1", "entity-type"),
        ("entity-type=role", "role"),
        ("entity-type=user&max-results=-2", "max-results"),
        ("entity-type=user&start-index=x", "start-index"),
    ] {
        let a = w.search("bitbucket", query, NULL_RESTRICTION).await;
        assert_eq!(a.status, 400, "{query}");
        assert!(a.error().1.contains(says), "{query}: {}", a.text);
    }
    let missing = w.get("bitbucket", "/user").await;
    assert_eq!((missing.status, missing.error().0.as_str()), (400, "ILLEGAL_ARGUMENT"));
    let cql = w
        .get("bitbucket", "/search?entity-type=user&restriction=email%3Dx")
        .await;
    assert_eq!(cql.status, 405);
    assert_crowd_headers(&cql, "405");
    cql.error();
    let nothing = w.get("bitbucket", "/no/such/thing").await;
    assert_eq!(nothing.status, 404);
    assert_crowd_headers(&nothing, "unknown path");
    nothing.error();
    let other_version = w
        .send(w.http.get(format!("{}/rest/usermanagement/2/user", w.base)))
        .await;
    assert_eq!(other_version.status, 404);
    assert_crowd_headers(&other_version, "another API version");
    other_version.error();
    let too_big = w.search("bitbucket", "entity-type=user", &"x".repeat(100 * 1024)).await;
    assert_eq!(too_big.status, 413);
    assert_crowd_headers(&too_big, "413");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_since_a_token_show_what_changed_and_an_unknown_token_is_gone() {
    let w = CrowdWorld::start().await;
    let current = w.get("bitbucket", "/event").await;
    assert_eq!(current.status, 200, "{}", current.text);
    assert_crowd_headers(&current, "event");
    let doc = current.doc();
    let root = doc.root_element();
    assert_eq!(root.attribute("incrementalSynchronisationAvailable"), Some("true"));
    let token = root.attribute("newEventToken").unwrap().to_string();
    // The scoped application's view starts at the same place.
    let scoped_token = w
        .get("scoped", "/event")
        .await
        .doc()
        .root_element()
        .attribute("newEventToken")
        .unwrap()
        .to_string();

    let before = w.get("bitbucket", "/user?username=user00002").await;
    let key_before = child_text(before.doc().root_element(), "key");
    let store = w.store();
    store.group("ops");
    store.user("newbie", "New Bie", "newbie@example.com", &[("hr", "n")]);
    store.add("developers", vec!["newbie".into()]);
    store.add("ops", vec!["newbie".into()]);
    store.rename("user00002", "user00002-renamed");

    let since = w.get("bitbucket", &format!("/event/{token}")).await;
    assert_eq!(since.status, 200, "{}", since.text);
    let doc = since.doc();
    let root = doc.root_element();
    let next = root.attribute("newEventToken").unwrap();
    assert_ne!(next, token);
    let events: Vec<(String, String, String)> = root
        .children()
        .filter(roxmltree::Node::is_element)
        .map(|e| {
            let op = child_text(e, "operation");
            let subject = e
                .children()
                .find(|c| c.has_tag_name("user") || c.has_tag_name("group") || c.has_tag_name("childUser"))
                .and_then(|c| c.attribute("name"))
                .unwrap_or("")
                .to_string();
            (e.tag_name().name().to_string(), op, subject)
        })
        .collect();
    let ev = |kind: &str, op: &str, name: &str| (kind.to_string(), op.to_string(), name.to_string());
    assert_eq!(
        events,
        [
            ev("groupEvent", "CREATED", "ops"),
            ev("userEvent", "CREATED", "newbie"),
            ev("userMembershipEvent", "CREATED", "newbie"),
            ev("userMembershipEvent", "CREATED", "newbie"),
            ev("userEvent", "UPDATED", "user00002-renamed"),
        ],
        "{}",
        since.text
    );
    // The renamed user keeps the key a client follows renames by.
    let renamed = root
        .children()
        .rfind(|e| e.has_tag_name("userEvent"))
        .and_then(|e| child(e, "user"))
        .unwrap();
    assert_eq!(child_text(renamed, "key"), key_before);
    // Nothing since the new token.
    let after = w.get("bitbucket", &format!("/event/{next}")).await;
    assert_eq!(
        after
            .doc()
            .root_element()
            .children()
            .filter(roxmltree::Node::is_element)
            .count(),
        0
    );

    // The scoped application sees developers only: not `ops`, not the ops membership, but
    // newbie (who joined developers) comes with its entity, as it is now, before the membership.
    let scoped = w.get("scoped", &format!("/event/{scoped_token}")).await;
    let doc = scoped.doc();
    let kinds: Vec<String> = doc
        .root_element()
        .children()
        .filter(roxmltree::Node::is_element)
        .map(|e| e.tag_name().name().to_string())
        .collect();
    assert!(!scoped.text.contains("\"ops\""), "{}", scoped.text);
    assert_eq!(
        kinds,
        ["userEvent", "userMembershipEvent"],
        "newbie as now (once), the developers membership; user00002 is not a developer: {}",
        scoped.text
    );

    // Tokens the log cannot continue from: 410 EVENT_TOKEN_EXPIRED.
    for bad in ["nonsense", "0.0", "x.1"] {
        let a = w.get("bitbucket", &format!("/event/{bad}")).await;
        assert_eq!(a.status, 410, "{bad}: {}", a.text);
        assert_crowd_headers(&a, "410");
        assert_eq!(a.error().0, "EVENT_TOKEN_EXPIRED");
    }
    store.served_prune_events(i64::MAX).unwrap();
    let pruned = w.get("bitbucket", &format!("/event/{token}")).await;
    assert_eq!((pruned.status, pruned.error().0.as_str()), (410, "EVENT_TOKEN_EXPIRED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_limited_to_some_groups_sees_only_them_and_their_members() {
    let w = CrowdWorld::start().await;
    let groups = w
        .search(
            "scoped",
            "entity-type=group&max-results=-1&expand=group",
            NULL_RESTRICTION,
        )
        .await;
    assert_eq!(names(&groups.doc()), ["developers"]);
    let users = w
        .search("scoped", "entity-type=user&max-results=-1", NULL_RESTRICTION)
        .await;
    let expected: Vec<String> = (0..USERS).step_by(3).map(user_name).collect();
    assert_eq!(names(&users.doc()), expected);
    let m = w.get("scoped", "/group/membership").await;
    let doc = m.doc();
    let groups: Vec<&str> = doc
        .root_element()
        .children()
        .filter_map(|n| n.attribute("group"))
        .collect();
    assert_eq!(groups, ["developers"]);

    assert_eq!(w.get("scoped", "/user?username=user00003").await.status, 200);
    assert_eq!(
        w.get("scoped", "/user?username=user00002").await.error().0,
        "USER_NOT_FOUND"
    );
    assert_eq!(
        w.get("scoped", "/group?groupname=admins").await.error().0,
        "GROUP_NOT_FOUND"
    );
    let of_user = w
        .get("scoped", "/user/group/direct?username=user00003&max-results=-1")
        .await;
    assert_eq!(names(&of_user.doc()), ["developers"]);
    let of_group = w
        .get("scoped", "/group/user/direct?groupname=admins&max-results=-1")
        .await;
    assert_eq!((of_group.status, names(&of_group.doc()).len()), (200, 0));
}

/// The event token an answer carries.
fn token_of(a: &Answer) -> String {
    assert_eq!(a.status, 200, "{}", a.text);
    a.doc().root_element().attribute("newEventToken").unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applications_event_tokens_expire_when_the_groups_it_may_see_change() {
    let w = CrowdWorld::start().await;
    let scoped = w.get("scoped", "/event").await;
    let token = token_of(&scoped);
    // Its tokens continue while its groups stay as they are.
    let next = token_of(&w.get("scoped", &format!("/event/{token}")).await);
    // The administrator lets it see admins too: admins and their members are new to it, and
    // no event says so, so only a full synchronisation brings them; its tokens must be expired.
    w.store()
        .crowd_app_update(
            "scoped",
            &["127.0.0.0/8".to_string()],
            Some(&["Developers".to_string(), "admins".to_string()]),
        )
        .unwrap();
    for t in [&token, &next] {
        let a = w.get("scoped", &format!("/event/{t}")).await;
        assert_eq!(
            (a.status, a.error().0.as_str()),
            (410, "EVENT_TOKEN_EXPIRED"),
            "{t}: {}",
            a.text
        );
    }
    // A token of the new view continues.
    let fresh = token_of(&w.get("scoped", "/event").await);
    assert_eq!(w.get("scoped", &format!("/event/{fresh}")).await.status, 200);
    // Seeing every group is another view again.
    w.store()
        .crowd_app_update("scoped", &["127.0.0.0/8".to_string()], None)
        .unwrap();
    let a = w.get("scoped", &format!("/event/{fresh}")).await;
    assert_eq!(
        (a.status, a.error().0.as_str()),
        (410, "EVENT_TOKEN_EXPIRED"),
        "{}",
        a.text
    );
}

/// `(element, operation, subject)` of each event of an answer to `GET /event/{token}`.
fn event_list(a: &Answer) -> Vec<(String, String, String)> {
    assert_eq!(a.status, 200, "{}", a.text);
    a.doc()
        .root_element()
        .children()
        .filter(roxmltree::Node::is_element)
        .map(|e| {
            let subject = e
                .children()
                .find(|c| c.has_tag_name("user") || c.has_tag_name("group") || c.has_tag_name("childUser"))
                .and_then(|c| c.attribute("name"))
                .unwrap_or("")
                .to_string();
            (e.tag_name().name().to_string(), child_text(e, "operation"), subject)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletions_reach_a_limited_application_as_a_full_sync_would_and_hide_the_rest() {
    let w = CrowdWorld::start().await;
    let token = token_of(&w.get("scoped", "/event").await);
    let all_token = token_of(&w.get("bitbucket", "/event").await);
    let store = w.store();
    // user00002 is no developer: the scoped application never saw them, nor may learn the name.
    store.change(ServedChange::DeleteUser {
        user: "user00002".into(),
    });
    // user00003 is a developer: deleted, and gone from the scoped view.
    store.change(ServedChange::DeleteUser {
        user: "user00003".into(),
    });
    // The developers group goes with its members still in it: a full sync of the scoped
    // application would then hold no user at all, so an incremental one must delete them.
    store.change(ServedChange::DeleteGroup {
        group: "developers".into(),
    });
    let full = w
        .search("scoped", "entity-type=user&max-results=-1", NULL_RESTRICTION)
        .await;
    assert_eq!(names(&full.doc()).len(), 0, "{}", full.text);

    let scoped = w.get("scoped", &format!("/event/{token}")).await;
    assert!(
        !scoped.text.contains("user00002"),
        "a name it may not see: {}",
        scoped.text
    );
    let events = event_list(&scoped);
    let gone: BTreeSet<&str> = events
        .iter()
        .filter(|(k, op, _)| k == "userEvent" && op == "DELETED")
        .map(|(_, _, n)| n.as_str())
        .collect();
    let developers: BTreeSet<String> = (0..USERS).step_by(3).map(user_name).collect();
    assert_eq!(
        gone,
        developers.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        "every developer leaves the scoped view: {}",
        scoped.text
    );
    assert!(
        events.contains(&("groupEvent".into(), "DELETED".into(), "developers".into())),
        "{}",
        scoped.text
    );

    // An application that sees everything hears of both deletions and of the group's end.
    let all = event_list(&w.get("bitbucket", &format!("/event/{all_token}")).await);
    for user in ["user00002", "user00003"] {
        assert!(
            all.contains(&("userEvent".into(), "DELETED".into(), user.into())),
            "{user}: {all:?}"
        );
    }
    assert!(all.contains(&("groupEvent".into(), "DELETED".into(), "developers".into())));
}

/// What a Crowd client's cache holds of the directory: users (lower-case name → (name, key))
/// and memberships (lower-case group, lower-case user).
#[derive(Debug, Default, PartialEq, Eq)]
struct Cache {
    users: std::collections::BTreeMap<String, (String, String)>,
    groups: BTreeSet<String>,
    members: BTreeSet<(String, String)>,
}

impl Cache {
    /// A full synchronisation: users with their keys, groups, the membership document.
    async fn full(w: &CrowdWorld, app: &str) -> Cache {
        let mut c = Cache::default();
        let users = w
            .search(app, "entity-type=user&max-results=-1&expand=user", NULL_RESTRICTION)
            .await;
        for u in users
            .doc()
            .root_element()
            .children()
            .filter(roxmltree::Node::is_element)
        {
            let name = u.attribute("name").unwrap().to_string();
            c.users.insert(name.to_lowercase(), (name, child_text(u, "key")));
        }
        let groups = w
            .search(app, "entity-type=group&max-results=-1", NULL_RESTRICTION)
            .await;
        c.groups = names(&groups.doc()).iter().map(|g| g.to_lowercase()).collect();
        let m = w.get(app, "/group/membership").await;
        for g in m.doc().root_element().children().filter(roxmltree::Node::is_element) {
            let group = g.attribute("group").unwrap().to_lowercase();
            for u in g.descendants().filter(|n| n.has_tag_name("user")) {
                c.members
                    .insert((group.clone(), u.attribute("name").unwrap().to_lowercase()));
            }
        }
        c
    }

    /// Applies an answer of `GET /event/{token}` as Crowd's cache refresher does (crowd-rest.md
    /// §6): users found by key before name; memberships of users or groups it does not hold
    /// are ignored.
    fn apply(&mut self, a: &Answer) {
        assert_eq!(a.status, 200, "{}", a.text);
        let doc = a.doc();
        for e in doc.root_element().children().filter(roxmltree::Node::is_element) {
            let op = child_text(e, "operation");
            match e.tag_name().name() {
                "userEvent" => {
                    let u = child(e, "user").unwrap();
                    let name = u.attribute("name").unwrap().to_string();
                    if op == "DELETED" {
                        self.users.remove(&name.to_lowercase());
                        self.members.retain(|(_, m)| *m != name.to_lowercase());
                        continue;
                    }
                    let key = child_text(u, "key");
                    let held = self.users.iter().find(|(_, (_, k))| *k == key).map(|(l, _)| l.clone());
                    if let Some(old) = held.filter(|old| *old != name.to_lowercase()) {
                        self.users.remove(&old);
                        let moved: Vec<_> = self.members.iter().filter(|(_, m)| *m == old).cloned().collect();
                        for (g, m) in moved {
                            self.members.remove(&(g.clone(), m));
                            self.members.insert((g, name.to_lowercase()));
                        }
                    }
                    self.users.insert(name.to_lowercase(), (name, key));
                }
                "groupEvent" => {
                    let g = child(e, "group").unwrap().attribute("name").unwrap().to_lowercase();
                    if op == "DELETED" {
                        self.groups.remove(&g);
                        self.members.retain(|(x, _)| *x != g);
                    } else {
                        self.groups.insert(g);
                    }
                }
                "userMembershipEvent" => {
                    let user = child(e, "childUser").unwrap().attribute("name").unwrap().to_lowercase();
                    let parents: Vec<String> = child(e, "parentGroups")
                        .unwrap()
                        .children()
                        .filter_map(|g| g.attribute("name"))
                        .map(str::to_lowercase)
                        .collect();
                    if !self.users.contains_key(&user) {
                        continue;
                    }
                    if op == "UPDATED" {
                        self.members.retain(|(_, m)| *m != user);
                    }
                    for g in parents.into_iter().filter(|g| self.groups.contains(g)) {
                        if op == "DELETED" {
                            self.members.remove(&(g, user.clone()));
                        } else {
                            self.members.insert((g, user.clone()));
                        }
                    }
                }
                other => panic!("unexpected event <{other}>"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limited_applications_incremental_sync_ends_where_a_full_one_does_through_renames() {
    let mut w = CrowdWorld::start().await;
    let pair = w
        .store()
        .crowd_app_create(
            "pair",
            &["127.0.0.0/8".to_string()],
            Some(&["developers".to_string(), "admins".to_string()]),
            "test",
        )
        .unwrap()
        .1;
    w.passwords.insert("pair", pair);
    let token = token_of(&w.get("pair", "/event").await);
    let mut cache = Cache::full(&w, "pair").await;
    let store = w.store();
    let apply = |c: ServedChange| {
        store.served_apply(&c).unwrap();
    };
    let rename = |from: &str, to: &str| ServedChange::RenameUser {
        from: from.into(),
        to: to.into(),
        records: vec![],
    };
    // A developer and admin leaves admins, then is renamed: still a developer, same key.
    apply(ServedChange::RemoveMember {
        group: "admins".into(),
        user: "user00000".into(),
    });
    apply(rename("user00000", "zero"));
    // A newcomer joins developers, then is renamed.
    apply(ServedChange::CreateUser {
        user: "fresh".into(),
        display_name: "Fresh Start".into(),
        email: "fresh@example.com".into(),
        records: vec![],
    });
    apply(ServedChange::AddMembers {
        group: "developers".into(),
        users: vec!["fresh".into()],
    });
    apply(rename("fresh", "fresh2"));
    // A developer is renamed, then leaves developers: out of view.
    apply(rename("user00012", "twelve"));
    apply(ServedChange::RemoveMember {
        group: "developers".into(),
        user: "twelve".into(),
    });
    // Someone the application never saw is renamed: it hears nothing of them.
    apply(rename("user00011", "eleven"));

    let since = w.get("pair", &format!("/event/{token}")).await;
    assert!(
        !since.text.contains("eleven") && !since.text.contains("user00011"),
        "{}",
        since.text
    );
    cache.apply(&since);
    let full = Cache::full(&w, "pair").await;
    assert!(full.users.contains_key("zero") && full.users.contains_key("fresh2"));
    let diff = |a: &Cache, b: &Cache| {
        (
            a.users
                .iter()
                .filter(|u| !b.users.contains_key(u.0))
                .map(|u| u.0.clone())
                .collect::<Vec<_>>(),
            a.members.difference(&b.members).cloned().collect::<Vec<_>>(),
        )
    };
    assert!(
        cache == full,
        "incremental has more {:?}, full has more {:?}; events: {}",
        diff(&cache, &full),
        diff(&full, &cache),
        since.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limited_application_far_behind_the_log_ends_where_a_full_sync_does() {
    let w = CrowdWorld::start().await;
    let scoped = token_of(&w.get("scoped", "/event").await);
    let all = token_of(&w.get("bitbucket", "/event").await);
    let mut cache = Cache::full(&w, "scoped").await;
    let store = w.store();
    // A newcomer joins developers; more events follow than one answer holds; then the newcomer
    // is renamed. Who joined in the first answer is only known from the last.
    store.user("late", "Late Comer", "late@example.com", &[]);
    store.add("developers", vec!["late".into()]);
    let everyone: Vec<String> = (0..USERS).map(user_name).collect();
    for g in ["big", "bigger", "biggest"] {
        store.group(g);
        store.add(g, everyone.clone());
    }
    store.rename("late", "later");
    // Followed batch by batch as Crowd's client does, or sent to a full synchronisation (410):
    // either way it ends where a full synchronisation does.
    let mut token = scoped;
    loop {
        let a = w.get("scoped", &format!("/event/{token}")).await;
        if a.status == 410 {
            cache = Cache::full(&w, "scoped").await;
            break;
        }
        let next = token_of(&a);
        cache.apply(&a);
        if next == token {
            break;
        }
        token = next;
    }
    let full = Cache::full(&w, "scoped").await;
    assert!(full.members.contains(&("developers".into(), "later".into())));
    assert!(
        cache == full,
        "the incremental sync lacks {:?}",
        full.members.difference(&cache.members).collect::<Vec<_>>()
    );
    // One that sees everything reads the log in batches.
    let first = w.get("bitbucket", &format!("/event/{all}")).await;
    let next = token_of(&first);
    let second = w.get("bitbucket", &format!("/event/{next}")).await;
    assert_eq!(
        event_list(&first).len() + event_list(&second).len(),
        2 + 3 + 3 * USERS + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_in_a_display_name_is_escaped() {
    let w = CrowdWorld::start().await;
    let a = w.get("bitbucket", "/user?username=mallory").await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(!a.text.contains("<script>"), "{}", a.text);
    assert!(a.text.contains("&lt;script&gt;"), "{}", a.text);
    assert_eq!(
        child_text(a.doc().root_element(), "display-name"),
        "<script>alert('x')</script> & Co"
    );
    let all = w
        .search(
            "bitbucket",
            "entity-type=user&max-results=-1&expand=user",
            NULL_RESTRICTION,
        )
        .await;
    assert!(!all.text.contains("<script>"));
    all.doc();
}

/// The resident set of this process, in KiB (Linux).
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// 100,000 users in one answer (`max-results=-1`) and the membership document, read chunk by
/// chunk: the answer is produced from keyset pages as it is read, so the process does not grow
/// by the answer's size (34 MiB of XML for the users). Slow to seed (one transaction per user): run with
/// `cargo test -p roster --test service crowd_100k -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn crowd_100k_users_are_streamed_in_flat_memory() {
    const MANY: usize = 100_000;
    let world = World::new(&Directory::generate(4, 2, 1), bitbucket()).await;
    let store = world.store.clone();
    let seeding = std::time::Instant::now();
    store.group("everyone");
    for i in 0..MANY {
        store.user(
            format!("person{i:06}"),
            format!("Person Number{i}"),
            format!("person{i:06}@example.com"),
            &[("hr", &format!("e{i}"))],
        );
    }
    store.add("everyone", (0..MANY).map(|i| format!("person{i:06}")).collect());
    println!("seeded {MANY} users in {:?}", seeding.elapsed());
    let password = store
        .crowd_app_create("bitbucket", &["127.0.0.1".into()], None, "test")
        .unwrap()
        .1;
    let (base, task) = serve(&world, "roster.toml", "").await;
    let http = reqwest::Client::new();
    for (what, request) in [
        (
            "users",
            http.post(format!(
                "{base}{API}/search?entity-type=user&start-index=0&max-results=-1&expand=user"
            ))
            .body(NULL_RESTRICTION),
        ),
        ("memberships", http.get(format!("{base}{API}/group/membership"))),
    ] {
        let started = std::time::Instant::now();
        let before = rss_kib().unwrap_or(0);
        let mut resp = request.basic_auth("bitbucket", Some(&password)).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let (mut bytes, mut users, mut peak, mut tail) = (0usize, 0usize, before, String::new());
        while let Some(chunk) = resp.chunk().await.unwrap() {
            bytes += chunk.len();
            // Count `<user name=` across chunk boundaries.
            let text = format!("{tail}{}", String::from_utf8_lossy(&chunk));
            users += text.matches("<user name=").count();
            let keep = text.len().min(16);
            let mut cut = text.len() - keep;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            tail = text[cut..].to_string();
            users -= tail.matches("<user name=").count();
            peak = peak.max(rss_kib().unwrap_or(0));
        }
        users += tail.matches("<user name=").count();
        let grew = peak.saturating_sub(before);
        println!(
            "{what}: {users} users, {} KiB in {:?}; the process grew by {grew} KiB while reading",
            bytes / 1024,
            started.elapsed()
        );
        assert_eq!(users, MANY, "{what}: every user, never truncated");
        // Held whole, the users' answer alone would be 34 MiB; streamed, the process holds a few
        // chunks and a keyset page (for the membership document: one group's member names).
        assert!(
            grew < 16 * 1024,
            "{what}: the process grew by {grew} KiB for a {} KiB answer: it is held, not streamed",
            bytes / 1024
        );
    }
    task.abort();
}

/// Roster's own `crowd` connector — an independent reader of Crowd's API, written against
/// Jira's and Crowd's answers — reads the served directory through the endpoint, in full and
/// then incrementally from the event log, and the run brings Bitbucket to it: the XML, the
/// paging, the membership document and the events are what a Crowd client reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roster_reads_its_own_crowd_endpoint_with_the_crowd_connector() {
    use common::crowd::fetch_of;
    use common::world::{SourceWorld, groups_of};
    use roster_sim::scenario::CrowdSource;

    let mut w: SourceWorld<(), CrowdSource> =
        SourceWorld::assemble(&[("crowd", "crowd.wasm")], (), bitbucket(), 11, |_, _| CrowdSource {
            application: "roster-reader".into(),
            settings: "use_nested_groups = false\nuse_incremental_sync = true".into(),
            ..CrowdSource::default()
        })
        .await;
    let store = w.store.clone();
    for g in ["developers", "ops"] {
        store.group(g);
    }
    for i in 0..40 {
        store.user(
            format!("dev{i:02}"),
            format!("Dev Number{i}"),
            format!("dev{i:02}@example.com"),
            &[("hr", &format!("{i}"))],
        );
    }
    store.add("developers", (0..30).map(|i| format!("dev{i:02}")).collect());
    store.add("ops", (25..40).map(|i| format!("dev{i:02}")).collect());
    store
        .served_apply(&ServedChange::Deactivate {
            user: "dev39".into(),
            leave: vec!["ops".into()],
        })
        .unwrap();
    w.source.password = store
        .crowd_app_create("roster-reader", &["127.0.0.0/8".into()], None, "test")
        .unwrap()
        .1;

    // The endpoint's address goes into the very configuration the service is made from.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    w.source.server_url = format!("http://{}", listener.local_addr().unwrap());
    let path = w.rt.dir.path().join("roster.toml");
    std::fs::write(&path, w.config_text()).unwrap();
    let service = Service::new(store.clone(), w.rt.runtime.clone(), &path, common::kinds()).unwrap();
    let (app, _) = roster_serve::api::routes(service);
    let task = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await;
    });

    let check = w.check().await;
    assert!(check.ok, "{check:?}");
    let full = w.sync().await;
    assert_eq!(full.state, "succeeded", "{:?}", full.summary.warnings);
    let fetched = fetch_of(&full);
    assert_eq!((fetched.mode.as_str(), fetched.users), ("full", 40), "{fetched:?}");
    {
        let bb = w.bb.lock();
        for i in 0..39 {
            let u = bb
                .users()
                .get(&format!("dev{i:02}"))
                .unwrap_or_else(|| panic!("dev{i:02} in Bitbucket"));
            assert_eq!(
                (u.display_name.clone(), u.email.clone()),
                (format!("Dev Number{i}"), format!("dev{i:02}@example.com"))
            );
        }
        assert!(!bb.users().contains_key("dev39"), "an inactive user is not provisioned");
    }
    assert!(groups_of(&w.bb, "dev27").contains(&"developers".to_string()));
    assert!(groups_of(&w.bb, "dev27").contains(&"ops".to_string()));

    // Changes, read from the event log: a new member, a rename (followed by its key), one
    // leaving a group.
    store.user("newbie", "New Bie", "newbie@example.com", &[]);
    store.add("ops", vec!["newbie".into()]);
    store
        .served_apply(&ServedChange::RemoveMember {
            group: "developers".into(),
            user: "dev27".into(),
        })
        .unwrap();
    store
        .served_apply(&ServedChange::UpdateUser {
            user: "dev05".into(),
            display_name: "Dev Renamed".into(),
            email: "dev05@example.com".into(),
        })
        .unwrap();
    store
        .served_apply(&ServedChange::RenameUser {
            from: "dev06".into(),
            to: "dev06-new".into(),
            records: vec![("hr".into(), "6".into())],
        })
        .unwrap();
    let incremental = w.sync_incremental().await;
    assert_eq!(incremental.state, "succeeded", "{:?}", incremental.summary.warnings);
    let fetched = fetch_of(&incremental);
    assert_eq!(
        (fetched.mode.as_str(), &fetched.fell_back),
        ("incremental", &None),
        "{fetched:?}"
    );
    assert_eq!(groups_of(&w.bb, "newbie"), ["bitbucket-users", "ops"]);
    assert!(!groups_of(&w.bb, "dev27").contains(&"developers".to_string()));
    assert_eq!(w.bb.lock().users()["dev05"].display_name, "Dev Renamed");
    assert!(!w.bb.lock().users().contains_key("dev06"), "renamed, not copied");
    assert_eq!(
        groups_of(&w.bb, "dev06-new"),
        ["bitbucket-users", "developers"],
        "its groups kept"
    );
    task.abort();
}

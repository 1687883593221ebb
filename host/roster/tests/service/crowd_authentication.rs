//! `POST /authentication` on the Crowd endpoint (crowd-rest.md §6 row 6, §7 point 9), end to
//! end: a real slapd read by the `ldap` source and a `file` source, `roster sync` into a
//! `crowd-directory` target, then `roster serve` asked as Bitbucket asks on every login. The
//! password is checked by a bind as the person's entry; the file source cannot check one.

use std::path::Path;

use roster_sim::directory::{DirUser, Directory};
use roster_sim::scenario::{LdapSource, ldap_source_config};
use roster_sim::slapd::{SizeLimit, Slapd};

use crate::common::crowd_roster::RosterCrowd;

const API: &str = "/rest/usermanagement/1";
const LICENSED: &str = "bitbucket-users";
const PASSWORD: &str = "c0rrect horse battery";

/// An answer: status and body.
struct Answer {
    status: u16,
    text: String,
}

impl Answer {
    /// `(reason, message)` of an `<error>` entity.
    fn error(&self) -> (String, String) {
        let doc = roxmltree::Document::parse(&self.text).unwrap_or_else(|e| panic!("not XML ({e}): {}", self.text));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "error", "{}", self.text);
        let text = |tag: &str| {
            root.children()
                .find(|c| c.has_tag_name(tag))
                .and_then(|c| c.text())
                .unwrap_or("")
                .to_string()
        };
        (text("reason"), text("message"))
    }

    fn reason(&self) -> String {
        self.error().0
    }
}

async fn login(r: &RosterCrowd, app: (&str, &str), user: &str, body: &str, content_type: &str) -> Answer {
    let resp = reqwest::Client::new()
        .post(format!("{}{API}/authentication", r.url))
        .query(&[("username", user)])
        .basic_auth(app.0, Some(app.1))
        .header("Accept", "application/xml")
        .header("Content-Type", content_type)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    Answer {
        status: resp.status().as_u16(),
        text: resp.text().await.unwrap(),
    }
}

fn xml_password(p: &str) -> String {
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><password><value>{p}</value></password>")
}

async fn login_xml(r: &RosterCrowd, user: &str, password: &str) -> Answer {
    login(
        r,
        (&r.app, &r.password),
        user,
        &xml_password(password),
        "application/xml",
    )
    .await
}

async fn get_user(r: &RosterCrowd, user: &str) -> Answer {
    let resp = reqwest::Client::new()
        .get(format!("{}{API}/user", r.url))
        .query(&[("username", user)])
        .basic_auth(&r.app, Some(&r.password))
        .header("Accept", "application/xml")
        .send()
        .await
        .unwrap();
    Answer {
        status: resp.status().as_u16(),
        text: resp.text().await.unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_authentication_binds_as_the_ldap_user_and_refuses_what_it_cannot_verify() {
    let d = Directory::generate(20, 2, 1);
    let slapd = tokio::task::spawn_blocking({
        let d = d.clone();
        move || {
            let s = Slapd::start(SizeLimit::Unlimited).expect("slapd starts");
            s.load(&d).expect("the directory loads");
            s
        }
    })
    .await
    .unwrap();
    let alice = d.users[0].username.clone();
    let leaver = d.users[1].username.clone();
    let nopass = d.users[2].username.clone();
    for u in [&alice, &leaver] {
        slapd
            .set_attribute(&Slapd::user_dn(u), "userPassword", &[PASSWORD])
            .unwrap();
    }

    // A second source whose people log in by single sign-on: the `file` connector.
    let dir = crate::common::data_dir_with(&["ldap", "file"]);
    let hr = dir.path().join("hr");
    std::fs::create_dir_all(&hr).unwrap();
    Directory {
        users: vec![DirUser {
            id: "hr-1".into(),
            username: "sso-person".into(),
            email: "sso-person@example.net".into(),
            display_name: "Sso Person".into(),
            active: true,
        }],
        ..Directory::default()
    }
    .write_json(&hr.join("directory.json"))
    .unwrap();
    let ldap = ldap_source_config(&LdapSource::for_server(&slapd), "", "");
    let ldap = ldap.split("[target]").next().unwrap();
    std::fs::write(
        dir.path().join("roster.toml"),
        format!(
            "{ldap}\n[[source]]\nid = \"hr\"\nplugin = \"file\"\npriority = 50\nfiles = \"{}\"\nsettings = {{ path = \"directory.json\" }}\n\n\
             [target]\nkind = \"crowd-directory\"\nlicensed_groups = [\"{LICENSED}\"]\ndefault_groups = [\"{LICENSED}\"]\n",
            hr.display()
        ),
    )
    .unwrap();
    let data = dir.path().to_path_buf();
    let sync = move || crate::common::roster_json(&data, &["sync"]).1;
    let report = tokio::task::spawn_blocking(sync.clone()).await.unwrap();
    assert_eq!(report["state"], "succeeded", "{report:#}");
    let r = tokio::task::spawn_blocking(move || {
        RosterCrowd::serve(Path::new(env!("CARGO_BIN_EXE_roster")), dir, "bitbucket", None)
    })
    .await
    .unwrap();

    // The right password: 200 with the user exactly as GET /user shows it.
    let ok = login_xml(&r, &alice, PASSWORD).await;
    assert_eq!(ok.status, 200, "{}\n{}", ok.text, r.log());
    assert_eq!(ok.text, get_user(&r, &alice).await.text);
    assert!(ok.text.contains(&format!("name=\"{alice}\"")), "{}", ok.text);
    // Any case of the name, and JSON for other clients.
    let json = login(
        &r,
        (&r.app, &r.password),
        &alice.to_uppercase(),
        &format!("{{\"value\":\"{PASSWORD}\"}}"),
        "application/json",
    )
    .await;
    assert_eq!(json.status, 200, "{}", json.text);

    // A wrong password, and an empty one (slapd would take a DN with an empty password for an
    // unauthenticated bind; Roster never sends it).
    let wrong = login_xml(&r, &alice, "not-it").await;
    assert_eq!(
        (wrong.status, wrong.reason().as_str()),
        (400, "INVALID_USER_AUTHENTICATION")
    );
    let empty = login_xml(&r, &alice, "").await;
    assert_eq!(
        (empty.status, empty.reason().as_str()),
        (400, "INVALID_USER_AUTHENTICATION")
    );
    let no_value = login(&r, (&r.app, &r.password), &alice, "<password/>", "application/xml").await;
    assert_eq!(no_value.reason(), "INVALID_USER_AUTHENTICATION");
    // A user whose entry has no password cannot log in, whatever is sent.
    let none = login_xml(&r, &nopass, "anything").await;
    assert_eq!(none.reason(), "INVALID_USER_AUTHENTICATION");

    // Unknown, and a person of a source that cannot verify passwords.
    let unknown = login_xml(&r, "nobody-here", PASSWORD).await;
    assert_eq!((unknown.status, unknown.reason().as_str()), (400, "USER_NOT_FOUND"));
    let sso = login_xml(&r, "sso-person", PASSWORD).await;
    let (reason, message) = sso.error();
    assert_eq!((sso.status, reason.as_str()), (400, "INVALID_USER_AUTHENTICATION"));
    assert!(
        message.contains("none of their sources can verify passwords"),
        "{message}"
    );

    // Malformed bodies are the client's mistake, never a 500.
    for (body, kind) in [
        ("<password><value>x</password>", "application/xml"),
        ("{\"value\":", "application/json"),
        ("{\"value\":7}", "application/json"),
        ("<user/>", "application/xml"),
    ] {
        let bad = login(&r, (&r.app, &r.password), &alice, body, kind).await;
        assert_eq!((bad.status, bad.reason().as_str()), (400, "ILLEGAL_ARGUMENT"), "{body}");
    }
    let no_name = reqwest::Client::new()
        .post(format!("{}{API}/authentication", r.url))
        .basic_auth(&r.app, Some(&r.password))
        .body(xml_password(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(no_name.status(), 400);

    // An application that may not see the user does not learn whether the password is right.
    let (_, scoped) = r
        .store
        .crowd_app_create(
            "confluence",
            &["127.0.0.1".to_string(), "::1".to_string()],
            Some(&["no-such-group".to_string()]),
            "test",
        )
        .unwrap();
    let hidden = login(
        &r,
        ("confluence", &scoped),
        &alice,
        &xml_password(PASSWORD),
        "application/xml",
    )
    .await;
    assert_eq!((hidden.status, hidden.reason().as_str()), (400, "USER_NOT_FOUND"));

    // /authentication/notify stays unsupported, with an <error> body the client can read.
    let notify = {
        let resp = reqwest::Client::new()
            .post(format!("{}{API}/authentication/notify", r.url))
            .query(&[("username", &alice)])
            .basic_auth(&r.app, Some(&r.password))
            .body(xml_password(PASSWORD))
            .send()
            .await
            .unwrap();
        Answer {
            status: resp.status().as_u16(),
            text: resp.text().await.unwrap(),
        }
    };
    assert_eq!(notify.status, 404);
    assert_eq!(notify.reason(), "UNSUPPORTED_OPERATION");

    // The throttle: after five wrong passwords in a row the directory is not asked again for a
    // while, so even the right one is refused; someone else is not affected.
    for _ in 0..5 {
        assert_eq!(
            login_xml(&r, &leaver, "guess").await.reason(),
            "INVALID_USER_AUTHENTICATION"
        );
    }
    let throttled = login_xml(&r, &leaver, PASSWORD).await;
    let (reason, message) = throttled.error();
    assert_eq!(reason, "INVALID_USER_AUTHENTICATION");
    assert!(message.contains("too many wrong passwords"), "{message}");
    assert_eq!(login_xml(&r, &alice, PASSWORD).await.status, 200);
    // A success resets the count: alice's one wrong password above does not add up.
    for _ in 0..4 {
        login_xml(&r, &alice, "guess").await;
    }
    assert_eq!(login_xml(&r, &alice, PASSWORD).await.status, 200);

    // Alice leaves the directory: the next sync deactivates her, and she cannot log in.
    slapd.delete_user(&alice).unwrap();
    let data = r.data().to_path_buf();
    let report = tokio::task::spawn_blocking(move || crate::common::roster_json(&data, &["sync"]).1)
        .await
        .unwrap();
    assert_eq!(report["state"], "succeeded", "{report:#}");
    let gone = login_xml(&r, &alice, PASSWORD).await;
    assert_eq!(
        (gone.status, gone.reason().as_str()),
        (400, "INACTIVE_ACCOUNT"),
        "{}",
        gone.text
    );

    // The directory goes down: an error the product shows as one, never a wrong password.
    drop(slapd);
    let down = login_xml(&r, &nopass, PASSWORD).await;
    assert_eq!(
        (down.status, down.reason().as_str()),
        (500, "OPERATION_FAILED"),
        "{}",
        down.text
    );
    assert!(!r.log().contains(PASSWORD), "a password reached the log");
}

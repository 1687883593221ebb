//! The host side of `ldap` against a real OpenLDAP `slapd` on 127.0.0.1, started and stopped
//! by each test, and against a listener that records connection attempts for the refusals.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use roster_http::BudgetConfig;

use super::*;
use crate::capability::NetPolicy;
use crate::secrets::{BindingSpec, Place, Secret, SecretValue};

const BASE: &str = "dc=example,dc=org";
const READER: &str = "cn=reader,dc=example,dc=org";
const READER_PASSWORD: &str = "Reader-pa55word";
/// A DN with slapd's default `sizelimit 500`.
const CAPPED: &str = "cn=capped,dc=example,dc=org";
const CAPPED_PASSWORD: &str = "Capped-pa55word";

/// A throwaway slapd with its own configuration, data and test CA; killed on drop.
struct Slapd {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    tls_port: u16,
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Slapd {
    /// slapd with `users` inetOrgPersons under ou=people; `idle_timeout` closes idle connections.
    fn start(users: usize, idle_timeout: Option<u32>) -> Slapd {
        for tool in ["/usr/sbin/slapd", "/usr/bin/ldapadd", "/usr/bin/openssl"] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: these tests need OpenLDAP; install it with `echo 'slapd slapd/no_configuration boolean true' | debconf-set-selections && apt-get install -y slapd ldap-utils openssl`"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        run(Command::new("openssl")
            .args(["req", "-x509"])
            .args(ec)
            .current_dir(d)
            .args([
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=Roster test CA",
            ]));
        run(Command::new("openssl")
            .args(["req", "-x509"])
            .args(ec)
            .current_dir(d)
            .args([
                "-keyout",
                "other-ca.key",
                "-out",
                "other-ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=Another CA",
            ]));
        run(Command::new("openssl").arg("req").args(ec).current_dir(d).args([
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]));
        std::fs::write(
            d.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(Command::new("openssl").current_dir(d).args([
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]));
        std::fs::create_dir(d.join("db")).unwrap();
        let p = d.display();
        let idle = idle_timeout.map_or(String::new(), |s| format!("idletimeout {s}\n"));
        std::fs::write(
            d.join("slapd.conf"),
            format!(
                "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n\
                 include /etc/ldap/schema/inetorgperson.schema\ninclude /etc/ldap/schema/nis.schema\n\
                 pidfile {p}/slapd.pid\nargsfile {p}/slapd.args\n{idle}\
                 modulepath /usr/lib/ldap\nmoduleload back_mdb\n\
                 TLSCACertificateFile {p}/ca.pem\nTLSCertificateFile {p}/server.pem\nTLSCertificateKeyFile {p}/server.key\n\
                 database mdb\nsuffix \"{BASE}\"\nrootdn \"cn=admin,{BASE}\"\nrootpw admin-secret\ndirectory {p}/db\n\
                 limits dn.exact=\"{READER}\" size.prtotal=unlimited\n"
            ),
        )
        .unwrap();
        let mut ldif = format!(
            "dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
             dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n\n"
        );
        for (dn, pw) in [(READER, READER_PASSWORD), (CAPPED, CAPPED_PASSWORD)] {
            let cn = &dn[3..dn.find(',').unwrap()];
            ldif += &format!(
                "dn: {dn}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: {cn}\nuserPassword: {pw}\n\n"
            );
        }
        for i in 0..users {
            ldif += &format!(
                "dn: uid=user{i:05},ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: user{i:05}\ncn: User {i}\nsn: {i}\nmail: user{i}@example.org\n\n"
            );
        }
        std::fs::write(d.join("data.ldif"), ldif).unwrap();
        let (port, tls_port) = (free_port(), free_port());
        let log = std::fs::File::create(d.join("slapd.log")).unwrap();
        let child = Command::new("/usr/sbin/slapd")
            .args(["-d", "0", "-f"])
            .arg(d.join("slapd.conf"))
            .arg("-h")
            .arg(format!("ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{tls_port}/"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting slapd");
        let mut slapd = Slapd {
            child,
            dir,
            port,
            tls_port,
        };
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let log = std::fs::read_to_string(slapd.dir.path().join("slapd.log")).unwrap_or_default();
            assert!(slapd.child.try_wait().unwrap().is_none(), "slapd exited: {log}");
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "slapd did not start: {log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        run(Command::new("ldapadd")
            .args([
                "-x",
                "-H",
                &format!("ldap://127.0.0.1:{port}"),
                "-D",
                &format!("cn=admin,{BASE}"),
            ])
            .args(["-w", "admin-secret", "-f"])
            .arg(slapd.dir.path().join("data.ldif"))
            .stdout(Stdio::null()));
        slapd
    }

    fn pem(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap()
    }

    fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    fn tls_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.tls_port)
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bind_secret(dn: &str, password: &str, hosts: &[String]) -> Secret {
    Secret::new(
        "bind_password",
        SecretValue::new(password),
        BindingSpec {
            hosts: hosts.iter().map(|h| h.parse().unwrap()).collect(),
            place: Some(Place::LdapBind(dn.into())),
            ..BindingSpec::default()
        },
    )
}

fn access(hosts: &[String], private: bool, secrets: Vec<Secret>) -> Arc<SourceAccess> {
    let policy = NetPolicy {
        allow_hosts: hosts.iter().map(|h| h.parse().unwrap()).collect(),
        allow_private_addresses: private,
        ..NetPolicy::default()
    };
    SourceAccess::new("directory", policy, secrets, BudgetConfig::default()).unwrap()
}

/// Access to `slapd` on both its ports, with the reader's password (or `password`).
fn reader_access(slapd: &Slapd, password: &str) -> Arc<SourceAccess> {
    let hosts = [slapd.url(), slapd.tls_url()];
    access(&hosts, true, vec![bind_secret(READER, password, &hosts)])
}

fn connection(url: String, transport: Transport, ca: Option<String>, dn: &str) -> Connection {
    Connection {
        url,
        transport,
        ca_certificates: ca,
        bind_dn: Some(dn.into()),
        password_secret: Some("bind_password".into()),
    }
}

fn search(base: &str, scope: Scope, filter: &str, page_size: u32) -> SearchRequest {
    SearchRequest {
        base: base.into(),
        scope,
        filter: filter.into(),
        attributes: vec!["uid".into(), "entryUUID".into()],
        page_size,
        cookie: None,
        controls: vec![],
    }
}

async fn page(access: &SourceAccess, conn: &Connection, req: SearchRequest) -> Result<SearchPage, LdapFailure> {
    let deadline = Instant::now() + Duration::from_secs(60);
    access.ldap_search(conn, req, &Limits::default(), deadline).await
}

/// Every page of a search: (entries per page, result code of each page).
async fn all_pages(
    access: &SourceAccess,
    conn: &Connection,
    mut req: SearchRequest,
) -> (Vec<Entry>, Vec<(usize, u32)>) {
    let (mut entries, mut pages) = (Vec::new(), Vec::new());
    loop {
        let p = page(access, conn, req.clone()).await.unwrap();
        pages.push((p.entries.len(), p.result_code));
        entries.extend(p.entries);
        match p.cookie {
            Some(c) => req.cookie = Some(c),
            None => return (entries, pages),
        }
    }
}

fn values<'a>(e: &'a Entry, name: &str) -> Vec<&'a [u8]> {
    e.attributes
        .iter()
        .filter(|a| a.name.eq_ignore_ascii_case(name))
        .flat_map(|a| a.values.iter().map(Vec::as_slice))
        .collect()
}

#[tokio::test]
async fn start_tls_with_the_test_ca_binds_searches_and_counts_each_search() {
    let slapd = Slapd::start(3, None);
    let access = reader_access(&slapd, READER_PASSWORD);
    let conn = connection(slapd.url(), Transport::StartTls, Some(slapd.pem("ca.pem")), READER);
    let before = access.counts().sent;
    let p = page(
        &access,
        &conn,
        search(&format!("ou=people,{BASE}"), Scope::OneLevel, "(uid=user00001)", 0),
    )
    .await
    .unwrap();
    assert_eq!((p.result_code, p.cookie.as_ref()), (0, None));
    assert_eq!(p.entries.len(), 1);
    assert_eq!(p.entries[0].dn, format!("uid=user00001,ou=people,{BASE}"));
    assert_eq!(values(&p.entries[0], "uid"), vec![&b"user00001"[..]]);
    let uuid = String::from_utf8(values(&p.entries[0], "entryUUID")[0].to_vec()).unwrap();
    assert_eq!(uuid.len(), 36, "{uuid}");
    assert_eq!(access.counts().sent, before + 1);
    // The same connection serves the next call, and that call counts too.
    let p = page(
        &access,
        &conn,
        search(BASE, Scope::Subtree, "(objectClass=inetOrgPerson)", 0),
    )
    .await
    .unwrap();
    assert_eq!(p.entries.len(), 3);
    assert_eq!(access.counts().sent, before + 2);
}

#[tokio::test]
async fn ldaps_with_the_test_ca_works() {
    let slapd = Slapd::start(2, None);
    let access = reader_access(&slapd, READER_PASSWORD);
    let conn = connection(slapd.tls_url(), Transport::Ldaps, Some(slapd.pem("ca.pem")), READER);
    let p = page(&access, &conn, search(BASE, Scope::Subtree, "(uid=*)", 0))
        .await
        .unwrap();
    assert_eq!(p.entries.len(), 2);
}

#[tokio::test]
async fn tls_is_refused_for_a_name_the_certificate_does_not_hold_or_an_unknown_ca() {
    let slapd = Slapd::start(0, None);
    // `localhost` reaches the same server, but the certificate names only 127.0.0.1.
    let localhost = format!("ldap://localhost:{}", slapd.port);
    let hosts = [slapd.url(), localhost.clone()];
    let access = access(&hosts, true, vec![bind_secret(READER, READER_PASSWORD, &hosts)]);
    let req = search(BASE, Scope::Base, "(objectClass=*)", 0);
    let wrong_name = connection(localhost, Transport::StartTls, Some(slapd.pem("ca.pem")), READER);
    let err = page(&access, &wrong_name, req.clone()).await.unwrap_err();
    assert!(
        matches!(&err, LdapFailure::Config(m) if m.contains("server name `localhost`") && m.contains("the server's certificate does not hold the name `localhost`, only IpAddress(127.0.0.1) (NotValidForName)")),
        "{err:?}"
    );
    for ca in [None, Some(slapd.pem("other-ca.pem"))] {
        let conn = connection(slapd.url(), Transport::StartTls, ca.clone(), READER);
        let err = page(&access, &conn, req.clone()).await.unwrap_err();
        assert!(
            matches!(&err, LdapFailure::Config(m) if m.contains("the server's certificate is not signed by a trusted CA (UnknownIssuer)") && m.contains("`ca_certificate`")),
            "{ca:?}: {err:?}"
        );
    }
    // Not a certificate at all.
    let conn = connection(slapd.url(), Transport::StartTls, Some("not a PEM".into()), READER);
    let err = page(&access, &conn, req).await.unwrap_err();
    assert!(
        matches!(&err, LdapFailure::Config(m) if m.contains("hold no certificate")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_paged_search_of_1200_entries_comes_in_pages_with_cookies() {
    let slapd = Slapd::start(1200, None);
    let access = reader_access(&slapd, READER_PASSWORD);
    let conn = connection(slapd.url(), Transport::StartTls, Some(slapd.pem("ca.pem")), READER);
    let before = access.counts().sent;
    let (entries, pages) = all_pages(
        &access,
        &conn,
        search(
            &format!("ou=people,{BASE}"),
            Scope::OneLevel,
            "(objectClass=inetOrgPerson)",
            500,
        ),
    )
    .await;
    assert_eq!(pages, vec![(500, 0), (500, 0), (200, 0)]);
    let dns: std::collections::BTreeSet<&str> = entries.iter().map(|e| e.dn.as_str()).collect();
    assert_eq!(dns.len(), 1200);
    assert_eq!(access.counts().sent, before + 3);
    // A page larger than `max_response_bytes` is refused, and the next call starts afresh.
    let small = Limits {
        max_response_bytes: 10_000,
        ..Limits::default()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let req = search(&format!("ou=people,{BASE}"), Scope::OneLevel, "(uid=*)", 500);
    let err = access
        .ldap_search(&conn, req.clone(), &small, deadline)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LdapFailure::Config(m) if m.contains("larger than this source's cap of 10000 bytes (`max_response_bytes`)")),
        "{err:?}"
    );
    assert_eq!(page(&access, &conn, req).await.unwrap().entries.len(), 500);
}

#[tokio::test]
async fn the_default_size_limit_gives_pages_that_end_with_result_code_4() {
    let slapd = Slapd::start(1200, None);
    let hosts = [slapd.url()];
    let access = access(&hosts, true, vec![bind_secret(CAPPED, CAPPED_PASSWORD, &hosts)]);
    let conn = connection(slapd.url(), Transport::StartTls, Some(slapd.pem("ca.pem")), CAPPED);
    let (entries, pages) = all_pages(
        &access,
        &conn,
        search(
            &format!("ou=people,{BASE}"),
            Scope::OneLevel,
            "(objectClass=inetOrgPerson)",
            200,
        ),
    )
    .await;
    // slapd stops at its limit of 500 in total; the page says so instead of failing the call.
    assert_eq!(entries.len(), 500, "{pages:?}");
    assert_eq!(pages.last().unwrap().1, 4, "{pages:?}");
    assert!(pages[..pages.len() - 1].iter().all(|(_, rc)| *rc == 0), "{pages:?}");
}

#[tokio::test]
async fn a_wrong_password_is_an_auth_error_naming_the_dn() {
    let slapd = Slapd::start(0, None);
    let access = reader_access(&slapd, "not-the-password");
    let conn = connection(slapd.url(), Transport::StartTls, Some(slapd.pem("ca.pem")), READER);
    let err = page(&access, &conn, search(BASE, Scope::Base, "(objectClass=*)", 0))
        .await
        .unwrap_err();
    match &err {
        LdapFailure::Auth(m) => {
            assert!(
                m.contains(&format!("bind of DN `{READER}` (invalid credentials)")),
                "{m}"
            );
            assert!(!m.contains("not-the-password"), "{m}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_bind_password_is_redacted_from_what_the_server_returns() {
    let slapd = Slapd::start(0, None);
    let access = reader_access(&slapd, READER_PASSWORD);
    let conn = connection(slapd.url(), Transport::StartTls, Some(slapd.pem("ca.pem")), READER);
    let mut req = search(READER, Scope::Base, "(objectClass=*)", 0);
    req.attributes = vec!["userPassword".into()];
    let p = page(&access, &conn, req).await.unwrap();
    assert_eq!(
        values(&p.entries[0], "userPassword"),
        vec![&b"{{secret:bind_password}}"[..]]
    );
}

#[tokio::test]
async fn a_cookie_expires_with_its_connection() {
    let slapd = Slapd::start(30, Some(1));
    let access = reader_access(&slapd, READER_PASSWORD);
    let conn = connection(slapd.url(), Transport::StartTls, Some(slapd.pem("ca.pem")), READER);
    let mut req = search(&format!("ou=people,{BASE}"), Scope::OneLevel, "(uid=*)", 10);
    let first = page(&access, &conn, req.clone()).await.unwrap();
    let cookie = first.cookie.expect("a cookie for the next page");
    // A cookie the host did not hand out for this connection is refused without a search.
    let mut forged = cookie.clone();
    forged[0] ^= 0xff;
    req.cookie = Some(forged);
    let sent = access.counts().sent;
    assert_eq!(page(&access, &conn, req.clone()).await, Err(LdapFailure::CookieExpired));
    assert_eq!(access.counts().sent, sent, "nothing was sent");
    // slapd closes idle connections after a second (`idletimeout 1`).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    req.cookie = Some(cookie);
    assert_eq!(page(&access, &conn, req.clone()).await, Err(LdapFailure::CookieExpired));
    // Starting again opens a new connection.
    req.cookie = None;
    assert_eq!(page(&access, &conn, req).await.unwrap().entries.len(), 10);
}

/// A listener on 127.0.0.1 that counts the connections made to it and never answers.
fn recording_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        // Held open: a server that hangs up would fail a call at a moment that depends on timing.
        let mut held = Vec::new();
        for stream in listener.incoming() {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(stream);
        }
    });
    (port, accepted)
}

#[tokio::test]
async fn refusals_happen_before_any_connection_is_made() {
    let (port, accepted) = recording_listener();
    let url = format!("ldap://127.0.0.1:{port}");
    let localhost = format!("ldap://localhost:{port}");
    let req = || search(BASE, Scope::Base, "(objectClass=*)", 0);
    let bound = |hosts: &[String]| vec![bind_secret(READER, READER_PASSWORD, hosts)];
    let expect = |err: LdapFailure, words: &[&str]| {
        let LdapFailure::Config(m) = &err else {
            panic!("{err:?}")
        };
        assert!(words.iter().all(|w| m.contains(w)), "{words:?}: {m}");
    };

    // Not in allow_hosts (another port of the same machine).
    let other = format!("ldap://127.0.0.1:{}", port.wrapping_add(1).max(1));
    let a = access(std::slice::from_ref(&other), true, bound(std::slice::from_ref(&other)));
    let conn = connection(url.clone(), Transport::StartTls, None, READER);
    expect(
        page(&a, &conn, req()).await.unwrap_err(),
        &["is not in this source's allowed hosts", "`allow_hosts`"],
    );

    // Loopback without allow_private_addresses: as an IP literal, and as a name resolving to it.
    let hosts = [url.clone(), localhost.clone()];
    let a = access(&hosts, false, bound(&hosts));
    for u in [&url, &localhost] {
        let conn = connection(u.clone(), Transport::StartTls, None, READER);
        expect(
            page(&a, &conn, req()).await.unwrap_err(),
            &["loopback", "allow_private_addresses"],
        );
    }

    let a = access(&hosts, true, bound(&hosts));
    // Plain LDAP without allow_plain_ldap.
    let conn = connection(url.clone(), Transport::Plain, None, READER);
    expect(
        page(&a, &conn, req()).await.unwrap_err(),
        &["unencrypted", "allow_plain_ldap"],
    );
    // A transport the scheme contradicts.
    let conn = connection(url.clone(), Transport::Ldaps, None, READER);
    expect(
        page(&a, &conn, req()).await.unwrap_err(),
        &["contradicts transport `ldaps`"],
    );
    // The secret is bound to another DN.
    let conn = connection(url.clone(), Transport::StartTls, None, "cn=admin,dc=example,dc=org");
    expect(
        page(&a, &conn, req()).await.unwrap_err(),
        &["secret `bind_password` may not go in the LDAP bind of `cn=admin,dc=example,dc=org`"],
    );
    // A DN without a password secret (an unauthenticated bind).
    let mut conn = connection(url.clone(), Transport::StartTls, None, READER);
    conn.password_secret = None;
    expect(page(&a, &conn, req()).await.unwrap_err(), &["no password secret"]);
    // Controls that are not the read-only ones, paged results given by hand, a page too big.
    let conn = connection(url.clone(), Transport::StartTls, None, READER);
    for (oid, words) in [
        ("1.3.6.1.1.13.1", &["control 1.3.6.1.1.13.1 may not be sent"][..]),
        (PAGED_RESULTS_OID, &["driven by the page size and cookie"][..]),
    ] {
        let mut r = req();
        r.controls.push(Control {
            oid: oid.into(),
            critical: false,
            value: None,
        });
        expect(page(&a, &conn, r).await.unwrap_err(), words);
    }
    let mut r = req();
    r.page_size = MAX_PAGE_SIZE + 1;
    expect(
        page(&a, &conn, r).await.unwrap_err(),
        &["at most 5000 entries per page"],
    );

    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "a refused call connected");
    // The listener does count: an allowed call does connect, and gives up on a server that
    // never answers StartTLS after `request_timeout_secs`.
    let conn = connection(url, Transport::StartTls, None, READER);
    let limits = Limits {
        request_timeout_secs: 0.5,
        ..Limits::default()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let err = a.ldap_search(&conn, req(), &limits, deadline).await.unwrap_err();
    assert!(
        matches!(&err, LdapFailure::Transient(m) if m.contains("took longer than 500ms (`request_timeout_secs`)")),
        "{err:?}"
    );
    assert!(accepted.load(Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn a_server_sending_malformed_ber_fails_the_call_not_the_host() {
    // Answers anything with a well-formed BER sequence that is no LDAP message: the client's
    // parser panics on it in its connection task.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read as _, Write as _};
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 512];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(&[0x30, 0x03, 0x02, 0x01, 0x01]);
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let url = format!("ldap://127.0.0.1:{port}");
    let policy = NetPolicy {
        allow_hosts: vec![url.parse().unwrap()],
        allow_private_addresses: true,
        allow_plain_ldap: true,
        ..NetPolicy::default()
    };
    let access = SourceAccess::new("directory", policy, vec![], BudgetConfig::default()).unwrap();
    let conn = Connection {
        url,
        transport: Transport::Plain,
        ca_certificates: None,
        bind_dn: None,
        password_secret: None,
    };
    for _ in 0..2 {
        let err = page(&access, &conn, search(BASE, Scope::Base, "(objectClass=*)", 0))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, LdapFailure::Fatal(m) if m.contains("could not read an answer") && m.contains("malformed BER")),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn a_filter_too_deep_or_too_long_and_oversized_attributes_or_base_are_refused_before_connecting() {
    let (port, accepted) = recording_listener();
    let url = format!("ldap://127.0.0.1:{port}");
    let hosts = [url.clone()];
    let a = access(&hosts, true, vec![bind_secret(READER, READER_PASSWORD, &hosts)]);
    let conn = connection(url, Transport::StartTls, None, READER);
    let refused = |req: SearchRequest, words: &'static [&'static str]| {
        let a = a.clone();
        let conn = conn.clone();
        async move {
            let err = page(&a, &conn, req).await.unwrap_err();
            let LdapFailure::Config(m) = &err else {
                panic!("{err:?}")
            };
            assert!(words.iter().all(|w| m.contains(w)), "{words:?}: {m}");
        }
    };
    // 300,000 nested negations: the client's recursive parser would overflow the stack and
    // abort the process.
    let deep = format!("{}(uid=a){}", "(!".repeat(300_000), ")".repeat(300_000));
    refused(
        search(BASE, Scope::Subtree, &deep, 0),
        &["is 900007 bytes long; at most 16384 bytes"],
    )
    .await;
    // Short enough, but 65 levels deep.
    let deep = format!("{}(uid=a){}", "(!".repeat(64), ")".repeat(64));
    refused(
        search(BASE, Scope::Subtree, &deep, 0),
        &["nests parentheses 65 deep; at most 64 levels"],
    )
    .await;
    // Escaped parentheses in a value are no nesting: 64 real levels pass this check (and reach
    // the listener, which never answers).
    let escaped = format!("{}(cn=a\\28\\29\\5c){}", "(!".repeat(63), ")".repeat(63));
    assert_eq!(filter_depth(&escaped), 64);
    assert_eq!(filter_depth("(cn=a\\(b)"), 1);
    let long = format!("(|{})", "(uid=abcdefgh)".repeat(1200));
    refused(
        search(BASE, Scope::Subtree, &long, 0),
        &["is 16803 bytes long; at most 16384 bytes"],
    )
    .await;
    let mut many = search(BASE, Scope::Subtree, "(uid=*)", 0);
    many.attributes = (0..257).map(|i| format!("attr{i}")).collect();
    refused(many, &["asks for 257 attributes; at most 256"]).await;
    let mut long_attribute = search(BASE, Scope::Subtree, "(uid=*)", 0);
    long_attribute.attributes = vec!["a".repeat(257)];
    refused(long_attribute, &["is 257 bytes long; at most 256 bytes"]).await;
    let long_base = format!("{}{BASE}", "ou=x,".repeat(820));
    refused(
        search(&long_base, Scope::Subtree, "(uid=*)", 0),
        &["bytes long; at most 4096 bytes", "base DN"],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "a refused call connected");
    // The largest request still allowed goes out.
    let limits = Limits {
        request_timeout_secs: 0.5,
        ..Limits::default()
    };
    let mut largest = search(BASE, Scope::Subtree, &escaped, 0);
    largest.attributes = (0..256).map(|i| format!("{i:0>256}")).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let err = a.ldap_search(&conn, largest, &limits, deadline).await.unwrap_err();
    assert!(!matches!(err, LdapFailure::Config(_)), "{err:?}");
    assert!(accepted.load(Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn an_empty_bind_password_is_refused_before_connecting() {
    let (port, accepted) = recording_listener();
    let url = format!("ldap://127.0.0.1:{port}");
    let hosts = [url.clone()];
    let a = access(&hosts, true, vec![bind_secret(READER, "", &hosts)]);
    let conn = connection(url, Transport::StartTls, None, READER);
    let err = page(&a, &conn, search(BASE, Scope::Base, "(objectClass=*)", 0))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LdapFailure::Config(m) if m.contains(&format!("secret `bind_password` (the bind password of `{READER}`) is empty")) && m.contains("unauthenticated")),
        "{err:?}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "the bind was attempted");
}

/// A BER element with a definite length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match content.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n <= 0xff => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(content);
    out
}

/// An LDAPMessage carrying an LDAPResult of `op` (0x61 bind, 0x78 extended).
fn ldap_result(id: &[u8], op: u8, rc: u8, text: &[u8]) -> Vec<u8> {
    let result = [tlv(0x0a, &[rc]), tlv(0x04, b""), tlv(0x04, text)].concat();
    tlv(0x30, &[tlv(0x02, id), tlv(op, &result)].concat())
}

/// A server on 127.0.0.1 that reads each LDAPMessage and writes what `answer` makes of its
/// message id and protocol op tag; it stops when the test's process ends.
fn fake_server(answer: impl Fn(&[u8], u8) -> Vec<u8> + Send + Sync + 'static) -> String {
    use std::io::{Read as _, Write as _};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut stream = stream;
                loop {
                    let mut head = [0u8; 2];
                    if stream.read_exact(&mut head).is_err() {
                        return;
                    }
                    let len = if head[1] < 0x80 {
                        head[1] as usize
                    } else {
                        let mut n = vec![0u8; (head[1] & 0x7f) as usize];
                        stream.read_exact(&mut n).unwrap();
                        n.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize)
                    };
                    let mut body = vec![0u8; len];
                    stream.read_exact(&mut body).unwrap();
                    // INTEGER message id, then the protocol op's tag.
                    let id_len = body[1] as usize;
                    let (id, op) = (&body[2..2 + id_len], body[2 + id_len]);
                    if stream.write_all(&answer(id, op)).is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("ldap://127.0.0.1:{port}")
}

fn plain_access(url: &str) -> Arc<SourceAccess> {
    let policy = NetPolicy {
        allow_hosts: vec![url.parse().unwrap()],
        allow_private_addresses: true,
        allow_plain_ldap: true,
        ..NetPolicy::default()
    };
    let secrets = vec![bind_secret(READER, READER_PASSWORD, &[url.to_string()])];
    SourceAccess::new("directory", policy, secrets, BudgetConfig::default()).unwrap()
}

#[tokio::test]
async fn a_bind_answer_the_client_cannot_read_fails_the_call_not_the_host() {
    // A diagnostic message in Latin-1: the client's `String::from_utf8(..).expect(..)` panics.
    let url = fake_server(|id, _| ldap_result(id, 0x61, 49, b"Mot de passe refus\xe9"));
    let access = plain_access(&url);
    let conn = connection(url, Transport::Plain, None, READER);
    for _ in 0..2 {
        let err = page(&access, &conn, search(BASE, Scope::Base, "(objectClass=*)", 0))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, LdapFailure::Fatal(m) if m.contains("could not read the answer of") && m.contains("to the bind")),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn a_start_tls_answer_the_client_cannot_read_fails_the_call_not_the_host() {
    // An ExtendedResponse whose result code is an OCTET STRING: the client `expect`s an
    // ENUMERATED and panics.
    let url = fake_server(|id, _| tlv(0x30, &[tlv(0x02, id), tlv(0x78, &tlv(0x04, b"x"))].concat()));
    let hosts = [url.clone()];
    let access = access(&hosts, true, vec![bind_secret(READER, READER_PASSWORD, &hosts)]);
    let conn = connection(url, Transport::StartTls, None, READER);
    for _ in 0..2 {
        let err = page(&access, &conn, search(BASE, Scope::Base, "(objectClass=*)", 0))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, LdapFailure::Fatal(m) if m.contains("could not read the answer of") && m.contains("to StartTLS or the bind")),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn a_bind_refused_as_unwilling_to_perform_is_a_config_error_not_retried() {
    let url = fake_server(|id, _| ldap_result(id, 0x61, 53, b"unauthenticated bind (DN with no password) disallowed"));
    let access = plain_access(&url);
    let conn = connection(url, Transport::Plain, None, READER);
    let err = page(&access, &conn, search(BASE, Scope::Base, "(objectClass=*)", 0))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LdapFailure::Config(m) if m.contains(&format!("refused the bind of `{READER}`: unwilling to perform (result 53)")) && m.contains("DN with no password")),
        "{err:?}"
    );
}

#[test]
fn each_certificate_problem_is_named_in_words_and_by_its_kind() {
    use rustls::CertificateError as C;
    let origin: Origin = "ldaps://ldap.example.com".parse().unwrap();
    let said = |e: C| tls_failure(&rustls::Error::InvalidCertificate(e), &origin, "ldap.example.com");
    let unknown = said(C::UnknownIssuer);
    assert!(
        unknown.contains("the server's certificate is not signed by a trusted CA (UnknownIssuer)")
            && unknown.contains("`ca_certificate`"),
        "{unknown}"
    );
    let name = said(C::NotValidForName);
    assert!(
        name.contains("does not hold the name `ldap.example.com` (NotValidForName)"),
        "{name}"
    );
    let expired = said(C::Expired);
    assert!(
        expired.contains("the server's certificate has expired (Expired)") && expired.contains("renew"),
        "{expired}"
    );
    // Each names only its own problem.
    for (m, others) in [
        (&unknown, ["NotValidForName", "Expired"]),
        (&name, ["UnknownIssuer", "Expired"]),
        (&expired, ["UnknownIssuer", "NotValidForName"]),
    ] {
        assert!(others.iter().all(|o| !m.contains(o)), "{m}");
    }
}

#[test]
fn empty_entries_and_values_count_against_the_page_cap_as_memory_not_zero_bytes() {
    // A server streaming entries with no DN and no attributes, or one attribute of a million
    // empty values, sends almost no bytes of content; each still costs memory to hold.
    let empty = Entry {
        dn: String::new(),
        attributes: Vec::new(),
    };
    assert!(footprint(&empty) >= 64);
    let many = Entry {
        dn: String::new(),
        attributes: vec![Attribute {
            name: "a".into(),
            values: vec![Vec::new(); 1_000_000],
        }],
    };
    // The default cap (16 MiB) is reached: the page is refused before it holds gigabytes.
    assert!(footprint(&many) > 16 * 1024 * 1024, "{}", footprint(&many));
}

fn bind_as(url: String, transport: Transport, ca: Option<String>, dn: &str) -> BindAs {
    BindAs {
        url,
        transport,
        ca_certificates: ca,
        dn: dn.into(),
    }
}

async fn verify(access: &SourceAccess, bind: &BindAs, password: &str) -> Result<PasswordVerdict, LdapFailure> {
    let deadline = Instant::now() + Duration::from_secs(30);
    access
        .verify_password(bind, password, &Limits::default(), deadline)
        .await
}

#[tokio::test]
async fn a_password_is_verified_by_a_bind_of_its_own_that_is_never_kept() {
    let slapd = Slapd::start(1, None);
    let access = reader_access(&slapd, READER_PASSWORD);
    let ca = Some(slapd.pem("ca.pem"));
    let capped = bind_as(slapd.url(), Transport::StartTls, ca.clone(), CAPPED);
    assert_eq!(
        verify(&access, &capped, CAPPED_PASSWORD).await.unwrap(),
        PasswordVerdict::Accepted
    );
    assert_eq!(
        verify(&access, &capped, "wrong").await.unwrap(),
        PasswordVerdict::Refused
    );
    assert_eq!(
        verify(&access, &capped, &CAPPED_PASSWORD.to_uppercase()).await.unwrap(),
        PasswordVerdict::Refused
    );
    // Over LDAPS too.
    let tls = bind_as(slapd.tls_url(), Transport::Ldaps, ca.clone(), CAPPED);
    assert_eq!(
        verify(&access, &tls, CAPPED_PASSWORD).await.unwrap(),
        PasswordVerdict::Accepted
    );
    // A DN that does not exist is a wrong password, as slapd answers it (49).
    let nobody = bind_as(
        slapd.url(),
        Transport::StartTls,
        ca.clone(),
        &format!("uid=nobody,ou=people,{BASE}"),
    );
    assert_eq!(verify(&access, &nobody, "x").await.unwrap(), PasswordVerdict::Refused);
    // None of these connections joined the source's search connections.
    assert!(
        access.ldap.open.lock().await.is_empty(),
        "a password check left a connection open"
    );
    // And a search afterwards binds as the reader, not as the person last checked.
    let conn = connection(slapd.url(), Transport::StartTls, ca, READER);
    let p = page(&access, &conn, search(BASE, Scope::Base, "(objectClass=*)", 0))
        .await
        .unwrap();
    assert_eq!(p.entries.len(), 1);
}

#[tokio::test]
async fn an_empty_password_is_refused_without_connecting_and_the_source_s_rules_hold() {
    let (port, accepted) = recording_listener();
    let url = format!("ldap://127.0.0.1:{port}");
    let allowed = access(std::slice::from_ref(&url), true, vec![]);
    let bind = bind_as(
        url.clone(),
        Transport::StartTls,
        None,
        &format!("uid=a,ou=people,{BASE}"),
    );
    // An empty password would be an unauthenticated bind, which servers accept (RFC 4513
    // §5.1.2): refused here, before anything is sent.
    assert_eq!(verify(&allowed, &bind, "").await.unwrap(), PasswordVerdict::Refused);
    assert_eq!(
        verify(&allowed, &bind, &"x".repeat(MAX_PASSWORD_BYTES + 1))
            .await
            .unwrap(),
        PasswordVerdict::Refused
    );
    // A host outside the allowlist, plain LDAP without `allow_plain_ldap`, a private address
    // without `allow_private_addresses`: refused as the source's searches are.
    let elsewhere = access(&["ldap://other.test:389".to_string()], true, vec![]);
    assert!(matches!(
        verify(&elsewhere, &bind, "pw").await,
        Err(LdapFailure::Config(_))
    ));
    let plain = bind_as(url.clone(), Transport::Plain, None, &bind.dn);
    assert!(
        matches!(verify(&allowed, &plain, "pw").await, Err(LdapFailure::Config(m)) if m.contains("allow_plain_ldap"))
    );
    let public_only = access(std::slice::from_ref(&url), false, vec![]);
    assert!(matches!(
        verify(&public_only, &bind, "pw").await,
        Err(LdapFailure::Config(_))
    ));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "nothing may reach the server");
    assert_eq!(allowed.counts().sent, 0);
}

#[tokio::test]
async fn an_unreachable_directory_is_an_error_not_a_wrong_password() {
    let port = free_port();
    let url = format!("ldap://127.0.0.1:{port}");
    let a = access(std::slice::from_ref(&url), true, vec![]);
    let bind = bind_as(url, Transport::StartTls, None, &format!("uid=a,ou=people,{BASE}"));
    assert!(matches!(verify(&a, &bind, "pw").await, Err(LdapFailure::Transient(_))));
}

#[test]
fn active_directory_says_why_it_refused_a_bind() {
    let ad = |data: &str| {
        format!("80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data {data}, v4563\u{0}")
    };
    assert_eq!(ad_bind_refusal(&ad("52e")), PasswordVerdict::Refused);
    assert_eq!(ad_bind_refusal(&ad("532")), PasswordVerdict::Expired);
    assert_eq!(ad_bind_refusal(&ad("773")), PasswordVerdict::Expired);
    assert_eq!(ad_bind_refusal(&ad("533")), PasswordVerdict::Inactive);
    assert_eq!(ad_bind_refusal(&ad("775")), PasswordVerdict::Inactive);
    assert_eq!(ad_bind_refusal(""), PasswordVerdict::Refused);
    assert_eq!(ad_bind_refusal("Invalid credentials"), PasswordVerdict::Refused);
}

//! The sandbox holds against hostile plugins: deadlines, memory caps, network allowlists,
//! secrets, panics, output caps, and none of it disturbs other jobs.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{CLIENT_SECRET, ComeBack, Idp, PROMPT, TestRuntime};
use roster_http::BudgetConfig;
use roster_runtime::capability::NetPolicy;
use roster_runtime::secrets::{BindingSpec, Place, Secret, SecretKind, SecretValue};
use roster_runtime::{GuestFailure, JobFailure, Limits, SourceAccess};

fn access(hosts: &[String], secrets: Vec<Secret>, private: bool) -> Arc<SourceAccess> {
    let policy = NetPolicy {
        allow_hosts: hosts.iter().map(|h| h.parse().unwrap()).collect(),
        allow_insecure_http: true,
        allow_private_addresses: private,
        allow_plain_ldap: false,
    };
    SourceAccess::new("test-source", policy, secrets, BudgetConfig::default()).unwrap()
}

/// A value secret that goes in header `header` of requests to `host` under `path`.
fn header_secret(name: &str, value: &str, host: &str, header: &str, path: &str) -> Secret {
    Secret::new(
        name,
        SecretValue::new(value),
        BindingSpec {
            hosts: vec![host.parse().unwrap()],
            place: Some(Place::Header(header.into())),
            methods: Some(vec!["GET".into()]),
            path: Some(path.into()),
            ..BindingSpec::default()
        },
    )
}

/// A client secret that goes in form field `client_secret` of POSTs to `host` under `path`.
fn form_secret(value: &str, host: &str, path: &str) -> Secret {
    Secret::new(
        "client_secret",
        SecretValue::new(value),
        BindingSpec {
            hosts: vec![host.parse().unwrap()],
            place: Some(Place::Form("client_secret".into())),
            path: Some(path.into()),
            ..BindingSpec::default()
        },
    )
}

/// A signing key for client `app` at token endpoint `audience`.
fn signing_key(pem: &str, audience: &str) -> Secret {
    Secret::new(
        "signing_key",
        SecretValue::new(pem),
        BindingSpec {
            kind: SecretKind::SigningKey,
            client_id: Some("app".into()),
            audience: Some(audience.into()),
            ..BindingSpec::default()
        },
    )
}

fn settings(v: serde_json::Value) -> String {
    v.to_string()
}

fn limits(timeout_secs: f64) -> Limits {
    Limits {
        call_timeout_secs: timeout_secs,
        ..Limits::default()
    }
}

fn outcome_of(page: &roster_runtime::types::Page) -> String {
    page.users[0]
        .attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn hostile() -> TestRuntime {
    TestRuntime::new(&[("fixture_hostile", "hostile.wasm")]).await
}

#[tokio::test]
async fn an_infinite_loop_is_stopped_within_its_deadline_plus_ten_percent() {
    let rt = hostile().await;
    let mut job = rt
        .runtime
        .job("hostile", limits(2.0), SourceAccess::none())
        .await
        .unwrap();
    let started = Instant::now();
    let err = job
        .fetch(&settings(serde_json::json!({"mode": "spin"})), None, None)
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err.failure, JobFailure::Deadline(_)), "{err}");
    assert!(
        took >= Duration::from_secs(2) && took <= Duration::from_millis(2200),
        "stopped after {took:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("plugin 'hostile' 1.0.0 (sha256 ") && msg.contains("deadline"),
        "{msg}"
    );
    // The trapped instance is never entered again.
    let again = job
        .fetch(&settings(serde_json::json!({"mode": "ok"})), None, None)
        .await
        .unwrap_err();
    assert!(again.to_string().contains("crashed earlier"), "{again}");
}

#[tokio::test]
async fn a_memory_bomb_is_trapped_at_the_cap() {
    let rt = hostile().await;
    let l = Limits {
        memory_mib: 32,
        ..limits(30.0)
    };
    let mut job = rt.runtime.job("hostile", l, SourceAccess::none()).await.unwrap();
    let err = job
        .fetch(&settings(serde_json::json!({"mode": "hog"})), None, None)
        .await
        .unwrap_err();
    assert!(matches!(err.failure, JobFailure::Memory(32)), "{err}");
    assert!(err.to_string().contains("memory cap of 32 MiB"), "{err}");
}

#[tokio::test]
async fn a_guest_panic_is_a_clean_error_with_its_message() {
    let rt = hostile().await;
    let mut job = rt
        .runtime
        .job("hostile", limits(30.0), SourceAccess::none())
        .await
        .unwrap();
    let err = job
        .fetch(&settings(serde_json::json!({"mode": "panic"})), None, None)
        .await
        .unwrap_err();
    let JobFailure::Panic(msg) = &err.failure else {
        panic!("{err}")
    };
    assert!(msg.contains("deliberate panic in the hostile fixture"), "{msg}");
}

#[tokio::test]
async fn oversized_output_request_and_response_are_refused() {
    let idp = Idp::start().await;
    let rt = hostile().await;
    let l = Limits {
        max_output_bytes: 1 << 20,
        max_request_bytes: 1024,
        max_response_bytes: 1 << 20,
        ..limits(30.0)
    };
    let acc = access(&[idp.url()], vec![], true);
    let mut job = rt.runtime.job("hostile", l.clone(), acc.clone()).await.unwrap();
    let err = job
        .fetch(
            &settings(serde_json::json!({"mode": "huge-output", "bytes": 4 << 20})),
            None,
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err.failure, JobFailure::OutputTooLarge { cap: 1048576, .. }),
        "{err}"
    );

    let mut job = rt.runtime.job("hostile", l.clone(), acc.clone()).await.unwrap();
    let page = job
        .fetch(
            &settings(serde_json::json!({"mode": "big-request", "url": format!("{}/steal", idp.url()), "bytes": 4096})),
            None,
            None,
        )
        .await
        .unwrap();
    assert!(
        outcome_of(&page).contains("exceeds this source's cap of 1024 bytes"),
        "{}",
        outcome_of(&page)
    );
    assert!(
        idp.seen.lock().unwrap().requests.is_empty(),
        "an oversized request must not be sent"
    );

    let page = job
        .fetch(
            &settings(serde_json::json!({"mode": "forbidden", "url": format!("{}/big", idp.url())})),
            None,
            None,
        )
        .await
        .unwrap();
    assert!(
        outcome_of(&page).contains("larger than this source's cap"),
        "{}",
        outcome_of(&page)
    );

    // A compressed answer would carry secrets past the redactor: refused, whatever was asked.
    let page = job
        .fetch(
            &settings(serde_json::json!({"mode": "forbidden", "url": format!("{}/compressed", idp.url())})),
            None,
            None,
        )
        .await
        .unwrap();
    assert!(
        outcome_of(&page).contains("is compressed (Content-Encoding: gzip) although Roster asked for none"),
        "{}",
        outcome_of(&page)
    );
}

#[tokio::test]
async fn requests_outside_the_allowlist_come_back_as_errors_not_crashes() {
    let idp = Idp::start().await;
    let rt = hostile().await;
    let acc = access(&[idp.url()], vec![], true);
    let mut job = rt.runtime.job("hostile", limits(30.0), acc).await.unwrap();
    let fetch = |url: String| settings(serde_json::json!({"mode": "forbidden", "url": url}));

    let page = job
        .fetch(&fetch("https://attacker.example/collect".into()), None, None)
        .await
        .unwrap();
    let out = outcome_of(&page);
    assert!(
        out.contains("error") && out.contains("https://attacker.example is not in this source's allowed hosts"),
        "{out}"
    );

    // A redirect from an allowed host to a host that is not allowed is checked again.
    let other = Idp::start().await;
    let page = job
        .fetch(
            &fetch(format!("{}/redirect?to={}/steal", idp.url(), other.url())),
            None,
            None,
        )
        .await
        .unwrap();
    assert!(
        outcome_of(&page).contains("not in this source's allowed hosts"),
        "{}",
        outcome_of(&page)
    );
    assert!(other.seen.lock().unwrap().requests.is_empty());

    // The same job still works afterwards: the refusal was a value, not a trap.
    let page = job
        .fetch(&fetch(format!("{}/echo", idp.url())), None, None)
        .await
        .unwrap();
    assert!(outcome_of(&page).contains("status 200"), "{}", outcome_of(&page));
}

#[tokio::test]
async fn names_resolving_to_private_addresses_are_refused_unless_allowed() {
    let idp = Idp::start().await;
    let rt = hostile().await;
    let by_name = format!("http://localhost:{}", idp.addr.port());
    let strict = access(std::slice::from_ref(&by_name), vec![], false);
    let mut job = rt.runtime.job("hostile", limits(30.0), strict).await.unwrap();
    let page = job
        .fetch(
            &settings(serde_json::json!({"mode": "forbidden", "url": format!("{by_name}/echo")})),
            None,
            None,
        )
        .await
        .unwrap();
    let out = outcome_of(&page);
    assert!(
        out.contains("resolves to") && out.contains("loopback") && out.contains("allow_private_addresses"),
        "{out}"
    );
    assert!(idp.seen.lock().unwrap().requests.is_empty());

    let lax = access(std::slice::from_ref(&by_name), vec![], true);
    let mut job = rt.runtime.job("hostile", limits(30.0), lax).await.unwrap();
    let page = job
        .fetch(
            &settings(serde_json::json!({"mode": "forbidden", "url": format!("{by_name}/echo")})),
            None,
            None,
        )
        .await
        .unwrap();
    assert!(outcome_of(&page).contains("status 200"), "{}", outcome_of(&page));
}

#[tokio::test]
async fn plain_http_needs_an_explicit_opt_in() {
    let policy = NetPolicy {
        allow_hosts: vec!["http://intranet.corp".parse().unwrap()],
        allow_insecure_http: false,
        allow_private_addresses: true,
        allow_plain_ldap: false,
    };
    let err = SourceAccess::new("s", policy, vec![], BudgetConfig::default()).unwrap_err();
    assert!(err.to_string().contains("allow_insecure_http"), "{err}");
}

/// Captures tracing output of the current thread.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_leave_only_for_their_bound_host_and_never_come_back_in() {
    let bound = Idp::start().await;
    let unbound = Idp::start().await;
    let secret_value = "tok-SECRET-VALUE-123";
    let secrets = vec![header_secret(
        "token",
        secret_value,
        &bound.url(),
        "Authorization",
        "/echo",
    )];
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let rt = hostile().await;
    let acc = access(&[bound.url(), unbound.url()], secrets, true);
    let mut job = rt.runtime.job("hostile", limits(30.0), acc).await.unwrap();
    let page = job
        .fetch(
            &settings(serde_json::json!({"mode": "exfiltrate", "url": unbound.url(), "bound_url": bound.url()})),
            None,
            None,
        )
        .await
        .unwrap();
    let seen_by_plugin = outcome_of(&page);

    // The request to the unbound host was refused before it left, naming the secret and
    // where it may go; that host got nothing, not even the placeholders.
    assert!(
        seen_by_plugin.contains(&format!(
            "secret `token` may not go in the URL of POST {}/steal",
            unbound.url()
        )) && seen_by_plugin.contains(&format!(
            "bound to header `Authorization` of GET requests to {}",
            bound.url()
        )),
        "{seen_by_plugin}"
    );
    let stolen = unbound.seen.lock().unwrap().requests.join("\n");
    assert!(stolen.is_empty(), "the unbound host was sent: {stolen}");
    // The bound host got the value ...
    let echoed = bound.seen.lock().unwrap().requests.join("\n");
    assert!(
        echoed.contains(&format!("authorization: Bearer {secret_value}")),
        "{echoed}"
    );
    // Uncompressed answers only: compressed bytes would carry the secret past the redactor.
    assert!(echoed.contains("accept-encoding: identity"), "{echoed}");
    // ... but its echo reached the plugin with the placeholder in its place.
    assert!(
        seen_by_plugin.contains("bound-echo=status 200") && seen_by_plugin.contains("Bearer {{secret:token}}"),
        "{seen_by_plugin}"
    );
    assert!(
        !seen_by_plugin.contains(secret_value),
        "the plugin saw the secret: {seen_by_plugin}"
    );
    // Signing with a value secret is refused without revealing it.
    assert!(
        seen_by_plugin.contains("cannot be used as a signing key"),
        "{seen_by_plugin}"
    );
    drop(job);
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("leaking {{secret:token}}"),
        "the plugin's log line is missing:\n{log}"
    );
    assert!(!log.contains(secret_value), "the secret reached the log:\n{log}");
}

/// A secret bound to one header of GETs to one path of its host goes nowhere else on that host:
/// not another header, not a JSON field (a profile attribute it could read back), not another
/// method or path, not the URL. Each refusal names the secret, where it was put and where it
/// may go, and the host receives none of those requests.
#[tokio::test]
async fn secrets_go_only_into_the_header_method_and_path_they_are_bound_to() {
    let bound = Idp::start().await;
    let value = "tok-BOUND-TO-ONE-HEADER-77";
    let secrets = vec![header_secret("token", value, &bound.url(), "Authorization", "/echo")];
    let rt = hostile().await;
    let acc = access(&[bound.url()], secrets, true);
    let mut job = rt.runtime.job("hostile", limits(30.0), acc).await.unwrap();
    let page = job
        .fetch(
            &settings(serde_json::json!({"mode": "misplace", "bound_url": bound.url()})),
            None,
            None,
        )
        .await
        .unwrap();
    let outcomes: std::collections::HashMap<_, _> = page.users[0].attributes.iter().cloned().collect();
    let host = bound.url();
    let allowed = format!("bound to header `Authorization` of GET requests to {host} under /echo");
    for (what, put) in [
        ("header", format!("header `x-profile` of GET {host}/echo")),
        ("json-field", format!("JSON field `bio` of PATCH {host}/echo")),
        ("method", format!("header `authorization` of POST {host}/echo")),
        ("path", format!("header `authorization` of GET {host}/steal")),
        ("url", format!("the URL of GET {host}/echo")),
    ] {
        let got = &outcomes[what];
        assert!(
            got.starts_with("error")
                && got.contains("secret `token` may not go in")
                && got.contains(&put)
                && got.contains(&allowed),
            "{what}: {got}"
        );
        assert!(!got.contains(value), "{what}: {got}");
    }
    let sent = bound.seen.lock().unwrap().requests.join("\n");
    assert!(sent.is_empty(), "misplaced requests reached the host: {sent}");
}

#[tokio::test]
async fn private_keys_sign_in_the_host_only_for_their_token_endpoint() {
    let pem = std::fs::read_to_string(common::repo().join("host/roster/tests/fixtures/test-rsa-key.pem")).unwrap();
    let public = std::fs::read(common::repo().join("host/roster/tests/fixtures/test-rsa-pub.pem")).unwrap();
    let key = |audience: &str| signing_key(&pem, audience);
    let rt = hostile().await;

    let acc = access(&[], vec![key("https://login.example/token")], true);
    let mut job = rt.runtime.job("hostile", limits(30.0), acc).await.unwrap();
    let page = job
        .fetch(&settings(serde_json::json!({"mode": "sign"})), None, None)
        .await
        .unwrap();
    let jwt = &page.users[0].attributes[0].1;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["https://login.example/token"]);
    validation.required_spec_claims.clear();
    let decoded = jsonwebtoken::decode::<serde_json::Value>(
        jwt,
        &jsonwebtoken::DecodingKey::from_rsa_pem(&public).unwrap(),
        &validation,
    )
    .unwrap();
    assert_eq!(decoded.claims["iss"], "app");
    assert_eq!(decoded.header.x5t.as_deref(), Some("abc"));
    assert!(!format!("{page:?}").contains("PRIVATE KEY"));

    // The same key bound to another endpoint refuses to sign for this audience.
    let acc = access(&[], vec![key("https://other.example/token")], true);
    let mut job = rt.runtime.job("hostile", limits(30.0), acc).await.unwrap();
    let err = job
        .fetch(&settings(serde_json::json!({"mode": "sign"})), None, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err.failure, JobFailure::Guest(GuestFailure::Config(m))
            if m.contains("may sign only for https://other.example/token, not for \"https://login.example/token\"")),
        "{err}"
    );
}

/// A plugin that asks for an assertion valid until 2100 gets one valid for minutes, with the
/// host's own `jti`; one that asks to sign as another client is refused.
#[tokio::test]
async fn assertions_are_short_lived_whatever_the_plugin_asks() {
    let pem = std::fs::read_to_string(common::repo().join("host/roster/tests/fixtures/test-rsa-key.pem")).unwrap();
    let public = std::fs::read(common::repo().join("host/roster/tests/fixtures/test-rsa-pub.pem")).unwrap();
    let rt = hostile().await;
    let acc = access(&[], vec![signing_key(&pem, "https://login.example/token")], true);
    let mut job = rt.runtime.job("hostile", limits(30.0), acc).await.unwrap();
    let page = job
        .fetch(&settings(serde_json::json!({"mode": "sign-long"})), None, None)
        .await
        .unwrap();
    let jwt = &page.users[0].attributes[0].1;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["https://login.example/token"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        jwt,
        &jsonwebtoken::DecodingKey::from_rsa_pem(&public).unwrap(),
        &validation,
    )
    .unwrap()
    .claims;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let exp = claims["exp"].as_u64().unwrap();
    assert!(
        exp <= now + 600,
        "an assertion valid until {exp} was signed (now {now})"
    );
    assert!(claims["iat"].as_u64().unwrap() <= now && claims["nbf"].as_u64().unwrap() <= now);
    assert_ne!(claims["jti"], "mine");
    assert_eq!(
        (claims["iss"].as_str(), claims["sub"].as_str()),
        (Some("app"), Some("app"))
    );

    let err = job
        .fetch(&settings(serde_json::json!({"mode": "sign-as"})), None, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err.failure, JobFailure::Guest(GuestFailure::Config(m)) if m.contains("signs only with iss = \"app\"")),
        "{err}"
    );
}

#[tokio::test]
async fn other_jobs_complete_while_hostile_ones_run_on_the_same_thread() {
    // A current-thread runtime: if a spinning plugin did not yield, nothing else could run.
    let rt = hostile().await;
    let runtime = rt.runtime.clone();
    let spin = tokio::spawn({
        let runtime = runtime.clone();
        async move {
            let mut job = runtime.job("hostile", limits(4.0), SourceAccess::none()).await.unwrap();
            job.fetch(&settings(serde_json::json!({"mode": "spin"})), None, None)
                .await
        }
    });
    let hog = tokio::spawn({
        let runtime = runtime.clone();
        async move {
            let mut job = runtime
                .job(
                    "hostile",
                    Limits {
                        memory_mib: 32,
                        ..limits(4.0)
                    },
                    SourceAccess::none(),
                )
                .await
                .unwrap();
            job.fetch(&settings(serde_json::json!({"mode": "hog"})), None, None)
                .await
        }
    });
    let panic = tokio::spawn({
        let runtime = runtime.clone();
        async move {
            let mut job = runtime.job("hostile", limits(4.0), SourceAccess::none()).await.unwrap();
            job.fetch(&settings(serde_json::json!({"mode": "panic"})), None, None)
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    for _ in 0..5 {
        let mut job = runtime.job("hostile", limits(4.0), SourceAccess::none()).await.unwrap();
        let page = job
            .fetch(&settings(serde_json::json!({"mode": "slow", "ms": 50})), None, None)
            .await
            .unwrap();
        assert_eq!(page.users[0].username, "hostile@1.0.0");
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "well-behaved jobs waited for the spinning one: {:?}",
        started.elapsed()
    );
    assert!(!spin.is_finished(), "the spinning job should still be running");
    assert!(matches!(
        spin.await.unwrap().unwrap_err().failure,
        JobFailure::Deadline(_)
    ));
    assert!(matches!(
        hog.await.unwrap().unwrap_err().failure,
        JobFailure::Memory(32)
    ));
    assert!(matches!(
        panic.await.unwrap().unwrap_err().failure,
        JobFailure::Panic(_)
    ));
}

/// Reads every page of the sdk-probe fixture from `idp`; the usernames, the delta token and
/// how long it took.
async fn probe_all_pages(idp: &Idp, rt: &TestRuntime) -> (Vec<String>, Option<String>, Duration) {
    let secrets = vec![form_secret(CLIENT_SECRET, &idp.url(), "/oauth/")];
    let acc = access(&[idp.url()], secrets, true);
    let s = settings(serde_json::json!({"base_url": idp.url(), "client_id": "app"}));
    let mut job = rt.runtime.job("sdk-probe", limits(30.0), acc).await.unwrap();
    job.check(&s).await.unwrap();
    let mut cursor = None;
    let mut users = Vec::new();
    let started = Instant::now();
    let delta = loop {
        let page = tokio::time::timeout(PROMPT, job.fetch(&s, cursor.as_deref(), None))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(page.total_hint, Some(6));
        users.extend(page.users.into_iter().map(|u| u.username));
        match page.next {
            Some(n) => cursor = Some(n),
            None => break page.delta_token,
        }
    };
    (users, delta, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_without_retry_after_is_waited_out_until_the_rate_limit_window_resets() {
    let idp = Idp::start().await;
    idp.seen.lock().unwrap().throttle_page_2 = Some(ComeBack::WindowReset);
    let rt = TestRuntime::new(&[("fixture_sdk_probe", "sdk-probe.wasm")]).await;
    let (users, _, took) = probe_all_pages(&idp, &rt).await;
    assert_eq!(users.len(), 6, "the throttled page is read after the wait: {users:?}");
    assert_eq!(idp.seen.lock().unwrap().throttled, 1);
    assert!(
        took >= Duration::from_secs(2),
        "X-Rate-Limit-Reset must be waited for, not the first 1 s backoff: {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_rate_limit_window_pauses_the_source_before_the_server_refuses() {
    let idp = Idp::start().await;
    idp.seen.lock().unwrap().spend_window_on_page_1 = Some(3);
    let rt = TestRuntime::new(&[("fixture_sdk_probe", "sdk-probe.wasm")]).await;
    let (users, _, took) = probe_all_pages(&idp, &rt).await;
    assert_eq!(users.len(), 6);
    assert_eq!(idp.seen.lock().unwrap().throttled, 0, "no request met a 429");
    assert!(took >= Duration::from_secs(2), "page 2 waits for the window: {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_503_reporting_a_long_window_is_retried_after_a_backoff_not_the_reset() {
    let idp = Idp::start().await;
    idp.seen.lock().unwrap().throttle_page_2 = Some(ComeBack::BusyWithLongWindow);
    let rt = TestRuntime::new(&[("fixture_sdk_probe", "sdk-probe.wasm")]).await;
    let (users, _, took) = probe_all_pages(&idp, &rt).await;
    assert_eq!(users.len(), 6, "the busy page is read after a backoff: {users:?}");
    assert_eq!(idp.seen.lock().unwrap().throttled, 1);
    assert!(
        took < Duration::from_secs(20),
        "the hour-long window is not waited for: {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_spent_past_the_call_s_deadline_is_reported_as_the_rate_limit_at_once() {
    let idp = Idp::start().await;
    idp.seen.lock().unwrap().spend_window_on_page_1 = Some(3600);
    let rt = TestRuntime::new(&[("fixture_sdk_probe", "sdk-probe.wasm")]).await;
    let secrets = vec![form_secret(CLIENT_SECRET, &idp.url(), "/oauth/")];
    let s = settings(serde_json::json!({"base_url": idp.url(), "client_id": "app"}));
    let mut job = rt
        .runtime
        .job("sdk-probe", limits(30.0), access(&[idp.url()], secrets, true))
        .await
        .unwrap();
    let page = job.fetch(&s, None, None).await.unwrap();
    let started = Instant::now();
    let err = tokio::time::timeout(PROMPT, job.fetch(&s, page.next.as_deref(), None))
        .await
        .expect("a call that cannot outwait the window fails at once, not at its deadline")
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(&err.failure, JobFailure::Guest(GuestFailure::Transient(_))),
        "a spent window is worth retrying later: {err}"
    );
    assert!(text.contains("rate limit") && text.contains("resets in"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert_eq!(
        idp.seen.lock().unwrap().users_calls,
        1,
        "no request was sent into the spent window"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_pages_with_oauth_and_the_host_waits_out_retry_after() {
    let idp = Idp::start().await;
    idp.seen.lock().unwrap().throttle_page_2 = Some(ComeBack::RetryAfter);
    let rt = TestRuntime::new(&[("fixture_sdk_probe", "sdk-probe.wasm")]).await;
    let (users, delta, took) = probe_all_pages(&idp, &rt).await;
    assert_eq!(
        users,
        ["User.1.0", "User.1.1", "User.2.0", "User.2.1", "User.3.0", "User.3.1"]
    );
    assert_eq!(delta.as_deref(), Some("probe-delta"));
    {
        let seen = idp.seen.lock().unwrap();
        assert_eq!(seen.token_calls, 1, "the token is fetched once and reused across pages");
        assert_eq!(seen.throttled, 1);
    }
    assert!(took >= Duration::from_secs(1), "the host must wait out Retry-After: 1");

    // A wrong secret: check fails with the IdP's reason, as an auth error.
    let s = settings(serde_json::json!({"base_url": idp.url(), "client_id": "app"}));
    let wrong = vec![form_secret("wrong", &idp.url(), "/oauth/")];
    let mut job = rt
        .runtime
        .job("sdk-probe", limits(30.0), access(&[idp.url()], wrong, true))
        .await
        .unwrap();
    let err = job.check(&s).await.unwrap_err();
    assert!(
        matches!(&err.failure, JobFailure::Guest(GuestFailure::Auth(m)) if m.contains("AADSTS7000215")),
        "{err}"
    );
}

#[tokio::test]
async fn a_transform_maps_a_batch_in_order() {
    use roster_runtime::types::User;
    let rt = TestRuntime::new(&[("normalize", "normalize.wasm")]).await;
    let user = |id: &str, name: &str, active: bool| User {
        id: id.into(),
        username: name.into(),
        email: Some("  Alice.Liddell@Corp.Example ".into()),
        display_name: Some(" Alice   Liddell ".into()),
        active,
        attributes: vec![],
    };
    let users = vec![user("1", " Alice@Corp.Example", true), user("2", "BOB", false)];
    let mut job = rt
        .runtime
        .job("normalize", limits(10.0), SourceAccess::none())
        .await
        .unwrap();
    let out = job
        .map_users(r#"{"strip_domain": true, "drop_inactive": true}"#, users.clone())
        .await
        .unwrap();
    let alice = out[0].user().unwrap();
    assert_eq!(alice.username, "alice");
    assert_eq!(alice.email.as_deref(), Some("alice.liddell@corp.example"));
    assert_eq!(alice.display_name.as_deref(), Some("Alice Liddell"));
    assert!(out[1].user().is_none());
    assert!(out[1].reason().unwrap().contains("drop_inactive"));
    // Bad settings are a configuration error naming the field.
    let err = job.map_users(r#"{"lowercase": true}"#, users).await.unwrap_err();
    assert!(
        matches!(&err.failure, JobFailure::Guest(GuestFailure::Config(m)) if m.contains("unknown field `lowercase`")),
        "{err}"
    );
}

/// A transform whose packed functions answer what the contract forbids — bytes that are no
/// batch, one outcome too few, bytes after the last outcome, a reply over the output cap, a
/// patch that does not parse — is refused with an error naming the plugin and what it broke;
/// nothing panics, and the next job of the same plugin is served. Honest patches apply to the
/// users the host sent.
#[tokio::test]
async fn broken_packed_answers_are_refused_as_contract_errors() {
    use roster_runtime::types::{Group, User};
    let rt = TestRuntime::new(&[("fixture_hostile_packed", "hostile-packed.wasm")]).await;
    let users: Vec<User> = (0..3)
        .map(|i| User {
            id: format!("u{i}"),
            username: format!("user{i}"),
            email: None,
            display_name: Some("Zoë".into()),
            active: true,
            attributes: vec![("k".into(), "v".into())],
        })
        .collect();
    let groups = vec![Group {
        id: "g".into(),
        name: "dev".into(),
        description: None,
        attributes: vec![],
    }];
    let small = Limits {
        max_output_bytes: 1 << 20,
        ..Limits::default()
    };
    let job = || async {
        rt.runtime
            .job("hostile-packed", small.clone(), SourceAccess::none())
            .await
            .unwrap()
    };
    for (mode, expect) in [
        ("garbage", "no R1 header"),
        ("short", "map-users-packed returned 2 outcomes for 3 users"),
        ("trailing", "bytes left after the last item"),
    ] {
        let mut j = job().await;
        assert!(j.is_packed());
        let err = j.map_users(mode, users.clone()).await.unwrap_err();
        assert!(
            matches!(&err.failure, JobFailure::Contract(m) if m.contains("map-users-packed") && m.contains(expect)),
            "{mode}: {err}"
        );
        assert!(err.to_string().starts_with("plugin 'hostile-packed'"), "{err}");
        let err = job().await.map_groups(mode, &groups).await.unwrap_err();
        assert!(
            matches!(&err.failure, JobFailure::Contract(m) if m.contains("map-groups-packed")),
            "{mode}: {err}"
        );
    }
    let err = job().await.map_users("huge", users.clone()).await.unwrap_err();
    assert!(
        matches!(err.failure, JobFailure::OutputTooLarge { cap: 1048576, .. }),
        "{err}"
    );
    // A patch with a field tag that does not exist is refused like any broken answer.
    let err = job().await.map_users("bad-patch", users.clone()).await.unwrap_err();
    assert!(
        matches!(&err.failure, JobFailure::Contract(m) if m.contains("field tag is not 0, 1 or 2")),
        "{err}"
    );
    // Patches apply to the users the host sent: the id and untouched fields are the input's.
    let out = job().await.map_users("patched", users.clone()).await.unwrap();
    let kept = out[1].user().unwrap();
    assert_eq!((kept.id.as_str(), kept.username.as_str()), ("u1", "USER1"));
    assert_eq!(kept.display_name.as_deref(), Some("Zoë"));
    assert_eq!(kept.attributes, vec![("k".to_string(), "patched".to_string())]);
    assert_eq!(out[1].reason(), Some("patched"));
    // The honest packed answer, and the record-by-record path of the same plugin, still work.
    let out = job().await.map_users("honest", users.clone()).await.unwrap();
    assert_eq!(out.len(), 3);
    assert_eq!(out[2].user().unwrap().username, "user2");
    let mut j = job().await;
    j.prefer_records();
    assert_eq!(j.map_users("garbage", users).await.unwrap().len(), 3);
}

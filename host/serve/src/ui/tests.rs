use axum::http::HeaderMap;

use super::session::{cookie, safe_next_for_tests, same_origin_for_tests};

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    h
}

#[test]
fn the_session_cookie_is_read_from_any_cookie_header() {
    let h = headers(&[("cookie", "a=1; __Host-roster_session=abc"), ("cookie", "b=2")]);
    assert_eq!(cookie(&h, "__Host-roster_session").as_deref(), Some("abc"));
    assert_eq!(cookie(&h, "b").as_deref(), Some("2"));
    assert_eq!(cookie(&h, "roster_session"), None);
}

#[test]
fn after_login_only_a_page_of_roster_is_a_destination() {
    assert_eq!(safe_next_for_tests(Some("/ui/runs?state=held")), "/ui/runs?state=held");
    for evil in [
        "https://evil.example/",
        "//evil.example",
        "/ui//evil",
        "/ui\\evil",
        "/api/v1/runs",
    ] {
        assert_eq!(safe_next_for_tests(Some(evil)), "/ui", "{evil}");
    }
    assert_eq!(safe_next_for_tests(None), "/ui");
}

#[test]
fn a_change_from_another_site_is_refused() {
    let host = ("host", "127.0.0.1:8080");
    assert!(same_origin_for_tests(&headers(&[host])));
    assert!(same_origin_for_tests(&headers(&[
        host,
        ("sec-fetch-site", "same-origin")
    ])));
    assert!(same_origin_for_tests(&headers(&[
        host,
        ("origin", "http://127.0.0.1:8080")
    ])));
    assert!(!same_origin_for_tests(&headers(&[
        host,
        ("sec-fetch-site", "cross-site")
    ])));
    assert!(!same_origin_for_tests(&headers(&[
        host,
        ("sec-fetch-site", "same-site")
    ])));
    assert!(!same_origin_for_tests(&headers(&[
        host,
        ("origin", "http://evil.example")
    ])));
    assert!(!same_origin_for_tests(&headers(&[host, ("origin", "null")])));
}

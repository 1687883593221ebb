//! `entra`: a Roster connector for Microsoft Entra ID through Microsoft Graph v1.0.
//!
//! * Auth: OAuth 2.0 client credentials against the tenant's token endpoint, with a client
//!   secret or a certificate (an RS256 client assertion the host signs); the token is reused
//!   until shortly before it expires and renewed once when Graph answers 401.
//! * Full fetch ([`full`]): users and groups with `$select` and `$top`, following
//!   `@odata.nextLink`, each group's members; or, for a groups or app scope, the listed groups /
//!   the application's assignments expanded with `transitiveMembers`.
//! * Incremental fetch ([`delta`]): `/users/delta` and `/groups/delta` (members tracked) from
//!   the delta links of the last fetch; `@removed` `changed` (restorable) vs `deleted`;
//!   `members@delta` additions and removals. A token Graph refuses, or one made under other
//!   settings, asks the host for a full fetch.
//! * Throttling (429/503 with Retry-After) is waited out by the host's request budget.
//!
//! Paging, the cursor's encoding, the delta token's checks and the settings' schema are the
//! SDK's (`roster_sdk::driver`, `delta`, `settings`); this crate says what one step reads.
//!
//! Settings: [`settings::Settings`]; the README's "Microsoft Entra ID" section shows a source.

pub mod check;
pub mod cursor;
pub mod delta;
pub mod full;
pub mod graph;
pub mod model;
pub mod scope;
pub mod settings;

use roster_sdk::driver::{Begin, Fetch, Next, Work};
use roster_sdk::idp::Idp;
use roster_sdk::{Imports, PluginError};

use cursor::{Cursor, DeltaState, Step};
use graph::Graph;
use settings::Settings;

/// The connector for one source's settings.
pub struct Entra {
    s: Settings,
}

impl Idp for Entra {
    const NAME: &'static str = "entra";
    const DESCRIPTION: &'static str =
        "Microsoft Entra ID users, groups and memberships through Microsoft Graph (full and delta)";
    type Settings = Settings;

    fn new(s: Settings) -> Self {
        Entra { s }
    }

    fn check(&self, host: &Imports<'_>) -> Result<(), PluginError> {
        check::check(&Graph::new(&self.s, host.http))
    }
}

impl Fetch for Entra {
    type Cursor = Cursor;
    type Delta = DeltaState;

    fn begin(&self, from: Begin<DeltaState>, work: &mut Work<'_>) -> Result<Next<Cursor, DeltaState>, PluginError> {
        Ok(Next::Continue(match from {
            Begin::Full => Cursor {
                step: Step::Start,
                token: DeltaState::default(),
            },
            Begin::Incremental(state) => delta::start(&Graph::new(&self.s, work.http()), state)?,
        }))
    }

    fn step(&self, mut cur: Cursor, work: &mut Work<'_>) -> Result<Next<Cursor, DeltaState>, PluginError> {
        let g = Graph::new(&self.s, work.http());
        if cur.step.is_incremental() {
            delta::advance(&g, &mut cur, work)?;
        } else {
            full::advance(&g, &mut cur, work)?;
        }
        if g.read_an_empty_page() {
            work.empty_page();
        }
        Ok(match cur.step {
            Step::Done => Next::Done(Some(cur.token)),
            _ => Next::Continue(cur),
        })
    }
}

roster_sdk::export_idp!(Entra);

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use roster_sdk::{Page, Request, Response};

    use roster_sdk::http::Transport;

    use super::*;

    const SETTINGS: &str =
        r#"{"tenant_id":"t","client_id":"c","graph_url":"https://graph.test","login_url":"https://login.test"}"#;

    /// A tenant of three users and two groups (g2 holds u3 and g1) behind a scripted Graph.
    #[derive(Default)]
    struct Tenant {
        /// Paths that answer 503 once.
        flaky: RefCell<Vec<&'static str>>,
        log: RefCell<Vec<String>>,
    }

    fn ok(body: serde_json::Value) -> Response {
        Response {
            status: 200,
            headers: vec![],
            body: body.to_string().into_bytes(),
        }
    }

    fn user(id: &str) -> serde_json::Value {
        serde_json::json!({"id": id, "userPrincipalName": format!("{id}@x"), "displayName": id, "accountEnabled": true})
    }

    fn member(kind: &str, id: &str) -> serde_json::Value {
        serde_json::json!({"@odata.type": format!("#microsoft.graph.{kind}"), "id": id})
    }

    impl Transport for Tenant {
        fn send(&self, req: Request) -> Result<Response, PluginError> {
            if req.url == "https://login.test/t/oauth2/v2.0/token" {
                return Ok(ok(serde_json::json!({"access_token": "tok", "expires_in": 3600})));
            }
            let rest = req.url.strip_prefix("https://graph.test/v1.0").unwrap_or(&req.url);
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            self.log.borrow_mut().push(path.to_string());
            let mut flaky = self.flaky.borrow_mut();
            if let Some(i) = flaky.iter().position(|p| *p == path) {
                flaky.remove(i);
                return Ok(Response {
                    status: 503,
                    headers: vec![],
                    body: vec![],
                });
            }
            let link = |path: &str, token: &str| format!("https://graph.test/v1.0{path}?$deltatoken={token}");
            let json = match (path, query) {
                ("/users/delta", q) if q.contains("deltatoken=latest") => {
                    serde_json::json!({"value": [], "@odata.deltaLink": link(path, "U1")})
                }
                ("/groups/delta", q) if q.contains("deltatoken=latest") => {
                    serde_json::json!({"value": [], "@odata.deltaLink": link(path, "G1")})
                }
                ("/users/delta", q) if q.contains("deltatoken=U1") => {
                    serde_json::json!({"value": [user("u2"), {"id": "u3", "@removed": {"reason": "deleted"}}], "@odata.deltaLink": link(path, "U2")})
                }
                ("/groups/delta", q) if q.contains("deltatoken=G1") => {
                    serde_json::json!({"value": [], "@odata.deltaLink": link(path, "G2")})
                }
                ("/users", q) if q.contains("$count=true") => serde_json::json!({"value": [], "@odata.count": 3}),
                ("/groups", q) if q.contains("$count=true") => serde_json::json!({"value": [], "@odata.count": 2}),
                ("/users", _) => serde_json::json!({"value": [user("u1"), user("u2"), user("u3")]}),
                ("/groups", _) => serde_json::json!({"value": [
                    {"id": "g1", "displayName": "one", "mailNickname": "one", "securityEnabled": true},
                    {"id": "g2", "displayName": "two", "mailNickname": "two", "securityEnabled": true}]}),
                ("/groups/g1/members", _) => serde_json::json!({"value": [member("user", "u1"), member("user", "u2")]}),
                ("/groups/g2/members", _) => {
                    serde_json::json!({"value": [member("user", "u3"), member("group", "g1")]})
                }
                _ => {
                    return Ok(Response {
                        status: 404,
                        headers: vec![],
                        body: br#"{"error":{"code":"Request_ResourceNotFound","message":"no such route"}}"#.to_vec(),
                    });
                }
            };
            Ok(ok(json))
        }
    }

    fn fetch(t: &Tenant, settings: &str, cursor: Option<&str>, delta: Option<&str>) -> Result<Page, PluginError> {
        roster_sdk::idp::fetch::<Entra>(settings, cursor, delta, &roster_sdk::Imports::http(t))
    }

    fn counts(p: &Page) -> (usize, usize, usize) {
        (p.users.len(), p.groups.len(), p.memberships.len())
    }

    #[test]
    fn a_full_fetch_keeps_what_it_read_when_graph_fails_after_progress_and_continues_from_there() {
        let t = Tenant::default();
        t.flaky.borrow_mut().push("/groups/g2/members");
        let first = fetch(&t, SETTINGS, None, None).unwrap();
        // Users, then g1 with its members; g2's members failed, so g2 is not on the page.
        assert_eq!(counts(&first), (3, 1, 2));
        assert_eq!(first.total_hint, Some(5));
        assert!(first.delta_token.is_none());
        let second = fetch(&t, SETTINGS, first.next.as_deref(), None).unwrap();
        assert_eq!(counts(&second), (0, 1, 2));
        assert_eq!(second.groups[0].id, "g2");
        assert!(
            second
                .memberships
                .iter()
                .any(|m| m.member_id == "g1" && m.member_is_group)
        );
        assert_eq!(second.total_hint, Some(5));
        assert!(second.next.is_none());
        // The token names the "sync from now" links in plain text.
        let token = second.delta_token.unwrap();
        assert!(
            token.contains("deltatoken=U1") && token.contains("deltatoken=G1"),
            "{token}"
        );
        let members_reads = t.log.borrow().iter().filter(|p| p.ends_with("/members")).count();
        assert_eq!(members_reads, 3, "g1 once, g2 twice (the failure and its retry)");
    }

    #[test]
    fn an_incremental_fetch_reads_the_changes_and_a_token_from_other_scope_settings_is_expired() {
        let t = Tenant::default();
        let full = fetch(&t, SETTINGS, None, None).unwrap();
        let token = full.delta_token.unwrap();
        let changes = fetch(&t, SETTINGS, None, Some(&token)).unwrap();
        assert_eq!(
            changes.users.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
            vec!["u2"]
        );
        assert_eq!(changes.removed_users.len(), 1);
        assert!(changes.next.is_none());
        let next = changes.delta_token.unwrap();
        assert!(
            next.contains("deltatoken=U2") && next.contains("deltatoken=G2"),
            "{next}"
        );
        // Page sizes and credentials do not change the scope; a filter does.
        let bigger = SETTINGS.replace(r#""client_id":"c""#, r#""client_id":"c","page_size":100"#);
        assert!(fetch(&t, &bigger, None, Some(&token)).is_ok());
        let filtered = SETTINGS.replace(
            r#""client_id":"c""#,
            r#""client_id":"c","user_filter":"accountEnabled eq true""#,
        );
        let err = fetch(&t, &filtered, None, Some(&token)).unwrap_err();
        assert!(
            matches!(&err, PluginError::ExpiredDelta(m) if m.contains("scope or attributes changed")),
            "{err:?}"
        );
        let err = fetch(&t, SETTINGS, None, Some(r#"{"v":2,"fingerprint":"x"}"#)).unwrap_err();
        assert!(matches!(err, PluginError::ExpiredDelta(_)), "{err:?}");
    }

    #[test]
    fn a_cursor_from_elsewhere_is_refused_naming_the_connector() {
        let err = fetch(&Tenant::default(), SETTINGS, Some(r#"{"step":{"step":"start"}}"#), None).unwrap_err();
        assert!(
            matches!(&err, PluginError::Fatal(m) if m.contains("entra connector cannot continue")),
            "{err:?}"
        );
    }
}

//! The `entra` connector's page decoding: Microsoft Graph's answers (collections, delta
//! rounds, `@removed`, `members@delta`, errors) read by the connector as the SDK's driver pages
//! through a fetch, a delta fetch or a `check`.
//!
//! Input, in parts between NUL bytes: a header (words: `full`, `delta` or `check`; `tenant`,
//! `filtered`, `groups` or `app`), then Graph's answers in the order the connector asks,
//! each its body, optionally after a status (`404 {"error": …}`). The token endpoint always
//! answers with a token; a request past the last answer fails transiently (as a dropped
//! connection does).

use std::cell::RefCell;
use std::collections::VecDeque;

use entra::Entra;
use entra::cursor::DeltaState;
use entra::settings::Settings;
use roster_sdk::delta::DeltaFormat;
use roster_sdk::driver::Fetch;
use roster_sdk::http::Transport;
use roster_sdk::idp::Idp;
use roster_sdk::settings::Fingerprint;
use roster_sdk::{Imports, Page, PluginError, Request, Response};

use crate::split::{parts, text};

const GRAPH: &str = "https://graph.test";
const BASE: &str =
    r#""tenant_id":"t","client_id":"c","graph_url":"https://graph.test","login_url":"https://login.test""#;

/// Pages a fetch may take before the body stops it; a real fetch of the corpus takes a few.
const MAX_PAGES: usize = 40;

/// Graph answering from the script.
struct Script {
    answers: RefCell<VecDeque<Response>>,
}

impl Transport for Script {
    fn send(&self, req: Request) -> Result<Response, PluginError> {
        if req.url.starts_with("https://login.test/") {
            return Ok(Response {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: br#"{"access_token":"tok","token_type":"Bearer","expires_in":3599}"#.to_vec(),
            });
        }
        self.answers
            .borrow_mut()
            .pop_front()
            .ok_or_else(|| PluginError::Transient("the connection was reset".into()))
    }
}

/// An answer: `NNN ` then the body, or the body alone (200).
pub(crate) fn answer(part: &[u8]) -> Response {
    let (status, body) = match part {
        [a, b, c, b' ' | b'\n', rest @ ..] if [a, b, c].into_iter().all(u8::is_ascii_digit) => {
            let s = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
            (s, rest)
        }
        _ => (200, part),
    };
    Response {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_vec(),
    }
}

fn settings(header: &str) -> String {
    let scope = if header.contains("filtered") {
        r#","user_filter":"accountEnabled eq true","group_filter":"startswith(displayName,'bb-')""#
    } else if header.contains("groups") {
        r#","scope":"groups","groups":["g1","Engineering"]"#
    } else if header.contains("app") {
        r#","scope":"app","app_id":"a1""#
    } else {
        ""
    };
    format!("{{{BASE}{scope},\"attributes\":[\"jobTitle\"]}}")
}

/// A delta token as the last full fetch of these settings would have left it.
fn token(settings: &str) -> String {
    let s: Settings = roster_sdk::settings::read(settings).expect("the body's settings are valid");
    let scope = Fingerprint::of(&s).expect("the body's settings fingerprint");
    let state = DeltaState {
        users: Some(format!("{GRAPH}/v1.0/users/delta?$deltatoken=U1")),
        groups: Some(format!("{GRAPH}/v1.0/groups/delta?$deltatoken=G1")),
        tree: ["g1", "g2"].map(String::from).into(),
        members: ["u1", "u2"].map(String::from).into(),
        direct_users: Default::default(),
        assigned: Default::default(),
    };
    let format = DeltaFormat {
        connector: "entra",
        version: <Entra as Fetch>::DELTA_VERSION,
        scope: &scope,
    };
    format.encode(&state).expect("a state encodes")
}

/// Runs the fetch (or check) the header asks for against the scripted answers.
pub fn run(data: &[u8]) {
    let p = parts(data);
    let header = text(p[0]).to_ascii_lowercase();
    let settings = settings(&header);
    let script = Script {
        answers: RefCell::new(p[1..].iter().map(|a| answer(a)).collect()),
    };
    let delta = header.contains("delta").then(|| token(&settings));
    drive::<Entra>(&header, &settings, delta.as_deref(), &Imports::http(&script), |page| {
        well_formed(page, &settings)
    });
}

/// How a [`drive`] ended.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// The check passed, or the fetch's last page came.
    Done,
    /// The check or a fetch call failed with this (explained) error.
    Failed(PluginError),
    /// The fetch was still paging after [`MAX_PAGES`] pages.
    Cut,
}

/// Runs connector `C`'s `check` (when the header says `check`) or pages through its fetch
/// (incremental from `delta` when given) over `host` (a scripted transport or directory),
/// holding each page to `page_ok` and each error to [`explained`].
pub(crate) fn drive<C: Idp>(
    header: &str,
    settings: &str,
    delta: Option<&str>,
    host: &Imports<'_>,
    mut page_ok: impl FnMut(&Page),
) -> Outcome {
    if header.contains("check") {
        return match roster_sdk::idp::check::<C>(settings, host) {
            Ok(()) => Outcome::Done,
            Err(e) => {
                explained(&e);
                Outcome::Failed(e)
            }
        };
    }
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        match roster_sdk::idp::fetch::<C>(settings, cursor.as_deref(), delta, host) {
            Ok(page) => {
                page_ok(&page);
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => return Outcome::Done,
                }
            }
            Err(e) => {
                explained(&e);
                return Outcome::Failed(e);
            }
        }
    }
    Outcome::Cut
}

/// An error the host can show: it says something.
pub(crate) fn explained(e: &PluginError) {
    let (PluginError::Config(m)
    | PluginError::Auth(m)
    | PluginError::Transient(m)
    | PluginError::ExpiredDelta(m)
    | PluginError::Fatal(m)) = e;
    assert!(!m.trim().is_empty(), "an error without a message: {e:?}");
}

/// What the host relies on in a page: every record names its object, and the last page's
/// delta token is one this connector reads back under the same settings.
pub(crate) fn well_formed(page: &Page, settings: &str) {
    well_formed_records(page);
    if let Some(token) = &page.delta_token {
        let s: Settings = roster_sdk::settings::read(settings).expect("valid settings");
        let scope = Fingerprint::of(&s).expect("fingerprint");
        let format = DeltaFormat {
            connector: "entra",
            version: <Entra as Fetch>::DELTA_VERSION,
            scope: &scope,
        };
        let back: Result<DeltaState, _> = format.decode(token);
        assert!(
            back.is_ok(),
            "the connector's own delta token does not read back: {back:?}"
        );
    }
}

/// What the host relies on in any connector's page: every record names its object.
pub(crate) fn well_formed_records(page: &Page) {
    for u in &page.users {
        assert!(!u.id.is_empty(), "a user without an id: {u:?}");
    }
    for g in &page.groups {
        assert!(
            !g.id.is_empty() && !g.name.is_empty(),
            "a group without an id or name: {g:?}"
        );
    }
    for m in page.memberships.iter().chain(&page.removed_memberships) {
        assert!(!m.group_id.is_empty() && !m.member_id.is_empty(), "{m:?}");
    }
    for r in page.removed_users.iter().chain(&page.removed_groups) {
        assert!(!r.id.is_empty(), "{r:?}");
    }
}

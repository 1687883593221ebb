//! The `crowd` connector's reading of Jira's or Crowd's answers: users and groups listings,
//! the `/group/membership` document, per-group listings, event documents and error entities,
//! read as the SDK's driver pages through a full fetch, an incremental fetch or a `check`.
//!
//! Input, in parts between NUL bytes: a header (words: `full`, `delta` or `check`; `paged`
//! for a `page_size`, `flat` for nested groups off, `bare` for no attributes), then the
//! server's answers in the order the connector asks, each its XML body, optionally after a
//! status (`410 <error>…`). Every answer carries `X-Embedded-Crowd-Version` unless its part
//! starts with `!`; a request past the last answer fails transiently (as a dropped connection
//! does).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crowd::Crowd;
use crowd::cursor::{DeltaState, Events};
use crowd::settings::Settings;
use roster_sdk::delta::DeltaFormat;
use roster_sdk::driver::Fetch;
use roster_sdk::http::Transport;
use roster_sdk::settings::Fingerprint;
use roster_sdk::{Imports, PluginError, Request, Response};

use crate::entra::{drive, well_formed_records};
use crate::split::{parts, text};

/// Jira answering from the script.
struct Script {
    answers: RefCell<VecDeque<Response>>,
}

impl Transport for Script {
    fn send(&self, _: Request) -> Result<Response, PluginError> {
        self.answers
            .borrow_mut()
            .pop_front()
            .ok_or_else(|| PluginError::Transient("the connection was reset".into()))
    }
}

/// An answer: `!` (no version header), then `NNN ` and the body, or the body alone (200).
fn answer(part: &[u8]) -> Response {
    let (crowd, part) = match part {
        [b'!', rest @ ..] => (false, rest),
        _ => (true, part),
    };
    let mut r = crate::entra::answer(part);
    r.headers = vec![("content-type".into(), "application/xml".into())];
    if crowd {
        r.headers
            .push(("X-Embedded-Crowd-Version".into(), "Jira/9.12.2".into()));
    }
    r
}

fn settings(header: &str) -> String {
    let mut s = String::from(r#"{"server_url":"https://jira.test","application_name":"roster""#);
    if header.contains("paged") {
        s.push_str(r#","page_size":2"#);
    }
    if header.contains("flat") {
        s.push_str(r#","use_nested_groups":false"#);
    }
    if header.contains("bare") {
        s.push_str(r#","user_attributes":false"#);
    }
    s.push('}');
    s
}

/// The delta token format of these settings.
fn tokens(scope: &Fingerprint) -> DeltaFormat<'_> {
    DeltaFormat {
        connector: "crowd",
        version: <Crowd as Fetch>::DELTA_VERSION,
        scope,
    }
}

fn scope(settings: &str) -> Fingerprint {
    let s: Settings = roster_sdk::settings::read(settings).expect("the body's settings are valid");
    Fingerprint::of(&s).expect("the body's settings fingerprint")
}

/// A delta token as the last full fetch of these settings would have left it.
fn token(settings: &str) -> String {
    let state = DeltaState {
        events: Events::Token { token: "T1".into() },
        keys: BTreeMap::from([("alice".into(), "JIRAUSER10000".into())]),
        groups: BTreeSet::from(["devs".into(), "staff".into()]),
    };
    tokens(&scope(settings)).encode(&state).expect("a state encodes")
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
    drive::<Crowd>(&header, &settings, delta.as_deref(), &Imports::http(&script), |page| {
        well_formed_records(page);
        if let Some(token) = &page.delta_token {
            let back: Result<DeltaState, _> = tokens(&scope(&settings)).decode(token);
            assert!(
                back.is_ok(),
                "the connector's own delta token does not read back: {back:?}"
            );
        }
    });
}

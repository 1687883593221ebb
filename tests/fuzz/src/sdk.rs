//! The connector SDK's readers of what a connector gets back from outside: the page cursor
//! and delta token the host hands back (stored between calls and runs), a token endpoint's
//! answer, and the `Retry-After` and `Link` headers of an API's answers.
//!
//! Input, in parts between NUL bytes: a paging cursor, a delta token, the token endpoint's
//! answer (optionally after a status, as in [`crate::entra`]), a header value, then Graph's
//! answers for the fetch resumed from the cursor.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use entra::Entra;
use entra::cursor::DeltaState;
use roster_sdk::delta::DeltaFormat;
use roster_sdk::driver::Fetch;
use roster_sdk::errors::{error_detail, parse_retry_after};
use roster_sdk::http::Transport;
use roster_sdk::oauth::{ClientAuth, ClientCredentials};
use roster_sdk::paging::link_next;
use roster_sdk::settings::Fingerprint;
use roster_sdk::{Imports, PluginError, Request, Response};

use crate::entra::{answer, explained, well_formed};
use crate::split::{parts, text};

const SETTINGS: &str =
    r#"{"tenant_id":"t","client_id":"c","graph_url":"https://graph.test","login_url":"https://login.test"}"#;
const TOKEN_URL: &str = "https://login.test/t/oauth2/v2.0/token";

/// Pages a resumed fetch may take before the body stops it.
const MAX_PAGES: usize = 20;

/// The token endpoint answering from the script, and Graph answering the rest.
struct Script {
    token: Response,
    answers: RefCell<VecDeque<Response>>,
}

impl Transport for Script {
    fn send(&self, req: Request) -> Result<Response, PluginError> {
        if req.url.starts_with("https://login.test/") {
            return Ok(self.token.clone());
        }
        self.answers
            .borrow_mut()
            .pop_front()
            .ok_or_else(|| PluginError::Transient("the connection was reset".into()))
    }
}

/// Reads each part with the SDK's reader for it.
pub fn run(data: &[u8]) {
    let p = parts(data);
    let part = |i: usize| p.get(i).map(|b| text(b)).unwrap_or_default();
    let script = Script {
        token: answer(
            p.get(2)
                .copied()
                .unwrap_or(b"{\"access_token\":\"tok\",\"expires_in\":3600}"),
        ),
        answers: RefCell::new(p.iter().skip(4).map(|a| answer(a)).collect()),
    };
    delta_token(&part(1));
    token_answer(&script);
    headers(&part(3));
    resumed(&part(0), &script);
}

/// Any text as a delta token: this connector's state, or `expired-delta` (a full fetch),
/// never another error: a delta token is never worth failing a run over.
fn delta_token(text: &str) {
    let s = roster_sdk::settings::read(SETTINGS).expect("valid settings");
    let scope = Fingerprint::of::<entra::settings::Settings>(&s).expect("fingerprint");
    let format = DeltaFormat {
        connector: "entra",
        version: <Entra as Fetch>::DELTA_VERSION,
        scope: &scope,
    };
    match format.decode::<DeltaState>(text) {
        Ok(_) | Err(PluginError::ExpiredDelta(_)) => {}
        Err(e) => panic!("an unusable delta token is not expired-delta: {e:?}"),
    }
}

/// A token endpoint's answer: a token, or an error that says why.
fn token_answer(script: &Script) {
    let creds = ClientCredentials {
        token_url: TOKEN_URL.into(),
        client_id: "c".into(),
        auth: ClientAuth::Secret {
            secret: "client_secret".into(),
        },
        scope: Some("https://graph.test/.default".into()),
        body: roster_sdk::oauth::TokenBody::Form,
    };
    creds.forget();
    match creds.token(script) {
        Ok(token) => assert!(
            String::from_utf8_lossy(&script.token.body).contains(&token),
            "a token that is not in the answer: {token:?}"
        ),
        Err(e) => explained(&e),
    }
    creds.forget();
    let _ = error_detail(&script.token.body);
}

/// A header value as `Retry-After` and as `Link`.
fn headers(value: &str) {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let wait = parse_retry_after(value, now);
    if let Ok(secs) = value.trim().parse::<u64>() {
        assert_eq!(wait, Some(Duration::from_secs(secs)));
    }
    if let Some(next) = link_next(value) {
        assert!(value.contains(&next), "link_next({value:?}) = {next:?}");
    }
}

/// A fetch resumed from any text as its cursor: the connector's own position, or an error
/// saying the cursor is not its own.
fn resumed(cursor: &str, script: &Script) {
    let mut cursor = cursor.to_string();
    for _ in 0..MAX_PAGES {
        match roster_sdk::idp::fetch::<Entra>(SETTINGS, Some(&cursor), None, &Imports::http(script)) {
            Ok(page) => {
                well_formed(&page, SETTINGS);
                match page.next {
                    Some(next) => cursor = next,
                    None => return,
                }
            }
            Err(e) => {
                explained(&e);
                return;
            }
        }
    }
}

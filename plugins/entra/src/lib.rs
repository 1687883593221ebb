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
//! Settings: [`settings::Settings`]; the README's "Microsoft Entra ID" section shows a source.

pub mod check;
pub mod cursor;
pub mod delta;
pub mod full;
pub mod graph;
pub mod model;
pub mod scope;
pub mod settings;

use std::time::Duration;

use roster_sdk::http::{HostTransport, Transport};
use roster_sdk::paging::PageBudget;
use roster_sdk::{Connector, Page, PluginError, PluginInfo};

use cursor::{Cursor, DeltaToken, Step};
use graph::Graph;
use settings::Settings;

/// Requests one `fetch` call may make before it returns a page.
const REQUESTS_PER_PAGE: u32 = 24;
/// Records after which a page is returned.
const RECORDS_PER_PAGE: usize = 5_000;
/// Time after which a page is returned (calls have a deadline of their own).
const TIME_PER_PAGE: Duration = Duration::from_secs(20);

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Entra;

fn records(p: &Page) -> usize {
    p.users.len()
        + p.groups.len()
        + p.memberships.len()
        + p.removed_memberships.len()
        + p.removed_users.len()
        + p.removed_groups.len()
}

fn append(into: &mut Page, from: Page) {
    into.users.extend(from.users);
    into.groups.extend(from.groups);
    into.memberships.extend(from.memberships);
    into.removed_memberships.extend(from.removed_memberships);
    into.removed_users.extend(from.removed_users);
    into.removed_groups.extend(from.removed_groups);
}

/// One page of a fetch: steps until the page is full or the fetch is done. A transient failure
/// after some steps returns what was read, with the cursor at the failed step, so the host's
/// retry continues from there instead of starting the page again.
pub fn fetch_page(
    s: &Settings,
    t: &dyn Transport,
    cursor: Option<&str>,
    delta: Option<&str>,
) -> Result<Page, PluginError> {
    let g = Graph::new(s, t);
    let mut cur: Cursor = match roster_sdk::paging::decode(cursor)? {
        Some(c) => c,
        None => match delta {
            Some(token) => delta::start(&g, token)?,
            None => Cursor {
                step: Step::Start,
                token: DeltaToken {
                    v: cursor::TOKEN_VERSION,
                    fingerprint: s.fingerprint(),
                    ..DeltaToken::default()
                },
                hint: None,
            },
        },
    };
    let mut page = Page::empty();
    let mut budget = PageBudget::new(REQUESTS_PER_PAGE, RECORDS_PER_PAGE, TIME_PER_PAGE);
    loop {
        let before = g.requests.get();
        let mut next = cur.clone();
        let mut part = Page::empty();
        let stepped = if delta.is_some() {
            delta::advance(&g, &mut next, &mut part)
        } else {
            full::advance(&g, &mut next, &mut part)
        };
        for _ in before..g.requests.get() {
            budget.spend();
        }
        match stepped {
            Ok(()) => {
                append(&mut page, part);
                cur = next;
            }
            Err(PluginError::Transient(why)) if records(&page) > 0 => {
                roster_sdk::log(
                    roster_sdk::Level::Warn,
                    &format!("{why}; returning the records read so far, the next call continues from here"),
                );
                break;
            }
            Err(e) => return Err(e),
        }
        if matches!(cur.step, Step::Done) {
            page.delta_token = Some(roster_sdk::paging::encode(&cur.token)?);
            page.total_hint = cur.hint;
            return Ok(page);
        }
        if budget.exhausted(records(&page)) {
            break;
        }
    }
    page.total_hint = cur.hint;
    page.next = Some(roster_sdk::paging::encode(&cur)?);
    Ok(page)
}

impl Connector for Entra {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "entra".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Microsoft Entra ID users, groups and memberships through Microsoft Graph (full and delta)"
                .into(),
            settings_schema: settings::SCHEMA.into(),
        }
    }

    fn check(settings: String) -> Result<(), PluginError> {
        let s = Settings::parse(&settings)?;
        check::check(&Graph::new(&s, &HostTransport))
    }

    fn fetch(settings: String, cursor: Option<String>, delta: Option<String>) -> Result<Page, PluginError> {
        let s = Settings::parse(&settings)?;
        fetch_page(&s, &HostTransport, cursor.as_deref(), delta.as_deref())
    }
}

// Native builds (unit tests) have no host to export to.
#[cfg(target_arch = "wasm32")]
roster_sdk::export_connector!(Entra);

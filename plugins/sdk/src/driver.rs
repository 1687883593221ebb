//! The page driver: a connector describes its fetch as steps over a cursor of its own type, and
//! the driver turns them into the pages the host asks for.
//!
//! One `fetch` call runs steps until the page [`Budget`] is spent (requests, records, time) or
//! the fetch is done. Between calls the driver keeps the connector's cursor in the page's
//! `next` (JSON the connector never sees encoded), with the running `total-hint`; on the last
//! page it wraps the connector's delta state into a token ([`crate::delta`]) carrying the
//! settings' [`Fingerprint`]. A connector therefore writes no page loop, no cursor encoding and
//! no token checks:
//!
//! ```ignore
//! #[derive(Clone, Serialize, Deserialize)]
//! enum At { Users { url: String }, Groups { url: String } }
//!
//! impl Fetch for Okta {
//!     type Cursor = At;
//!     type Delta = String; // the system log's `since`
//!     fn begin(&self, from: Begin<String>, _: &mut Work<'_>) -> Result<Next<At, String>, PluginError> {
//!         Ok(Next::Continue(At::Users { url: self.users_url(&from) }))
//!     }
//!     fn step(&self, at: At, work: &mut Work<'_>) -> Result<Next<At, String>, PluginError> {
//!         match at {
//!             At::Users { url } => {
//!                 let (users, next) = self.list_users(work.http(), &url)?;
//!                 work.out.users.extend(users);
//!                 Ok(Next::Continue(match next {
//!                     Some(url) => At::Users { url },
//!                     None => At::Groups { url: self.groups_url() },
//!                 }))
//!             }
//!             At::Groups { .. } => { /* … */ Ok(Next::Done(Some(self.now()))) }
//!         }
//!     }
//! }
//! ```
//!
//! A step is the unit of retry: its records reach the page only when it succeeds, and a
//! transient failure after earlier steps of the call read something returns those records with
//! the cursor at the failed step, so the host's page retry does not start the page over.

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::Hasher;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::delta::DeltaFormat;
use crate::http::Transport;
use crate::ldap::{Connection, Directory, LdapError, SearchPage, SearchRequest};
use crate::settings::Fingerprint;
use crate::{Group, Level, Membership, Page, PluginError, Removal, User};

/// How much one `fetch` call may do before it returns a page. The host stages each page in one
/// transaction and gives every call a deadline, so a page should be neither one tiny request
/// nor minutes of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Requests (through [`Work::http`] and [`Work::ldap`]) after which the page is returned.
    pub requests: u32,
    /// Records (users, groups, memberships, removals) after which the page is returned.
    pub records: usize,
    /// Time after which the page is returned.
    pub time: Duration,
}

impl Default for Budget {
    /// Suits a connector that makes a request or two per step: well inside a call's deadline
    /// and the host's page limits.
    fn default() -> Self {
        Budget {
            requests: 24,
            records: 5_000,
            time: Duration::from_secs(20),
        }
    }
}

impl Budget {
    fn spent(&self, requests: u32, records: usize, elapsed: Duration) -> bool {
        requests >= self.requests || records >= self.records || elapsed >= self.time
    }
}

/// How a fetch starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin<D> {
    /// Everything in scope.
    Full,
    /// The changes since the fetch that left this state (its token was checked: same
    /// connector, same state version, same scope settings).
    Incremental(D),
}

/// What comes after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next<C, D> {
    /// More to read, from this cursor.
    Continue(C),
    /// The fetch is complete; the next incremental fetch starts from this state (`None`: the
    /// connector cannot read changes only, so the host always fetches in full).
    Done(Option<D>),
}

/// Records read by a step.
#[derive(Debug, Default, Clone)]
pub struct Records {
    /// Users.
    pub users: Vec<User>,
    /// Groups.
    pub groups: Vec<Group>,
    /// Memberships (full fetch: all; incremental: added).
    pub memberships: Vec<Membership>,
    /// Incremental fetch: memberships removed.
    pub removed_memberships: Vec<Membership>,
    /// Incremental fetch: users gone.
    pub removed_users: Vec<Removal>,
    /// Incremental fetch: groups gone.
    pub removed_groups: Vec<Removal>,
}

impl Records {
    /// Every record, of every kind.
    pub fn len(&self) -> usize {
        self.users.len()
            + self.groups.len()
            + self.memberships.len()
            + self.removed_memberships.len()
            + self.removed_users.len()
            + self.removed_groups.len()
    }

    /// True when nothing was read.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn append(&mut self, from: Records) {
        self.users.extend(from.users);
        self.groups.extend(from.groups);
        self.memberships.extend(from.memberships);
        self.removed_memberships.extend(from.removed_memberships);
        self.removed_users.extend(from.removed_users);
        self.removed_groups.extend(from.removed_groups);
    }

    fn into_page(self) -> Page {
        Page {
            users: self.users,
            groups: self.groups,
            memberships: self.memberships,
            removed_memberships: self.removed_memberships,
            removed_users: self.removed_users,
            removed_groups: self.removed_groups,
            ..Page::empty()
        }
    }
}

/// What a step works with: where its records go, how it sends requests, how much room the
/// page has left.
pub struct Work<'a> {
    /// The records this step read; they reach the page only if the step succeeds.
    pub out: Records,
    http: &'a dyn Transport,
    ldap: &'a dyn Directory,
    expected: Option<u64>,
    room: usize,
    empty_page: bool,
}

impl<'a> Work<'a> {
    fn new(io: &'a Counted<'a>, room: usize) -> Self {
        Work {
            out: Records::default(),
            http: io,
            ldap: io,
            expected: None,
            room,
            empty_page: false,
        }
    }

    /// Says this step was answered a page with nothing on it that still pointed to a next
    /// page. Vendors do that now and then; a long run of them in a row is a server paging
    /// forever, and the driver stops the fetch after [`MAX_EMPTY_PAGES`].
    pub fn empty_page(&mut self) {
        self.empty_page = true;
    }

    /// Sends requests; each counts against the page's request budget.
    pub fn http(&self) -> &'a dyn Transport {
        self.http
    }

    /// Runs LDAP searches; each page counts against the page's request budget.
    pub fn ldap(&self) -> &'a dyn Directory {
        self.ldap
    }

    /// Announces that the whole fetch holds `objects` more objects (users, groups, removals)
    /// than announced so far: the `total-hint` the host shows progress against.
    pub fn expect(&mut self, objects: u64) {
        self.expected = Some(self.expected.unwrap_or(0).saturating_add(objects));
    }

    /// Records the page can still take before its record budget is spent; a connector that
    /// reads records one by one (a file) reads this many in one step.
    pub fn room(&self) -> usize {
        self.room
    }
}

/// State a cursor builds up over a fetch (the next delta token's member index, say), shared by
/// the copies the driver makes of the cursor: the driver clones the cursor before every step,
/// to hand the old one back when the step fails, and copying megabytes of state for each of
/// thousands of steps was most of a large fetch's time. Sound only while a step changes the
/// state after its request has succeeded, so a failed step leaves it as the cursor found it.
/// Written and read as the state itself.
#[derive(Debug, Default)]
pub struct Shared<T>(std::rc::Rc<std::cell::RefCell<T>>);

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<T> Shared<T> {
    /// A shared state holding `state`.
    pub fn new(state: T) -> Self {
        Shared(std::rc::Rc::new(std::cell::RefCell::new(state)))
    }

    /// The state, to read or change.
    pub fn get(&self) -> std::cell::RefMut<'_, T> {
        self.0.borrow_mut()
    }
}

impl<T: Serialize> Serialize for Shared<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.borrow().serialize(s)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Shared<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Shared::new)
    }
}

/// A connector's fetch as steps over its own cursor type.
pub trait Fetch {
    /// Where a fetch stands between steps. The driver stores it in the page's `next` as JSON
    /// and hands it back; keep it small (ids and links, not records).
    type Cursor: Serialize + DeserializeOwned + Clone;

    /// What the next incremental fetch continues from (delta links, a timestamp, the scope's
    /// ids), kept in the delta token.
    type Delta: Serialize + DeserializeOwned;

    /// The version of [`Fetch::Delta`]'s meaning; bump it when a token of the old version
    /// would still decode but mean something else, so old tokens become `expired-delta`.
    const DELTA_VERSION: u32 = 1;

    /// Starts a fetch: the first cursor (or, when there is nothing to read, the end). May read
    /// records and send requests like any step.
    fn begin(
        &self,
        from: Begin<Self::Delta>,
        work: &mut Work<'_>,
    ) -> Result<Next<Self::Cursor, Self::Delta>, PluginError>;

    /// Runs one step from `at`: reads what it reads into `work.out` and says where to go on.
    /// A failed step must not matter: it is run again from the same cursor.
    fn step(&self, at: Self::Cursor, work: &mut Work<'_>) -> Result<Next<Self::Cursor, Self::Delta>, PluginError>;
}

/// What the driver needs to know about the job besides the connector.
pub struct Job<'a> {
    /// The connector's name, in error messages and delta tokens.
    pub connector: &'a str,
    /// Sends requests; the driver counts them against the budget.
    pub http: &'a dyn Transport,
    /// Runs LDAP searches; the driver counts them against the budget.
    pub ldap: &'a dyn Directory,
    /// How much one `fetch` call may do.
    pub budget: Budget,
    /// The fingerprint of the scope-relevant settings (see [`crate::settings::SourceSettings`]).
    pub scope: Fingerprint,
}

/// The cursor's format; another one (an older build's page) is refused, naming the connector.
const CURSOR_FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct CursorEnvelope<C> {
    v: u32,
    total: Option<u64>,
    at: C,
}

/// Steps in a row answered an empty page that pointed to another one, after which a fetch is
/// taken to be paging forever.
pub const MAX_EMPTY_PAGES: u32 = 100;

/// How much of a cursor a loop error quotes.
const CURSOR_EXCERPT: usize = 200;

/// Runs connectors' fetches page by page. Keep one per component instance: it remembers the
/// positions the current fetch ended its pages at, so a cursor that comes round again (a server
/// handing out the same link, a connector bug) stops the fetch instead of paging forever.
/// Positions are compared at page ends only: a cursor may hold a few hundred kilobytes of
/// pending work, and serializing it after every step made a 100,000-user fetch twice as slow;
/// a loop inside one page still ends with the page's budget and is caught at a later page end.
#[derive(Debug, Default)]
pub struct Driver {
    trail: Trail,
    /// Steps in a row that read only an empty page with a next one (see [`Work::empty_page`]).
    empty_pages: u32,
}

impl Driver {
    /// One page of a fetch: the host's `fetch(settings, cursor, delta)`.
    pub fn page<F: Fetch>(
        &mut self,
        f: &F,
        job: &Job<'_>,
        cursor: Option<&str>,
        delta: Option<&str>,
    ) -> Result<Page, PluginError> {
        let started = Instant::now();
        let http = Counted::new(job.http, job.ldap);
        let tokens = DeltaFormat {
            connector: job.connector,
            version: F::DELTA_VERSION,
            scope: &job.scope,
        };
        let mut page = Records::default();
        let (mut at, mut total) = match cursor {
            Some(text) => {
                let envelope = decode_cursor::<F::Cursor>(job.connector, text)?;
                self.trail.resume(digest(&envelope.at));
                (envelope.at, envelope.total)
            }
            None => {
                self.trail.restart();
                self.empty_pages = 0;
                let from = match delta {
                    Some(token) => Begin::Incremental(tokens.decode(token)?),
                    None => Begin::Full,
                };
                let mut work = Work::new(&http, job.budget.records);
                let next = f.begin(from, &mut work)?;
                let total = add(None, work.expected);
                page.append(work.out);
                match next {
                    Next::Done(state) => return finish(page, total, state, &tokens),
                    Next::Continue(at) => (at, total),
                }
            }
        };
        loop {
            let room = job.budget.records.saturating_sub(page.len());
            let mut work = Work::new(&http, room);
            match f.step(at.clone(), &mut work) {
                Ok(next) => {
                    if work.empty_page && work.out.is_empty() {
                        self.empty_pages += 1;
                        if self.empty_pages > MAX_EMPTY_PAGES {
                            return Err(PluginError::Fatal(format!(
                                "the {} connector was answered {MAX_EMPTY_PAGES} empty pages in a row, each pointing to another page; stopping to avoid an endless fetch",
                                job.connector
                            )));
                        }
                    } else {
                        self.empty_pages = 0;
                    }
                    total = add(total, work.expected);
                    page.append(work.out);
                    match next {
                        Next::Done(state) => return finish(page, total, state, &tokens),
                        Next::Continue(next) => at = next,
                    }
                }
                Err(PluginError::Transient(why)) if !page.is_empty() => {
                    crate::log(
                        Level::Warn,
                        &format!("{why}; returning the records read so far, the next call continues from here"),
                    );
                    break;
                }
                Err(e) => return Err(e),
            }
            if job.budget.spent(http.sent(), page.len(), started.elapsed()) {
                break;
            }
        }
        let unencodable = |e: serde_json::Error| {
            PluginError::Fatal(format!(
                "the {} connector could not encode its paging cursor: {e}",
                job.connector
            ))
        };
        // The position is serialized once: its digest guards against loops, and the same text
        // goes into the envelope (the layout `CursorEnvelope` reads back).
        let at_json = serde_json::to_string(&at).map_err(unencodable)?;
        self.visit(job.connector, &at_json)?;
        let total_json = serde_json::to_string(&total).map_err(unencodable)?;
        let next = format!("{{\"v\":{CURSOR_FORMAT},\"total\":{total_json},\"at\":{at_json}}}");
        Ok(Page {
            next: Some(next),
            total_hint: total,
            ..page.into_page()
        })
    }

    fn visit(&mut self, connector: &str, at_json: &str) -> Result<(), PluginError> {
        if self.trail.visit(digest_text(at_json)) {
            return Ok(());
        }
        let excerpt: String = at_json.chars().take(CURSOR_EXCERPT).collect();
        Err(PluginError::Fatal(format!(
            "the {connector} connector came back to a position it had already read in this fetch ({excerpt}); stopping to avoid an endless fetch"
        )))
    }
}

fn decode_cursor<C: DeserializeOwned>(connector: &str, text: &str) -> Result<CursorEnvelope<C>, PluginError> {
    let refuse = |why: String| {
        PluginError::Fatal(format!(
            "the {connector} connector cannot continue from the paging cursor it was given ({why}); it was written by another version of the connector: run the fetch again from the start"
        ))
    };
    let envelope: CursorEnvelope<serde_json::Value> = serde_json::from_str(text).map_err(|e| refuse(e.to_string()))?;
    if envelope.v != CURSOR_FORMAT {
        return Err(refuse(format!(
            "cursor format {}, expected {CURSOR_FORMAT}",
            envelope.v
        )));
    }
    let at = serde_json::from_value(envelope.at).map_err(|e| refuse(e.to_string()))?;
    Ok(CursorEnvelope {
        v: envelope.v,
        total: envelope.total,
        at,
    })
}

fn finish<D: Serialize>(
    page: Records,
    total: Option<u64>,
    state: Option<D>,
    tokens: &DeltaFormat<'_>,
) -> Result<Page, PluginError> {
    Ok(Page {
        delta_token: state.map(|s| tokens.encode(&s)).transpose()?,
        total_hint: total,
        ..page.into_page()
    })
}

fn add(total: Option<u64>, more: Option<u64>) -> Option<u64> {
    match (total, more) {
        (Some(a), Some(b)) => Some(a.saturating_add(b)),
        (a, b) => a.or(b),
    }
}

/// The digest of a position's JSON text.
fn digest_text(json: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    h.write(json.as_bytes());
    h.finish()
}

/// A digest of a position's JSON, written straight into the hasher: the same as
/// [`digest_text`] of the text `serde_json::to_string` would give.
fn digest<C: Serialize>(at: &C) -> u64 {
    struct Digest(std::hash::DefaultHasher);
    impl std::io::Write for Digest {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.write(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut d = Digest(std::hash::DefaultHasher::new());
    // Serializing a cursor that already made the trip through JSON cannot fail; if it did, the
    // digest of what was written still identifies it.
    let _ = serde_json::to_writer(&mut d, at);
    d.0.finish()
}

/// The positions the current fetch went through, in order. A page retry resumes from an
/// earlier position, which cuts the trail back to it rather than counting as a loop; a cursor
/// the trail never saw (a fetch started by another instance) starts a new trail.
#[derive(Debug, Default)]
struct Trail {
    order: Vec<u64>,
    at: HashMap<u64, usize>,
}

impl Trail {
    fn restart(&mut self) {
        self.order.clear();
        self.at.clear();
    }

    fn resume(&mut self, from: u64) {
        match self.at.get(&from) {
            Some(&i) => {
                for later in self.order.drain(i + 1..) {
                    self.at.remove(&later);
                }
            }
            None => {
                self.restart();
                self.visit(from);
            }
        }
    }

    /// False when this position was already visited.
    fn visit(&mut self, position: u64) -> bool {
        if self.at.contains_key(&position) {
            return false;
        }
        self.at.insert(position, self.order.len());
        self.order.push(position);
        true
    }
}

/// Counts the requests and searches a step sends, for the page budget.
struct Counted<'a> {
    inner: &'a dyn Transport,
    ldap: &'a dyn Directory,
    sent: Cell<u32>,
}

impl<'a> Counted<'a> {
    fn new(inner: &'a dyn Transport, ldap: &'a dyn Directory) -> Self {
        Counted {
            inner,
            ldap,
            sent: Cell::new(0),
        }
    }

    fn sent(&self) -> u32 {
        self.sent.get()
    }
}

impl Transport for Counted<'_> {
    fn send(&self, req: crate::Request) -> Result<crate::Response, PluginError> {
        self.sent.set(self.sent.get().saturating_add(1));
        self.inner.send(req)
    }
}

impl Directory for Counted<'_> {
    fn search(&self, conn: &Connection, req: SearchRequest) -> Result<SearchPage, LdapError> {
        self.sent.set(self.sent.get().saturating_add(1));
        self.ldap.search(conn, req)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    #[test]
    fn a_shared_state_is_one_state_for_every_copy_and_is_written_as_itself() {
        let a = Shared::new(vec![1u32]);
        let b = a.clone();
        b.get().push(2);
        assert_eq!(*a.get(), [1, 2]);
        let text = serde_json::to_string(&a).unwrap();
        assert_eq!(text, "[1,2]");
        let back: Shared<Vec<u32>> = serde_json::from_str(&text).unwrap();
        back.get().push(3);
        assert_eq!(*a.get(), [1, 2], "a decoded state is a new one");
    }

    use super::*;
    use crate::{Request, Response};

    /// Answers every request with 200 and counts them.
    #[derive(Default)]
    struct Echo {
        calls: Cell<u32>,
    }

    impl Transport for Echo {
        fn send(&self, _: Request) -> Result<Response, PluginError> {
            self.calls.set(self.calls.get() + 1);
            Ok(Response {
                status: 200,
                headers: vec![],
                body: vec![],
            })
        }
    }

    /// A scripted connector: `steps` steps, each reading `per_step` users and sending
    /// `requests` requests; the delta state is the number of steps a full fetch took.
    struct Script {
        steps: u32,
        per_step: u32,
        requests: u32,
        /// Steps that fail once, transiently, after reading a user.
        flaky: RefCell<Vec<u32>>,
        /// Where step `n` goes instead of `n + 1`.
        jump: Option<(u32, u32)>,
        /// Announced in `begin`.
        total: Option<u64>,
        begun: RefCell<Vec<Begin<u32>>>,
        /// Every step is answered an empty page pointing to a next one.
        empty: bool,
    }

    impl Script {
        fn new(steps: u32, per_step: u32) -> Self {
            Script {
                steps,
                per_step,
                requests: 0,
                flaky: RefCell::new(vec![]),
                jump: None,
                total: None,
                begun: RefCell::new(vec![]),
                empty: false,
            }
        }
    }

    fn user(id: String) -> User {
        User {
            username: id.clone(),
            id,
            email: None,
            display_name: None,
            active: true,
            attributes: vec![],
        }
    }

    impl Fetch for Script {
        type Cursor = u32;
        type Delta = u32;

        fn begin(&self, from: Begin<u32>, work: &mut Work<'_>) -> Result<Next<u32, u32>, PluginError> {
            self.begun.borrow_mut().push(from.clone());
            if let Some(t) = self.total {
                work.expect(t);
            }
            Ok(match from {
                Begin::Incremental(n) if n == self.steps => Next::Done(Some(n)),
                _ => Next::Continue(0),
            })
        }

        fn step(&self, at: u32, work: &mut Work<'_>) -> Result<Next<u32, u32>, PluginError> {
            for _ in 0..self.requests {
                work.http().send(Request::get("https://idp.example/x"))?;
            }
            if self.empty {
                work.empty_page();
            }
            for i in 0..self.per_step {
                work.out.users.push(user(format!("u{at}-{i}")));
            }
            let mut flaky = self.flaky.borrow_mut();
            if let Some(pos) = flaky.iter().position(|s| *s == at) {
                flaky.remove(pos);
                return Err(PluginError::Transient(format!("step {at}: 503")));
            }
            let next = match self.jump {
                Some((from, to)) if from == at => to,
                _ => at + 1,
            };
            Ok(if next == self.steps {
                Next::Done(Some(self.steps))
            } else {
                Next::Continue(next)
            })
        }
    }

    fn job<'a>(http: &'a dyn Transport, budget: Budget, scope: &str) -> Job<'a> {
        Job {
            connector: "demo",
            http,
            ldap: &crate::ldap::NoDirectory,
            budget,
            scope: Fingerprint::from_stored(scope),
        }
    }

    fn records(n: usize) -> Budget {
        Budget {
            records: n,
            ..Budget::default()
        }
    }

    fn ids(p: &Page) -> Vec<&str> {
        p.users.iter().map(|u| u.id.as_str()).collect()
    }

    /// Every page of a fetch, following `next`.
    fn all_pages(d: &mut Driver, f: &Script, j: &Job<'_>, delta: Option<&str>) -> Result<Vec<Page>, PluginError> {
        let mut pages = vec![];
        let mut cursor: Option<String> = None;
        loop {
            let p = d.page(f, j, cursor.as_deref(), delta)?;
            cursor = p.next.clone();
            pages.push(p);
            if cursor.is_none() {
                return Ok(pages);
            }
        }
    }

    #[test]
    fn steps_run_until_the_record_budget_is_spent_and_the_last_page_carries_the_token() {
        let http = Echo::default();
        let f = Script {
            total: Some(10),
            ..Script::new(5, 2)
        };
        let pages = all_pages(&mut Driver::default(), &f, &job(&http, records(4), "s"), None).unwrap();
        let sizes: Vec<usize> = pages.iter().map(|p| p.users.len()).collect();
        assert_eq!(sizes, vec![4, 4, 2]);
        assert!(pages.iter().all(|p| p.total_hint == Some(10)));
        assert!(pages[..2].iter().all(|p| p.delta_token.is_none()));
        let token = pages[2].delta_token.as_deref().unwrap();
        assert!(token.contains(r#""connector":"demo""#), "{token}");
        assert_eq!(ids(&pages[2]), vec!["u4-0", "u4-1"]);
    }

    #[test]
    fn a_run_of_empty_pages_is_followed_until_it_looks_endless() {
        let http = Echo::default();
        let j = job(&http, Budget::default(), "s");
        let some = Script {
            empty: true,
            ..Script::new(MAX_EMPTY_PAGES, 0)
        };
        assert!(all_pages(&mut Driver::default(), &some, &j, None).is_ok());
        let endless = Script {
            empty: true,
            ..Script::new(u32::MAX, 0)
        };
        let err = all_pages(&mut Driver::default(), &endless, &j, None).unwrap_err();
        assert!(
            matches!(&err, PluginError::Fatal(m) if m.contains("empty pages in a row") && m.contains("demo")),
            "{err:?}"
        );
        // Steps that read nothing without pointing on (empty groups) are not counted.
        let quiet = Script::new(MAX_EMPTY_PAGES * 3, 0);
        assert!(all_pages(&mut Driver::default(), &quiet, &j, None).is_ok());
    }

    #[test]
    fn the_request_budget_ends_a_page_and_at_least_one_step_always_runs() {
        let http = Echo::default();
        let f = Script {
            requests: 2,
            ..Script::new(4, 1)
        };
        let budget = Budget {
            requests: 3,
            ..Budget::default()
        };
        let pages = all_pages(&mut Driver::default(), &f, &job(&http, budget, "s"), None).unwrap();
        // 2 requests: under 3, go on; 4: spent.
        let sizes: Vec<usize> = pages.iter().map(|p| p.users.len()).collect();
        assert_eq!(sizes, vec![2, 2]);
        assert_eq!(http.calls.get(), 8);
        let one_step = Budget {
            requests: 0,
            ..Budget::default()
        };
        let f = Script::new(3, 1);
        let pages = all_pages(&mut Driver::default(), &f, &job(&http, one_step, "s"), None).unwrap();
        assert_eq!(pages.len(), 3);
    }

    #[test]
    fn ldap_searches_count_against_the_request_budget_like_http_requests() {
        use crate::ldap::{Connection, Directory, LdapError, Scope, SearchPage, SearchRequest, Transport as Tls};
        #[derive(Default)]
        struct Dir(Cell<u32>);
        impl Directory for Dir {
            fn search(&self, _: &Connection, _: SearchRequest) -> Result<SearchPage, LdapError> {
                self.0.set(self.0.get() + 1);
                Ok(SearchPage {
                    entries: vec![],
                    referrals: vec![],
                    cookie: None,
                    result_code: 0,
                    message: String::new(),
                })
            }
        }
        /// Three steps, each one search and one user.
        struct Searching;
        impl Fetch for Searching {
            type Cursor = u32;
            type Delta = ();
            fn begin(&self, _: Begin<()>, _: &mut Work<'_>) -> Result<Next<u32, ()>, PluginError> {
                Ok(Next::Continue(0))
            }
            fn step(&self, at: u32, work: &mut Work<'_>) -> Result<Next<u32, ()>, PluginError> {
                let conn = Connection {
                    url: "ldaps://ldap.test".into(),
                    transport: Tls::Ldaps,
                    ca_certificates: None,
                    bind_dn: None,
                    password_secret: None,
                };
                work.ldap()
                    .search(&conn, SearchRequest::new("dc=x", Scope::Subtree, "(uid=*)", &["uid"]))
                    .map_err(|_| PluginError::Fatal("search".into()))?;
                work.out.users.push(user(at.to_string()));
                Ok(if at == 2 {
                    Next::Done(None)
                } else {
                    Next::Continue(at + 1)
                })
            }
        }
        let dir = Dir::default();
        let http = Echo::default();
        let j = Job {
            ldap: &dir,
            ..job(
                &http,
                Budget {
                    requests: 2,
                    ..Budget::default()
                },
                "s",
            )
        };
        let mut d = Driver::default();
        let first = d.page(&Searching, &j, None, None).unwrap();
        assert_eq!(first.users.len(), 2, "two searches spend the budget of two requests");
        let second = d.page(&Searching, &j, first.next.as_deref(), None).unwrap();
        assert_eq!((second.users.len(), second.next.is_none()), (1, true));
        assert_eq!(dir.0.get(), 3);
    }

    #[test]
    fn a_transient_failure_after_progress_returns_what_was_read_with_the_cursor_at_the_failed_step() {
        let http = Echo::default();
        let f = Script::new(6, 1);
        f.flaky.borrow_mut().push(2);
        let j = job(&http, records(100), "s");
        let mut d = Driver::default();
        let first = d.page(&f, &j, None, None).unwrap();
        // Steps 0 and 1 only: the user step 2 read before failing is not on the page.
        assert_eq!(ids(&first), vec!["u0-0", "u1-0"]);
        assert!(first.delta_token.is_none());
        let second = d.page(&f, &j, first.next.as_deref(), None).unwrap();
        assert_eq!(ids(&second), vec!["u2-0", "u3-0", "u4-0", "u5-0"]);
        assert!(second.next.is_none() && second.delta_token.is_some());
    }

    #[test]
    fn a_transient_failure_before_any_record_is_the_call_s_error_and_the_retry_is_not_a_loop() {
        let http = Echo::default();
        let f = Script::new(3, 1);
        let j = job(&http, records(1), "s");
        let mut d = Driver::default();
        let first = d.page(&f, &j, None, None).unwrap();
        f.flaky.borrow_mut().push(1);
        let err = d.page(&f, &j, first.next.as_deref(), None).unwrap_err();
        assert!(matches!(err, PluginError::Transient(_)), "{err:?}");
        // The host retries the page from the same cursor.
        let retried = d.page(&f, &j, first.next.as_deref(), None).unwrap();
        assert_eq!(ids(&retried), vec!["u1-0"]);
        let last = d.page(&f, &j, retried.next.as_deref(), None).unwrap();
        assert!(last.next.is_none());
        // The host starts the whole fetch over on the same instance: not a loop either.
        assert_eq!(all_pages(&mut d, &f, &j, None).unwrap().len(), 3);
    }

    #[test]
    fn a_cursor_that_comes_round_again_stops_the_fetch_within_a_page_and_across_pages() {
        let http = Echo::default();
        // Step 1 goes back to 0: within one page.
        let f = Script {
            jump: Some((1, 0)),
            ..Script::new(4, 1)
        };
        let err = all_pages(&mut Driver::default(), &f, &job(&http, records(100), "s"), None).unwrap_err();
        assert!(
            matches!(&err, PluginError::Fatal(m) if m.contains("demo connector came back to a position")),
            "{err:?}"
        );
        // The same loop spread over one-record pages.
        let err = all_pages(&mut Driver::default(), &f, &job(&http, records(1), "s"), None).unwrap_err();
        assert!(
            matches!(&err, PluginError::Fatal(m) if m.contains("endless fetch")),
            "{err:?}"
        );
        // A step that answers the cursor it was given.
        let f = Script {
            jump: Some((2, 2)),
            ..Script::new(4, 1)
        };
        let err = all_pages(&mut Driver::default(), &f, &job(&http, records(100), "s"), None).unwrap_err();
        assert!(matches!(err, PluginError::Fatal(_)), "{err:?}");
    }

    #[test]
    fn a_cursor_that_does_not_decode_is_a_fatal_error_naming_the_connector() {
        let http = Echo::default();
        let f = Script::new(3, 1);
        let j = job(&http, records(1), "s");
        for bad in [
            "garbage",
            r#"{"v":1,"total":null,"at":"x"}"#,
            r#"{"v":7,"total":null,"at":1}"#,
        ] {
            let err = Driver::default().page(&f, &j, Some(bad), None).unwrap_err();
            assert!(
                matches!(&err, PluginError::Fatal(m) if m.contains("demo connector cannot continue") && m.contains("from the start")),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn an_incremental_fetch_gets_the_state_back_unless_the_scope_settings_changed() {
        let http = Echo::default();
        let f = Script::new(2, 1);
        let full = all_pages(&mut Driver::default(), &f, &job(&http, records(100), "scope-a"), None).unwrap();
        let token = full.last().unwrap().delta_token.clone().unwrap();
        let mut d = Driver::default();
        let again = d
            .page(&f, &job(&http, records(100), "scope-a"), None, Some(&token))
            .unwrap();
        assert_eq!(f.begun.borrow().last(), Some(&Begin::Incremental(2)));
        assert!(again.users.is_empty() && again.next.is_none());
        assert_eq!(again.delta_token.as_deref(), Some(token.as_str()));
        let err = d
            .page(&f, &job(&http, records(100), "scope-b"), None, Some(&token))
            .unwrap_err();
        assert!(
            matches!(&err, PluginError::ExpiredDelta(m) if m.contains("scope or attributes changed")),
            "{err:?}"
        );
        let err = d
            .page(&f, &job(&http, records(100), "scope-a"), None, Some("1234-5678"))
            .unwrap_err();
        assert!(matches!(err, PluginError::ExpiredDelta(_)), "{err:?}");
    }

    #[test]
    fn totals_announced_by_steps_add_up_and_travel_in_the_cursor() {
        struct Counting;
        impl Fetch for Counting {
            type Cursor = u32;
            type Delta = ();
            fn begin(&self, _: Begin<()>, _: &mut Work<'_>) -> Result<Next<u32, ()>, PluginError> {
                Ok(Next::Continue(0))
            }
            fn step(&self, at: u32, work: &mut Work<'_>) -> Result<Next<u32, ()>, PluginError> {
                work.expect(5);
                work.out.users.push(user(at.to_string()));
                Ok(if at == 2 {
                    Next::Done(None)
                } else {
                    Next::Continue(at + 1)
                })
            }
        }
        let http = Echo::default();
        let j = job(&http, records(1), "s");
        let mut d = Driver::default();
        let p1 = d.page(&Counting, &j, None, None).unwrap();
        let p2 = d.page(&Counting, &j, p1.next.as_deref(), None).unwrap();
        let p3 = d.page(&Counting, &j, p2.next.as_deref(), None).unwrap();
        assert_eq!(
            [p1.total_hint, p2.total_hint, p3.total_hint],
            [Some(5), Some(10), Some(15)]
        );
        assert!(
            p3.next.is_none() && p3.delta_token.is_none(),
            "no incremental support, no token"
        );
    }
}

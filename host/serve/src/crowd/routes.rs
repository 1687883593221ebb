//! The resources under `/rest/usermanagement/1` (crowd-rest.md §5, §7), for an application the
//! gate let through: searches, lookups, membership listings and tests, the membership document,
//! events; the write endpoints, refused. Everything is read through the store's `served_*`
//! methods, and what an application with a group list may see is filtered here: those groups,
//! and the users who are members of one of them.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use roster_crowd::Restriction;
use roster_store::{EventKind, EventOp, EventsSince, ServedGroup, ServedUser, ServedView, Store, StoreError};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::search::{Searchable, Served};
use super::xml::{self, Attributes, Membership, Outgoing, PROLOG};
use super::{BASE, Caller, CrowdState, Format, Reason, Refusal, answer};

/// Users or groups read per keyset page when an answer is streamed.
const PAGE: usize = 1000;

/// A streamed answer is sent in chunks of about this size.
const CHUNK: usize = 64 * 1024;

/// Chunks a streamed answer may have in flight: with [`CHUNK`], the memory one answer holds.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Events one `GET /event/{token}` answers at most; the token it gives continues after them.
const EVENTS_PER_ANSWER: usize = 5000;

/// `max-results` when a request gives none (J5 `AbstractResource.DEFAULT_SEARCH_RESULT_SIZE`).
const DEFAULT_MAX_RESULTS: usize = 1000;

type Answer = Result<Response, Refusal>;

/// How many results a request wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Limit {
    /// `max-results=-1`: every one, never truncated (a truncated full sync makes the client
    /// delete whom it did not see).
    All,
    /// At most this many.
    AtMost(usize),
}

/// Which results: `start-index` and `max-results`.
#[derive(Clone, Copy, Debug)]
struct Range {
    start: usize,
    limit: Limit,
}

impl Range {
    /// The part of `items` this range selects.
    fn of<T>(self, items: Vec<T>) -> impl Iterator<Item = T> {
        let take = match self.limit {
            Limit::All => usize::MAX,
            Limit::AtMost(n) => n,
        };
        items.into_iter().skip(self.start).take(take)
    }
}

/// How listed entities are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// `expand` named the entity: everything, attributes as `expand` says.
    Full(Attributes),
    /// The name only (what the client asks for when it wants names).
    Minimal,
}

/// One request, as the resources see it.
struct Ctx {
    state: Arc<CrowdState>,
    caller: Caller,
    format: Format,
    query: Vec<(String, String)>,
}

impl Ctx {
    fn store(&self) -> &Arc<Store> {
        &self.state.service.store
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn required(&self, name: &str) -> Result<&str, Refusal> {
        self.param(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Refusal::illegal(format!("the query parameter `{name}` is required")))
    }

    /// Whether `expand` lists `what`.
    fn expands(&self, what: &str) -> bool {
        self.query
            .iter()
            .filter(|(k, _)| k == "expand")
            .flat_map(|(_, v)| v.split(','))
            .any(|x| x.trim().eq_ignore_ascii_case(what))
    }

    fn attributes(&self) -> Attributes {
        if self.expands("attributes") {
            Attributes::Listed
        } else {
            Attributes::Omitted
        }
    }

    /// Full entities when `expand` names `item`, names only otherwise.
    fn shape(&self, item: &str) -> Shape {
        if self.expands(item) {
            Shape::Full(self.attributes())
        } else {
            Shape::Minimal
        }
    }

    /// `start-index` (default 0) and `max-results` (default 1000, -1 for all).
    fn range(&self) -> Result<Range, Refusal> {
        let start = match self.param("start-index") {
            None | Some("") => 0,
            Some(v) => v
                .trim()
                .parse::<usize>()
                .map_err(|_| Refusal::illegal(format!("start-index must be 0 or more, not `{v}`")))?,
        };
        let limit = match self.param("max-results").map(str::trim) {
            None | Some("") => Limit::AtMost(DEFAULT_MAX_RESULTS),
            Some("-1") => Limit::All,
            Some(v) => match v.parse::<usize>() {
                Ok(n) => Limit::AtMost(n),
                Err(_) => {
                    return Err(Refusal::illegal(format!(
                        "max-results must be -1 (all) or 0 or more, not `{v}`"
                    )));
                }
            },
        };
        Ok(Range { start, limit })
    }

    fn ok(&self, body: String) -> Response {
        answer(StatusCode::OK, self.format, body)
    }

    /// Runs `f` on the store off the async workers.
    async fn read<T, F>(&self, f: F) -> Result<T, Refusal>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        self.store().blocking(f).await.map_err(Refusal::from)
    }

    /// The user `name` (any case), if this application may see it.
    async fn visible_user(&self, name: &str) -> Result<Option<ServedUser>, Refusal> {
        let (n, caller) = (name.to_string(), self.caller.clone());
        self.read(move |s| visible(s, &caller, s.served_user(&n)?)).await
    }
}

/// `found`, if `caller` may see it.
fn visible(s: &Store, caller: &Caller, found: Option<ServedUser>) -> Result<Option<ServedUser>, StoreError> {
    match found {
        Some(u) if sees_user(s, caller, &u.name)? => Ok(Some(u)),
        _ => Ok(None),
    }
}

/// Whether `caller` may see the user `name`: every user, or one in a group it may see.
fn sees_user(s: &Store, caller: &Caller, name: &str) -> Result<bool, StoreError> {
    if caller.visible.is_none() {
        return Ok(true);
    }
    Ok(s.served_user_groups(name)?.iter().any(|g| caller.sees_group(g)))
}

/// Users and groups as listings write them.
trait Listed: Searchable + Sized + Send + 'static {
    /// The list's element (`users`).
    const ROOT: &'static str;
    /// An item's element, and the `expand` word for full items (`user`).
    const ITEM: &'static str;
    /// Its name.
    fn name(&self) -> &str;
    /// A keyset page of one view (see `Store::served_users_page`).
    fn page(
        v: &ServedView<'_>,
        after: Option<&str>,
        limit: usize,
        only_in: Option<&[String]>,
    ) -> Result<Vec<Self>, StoreError>;
    /// The one named `name` (any case).
    fn named(s: &Store, name: &str) -> Result<Option<Self>, StoreError>;
    /// The full entity, XML.
    fn xml(&self, out: &mut String, attrs: Attributes);
    /// The full entity, JSON.
    fn json(&self, attrs: Attributes) -> Value;
}

impl Listed for ServedUser {
    const ROOT: &'static str = "users";
    const ITEM: &'static str = "user";
    fn name(&self) -> &str {
        &self.name
    }
    fn page(
        v: &ServedView<'_>,
        after: Option<&str>,
        limit: usize,
        only_in: Option<&[String]>,
    ) -> Result<Vec<Self>, StoreError> {
        v.users_page(after, limit, only_in)
    }
    fn named(s: &Store, name: &str) -> Result<Option<Self>, StoreError> {
        s.served_user(name)
    }
    fn xml(&self, out: &mut String, attrs: Attributes) {
        xml::user(out, self, attrs);
    }
    fn json(&self, attrs: Attributes) -> Value {
        xml::user_json(self, attrs)
    }
}

impl Listed for ServedGroup {
    const ROOT: &'static str = "groups";
    const ITEM: &'static str = "group";
    fn name(&self) -> &str {
        &self.name
    }
    fn page(
        v: &ServedView<'_>,
        after: Option<&str>,
        limit: usize,
        only_in: Option<&[String]>,
    ) -> Result<Vec<Self>, StoreError> {
        v.groups_page(after, limit, only_in)
    }
    fn named(s: &Store, name: &str) -> Result<Option<Self>, StoreError> {
        s.served_group(name)
    }
    fn xml(&self, out: &mut String, attrs: Attributes) {
        xml::group(out, self, attrs);
    }
    fn json(&self, attrs: Attributes) -> Value {
        xml::group_json(self, attrs)
    }
}

/// A listing being written: the opening, then items, then [`Writer::close`].
struct Writer {
    out: String,
    format: Format,
    root: &'static str,
    items: usize,
}

impl Writer {
    fn open(format: Format, root: &'static str, item: &'static str) -> Writer {
        let mut out = String::with_capacity(CHUNK + 4096);
        match format {
            Format::Xml => {
                out.push_str(PROLOG);
                out.push_str(&format!("<{root} expand=\"{item}\">"));
            }
            Format::Json => out.push_str(&format!("{{\"expand\":\"{item}\",\"{root}\":[")),
        }
        Writer {
            out,
            format,
            root,
            items: 0,
        }
    }

    fn separate(&mut self) {
        if self.format == Format::Json && self.items > 0 {
            self.out.push(',');
        }
        self.items += 1;
    }

    /// An entity, as `shape` says.
    fn entity<T: Listed>(&mut self, e: &T, shape: Shape) {
        match shape {
            Shape::Minimal => self.name(T::ITEM, e.name()),
            Shape::Full(attrs) => {
                self.separate();
                match self.format {
                    Format::Xml => e.xml(&mut self.out, attrs),
                    Format::Json => self.out.push_str(&e.json(attrs).to_string()),
                }
            }
        }
    }

    /// A minimal item: `<user name="…"/>`, `{"name":"…"}`.
    fn name(&mut self, item: &str, name: &str) {
        self.separate();
        match self.format {
            Format::Xml => xml::min(&mut self.out, item, name),
            Format::Json => self.out.push_str(&serde_json::json!({ "name": name }).to_string()),
        }
    }

    fn close(mut self) -> String {
        match self.format {
            Format::Xml => self.out.push_str(&format!("</{}>", self.root)),
            Format::Json => self.out.push_str("]}"),
        }
        self.out
    }
}

/// Sends a streamed answer's chunks; `Err(Gone)` when the client went away. Until the first
/// chunk goes, a failure can still become a 500 (`ready`); after it, only a broken body.
struct Sink {
    chunks: mpsc::Sender<Result<Bytes, std::io::Error>>,
    ready: std::cell::Cell<Option<oneshot::Sender<Result<(), StoreError>>>>,
}

/// The client stopped reading, or the store failed: nothing more to send.
struct Gone;

impl Sink {
    /// Sends what `out` holds once it is a chunk's worth.
    fn maybe_send(&self, out: &mut String) -> Result<(), Gone> {
        if out.len() < CHUNK {
            return Ok(());
        }
        self.send(out)
    }

    fn send(&self, out: &mut String) -> Result<(), Gone> {
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(Ok(()));
        }
        let chunk = Bytes::from(std::mem::replace(out, String::with_capacity(CHUNK + 4096)));
        self.chunks.blocking_send(Ok(chunk)).map_err(|_| Gone)
    }

    /// A page could not be read. Before anything was sent the answer is a 500; after, the
    /// body ends with an error: the client sees a broken answer, never a complete-looking but
    /// truncated one (which would make it delete whom it did not see).
    fn fail(&self, e: StoreError) -> Gone {
        match self.ready.take() {
            Some(ready) => {
                let _ = ready.send(Err(e));
            }
            None => {
                tracing::error!("Crowd endpoint: the store failed in the middle of a streamed answer: {e}");
                let _ = self
                    .chunks
                    .blocking_send(Err(std::io::Error::other("the served directory could not be read")));
            }
        }
        Gone
    }

    /// A page of `read`, or the end of the answer.
    fn page<T>(&self, read: Result<T, StoreError>) -> Result<T, Gone> {
        read.map_err(|e| self.fail(e))
    }
}

/// A streamed answer read from one view of the served directory ([`Store::served_view`]: a
/// rename landing while the client reads cannot hide a user from it): `produce` runs on the
/// blocking pool and writes through the [`Sink`]; at most [`CHUNKS_IN_FLIGHT`] chunks wait
/// for the client, so memory stays flat however large. A store failure before the first chunk
/// is a 500.
async fn streamed<F>(store: Arc<Store>, format: Format, produce: F) -> Answer
where
    F: FnOnce(&ServedView<'_>, &Sink) -> Result<(), Gone> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let (ready_tx, ready_rx) = oneshot::channel();
    tokio::task::spawn_blocking(move || {
        let sink = Sink {
            chunks: tx,
            ready: std::cell::Cell::new(Some(ready_tx)),
        };
        if let Err(e) = store.served_view(|v| produce(v, &sink)) {
            sink.fail(e);
        }
    });
    // Ok(Ok(())): the first chunk is on its way; Err(_): the producer ended without a word
    // (the client left), and the body says so by ending.
    if let Ok(Err(e)) = ready_rx.await {
        return Err(Refusal::from(e));
    }
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    Ok(answer(StatusCode::OK, format, Body::from_stream(stream)))
}

/// Serves an application's request (the gate has admitted it).
pub(super) async fn dispatch(State(state): State<Arc<CrowdState>>, req: Request) -> Response {
    let Some(caller) = req.extensions().get::<Caller>().cloned() else {
        // Only reachable if the gate were not in front of the routes.
        return Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Reason::OperationFailed,
            "the request was not authenticated",
        )
        .render(Format::Xml);
    };
    let (parts, body) = req.into_parts();
    // The gate has read the body (capped), so this does not wait on the client.
    let body = axum::body::to_bytes(body, super::MAX_BODY).await.unwrap_or_default();
    let path = parts.uri.path();
    let rest = path.strip_prefix(BASE).unwrap_or(path);
    let rest = if rest.len() > 1 {
        rest.trim_end_matches('/')
    } else {
        rest
    };
    let query = parts
        .uri
        .query()
        .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    // `/group/membership` and `/event*` are XML whatever `Accept` says, errors included.
    let xml_only = rest == "/group/membership" || rest == "/event" || rest.starts_with("/event/");
    let format = if xml_only {
        Format::Xml
    } else {
        Format::of(&parts.headers)
    };
    let ctx = Ctx {
        state,
        caller,
        format,
        query,
    };
    let method = if parts.method == Method::HEAD {
        Method::GET
    } else {
        parts.method.clone()
    };
    match route(&ctx, &method, rest, &body, &parts.headers).await {
        Ok(r) => r,
        Err(e) => {
            let mut r = e.render(format);
            if e.status == StatusCode::METHOD_NOT_ALLOWED {
                let allow = match rest {
                    "/search" | "/authentication" | "/authentication/notify" => "POST",
                    _ => "GET, HEAD",
                };
                r.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            r
        }
    }
}

/// The methods that would change something: refused with 403, as a read-only application is.
fn is_write(m: &Method) -> bool {
    matches!(*m, Method::POST | Method::PUT | Method::DELETE | Method::PATCH)
}

/// The resources only read here: any other method on them is 405, not a refused write.
fn read_only_resource(rest: &str) -> bool {
    rest == "/group/membership" || rest == "/event" || rest.starts_with("/event/") || rest == "/search"
}

async fn route(ctx: &Ctx, method: &Method, rest: &str, body: &[u8], headers: &HeaderMap) -> Answer {
    match (method, rest) {
        (&Method::POST, "/search") => search(ctx, body).await,
        (&Method::GET, "/search") => Err(Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            Reason::UnsupportedOperation,
            "searches with a CQL `restriction` (GET /search) are not supported; POST /search with a search restriction in the body",
        )),
        (&Method::POST, "/authentication") => authenticate(ctx, headers, body).await,
        (&Method::POST, "/authentication/notify") => Err(Refusal::new(
            StatusCode::NOT_FOUND,
            Reason::UnsupportedOperation,
            "authentication notifications are not supported here",
        )),
        (&Method::GET, "/user") => user(ctx).await,
        (&Method::GET, "/group") => group(ctx).await,
        (&Method::GET, "/user/group/direct" | "/user/group/nested") => user_groups(ctx).await,
        (&Method::GET, "/group/user/direct" | "/group/user/nested") => group_users(ctx).await,
        (&Method::GET, "/group/child-group/direct" | "/group/child-group/nested") => {
            related_groups(ctx, "child-groupname", Related::Children)
        }
        (&Method::GET, "/group/parent-group/direct" | "/group/parent-group/nested") => {
            related_groups(ctx, "parent-groupname", Related::Parents)
        }
        (&Method::GET, "/group/membership") => memberships(ctx).await,
        (&Method::GET, "/event") => {
            let token = ctx.read(|s| s.served_token()).await?;
            Ok(ctx.ok(xml::current_token(&view_token(&ctx.caller, &token))))
        }
        (&Method::GET, t) if t.starts_with("/event/") => events_since(ctx, &t["/event/".len()..]).await,
        (&Method::GET, other) => Err(Refusal::new(
            StatusCode::NOT_FOUND,
            Reason::UnsupportedOperation,
            format!("no such resource: {BASE}{other}"),
        )),
        (m, r) if read_only_resource(r) || !is_write(m) => Err(Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            Reason::UnsupportedOperation,
            format!("{m} is not allowed on {BASE}{r}"),
        )),
        (m, r) => Err(Refusal::new(
            StatusCode::FORBIDDEN,
            Reason::ApplicationPermissionDenied,
            format!(
                "{m} {BASE}{r} refused: Roster's Crowd directory is read-only for application '{}'; users, groups and memberships change at the sources Roster reads",
                ctx.caller.app
            ),
        )),
    }
}

/// `POST /authentication?username=` with the password in the body: the served user (as
/// `GET /user` finds and shows it, for this application) when the first of their sources that
/// can verify passwords accepts it; 400 otherwise, with Crowd's reason. Each outcome is counted
/// in `roster_crowd_authentications_total`.
async fn authenticate(ctx: &Ctx, headers: &HeaderMap, body: &[u8]) -> Answer {
    let (answer, outcome) = authentication_outcome(ctx, headers, body).await;
    ctx.state.service.metrics.observe_crowd_authentication(outcome);
    answer
}

fn refused(reason: Reason, message: impl Into<String>) -> Refusal {
    Refusal::new(StatusCode::BAD_REQUEST, reason, message)
}

async fn authentication_outcome(ctx: &Ctx, headers: &HeaderMap, body: &[u8]) -> (Answer, &'static str) {
    use roster_directory::PasswordOutcome as O;
    let name = match ctx.required("username") {
        Ok(n) => n.to_string(),
        Err(e) => return (Err(e), "bad_request"),
    };
    let password = match super::authentication::password(headers, body) {
        Ok(p) => p,
        Err(e) => {
            return (
                Err(Refusal::illegal(format!("bad authentication body: {}", e.0))),
                "bad_request",
            );
        }
    };
    let throttle = &ctx.state.logins;
    if let Some(left) = throttle.refused_for(&name, std::time::Instant::now()) {
        return (
            Err(refused(
                Reason::InvalidUserAuthentication,
                format!(
                    "too many wrong passwords for <{name}>: Roster does not ask the directory again for {} s",
                    left.as_secs().max(1)
                ),
            )),
            "throttled",
        );
    }
    let user = match ctx.visible_user(&name).await {
        Ok(Some(u)) => u,
        Ok(None) => {
            return (
                Err(refused(Reason::UserNotFound, format!("User <{name}> does not exist"))),
                "user_not_found",
            );
        }
        Err(e) => return (Err(e), "unavailable"),
    };
    if !user.active {
        return (
            Err(refused(
                Reason::InactiveAccount,
                format!("Account with name <{}> is inactive", user.name),
            )),
            "inactive",
        );
    }
    let runner = ctx.state.service.runner();
    match runner.verify_password(&user.records, &user.name, &password).await {
        O::Accepted { .. } => {
            throttle.succeeded(&name);
            (Ok(entity_answer(ctx, &user)), "accepted")
        }
        O::Refused { .. } => {
            throttle.failed(&name, std::time::Instant::now());
            (
                Err(refused(
                    Reason::InvalidUserAuthentication,
                    format!(
                        "Failed to authenticate principal, password was invalid for <{}>",
                        user.name
                    ),
                )),
                "refused",
            )
        }
        O::Expired { .. } => (
            Err(refused(
                Reason::ExpiredCredential,
                format!("The password of <{}> has expired or must be changed", user.name),
            )),
            "expired",
        ),
        O::Inactive { source } => (
            Err(refused(
                Reason::InactiveAccount,
                format!(
                    "The account of <{}> is disabled or locked in source '{source}'",
                    user.name
                ),
            )),
            "inactive",
        ),
        O::NoSource => (
            Err(refused(
                Reason::InvalidUserAuthentication,
                format!(
                    "<{}> cannot be authenticated here: none of their sources can verify passwords (people of single sign-on sources log in through their identity provider)",
                    user.name
                ),
            )),
            "no_source",
        ),
        O::Unavailable { source, reason } => {
            tracing::warn!(target: "roster::crowd", source = %source, user = %user.name, "a password could not be checked: {reason}");
            (
                Err(Refusal::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Reason::OperationFailed,
                    format!("source '{source}' could not check the password now; the server log has the details"),
                )),
                "unavailable",
            )
        }
    }
}

fn user_not_found(name: &str) -> Refusal {
    Refusal::new(
        StatusCode::NOT_FOUND,
        Reason::UserNotFound,
        format!("User <{name}> does not exist"),
    )
}

fn group_not_found(name: &str) -> Refusal {
    Refusal::new(
        StatusCode::NOT_FOUND,
        Reason::GroupNotFound,
        format!("Group <{name}> does not exist"),
    )
}

fn not_member(child: &str, parent: &str) -> Refusal {
    Refusal::new(
        StatusCode::NOT_FOUND,
        Reason::MembershipNotFound,
        format!("The child entity <{child}> is not a member of the parent <{parent}>"),
    )
}

/// `POST /search?entity-type=user|group`: streamed from keyset pages.
async fn search(ctx: &Ctx, body: &[u8]) -> Answer {
    let entity = ctx.required("entity-type")?.to_ascii_lowercase();
    let restriction = Restriction::parse(body).map_err(|e| Refusal::illegal(format!("bad search restriction: {e}")))?;
    let range = ctx.range()?;
    match entity.as_str() {
        "user" => stream_search::<ServedUser>(ctx, restriction, range).await,
        "group" => stream_search::<ServedGroup>(ctx, restriction, range).await,
        other => Err(Refusal::illegal(format!(
            "entity-type must be `user` or `group`, not `{other}`"
        ))),
    }
}

/// A search's answer, streamed from one view of the served directory.
async fn stream_search<T: Listed>(ctx: &Ctx, restriction: Restriction, range: Range) -> Answer {
    if range.limit == Limit::AtMost(0) {
        return Ok(ctx.ok(Writer::open(ctx.format, T::ROOT, T::ITEM).close()));
    }
    let only_in = ctx.caller.only_in();
    let (shape, format) = (ctx.shape(T::ITEM), ctx.format);
    streamed(ctx.store().clone(), format, move |view, sink| {
        let mut w = Writer::open(format, T::ROOT, T::ITEM);
        let (mut skipped, mut written) = (0usize, 0usize);
        let mut page = sink.page(T::page(view, None, PAGE, only_in.as_deref()))?;
        loop {
            for e in &page {
                if !restriction.is_all() && !restriction.matches(&Served(e)) {
                    continue;
                }
                if skipped < range.start {
                    skipped += 1;
                    continue;
                }
                if let Limit::AtMost(n) = range.limit
                    && written >= n
                {
                    break;
                }
                w.entity(e, shape);
                written += 1;
                sink.maybe_send(&mut w.out)?;
            }
            let full = matches!(range.limit, Limit::AtMost(n) if written >= n);
            let Some(last) = page.last().filter(|_| page.len() == PAGE && !full) else {
                break;
            };
            let after = last.name().to_lowercase();
            page = sink.page(T::page(view, Some(&after), PAGE, only_in.as_deref()))?;
        }
        let mut out = w.close();
        sink.send(&mut out)
    })
    .await
}

/// `GET /user?username=` or `?key=`.
async fn user(ctx: &Ctx) -> Answer {
    let found = match (ctx.param("username"), ctx.param("key")) {
        (Some(name), _) if !name.is_empty() => ctx.visible_user(name).await?.ok_or_else(|| user_not_found(name))?,
        (_, Some(key)) if !key.is_empty() => {
            let (k, caller) = (key.to_string(), ctx.caller.clone());
            ctx.read(move |s| visible(s, &caller, s.served_user_by_key(&k)?))
                .await?
                .ok_or_else(|| user_not_found(key))?
        }
        _ => {
            return Err(Refusal::illegal("the query parameter `username` or `key` is required"));
        }
    };
    Ok(entity_answer(ctx, &found))
}

/// One user or group as its own answer (`GET /user`, `GET /group`).
fn entity_answer<T: Listed>(ctx: &Ctx, e: &T) -> Response {
    match ctx.format {
        Format::Xml => {
            let mut out = String::from(PROLOG);
            e.xml(&mut out, ctx.attributes());
            ctx.ok(out)
        }
        Format::Json => ctx.ok(e.json(ctx.attributes()).to_string()),
    }
}

/// The group `name` (any case), if this application may see it.
async fn visible_group(ctx: &Ctx, name: &str) -> Result<Option<ServedGroup>, Refusal> {
    if !ctx.caller.sees_group(name) {
        return Ok(None);
    }
    let n = name.to_string();
    ctx.read(move |s| s.served_group(&n)).await
}

/// `GET /group?groupname=`.
async fn group(ctx: &Ctx) -> Answer {
    let name = ctx.required("groupname")?;
    let found = visible_group(ctx, name).await?.ok_or_else(|| group_not_found(name))?;
    Ok(entity_answer(ctx, &found))
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort_by_key(|n| n.to_lowercase());
    names
}

/// `GET /user/group/direct|nested?username=[&groupname=]`: memberships are flat, so direct and
/// nested are the same.
async fn user_groups(ctx: &Ctx) -> Answer {
    let name = ctx.required("username")?;
    let user = ctx.visible_user(name).await?.ok_or_else(|| user_not_found(name))?;
    let u = user.name.clone();
    let groups = ctx.read(move |s| s.served_user_groups(&u)).await?;
    let groups = sorted(groups.into_iter().filter(|g| ctx.caller.sees_group(g)).collect());
    if let Some(test) = ctx.param("groupname") {
        let found = groups.iter().find(|g| g.to_lowercase() == test.to_lowercase());
        return match found {
            Some(g) => Ok(member_answer(ctx, "group", g)),
            None => Err(not_member(name, test)),
        };
    }
    named_listing::<ServedGroup>(ctx, groups).await
}

/// `GET /group/user/direct|nested?groupname=[&username=]`. A group that does not exist (or
/// that this application may not see) has no members, as Crowd answers (J5
/// `GroupsController.getDirectUsers`).
async fn group_users(ctx: &Ctx) -> Answer {
    let name = ctx.required("groupname")?;
    let members = match visible_group(ctx, name).await? {
        Some(g) => sorted(ctx.read(move |s| s.served_group_users(&g.name)).await?),
        None => Vec::new(),
    };
    if let Some(test) = ctx.param("username") {
        let found = members.iter().find(|u| u.to_lowercase() == test.to_lowercase());
        return match found {
            Some(u) => Ok(member_answer(ctx, "user", u)),
            None => Err(not_member(test, name)),
        };
    }
    named_listing::<ServedUser>(ctx, members).await
}

/// A page (`start-index`, `max-results`) of `names`, in their order, as a listing: minimal, or the
/// entities read by name.
async fn named_listing<T: Listed>(ctx: &Ctx, names: Vec<String>) -> Answer {
    let range = ctx.range()?;
    let page: Vec<String> = range.of(names).collect();
    let shape = ctx.shape(T::ITEM);
    let entities = match shape {
        Shape::Minimal => Vec::new(),
        Shape::Full(_) => {
            let names = page.clone();
            ctx.read(move |s| {
                names
                    .iter()
                    .filter_map(|n| T::named(s, n).transpose())
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?
        }
    };
    let mut w = Writer::open(ctx.format, T::ROOT, T::ITEM);
    match shape {
        Shape::Minimal => page.iter().for_each(|n| w.name(T::ITEM, n)),
        Shape::Full(_) => entities.iter().for_each(|e| w.entity(e, shape)),
    }
    Ok(ctx.ok(w.close()))
}

/// The answer to a membership test that holds: the member, minimal.
fn member_answer(ctx: &Ctx, item: &str, name: &str) -> Response {
    match ctx.format {
        Format::Xml => {
            let mut out = String::from(PROLOG);
            xml::min(&mut out, item, name);
            ctx.ok(out)
        }
        Format::Json => ctx.ok(serde_json::json!({ "name": name }).to_string()),
    }
}

/// Which way a group-to-group listing looks.
#[derive(Clone, Copy)]
enum Related {
    Children,
    Parents,
}

/// `GET /group/child-group|parent-group/direct|nested?groupname=`: the served directory is
/// flat, so there are none; a membership test never holds.
fn related_groups(ctx: &Ctx, test_param: &str, related: Related) -> Answer {
    let name = ctx.required("groupname")?;
    ctx.range()?;
    if let Some(t) = ctx.param(test_param) {
        return Err(match related {
            Related::Children => not_member(t, name),
            Related::Parents => not_member(name, t),
        });
    }
    Ok(ctx.ok(Writer::open(ctx.format, "groups", "group").close()))
}

/// `GET /group/membership`: every group's direct users (and no child groups: the directory is
/// flat), streamed from one view of the served directory.
async fn memberships(ctx: &Ctx) -> Answer {
    let only_in = ctx.caller.only_in();
    streamed(ctx.store().clone(), Format::Xml, move |view, sink| {
        let mut out = String::with_capacity(CHUNK + 4096);
        out.push_str(PROLOG);
        out.push_str("<memberships>");
        let mut page = sink.page(view.memberships_page(None, PAGE, only_in.as_deref()))?;
        loop {
            for (group, users) in &page {
                out.push_str("<membership group=\"");
                xml::esc(&mut out, group);
                out.push_str("\"><users>");
                for u in users {
                    xml::min(&mut out, "user", u);
                    sink.maybe_send(&mut out)?;
                }
                out.push_str("</users><groups></groups></membership>");
                sink.maybe_send(&mut out)?;
            }
            let Some((last, _)) = page.last().filter(|_| page.len() == PAGE) else {
                break;
            };
            let after = last.to_lowercase();
            page = sink.page(view.memberships_page(Some(&after), PAGE, only_in.as_deref()))?;
        }
        out.push_str("</memberships>");
        sink.send(&mut out)
    })
    .await
}

/// `GET /event/{token}`: the events since the token, as this application may see them, and the
/// token to ask with next; 410 EVENT_TOKEN_EXPIRED for a token the log cannot continue from.
async fn events_since(ctx: &Ctx, token: &str) -> Answer {
    let body = match log_token(&ctx.caller, token) {
        None => None,
        Some(logged) => {
            let (logged, caller) = (logged.to_string(), ctx.caller.clone());
            ctx.read(move |s| match s.served_events_since(&logged, EVENTS_PER_ANSWER)? {
                EventsSince::Expired => Ok(None),
                // A limited view of these events depends on the renames and deletions after
                // them (who is in view in the end): with more in the log than one answer
                // holds, a full synchronisation of what it sees is the exact answer.
                EventsSince::Events { events, .. } if caller.visible.is_some() && events.len() >= EVENTS_PER_ANSWER => {
                    Ok(None)
                }
                EventsSince::Events { events, token } => {
                    let out = visible_events(s, &caller, &events)?;
                    Ok(Some(xml::events(&out, &view_token(&caller, &token))))
                }
            })
            .await?
        }
    };
    match body {
        Some(b) => Ok(ctx.ok(b)),
        None => Err(Refusal::new(
            StatusCode::GONE,
            Reason::EventTokenExpired,
            "the event token has expired, is from before the change log was reset, or was never issued; synchronise in full",
        )),
    }
}

/// The fingerprint of the groups an application may see, `None` when it sees every group:
/// hex, so a token stays URL-safe.
fn view_of(caller: &Caller) -> Option<String> {
    use sha2::Digest;
    let visible = caller.visible.as_ref()?;
    let mut groups: Vec<&str> = visible.iter().map(String::as_str).collect();
    groups.sort_unstable();
    groups.dedup();
    let digest = sha2::Sha256::digest(groups.join("\n").as_bytes());
    Some(hex::encode(&digest[..8]))
}

/// The token an application is given for the log's `token`: the log's own for one that sees
/// every group; for one limited to some, followed by the fingerprint of those groups. Events
/// are filtered by what the application sees, so once an administrator changes its groups,
/// no event brings what came into (or went out of) its view: its tokens must then be expired,
/// so that it synchronises in full.
fn view_token(caller: &Caller, token: &str) -> String {
    match view_of(caller) {
        None => token.to_string(),
        Some(view) => format!("{token}.{view}"),
    }
}

/// The log's token in a token given by [`view_token`], if it was given for the view the
/// application has now; `None`: expired.
fn log_token<'t>(caller: &Caller, token: &'t str) -> Option<&'t str> {
    match view_of(caller) {
        // A limited view's token has a third part, which the log does not take: expired.
        None => Some(token),
        Some(view) => {
            let (logged, given) = token.rsplit_once('.')?;
            (given == view).then_some(logged)
        }
    }
}

/// Who an event's user is once the whole answer is applied.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Finally {
    /// Named so now (lower-case).
    Named(String),
    /// Deleted, by the event at this index.
    Gone(usize),
}

/// For each event about a user (`None` for a group's), who that user is at the end: names are
/// followed through the later renames (a rename's event names the user as before) and
/// deletions, walking the events backwards.
fn finals(events: &[roster_store::ServedEvent]) -> Vec<Option<Finally>> {
    let mut later: HashMap<String, Finally> = HashMap::new();
    let of = |later: &HashMap<String, Finally>, name: &str| {
        let l = name.to_lowercase();
        later.get(&l).cloned().unwrap_or(Finally::Named(l))
    };
    let mut out = vec![None; events.len()];
    for (i, e) in events.iter().enumerate().rev() {
        out[i] = match (&e.kind, &e.op) {
            (EventKind::Group, _) => None,
            (EventKind::User, EventOp::Deleted) => {
                later.insert(e.name.to_lowercase(), Finally::Gone(i));
                Some(Finally::Gone(i))
            }
            (EventKind::User, _) => match &e.user {
                Some(after) if after.name.to_lowercase() != e.name.to_lowercase() => {
                    let f = of(&later, &after.name);
                    later.insert(e.name.to_lowercase(), f.clone());
                    Some(f)
                }
                _ => Some(of(&later, &e.name)),
            },
            (EventKind::UserMembership, _) => Some(of(&later, &e.name)),
        };
    }
    out
}

/// The events an application may see. Every event, for one that sees every group. For one
/// limited to some groups, the answer brings its view to the present state of what it may see
/// (what a full synchronisation would give it), naming nothing else:
/// - the events of its groups, and memberships in them;
/// - a user in view at the end is told as they are now (their key lets the client follow a
///   rename) before anything about them, and their memberships under the name they have now;
/// - a user out of view at the end is told of only if they leave one of its groups in these
///   events: as they were named then, up to their last leaving, which deletes them from its view
///   (a deleted user or group, too: the store logs the memberships they end first; a user's
///   deletion itself is never passed on).
fn visible_events<'e>(
    s: &Store,
    caller: &Caller,
    events: &'e [roster_store::ServedEvent],
) -> Result<Vec<Outgoing<'e>>, StoreError> {
    if caller.visible.is_none() {
        return Ok(events.iter().map(Outgoing::Logged).collect());
    }
    let finals = finals(events);
    let visible_parents = |e: &roster_store::ServedEvent| -> Vec<String> {
        e.parents.iter().filter(|g| caller.sees_group(g)).cloned().collect()
    };
    // Where each user last leaves a group in view.
    let mut last_leaving: HashMap<&Finally, usize> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        if let (EventKind::UserMembership, EventOp::Deleted, Some(f)) = (&e.kind, &e.op, &finals[i])
            && !visible_parents(e).is_empty()
        {
            last_leaving.insert(f, i);
        }
    }
    // The user as they are now, if in view.
    let mut now: HashMap<String, Option<ServedUser>> = HashMap::new();
    let mut in_view = |f: &Finally| -> Result<Option<ServedUser>, StoreError> {
        let Finally::Named(name) = f else { return Ok(None) };
        if let Some(u) = now.get(name) {
            return Ok(u.clone());
        }
        let u = match s.served_user(name)? {
            Some(u) if sees_user(s, caller, &u.name)? => Some(u),
            _ => None,
        };
        now.insert(name.clone(), u.clone());
        Ok(u)
    };
    let mut told: HashSet<String> = HashSet::new();
    let mut out = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        let Some(f) = &finals[i] else {
            if caller.sees_group(&e.name) {
                out.push(Outgoing::Logged(e));
            }
            continue;
        };
        let current = in_view(f)?;
        let leaves_later = last_leaving.get(f).is_some_and(|&j| j >= i);
        match (&e.kind, &e.op) {
            (EventKind::User, EventOp::Deleted) | (EventKind::Group, _) => {}
            (EventKind::User, _) => match current {
                Some(u) if told.insert(u.name.to_lowercase()) => out.push(Outgoing::UserNow(u)),
                Some(_) => {}
                None if leaves_later => out.push(Outgoing::Logged(e)),
                None => {}
            },
            (EventKind::UserMembership, op) => {
                let parents = visible_parents(e);
                if parents.is_empty() {
                    continue;
                }
                let op = match op {
                    EventOp::Deleted => Membership::Deleted,
                    EventOp::Created | EventOp::Updated => Membership::Created,
                };
                match current {
                    Some(u) => {
                        let name = u.name.clone();
                        if told.insert(name.to_lowercase()) {
                            out.push(Outgoing::UserNow(u));
                        }
                        out.push(Outgoing::Membership {
                            op,
                            user: Cow::Owned(name),
                            parents,
                        });
                    }
                    None if op == Membership::Deleted => {
                        out.push(Outgoing::Membership {
                            op,
                            user: Cow::Borrowed(&e.name),
                            parents,
                        });
                        if last_leaving.get(f) == Some(&i) {
                            out.push(Outgoing::UserGone(&e.name));
                        }
                    }
                    // Joins of a user out of view at the end: they leave again later.
                    None => {}
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_skips_then_takes_and_all_takes_everything() {
        let r = Range {
            start: 1,
            limit: Limit::AtMost(2),
        };
        assert_eq!(r.of(vec![1, 2, 3, 4]).collect::<Vec<_>>(), [2, 3]);
        let all = Range {
            start: 0,
            limit: Limit::All,
        };
        assert_eq!(all.of(vec![1, 2, 3]).count(), 3);
    }

    #[test]
    fn a_limited_applications_token_names_its_view_and_another_view_expires_it() {
        let caller = |groups: Option<&[&str]>| Caller {
            app: "a".into(),
            visible: groups.map(|g| Arc::new(g.iter().map(|s| s.to_string()).collect())),
        };
        let all = caller(None);
        let devs = caller(Some(&["devs", "ops"]));
        let same = caller(Some(&["ops", "devs", "ops"]));
        let more = caller(Some(&["devs", "ops", "admins"]));
        assert_eq!(view_token(&all, "e.7"), "e.7");
        assert_eq!(log_token(&all, "e.7"), Some("e.7"));
        let t = view_token(&devs, "e.7");
        assert!(
            t.starts_with("e.7.") && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'),
            "{t}"
        );
        assert_eq!(log_token(&devs, &t), Some("e.7"));
        assert_eq!(log_token(&same, &t), Some("e.7"), "the same groups in another order");
        assert_eq!(log_token(&more, &t), None);
        assert_eq!(log_token(&devs, "e.7"), None);
        // Given to one that sees every group, the log refuses it (a third part).
        assert_eq!(log_token(&all, &t), Some(t.as_str()));
    }

    fn event(kind: EventKind, op: EventOp, name: &str, after: Option<&str>) -> roster_store::ServedEvent {
        roster_store::ServedEvent {
            seq: 0,
            kind,
            op,
            name: name.into(),
            user: after.map(|n| ServedUser {
                id: 1,
                name: n.into(),
                external_id: "k".into(),
                display_name: String::new(),
                first_name: String::new(),
                last_name: String::new(),
                email: None,
                active: true,
                records: Vec::new(),
                created_at: 0,
                updated_at: 0,
            }),
            group: None,
            parents: vec!["g".into()],
        }
    }

    #[test]
    fn names_are_followed_through_later_renames_and_deletions() {
        use EventKind::{Group, User, UserMembership};
        use EventOp::{Created, Deleted, Updated};
        let named = |n: &str| Some(Finally::Named(n.into()));
        let events = [
            event(UserMembership, Created, "Ann", None),
            event(User, Updated, "Ann", Some("Anna")),
            event(UserMembership, Deleted, "anna", None),
            event(User, Updated, "anna", Some("Hannah")),
            // The old name is someone else's now, then gone.
            event(User, Created, "Ann", Some("Ann")),
            event(UserMembership, Deleted, "Ann", None),
            event(User, Deleted, "Ann", None),
            event(Group, Created, "g", None),
            event(UserMembership, Created, "bob", None),
        ];
        assert_eq!(
            finals(&events),
            [
                named("hannah"),
                named("hannah"),
                named("hannah"),
                named("hannah"),
                Some(Finally::Gone(6)),
                Some(Finally::Gone(6)),
                Some(Finally::Gone(6)),
                None,
                named("bob"),
            ]
        );
    }

    #[test]
    fn json_listings_separate_items_and_xml_ones_name_them() {
        let mut w = Writer::open(Format::Json, "users", "user");
        w.name("user", "a");
        w.name("user", "b\"");
        let v: Value = serde_json::from_str(&w.close()).unwrap();
        assert_eq!(v["users"][1]["name"], "b\"");
        let mut w = Writer::open(Format::Xml, "groups", "group");
        w.name("group", "a&b");
        assert!(
            w.close()
                .ends_with("<groups expand=\"group\"><group name=\"a&amp;b\"/></groups>")
        );
    }
}

//! The resources under `/rest/usermanagement/1` (crowd-rest.md §5, §7), for an authenticated
//! application: searches with their restrictions, lookups, membership listings, the membership
//! document, events, and the write endpoints this read-only application is refused.

use std::borrow::Cow;
use std::collections::BTreeSet;

use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use roster_crowd::{Prop, Reason, Restriction, Subject};
use serde_json::{Value, json};

use super::events;
use super::xml::{self, GROUP_BYTES, Links, PROLOG, USER_BYTES, esc};
use super::{App, CrowdGroup, CrowdState, CrowdUser, Stamped, lower};
use crate::kit::{Offset, PageFault};

/// The representation a request asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Format {
    Xml,
    Json,
}

impl Format {
    /// XML unless `Accept` asks for JSON and not XML, as Crowd's Java client never does.
    pub(super) fn of(req: &Parts) -> Format {
        let accept = req
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if accept.contains("application/json") && !accept.contains("application/xml") {
            Format::Json
        } else {
            Format::Xml
        }
    }

    /// The `<error>` entity (or its JSON) with `status`.
    pub(super) fn error(self, status: StatusCode, reason: Reason, message: &str) -> Response {
        match self {
            Format::Xml => answer(status, xml::error_xml(reason, message), XML),
            Format::Json => answer(status, xml::error_json(reason, message), JSON),
        }
    }
}

const XML: &str = "application/xml";
const JSON: &str = "application/json";

fn answer(status: StatusCode, text: String, content_type: &'static str) -> Response {
    let mut r = (status, text).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// An error answer not yet rendered.
struct Refusal {
    status: StatusCode,
    reason: Reason,
    message: String,
}

fn refuse(status: StatusCode, reason: Reason, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        reason,
        message: message.into(),
    }
}

fn illegal(message: impl Into<String>) -> Refusal {
    refuse(StatusCode::BAD_REQUEST, Reason::IllegalArgument, message)
}

type Answer = Result<Response, Refusal>;

/// One request, as the resources see it.
struct Ctx<'a> {
    s: &'a CrowdState,
    fmt: Format,
    links: Links<'a>,
    query: Vec<(String, String)>,
}

impl Ctx<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn required(&self, name: &str) -> Result<&str, Refusal> {
        self.param(name)
            .ok_or_else(|| illegal(format!("The query parameter `{name}` is required.")))
    }

    /// The names `expand` lists.
    fn expands(&self, what: &str) -> bool {
        self.param("expand")
            .is_some_and(|e| e.split(',').any(|x| x.trim().eq_ignore_ascii_case(what)))
    }

    /// `start-index` (default 0) and `max-results` (default 1000, -1 for all).
    fn range(&self) -> Result<Offset, Refusal> {
        let start = match self.param("start-index") {
            None => 0,
            Some(v) => v
                .parse::<usize>()
                .map_err(|_| illegal(format!("start-index must be 0 or more, not `{v}`.")))?,
        };
        let limit = match self.param("max-results") {
            None => Some(1000),
            Some("-1") => None,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    return Err(illegal(format!(
                        "max-results must be -1 (all) or more than 0, not `{v}`."
                    )));
                }
            },
        };
        Ok(Offset::exact(start, limit))
    }

    fn xml(&self, text: String) -> Response {
        answer(StatusCode::OK, text, XML)
    }

    fn json(&self, v: &Value) -> Response {
        answer(StatusCode::OK, v.to_string(), JSON)
    }

    /// A listing of users (lower-case names in), paged; full entities when `expand=user`.
    fn users<'k>(&self, names: impl Iterator<Item = &'k str>) -> Answer {
        self.listing(names.filter_map(|n| self.s.users.get(n)))
    }

    /// A listing of groups, paged; full entities when `expand=group`.
    fn groups<'k>(&self, names: impl Iterator<Item = &'k str>) -> Answer {
        self.listing(names.filter_map(|n| self.s.groups.get(n)))
    }

    /// A listing of entities, paged; full ones when `expand` names their kind.
    fn listing<'k, T: Listed + 'k>(&self, items: impl Iterator<Item = &'k Stamped<T>>) -> Answer {
        let range = self.range()?;
        let full = self.expands(T::ITEM);
        let attributes = self.expands("attributes");
        let page = range.page(items, &PageFault::none());
        let (root, item) = (T::ROOT, T::ITEM);
        Ok(match self.fmt {
            Format::Xml => {
                let mut out = String::with_capacity(128 + page.items.len() * if full { T::BYTES } else { 160 });
                out.push_str(PROLOG);
                out.push_str(&format!("<{root} expand=\"{item}\">"));
                for e in &page.items {
                    if full {
                        T::xml(&self.links, &mut out, e, attributes);
                    } else {
                        T::min_xml(&self.links, &mut out, e.item.name());
                    }
                }
                out.push_str(&format!("</{root}>"));
                self.xml(out)
            }
            Format::Json => {
                let list: Vec<Value> = page
                    .items
                    .iter()
                    .map(|e| match full {
                        true => T::json(&self.links, e, attributes),
                        false => T::min_json(&self.links, e.item.name()),
                    })
                    .collect();
                self.json(&json!({"expand": item, root: list}))
            }
        })
    }

    /// The answer to a membership test that holds: the member, minimal.
    fn member_user(&self, name: &str) -> Response {
        match self.fmt {
            Format::Xml => {
                let mut out = String::from(PROLOG);
                self.links.min_user(&mut out, "user", name);
                self.xml(out)
            }
            Format::Json => self.json(&self.links.min_user_json(name)),
        }
    }

    fn member_group(&self, name: &str) -> Response {
        match self.fmt {
            Format::Xml => {
                let mut out = String::from(PROLOG);
                self.links.min_group(&mut out, name);
                self.xml(out)
            }
            Format::Json => self.json(&self.links.min_group_json(name)),
        }
    }
}

/// Serves an authenticated application's request for `rest` (the path below the API root).
/// `body` is `None` when it could not be read.
pub(super) fn serve(s: &CrowdState, app: &App, req: &Parts, rest: &str, body: Option<&[u8]>) -> Response {
    let host = req
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let base = format!("http://{host}{}", super::API);
    let query = req
        .uri
        .query()
        .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let ctx = Ctx {
        s,
        fmt: Format::of(req),
        links: Links(&base),
        query,
    };
    // `/group/membership` and `/event*` produce XML only, errors included.
    let xml_only = rest == "/group/membership" || rest == "/event" || rest.starts_with("/event/");
    let fmt = if xml_only { Format::Xml } else { ctx.fmt };
    let ctx = Ctx { fmt, ..ctx };
    match route(&ctx, app, &req.method, rest, body) {
        Ok(r) => r,
        Err(e) => fmt.error(e.status, e.reason, &e.message),
    }
}

fn route(ctx: &Ctx<'_>, app: &App, method: &Method, rest: &str, body: Option<&[u8]>) -> Answer {
    let read = *method == Method::GET;
    let known = matches!(
        rest,
        "/search"
            | "/user"
            | "/user/group/direct"
            | "/user/group/nested"
            | "/group"
            | "/group/user/direct"
            | "/group/user/nested"
            | "/group/child-group/direct"
            | "/group/child-group/nested"
            | "/group/parent-group/direct"
            | "/group/parent-group/nested"
            | "/group/membership"
            | "/event"
            | "/authentication"
    ) || rest.starts_with("/event/");
    let write_target = rest.starts_with("/user") || rest.starts_with("/group");
    if !known && (!write_target || read) {
        return Ok(answer(StatusCode::NOT_FOUND, String::new(), "text/plain"));
    }
    if !app.may_read {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            Reason::ApplicationPermissionDenied,
            format!(
                "Application '{}' does not have permission to read the directory.",
                app.name
            ),
        ));
    }
    match (method.clone(), rest) {
        (Method::POST, "/search") => search(ctx, body),
        (Method::POST, "/authentication") => Err(refuse(
            StatusCode::BAD_REQUEST,
            Reason::InvalidUserAuthentication,
            "This user server holds no user passwords.",
        )),
        (Method::GET, "/user") => user(ctx),
        (Method::GET, "/group") => group(ctx),
        (Method::GET, "/user/group/direct") => user_groups(ctx, Depth::Direct),
        (Method::GET, "/user/group/nested") => user_groups(ctx, Depth::Nested),
        (Method::GET, "/group/user/direct") => group_users(ctx, Depth::Direct),
        (Method::GET, "/group/user/nested") => group_users(ctx, Depth::Nested),
        (Method::GET, "/group/child-group/direct") => related_groups(ctx, Depth::Direct, Relation::Children),
        (Method::GET, "/group/child-group/nested") => related_groups(ctx, Depth::Nested, Relation::Children),
        (Method::GET, "/group/parent-group/direct") => related_groups(ctx, Depth::Direct, Relation::Parents),
        (Method::GET, "/group/parent-group/nested") => related_groups(ctx, Depth::Nested, Relation::Parents),
        (Method::GET, "/group/membership") => Ok(memberships(ctx)),
        (Method::GET, "/event") => Ok(ctx.xml(if ctx.s.incremental {
            events::current(&ctx.s.log.token())
        } else {
            events::unavailable()
        })),
        (Method::GET, t) if t.starts_with("/event/") => events_since(ctx, &t["/event/".len()..]),
        (m, _) if m != Method::GET && write_target => Err(refuse(
            StatusCode::FORBIDDEN,
            Reason::ApplicationPermissionDenied,
            format!(
                "Application '{}' may not change users, groups or memberships.",
                app.name
            ),
        )),
        _ => Ok(answer(StatusCode::METHOD_NOT_ALLOWED, String::new(), "text/plain")),
    }
}

#[derive(Clone, Copy)]
enum Depth {
    Direct,
    Nested,
}

#[derive(Clone, Copy)]
enum Relation {
    Children,
    Parents,
}

fn user_not_found(name: &str) -> Refusal {
    refuse(
        StatusCode::NOT_FOUND,
        Reason::UserNotFound,
        format!("User <{name}> does not exist"),
    )
}

fn group_not_found(name: &str) -> Refusal {
    refuse(
        StatusCode::NOT_FOUND,
        Reason::GroupNotFound,
        format!("Group <{name}> does not exist"),
    )
}

fn not_member(child: &str, parent: &str) -> Refusal {
    refuse(
        StatusCode::NOT_FOUND,
        Reason::MembershipNotFound,
        format!("The child entity <{child}> is not a member of the parent <{parent}>"),
    )
}

/// `GET /user?username=` or `?key=`.
fn user(ctx: &Ctx<'_>) -> Answer {
    let s = ctx.s;
    let found = match (ctx.param("username"), ctx.param("key")) {
        (Some(name), _) => s.users.get(&lower(name)).ok_or_else(|| user_not_found(name))?,
        (None, Some(key)) => s
            .keys
            .get(&lower(key))
            .and_then(|n| s.users.get(n))
            .ok_or_else(|| user_not_found(key))?,
        (None, None) => return Err(illegal("The query parameter `username` or `key` is required.")),
    };
    let attributes = ctx.expands("attributes");
    Ok(match ctx.fmt {
        Format::Xml => {
            let mut out = String::with_capacity(USER_BYTES);
            out.push_str(PROLOG);
            ctx.links.user(&mut out, found, attributes);
            ctx.xml(out)
        }
        Format::Json => ctx.json(&ctx.links.user_json(found, attributes)),
    })
}

/// `GET /group?groupname=`.
fn group(ctx: &Ctx<'_>) -> Answer {
    let name = ctx.required("groupname")?;
    let found = ctx.s.groups.get(&lower(name)).ok_or_else(|| group_not_found(name))?;
    let attributes = ctx.expands("attributes");
    Ok(match ctx.fmt {
        Format::Xml => {
            let mut out = String::with_capacity(GROUP_BYTES);
            out.push_str(PROLOG);
            ctx.links.group(&mut out, found, attributes);
            ctx.xml(out)
        }
        Format::Json => ctx.json(&ctx.links.group_json(found, attributes)),
    })
}

/// The groups related to `start` (lower-case) by `rel`, directly or through nesting.
fn related<'s>(s: &'s CrowdState, start: &str, rel: Relation, depth: Depth) -> BTreeSet<&'s str> {
    let edges = match rel {
        Relation::Children => &s.group_children,
        Relation::Parents => &s.group_parents,
    };
    let mut out: BTreeSet<&str> = BTreeSet::new();
    let mut todo: Vec<&str> = edges.get(start).into_iter().flatten().map(String::as_str).collect();
    while let Some(g) = todo.pop() {
        if g == start || !out.insert(g) {
            continue;
        }
        if let Depth::Nested = depth {
            todo.extend(edges.get(g).into_iter().flatten().map(String::as_str));
        }
    }
    out
}

/// `GET /user/group/direct|nested?username=[&groupname=]`.
fn user_groups(ctx: &Ctx<'_>, depth: Depth) -> Answer {
    let s = ctx.s;
    let name = ctx.required("username")?;
    let u = lower(name);
    if !s.users.contains_key(&u) {
        return Err(user_not_found(name));
    }
    let mut groups: BTreeSet<&str> = s
        .user_groups
        .get(&u)
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    if let Depth::Nested = depth {
        let direct: Vec<&str> = groups.iter().copied().collect();
        for g in direct {
            groups.extend(related(s, g, Relation::Parents, Depth::Nested));
        }
    }
    match ctx.param("groupname") {
        Some(g) if groups.contains(lower(g).as_str()) => Ok(ctx.member_group(&s.group_name(&lower(g)))),
        Some(g) => Err(not_member(name, g)),
        None => ctx.groups(groups.into_iter()),
    }
}

/// `GET /group/user/direct|nested?groupname=[&username=]`. An unknown group has no members
/// (J5 `GroupsController.getDirectUsers`).
fn group_users(ctx: &Ctx<'_>, depth: Depth) -> Answer {
    let s = ctx.s;
    let name = ctx.required("groupname")?;
    let g = lower(name);
    let mut users: BTreeSet<&str> = s
        .group_users
        .get(&g)
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    if let Depth::Nested = depth {
        for sub in related(s, &g, Relation::Children, Depth::Nested) {
            users.extend(s.group_users.get(sub).into_iter().flatten().map(String::as_str));
        }
    }
    match ctx.param("username") {
        Some(u) if users.contains(lower(u).as_str()) => Ok(ctx.member_user(&s.user_name(&lower(u)))),
        Some(u) => Err(not_member(u, name)),
        None => ctx.users(users.into_iter()),
    }
}

/// `GET /group/child-group|parent-group/direct|nested?groupname=[&child-groupname=]`.
fn related_groups(ctx: &Ctx<'_>, depth: Depth, rel: Relation) -> Answer {
    let s = ctx.s;
    let name = ctx.required("groupname")?;
    let groups = related(s, &lower(name), rel, depth);
    let test = match rel {
        Relation::Children => ctx.param("child-groupname"),
        Relation::Parents => ctx.param("parent-groupname"),
    };
    match test {
        Some(t) if groups.contains(lower(t).as_str()) => Ok(ctx.member_group(&s.group_name(&lower(t)))),
        Some(t) => Err(match rel {
            Relation::Children => not_member(t, name),
            Relation::Parents => not_member(name, t),
        }),
        None => ctx.groups(groups.into_iter()),
    }
}

/// `GET /group/membership`: every group's direct users and direct child groups, names only.
fn memberships(ctx: &Ctx<'_>) -> Response {
    let s = ctx.s;
    if !s.membership_document {
        return answer(StatusCode::NOT_FOUND, String::new(), "text/plain");
    }
    let members: usize = s.group_users.values().map(BTreeSet::len).sum::<usize>()
        + s.group_children.values().map(BTreeSet::len).sum::<usize>();
    let mut out = String::with_capacity(128 + s.groups.len() * 96 + members * 40);
    out.push_str(PROLOG);
    out.push_str("<memberships>");
    for (key, g) in &s.groups {
        out.push_str("<membership group=\"");
        esc(&mut out, &g.item.name);
        out.push_str("\"><users>");
        for u in s.group_users.get(key).into_iter().flatten() {
            out.push_str("<user name=\"");
            esc(&mut out, s.users.get(u).map_or(u, |e| &e.item.name));
            out.push_str("\"/>");
        }
        out.push_str("</users><groups>");
        for c in s.group_children.get(key).into_iter().flatten() {
            out.push_str("<group name=\"");
            esc(&mut out, s.groups.get(c).map_or(c, |e| &e.item.name));
            out.push_str("\"/>");
        }
        out.push_str("</groups></membership>");
    }
    out.push_str("</memberships>");
    ctx.xml(out)
}

/// `GET /event/{token}`.
fn events_since(ctx: &Ctx<'_>, token: &str) -> Answer {
    let s = ctx.s;
    if !s.incremental {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            Reason::IncrementalSyncNotAvailable,
            "Incremental synchronisation is not available.",
        ));
    }
    let events = s.log.since(token).map_err(|events::TokenError::Expired| {
        refuse(
            StatusCode::GONE,
            Reason::EventTokenExpired,
            "The event token has expired or was never issued; synchronise in full.",
        )
    })?;
    Ok(ctx.xml(events::render(&ctx.links, events, &s.log.token())))
}

/// `POST /search?entity-type=user|group`.
fn search(ctx: &Ctx<'_>, body: Option<&[u8]>) -> Answer {
    let entity = ctx.required("entity-type")?;
    let body = body.ok_or_else(|| illegal("The search restriction could not be read (over 1 MiB?)."))?;
    let restriction =
        Restriction::parse(body).map_err(|e| illegal(format!("The search restriction was refused: {e}.")))?;
    let s = ctx.s;
    match entity {
        "user" => ctx.users(
            s.users
                .iter()
                .filter(|(_, e)| restriction.matches(&UserSubject(e)))
                .map(|(k, _)| k.as_str()),
        ),
        "group" => ctx.groups(
            s.groups
                .iter()
                .filter(|(_, e)| restriction.matches(&GroupSubject(e)))
                .map(|(k, _)| k.as_str()),
        ),
        other => Err(illegal(format!(
            "entity-type must be `user` or `group`, not `{other}`."
        ))),
    }
}

/// A user in a search.
struct UserSubject<'a>(&'a Stamped<CrowdUser>);

/// A group in a search.
struct GroupSubject<'a>(&'a Stamped<CrowdGroup>);

fn ms(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

impl Subject for UserSubject<'_> {
    fn property(&self, name: &str) -> Prop<'_> {
        let u = &self.0.item;
        match name {
            "name" => Prop::Text(&u.name),
            "email" => Prop::Text(&u.email),
            "firstName" => Prop::Text(&u.first_name),
            "lastName" => Prop::Text(&u.last_name),
            "displayName" => Prop::Text(&u.display_name),
            "externalId" => u.key.as_deref().map_or(Prop::Absent, Prop::Text),
            "active" => Prop::Flag(u.active),
            "createdDate" => Prop::Date(ms(self.0.created)),
            "updatedDate" => Prop::Date(ms(self.0.updated)),
            // Any other name is a custom attribute, as in Crowd.
            other => u
                .attribute(other)
                .map_or(Prop::Absent, |v| Prop::Values(Cow::Borrowed(v))),
        }
    }
}

impl Subject for GroupSubject<'_> {
    fn property(&self, name: &str) -> Prop<'_> {
        let g = &self.0.item;
        match name {
            "name" => Prop::Text(&g.name),
            "description" => g.description.as_deref().map_or(Prop::Absent, Prop::Text),
            "active" => Prop::Flag(g.active),
            "local" => Prop::Flag(false),
            "createdDate" => Prop::Date(ms(self.0.created)),
            "updatedDate" => Prop::Date(ms(self.0.updated)),
            _ => Prop::Absent,
        }
    }
}

/// Users and groups as listings write them.
trait Listed {
    /// The list's element (`users`).
    const ROOT: &'static str;
    /// An item's element, and the `expand` word for full items (`user`).
    const ITEM: &'static str;
    /// Bytes reserved per full item.
    const BYTES: usize;
    /// Its name.
    fn name(&self) -> &str;
    /// The full entity, XML.
    fn xml(links: &Links<'_>, out: &mut String, e: &Stamped<Self>, attributes: bool)
    where
        Self: Sized;
    /// The name and link only, XML.
    fn min_xml(links: &Links<'_>, out: &mut String, name: &str);
    /// The full entity, JSON.
    fn json(links: &Links<'_>, e: &Stamped<Self>, attributes: bool) -> Value
    where
        Self: Sized;
    /// The name and link only, JSON.
    fn min_json(links: &Links<'_>, name: &str) -> Value;
}

impl Listed for CrowdUser {
    const ROOT: &'static str = "users";
    const ITEM: &'static str = "user";
    const BYTES: usize = USER_BYTES;
    fn name(&self) -> &str {
        &self.name
    }
    fn xml(links: &Links<'_>, out: &mut String, e: &Stamped<Self>, attributes: bool) {
        links.user(out, e, attributes);
    }
    fn min_xml(links: &Links<'_>, out: &mut String, name: &str) {
        links.min_user(out, "user", name);
    }
    fn json(links: &Links<'_>, e: &Stamped<Self>, attributes: bool) -> Value {
        links.user_json(e, attributes)
    }
    fn min_json(links: &Links<'_>, name: &str) -> Value {
        links.min_user_json(name)
    }
}

impl Listed for CrowdGroup {
    const ROOT: &'static str = "groups";
    const ITEM: &'static str = "group";
    const BYTES: usize = GROUP_BYTES;
    fn name(&self) -> &str {
        &self.name
    }
    fn xml(links: &Links<'_>, out: &mut String, e: &Stamped<Self>, attributes: bool) {
        links.group(out, e, attributes);
    }
    fn min_xml(links: &Links<'_>, out: &mut String, name: &str) {
        links.min_group(out, name);
    }
    fn json(links: &Links<'_>, e: &Stamped<Self>, attributes: bool) -> Value {
        links.group_json(e, attributes)
    }
    fn min_json(links: &Links<'_>, name: &str) -> Value {
        links.min_group_json(name)
    }
}

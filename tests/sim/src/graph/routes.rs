//! Routing, permissions and the non-delta Graph endpoints, with keyed paging.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ops::Bound;

use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::odata::{Filter, Kind, Query, Sel, list_filter, render};
use super::{Ctx, DEFAULT_APP_ROLE, GErr, GResult, GraphState, METADATA, MemberKind, delta};
use crate::kit::{Cursor, keyed_page};

const USER_PERMS: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const GROUP_PERMS: &[&str] = &[
    "GroupMember.Read.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const SP_PERMS: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// A Graph route, with its ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Route {
    Users,
    User(String),
    UserMemberOf(String),
    UsersDelta,
    Groups,
    Group(String),
    GroupMembers(String),
    GroupTransitiveMembers(String),
    GroupsDelta,
    ServicePrincipals,
    ServicePrincipal(String),
    AppRoleAssignedTo(String),
    /// The first segment that names nothing.
    Unknown(String),
}

fn is_delta(seg: &str) -> bool {
    matches!(seg, "delta" | "microsoft.graph.delta()" | "microsoft.graph.delta")
}

impl Route {
    /// Matches decoded path segments (fixed segments case-insensitively).
    pub fn parse(segs: &[&str]) -> Route {
        let lower: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
        let l: Vec<&str> = lower.iter().map(String::as_str).collect();
        let id = |i: usize| segs[i].to_string();
        match l.as_slice() {
            [] => Route::Unknown(String::new()),
            [v, ..] if *v != "v1.0" => Route::Unknown(segs[0].to_string()),
            [_] => Route::Unknown(String::new()),
            [_, "users"] => Route::Users,
            [_, "users", d] if is_delta(d) => Route::UsersDelta,
            [_, "users", _] => Route::User(id(2)),
            [_, "users", _, "transitivememberof"] => Route::UserMemberOf(id(2)),
            [_, "groups"] => Route::Groups,
            [_, "groups", d] if is_delta(d) => Route::GroupsDelta,
            [_, "groups", _] => Route::Group(id(2)),
            [_, "groups", _, "members"] => Route::GroupMembers(id(2)),
            [_, "groups", _, "transitivemembers"] => Route::GroupTransitiveMembers(id(2)),
            [_, "serviceprincipals"] => Route::ServicePrincipals,
            [_, "serviceprincipals", _] => Route::ServicePrincipal(id(2)),
            [_, "serviceprincipals", _, "approleassignedto"] => Route::AppRoleAssignedTo(id(2)),
            [_, "users" | "groups" | "serviceprincipals", _, _, ..] => Route::Unknown(segs[3].to_string()),
            [_, _, ..] => Route::Unknown(segs[1].to_string()),
        }
    }

    /// The label in `calls` (ids replaced).
    pub fn label(&self) -> &'static str {
        match self {
            Route::Users => "/users",
            Route::User(_) => "/users/{id}",
            Route::UserMemberOf(_) => "/users/{id}/transitiveMemberOf",
            Route::UsersDelta => "/users/delta",
            Route::Groups => "/groups",
            Route::Group(_) => "/groups/{id}",
            Route::GroupMembers(_) => "/groups/{id}/members",
            Route::GroupTransitiveMembers(_) => "/groups/{id}/transitiveMembers",
            Route::GroupsDelta => "/groups/delta",
            Route::ServicePrincipals => "/servicePrincipals",
            Route::ServicePrincipal(_) => "/servicePrincipals/{id}",
            Route::AppRoleAssignedTo(_) => "/servicePrincipals/{id}/appRoleAssignedTo",
            Route::Unknown(_) => "(unknown)",
        }
    }

    /// Application permissions of which the caller needs one.
    pub fn permissions(&self) -> Option<&'static [&'static str]> {
        match self {
            Route::Users | Route::User(_) | Route::UsersDelta => Some(USER_PERMS),
            Route::UserMemberOf(_)
            | Route::Groups
            | Route::Group(_)
            | Route::GroupMembers(_)
            | Route::GroupTransitiveMembers(_)
            | Route::GroupsDelta => Some(GROUP_PERMS),
            Route::ServicePrincipals | Route::ServicePrincipal(_) | Route::AppRoleAssignedTo(_) => Some(SP_PERMS),
            Route::Unknown(_) => None,
        }
    }

    /// The answer to an unknown route.
    pub fn unknown_error(&self) -> GErr {
        let seg = match self {
            Route::Unknown(s) => s.as_str(),
            _ => "",
        };
        GErr::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Resource not found for the segment '{seg}'."),
        )
    }
}

/// What opaque tokens carry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "k")]
pub(super) enum Sealed {
    /// A list's skip token: the last id served.
    #[serde(rename = "l")]
    List(Cursor<String>),
    /// A delta round's skip or delta token.
    #[serde(rename = "d")]
    Delta(delta::DeltaTok),
}

/// Answers a Graph request that passed authentication and authorisation.
pub(super) fn serve(s: &mut GraphState, ctx: &Ctx, route: &Route, q: &Query) -> Response {
    let r = match route {
        Route::Users => list(s, ctx, q, Kind::User, &s.users, "users"),
        Route::User(id) => get_user(s, q, id),
        Route::UserMemberOf(id) => member_of(s, ctx, q, id),
        Route::UsersDelta => delta::serve(s, ctx, q, delta::DeltaKind::Users),
        Route::Groups => list(s, ctx, q, Kind::Group, &s.groups, "groups"),
        Route::Group(id) => get_group(s, q, id),
        Route::GroupMembers(id) => members(s, ctx, q, id, false),
        Route::GroupTransitiveMembers(id) => members(s, ctx, q, id, true),
        Route::GroupsDelta => delta::serve(s, ctx, q, delta::DeltaKind::Groups),
        Route::ServicePrincipals => list_sps(s, ctx, q),
        Route::ServicePrincipal(id) => get_sp(s, q, id),
        Route::AppRoleAssignedTo(id) => assigned_to(s, ctx, q, id),
        Route::Unknown(_) => Err(route.unknown_error()),
    };
    ctx.answer(r)
}

/// Where a list continues (from `$skiptoken`).
fn list_after(s: &GraphState, q: &Query) -> GResult<Cursor<String>> {
    let Some(t) = &q.skiptoken else {
        return Ok(Cursor::start());
    };
    match s.unseal::<Sealed>(t) {
        Some(Sealed::List(c)) => Ok(c),
        _ => Err(GErr::bad("Invalid skip token")),
    }
}

fn after_bound(after: &Option<String>) -> (Bound<&str>, Bound<&str>) {
    (
        after.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
        Bound::Unbounded,
    )
}

/// One page: at most `top` items of `iter` (already filtered and rendered, in id order, after
/// `here`), with `@odata.nextLink` when more follow.
#[allow(clippy::too_many_arguments)] // one call per collection kind; a struct would only rename them
fn page<'a>(
    s: &GraphState,
    ctx: &Ctx,
    q: &Query,
    here: &Cursor<String>,
    context: String,
    iter: impl Iterator<Item = (&'a str, Value)>,
    top: usize,
    total: Option<usize>,
) -> Value {
    let here = Cursor {
        after: here.after.as_deref(),
        gap: here.gap,
    };
    // Ids borrowed from the state meet the cursor's, borrowed from the request, at the shorter
    // lifetime.
    let items = iter.map(|(id, v)| -> (&str, Value) { (id, v) });
    let page = keyed_page(&here, top, items, &ctx.page_fault);
    let mut body = Map::new();
    body.insert("@odata.context".into(), Value::String(context));
    if let Some(n) = total {
        body.insert("@odata.count".into(), json!(n));
    }
    if let Some(next) = page.next {
        body.insert("@odata.nextLink".into(), Value::String(next_link(s, ctx, q, next)));
    }
    body.insert("value".into(), Value::Array(page.items));
    Value::Object(body)
}

/// The link to a list's page: the request's options and the page's skip token (none for the
/// first page, so a looping cursor leads to the first page's own URL).
fn next_link(s: &GraphState, ctx: &Ctx, q: &Query, next: Cursor<&str>) -> String {
    let query = if next.is_start() {
        q.link_query(None)
    } else {
        let token = s.seal(&Sealed::List(Cursor {
            after: next.after.map(str::to_string),
            gap: next.gap,
        }));
        q.link_query(Some(("$skiptoken", &token)))
    };
    if query.is_empty() {
        format!("{}{}", ctx.base, ctx.path)
    } else {
        format!("{}{}?{query}", ctx.base, ctx.path)
    }
}

/// The entries of `map` after `after`, in id order: only the `ids` a filter pins, when it does
/// (looked up, not scanned).
fn scan<'a, V>(
    map: &'a BTreeMap<String, V>,
    ids: &'a Option<BTreeSet<String>>,
    after: &'a Option<String>,
) -> Box<dyn Iterator<Item = (&'a String, &'a V)> + 'a> {
    match ids {
        Some(ids) => Box::new(
            ids.range::<str, _>(after_bound(after))
                .filter_map(|id| map.get_key_value(id)),
        ),
        None => Box::new(map.range::<str, _>(after_bound(after))),
    }
}

/// How many entries match (`$count=true`).
fn counted<V: super::odata::Fields>(
    map: &BTreeMap<String, V>,
    ids: &Option<BTreeSet<String>>,
    filter: &Option<Filter>,
) -> usize {
    if filter.is_none() {
        return map.len();
    }
    scan(map, ids, &None).filter(|(_, v)| keep(filter, *v)).count()
}

fn keep<F: super::odata::Fields>(filter: &Option<Filter>, o: &F) -> bool {
    filter.as_ref().is_none_or(|f| f.eval(o))
}

fn with_type(mut m: Map<String, Value>, kind: MemberKind) -> Value {
    m.insert("@odata.type".into(), Value::String(kind.odata_type().into()));
    Value::Object(m)
}

/// A user or group as a `directoryObject` in a members list.
fn dir_object(s: &GraphState, id: &str, kind: MemberKind, sel: &Sel, filter: &Option<Filter>) -> Option<Value> {
    match kind {
        MemberKind::User => {
            let u = s.users.get(id).filter(|u| keep(filter, *u))?;
            Some(with_type(render(u, &sel.names(Kind::User), false), kind))
        }
        MemberKind::Group => {
            let g = s.groups.get(id).filter(|g| keep(filter, *g))?;
            Some(with_type(render(g, &sel.names(Kind::Group), false), kind))
        }
    }
}

/// `dir_object` with its id, for `page`.
fn tagged<'a>(
    s: &GraphState,
    id: &'a str,
    kind: MemberKind,
    sel: &Sel,
    filter: &Option<Filter>,
) -> Option<(&'a str, Value)> {
    dir_object(s, id, kind, sel, filter).map(|v| (id, v))
}

fn entity(context: String, m: Map<String, Value>) -> Value {
    let mut out = Map::new();
    out.insert("@odata.context".into(), Value::String(context));
    out.extend(m);
    Value::Object(out)
}

/// `GET /users` or `GET /groups`: the collection `objects` of `kind`, filtered, selected, paged.
fn list<F: super::odata::Fields>(
    s: &GraphState,
    ctx: &Ctx,
    q: &Query,
    kind: Kind,
    objects: &BTreeMap<String, F>,
    segment: &str,
) -> GResult<Value> {
    q.refuse_unsupported()?;
    let top = q.top()?;
    let count = q.count(ctx.eventual)?;
    let sel = Sel::parse(q.select.as_deref(), kind, &s.extensions, false)?;
    let filter = list_filter(q.filter.as_deref(), kind, &s.extensions, ctx.eventual, count)?;
    let here = list_after(s, q)?;
    let after = here.after.clone();
    let names = sel.names(kind);
    let ids = filter.as_ref().and_then(Filter::id_candidates);
    let total = count.then(|| counted(objects, &ids, &filter));
    let iter = scan(objects, &ids, &after)
        .filter(|(_, o)| keep(&filter, *o))
        .map(|(id, o)| (id.as_str(), Value::Object(render(o, &names, false))));
    Ok(page(
        s,
        ctx,
        q,
        &here,
        format!("{METADATA}#{segment}{}", sel.context()),
        iter,
        top,
        total,
    ))
}

fn get_user(s: &GraphState, q: &Query, id: &str) -> GResult<Value> {
    q.refuse_unsupported()?;
    let sel = Sel::parse(q.select.as_deref(), Kind::User, &s.extensions, false)?;
    let u = s.find_user(id).ok_or_else(|| GErr::not_found(id))?;
    Ok(entity(
        format!("{METADATA}#users{}/$entity", sel.context()),
        render(u, &sel.names(Kind::User), false),
    ))
}

fn get_group(s: &GraphState, q: &Query, id: &str) -> GResult<Value> {
    q.refuse_unsupported()?;
    let sel = Sel::parse(q.select.as_deref(), Kind::Group, &s.extensions, false)?;
    let g = s.groups.get(id).ok_or_else(|| GErr::not_found(id))?;
    Ok(entity(
        format!("{METADATA}#groups{}/$entity", sel.context()),
        render(g, &sel.names(Kind::Group), false),
    ))
}

/// Every group and user below `group` (nested groups followed, cycles tolerated), by id.
fn transitive_members<'a>(s: &'a GraphState, group: &'a str) -> BTreeMap<&'a str, MemberKind> {
    let mut out = BTreeMap::new();
    let mut seen: HashSet<&str> = HashSet::from([group]);
    let mut stack = vec![group];
    while let Some(g) = stack.pop() {
        for (m, kind) in s.members.get(g).into_iter().flatten() {
            if *kind == MemberKind::Group && seen.insert(m.as_str()) {
                stack.push(m.as_str());
            }
            if m != group {
                out.insert(m.as_str(), *kind);
            }
        }
    }
    out
}

/// Every group `member` is in, directly or through nested groups, by id.
fn transitive_member_of<'a>(s: &'a GraphState, member: &'a str) -> BTreeSet<&'a str> {
    let mut out = BTreeSet::new();
    let mut stack = vec![member];
    while let Some(m) = stack.pop() {
        for g in s.member_of.get(m).into_iter().flatten() {
            if g != member && out.insert(g.as_str()) {
                stack.push(g.as_str());
            }
        }
    }
    out
}

fn members(s: &GraphState, ctx: &Ctx, q: &Query, id: &str, transitive: bool) -> GResult<Value> {
    q.refuse_unsupported()?;
    let top = q.top()?;
    let count = q.count(ctx.eventual)?;
    let sel = Sel::parse(q.select.as_deref(), Kind::DirectoryObject, &s.extensions, false)?;
    let filter = list_filter(
        q.filter.as_deref(),
        Kind::DirectoryObject,
        &s.extensions,
        ctx.eventual,
        count,
    )?;
    let here = list_after(s, q)?;
    let after = here.after.clone();
    if !s.groups.contains_key(id) {
        return Err(GErr::not_found(id));
    }
    let context = format!("{METADATA}#directoryObjects{}", sel.context());
    if transitive {
        let all = transitive_members(s, id);
        let total = count.then(|| all.iter().filter_map(|(m, k)| tagged(s, m, *k, &sel, &filter)).count());
        let iter = all
            .range::<&str, _>((
                after.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
                Bound::Unbounded,
            ))
            .filter_map(|(m, k)| tagged(s, m, *k, &sel, &filter));
        Ok(page(s, ctx, q, &here, context, iter, top, total))
    } else {
        let empty = BTreeMap::new();
        let direct = s.members.get(id).unwrap_or(&empty);
        let total = count.then(|| {
            direct
                .iter()
                .filter_map(|(m, k)| tagged(s, m, *k, &sel, &filter))
                .count()
        });
        let iter = direct
            .range::<str, _>(after_bound(&after))
            .filter_map(|(m, k)| tagged(s, m, *k, &sel, &filter));
        Ok(page(s, ctx, q, &here, context, iter, top, total))
    }
}

fn member_of(s: &GraphState, ctx: &Ctx, q: &Query, key: &str) -> GResult<Value> {
    q.refuse_unsupported()?;
    let top = q.top()?;
    let count = q.count(ctx.eventual)?;
    let sel = Sel::parse(q.select.as_deref(), Kind::DirectoryObject, &s.extensions, false)?;
    let filter = list_filter(
        q.filter.as_deref(),
        Kind::DirectoryObject,
        &s.extensions,
        ctx.eventual,
        count,
    )?;
    let here = list_after(s, q)?;
    let after = here.after.clone();
    let u = s.find_user(key).ok_or_else(|| GErr::not_found(key))?;
    let all = transitive_member_of(s, &u.id);
    let total = count.then(|| {
        all.iter()
            .filter_map(|g| tagged(s, g, MemberKind::Group, &sel, &filter))
            .count()
    });
    let iter = all
        .range::<&str, _>((
            after.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
            Bound::Unbounded,
        ))
        .filter_map(|g| tagged(s, g, MemberKind::Group, &sel, &filter));
    Ok(page(
        s,
        ctx,
        q,
        &here,
        format!("{METADATA}#directoryObjects{}", sel.context()),
        iter,
        top,
        total,
    ))
}

fn list_sps(s: &GraphState, ctx: &Ctx, q: &Query) -> GResult<Value> {
    q.refuse_unsupported()?;
    let top = q.top()?;
    let count = q.count(ctx.eventual)?;
    let sel = Sel::parse(q.select.as_deref(), Kind::ServicePrincipal, &s.extensions, false)?;
    let filter = list_filter(
        q.filter.as_deref(),
        Kind::ServicePrincipal,
        &s.extensions,
        ctx.eventual,
        count,
    )?;
    let here = list_after(s, q)?;
    let after = here.after.clone();
    let names = sel.names(Kind::ServicePrincipal);
    let ids = filter.as_ref().and_then(Filter::id_candidates);
    let total = count.then(|| counted(&s.sps, &ids, &filter));
    let iter = scan(&s.sps, &ids, &after)
        .filter(|(_, p)| keep(&filter, *p))
        .map(|(id, p)| (id.as_str(), Value::Object(render(p, &names, false))));
    Ok(page(
        s,
        ctx,
        q,
        &here,
        format!("{METADATA}#servicePrincipals{}", sel.context()),
        iter,
        top,
        total,
    ))
}

fn get_sp(s: &GraphState, q: &Query, id: &str) -> GResult<Value> {
    q.refuse_unsupported()?;
    let sel = Sel::parse(q.select.as_deref(), Kind::ServicePrincipal, &s.extensions, false)?;
    let p = s.sps.get(id).ok_or_else(|| GErr::not_found(id))?;
    Ok(entity(
        format!("{METADATA}#servicePrincipals{}/$entity", sel.context()),
        render(p, &sel.names(Kind::ServicePrincipal), false),
    ))
}

const ASSIGNMENT_PROPS: &[&str] = &[
    "id",
    "appRoleId",
    "createdDateTime",
    "deletedDateTime",
    "principalDisplayName",
    "principalId",
    "principalType",
    "resourceDisplayName",
    "resourceId",
];

fn assigned_to(s: &GraphState, ctx: &Ctx, q: &Query, id: &str) -> GResult<Value> {
    q.refuse_unsupported()?;
    if q.filter.is_some() {
        return Err(GErr::unsupported(
            "The $filter query option is not supported on appRoleAssignedTo by this simulator.",
        ));
    }
    let top = q.top()?;
    let count = q.count(ctx.eventual)?;
    let select: Option<Vec<&str>> = match q.select.as_deref().filter(|v| !v.trim().is_empty()) {
        None => None,
        Some(raw) => {
            let mut names = vec!["id"];
            for p in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let Some(n) = ASSIGNMENT_PROPS.iter().find(|n| n.eq_ignore_ascii_case(p)) else {
                    return Err(GErr::bad(format!(
                        "Could not find a property named '{p}' on type 'microsoft.graph.appRoleAssignment'."
                    )));
                };
                names.push(n);
            }
            Some(names)
        }
    };
    let here = list_after(s, q)?;
    let after = here.after.clone();
    let sp = s.sps.get(id).ok_or_else(|| GErr::not_found(id))?;
    let empty = BTreeMap::new();
    let all = s.assignments.get(id).unwrap_or(&empty);
    let total = count.then(|| {
        all.iter()
            .filter_map(|(pid, a)| assignment(s, sp, &select, pid, a))
            .count()
    });
    let iter = all
        .range::<str, _>(after_bound(&after))
        .filter_map(|(pid, a)| assignment(s, sp, &select, pid, a));
    Ok(page(
        s,
        ctx,
        q,
        &here,
        format!("{METADATA}#servicePrincipals('{id}')/appRoleAssignedTo"),
        iter,
        top,
        total,
    ))
}

/// An `appRoleAssignment`, with its principal's id for `page`; `None` for principals not visible.
fn assignment<'a>(
    s: &GraphState,
    sp: &super::ServicePrincipal,
    select: &Option<Vec<&str>>,
    pid: &'a str,
    a: &super::Assignment,
) -> Option<(&'a str, Value)> {
    let name = s.principal_name(pid, a.kind)?;
    let mut m = Map::new();
    m.insert("id".into(), json!(a.id));
    m.insert("appRoleId".into(), json!(DEFAULT_APP_ROLE));
    m.insert("createdDateTime".into(), json!(a.created));
    m.insert("deletedDateTime".into(), Value::Null);
    m.insert("principalDisplayName".into(), json!(name));
    m.insert("principalId".into(), json!(pid));
    m.insert(
        "principalType".into(),
        json!(match a.kind {
            MemberKind::User => "User",
            MemberKind::Group => "Group",
        }),
    );
    m.insert("resourceDisplayName".into(), json!(sp.display_name));
    m.insert("resourceId".into(), json!(sp.id));
    if let Some(names) = select {
        m.retain(|k, _| names.contains(&k.as_str()));
    }
    Some((pid, Value::Object(m)))
}

//! `users/delta` and `groups/delta`: rounds over the change log, paged with opaque tokens.
//!
//! A token names the kind, the round's range (F, T] (F `None` = the initial full listing, T
//! `None` = a deltaLink whose round has not started), the position reached (last object id, and
//! the last member id when a group's `members@delta` continues on the next page), the `$select`
//! and id filter of the first request, and the epoch (how many `expire_delta_tokens` /
//! `reset_sync` calls had happened when it was issued).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::odata::{Kind, Query, Sel, parse_filter, render};
use super::routes::Sealed;
use super::{Change, Ctx, GErr, GResult, GraphState, Invalidation, METADATA, MemberKind};
use crate::kit::{Page, Position};

/// Which delta function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(super) enum DeltaKind {
    #[serde(rename = "u")]
    Users,
    #[serde(rename = "g")]
    Groups,
}

impl DeltaKind {
    fn segment(self) -> &'static str {
        match self {
            DeltaKind::Users => "users",
            DeltaKind::Groups => "groups",
        }
    }

    fn entity(self) -> Kind {
        match self {
            DeltaKind::Users => Kind::User,
            DeltaKind::Groups => Kind::Group,
        }
    }
}

/// The content of a delta or delta skip token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct DeltaTok {
    /// users or groups.
    t: DeltaKind,
    /// From sequence (exclusive); `None` = initial full listing.
    f: Option<u64>,
    /// To sequence (inclusive), fixed when the round starts; `None` in a deltaLink.
    to: Option<u64>,
    /// Last object served.
    a: Option<String>,
    /// Last member served of object `a`, whose `members@delta` continue.
    m: Option<String>,
    /// `$select` (empty = defaults).
    s: Vec<String>,
    /// Id filter (empty = all).
    i: Vec<String>,
    /// Epoch at issue.
    e: u64,
    /// Injected empty pages that led here: makes the token new, not the position.
    #[serde(default, skip_serializing_if = "is_zero")]
    g: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Position for DeltaTok {
    /// The round's first page.
    fn first(&self) -> Self {
        DeltaTok {
            a: None,
            m: None,
            g: 0,
            ..self.clone()
        }
    }

    fn again(&self) -> Self {
        DeltaTok {
            g: self.g.saturating_add(1),
            ..self.clone()
        }
    }
}

/// What identifies a computed round.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct RoundKey {
    kind: DeltaKind,
    from: u64,
    to: u64,
    members: bool,
    ids: Vec<String>,
}

/// The objects touched in (F, T], by id, and for groups the net member changes.
#[derive(Debug, Default)]
pub(super) struct Round {
    ids: Vec<String>,
    members: HashMap<String, Vec<(String, MemberKind, bool)>>,
}

/// Computed rounds kept for paging.
const ROUND_CACHE: usize = 16;

impl GraphState {
    fn round(&mut self, kind: DeltaKind, from: u64, to: u64, members: bool, ids: &[String]) -> Arc<Round> {
        let key = RoundKey {
            kind,
            from,
            to,
            members,
            ids: ids.to_vec(),
        };
        if let Some(r) = self.rounds.get(&key) {
            return r.clone();
        }
        let only: Option<HashSet<&str>> = (!ids.is_empty()).then(|| ids.iter().map(String::as_str).collect());
        let wanted = |id: &str| only.as_ref().is_none_or(|o| o.contains(id));
        let mut objs: BTreeSet<&str> = BTreeSet::new();
        let mut changes: HashMap<&str, BTreeMap<&str, (MemberKind, bool)>> = HashMap::new();
        let (from_i, to_i) = (from as usize, (to as usize).min(self.log.len()));
        for c in self.log.get(from_i..to_i).unwrap_or(&[]) {
            match (kind, c) {
                (DeltaKind::Users, Change::User(id)) | (DeltaKind::Groups, Change::Group(id)) if wanted(id) => {
                    objs.insert(id);
                }
                (
                    DeltaKind::Groups,
                    Change::Member {
                        group,
                        member,
                        kind,
                        added,
                    },
                ) if members && wanted(group) => {
                    objs.insert(group);
                    changes.entry(group).or_default().insert(member, (*kind, *added));
                }
                _ => {}
            }
        }
        let round = Arc::new(Round {
            ids: objs.into_iter().map(str::to_string).collect(),
            members: changes
                .into_iter()
                .map(|(g, m)| {
                    (
                        g.to_string(),
                        m.into_iter().map(|(id, (k, a))| (id.to_string(), k, a)).collect(),
                    )
                })
                .collect(),
        });
        if self.rounds.len() >= ROUND_CACHE {
            self.rounds.clear();
        }
        self.rounds.insert(key, round.clone());
        round
    }
}

/// Answers a delta request.
pub(super) fn serve(s: &mut GraphState, ctx: &Ctx, q: &Query, kind: DeltaKind) -> GResult<Value> {
    let context = format!(
        "{METADATA}#Collection({})",
        match kind {
            DeltaKind::Users => "user",
            DeltaKind::Groups => "group",
        }
    );
    let given = match (&q.skiptoken, &q.deltatoken) {
        (Some(t), _) if !t.is_empty() => Some((t.as_str(), "Invalid skip token")),
        (_, Some(t)) if !t.is_empty() => Some((t.as_str(), "Invalid delta token")),
        _ => None,
    };
    let tok = match given {
        Some((t, _)) if t.eq_ignore_ascii_case("latest") && q.skiptoken.is_none() => {
            let mut d = initial(s, q, kind)?;
            d.f = Some(s.sequence());
            d.to = None;
            let mut body = Map::new();
            body.insert("@odata.context".into(), Value::String(context));
            body.insert("value".into(), Value::Array(Vec::new()));
            body.insert("@odata.deltaLink".into(), json!(link(s, ctx, &d, "$deltatoken")));
            return Ok(Value::Object(body));
        }
        Some((t, invalid)) => resume(s, ctx, t, invalid, kind)?,
        None => initial(s, q, kind)?,
    };
    let (value, next) = match kind {
        DeltaKind::Users => users_page(s, &tok),
        DeltaKind::Groups => groups_page(s, &tok),
    };
    let page = Page {
        items: value,
        next: next.map(|(a, m)| DeltaTok {
            a: Some(a),
            m,
            g: 0,
            ..tok.clone()
        }),
    }
    .with_fault(&ctx.page_fault, &tok);
    let mut body = Map::new();
    body.insert("@odata.context".into(), Value::String(context));
    body.insert("value".into(), Value::Array(page.items));
    match page.next {
        Some(next) => {
            body.insert("@odata.nextLink".into(), json!(link(s, ctx, &next, "$skiptoken")));
        }
        None => {
            let done = DeltaTok {
                f: tok.to,
                to: None,
                a: None,
                m: None,
                e: s.epoch(),
                g: 0,
                ..tok.clone()
            };
            body.insert("@odata.deltaLink".into(), json!(link(s, ctx, &done, "$deltatoken")));
        }
    }
    Ok(Value::Object(body))
}

fn link(s: &GraphState, ctx: &Ctx, d: &DeltaTok, param: &str) -> String {
    format!(
        "{}/v1.0/{}/delta?{param}={}",
        ctx.base,
        d.t.segment(),
        s.seal(&Sealed::Delta(d.clone()))
    )
}

/// The token of a first request (no token): its options, checked.
fn initial(s: &GraphState, q: &Query, kind: DeltaKind) -> GResult<DeltaTok> {
    for (name, v) in [
        ("$top", &q.top),
        ("$expand", &q.expand),
        ("$orderby", &q.orderby),
        ("$search", &q.search),
        ("$count", &q.count),
        ("$skip", &q.skip),
    ] {
        if v.is_some() {
            return Err(GErr::unsupported(format!(
                "The query option '{name}' is not supported with delta queries."
            )));
        }
    }
    let sel = Sel::parse(
        q.select.as_deref(),
        kind.entity(),
        &s.extensions,
        kind == DeltaKind::Groups,
    )?;
    let ids = match q.filter.as_deref().filter(|f| !f.trim().is_empty()) {
        None => Vec::new(),
        Some(f) => parse_filter(f, kind.entity(), &s.extensions)?
            .expr
            .id_list()
            .ok_or_else(|| GErr::unsupported("Delta queries support only $filter=id eq '…' clauses joined by 'or'."))?,
    };
    Ok(DeltaTok {
        t: kind,
        f: None,
        to: Some(s.sequence()),
        a: None,
        m: None,
        s: sel.to_vec(),
        i: ids,
        e: s.epoch(),
        g: 0,
    })
}

/// The token of a follow-up request, checked (tampering, kind, epoch, range); a deltaLink's
/// round starts now.
fn resume(s: &GraphState, ctx: &Ctx, t: &str, invalid: &str, kind: DeltaKind) -> GResult<DeltaTok> {
    let Some(Sealed::Delta(mut d)) = s.unseal::<Sealed>(t) else {
        return Err(GErr::bad(invalid));
    };
    let seq = s.sequence();
    let in_range = d.t == kind
        && d.e <= s.epoch()
        && d.to.is_none_or(|to| to <= seq && d.f.is_none_or(|f| f <= to))
        && d.f.is_none_or(|f| f <= seq)
        && (d.to.is_some() || d.f.is_some());
    if !in_range {
        return Err(GErr::bad(invalid));
    }
    if let Some(inv) = s.invalidations.get(d.e as usize) {
        return Err(match inv {
            Invalidation::Expired => GErr::new(
                StatusCode::BAD_REQUEST,
                "syncStateNotFound",
                "The sync state for this delta token was not found; start a new full synchronization.",
            ),
            Invalidation::Reset => {
                let mut e = GErr::new(
                    StatusCode::GONE,
                    "resyncRequired",
                    "Resync required. Replace any local cached copies of the objects with the results of a new full synchronization, following the Location header.",
                );
                e.location = Some(restart_url(ctx, &d));
                e
            }
        });
    }
    if d.to.is_none() {
        d.to = Some(seq);
    }
    Ok(d)
}

/// The first request of a new full synchronization with the same options (empty token).
fn restart_url(ctx: &Ctx, d: &DeltaTok) -> String {
    let mut q = Vec::new();
    if !d.s.is_empty() {
        q.push(format!("$select={}", super::pct_encode(&d.s.join(","))));
    }
    if !d.i.is_empty() {
        let f: Vec<String> =
            d.i.iter()
                .map(|id| format!("id eq '{}'", id.replace('\'', "''")))
                .collect();
        q.push(format!("$filter={}", super::pct_encode(&f.join(" or "))));
    }
    q.push("$deltatoken=".into());
    format!("{}/v1.0/{}/delta?{}", ctx.base, d.t.segment(), q.join("&"))
}

fn removed(id: &str, reason: &str) -> Value {
    json!({"id": id, "@removed": {"reason": reason}})
}

/// Ids after `after`, from a sorted list.
fn after_in<'a>(ids: &'a [String], after: &Option<String>) -> &'a [String] {
    let start = after.as_deref().map_or(0, |a| ids.partition_point(|x| x.as_str() <= a));
    &ids[start..]
}

/// One page of a users round; `Some((last id, None))` when more follow.
fn users_page(s: &mut GraphState, d: &DeltaTok) -> (Vec<Value>, Option<(String, Option<String>)>) {
    let per_page = s.delta_page_size.max(1);
    let sel = Sel::from_vec(d.s.clone());
    let names = sel.names(Kind::User);
    let round = match (d.f, d.to) {
        (Some(f), Some(to)) => Some(s.round(DeltaKind::Users, f, to, false, &d.i)),
        _ => None,
    };
    let s: &GraphState = s;
    let only: BTreeSet<&str> = d.i.iter().map(String::as_str).collect();
    let bound = (
        d.a.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
        Bound::Unbounded,
    );
    let ids: Box<dyn Iterator<Item = &str>> = match &round {
        Some(r) => Box::new(after_in(&r.ids, &d.a).iter().map(String::as_str)),
        None if !only.is_empty() => Box::new(
            only.range::<&str, _>(bound)
                .copied()
                .filter(|id| s.users.contains_key(*id)),
        ),
        None => Box::new(s.users.range::<str, _>(bound).map(|(id, _)| id.as_str())),
    };
    let mut out = Vec::new();
    let mut last: Option<&str> = None;
    for id in ids {
        if out.len() == per_page {
            return (out, last.map(|l| (l.to_string(), None)));
        }
        out.push(match s.users.get(id) {
            Some(u) if s.delta_minimal => {
                let mut m = render(u, &names, true);
                m.retain(|k, _| k == "id" || k == "displayName");
                Value::Object(m)
            }
            Some(u) => Value::Object(render(u, &names, true)),
            None if s.deleted_users.contains_key(id) => removed(id, "changed"),
            None => removed(id, "deleted"),
        });
        last = Some(id);
    }
    (out, None)
}

fn member_entry(id: &str, kind: MemberKind, added: bool) -> Value {
    let mut m = Map::new();
    m.insert("@odata.type".into(), json!(kind.odata_type()));
    m.insert("id".into(), json!(id));
    if !added {
        m.insert("@removed".into(), json!({"reason": "deleted"}));
    }
    Value::Object(m)
}

/// One page of a groups round: at most `delta_page_size` groups and `delta_members_per_page`
/// `members@delta` entries; a group whose member changes do not fit continues on the next page
/// (it appears again, with its id and the rest of its `members@delta`).
fn groups_page(s: &mut GraphState, d: &DeltaTok) -> (Vec<Value>, Option<(String, Option<String>)>) {
    let max_groups = s.delta_page_size.max(1);
    let max_members = s.delta_members_per_page.max(1);
    let sel = Sel::from_vec(d.s.clone());
    let track = sel.has_members();
    let names = sel.names(Kind::Group);
    let round = match (d.f, d.to) {
        (Some(f), Some(to)) => Some(s.round(DeltaKind::Groups, f, to, track, &d.i)),
        _ => None,
    };
    let s: &GraphState = s;
    let only: BTreeSet<&str> = d.i.iter().map(String::as_str).collect();
    let next_group = |after: Option<&str>| -> Option<String> {
        let bound = (after.map_or(Bound::Unbounded, Bound::Excluded), Bound::Unbounded);
        match &round {
            Some(r) => after_in(&r.ids, &after.map(str::to_string)).first().cloned(),
            None if !only.is_empty() => only
                .range::<&str, _>(bound)
                .find(|id| s.groups.contains_key(**id))
                .map(|id| id.to_string()),
            None => s.groups.range::<str, _>(bound).next().map(|(id, _)| id.clone()),
        }
    };
    // At most `limit` member changes of `group` after `after_member`.
    let member_changes = |group: &str, after_member: Option<&str>, limit: usize| -> Vec<(String, MemberKind, bool)> {
        match &round {
            Some(r) => r
                .members
                .get(group)
                .map(|v| {
                    let start = after_member.map_or(0, |a| v.partition_point(|(m, _, _)| m.as_str() <= a));
                    v[start..].iter().take(limit).cloned().collect()
                })
                .unwrap_or_default(),
            None => s
                .members
                .get(group)
                .map(|m| {
                    m.range::<str, _>((after_member.map_or(Bound::Unbounded, Bound::Excluded), Bound::Unbounded))
                        .take(limit)
                        .map(|(id, k)| (id.clone(), *k, true))
                        .collect()
                })
                .unwrap_or_default(),
        }
    };
    let mut out = Vec::new();
    let mut budget = max_members;
    let mut cursor: Option<String> = d.a.clone();
    let mut resume_member: Option<String> = d.m.clone();
    loop {
        let (gid, after_member) = match resume_member.take() {
            Some(m) if cursor.is_some() => (cursor.clone().unwrap_or_default(), Some(m)),
            _ => match next_group(cursor.as_deref()) {
                Some(g) => (g, None),
                None => return (out, None),
            },
        };
        if out.len() >= max_groups || (track && budget == 0) {
            // Page full: the next page starts with this group (or its remaining members).
            return match after_member {
                Some(m) => (out, Some((gid, Some(m)))),
                None => (out, cursor.map(|c| (c, None))),
            };
        }
        let continuation = after_member.is_some();
        let Some(g) = s.groups.get(&gid) else {
            out.push(removed(&gid, "deleted"));
            cursor = Some(gid);
            continue;
        };
        let mut obj = if continuation {
            let mut m = Map::new();
            m.insert("id".into(), json!(gid));
            m
        } else {
            render(g, &names, true)
        };
        if track {
            let changes = member_changes(&gid, after_member.as_deref(), budget + 1);
            let more = changes.len() > budget;
            let shown = &changes[..changes.len().min(budget)];
            if !shown.is_empty() {
                obj.insert(
                    "members@delta".into(),
                    Value::Array(shown.iter().map(|(id, k, a)| member_entry(id, *k, *a)).collect()),
                );
            }
            budget -= shown.len();
            if more && let Some((last, _, _)) = shown.last() {
                out.push(Value::Object(obj));
                return (out, Some((gid, Some(last.clone()))));
            }
        }
        out.push(Value::Object(obj));
        cursor = Some(gid);
    }
}

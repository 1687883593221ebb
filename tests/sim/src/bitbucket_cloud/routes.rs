//! Bitbucket's own routes: the 2.0 reads (members, one member, permissions) with their paging,
//! email filter and `fields`, and the 1.0 groups and invitations, behind HTTP Basic.

// Handlers return the HTTP answer itself as their error, at once; boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Account, Administration, AutoAccept, CloudState, Group, Invitation, JSON, cloud_error, slugify, unauthorised,
};
use crate::kit::{self, Page, PageFault, Position, Req};

/// At most this many addresses in one `user.email IN (…)` filter (the members endpoint's
/// documentation).
pub const MAX_EMAILS: usize = 90;
/// `pagelen` when none is given, and its maximum (vendor-apis.md §3).
const DEFAULT_PAGELEN: usize = 10;
const MAX_PAGELEN: usize = 100;

type Answer = Result<Response, Response>;

/// The routes served.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Members(&'a str),
    Member(&'a str, &'a str),
    Permissions(&'a str),
    Groups(&'a str),
    Group(&'a str, &'a str),
    GroupMembers(&'a str, &'a str),
    GroupMember(&'a str, &'a str, &'a str),
    Invitations(&'a str),
    Unknown,
}

impl<'a> Route<'a> {
    fn parse(segs: &'a [String]) -> Route<'a> {
        let s: Vec<&str> = segs.iter().map(String::as_str).collect();
        match s.as_slice() {
            ["2.0", "workspaces", ws, "members"] => Route::Members(ws),
            ["2.0", "workspaces", ws, "members", m] => Route::Member(ws, m),
            ["2.0", "workspaces", ws, "permissions"] => Route::Permissions(ws),
            ["1.0", "groups", ws] => Route::Groups(ws),
            ["1.0", "groups", ws, g] => Route::Group(ws, g),
            ["1.0", "groups", ws, g, "members"] => Route::GroupMembers(ws, g),
            ["1.0", "groups", ws, g, "members", m] => Route::GroupMember(ws, g, m),
            ["1.0", "users", ws, "invitations"] => Route::Invitations(ws),
            _ => Route::Unknown,
        }
    }

    fn workspace(&self) -> Option<&'a str> {
        match self {
            Route::Members(ws)
            | Route::Member(ws, _)
            | Route::Permissions(ws)
            | Route::Groups(ws)
            | Route::Group(ws, _)
            | Route::GroupMembers(ws, _)
            | Route::GroupMember(ws, _, _)
            | Route::Invitations(ws) => Some(ws),
            Route::Unknown => None,
        }
    }
}

pub(super) fn handle(s: &mut CloudState, req: &Req) -> Response {
    let route = Route::parse(&req.segments);
    if !s.authenticated(req) {
        return unauthorised();
    }
    let Some(ws) = route.workspace() else {
        return cloud_error(StatusCode::NOT_FOUND, "Resource not found", Some(&req.path));
    };
    if !s.is_workspace(ws) {
        return cloud_error(
            StatusCode::NOT_FOUND,
            &format!("No workspace with identifier '{ws}'."),
            None,
        );
    }
    let m = &req.method;
    let answer = match route {
        Route::Members(_) if m == Method::GET => s.list_members(req),
        Route::Member(_, member) if m == Method::GET => s.get_member(req, member),
        Route::Permissions(_) if m == Method::GET => s.list_permissions(req),
        Route::Groups(_) if m == Method::GET => Ok(s.list_groups()),
        Route::Groups(_) if m == Method::POST => s.create_group(req),
        Route::Group(_, g) if m == Method::GET => s.get_group(g),
        Route::Group(_, g) if m == Method::DELETE => s.delete_group(g),
        Route::GroupMembers(_, g) if m == Method::GET => s.group_members(g),
        Route::GroupMember(_, g, a) if m == Method::PUT => s.add_member(g, a),
        Route::GroupMember(_, g, a) if m == Method::DELETE => s.remove_member(g, a),
        Route::Invitations(_) if m == Method::GET => s.list_invitations(),
        Route::Invitations(_) if m == Method::PUT => s.invite(req),
        _ => Err(cloud_error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("{m} is not allowed on {}", req.path),
            None,
        )),
    };
    answer.unwrap_or_else(|e| e)
}

/// Bitbucket's 400 for a request it cannot read.
fn bad_request(message: &str) -> Response {
    cloud_error(StatusCode::BAD_REQUEST, message, None)
}

fn json_ok(body: &Value) -> Response {
    kit::errors::json(StatusCode::OK, JSON, body)
}

/// Where a 2.0 page starts: its number and the injected empty pages that led there (carried in
/// the `page` value, so the link after an empty page differs from the one before it).
#[derive(Clone, Copy, Debug)]
struct PageNo {
    page: usize,
    gap: usize,
}

impl PageNo {
    /// `page` values at or above this carry empty pages; listings are assumed shorter.
    const GAP: usize = 1 << 20;

    fn parse(value: Option<&str>) -> Result<PageNo, Response> {
        let Some(v) = value else {
            return Ok(PageNo { page: 1, gap: 0 });
        };
        match v.trim().parse::<usize>() {
            Ok(n) if n >= 1 => Ok(PageNo {
                page: (n - 1) % Self::GAP + 1,
                gap: (n - 1) / Self::GAP,
            }),
            _ => Err(bad_request(&format!("Invalid page: '{v}' is not a page number"))),
        }
    }

    fn value(&self) -> usize {
        self.gap.saturating_mul(Self::GAP).saturating_add(self.page)
    }
}

impl Position for PageNo {
    fn first(&self) -> Self {
        PageNo { page: 1, gap: 0 }
    }

    fn again(&self) -> Self {
        PageNo {
            page: self.page,
            gap: self.gap.saturating_add(1),
        }
    }
}

/// A 2.0 page of `items`: `{size, page, pagelen, values, next?}` with `next` absolute.
fn paged<T>(req: &Req, base: &str, items: Vec<T>, render: impl Fn(&T) -> Value, fault: &PageFault) -> Answer {
    let here = PageNo::parse(req.param("page"))?;
    let pagelen = match req.param("pagelen") {
        None => DEFAULT_PAGELEN,
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if n >= 1 => n.min(MAX_PAGELEN),
            _ => return Err(bad_request(&format!("Invalid pagelen: '{v}' is not a positive number"))),
        },
    };
    let size = items.len();
    let skip = (here.page - 1).saturating_mul(pagelen);
    let values: Vec<Value> = items.iter().skip(skip).take(pagelen).map(render).collect();
    let more = size > skip.saturating_add(pagelen);
    let page = Page {
        items: values,
        next: more.then_some(PageNo {
            page: here.page + 1,
            gap: here.gap,
        }),
    }
    .with_fault(fault, &here);
    let mut body = json!({"size": size, "page": here.page, "pagelen": pagelen, "values": page.items});
    if let Some(next) = page.next {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(req.query.iter().filter(|(k, _)| k != "page"))
            .append_pair("page", &next.value().to_string())
            .finish();
        body["next"] = Value::from(format!("{base}{}?{query}", req.path));
    }
    Ok(json_ok(&body))
}

/// The addresses of a `user.email IN ("a","b")` (or `user.email = "a"`) filter.
fn parse_email_filter(q: &str) -> Result<Vec<String>, String> {
    let rest = q.trim();
    let rest = rest
        .strip_prefix("user.email")
        .ok_or_else(|| format!("Invalid query '{q}': only user.email IN (…) is supported here"))?
        .trim_start();
    if let Some(value) = rest.strip_prefix('=') {
        return Ok(vec![quoted(value.trim(), q)?]);
    }
    let list = rest
        .get(..2)
        .filter(|op| op.eq_ignore_ascii_case("in"))
        .map(|_| rest[2..].trim())
        .and_then(|l| l.strip_prefix('('))
        .and_then(|l| l.strip_suffix(')'))
        .ok_or_else(|| format!("Invalid query '{q}': expected user.email IN (\"…\", …)"))?;
    if list.trim().is_empty() {
        return Ok(Vec::new());
    }
    list.split(',').map(|v| quoted(v.trim(), q)).collect()
}

fn quoted(v: &str, q: &str) -> Result<String, String> {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .map(str::to_string)
        .ok_or_else(|| format!("Invalid query '{q}': {v} is not a quoted string"))
}

/// The permission of a `permission="owner"` filter.
fn parse_permission_filter(q: &str) -> Result<String, String> {
    q.trim()
        .strip_prefix("permission")
        .map(str::trim_start)
        .and_then(|r| r.strip_prefix('='))
        .ok_or_else(|| format!("Invalid query '{q}': only permission=\"…\" is supported here"))
        .and_then(|v| quoted(v.trim(), q))
}

/// Whether `fields` asks for `user.email` on each value (`+values.user.email`; a `+` sent
/// unescaped arrives as a space).
fn wants_email(req: &Req) -> bool {
    req.param("fields").is_some_and(|f| {
        f.split(',')
            .any(|f| f.trim().trim_start_matches('+').trim() == "values.user.email")
    })
}

/// `/2.0/users/{uuid}` and similar: braces escaped, so the link is a valid URI.
fn escaped(uuid: &str) -> String {
    uuid.replace('{', "%7B").replace('}', "%7D")
}

#[derive(Deserialize)]
struct InviteBody {
    email: Option<String>,
    group_slug: Option<String>,
}

impl CloudState {
    fn authenticated(&self, req: &Req) -> bool {
        self.credentials.user(&req.headers).is_some()
    }

    fn is_workspace(&self, ws: &str) -> bool {
        ws.eq_ignore_ascii_case(&self.workspace) || ws.eq_ignore_ascii_case(&self.workspace_uuid)
    }

    /// The 403 of a workspace whose administration moved. Atlassian documents that these
    /// endpoints are disabled or read-only after the move, not how they answer: this status and
    /// message are Roster's assumption.
    fn moved(&self) -> Response {
        cloud_error(
            StatusCode::FORBIDDEN,
            &format!(
                "Workspace {} is administered at admin.atlassian.com: this endpoint is read-only or disabled; manage users and groups at admin.atlassian.com",
                self.workspace
            ),
            Some(
                "Bitbucket's 1.0 invitations are disabled and 1.0 groups are read-only once a workspace's user management moves to admin.atlassian.com.",
            ),
        )
    }

    fn refuse_when_moved(&self) -> Result<(), Response> {
        match self.administration {
            Administration::Bitbucket => Ok(()),
            Administration::AdminHub => Err(self.moved()),
        }
    }

    fn user_json(&self, a: &Account, base: &str, email: bool) -> Value {
        let mut u = json!({
            "type": "user",
            "uuid": a.uuid,
            "account_id": a.account_id,
            "display_name": a.display_name,
            "nickname": a.nickname,
            "account_status": "active",
            "links": {
                "self": {"href": format!("{base}/2.0/users/{}", escaped(&a.uuid))},
                "avatar": {"href": format!("{base}/account/{}/avatar", escaped(&a.uuid))},
            },
        });
        if email {
            u["email"] = Value::from(a.email.clone());
        }
        u
    }

    fn workspace_json(&self, base: &str) -> Value {
        json!({
            "type": "workspace",
            "uuid": self.workspace_uuid,
            "slug": self.workspace,
            "name": self.workspace,
            "links": {"self": {"href": format!("{base}/2.0/workspaces/{}", self.workspace)}},
        })
    }

    fn membership_json(&self, a: &Account, base: &str, email: bool) -> Value {
        json!({
            "type": "workspace_membership",
            "links": {"self": {"href": format!("{base}/2.0/workspaces/{}/members/{}", self.workspace, a.account_id)}},
            "user": self.user_json(a, base, email),
            "workspace": self.workspace_json(base),
        })
    }

    fn member_accounts(&self) -> Vec<&Account> {
        self.member_ids()
            .iter()
            .filter_map(|id| self.accounts.get(id))
            .collect()
    }

    fn list_members(&self, req: &Req) -> Answer {
        let filter = match req.param("q") {
            None => None,
            Some(q) => {
                let emails = parse_email_filter(q).map_err(|m| bad_request(&m))?;
                if emails.len() > MAX_EMAILS {
                    return Err(bad_request(&format!(
                        "Too many email addresses: {} given, at most {MAX_EMAILS} per query",
                        emails.len()
                    )));
                }
                Some(emails.iter().map(|e| e.to_lowercase()).collect::<BTreeSet<String>>())
            }
        };
        let email = filter.is_some() && wants_email(req);
        let members: Vec<&Account> = self
            .member_accounts()
            .into_iter()
            .filter(|a| filter.as_ref().is_none_or(|f| f.contains(&a.email.to_lowercase())))
            .collect();
        let base = self.base(req);
        paged(
            req,
            &base,
            members,
            |a| self.membership_json(a, &base, email),
            &req.page_fault,
        )
    }

    fn get_member(&self, req: &Req, member: &str) -> Answer {
        let members = self.member_ids();
        let found = self
            .accounts
            .values()
            .filter(|a| members.contains(&a.account_id))
            .find(|a| a.account_id == member || a.uuid.eq_ignore_ascii_case(member));
        let Some(a) = found else {
            return Err(cloud_error(
                StatusCode::NOT_FOUND,
                &format!("{member} is not a member of workspace {}", self.workspace),
                None,
            ));
        };
        Ok(json_ok(&self.membership_json(a, &self.base(req), false)))
    }

    fn list_permissions(&self, req: &Req) -> Answer {
        let wanted = match req.param("q") {
            None => None,
            Some(q) => Some(parse_permission_filter(q).map_err(|m| bad_request(&m))?),
        };
        let base = self.base(req);
        let values: Vec<(&Account, &str)> = self
            .member_accounts()
            .into_iter()
            .map(|a| {
                let p = if self.owners.contains(&a.account_id) {
                    "owner"
                } else {
                    "member"
                };
                (a, p)
            })
            .filter(|(_, p)| wanted.as_deref().is_none_or(|w| w == *p))
            .collect();
        paged(
            req,
            &base,
            values,
            |(a, p)| {
                let mut m = self.membership_json(a, &base, false);
                m["permission"] = Value::from(*p);
                m
            },
            &req.page_fault,
        )
    }

    /// A member as the 1.0 API shows it.
    fn member_v1(&self, a: &Account) -> Value {
        json!({
            "display_name": a.display_name,
            "account_id": a.account_id,
            "uuid": a.uuid,
            "nickname": a.nickname,
            "is_team": false,
            "resource_uri": format!("/1.0/users/{}", escaped(&a.uuid)),
        })
    }

    fn owner_v1(&self) -> Value {
        json!({
            "display_name": self.workspace,
            "uuid": self.workspace_uuid,
            "nickname": self.workspace,
            "is_team": true,
        })
    }

    /// `g`'s members that are among `members` (the workspace's), as 1.0 shows them.
    fn members_v1(&self, g: &Group, members: &BTreeSet<String>) -> Vec<Value> {
        g.members
            .iter()
            .filter(|m| members.contains(*m))
            .filter_map(|m| self.accounts.get(m))
            .map(|a| self.member_v1(a))
            .collect()
    }

    fn group_v1(&self, g: &Group, members: &BTreeSet<String>) -> Value {
        let shown = self.members_v1(g, members);
        json!({
            "name": g.name,
            "slug": g.slug,
            "permission": g.permission,
            "auto_add": false,
            "email_forwarding_disabled": false,
            "members": shown,
            "owner": self.owner_v1(),
        })
    }

    fn list_groups(&self) -> Response {
        let members = self.member_ids();
        let groups: Vec<Value> = self.groups.values().map(|g| self.group_v1(g, &members)).collect();
        json_ok(&Value::from(groups))
    }

    fn group(&self, slug: &str) -> Result<&Group, Response> {
        self.groups.get(slug).ok_or_else(|| {
            cloud_error(
                StatusCode::NOT_FOUND,
                &format!("Group {slug} does not exist in workspace {}", self.workspace),
                None,
            )
        })
    }

    fn get_group(&self, slug: &str) -> Answer {
        let g = self.group(slug)?;
        Ok(json_ok(&self.group_v1(g, &self.member_ids())))
    }

    fn create_group(&mut self, req: &Req) -> Answer {
        self.refuse_when_moved()?;
        let name = url::form_urlencoded::parse(&req.body)
            .find(|(k, _)| k == "name")
            .map(|(_, v)| v.trim().to_string())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| bad_request("A group name is required: send the form field name=…"))?;
        let slug = slugify(&name);
        if self.groups.contains_key(&slug) {
            // Bitbucket's exact answer to a duplicate name is not documented; a conflict is the
            // simulator's choice.
            return Err(cloud_error(
                StatusCode::CONFLICT,
                &format!(
                    "A group with the slug {slug} already exists in workspace {}",
                    self.workspace
                ),
                None,
            ));
        }
        self.add_group(&name, None);
        self.get_group(&slug)
    }

    fn delete_group(&mut self, slug: &str) -> Answer {
        self.refuse_when_moved()?;
        self.group(slug)?;
        self.groups.remove(slug);
        if let Some(a) = self.access.as_mut() {
            a.remove(slug);
        }
        self.invitations.retain(|i| i.group_slug != slug);
        Ok(StatusCode::NO_CONTENT.into_response())
    }

    fn group_members(&self, slug: &str) -> Answer {
        let g = self.group(slug)?;
        let shown = self.members_v1(g, &self.member_ids());
        Ok(json_ok(&Value::from(shown)))
    }

    fn add_member(&mut self, slug: &str, account_id: &str) -> Answer {
        self.refuse_when_moved()?;
        let g = self.group(slug)?;
        let Some(a) = self.accounts.get(account_id) else {
            return Err(cloud_error(
                StatusCode::NOT_FOUND,
                &format!("No account with the account id {account_id}"),
                None,
            ));
        };
        if g.members.contains(account_id) {
            return Err(cloud_error(
                StatusCode::CONFLICT,
                &format!("{} is already a member of group {slug}", a.nickname),
                None,
            ));
        }
        let body = self.member_v1(a);
        self.join(account_id, slug);
        Ok(json_ok(&body))
    }

    fn remove_member(&mut self, slug: &str, account_id: &str) -> Answer {
        self.refuse_when_moved()?;
        let g = self.group(slug)?;
        if !g.members.contains(account_id) {
            return Err(cloud_error(
                StatusCode::NOT_FOUND,
                &format!("{account_id} is not a member of group {slug}"),
                None,
            ));
        }
        self.leave(account_id, slug);
        Ok(StatusCode::NO_CONTENT.into_response())
    }

    fn invitation_json(&self, i: &Invitation) -> Value {
        let name = self
            .groups
            .get(&i.group_slug)
            .map_or(i.group_slug.as_str(), |g| g.name.as_str());
        json!({
            "email": i.email,
            "group": {"slug": i.group_slug, "name": name, "owner": self.owner_v1()},
            "utc_sent_on": i.sent_on.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string(),
            "invited_by": self.owner_v1(),
        })
    }

    fn list_invitations(&self) -> Answer {
        self.refuse_when_moved()?;
        let all: Vec<Value> = self.invitations.iter().map(|i| self.invitation_json(i)).collect();
        Ok(json_ok(&Value::from(all)))
    }

    fn invite(&mut self, req: &Req) -> Answer {
        self.refuse_when_moved()?;
        let body: InviteBody = serde_json::from_slice(&req.body).map_err(|e| {
            bad_request(&format!(
                "The body is not a JSON invitation {{\"email\", \"group_slug\"}}: {e}"
            ))
        })?;
        let (Some(email), Some(slug)) = (body.email, body.group_slug) else {
            return Err(bad_request("An invitation needs both email and group_slug"));
        };
        let email = email.trim().to_string();
        if !email.contains('@') {
            return Err(bad_request(&format!("{email} is not an email address")));
        }
        let g = self.group(&slug)?;
        let key = email.to_lowercase();
        let members = self.member_ids();
        if let Some(id) = self.by_email.get(&key)
            && g.members.contains(id)
            && members.contains(id)
        {
            return Err(cloud_error(
                StatusCode::CONFLICT,
                &format!("{email} is already a member of group {slug}"),
                None,
            ));
        }
        if self
            .invitations
            .iter()
            .any(|i| i.email.to_lowercase() == key && i.group_slug == slug)
        {
            return Err(cloud_error(
                StatusCode::CONFLICT,
                &format!("{email} has already been invited to group {slug}"),
                None,
            ));
        }
        let invitation = Invitation {
            email: email.clone(),
            group_slug: slug.clone(),
            sent: 1,
            sent_on: Utc::now(),
        };
        let body = self.invitation_json(&invitation);
        self.invitations_sent += 1;
        match self.auto_accept {
            AutoAccept::Never => self.invitations.push(invitation),
            AutoAccept::Immediately => self.accept(&email, &slug),
        }
        Ok(json_ok(&body))
    }
}

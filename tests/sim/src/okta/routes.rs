//! The Management API routes: authentication (SSWS tokens and scoped bearer tokens), the
//! listings with their `search`/`filter`/`q`, `limit` and `after`, the single reads, and the
//! JSON Okta writes for each object.

// Handlers return the HTTP answer itself as their error, at once; boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use std::collections::BTreeSet;
use std::ops::Bound;

use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::search::{self, Expr, Fields, Kind, Val};
use super::{
    App, Bucket, OktaGroup, OktaState, OktaUser, Shared, Status, bearer_challenge, lock, okta_error, okta_time,
};
use crate::kit::{Cursor, Page, Req, keyed_page, link_headers};

pub(super) async fn dispatch(State(state): State<Shared>, req: Req) -> Response {
    lock(&state).handle(&req)
}

/// The routes served.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Users,
    User(&'a str),
    Groups,
    Group(&'a str),
    GroupUsers(&'a str),
    App(&'a str),
    AppUsers(&'a str),
    AppGroups(&'a str),
    Unknown,
}

impl<'a> Route<'a> {
    fn parse(segs: &'a [String]) -> Route<'a> {
        let s: Vec<&str> = segs.iter().map(String::as_str).collect();
        match s.as_slice() {
            ["api", "v1", "users"] => Route::Users,
            ["api", "v1", "users", _] => Route::User(&segs[3]),
            ["api", "v1", "groups"] => Route::Groups,
            ["api", "v1", "groups", _] => Route::Group(&segs[3]),
            ["api", "v1", "groups", _, "users"] => Route::GroupUsers(&segs[3]),
            ["api", "v1", "apps", _] => Route::App(&segs[3]),
            ["api", "v1", "apps", _, "users"] => Route::AppUsers(&segs[3]),
            ["api", "v1", "apps", _, "groups"] => Route::AppGroups(&segs[3]),
            _ => Route::Unknown,
        }
    }

    /// The OAuth scope a bearer token needs (a `.manage` scope includes the `.read` one).
    fn scope(&self) -> Option<&'static str> {
        match self {
            Route::Users | Route::User(_) => Some("okta.users.read"),
            Route::Groups | Route::Group(_) | Route::GroupUsers(_) => Some("okta.groups.read"),
            Route::App(_) | Route::AppUsers(_) | Route::AppGroups(_) => Some("okta.apps.read"),
            Route::Unknown => None,
        }
    }
}

/// The route label for counters: ids replaced by `{id}`.
pub(super) fn label(path: &str) -> String {
    let segs: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect();
    match Route::parse(&segs) {
        Route::Users => "/api/v1/users".into(),
        Route::User(_) => "/api/v1/users/{id}".into(),
        Route::Groups => "/api/v1/groups".into(),
        Route::Group(_) => "/api/v1/groups/{id}".into(),
        Route::GroupUsers(_) => "/api/v1/groups/{id}/users".into(),
        Route::App(_) => "/api/v1/apps/{id}".into(),
        Route::AppUsers(_) => "/api/v1/apps/{id}/users".into(),
        Route::AppGroups(_) => "/api/v1/apps/{id}/groups".into(),
        Route::Unknown if path == "/oauth2/v1/token" => "/oauth2/v1/token".into(),
        Route::Unknown => "(unknown)".into(),
    }
}

type Answer = Result<Response, Response>;

fn not_found(id: &str, kind: &str) -> Response {
    okta_error(
        StatusCode::NOT_FOUND,
        "E0000007",
        &format!("Not found: Resource not found: {id} ({kind})"),
        &[],
    )
}

fn invalid_search(cause: String) -> Response {
    okta_error(
        StatusCode::BAD_REQUEST,
        "E0000031",
        "Invalid search criteria.",
        &[cause],
    )
}

fn validation(cause: String) -> Response {
    okta_error(
        StatusCode::BAD_REQUEST,
        "E0000001",
        "Api validation failed: limit",
        &[cause],
    )
}

const USER_DATES: &[&str] = &[
    "created",
    "activated",
    "statusChanged",
    "lastUpdated",
    "passwordChanged",
    "lastLogin",
];
const USER_FILTER: &[&str] = &[
    "status",
    "lastUpdated",
    "id",
    "profile.login",
    "profile.email",
    "profile.firstName",
    "profile.lastName",
];
const GROUP_FILTER: &[&str] = &["id", "type", "lastUpdated", "lastMembershipUpdated"];
const GROUP_DATES: &[&str] = &["created", "lastUpdated", "lastMembershipUpdated"];

impl OktaState {
    pub(super) fn handle(&mut self, req: &Req) -> Response {
        if req.path == "/oauth2/v1/token" {
            return super::token::handle(self, req);
        }
        let route = Route::parse(&req.segments);
        let Some(scope) = route.scope() else {
            return not_found(&req.path, "Resource");
        };
        let bucket = Bucket::of(&req.path).unwrap_or(Bucket::Users);
        if let Err(refused) = self.authenticate(req, bucket, scope) {
            return refused;
        }
        if req.method != Method::GET {
            return okta_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "E0000022",
                "The endpoint does not support the provided HTTP method",
                &[],
            );
        }
        let base = self.base(&req.headers);
        let served = match route {
            Route::Users => self.list_users(req, &base),
            Route::User(id) => self.get_user(id, &base),
            Route::Groups => self.list_groups(req, &base),
            Route::Group(id) => self.get_group(id, &base),
            Route::GroupUsers(id) => self.list_group_users(req, id, &base),
            Route::App(id) => self.get_app(id, &base),
            Route::AppUsers(id) => self.list_app_users(req, id, &base),
            Route::AppGroups(id) => self.list_app_groups(req, id, &base),
            Route::Unknown => Err(not_found(&req.path, "Resource")),
        };
        served.unwrap_or_else(|e| e)
    }

    fn authenticate(&mut self, req: &Req, bucket: Bucket, scope: &str) -> Result<(), Response> {
        let auth = req.header("authorization").unwrap_or("").trim();
        let (scheme, value) = auth.split_once(' ').unwrap_or((auth, ""));
        let invalid = || okta_error(StatusCode::UNAUTHORIZED, "E0000011", "Invalid token provided", &[]);
        let forbidden = || {
            okta_error(
                StatusCode::FORBIDDEN,
                "E0000006",
                "You do not have permission to perform the requested action",
                &[],
            )
        };
        if scheme.eq_ignore_ascii_case("SSWS") {
            let token = self.api_tokens.get(value.trim()).ok_or_else(invalid)?;
            return if token.allowed.contains(&bucket) {
                Ok(())
            } else {
                Err(forbidden())
            };
        }
        if !scheme.eq_ignore_ascii_case("Bearer") {
            return Err(invalid());
        }
        let base = self.base(&req.headers);
        let live = self
            .tokens
            .get(value.trim())
            .filter(|t| std::time::Instant::now() < t.expires);
        let Some(token) = live else {
            let mut r = invalid();
            bearer_challenge(&mut r, &base, "invalid_token", "The access token is invalid.", None);
            return Err(r);
        };
        let manage = scope.replace(".read", ".manage");
        if token.scopes.contains(scope) || token.scopes.contains(&manage) {
            return Ok(());
        }
        let mut r = forbidden();
        bearer_challenge(
            &mut r,
            &base,
            "insufficient_scope",
            "The access token provided does not contain the required scopes.",
            Some(scope),
        );
        Err(r)
    }

    /// `limit` as Okta reads it: `default` when absent, capped at `max`, refused when it is not a
    /// positive whole number.
    fn limit(req: &Req, default: usize, max: usize) -> Result<usize, Response> {
        match req.param("limit") {
            None => Ok(default),
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) if n >= 1 => Ok(usize::try_from(n).unwrap_or(max).min(max)),
                _ => Err(validation(format!("limit: '{v}' is not a positive whole number"))),
            },
        }
    }

    fn cursor(&self, req: &Req) -> Result<Cursor<String>, Response> {
        Cursor::from_param(&self.sealer, req.param("after")).map_err(|_| {
            okta_error(
                StatusCode::BAD_REQUEST,
                "E0000001",
                "Api validation failed: after",
                &["after: this cursor was not issued by this org; follow the Link header's next link".into()],
            )
        })
    }

    /// A listing's answer: the page as a JSON array, with `Link` headers.
    fn page_answer(&self, req: &Req, base: &str, page: Page<Value, Cursor<String>>) -> Response {
        let mut r = self.answer_json(&Value::Array(page.items));
        let url = format!("{base}{}", req.path);
        for link in link_headers(&url, &req.query, "after", page.next.as_ref(), &self.sealer) {
            r.headers_mut().append("link", link);
        }
        r
    }

    fn user_kind(&self, attr: &str) -> Option<Kind> {
        if USER_DATES.contains(&attr) {
            return Some(Kind::Date);
        }
        match attr {
            "id" | "status" | "type.id" => Some(Kind::Text),
            _ => attr
                .strip_prefix("profile.")
                .filter(|p| self.profile_schema.contains(*p))
                .map(|_| Kind::Text),
        }
    }

    /// The `search` and `filter` of a users or groups listing, parsed.
    fn expressions(
        req: &Req,
        kind: &dyn Fn(&str) -> Option<Kind>,
        filter_attrs: &[&str],
        filter_ordered: &[&str],
    ) -> Result<Vec<Expr>, Response> {
        let mut out = Vec::new();
        if let Some(s) = req.param("search") {
            out.push(search::parse(s, kind).map_err(|c| invalid_search(format!("{c} in search '{s}'")))?);
        }
        if let Some(f) = req.param("filter") {
            let e = search::parse(f, kind)
                .and_then(|e| search::check_filter(&e, filter_attrs, filter_ordered).map(|()| e))
                .map_err(|c| invalid_search(format!("{c} in filter '{f}'")))?;
            out.push(e);
        }
        Ok(out)
    }

    fn list_users(&self, req: &Req, base: &str) -> Answer {
        let kind = |a: &str| self.user_kind(a);
        let exprs = Self::expressions(req, &kind, USER_FILTER, &["lastUpdated"])?;
        let here = self.cursor(req)?;
        if exprs.is_empty()
            && let Some(q) = req.param("q")
        {
            // `q` finds by prefix, at most `limit` (default 10), and is not paged.
            let limit = Self::limit(req, 10, 200)?;
            let q = q.to_lowercase();
            let found: Vec<Value> = self
                .users
                .values()
                .filter(|u| u.status != Status::Deprovisioned)
                .filter(|u| {
                    ["login", "email", "firstName", "lastName"].iter().any(|k| {
                        u.profile
                            .get(*k)
                            .and_then(Value::as_str)
                            .is_some_and(|v| v.to_lowercase().starts_with(&q))
                    })
                })
                .take(limit)
                .map(|u| self.user_json(u, base))
                .collect();
            return Ok(self.answer_json(&Value::Array(found)));
        }
        let limit = Self::limit(req, 200, 200)?;
        // Without a search or filter Okta leaves DEPROVISIONED users out, silently.
        let plain = exprs.is_empty();
        let items = self
            .users
            .range::<String, _>((after(&here), Bound::Unbounded))
            .filter(|(_, u)| !(plain && u.status == Status::Deprovisioned))
            .filter(|(_, u)| exprs.iter().all(|e| e.matches(&UserFields(u))))
            .map(|(id, u)| (id.clone(), self.user_json(u, base)));
        let page = keyed_page(&here, limit, items, &req.page_fault);
        Ok(self.page_answer(req, base, page))
    }

    fn find_user(&self, key: &str) -> Option<&OktaUser> {
        self.users
            .get(key)
            .or_else(|| self.logins.get(&key.to_lowercase()).and_then(|id| self.users.get(id)))
    }

    fn get_user(&self, id: &str, base: &str) -> Answer {
        let u = self.find_user(id).ok_or_else(|| not_found(id, "User"))?;
        let mut r = self.answer_json(&self.user_json(u, base));
        let etag = format!("W/\"{}\"", u.last_updated.timestamp_millis());
        if let Ok(v) = HeaderValue::from_str(&etag) {
            r.headers_mut().insert("etag", v);
        }
        Ok(r)
    }

    fn list_groups(&self, req: &Req, base: &str) -> Answer {
        let kind = |a: &str| match a {
            "id" | "type" | "profile.name" | "profile.description" => Some(Kind::Text),
            a if GROUP_DATES.contains(&a) => Some(Kind::Date),
            _ => None,
        };
        let exprs = Self::expressions(req, &kind, GROUP_FILTER, &["lastUpdated", "lastMembershipUpdated"])?;
        let here = self.cursor(req)?;
        let limit = Self::limit(req, 10_000, 10_000)?;
        let stats = expands(req, "stats");
        let q = req.param("q").map(str::to_lowercase);
        let items = self
            .groups
            .range::<String, _>((after(&here), Bound::Unbounded))
            .filter(|(_, g)| q.as_ref().is_none_or(|q| g.name.to_lowercase().starts_with(q)))
            .filter(|(_, g)| exprs.iter().all(|e| e.matches(&GroupFields(g))))
            .map(|(id, g)| (id.clone(), self.group_json(g, base, stats)));
        let page = keyed_page(&here, limit, items, &req.page_fault);
        Ok(self.page_answer(req, base, page))
    }

    fn get_group(&self, id: &str, base: &str) -> Answer {
        let g = self.groups.get(id).ok_or_else(|| not_found(id, "UserGroup"))?;
        Ok(self.answer_json(&self.group_json(g, base, false)))
    }

    fn list_group_users(&self, req: &Req, id: &str, base: &str) -> Answer {
        if !self.groups.contains_key(id) {
            return Err(not_found(id, "UserGroup"));
        }
        let here = self.cursor(req)?;
        let limit = Self::limit(req, 1000, 1000)?;
        let items = self
            .members
            .get(id)
            .into_iter()
            .flat_map(|m| m.range::<String, _>((after(&here), Bound::Unbounded)))
            .filter_map(|u| self.users.get(u))
            .map(|u| (u.id.clone(), self.user_json(u, base)));
        let page = keyed_page(&here, limit, items, &req.page_fault);
        Ok(self.page_answer(req, base, page))
    }

    fn get_app(&self, id: &str, base: &str) -> Answer {
        let a = self.apps.get(id).ok_or_else(|| not_found(id, "AppInstance"))?;
        let t = okta_time(&a.created);
        Ok(self.answer_json(&json!({
            "id": a.id,
            "name": format!("bitbucket_{}", a.id.to_lowercase()),
            "label": a.label,
            "status": "ACTIVE",
            "created": t,
            "lastUpdated": t,
            "signOnMode": "SAML_2_0",
            "features": [],
            "visibility": {"autoSubmitToolbar": false, "hide": {"iOS": false, "web": false}},
            "_links": {
                "users": {"href": format!("{base}/api/v1/apps/{}/users", a.id)},
                "groups": {"href": format!("{base}/api/v1/apps/{}/groups", a.id)},
            },
        })))
    }

    fn list_app_users(&self, req: &Req, id: &str, base: &str) -> Answer {
        let app = self.apps.get(id).ok_or_else(|| not_found(id, "AppInstance"))?;
        let here = self.cursor(req)?;
        let limit = Self::limit(req, 50, 500)?;
        let embed = expands(req, "user");
        let users = self.app_users(app);
        let items = users
            .range::<String, _>((after(&here), Bound::Unbounded))
            .filter_map(|(uid, (scope, at))| {
                let u = self.users.get(uid)?;
                Some((uid.clone(), self.app_user_json(app, u, scope, at, base, embed)))
            });
        let page = keyed_page(&here, limit, items, &req.page_fault);
        Ok(self.page_answer(req, base, page))
    }

    fn list_app_groups(&self, req: &Req, id: &str, base: &str) -> Answer {
        let app = self.apps.get(id).ok_or_else(|| not_found(id, "AppInstance"))?;
        let here = self.cursor(req)?;
        let limit = Self::limit(req, 20, 200)?;
        let embed = expands(req, "group");
        let items = app
            .groups
            .range::<String, _>((after(&here), Bound::Unbounded))
            .map(|(gid, (priority, at))| {
                let mut v = json!({
                    "id": gid,
                    "lastUpdated": okta_time(at),
                    "priority": priority,
                    "profile": {},
                    "_links": {
                        "app": {"href": format!("{base}/api/v1/apps/{}", app.id)},
                        "group": {"href": format!("{base}/api/v1/groups/{gid}")},
                    },
                });
                if embed && let Some(g) = self.groups.get(gid) {
                    v["_embedded"] = json!({"group": self.group_json(g, base, false)});
                }
                (gid.clone(), v)
            });
        let page = keyed_page(&here, limit, items, &req.page_fault);
        Ok(self.page_answer(req, base, page))
    }

    pub(super) fn user_json(&self, u: &OktaUser, base: &str) -> Value {
        let opt = |t: &Option<chrono::DateTime<chrono::Utc>>| t.as_ref().map_or(Value::Null, |t| okta_time(t).into());
        let mut v = json!({
            "id": u.id,
            "status": u.status.as_str(),
            "created": okta_time(&u.created),
            "activated": opt(&u.activated),
            "statusChanged": opt(&u.status_changed),
            "lastLogin": null,
            "lastUpdated": okta_time(&u.last_updated),
            "passwordChanged": opt(&u.activated),
            "type": {"id": "oty1simdefaultusertype"},
            "profile": u.profile,
            "credentials": {"provider": {"type": "OKTA", "name": "OKTA"}},
            "_links": {"self": {"href": format!("{base}/api/v1/users/{}", u.id)}},
        });
        if u.status == Status::Activating {
            v["transitioningToStatus"] = "ACTIVE".into();
        }
        v
    }

    fn group_json(&self, g: &OktaGroup, base: &str, stats: bool) -> Value {
        let object_class = match g.group_type {
            super::GroupType::AppGroup => "okta:windows_security_principal",
            _ => "okta:user_group",
        };
        let mut profile = json!({"name": g.name});
        if let Some(d) = &g.description {
            profile["description"] = d.clone().into();
        }
        let mut v = json!({
            "id": g.id,
            "created": okta_time(&g.created),
            "lastUpdated": okta_time(&g.last_updated),
            "lastMembershipUpdated": okta_time(&g.last_membership_updated),
            "objectClass": [object_class],
            "type": g.group_type.as_str(),
            "profile": profile,
            "_links": {
                "users": {"href": format!("{base}/api/v1/groups/{}/users", g.id)},
                "apps": {"href": format!("{base}/api/v1/groups/{}/apps", g.id)},
            },
        });
        if stats {
            let users = self.members.get(&g.id).map_or(0, |m| m.len());
            let apps = self.apps.values().filter(|a| a.groups.contains_key(&g.id)).count();
            v["_embedded"] = json!({"stats": {
                "usersCount": users,
                "appsCount": apps,
                "groupPushMappingsCount": 0,
            }});
        }
        v
    }

    fn app_user_json(
        &self,
        app: &App,
        u: &OktaUser,
        scope: &str,
        at: &chrono::DateTime<chrono::Utc>,
        base: &str,
        embed: bool,
    ) -> Value {
        let t = okta_time(at);
        let mut v = json!({
            "id": u.id,
            "created": t,
            "lastUpdated": t,
            "scope": scope,
            "status": "PROVISIONED",
            "statusChanged": t,
            "syncState": "DISABLED",
            "credentials": {"userName": u.login()},
            "profile": {},
            "_links": {
                "app": {"href": format!("{base}/api/v1/apps/{}", app.id)},
                "user": {"href": format!("{base}/api/v1/users/{}", u.id)},
            },
        });
        if embed {
            v["_embedded"] = json!({"user": self.user_json(u, base)});
        }
        v
    }
}

/// Whether `expand` names `what` (Okta takes a comma-separated list).
fn expands(req: &Req, what: &str) -> bool {
    req.param("expand")
        .is_some_and(|e| e.split(',').any(|x| x.trim().eq_ignore_ascii_case(what)))
}

/// Where a keyed page resumes: after the cursor's key, or from the start.
fn after(here: &Cursor<String>) -> Bound<String> {
    here.after.clone().map_or(Bound::Unbounded, Bound::Excluded)
}

struct UserFields<'a>(&'a OktaUser);

impl Fields for UserFields<'_> {
    fn get(&self, attr: &str) -> Val<'_> {
        let u = self.0;
        let date = |d: &Option<chrono::DateTime<chrono::Utc>>| d.map_or(Val::Absent, Val::Date);
        match attr {
            "id" => Val::Str(&u.id),
            "status" => Val::Str(u.status.as_str()),
            "type.id" => Val::Str("oty1simdefaultusertype"),
            "created" => Val::Date(u.created),
            "lastUpdated" => Val::Date(u.last_updated),
            "activated" | "passwordChanged" => date(&u.activated),
            "statusChanged" => date(&u.status_changed),
            "lastLogin" => Val::Absent,
            other => other
                .strip_prefix("profile.")
                .and_then(|p| u.profile.get(p))
                .map_or(Val::Absent, Val::Json),
        }
    }
}

struct GroupFields<'a>(&'a OktaGroup);

impl Fields for GroupFields<'_> {
    fn get(&self, attr: &str) -> Val<'_> {
        let g = self.0;
        match attr {
            "id" => Val::Str(&g.id),
            "type" => Val::Str(g.group_type.as_str()),
            "profile.name" => Val::Str(&g.name),
            "profile.description" => g.description.as_deref().map_or(Val::Absent, Val::Str),
            "created" => Val::Date(g.created),
            "lastUpdated" => Val::Date(g.last_updated),
            "lastMembershipUpdated" => Val::Date(g.last_membership_updated),
            _ => Val::Absent,
        }
    }
}

/// The scopes an OAuth `scope` parameter names.
pub(super) fn scopes(s: &str) -> BTreeSet<String> {
    s.split_whitespace().map(str::to_string).collect()
}

//! The Atlassian user-provisioning SCIM API (developer.atlassian.com/cloud/admin/user-provisioning/rest/intro/)
//! over the workspace's accounts and groups: `/scim/directory/{directoryId}/Users` and
//! `/Groups`, with `Authorization: Bearer <directory API key>`, `startIndex`/`count` paging,
//! `attr eq "value"` filters, PatchOp edits, and SCIM error bodies. DELETE of a user deactivates
//! it, as Atlassian's directory does.

// Handlers return the HTTP answer itself as their error, at once; boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::{Account, Administration, CloudState, Group, slugify, split_name};
use crate::kit::{self, Req};

const SCIM_JSON: &str = "application/scim+json";
const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// `count` when none is given, and its maximum.
const MAX_COUNT: usize = 100;

type Answer = Result<Response, Response>;

/// A SCIM error body: `{schemas, status (a string), scimType?, detail}`.
pub(super) fn error(status: StatusCode, scim_type: Option<&str>, detail: &str) -> Response {
    let mut body = json!({"schemas": [ERROR_SCHEMA], "status": status.as_u16().to_string(), "detail": detail});
    if let Some(t) = scim_type {
        body["scimType"] = Value::from(t);
    }
    kit::errors::json(status, SCIM_JSON, &body)
}

fn answer(status: StatusCode, body: &Value) -> Response {
    kit::errors::json(status, SCIM_JSON, body)
}

fn invalid(detail: &str) -> Response {
    error(StatusCode::BAD_REQUEST, Some("invalidValue"), detail)
}

fn time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The routes served below `/scim/directory/{directoryId}`.
enum Route<'a> {
    Users,
    User(&'a str),
    Groups,
    Group(&'a str),
    Unknown,
}

pub(super) fn handle(s: &mut CloudState, req: &Req) -> Response {
    let Some((directory, key)) = s.scim.clone() else {
        return error(StatusCode::UNAUTHORIZED, None, "No directory API key is valid here.");
    };
    let bearer = req
        .header("authorization")
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    if bearer != Some(key.as_str()) {
        return error(
            StatusCode::UNAUTHORIZED,
            None,
            "The API key is missing, invalid or revoked.",
        );
    }
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let (dir, route) = match segs.as_slice() {
        ["scim", "directory", dir, "Users"] => (*dir, Route::Users),
        ["scim", "directory", dir, "Users", id] => (*dir, Route::User(id)),
        ["scim", "directory", dir, "Groups"] => (*dir, Route::Groups),
        ["scim", "directory", dir, "Groups", id] => (*dir, Route::Group(id)),
        ["scim", "directory", dir, ..] => (*dir, Route::Unknown),
        _ => return error(StatusCode::NOT_FOUND, None, &format!("No resource at {}", req.path)),
    };
    if dir != directory {
        return error(StatusCode::NOT_FOUND, None, &format!("Directory {dir} not found"));
    }
    if s.administration == Administration::Bitbucket {
        // The simulator's choice: a workspace still administered in Bitbucket has no directory
        // provisioning it, so a client configured for SCIM learns so at its first call.
        return error(
            StatusCode::FORBIDDEN,
            None,
            &format!(
                "Directory {dir} is not linked to workspace {}: the workspace is still administered in Bitbucket",
                s.workspace
            ),
        );
    }
    let m = &req.method;
    let served = match route {
        Route::Users if m == Method::GET => s.scim_list_users(req),
        Route::Users if m == Method::POST => s.scim_create_user(req),
        Route::User(id) if m == Method::GET => s
            .scim_account(id)
            .map(|a| answer(StatusCode::OK, &s.user_resource(a, req))),
        Route::User(id) if m == Method::PATCH => s.scim_patch_user(req, id),
        Route::User(id) if m == Method::PUT => s.scim_put_user(req, id),
        Route::User(id) if m == Method::DELETE => s.scim_deactivate(id),
        Route::Groups if m == Method::GET => s.scim_list_groups(req),
        Route::Groups if m == Method::POST => s.scim_create_group(req),
        Route::Group(id) if m == Method::GET => s
            .scim_group(id)
            .map(|g| answer(StatusCode::OK, &s.group_resource(g, req))),
        Route::Group(id) if m == Method::PATCH => s.scim_patch_group(req, id),
        Route::Group(id) if m == Method::DELETE => s.scim_delete_group(id),
        Route::Unknown => Err(error(
            StatusCode::NOT_FOUND,
            None,
            &format!("No resource at {}", req.path),
        )),
        _ => Err(error(
            StatusCode::METHOD_NOT_ALLOWED,
            None,
            &format!("{m} is not supported on {}", req.path),
        )),
    };
    served.unwrap_or_else(|e| e)
}

/// `attr eq "value"`: the attribute (lower case) and value.
fn parse_filter(filter: &str) -> Result<(String, String), Response> {
    let bad = || {
        error(
            StatusCode::BAD_REQUEST,
            Some("invalidFilter"),
            &format!("Unsupported filter '{filter}': use attribute eq \"value\""),
        )
    };
    let mut parts = filter.trim().splitn(3, ' ');
    let (Some(attr), Some(op), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    if !op.eq_ignore_ascii_case("eq") {
        return Err(bad());
    }
    let value = value.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .ok_or_else(bad)?;
    Ok((attr.to_lowercase(), value.to_string()))
}

/// The page `startIndex` (1-based) and `count` ask for.
fn window(req: &Req) -> (usize, usize) {
    let start = req
        .param("startIndex")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let count = req
        .param("count")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(MAX_COUNT)
        .min(MAX_COUNT);
    (start, count)
}

fn list(req: &Req, items: Vec<Value>) -> Response {
    let (start, count) = window(req);
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(start - 1).take(count).collect();
    answer(
        StatusCode::OK,
        &json!({
            "schemas": [LIST_SCHEMA],
            "totalResults": total,
            "startIndex": start,
            "itemsPerPage": page.len(),
            "Resources": page,
        }),
    )
}

fn body(req: &Req) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
            "The body is not a JSON object",
        )),
    }
}

/// A SCIM boolean, also as the strings Entra ID sends ("False").
fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// The primary (else first) address of an `emails` value.
fn primary_email(v: &Value) -> Option<String> {
    let list = v.as_array()?;
    list.iter()
        .find(|e| e.get("primary").and_then(boolean) == Some(true))
        .or_else(|| list.first())
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The ids a `members` value names: `[{value}, …]`.
fn member_ids(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|m| m.get("value").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The id in a `members[value eq "id"]` path.
fn member_path_id(path: &str) -> Option<String> {
    let inner = path.strip_prefix("members[")?.strip_suffix(']')?;
    parse_filter(inner).ok().filter(|(a, _)| a == "value").map(|(_, v)| v)
}

impl CloudState {
    fn location(&self, req: &Req, kind: &str, id: &str) -> String {
        let dir = self.scim.as_ref().map_or("", |(d, _)| d.as_str());
        format!("{}/scim/directory/{dir}/{kind}/{id}", self.base(req))
    }

    fn user_resource(&self, a: &Account, req: &Req) -> Value {
        let groups: Vec<Value> = self
            .groups
            .values()
            .filter(|g| g.members.contains(&a.account_id))
            .map(|g| json!({"value": g.scim_id, "display": g.name, "type": "direct"}))
            .collect();
        json!({
            "schemas": [USER_SCHEMA],
            "id": a.scim_id,
            "userName": a.email,
            "emails": [{"value": a.email, "type": "work", "primary": true}],
            "name": {
                "givenName": a.given_name,
                "familyName": a.family_name,
                "formatted": a.display_name,
            },
            "displayName": a.display_name,
            "nickName": a.nickname,
            "active": a.active,
            "groups": groups,
            "meta": {
                "resourceType": "User",
                "created": time(&a.created),
                "lastModified": time(&a.modified),
                "location": self.location(req, "Users", &a.scim_id),
            },
        })
    }

    fn group_resource(&self, g: &Group, req: &Req) -> Value {
        let mut r = json!({
            "schemas": [GROUP_SCHEMA],
            "id": g.scim_id,
            "displayName": g.name,
            "meta": {
                "resourceType": "Group",
                "created": time(&g.created),
                "lastModified": time(&g.modified),
                "location": self.location(req, "Groups", &g.scim_id),
            },
        });
        let excluded = req
            .param("excludedAttributes")
            .is_some_and(|e| e.split(',').any(|a| a.trim().eq_ignore_ascii_case("members")));
        if !excluded {
            let members: Vec<Value> = g
                .members
                .iter()
                .filter_map(|m| self.accounts.get(m))
                .map(|a| json!({"value": a.scim_id, "display": a.display_name}))
                .collect();
            r["members"] = Value::from(members);
        }
        r
    }

    fn scim_account(&self, id: &str) -> Result<&Account, Response> {
        self.accounts
            .values()
            .find(|a| a.scim_id == id)
            .ok_or_else(|| error(StatusCode::NOT_FOUND, None, &format!("User {id} not found")))
    }

    fn scim_account_id(&self, id: &str) -> Result<String, Response> {
        self.scim_account(id).map(|a| a.account_id.clone())
    }

    fn scim_group(&self, id: &str) -> Result<&Group, Response> {
        self.groups
            .values()
            .find(|g| g.scim_id == id)
            .ok_or_else(|| error(StatusCode::NOT_FOUND, None, &format!("Group {id} not found")))
    }

    fn scim_group_slug(&self, id: &str) -> Result<String, Response> {
        self.scim_group(id).map(|g| g.slug.clone())
    }

    fn scim_list_users(&self, req: &Req) -> Answer {
        let filter = req.param("filter").map(parse_filter).transpose()?;
        let users: Vec<Value> = self
            .accounts
            .values()
            .filter(|a| match &filter {
                None => true,
                Some((attr, v)) => match attr.as_str() {
                    "username" | "emails.value" | "emails" => a.email.eq_ignore_ascii_case(v),
                    "id" => a.scim_id == *v,
                    _ => false,
                },
            })
            .map(|a| self.user_resource(a, req))
            .collect();
        if let Some((attr, _)) = &filter
            && !matches!(attr.as_str(), "username" | "emails.value" | "emails" | "id")
        {
            return Err(error(
                StatusCode::BAD_REQUEST,
                Some("invalidFilter"),
                &format!("Users cannot be filtered by {attr}; use userName"),
            ));
        }
        Ok(list(req, users))
    }

    fn scim_list_groups(&self, req: &Req) -> Answer {
        let filter = req.param("filter").map(parse_filter).transpose()?;
        if let Some((attr, _)) = &filter
            && !matches!(attr.as_str(), "displayname" | "id")
        {
            return Err(error(
                StatusCode::BAD_REQUEST,
                Some("invalidFilter"),
                &format!("Groups cannot be filtered by {attr}; use displayName"),
            ));
        }
        let groups: Vec<Value> = self
            .groups
            .values()
            .filter(|g| match &filter {
                None => true,
                Some((attr, v)) if attr == "id" => g.scim_id == *v,
                Some((_, v)) => g.name.eq_ignore_ascii_case(v),
            })
            .map(|g| self.group_resource(g, req))
            .collect();
        Ok(list(req, groups))
    }

    fn email_taken(&self, email: &str, by_other_than: Option<&str>) -> Result<(), Response> {
        match self.by_email.get(&email.to_lowercase()) {
            Some(id) if Some(id.as_str()) != by_other_than => Err(error(
                StatusCode::CONFLICT,
                Some("uniqueness"),
                &format!("A user with the userName or email {email} already exists"),
            )),
            _ => Ok(()),
        }
    }

    fn scim_create_user(&mut self, req: &Req) -> Answer {
        let b = body(req)?;
        let user_name = b
            .get("userName")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| invalid("userName is required"))?
            .to_string();
        let email = b
            .get("emails")
            .and_then(primary_email)
            .unwrap_or_else(|| user_name.clone());
        self.email_taken(&user_name, None)?;
        self.email_taken(&email, None)?;
        let display = b
            .get("displayName")
            .and_then(Value::as_str)
            .map_or_else(|| user_name.clone(), str::to_string);
        let (mut given, mut family) = split_name(&display);
        if let Some(n) = b.get("name") {
            if let Some(g) = n.get("givenName").and_then(Value::as_str) {
                given = g.to_string();
            }
            if let Some(f) = n.get("familyName").and_then(Value::as_str) {
                family = f.to_string();
            }
        }
        let nickname = user_name.split('@').next().unwrap_or(&user_name).to_string();
        let id = self.insert_account(&nickname, &display, &email, &given, &family);
        if let Some(active) = b.get("active").and_then(boolean)
            && let Some(a) = self.accounts.get_mut(&id)
        {
            a.active = active;
        }
        let a = &self.accounts[&id];
        Ok(answer(StatusCode::CREATED, &self.user_resource(a, req)))
    }

    /// Sets one attribute of an account from a PatchOp or PUT.
    fn set_user_attr(&mut self, account_id: &str, attr: &str, value: &Value) -> Result<(), Response> {
        let text = || {
            value
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| invalid(&format!("{attr} must be a string")))
        };
        match attr.to_lowercase().as_str() {
            "active" => {
                let on = boolean(value).ok_or_else(|| invalid("active must be a boolean"))?;
                self.edit(account_id, |a| a.active = on);
            }
            "displayname" => {
                let v = text()?;
                self.edit(account_id, |a| a.display_name = v);
            }
            "name.givenname" => {
                let v = text()?;
                self.edit(account_id, |a| a.given_name = v);
            }
            "name.familyname" => {
                let v = text()?;
                self.edit(account_id, |a| a.family_name = v);
            }
            "name" => {
                if let Some(g) = value.get("givenName").and_then(Value::as_str) {
                    self.set_user_attr(account_id, "name.givenName", &Value::from(g))?;
                }
                if let Some(f) = value.get("familyName").and_then(Value::as_str) {
                    self.set_user_attr(account_id, "name.familyName", &Value::from(f))?;
                }
            }
            "emails" | "username" => {
                let email = if attr.eq_ignore_ascii_case("emails") {
                    primary_email(value).ok_or_else(|| invalid("emails must be [{value, primary}]"))?
                } else {
                    text()?
                };
                self.email_taken(&email, Some(account_id))?;
                let old = self.accounts.get(account_id).map(|a| a.email.to_lowercase());
                if let Some(old) = old {
                    self.by_email.remove(&old);
                }
                self.by_email.insert(email.to_lowercase(), account_id.to_string());
                self.edit(account_id, |a| a.email = email);
            }
            other => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    Some("invalidPath"),
                    &format!("The attribute {other} cannot be changed here"),
                ));
            }
        }
        Ok(())
    }

    fn edit(&mut self, account_id: &str, f: impl FnOnce(&mut Account)) {
        if let Some(a) = self.accounts.get_mut(account_id) {
            f(a);
            a.modified = Utc::now();
        }
    }

    fn scim_patch_user(&mut self, req: &Req, id: &str) -> Answer {
        let account_id = self.scim_account_id(id)?;
        let b = body(req)?;
        let ops = b
            .get("Operations")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("A PatchOp needs Operations"))?;
        for op in ops {
            let kind = op.get("op").and_then(Value::as_str).unwrap_or("").to_lowercase();
            if kind != "replace" && kind != "add" {
                return Err(invalid(&format!("The operation '{kind}' is not supported on users")));
            }
            let value = op.get("value").cloned().unwrap_or(Value::Null);
            match op.get("path").and_then(Value::as_str) {
                Some(path) => self.set_user_attr(&account_id, path, &value)?,
                None => {
                    let Value::Object(attrs) = value else {
                        return Err(invalid("A path-less operation needs an object value"));
                    };
                    for (attr, v) in &attrs {
                        self.set_user_attr(&account_id, attr, v)?;
                    }
                }
            }
        }
        let a = &self.accounts[&account_id];
        Ok(answer(StatusCode::OK, &self.user_resource(a, req)))
    }

    fn scim_put_user(&mut self, req: &Req, id: &str) -> Answer {
        let account_id = self.scim_account_id(id)?;
        let b = body(req)?;
        for attr in ["userName", "emails", "displayName", "name", "active"] {
            if let Some(v) = b.get(attr) {
                self.set_user_attr(&account_id, attr, v)?;
            }
        }
        let a = &self.accounts[&account_id];
        Ok(answer(StatusCode::OK, &self.user_resource(a, req)))
    }

    fn scim_deactivate(&mut self, id: &str) -> Answer {
        let account_id = self.scim_account_id(id)?;
        self.edit(&account_id, |a| a.active = false);
        Ok(StatusCode::NO_CONTENT.into_response())
    }

    fn scim_create_group(&mut self, req: &Req) -> Answer {
        let b = body(req)?;
        let name = b
            .get("displayName")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid("displayName is required"))?
            .to_string();
        if self.groups.contains_key(&slugify(&name)) {
            return Err(error(
                StatusCode::CONFLICT,
                Some("uniqueness"),
                &format!("A group named {name} already exists"),
            ));
        }
        let members = self.resolve_members(&member_ids(b.get("members")))?;
        let slug = self.add_group(&name, None);
        for m in members {
            self.join(&m, &slug);
        }
        let g = &self.groups[&slug];
        Ok(answer(StatusCode::CREATED, &self.group_resource(g, req)))
    }

    /// Account ids of SCIM user ids; an unknown one is refused.
    fn resolve_members(&self, ids: &[String]) -> Result<BTreeSet<String>, Response> {
        ids.iter()
            .map(|id| {
                self.scim_account_id(id)
                    .map_err(|_| invalid(&format!("No user with the id {id} to add to the group")))
            })
            .collect()
    }

    fn scim_patch_group(&mut self, req: &Req, id: &str) -> Answer {
        let slug = self.scim_group_slug(id)?;
        let b = body(req)?;
        let ops = b
            .get("Operations")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("A PatchOp needs Operations"))?;
        for op in ops {
            let kind = op.get("op").and_then(Value::as_str).unwrap_or("").to_lowercase();
            let path = op.get("path").and_then(Value::as_str).unwrap_or("");
            let value = op.get("value");
            match (kind.as_str(), path.to_lowercase().as_str()) {
                ("add", "members") => {
                    for m in self.resolve_members(&member_ids(value))? {
                        self.join(&m, &slug);
                    }
                }
                ("replace", "members") => {
                    let wanted = self.resolve_members(&member_ids(value))?;
                    if let Some(g) = self.groups.get_mut(&slug) {
                        g.members = wanted;
                        g.modified = Utc::now();
                    }
                }
                ("remove", "members") => {
                    // Without a value, every member goes (RFC 7644 §3.5.2.2).
                    let gone: Vec<String> = match value {
                        Some(v) => member_ids(Some(v)),
                        None => self.groups[&slug]
                            .members
                            .iter()
                            .filter_map(|m| self.accounts.get(m))
                            .map(|a| a.scim_id.clone())
                            .collect(),
                    };
                    for m in gone {
                        if let Ok(account) = self.scim_account_id(&m) {
                            self.leave(&account, &slug);
                        }
                    }
                }
                ("remove", p) if p.starts_with("members[") => {
                    let m = member_path_id(path).ok_or_else(|| {
                        error(
                            StatusCode::BAD_REQUEST,
                            Some("invalidPath"),
                            &format!("Unsupported path {path}"),
                        )
                    })?;
                    if let Ok(account) = self.scim_account_id(&m) {
                        self.leave(&account, &slug);
                    }
                }
                ("replace", "displayname") | ("replace", "") => {
                    let name = value
                        .and_then(|v| v.as_str().or_else(|| v.get("displayName").and_then(Value::as_str)))
                        .ok_or_else(|| invalid("displayName must be a string"))?;
                    if let Some(g) = self.groups.get_mut(&slug) {
                        g.name = name.to_string();
                        g.modified = Utc::now();
                    }
                }
                _ => {
                    return Err(invalid(&format!(
                        "The operation '{kind}' on '{path}' is not supported on groups"
                    )));
                }
            }
        }
        let g = &self.groups[&slug];
        Ok(answer(StatusCode::OK, &self.group_resource(g, req)))
    }

    fn scim_delete_group(&mut self, id: &str) -> Answer {
        let slug = self.scim_group_slug(id)?;
        self.groups.remove(&slug);
        if let Some(a) = self.access.as_mut() {
            a.remove(&slug);
        }
        self.invitations.retain(|i| i.group_slug != slug);
        Ok(StatusCode::NO_CONTENT.into_response())
    }
}

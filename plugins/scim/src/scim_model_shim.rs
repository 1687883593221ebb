//! STAND-IN for `roster_scim::resource` and `roster_scim::list` (being written on branch
//! `h-scim-model`): the same names and signatures as the shared design, minimal, so the
//! connector builds today. When `roster-scim` has them, delete this file and import
//! `roster_scim::resource::{user_record, group_record, UserRecord, GroupRecord, Member,
//! MemberKind}` and `roster_scim::list::ListResponse` instead: the connector uses nothing else.

use roster_scim::{ScimError, ScimType};
use serde_json::Value;

/// The enterprise user extension's schema URN.
pub const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// A SCIM `ListResponse` (RFC 7644 §3.4.2).
#[derive(Debug, Clone, PartialEq)]
pub struct ListResponse {
    /// `totalResults`: how many resources the query matches in all.
    pub total_results: u64,
    /// `startIndex` (1-based) of this page.
    pub start_index: u64,
    /// `itemsPerPage`: how many resources this page holds.
    pub items_per_page: u64,
    /// `Resources`.
    pub resources: Vec<Value>,
}

/// An integer a service sent as a number or, as some IdPs do, as a string.
fn integer(body: &Value, name: &str) -> Result<Option<u64>, ScimError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| invalid(format!("`{name}` is not a whole number ({n})"))),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| invalid(format!("`{name}` is not a whole number ({s:?})"))),
        Some(other) => Err(invalid(format!("`{name}` is not a number ({other})"))),
    }
}

fn invalid(detail: String) -> ScimError {
    ScimError::bad(ScimType::InvalidValue, detail)
}

impl ListResponse {
    /// Reads a list answer; integers may be strings, `Resources` may be absent when empty.
    pub fn parse(body: &Value) -> Result<ListResponse, ScimError> {
        if !body.is_object() {
            return Err(invalid("the answer is not a JSON object".into()));
        }
        let total_results =
            integer(body, "totalResults")?.ok_or_else(|| invalid("`totalResults` is missing".into()))?;
        let resources = match body.get("Resources") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items.clone(),
            Some(other) => return Err(invalid(format!("`Resources` is not an array ({other})"))),
        };
        Ok(ListResponse {
            total_results,
            start_index: integer(body, "startIndex")?.unwrap_or(1),
            items_per_page: integer(body, "itemsPerPage")?.unwrap_or(resources.len() as u64),
            resources,
        })
    }
}

/// A SCIM User as Roster reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// `id`.
    pub id: String,
    /// `userName`.
    pub user_name: String,
    /// The primary e-mail, else the work one, else the first.
    pub email: Option<String>,
    /// `displayName`, else `name.formatted`, else given and family names.
    pub display_name: Option<String>,
    /// `active` (default true; `"True"`/`"False"` accepted).
    pub active: bool,
    /// Flat attributes named by path (`name.givenName`, `emails.work`, `enterprise.department`).
    pub attributes: Vec<(String, String)>,
}

/// A SCIM Group as Roster reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    /// `id`.
    pub id: String,
    /// `displayName`.
    pub display_name: String,
    /// `members`.
    pub members: Vec<Member>,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's `id`.
    pub value: String,
    /// User or group.
    pub kind: MemberKind,
}

/// What a member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    /// A user.
    User,
    /// A group (nested).
    Group,
}

fn text<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn required(v: &Value, name: &str, kind: &str) -> Result<String, ScimError> {
    text(v, name)
        .map(str::to_string)
        .ok_or_else(|| invalid(format!("a {kind} without `{name}` (or not a string)")))
}

fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// The values of a multi-valued attribute (`emails`, `phoneNumbers`).
fn multi<'a>(v: &'a Value, name: &str) -> &'a [Value] {
    v.get(name)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Reads a User resource.
pub fn user_record(v: &Value) -> Result<UserRecord, ScimError> {
    if !v.is_object() {
        return Err(invalid("a User that is not a JSON object".into()));
    }
    let id = required(v, "id", "User")?;
    let user_name = required(v, "userName", "User")?;
    let emails = multi(v, "emails");
    let email_value = |e: &Value| text(e, "value").map(str::to_string);
    let email = emails
        .iter()
        .find(|e| e.get("primary").and_then(boolean) == Some(true))
        .or_else(|| emails.iter().find(|e| text(e, "type") == Some("work")))
        .or_else(|| emails.first())
        .and_then(email_value);
    let name = v.get("name").cloned().unwrap_or(Value::Null);
    let display_name = text(v, "displayName")
        .or_else(|| text(&name, "formatted"))
        .map(str::to_string)
        .or_else(|| match (text(&name, "givenName"), text(&name, "familyName")) {
            (Some(g), Some(f)) => Some(format!("{g} {f}")),
            (Some(one), None) | (None, Some(one)) => Some(one.to_string()),
            (None, None) => None,
        });
    let active = match v.get("active") {
        None | Some(Value::Null) => true,
        Some(a) => boolean(a).ok_or_else(|| invalid(format!("User {id}: `active` is not a boolean ({a})")))?,
    };
    let mut attributes = Vec::new();
    let object = v.as_object().into_iter().flatten();
    for (key, value) in object {
        if let (false, Some(s)) = (matches!(key.as_str(), "id" | "schemas"), value.as_str()) {
            attributes.push((key.clone(), s.to_string()));
        }
    }
    for part in ["givenName", "familyName", "formatted", "middleName"] {
        if let Some(s) = text(&name, part) {
            attributes.push((format!("name.{part}"), s.to_string()));
        }
    }
    for multi_name in ["emails", "phoneNumbers"] {
        for item in multi(v, multi_name) {
            if let (Some(kind), Some(value)) = (text(item, "type"), text(item, "value")) {
                attributes.push((format!("{multi_name}.{kind}"), value.to_string()));
            }
        }
    }
    if let Some(ext) = v.get(ENTERPRISE_URN) {
        for part in ["employeeNumber", "department", "costCenter", "organization", "division"] {
            if let Some(s) = text(ext, part) {
                attributes.push((format!("enterprise.{part}"), s.to_string()));
            }
        }
        if let Some(m) = ext.get("manager").and_then(|m| text(m, "value")) {
            attributes.push(("enterprise.manager".into(), m.to_string()));
        }
    }
    Ok(UserRecord {
        id,
        user_name,
        email,
        display_name,
        active,
        attributes,
    })
}

/// Reads a Group resource.
pub fn group_record(v: &Value) -> Result<GroupRecord, ScimError> {
    if !v.is_object() {
        return Err(invalid("a Group that is not a JSON object".into()));
    }
    let id = required(v, "id", "Group")?;
    let display_name = required(v, "displayName", "Group").map_err(|e| ScimError {
        detail: format!("Group {id}: {}", e.detail),
        ..e
    })?;
    let mut members = Vec::new();
    for m in multi(v, "members") {
        let value = text(m, "value")
            .ok_or_else(|| invalid(format!("Group {id}: a member without `value`")))?
            .to_string();
        let kind = match text(m, "type") {
            Some(t) if t.eq_ignore_ascii_case("group") => MemberKind::Group,
            Some(_) => MemberKind::User,
            None if text(m, "$ref").is_some_and(|r| r.contains("/Groups/")) => MemberKind::Group,
            None => MemberKind::User,
        };
        members.push(Member { value, kind });
    }
    Ok(GroupRecord {
        id,
        display_name,
        members,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn users_read_with_their_email_name_and_enterprise_attributes() {
        let u = user_record(&json!({
            "id": "1", "userName": "alice", "active": "False",
            "name": {"givenName": "Alice", "familyName": "Liddell"},
            "emails": [{"value": "a@home", "type": "home"}, {"value": "a@work", "type": "work"}],
            ENTERPRISE_URN: {"department": "R&D", "manager": {"value": "9"}}
        }))
        .unwrap();
        assert_eq!(u.email.as_deref(), Some("a@work"));
        assert_eq!(u.display_name.as_deref(), Some("Alice Liddell"));
        assert!(!u.active);
        for (k, v) in [
            ("userName", "alice"),
            ("enterprise.department", "R&D"),
            ("enterprise.manager", "9"),
        ] {
            assert!(u.attributes.contains(&(k.into(), v.into())), "{k}: {:?}", u.attributes);
        }
        assert!(
            user_record(&json!({"id": "1"}))
                .unwrap_err()
                .detail
                .contains("userName")
        );
    }

    #[test]
    fn groups_read_with_member_kinds_and_lists_with_string_integers() {
        let g = group_record(&json!({"id": "g", "displayName": "devs", "members": [
            {"value": "u1"}, {"value": "g2", "$ref": "https://x/Groups/g2"}, {"value": "g3", "type": "Group"}]}))
        .unwrap();
        let kinds: Vec<MemberKind> = g.members.iter().map(|m| m.kind).collect();
        assert_eq!(kinds, [MemberKind::User, MemberKind::Group, MemberKind::Group]);
        let l = ListResponse::parse(&json!({"totalResults": "3", "Resources": [{}]})).unwrap();
        assert_eq!((l.total_results, l.start_index, l.resources.len()), (3, 1, 1));
        assert!(ListResponse::parse(&json!({"Resources": []})).is_err());
        assert!(ListResponse::parse(&json!([])).is_err());
    }
}

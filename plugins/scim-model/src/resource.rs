//! What a SCIM User or Group becomes in Roster: one extraction shared by the SCIM endpoint
//! (pushed resources into the mirror) and the `scim` connector (pulled resources), so both
//! map the same attribute names.

use serde_json::Value;

use crate::error::{ScimError, ScimType};
use crate::filter::{as_bool, get_ci};
use crate::schema::{ENTERPRISE_URN, ResourceSchema};

/// A user, flattened for the mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The SCIM `id`.
    pub id: String,
    /// `userName`.
    pub user_name: String,
    /// The primary email, else the work one, else the first.
    pub email: Option<String>,
    /// `displayName`, else `name.formatted`, else given and family names.
    pub display_name: Option<String>,
    /// `active` (true when absent; Entra's `"True"`/`"False"` accepted).
    pub active: bool,
    /// Flat attributes named by path: `userName`, `name.givenName`, `emails.work`,
    /// `enterprise.department`, `enterprise.manager`, and every other top-level string.
    pub attributes: Vec<(String, String)>,
}

/// Whether a group member is a user or a nested group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    /// A user.
    User,
    /// A group.
    Group,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's SCIM `id`.
    pub value: String,
    /// User or group: from `type`, else from a `$ref` into `/Groups/`, else a user.
    pub kind: MemberKind,
}

/// A group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    /// The SCIM `id`.
    pub id: String,
    /// `displayName`.
    pub display_name: String,
    /// Its members.
    pub members: Vec<Member>,
}

fn invalid(kind: &str, id: Option<&str>, what: &str) -> ScimError {
    let which = id.map(|i| format!(" {i:?}")).unwrap_or_default();
    ScimError::bad(ScimType::InvalidValue, format!("{kind}{which}: {what}"))
}

fn text<'v>(node: &'v Value, key: &str) -> Option<&'v str> {
    get_ci(node, key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn required_id<'v>(resource: &'v Value, kind: &str) -> Result<&'v str, ScimError> {
    if !resource.is_object() {
        return Err(invalid(kind, None, "the resource is not a JSON object"));
    }
    match get_ci(resource, "id") {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim()),
        _ => Err(invalid(kind, None, "\"id\" is missing or not a non-empty string")),
    }
}

/// The items of a multi-valued attribute (a lone object counts as one).
fn items<'v>(node: &'v Value, key: &str) -> Vec<&'v Value> {
    match get_ci(node, key) {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        _ => Vec::new(),
    }
}

/// The User's record; a 400 `invalidValue` when `id` or `userName` is missing or `active` is
/// not a boolean.
pub fn user_record(resource: &Value) -> Result<UserRecord, ScimError> {
    let id = required_id(resource, "user")?;
    let schema = ResourceSchema::user();
    let user_name =
        text(resource, "userName").ok_or_else(|| invalid("user", Some(id), "\"userName\" is missing or empty"))?;
    let active = match get_ci(resource, "active") {
        None | Some(Value::Null) => true,
        Some(v) => {
            as_bool(v).ok_or_else(|| invalid("user", Some(id), &format!("\"active\" is {v}, not true or false")))?
        }
    };
    let emails = items(resource, "emails");
    let email_value = |e: &&Value| text(e, "value").map(str::to_string);
    let email = emails
        .iter()
        .find(|e| get_ci(e, "primary").and_then(as_bool) == Some(true))
        .and_then(email_value)
        .or_else(|| {
            emails
                .iter()
                .find(|e| text(e, "type").is_some_and(|t| t.eq_ignore_ascii_case("work")))
                .and_then(email_value)
        })
        .or_else(|| emails.iter().find_map(email_value));
    let name = get_ci(resource, "name");
    let display_name = text(resource, "displayName")
        .map(str::to_string)
        .or_else(|| name.and_then(|n| text(n, "formatted")).map(str::to_string))
        .or_else(|| {
            let given = name.and_then(|n| text(n, "givenName"));
            let family = name.and_then(|n| text(n, "familyName"));
            let joined = [given, family].into_iter().flatten().collect::<Vec<_>>().join(" ");
            (!joined.is_empty()).then_some(joined)
        });

    let mut attributes = Vec::new();
    let canonical = |key: &str| {
        schema
            .attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(key))
            .map_or_else(|| key.to_string(), |a| a.name.to_string())
    };
    if let Some(obj) = resource.as_object() {
        for (key, value) in obj {
            let key_name = canonical(key);
            match value {
                // `id` is the record's id, `password` is never read, `active` is a boolean.
                Value::String(s) if !["id", "password", "active"].iter().any(|k| key.eq_ignore_ascii_case(k)) => {
                    attributes.push((key_name, s.clone()));
                }
                Value::Object(_) if key.eq_ignore_ascii_case("name") => {
                    for sub in [
                        "formatted",
                        "familyName",
                        "givenName",
                        "middleName",
                        "honorificPrefix",
                        "honorificSuffix",
                    ] {
                        if let Some(s) = text(value, sub) {
                            attributes.push((format!("name.{sub}"), s.to_string()));
                        }
                    }
                }
                Value::Object(ext) if key.eq_ignore_ascii_case(ENTERPRISE_URN) => {
                    for (k, v) in ext {
                        let attr = schema
                            .extensions
                            .iter()
                            .flat_map(|(_, a)| a)
                            .find(|a| a.name.eq_ignore_ascii_case(k));
                        let k = attr.map_or(k.as_str(), |a| a.name);
                        let s = match v {
                            Value::String(s) => Some(s.as_str()),
                            // manager: {"value": "id"}
                            obj @ Value::Object(_) => text(obj, "value"),
                            _ => None,
                        };
                        if let Some(s) = s.filter(|s| !s.is_empty()) {
                            attributes.push((format!("enterprise.{k}"), s.to_string()));
                        }
                    }
                }
                Value::Array(list) => {
                    for item in list {
                        if let (Some(t), Some(v)) = (text(item, "type"), text(item, "value")) {
                            attributes.push((format!("{key_name}.{}", t.to_lowercase()), v.to_string()));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    attributes.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(UserRecord {
        id: id.to_string(),
        user_name: user_name.to_string(),
        email,
        display_name,
        active,
        attributes,
    })
}

/// The Group's record; a 400 `invalidValue` when `id` or `displayName` is missing or a
/// member has no `value`.
pub fn group_record(resource: &Value) -> Result<GroupRecord, ScimError> {
    let id = required_id(resource, "group")?;
    let display_name = text(resource, "displayName")
        .ok_or_else(|| invalid("group", Some(id), "\"displayName\" is missing or empty"))?;
    let members = match get_ci(resource, "members") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, m)| {
                member(m).ok_or_else(|| invalid("group", Some(id), &format!("members[{i}] has no \"value\" string")))
            })
            .collect::<Result<_, _>>()?,
        Some(v) => return Err(invalid("group", Some(id), &format!("\"members\" is {v}, not an array"))),
    };
    Ok(GroupRecord {
        id: id.to_string(),
        display_name: display_name.to_string(),
        members,
    })
}

fn member(m: &Value) -> Option<Member> {
    let value = text(m, "value")?.to_string();
    let kind = match text(m, "type") {
        Some(t) if t.eq_ignore_ascii_case("group") => MemberKind::Group,
        Some(t) if t.eq_ignore_ascii_case("user") => MemberKind::User,
        _ if text(m, "$ref").is_some_and(|r| r.contains("/Groups/")) => MemberKind::Group,
        _ => MemberKind::User,
    };
    Some(Member { value, kind })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entra_user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_URN],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.com",
            "active": "True",
            "displayName": "Test User",
            "title": "Engineer",
            "emails": [
                {"primary": true, "type": "work", "value": "Test_User_fd0ea19b@testuser.com"},
                {"type": "home", "value": "home@example.com"}
            ],
            "phoneNumbers": [{"type": "mobile", "value": "+1 555 0100"}],
            "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
            "roles": [],
            ENTERPRISE_URN: {
                "employeeNumber": "701984",
                "costCenter": "4130",
                "organization": "Universal Studios",
                "division": "Theme Park",
                "department": "Tour Operations",
                "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
            },
            "meta": {"resourceType": "User"}
        })
    }

    #[test]
    fn a_realistic_entra_user_with_the_enterprise_extension() {
        let r = user_record(&entra_user()).unwrap();
        assert_eq!(r.id, "2819c223-7f76-453a-919d-413861904646");
        assert_eq!(
            r.user_name,
            "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.com"
        );
        assert_eq!(r.email.as_deref(), Some("Test_User_fd0ea19b@testuser.com"));
        assert_eq!(r.display_name.as_deref(), Some("Test User"));
        assert!(r.active);
        let get = |n: &str| r.attributes.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("userName"), Some(r.user_name.as_str()));
        assert_eq!(get("externalId"), Some("0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"));
        assert_eq!(get("name.givenName"), Some("givenName"));
        assert_eq!(get("name.familyName"), Some("familyName"));
        assert_eq!(get("title"), Some("Engineer"));
        assert_eq!(get("emails.work"), Some("Test_User_fd0ea19b@testuser.com"));
        assert_eq!(get("emails.home"), Some("home@example.com"));
        assert_eq!(get("phoneNumbers.mobile"), Some("+1 555 0100"));
        assert_eq!(get("enterprise.employeeNumber"), Some("701984"));
        assert_eq!(get("enterprise.department"), Some("Tour Operations"));
        assert_eq!(get("enterprise.manager"), Some("26118915-6090-4610-87e4-49d8ca9f808d"));
        assert_eq!(get("enterprise.costCenter"), Some("4130"));
        assert_eq!(get("enterprise.organization"), Some("Universal Studios"));
        assert_eq!(get("enterprise.division"), Some("Theme Park"));
        assert_eq!(get("id"), None);
        assert_eq!(get("active"), None);
    }

    #[test]
    fn email_display_name_and_active_fallbacks() {
        let r = user_record(&json!({
            "id": "1", "USERNAME": "bob", "active": "False",
            "emails": [{"value": "other@x", "type": "other"}, {"value": "work@x", "type": "Work"}],
            "name": {"givenName": "Bob", "familyName": "Jones"}
        }))
        .unwrap();
        assert_eq!(r.user_name, "bob");
        assert!(!r.active);
        assert_eq!(r.email.as_deref(), Some("work@x"));
        assert_eq!(r.display_name.as_deref(), Some("Bob Jones"));
        assert!(
            r.attributes.contains(&("userName".into(), "bob".into())),
            "{:?}",
            r.attributes
        );
        let r = user_record(&json!({"id": "2", "userName": "c", "emails": [{"value": "first@x"}],
                                   "name": {"formatted": "Carol C"}}))
        .unwrap();
        assert_eq!(
            (r.email.as_deref(), r.display_name.as_deref(), r.active),
            (Some("first@x"), Some("Carol C"), true)
        );
        let r = user_record(&json!({"id": "3", "userName": "d"})).unwrap();
        assert_eq!((r.email, r.display_name), (None, None));
    }

    #[test]
    fn users_missing_what_roster_needs_are_refused() {
        for bad in [
            json!([]),
            json!({"userName": "x"}),
            json!({"id": "", "userName": "x"}),
            json!({"id": "1"}),
            json!({"id": "1", "userName": 5}),
            json!({"id": "1", "userName": "x", "active": "yes"}),
        ] {
            let e = user_record(&bad).unwrap_err();
            assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{bad}");
        }
    }

    #[test]
    fn groups_with_user_and_group_members() {
        let g = group_record(&json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
            "displayName": "Tour Guides",
            "members": [
                {"value": "2819c223-7f76-453a-919d-413861904646", "$ref": "https://example.com/v2/Users/2819c223", "display": "Babs Jensen"},
                {"value": "902c246b-6245-4190-8e05-00816be7344a", "$ref": "https://example.com/v2/Groups/902c246b"},
                {"value": "g2", "type": "Group"},
                {"value": "u3", "type": "user", "$ref": "https://example.com/v2/Groups/mislabelled"}
            ]
        }))
        .unwrap();
        assert_eq!(g.display_name, "Tour Guides");
        let kinds: Vec<MemberKind> = g.members.iter().map(|m| m.kind).collect();
        assert_eq!(
            kinds,
            [MemberKind::User, MemberKind::Group, MemberKind::Group, MemberKind::User]
        );
        assert_eq!(g.members[0].value, "2819c223-7f76-453a-919d-413861904646");
        let empty = group_record(&json!({"id": "g", "displayName": "Empty"})).unwrap();
        assert!(empty.members.is_empty());
        for bad in [
            json!({"id": "g"}),
            json!({"id": "g", "displayName": "x", "members": [{"display": "no value"}]}),
            json!({"id": "g", "displayName": "x", "members": {"value": "u"}}),
        ] {
            assert_eq!(
                group_record(&bad).unwrap_err().scim_type,
                Some(ScimType::InvalidValue),
                "{bad}"
            );
        }
    }
}

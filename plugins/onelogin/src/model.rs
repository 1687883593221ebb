//! OneLogin's objects → Roster's records: the username field, active from status and state, the
//! attributes asked for; every field's type checked, so a malformed page fails naming it.

use roster_sdk::{Group, Membership, PluginError, User};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::settings::{CUSTOM, Settings, Status};

/// A user object as OneLogin sends it.
pub type Object = Map<String, Value>;

/// A role in `GET /api/2/roles`.
#[derive(Debug, Clone, Deserialize)]
pub struct Role {
    /// The role's number.
    pub id: i64,
    /// Its name.
    pub name: String,
}

/// A user in `GET /api/2/roles/{id}/users` (only the id is used).
#[derive(Debug, Clone, Deserialize)]
pub struct RoleUser {
    /// The user's number.
    pub id: i64,
}

/// A group in `GET /api/1/groups`.
#[derive(Debug, Clone, Deserialize)]
pub struct OneLoginGroup {
    /// The group's number.
    pub id: i64,
    /// Its name.
    pub name: String,
}

/// The envelope of API v1's listings.
#[derive(Debug, Deserialize)]
pub struct V1Page<T> {
    /// Where the next page starts.
    pub pagination: V1Pagination,
    /// The page's items.
    pub data: Vec<T>,
}

/// API v1 paging.
#[derive(Debug, Deserialize)]
pub struct V1Pagination {
    /// The next page's `after_cursor`; null on the last page.
    pub after_cursor: Option<String>,
}

/// The Roster group id of a role (roles and groups are numbered apart, so they may collide).
pub fn role_gid(id: i64) -> String {
    format!("role:{id}")
}

/// The Roster group id of a OneLogin group.
pub fn group_gid(id: i64) -> String {
    format!("group:{id}")
}

/// A role as a Roster group.
pub fn role_group(id: i64, name: &str) -> Group {
    Group {
        id: role_gid(id),
        name: name.to_string(),
        description: None,
        attributes: vec![("kind".into(), "role".into())],
    }
}

/// A OneLogin group as a Roster group.
pub fn group_group(id: i64, name: &str) -> Group {
    Group {
        id: group_gid(id),
        name: name.to_string(),
        description: None,
        attributes: vec![("kind".into(), "group".into())],
    }
}

/// A direct membership.
pub fn membership(group: String, user: i64) -> Membership {
    Membership {
        group_id: group,
        member_id: user.to_string(),
        member_is_group: false,
    }
}

/// A user record, kept in the cursor while an incremental fetch reads its roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// OneLogin's number.
    pub id: i64,
    /// The user's group (API v1), if any.
    pub group_id: Option<i64>,
    /// Username per `username_attribute`; empty when the user has none.
    pub username: String,
    /// `email`.
    pub email: Option<String>,
    /// "firstname lastname".
    pub display_name: Option<String>,
    /// Active per `active_statuses` and `state`.
    pub active: bool,
    /// `status`, `state` and the listed attributes.
    pub attributes: Vec<(String, String)>,
}

impl Person {
    /// The Roster record.
    pub fn user(&self) -> User {
        User {
            id: self.id.to_string(),
            username: self.username.clone(),
            email: self.email.clone(),
            display_name: self.display_name.clone(),
            active: self.active,
            attributes: self.attributes.clone(),
        }
    }
}

/// The error for item `at` of a page whose field `field` is not what OneLogin documents.
fn malformed(what: &str, at: usize, field: &str, got: Option<&Value>, expected: &str) -> PluginError {
    let got = match got {
        None => "missing".to_string(),
        Some(v) => v.to_string().chars().take(80).collect(),
    };
    PluginError::Fatal(format!(
        "{what}: item {at} of the page has a malformed field `{field}` ({got}; expected {expected})"
    ))
}

fn int(o: &Object, what: &str, at: usize, field: &str) -> Result<i64, PluginError> {
    o.get(field)
        .and_then(Value::as_i64)
        .ok_or_else(|| malformed(what, at, field, o.get(field), "an integer"))
}

fn opt_int(o: &Object, what: &str, at: usize, field: &str) -> Result<Option<i64>, PluginError> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| malformed(what, at, field, Some(v), "an integer or null")),
    }
}

fn opt_str<'o>(o: &'o Object, what: &str, at: usize, field: &str) -> Result<Option<&'o str>, PluginError> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str()).filter(|s| !s.trim().is_empty())),
        Some(v) => Err(malformed(what, at, field, Some(v), "a string or null")),
    }
}

fn state_name(n: i64) -> Option<&'static str> {
    match n {
        0 => Some("unapproved"),
        1 => Some("approved"),
        2 => Some("rejected"),
        3 => Some("unlicensed"),
        _ => None,
    }
}

/// Item `at` of a users page (`what` names the listing) as a person.
pub fn person(o: &Object, s: &Settings, what: &str, at: usize) -> Result<Person, PluginError> {
    let id = int(o, what, at, "id")?;
    let status = int(o, what, at, "status")?;
    let state = opt_int(o, what, at, "state")?;
    let group_id = opt_int(o, what, at, "group_id")?;
    let username = opt_str(o, what, at, s.username_attribute.field())?;
    let email = opt_str(o, what, at, "email")?;
    let first = opt_str(o, what, at, "firstname")?;
    let last = opt_str(o, what, at, "lastname")?;
    let mut attributes = Vec::new();
    let known = Status::from_number(status);
    attributes.push((
        "status".to_string(),
        known.map_or_else(|| status.to_string(), |k| k.name().to_string()),
    ));
    let approved = match state {
        None => true,
        Some(n) => {
            attributes.push((
                "state".into(),
                state_name(n).map_or_else(|| n.to_string(), str::to_string),
            ));
            n == 1
        }
    };
    let active = approved && known.is_some_and(|k| s.active_statuses.contains(&k));
    for name in &s.attributes {
        let value = match name.strip_prefix(CUSTOM) {
            Some(custom) => match o.get("custom_attributes") {
                None | Some(Value::Null) => None,
                Some(Value::Object(c)) => c.get(custom),
                Some(v) => return Err(malformed(what, at, "custom_attributes", Some(v), "an object")),
            },
            None => o.get(name.as_str()),
        };
        for v in value.map(roster_sdk::attributes::values).unwrap_or_default() {
            attributes.push((name.clone(), v));
        }
    }
    let display = [first, last].into_iter().flatten().collect::<Vec<_>>().join(" ");
    Ok(Person {
        id,
        group_id,
        username: username.map(|u| u.trim().to_string()).unwrap_or_default(),
        email: email.map(str::to_string),
        display_name: Some(display.trim().to_string()).filter(|d| !d.is_empty()),
        active,
        attributes,
    })
}

#[cfg(test)]
mod tests {
    use roster_sdk::settings;

    use super::*;

    fn s(extra: &str) -> Settings {
        settings::read(&format!(
            r#"{{"api_url":"https://a.onelogin.com","client_id":"c"{extra}}}"#
        ))
        .unwrap()
    }

    fn obj(v: serde_json::Value) -> Object {
        v.as_object().unwrap().clone()
    }

    fn attr<'p>(p: &'p Person, name: &str) -> Vec<&'p str> {
        p.attributes
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    #[test]
    fn status_and_state_decide_active() {
        let settings = s("");
        let p = |status: i64, state: serde_json::Value| {
            person(
                &obj(serde_json::json!({"id": 1, "username": "a", "status": status, "state": state})),
                &settings,
                "w",
                0,
            )
            .unwrap()
        };
        for (status, state, active, status_name, state_name) in [
            (1, serde_json::json!(1), true, "active", Some("approved")),
            (1, serde_json::Value::Null, true, "active", None),
            (3, serde_json::json!(1), true, "locked", Some("approved")),
            (2, serde_json::json!(1), false, "suspended", Some("approved")),
            (0, serde_json::json!(1), false, "unactivated", Some("approved")),
            (1, serde_json::json!(0), false, "active", Some("unapproved")),
            (1, serde_json::json!(2), false, "active", Some("rejected")),
            (1, serde_json::json!(3), false, "active", Some("unlicensed")),
            (6, serde_json::json!(1), false, "6", Some("approved")),
        ] {
            let got = p(status, state.clone());
            assert_eq!(got.active, active, "status {status}, state {state}");
            assert_eq!(attr(&got, "status"), vec![status_name]);
            assert_eq!(attr(&got, "state"), state_name.into_iter().collect::<Vec<_>>());
        }
        // Suspended counts as active when the administrator says so.
        let lenient = s(r#","active_statuses":["active","suspended"]"#);
        let o = obj(serde_json::json!({"id": 1, "username": "a", "status": 2, "state": 1}));
        assert!(person(&o, &lenient, "w", 0).unwrap().active);
        let o = obj(serde_json::json!({"id": 1, "username": "a", "status": 3, "state": 1}));
        assert!(!person(&o, &lenient, "w", 0).unwrap().active);
    }

    #[test]
    fn username_display_name_and_attributes() {
        let settings = s(
            r#","username_attribute":"samaccountname","attributes":["department","custom_attributes.cost_center","custom_attributes.none"]"#,
        );
        let o = obj(serde_json::json!({
            "id": 42, "username": "alice", "samaccountname": "ALICE1", "email": "a@x.test",
            "firstname": "Alice ", "lastname": null, "status": 1, "state": 1, "group_id": 7,
            "department": "R&D", "custom_attributes": {"cost_center": "CC-9"}
        }));
        let p = person(&o, &settings, "w", 0).unwrap();
        assert_eq!((p.id, p.group_id, p.username.as_str()), (42, Some(7), "ALICE1"));
        assert_eq!(p.display_name.as_deref(), Some("Alice"));
        assert_eq!(p.email.as_deref(), Some("a@x.test"));
        assert_eq!(attr(&p, "department"), vec!["R&D"]);
        assert_eq!(attr(&p, "custom_attributes.cost_center"), vec!["CC-9"]);
        assert!(attr(&p, "custom_attributes.none").is_empty());
        let u = p.user();
        assert_eq!((u.id.as_str(), u.username.as_str()), ("42", "ALICE1"));
        // No value for the username field: an empty username, which the host skips and reports.
        let o = obj(serde_json::json!({"id": 43, "username": "bob", "samaccountname": "", "status": 1}));
        assert_eq!(person(&o, &settings, "w", 0).unwrap().username, "");
    }

    #[test]
    fn a_malformed_field_is_named_with_the_listing_and_the_item() {
        let settings = s(r#","attributes":["custom_attributes.x"]"#);
        for (o, field) in [
            (serde_json::json!({"id": "42", "status": 1}), "id"),
            (serde_json::json!({"id": 42, "status": "active"}), "status"),
            (serde_json::json!({"id": 42}), "status"),
            (serde_json::json!({"id": 42, "status": 1, "state": "ok"}), "state"),
            (serde_json::json!({"id": 42, "status": 1, "group_id": [1]}), "group_id"),
            (serde_json::json!({"id": 42, "status": 1, "username": 7}), "username"),
            (serde_json::json!({"id": 42, "status": 1, "email": true}), "email"),
            (
                serde_json::json!({"id": 42, "status": 1, "custom_attributes": "x"}),
                "custom_attributes",
            ),
        ] {
            let err = person(&obj(o.clone()), &settings, "onelogin: GET /api/2/users", 3).unwrap_err();
            assert!(
                matches!(&err, PluginError::Fatal(m) if m.starts_with("onelogin: GET /api/2/users: item 3") && m.contains(&format!("`{field}`"))),
                "{o}: {err:?}"
            );
        }
    }
}

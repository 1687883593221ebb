//! What goes over the wire to Atlassian's SCIM API: paths, endpoint names, filters and bodies
//! (developer.atlassian.com/cloud/admin/user-provisioning/rest/; vendor-apis.md §3).

use reqwest::Method;
use roster_scim::patch::PATCH_URN;
use roster_scim::schema::{GROUP_URN, USER_URN};
use serde_json::{Value, json};

/// Resources asked for per page (`count`).
pub(super) const PAGE: u32 = 100;

/// What a call is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Listing {
    /// `/Users`.
    Users,
    /// `/Users/{id}`.
    User,
    /// `/Groups`.
    Groups,
    /// `/Groups/{id}`.
    Group,
}

/// The paths of one directory.
#[derive(Debug, Clone)]
pub(super) struct Path {
    base: String,
}

impl Path {
    /// The paths under `/scim/directory/{directory_id}`.
    pub(super) fn new(directory_id: &str) -> Path {
        Path {
            base: format!("/scim/directory/{}", segment(directory_id)),
        }
    }

    /// The call's name in counts and errors ("GET /scim/directory/{directoryId}/Users"): a
    /// template, never ids.
    pub(super) fn endpoint(&self, method: &Method, listing: Listing) -> String {
        let tail = match listing {
            Listing::Users => "Users",
            Listing::User => "Users/{id}",
            Listing::Groups => "Groups",
            Listing::Group => "Groups/{id}",
        };
        format!("{method} /scim/directory/{{directoryId}}/{tail}")
    }

    /// `…/Users` or `…/Groups`.
    pub(super) fn listing(&self, listing: Listing) -> String {
        match listing {
            Listing::Users | Listing::User => format!("{}/Users", self.base),
            Listing::Groups | Listing::Group => format!("{}/Groups", self.base),
        }
    }

    /// `…/Users/{id}`.
    pub(super) fn user(&self, id: &str) -> String {
        format!("{}/Users/{}", self.base, segment(id))
    }

    /// `…/Groups/{id}`.
    pub(super) fn group(&self, id: &str) -> String {
        format!("{}/Groups/{}", self.base, segment(id))
    }
}

/// `value` as one path segment: everything but RFC 3986's unreserved characters escaped.
fn segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `attr eq "value"`, the value quoted as a JSON string (RFC 7644 §3.4.2.2).
pub(super) fn eq(attr: &str, value: &str) -> String {
    format!("{attr} eq {}", Value::String(value.to_string()))
}

/// A new user's body: active, its email primary.
pub(super) fn new_user(user: &str, display_name: &str, email: &str) -> Value {
    let (given, family) = split_name(display_name, user);
    let mut name = json!({ "givenName": given });
    if let Some(f) = family {
        name["familyName"] = json!(f);
    }
    let mut body = json!({
        "schemas": [USER_URN],
        "userName": user,
        "displayName": display_name,
        "name": name,
        "active": true,
    });
    if !email.is_empty() {
        body["emails"] = json!([{ "value": email, "type": "work", "primary": true }]);
    }
    body
}

/// Given and family name from a display name: the first word, and the rest when there is any
/// (SCIM's `name` is structured, Roster's sources give one display name).
fn split_name<'a>(display_name: &'a str, user: &'a str) -> (&'a str, Option<&'a str>) {
    let trimmed = display_name.trim();
    if trimmed.is_empty() {
        return (user, None);
    }
    match trimmed.split_once(char::is_whitespace) {
        Some((given, family)) if !family.trim().is_empty() => (given, Some(family.trim())),
        _ => (trimmed, None),
    }
}

/// A PATCH body of `operations`.
fn patch(operations: Vec<Value>) -> Value {
    json!({ "schemas": [PATCH_URN], "Operations": operations })
}

/// Replaces the display name and the primary email.
pub(super) fn update_user(display_name: &str, email: &str) -> Value {
    let mut ops = vec![json!({ "op": "replace", "path": "displayName", "value": display_name })];
    if !email.is_empty() {
        ops.push(json!({
            "op": "replace",
            "path": "emails",
            "value": [{ "value": email, "type": "work", "primary": true }],
        }));
    }
    patch(ops)
}

/// Activates or deactivates a user.
pub(super) fn active(active: bool) -> Value {
    patch(vec![json!({ "op": "replace", "path": "active", "value": active })])
}

/// What a PATCH of a group's members does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Members {
    /// Adds them.
    Add,
    /// Removes them.
    Remove,
}

/// Adds or removes the users with `ids` to or from a group, in one operation (Atlassian's
/// PATCH of `members` takes many per call).
pub(super) fn members(op: Members, ids: &[String]) -> Value {
    let op = match op {
        Members::Add => "add",
        Members::Remove => "remove",
    };
    let value: Vec<Value> = ids.iter().map(|id| json!({ "value": id })).collect();
    patch(vec![json!({ "op": op, "path": "members", "value": value })])
}

/// A new group's body.
pub(super) fn new_group(name: &str) -> Value {
    json!({ "schemas": [GROUP_URN], "displayName": name })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_escape_ids_and_endpoints_never_hold_them() {
        let p = Path::new("dir 1/x");
        assert_eq!(p.listing(Listing::Users), "/scim/directory/dir%201%2Fx/Users");
        assert_eq!(p.user("a/b"), "/scim/directory/dir%201%2Fx/Users/a%2Fb");
        assert_eq!(
            p.endpoint(&Method::PATCH, Listing::Group),
            "PATCH /scim/directory/{directoryId}/Groups/{id}"
        );
    }

    #[test]
    fn filters_quote_their_value() {
        assert_eq!(eq("userName", "ann"), r#"userName eq "ann""#);
        assert_eq!(eq("displayName", r#"a "b" \c"#), r#"displayName eq "a \"b\" \\c""#);
    }

    #[test]
    fn a_new_user_has_a_structured_name_and_a_primary_email() {
        let b = new_user("ann", "Ann Lee Smith", "ann@x.com");
        assert_eq!(b["name"], json!({"givenName": "Ann", "familyName": "Lee Smith"}));
        assert_eq!(b["emails"][0]["primary"], json!(true));
        assert_eq!(b["active"], json!(true));
        assert_eq!(new_user("cher", "Cher", "")["name"], json!({"givenName": "Cher"}));
        assert!(new_user("cher", "Cher", "").get("emails").is_none());
    }
}

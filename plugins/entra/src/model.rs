//! Graph objects → Roster's records: which property becomes the username, where a guest's
//! email comes from, which attributes travel along.

use roster_sdk::{Group, Membership, PluginError, RemovalKind, User};
use serde_json::Value;

use crate::graph::Object;
use crate::settings::{GuestEmail, Settings};

fn str_of<'a>(o: &'a Object, key: &str) -> Option<&'a str> {
    o.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The object's id; a Graph object without one is a malformed answer.
pub fn id(o: &Object, what: &str) -> Result<String, PluginError> {
    str_of(o, "id").map(str::to_string).ok_or_else(|| {
        let text = serde_json::to_string(o).unwrap_or_default();
        let cut: String = text.chars().take(200).collect();
        PluginError::Fatal(format!("{what}: Graph returned an object without an id: {cut}"))
    })
}

/// `@removed` on a delta object: how it left.
pub fn removed(o: &Object) -> Option<RemovalKind> {
    let r = o.get("@removed")?;
    Some(match r.get("reason").and_then(Value::as_str) {
        Some("changed") => RemovalKind::SoftDeleted,
        _ => RemovalKind::Deleted,
    })
}

/// A directory object's kind from `@odata.type`: `Some(false)` user, `Some(true)` group,
/// `None` for devices, contacts and service principals, which Bitbucket has no use for.
pub fn member_is_group(o: &Object) -> Option<bool> {
    match o.get("@odata.type").and_then(Value::as_str) {
        Some("#microsoft.graph.user") => Some(false),
        Some("#microsoft.graph.group") => Some(true),
        _ => None,
    }
}

/// A guest: `userType` Guest, or a UPN of the `#EXT#` form.
pub fn is_guest(o: &Object) -> bool {
    str_of(o, "userType") == Some("Guest") || str_of(o, "userPrincipalName").is_some_and(|u| u.contains("#EXT#"))
}

/// Properties every Entra user has: a delta object without them is a partial one (Graph may
/// describe an updated user by "at least the properties that have been updated") and is read
/// again, since a record built from it would blank the rest (the mirror replaces whole
/// records). A full object may lack properties that were never set; those are null.
const ALWAYS_SET_USER: &[&str] = &["userPrincipalName", "accountEnabled", "displayName"];

/// The same for groups.
const ALWAYS_SET_GROUP: &[&str] = &["displayName", "mailNickname", "securityEnabled"];

/// True when a delta object is a partial description of the user.
pub fn user_incomplete(o: &Object) -> bool {
    ALWAYS_SET_USER.iter().any(|p| !o.contains_key(*p))
}

/// True when a delta object is a partial description of the group (its members are tracked
/// separately, in `members@delta`).
pub fn group_incomplete(o: &Object) -> bool {
    ALWAYS_SET_GROUP.iter().any(|p| !o.contains_key(*p))
}

/// Every property but the id and OData annotations, one `(name, value)` per value.
fn attributes(o: &Object) -> Vec<(String, String)> {
    roster_sdk::attributes::from_object(o, |k| k != "id" && !k.contains('@'))
}

/// A Graph user as a Roster user; `None` for a guest when guests are excluded.
pub fn user(o: &Object, s: &Settings) -> Result<Option<User>, PluginError> {
    let id = id(o, "user")?;
    let guest = is_guest(o);
    if guest && !s.include_guests {
        return Ok(None);
    }
    let mail = str_of(o, "mail");
    let other = o
        .get("otherMails")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().filter_map(Value::as_str).find(|m| !m.is_empty()));
    let email = if guest {
        match s.guest_email {
            GuestEmail::Mail => mail.or(other),
            GuestEmail::OtherMails => other.or(mail),
        }
    } else {
        mail
    };
    // A guest's UPN (alice_contoso.com#EXT#@tenant.onmicrosoft.com) is no name for anybody:
    // guests are known by their email.
    let username = if guest && s.username_attribute == "userPrincipalName" {
        email.or(str_of(o, "userPrincipalName"))
    } else {
        o.get(&s.username_attribute).and_then(|v| match v {
            Value::String(x) if !x.is_empty() => Some(x.as_str()),
            _ => None,
        })
    };
    let username = match username {
        Some(u) => u.to_string(),
        None => {
            roster_sdk::log(
                roster_sdk::Level::Warn,
                &format!(
                    "user {id} has no {}; Roster skips users without a username",
                    s.username_attribute
                ),
            );
            String::new()
        }
    };
    Ok(Some(User {
        id,
        username,
        email: email.map(str::to_string),
        display_name: str_of(o, "displayName").map(str::to_string),
        active: o.get("accountEnabled").and_then(Value::as_bool).unwrap_or(true),
        attributes: attributes(o),
    }))
}

/// A Graph group as a Roster group.
pub fn group(o: &Object) -> Result<Group, PluginError> {
    let id = id(o, "group")?;
    let name = str_of(o, "displayName").unwrap_or(&id).to_string();
    Ok(Group {
        description: str_of(o, "description").map(str::to_string),
        attributes: attributes(o)
            .into_iter()
            .filter(|(k, _)| k != "displayName" && k != "description")
            .collect(),
        id,
        name,
    })
}

/// `group` has `member` (a directory object from a members listing or `members@delta`);
/// `None` when the member is neither a user nor a group.
pub fn membership(group: &str, member: &Object) -> Result<Option<Membership>, PluginError> {
    let Some(is_group) = member_is_group(member) else {
        return Ok(None);
    };
    Ok(Some(Membership {
        group_id: group.to_string(),
        member_id: id(member, "group member")?,
        member_is_group: is_group,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(extra: &str) -> Settings {
        roster_sdk::settings::read(&format!(r#"{{"tenant_id":"t","client_id":"c"{extra}}}"#)).unwrap()
    }

    fn obj(json: &str) -> Object {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn members_map_with_upn_mail_and_attributes() {
        let o = obj(
            r#"{"id":"1","userPrincipalName":"Alice@contoso.com","mail":"alice@contoso.com","displayName":"Alice","accountEnabled":false,"otherMails":["a@x","b@x"],"department":null}"#,
        );
        let u = user(&o, &settings("")).unwrap().unwrap();
        assert_eq!(u.username, "Alice@contoso.com");
        assert_eq!(u.email.as_deref(), Some("alice@contoso.com"));
        assert!(!u.active);
        assert!(u.attributes.contains(&("otherMails".into(), "b@x".into())));
        assert!(!u.attributes.iter().any(|(k, _)| k == "department" || k == "id"));
        let by_sam = settings(r#","username_attribute":"onPremisesSamAccountName""#);
        assert_eq!(user(&o, &by_sam).unwrap().unwrap().username, "");
    }

    #[test]
    fn guests_use_their_email_per_setting() {
        let o = obj(
            r##"{"id":"2","userPrincipalName":"bob_fabrikam.com#EXT#@contoso.onmicrosoft.com","mail":null,"otherMails":["bob@fabrikam.com"],"userType":"Guest"}"##,
        );
        let u = user(&o, &settings("")).unwrap().unwrap();
        assert_eq!(
            (u.username.as_str(), u.email.as_deref()),
            ("bob@fabrikam.com", Some("bob@fabrikam.com"))
        );
        let both = obj(
            r##"{"id":"3","userPrincipalName":"c_f.com#EXT#@t","mail":"c@mail","otherMails":["c@other"],"userType":"Guest"}"##,
        );
        assert_eq!(
            user(&both, &settings("")).unwrap().unwrap().email.as_deref(),
            Some("c@mail")
        );
        let other = settings(r#","guest_email":"other-mails""#);
        assert_eq!(user(&both, &other).unwrap().unwrap().email.as_deref(), Some("c@other"));
        assert!(user(&both, &settings(r#","include_guests":false"#)).unwrap().is_none());
    }

    #[test]
    fn partial_delta_objects_are_recognised() {
        assert!(user_incomplete(&obj(r#"{"id":"1","displayName":"A"}"#)));
        assert!(!user_incomplete(&obj(
            r#"{"id":"1","displayName":"A","userPrincipalName":"a@x","accountEnabled":true}"#
        )));
        assert!(group_incomplete(&obj(r#"{"id":"g","members@delta":[]}"#)));
        assert!(!group_incomplete(&obj(
            r#"{"id":"g","displayName":"G","mailNickname":"g","securityEnabled":true}"#
        )));
    }

    #[test]
    fn malformed_objects_are_errors_not_panics() {
        assert!(user(&obj(r#"{"displayName":"x"}"#), &settings("")).is_err());
        assert!(membership("g", &obj(r##"{"@odata.type":"#microsoft.graph.user"}"##)).is_err());
        assert!(
            membership("g", &obj(r##"{"@odata.type":"#microsoft.graph.device","id":"d"}"##))
                .unwrap()
                .is_none()
        );
        assert_eq!(
            removed(&obj(r#"{"id":"x","@removed":{"reason":"changed"}}"#)),
            Some(RemovalKind::SoftDeleted)
        );
        assert_eq!(removed(&obj(r#"{"id":"x","@removed":{}}"#)), Some(RemovalKind::Deleted));
    }
}

//! SCIM resources as Roster's records: the shared reading of a resource (`user_record`,
//! `group_record`) with this source's username attribute.

use roster_sdk::{Group, Membership, User};

use crate::settings::Settings;
use roster_scim::{GroupRecord, MemberKind, UserRecord};

/// The username a user gets under `s`; `None` when the user has no such attribute (the
/// caller counts them).
pub fn username(u: &UserRecord, s: &Settings) -> Option<String> {
    let attr = s.username_attribute.as_str();
    let value = match attr {
        "userName" => Some(u.user_name.as_str()),
        "email" => u.email.as_deref(),
        _ => u
            .attributes
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(attr))
            .map(|(_, v)| v.as_str()),
    };
    value.map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
}

/// A SCIM user as a Roster user; `None` without the username attribute.
pub fn user(u: UserRecord, s: &Settings) -> Option<User> {
    let username = username(&u, s)?;
    Some(User {
        id: u.id,
        username,
        email: u.email,
        display_name: u.display_name,
        active: u.active,
        attributes: u.attributes,
    })
}

/// A SCIM group as a Roster group, named by its `displayName`.
pub fn group(g: &GroupRecord) -> Group {
    Group {
        id: g.id.clone(),
        name: g.display_name.clone(),
        description: None,
        attributes: Vec::new(),
    }
}

/// The group's members as memberships (a nested group's members count as the parent's).
pub fn memberships(g: &GroupRecord) -> impl Iterator<Item = Membership> + '_ {
    g.members.iter().map(|m| Membership {
        group_id: g.id.clone(),
        member_id: m.value.clone(),
        member_is_group: m.kind == MemberKind::Group,
    })
}

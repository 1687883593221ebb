//! Keycloak's representations as read (typed, so a page of the wrong shape is refused naming
//! the field) and as Roster's records.

use std::collections::BTreeMap;

use roster_sdk::{Group, Membership, User};
use serde::Deserialize;

use crate::settings::{GroupNames, Settings};

/// A `UserRepresentation`, the fields Roster reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KcUser {
    /// The user's UUID.
    pub id: String,
    /// The login name.
    pub username: String,
    /// A disabled user cannot sign in: inactive in Bitbucket. Keycloak always sends it; a
    /// user without it is taken as enabled, as Keycloak creates users.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// The e-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// Whether the address was verified.
    #[serde(default)]
    pub email_verified: Option<bool>,
    /// Given name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Family name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// Realm user attributes (`briefRepresentation=false`), each a list of values.
    #[serde(default)]
    pub attributes: Option<BTreeMap<String, Vec<String>>>,
}

/// A member as `/groups/{id}/members?briefRepresentation=true` lists it: its id is enough.
#[derive(Debug, Clone, Deserialize)]
pub struct KcMember {
    /// The user's UUID.
    pub id: String,
}

/// A `GroupRepresentation`, the fields Roster reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KcGroup {
    /// The group's UUID.
    pub id: String,
    /// Its name among its siblings.
    pub name: String,
    /// `/parent/name`; built from the parent's path when missing.
    #[serde(default)]
    pub path: Option<String>,
    /// Keycloak 23 and later: how many sub-groups `/groups/{id}/children` lists. Absent
    /// before 23, where the sub-groups come inline in `subGroups`.
    #[serde(default)]
    pub sub_group_count: Option<u64>,
    /// Before Keycloak 23: the whole tree of sub-groups.
    #[serde(default)]
    pub sub_groups: Vec<KcGroup>,
}

impl KcGroup {
    /// The group's path, from Keycloak or built under `parent`'s.
    pub fn path_under(&self, parent: Option<&str>) -> String {
        match (&self.path, parent) {
            (Some(p), _) if !p.is_empty() => p.clone(),
            (_, Some(up)) => format!("{}/{}", up.trim_end_matches('/'), self.name),
            (_, None) => format!("/{}", self.name),
        }
    }
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// The first value of a user attribute.
fn attribute<'a>(u: &'a KcUser, name: &str) -> Option<&'a str> {
    non_empty(
        u.attributes
            .as_ref()?
            .get(name)?
            .iter()
            .map(String::as_str)
            .find(|v| !v.trim().is_empty()),
    )
}

/// A Keycloak user as a Roster user; `None` when the username attribute is missing or empty
/// (the caller counts them).
pub fn user(u: &KcUser, s: &Settings) -> Option<User> {
    let username = match s.username_attribute.as_str() {
        "username" => non_empty(Some(&u.username)),
        "email" => non_empty(u.email.as_deref()),
        other => attribute(u, other),
    }?
    .to_string();
    let first = non_empty(u.first_name.as_deref());
    let last = non_empty(u.last_name.as_deref());
    let display_name = match (first, last) {
        (Some(f), Some(l)) => Some(format!("{f} {l}")),
        (Some(one), None) | (None, Some(one)) => Some(one.to_string()),
        (None, None) => None,
    };
    let mut attributes = vec![("username".to_string(), u.username.clone())];
    for (name, value) in [("firstName", first), ("lastName", last)] {
        if let Some(v) = value {
            attributes.push((name.to_string(), v.to_string()));
        }
    }
    if let Some(v) = u.email_verified {
        attributes.push(("emailVerified".into(), v.to_string()));
    }
    if let Some(all) = &u.attributes {
        for name in &s.attributes {
            for v in all.get(name).into_iter().flatten() {
                attributes.push((name.clone(), v.clone()));
            }
        }
    }
    Some(User {
        id: u.id.clone(),
        username,
        email: non_empty(u.email.as_deref()).map(str::to_string),
        display_name,
        active: u.enabled.unwrap_or(true),
        attributes,
    })
}

/// A Keycloak group as a Roster group, named by path or by name; its path is an attribute
/// either way.
pub fn group(g: &KcGroup, path: &str, s: &Settings) -> Group {
    let name = match s.group_names {
        GroupNames::Path => path.to_string(),
        GroupNames::Name => g.name.clone(),
    };
    Group {
        id: g.id.clone(),
        name,
        description: None,
        attributes: vec![("path".into(), path.to_string())],
    }
}

/// User `user` is a direct member of group `group`.
pub fn membership(group: &str, user: &str) -> Membership {
    Membership {
        group_id: group.to_string(),
        member_id: user.to_string(),
        member_is_group: false,
    }
}

/// Group `child` is a sub-group of `parent`.
pub fn subgroup(parent: &str, child: &str) -> Membership {
    Membership {
        group_id: parent.to_string(),
        member_id: child.to_string(),
        member_is_group: true,
    }
}

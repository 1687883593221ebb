//! Google's Directory objects as read (typed, so a page of the wrong shape is refused naming
//! the field) and as Roster's records.

use roster_sdk::{Group, Membership, User};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::settings::{Settings, Username};

/// `User.name`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Name {
    /// Given and family name as Google joins them.
    #[serde(rename = "fullName", default)]
    pub full_name: Option<String>,
    /// First name.
    #[serde(rename = "givenName", default)]
    pub given_name: Option<String>,
    /// Last name.
    #[serde(rename = "familyName", default)]
    pub family_name: Option<String>,
}

/// A Directory `User`, the fields Roster reads (the others kept for `attributes`).
#[derive(Debug, Clone, Deserialize)]
pub struct GoogleUser {
    /// The immutable id, e.g. `103443...`.
    pub id: String,
    /// The user's primary address.
    #[serde(rename = "primaryEmail")]
    pub primary_email: String,
    /// Names.
    #[serde(default)]
    pub name: Option<Name>,
    /// Suspended by an admin (or by Google): inactive.
    #[serde(default)]
    pub suspended: bool,
    /// Archived (an Archived User license): inactive.
    #[serde(default)]
    pub archived: bool,
    /// Every other field, for `attributes`.
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

/// A Directory `Group`, the fields Roster reads.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct GoogleGroup {
    /// The group's id.
    pub id: String,
    /// The group's address.
    #[serde(default)]
    pub email: Option<String>,
    /// The group's display name.
    pub name: String,
    /// Its description.
    #[serde(default)]
    pub description: Option<String>,
    /// Direct members (users and groups), which Google writes as a string.
    #[serde(rename = "directMembersCount", default, deserialize_with = "count")]
    pub direct_members_count: Option<u64>,
    /// The resource's ETag.
    #[serde(default)]
    pub etag: Option<String>,
}

/// `"3"` or `3` as a number; anything else is refused (and named by the page's error).
fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Count {
        Text(String),
        Number(u64),
    }
    match Option::<Count>::deserialize(d)? {
        None => Ok(None),
        Some(Count::Number(n)) => Ok(Some(n)),
        Some(Count::Text(t)) => t
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("`{t}` is not a member count"))),
    }
}

/// A Directory `Member`.
#[derive(Debug, Clone, Deserialize)]
pub struct GoogleMember {
    /// The member's id: a user's or a group's (absent for some external members).
    #[serde(default)]
    pub id: Option<String>,
    /// Its address.
    #[serde(default)]
    pub email: Option<String>,
    /// `USER`, `GROUP`, `CUSTOMER` (everyone in the account) or `EXTERNAL`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// What a member is to Roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberKind {
    /// A user, by id.
    User(String),
    /// A nested group, by id.
    Group(String),
    /// Something Roster does not sync (the whole account, an external member without id).
    Other(String),
}

impl GoogleMember {
    /// What this member is.
    pub fn kind(&self) -> MemberKind {
        match (self.kind.as_str(), &self.id) {
            ("USER", Some(id)) => MemberKind::User(id.clone()),
            ("GROUP", Some(id)) => MemberKind::Group(id.clone()),
            (kind, _) => MemberKind::Other(kind.to_string()),
        }
    }
}

/// A page of `users.list`.
#[derive(Debug, Deserialize)]
pub struct UsersPage {
    /// The users (absent on an empty page).
    #[serde(default)]
    pub users: Vec<GoogleUser>,
    /// The next page's token.
    #[serde(rename = "nextPageToken", default)]
    pub next: Option<String>,
}

/// A page of `groups.list`.
#[derive(Debug, Deserialize)]
pub struct GroupsPage {
    /// The groups (absent on an empty page).
    #[serde(default)]
    pub groups: Vec<GoogleGroup>,
    /// The next page's token.
    #[serde(rename = "nextPageToken", default)]
    pub next: Option<String>,
}

/// A page of `members.list`.
#[derive(Debug, Deserialize)]
pub struct MembersPage {
    /// The members (absent on an empty page).
    #[serde(default)]
    pub members: Vec<GoogleMember>,
    /// The next page's token.
    #[serde(rename = "nextPageToken", default)]
    pub next: Option<String>,
}

/// The user's state: `ACTIVE`, `SUSPENDED` or `ARCHIVED`.
pub fn status(u: &GoogleUser) -> &'static str {
    if u.archived {
        "ARCHIVED"
    } else if u.suspended {
        "SUSPENDED"
    } else {
        "ACTIVE"
    }
}

fn nonempty(s: Option<&String>) -> Option<String> {
    s.map(|s| s.trim()).filter(|s| !s.is_empty()).map(str::to_string)
}

/// A Google user as a Roster user; `None` when the username would be empty.
pub fn user(u: &GoogleUser, s: &Settings) -> Option<User> {
    let email = u.primary_email.trim();
    let username = match s.username {
        Username::PrimaryEmail => email,
        Username::EmailLocalPart => email.split('@').next().unwrap_or(""),
    };
    if username.is_empty() {
        return None;
    }
    let name = u.name.clone().unwrap_or_default();
    let display_name = nonempty(name.full_name.as_ref()).or_else(|| {
        let joined = format!(
            "{} {}",
            name.given_name.as_deref().unwrap_or(""),
            name.family_name.as_deref().unwrap_or("")
        );
        let joined = joined.trim();
        (!joined.is_empty()).then(|| joined.to_string())
    });
    let mut attributes = vec![("status".to_string(), status(u).to_string())];
    for field in &s.attributes {
        if let Some(v) = u.fields.get(field) {
            attributes.extend(
                roster_sdk::attributes::values(v)
                    .into_iter()
                    .map(|x| (field.clone(), x)),
            );
        }
    }
    Some(User {
        id: u.id.clone(),
        username: username.to_string(),
        email: Some(email.to_string()),
        display_name,
        active: !u.suspended && !u.archived,
        attributes,
    })
}

/// A Google group as a Roster group.
pub fn group(g: &GoogleGroup) -> Group {
    Group {
        id: g.id.clone(),
        name: g.name.clone(),
        description: nonempty(g.description.as_ref()),
        attributes: g.email.iter().map(|e| ("email".to_string(), e.clone())).collect(),
    }
}

/// What of a group decides whether its members are read again: a changed count or ETag says
/// the group changed; the record's fields say whether it must be written again.
pub fn group_digest(g: &GoogleGroup) -> u64 {
    roster_sdk::snapshot::digest_of(&(&g.name, &g.email, &g.description, g.direct_members_count, &g.etag))
}

/// A membership; `nested` when the member is a group.
pub fn membership(group: &str, member: &str, nested: bool) -> Membership {
    Membership {
        group_id: group.to_string(),
        member_id: member.to_string(),
        member_is_group: nested,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(extra: &str) -> Settings {
        roster_sdk::settings::read(&format!(
            r#"{{"service_account":"r@p.iam.gserviceaccount.com","admin_email":"admin@acme.com"{extra}}}"#
        ))
        .unwrap()
    }

    fn google_user(v: Value) -> GoogleUser {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn suspended_and_archived_users_are_inactive() {
        let s = settings("");
        for (suspended, archived, active, st) in [
            (false, false, true, "ACTIVE"),
            (true, false, false, "SUSPENDED"),
            (false, true, false, "ARCHIVED"),
            (true, true, false, "ARCHIVED"),
        ] {
            let u = google_user(serde_json::json!({
                "id": "1", "primaryEmail": "a@acme.com", "suspended": suspended, "archived": archived
            }));
            let r = user(&u, &s).unwrap();
            assert_eq!(r.active, active, "{suspended} {archived}");
            assert_eq!(r.attributes[0], ("status".to_string(), st.to_string()));
        }
        let bare = google_user(serde_json::json!({"id": "2", "primaryEmail": "b@acme.com"}));
        assert!(user(&bare, &s).unwrap().active, "absent flags are false");
    }

    #[test]
    fn records_take_the_address_names_and_listed_fields() {
        let u = google_user(serde_json::json!({
            "id": "1", "primaryEmail": "alice@acme.com",
            "name": {"givenName": "Alice", "familyName": "Liddell", "fullName": "Alice Liddell"},
            "orgUnitPath": "/Eng", "isAdmin": false, "aliases": ["al@acme.com", "a@acme.com"]
        }));
        let s = settings(r#","attributes":["orgUnitPath","isAdmin","aliases","missing"]"#);
        let r = user(&u, &s).unwrap();
        assert_eq!(
            (r.username.as_str(), r.email.as_deref(), r.display_name.as_deref()),
            ("alice@acme.com", Some("alice@acme.com"), Some("Alice Liddell"))
        );
        let pairs: Vec<(&str, &str)> = r.attributes.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(
            pairs,
            vec![
                ("status", "ACTIVE"),
                ("orgUnitPath", "/Eng"),
                ("isAdmin", "false"),
                ("aliases", "al@acme.com"),
                ("aliases", "a@acme.com"),
            ]
        );
        let local = settings(r#","username":"email-local-part""#);
        assert_eq!(user(&u, &local).unwrap().username, "alice");
        let named =
            google_user(serde_json::json!({"id": "2", "primaryEmail": "b@acme.com", "name": {"givenName": "Bee"}}));
        assert_eq!(user(&named, &s).unwrap().display_name.as_deref(), Some("Bee"));
    }

    #[test]
    fn member_counts_are_read_as_google_writes_them_and_members_by_type() {
        let g: GoogleGroup = serde_json::from_value(serde_json::json!({
            "id": "g1", "email": "eng@acme.com", "name": "Engineering", "description": "", "directMembersCount": "12"
        }))
        .unwrap();
        assert_eq!(g.direct_members_count, Some(12));
        let r = group(&g);
        assert_eq!((r.name.as_str(), r.description), ("Engineering", None));
        assert_eq!(r.attributes, vec![("email".to_string(), "eng@acme.com".to_string())]);
        let bad = serde_json::from_value::<GoogleGroup>(
            serde_json::json!({"id": "g", "name": "n", "directMembersCount": "many"}),
        );
        assert!(bad.unwrap_err().to_string().contains("`many` is not a member count"));
        let member = |v: Value| serde_json::from_value::<GoogleMember>(v).unwrap().kind();
        assert_eq!(
            member(serde_json::json!({"id": "u1", "type": "USER"})),
            MemberKind::User("u1".into())
        );
        assert_eq!(
            member(serde_json::json!({"id": "g2", "type": "GROUP"})),
            MemberKind::Group("g2".into())
        );
        assert_eq!(
            member(serde_json::json!({"id": "C01", "type": "CUSTOMER"})),
            MemberKind::Other("CUSTOMER".into())
        );
        let changed = GoogleGroup {
            direct_members_count: Some(13),
            ..g.clone()
        };
        assert_ne!(group_digest(&g), group_digest(&changed));
    }
}

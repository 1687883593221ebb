//! Okta's objects as read (typed, so a page of the wrong shape is refused naming the field) and
//! as Roster's records: the username attribute, the status mapping, the attributes.

use roster_sdk::{Group, Membership, User};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::settings::{Settings, Status};

/// An Okta `User`, the fields Roster reads.
#[derive(Debug, Clone, Deserialize)]
pub struct OktaUser {
    /// `00u…`.
    pub id: String,
    /// A `UserStatus`, or a transitional one (`ACTIVATING`).
    pub status: String,
    /// Where a transition in progress goes.
    #[serde(rename = "transitioningToStatus", default)]
    pub transitioning_to: Option<String>,
    /// The profile: login, email, names, custom attributes.
    pub profile: Map<String, Value>,
}

/// `Group._embedded.stats`, asked for with `expand=stats`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Stats {
    /// Members of the group.
    #[serde(rename = "usersCount", default)]
    pub users_count: Option<u64>,
}

/// `Group._embedded`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct GroupEmbedded {
    /// The group's statistics.
    #[serde(default)]
    pub stats: Option<Stats>,
}

/// `Group.profile`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct GroupProfile {
    /// The group's name.
    pub name: String,
    /// Its description.
    #[serde(default)]
    pub description: Option<String>,
}

/// An Okta `Group`, the fields Roster reads.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct OktaGroup {
    /// `00g…`.
    pub id: String,
    /// OKTA_GROUP, APP_GROUP or BUILT_IN.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// When a member joined or left last.
    #[serde(rename = "lastMembershipUpdated", default)]
    pub last_membership_updated: Option<String>,
    /// Name and description.
    pub profile: GroupProfile,
    /// `expand=stats`.
    #[serde(rename = "_embedded", default, skip_serializing_if = "Option::is_none")]
    pub embedded: Option<GroupEmbedded>,
}

impl OktaGroup {
    /// The member count Okta gave with `expand=stats`; `None` when it did not.
    pub fn users_count(&self) -> Option<u64> {
        self.embedded.as_ref()?.stats.as_ref()?.users_count
    }
}

/// `AppUser._embedded` with `expand=user`.
#[derive(Debug, Clone, Deserialize)]
pub struct AppUserEmbedded {
    /// The whole user.
    pub user: OktaUser,
}

/// An Okta `AppUser` (an assignment), read with `expand=user`.
#[derive(Debug, Clone, Deserialize)]
pub struct AppUser {
    /// The user's id.
    pub id: String,
    /// The user, as Okta provisioning sees it.
    #[serde(rename = "_embedded")]
    pub embedded: AppUserEmbedded,
}

/// An Okta `ApplicationGroupAssignment`.
#[derive(Debug, Clone, Deserialize)]
pub struct AppGroup {
    /// The group's id.
    pub id: String,
}

fn profile_str<'a>(p: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    p.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Whether a user of this status is active under the settings. A status this build does not
/// know (a transition in progress, `ACTIVATING`) counts as where it is going, so activating
/// a user never deactivates them on the way.
pub fn is_active(u: &OktaUser, s: &Settings) -> bool {
    match Status::parse(&u.status) {
        Some(st) => s.is_active(st),
        None => u
            .transitioning_to
            .as_deref()
            .and_then(Status::parse)
            .is_some_and(|to| s.is_active(to)),
    }
}

/// An Okta user as a Roster user; `None` when the username attribute is missing or empty
/// (the caller counts them).
pub fn user(u: &OktaUser, s: &Settings) -> Option<User> {
    let p = &u.profile;
    let username = profile_str(p, &s.username_attribute)?.to_string();
    let display_name = profile_str(p, "displayName").map(str::to_string).or_else(|| {
        let full = format!(
            "{} {}",
            profile_str(p, "firstName").unwrap_or(""),
            profile_str(p, "lastName").unwrap_or("")
        );
        let full = full.trim();
        (!full.is_empty()).then(|| full.to_string())
    });
    let mut attributes = vec![("status".to_string(), u.status.clone())];
    if let Some(login) = profile_str(p, "login") {
        attributes.push(("login".into(), login.to_string()));
    }
    for name in &s.attributes {
        if name == "login" {
            continue;
        }
        if let Some(v) = p.get(name) {
            attributes.extend(roster_sdk::attributes::values(v).into_iter().map(|x| (name.clone(), x)));
        }
    }
    Some(User {
        id: u.id.clone(),
        username,
        email: profile_str(p, "email").map(str::to_string),
        display_name,
        active: is_active(u, s),
        attributes,
    })
}

/// Users as records; the second value counts those skipped for want of a username.
pub fn users<'a>(list: impl IntoIterator<Item = &'a OktaUser>, s: &Settings) -> (Vec<User>, usize) {
    let mut out = Vec::new();
    let mut skipped = 0;
    for u in list {
        match user(u, s) {
            Some(r) => out.push(r),
            None => skipped += 1,
        }
    }
    (out, skipped)
}

/// An Okta group as a Roster group.
pub fn group(g: &OktaGroup) -> Group {
    Group {
        id: g.id.clone(),
        name: g.profile.name.clone(),
        description: g.profile.description.clone().filter(|d| !d.is_empty()),
        attributes: g.kind.iter().map(|k| ("type".to_string(), k.clone())).collect(),
    }
}

/// `user` is a direct member of `group` (Okta groups do not nest).
pub fn membership(group: &str, user: &str) -> Membership {
    Membership {
        group_id: group.to_string(),
        member_id: user.to_string(),
        member_is_group: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(extra: &str) -> Settings {
        roster_sdk::settings::read(&format!(r#"{{"org_url":"https://acme.okta.com"{extra}}}"#)).unwrap()
    }

    fn okta_user(json: serde_json::Value) -> OktaUser {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn statuses_map_to_active_per_settings_and_transitions_count_as_their_target() {
        let s = settings("");
        let with = |status: &str, to: Option<&str>| {
            is_active(
                &okta_user(serde_json::json!({"id":"00u1","status":status,"transitioningToStatus":to,"profile":{}})),
                &s,
            )
        };
        for active in ["ACTIVE", "PROVISIONED", "RECOVERY", "PASSWORD_EXPIRED", "LOCKED_OUT"] {
            assert!(with(active, None), "{active}");
        }
        for inactive in ["STAGED", "SUSPENDED", "DEPROVISIONED"] {
            assert!(!with(inactive, None), "{inactive}");
        }
        assert!(
            with("ACTIVATING", Some("ACTIVE")),
            "activation in progress stays active"
        );
        assert!(!with("DEACTIVATING", Some("DEPROVISIONED")));
        assert!(!with("SOMETHING_NEW", None));
        let strict = settings(r#","active_statuses":["ACTIVE"]"#);
        let locked = okta_user(serde_json::json!({"id":"00u1","status":"LOCKED_OUT","profile":{}}));
        assert!(!is_active(&locked, &strict));
        assert!(is_active(&locked, &s));
    }

    #[test]
    fn records_take_the_username_attribute_names_and_listed_attributes() {
        let u = okta_user(serde_json::json!({
            "id": "00u1", "status": "ACTIVE",
            "profile": {"login": "alice@acme.com", "email": "a@acme.com", "firstName": "Alice", "lastName": "Liddell",
                        "nickName": "al", "department": "Eng", "skills": ["rust", "go"], "level": 3, "remote": true, "gone": null}
        }));
        let s = settings(r#","attributes":["department","skills","level","remote","gone","missing"]"#);
        let r = user(&u, &s).unwrap();
        assert_eq!(
            (r.username.as_str(), r.email.as_deref(), r.display_name.as_deref()),
            ("alice@acme.com", Some("a@acme.com"), Some("Alice Liddell"))
        );
        let pairs: Vec<(&str, &str)> = r.attributes.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(
            pairs,
            vec![
                ("status", "ACTIVE"),
                ("login", "alice@acme.com"),
                ("department", "Eng"),
                ("skills", "rust"),
                ("skills", "go"),
                ("level", "3"),
                ("remote", "true"),
            ]
        );
        let by_nick = settings(r#","username_attribute":"nickName""#);
        assert_eq!(user(&u, &by_nick).unwrap().username, "al");
        let by_missing = settings(r#","username_attribute":"employeeNumber""#);
        let (records, skipped) = users([&u, &u], &by_missing);
        assert_eq!((records.len(), skipped), (0, 2));
        let shown =
            okta_user(serde_json::json!({"id":"00u2","status":"ACTIVE","profile":{"login":"b","displayName":"Bee"}}));
        assert_eq!(user(&shown, &s).unwrap().display_name.as_deref(), Some("Bee"));
        let bare = okta_user(serde_json::json!({"id":"00u3","status":"ACTIVE","profile":{"login":"c"}}));
        assert_eq!(user(&bare, &s).unwrap().display_name, None);
    }

    #[test]
    fn groups_carry_their_type() {
        let g: OktaGroup = serde_json::from_value(serde_json::json!({
            "id": "00g1", "type": "APP_GROUP", "profile": {"name": "devs", "description": null},
            "_embedded": {"stats": {"usersCount": 0}}
        }))
        .unwrap();
        let r = group(&g);
        assert_eq!((r.name.as_str(), r.description), ("devs", None));
        assert_eq!(r.attributes, vec![("type".to_string(), "APP_GROUP".to_string())]);
        assert_eq!(g.users_count(), Some(0));
    }
}

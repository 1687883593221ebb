//! Crowd's XML entities (users, groups, the error entity) as Roster's records.
//!
//! Ids: a user is its `<key>` when the server gives one, which survives renames — Jira's user
//! key (`JIRAUSER10100` for users created since Jira 8; an older user's key is its name at
//! creation), or Crowd 5's `directoryId:externalId` (S5 `toUserKey`) — else its name. The
//! choice is made answer by answer; an incremental fetch that sees a name change ids asks for
//! a full read ([`crate::delta`]). A group is its name in lower case: Crowd compares group
//! names case-insensitively, and has no other identity.

use roster_sdk::{Group, PluginError, User};

use crate::xml::Element;

/// A group's id: its name, lower case.
pub fn group_id(name: &str) -> String {
    name.to_lowercase()
}

/// How a user name is looked up: lower case, as Crowd compares them.
pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}

/// The `name` attribute every Crowd entity has; an entity without one is a malformed answer.
pub fn name<'a>(el: &'a Element, what: &str) -> Result<&'a str, PluginError> {
    el.attr("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| PluginError::Fatal(format!("{what}: the server sent a <{}> without a name", el.name)))
}

/// `<active>true</active>`; an absent element reads as false, as Atlassian's client reads its
/// primitive boolean, so a server that leaves it out shows its users as inactive in Bitbucket too.
fn active(el: &Element) -> bool {
    el.text_of("active").is_some_and(|t| t.trim() == "true")
}

/// `<attributes><attribute name="n"><values><value>v</value>…` as `(n, v)` pairs, one per value.
pub fn custom_attributes(el: &Element) -> Vec<(String, String)> {
    let Some(list) = el.child("attributes") else {
        return Vec::new();
    };
    list.all("attribute")
        .filter_map(|a| Some((a.attr("name")?, a)))
        .flat_map(|(n, a)| {
            a.child("values")
                .into_iter()
                .flat_map(|v| v.all("value"))
                .map(move |v| (n.to_string(), v.text.clone()))
        })
        .collect()
}

/// A `<user>` entity as a Roster user.
pub fn user(el: &Element, what: &str) -> Result<User, PluginError> {
    let name = name(el, what)?.to_string();
    let key = el.text_of("key").map(str::to_string);
    let mut attributes = Vec::new();
    for field in ["first-name", "last-name", "key"] {
        if let Some(v) = el.text_of(field) {
            attributes.push((field.to_string(), v.to_string()));
        }
    }
    attributes.extend(custom_attributes(el));
    Ok(User {
        id: key.unwrap_or_else(|| name.clone()),
        username: name,
        email: el.text_of("email").map(str::to_string),
        display_name: el.text_of("display-name").map(str::to_string),
        active: active(el),
        attributes,
    })
}

/// A `<group>` entity as a Roster group. Inactive groups are kept, as Bitbucket's directory
/// keeps them; `active` says which they are.
pub fn group(el: &Element, what: &str) -> Result<Group, PluginError> {
    let name = name(el, what)?.to_string();
    Ok(Group {
        id: group_id(&name),
        description: el.text_of("description").map(str::to_string),
        attributes: vec![("active".to_string(), active(el).to_string())],
        name,
    })
}

/// The names of the `<child>` elements of `<list>` under `el` (`<parentGroups><group name=…/>`).
pub fn names_in(el: &Element, list: &str, child: &str) -> Vec<String> {
    el.child(list)
        .into_iter()
        .flat_map(|l| l.all(child))
        .filter_map(|c| c.attr("name"))
        .map(str::to_string)
        .collect()
}

/// Crowd's `<error><reason>…</reason><message>…</message></error>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorEntity {
    /// `USER_NOT_FOUND`, `EVENT_TOKEN_EXPIRED`, …
    pub reason: String,
    /// The server's words.
    pub message: String,
}

/// The error entity of a body, if it is one.
pub fn error_entity(body: &[u8]) -> Option<ErrorEntity> {
    let el = crate::xml::read_one(body, "error").ok()?;
    Some(ErrorEntity {
        reason: el.text_of("reason").unwrap_or_default().trim().to_string(),
        message: el.text_of("message").unwrap_or_default().trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(body: &str) -> Element {
        crate::xml::read_one(body.as_bytes(), "users")
            .unwrap()
            .children
            .remove(0)
    }

    #[test]
    fn a_user_keeps_its_key_as_id_and_every_attribute_value() {
        let el = one(
            r#"<users><user name="jdoe"><link rel="self" href="x"/><first-name>John</first-name><last-name>Doe</last-name>
            <display-name>John Doe</display-name><email>jdoe@x.org</email><active>true</active><key>JIRAUSER10100</key>
            <attributes><attribute name="team"><values><value>a</value><value>b</value></values></attribute>
            <attribute name="login.count"><values><value>3</value></values></attribute></attributes></user></users>"#,
        );
        let u = user(&el, "list users").unwrap();
        assert_eq!(
            (
                u.id.as_str(),
                u.username.as_str(),
                u.email.as_deref(),
                u.display_name.as_deref(),
                u.active
            ),
            ("JIRAUSER10100", "jdoe", Some("jdoe@x.org"), Some("John Doe"), true)
        );
        let attrs: Vec<(&str, &str)> = u.attributes.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(
            attrs,
            vec![
                ("first-name", "John"),
                ("last-name", "Doe"),
                ("key", "JIRAUSER10100"),
                ("team", "a"),
                ("team", "b"),
                ("login.count", "3")
            ]
        );
        // No key: the name; no <active>: inactive, as Atlassian's client reads it.
        let bare = user(&one(r#"<users><user name="Old.Timer"/></users>"#), "x").unwrap();
        assert_eq!((bare.id.as_str(), bare.active), ("Old.Timer", false));
        assert!(user(&one(r#"<users><user/></users>"#), "list users").is_err());
    }

    #[test]
    fn a_group_is_its_lower_case_name_and_says_whether_it_is_active() {
        let el = crate::xml::read_one(
            br#"<groups><group name="Jira-Developers"><description>Devs</description><type>GROUP</type><active>false</active></group></groups>"#,
            "groups",
        )
        .unwrap();
        let g = group(&el.children[0], "list groups").unwrap();
        assert_eq!(
            (g.id.as_str(), g.name.as_str(), g.description.as_deref()),
            ("jira-developers", "Jira-Developers", Some("Devs"))
        );
        assert_eq!(g.attributes, vec![("active".to_string(), "false".to_string())]);
    }

    #[test]
    fn the_error_entity_is_read_and_other_bodies_are_not_one() {
        let e = error_entity(b"<error><reason>EVENT_TOKEN_EXPIRED</reason><message>Token too old</message></error>")
            .unwrap();
        assert_eq!(
            (e.reason.as_str(), e.message.as_str()),
            ("EVENT_TOKEN_EXPIRED", "Token too old")
        );
        assert_eq!(error_entity(b"Application failed to authenticate"), None);
        assert_eq!(error_entity(b"<html><body>403</body></html>"), None);
    }
}

//! Which directory user is which Roster name. The directory's `userName` is the person's
//! address, so a desired person's user is found by email and remembered in the store; a user
//! no name is known for keeps its `userName` (lower-cased) as its key — never a Roster name it
//! merely resembles.

use std::collections::{HashMap, HashSet};

use roster_scim::UserRecord;
use roster_store::TargetAccount;

/// How a directory id is remembered: prefixed, so mode one (which remembers Atlassian account
/// ids in the same table) never takes it for one of its own.
const PREFIX: &str = "scim:";

/// The remembered form of the directory id `id`.
pub(super) fn stored_id(id: &str) -> String {
    format!("{PREFIX}{id}")
}

/// The directory id in a remembered account id, if it is one.
pub(super) fn scim_id(stored: &str) -> Option<&str> {
    stored.strip_prefix(PREFIX)
}

/// What [`assign`] found.
#[derive(Debug, Default)]
pub(super) struct Found {
    /// User id → key.
    pub keys: HashMap<String, String>,
    /// Names newly found by email, to remember.
    pub learned: Vec<TargetAccount>,
}

/// The key of every user: the name `stored` remembers for its id; else the name in `emails`
/// (lower-case name → address) whose address is the user's email or `userName`, when that
/// name has no user yet; else the user's `userName`, lower-cased (with its id appended in the
/// rare case a Roster name already took that key).
pub(super) fn assign(users: &[UserRecord], stored: &[TargetAccount], emails: &HashMap<String, String>) -> Found {
    let mut found = Found::default();
    let mut taken: HashSet<String> = HashSet::new();
    let live: HashSet<&str> = users.iter().map(|u| u.id.as_str()).collect();
    let by_id: HashMap<&str, &str> = stored
        .iter()
        .filter_map(|a| Some((scim_id(a.account_id.as_deref()?)?, a.name.as_str())))
        .collect();
    for u in users {
        if let Some(name) = by_id.get(u.id.as_str())
            && taken.insert(name.to_string())
        {
            found.keys.insert(u.id.clone(), name.to_string());
        }
    }
    // Names whose remembered user still exists are not looked for again.
    let settled: HashSet<&str> = stored
        .iter()
        .filter(|a| {
            a.account_id
                .as_deref()
                .and_then(scim_id)
                .is_some_and(|id| live.contains(id))
        })
        .map(|a| a.name.as_str())
        .collect();
    let mut by_email: HashMap<String, &str> = HashMap::new();
    let mut sorted: Vec<(&String, &String)> = emails.iter().collect();
    // The first name (alphabetically) wins an address two people share.
    sorted.sort();
    for (name, email) in sorted {
        if !settled.contains(name.as_str()) {
            by_email.entry(email.to_lowercase()).or_insert(name.as_str());
        }
    }
    for u in users {
        if found.keys.contains_key(&u.id) {
            continue;
        }
        let addresses = [u.email.as_deref(), Some(u.user_name.as_str())];
        let name = addresses
            .into_iter()
            .flatten()
            .find_map(|a| by_email.get(&a.to_lowercase()).copied())
            .filter(|n| !taken.contains(*n));
        if let Some(name) = name {
            taken.insert(name.to_string());
            found.keys.insert(u.id.clone(), name.to_string());
            found.learned.push(TargetAccount {
                name: name.to_string(),
                email: u.email.clone().or_else(|| Some(u.user_name.clone())),
                account_id: Some(stored_id(&u.id)),
                invited_at: None,
            });
        }
    }
    for u in users {
        if found.keys.contains_key(&u.id) {
            continue;
        }
        let mut key = u.user_name.to_lowercase();
        if !taken.insert(key.clone()) {
            key = format!("{key}#{}", u.id.to_lowercase());
            taken.insert(key.clone());
        }
        found.keys.insert(u.id.clone(), key);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, user_name: &str) -> UserRecord {
        UserRecord {
            id: id.into(),
            user_name: user_name.into(),
            email: Some(user_name.into()),
            display_name: None,
            active: true,
            attributes: Vec::new(),
        }
    }

    fn remembered(name: &str, id: &str) -> TargetAccount {
        TargetAccount {
            name: name.into(),
            email: None,
            account_id: Some(stored_id(id)),
            invited_at: None,
        }
    }

    #[test]
    fn remembered_first_then_by_email_then_the_user_name() {
        let users = [user("1", "Ann@x.com"), user("2", "bob@x.com"), user("3", "Carol@x.com")];
        let stored = [remembered("annie", "1")];
        let emails = HashMap::from([
            ("bob".to_string(), "BOB@x.com".to_string()),
            ("ann".to_string(), "ann@x.com".to_string()),
        ]);
        let f = assign(&users, &stored, &emails);
        assert_eq!(f.keys["1"], "annie", "the store's name wins over an address");
        assert_eq!(f.keys["2"], "bob");
        assert_eq!(f.keys["3"], "carol@x.com");
        assert_eq!(f.learned.len(), 1);
        assert_eq!(f.learned[0].name, "bob");
        assert_eq!(f.learned[0].account_id.as_deref(), Some("scim:2"));
    }

    #[test]
    fn a_mode_one_account_id_is_not_a_directory_id() {
        let users = [user("557058:abc", "ann@x.com")];
        let stored = [TargetAccount {
            name: "someone".into(),
            email: None,
            account_id: Some("557058:abc".into()),
            invited_at: None,
        }];
        let f = assign(&users, &stored, &HashMap::new());
        assert_eq!(f.keys["557058:abc"], "ann@x.com");
    }

    #[test]
    fn a_name_a_user_already_holds_is_not_given_twice() {
        let users = [user("1", "ann@x.com"), user("2", "ann")];
        let emails = HashMap::from([("ann".to_string(), "ann@x.com".to_string())]);
        let f = assign(&users, &[], &emails);
        assert_eq!(f.keys["1"], "ann");
        assert_eq!(f.keys["2"], "ann#2");
    }
}

//! The memberships a connector read last time, kept in its delta state, so that an incremental
//! fetch can re-read one group's members (Okta's `lastMembershipUpdated`) or one user's groups
//! (OneLogin's changed users) and report what was added *and* what was removed: APIs whose
//! timestamps say "this changed" but not "this left".
//!
//! Ids are numbered once, so a state of 100,000 users and half a million memberships stays a
//! few megabytes of JSON, and a group's members are a sorted list of numbers.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::Membership;

/// Direct user memberships by group, as last read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberIndex {
    /// User ids; a user's number is its place here.
    #[serde(rename = "u", default)]
    users: Vec<String>,
    /// Each group's members by number, sorted; groups without members are absent.
    #[serde(rename = "g", default)]
    groups: HashMap<String, Vec<u32>>,
    #[serde(skip)]
    numbers: HashMap<String, u32>,
}

/// What replacing a set of memberships changed.
#[derive(Debug, Clone, Default)]
pub struct Diff {
    /// Memberships that are new.
    pub added: Vec<Membership>,
    /// Memberships that are gone.
    pub removed: Vec<Membership>,
}

impl MemberIndex {
    /// An empty index.
    pub fn new() -> Self {
        MemberIndex::default()
    }

    fn number(&mut self, user: &str) -> u32 {
        if self.numbers.len() != self.users.len() {
            self.renumber();
        }
        if let Some(n) = self.numbers.get(user) {
            return *n;
        }
        let n = self.users.len() as u32;
        self.users.push(user.to_string());
        self.numbers.insert(user.to_string(), n);
        n
    }

    // The lookup table is not serialised; rebuilt on first use after decoding.
    fn renumber(&mut self) {
        self.numbers = self
            .users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.clone(), i as u32))
            .collect();
    }

    /// Records `members` as group `group`'s members (a full fetch's reading): no diff.
    pub fn set_group(&mut self, group: &str, members: impl IntoIterator<Item = impl AsRef<str>>) {
        let mut ns: Vec<u32> = members.into_iter().map(|m| self.number(m.as_ref())).collect();
        ns.sort_unstable();
        ns.dedup();
        if ns.is_empty() {
            self.groups.remove(group);
        } else {
            self.groups.insert(group.to_string(), ns);
        }
    }

    /// Replaces group `group`'s members with `members` and says what that added and removed.
    pub fn replace_group(&mut self, group: &str, members: impl IntoIterator<Item = impl AsRef<str>>) -> Diff {
        let before: BTreeSet<u32> = self.groups.get(group).into_iter().flatten().copied().collect();
        self.set_group(group, members);
        let after: BTreeSet<u32> = self.groups.get(group).into_iter().flatten().copied().collect();
        Diff {
            added: after.difference(&before).map(|n| self.link(group, *n)).collect(),
            removed: before.difference(&after).map(|n| self.link(group, *n)).collect(),
        }
    }

    /// Replaces user `user`'s groups with `groups` (groups not in the index yet are added) and
    /// says what that added and removed.
    pub fn replace_user(&mut self, user: &str, groups: impl IntoIterator<Item = impl AsRef<str>>) -> Diff {
        let n = self.number(user);
        let wanted: BTreeSet<String> = groups.into_iter().map(|g| g.as_ref().to_string()).collect();
        let mut diff = Diff::default();
        for (group, members) in self.groups.iter_mut() {
            if !wanted.contains(group)
                && let Ok(at) = members.binary_search(&n)
            {
                members.remove(at);
                diff.removed.push(membership(group, user));
            }
        }
        self.groups.retain(|_, m| !m.is_empty());
        for group in wanted {
            let members = self.groups.entry(group.clone()).or_default();
            if let Err(at) = members.binary_search(&n) {
                members.insert(at, n);
                diff.added.push(membership(&group, user));
            }
        }
        diff.removed.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        diff
    }

    /// Forgets group `group`; returns the memberships it had.
    pub fn remove_group(&mut self, group: &str) -> Vec<Membership> {
        let members = self.groups.remove(group).unwrap_or_default();
        members.into_iter().map(|n| self.link(group, n)).collect()
    }

    /// Takes user `user` out of every group; returns the memberships removed.
    pub fn remove_user(&mut self, user: &str) -> Vec<Membership> {
        self.replace_user(user, std::iter::empty::<&str>()).removed
    }

    /// Group `group`'s members' ids, sorted by number (the order they were first seen).
    pub fn members(&self, group: &str) -> Vec<&str> {
        self.groups
            .get(group)
            .into_iter()
            .flatten()
            .map(|n| self.users[*n as usize].as_str())
            .collect()
    }

    /// The ids of the groups the index holds members for.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.groups.keys().map(String::as_str)
    }

    /// The number of memberships held.
    pub fn len(&self) -> usize {
        self.groups.values().map(Vec::len).sum()
    }

    /// Whether no membership is held.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    fn link(&self, group: &str, n: u32) -> Membership {
        membership(group, &self.users[n as usize])
    }
}

fn membership(group: &str, user: &str) -> Membership {
    Membership {
        group_id: group.to_string(),
        member_id: user.to_string(),
        member_is_group: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(ms: &[Membership]) -> Vec<(String, String)> {
        ms.iter().map(|m| (m.group_id.clone(), m.member_id.clone())).collect()
    }

    fn pair(g: &str, u: &str) -> (String, String) {
        (g.to_string(), u.to_string())
    }

    #[test]
    fn re_reading_a_group_reports_who_joined_and_who_left() {
        let mut idx = MemberIndex::new();
        idx.set_group("devs", ["alice", "bob"]);
        let d = idx.replace_group("devs", ["bob", "carol"]);
        assert_eq!(ids(&d.added), vec![pair("devs", "carol")]);
        assert_eq!(ids(&d.removed), vec![pair("devs", "alice")]);
        assert_eq!(idx.members("devs"), vec!["bob", "carol"]);
        let same = idx.replace_group("devs", ["carol", "bob"]);
        assert!(same.added.is_empty() && same.removed.is_empty());
    }

    #[test]
    fn re_reading_a_user_s_groups_reports_both_ways() {
        let mut idx = MemberIndex::new();
        idx.set_group("devs", ["alice"]);
        idx.set_group("ops", ["alice", "bob"]);
        let d = idx.replace_user("alice", ["ops", "admins"]);
        assert_eq!(ids(&d.added), vec![pair("admins", "alice")]);
        assert_eq!(ids(&d.removed), vec![pair("devs", "alice")]);
        assert!(idx.groups().all(|g| g != "devs"), "an emptied group is dropped");
        assert_eq!(ids(&idx.remove_user("bob")), vec![pair("ops", "bob")]);
        assert!(idx.members("ops").iter().all(|u| *u != "bob"));
    }

    #[test]
    fn a_decoded_index_diffs_like_the_one_encoded() {
        let mut idx = MemberIndex::new();
        idx.set_group("devs", ["alice", "bob"]);
        let text = serde_json::to_string(&idx).unwrap();
        let mut back: MemberIndex = serde_json::from_str(&text).unwrap();
        let d = back.replace_group("devs", ["alice", "dave"]);
        assert_eq!(ids(&d.added), vec![pair("devs", "dave")]);
        assert_eq!(ids(&d.removed), vec![pair("devs", "bob")]);
        assert_eq!(
            ids(&back.remove_group("devs")),
            vec![pair("devs", "alice"), pair("devs", "dave")]
        );
        assert!(back.is_empty());
    }
}

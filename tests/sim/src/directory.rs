//! Deterministic sample directories (users, groups, nested memberships) in the `file`
//! connector's formats, with the Bitbucket state a correct sync must produce from them.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use serde::Serialize;

/// A user record.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DirUser {
    /// Immutable id.
    pub id: String,
    /// Username.
    pub username: String,
    /// Email.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Enabled.
    pub active: bool,
}

/// A group record.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DirGroup {
    /// Immutable id.
    pub id: String,
    /// Name.
    pub name: String,
}

/// A membership record.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DirMembership {
    /// Group id.
    pub group: String,
    /// Member id.
    pub member: String,
    /// The member is a group.
    pub member_is_group: bool,
}

/// A whole directory.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Directory {
    /// Users.
    pub users: Vec<DirUser>,
    /// Groups.
    pub groups: Vec<DirGroup>,
    /// Memberships.
    pub memberships: Vec<DirMembership>,
}

impl Directory {
    /// `users` users and `groups` groups; each user is a direct member of `per_user` groups;
    /// every fourth group heads a chain three levels deep (g ⊃ g+1 ⊃ g+2 ⊃ g+3).
    pub fn generate(users: usize, groups: usize, per_user: usize) -> Directory {
        let mut d = Directory::default();
        for i in 0..groups {
            d.groups.push(DirGroup {
                id: format!("g-{i:05}"),
                name: format!("team-{i:05}"),
            });
        }
        for i in (0..groups).step_by(4) {
            for level in 0..3 {
                if i + level + 1 < groups {
                    d.memberships.push(DirMembership {
                        group: format!("g-{:05}", i + level),
                        member: format!("g-{:05}", i + level + 1),
                        member_is_group: true,
                    });
                }
            }
        }
        for k in 0..users {
            d.users.push(DirUser {
                id: format!("u-{k:06}"),
                username: format!("user{k:06}"),
                email: format!("user{k:06}@example.com"),
                display_name: format!("User {k:06}"),
                active: true,
            });
            if groups > 0 {
                let mut mine = BTreeSet::new();
                for j in 0..per_user {
                    mine.insert((k * 7 + j * 13 + j * j) % groups);
                }
                for g in mine {
                    d.memberships.push(DirMembership {
                        group: format!("g-{g:05}"),
                        member: format!("u-{k:06}"),
                        member_is_group: false,
                    });
                }
            }
        }
        d
    }

    /// Writes the `.json` document form.
    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, serde_json::to_vec(self).map_err(std::io::Error::other)?)
    }

    /// Writes the `.jsonl` form (one record per line).
    pub fn write_jsonl(&self, path: &Path) -> std::io::Result<()> {
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        let line =
            |f: &mut std::io::BufWriter<std::fs::File>, kind: &str, v: serde_json::Value| -> std::io::Result<()> {
                let mut v = v;
                v["kind"] = kind.into();
                writeln!(f, "{v}")
            };
        for u in &self.users {
            line(&mut f, "user", serde_json::to_value(u).map_err(std::io::Error::other)?)?;
        }
        for g in &self.groups {
            line(&mut f, "group", serde_json::to_value(g).map_err(std::io::Error::other)?)?;
        }
        for m in &self.memberships {
            line(
                &mut f,
                "membership",
                serde_json::to_value(m).map_err(std::io::Error::other)?,
            )?;
        }
        f.flush()
    }

    /// Usernames (lower case) of the active users: who the licensed default group must hold.
    pub fn active_usernames(&self) -> BTreeSet<String> {
        self.users
            .iter()
            .filter(|u| u.active)
            .map(|u| u.username.to_lowercase())
            .collect()
    }

    /// Group name → usernames (lower case) of its active members, nested groups flattened:
    /// what Bitbucket must hold after a sync.
    pub fn expected_members(&self) -> BTreeMap<String, BTreeSet<String>> {
        let name: BTreeMap<&str, &str> = self.groups.iter().map(|g| (g.id.as_str(), g.name.as_str())).collect();
        let user: BTreeMap<&str, &DirUser> = self.users.iter().map(|u| (u.id.as_str(), u)).collect();
        let mut direct: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut sub: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for m in &self.memberships {
            if m.member_is_group {
                sub.entry(&m.group).or_default().push(&m.member)
            } else {
                direct.entry(&m.group).or_default().push(&m.member)
            }
        }
        let mut out = BTreeMap::new();
        for g in &self.groups {
            let mut seen = BTreeSet::from([g.id.as_str()]);
            let mut stack = vec![g.id.as_str()];
            let mut members = BTreeSet::new();
            while let Some(h) = stack.pop() {
                for u in direct.get(h).into_iter().flatten() {
                    if let Some(u) = user.get(u).filter(|u| u.active) {
                        members.insert(u.username.to_lowercase());
                    }
                }
                for s in sub.get(h).into_iter().flatten() {
                    if seen.insert(s) {
                        stack.push(s);
                    }
                }
            }
            out.insert(name[g.id.as_str()].to_string(), members);
        }
        out
    }

    /// Ids of the groups that head a nesting chain (`team-00000` ⊃ `team-00001` ⊃ …): nothing
    /// contains them, so a direct membership change there changes exactly one Bitbucket group.
    pub fn head_groups(&self) -> Vec<String> {
        self.groups.iter().step_by(4).map(|g| g.id.clone()).collect()
    }

    /// The username of the user with id `id`.
    pub fn username(&self, id: &str) -> &str {
        &self
            .users
            .iter()
            .find(|u| u.id == id)
            .unwrap_or_else(|| panic!("no user {id}"))
            .username
    }

    /// The name of the group with id `gid`.
    pub fn group_name(&self, gid: &str) -> String {
        self.groups
            .iter()
            .find(|g| g.id == gid)
            .unwrap_or_else(|| panic!("no group {gid}"))
            .name
            .clone()
    }

    /// Ids of the users who are in group `gid` only directly (no subgroup of it holds them too):
    /// removing such a direct membership removes them from the Bitbucket group.
    pub fn only_direct_members(&self, gid: &str) -> Vec<String> {
        let name = self.group_name(gid);
        self.memberships
            .iter()
            .filter(|m| m.group == gid && !m.member_is_group)
            .map(|m| m.member.clone())
            .filter(|u| {
                let mut without = self.clone();
                without.memberships.retain(|m| !(m.group == gid && &m.member == u));
                let user = self.users.iter().find(|x| &x.id == u).expect("a member is a user");
                !without.expected_members()[&name].contains(&user.username.to_lowercase())
            })
            .collect()
    }

    /// Total flattened memberships (what `expected_members` sums to).
    pub fn flattened_count(&self) -> usize {
        self.expected_members().values().map(BTreeSet::len).sum()
    }
}

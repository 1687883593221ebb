//! The merge stage: every source's transformed records become one desired state. The same
//! person from two sources (same username after transforms) is one Bitbucket user; each
//! attribute comes from the first source in its configured order, else in directory order.
//! Nested groups are flattened with cycle detection, and each nested membership keeps the path
//! that produced it.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use roster_model::{Desired, Person};
use roster_store::MirrorMembership;
use unicode_normalization::UnicodeNormalization;

use crate::transform::{MappedUser, Transformed};

/// One source's input to the merge, in directory order.
pub struct SourceInput<'a> {
    /// Source id.
    pub id: &'a str,
    /// Its records after transforms.
    pub data: Transformed,
}

/// Who each group contains, transitively (user ids), and the cycles found.
pub type Flattened<'a> = HashMap<&'a str, Vec<&'a str>>;

/// Flattens nested groups: every group's users, through any depth of nesting, each once.
/// Cycles are reported (as group id paths) and cut. Ids are borrowed from `memberships`, so
/// the result costs a pointer per flattened membership.
pub fn flatten(memberships: &[MirrorMembership]) -> (Flattened<'_>, Vec<Vec<String>>) {
    let (users, children) = adjacency(memberships);
    let groups: HashSet<&str> = users.keys().chain(children.keys()).copied().collect();
    let mut out: Flattened<'_> = HashMap::with_capacity(groups.len());
    let mut cycles = Vec::new();
    for &root in &groups {
        let mut parent: HashMap<&str, &str> = HashMap::new();
        let mut seen: HashSet<&str> = HashSet::from([root]);
        let mut queue = VecDeque::from([root]);
        let mut members: Vec<&str> = Vec::new();
        let mut members_seen: HashSet<&str> = HashSet::new();
        while let Some(g) = queue.pop_front() {
            for &u in users.get(g).into_iter().flatten() {
                if members_seen.insert(u) {
                    members.push(u);
                }
            }
            for &c in children.get(g).into_iter().flatten() {
                if c == root {
                    let mut cycle = path_to(&parent, g);
                    cycle.push(root.to_string());
                    cycles.push(cycle);
                } else if seen.insert(c) {
                    parent.insert(c, g);
                    queue.push_back(c);
                }
            }
        }
        out.insert(root, members);
    }
    cycles.sort();
    cycles.dedup_by(|a, b| {
        let mut x = a[..a.len() - 1].to_vec();
        let mut y = b[..b.len() - 1].to_vec();
        x.sort();
        y.sort();
        x == y
    });
    (out, cycles)
}

type Adjacency<'a> = (HashMap<&'a str, Vec<&'a str>>, HashMap<&'a str, Vec<&'a str>>);

/// Direct users and direct subgroups of every group.
fn adjacency(memberships: &[MirrorMembership]) -> Adjacency<'_> {
    let mut users: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    for m in memberships {
        let list = if m.member_is_group { &mut children } else { &mut users };
        list.entry(m.group_id.as_str()).or_default().push(m.member_id.as_str());
    }
    (users, children)
}

/// The shortest chain of group ids from `root` down to a group that holds `user` directly
/// (just `[root]` for a direct member), or `None` when `user` is not in `root`.
pub fn path(memberships: &[MirrorMembership], root: &str, user: &str) -> Option<Vec<String>> {
    let (users, children) = adjacency(memberships);
    let mut parent: HashMap<&str, &str> = HashMap::new();
    let mut seen: HashSet<&str> = HashSet::from([root]);
    let mut queue = VecDeque::from([root]);
    while let Some(g) = queue.pop_front() {
        if users.get(g).is_some_and(|u| u.contains(&user)) {
            return Some(path_to(&parent, g));
        }
        for &c in children.get(g).into_iter().flatten() {
            if seen.insert(c) {
                parent.insert(c, g);
                queue.push_back(c);
            }
        }
    }
    None
}

/// The group ids from the BFS root down to `g`.
fn path_to(parent: &HashMap<&str, &str>, g: &str) -> Vec<String> {
    let mut p = vec![g.to_string()];
    let mut at = g;
    while let Some(up) = parent.get(at) {
        p.push(up.to_string());
        at = up;
    }
    p.reverse();
    p
}

/// The key that identifies a person across sources: the username trimmed, in Unicode's
/// composed form (NFC), lower-cased.
pub fn person_key(username: &str) -> String {
    username.trim().nfc().collect::<String>().to_lowercase()
}

fn pick<'a>(
    candidates: &'a [(usize, MappedUser)],
    order: Option<&Vec<String>>,
    sources: &[SourceInput<'_>],
) -> &'a MappedUser {
    if let Some(order) = order {
        for wanted in order {
            if let Some((_, u)) = candidates.iter().find(|(s, _)| sources[*s].id == wanted) {
                return u;
            }
        }
    }
    &candidates[0].1
}

/// Builds the desired state from the sources, in directory order. Takes each source's users;
/// leaves groups and memberships in place for [`explain`]. A target's default groups are the
/// engine's to add: the desired state is the same whatever the target.
pub fn desired(sources: &mut [SourceInput<'_>], attribute_priority: &BTreeMap<String, Vec<String>>) -> Desired {
    let mut out = Desired::default();
    // Persons: every record, grouped by username (case-insensitive), in directory order.
    let mut candidates: BTreeMap<String, Vec<(usize, MappedUser)>> = BTreeMap::new();
    for (i, s) in sources.iter_mut().enumerate() {
        for u in std::mem::take(&mut s.data.users) {
            // One key per name as people read it: "José" typed (NFC) and "José" pasted from a
            // Mac (NFD) are one name, as are "Alice" and "alice"; two accounts would look the same.
            let key = person_key(&u.username);
            if key.is_empty() {
                out.warnings.push(format!(
                    "{}: user {} has an empty username and was skipped",
                    s.id, u.ext_id
                ));
                out.unresolved.insert((s.id.to_string(), u.ext_id));
                continue;
            }
            let list = candidates.entry(key.clone()).or_default();
            if let Some(at) = list.iter().position(|(src, _)| *src == i) {
                // The lower id keeps the name whatever order the export lists them in, so the
                // account never changes hands between runs; the other is reported and left out.
                let mut u = u;
                if u.ext_id < list[at].1.ext_id {
                    std::mem::swap(&mut list[at].1, &mut u);
                }
                out.warnings.push(format!(
                    "{}: users {} ('{}') and {} ('{}') both map to username '{key}' (names that differ only in case or Unicode form are one name); {} was skipped — give one of them another username",
                    s.id,
                    list[at].1.ext_id,
                    list[at].1.username,
                    u.ext_id,
                    u.username,
                    u.ext_id
                ));
                out.unresolved.insert((s.id.to_string(), u.ext_id));
                continue;
            }
            list.push((i, u));
        }
        out.warnings.append(&mut s.data.warnings);
        out.unresolved.extend(
            std::mem::take(&mut s.data.unmapped)
                .into_iter()
                .map(|id| (s.id.to_string(), id)),
        );
    }
    // One shared key per person: group member sets hold pointers, not copies.
    let mut by_record: Vec<HashMap<String, Arc<str>>> = vec![HashMap::new(); sources.len()];
    for (key, list) in candidates {
        let shared: Arc<str> = Arc::from(key.as_str());
        let first = &list[0].1;
        let email = pick(&list, attribute_priority.get("email"), sources).email.clone();
        let display_name = pick(&list, attribute_priority.get("display_name"), sources)
            .display_name
            .clone();
        let active = pick(&list, attribute_priority.get("active"), sources).active;
        let records = list
            .iter()
            .map(|(s, u)| (sources[*s].id.to_string(), u.ext_id.clone()))
            .collect();
        let username = first.username.trim().nfc().collect::<String>();
        for (s, u) in list {
            by_record[s].insert(u.ext_id, shared.clone());
        }
        out.persons.insert(
            key,
            Person {
                username,
                email,
                display_name,
                active,
                records,
            },
        );
    }
    // Groups: flatten each source's graph, then map ids to names and users to persons.
    for (i, s) in sources.iter().enumerate() {
        let (flat, cycles) = flatten(&s.data.memberships);
        for c in cycles {
            let names: Vec<&str> = c
                .iter()
                .map(|id| s.data.groups.get(id).map_or(id.as_str(), |(n, _)| n.as_str()))
                .collect();
            out.warnings.push(format!(
                "{}: nested groups form a cycle ({}); each membership is counted once",
                s.id,
                names.join(" ⊃ ")
            ));
        }
        for (gid, (_, names)) in &s.data.groups {
            let members = flat.get(gid.as_str());
            for name in names {
                let set = out.groups.entry(name.clone()).or_default();
                for uid in members.into_iter().flatten() {
                    if let Some(person) = by_record[i].get(*uid) {
                        set.insert(person.clone());
                    }
                }
            }
        }
    }
    out
}

/// Why the person `user` (lower case) is in `group`: "alice ∈ backend ∈ dev (hr)" — alice is in
/// backend, which is in dev, according to source hr. `default_groups` are the target's.
pub fn explain(
    sources: &[SourceInput<'_>],
    desired: &Desired,
    default_groups: &[String],
    group: &str,
    user: &str,
) -> Option<String> {
    let person = desired.persons.get(user)?;
    for s in sources {
        for (source, ext_id) in person.records.iter().filter(|(src, _)| src == s.id) {
            for (gid, _) in s
                .data
                .groups
                .iter()
                .filter(|(_, (_, names))| names.iter().any(|n| n == group))
            {
                if let Some(chain) = path(&s.data.memberships, gid, ext_id) {
                    let names: Vec<&str> = chain
                        .iter()
                        .rev()
                        .map(|g| s.data.groups.get(g).map_or(g.as_str(), |(n, _)| n.as_str()))
                        .collect();
                    return Some(if names.len() == 1 {
                        format!("direct member of {} in {source}", names[0])
                    } else {
                        format!("{user} ∈ {} ({source})", names.join(" ∈ "))
                    });
                }
            }
        }
    }
    default_groups
        .iter()
        .any(|g| g == group)
        .then(|| format!("{group} is a default group of the target"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(g: &str, member: &str, is_group: bool) -> MirrorMembership {
        MirrorMembership {
            group_id: g.into(),
            member_id: member.into(),
            member_is_group: is_group,
            removed: false,
        }
    }

    #[test]
    fn nesting_three_deep_with_paths_and_a_cycle() {
        let ms = vec![
            m("top", "mid", true),
            m("mid", "leaf", true),
            m("leaf", "alice", false),
            m("top", "bob", false),
            m("leaf", "top", true),
        ];
        let (flat, cycles) = flatten(&ms);
        let sorted = |g: &str| {
            let mut v = flat[g].clone();
            v.sort();
            v
        };
        assert_eq!(sorted("top"), ["alice", "bob"]);
        assert_eq!(sorted("mid"), ["alice", "bob"]);
        assert_eq!(sorted("leaf"), ["alice", "bob"]);
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        assert_eq!(path(&ms, "top", "alice").unwrap(), ["top", "mid", "leaf"]);
        assert_eq!(path(&ms, "top", "bob").unwrap(), ["top"]);
        assert_eq!(path(&ms, "mid", "bob").unwrap(), ["mid", "leaf", "top"]);
        assert_eq!(path(&ms, "top", "nobody"), None);
    }

    fn user(id: &str, name: &str, email: &str) -> MappedUser {
        MappedUser {
            ext_id: id.into(),
            username: name.into(),
            email: Some(email.into()),
            display_name: Some(name.into()),
            active: true,
        }
    }

    #[test]
    fn same_person_from_two_sources_is_one_user_with_attribute_priority() {
        let hr = Transformed {
            users: vec![user("h1", "Alice", "alice@hr")],
            ..Default::default()
        };
        let entra = Transformed {
            users: vec![user("e1", "alice", "alice@entra"), user("e2", "bob", "bob@entra")],
            ..Default::default()
        };
        let inputs = || {
            vec![
                SourceInput {
                    id: "hr",
                    data: Transformed {
                        users: hr.users.clone(),
                        ..Default::default()
                    },
                },
                SourceInput {
                    id: "entra",
                    data: Transformed {
                        users: entra.users.clone(),
                        ..Default::default()
                    },
                },
            ]
        };
        let d = desired(&mut inputs(), &BTreeMap::new());
        assert_eq!(d.persons.len(), 2);
        assert_eq!(d.persons["alice"].email.as_deref(), Some("alice@hr"));
        assert_eq!(
            d.persons["alice"].records,
            vec![("hr".into(), "h1".into()), ("entra".into(), "e1".into())]
        );
        let prio = BTreeMap::from([("email".to_string(), vec!["entra".to_string()])]);
        let d = desired(&mut inputs(), &prio);
        assert_eq!(d.persons["alice"].email.as_deref(), Some("alice@entra"));
        assert_eq!(d.persons["alice"].username, "Alice");
    }
}

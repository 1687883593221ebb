//! The merge stage: every source's transformed records become one desired state. The same
//! person from two sources (same username after transforms) is one Bitbucket user; each
//! attribute comes from the first source in its configured order, else in directory order.
//! Nested groups are flattened with cycle detection, and each nested membership keeps the path
//! that produced it.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use super::model::{Desired, Person};
use super::transform::{MappedUser, Transformed};
use crate::store::MirrorMembership;

/// One source's input to the merge, in directory order.
pub struct SourceInput<'a> {
    /// Source id.
    pub id: &'a str,
    /// Its records after transforms.
    pub data: Transformed,
}

/// Who a group contains, transitively: user id → path of group ids from the group down to the
/// group that holds the user directly (empty for a direct member).
pub type Flattened = HashMap<String, HashMap<String, Vec<String>>>;

/// Flattens nested groups. Returns the members of every group and the cycles found.
pub fn flatten(memberships: &[MirrorMembership]) -> (Flattened, Vec<Vec<String>>) {
    let mut users: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    for m in memberships {
        let list = if m.member_is_group { &mut children } else { &mut users };
        list.entry(m.group_id.as_str()).or_default().push(m.member_id.as_str());
    }
    let groups: HashSet<&str> = users.keys().chain(children.keys()).copied().collect();
    let mut out: Flattened = HashMap::with_capacity(groups.len());
    let mut cycles = Vec::new();
    for &root in &groups {
        let mut parent: HashMap<&str, &str> = HashMap::new();
        let mut seen: HashSet<&str> = HashSet::from([root]);
        let mut queue = VecDeque::from([root]);
        let mut members: HashMap<String, Vec<String>> = HashMap::new();
        while let Some(g) = queue.pop_front() {
            for &u in users.get(g).into_iter().flatten() {
                members
                    .entry(u.to_string())
                    .or_insert_with(|| if g == root { Vec::new() } else { path_to(&parent, g) });
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
        out.insert(root.to_string(), members);
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

/// Builds the desired state from the sources, in directory order.
pub fn desired(
    sources: Vec<SourceInput<'_>>,
    attribute_priority: &BTreeMap<String, Vec<String>>,
    default_groups: &[String],
) -> Desired {
    let mut out = Desired::default();
    // Persons: every record, grouped by username (case-insensitive), in directory order.
    let mut candidates: BTreeMap<String, Vec<(usize, MappedUser)>> = BTreeMap::new();
    let mut by_record: Vec<HashMap<String, String>> = Vec::with_capacity(sources.len());
    let mut sources = sources;
    for (i, s) in sources.iter_mut().enumerate() {
        let mut ids = HashMap::with_capacity(s.data.users.len());
        for u in std::mem::take(&mut s.data.users) {
            let key = u.username.trim().to_lowercase();
            if key.is_empty() {
                out.warnings.push(format!(
                    "{}: user {} has an empty username and was skipped",
                    s.id, u.ext_id
                ));
                continue;
            }
            let list = candidates.entry(key.clone()).or_default();
            if list.iter().any(|(src, _)| *src == i) {
                out.warnings.push(format!(
                    "{}: users {} and {} both map to username '{key}'; {} was skipped",
                    s.id,
                    list.iter()
                        .find(|(src, _)| *src == i)
                        .map(|(_, x)| x.ext_id.as_str())
                        .unwrap_or(""),
                    u.ext_id,
                    u.ext_id
                ));
                continue;
            }
            ids.insert(u.ext_id.clone(), key);
            list.push((i, u));
        }
        by_record.push(ids);
        out.warnings.append(&mut s.data.warnings);
    }
    for (key, list) in candidates {
        let first = &list[0].1;
        let email = pick(&list, attribute_priority.get("email"), &sources).email.clone();
        let display_name = pick(&list, attribute_priority.get("display_name"), &sources)
            .display_name
            .clone();
        let active = pick(&list, attribute_priority.get("active"), &sources).active;
        let records = list
            .iter()
            .map(|(s, u)| (sources[*s].id.to_string(), u.ext_id.clone()))
            .collect();
        out.persons.insert(
            key,
            Person {
                username: first.username.trim().to_string(),
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
            if names.is_empty() {
                continue;
            }
            let members = flat.get(gid);
            for name in names {
                let set = out.groups.entry(name.clone()).or_default();
                for (uid, path) in members.into_iter().flatten() {
                    let Some(person) = by_record[i].get(uid) else { continue };
                    set.insert(person.clone());
                    if !path.is_empty() {
                        // "alice ∈ backend ∈ dev (hr)": alice is in backend, which is in dev.
                        let chain: Vec<&str> = path
                            .iter()
                            .rev()
                            .map(|g| s.data.groups.get(g).map_or(g.as_str(), |(n, _)| n.as_str()))
                            .collect();
                        out.lineage
                            .entry((name.clone(), person.clone()))
                            .or_insert_with(|| format!("{person} ∈ {} ({})", chain.join(" ∈ "), s.id));
                    }
                }
            }
        }
    }
    for g in default_groups {
        let set = out.groups.entry(g.clone()).or_default();
        for (key, p) in &out.persons {
            if p.active {
                set.insert(key.clone());
                out.lineage
                    .entry((g.clone(), key.clone()))
                    .or_insert_with(|| "default group of the target".into());
            }
        }
    }
    out
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
        assert_eq!(flat["top"]["bob"], Vec::<String>::new());
        assert_eq!(flat["top"]["alice"], vec!["top", "mid", "leaf"]);
        assert_eq!(flat["mid"]["bob"], vec!["mid", "leaf", "top"]);
        assert_eq!(flat["leaf"].len(), 2);
        assert_eq!(cycles.len(), 1, "{cycles:?}");
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
        let d = desired(inputs(), &BTreeMap::new(), &[]);
        assert_eq!(d.persons.len(), 2);
        assert_eq!(d.persons["alice"].email.as_deref(), Some("alice@hr"));
        assert_eq!(
            d.persons["alice"].records,
            vec![("hr".into(), "h1".into()), ("entra".into(), "e1".into())]
        );
        let prio = BTreeMap::from([("email".to_string(), vec!["entra".to_string()])]);
        let d = desired(inputs(), &prio, &[]);
        assert_eq!(d.persons["alice"].email.as_deref(), Some("alice@entra"));
        assert_eq!(d.persons["alice"].username, "Alice");
    }
}

//! Directory (`/ui/directory`): people and groups as Roster sees them after the merge (as the
//! last run computed them), which source and rule each came from (the sources' transform
//! chains over their mirrors, as `POST /api/v1/sources/{id}/preview` runs them), "why is alice
//! in dev" as the path through nested groups (`GET /api/v1/directory/why`), and the assignment
//! table: each Bitbucket group the store knows of, managed by which source and rule, or left
//! alone.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::Query;
use serde::Deserialize;

use roster_directory::transform::{StepTrace, Traces};

use super::format::{When, when};
use super::{Chrome, Nav, Ui, UiResult};

/// How many people and groups the page lists (a filter narrows them).
const SHOWN: usize = 200;

/// Where a record came from: the source and the rule that decided.
#[derive(Debug, Clone)]
pub struct Origin {
    source: String,
    rule: String,
}

/// A person after the merge.
pub struct PersonLine {
    username: String,
    display_name: String,
    email: String,
    active: bool,
    origins: Vec<Origin>,
    groups: usize,
}

/// A group after the merge.
pub struct GroupLine {
    name: String,
    members: usize,
    origins: Vec<Origin>,
}

/// One row of the assignment table.
pub struct Assignment {
    target: String,
    group: String,
    managed: bool,
    how: String,
}

/// The directory page.
#[derive(Template, WebTemplate)]
#[template(path = "directory.html")]
pub struct DirectoryPage {
    chrome: Chrome,
    computed: Option<When>,
    q: String,
    people: Vec<PersonLine>,
    people_total: usize,
    groups: Vec<GroupLine>,
    groups_total: usize,
    assignments: Vec<Assignment>,
    warnings: Vec<String>,
    why_user: String,
    why_group: String,
    why: Option<String>,
}

/// The page's query: a filter and a "why" question.
#[derive(Debug, Default, Deserialize)]
pub struct DirectoryQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    group: String,
}

/// The rule a chain's last deciding step gave, or `as the source reported it`.
fn rule_of(steps: &[StepTrace]) -> String {
    steps
        .iter()
        .rev()
        .find_map(|s| s.reason.as_ref().map(|r| format!("{}: {r}", s.plugin)))
        .unwrap_or_else(|| "as the source reported it (no transform)".into())
}

/// Per source: user id → rule, and group name after the chain → rules.
type Rules = (HashMap<(String, String), String>, BTreeMap<String, Vec<Origin>>);

fn rules_of(per_source: &[(String, Traces)]) -> Rules {
    let mut users = HashMap::new();
    let mut groups: BTreeMap<String, Vec<Origin>> = BTreeMap::new();
    for (source, t) in per_source {
        for u in &t.users {
            users.insert((source.clone(), u.id.clone()), rule_of(&u.steps));
        }
        for g in &t.groups {
            for name in &g.after {
                let rule = if g.after.len() == 1 && *name == g.before {
                    format!("{} ({})", g.before, rule_of(&g.steps))
                } else {
                    format!("from {} ({})", g.before, rule_of(&g.steps))
                };
                groups.entry(name.to_lowercase()).or_default().push(Origin {
                    source: source.clone(),
                    rule,
                });
            }
        }
    }
    (users, groups)
}

/// `GET /ui/directory`.
pub async fn page(ui: Ui, Query(q): Query<DirectoryQuery>) -> UiResult<DirectoryPage> {
    let service = ui.service();
    let config = service.config();
    let loaded = service.store.blocking(|store| store.load_desired()).await?;
    let mut warnings = Vec::new();
    // Each enabled source's chain over its mirror: which rule made each record what it is.
    let mut per_source = Vec::new();
    for s in config.sources.iter().filter(|s| s.enabled) {
        match service.preview_chain(&s.id, None, None).await {
            Ok(t) => per_source.push((s.id.clone(), t)),
            Err(e) => warnings.push(format!("source '{}': its rules cannot be shown: {e}", s.id)),
        }
    }
    let (user_rules, group_rules) = rules_of(&per_source);
    let needle = q.q.trim().to_lowercase();
    let hit = |fields: &[&str]| needle.is_empty() || fields.iter().any(|f| f.to_lowercase().contains(&needle));

    let (mut people, mut groups, computed, mut desired_groups) = (Vec::new(), Vec::new(), None, BTreeSet::new());
    let (mut people_total, mut groups_total) = (0, 0);
    let computed = match &loaded {
        Some((desired, at)) => {
            warnings.extend(desired.warnings.iter().cloned());
            let mut counts: HashMap<&str, usize> = HashMap::new();
            for members in desired.groups.values() {
                for m in members {
                    *counts.entry(&**m).or_default() += 1;
                }
            }
            for (key, p) in &desired.persons {
                let (email, display) = (
                    p.email.as_deref().unwrap_or(""),
                    p.display_name.as_deref().unwrap_or(""),
                );
                if !hit(&[&p.username, email, display]) {
                    continue;
                }
                people_total += 1;
                if people.len() < SHOWN {
                    people.push(PersonLine {
                        username: p.username.clone(),
                        display_name: display.to_string(),
                        email: email.to_string(),
                        active: p.active,
                        origins: p
                            .records
                            .iter()
                            .map(|(source, id)| Origin {
                                source: source.clone(),
                                rule: user_rules
                                    .get(&(source.clone(), id.clone()))
                                    .cloned()
                                    .unwrap_or_else(|| format!("record {id}")),
                            })
                            .collect(),
                        groups: counts.get(key.as_str()).copied().unwrap_or(0),
                    });
                }
            }
            for (name, members) in &desired.groups {
                desired_groups.insert(name.to_lowercase());
                if !hit(&[name]) {
                    continue;
                }
                groups_total += 1;
                if groups.len() < SHOWN {
                    groups.push(GroupLine {
                        name: name.clone(),
                        members: members.len(),
                        origins: group_rules.get(&name.to_lowercase()).cloned().unwrap_or_default(),
                    });
                }
            }
            when(*at)
        }
        None => computed,
    };

    let mut assignments = Vec::new();
    for t in &config.targets {
        let id = t.id.clone();
        let managed: BTreeSet<String> = service
            .store
            .blocking(move |store| store.managed_groups(&id))
            .await?
            .into_iter()
            .collect();
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        for n in managed
            .iter()
            .chain(desired_groups.iter())
            .chain(&t.default_groups)
            .chain(&t.new_user_groups)
            .chain(&t.protected_groups)
        {
            names.entry(n.to_lowercase()).or_insert_with(|| n.clone());
        }
        for (key, name) in names {
            let is = |list: &[String]| list.iter().any(|g| g.eq_ignore_ascii_case(&name));
            let (is_managed, how) = if is(&t.protected_groups) {
                (false, "left alone: listed in the target's protected_groups".to_string())
            } else if let Some(o) = group_rules.get(&key) {
                let by: Vec<String> = o.iter().map(|o| format!("source {}, {}", o.source, o.rule)).collect();
                (true, format!("managed: {}", by.join("; ")))
            } else if is(&t.default_groups) {
                (
                    true,
                    "managed: a default group (every active synced person)".to_string(),
                )
            } else if desired_groups.contains(&key) {
                (true, "managed: from the sources (no rule recorded)".to_string())
            } else if is(&t.new_user_groups) {
                (
                    false,
                    "left alone after account creation: a new_user_groups starting group".to_string(),
                )
            } else if managed.iter().any(|m| m.eq_ignore_ascii_case(&name)) {
                (
                    true,
                    "managed by Roster, but no source has it now: its members are removed at the next run".to_string(),
                )
            } else {
                (false, "left alone".to_string())
            };
            if hit(&[&name]) {
                assignments.push(Assignment {
                    target: t.id.clone(),
                    group: name,
                    managed: is_managed,
                    how,
                });
            }
        }
    }

    let why = if q.user.trim().is_empty() || q.group.trim().is_empty() {
        None
    } else {
        Some(
            service
                .runner()
                .why(q.user.trim(), q.group.trim())
                .await
                .unwrap_or_else(|e| format!("cannot tell: {e}")),
        )
    };
    Ok(DirectoryPage {
        chrome: ui.chrome("Directory", Nav::Directory),
        computed,
        q: q.q,
        people,
        people_total,
        groups,
        groups_total,
        assignments,
        warnings,
        why_user: q.user,
        why_group: q.group,
        why,
    })
}

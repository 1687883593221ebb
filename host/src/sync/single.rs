//! Single-user sync (provision on demand, the hook a login flow calls): an incremental fetch of
//! the sources, the desired state, then a read, a plan and an apply restricted to one person —
//! their account, their groups, the groups that license — in seconds, whatever the size of the
//! directory or of Bitbucket.
//!
//! The restriction is what keeps it safe: the plan only ever sees this person's identities and
//! this person's memberships, so it cannot touch anyone else.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;

use super::model::{Desired, TargetState};
use super::{Engine, Progress, RunReport, Summary, SyncError, SyncOptions, guard, merge, plan, plan_hash, transform};

/// Which person to sync: an IdP id (optionally of one source) or a username.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, utoipa::ToSchema)]
pub struct UserKey {
    /// The IdP's immutable id of the user.
    pub id: Option<String>,
    /// The username (after transforms, as in Bitbucket) or as the IdP reports it.
    pub username: Option<String>,
    /// Only this source (and only its fetch).
    pub source: Option<String>,
}

impl Engine {
    /// Fetches (incrementally), plans and applies for one person.
    pub async fn sync_user(
        &self,
        key: &UserKey,
        opts: &SyncOptions,
        progress: &dyn Progress,
    ) -> Result<RunReport, SyncError> {
        if key.id.is_none() && key.username.is_none() {
            return Err(SyncError::Config("give the user's `id` or `username`".into()));
        }
        let enabled: Vec<&crate::config::SourceConfig> = self.config.sources.iter().filter(|s| s.enabled).collect();
        let wanted = match &key.source {
            Some(s) => self.wanted_sources(&enabled, std::slice::from_ref(s))?,
            None => enabled.iter().map(|s| s.id.clone()).collect(),
        };
        let target_id = self.target.id.clone();
        let run_id = match opts.run_id {
            Some(id) => id,
            None => self
                .store
                .create_run(&opts.trigger, "single-user", &target_id, &wanted)?,
        };
        let _lock = self.hold_target(run_id, &opts.trigger, &opts.actor)?;
        self.client.reset_counts();
        let result = self
            .sync_user_stages(run_id, key, &enabled, &wanted, opts, progress)
            .await;
        if let Err(e) = &result {
            let summary = serde_json::json!({"error": e.to_string()});
            self.store
                .finish_run(run_id, "failed", None, &summary, Some(&e.to_string()))?;
        }
        result
    }

    async fn sync_user_stages(
        &self,
        run_id: i64,
        key: &UserKey,
        enabled: &[&crate::config::SourceConfig],
        wanted: &[String],
        opts: &SyncOptions,
        progress: &dyn Progress,
    ) -> Result<RunReport, SyncError> {
        let mut summary = Summary::default();
        self.fetch_sources(run_id, enabled, wanted, true, &mut summary, progress)
            .await;
        let incomplete = summary.fetch.iter().any(|f| !f.complete);
        let Some((person_key, desired)) = self.desired_for(enabled, key, &mut summary.stage_ms).await? else {
            return Err(SyncError::NotFound(format!(
                "no user {} in the sources{}",
                key.id.as_deref().or(key.username.as_deref()).unwrap_or_default(),
                if incomplete {
                    " (a fetch did not complete; see the run)"
                } else {
                    ""
                }
            )));
        };
        let t = Instant::now();
        let target_id = self.target.id.clone();
        let person = &desired.persons[&person_key];
        let identities =
            self.store
                .identities_matching(&target_id, std::slice::from_ref(&person_key), &person.records)?;
        let mut names: BTreeSet<String> = identities.iter().map(|i| i.username.clone()).collect();
        names.insert(person_key.clone());
        let managed: BTreeSet<String> = self.store.managed_groups(&target_id)?.into_iter().collect();
        let target = self.read_person(&names, &desired, &managed).await?;
        // Groups that concern this person: the ones they should be in, and the ones they are in.
        let mut desired = desired;
        desired
            .groups
            .retain(|g, m| !m.is_empty() || target.members.get(g).is_some_and(|x| !x.is_empty()));
        summary.stage_ms.insert("read".into(), super::ms(t));
        let t = Instant::now();
        let mut draft = plan::plan(&plan::PlanInput {
            desired: &desired,
            target: &target,
            identities: &identities,
            managed: &managed,
            policy: &self.target,
            me: self.client.username(),
        });
        if incomplete {
            draft
                .ops
                .retain(|o| !o.op.is_deprovision() && !matches!(o.op, super::model::Op::RemoveMember { .. }));
        }
        for o in &draft.ops {
            *summary.planned.entry(o.op.kind().to_string()).or_default() += 1;
        }
        summary.skipped = std::mem::take(&mut draft.skipped);
        summary.collisions = std::mem::take(&mut draft.collisions);
        summary.stage_ms.insert("plan".into(), super::ms(t));
        // One person: no deletion threshold, but never over the licence.
        let verdict = guard::judge(
            &draft.ops,
            &target,
            0,
            &crate::config::Threshold {
                count: u32::MAX,
                percent: 100.0,
            },
        );
        let hash = plan_hash(&draft.ops);
        let plan_id = format!("{run_id}-{}", &hash[..8]);
        let refused = verdict.refused.clone();
        let state = if refused.is_some() { "refused" } else { "approved" };
        self.save_plan(&plan_id, run_id, &hash, state, &verdict, &draft.ops)?;
        summary.guard = Some(verdict);
        let run_state = if let Some(why) = refused {
            summary.warnings.push(format!("plan refused: {why}"));
            "refused"
        } else {
            self.apply_plan(run_id, &plan_id, &draft.ops, &opts.actor, &mut summary, progress)
                .await?;
            if summary.applied.failed > 0 || incomplete {
                "partial"
            } else {
                "succeeded"
            }
        };
        self.finish(run_id, run_state, &plan_id, &mut summary)?;
        self.store.audit(
            &opts.actor,
            opts.origin(),
            "sync.user",
            &person_key,
            Some(&format!("run {run_id}: {run_state}")),
        )?;
        Ok(RunReport {
            run_id,
            state: run_state.into(),
            plan_id: Some(plan_id),
            plan_hash: Some(hash),
            summary,
        })
    }

    /// This person's desired state, computed from the records that may be theirs rather than
    /// the whole directory: records with the id, records whose username, email or attributes
    /// contain the name (then the username the transforms gave them, for their records in
    /// other sources), records already linked to them; every group and every group-in-group
    /// membership, so nesting, group rules and `required_groups` decide as in a full run. A
    /// person those records do not reveal (a mapping that invents names) is looked for in the
    /// whole directory.
    async fn desired_for(
        &self,
        enabled: &[&crate::config::SourceConfig],
        key: &UserKey,
        stage_ms: &mut BTreeMap<String, u64>,
    ) -> Result<Option<(String, Desired)>, SyncError> {
        let mut needles: BTreeSet<String> = key
            .username
            .iter()
            .chain(key.id.iter())
            .map(|n| n.trim().to_lowercase())
            .filter(|n| !n.is_empty())
            .collect();
        for _ in 0..2 {
            let records: Vec<(String, String)> = key
                .id
                .iter()
                .flat_map(|id| enabled.iter().map(move |s| (s.id.clone(), id.clone())))
                .collect();
            let names: Vec<String> = needles.iter().cloned().collect();
            let linked = self.store.identities_matching(&self.target.id, &names, &records)?;
            let t = Instant::now();
            let mut inputs = Vec::new();
            for s in enabled {
                let ids: Vec<String> = key
                    .id
                    .iter()
                    .cloned()
                    .chain(linked.iter().filter(|i| i.source == s.id).map(|i| i.ext_id.clone()))
                    .collect();
                let users = self.store.mirror_users_matching(&s.id, &ids, &names)?;
                let user_ids: Vec<String> = users.iter().map(|u| u.ext_id.clone()).collect();
                let groups = self.store.mirror_groups(&s.id)?;
                let memberships = self.store.mirror_memberships_of(&s.id, &user_ids)?;
                let data = transform::run_chain(&self.chain_context(), s, users, groups, memberships).await?;
                inputs.push(merge::SourceInput { id: &s.id, data });
            }
            *stage_ms.entry("transform".into()).or_default() += super::ms(t);
            let t = Instant::now();
            let desired = merge::desired(
                &mut inputs,
                &self.target.attribute_priority,
                &self.target.default_groups,
            );
            *stage_ms.entry("merge".into()).or_default() += super::ms(t);
            let Some((person_key, found)) = restrict(&desired, key) else {
                break;
            };
            // Found by id or by a raw name: once more with the username the transforms gave,
            // which finds the person's records in the other sources.
            if needles.insert(person_key.clone()) {
                continue;
            }
            return Ok(Some((person_key, found)));
        }
        let desired = self.desired(enabled, stage_ms).await?;
        Ok(restrict(&desired, key))
    }

    /// Bitbucket as far as these accounts are concerned: the accounts, their groups, the groups
    /// the person should be in or that license, with only these accounts as members.
    async fn read_person(
        &self,
        names: &BTreeSet<String>,
        desired: &Desired,
        managed: &BTreeSet<String>,
    ) -> Result<TargetState, SyncError> {
        let c = &self.client;
        let (groups, group_perms, user_perms, license) =
            tokio::try_join!(c.groups(), c.group_permissions(), c.user_permissions(), c.license())?;
        let mut state = TargetState {
            groups: groups.into_iter().collect(),
            group_perms: group_perms.into_iter().map(|p| (p.group.name, p.permission)).collect(),
            license,
            ..TargetState::default()
        };
        let mut wanted: BTreeSet<String> = desired.groups.keys().cloned().collect();
        wanted.extend(state.group_perms.keys().cloned());
        for name in names {
            let Some(user) = c.user(name).await? else { continue };
            let lower = user.name.to_lowercase();
            let member_of: HashSet<String> = c.user_groups(&user.name).await?.into_iter().collect();
            let shared: Arc<str> = Arc::from(lower.as_str());
            for g in member_of.iter().filter(|g| managed.contains(*g) || wanted.contains(*g)) {
                state.members.entry(g.clone()).or_default().insert(shared.clone());
            }
            if let Some(p) = user_perms.iter().find(|p| p.user.name.to_lowercase() == lower) {
                state.user_perms.insert(lower.clone(), p.permission.clone());
            }
            state.users.insert(lower, user);
        }
        for g in wanted {
            if state.groups.contains(&g) {
                state.members.entry(g).or_default();
            }
        }
        Ok(state)
    }
}

/// The desired state cut down to the person `key` names: that person, and each group with
/// that person alone (default groups included). `None` when no source has them.
fn restrict(desired: &Desired, key: &UserKey) -> Option<(String, Desired)> {
    let wanted_id = key.id.as_deref();
    let wanted_name = key.username.as_deref().map(str::to_lowercase);
    let (person_key, person) = desired.persons.iter().find(|(k, p)| {
        let by_id = wanted_id.is_some_and(|id| {
            p.records
                .iter()
                .any(|(s, e)| e == id && key.source.as_deref().is_none_or(|want| want == s))
        });
        let by_name = wanted_name.as_deref().is_some_and(|n| *k == n);
        by_id || by_name
    })?;
    let mut out = Desired::default();
    let shared: Arc<str> = Arc::from(person_key.as_str());
    let mut groups: BTreeMap<String, BTreeSet<Arc<str>>> = BTreeMap::new();
    for (g, members) in &desired.groups {
        let set = groups.entry(g.clone()).or_default();
        if members.contains(person_key.as_str()) {
            set.insert(shared.clone());
        }
    }
    out.persons.insert(person_key.clone(), person.clone());
    out.groups = groups.into_iter().collect();
    out.default_groups = desired.default_groups.clone();
    Some((person_key.clone(), out))
}

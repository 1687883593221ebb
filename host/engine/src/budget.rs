//! A plan against a target that meters calls over a rolling window: how many calls the plan
//! needs, and how many runs and how long it takes when it does not fit what the window allows
//! now. A run applies what the budget allows and pauses; the next one continues.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::model::{Op, PlannedOp};
use crate::target::{CallBudget, TargetState};

/// When a plan is done, given the target's call budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Eta {
    /// Calls the plan's operations need (an estimate: one per operation, a deactivation one per
    /// group it leaves).
    pub calls_needed: u64,
    /// Calls the target allows per window.
    pub calls_per_window: u64,
    /// The window, in seconds.
    pub window_secs: u64,
    /// Calls the target allowed when the plan was made.
    pub available_now: u64,
    /// Calls a full read of the target took this run: each further run spends them again
    /// before it writes.
    pub read_calls: u64,
    /// Runs that apply the plan: this one, then one per window until it is done. None: never,
    /// since a read alone spends a whole window.
    pub runs_needed: Option<u64>,
    /// Seconds until the last of those runs can finish it (0: this run can; None: never).
    pub seconds_until_done: Option<u64>,
}

impl Eta {
    /// The ETA of a plan needing `calls_needed` calls under `budget`. A rolling window frees
    /// calls as they age out of it, so a full window per further run is the longest it takes;
    /// each further run reads the target again first, so it writes a window less that read.
    pub fn new(calls_needed: u64, budget: CallBudget) -> Eta {
        let rest = calls_needed.saturating_sub(budget.available_now);
        let per_run = budget.calls.saturating_sub(budget.read_calls);
        let windows = match (rest, per_run) {
            (0, _) => Some(0),
            (_, 0) => None,
            (rest, per_run) => Some(rest.div_ceil(per_run)),
        };
        Eta {
            calls_needed,
            calls_per_window: budget.calls,
            window_secs: budget.window_secs,
            available_now: budget.available_now,
            read_calls: budget.read_calls,
            runs_needed: windows.map(|w| 1 + w),
            seconds_until_done: windows.map(|w| w.saturating_mul(budget.window_secs)),
        }
    }

    /// Whether the plan fits what the target allows now.
    pub fn fits(&self) -> bool {
        self.calls_needed <= self.available_now
    }

    /// What to tell the administrator when the plan does not fit the budget available now.
    pub fn warning(&self, product: &str) -> Option<String> {
        if self.fits() {
            return None;
        }
        let (Some(runs), Some(secs)) = (self.runs_needed, self.seconds_until_done) else {
            return Some(format!(
                "the plan needs about {} call(s) and {product} allows {} per {}, but reading it takes {} of them: the plan cannot be finished; raise the call budget (hourly_budget) or manage fewer groups",
                self.calls_needed,
                self.calls_per_window,
                duration(self.window_secs),
                self.read_calls
            ));
        };
        Some(format!(
            "the plan needs about {} call(s) and {product} allows {} now ({} per {}): it is applied over {} runs, done in about {}; each run pauses when the budget is spent and the next one continues",
            self.calls_needed,
            self.available_now,
            self.calls_per_window,
            duration(self.window_secs),
            runs,
            duration(secs)
        ))
    }
}

/// `1 h 05 min`, `40 min`, `30 s`.
pub fn duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s} s"),
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m:02} min"),
    }
}

/// Calls `ops` need, counted against the target's memberships now (what a deactivation that
/// leaves every other group leaves).
pub fn calls_needed(ops: &[PlannedOp], target: &TargetState) -> u64 {
    // user → groups, built on the first deactivation that leaves other groups.
    let mut index: Option<HashMap<&str, Vec<&str>>> = None;
    ops.iter()
        .map(|o| {
            let other = match &o.op {
                Op::Deactivate {
                    user,
                    groups,
                    leave_other_groups: Some(keep),
                    ..
                } => {
                    let index = index.get_or_insert_with(|| {
                        let mut by_user: HashMap<&str, Vec<&str>> = HashMap::new();
                        for (g, members) in &target.members {
                            for m in members {
                                by_user.entry(&**m).or_default().push(g.as_str());
                            }
                        }
                        by_user
                    });
                    index.get(user.to_lowercase().as_str()).map_or(0, |of| {
                        of.iter()
                            .filter(|g| !groups.iter().any(|x| x == *g) && !keep.iter().any(|k| k == *g))
                            .count()
                    })
                }
                _ => 0,
            };
            o.op.estimated_calls(other)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use super::*;

    fn budget(calls: u64, available_now: u64) -> CallBudget {
        CallBudget {
            calls,
            window_secs: 3600,
            available_now,
            read_calls: 0,
        }
    }

    #[test]
    fn a_plan_within_the_budget_is_done_this_run() {
        let eta = Eta::new(400, budget(1000, 400));
        assert!(eta.fits());
        assert_eq!((eta.runs_needed, eta.seconds_until_done), (Some(1), Some(0)));
        assert_eq!(eta.warning("the target"), None);
    }

    #[test]
    fn a_plan_over_the_budget_takes_a_window_per_further_run() {
        // 300 now, then 1000 per hour: 2500 calls take this run and three more.
        let eta = Eta::new(2500, budget(1000, 300));
        assert!(!eta.fits());
        assert_eq!((eta.runs_needed, eta.seconds_until_done), (Some(4), Some(3 * 3600)));
        let w = eta.warning("the target").unwrap();
        assert!(
            w.contains("about 2500 call(s)")
                && w.contains("allows 300 now (1000 per 1 h)")
                && w.contains("over 4 runs, done in about 3 h"),
            "{w}"
        );
        // Nothing left now: this run pauses at once.
        let spent = Eta::new(1000, budget(1000, 0));
        assert_eq!((spent.runs_needed, spent.seconds_until_done), (Some(2), Some(3600)));
    }

    #[test]
    fn each_further_run_spends_a_read_before_it_writes() {
        // 2500 calls, 300 now, 1000 per hour of which a read takes 200: 2200 left at 800 a run.
        let eta = Eta::new(
            2500,
            CallBudget {
                read_calls: 200,
                ..budget(1000, 300)
            },
        );
        assert_eq!((eta.runs_needed, eta.seconds_until_done), (Some(4), Some(3 * 3600)));
        let more = Eta::new(
            2800,
            CallBudget {
                read_calls: 200,
                ..budget(1000, 300)
            },
        );
        assert_eq!(
            more.runs_needed,
            Some(5),
            "2400 left at 800 a run: three more, not 3 at 1000"
        );
    }

    #[test]
    fn a_read_that_spends_the_whole_window_can_never_finish_the_plan() {
        let eta = Eta::new(
            1500,
            CallBudget {
                read_calls: 1000,
                ..budget(1000, 100)
            },
        );
        assert_eq!((eta.runs_needed, eta.seconds_until_done), (None, None));
        let w = eta.warning("Bitbucket Cloud").unwrap();
        assert!(
            w.contains("reading it takes 1000 of them: the plan cannot be finished; raise the call budget"),
            "{w}"
        );
    }

    #[test]
    fn a_deactivation_counts_a_call_per_group_it_leaves() {
        let mut target = TargetState::default();
        for g in ["a", "b", "keep", "lic"] {
            target.members.insert(g.into(), BTreeSet::from([Arc::from("ann")]));
        }
        let op = |leave: Option<Vec<String>>, revoke| PlannedOp {
            op: Op::Deactivate {
                user: "Ann".into(),
                groups: vec!["lic".into()],
                revoke_permission: revoke,
                leave_other_groups: leave,
            },
            reason: String::new(),
        };
        let add = PlannedOp {
            op: Op::AddMembers {
                group: "a".into(),
                users: vec!["bob".into(), "cy".into()],
            },
            reason: String::new(),
        };
        assert_eq!(calls_needed(&[add.clone(), op(None, false)], &target), 2);
        // lic, then a and b (keep is kept), then the revocation.
        assert_eq!(calls_needed(&[add, op(Some(vec!["keep".into()]), true)], &target), 5);
        assert_eq!(duration(3900), "1 h 05 min");
        assert_eq!(duration(2400), "40 min");
    }
}

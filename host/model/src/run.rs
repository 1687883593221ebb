//! What a run is, in types: how it was started, what it does, how it ended. Stored as the
//! kebab-case words below (the `runs` table and the API use them), typed everywhere else.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Defines a string-backed enum: serde, `as_str`, `Display` and `FromStr` from one word list.
// `$word` is a `tt`, not a `literal`: a `literal` fragment reaches derives wrapped in an invisible
// group, which serde sees through but utoipa does not, so the OpenAPI document named the
// variants instead of their words.
macro_rules! words {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $word:tt,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $word)] $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The stored word.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)+
                }
            }
        }

        // Compared with the stored word, as tests and clients read it.
        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($word => Ok($name::$variant),)+
                    other => Err(format!(
                        "`{other}` is not a {}; one of: {}",
                        stringify!($name),
                        [$($word),+].join(", ")
                    )),
                }
            }
        }
    };
}

words! {
    /// Where a run is, or how it ended.
    pub enum RunState {
        /// In progress.
        Running = "running",
        /// Every operation applied.
        Succeeded = "succeeded",
        /// Applied, but some operations failed or a source's fetch did not complete.
        Partial = "partial",
        /// A dry run: planned, nothing written.
        Planned = "planned",
        /// Held for approval by the threshold.
        Held = "held",
        /// Refused (over the licence, or the target was busy with another run).
        Refused = "refused",
        /// Could not run (no source could be read, the target could not be read).
        Failed = "failed",
        /// Stopped on request.
        Cancelled = "cancelled",
        /// Stopped when the target's call budget ran out (Bitbucket Cloud's hourly meter); the
        /// next run continues the plan.
        Paused = "paused",
        /// Its process ended without finishing it (killed, crashed, restarted).
        Interrupted = "interrupted",
    }
}

impl RunState {
    /// True once the run has ended (anything but `running`).
    pub fn is_final(self) -> bool {
        self != RunState::Running
    }

    /// Ended having applied its plan (possibly partly, a paused run's up to where the target's
    /// budget ran out): what counts as a successful sync.
    pub fn applied(self) -> bool {
        matches!(self, RunState::Succeeded | RunState::Partial | RunState::Paused)
    }
}

words! {
    /// What a run does.
    pub enum RunMode {
        /// Every source read in full, then plan and apply.
        Full = "full",
        /// Delta tokens used where sources have them, then plan and apply.
        Incremental = "incremental",
        /// Every source read in full, plan only.
        DryRun = "dry-run",
        /// Sources read into their mirrors only.
        Fetch = "fetch",
        /// Sources read incrementally into their mirrors only.
        FetchIncremental = "fetch-incremental",
        /// One person: fetch incrementally, plan and apply for them alone.
        SingleUser = "single-user",
        /// An approved plan applied.
        ApplyPlan = "apply-plan",
    }
}

words! {
    /// What started a run.
    pub enum Trigger {
        /// `roster sync` and the other commands.
        Cli = "cli",
        /// The REST API.
        Api = "api",
        /// The scheduler.
        Schedule = "schedule",
        /// An approval of a held plan.
        Approval = "approval",
        /// Single-user sync (a login hook, the API).
        SingleUser = "single-user",
        /// `roster demo`.
        Demo = "demo",
        /// Changes an identity provider pushed (SCIM), once they settled.
        Push = "push",
    }
}

words! {
    /// Where a plan is.
    pub enum PlanState {
        /// Planned by a dry run; never applied.
        Draft = "draft",
        /// Waiting for an approval (the threshold tripped).
        Held = "held",
        /// Approved (by policy or by an administrator), being applied.
        Approved = "approved",
        /// Applied.
        Applied = "applied",
        /// Rejected by an administrator.
        Rejected = "rejected",
        /// Refused by the guard (over the licence).
        Refused = "refused",
        /// A newer plan of the same target replaced it before it was decided.
        Superseded = "superseded",
    }
}

words! {
    /// What became of one operation of a plan.
    pub enum Outcome {
        /// Applied (or already true).
        Done = "done",
        /// The target refused it or could not be reached.
        Failed = "failed",
        /// Not attempted (the run was held, cancelled or a dry run).
        NotApplied = "not-applied",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_unknown_words_are_named() {
        for s in RunState::ALL {
            assert_eq!(s.as_str().parse::<RunState>(), Ok(*s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for m in RunMode::ALL {
            assert_eq!(m.as_str().parse::<RunMode>(), Ok(*m));
        }
        let err = "finished".parse::<RunState>().unwrap_err();
        assert!(err.contains("running, succeeded"), "{err}");
    }
}

//! What the connector remembers between `fetch` calls (the cursor) and between runs (the
//! state in the delta token), both kept by the SDK's driver.
//!
//! Group entries name their members by DN (`member`, `uniqueMember`) or user name
//! (`memberUid`), Roster names them by id: the [`Index`] maps one to the other for every user
//! and group read. It lives in the cursor during a fetch and in the delta token between runs,
//! with each group's members as index numbers, so an incremental fetch can say which
//! memberships a changed group lost.

use std::collections::{BTreeMap, BTreeSet};

use roster_sdk::ldap::{GeneralizedTime, Paging};
use serde::{Deserialize, Serialize};

/// Every user and group read: what their members are matched against.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// Users as `[dn key, user-name key, id]`; a user's number is its place here.
    pub users: Vec<(String, String, String)>,
    /// Groups as `[dn key, id]`; a group's number is its place here.
    pub groups: Vec<(String, String)>,
    /// Each group's direct members by number (kept when incremental synchronisation is on),
    /// in the order of `groups`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Members>,
}

/// A group's direct members by number, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Members {
    /// Users.
    #[serde(default, rename = "u", skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<u32>,
    /// Groups.
    #[serde(default, rename = "g", skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<u32>,
}

/// The high-water mark an incremental fetch continues from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Mark {
    /// OpenLDAP: the newest `modifyTimestamp` read, and the window before it the next fetch
    /// reads again. An entry changed while a fetch ran may be older than the newest one that
    /// fetch read (read early on, changed before a later page), so asking `>=` the newest
    /// would never return it; the window covers the fetch's duration and a margin. Entries in
    /// the window read unchanged are recognised by digest and skipped.
    Timestamp {
        /// `YYYYMMDDHHMMSSZ`; `None` when no entry carried one.
        at: Option<String>,
        /// Where the next fetch starts (`>=`): `at` less the last fetch's duration and
        /// `change_overlap_seconds`. `None` (a token from before the window): `at`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// `u:<id>` / `g:<id>` → digest of what was read, for the entries in `[from, at]`.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        seen: BTreeMap<String, u64>,
    },
    /// Active Directory: the domain controller's `highestCommittedUSN` before the read, with
    /// the DC's name and `invocationID` (USNs are per DC and restart after a restore).
    Usn {
        /// `highestCommittedUSN`.
        usn: u64,
        /// `dnsHostName` of the DC.
        dc: String,
        /// The DC's `invocationID` as a GUID string.
        invocation: String,
    },
    /// No mark could be taken; the reason says why the next fetch reads in full.
    Unavailable {
        /// Why.
        why: String,
    },
}

impl Mark {
    /// The filter clause that selects what changed since this mark.
    pub fn since(&self) -> Option<String> {
        match self {
            Mark::Timestamp { at: Some(at), from, .. } => {
                Some(format!("(modifyTimestamp>={})", from.as_deref().unwrap_or(at)))
            }
            // At the largest USN there is, the entry at it is read again rather than never.
            Mark::Usn { usn, .. } => Some(format!("(uSNChanged>={})", usn.saturating_add(1))),
            _ => None,
        }
    }

    /// Notes an entry's `modifyTimestamp` (OpenLDAP): the newest read is the mark.
    pub fn observe(&mut self, at: &str) {
        if let Mark::Timestamp { at: newest, .. } = self
            && newest.as_deref().is_none_or(|n| at > n)
        {
            *newest = Some(at.to_string());
        }
    }

    /// True when the entry `key` read with `digest` is one the last fetch read as it is now.
    pub fn already_read(&self, key: &str, digest: u64) -> bool {
        matches!(self, Mark::Timestamp { seen, .. } if seen.get(key) == Some(&digest))
    }
}

/// The state an incremental fetch continues from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaState {
    /// Where the changes start.
    pub mark: Mark,
    /// Users, groups and members as the last fetch left them.
    pub index: Index,
}

/// A fetch's pass over the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "pass", rename_all = "kebab-case")]
pub enum Pass {
    /// The users (in full, or those changed).
    Users {
        /// The search's paging.
        paging: Paging,
    },
    /// The groups' DNs and ids only, so a member that is a group listed later is known.
    GroupIds {
        /// The search's paging.
        paging: Paging,
    },
    /// The groups with their members.
    Groups {
        /// The search's paging.
        paging: Paging,
    },
}

/// Full or incremental.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum Mode {
    /// Everything in scope.
    Full,
    /// What changed since `since`.
    Incremental {
        /// The mark the last fetch left.
        since: Mark,
    },
}

/// Where a fetch stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cursor {
    /// The pass.
    pub pass: Pass,
    /// Full or incremental.
    pub mode: Mode,
    /// The mark the next incremental fetch will continue from.
    pub mark: Mark,
    /// Users and groups read (and, incrementally, before).
    pub index: Index,
    /// Groups (by number) written in this fetch: a search started again after its cookie
    /// expired lists them again.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub written: BTreeSet<u32>,
    /// Entries skipped for want of an id or a name, and member values that named nothing in
    /// scope; logged once when the fetch ends.
    #[serde(default)]
    pub skipped: Skipped,
    /// When the fetch began (Unix seconds, Roster's clock): its duration widens the window
    /// the next incremental fetch reads again. A cursor without it gives a window back to
    /// 1970, which reads too much rather than too little.
    #[serde(default)]
    pub started: i64,
    /// OpenLDAP: `key` → (`modifyTimestamp` in Unix seconds, digest) of every entry read whose
    /// digest may be kept; the fetch's end keeps those inside the window in the mark.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub window: BTreeMap<String, (i64, u64)>,
}

/// What a fetch skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// Entries without a value of the id attribute.
    #[serde(default)]
    pub no_id: u64,
    /// Entries without a user or group name.
    #[serde(default)]
    pub no_name: u64,
    /// Member values (DNs, `memberUid`) matching no user or group in scope.
    #[serde(default)]
    pub members: u64,
    /// Entries whose `modifyTimestamp` lies ahead of Roster's clock, not taken as the mark.
    #[serde(default)]
    pub future: u64,
    /// The DN of the first of them, for the warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub future_dn: Option<String>,
}

impl Cursor {
    /// The state the finished fetch leaves at `now` (Unix seconds): the mark's window opens
    /// `overlap` seconds and the fetch's duration before the newest timestamp read.
    pub fn into_state(self, now: i64, overlap: u32) -> DeltaState {
        let mut mark = self.mark;
        if let Mark::Timestamp {
            at: Some(at),
            from,
            seen,
        } = &mut mark
            && let Some(newest) = GeneralizedTime::parse(at)
        {
            let width = now
                .saturating_sub(self.started)
                .max(0)
                .saturating_add(i64::from(overlap));
            let start = newest.unix().saturating_sub(width);
            *from = Some(GeneralizedTime::from_unix(start).format());
            *seen = self
                .window
                .into_iter()
                .filter(|(_, (t, _))| *t >= start)
                .map(|(k, (_, d))| (k, d))
                .collect();
        }
        DeltaState {
            mark,
            index: self.index,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_usn_mark_asks_for_what_came_after_it_even_at_the_largest_usn() {
        let mark = |usn| Mark::Usn {
            usn,
            dc: "dc1.corp.test".into(),
            invocation: "c2f8c88c-8334-1041-8a98-efe27c2e8701".into(),
        };
        assert_eq!(mark(12000).since().as_deref(), Some("(uSNChanged>=12001)"));
        assert_eq!(
            mark(u64::MAX).since().as_deref(),
            Some("(uSNChanged>=18446744073709551615)")
        );
    }
}

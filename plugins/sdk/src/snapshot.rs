//! What a listing returned last time, by digest, for APIs without a change feed (Google's
//! Directory has no delta, no `updated` filter): an incremental fetch lists everything again,
//! reports only the objects whose digest changed, and the ones no longer listed as gone — at
//! no cost beyond the listing itself.
//!
//! Kept in the connector's delta state: an id and two numbers per object, so 100,000 users are
//! a few megabytes of JSON.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Objects as last listed: id → (digest, the round it was last seen in).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    #[serde(rename = "d", default)]
    seen: HashMap<String, (u64, u32)>,
    #[serde(rename = "r", default)]
    round: u32,
}

/// How an object observed compares with the last listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not in the last listing.
    New,
    /// Listed with another digest.
    Changed,
    /// Listed as it is now.
    Same,
}

impl Snapshot {
    /// An empty snapshot.
    pub fn new() -> Self {
        Snapshot::default()
    }

    /// Starts listing again: every object is unseen until [`Snapshot::observe`]d.
    pub fn next_round(&mut self) {
        self.round = self.round.wrapping_add(1);
    }

    /// Records object `id` listed with `digest` and says how it compares with the last listing.
    pub fn observe(&mut self, id: &str, digest: u64) -> Seen {
        let round = self.round;
        match self.seen.get_mut(id) {
            Some(entry) => {
                let was = entry.0;
                *entry = (digest, round);
                if was == digest { Seen::Same } else { Seen::Changed }
            }
            None => {
                self.seen.insert(id.to_string(), (digest, round));
                Seen::New
            }
        }
    }

    /// The ids not observed since [`Snapshot::next_round`] (sorted), forgotten: the objects
    /// gone from the listing.
    pub fn take_unseen(&mut self) -> Vec<String> {
        let round = self.round;
        let mut gone: Vec<String> = self
            .seen
            .iter()
            .filter(|(_, (_, r))| *r != round)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &gone {
            self.seen.remove(id);
        }
        gone.sort();
        gone
    }

    /// Forgets `id` (an object found gone another way than by its absence from the listing).
    pub fn forget(&mut self, id: &str) {
        self.seen.remove(id);
    }

    /// Whether `id` is held.
    pub fn contains(&self, id: &str) -> bool {
        self.seen.contains_key(id)
    }

    /// How many objects are held.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no object is held.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// A stable digest of a value's JSON (FNV-1a, 64 bits: a change detector, not a security
/// measure); the same value digests the same in every build.
pub fn digest_of<T: Serialize>(value: &T) -> u64 {
    let text = serde_json::to_string(value).unwrap_or_default();
    crate::settings::fnv1a(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_listing_tells_new_changed_same_and_gone() {
        let mut s = Snapshot::new();
        for (id, d) in [("a", 1), ("b", 2), ("c", 3)] {
            assert_eq!(s.observe(id, d), Seen::New);
        }
        assert!(s.take_unseen().is_empty(), "a first listing loses nothing");
        s.next_round();
        assert_eq!(s.observe("a", 1), Seen::Same);
        assert_eq!(s.observe("b", 20), Seen::Changed);
        assert_eq!(s.observe("d", 4), Seen::New);
        assert_eq!(s.take_unseen(), vec!["c".to_string()]);
        assert!(!s.contains("c") && s.len() == 3);
        let back: Snapshot = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn digests_are_stable_and_tell_values_apart() {
        assert_eq!(digest_of(&("alice", true)), digest_of(&("alice", true)));
        assert_ne!(digest_of(&("alice", true)), digest_of(&("alice", false)));
        // Fixed, so a digest kept in a token means the same in the next build.
        assert_eq!(digest_of(&"alice"), 0x0644316f7470dd1f);
    }
}

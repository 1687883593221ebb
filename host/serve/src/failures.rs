//! Failures counted per key in fixed windows, in memory: the Crowd endpoint's wrong passwords
//! per username and the admin pages' failed logins per address. After `max` failures within
//! `window` of the first, the key is refused until that window ends; the map is bounded, so a
//! flood of new keys cannot grow it without limit.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures per key within a fixed window.
pub struct Failures<K> {
    max: u32,
    window: Duration,
    tracked: usize,
    /// Key → (failures in the window, when the window began).
    counts: Mutex<HashMap<K, (u32, Instant)>>,
}

impl<K: Hash + Eq + Clone> Failures<K> {
    /// Refuses a key after `max` failures within `window`, remembering at most `tracked` keys.
    pub fn new(max: u32, window: Duration, tracked: usize) -> Self {
        Failures {
            max,
            window,
            tracked,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// How long `key` is still refused, if it is.
    pub fn refused_for(&self, key: &K, now: Instant) -> Option<Duration> {
        let map = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let (count, since) = map.get(key)?;
        let left = self.window.checked_sub(now.saturating_duration_since(*since))?;
        (*count >= self.max && !left.is_zero()).then_some(left)
    }

    /// Counts a failure for `key`.
    pub fn failed(&self, key: K, now: Instant) {
        let mut map = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.tracked {
            map.retain(|_, (_, since)| now.saturating_duration_since(*since) < self.window);
            if map.len() >= self.tracked {
                let oldest = map.iter().min_by_key(|(_, (_, since))| *since).map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    map.remove(&k);
                }
            }
        }
        let entry = map.entry(key).or_insert((0, now));
        if now.saturating_duration_since(entry.1) >= self.window {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    /// Forgets `key`'s failures.
    pub fn succeeded(&self, key: &K) {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

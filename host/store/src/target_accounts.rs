//! What a target that keys accounts by its own ids needs Roster to remember (Bitbucket Cloud):
//! which account each lower-case name is (found by email, or invited and not joined yet), and
//! the calls sent to a target that meters them over a rolling window, so its budget spans runs
//! and processes.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{Result, Store, now_ms};

/// One name's account in a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetAccount {
    /// Roster's lower-case name.
    pub name: String,
    /// The address the account was found or invited by.
    pub email: Option<String>,
    /// The target's id of the account, once one was found.
    pub account_id: Option<String>,
    /// When Roster invited the address (ms since the epoch).
    pub invited_at: Option<i64>,
}

/// Whether a call may go now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallTaken {
    /// Recorded: send it.
    Taken,
    /// The window is spent: send nothing.
    Spent {
        /// The limit in force (the lower of the configured one and the target's own).
        calls: u64,
        /// When the next call may go (ms since the epoch).
        frees_at_ms: i64,
    },
}

/// The state of a target's window now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallWindow {
    /// The limit in force (the lower of the configured one and the target's own).
    pub calls: u64,
    /// Calls that may go now.
    pub available: u64,
    /// When the next call may go, when none may now (ms since the epoch).
    pub frees_at_ms: Option<i64>,
}

impl Store {
    /// Every account remembered for `target_id`.
    pub fn target_accounts(&self, target_id: &str) -> Result<Vec<TargetAccount>> {
        let conn = self.reader();
        let mut st = conn.prepare(
            "SELECT name, email, account_id, invited_at FROM target_accounts WHERE target_id = ?1 ORDER BY name",
        )?;
        let rows = st
            .query_map([target_id], |r| {
                Ok(TargetAccount {
                    name: r.get(0)?,
                    email: r.get(1)?,
                    account_id: r.get(2)?,
                    invited_at: r.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Remembers `account` (by its name), replacing what was remembered of that name.
    pub fn put_target_account(&self, target_id: &str, account: &TargetAccount) -> Result<()> {
        self.conn().execute(
            "INSERT INTO target_accounts (target_id, name, email, account_id, invited_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(target_id, name) DO UPDATE SET
               email = ?3, account_id = ?4, invited_at = ?5, updated_at = ?6",
            params![
                target_id,
                account.name,
                account.email,
                account.account_id,
                account.invited_at,
                now_ms()
            ],
        )?;
        Ok(())
    }

    /// Takes one call from `target_id`'s window of `window_ms` ending at `now`, allowing
    /// `configured` calls (or fewer, when the target announced fewer): recorded when one may go.
    /// One transaction, so processes sharing the database never both take the last call.
    pub fn take_target_call(&self, target_id: &str, now: i64, window_ms: i64, configured: u64) -> Result<CallTaken> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let since = now - window_ms;
        tx.execute(
            "DELETE FROM target_calls WHERE target_id = ?1 AND at_ms <= ?2",
            params![target_id, since],
        )?;
        let w = window(&tx, target_id, now, window_ms, configured)?;
        if let Some(frees_at_ms) = w.frees_at_ms {
            return Ok(CallTaken::Spent {
                calls: w.calls,
                frees_at_ms,
            });
        }
        tx.execute(
            "INSERT INTO target_calls (target_id, at_ms) VALUES (?1, ?2)",
            params![target_id, now],
        )?;
        tx.commit()?;
        Ok(CallTaken::Taken)
    }

    /// `target_id`'s window now, without taking a call.
    pub fn target_call_window(&self, target_id: &str, now: i64, window_ms: i64, configured: u64) -> Result<CallWindow> {
        window(&self.reader(), target_id, now, window_ms, configured)
    }

    /// The target said it is throttling: its limit is `calls` (when it said), and no call may
    /// go before `spent_until`. While an announcement holds (until a window of `window_ms` after
    /// its pause), a limit is only lowered; a pause is only ever lengthened.
    pub fn target_throttled(
        &self,
        target_id: &str,
        calls: Option<u64>,
        spent_until: i64,
        now: i64,
        window_ms: i64,
    ) -> Result<()> {
        self.conn().execute(
            "INSERT INTO target_call_limits (target_id, calls, spent_until_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT(target_id) DO UPDATE SET
               calls = CASE WHEN ?2 IS NULL THEN calls
                            WHEN calls IS NULL OR ?2 < calls OR COALESCE(spent_until_ms, 0) + ?5 <= ?4 THEN ?2
                            ELSE calls END,
               spent_until_ms = MAX(COALESCE(spent_until_ms, 0), ?3)",
            params![target_id, calls.map(|c| c as i64), spent_until, now, window_ms],
        )?;
        Ok(())
    }
}

fn window(
    conn: &rusqlite::Connection,
    target_id: &str,
    now: i64,
    window_ms: i64,
    configured: u64,
) -> Result<CallWindow> {
    let since = now - window_ms;
    let (announced, spent_until): (Option<i64>, Option<i64>) = conn
        .query_row(
            "SELECT calls, spent_until_ms FROM target_call_limits WHERE target_id = ?1",
            [target_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .unwrap_or((None, None));
    // Cloud's own limit holds for a window after the pause it came with: were it raised since
    // (or the credential changed), Roster would otherwise never send enough to hear of it.
    let announced = announced.filter(|_| spent_until.is_some_and(|u| now < u.saturating_add(window_ms)));
    let calls = announced.map_or(configured, |a| configured.min(a.max(0) as u64));
    let used: i64 = conn.query_row(
        "SELECT COUNT(*) FROM target_calls WHERE target_id = ?1 AND at_ms > ?2",
        params![target_id, since],
        |r| r.get(0),
    )?;
    let used = used.max(0) as u64;
    if let Some(until) = spent_until.filter(|u| *u > now) {
        return Ok(CallWindow {
            calls,
            available: 0,
            frees_at_ms: Some(until),
        });
    }
    if used < calls {
        return Ok(CallWindow {
            calls,
            available: calls - used,
            frees_at_ms: None,
        });
    }
    // The window frees a call when the call that would make one too many leaves it.
    let nth: Option<i64> = conn
        .query_row(
            "SELECT at_ms FROM target_calls WHERE target_id = ?1 AND at_ms > ?2 ORDER BY at_ms LIMIT 1 OFFSET ?3",
            params![target_id, since, (used - calls) as i64],
            |r| r.get(0),
        )
        .optional()?;
    Ok(CallWindow {
        calls,
        available: 0,
        frees_at_ms: Some(nth.unwrap_or(now) + window_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Key;

    #[test]
    fn accounts_are_remembered_per_target_and_replaced_by_name() {
        let store = Store::memory(Key::from_bytes([1; 32])).unwrap();
        let ann = TargetAccount {
            name: "ann".into(),
            email: Some("ann@x.com".into()),
            account_id: None,
            invited_at: Some(5),
        };
        store.put_target_account("cloud", &ann).unwrap();
        store
            .put_target_account(
                "cloud",
                &TargetAccount {
                    account_id: Some("id-1".into()),
                    ..ann.clone()
                },
            )
            .unwrap();
        let got = store.target_accounts("cloud").unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].account_id.as_deref(), Some("id-1"));
        assert!(store.target_accounts("other").unwrap().is_empty());
    }

    #[test]
    fn a_spent_window_sends_nothing_and_says_when_a_call_frees() {
        let store = Store::memory(Key::from_bytes([1; 32])).unwrap();
        for at in [1_000, 2_000, 3_000] {
            assert_eq!(store.take_target_call("c", at, 10_000, 3).unwrap(), CallTaken::Taken);
        }
        assert_eq!(
            store.take_target_call("c", 4_000, 10_000, 3).unwrap(),
            CallTaken::Spent {
                calls: 3,
                frees_at_ms: 11_000
            }
        );
        assert_eq!(store.target_call_window("c", 4_000, 10_000, 3).unwrap().available, 0);
        // The first call leaves the window at 11 000.
        assert_eq!(
            store.take_target_call("c", 11_001, 10_000, 3).unwrap(),
            CallTaken::Taken
        );
        // Another target has its own window.
        assert_eq!(store.take_target_call("d", 4_000, 10_000, 3).unwrap(), CallTaken::Taken);
    }

    #[test]
    fn the_target_s_own_limit_and_pause_hold() {
        let store = Store::memory(Key::from_bytes([1; 32])).unwrap();
        store.target_throttled("c", Some(2), 5_000, 0, 10_000).unwrap();
        assert_eq!(
            store.take_target_call("c", 1_000, 10_000, 100).unwrap(),
            CallTaken::Spent {
                calls: 2,
                frees_at_ms: 5_000
            }
        );
        // A later, higher announcement does not raise it; a shorter pause does not shorten it.
        store.target_throttled("c", Some(50), 2_000, 1_000, 10_000).unwrap();
        let w = store.target_call_window("c", 5_000, 10_000, 100).unwrap();
        assert_eq!((w.calls, w.available, w.frees_at_ms), (2, 2, None));
    }

    #[test]
    fn an_announced_limit_lapses_a_window_after_the_pause_it_came_with() {
        let store = Store::memory(Key::from_bytes([1; 32])).unwrap();
        store.target_throttled("c", Some(2), 5_000, 0, 10_000).unwrap();
        assert_eq!(store.target_call_window("c", 14_000, 10_000, 100).unwrap().calls, 2);
        // Cloud raised its limit (or the credential changed): a window later, the configured
        // budget holds again, and the next 429 would announce a lower limit anew.
        let w = store.target_call_window("c", 15_001, 10_000, 100).unwrap();
        assert_eq!((w.calls, w.available), (100, 100));
        assert_eq!(
            store.take_target_call("c", 15_001, 10_000, 100).unwrap(),
            CallTaken::Taken
        );
        // A new 429 states the limit now: the lapsed one does not come back.
        store.target_throttled("c", Some(50), 20_000, 16_000, 10_000).unwrap();
        assert_eq!(store.target_call_window("c", 20_000, 10_000, 100).unwrap().calls, 50);
    }
}

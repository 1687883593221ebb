//! Paging: the cursor a connector hands back between `fetch` calls, and the "next page"
//! conventions IdPs use (`Link` headers, next-link fields, offsets).
//!
//! The host calls `fetch` once per page and passes back the previous page's `next`. A connector
//! that walks several listings (users, then groups, then each group's members) keeps its place
//! in a small serializable struct and uses [`encode`] / [`decode`] for the cursor string.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::PluginError;

/// Turns a connector's own cursor state into the opaque `next` string.
pub fn encode<T: Serialize>(state: &T) -> Result<String, PluginError> {
    serde_json::to_string(state).map_err(|e| PluginError::Fatal(format!("could not encode the paging cursor: {e}")))
}

/// Reads back a cursor written by [`encode`]; `None` (first page) stays `None`.
pub fn decode<T: DeserializeOwned>(cursor: Option<&str>) -> Result<Option<T>, PluginError> {
    cursor
        .map(|c| {
            serde_json::from_str(c).map_err(|e| {
                PluginError::Fatal(format!(
                    "the paging cursor was not written by this version of the connector ({e}); start a full fetch"
                ))
            })
        })
        .transpose()
}

/// The `rel="next"` target of an RFC 8288 `Link` header (Okta, GitHub-style APIs).
pub fn link_next(link_header: &str) -> Option<String> {
    link_header.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_string())
    })
}

/// Bounds the work of one `fetch` call for a connector that makes several requests per page
/// (a listing, then each group's members): the host stages each page in one transaction and
/// gives every call a deadline, so a page should be neither one tiny request nor minutes of work.
#[derive(Debug)]
pub struct PageBudget {
    requests: u32,
    max_requests: u32,
    max_records: usize,
    started: std::time::Instant,
    max_time: std::time::Duration,
}

impl PageBudget {
    /// At most `max_requests` requests, `max_records` records or `max_time` per page.
    pub fn new(max_requests: u32, max_records: usize, max_time: std::time::Duration) -> Self {
        PageBudget {
            requests: 0,
            max_requests,
            max_records,
            started: std::time::Instant::now(),
            max_time,
        }
    }

    /// Counts one request.
    pub fn spend(&mut self) {
        self.requests += 1;
    }

    /// Requests made so far in this page.
    pub fn requests(&self) -> u32 {
        self.requests
    }

    /// True when the page holding `records` records should be returned now.
    pub fn exhausted(&self, records: usize) -> bool {
        self.requests >= self.max_requests || records >= self.max_records || self.started.elapsed() >= self.max_time
    }
}

/// Guards a paging loop against a server that keeps answering with the same "next" link.
#[derive(Debug, Default)]
pub struct LoopGuard {
    seen: std::collections::HashSet<String>,
}

impl LoopGuard {
    /// Records `next`; an error if this link was already followed in this listing.
    pub fn check(&mut self, next: &str) -> Result<(), PluginError> {
        if self.seen.insert(next.to_string()) {
            Ok(())
        } else {
            Err(PluginError::Fatal(format!(
                "the server returned the same next-page link twice ({next}); stopping to avoid an endless listing"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct State {
        phase: String,
        link: Option<String>,
    }

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let s = State {
            phase: "groups".into(),
            link: Some("https://x/next?skip=5".into()),
        };
        let c = encode(&s).unwrap();
        assert_eq!(decode::<State>(Some(&c)).unwrap(), Some(s));
        assert_eq!(decode::<State>(None).unwrap(), None);
        let err = decode::<State>(Some("v1:42")).unwrap_err();
        assert!(matches!(err, PluginError::Fatal(m) if m.contains("full fetch")));
    }

    #[test]
    fn link_headers() {
        let h = r#"<https://o.example/api/v1/users?limit=2>; rel="self", <https://o.example/api/v1/users?after=00u2&limit=2>; rel="next""#;
        assert_eq!(
            link_next(h).as_deref(),
            Some("https://o.example/api/v1/users?after=00u2&limit=2")
        );
        assert_eq!(link_next(r#"<https://o.example/a>; rel="self""#), None);
        assert_eq!(link_next("garbage"), None);
    }

    #[test]
    fn page_budget_stops_on_requests_or_records() {
        let mut b = PageBudget::new(2, 100, std::time::Duration::from_secs(60));
        assert!(!b.exhausted(0));
        b.spend();
        assert!(!b.exhausted(99));
        assert!(b.exhausted(100));
        b.spend();
        assert!(b.exhausted(0));
        assert_eq!(b.requests(), 2);
    }

    #[test]
    fn loop_guard_stops_repeated_links() {
        let mut g = LoopGuard::default();
        g.check("a").unwrap();
        g.check("b").unwrap();
        assert!(g.check("a").is_err());
    }
}

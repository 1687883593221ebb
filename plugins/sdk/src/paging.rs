//! Paging conventions IdPs use (`Link` headers, next-link fields) and a guard against a server
//! that keeps answering with the same next link.
//!
//! A connector on [`crate::driver`] never encodes a cursor itself; [`encode`] / [`decode`] are
//! for connectors that implement the connector interface by hand.

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

/// The `rel="next"` target among all of a response's `Link` headers, whether the server
/// combines them in one header or sends one header per link.
pub fn next_link(resp: &crate::Response) -> Option<String> {
    resp.header_values("link").find_map(link_next)
}

/// Refuses a next or delta link that leaves the API's base URL: the connector sends its bearer
/// token with every request, so a link to another host (a compromised or misconfigured server,
/// a proxy rewriting bodies) must not be followed, even to a host the source allows.
pub fn within(base: &str, link: &str, what: &str) -> Result<(), PluginError> {
    let base = base.trim_end_matches('/');
    if link.starts_with(&format!("{base}/")) || link.starts_with(&format!("{base}?")) {
        Ok(())
    } else {
        Err(PluginError::Fatal(format!(
            "{what}: the server returned a link outside {base} ({link}); refusing to follow it"
        )))
    }
}

/// Offset paging (`start-index`, `offset`, `skip`) that survives the listing changing between
/// pages. Each page starts a few items before the previous one ended, so an item deleted in
/// between, which shifts the rest one place back, does not carry an unread item past the
/// boundary (read as gone, that item would be deprovisioned). The caller drops the items it
/// has seen already; a short page is not taken as the end, as a server may answer fewer items
/// than asked for (its own cap): the listing ends with a page that is empty or adds nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overlapping {
    overlap: u64,
}

impl Overlapping {
    /// Paging by `size` items, overlapping a tenth of a page (at least one item).
    pub fn new(size: u32) -> Self {
        Overlapping {
            overlap: u64::from(size / 10).max(1),
        }
    }

    /// Where the page after one from `start` starts, given that it returned `returned` items
    /// of which `new` had not been seen; `None` when the listing is complete. Each page moves
    /// on by at least half of what it returned, so paging always progresses.
    pub fn next(&self, start: u64, returned: usize, new: usize) -> Option<u64> {
        if returned == 0 || new == 0 {
            return None;
        }
        let returned = returned as u64;
        Some(start + returned - self.overlap.min(returned / 2))
    }
}

/// Guards a paging loop against a server that keeps answering with the same "next" link. It
/// serializes, so a listing read one driver step at a time keeps it in its cursor.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LoopGuard {
    seen: std::collections::BTreeSet<String>,
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
        let two_headers = crate::Response {
            status: 200,
            headers: vec![
                ("link".into(), r#"<https://o.example/a>; rel="self""#.into()),
                ("Link".into(), r#"<https://o.example/b>; rel="next""#.into()),
            ],
            body: vec![],
        };
        assert_eq!(next_link(&two_headers).as_deref(), Some("https://o.example/b"));
        assert_eq!(link_next("garbage"), None);
    }

    #[test]
    fn links_must_stay_under_the_base_url() {
        let base = "https://graph.microsoft.com/";
        within(
            base,
            "https://graph.microsoft.com/v1.0/users?$skiptoken=x",
            "list users",
        )
        .unwrap();
        for bad in [
            "https://graph.microsoft.com.evil.example/v1.0/users",
            "http://graph.microsoft.com/v1.0/users",
            "https://evil.example/?https://graph.microsoft.com/",
        ] {
            let err = within(base, bad, "list users").unwrap_err();
            assert!(
                matches!(&err, PluginError::Fatal(m) if m.contains("refusing to follow")),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn overlapping_pages_step_back_a_tenth_and_end_on_a_page_with_nothing_new() {
        let p = Overlapping::new(100);
        assert_eq!(p.next(0, 100, 100), Some(90));
        assert_eq!(p.next(90, 100, 90), Some(180));
        // A server answering fewer than asked (its own cap) is not at its end.
        assert_eq!(p.next(180, 40, 30), Some(210));
        assert_eq!(p.next(210, 10, 0), None);
        assert_eq!(p.next(210, 0, 0), None);
        // Small pages still overlap by one, and always move on.
        let two = Overlapping::new(2);
        assert_eq!(two.next(0, 2, 2), Some(1));
        assert_eq!(two.next(1, 1, 1), Some(2));
    }

    #[test]
    fn loop_guard_stops_repeated_links() {
        let mut g = LoopGuard::default();
        g.check("a").unwrap();
        g.check("b").unwrap();
        assert!(g.check("a").is_err());
    }
}

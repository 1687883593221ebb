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
    fn loop_guard_stops_repeated_links() {
        let mut g = LoopGuard::default();
        g.check("a").unwrap();
        g.check("b").unwrap();
        assert!(g.check("a").is_err());
    }
}

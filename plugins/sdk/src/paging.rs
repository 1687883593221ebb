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
///
/// The target is read between `<` and `>` before anything is split on `,`: RFC 8288 allows a
/// comma inside the URI reference (`?after=a,b`), and a quoted parameter (`title="a, b"`) may
/// hold one too. A link-value whose target or parameters cannot be read ends the parse: what
/// follows it cannot be told apart reliably.
pub fn link_next(link_header: &str) -> Option<String> {
    let mut rest = link_header;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        let after_open = rest.strip_prefix('<')?;
        let close = after_open.find('>')?;
        let target = after_open.get(..close)?;
        let (params, next) = link_params(after_open.get(close + 1..)?);
        if params.iter().any(|(name, value)| {
            name.eq_ignore_ascii_case("rel")
                && value
                    .split_ascii_whitespace()
                    .any(|rel| rel.eq_ignore_ascii_case("next"))
        }) {
            return Some(target.trim().to_string());
        }
        rest = next?;
    }
}

/// The `; name=value` parameters after one link's `>`, up to the `,` that ends the link-value
/// (a `,` inside a quoted value does not); with what follows that `,`, if anything does.
fn link_params(mut s: &str) -> (Vec<(String, String)>, Option<&str>) {
    let mut params = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(next) = s.strip_prefix(',') {
            return (params, Some(next));
        }
        let Some(param) = s.strip_prefix(';') else {
            // End of the header, or something that is not a parameter: nothing more to read.
            return (params, None);
        };
        let param = param.trim_start();
        let name_end = param.find(['=', ';', ',']).unwrap_or(param.len());
        let name = param[..name_end].trim().to_string();
        s = &param[name_end..];
        let Some(value) = s.strip_prefix('=') else {
            params.push((name, String::new()));
            continue;
        };
        let value = value.trim_start();
        if let Some(quoted) = value.strip_prefix('"') {
            let (text, used) = quoted_string(quoted);
            params.push((name, text));
            s = quoted.get(used..).unwrap_or("");
        } else {
            let end = value.find([';', ',']).unwrap_or(value.len());
            params.push((name, value[..end].trim().to_string()));
            s = &value[end..];
        }
    }
}

/// A quoted-string's text (backslash escapes undone) after its opening `"`, and how many bytes
/// it took including the closing `"` (all of `s` when it is never closed).
fn quoted_string(s: &str) -> (String, usize) {
    let mut text = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (text, i + 1),
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    text.push(escaped);
                }
            }
            _ => text.push(c),
        }
    }
    (text, s.len())
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

/// Offset paging by `first`/`max` (Keycloak) where a short page ends the listing, kept right
/// when the listing shifts between pages. Each page after the first starts one item early, at
/// the item the previous page ended with, and goes on after it: found there, or later with the
/// item read before it just ahead (items inserted earlier only repeat items already read),
/// nothing is missed. Missing, or found elsewhere (renamed, so it sorts in a new place), items
/// may have passed the boundary unread — read as gone, they would be deprovisioned: the page is
/// asked for again starting a whole page earlier and the listing goes on after the newest item
/// read it finds there in its place (the item read last, or one of the two before it). A listing
/// that moved back by more than a page, or lost all three, is refused as transient instead. It
/// serializes, for a cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Offset {
    /// Items of the listing read so far: where the next page starts.
    pub first: u64,
    /// The ids of the last items read, oldest first (at most [`Offset::ANCHORS`]), looked for at
    /// the start of the next page.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tail: Vec<String>,
    /// How many items before the usual one-item overlap the next page starts: 0, or a page
    /// after the listing moved back.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lookback: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A page taken by [`Offset::take`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken<T> {
    /// The items not read before.
    pub items: Vec<T>,
    /// Where the next page starts; `None` when this page was short, the end of the listing.
    pub next: Option<Offset>,
}

impl Offset {
    /// How many of the last items read are kept to find the place again.
    pub const ANCHORS: usize = 3;

    /// The `first` and `max` to ask for, for pages of `size` items.
    pub fn query(&self, size: u32) -> (u64, u32) {
        if self.tail.is_empty() || self.first == 0 {
            return (self.first, size);
        }
        let start = (self.first - 1).saturating_sub(self.lookback);
        let extra = u32::try_from(self.first - start).unwrap_or(u32::MAX);
        (start, size.saturating_add(extra))
    }

    /// Takes the items answered to [`Offset::query`] with `size`; `id` reads an item's id,
    /// `what` names the page in the error of a listing that moved back too far.
    pub fn take<T>(
        &self,
        size: u32,
        items: Vec<T>,
        id: impl Fn(&T) -> &str,
        what: &str,
    ) -> Result<Taken<T>, PluginError> {
        self.take_until(size, items, id, what, |_, answered, max| answered >= max)
    }

    /// [`Offset::take`] for a listing that says how long it is (SCIM's `totalResults`): a
    /// short page ends it only once `total` items were reached, as a server may answer fewer
    /// items than asked for (its own cap) in the middle; an empty page ends it anyway (the
    /// listing shrank under the fetch, or the total was wrong), so paging always ends. A full
    /// page never ends it, whatever `total` says: a total that is too small must not leave
    /// items unread (read as gone, they would be deprovisioned).
    pub fn take_counted<T>(
        &self,
        size: u32,
        items: Vec<T>,
        id: impl Fn(&T) -> &str,
        what: &str,
        total: u64,
    ) -> Result<Taken<T>, PluginError> {
        self.take_until(size, items, id, what, |start, answered, max| {
            answered >= max || (answered > 0 && start + answered < total)
        })
    }

    /// Takes a page; `more(start, answered, max)` says whether the listing goes on after it.
    fn take_until<T>(
        &self,
        size: u32,
        mut items: Vec<T>,
        id: impl Fn(&T) -> &str,
        what: &str,
        more: impl Fn(u64, u64, u64) -> bool,
    ) -> Result<Taken<T>, PluginError> {
        let (start, max) = self.query(size);
        let answered = items.len() as u64;
        // The next page's anchors are the page's last items as answered, in listing order (the
        // items taken below may leave some out).
        let last: Vec<String> = items
            .iter()
            .skip(items.len().saturating_sub(Self::ANCHORS))
            .map(|i| id(i).to_string())
            .collect();
        if max > size {
            // The newest anchor still in its place: items after it are unread. An anchor is in
            // its place when the page starts with it or the item before it is the one read
            // before it; an anchor renamed since sorts elsewhere, and the items between its old
            // place and its new one were never read.
            let found = (0..self.tail.len()).rev().find_map(|j| {
                let k = items.iter().position(|i| id(i) == self.tail[j].as_str())?;
                let in_place = k == 0 || (j > 0 && id(&items[k - 1]) == self.tail[j - 1].as_str());
                in_place.then_some((j, k))
            });
            match found {
                Some((j, k)) => {
                    items.drain(..=k);
                    // The anchors read after it (a page starting at an older one) are not new.
                    let read = &self.tail[j + 1..];
                    items.retain(|i| !read.iter().any(|r| r.as_str() == id(i)));
                }
                None if self.lookback == 0 && start > 0 => {
                    return Ok(Taken {
                        items: Vec::new(),
                        next: Some(Offset {
                            lookback: u64::from(size),
                            ..self.clone()
                        }),
                    });
                }
                None => {
                    let last = self.tail.last().map(String::as_str).unwrap_or_default();
                    return Err(PluginError::Transient(format!(
                        "{what}: the listing changed while it was read (`{last}`, read last, and the items before it are no longer at or up to a page before position {}: more than a page was deleted before it), so an item could have been missed; nothing is changed and the next attempt reads again",
                        self.first
                    )));
                }
            }
        }
        let next = more(start, answered, u64::from(max)).then(|| {
            let mut tail: Vec<String> = self.tail.clone();
            tail.extend(last);
            let keep = tail.len().saturating_sub(Self::ANCHORS);
            tail.drain(..keep);
            Offset {
                first: start + answered,
                tail,
                lookback: 0,
            }
        });
        Ok(Taken { items, next })
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
        assert_eq!(link_next(""), None);
        assert_eq!(link_next("<https://o.example/unclosed; rel=next"), None);
    }

    #[test]
    fn a_comma_inside_a_link_target_or_a_quoted_parameter_does_not_split_the_link() {
        // RFC 8288: the URI reference may hold a comma; splitting on ',' first cut it in two.
        assert_eq!(
            link_next(r#"<https://o.example/users?after=a,b&limit=2>; rel="next""#).as_deref(),
            Some("https://o.example/users?after=a,b&limit=2")
        );
        let two_in_one = r#"<https://o.example/users?after=x,y>; rel="self"; title="page, first", <https://o.example/users?after=a,b>; rel=next"#;
        assert_eq!(
            link_next(two_in_one).as_deref(),
            Some("https://o.example/users?after=a,b")
        );
        // rel is a list of relation types, compared without regard to case.
        assert_eq!(
            link_next(r#"<https://o.example/last>; rel="last", <https://o.example/n,2>; REL="prev NEXT""#).as_deref(),
            Some("https://o.example/n,2")
        );
        // `rel` inside another parameter's quoted value is not a relation.
        assert_eq!(
            link_next(r#"<https://o.example/a>; title="rel=next"; rel="self""#),
            None
        );
        let several_headers = crate::Response {
            status: 200,
            headers: vec![
                (
                    "Link".into(),
                    r#"<https://o.example/users?after=p,q>; rel="self""#.into(),
                ),
                (
                    "link".into(),
                    r#"<https://o.example/users?after=r,s>; rel="prev", <https://o.example/users?after=t,u>; rel="next""#
                        .into(),
                ),
            ],
            body: vec![],
        };
        assert_eq!(
            next_link(&several_headers).as_deref(),
            Some("https://o.example/users?after=t,u")
        );
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

    #[test]
    fn counted_offset_pages_go_on_after_a_short_page_until_the_total() {
        fn id(s: &String) -> &str {
            s
        }
        fn v(items: &[&str]) -> Vec<String> {
            items.iter().map(|s| s.to_string()).collect()
        }
        // A server capping pages at 2 when 3 were asked for, 5 items in all.
        let p1 = Offset::default().take_counted(3, v(&["a", "b"]), id, "x", 5).unwrap();
        assert_eq!(p1.items, v(&["a", "b"]));
        let at = p1.next.expect("short, but 2 of 5: not the end");
        assert_eq!(at.query(3), (1, 4));
        let p2 = at.take_counted(3, v(&["b", "c"]), id, "x", 5).unwrap();
        assert_eq!(p2.items, v(&["c"]));
        let at = p2.next.expect("3 of 5");
        let p3 = at.take_counted(3, v(&["c", "d", "e"]), id, "x", 5).unwrap();
        assert_eq!((p3.items, p3.next), (v(&["d", "e"]), None), "5 of 5: the end");
        // A full page goes on even when the total says it is the end: a total too small (a
        // service counting the page) must not leave items unread.
        assert!(
            Offset::default()
                .take_counted(2, v(&["a", "b"]), id, "x", 2)
                .unwrap()
                .next
                .is_some()
        );
        // An empty first page ends the listing whatever the total said (a later one without
        // the anchors is a listing that moved back, handled as by `take`).
        let none = Offset::default().take_counted(3, v(&[]), id, "x", 5).unwrap();
        assert!(none.items.is_empty() && none.next.is_none());
    }

    #[test]
    fn offset_pages_end_on_a_short_page_and_survive_a_listing_that_moved() {
        fn id(s: &String) -> &str {
            s
        }
        fn v(items: &[&str]) -> Vec<String> {
            items.iter().map(|s| s.to_string()).collect()
        }
        let start = Offset::default();
        assert_eq!(start.query(2), (0, 2));
        let p1 = start.take(2, v(&["a", "b"]), id, "list users").unwrap();
        assert_eq!(p1.items, v(&["a", "b"]));
        let at = p1.next.unwrap();
        assert_eq!(at.query(2), (1, 3), "one item early, one more");
        // Unchanged: b again, then c and d; a full page goes on.
        let p2 = at.take(2, v(&["b", "c", "d"]), id, "list users").unwrap();
        assert_eq!(p2.items, v(&["c", "d"]));
        let at2 = p2.next.clone().unwrap();
        assert_eq!((at2.first, at2.tail.clone()), (4, v(&["b", "c", "d"])));
        // A user inserted before the page: b comes one later, after a, and nothing is missed.
        let p2 = at.take(2, v(&["a", "b", "c"]), id, "list users").unwrap();
        assert_eq!((p2.items, p2.next.is_some()), (v(&["c"]), true));
        // Inserted between a and b, the place cannot be told from the page: asked again a page
        // earlier, a starts it, and a2 and c are read (b not again).
        let unsure = at.take(2, v(&["a2", "b", "c"]), id, "list users").unwrap();
        assert!(unsure.items.is_empty());
        let again = unsure.next.unwrap();
        assert_eq!(again.query(2), (0, 4));
        let p2 = again.take(2, v(&["a", "a2", "b", "c"]), id, "list users").unwrap();
        assert_eq!(p2.items, v(&["a2", "c"]));
        // b renamed to sort after c and d (a c d b e): the page holds b, but not in its place;
        // c and d must not be skipped.
        let renamed = at.take(2, v(&["c", "d", "b"]), id, "list users").unwrap();
        assert!(renamed.items.is_empty(), "{:?}", renamed.items);
        let p2 = renamed
            .next
            .unwrap()
            .take(2, v(&["a", "c", "d", "b"]), id, "list users")
            .unwrap();
        assert_eq!(p2.items, v(&["c", "d"]));
        let after = p2.next.unwrap();
        assert_eq!(after.tail, v(&["c", "d", "b"]), "the anchors in listing order");
        // A short page ends the listing, an answer of the overlap alone too.
        assert!(at.take(2, v(&["b", "c"]), id, "x").unwrap().next.is_none());
        let end = at.take(2, v(&["b"]), id, "x").unwrap();
        assert!(end.items.is_empty() && end.next.is_none());

        // `a` deleted: the listing is b c d e, and position 1 holds c. The page is asked for
        // again a page earlier, b is found there, and c, d, e follow.
        let moved = at.take(2, v(&["c", "d", "e"]), id, "list users").unwrap();
        assert!(moved.items.is_empty());
        let back = moved.next.unwrap();
        assert_eq!(back.query(2), (0, 4));
        let p2 = back.take(2, v(&["b", "c", "d", "e"]), id, "list users").unwrap();
        assert_eq!(p2.items, v(&["c", "d", "e"]));
        let after = p2.next.unwrap();
        assert_eq!((after.first, after.lookback, after.query(2)), (4, 0, (3, 3)));
        // `b` itself deleted (a c d e): `a`, read before it, is the place.
        let p2 = back.take(2, v(&["a", "c", "d", "e"]), id, "list users").unwrap();
        assert_eq!(p2.items, v(&["c", "d", "e"]));
        // Moved back further than a page: refused, naming the page.
        let err = back
            .take(2, v(&["x", "y", "z", "w"]), id, "keycloak: list users")
            .unwrap_err();
        assert!(
            matches!(&err, PluginError::Transient(m) if m.starts_with("keycloak: list users:") && m.contains("`b`")),
            "{err:?}"
        );
        // A cursor of an older build (no tail) reads on without the check.
        let old: Offset = serde_json::from_str(r#"{"first":4}"#).unwrap();
        assert_eq!(old.query(2), (4, 2));
    }
}

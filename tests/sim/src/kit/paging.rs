//! Paging as vendors do it, with the paging faults built in. Four styles cover the vendors Roster
//! speaks to:
//!
//! - offset: `start`/`limit` in, `isLastPage`/`nextPageStart` out (Bitbucket DC), or exact
//!   ranges the client computes itself (Crowd's `start-index`/`max-results`) — [`Offset`];
//! - keyed cursors sealed into opaque tokens, in a next link (Graph's `$skiptoken`) —
//!   [`keyed_page`], [`Cursor`] and [`Sealer`];
//! - the same cursors in `Link: <…>; rel="next"` headers (Okta's `after`) — [`link_headers`];
//! - the same cursors as page tokens (Google's `pageToken` in, `nextPageToken` out) —
//!   [`Cursor::token`] and [`Cursor::from_param`].
//!
//! The envelope (field names, links) stays in each simulator; these helpers decide which items
//! a page holds and where the next one starts. When the fault layer has made a page due for
//! [`Fault::EmptyPage`] or [`Fault::LoopingCursor`], the handler receives a [`PageFault`] and
//! [`Page::with_fault`] shapes the page accordingly, whatever the paging style.
//!
//! [`Fault::EmptyPage`]: super::Fault::EmptyPage
//! [`Fault::LoopingCursor`]: super::Fault::LoopingCursor

use std::convert::Infallible;
use std::hash::Hasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::FromRequestParts;
use axum::http::HeaderValue;
use axum::http::request::Parts;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::ids::{b64url, random_u64};

/// The paging faults a page can be asked to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PageFaultKind {
    Empty,
    Loop,
}

/// A paging fault the fault layer has made due for this request, if any; an extractor, so a
/// handler takes it as an argument and passes it to [`Page::with_fault`].
#[derive(Clone, Debug, Default)]
pub struct PageFault(Option<Arc<Pending>>);

#[derive(Debug)]
struct Pending {
    kind: PageFaultKind,
    applied: AtomicBool,
}

impl PageFault {
    /// No fault: for pages rendered outside a request.
    pub fn none() -> PageFault {
        PageFault(None)
    }

    pub(crate) fn due(kind: PageFaultKind) -> PageFault {
        PageFault(Some(Arc::new(Pending {
            kind,
            applied: AtomicBool::new(false),
        })))
    }

    /// Whether a page took the fault (a request whose answer is no page leaves it unused).
    pub(crate) fn applied(&self) -> bool {
        self.0.as_ref().is_some_and(|p| p.applied.load(Ordering::Acquire))
    }

    /// The fault, once: a second page rendered for the same request is left alone.
    fn take(&self) -> Option<PageFaultKind> {
        let p = self.0.as_ref()?;
        (!p.applied.swap(true, Ordering::AcqRel)).then_some(p.kind)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PageFault {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(parts.extensions.get::<PageFault>().cloned().unwrap_or_default())
    }
}

/// Where a page starts, in a simulator's own cursor type.
pub trait Position: Clone {
    /// Where the first page starts.
    fn first(&self) -> Self;

    /// The same place under a cursor never issued before. An injected empty page leads here:
    /// clients that refuse a cursor they have already seen (loop detection) must accept it, as
    /// they must accept the fresh cursor a real vendor puts after an empty page.
    fn again(&self) -> Self;
}

/// One page of a listing: its items and where the next page starts (`None` on the last page).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T, P> {
    /// The items, in listing order.
    pub items: Vec<T>,
    /// Where the next page starts.
    pub next: Option<P>,
}

impl<T, P: Position> Page<T, P> {
    /// The page the due paging fault asks for, `here` being where this page starts. An empty
    /// page keeps no items and leads back to `here` under a fresh cursor, so a client that
    /// follows it loses nothing; a looping cursor keeps the items and leads to the first page.
    pub fn with_fault(mut self, fault: &PageFault, here: &P) -> Self {
        match fault.take() {
            None => {}
            Some(PageFaultKind::Empty) => {
                self.items.clear();
                self.next = Some(here.again());
            }
            Some(PageFaultKind::Loop) => self.next = Some(here.first()),
        }
        self
    }
}

/// Offset paging: a page starts at an item index (`start`) and holds at most `limit` items.
///
/// The indices a client is given back are not always item indices: after an injected empty
/// page they carry [`Offset::GAP`] per empty page (`start % GAP` is the item index). Clients
/// must pass back `nextPageStart` as given — Bitbucket's own indices are not contiguous
/// either — and the numbers stay below 2³¹ for 127 empty pages in one listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offset {
    start: usize,
    limit: usize,
}

/// An offset page's start, as [`Position`] needs it.
#[derive(Clone, Copy, Debug)]
struct At(usize);

impl Position for At {
    fn first(&self) -> Self {
        At(0)
    }

    fn again(&self) -> Self {
        At(self.0.saturating_add(Offset::GAP))
    }
}

impl Offset {
    /// What one injected empty page adds to the indices after it; listings are assumed
    /// shorter.
    pub const GAP: usize = 1 << 24;

    /// From the request's `start` and `limit` values: values that are not numbers get the
    /// defaults (as Bitbucket does), `limit` is held to `1..=max_limit`.
    pub fn new(start: Option<&str>, limit: Option<&str>, default_limit: usize, max_limit: usize) -> Offset {
        let start = start.and_then(|s| s.parse().ok()).unwrap_or(0);
        let limit = limit
            .and_then(|s| s.parse().ok())
            .unwrap_or(default_limit)
            .clamp(1, max_limit.max(1));
        Offset { start, limit }
    }

    /// A page of at most `limit` items from item `start`, or every item from `start` on when
    /// `limit` is `None`: for vendors whose clients ask for an exact range (Crowd's `start-index`
    /// and `max-results`, -1 meaning all), which a simulator must neither clamp nor truncate.
    /// A limit of 0 is taken as 1.
    pub fn exact(start: usize, limit: Option<usize>) -> Offset {
        Offset {
            start,
            limit: limit.map_or(usize::MAX, |l| l.max(1)),
        }
    }

    /// The start as the client gave it (and as the page repeats it).
    pub fn start(&self) -> usize {
        self.start
    }

    /// The page size.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The page of `items` (the whole listing, lazily: only this page's items are taken).
    pub fn page<T>(&self, items: impl IntoIterator<Item = T>, fault: &PageFault) -> Page<T, usize> {
        let mut rest = items.into_iter().skip(self.start % Self::GAP);
        let taken: Vec<T> = rest.by_ref().take(self.limit).collect();
        let more = rest.next().is_some();
        let page = Page {
            items: taken,
            next: more.then(|| At(self.start.saturating_add(self.limit))),
        }
        .with_fault(fault, &At(self.start));
        Page {
            items: page.items,
            next: page.next.map(|At(n)| n),
        }
    }
}

/// A position in keyed paging: after the key of the last item served. Tokens carry it sealed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor<K> {
    /// The key of the last item served; `None` before the first page.
    #[serde(rename = "a", default = "none", skip_serializing_if = "Option::is_none")]
    pub after: Option<K>,
    /// Empty pages that led here: part of the token, never of the position.
    #[serde(rename = "g", default, skip_serializing_if = "is_zero")]
    pub gap: u32,
}

fn none<K>() -> Option<K> {
    None
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl<K> Cursor<K> {
    /// The first page.
    pub fn start() -> Self {
        Cursor { after: None, gap: 0 }
    }

    /// The page after `key`.
    pub fn after(key: K) -> Self {
        Cursor {
            after: Some(key),
            gap: 0,
        }
    }

    /// Whether this is the first page under the cursor a first request has (none at all).
    pub fn is_start(&self) -> bool {
        self.after.is_none() && self.gap == 0
    }
}

impl<K: Clone> Position for Cursor<K> {
    fn first(&self) -> Self {
        Cursor::start()
    }

    fn again(&self) -> Self {
        Cursor {
            after: self.after.clone(),
            gap: self.gap.saturating_add(1),
        }
    }
}

/// A cursor that this simulator did not issue, or that was altered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidCursor;

impl<K: Serialize> Cursor<K> {
    /// The query value that resumes here; `None` for the first page, whose link names no
    /// cursor (Graph, Okta).
    pub fn param(&self, sealer: &Sealer) -> Option<String> {
        (!self.is_start()).then(|| sealer.seal(self))
    }

    /// A token that resumes here, the first page included (Google's `nextPageToken`, where no
    /// token means no next page).
    pub fn token(&self, sealer: &Sealer) -> String {
        sealer.seal(self)
    }
}

impl<K: DeserializeOwned> Cursor<K> {
    /// The position a request's cursor value names: the first page when absent or empty.
    pub fn from_param(sealer: &Sealer, value: Option<&str>) -> Result<Self, InvalidCursor> {
        match value.filter(|v| !v.is_empty()) {
            None => Ok(Cursor::start()),
            Some(v) => sealer.unseal(v).ok_or(InvalidCursor),
        }
    }
}

/// At most `size` items of `items`, which start right after `here`; the next page's cursor when
/// more follow. Items come with their keys, in key order.
pub fn keyed_page<K: Clone, T>(
    here: &Cursor<K>,
    size: usize,
    items: impl IntoIterator<Item = (K, T)>,
    fault: &PageFault,
) -> Page<T, Cursor<K>> {
    let mut out = Vec::with_capacity(size.min(1000));
    let mut last = None;
    let mut more = false;
    for (key, item) in items {
        if out.len() >= size {
            more = true;
            break;
        }
        out.push(item);
        last = Some(key);
    }
    Page {
        items: out,
        next: if more { last.map(Cursor::after) } else { None },
    }
    .with_fault(fault, here)
}

/// `Link` header values (RFC 8288) as Okta sends them: `rel="self"` for the request as made and,
/// when there is a `next` page, `rel="next"` with its cursor in `cursor_param` (none for the
/// first page). `url` is the listing's absolute URL, without query.
pub fn link_headers<K: Serialize>(
    url: &str,
    query: &[(String, String)],
    cursor_param: &str,
    next: Option<&Cursor<K>>,
    sealer: &Sealer,
) -> Vec<HeaderValue> {
    let encode = |pairs: &mut dyn Iterator<Item = (&str, &str)>| {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        if q.is_empty() {
            url.to_string()
        } else {
            format!("{url}?{q}")
        }
    };
    let mut out = Vec::new();
    let this = encode(&mut query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    out.push(format!("<{this}>; rel=\"self\""));
    if let Some(cursor) = next {
        let value = cursor.param(sealer);
        let next = encode(
            &mut query
                .iter()
                .filter(|(k, _)| k != cursor_param)
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .chain(value.as_deref().map(|v| (cursor_param, v))),
        );
        out.push(format!("<{next}>; rel=\"next\""));
    }
    // A Host header with bytes no header may carry yields no link rather than a panic.
    out.into_iter().filter_map(|v| HeaderValue::from_str(&v).ok()).collect()
}

/// Opaque, tamper-evident tokens: a payload's JSON behind a checksum keyed per simulator,
/// base64url. Clients cannot forge positions, and a token from another simulator instance is
/// refused as a real vendor refuses a foreign one.
#[derive(Clone, Debug)]
pub struct Sealer {
    key: u64,
}

impl Default for Sealer {
    fn default() -> Self {
        Self::new()
    }
}

impl Sealer {
    /// A sealer with a random key.
    pub fn new() -> Self {
        Sealer { key: random_u64() }
    }

    /// The token for `payload`; the same payload always gives the same token.
    pub fn seal<T: Serialize>(&self, payload: &T) -> String {
        let json = serde_json::to_vec(payload).unwrap_or_default();
        let mut bytes = self.checksum(&json).to_be_bytes().to_vec();
        bytes.extend_from_slice(&json);
        b64url(&bytes)
    }

    /// The payload of a token made by [`Sealer::seal`], if it is intact.
    pub fn unseal<T: DeserializeOwned>(&self, token: &str) -> Option<T> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.trim_end_matches('=').as_bytes())
            .ok()?;
        if bytes.len() < 8 {
            return None;
        }
        let (sum, json) = bytes.split_at(8);
        if sum != self.checksum(json).to_be_bytes() {
            return None;
        }
        serde_json::from_slice(json).ok()
    }

    fn checksum(&self, data: &[u8]) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        h.write_u64(self.key);
        h.write(data);
        h.finish()
    }
}

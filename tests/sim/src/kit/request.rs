//! A request as a simulator's handlers see it, taken whole by one extractor: the route, the
//! decoded path segments and query pairs, the headers, the body, and the paging fault the fault
//! layer made due for it.

use std::convert::Infallible;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, Method};

use super::paging::PageFault;

/// A request, read once at the router's edge so handlers work on plain data.
#[derive(Debug)]
pub struct Req {
    /// The method.
    pub method: Method,
    /// The raw path.
    pub path: String,
    /// Decoded path segments (`%2F` inside a segment stays inside it).
    pub segments: Vec<String>,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// The headers.
    pub headers: HeaderMap,
    /// The body; an unreadable one is empty, which every route that reads a body refuses in its
    /// vendor's words.
    pub body: Bytes,
    /// A paging fault due for this request's page.
    pub page_fault: PageFault,
}

impl Req {
    /// A header's value, when it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The first query parameter of that name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> FromRequest<S> for Req {
    type Rejection = Infallible;

    async fn from_request(req: Request, state: &S) -> Result<Self, Infallible> {
        let (mut parts, body) = req.into_parts();
        let page_fault = PageFault::from_request_parts(&mut parts, state).await?;
        let (method, headers) = (parts.method.clone(), parts.headers.clone());
        let path = parts.uri.path().to_string();
        let query = url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
        // Axum's own body extractor, so its default size limit applies as it did per handler.
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .unwrap_or_default();
        Ok(Req {
            method,
            segments: segments(&path),
            path,
            query,
            headers,
            body,
            page_fault,
        })
    }
}

/// A path's non-empty segments, percent-decoded (invalid escapes kept as they are).
pub fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::segments;

    #[test]
    fn segments_are_decoded_one_by_one_and_bad_escapes_kept() {
        assert_eq!(
            segments("/groups/a%2Fb//team%20one/%zz"),
            ["groups", "a/b", "team one", "%zz"]
        );
    }
}

//! Mode one's calls: a workspace administered in Bitbucket. Workspace members and owners
//! through 2.0 (paged by `next`), groups and their members through 1.0 `groups`, accounts by
//! 1.0 `invitations` (vendor-apis.md §3; support.atlassian.com/bitbucket-cloud/docs/
//! groups-endpoint/ and …/invitations-resource/).

use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::error::CloudError;
use crate::http::{Api, Body};
use crate::pace::Pace;

/// The call that sends an invitation: Cloud limits it per minute apart from the hourly pool.
pub(crate) const SEND_INVITATION: &str = "PUT /1.0/users/{ws}/invitations";

/// Items per page of a 2.0 listing (its documented maximum).
const PAGELEN: &str = "100";

/// Addresses per `q=user.email IN (…)` filter: Cloud takes at most 90.
pub(crate) const EMAILS_PER_CALL: usize = 90;

/// Pages after which a listing is taken to be endless.
const MAX_PAGES: usize = 100_000;

/// A 2.0 page: `{size?, page, pagelen, next, values}`.
#[derive(Debug, Deserialize)]
struct Page<T> {
    #[serde(default = "Vec::new")]
    values: Vec<T>,
    next: Option<String>,
}

/// An Atlassian account as 2.0 and 1.0 describe it.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct CloudUser {
    /// The account id: what Cloud keys accounts by.
    #[serde(default)]
    pub account_id: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Nickname (what Bitbucket shows as the username).
    #[serde(default)]
    pub nickname: Option<String>,
    /// The address, only when asked for (`fields=+values.user.email`, admins only).
    #[serde(default)]
    pub email: Option<String>,
}

/// A workspace membership (2.0 `workspace_membership`).
#[derive(Debug, Deserialize)]
pub(crate) struct Membership {
    /// Its account.
    pub user: CloudUser,
}

/// A workspace permission (2.0).
#[derive(Debug, Deserialize)]
pub(crate) struct Permission {
    /// Its account.
    pub user: CloudUser,
}

/// A 1.0 group with its members.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Group {
    /// Its name.
    pub name: String,
    /// Its slug (what URLs name it by).
    pub slug: String,
    /// `read`, `write`, `admin`, or none.
    #[serde(default)]
    pub permission: Option<String>,
    /// Its members.
    #[serde(default)]
    pub members: Vec<CloudUser>,
}

/// A pending 1.0 invitation.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Invitation {
    /// The address invited.
    pub email: String,
    /// When it was sent ("2025-03-01T10:00:00+00:00" or "2025-03-01 10:00:00+00:00").
    #[serde(default)]
    pub utc_sent_on: Option<String>,
}

/// The slug Cloud gives a group it creates: the name lower-cased, spaces as dashes.
pub(crate) fn slug_of(name: &str) -> String {
    name.trim().to_lowercase().replace(' ', "-")
}

/// A path segment, percent-encoded.
fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A BBQL string literal.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The workspace's calls.
pub(crate) struct Client {
    api: Api,
    workspace: String,
    invitations: Pace,
}

impl Client {
    /// Calls to `workspace` through `api`.
    pub(crate) fn new(api: Api, workspace: &str) -> Client {
        Client {
            api,
            workspace: workspace.to_string(),
            invitations: Pace::invitations(),
        }
    }

    /// The API (call counts, meter).
    pub(crate) fn api(&self) -> &Api {
        &self.api
    }

    fn ws(&self) -> String {
        seg(&self.workspace)
    }

    /// Every item of a 2.0 listing, following `next`.
    async fn all<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<T>, CloudError> {
        let mut out = Vec::new();
        let mut page: Page<T> = self.api.get(endpoint, path, query).await?;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..MAX_PAGES {
            out.append(&mut page.values);
            let Some(next) = page.next.take() else {
                return Ok(out);
            };
            if !seen.insert(next.clone()) {
                break;
            }
            // `next` carries the query (and the page) itself.
            page = self.api.get(endpoint, &next, &[]).await?;
        }
        Err(CloudError::Decode {
            service: self.api.service(),
            endpoint: endpoint.to_string(),
            detail: "its pages link back to one already read; stopping to avoid an endless listing".into(),
        })
    }

    /// The workspace's members.
    pub(crate) async fn members(&self) -> Result<Vec<Membership>, CloudError> {
        self.all(
            "GET /2.0/workspaces/{ws}/members",
            &format!("/2.0/workspaces/{}/members", self.ws()),
            &[("pagelen", PAGELEN.into())],
        )
        .await
    }

    /// The members among `emails` (at most [`EMAILS_PER_CALL`]), with their addresses.
    pub(crate) async fn members_by_email(&self, emails: &[String]) -> Result<Vec<Membership>, CloudError> {
        let q = format!(
            "user.email IN ({})",
            emails.iter().map(|e| quoted(e)).collect::<Vec<_>>().join(",")
        );
        self.all(
            "GET /2.0/workspaces/{ws}/members?q=user.email",
            &format!("/2.0/workspaces/{}/members", self.ws()),
            &[
                ("q", q),
                ("fields", "+values.user.email".into()),
                ("pagelen", PAGELEN.into()),
            ],
        )
        .await
    }

    /// The workspace's owners.
    pub(crate) async fn owners(&self) -> Result<Vec<Permission>, CloudError> {
        self.all(
            "GET /2.0/workspaces/{ws}/permissions",
            &format!("/2.0/workspaces/{}/permissions", self.ws()),
            &[("q", "permission=\"owner\"".into()), ("pagelen", PAGELEN.into())],
        )
        .await
    }

    /// Every group, with its members (one call).
    pub(crate) async fn groups(&self) -> Result<Vec<Group>, CloudError> {
        self.api
            .get("GET /1.0/groups/{ws}", &format!("/1.0/groups/{}", self.ws()), &[])
            .await
    }

    /// Pending invitations. Also the probe of where the workspace is administered: disabled
    /// (403 naming admin.atlassian.com) once administration moved there.
    pub(crate) async fn invitations(&self) -> Result<Vec<Invitation>, CloudError> {
        self.api
            .get(
                "GET /1.0/users/{ws}/invitations",
                &format!("/1.0/users/{}/invitations", self.ws()),
                &[],
            )
            .await
    }

    /// Creates a group (form body `name=…`).
    pub(crate) async fn create_group(&self, name: &str) -> Result<(), CloudError> {
        self.api
            .send(
                Method::POST,
                "POST /1.0/groups/{ws}",
                &format!("/1.0/groups/{}", self.ws()),
                &[],
                &Body::Form(vec![("name", name.to_string())]),
            )
            .await
            .map(drop)
    }

    /// Invites `email` to the workspace, into the group `slug`.
    pub(crate) async fn invite(&self, email: &str, slug: &str) -> Result<(), CloudError> {
        self.invitations.turn().await;
        self.api
            .send(
                Method::PUT,
                SEND_INVITATION,
                &format!("/1.0/users/{}/invitations", self.ws()),
                &[],
                &Body::Json(json!({"email": email, "group_slug": slug})),
            )
            .await
            .map(drop)
    }

    /// Adds an account to the group `slug` (409 when it already is a member).
    pub(crate) async fn add_member(&self, slug: &str, account_id: &str) -> Result<(), CloudError> {
        self.api
            .send(
                Method::PUT,
                "PUT /1.0/groups/{ws}/{slug}/members/{account_id}",
                &format!("/1.0/groups/{}/{}/members/{}", self.ws(), seg(slug), seg(account_id)),
                &[],
                &Body::Json(json!({})),
            )
            .await
            .map(drop)
    }

    /// Removes an account from the group `slug` (404 when it was not a member).
    pub(crate) async fn remove_member(&self, slug: &str, account_id: &str) -> Result<(), CloudError> {
        self.api
            .send(
                Method::DELETE,
                "DELETE /1.0/groups/{ws}/{slug}/members/{account_id}",
                &format!("/1.0/groups/{}/{}/members/{}", self.ws(), seg(slug), seg(account_id)),
                &[],
                &Body::Empty,
            )
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_segments_and_literals() {
        assert_eq!(slug_of("Site Admins"), "site-admins");
        assert_eq!(seg("557058:ab/c d"), "557058:ab%2Fc%20d");
        assert_eq!(quoted(r#"a"b@x.com"#), r#""a\"b@x.com""#);
    }
}

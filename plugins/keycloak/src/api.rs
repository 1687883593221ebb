//! Keycloak's Admin REST API over the host's `http` import: the realm's token, one `first`/`max`
//! page of a listing, and Keycloak's errors turned into messages that say which realm, client,
//! secret or role to fix.

use roster_sdk::errors::{classify_status_with, error_detail};
use roster_sdk::http::{Transport, path_segment, url_with_query};
use roster_sdk::oauth::{ClientCredentials, refusal_code};
use roster_sdk::paging::{Offset, Taken};
use roster_sdk::{PluginError, Request, Response};
use serde::de::DeserializeOwned;

use crate::settings::Settings;

/// The realm-management role that lets the service account read users, members and sub-groups.
pub const VIEW_USERS: &str = "view-users";
/// The realm-management role that lets the service account list groups.
pub const QUERY_GROUPS: &str = "query-groups";

/// What a request reads: named in messages, and deciding which role a 403 asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    /// `/users`.
    Users,
    /// `/groups` (top-level groups).
    Groups,
    /// `/groups/{id}/children`: a group's sub-groups (Keycloak 23 and later).
    Children(String),
    /// `/groups/{id}/members`: a group's direct members.
    Members(String),
}

impl Listing {
    /// How messages name it.
    pub fn name(&self) -> String {
        match self {
            Listing::Users => "list users".into(),
            Listing::Groups => "list groups".into(),
            Listing::Children(g) => format!("list the sub-groups of group {g}"),
            Listing::Members(g) => format!("list the members of group {g}"),
        }
    }

    /// The path under the realm's admin URL.
    pub fn path(&self) -> String {
        match self {
            Listing::Users => "/users".into(),
            Listing::Groups => "/groups".into(),
            Listing::Children(g) => format!("/groups/{}/children", path_segment(g)),
            Listing::Members(g) => format!("/groups/{}/members", path_segment(g)),
        }
    }

    /// The realm-management role Keycloak checks for it.
    pub fn role(&self) -> &'static str {
        match self {
            Listing::Groups => QUERY_GROUPS,
            _ => VIEW_USERS,
        }
    }

    /// Whether Keycloak should answer the full representation: users carry their attributes
    /// only then; members and groups need only ids, names and counts.
    fn brief(&self) -> &'static str {
        match self {
            Listing::Users => "false",
            _ => "true",
        }
    }
}

/// Keycloak for one source's settings over one transport.
pub struct Keycloak<'a> {
    /// The settings.
    pub s: &'a Settings,
    t: &'a dyn Transport,
    creds: ClientCredentials,
}

impl<'a> Keycloak<'a> {
    /// A client for these settings.
    pub fn new(s: &'a Settings, t: &'a dyn Transport) -> Self {
        Keycloak {
            s,
            t,
            creds: s.credentials(),
        }
    }

    /// A token for the realm's service account (cached for the job).
    pub fn token(&self) -> Result<String, PluginError> {
        self.creds.token(self.t).map_err(|e| explain_token_error(e, self.s))
    }

    /// The URL of one page of `listing`.
    pub fn url(&self, listing: &Listing, first: u64, max: u32) -> String {
        let (first, max) = (first.to_string(), max.to_string());
        url_with_query(
            &format!("{}{}", self.s.admin_url(), listing.path()),
            &[
                ("first", &first),
                ("max", &max),
                ("briefRepresentation", listing.brief()),
            ],
        )
    }

    /// How a message names a page: the connector, what it reads, and the URL without the server.
    pub fn what(&self, listing: &Listing, url: &str) -> String {
        let page = url.strip_prefix(&self.s.base_url).unwrap_or(url);
        format!("keycloak: {} (page {page})", listing.name())
    }

    /// GETs `url` with the service account's token (renewed once on a 401).
    pub fn get(&self, url: &str) -> Result<Response, PluginError> {
        self.creds
            .send(self.t, Request::get(url))
            .map_err(|e| explain_token_error(e, self.s))
    }

    /// One page of `listing` from `at`; `Ok(None)` when Keycloak says the group it is under is
    /// gone (deleted between its listing and this page).
    pub fn page<T: DeserializeOwned>(
        &self,
        listing: &Listing,
        at: &Offset,
        id: impl Fn(&T) -> &str,
    ) -> Result<Option<Taken<T>>, PluginError> {
        let size = self.s.page_size;
        let (first, max) = at.query(size);
        let url = self.url(listing, first, max);
        let what = self.what(listing, &url);
        let resp = self.get(&url)?;
        if matches!(listing, Listing::Children(_) | Listing::Members(_)) && group_missing(&resp) {
            return Ok(None);
        }
        if !resp.is_success() {
            return Err(classify(&what, listing, &resp, self.s));
        }
        let items: Vec<T> = resp.json(&what)?;
        at.take(size, items, id, &what).map(Some)
    }

    /// The first item of `listing` (`max=1`), for `check`; `Ok(None)` when there is none.
    pub fn first_item<T: DeserializeOwned>(&self, listing: &Listing) -> Result<Option<T>, PluginError> {
        let url = self.url(listing, 0, 1);
        let what = self.what(listing, &url);
        let resp = self.get(&url)?;
        if !resp.is_success() {
            return Err(classify(&what, listing, &resp, self.s));
        }
        let items: Vec<T> = resp.json(&what)?;
        Ok(items.into_iter().next())
    }
}

/// Keycloak's answer to an admin URL of a realm it does not have.
/// Keycloak's own word that a group is gone (`{"error":"Could not find group by id"}`): any
/// other 404 (a proxy's page, a wrong path) fails the listing rather than emptying the group.
fn group_missing(resp: &Response) -> bool {
    resp.status == 404
        && error_detail(&resp.body)
            .to_ascii_lowercase()
            .contains("could not find group")
}

fn realm_missing(resp: &Response) -> bool {
    resp.status == 404 && error_detail(&resp.body).to_ascii_lowercase().contains("realm")
}

/// What to do when a listing is refused for want of `role`.
pub fn role_advice(s: &Settings, role: &str) -> String {
    format!(
        "give the service account of client `{}` the realm-management role {role}: in realm {}, Clients → {} → Service accounts roles → Assign role → Filter by clients → realm-management {role} (Roster needs {VIEW_USERS} and {QUERY_GROUPS})",
        s.client_id, s.realm, s.client_id
    )
}

/// Keycloak's error answer to a listing as the error the host acts on, saying what to fix.
pub fn classify(what: &str, listing: &Listing, resp: &Response, s: &Settings) -> PluginError {
    let detail = error_detail(&resp.body);
    match resp.status {
        401 => PluginError::Auth(format!(
            "{what}: Keycloak did not accept the service account's token even after renewing it ({detail}); check that client `{}` is enabled in realm {}",
            s.client_id, s.realm
        )),
        403 => PluginError::Auth(format!(
            "{what}: Keycloak refused ({detail}); {}",
            role_advice(s, listing.role())
        )),
        404 if realm_missing(resp) => PluginError::Config(format!(
            "{what}: Keycloak has no realm `{}` ({detail}); write the realm's name (not its display name) in `realm`",
            s.realm
        )),
        404 => PluginError::Config(format!(
            "{what}: not found ({detail}); base_url {} may miss or have an extra `/auth` prefix (Keycloak before 17 serves under /auth, 17 and later do not)",
            s.base_url
        )),
        _ => classify_status_with(what, resp, &detail),
    }
}

/// The token endpoint's refusals, with what to fix in Keycloak.
pub fn explain_token_error(e: PluginError, s: &Settings) -> PluginError {
    let msg = e.to_string();
    let (client, realm) = (&s.client_id, &s.realm);
    if let PluginError::Config(m) = &e
        && m.starts_with("token request: not found (404)")
    {
        return if m.to_ascii_lowercase().contains("realm does not exist") {
            PluginError::Config(format!(
                "Keycloak has no realm `{realm}` at {} ({msg}); write the realm's name as the admin console's realm list shows it (case matters), not its display name",
                s.base_url
            ))
        } else {
            PluginError::Config(format!(
                "the token endpoint {} was not found ({msg}); check base_url: Keycloak before 17 needs the /auth prefix (https://sso.example.com/auth), 17 and later have none",
                s.token_url()
            ))
        };
    }
    match refusal_code(&e) {
        Some(_) if msg.contains("service account") => PluginError::Auth(format!(
            "client `{client}` of realm {realm} may not use a service account ({msg}); on the client's Settings turn on Client authentication and Service accounts roles"
        )),
        Some("invalid_client" | "unauthorized_client") => PluginError::Auth(format!(
            "Keycloak refused client `{client}` of realm {realm} ({msg}); check client_id, that the client is enabled with Client authentication on, and that the `{}` secret holds the Client secret from its Credentials tab",
            s.client_secret
        )),
        _ => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        roster_sdk::settings::read(r#"{"base_url":"https://sso.example.com","realm":"acme","client_id":"roster"}"#)
            .unwrap()
    }

    fn resp(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_refused_listing_names_the_role_to_add() {
        let s = settings();
        let forbidden = resp(403, r#"{"error":"HTTP 403 Forbidden"}"#);
        let e = classify("w", &Listing::Users, &forbidden, &s);
        assert!(
            matches!(&e, PluginError::Auth(m) if m.contains("realm-management role view-users") && m.contains("Clients → roster")),
            "{e:?}"
        );
        let e = classify("w", &Listing::Groups, &forbidden, &s);
        assert!(
            matches!(&e, PluginError::Auth(m) if m.contains("realm-management role query-groups")),
            "{e:?}"
        );
        let e = classify("w", &Listing::Users, &resp(404, r#"{"error":"Realm not found."}"#), &s);
        assert!(
            matches!(&e, PluginError::Config(m) if m.contains("no realm `acme`")),
            "{e:?}"
        );
        let e = classify("w", &Listing::Users, &resp(404, "<html>Not Found</html>"), &s);
        assert!(matches!(&e, PluginError::Config(m) if m.contains("/auth")), "{e:?}");
        let e = classify("w", &Listing::Users, &resp(503, ""), &s);
        assert!(matches!(e, PluginError::Transient(_)), "{e:?}");
    }

    #[test]
    fn token_refusals_name_the_client_setting() {
        let s = settings();
        let refused =
            |code: &str, d: &str| PluginError::Auth(format!("token request to x was refused (401 {code}): {d}"));
        let e = explain_token_error(
            refused("unauthorized_client", "Invalid client or Invalid client credentials"),
            &s,
        );
        assert!(
            matches!(&e, PluginError::Auth(m) if m.contains("`client_secret` secret") && m.contains("Credentials tab")),
            "{e:?}"
        );
        let e = explain_token_error(
            refused("unauthorized_client", "Client not enabled to retrieve service account"),
            &s,
        );
        assert!(
            matches!(&e, PluginError::Auth(m) if m.contains("Service accounts roles")),
            "{e:?}"
        );
        let e = explain_token_error(
            PluginError::Config("token request: not found (404); check the settings: Realm does not exist".into()),
            &s,
        );
        assert!(
            matches!(&e, PluginError::Config(m) if m.contains("no realm `acme`")),
            "{e:?}"
        );
        let e = explain_token_error(
            PluginError::Config("token request: not found (404); check the settings: (empty body)".into()),
            &s,
        );
        assert!(
            matches!(&e, PluginError::Config(m) if m.contains("/auth prefix")),
            "{e:?}"
        );
        assert!(matches!(
            explain_token_error(PluginError::Transient("x".into()), &s),
            PluginError::Transient(_)
        ));
    }
}

//! `check`: is the source usable, and if not, exactly why — in a handful of requests. Order:
//! the service app's token (client, key, DPoP, every scope not granted), then one request per
//! listing the scope needs (every refused one named at once, with the scope or admin role to
//! grant), then whether the first user listed has the username attribute, then the scope itself
//! (the search expressions, the listed groups, the application).

use roster_sdk::PluginError;
use roster_sdk::http::path_segment;
use roster_sdk::oauth::refusal_code;

use crate::fetch::{resolve_group, unknown_app};
use crate::okta::{Listing, Okta, classify, explain_token_error, insufficient_scope, not_found, role_advice};
use crate::settings::{Scope, Settings};

/// Runs the checks.
pub fn check(o: &Okta<'_>) -> Result<(), PluginError> {
    let s = o.s;
    token(o)?;
    let mut probes = vec![
        (o.url("/api/v1/users", &[("limit", "1")]), Listing::Users),
        (o.url("/api/v1/groups", &[("limit", "1")]), Listing::Groups),
    ];
    if s.scope == Scope::App {
        let id = s.app_id.clone().unwrap_or_default();
        probes.push((
            o.url(&format!("/api/v1/apps/{}", path_segment(&id)), &[]),
            Listing::App(id),
        ));
    }
    let mut scopes = Vec::new();
    let mut refused = Vec::new();
    let mut probe_user = None;
    for (url, listing) in &probes {
        let resp = o.get(url, listing)?;
        match resp.status {
            200..=299 => {
                if *listing == Listing::Users {
                    probe_user = first_item(&resp.body);
                }
            }
            403 => match insufficient_scope(&resp) {
                Some(scope) => scopes.push(scope),
                None => refused.push(listing.clone()),
            },
            404 if matches!(listing, Listing::App(_)) && not_found(&resp) => {
                return Err(unknown_app(s.app_id.as_deref().unwrap_or_default()));
            }
            _ => return Err(classify(&o.what(listing, url), listing, &resp, url, s)),
        }
    }
    if !scopes.is_empty() {
        return Err(PluginError::Auth(format!(
            "the service app's token lacks {}: grant {} under the app's Okta API Scopes",
            scopes.join(", "),
            scopes.join(" and ")
        )));
    }
    if let Some(first) = refused.first() {
        let names: Vec<String> = refused.iter().map(Listing::name).collect();
        return Err(PluginError::Auth(format!(
            "Okta refused to {} (E0000006): {}",
            names.join(", "),
            role_advice(s, first)
        )));
    }
    if let Some(user) = &probe_user {
        username_attribute(s, user)?;
    }
    match s.scope {
        Scope::Org => {
            if let Some(search) = &s.user_search {
                let url = o.url("/api/v1/users", &[("search", search), ("limit", "1")]);
                o.page::<serde_json::Value>(&url, &Listing::Users)?;
            }
            let url = o.url("/api/v1/groups", &[("search", &s.group_search), ("limit", "1")]);
            o.page::<serde_json::Value>(&url, &Listing::Groups)?;
        }
        Scope::Groups => {
            let mut problems = Vec::new();
            for wanted in &s.groups {
                match resolve_group(o, wanted) {
                    Ok(_) => {}
                    Err(PluginError::Config(why)) => problems.push(why),
                    Err(other) => return Err(other),
                }
            }
            if !problems.is_empty() {
                return Err(PluginError::Config(problems.join("; ")));
            }
        }
        // The application exists: the probe above read it.
        Scope::App => {}
    }
    Ok(())
}

/// The first object of a listing's body; `None` for an empty or unreadable one (the fetch
/// names a malformed page itself).
fn first_item(body: &[u8]) -> Option<serde_json::Value> {
    match serde_json::from_slice(body).ok()? {
        serde_json::Value::Array(items) => items.into_iter().next(),
        _ => None,
    }
}

/// The username attribute is in a user's profile: a name Okta does not have (a typo, a custom
/// attribute never created) would skip every user, which the check says now rather than the
/// first run.
fn username_attribute(s: &Settings, user: &serde_json::Value) -> Result<(), PluginError> {
    let attr = &s.username_attribute;
    let Some(profile) = user.get("profile").and_then(serde_json::Value::as_object) else {
        return Ok(());
    };
    if profile.contains_key(attr) {
        return Ok(());
    }
    let who = profile
        .get("login")
        .and_then(serde_json::Value::as_str)
        .or_else(|| user.get("id").and_then(serde_json::Value::as_str))
        .unwrap_or("read");
    let mut have: Vec<&str> = profile.keys().map(String::as_str).collect();
    have.sort_unstable();
    Err(PluginError::Config(format!(
        "username_attribute: the Okta user {who} has no profile attribute `{attr}` (it has {}), so every user without it would be skipped; set username_attribute in this source's settings to one every user has (login, email) or add `{attr}` to the user profile in Okta (Directory → Profile Editor)",
        have.join(", ")
    )))
}

/// The service app's token: refused for the client or key, for DPoP, or for scopes — each
/// scope asked for alone so every one not granted is named.
fn token(o: &Okta<'_>) -> Result<(), PluginError> {
    let s = o.s;
    if s.credentials(&[]).is_none() {
        return Ok(());
    }
    token_with(s, |scopes| match s.credentials(scopes) {
        Some(c) => c.token(o.transport()).map(drop),
        None => Ok(()),
    })
}

/// [`token`] with the token request as `ask` (scopes → granted or the endpoint's refusal).
fn token_with(s: &Settings, ask: impl Fn(&[&str]) -> Result<(), PluginError>) -> Result<(), PluginError> {
    let wanted = s.oauth_scopes();
    let e = match ask(&wanted) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    if refusal_code(&e) != Some("invalid_scope") {
        return Err(explain_token_error(e, s));
    }
    let mut missing = Vec::new();
    for scope in &wanted {
        match ask(&[scope]) {
            Ok(()) => {}
            Err(e) if refusal_code(&e) == Some("invalid_scope") => missing.push(*scope),
            Err(e) => return Err(explain_token_error(e, s)),
        }
    }
    if missing.is_empty() {
        return Err(explain_token_error(e, s));
    }
    Err(PluginError::Auth(format!(
        "the service app {} is not granted {}: grant {} under the app's Okta API Scopes",
        s.client_id.as_deref().unwrap_or_default(),
        missing.join(", "),
        missing.join(" and ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service_app() -> Settings {
        roster_sdk::settings::read(
            r#"{"org_url":"https://acme.okta.com","auth":"service-app","client_id":"0oasvc","scope":"app","app_id":"0oa1"}"#,
        )
        .unwrap()
    }

    /// The token endpoint's answer to a request for `scopes`, as the SDK reports it.
    fn endpoint(refused: &'static [&'static str], error: &'static str) -> impl Fn(&[&str]) -> Result<(), PluginError> {
        move |scopes: &[&str]| {
            if !error.is_empty() {
                return Err(PluginError::Auth(format!(
                    "token request to https://acme.okta.com/oauth2/v1/token was refused (400 {error}): no"
                )));
            }
            let bad: Vec<&str> = scopes.iter().copied().filter(|s| refused.contains(s)).collect();
            if bad.is_empty() {
                Ok(())
            } else {
                Err(PluginError::Auth(format!(
                    "token request to https://acme.okta.com/oauth2/v1/token was refused (400 invalid_scope): The following scopes are not allowed: {}",
                    bad.join(" ")
                )))
            }
        }
    }

    #[test]
    fn every_scope_not_granted_is_named_at_once() {
        let s = service_app();
        token_with(&s, endpoint(&[], "")).unwrap();
        let e = token_with(&s, endpoint(&["okta.groups.read", "okta.apps.read"], "")).unwrap_err();
        assert!(
            matches!(&e, PluginError::Auth(m) if m.contains("not granted okta.groups.read, okta.apps.read") && m.contains("0oasvc") && !m.contains("okta.users.read")),
            "{e:?}"
        );
    }

    #[test]
    fn dpop_and_unknown_clients_say_what_to_change_in_okta() {
        let s = service_app();
        let e = token_with(&s, endpoint(&[], "invalid_dpop_proof")).unwrap_err();
        assert!(
            matches!(&e, PluginError::Auth(m) if m.contains("Require Demonstrating Proof of Possession")),
            "{e:?}"
        );
        let e = token_with(&s, endpoint(&[], "use_dpop_nonce")).unwrap_err();
        assert!(
            matches!(&e, PluginError::Auth(m) if m.contains("Roster does not send DPoP")),
            "{e:?}"
        );
        let e = token_with(&s, endpoint(&[], "invalid_client")).unwrap_err();
        assert!(matches!(&e, PluginError::Auth(m) if m.contains("private_key")), "{e:?}");
    }
}

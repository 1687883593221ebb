//! `check`: is the source usable, and if not, exactly why — in a handful of requests. Order:
//! the token (the key, domain-wide delegation, each scope not granted), then one request per
//! listing (the impersonated admin's privileges, the account or domain, the queries).

use roster_sdk::PluginError;
use roster_sdk::oauth::refusal_code;

use crate::api::{Google, Listing, classify, explain_token_error};
use crate::settings::{SCOPES, Settings};

/// Runs the checks.
pub fn check(g: &Google<'_>) -> Result<(), PluginError> {
    let s = g.s;
    // A token cached by an earlier call says nothing about the key and delegation now.
    token_with(s, |scopes| {
        let grant = s.grant(scopes);
        grant.forget();
        grant.token(g.transport()).map(drop)
    })?;
    let probes = [
        (g.users_url("1", None), Listing::Users),
        (g.groups_url("1", None), Listing::Groups),
    ];
    let mut refused = Vec::new();
    for (url, listing) in &probes {
        let resp = g.get(url)?;
        match resp.status {
            200..=299 => {}
            403 => match classify(&g.what(listing, url), listing, &resp, s) {
                // Refused for want of a privilege: named together below.
                PluginError::Auth(why) if why.contains("needs an admin role") => refused.push(listing.clone()),
                other => return Err(other),
            },
            _ => return Err(classify(&g.what(listing, url), listing, &resp, s)),
        }
    }
    if !refused.is_empty() {
        let names: Vec<String> = refused.iter().map(Listing::name).collect();
        return Err(PluginError::Auth(format!(
            "Google refused to {} (403 Not Authorized to access this resource/api): the admin Roster acts as, {}, is not an admin who may read them; give {} an admin role with the Users → Read and Groups → Read privileges (Admin console → Account → Admin roles), or set admin_email to a super admin",
            names.join(" and "),
            s.admin_email,
            s.admin_email
        )));
    }
    Ok(())
}

/// The token: refused for the key, the admin or the delegation — and when the delegation is
/// there but lacks scopes, each scope asked for alone so every one not granted is named.
pub fn token_with(s: &Settings, ask: impl Fn(&[&str]) -> Result<(), PluginError>) -> Result<(), PluginError> {
    let e = match ask(SCOPES) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    if refusal_code(&e) != Some("unauthorized_client") {
        return Err(explain_token_error(e, s));
    }
    // Google answers `unauthorized_client` both when the client id has no delegation and when
    // a scope asked for is not among the delegated ones: a scope granted alone tells them apart.
    let mut missing = Vec::new();
    for scope in SCOPES {
        match ask(&[scope]) {
            Ok(()) => {}
            Err(e) if refusal_code(&e) == Some("unauthorized_client") => missing.push(*scope),
            Err(e) => return Err(explain_token_error(e, s)),
        }
    }
    if missing.len() == SCOPES.len() || missing.is_empty() {
        return Err(explain_token_error(e, s));
    }
    Err(PluginError::Auth(format!(
        "the service account {}'s domain-wide delegation does not grant {}: in the Admin console under Security → Access and data control → API controls → Domain-wide delegation, edit its client id and add {} to its scopes",
        s.service_account,
        missing.join(", "),
        missing.join(",")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{GROUP_SCOPE, USER_SCOPE};

    fn settings() -> Settings {
        roster_sdk::settings::read(
            r#"{"service_account":"roster@acme-sync.iam.gserviceaccount.com","admin_email":"admin@acme.com"}"#,
        )
        .unwrap()
    }

    /// Google's token endpoint: refuses every request with `error`, or those asking for a scope
    /// in `ungranted` with `unauthorized_client`.
    fn endpoint(
        ungranted: &'static [&'static str],
        error: &'static str,
    ) -> impl Fn(&[&str]) -> Result<(), PluginError> {
        move |scopes: &[&str]| {
            let refuse = |code: &str, why: &str| {
                Err(PluginError::Auth(format!(
                    "token request to https://oauth2.googleapis.com/token was refused (400 {code}): {why}"
                )))
            };
            if !error.is_empty() {
                return refuse(error, "Invalid JWT Signature.");
            }
            if scopes.iter().any(|s| ungranted.contains(s)) {
                return refuse(
                    "unauthorized_client",
                    "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.",
                );
            }
            Ok(())
        }
    }

    #[test]
    fn a_scope_missing_from_the_delegation_is_named() {
        let s = settings();
        token_with(&s, endpoint(&[], "")).unwrap();
        let e = token_with(&s, endpoint(&[GROUP_SCOPE], "")).unwrap_err();
        assert!(
            matches!(&e, PluginError::Auth(m) if m.contains("does not grant https://www.googleapis.com/auth/admin.directory.group.readonly") && !m.contains("user.readonly,")),
            "{e:?}"
        );
    }

    #[test]
    fn no_delegation_and_a_refused_key_say_what_to_do() {
        let s = settings();
        let e = token_with(&s, endpoint(&[USER_SCOPE, GROUP_SCOPE], "")).unwrap_err();
        assert!(
            matches!(&e, PluginError::Auth(m) if m.contains("may not act as admin@acme.com") && m.contains("Domain-wide delegation")),
            "{e:?}"
        );
        let e = token_with(&s, endpoint(&[], "invalid_grant")).unwrap_err();
        assert!(
            matches!(&e, PluginError::Auth(m) if m.contains("create a new JSON key") && m.contains("`service_account_key` secret")),
            "{e:?}"
        );
    }
}

//! `check`: is the source usable, and if not, exactly why. Order: the token (a refused
//! credential, or an api_url that is not OneLogin, stops here), reading users, then roles (and
//! the `roles` named) and groups as `groups_from` needs them.

use roster_sdk::PluginError;

use crate::api::{Api, Paging, what};
use crate::fetch::resolve;
use crate::model::Role;

fn probe(api: &Api<'_>, path: &str, query: &[(&str, &str)]) -> Result<(), PluginError> {
    let what = what(path);
    let resp = api.get(&api.url(path, query), &what)?;
    if resp.status == 404 {
        return Err(PluginError::Config(format!(
            "{what}: OneLogin answered 404: api_url should be https://<subdomain>.onelogin.com, the account's API domain"
        )));
    }
    api.ok(resp, &what).map(drop)
}

/// Runs the checks.
pub fn check(api: &Api<'_>) -> Result<(), PluginError> {
    let s = api.s;
    api.token()?;
    probe(api, "/api/2/users", &[("limit", "1")])?;
    if s.groups_from.roles() {
        if s.roles.is_empty() {
            probe(api, "/api/2/roles", &[("limit", "1")])?;
        } else {
            let mut paging = Paging::new(api.url("/api/2/roles", &[("limit", &s.page_size.to_string())]));
            let mut found = Vec::new();
            loop {
                let what = paging.what(&what("/api/2/roles"));
                let Some(page) = api.page::<Role>(&paging.url("cursor"), &what)? else {
                    return probe(api, "/api/2/roles", &[("limit", "1")]);
                };
                found.extend(page.items.into_iter().map(|r| (r.id, r.name)));
                if !paging.advance(page.after, &what)? {
                    break;
                }
            }
            resolve(&s.roles, &found)?;
        }
    }
    if s.groups_from.groups() {
        probe(api, "/api/1/groups", &[])?;
    }
    Ok(())
}

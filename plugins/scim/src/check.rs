//! `check`: is the source usable, and if not, exactly why. Order: `/ServiceProviderConfig`
//! (a URL that is not a SCIM service, and a refused token, stop here), one user (the filter,
//! and the username attribute), one group (the group filter).

use roster_scim::{ListResponse, user_record};
use roster_sdk::{Level, PluginError};
use serde_json::Value;

use crate::api::{Listing, Scim, malformed};
use crate::model;

/// The schema URN of a ServiceProviderConfig resource.
pub const SPC_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";

/// Whether `body` is a ServiceProviderConfig: its schema URN, or (services that leave
/// `schemas` out) the attributes RFC 7643 §5 requires.
fn is_service_provider_config(body: &Value) -> bool {
    let urn = body.get("schemas").and_then(Value::as_array).is_some_and(|s| {
        s.iter()
            .any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(SPC_URN)))
    });
    urn || (body.get("patch").is_some() && body.get("filter").is_some())
}

/// Runs the checks.
pub fn check(scim: &Scim<'_>) -> Result<(), PluginError> {
    let s = scim.s;
    let url = format!("{}{}", s.base_url, Listing::Config.path());
    let what = scim.what(&Listing::Config, &url);
    let not_scim = |why: String| {
        PluginError::Config(format!(
            "{what}: base_url {} is not a SCIM 2.0 service ({why}); write the SCIM base URL that /Users and /Groups are under, e.g. https://idp.example.com/scim/v2",
            s.base_url
        ))
    };
    let resp = scim.get(&url)?;
    match resp.status {
        401 | 403 => return Err(crate::api::classify(&what, &Listing::Config, &resp, s)),
        200..=299 => {}
        404 => return Err(not_scim("it has no /ServiceProviderConfig: 404".into())),
        _ => return Err(crate::api::classify(&what, &Listing::Config, &resp, s)),
    }
    let body: Value = serde_json::from_slice(&resp.body).map_err(|_| {
        not_scim(format!(
            "/ServiceProviderConfig is not JSON: {}",
            roster_sdk::errors::excerpt(&resp.body)
        ))
    })?;
    if !is_service_provider_config(&body) {
        return Err(not_scim(
            "/ServiceProviderConfig is JSON but not a ServiceProviderConfig".into(),
        ));
    }
    let filter_supported = body.pointer("/filter/supported").and_then(Value::as_bool);
    if filter_supported == Some(false) && (s.users_filter().is_some() || s.group_filter.is_some()) {
        return Err(PluginError::Config(format!(
            "{what}: the service says it does not support filters, but user_filter, group_filter or users = \"active-only\" sends one; remove them"
        )));
    }

    let url = scim.url(&Listing::Users, 0, 1);
    let what = scim.what(&Listing::Users, &url);
    let list = ListResponse::parse(&scim.read(&Listing::Users, &url)?).map_err(|e| malformed(&what, &e))?;
    if let Some(first) = list.resources.first() {
        let u = user_record(first).map_err(|e| malformed(&what, &e))?;
        if model::username(&u, s).is_none() {
            return Err(PluginError::Config(format!(
                "username_attribute: user {} has no {}; write userName, email or an attribute every user has",
                u.user_name, s.username_attribute
            )));
        }
    }
    let url = scim.url(&Listing::Groups, 0, 1);
    let what = scim.what(&Listing::Groups, &url);
    ListResponse::parse(&scim.read(&Listing::Groups, &url)?).map_err(|e| malformed(&what, &e))?;
    roster_sdk::log(
        Level::Info,
        &format!(
            "scim: {} users match; SCIM has no change feed, so every run (incremental too) reads every user and group",
            list.total_results
        ),
    );
    Ok(())
}

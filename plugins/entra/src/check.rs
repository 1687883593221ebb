//! `check`: is the source usable, and if not, exactly why — in seconds, with a handful of
//! requests. Order: settings, then the token (bad tenant, client or secret stop here), then one
//! cheap request per permission the scope needs (all missing permissions named at once), then
//! the scope itself (listed groups, the application, the filters, the attributes).

use roster_sdk::PluginError;
use roster_sdk::http::path_segment;

use crate::graph::{Graph, Needs, classify};
use crate::scope::{self, EVENTUAL};
use crate::settings::Scope;

/// Runs the checks.
pub fn check(g: &Graph<'_>) -> Result<(), PluginError> {
    let s = g.s;
    let mut probes = vec![
        (g.url("/users", &[("$select", "id"), ("$top", "1")]), Needs::Users),
        (g.url("/groups", &[("$select", "id"), ("$top", "1")]), Needs::Groups),
    ];
    if s.scope == Scope::App {
        probes.push((
            g.url("/servicePrincipals", &[("$select", "id"), ("$top", "1")]),
            Needs::Apps,
        ));
    }
    let mut missing = Vec::new();
    let mut some_group = None;
    for (url, needs) in probes {
        let resp = g.raw(&url, "check permissions", &[])?;
        match resp.status {
            200..=299 => {
                if needs == Needs::Groups {
                    some_group = resp
                        .json::<crate::graph::Collection>("list groups")?
                        .value
                        .first()
                        .and_then(|o| o.get("id").and_then(|v| v.as_str()).map(str::to_string));
                }
            }
            403 => missing.push(needs.permission()),
            _ => return Err(classify("check permissions", needs, &resp, &s.client_id)),
        }
    }
    if let Some(gid) = some_group.filter(|_| missing.is_empty()) {
        // Listing groups works with Group.Read.All too; members need GroupMember (or Group) read.
        let url = g.url(
            &format!("/groups/{}/members", path_segment(&gid)),
            &[("$select", "id"), ("$top", "1")],
        );
        let resp = g.raw(&url, "check permissions", &[])?;
        if resp.status == 403 {
            missing.push(Needs::Groups.permission());
        }
    }
    if !missing.is_empty() {
        return Err(PluginError::Auth(format!(
            "the app registration {} lacks the Microsoft Graph application permission{} {}: add {} under API permissions and grant admin consent",
            s.client_id,
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", "),
            if missing.len() > 1 { "them" } else { "it" },
        )));
    }
    // The attributes asked for exist (extension attributes are per tenant).
    let url = g.url("/users", &[("$select", &s.user_select()), ("$top", "1")]);
    g.page(
        &url,
        "read the configured user attributes (attributes, extension_attributes, username_attribute)",
        Needs::Users,
    )?;
    match s.scope {
        Scope::Tenant => {
            if let Some(f) = &s.user_filter {
                let url = g.url(
                    "/users",
                    &[("$filter", f), ("$select", "id"), ("$top", "1"), ("$count", "true")],
                );
                g.page_with(&url, &format!("user_filter `{f}`"), Needs::Users, EVENTUAL)?;
            }
            if let Some(f) = &s.group_filter {
                let url = g.url(
                    "/groups",
                    &[("$filter", f), ("$select", "id"), ("$top", "1"), ("$count", "true")],
                );
                g.page_with(&url, &format!("group_filter `{f}`"), Needs::Groups, EVENTUAL)?;
            }
        }
        Scope::Groups => {
            for wanted in s.groups.iter().filter(|w| !w.trim().is_empty()) {
                scope::resolve_group(g, wanted)?;
            }
        }
        Scope::App => {
            let sp = scope::service_principal(g)?;
            let a = scope::assignments(g, &sp)?;
            if a.all.is_empty() {
                return Err(PluginError::Config(format!(
                    "the Enterprise Application {} has no users or groups assigned: assign them under Users and groups, or Roster syncs nobody",
                    s.app_id
                        .as_deref()
                        .or(s.service_principal_id.as_deref())
                        .unwrap_or_default()
                )));
            }
        }
    }
    Ok(())
}

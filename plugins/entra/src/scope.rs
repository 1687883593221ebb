//! The pieces of a scope: the listed groups, the Enterprise Application and its assignments,
//! users fetched by id, and "is this user inside the scope?".

use std::collections::BTreeSet;

use roster_sdk::PluginError;
use roster_sdk::driver::Records;
use roster_sdk::http::path_segment;

use crate::graph::{Graph, Needs, Object};
use crate::model;
use crate::settings::GROUP_PROPERTIES;

/// Graph's limit of values in one `in (…)` filter clause.
pub const IN_CLAUSE_MAX: usize = 15;

/// `ConsistencyLevel: eventual`, which `$count` and advanced filters need.
pub const EVENTUAL: &[(&str, &str)] = &[("consistencylevel", "eventual")];

/// An OData string literal: quotes doubled.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `id in ('a','b',…)`.
pub fn id_in(ids: &[String]) -> String {
    let list: Vec<String> = ids.iter().map(|i| literal(i)).collect();
    format!("id in ({})", list.join(","))
}

/// True for the 8-4-4-4-12 hex form Entra object ids have.
pub fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// A listed group, by object id or display name; unknown and ambiguous names are config errors.
pub fn resolve_group(g: &Graph<'_>, wanted: &str) -> Result<Object, PluginError> {
    let wanted = wanted.trim();
    if is_guid(wanted) {
        let url = g.url(
            &format!("/groups/{}", path_segment(wanted)),
            &[("$select", &GROUP_PROPERTIES.join(","))],
        );
        return g
            .object(&url, &format!("read group {wanted}"), Needs::Groups)?
            .ok_or_else(|| {
                PluginError::Config(format!(
                    "unknown group `{wanted}`: no group has that object id in tenant {}",
                    g.s.tenant_id
                ))
            });
    }
    let url = g.url(
        "/groups",
        &[
            ("$filter", &format!("displayName eq {}", literal(wanted))),
            ("$select", &GROUP_PROPERTIES.join(",")),
        ],
    );
    let found = g.page(&url, &format!("find group `{wanted}`"), Needs::Groups)?.value;
    match found.len() {
        0 => Err(PluginError::Config(format!(
            "unknown group `{wanted}`: no group has that display name in tenant {}; check the spelling or give its object id",
            g.s.tenant_id
        ))),
        1 => Ok(found.into_iter().next().unwrap_or_default()),
        n => {
            let ids: Vec<String> = found.iter().filter_map(|o| model::id(o, "group").ok()).collect();
            Err(PluginError::Config(format!(
                "`{wanted}` names {n} groups ({}); list the one you mean by its object id",
                ids.join(", ")
            )))
        }
    }
}

/// The Enterprise Application's service principal object id.
pub fn service_principal(g: &Graph<'_>) -> Result<String, PluginError> {
    let select = [("$select", "id,appId,displayName")];
    if let Some(id) = &g.s.service_principal_id {
        let url = g.url(&format!("/servicePrincipals/{}", path_segment(id)), &select);
        let sp = g
            .object(&url, "read the Enterprise Application", Needs::Apps)?
            .ok_or_else(|| {
                PluginError::Config(format!(
                    "service_principal_id `{id}`: no service principal has that object id in tenant {}",
                    g.s.tenant_id
                ))
            })?;
        return model::id(&sp, "service principal");
    }
    let app = g.s.app_id.as_deref().unwrap_or_default();
    let url = g.url(
        "/servicePrincipals",
        &[("$filter", &format!("appId eq {}", literal(app))), select[0]],
    );
    let found = g.page(&url, "find the Enterprise Application", Needs::Apps)?.value;
    let sp = found.first().ok_or_else(|| {
        PluginError::Config(format!(
            "app_id `{app}`: tenant {} has no Enterprise Application (service principal) for that application id",
            g.s.tenant_id
        ))
    })?;
    model::id(sp, "service principal")
}

/// Who is assigned to the application.
#[derive(Debug, Default, PartialEq)]
pub struct Assignments {
    /// Users assigned directly.
    pub users: BTreeSet<String>,
    /// Groups assigned (their members are in scope transitively).
    pub groups: BTreeSet<String>,
    /// Every assigned principal.
    pub all: BTreeSet<String>,
}

/// Every assignment of the application (all pages).
pub fn assignments(g: &Graph<'_>, sp: &str) -> Result<Assignments, PluginError> {
    let mut out = Assignments::default();
    let mut url = Some(g.url(
        &format!("/servicePrincipals/{}/appRoleAssignedTo", path_segment(sp)),
        &[("$top", &g.s.page_size.to_string())],
    ));
    let mut guard = roster_sdk::paging::LoopGuard::default();
    while let Some(u) = url {
        let c = g.page(&u, "list the application's assignments", Needs::Apps)?;
        for a in &c.value {
            let Some(pid) = a.get("principalId").and_then(|v| v.as_str()) else {
                continue;
            };
            match a.get("principalType").and_then(|v| v.as_str()) {
                Some("User") => out.users.insert(pid.to_string()),
                Some("Group") => out.groups.insert(pid.to_string()),
                _ => continue,
            };
            out.all.insert(pid.to_string());
        }
        url = c.next_link;
        if let Some(n) = &url {
            guard.check(n)?;
        }
    }
    Ok(out)
}

/// Fetches users by id (15 per request), optionally only those `filter` admits; returns the
/// objects found.
pub fn users_by_id(g: &Graph<'_>, ids: &[String], filter: Option<&str>) -> Result<Vec<Object>, PluginError> {
    by_id(g, "/users", &g.s.user_select(), Needs::Users, ids, filter)
}

/// Groups by id (15 per request), optionally only those `filter` admits.
pub fn groups_by_id(g: &Graph<'_>, ids: &[String], filter: Option<&str>) -> Result<Vec<Object>, PluginError> {
    by_id(g, "/groups", &GROUP_PROPERTIES.join(","), Needs::Groups, ids, filter)
}

fn by_id(
    g: &Graph<'_>,
    path: &str,
    select: &str,
    needs: Needs,
    ids: &[String],
    filter: Option<&str>,
) -> Result<Vec<Object>, PluginError> {
    let mut out = Vec::new();
    for chunk in ids.chunks(IN_CLAUSE_MAX) {
        let what = format!("read {} by id", &path[1..]);
        let page = match filter {
            // An administrator's filter is tried as a standard query, answered from the directory
            // itself; one that needs an advanced query (eventual consistency) is asked that way.
            Some(f) => {
                let clause = format!("({f}) and {}", id_in(chunk));
                let url = g.url(path, &[("$filter", &clause), ("$select", select)]);
                match g.page(&url, &what, needs) {
                    Err(PluginError::Config(why)) if why.contains("Request_UnsupportedQuery") => {
                        let url = g.url(path, &[("$filter", &clause), ("$select", select), ("$count", "true")]);
                        g.page_with(&url, &what, needs, EVENTUAL)?
                    }
                    other => other?,
                }
            }
            // A plain `id in (…)` is a standard query, answered from the directory itself.
            None => {
                let url = g.url(path, &[("$filter", &id_in(chunk)), ("$select", select)]);
                g.page(&url, &what, needs)?
            }
        };
        out.extend(page.value);
    }
    Ok(out)
}

/// The ids of `wanted` that `found` lacks.
pub fn missing(wanted: &[String], found: &[Object]) -> Vec<String> {
    let got: std::collections::HashSet<&str> = found.iter().filter_map(|o| o.get("id")?.as_str()).collect();
    wanted.iter().filter(|id| !got.contains(id.as_str())).cloned().collect()
}

/// Whether a user or group is gone from the directory: only Graph's own "does not exist" says
/// so. An object a query did not return may just not be indexed yet.
pub fn exists(g: &Graph<'_>, path: &str, id: &str, needs: Needs) -> Result<bool, PluginError> {
    let url = g.url(&format!("{path}/{}", path_segment(id)), &[("$select", "id")]);
    Ok(g.object(&url, &format!("read {} {id}", &path[1..]), needs)?.is_some())
}

/// Every direct member of a group (all pages), for a group that entered the scope.
pub fn members_of(g: &Graph<'_>, group: &str) -> Result<Vec<roster_sdk::Membership>, PluginError> {
    let mut out = Vec::new();
    let mut url = Some(g.url(
        &format!("/groups/{}/members", path_segment(group)),
        &[("$select", "id"), ("$top", &g.s.page_size.to_string())],
    ));
    let mut guard = roster_sdk::paging::LoopGuard::default();
    while let Some(u) = url {
        let Some(c) = g.page_opt(&u, &format!("list the members of group {group}"), Needs::Groups)? else {
            break;
        };
        for m in &c.value {
            out.extend(model::membership(group, m)?);
        }
        url = c.next_link;
        if let Some(n) = &url {
            guard.check(n)?;
        }
    }
    Ok(out)
}

/// Is the user in the scope: assigned directly, or a transitive member of a group in `tree`?
pub fn user_in_tree(
    g: &Graph<'_>,
    user: &str,
    tree: &BTreeSet<String>,
    direct: &BTreeSet<String>,
) -> Result<bool, PluginError> {
    if direct.contains(user) {
        return Ok(true);
    }
    let mut url = Some(g.url(
        &format!("/users/{}/transitiveMemberOf", path_segment(user)),
        &[("$select", "id"), ("$top", "999")],
    ));
    let mut guard = roster_sdk::paging::LoopGuard::default();
    while let Some(u) = url {
        let Some(c) = g.page_opt(&u, "list a user's groups", Needs::Groups)? else {
            return Ok(false);
        };
        if c.value
            .iter()
            .filter_map(|o| o.get("id").and_then(|v| v.as_str()))
            .any(|id| tree.contains(id))
        {
            return Ok(true);
        }
        url = c.next_link;
        if let Some(n) = &url {
            guard.check(n)?;
        }
    }
    Ok(false)
}

/// Adds the user records of `objects` to the page (guests per the settings).
pub fn emit_users(g: &Graph<'_>, page: &mut Records, objects: &[Object]) -> Result<(), PluginError> {
    for o in objects {
        if let Some(u) = model::user(o, g.s)? {
            page.users.push(u);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odata_pieces() {
        assert_eq!(literal("O'Brien"), "'O''Brien'");
        assert_eq!(id_in(&["a".into(), "b".into()]), "id in ('a','b')");
        assert!(is_guid("8f1c2d3e-0000-4000-8000-00000000abcd"));
        assert!(!is_guid("Engineering"));
        assert!(!is_guid("8f1c2d3e-0000-4000-8000-00000000abcg"));
        assert_eq!(roster_sdk::http::path_segment("a b/c"), "a%20b%2Fc");
    }
}

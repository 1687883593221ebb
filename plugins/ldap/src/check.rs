//! `check`: can Roster read this directory, and if not, exactly why — the rootDSE (connect,
//! TLS, bind), the base DNs, one user of the user search with its id and name, the group search,
//! and whether the server pages (a warning when it does not: its size limit then caps every
//! fetch, which fails instead of deleting).

use roster_sdk::ldap::{self, Directory, PAGED_RESULTS_OID, SearchRequest, first_text, search_once, values};
use roster_sdk::{Level, PluginError};

use crate::fetch::{Ctx, ad_mark};
use crate::model;
use crate::settings::{Flavour, Settings};

/// Runs the checks.
pub fn check(s: &Settings, dir: &dyn Directory) -> Result<(), PluginError> {
    let ctx = Ctx::new(s);
    let conn = &ctx.conn;
    let what = format!("read the server's rootDSE at {} as {}", s.url, s.who());
    let root = search_once(
        dir,
        conn,
        SearchRequest::new(
            "",
            ldap::Scope::Base,
            "(objectClass=*)",
            &["supportedControl", "namingContexts"],
        ),
        &what,
        &ctx.referrals,
    )?;
    let pages = root
        .entries
        .first()
        .is_some_and(|e| values(e, "supportedControl").any(|v| v == PAGED_RESULTS_OID.as_bytes()));
    if !pages {
        roster_sdk::log(
            Level::Warn,
            &format!(
                "the server does not list the paged-results control ({PAGED_RESULTS_OID}) in its rootDSE: every search is then capped by its size limit, and a fetch that reaches it fails (no deletions) until the limit is raised for {}",
                s.who()
            ),
        );
    }
    let mut bases = vec![("base_dn", s.base_dn.as_str())];
    for (name, dn) in [("user_base_dn", s.user_base()), ("group_base_dn", s.group_base())] {
        if !bases
            .iter()
            .any(|(_, b)| ldap::normalize_dn(b) == ldap::normalize_dn(dn))
        {
            bases.push((name, dn));
        }
    }
    for (name, dn) in bases {
        let what = format!("read {name} `{dn}`");
        let found = search_once(
            dir,
            conn,
            SearchRequest::new(dn, ldap::Scope::Base, "(objectClass=*)", &["1.1"]),
            &what,
            &ctx.referrals,
        )
        .map_err(|e| match e {
            PluginError::Config(m) => PluginError::Config(format!("{m}: check {name}")),
            other => other,
        })?;
        if found.entries.is_empty() {
            return Err(PluginError::Config(format!(
                "{what}: the server returned no entry ({} may not be allowed to read it): check {name} and the bind DN's access",
                s.who()
            )));
        }
    }
    let filter = s.user_filter();
    let what = format!(
        "search one user ({} {} for {filter})",
        s.user_base(),
        ldap::scope_name(s.user_scope.scope())
    );
    let req = SearchRequest::new(
        s.user_base(),
        s.user_scope.scope(),
        filter,
        &[s.id_attribute(), s.username_attribute()],
    )
    .paged(1);
    let users = search_once(dir, conn, req, &what, &ctx.referrals)?;
    let Some(user) = users.entries.first() else {
        return Err(PluginError::Config(format!(
            "{what}: the user search found nobody as {}: check user_base_dn, user_scope and user_filter",
            s.who()
        )));
    };
    if model::id(user, s.id_attribute()).is_none() {
        return Err(PluginError::Config(format!(
            "{what}: the user {} has no {} (or the bind DN may not read it): check id_attribute (OpenLDAP: entryUUID; Active Directory: objectGUID)",
            user.dn,
            s.id_attribute()
        )));
    }
    if first_text(user, s.username_attribute()).is_none() {
        return Err(PluginError::Config(format!(
            "{what}: the user {} has no {}: check username_attribute",
            user.dn,
            s.username_attribute()
        )));
    }
    let filter = s.group_filter();
    let what = format!("search one group ({} for {filter})", s.group_base());
    let req = SearchRequest::new(s.group_base(), s.group_scope.scope(), filter, &["1.1"]).paged(1);
    if search_once(dir, conn, req, &what, &ctx.referrals)?.entries.is_empty() {
        roster_sdk::log(
            Level::Warn,
            &format!("{what}: no group found; users are read without groups (check group_base_dn and group_filter)"),
        );
    }
    if s.flavour == Flavour::ActiveDirectory && s.use_incremental_sync {
        // Warns by itself when the DC offers no mark.
        ad_mark(&ctx, dir)?;
    }
    Ok(())
}

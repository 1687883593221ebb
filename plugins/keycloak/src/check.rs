//! `check`: is the source usable, and if not, exactly why. Order: the token (a realm Keycloak
//! does not have, a missing `/auth` prefix, a refused client or secret, a client without a
//! service account stop here), one user (`view-users`, and the username attribute), one group
//! (`query-groups`) and that group's members (`view-users` again, as Keycloak checks it there).

use roster_sdk::PluginError;
use roster_sdk::paging::Offset;

use crate::api::{Keycloak, Listing};
use crate::model::{self, KcGroup, KcMember, KcUser};

fn first<T: serde::de::DeserializeOwned>(
    kc: &Keycloak<'_>,
    listing: &Listing,
    id: impl Fn(&T) -> &str,
) -> Result<Option<T>, PluginError> {
    let page = kc.page::<T>(listing, &Offset::default(), id)?;
    Ok(page.and_then(|p| p.items.into_iter().next()))
}

/// Runs the checks.
pub fn check(kc: &Keycloak<'_>) -> Result<(), PluginError> {
    kc.token()?;
    if let Some(u) = first::<KcUser>(kc, &Listing::Users, |u| &u.id)?
        && model::user(&u, kc.s).is_none()
    {
        return Err(PluginError::Config(format!(
            "username_attribute: user {} has no {}; write username, email or an attribute every user has",
            u.username, kc.s.username_attribute
        )));
    }
    if let Some(g) = first::<KcGroup>(kc, &Listing::Groups, |g| &g.id)? {
        first::<KcMember>(kc, &Listing::Members(g.id.clone()), |m| &m.id)?;
    }
    Ok(())
}

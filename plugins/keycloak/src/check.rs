//! `check`: is the source usable, and if not, exactly why. Order: the token (a realm Keycloak
//! does not have, a missing `/auth` prefix, a refused client or secret, a client without a
//! service account stop here), one user (`view-users`, and the username attribute), one group
//! (`query-groups`) and that group's members (`view-users` again, as Keycloak checks it there).

use roster_sdk::PluginError;

use crate::api::{Keycloak, Listing};
use crate::model::{self, KcGroup, KcMember, KcUser};

/// Runs the checks.
pub fn check(kc: &Keycloak<'_>) -> Result<(), PluginError> {
    kc.token()?;
    if let Some(u) = kc.first_item::<KcUser>(&Listing::Users)?
        && model::user(&u, kc.s).is_none()
    {
        return Err(PluginError::Config(format!(
            "username_attribute: user {} has no {}; write username, email or an attribute every user has",
            u.username, kc.s.username_attribute
        )));
    }
    if let Some(g) = kc.first_item::<KcGroup>(&Listing::Groups)? {
        kc.first_item::<KcMember>(&Listing::Members(g.id.clone()))?;
    }
    Ok(())
}

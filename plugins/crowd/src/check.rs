//! `check`: can Roster read this Jira or Crowd, and if not, exactly why — one search request as
//! Atlassian's `testConnection` sends it, one for any user at all (an application given no
//! directory sees none), then the event token when incremental synchronisation is wanted (its
//! absence is a warning: every fetch then reads everything).

use roster_sdk::{Level, PluginError};

use crate::cursor::Events;
use crate::full::initial_token;
use crate::rest::{NAME_IS_NULL, NULL_RESTRICTION, Server, product, read_list, sees_no_users};

/// Runs the checks.
pub fn check(srv: &Server<'_>) -> Result<(), PluginError> {
    let what = "search users (POST /search)";
    let url = format!(
        "{}/search?entity-type=user&start-index=0&max-results=1&expand=user",
        srv.s.api()
    );
    let resp = srv.ok(srv.post_xml(&url, NAME_IS_NULL, what)?, what)?;
    read_list(&resp, "users", "user", what, |_| Ok(()))?;
    // testConnection's search finds no one by design, so it passes for an application that
    // can read no directory; one user of any name shows that it reads one.
    let what = "search for any user (POST /search)";
    let url = format!("{}/search?entity-type=user&start-index=0&max-results=1", srv.s.api());
    let resp = srv.ok(srv.post_xml(&url, NULL_RESTRICTION, what)?, what)?;
    if read_list(&resp, "users", "user", what, |_| Ok(()))? == 0 {
        return Err(PluginError::Config(sees_no_users(srv, product(&resp))));
    }
    if srv.s.use_incremental_sync {
        let events = initial_token(srv)?;
        if let Some(why) = events.why_not().filter(|_| events != Events::Off) {
            roster_sdk::log(
                Level::Warn,
                &format!("{why}; every run of this source reads the whole directory"),
            );
        }
    }
    Ok(())
}

//! The packed functions, for every [`Transform`]: decode the batch, call the transform's own
//! `map_users` / `map_groups`, encode the outcomes. The results are by construction those of
//! the record-by-record functions.

use roster_wire as wire;

use crate::bindings::exports::roster::plugin::transform_packed::Guest as Packed;
use crate::{Group, GroupOutcome, PluginError, Transform, User, UserOutcome};

wire::conversions!(User, Group, UserOutcome, GroupOutcome);

fn unreadable(e: wire::DecodeError) -> PluginError {
    PluginError::Fatal(format!(
        "the host sent a batch this SDK cannot read ({e}); rebuild the plugin with an SDK for this Roster"
    ))
}

impl<T: Transform> Packed for T {
    fn map_users_packed(settings: String, users: Vec<u8>) -> Result<Vec<u8>, PluginError> {
        let users = wire::Reader::new(&users)
            .and_then(|r| r.all(|r| r.user().map(user)))
            .map_err(unreadable)?;
        let out: Vec<UserOutcome> = T::map_users(settings, users)?;
        let mut w = wire::Writer::new(out.len(), out.len() * 256);
        for o in &out {
            w.user_outcome(o.user.as_ref().map(user_ref), o.reason.as_deref(), o.error.as_deref());
        }
        Ok(w.finish())
    }

    fn map_groups_packed(settings: String, groups: Vec<u8>) -> Result<Vec<u8>, PluginError> {
        let groups = wire::Reader::new(&groups)
            .and_then(|r| r.all(|r| r.group().map(group)))
            .map_err(unreadable)?;
        let out: Vec<GroupOutcome> = T::map_groups(settings, groups)?;
        let mut w = wire::Writer::new(out.len(), out.len() * 128);
        for o in &out {
            w.group_outcome(o.groups.iter().map(group_ref), o.reason.as_deref(), o.error.as_deref());
        }
        Ok(w.finish())
    }
}

//! The packed functions (`transform-packed`). By default they decode the batch, call the
//! transform's own `map_users` / `map_groups` and encode the outcomes, so the results are by
//! construction those of the record-by-record functions. A transform that can work on borrowed
//! views of the batch (`roster_wire::Reader::user_view`) overrides them in [`PackedTransform`].

use roster_wire as wire;

use crate::bindings::exports::roster::plugin::transform_packed::Guest as Packed;
use crate::{Group, GroupOutcome, PluginError, Transform, User, UserOutcome};

wire::conversions!(User, Group, UserOutcome, GroupOutcome);

/// The error for a batch the SDK cannot decode.
pub fn unreadable(e: wire::DecodeError) -> PluginError {
    PluginError::Fatal(format!(
        "the host sent a batch this SDK cannot read ({e}); rebuild the plugin with an SDK for this Roster"
    ))
}

/// How a transform takes packed batches. `export_transform!(T)` implements it with the
/// defaults; `export_transform!(T, packed)` leaves it to you, to override either function with
/// one that must give exactly the outcomes `map_users` / `map_groups` would.
pub trait PackedTransform: Transform {
    /// `map-users` over a packed batch.
    fn map_users_packed(settings: String, users: Vec<u8>) -> Result<Vec<u8>, PluginError> {
        users_through_records::<Self>(settings, &users)
    }

    /// `map-groups` over a packed batch.
    fn map_groups_packed(settings: String, groups: Vec<u8>) -> Result<Vec<u8>, PluginError> {
        groups_through_records::<Self>(settings, &groups)
    }
}

/// Decodes the users, maps them with `T::map_users`, encodes the outcomes.
pub fn users_through_records<T: Transform + ?Sized>(settings: String, users: &[u8]) -> Result<Vec<u8>, PluginError> {
    let users = wire::Reader::new(users)
        .and_then(|r| r.all(|r| r.user().map(user)))
        .map_err(unreadable)?;
    let out: Vec<UserOutcome> = T::map_users(settings, users)?;
    let mut w = wire::Writer::new(out.len(), out.len() * 256);
    for o in &out {
        w.user_outcome(o.user.as_ref().map(user_ref), o.reason.as_deref(), o.error.as_deref());
    }
    Ok(w.finish())
}

/// Decodes the groups, maps them with `T::map_groups`, encodes the outcomes.
pub fn groups_through_records<T: Transform + ?Sized>(settings: String, groups: &[u8]) -> Result<Vec<u8>, PluginError> {
    let groups = wire::Reader::new(groups)
        .and_then(|r| r.all(|r| r.group().map(group)))
        .map_err(unreadable)?;
    let out: Vec<GroupOutcome> = T::map_groups(settings, groups)?;
    let mut w = wire::Writer::new(out.len(), out.len() * 128);
    for o in &out {
        w.group_outcome(o.groups.iter().map(group_ref), o.reason.as_deref(), o.error.as_deref());
    }
    Ok(w.finish())
}

impl<T: PackedTransform> Packed for T {
    fn map_users_packed(settings: String, users: Vec<u8>) -> Result<Vec<u8>, PluginError> {
        <T as PackedTransform>::map_users_packed(settings, users)
    }

    fn map_groups_packed(settings: String, groups: Vec<u8>) -> Result<Vec<u8>, PluginError> {
        <T as PackedTransform>::map_groups_packed(settings, groups)
    }
}

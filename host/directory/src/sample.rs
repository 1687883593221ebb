//! Sample records to preview a transform chain on, in the `file` connector's export format
//! (`roster_export`: one definition, shared with the connector).

use roster_store::{MirrorGroup, MirrorMembership, MirrorUser};

/// Records to preview a chain on instead of a source's mirror.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Users.
    pub users: Vec<MirrorUser>,
    /// Groups.
    pub groups: Vec<MirrorGroup>,
    /// Memberships (for `required_groups`).
    pub memberships: Vec<MirrorMembership>,
}

impl Sample {
    /// Reads sample records in the `file` connector's JSON form: `{"users": [{"id", "username",
    /// "email"?, "display_name"?, "active"?, "attributes"? {name: value or [values]}}], "groups":
    /// [{"id", "name", "description"?, "attributes"?}], "memberships": [{"group", "member",
    /// "member_is_group"?}]}`. Errors say the line and column.
    pub fn from_json(text: &str) -> Result<Sample, String> {
        let doc = roster_export::Document::from_json(text.as_bytes()).map_err(|e| e.to_string())?;
        Ok(Sample {
            users: doc
                .users
                .into_iter()
                .map(|u| MirrorUser {
                    ext_id: u.id,
                    username: u.username,
                    email: u.email,
                    display_name: u.display_name,
                    active: u.active,
                    attributes: u.attributes,
                    removed: None,
                })
                .collect(),
            groups: doc
                .groups
                .into_iter()
                .map(|g| MirrorGroup {
                    ext_id: g.id,
                    name: g.name,
                    description: g.description,
                    attributes: g.attributes,
                    removed: None,
                })
                .collect(),
            memberships: doc
                .memberships
                .into_iter()
                .map(|m| MirrorMembership {
                    group_id: m.group,
                    member_id: m.member,
                    member_is_group: m.member_is_group,
                    removed: false,
                })
                .collect(),
        })
    }
}

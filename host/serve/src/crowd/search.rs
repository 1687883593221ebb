//! How the served directory's users and groups meet `POST /search`'s restrictions: the
//! grammar and the matching are `roster-crowd`'s; this names each entity's properties.

use std::borrow::Cow;

use roster_crowd::{Prop, Subject};
use roster_store::{ServedGroup, ServedUser};

/// A served user or group as restrictions see it. `roster-crowd`'s [`Subject`] cannot be
/// implemented for `roster-store`'s types here (the orphan rule), so they implement this one
/// and [`Served`] carries it over.
pub(super) trait Searchable {
    /// The property `name` (Crowd's term keys: `name`, `email`, `firstName`, …).
    fn property(&self, name: &str) -> Prop<'_>;
}

/// A served entity as a restriction's [`Subject`].
pub(super) struct Served<'a, T>(pub(super) &'a T);

impl<T: Searchable> Subject for Served<'_, T> {
    fn property(&self, name: &str) -> Prop<'_> {
        self.0.property(name)
    }
}

impl Searchable for ServedUser {
    fn property(&self, name: &str) -> Prop<'_> {
        match name {
            "name" => Prop::Text(&self.name),
            "email" => self.email.as_deref().map_or(Prop::Absent, Prop::Text),
            "firstName" => Prop::Text(&self.first_name),
            "lastName" => Prop::Text(&self.last_name),
            "displayName" => Prop::Text(&self.display_name),
            "externalId" | "key" => Prop::Text(&self.external_id),
            "active" => Prop::Flag(self.active),
            "createdDate" => Prop::Date(self.created_at),
            "updatedDate" => Prop::Date(self.updated_at),
            // Any other name is a custom attribute, as in Crowd; Roster's users have one.
            super::xml::RECORDS_ATTRIBUTE => Prop::Values(Cow::Owned(
                self.records.iter().map(|(s, id)| format!("{s}:{id}")).collect(),
            )),
            _ => Prop::Absent,
        }
    }
}

impl Searchable for ServedGroup {
    fn property(&self, name: &str) -> Prop<'_> {
        match name {
            "name" => Prop::Text(&self.name),
            "description" => Prop::Text(&self.description),
            "active" => Prop::Flag(true),
            "local" => Prop::Flag(false),
            "createdDate" => Prop::Date(self.created_at),
            "updatedDate" => Prop::Date(self.updated_at),
            _ => Prop::Absent,
        }
    }
}

//! Crowd's search restriction (`roster-crowd`): the body of `POST /search` that any application
//! holding a password sends Roster's Crowd endpoint, in XML or JSON.
//!
//! Input: the body. It is parsed (a refusal is a message, never a panic), and a restriction
//! that parses is matched against a few fixed users, so deep or odd restrictions are evaluated
//! too, not only read.

use std::borrow::Cow;

use roster_crowd::{Prop, Restriction, Subject};

/// A user as the endpoint offers one to a restriction.
struct User {
    name: &'static str,
    email: Option<&'static str>,
    active: bool,
    created: i64,
    values: &'static [&'static str],
}

impl Subject for User {
    fn property(&self, name: &str) -> Prop<'_> {
        match name {
            "name" | "displayName" | "firstName" => Prop::Text(self.name),
            "email" => self.email.map_or(Prop::Absent, Prop::Text),
            "active" => Prop::Flag(self.active),
            "createdDate" | "updatedDate" => Prop::Date(self.created),
            _ => Prop::Values(Cow::Owned(self.values.iter().map(|v| v.to_string()).collect())),
        }
    }
}

const USERS: [User; 3] = [
    User {
        name: "Alice",
        email: Some("alice@example.org"),
        active: true,
        created: 1_704_164_645_678,
        values: &["hr:1"],
    },
    User {
        name: "bob",
        email: None,
        active: false,
        created: -1,
        values: &[],
    },
    User {
        name: "Ärger ß",
        email: Some(""),
        active: true,
        created: i64::MAX,
        values: &["", "x"],
    },
];

/// One body: parsed, and matched against each fixed user when it parses.
pub fn run(data: &[u8]) {
    match Restriction::parse(data) {
        Ok(r) => {
            for u in &USERS {
                let _ = r.matches(u);
            }
        }
        Err(e) => assert!(!e.to_string().is_empty(), "a refusal without a message"),
    }
}

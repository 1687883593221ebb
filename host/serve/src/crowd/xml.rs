//! Crowd's entities as its server writes them (crowd-rest.md §4): XML with JAXB's element
//! names, and JSON with the same names as keys (§8) for clients that ask for it. Bodies are
//! written straight into a `String`: a listing is streamed in chunks of these, no tree is
//! built.

use roster_store::{EventKind, EventOp, ServedEvent, ServedGroup, ServedUser};
use serde_json::{Map, Value, json};

pub(super) use roster_crowd::{PROLOG, error_json, error_xml, escape as esc, iso, text};

/// The attribute each user carries (with `expand=…,attributes`): one value per source record
/// Roster made the user from, `source:id`.
pub(super) const RECORDS_ATTRIBUTE: &str = "roster.records";

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// `<tag name="N"/>`: a minimal user or group (`user`, `group`, `childUser`).
pub(super) fn min(out: &mut String, tag: &str, name: &str) {
    out.push('<');
    out.push_str(tag);
    out.push_str(" name=\"");
    esc(out, name);
    out.push_str("\"/>");
}

/// A user's `roster.records` values.
fn record_values(u: &ServedUser) -> Vec<String> {
    u.records.iter().map(|(source, id)| format!("{source}:{id}")).collect()
}

/// Whether a full entity lists its attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Attributes {
    /// `expand` named `attributes`.
    Listed,
    /// Left out, as the server leaves an unexpanded property.
    Omitted,
}

/// `<tag><attribute name="n"><values><value>v</value></values></attribute>…</tag>`.
fn attributes(out: &mut String, tag: &str, attrs: &[(&str, Vec<String>)]) {
    out.push('<');
    out.push_str(tag);
    out.push('>');
    for (name, values) in attrs {
        out.push_str("<attribute name=\"");
        esc(out, name);
        out.push_str("\"><values>");
        for v in values {
            text(out, "value", v);
        }
        out.push_str("</values></attribute>");
    }
    out.push_str("</");
    out.push_str(tag);
    out.push('>');
}

/// A full user. `<active>` is always written: the client reads a missing one as false.
pub(super) fn user(out: &mut String, u: &ServedUser, attrs: Attributes) {
    out.push_str("<user name=\"");
    esc(out, &u.name);
    out.push_str("\">");
    text(out, "first-name", &u.first_name);
    text(out, "last-name", &u.last_name);
    text(out, "display-name", &u.display_name);
    text(out, "email", u.email.as_deref().unwrap_or(""));
    text(out, "active", bool_str(u.active));
    text(out, "key", &u.external_id);
    text(out, "created-date", &iso(u.created_at));
    text(out, "updated-date", &iso(u.updated_at));
    if attrs == Attributes::Listed {
        attributes(out, "attributes", &[(RECORDS_ATTRIBUTE, record_values(u))]);
    }
    out.push_str("</user>");
}

/// A full group: Roster's groups are all active, plain groups.
pub(super) fn group(out: &mut String, g: &ServedGroup, attrs: Attributes) {
    out.push_str("<group name=\"");
    esc(out, &g.name);
    out.push_str("\">");
    text(out, "description", &g.description);
    text(out, "type", "GROUP");
    text(out, "active", "true");
    if attrs == Attributes::Listed {
        attributes(out, "attributes", &[]);
    }
    out.push_str("</group>");
}

/// A full user in JSON. Dates are epoch milliseconds, as Jackson writes a `java.util.Date` by
/// default [unverified for Crowd, whose JSON dates crowd-rest.md §8 leaves open].
pub(super) fn user_json(u: &ServedUser, attrs: Attributes) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), u.name.clone().into());
    m.insert("first-name".into(), u.first_name.clone().into());
    m.insert("last-name".into(), u.last_name.clone().into());
    m.insert("display-name".into(), u.display_name.clone().into());
    m.insert("email".into(), u.email.clone().unwrap_or_default().into());
    m.insert("active".into(), u.active.into());
    m.insert("key".into(), u.external_id.clone().into());
    m.insert("created-date".into(), u.created_at.into());
    m.insert("updated-date".into(), u.updated_at.into());
    if attrs == Attributes::Listed {
        m.insert(
            "attributes".into(),
            json!({"attributes": [{"name": RECORDS_ATTRIBUTE, "values": record_values(u)}]}),
        );
    }
    Value::Object(m)
}

/// A full group in JSON.
pub(super) fn group_json(g: &ServedGroup, attrs: Attributes) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), g.name.clone().into());
    m.insert("description".into(), g.description.clone().into());
    m.insert("type".into(), "GROUP".into());
    m.insert("active".into(), true.into());
    if attrs == Attributes::Listed {
        m.insert("attributes".into(), json!({"attributes": []}));
    }
    Value::Object(m)
}

/// `<events newEventToken="…" incrementalSynchronisationAvailable="true"/>`: the answer to
/// `GET /event`. Without the attribute, clients refuse incremental synchronisation.
pub(super) fn current_token(token: &str) -> String {
    let mut out = String::with_capacity(200);
    out.push_str(PROLOG);
    out.push_str("<events newEventToken=\"");
    esc(&mut out, token);
    out.push_str("\" incrementalSynchronisationAvailable=\"true\"/>");
    out
}

/// A user-membership event's operation, as an application's view makes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Membership {
    /// The user joined the groups.
    Created,
    /// The user left the groups.
    Deleted,
}

impl Membership {
    fn as_str(self) -> &'static str {
        match self {
            Membership::Created => "CREATED",
            Membership::Deleted => "DELETED",
        }
    }
}

/// One event as it goes out: the store's, or one the visibility of an application adds.
pub(super) enum Outgoing<'a> {
    /// An event of the log.
    Logged(&'a ServedEvent),
    /// A user-membership event with only the parents the application may see.
    Membership {
        /// Joined or left.
        op: Membership,
        /// The user: as named then, or now.
        user: std::borrow::Cow<'a, str>,
        /// The visible parent groups.
        parents: Vec<String>,
    },
    /// The user as it is now (UPDATED): one who came into an application's view.
    UserNow(ServedUser),
    /// A user gone from an application's view (DELETED).
    UserGone(&'a str),
}

/// The answer to `GET /event/{token}`: the events in order and the new token. Like Crowd's
/// `EventEntityList.create`, it leaves `incrementalSynchronisationAvailable` unset.
pub(super) fn events(events: &[Outgoing<'_>], token: &str) -> String {
    let mut out = String::with_capacity(200 + events.len() * 600);
    out.push_str(PROLOG);
    out.push_str("<events newEventToken=\"");
    esc(&mut out, token);
    out.push_str("\">");
    for e in events {
        event(&mut out, e);
    }
    out.push_str("</events>");
    out
}

fn event(out: &mut String, e: &Outgoing<'_>) {
    match e {
        Outgoing::Logged(e) => match (&e.kind, &e.op) {
            (EventKind::User, EventOp::Deleted) => user_gone(out, &e.name),
            (EventKind::User, op) => match &e.user {
                Some(u) => user_saved(out, op.as_str(), u),
                None => user_gone(out, &e.name),
            },
            (EventKind::Group, EventOp::Deleted) => group_gone(out, &e.name),
            (EventKind::Group, op) => match &e.group {
                Some(g) => {
                    out.push_str("<groupEvent>");
                    text(out, "operation", op.as_str());
                    group(out, g, Attributes::Omitted);
                    out.push_str("<storedAttributes/><deletedAttributes/></groupEvent>");
                }
                None => group_gone(out, &e.name),
            },
            (EventKind::UserMembership, op) => membership(out, op.as_str(), &e.name, &e.parents),
        },
        Outgoing::Membership { op, user, parents } => membership(out, op.as_str(), user, parents),
        Outgoing::UserNow(u) => user_saved(out, EventOp::Updated.as_str(), u),
        Outgoing::UserGone(name) => user_gone(out, name),
    }
}

/// A user created or updated, as Crowd writes it (S5 `toEventEntity`): the entity's attributes
/// are not expanded; what is stored is in `storedAttributes`.
fn user_saved(out: &mut String, op: &str, u: &ServedUser) {
    out.push_str("<userEvent>");
    text(out, "operation", op);
    user(out, u, Attributes::Omitted);
    attributes(out, "storedAttributes", &[(RECORDS_ATTRIBUTE, record_values(u))]);
    out.push_str("<deletedAttributes/></userEvent>");
}

fn user_gone(out: &mut String, name: &str) {
    out.push_str("<userEvent>");
    text(out, "operation", EventOp::Deleted.as_str());
    min(out, "user", name);
    out.push_str("</userEvent>");
}

fn group_gone(out: &mut String, name: &str) {
    out.push_str("<groupEvent>");
    text(out, "operation", EventOp::Deleted.as_str());
    min(out, "group", name);
    out.push_str("</groupEvent>");
}

fn membership(out: &mut String, op: &str, user: &str, parents: &[String]) {
    out.push_str("<userMembershipEvent>");
    text(out, "operation", op);
    min(out, "childUser", user);
    out.push_str("<parentGroups>");
    for g in parents {
        min(out, "group", g);
    }
    out.push_str("</parentGroups></userMembershipEvent>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann() -> ServedUser {
        ServedUser {
            id: 1,
            name: "ann".into(),
            external_id: "k-1".into(),
            display_name: "Ann <script>alert(1)</script> & co".into(),
            first_name: "Ann".into(),
            last_name: "<script>alert(1)</script> & co".into(),
            email: None,
            active: false,
            records: vec![("hr".into(), "7".into())],
            created_at: 1_704_164_645_678,
            updated_at: 1_704_164_645_678,
        }
    }

    #[test]
    fn a_user_has_its_key_active_dates_and_records_and_markup_is_escaped() {
        let mut out = String::new();
        user(&mut out, &ann(), Attributes::Listed);
        assert_eq!(
            out,
            "<user name=\"ann\"><first-name>Ann</first-name><last-name>&lt;script&gt;alert(1)&lt;/script&gt; &amp; co</last-name>\
             <display-name>Ann &lt;script&gt;alert(1)&lt;/script&gt; &amp; co</display-name><email></email>\
             <active>false</active><key>k-1</key><created-date>2024-01-02T03:04:05.678Z</created-date>\
             <updated-date>2024-01-02T03:04:05.678Z</updated-date><attributes><attribute name=\"roster.records\">\
             <values><value>hr:7</value></values></attribute></attributes></user>"
                .replace("             ", "")
        );
        let doc = roxmltree::Document::parse(&out).unwrap();
        assert_eq!(
            doc.root_element()
                .children()
                .find(|n| n.has_tag_name("display-name"))
                .and_then(|n| n.text()),
            Some("Ann <script>alert(1)</script> & co")
        );
    }
}

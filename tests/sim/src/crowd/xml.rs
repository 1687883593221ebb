//! Crowd's entities as its server writes them: XML with JAXB's element names (crowd-rest.md §4)
//! and JSON with the same names as keys (§8). Bodies are written straight into a `String`
//! sized up front: a full directory is one answer, and no tree is built for it.

use serde_json::{Map, Value, json};

pub(super) use roster_crowd::{PROLOG, error_json, error_xml, escape as esc, text};

use super::{CrowdGroup, CrowdUser, Stamped};

/// Bytes reserved per listed user (full, with links): answers are built without regrowing.
pub(super) const USER_BYTES: usize = 900;
/// Bytes reserved per listed group.
pub(super) const GROUP_BYTES: usize = 400;

/// `s` escaped for XML.
pub(super) fn escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    esc(&mut out, s);
    out
}

/// `s` as a query-string value.
pub(super) fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Milliseconds since the epoch as xs:dateTime with milliseconds, in UTC.
pub(super) fn iso(ms: u64) -> String {
    roster_crowd::iso(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// The links the server puts in entities, under the API's base URL as the request named it.
pub(super) struct Links<'a>(pub(super) &'a str);

impl Links<'_> {
    fn user_href(&self, name: &str) -> String {
        format!("{}/user?username={}", self.0, enc(name))
    }

    fn group_href(&self, name: &str) -> String {
        format!("{}/group?groupname={}", self.0, enc(name))
    }

    fn link(&self, out: &mut String, rel: &str, href: &str) {
        out.push_str("<link rel=\"");
        out.push_str(rel);
        out.push_str("\" href=\"");
        esc(out, href);
        out.push_str("\"/>");
    }

    /// `<tag name="N"><link …/></tag>`: a minimal user (`user`, `childUser`).
    pub(super) fn min_user(&self, out: &mut String, tag: &str, name: &str) {
        open_named(out, tag, name);
        self.link(out, "self", &self.user_href(name));
        close(out, tag);
    }

    /// `<group name="N"><link …/></group>`: a minimal group.
    pub(super) fn min_group(&self, out: &mut String, name: &str) {
        open_named(out, "group", name);
        self.link(out, "self", &self.group_href(name));
        close(out, "group");
    }

    /// A full user; its attributes listed when `attributes`, otherwise only linked, as the
    /// server leaves an unexpanded property.
    pub(super) fn user(&self, out: &mut String, e: &Stamped<CrowdUser>, attributes: bool) {
        let u = &e.item;
        let me = self.user_href(&u.name);
        out.push_str("<user name=\"");
        esc(out, &u.name);
        out.push_str("\" expand=\"attributes\">");
        self.link(out, "self", &me);
        text(out, "first-name", &u.first_name);
        text(out, "last-name", &u.last_name);
        text(out, "display-name", &u.display_name);
        text(out, "email", &u.email);
        out.push_str("<password>");
        self.link(
            out,
            "edit",
            &format!("{}/user/password?username={}", self.0, enc(&u.name)),
        );
        out.push_str("</password>");
        if let Some(k) = &u.key {
            text(out, "key", k);
        }
        text(out, "created-date", &iso(e.created));
        text(out, "updated-date", &iso(e.updated));
        text(out, "active", bool_str(u.active));
        let attrs_link = format!("{}/user/attribute?username={}", self.0, enc(&u.name));
        self.attributes(out, "attributes", &attrs_link, attributes.then_some(&u.attributes[..]));
        close(out, "user");
    }

    /// A full group.
    pub(super) fn group(&self, out: &mut String, e: &Stamped<CrowdGroup>, attributes: bool) {
        let g = &e.item;
        out.push_str("<group name=\"");
        esc(out, &g.name);
        out.push_str("\" expand=\"attributes\">");
        self.link(out, "self", &self.group_href(&g.name));
        if let Some(d) = &g.description {
            text(out, "description", d);
        }
        text(out, "type", "GROUP");
        text(out, "active", bool_str(g.active));
        let attrs_link = format!("{}/group/attribute?groupname={}", self.0, enc(&g.name));
        self.attributes(out, "attributes", &attrs_link, attributes.then_some(&[][..]));
        close(out, "group");
    }

    /// `<tag><link/><attribute name="n"><link/><values><value>v</value></values></attribute>…</tag>`;
    /// only the link when `attrs` is `None` (not expanded).
    pub(super) fn attributes(&self, out: &mut String, tag: &str, href: &str, attrs: Option<&[(String, Vec<String>)]>) {
        out.push('<');
        out.push_str(tag);
        out.push('>');
        self.link(out, "self", href);
        for (name, values) in attrs.unwrap_or_default() {
            open_named(out, "attribute", name);
            self.link(out, "self", &format!("{href}&attributename={}", enc(name)));
            out.push_str("<values>");
            for v in values {
                text(out, "value", v);
            }
            out.push_str("</values></attribute>");
        }
        close(out, tag);
    }

    fn link_json(href: String) -> Value {
        json!({"href": href, "rel": "self"})
    }

    /// A minimal user in JSON.
    pub(super) fn min_user_json(&self, name: &str) -> Value {
        json!({"name": name, "link": Self::link_json(self.user_href(name))})
    }

    /// A minimal group in JSON.
    pub(super) fn min_group_json(&self, name: &str) -> Value {
        json!({"name": name, "link": Self::link_json(self.group_href(name))})
    }

    /// A full user in JSON. Dates are epoch milliseconds, as Jackson writes a `java.util.Date`
    /// by default [unverified for Crowd, whose JSON dates crowd-rest.md §8 leaves open].
    pub(super) fn user_json(&self, e: &Stamped<CrowdUser>, attributes: bool) -> Value {
        let u = &e.item;
        let attrs_link = format!("{}/user/attribute?username={}", self.0, enc(&u.name));
        let mut m = Map::new();
        m.insert("expand".into(), "attributes".into());
        m.insert("link".into(), Self::link_json(self.user_href(&u.name)));
        m.insert("name".into(), u.name.clone().into());
        m.insert("first-name".into(), u.first_name.clone().into());
        m.insert("last-name".into(), u.last_name.clone().into());
        m.insert("display-name".into(), u.display_name.clone().into());
        m.insert("email".into(), u.email.clone().into());
        m.insert(
            "password".into(),
            json!({"link": {"href": format!("{}/user/password?username={}", self.0, enc(&u.name)), "rel": "edit"}}),
        );
        if let Some(k) = &u.key {
            m.insert("key".into(), k.clone().into());
        }
        m.insert("created-date".into(), e.created.into());
        m.insert("updated-date".into(), e.updated.into());
        m.insert("active".into(), u.active.into());
        m.insert(
            "attributes".into(),
            attributes_json(attrs_link, attributes.then_some(&u.attributes[..])),
        );
        Value::Object(m)
    }

    /// A full group in JSON.
    pub(super) fn group_json(&self, e: &Stamped<CrowdGroup>, attributes: bool) -> Value {
        let g = &e.item;
        let attrs_link = format!("{}/group/attribute?groupname={}", self.0, enc(&g.name));
        let mut m = Map::new();
        m.insert("expand".into(), "attributes".into());
        m.insert("link".into(), Self::link_json(self.group_href(&g.name)));
        m.insert("name".into(), g.name.clone().into());
        if let Some(d) = &g.description {
            m.insert("description".into(), d.clone().into());
        }
        m.insert("type".into(), "GROUP".into());
        m.insert("active".into(), g.active.into());
        m.insert(
            "attributes".into(),
            attributes_json(attrs_link, attributes.then_some(&[][..])),
        );
        Value::Object(m)
    }
}

/// The server's JSON attribute list: the list under a second `attributes` key (S5
/// `MultiValuedAttributeEntityList`).
fn attributes_json(href: String, attrs: Option<&[(String, Vec<String>)]>) -> Value {
    let list: Vec<Value> = attrs
        .unwrap_or_default()
        .iter()
        .map(|(n, v)| json!({"name": n, "values": v}))
        .collect();
    json!({"attributes": list, "link": {"href": href, "rel": "self"}})
}

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

fn open_named(out: &mut String, tag: &str, name: &str) {
    out.push('<');
    out.push_str(tag);
    out.push_str(" name=\"");
    esc(out, name);
    out.push_str("\">");
}

fn close(out: &mut String, tag: &str) {
    out.push_str("</");
    out.push_str(tag);
    out.push('>');
}

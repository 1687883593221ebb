//! `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9): which attributes of a
//! resource an answer holds, the schema's `returned` deciding what is always there (`id`,
//! `schemas`, `userName`) and what never is (`password`).

use serde_json::{Map, Value};

use crate::error::{ScimError, ScimType};
use crate::path::AttrPath;
use crate::schema::{Attribute, ResourceSchema, Returned};

/// The attributes a client asked for or excluded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Projection {
    /// `attributes`: only these (plus those always returned); empty: all by default.
    pub attributes: Vec<AttrPath>,
    /// `excludedAttributes`: all but these (those always returned stay).
    pub excluded: Vec<AttrPath>,
}

fn paths(name: &str, text: Option<&str>) -> Result<Vec<AttrPath>, ScimError> {
    let Some(text) = text else { return Ok(Vec::new()) };
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            AttrPath::parse(p).map_err(|e| ScimError::bad(ScimType::InvalidValue, format!("{name}: {}", e.detail)))
        })
        .collect()
}

/// What of one attribute an answer keeps.
enum Keep {
    All,
    Only(Vec<String>),
    Except(Vec<String>),
    Nothing,
}

impl Projection {
    /// Reads the comma-separated `attributes` and `excludedAttributes` query parameters; a 400
    /// `invalidValue` naming the bad path.
    pub fn from_query(attributes: Option<&str>, excluded: Option<&str>) -> Result<Projection, ScimError> {
        Ok(Projection {
            attributes: paths("attributes", attributes)?,
            excluded: paths("excludedAttributes", excluded)?,
        })
    }

    /// Whether a path of the list names this attribute (core or of extension `urn`).
    fn named<'p>(
        list: &'p [AttrPath],
        urn: Option<&str>,
        core: &str,
        name: &str,
    ) -> impl Iterator<Item = &'p AttrPath> {
        list.iter().filter(move |p| {
            p.name.eq_ignore_ascii_case(name)
                && match (&p.urn, urn) {
                    (None, _) => true,
                    (Some(u), Some(ext)) => u.eq_ignore_ascii_case(ext),
                    (Some(u), None) => u.eq_ignore_ascii_case(core),
                }
        })
    }

    fn keep(&self, attr: Option<&Attribute>, urn: Option<&str>, core: &str, name: &str) -> Keep {
        let returned = attr.map_or(Returned::Default, |a| a.returned);
        match returned {
            Returned::Never => return Keep::Nothing,
            Returned::Always => return Keep::All,
            _ => {}
        }
        if !self.attributes.is_empty() {
            let asked: Vec<&AttrPath> = Projection::named(&self.attributes, urn, core, name).collect();
            if asked.is_empty() {
                return Keep::Nothing;
            }
            if asked.iter().any(|p| p.sub.is_none()) {
                return Keep::All;
            }
            return Keep::Only(asked.iter().filter_map(|p| p.sub.clone()).collect());
        }
        if returned == Returned::Request {
            return Keep::Nothing;
        }
        let excluded: Vec<&AttrPath> = Projection::named(&self.excluded, urn, core, name).collect();
        if excluded.iter().any(|p| p.sub.is_none()) {
            return Keep::Nothing;
        }
        if excluded.is_empty() {
            Keep::All
        } else {
            Keep::Except(excluded.iter().filter_map(|p| p.sub.clone()).collect())
        }
    }

    fn whole_extension(list: &[AttrPath], urn: &str) -> bool {
        list.iter().any(|p| p.is_urn(urn))
    }

    /// The resource as the answer shows it.
    pub fn apply(&self, resource: &Value, schema: &ResourceSchema) -> Value {
        let Some(obj) = resource.as_object() else {
            return resource.clone();
        };
        let mut out = Map::new();
        for (key, value) in obj {
            if key.eq_ignore_ascii_case("schemas") {
                out.insert(key.clone(), value.clone());
                continue;
            }
            let extension = schema.extension_urn(key).map(|u| {
                (
                    u,
                    schema
                        .extensions
                        .iter()
                        .find(|(x, _)| *x == u)
                        .map(|(_, a)| a.as_slice())
                        .unwrap_or_default(),
                )
            });
            if let Some((urn, attrs)) = extension.or_else(|| key.starts_with("urn:").then_some((key.as_str(), &[][..])))
            {
                // An extension: the client may name it whole or its attributes.
                let Some(inner) = value.as_object() else { continue };
                let whole_asked = Projection::whole_extension(&self.attributes, urn);
                if Projection::whole_extension(&self.excluded, urn) {
                    continue;
                }
                let mut kept = Map::new();
                for (k, v) in inner {
                    let attr = attrs.iter().find(|a| a.name.eq_ignore_ascii_case(k));
                    let keep = if whole_asked {
                        Keep::All
                    } else {
                        self.keep(attr, Some(urn), schema.urn, k)
                    };
                    if let Some(v) = project(v, keep, attr) {
                        kept.insert(k.clone(), v);
                    }
                }
                if !kept.is_empty() {
                    out.insert(key.clone(), Value::Object(kept));
                }
                continue;
            }
            let attr = schema.attributes.iter().find(|a| a.name.eq_ignore_ascii_case(key));
            if let Some(v) = project(value, self.keep(attr, None, schema.urn, key), attr) {
                out.insert(key.clone(), v);
            }
        }
        Value::Object(out)
    }
}

/// One attribute's value after projection, `None` when dropped.
fn project(value: &Value, keep: Keep, attr: Option<&Attribute>) -> Option<Value> {
    let pick = |v: &Value, wanted: &dyn Fn(&str) -> bool| -> Value {
        match v {
            Value::Object(o) => Value::Object(
                o.iter()
                    .filter(|(k, _)| {
                        wanted(k)
                            || attr
                                .and_then(|a| a.sub(k))
                                .is_some_and(|s| s.returned == Returned::Always)
                    })
                    .filter(|(k, _)| {
                        !attr
                            .and_then(|a| a.sub(k))
                            .is_some_and(|s| s.returned == Returned::Never)
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            v => v.clone(),
        }
    };
    let each = |wanted: &dyn Fn(&str) -> bool| match value {
        Value::Array(items) => Value::Array(items.iter().map(|i| pick(i, wanted)).collect()),
        v => pick(v, wanted),
    };
    match keep {
        Keep::Nothing => None,
        Keep::All => Some(value.clone()),
        Keep::Only(subs) => Some(each(&|k: &str| subs.iter().any(|s| s.eq_ignore_ascii_case(k)))),
        Keep::Except(subs) => Some(each(&|k: &str| !subs.iter().any(|s| s.eq_ignore_ascii_case(k)))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schema::{ENTERPRISE_URN, USER_URN};

    fn user() -> Value {
        json!({
            "schemas": [USER_URN, ENTERPRISE_URN],
            "id": "42",
            "userName": "alice@contoso.com",
            "password": "hunter2",
            "displayName": "Alice",
            "name": {"givenName": "Alice", "familyName": "Smith"},
            "emails": [{"value": "a@x", "type": "work", "primary": true}],
            "meta": {"resourceType": "User", "version": "W/\"1\""},
            "x-custom": "kept by default",
            ENTERPRISE_URN: {"employeeNumber": "7", "department": "R&D"},
        })
    }

    fn keys(v: &Value) -> Vec<&str> {
        let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        k.sort_unstable();
        k
    }

    #[test]
    fn by_default_everything_but_the_password() {
        let out = Projection::default().apply(&user(), ResourceSchema::user());
        let mut expected = user();
        expected.as_object_mut().unwrap().remove("password");
        assert_eq!(out, expected);
    }

    #[test]
    fn attributes_keeps_the_always_returned_ones() {
        let p = Projection::from_query(Some("displayName, name.givenName,EMAILS.value"), None).unwrap();
        let out = p.apply(&user(), ResourceSchema::user());
        assert_eq!(
            keys(&out),
            ["displayName", "emails", "id", "name", "schemas", "userName"]
        );
        assert_eq!(out["name"], json!({"givenName": "Alice"}));
        assert_eq!(out["emails"], json!([{"value": "a@x"}]));
        let p = Projection::from_query(Some("password,id"), None).unwrap();
        assert_eq!(
            keys(&p.apply(&user(), ResourceSchema::user())),
            ["id", "schemas", "userName"]
        );
    }

    #[test]
    fn extension_attributes_by_urn_or_whole() {
        let user_schema = ResourceSchema::user();
        let one = Projection::from_query(Some(&format!("{ENTERPRISE_URN}:department")), None).unwrap();
        assert_eq!(
            one.apply(&user(), user_schema)[ENTERPRISE_URN],
            json!({"department": "R&D"})
        );
        let whole = Projection::from_query(Some(ENTERPRISE_URN), None).unwrap();
        assert_eq!(
            whole.apply(&user(), user_schema)[ENTERPRISE_URN],
            user()[ENTERPRISE_URN]
        );
        let gone = Projection::from_query(None, Some(ENTERPRISE_URN)).unwrap();
        assert!(gone.apply(&user(), user_schema).get(ENTERPRISE_URN).is_none());
        let unqualified = Projection::from_query(None, Some("employeeNumber")).unwrap();
        assert_eq!(
            unqualified.apply(&user(), user_schema)[ENTERPRISE_URN],
            json!({"department": "R&D"})
        );
    }

    #[test]
    fn excluded_attributes_cannot_remove_id_or_username() {
        let p = Projection::from_query(None, Some("id,userName,emails,name.familyName,x-custom")).unwrap();
        let out = p.apply(&user(), ResourceSchema::user());
        assert_eq!(
            keys(&out),
            [
                "displayName",
                "id",
                "meta",
                "name",
                "schemas",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                "userName"
            ]
        );
        assert_eq!(out["name"], json!({"givenName": "Alice"}));
    }

    #[test]
    fn groups_without_members_as_entra_asks() {
        let g = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g", "displayName": "Eng",
                       "members": [{"value": "u1"}]});
        let p = Projection::from_query(None, Some("members")).unwrap();
        assert_eq!(
            keys(&p.apply(&g, ResourceSchema::group())),
            ["displayName", "id", "schemas"]
        );
    }

    #[test]
    fn a_bad_path_is_invalid_value() {
        let e = Projection::from_query(Some("name..x"), None).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
        assert!(e.detail.starts_with("attributes: "), "{}", e.detail);
    }
}

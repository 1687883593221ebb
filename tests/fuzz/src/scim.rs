//! The SCIM model (`roster-scim`): the filter grammar and PATCH, both fed by whatever an
//! identity provider (or anyone holding a token) sends Roster's SCIM endpoint.
//!
//! `filter` input: the filter text, then optionally a NUL and a resource (JSON) to evaluate
//! it against (without one, a few fixed users and groups). `patch` input: the PATCH body
//! (JSON), then optionally a NUL and the resource to apply it to (without one, a fixed user
//! and group); after a PATCH the resource is read as the endpoint and the connector read it.

use roster_scim::schema::{ENTERPRISE_URN, ResourceSchema};
use roster_scim::{
    AttrPath, Filter, ListResponse, PatchPath, Projection, ScimError, SortOrder, apply, group_record, parse_patch,
    sort, user_record,
};
use serde_json::{Value, json};

use crate::split::{parts, text};

fn fixed_resources() -> Vec<Value> {
    vec![
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_URN],
            "id": "2819c223", "externalId": "AbC", "userName": "Alice@Contoso.com", "active": "True",
            "name": {"givenName": "Alice", "familyName": "Smith"}, "title": "",
            "emails": [{"value": "a@contoso.com", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"}],
            "meta": {"created": "2026-01-01T10:00:00+02:00", "version": "W/\"1\""},
            ENTERPRISE_URN: {"employeeNumber": "7", "manager": {"value": "m1"}}
        }),
        json!({"id": "g", "displayName": "Eng", "members": [{"value": "u1"}, {"value": "g2", "type": "Group"}]}),
        json!({"id": "b", "userName": "bob", "emails": "not a list", "name": ["odd"], "active": 3}),
    ]
}

fn resources(rest: &[&[u8]]) -> Vec<Value> {
    match rest.first().and_then(|r| serde_json::from_slice::<Value>(r).ok()) {
        Some(v) => vec![v],
        None => fixed_resources(),
    }
}

fn assert_scim_400(e: &ScimError, what: &str) {
    assert_eq!(e.status, 400, "{what}: {e:?}");
    assert!(e.scim_type.is_some(), "{what}: a 400 without a scimType: {e:?}");
    assert!(!e.detail.is_empty(), "{what}: an empty detail");
}

/// A filter: parsed (an error names its position), printed and parsed back to the same
/// filter, evaluated (and negated) against each resource as a user and as a group; the same
/// text read as a PATCH path and as an attribute path.
pub fn filter(data: &[u8]) {
    let p = parts(data);
    let source = text(p[0]);
    match PatchPath::parse(&source) {
        Ok(path) => assert_eq!(PatchPath::parse(&path.to_string()).as_ref(), Ok(&path), "{path}"),
        Err(e) => assert!(e.detail.contains("at character"), "{e:?}"),
    }
    if let Ok(path) = AttrPath::parse(&source) {
        assert_eq!(AttrPath::parse(&path.to_string()).as_ref(), Ok(&path));
        let user = ResourceSchema::user();
        let mut rs = resources(&p[1..]);
        sort(&mut rs, &path, SortOrder::Descending, user);
    }
    let f = match Filter::parse(&source) {
        Ok(f) => f,
        Err(e) => {
            assert_scim_400(&e, "a filter");
            assert!(e.detail.contains("at character"), "no position: {}", e.detail);
            return;
        }
    };
    let shown = f.to_string();
    assert_eq!(
        Filter::parse(&shown).as_ref(),
        Ok(&f),
        "{source:?} printed as {shown:?}"
    );
    let negated = Filter::Not(Box::new(f.clone()));
    for schema in [ResourceSchema::user(), ResourceSchema::group()] {
        if let Err(e) = f.validate(schema) {
            assert_scim_400(&e, "validate");
        }
        for r in resources(&p[1..]) {
            let m = f.matches(&r, schema);
            assert_eq!(negated.matches(&r, schema), !m, "not ({shown}) on {r}");
            assert_eq!(f.matches(&r, schema), m, "evaluation is not repeatable");
        }
    }
}

/// A PATCH body: parsed, applied to each resource as a user and as a group; a refused PATCH
/// changes nothing, an accepted one is repeatable and leaves an object that projection,
/// sorting and the record extraction read without panicking.
pub fn patch(data: &[u8]) {
    let p = parts(data);
    let Ok(body) = serde_json::from_slice::<Value>(p[0]) else {
        return;
    };
    let _ = ListResponse::parse(&body);
    let ops = match parse_patch(&body) {
        Ok(ops) => ops,
        Err(e) => return assert_scim_400(&e, "parse_patch"),
    };
    for schema in [ResourceSchema::user(), ResourceSchema::group()] {
        for original in resources(&p[1..]) {
            let mut r = original.clone();
            match apply(&mut r, &ops, schema) {
                Err(e) => {
                    assert_scim_400(&e, "apply");
                    assert_eq!(r, original, "a refused PATCH changed the resource");
                }
                Ok(()) => {
                    assert!(r.is_object(), "a PATCH left {r}");
                    let mut again = original.clone();
                    assert_eq!(apply(&mut again, &ops, schema), Ok(()), "not repeatable");
                    assert_eq!(again, r, "not deterministic");
                    let _ = user_record(&r);
                    let _ = group_record(&r);
                    let everything = Projection::default().apply(&r, schema);
                    assert!(everything.get("password").is_none(), "a password returned");
                    if let Ok(some) = Projection::from_query(Some("userName,emails.value,members"), Some("meta")) {
                        let _ = some.apply(&r, schema);
                    }
                    let mut list = vec![r, original];
                    sort(&mut list, &AttrPath::new("userName"), SortOrder::Ascending, schema);
                }
            }
        }
    }
}

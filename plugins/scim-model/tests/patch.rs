//! PATCH as the RFC defines it and as Entra ID (legacy and `aadOptscim062020`) and Okta send
//! it (../shared/reference/vendor-apis.md §9), with the mutability rules.

use roster_scim::schema::{ENTERPRISE_URN, ResourceSchema};
use roster_scim::{Op, ScimError, ScimType, apply, parse_patch};
use serde_json::{Value, json};

const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

fn user() -> Value {
    json!({
        "schemas": [USER],
        "id": "ac56b4e5-e079-46d0-810e-85ddbd223b09",
        "externalId": "ext-1",
        "userName": "pvl@contoso.com",
        "active": true,
        "displayName": "Pavel",
        "name": {"givenName": "Pavel", "familyName": "Old"},
        "emails": [{"value": "pvl@contoso.com", "type": "work", "primary": true}],
        "meta": {"resourceType": "User", "created": "2026-01-01T00:00:00Z", "version": "W/\"1\""}
    })
}

fn group() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "abf4dd94-a4c0-4f67-89c9-76b03340cb9b",
        "displayName": "Engineering",
        "members": [{"value": "u1", "display": "one"}, {"value": "u2"}]
    })
}

fn body(ops: Value) -> Value {
    json!({"schemas": [PATCH], "Operations": ops})
}

fn patch(resource: &mut Value, schema: &ResourceSchema, ops: Value) -> Result<(), ScimError> {
    let ops = parse_patch(&body(ops))?;
    apply(resource, &ops, schema)
}

fn patched_user(ops: Value) -> Value {
    let mut u = user();
    patch(&mut u, ResourceSchema::user(), ops).unwrap_or_else(|e| panic!("{e}"));
    u
}

fn patched_group(ops: Value) -> Value {
    let mut g = group();
    patch(&mut g, ResourceSchema::group(), ops).unwrap_or_else(|e| panic!("{e}"));
    g
}

fn user_error(ops: Value) -> ScimError {
    let mut u = user();
    let e = patch(&mut u, ResourceSchema::user(), ops).expect_err("a refused PATCH");
    assert_eq!(u, user(), "a refused PATCH changes nothing");
    e
}

fn member_values(g: &Value) -> Vec<&str> {
    g["members"]
        .as_array()
        .map_or_else(Vec::new, |m| m.iter().map(|m| m["value"].as_str().unwrap()).collect())
}

// --- Entra ID without aadOptscim062020 -------------------------------------------------------

#[test]
fn entra_legacy_disable_with_a_capitalised_op_and_a_string_boolean() {
    let u = patched_user(json!([{"op": "Replace", "path": "active", "value": "False"}]));
    assert_eq!(u["active"], json!(false));
    let u = patched_user(json!([{"op": "Replace", "path": "active", "value": "True"}]));
    assert_eq!(u["active"], json!(true));
}

#[test]
fn entra_legacy_one_replace_per_attribute() {
    let u = patched_user(json!([
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
        {"op": "Replace", "path": "userName", "value": "5b50642d@testuser.com"},
        {"op": "Add", "path": "nickName", "value": "Babs"},
        {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "R&D"},
        {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
         "value": [{"$ref": null, "value": "2819c223"}]},
    ]));
    assert_eq!(
        u["emails"],
        json!([{"value": "updatedEmail@microsoft.com", "type": "work", "primary": true}])
    );
    assert_eq!(
        u["name"],
        json!({"givenName": "Pavel", "familyName": "updatedFamilyName"})
    );
    assert_eq!(u["userName"], "5b50642d@testuser.com");
    assert_eq!(u["nickName"], "Babs");
    assert_eq!(
        u[ENTERPRISE_URN],
        json!({"department": "R&D", "manager": {"value": "2819c223"}})
    );
    assert_eq!(
        u["schemas"],
        json!([USER, ENTERPRISE_URN]),
        "the extension is listed once it has values"
    );
}

#[test]
fn entra_legacy_members_added_and_removed_as_value_arrays() {
    let g = patched_group(
        json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": "u3"}, {"value": "u1"}]}]),
    );
    assert_eq!(member_values(&g), ["u1", "u2", "u3"], "appended without duplicates");
    assert_eq!(g["members"][2], json!({"value": "u3"}), "a null $ref is no value");
    let g = patched_group(
        json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "u1"}, {"value": "absent"}]}]),
    );
    assert_eq!(member_values(&g), ["u2"]);
    let g = patched_group(json!([{"op": "Remove", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]}]));
    assert!(g.get("members").is_none(), "an emptied list is unassigned: {g}");
    let g = patched_group(json!([{"op": "Replace", "path": "displayName", "value": "1879db59updatedDisplayName"}]));
    assert_eq!(g["displayName"], "1879db59updatedDisplayName");
}

// --- Entra ID with aadOptscim062020 ----------------------------------------------------------

#[test]
fn entra_flagged_pathless_replace_with_dotted_and_urn_keys() {
    let u = patched_user(json!([{"op": "replace", "value": {
        "displayName": "Pvl",
        "name.givenName": "Pvl",
        "name.familyName": "Lastname",
        "emails[type eq \"work\"].value": "pvl@fabrikam.com",
        "active": false,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "701984",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager": "26118915"
    }}]));
    assert_eq!(u["displayName"], "Pvl");
    assert_eq!(u["name"], json!({"givenName": "Pvl", "familyName": "Lastname"}));
    assert_eq!(u["emails"][0]["value"], "pvl@fabrikam.com");
    assert_eq!(u["active"], json!(false));
    assert_eq!(
        u[ENTERPRISE_URN],
        json!({"employeeNumber": "701984", "manager": {"value": "26118915"}})
    );
}

#[test]
fn entra_flagged_lower_case_ops_booleans_and_member_filters() {
    let u = patched_user(json!([{"op": "replace", "path": "active", "value": false}]));
    assert_eq!(u["active"], json!(false));
    let g = patched_group(json!([
        {"op": "add", "path": "members", "value": [{"value": "7f4bc1a3-285e-48ae-8202-5accb43efb0e"}]},
        {"op": "remove", "path": "members[value eq \"u1\"]"},
    ]));
    assert_eq!(member_values(&g), ["u2", "7f4bc1a3-285e-48ae-8202-5accb43efb0e"]);
    // Removing a member that is not there succeeds: Entra retries.
    let g =
        patched_group(json!([{"op": "remove", "path": "members[value eq \"7f4bc1a3-285e-48ae-8202-5accb43efb0e\"]"}]));
    assert_eq!(member_values(&g), ["u1", "u2"]);
}

// --- Okta --------------------------------------------------------------------------------------

#[test]
fn okta_pathless_deactivate_and_password_sync() {
    let u = patched_user(json!([{"op": "replace", "value": {"active": false}}]));
    assert_eq!(u["active"], json!(false));
    let u = patched_user(json!([{"op": "replace", "value": {"password": "t1meMa$heen"}}]));
    assert_eq!(u["password"], "t1meMa$heen");
}

#[test]
fn okta_group_rename_carries_the_unchanged_id() {
    let g = patched_group(
        json!([{"op": "replace", "value": {"id": "abf4dd94-a4c0-4f67-89c9-76b03340cb9b", "displayName": "Test SCIMv2"}}]),
    );
    assert_eq!(g["displayName"], "Test SCIMv2");
    assert_eq!(g["id"], "abf4dd94-a4c0-4f67-89c9-76b03340cb9b");
    let mut g = group();
    let e = patch(
        &mut g,
        ResourceSchema::group(),
        json!([{"op": "replace", "value": {"id": "other", "displayName": "x"}}]),
    )
    .unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::Mutability));
    assert_eq!(g, group());
}

#[test]
fn okta_membership_add_remove_and_full_replace() {
    let g = patched_group(json!([
        {"op": "replace", "value": {"id": "abf4dd94-a4c0-4f67-89c9-76b03340cb9b", "displayName": "Eng"}},
        {"op": "add", "path": "members", "value": [{"value": "00u1", "display": "a@example.com"}, {"value": "00u2", "display": "b@example.com"}]},
        {"op": "remove", "path": "members[value eq \"u2\"]"},
    ]));
    assert_eq!(member_values(&g), ["u1", "00u1", "00u2"]);
    assert_eq!(g["displayName"], "Eng");
    let g = patched_group(
        json!([{"op": "replace", "path": "members", "value": [{"value": "00u9", "display": "z@example.com"}]}]),
    );
    assert_eq!(g["members"], json!([{"value": "00u9", "display": "z@example.com"}]));
    let g = patched_group(json!([{"op": "replace", "path": "members", "value": []}]));
    assert_eq!(member_values(&g), Vec::<&str>::new());
}

// --- The RFC's forms ---------------------------------------------------------------------------

#[test]
fn add_appends_to_multi_valued_attributes_and_keeps_one_primary() {
    let u = patched_user(json!([{"op": "add", "path": "emails", "value": [
        {"value": "pvl@contoso.com", "type": "work", "primary": true},
        {"value": "p@home.example", "type": "home", "primary": "True"}
    ]}]));
    assert_eq!(
        u["emails"],
        json!([
            {"value": "pvl@contoso.com", "type": "work", "primary": false},
            {"value": "p@home.example", "type": "home", "primary": true}
        ])
    );
    let u = patched_user(json!([{"op": "add", "value": {"phoneNumbers": {"value": "+1 555", "type": "mobile"}}}]));
    assert_eq!(
        u["phoneNumbers"],
        json!([{"value": "+1 555", "type": "mobile"}]),
        "a lone value becomes a list"
    );
}

#[test]
fn complex_values_merge_and_null_unassigns() {
    let u = patched_user(json!([{"op": "replace", "path": "name", "value": {"familyName": "New", "middleName": "M"}}]));
    assert_eq!(
        u["name"],
        json!({"givenName": "Pavel", "familyName": "New", "middleName": "M"})
    );
    let u = patched_user(json!([{"op": "add", "value": {"name": {"givenName": null}}}]));
    assert_eq!(u["name"], json!({"familyName": "Old"}));
    let u = patched_user(json!([{"op": "replace", "path": "displayName", "value": null}]));
    assert!(u.get("displayName").is_none());
}

#[test]
fn value_paths_replace_create_and_remove() {
    // No home email yet: the filter's equalities say what to create.
    let u = patched_user(json!([{"op": "replace", "path": "emails[type eq \"home\"].value", "value": "h@x"}]));
    assert_eq!(u["emails"][1], json!({"type": "home", "value": "h@x"}));
    let u = patched_user(json!([{"op": "add", "path": "addresses[type eq \"work\"].locality", "value": "Oslo"}]));
    assert_eq!(u["addresses"], json!([{"type": "work", "locality": "Oslo"}]));
    let u = patched_user(
        json!([{"op": "replace", "path": "emails[type eq \"work\"]", "value": {"value": "n@x", "type": "work"}}]),
    );
    assert_eq!(u["emails"], json!([{"value": "n@x", "type": "work"}]));
    let u = patched_user(json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}]));
    assert_eq!(u["emails"], json!([{"value": "pvl@contoso.com", "type": "work"}]));
    let u = patched_user(json!([{"op": "remove", "path": "emails[value co \"contoso\"]"}]));
    assert!(u.get("emails").is_none());
    // Nothing to create from a `co` filter, nothing to remove: noTarget.
    let e = user_error(json!([{"op": "replace", "path": "emails[value co \"x\"].type", "value": "home"}]));
    assert_eq!(e.scim_type, Some(ScimType::NoTarget));
    let e = user_error(json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]));
    assert_eq!(e.scim_type, Some(ScimType::NoTarget));
    assert!(
        e.detail
            .starts_with("Operations[0] (remove \"emails[type eq \\\"home\\\"]\"): "),
        "{}",
        e.detail
    );
}

#[test]
fn removes_by_path() {
    let u = patched_user(json!([
        {"op": "remove", "path": "name.givenName"},
        {"op": "remove", "path": "displayName"},
        {"op": "remove", "path": "nickName"},
        {"op": "Remove", "path": "emails"},
    ]));
    assert_eq!(u["name"], json!({"familyName": "Old"}));
    assert!(u.get("displayName").is_none() && u.get("emails").is_none());
}

#[test]
fn the_enterprise_extension_by_its_urn() {
    let u = patched_user(
        json!([{"op": "add", "path": ENTERPRISE_URN, "value": {"department": "Ops", "costCenter": 4130}}]),
    );
    assert_eq!(u[ENTERPRISE_URN], json!({"department": "Ops", "costCenter": "4130"}));
    let u =
        patched_user(json!([{"op": "replace", "value": {ENTERPRISE_URN: {"division": "X", "manager.value": "m1"}}}]));
    assert_eq!(u[ENTERPRISE_URN], json!({"division": "X", "manager": {"value": "m1"}}));
    let mut u = u;
    patch(
        &mut u,
        ResourceSchema::user(),
        json!([{"op": "remove", "path": ENTERPRISE_URN}]),
    )
    .unwrap();
    assert!(u.get(ENTERPRISE_URN).is_none());
    assert_eq!(u["schemas"], json!([USER]));
    let u = patched_user(json!([{"op": "replace", "path": format!("{ENTERPRISE_URN}:manager.value"), "value": "m2"}]));
    assert_eq!(u[ENTERPRISE_URN]["manager"], json!({"value": "m2"}));
}

#[test]
fn names_are_matched_case_insensitively_and_kept_once() {
    let mut u = user();
    u.as_object_mut().unwrap().remove("displayName");
    u["DISPLAYNAME"] = json!("Shouting");
    patch(
        &mut u,
        ResourceSchema::user(),
        json!([{"op": "replace", "path": "displayname", "value": "Quiet"}]),
    )
    .unwrap();
    assert_eq!(u["displayName"], "Quiet");
    assert!(u.get("DISPLAYNAME").is_none());
    let u = patched_user(json!([{"op": "replace", "path": "NAME.GIVENNAME", "value": "P"}]));
    assert_eq!(u["name"]["givenName"], "P");
}

#[test]
fn attributes_roster_does_not_model_are_kept() {
    let u = patched_user(json!([
        {"op": "add", "path": "favouriteColour", "value": "blue"},
        {"op": "add", "value": {"urn:example:custom:2.0:User": {"badge": "42"}}},
        {"op": "add", "path": "urn:example:custom:2.0:User:floor", "value": 3},
    ]));
    assert_eq!(u["favouriteColour"], "blue");
    assert_eq!(u["urn:example:custom:2.0:User"], json!({"badge": "42", "floor": 3}));
}

// --- Refusals --------------------------------------------------------------------------------

#[test]
fn read_only_and_immutable_attributes_are_refused() {
    for ops in [
        json!([{"op": "replace", "path": "id", "value": "mine"}]),
        json!([{"op": "remove", "path": "id"}]),
        json!([{"op": "replace", "path": "meta.lastModified", "value": "2026-01-01T00:00:00Z"}]),
        json!([{"op": "add", "value": {"meta": {"version": "W/\"9\""}}}]),
        json!([{"op": "add", "path": "groups", "value": [{"value": "g1"}]}]),
        json!([{"op": "remove", "path": "meta"}]),
    ] {
        let e = user_error(ops.clone());
        assert_eq!(e.scim_type, Some(ScimType::Mutability), "{ops}: {e}");
        assert!(e.detail.contains("read-only"), "{}", e.detail);
    }
    let mut g = group();
    let e = patch(
        &mut g,
        ResourceSchema::group(),
        json!([{"op": "replace", "path": "members[value eq \"u1\"].value", "value": "u9"}]),
    )
    .unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::Mutability));
    assert!(e.detail.contains("immutable"), "{}", e.detail);
}

#[test]
fn required_attributes_cannot_be_removed_and_types_are_checked() {
    let e = user_error(json!([{"op": "remove", "path": "userName"}]));
    assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    let e = user_error(json!([{"op": "replace", "path": "userName", "value": null}]));
    assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    for ops in [
        json!([{"op": "replace", "path": "active", "value": "yes"}]),
        json!([{"op": "replace", "path": "displayName", "value": {"a": 1}}]),
        json!([{"op": "replace", "path": "name", "value": 5}]),
        json!([{"op": "replace", "value": "not an object"}]),
        json!([{"op": "add", "path": "emails", "value": [{"value": "x", "primary": "maybe"}]}]),
    ] {
        assert_eq!(user_error(ops.clone()).scim_type, Some(ScimType::InvalidValue), "{ops}");
    }
    for ops in [
        json!([{"op": "replace", "path": "name.nosuch", "value": "x"}]),
        json!([{"op": "replace", "path": "userName.x", "value": "x"}]),
        json!([{"op": "replace", "path": "displayName[value eq \"x\"]", "value": "x"}]),
        json!([{"op": "replace", "path": "nosuch[value eq \"x\"]", "value": "x"}]),
        json!([{"op": "replace", "value": {"name..x": "y"}}]),
    ] {
        assert_eq!(user_error(ops.clone()).scim_type, Some(ScimType::InvalidPath), "{ops}");
    }
}

#[test]
fn a_failing_operation_leaves_the_resource_unchanged() {
    let e = user_error(json!([
        {"op": "replace", "path": "displayName", "value": "Changed"},
        {"op": "replace", "path": "id", "value": "x"},
    ]));
    assert!(e.detail.starts_with("Operations[1] (replace \"id\")"), "{}", e.detail);
}

#[test]
fn malformed_bodies_are_refused_with_the_field_named() {
    let cases = [
        (json!([]), ScimType::InvalidSyntax, "not a JSON object"),
        (
            json!({"Operations": [{"op": "add", "value": {}}]}),
            ScimType::InvalidSyntax,
            PATCH,
        ),
        (
            json!({"schemas": [PATCH]}),
            ScimType::InvalidSyntax,
            "no \"Operations\"",
        ),
        (
            json!({"schemas": [PATCH], "Operations": []}),
            ScimType::InvalidSyntax,
            "no operation",
        ),
        (
            json!({"schemas": [PATCH], "Operations": [{"op": "merge", "value": {}}]}),
            ScimType::InvalidSyntax,
            "Operations[0].op is \"merge\"",
        ),
        (
            json!({"schemas": [PATCH], "Operations": [{"value": {}}]}),
            ScimType::InvalidSyntax,
            "op is missing",
        ),
        (
            json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": "x"}]}),
            ScimType::InvalidValue,
            "no \"value\"",
        ),
        (
            json!({"schemas": [PATCH], "Operations": [{"op": "remove"}]}),
            ScimType::NoTarget,
            "no \"path\"",
        ),
        (
            json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": "emails[", "value": 1}]}),
            ScimType::InvalidPath,
            "Operations[0].path: invalid path at character 8",
        ),
        (
            json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": 7, "value": 1}]}),
            ScimType::InvalidPath,
            "not a string",
        ),
        (
            json!({"schemas": [PATCH], "Operations": ["add"]}),
            ScimType::InvalidSyntax,
            "Operations[0] is not",
        ),
    ];
    for (body, kind, says) in cases {
        let e = parse_patch(&body).unwrap_err();
        assert_eq!(e.scim_type, Some(kind), "{body}");
        assert!(e.detail.contains(says), "{body}: {}", e.detail);
    }
    let ops = parse_patch(
        &json!({"SCHEMAS": [PATCH.to_uppercase()], "operations": [{"OP": "ADD", "Path": "", "Value": {"a": 1}}]}),
    )
    .unwrap();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].op, Op::Add);
    assert_eq!(ops[0].path, None, "an empty path is no path");
}

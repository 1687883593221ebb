//! The schema tables and the discovery documents (`/Schemas`, `/ResourceTypes`,
//! `/ServiceProviderConfig`) a SCIM client reads before anything else.

use roster_scim::schema::{
    AttrType, Bulk, ENTERPRISE_URN, GROUP_URN, Home, Mutability, Returned, USER_URN, Uniqueness,
    resource_type_document, resource_types_document, schema_document, schemas_document,
};
use roster_scim::{AttrPath, ResourceSchema, ServiceProviderConfig};
use serde_json::{Value, json};

fn attr<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing"))
}

#[test]
fn attributes_are_found_case_insensitively_and_by_urn() {
    let user = ResourceSchema::user();
    let user_name = user.find(&AttrPath::new("USERNAME")).unwrap();
    assert_eq!(user_name.name, "userName");
    assert!(user_name.required && !user_name.case_exact);
    assert_eq!(user_name.uniqueness, Uniqueness::Server);
    let given = user.find(&AttrPath::parse("name.GIVENNAME").unwrap()).unwrap();
    assert_eq!(given.name, "givenName");
    let qualified = AttrPath::parse(&format!("{}:userName", USER_URN.to_lowercase())).unwrap();
    assert_eq!(user.find(&qualified).unwrap().name, "userName");
    let manager = AttrPath::parse(&format!("{ENTERPRISE_URN}:manager.value")).unwrap();
    assert_eq!(user.find(&manager).unwrap().name, "value");
    assert_eq!(user.locate(&manager).unwrap().0, Home::Extension(ENTERPRISE_URN));
    assert_eq!(
        user.locate(&AttrPath::new("department")).unwrap().0,
        Home::Extension(ENTERPRISE_URN)
    );
    assert!(
        user.find(&AttrPath::parse("urn:other:2.0:User:userName").unwrap())
            .is_none()
    );
    assert!(user.find(&AttrPath::parse("name.nosuch").unwrap()).is_none());
    let id = user.find(&AttrPath::new("id")).unwrap();
    assert_eq!(
        (id.mutability, id.returned, id.case_exact),
        (Mutability::ReadOnly, Returned::Always, true)
    );
    let password = user.find(&AttrPath::new("password")).unwrap();
    assert_eq!(
        (password.mutability, password.returned),
        (Mutability::WriteOnly, Returned::Never)
    );
    assert_eq!(user.find(&AttrPath::new("active")).unwrap().kind, AttrType::Boolean);
    assert_eq!(
        user.find(&AttrPath::parse("meta.created").unwrap()).unwrap().kind,
        AttrType::DateTime
    );
    let group = ResourceSchema::group();
    let members = group.find(&AttrPath::new("Members")).unwrap();
    assert!(members.multi_valued);
    assert_eq!(members.sub("VALUE").unwrap().mutability, Mutability::Immutable);
    assert!(group.find(&AttrPath::new("userName")).is_none());
}

#[test]
fn the_schemas_document_lists_user_enterprise_and_group() {
    let doc = schemas_document();
    assert_eq!(
        doc["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    assert_eq!(doc["totalResults"], json!(3));
    let ids: Vec<&str> = doc["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [USER_URN, ENTERPRISE_URN, GROUP_URN]);
    let user = schema_document(&USER_URN.to_uppercase()).unwrap();
    assert_eq!(user["name"], "User");
    assert_eq!(user["schemas"], json!(["urn:ietf:params:scim:schemas:core:2.0:Schema"]));
    assert!(
        user["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["name"] != "id" && a["name"] != "meta")
    );
    let user_name = attr(&user, "userName");
    assert_eq!(user_name["type"], "string");
    assert_eq!(user_name["required"], json!(true));
    assert_eq!(user_name["uniqueness"], "server");
    assert_eq!(user_name["mutability"], "readWrite");
    let emails = attr(&user, "emails");
    assert_eq!(emails["multiValued"], json!(true));
    assert_eq!(emails["type"], "complex");
    let kinds: Vec<&str> = emails["subAttributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["value", "display", "type", "primary"]);
    assert_eq!(attr(&user, "password")["returned"], "never");
    assert_eq!(attr(&user, "groups")["mutability"], "readOnly");
    assert_eq!(attr(&user, "profileUrl")["referenceTypes"], json!(["external"]));
    let enterprise = schema_document(ENTERPRISE_URN).unwrap();
    let manager = attr(&enterprise, "manager");
    assert_eq!(manager["subAttributes"][1]["referenceTypes"], json!(["User"]));
    let group = schema_document(GROUP_URN).unwrap();
    assert_eq!(
        attr(&group, "members")["subAttributes"][2]["canonicalValues"],
        json!(["User", "Group"])
    );
    assert!(schema_document("urn:nope").is_none());
    for resource in doc["Resources"].as_array().unwrap() {
        for a in resource["attributes"].as_array().unwrap() {
            for key in [
                "name",
                "type",
                "multiValued",
                "description",
                "required",
                "caseExact",
                "mutability",
                "returned",
                "uniqueness",
            ] {
                assert!(a.get(key).is_some(), "{} lacks {key}", a["name"]);
            }
        }
    }
}

#[test]
fn resource_types_point_at_the_schemas_under_the_base_url() {
    let doc = resource_types_document("https://roster.example/scim/v2/entra/");
    assert_eq!(doc["totalResults"], json!(2));
    let user = &doc["Resources"][0];
    assert_eq!(user["endpoint"], "/Users");
    assert_eq!(user["schema"], USER_URN);
    assert_eq!(
        user["schemaExtensions"],
        json!([{"schema": ENTERPRISE_URN, "required": false}])
    );
    assert_eq!(
        user["meta"]["location"],
        "https://roster.example/scim/v2/entra/ResourceTypes/User"
    );
    let group = resource_type_document("https://roster.example/scim/v2/entra", "group").unwrap();
    assert_eq!(group["endpoint"], "/Groups");
    assert!(resource_type_document("x", "Device").is_none());
}

#[test]
fn the_service_provider_config_says_what_is_supported() {
    let config = ServiceProviderConfig {
        patch: true,
        bulk: None,
        filter_max_results: 200,
        change_password: false,
        sort: true,
        etag: true,
        documentation_uri: Some("https://roster.example/docs/scim".into()),
    };
    let doc = config.to_json("https://roster.example/scim/v2/okta");
    assert_eq!(
        doc["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"])
    );
    assert_eq!(doc["patch"], json!({"supported": true}));
    assert_eq!(
        doc["bulk"],
        json!({"supported": false, "maxOperations": 0, "maxPayloadSize": 0})
    );
    assert_eq!(doc["filter"], json!({"supported": true, "maxResults": 200}));
    assert_eq!(doc["changePassword"], json!({"supported": false}));
    assert_eq!(doc["sort"], json!({"supported": true}));
    assert_eq!(doc["etag"], json!({"supported": true}));
    assert_eq!(doc["authenticationSchemes"][0]["type"], "oauthbearertoken");
    assert_eq!(doc["documentationUri"], "https://roster.example/docs/scim");
    assert_eq!(
        doc["meta"]["location"],
        "https://roster.example/scim/v2/okta/ServiceProviderConfig"
    );
    let with_bulk = ServiceProviderConfig {
        bulk: Some(Bulk {
            max_operations: 10,
            max_payload_size: 1_048_576,
        }),
        documentation_uri: None,
        ..config
    };
    let doc = with_bulk.to_json("x");
    assert_eq!(
        doc["bulk"],
        json!({"supported": true, "maxOperations": 10, "maxPayloadSize": 1_048_576})
    );
    assert!(doc.get("documentationUri").is_none());
}

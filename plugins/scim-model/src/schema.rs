//! The schemas Roster serves and reads (RFC 7643 §4, §8.7): core User, Group, the enterprise
//! user extension; attribute characteristics; the `/Schemas`, `/ResourceTypes` and
//! `/ServiceProviderConfig` documents. Attribute names are looked up case-insensitively.

/// Core User schema URN.
pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// Core Group schema URN.
pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// Enterprise user extension URN.
pub const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// An attribute's data type (RFC 7643 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    /// A string.
    String,
    /// `true` or `false`.
    Boolean,
    /// A decimal number.
    Decimal,
    /// An integer.
    Integer,
    /// An RFC 3339 date-time, compared as a time.
    DateTime,
    /// Base64 bytes.
    Binary,
    /// A URI naming another resource.
    Reference,
    /// Has sub-attributes.
    Complex,
}

/// Whether and how a client may change an attribute (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    /// Set by the server only.
    ReadOnly,
    /// Set and changed by the client.
    ReadWrite,
    /// Set once, then never changed.
    Immutable,
    /// Set, never returned.
    WriteOnly,
}

/// When an attribute is returned (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    /// Always, whatever `attributes`/`excludedAttributes` say.
    Always,
    /// Never (passwords).
    Never,
    /// Unless excluded.
    Default,
    /// Only when asked for by `attributes`.
    Request,
}

/// Whether a value must be unique (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    /// No constraint.
    None,
    /// Unique among the resources of this server (of its source, for Roster).
    Server,
    /// Globally unique.
    Global,
}

/// One attribute of a schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    /// Its name as the schema spells it.
    pub name: &'static str,
    /// Its type.
    pub kind: AttrType,
    /// Whether it holds a list.
    pub multi_valued: bool,
    /// Whether string comparison respects case.
    pub case_exact: bool,
    /// Whether a resource must have it.
    pub required: bool,
    /// Who may change it.
    pub mutability: Mutability,
    /// When it is returned.
    pub returned: Returned,
    /// Whether values must be unique.
    pub uniqueness: Uniqueness,
    /// Its sub-attributes (complex types).
    pub sub_attributes: Vec<Attribute>,
    /// What a `reference` may point at (`User`, `Group`, `external`, `uri`).
    pub reference_types: &'static [&'static str],
    /// The values a client is expected to use (`type`: `work`, `home`, …).
    pub canonical_values: &'static [&'static str],
}

/// A resource type's schemas: the core one and its extensions.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceSchema {
    /// `User` or `Group`.
    pub resource_type: &'static str,
    /// The core schema's URN.
    pub urn: &'static str,
    /// The core schema's attributes (common attributes `id`, `externalId`, `meta` included).
    pub attributes: Vec<Attribute>,
    /// Extensions by URN, with their attributes.
    pub extensions: Vec<(&'static str, Vec<Attribute>)>,
}

use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::path::AttrPath;

/// The schema URN of a Schema resource (`/Schemas`).
pub const SCHEMA_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
/// The schema URN of a ResourceType resource (`/ResourceTypes`).
pub const RESOURCE_TYPE_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
/// The schema URN of the ServiceProviderConfig resource.
pub const SERVICE_PROVIDER_CONFIG_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
/// The schema URN of a list answer.
pub const LIST_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// The common attributes (RFC 7643 §3.1): part of every resource, of no schema document.
const COMMON: &[&str] = &["id", "externalId", "meta"];

impl Attribute {
    /// A single-valued, case-insensitive, optional, read-write attribute returned by default.
    fn new(name: &'static str, kind: AttrType) -> Attribute {
        Attribute {
            name,
            kind,
            multi_valued: false,
            case_exact: false,
            required: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            sub_attributes: Vec::new(),
            reference_types: &[],
            canonical_values: &[],
        }
    }

    fn multi(mut self) -> Attribute {
        self.multi_valued = true;
        self
    }

    fn exact(mut self) -> Attribute {
        self.case_exact = true;
        self
    }

    fn required(mut self) -> Attribute {
        self.required = true;
        self
    }

    fn mutability(mut self, m: Mutability) -> Attribute {
        self.mutability = m;
        self
    }

    fn returned(mut self, r: Returned) -> Attribute {
        self.returned = r;
        self
    }

    fn unique(mut self, u: Uniqueness) -> Attribute {
        self.uniqueness = u;
        self
    }

    fn subs(mut self, subs: Vec<Attribute>) -> Attribute {
        self.sub_attributes = subs;
        self
    }

    fn refs(mut self, types: &'static [&'static str]) -> Attribute {
        self.reference_types = types;
        self
    }

    fn canonical(mut self, values: &'static [&'static str]) -> Attribute {
        self.canonical_values = values;
        self
    }

    /// Its sub-attribute of that name, compared case-insensitively.
    pub fn sub(&self, name: &str) -> Option<&Attribute> {
        self.sub_attributes.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// The attribute as a Schema document describes it (RFC 7643 §7).
    pub fn to_json(&self) -> Value {
        let mut a = json!({
            "name": self.name,
            "type": match self.kind {
                AttrType::String => "string",
                AttrType::Boolean => "boolean",
                AttrType::Decimal => "decimal",
                AttrType::Integer => "integer",
                AttrType::DateTime => "dateTime",
                AttrType::Binary => "binary",
                AttrType::Reference => "reference",
                AttrType::Complex => "complex",
            },
            "multiValued": self.multi_valued,
            "description": describe(self.name),
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": match self.mutability {
                Mutability::ReadOnly => "readOnly",
                Mutability::ReadWrite => "readWrite",
                Mutability::Immutable => "immutable",
                Mutability::WriteOnly => "writeOnly",
            },
            "returned": match self.returned {
                Returned::Always => "always",
                Returned::Never => "never",
                Returned::Default => "default",
                Returned::Request => "request",
            },
            "uniqueness": match self.uniqueness {
                Uniqueness::None => "none",
                Uniqueness::Server => "server",
                Uniqueness::Global => "global",
            },
        });
        if !self.sub_attributes.is_empty() {
            a["subAttributes"] = self.sub_attributes.iter().map(Attribute::to_json).collect();
        }
        if !self.reference_types.is_empty() {
            a["referenceTypes"] = json!(self.reference_types);
        }
        if !self.canonical_values.is_empty() {
            a["canonicalValues"] = json!(self.canonical_values);
        }
        a
    }
}

/// A short description for the schema documents: RFC 7643's wording, shortened.
fn describe(name: &str) -> String {
    let known = match name {
        "userName" => "Unique identifier for the User, typically used to sign in",
        "displayName" => "The name displayed to end-users",
        "active" => "Whether the account may sign in",
        "emails" => "Email addresses",
        "members" => "The group's members: users and groups",
        "value" => "The value",
        "type" => "A label for the value's function",
        "primary" => "Whether this is the preferred value",
        "display" => "A human-readable name",
        "$ref" => "The URI of the resource",
        "manager" => "The user's manager",
        _ => "",
    };
    if known.is_empty() {
        format!("The {name} attribute")
    } else {
        known.to_string()
    }
}

/// `value`, `display`, `type`, `primary`: the sub-attributes of a multi-valued attribute.
fn plural_subs(value: AttrType, types: &'static [&'static str]) -> Vec<Attribute> {
    vec![
        Attribute::new("value", value),
        Attribute::new("display", AttrType::String),
        Attribute::new("type", AttrType::String).canonical(types),
        Attribute::new("primary", AttrType::Boolean),
    ]
}

/// `id`, `externalId`, `meta` (RFC 7643 §3.1).
fn common_attributes() -> Vec<Attribute> {
    use Mutability::ReadOnly;
    vec![
        Attribute::new("id", AttrType::String)
            .exact()
            .mutability(ReadOnly)
            .returned(Returned::Always)
            .unique(Uniqueness::Server),
        Attribute::new("externalId", AttrType::String).exact(),
        Attribute::new("meta", AttrType::Complex)
            .mutability(ReadOnly)
            .subs(vec![
                Attribute::new("resourceType", AttrType::String)
                    .exact()
                    .mutability(ReadOnly),
                Attribute::new("created", AttrType::DateTime).mutability(ReadOnly),
                Attribute::new("lastModified", AttrType::DateTime).mutability(ReadOnly),
                Attribute::new("location", AttrType::Reference)
                    .exact()
                    .mutability(ReadOnly)
                    .refs(&["uri"]),
                Attribute::new("version", AttrType::String).exact().mutability(ReadOnly),
            ]),
    ]
}

fn user_attributes() -> Vec<Attribute> {
    use AttrType::{Boolean, Complex, Reference, String as Str};
    let s = |n| Attribute::new(n, Str);
    let mut attrs = common_attributes();
    attrs.extend([
        // Returned always so that a client asking for a few attributes can still tell its
        // users apart (the design's choice; RFC 7643 leaves it at "default").
        s("userName")
            .required()
            .unique(Uniqueness::Server)
            .returned(Returned::Always),
        Attribute::new("name", Complex).subs(vec![
            s("formatted"),
            s("familyName"),
            s("givenName"),
            s("middleName"),
            s("honorificPrefix"),
            s("honorificSuffix"),
        ]),
        s("displayName"),
        s("nickName"),
        Attribute::new("profileUrl", Reference).refs(&["external"]),
        s("title"),
        s("userType"),
        s("preferredLanguage"),
        s("locale"),
        s("timezone"),
        Attribute::new("active", Boolean),
        s("password")
            .exact()
            .mutability(Mutability::WriteOnly)
            .returned(Returned::Never),
        Attribute::new("emails", Complex)
            .multi()
            .subs(plural_subs(Str, &["work", "home", "other"])),
        Attribute::new("phoneNumbers", Complex)
            .multi()
            .subs(plural_subs(Str, &["work", "home", "mobile", "fax", "pager", "other"])),
        Attribute::new("ims", Complex).multi().subs(plural_subs(
            Str,
            &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
        )),
        Attribute::new("photos", Complex).multi().subs({
            let mut p = plural_subs(Reference, &["photo", "thumbnail"]);
            p[0] = Attribute::new("value", Reference).refs(&["external"]);
            p
        }),
        Attribute::new("addresses", Complex).multi().subs(vec![
            s("formatted"),
            s("streetAddress"),
            s("locality"),
            s("region"),
            s("postalCode"),
            s("country"),
            s("type").canonical(&["work", "home", "other"]),
            Attribute::new("primary", Boolean),
        ]),
        Attribute::new("groups", Complex)
            .multi()
            .mutability(Mutability::ReadOnly)
            .subs(vec![
                s("value").mutability(Mutability::ReadOnly),
                Attribute::new("$ref", Reference)
                    .mutability(Mutability::ReadOnly)
                    .refs(&["User", "Group"]),
                s("display").mutability(Mutability::ReadOnly),
                s("type")
                    .mutability(Mutability::ReadOnly)
                    .canonical(&["direct", "indirect"]),
            ]),
        Attribute::new("entitlements", Complex)
            .multi()
            .subs(plural_subs(Str, &[])),
        Attribute::new("roles", Complex).multi().subs(plural_subs(Str, &[])),
        Attribute::new("x509Certificates", Complex)
            .multi()
            .subs(plural_subs(AttrType::Binary, &[])),
    ]);
    attrs
}

fn enterprise_attributes() -> Vec<Attribute> {
    let s = |n| Attribute::new(n, AttrType::String);
    vec![
        s("employeeNumber"),
        s("costCenter"),
        s("organization"),
        s("division"),
        s("department"),
        Attribute::new("manager", AttrType::Complex).subs(vec![
            s("value").required(),
            Attribute::new("$ref", AttrType::Reference).refs(&["User"]),
            s("displayName").mutability(Mutability::ReadOnly),
        ]),
    ]
}

fn group_attributes() -> Vec<Attribute> {
    let mut attrs = common_attributes();
    attrs.extend([
        Attribute::new("displayName", AttrType::String).required(),
        Attribute::new("members", AttrType::Complex).multi().subs(vec![
            Attribute::new("value", AttrType::String)
                .exact()
                .mutability(Mutability::Immutable),
            Attribute::new("$ref", AttrType::Reference)
                .mutability(Mutability::Immutable)
                .refs(&["User", "Group"]),
            Attribute::new("type", AttrType::String)
                .mutability(Mutability::Immutable)
                .canonical(&["User", "Group"]),
            Attribute::new("display", AttrType::String),
        ]),
    ]);
    attrs
}

fn named<'a>(attrs: &'a [Attribute], name: &str) -> Option<&'a Attribute> {
    attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

/// `schemas` (RFC 7643 §3): on every resource, in no schema.
fn schemas_attribute() -> &'static Attribute {
    static SCHEMAS: OnceLock<Attribute> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        Attribute::new("schemas", AttrType::Reference)
            .multi()
            .exact()
            .returned(Returned::Always)
            .refs(&["uri"])
    })
}

/// Where an attribute lives: the core schema (top level of the resource) or an extension
/// (the object under the extension's URN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Home {
    /// A top-level key of the resource.
    Core,
    /// A key of the object under this extension URN.
    Extension(&'static str),
}

impl ResourceSchema {
    /// Core User with the enterprise extension.
    pub fn user() -> &'static ResourceSchema {
        static USER: OnceLock<ResourceSchema> = OnceLock::new();
        USER.get_or_init(|| ResourceSchema {
            resource_type: "User",
            urn: USER_URN,
            attributes: user_attributes(),
            extensions: vec![(ENTERPRISE_URN, enterprise_attributes())],
        })
    }

    /// Core Group.
    pub fn group() -> &'static ResourceSchema {
        static GROUP: OnceLock<ResourceSchema> = OnceLock::new();
        GROUP.get_or_init(|| ResourceSchema {
            resource_type: "Group",
            urn: GROUP_URN,
            attributes: group_attributes(),
            extensions: Vec::new(),
        })
    }

    /// The attribute a path names (its sub-attribute when the path has one), names and URNs
    /// compared case-insensitively; an unqualified name is looked up in the core schema first,
    /// then in the extensions (clients send `employeeNumber` unqualified too).
    pub fn find(&self, path: &AttrPath) -> Option<&Attribute> {
        let (_, attr) = self.locate(path)?;
        match &path.sub {
            Some(sub) => attr.sub(sub),
            None => Some(attr),
        }
    }

    /// The top-level attribute a path names (ignoring its sub-attribute) and where it lives.
    pub fn locate(&self, path: &AttrPath) -> Option<(Home, &Attribute)> {
        match &path.urn {
            Some(urn) if urn.eq_ignore_ascii_case(self.urn) => {
                named(&self.attributes, &path.name).map(|a| (Home::Core, a))
            }
            Some(urn) => {
                let (u, attrs) = self.extensions.iter().find(|(u, _)| u.eq_ignore_ascii_case(urn))?;
                named(attrs, &path.name).map(|a| (Home::Extension(u), a))
            }
            None if path.name.eq_ignore_ascii_case("schemas") => Some((Home::Core, schemas_attribute())),
            None => named(&self.attributes, &path.name)
                .map(|a| (Home::Core, a))
                .or_else(|| {
                    self.extensions
                        .iter()
                        .find_map(|(u, attrs)| named(attrs, &path.name).map(|a| (Home::Extension(u), a)))
                }),
        }
    }

    /// The extension URN this string names, as the schema spells it.
    pub fn extension_urn(&self, urn: &str) -> Option<&'static str> {
        self.extensions
            .iter()
            .map(|(u, _)| *u)
            .find(|u| u.eq_ignore_ascii_case(urn))
    }

    /// The Schema resources of this resource type: the core schema, then its extensions.
    fn schema_resources(&self) -> Vec<Value> {
        let core = schema_resource(self.urn, self.resource_type, &self.attributes);
        let mut out = vec![core];
        for (urn, attrs) in &self.extensions {
            out.push(schema_resource(urn, "EnterpriseUser", attrs));
        }
        out
    }
}

/// One Schema resource (RFC 7643 §7), the common attributes left out as §3.1 says.
fn schema_resource(urn: &str, name: &str, attrs: &[Attribute]) -> Value {
    let description = match name {
        "User" => "User Account",
        "Group" => "Group",
        _ => "Enterprise User",
    };
    json!({
        "schemas": [SCHEMA_URN],
        "id": urn,
        "name": name,
        "description": description,
        "attributes": attrs
            .iter()
            .filter(|a| !COMMON.contains(&a.name))
            .map(Attribute::to_json)
            .collect::<Vec<_>>(),
        "meta": { "resourceType": "Schema", "location": format!("/Schemas/{urn}") },
    })
}

fn all_schema_resources() -> Vec<Value> {
    let mut out = ResourceSchema::user().schema_resources();
    out.extend(ResourceSchema::group().schema_resources());
    out
}

/// `/Schemas`: a ListResponse of every Schema resource Roster serves.
pub fn schemas_document() -> Value {
    list_of(all_schema_resources())
}

/// `/Schemas/{urn}`: one Schema resource, if Roster serves it (URN compared case-insensitively).
pub fn schema_document(urn: &str) -> Option<Value> {
    all_schema_resources()
        .into_iter()
        .find(|s| s["id"].as_str().is_some_and(|id| id.eq_ignore_ascii_case(urn)))
}

fn list_of(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE_URN],
        "totalResults": resources.len(),
        "startIndex": 1,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// The ResourceType resources, their `location` under `base_url` (the SCIM root of a source,
/// without a trailing slash).
fn resource_types(base_url: &str) -> Vec<Value> {
    let base = base_url.trim_end_matches('/');
    vec![
        json!({
            "schemas": [RESOURCE_TYPE_URN],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "User Account",
            "schema": USER_URN,
            "schemaExtensions": [{ "schema": ENTERPRISE_URN, "required": false }],
            "meta": { "resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User") },
        }),
        json!({
            "schemas": [RESOURCE_TYPE_URN],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "Group",
            "schema": GROUP_URN,
            "schemaExtensions": [],
            "meta": { "resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group") },
        }),
    ]
}

/// `/ResourceTypes`: a ListResponse of User and Group.
pub fn resource_types_document(base_url: &str) -> Value {
    list_of(resource_types(base_url))
}

/// `/ResourceTypes/{id}`: `User` or `Group` (compared case-insensitively).
pub fn resource_type_document(base_url: &str, id: &str) -> Option<Value> {
    resource_types(base_url)
        .into_iter()
        .find(|r| r["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(id)))
}

/// Bulk limits, when bulk is supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bulk {
    /// Operations per request.
    pub max_operations: u32,
    /// Bytes per request.
    pub max_payload_size: u64,
}

/// What the service supports (RFC 7643 §5), served at `/ServiceProviderConfig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceProviderConfig {
    /// PATCH supported.
    pub patch: bool,
    /// Bulk limits; `None`: not supported.
    pub bulk: Option<Bulk>,
    /// The most resources one list answer holds.
    pub filter_max_results: u32,
    /// Password changes supported.
    pub change_password: bool,
    /// `sortBy` supported.
    pub sort: bool,
    /// ETags (`meta.version`, `If-Match`) supported.
    pub etag: bool,
    /// A page about this service for humans.
    pub documentation_uri: Option<String>,
}

impl ServiceProviderConfig {
    /// The document, its `location` under `base_url`; the only authentication scheme is an
    /// OAuth bearer token.
    pub fn to_json(&self, base_url: &str) -> Value {
        let base = base_url.trim_end_matches('/');
        let mut doc = json!({
            "schemas": [SERVICE_PROVIDER_CONFIG_URN],
            "patch": { "supported": self.patch },
            "bulk": {
                "supported": self.bulk.is_some(),
                "maxOperations": self.bulk.map_or(0, |b| b.max_operations),
                "maxPayloadSize": self.bulk.map_or(0, |b| b.max_payload_size),
            },
            "filter": { "supported": true, "maxResults": self.filter_max_results },
            "changePassword": { "supported": self.change_password },
            "sort": { "supported": self.sort },
            "etag": { "supported": self.etag },
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "A bearer token (RFC 6750) issued by Roster for this SCIM source",
                "specUri": "https://www.rfc-editor.org/info/rfc6750",
                "primary": true,
            }],
            "meta": {
                "resourceType": "ServiceProviderConfig",
                "location": format!("{base}/ServiceProviderConfig"),
            },
        });
        if let Some(uri) = &self.documentation_uri {
            doc["documentationUri"] = json!(uri);
        }
        doc
    }
}

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

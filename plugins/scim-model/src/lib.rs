//! One SCIM 2.0 model (RFC 7643 resources and schemas, RFC 7644 protocol), shared by Roster's
//! SCIM endpoint (`roster-serve`) and the `scim` connector, so the filter grammar, attribute
//! paths and PATCH rules exist once.
//!
//! Resources are `serde_json::Value` objects: SCIM lets an IdP send attributes Roster does not
//! model, and a GET must give back what was stored (Okta GETs a user, edits it and PUTs it
//! whole). The schema (`schema`) says what each attribute is — multi-valued, case-exact,
//! read-only, returned — and the rest of the crate reads resources through it, names compared
//! case-insensitively.

pub mod error;
pub mod filter;
pub mod list;
pub mod patch;
pub mod path;
pub mod project;
pub mod resource;
pub mod schema;
pub mod sort;
pub mod time;

pub use error::{ScimError, ScimType};
pub use filter::{CompareOp, Filter};
pub use list::{ListResponse, Paging};
pub use patch::{Op, PatchOp, apply, parse_patch};
pub use path::{AttrPath, PatchPath};
pub use project::Projection;
pub use resource::{GroupRecord, Member, MemberKind, UserRecord, group_record, user_record};
pub use schema::{ResourceSchema, ServiceProviderConfig};
pub use sort::{SortOrder, sort};

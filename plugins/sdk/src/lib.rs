//! The crate a Roster connector is written against.
//!
//! It owns the `wit_bindgen::generate!` call for the `connector-plugin` world of
//! `roster:plugin@0.1.1`, so a connector never writes bindings, and it carries the pieces every
//! connector needs once: JSON over the host's `http` import ([`http`]), classification of HTTP
//! failures into [`PluginError`] ([`errors`]), Retry-After parsing, paging cursors and `Link`
//! headers ([`paging`]), and OAuth 2.0 client-credentials tokens with caching ([`oauth`]).
//!
//! ```ignore
//! use roster_sdk::{Connector, Page, PluginError, PluginInfo};
//! struct MyIdp;
//! impl Connector for MyIdp {
//!     fn describe() -> PluginInfo { /* … */ }
//!     fn check(settings: String) -> Result<(), PluginError> { /* … */ }
//!     fn fetch(settings: String, cursor: Option<String>, delta: Option<String>) -> Result<Page, PluginError> { /* … */ }
//! }
//! roster_sdk::export_connector!(MyIdp);
//! ```
//!
//! Everything that talks to the host goes through the [`http::Transport`] trait, so the helpers
//! are unit-tested natively with a scripted transport.

pub mod errors;
pub mod http;
pub mod oauth;
pub mod paging;
pub mod settings;

/// Generated bindings for the `connector-plugin` world. Connector authors use the re-exports
/// at the crate root instead.
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "connector-plugin",
        path: "../../wit",
        default_bindings_module: "roster_sdk::bindings",
        pub_export_macro: true,
        export_macro_name: "__export_connector_world",
    });
}

pub use bindings::exports::roster::plugin::connector::Guest as Connector;
pub use bindings::roster::plugin::host::{Level, Request, Response};
pub use bindings::roster::plugin::types::{
    Group, Membership, Page, PluginError, PluginInfo, Removal, RemovalKind, User,
};

/// Exports a type implementing [`Connector`] as this component's connector.
#[macro_export]
macro_rules! export_connector {
    ($t:ident) => {
        $crate::bindings::__export_connector_world!($t with_types_in $crate::bindings);
    };
}

/// Writes a line to the run's log, attributed to this plugin.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    bindings::roster::plugin::host::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (level, message);
    }
}

/// Asks the host to sign a JWT with the private key in the named secret.
pub fn sign_jwt(key_secret: &str, header_json: &str, claims_json: &str) -> Result<String, PluginError> {
    #[cfg(target_arch = "wasm32")]
    return bindings::roster::plugin::host::sign_jwt(key_secret, header_json, claims_json);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (key_secret, header_json, claims_json);
        Err(PluginError::Fatal(
            "sign-jwt is only available inside the Roster host".into(),
        ))
    }
}

impl Page {
    /// An empty, final page: no records, no next cursor.
    pub fn empty() -> Self {
        Page {
            users: Vec::new(),
            groups: Vec::new(),
            memberships: Vec::new(),
            removed_memberships: Vec::new(),
            removed_users: Vec::new(),
            removed_groups: Vec::new(),
            next: None,
            delta_token: None,
            total_hint: None,
        }
    }
}

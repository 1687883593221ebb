//! The crate a Roster connector is written against.
//!
//! It owns the `wit_bindgen::generate!` call for the `connector-plugin` world of
//! `roster:plugin@0.1.2`, so a connector never writes bindings, and it carries the plumbing
//! every connector needs once:
//!
//! * [`idp`]: a connector as settings, `check` and a fetch described as steps; `describe`,
//!   settings parsing and paging are the SDK's ([`export_idp!`]).
//! * [`driver`]: the page driver — steps under a page [`driver::Budget`], the cursor kept for
//!   the connector, the loop guard, `total-hint`, and what was read kept on a transient failure.
//! * [`delta`]: the delta token around the connector's state, refused as `expired-delta` when
//!   it was made under other scope settings or by another version.
//! * [`settings`]: settings structs whose JSON Schema is derived (`schemars`) and whose
//!   scope-relevant part is fingerprinted.
//! * [`http`], [`errors`], [`oauth`], [`paging`], [`attributes`]: JSON over the host's `http`
//!   import, ids as path segments, HTTP Basic whose password the host fills and encodes
//!   ([`http::basic_auth`]), HTTP failures classified into [`PluginError`], Retry-After,
//!   OAuth 2.0 client credentials with caching, `Link` headers, next links kept on the API's
//!   base URL and out of loops, JSON properties as a record's attributes.
//!
//! ```ignore
//! use roster_sdk::driver::{Begin, Fetch, Next, Work};
//! use roster_sdk::idp::Idp;
//! struct MyIdp { s: Settings }
//! impl Idp for MyIdp { /* NAME, DESCRIPTION, Settings, new, check */ }
//! impl Fetch for MyIdp { /* Cursor, Delta, begin, step */ }
//! roster_sdk::export_idp!(MyIdp);
//! ```
//!
//! * [`members`]: the memberships read last time, for incremental fetches that must report
//!   removals their API does not list.
//! * [`ldap`]: paged LDAP searches over the host's `ldap` import, range retrieval, filter
//!   escaping, GeneralizedTime and DN comparison, for directory connectors.
//!
//! Everything that talks to the host goes through the [`http::Transport`] and
//! [`ldap::Directory`] traits (together: [`Imports`]), so connectors and the driver are
//! unit-tested natively with a scripted transport or directory.

pub mod attributes;
pub mod delta;
pub mod driver;
pub mod errors;
pub mod http;
pub mod idp;
pub mod ldap;
pub mod members;
pub mod oauth;
pub mod paging;
pub mod settings;
pub mod snapshot;
pub mod time;

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

/// Exports a type implementing [`Connector`] as this component's connector. Only wasm32 builds
/// export anything: natively (unit tests, `cargo test --workspace`) there is no host to export
/// to, and a crate that builds natively gets its tests run by `./dev test` without being listed.
#[macro_export]
macro_rules! export_connector {
    ($t:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_connector_world!($t with_types_in $crate::bindings);
        // Natively the type is still used, so its crate builds without dead-code warnings.
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() -> $crate::PluginInfo = <$t as $crate::Connector>::describe;
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
    NATIVE_SIGNER.with(|s| match &*s.borrow() {
        Some(sign) => sign(key_secret, header_json, claims_json),
        None => Err(PluginError::Fatal(
            "sign-jwt is only available inside the Roster host".into(),
        )),
    })
}

/// What stands in for the host's `sign-jwt` in a native build.
#[cfg(not(target_arch = "wasm32"))]
type NativeSigner = Box<dyn Fn(&str, &str, &str) -> Result<String, PluginError>>;

#[cfg(not(target_arch = "wasm32"))]
thread_local! {
    static NATIVE_SIGNER: std::cell::RefCell<Option<NativeSigner>> = std::cell::RefCell::new(None);
}

/// Native builds only (a connector's unit tests): makes [`sign_jwt`] answer with `sign(key
/// secret, header JSON, claims JSON)` on this thread, standing in for the host, so a connector
/// whose every request needs a host-signed assertion can be tested against a scripted server.
#[cfg(not(target_arch = "wasm32"))]
pub fn sign_jwt_natively_with(sign: impl Fn(&str, &str, &str) -> Result<String, PluginError> + 'static) {
    NATIVE_SIGNER.with(|s| *s.borrow_mut() = Some(Box::new(sign)));
}

/// What the host offers a connector: HTTP and LDAP. Inside a component they are the host's
/// imports ([`Imports::host`], or [`Imports::http`] for a connector that reads no directory);
/// tests script one or the other.
#[derive(Clone, Copy)]
pub struct Imports<'a> {
    /// Sends HTTP requests.
    pub http: &'a dyn http::Transport,
    /// Runs LDAP searches.
    pub ldap: &'a dyn ldap::Directory,
}

impl Imports<'static> {
    /// The host's own imports, HTTP and LDAP.
    pub fn host() -> Self {
        Imports {
            http: &http::HostTransport,
            ldap: &ldap::HostDirectory,
        }
    }
}

impl<'a> Imports<'a> {
    /// `http` for HTTP and no LDAP at all: an HTTP connector's imports (in tests, a scripted
    /// transport). Its component then does not import `roster:plugin/ldap`.
    pub fn http(http: &'a dyn http::Transport) -> Self {
        Imports {
            http,
            ldap: &ldap::NoDirectory,
        }
    }

    /// `ldap` for LDAP and the host's HTTP import (an error natively): what a directory
    /// connector is tested with.
    pub fn ldap(ldap: &'a dyn ldap::Directory) -> Self {
        Imports {
            http: &http::HostTransport,
            ldap,
        }
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

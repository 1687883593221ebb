//! Host-side bindings for the two worlds of `roster:plugin`, generated from `wit/`.
//!
//! Both worlds share the `types` interface; the transform bindings reuse the connector's Rust
//! types so a `User` is one type throughout the host.
#![allow(missing_docs)]

pub mod connector {
    wasmtime::component::bindgen!({
        world: "connector-plugin",
        path: "../wit",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

pub mod transform {
    wasmtime::component::bindgen!({
        world: "transform-plugin",
        path: "../wit",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "roster:plugin/types": super::connector::roster::plugin::types,
        },
    });
}

pub use connector::roster::plugin::types::{
    Group, Membership, Page, PluginError as GuestError, PluginInfo, Removal, RemovalKind, User,
};
pub use transform::exports::roster::plugin::transform::{GroupOutcome, UserOutcome};

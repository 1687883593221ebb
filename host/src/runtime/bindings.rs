//! Host-side bindings for the worlds of `roster:plugin`, generated from `wit/`.
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

/// The packed functions of transforms that export them (0.1.1; the Rust SDK always does).
pub mod transform_packed {
    wasmtime::component::bindgen!({
        world: "transform-plugin-packed",
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

//! The crate a Roster transform is written against.
//!
//! It owns the `wit_bindgen::generate!` call for the `transform-plugin-packed` world of
//! `roster:plugin@0.1.2` and adds small helpers for records. A transform implements
//! [`Transform`] (record by record); the SDK also exports the packed functions for it
//! ([`PackedTransform`]), so the host hands it whole batches as one byte list each way. A transform is a pure function of
//! its settings and its input batch: it has no network, no clock and no files.
//!
//! ```ignore
//! use roster_transform_sdk::{Transform, User, UserOutcome, /* … */};
//! struct Mine;
//! impl Transform for Mine { /* describe, map_users, map_groups */ }
//! roster_transform_sdk::export_transform!(Mine);
//! ```

/// Generated bindings for the `transform-plugin-packed` world. Transform authors use the
/// re-exports at the crate root instead.
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "transform-plugin-packed",
        path: "../../wit",
        default_bindings_module: "roster_transform_sdk::bindings",
        pub_export_macro: true,
        export_macro_name: "__export_transform_world",
    });
}

pub use bindings::exports::roster::plugin::transform::{GroupOutcome, Guest as Transform, UserOutcome};
pub use bindings::roster::plugin::types::{Group, PluginError, PluginInfo, User};

/// Exports a type implementing [`Transform`] as this component's transform, with the default
/// packed functions; `export_transform!(T, packed)` when `T` implements [`PackedTransform`]
/// itself. Only wasm32 builds export anything: natively (unit tests, `cargo test --workspace`)
/// there is no host to export to, and a crate that builds natively gets its tests run by
/// `./dev test` without being listed.
#[macro_export]
macro_rules! export_transform {
    ($t:ident) => {
        impl $crate::PackedTransform for $t {}
        $crate::export_transform!($t, packed);
    };
    ($t:ident, packed) => {
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_transform_world!($t with_types_in $crate::bindings);
        // Natively the type is still used, so its crate builds without dead-code warnings.
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() -> $crate::PluginInfo = <$t as $crate::Transform>::describe;
    };
}

mod packed;
pub use packed::{PackedTransform, groups_through_records, unreadable, users_through_records};
/// The packed encoding, for transforms that override [`PackedTransform`].
pub use roster_wire as wire;

/// Parses the settings string; a missing or mistyped field is a `config` error naming it.
pub fn parse_settings<T: serde::de::DeserializeOwned>(settings: &str) -> Result<T, PluginError> {
    serde_json::from_str(settings).map_err(|e| PluginError::Config(format!("invalid settings: {e}")))
}

impl User {
    /// The first value of a raw attribute, by exact name.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

impl UserOutcome {
    /// The user is kept (possibly changed), for the given reason.
    pub fn keep(user: User, reason: impl Into<String>) -> Self {
        UserOutcome {
            user: Some(user),
            reason: Some(reason.into()),
            error: None,
        }
    }

    /// The user is kept (possibly changed) with nothing to explain: no rule decided.
    pub fn pass(user: User) -> Self {
        UserOutcome {
            user: Some(user),
            reason: None,
            error: None,
        }
    }

    /// The user is filtered out, for the given reason.
    pub fn drop(reason: impl Into<String>) -> Self {
        UserOutcome {
            user: None,
            reason: Some(reason.into()),
            error: None,
        }
    }

    /// The user could not be evaluated; the host skips it and records why.
    pub fn failed(error: impl Into<String>) -> Self {
        UserOutcome {
            user: None,
            reason: None,
            error: Some(error.into()),
        }
    }
}

impl GroupOutcome {
    /// The group becomes `groups` (one for a rename, several for a fan-out, none to drop it).
    pub fn to(groups: Vec<Group>, reason: impl Into<String>) -> Self {
        GroupOutcome {
            groups,
            reason: Some(reason.into()),
            error: None,
        }
    }
}

/// Transforms allocate a few strings per field of every record: recycled per size class in front
/// of TLSF, which is faster inside the sandbox than Rust's default dlmalloc (BENCHMARKS.md).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOC: alloc::ClassCache = alloc::ClassCache::new();

#[cfg(target_arch = "wasm32")]
mod alloc;

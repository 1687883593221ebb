//! From a `.wasm` file to a component the host can instantiate: precompile once and cache on
//! disk, then check which world it is, which `roster:plugin` version it was built for, and that
//! it imports nothing the host does not give that kind of plugin.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use semver::Version;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::LoadError;

/// The `roster:plugin` version this host implements (the `package` line of `wit/roster.wit`).
pub const WIT_VERSION: &str = "0.1.1";

/// Which world a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum World {
    /// Reads an identity provider.
    Connector,
    /// Maps, filters or renames records.
    Transform,
}

impl World {
    /// "connector" or "transform".
    pub fn as_str(self) -> &'static str {
        match self {
            World::Connector => "connector",
            World::Transform => "transform",
        }
    }
}

impl std::fmt::Display for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// sha256 of the bytes, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The cache folder for this engine: precompiled code is only valid for identical settings.
pub fn engine_cache_dir(engine: &Engine, cache_dir: &Path) -> PathBuf {
    let mut h = std::hash::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    cache_dir.join(format!("{:016x}", h.finish()))
}

/// The component for `bytes`, from the on-disk cache or compiled and then cached.
/// Returns whether the cache was hit.
pub fn compile_cached(
    engine: &Engine,
    cache_dir: &Path,
    path: &Path,
    bytes: &[u8],
    sha: &str,
) -> Result<(Component, bool), LoadError> {
    let dir = engine_cache_dir(engine, cache_dir);
    let cached = dir.join(format!("{sha}.cwasm"));
    if cached.is_file() {
        if let Ok(c) = deserialize_own_file(engine, &cached) {
            return Ok((c, true));
        }
        // A cache file that does not load (truncated, older wasmtime) is rebuilt below.
        let _ = std::fs::remove_file(&cached);
    }
    let compiled = engine
        .precompile_component(bytes)
        .map_err(|e| LoadError::NotAComponent {
            path: path.to_path_buf(),
            detail: root_cause(&e),
        })?;
    let io = |source| LoadError::Io {
        path: cached.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    // Write then rename, so a concurrent loader never maps a half-written file. The temporary
    // name is unique per call: two loads of one plugin in one process (parallel tests, a reload
    // racing a start) must not write into the same file.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!("{sha}.{}-{n}.tmp", std::process::id()));
    std::fs::write(&tmp, &compiled).map_err(io)?;
    std::fs::rename(&tmp, &cached).map_err(io)?;
    let c = deserialize_own_file(engine, &cached).map_err(|e| LoadError::Prepare {
        path: path.to_path_buf(),
        detail: root_cause(&e),
    })?;
    Ok((c, false))
}

#[allow(unsafe_code)]
fn deserialize_own_file(engine: &Engine, file: &Path) -> wasmtime::Result<Component> {
    // SAFETY: wasmtime trusts precompiled code. The only files read here are ones this process
    // (or an earlier run of it) wrote into its own cache folder, named by the sha256 of the
    // source `.wasm` and placed under the engine's compatibility hash; wasmtime also checks the
    // header's engine settings and version before using it.
    unsafe { Component::deserialize_file(engine, file) }
}

/// Whether a component built for `found` runs on a host implementing `host`: same
/// compatibility track (0.x: same minor; ≥ 1: same major) and not newer than the host.
pub fn compatible(found: &Version, host: &Version) -> bool {
    let same_track = if host.major == 0 {
        found.major == 0 && found.minor == host.minor
    } else {
        found.major == host.major
    };
    same_track && found <= host
}

/// Splits `roster:plugin/connector@0.1.0` into ("connector", 0.1.0).
fn roster_name(name: &str) -> Option<(&str, Option<Version>)> {
    let rest = name.strip_prefix("roster:plugin/")?;
    match rest.split_once('@') {
        Some((iface, v)) => Some((iface, Version::parse(v).ok())),
        None => Some((rest, None)),
    }
}

fn incompatible(path: &Path, found: &Version, host: &Version) -> LoadError {
    let advice = if found > host {
        "it is newer than this Roster: upgrade Roster, or rebuild the plugin with an SDK for this version"
    } else {
        "rebuild the plugin with the roster-sdk that matches this Roster"
    };
    LoadError::IncompatibleVersion {
        path: path.to_path_buf(),
        found: found.to_string(),
        supported: host.to_string(),
        advice,
    }
}

/// Whether a transform also exports `transform-packed` (0.1.1).
pub fn exports_packed(engine: &Engine, component: &Component) -> bool {
    component
        .component_type()
        .exports(engine)
        .any(|(n, _)| roster_name(n).is_some_and(|(iface, _)| iface == "transform-packed"))
}

/// Which world the component implements, after checking versions and imports.
pub fn classify(engine: &Engine, component: &Component, path: &Path) -> Result<World, LoadError> {
    let host = Version::parse(WIT_VERSION).expect("WIT_VERSION is semver");
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    let mut world = None;
    for name in &exports {
        if let Some((iface @ ("connector" | "transform"), version)) = roster_name(name) {
            let version = version.unwrap_or(Version::new(0, 0, 0));
            if !compatible(&version, &host) {
                return Err(incompatible(path, &version, &host));
            }
            world = Some(if iface == "connector" {
                World::Connector
            } else {
                World::Transform
            });
        }
    }
    let Some(world) = world else {
        return Err(LoadError::UnknownWorld {
            path: path.to_path_buf(),
            exports: if exports.is_empty() {
                "nothing".into()
            } else {
                exports.join(", ")
            },
        });
    };
    let mut unexpected = Vec::new();
    for (name, _) in ty.imports(engine) {
        match roster_name(name) {
            Some((iface, version)) => {
                let version = version.unwrap_or(Version::new(0, 0, 0));
                if !compatible(&version, &host) {
                    return Err(incompatible(path, &version, &host));
                }
                let ok = iface == "types" || (iface == "host" && world == World::Connector);
                if !ok {
                    unexpected.push(name.to_string());
                }
            }
            None if name.starts_with("wasi:") && name.contains("@0.2.") => {}
            None => unexpected.push(name.to_string()),
        }
    }
    if !unexpected.is_empty() {
        let advice = match world {
            World::Connector => {
                "a connector may import roster:plugin/host and WASI 0.2 only (the host gives it no files, environment or sockets)"
            }
            World::Transform => {
                "a transform may import WASI 0.2 only: it is a pure function with no network, files or host calls"
            }
        };
        return Err(LoadError::UnexpectedImports {
            path: path.to_path_buf(),
            world: world.as_str(),
            imports: unexpected.join(", "),
            advice,
        });
    }
    Ok(world)
}

/// The innermost message of a wasmtime error chain, which is the one that says what happened.
pub fn root_cause(e: &wasmtime::Error) -> String {
    let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    chain.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_compatibility_table() {
        let v = |s: &str| Version::parse(s).unwrap();
        let cases = [
            ("0.1.0", "0.1.0", true),
            ("0.1.0", "0.1.3", true),  // additive changes since the plugin was built
            ("0.1.4", "0.1.3", false), // plugin newer than the host
            ("0.2.0", "0.1.3", false),
            ("0.1.0", "0.2.0", false),
            ("1.0.0", "1.4.0", true),
            ("1.5.0", "1.4.0", false),
            ("1.0.0", "2.0.0", false),
            ("0.9.0", "1.0.0", false),
        ];
        for (found, host, ok) in cases {
            assert_eq!(compatible(&v(found), &v(host)), ok, "plugin {found} on host {host}");
        }
    }

    #[test]
    fn wit_version_matches_the_wit_file() {
        let wit = include_str!("../../../wit/roster.wit");
        assert!(
            wit.contains(&format!("package roster:plugin@{WIT_VERSION};")),
            "update WIT_VERSION with wit/roster.wit"
        );
    }

    #[test]
    fn roster_names() {
        assert_eq!(
            roster_name("roster:plugin/host@0.1.0"),
            Some(("host", Some(Version::new(0, 1, 0))))
        );
        assert_eq!(roster_name("wasi:io/streams@0.2.6"), None);
    }
}

//! From a `.wasm` file to a component the host can instantiate: precompile once and cache on
//! disk, then check which world it is, which `roster:plugin` version it was built for, and that
//! it imports nothing the host does not give that kind of plugin.
//!
//! Precompiled code is native code that wasmtime runs as it is, so the cache is tamper-evident:
//! each file ends with an HMAC-SHA256 keyed by a secret of the host ([`CacheKey`]) over the code
//! and the source's sha256. A file that fails the check — planted, modified, or written under
//! another key — is recompiled and overwritten, never deserialised.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use semver::Version;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::LoadError;

/// The `roster:plugin` version this host implements (the `package` line of `wit/roster.wit`).
pub const WIT_VERSION: &str = "0.1.2";

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

/// The key of the compiled-code cache's MACs. Derive it from a secret the host already keeps
/// (Roster: from the key that seals secrets), never store it in the cache folder.
#[derive(Clone)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    /// A key from 32 secret bytes.
    pub fn new(bytes: [u8; 32]) -> CacheKey {
        CacheKey(bytes)
    }

    /// The MAC of one cache file: the code, for the source with this sha256, in this folder.
    fn tag(&self, sha: &str, code: &[u8]) -> [u8; TAG_LEN] {
        self.mac(sha, code).finalize().into_bytes().into()
    }

    /// Whether `tag` is the MAC of `code` (compared in constant time).
    fn verify(&self, sha: &str, code: &[u8], tag: &[u8]) -> bool {
        self.mac(sha, code).verify_slice(tag).is_ok()
    }

    fn mac(&self, sha: &str, code: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"roster-cwasm-v1\0");
        mac.update(sha.as_bytes());
        mac.update(b"\0");
        mac.update(code);
        mac
    }
}

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheKey(<redacted>)")
    }
}

/// Length of the MAC at the end of each cache file.
const TAG_LEN: usize = 32;

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
    key: &CacheKey,
    path: &Path,
    bytes: &[u8],
    sha: &str,
) -> Result<(Component, bool), LoadError> {
    let dir = engine_cache_dir(engine, cache_dir);
    let cached = dir.join(format!("{sha}.cwasm"));
    if let Ok(file) = std::fs::read(&cached) {
        match verified(key, sha, &file) {
            Some(code) => {
                if let Ok(c) = deserialize_verified(engine, code) {
                    return Ok((c, true));
                }
                // Verified but not loadable (another wasmtime): rebuilt below.
            }
            None => {
                tracing::warn!(file = %cached.display(), "a compiled-code cache file failed its integrity check (modified, planted, or written under another secret key); compiling again");
            }
        }
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
    private_dir(cache_dir).map_err(io)?;
    private_dir(&dir).map_err(io)?;
    // Write then rename, so a concurrent loader never reads a half-written file. The temporary
    // name is unique per call: two loads of one plugin in one process (parallel tests, a reload
    // racing a start) must not write into the same file.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!("{sha}.{}-{n}.tmp", std::process::id()));
    let tag = key.tag(sha, &compiled);
    write_private(&tmp, &[&compiled, &tag]).map_err(io)?;
    std::fs::rename(&tmp, &cached).map_err(io)?;
    // The code in memory is the code just compiled: nothing on disk is trusted for it.
    let c = deserialize_verified(engine, &compiled).map_err(|e| LoadError::Prepare {
        path: path.to_path_buf(),
        detail: root_cause(&e),
    })?;
    Ok((c, false))
}

/// The code of a cache file whose MAC checks out.
fn verified<'a>(key: &CacheKey, sha: &str, file: &'a [u8]) -> Option<&'a [u8]> {
    let split = file.len().checked_sub(TAG_LEN)?;
    let (code, tag) = file.split_at(split);
    key.verify(sha, code, tag).then_some(code)
}

#[allow(unsafe_code)]
fn deserialize_verified(engine: &Engine, code: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: wasmtime trusts precompiled code. The bytes given here are either code this
    // process just compiled, or a cache file whose HMAC (keyed by a secret the cache folder does
    // not hold) proves this host wrote it for this very source; wasmtime also checks the
    // header's engine settings and version before using it.
    unsafe { Component::deserialize(engine, code) }
}

/// Creates `dir` if missing, readable by its owner only (compiled code and which plugins run are
/// nobody else's business); an existing one is narrowed to that.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    #[cfg(unix)]
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    Ok(())
}

/// Writes a new file of the given parts, readable and writable by its owner only.
fn write_private(path: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts.open(path)?;
    for part in parts {
        file.write_all(part)?;
    }
    file.sync_all()
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

/// Whether a connector also exports `credentials` (0.1.2): its source can verify passwords.
pub fn exports_credentials(engine: &Engine, component: &Component) -> bool {
    component
        .component_type()
        .exports(engine)
        .any(|(n, _)| roster_name(n).is_some_and(|(iface, _)| iface == "credentials"))
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
                let ok = iface == "types" || (matches!(iface, "host" | "ldap") && world == World::Connector);
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
                "a connector may import roster:plugin/host, roster:plugin/ldap and WASI 0.2 only (the host gives it no files, environment or sockets)"
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

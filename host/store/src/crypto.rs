//! Secrets at rest: XChaCha20-Poly1305 with a 32-byte key from `ROSTER_SECRET_KEY` (base64) or
//! a key file (created with mode 0600 while nothing is sealed yet). Only sealed bytes reach the
//! database.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use super::StoreError;

/// The key that seals secrets.
#[derive(Clone)]
pub struct Key([u8; 32]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

impl Key {
    /// A key from raw bytes.
    pub fn from_bytes(b: [u8; 32]) -> Key {
        Key(b)
    }

    /// A fresh random key.
    pub fn generate() -> Result<Key, StoreError> {
        let mut b = [0u8; 32];
        crate::fill_random(&mut b, "a new key")?;
        Ok(Key(b))
    }

    /// The key `source` names; none when it is a key file that does not exist (yet, or any
    /// more).
    pub fn read(source: &KeySource) -> Result<Option<Key>, StoreError> {
        match source {
            KeySource::Env(v) => Self::decode(v.trim())
                .map(Some)
                .map_err(|e| StoreError::Crypto(format!("ROSTER_SECRET_KEY: {e}"))),
            KeySource::File(file) => match std::fs::read_to_string(file) {
                Ok(text) => {
                    crate::files::tighten(file, crate::files::FILE_MODE)
                        .map_err(|e| StoreError::Crypto(format!("{}: {e}", file.display())))?;
                    Self::decode(text.trim())
                        .map(Some)
                        .map_err(|e| StoreError::Crypto(format!("{}: {e}", file.display())))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(StoreError::Crypto(format!(
                    "cannot read the key file {}: {e}",
                    file.display()
                ))),
            },
        }
    }

    /// Writes this key to `file`, which must not exist, with mode 0600.
    pub(crate) fn write_new(&self, file: &Path) -> Result<(), StoreError> {
        let io = |e: std::io::Error| StoreError::Crypto(format!("cannot write the key file {}: {e}", file.display()));
        let mut f = crate::files::private_options(crate::files::Create::New)
            .open(file)
            .map_err(io)?;
        std::io::Write::write_all(&mut f, STANDARD.encode(self.0).as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        tracing::info!(file = %file.display(), "created a new secret key; back it up with the database");
        Ok(())
    }

    fn decode(v: &str) -> Result<Key, String> {
        let b = STANDARD.decode(v).map_err(|e| format!("not base64: {e}"))?;
        let b: [u8; 32] = b
            .try_into()
            .map_err(|v: Vec<u8>| format!("must be 32 bytes, is {}", v.len()))?;
        Ok(Key(b))
    }

    /// A key for another purpose (`purpose` names it), derived from this one so it needs no
    /// storage of its own and cannot be told from it: HMAC-SHA256 of the purpose.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"roster key derivation\0");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Seals `plain`: 24-byte nonce followed by the ciphertext.
    pub fn seal(&self, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; 24];
        crate::fill_random(&mut nonce, "a nonce")?;
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let mut out = nonce.to_vec();
        out.extend(
            cipher
                .encrypt(&XNonce::from(nonce), plain)
                .map_err(|_| StoreError::Crypto("sealing failed".into()))?,
        );
        Ok(out)
    }

    /// Opens what [`Key::seal`] sealed.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        if sealed.len() < 24 {
            return Err(StoreError::Crypto("a sealed secret is truncated".into()));
        }
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let nonce: [u8; 24] = sealed[..24].try_into().expect("length checked above");
        cipher.decrypt(&XNonce::from(nonce), &sealed[24..]).map_err(|_| {
            StoreError::Crypto("cannot open the stored secrets: the secret key is not the one they were sealed with (check ROSTER_SECRET_KEY or the key file)".into())
        })
    }
}

/// Where the key that seals secrets comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// `ROSTER_SECRET_KEY`: 32 bytes, base64.
    Env(String),
    /// A key file, created (0600) when missing only while nothing is sealed in the database.
    File(PathBuf),
}

impl KeySource {
    /// `ROSTER_SECRET_KEY` when it is set, else the key file.
    pub fn from_env_or(file: PathBuf) -> KeySource {
        match std::env::var("ROSTER_SECRET_KEY") {
            Ok(v) => KeySource::Env(v),
            Err(_) => KeySource::File(file),
        }
    }

    /// How an administrator names it.
    pub fn describe(&self) -> String {
        match self {
            KeySource::Env(_) => "ROSTER_SECRET_KEY".into(),
            KeySource::File(f) => format!("the key file {}", f.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_wrong_key() {
        let k = Key::from_bytes([7; 32]);
        let sealed = k.seal(b"client-secret-value").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"client"));
        assert_eq!(k.open(&sealed).unwrap(), b"client-secret-value");
        let err = Key::from_bytes([8; 32]).open(&sealed).unwrap_err().to_string();
        assert!(err.contains("not the one they were sealed with"), "{err}");
    }

    #[test]
    fn derived_keys_differ_by_purpose_and_by_key() {
        let k = Key::from_bytes([7; 32]);
        assert_eq!(k.derive("plugin-cache"), k.derive("plugin-cache"));
        assert_ne!(k.derive("plugin-cache"), k.derive("other"));
        assert_ne!(
            k.derive("plugin-cache"),
            Key::from_bytes([8; 32]).derive("plugin-cache")
        );
        assert_ne!(k.derive("plugin-cache"), [7; 32]);
    }

    #[test]
    fn a_key_is_read_from_the_environment_or_its_file_and_a_missing_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret.key");
        assert!(Key::read(&KeySource::File(file.clone())).unwrap().is_none());
        let k = Key::generate().unwrap();
        k.write_new(&file).unwrap();
        assert!(k.write_new(&file).is_err(), "a key file is never overwritten");
        assert_eq!(Key::read(&KeySource::File(file)).unwrap().unwrap().0, k.0);
        let env = KeySource::Env(STANDARD.encode([3u8; 32]));
        assert_eq!(Key::read(&env).unwrap().unwrap().0, [3u8; 32]);
        assert!(Key::read(&KeySource::Env("short".into())).is_err());
    }
}

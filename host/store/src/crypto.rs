//! Secrets at rest: XChaCha20-Poly1305 with a 32-byte key from `ROSTER_SECRET_KEY` (base64) or
//! a key file (created with mode 0600 on first use). Only sealed bytes reach the database.

use std::path::Path;

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

    /// From `ROSTER_SECRET_KEY` if set, else from `file`, which is created if missing.
    pub fn load(env_value: Option<&str>, file: &Path) -> Result<Key, StoreError> {
        if let Some(v) = env_value {
            return Self::decode(v.trim()).map_err(|e| StoreError::Crypto(format!("ROSTER_SECRET_KEY: {e}")));
        }
        match std::fs::read_to_string(file) {
            Ok(text) => Self::decode(text.trim()).map_err(|e| StoreError::Crypto(format!("{}: {e}", file.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut b = [0u8; 32];
                getrandom::fill(&mut b).map_err(|e| StoreError::Crypto(format!("no randomness for a new key: {e}")))?;
                write_private(file, &STANDARD.encode(b))
                    .map_err(|e| StoreError::Crypto(format!("cannot write the key file {}: {e}", file.display())))?;
                tracing::info!(file = %file.display(), "created a new secret key; back it up with the database");
                Ok(Key(b))
            }
            Err(e) => Err(StoreError::Crypto(format!(
                "cannot read the key file {}: {e}",
                file.display()
            ))),
        }
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
        getrandom::fill(&mut nonce).map_err(|e| StoreError::Crypto(format!("no randomness: {e}")))?;
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

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    std::io::Write::write_all(&mut opts.open(path)?, text.as_bytes())
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
    fn key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret.key");
        let a = Key::load(None, &file).unwrap();
        let b = Key::load(None, &file).unwrap();
        assert_eq!(a.0, b.0);
        assert!(Key::load(Some("short"), &file).is_err());
    }
}

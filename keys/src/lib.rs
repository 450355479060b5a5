//! X25519 keys for mlvpn-rs: generation, the base64 text form (as `wg`
//! uses), and key files.
//!
//! Private keys live in [`Zeroizing`] buffers, are wiped on drop, and never
//! appear in `Debug`, `Display` or error messages.
#![forbid(unsafe_code)]

use std::fmt;
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand_core::{OsRng, RngCore};
use thiserror::Error;
use zeroize::Zeroizing;

/// Largest key file read (a key is 44 characters; leave room for comments
/// of editors and trailing newlines, refuse anything else).
const MAX_KEY_FILE: u64 = 4096;

#[derive(Debug, Error)]
pub enum KeyError {
    #[error("not base64 (expected 44 characters as printed by `mlvpn-rs genkey`)")]
    NotBase64,
    #[error("decodes to {0} bytes, expected 32")]
    BadLength(usize),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is readable by group or others (mode {mode:04o}); run: chmod 600 {path}")]
    Permissions { path: PathBuf, mode: u32 },
    #[error("{path}: larger than {MAX_KEY_FILE} bytes, not a key file")]
    TooLarge { path: PathBuf },
    #[error("{path}: {reason}")]
    Malformed { path: PathBuf, reason: Box<KeyError> },
}

/// A private X25519 key.
pub struct PrivateKey(Zeroizing<[u8; 32]>);

/// A public X25519 key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

fn decode32(s: &str) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let bytes = Zeroizing::new(STANDARD.decode(s.trim()).map_err(|_| KeyError::NotBase64)?);
    if bytes.len() != 32 {
        return Err(KeyError::BadLength(bytes.len()));
    }
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&bytes);
    Ok(out)
}

impl PrivateKey {
    /// Wraps raw key bytes (clamping happens in every use, as X25519 says).
    pub fn from_bytes(b: [u8; 32]) -> Self {
        PrivateKey(Zeroizing::new(b))
    }

    /// A new random key from the OS generator, clamped.
    pub fn generate() -> Self {
        let mut b = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(&mut *b);
        b[0] &= 248;
        b[31] &= 127;
        b[31] |= 64;
        PrivateKey(b)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn public_key(&self) -> PublicKey {
        let s = x25519_dalek::StaticSecret::from(*self.0);
        PublicKey(x25519_dalek::PublicKey::from(&s).to_bytes())
    }

    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(*self.0))
    }

    pub fn from_base64(s: &str) -> Result<Self, KeyError> {
        Ok(PrivateKey(decode32(s)?))
    }
}

impl PublicKey {
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    pub fn from_base64(s: &str) -> Result<Self, KeyError> {
        Ok(PublicKey(*decode32(s)?))
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        PublicKey::from_base64(s)
    }
}

/// Reads a private key file: one base64 line, mode 0600 or stricter.
pub fn read_private_key_file(path: &Path) -> Result<PrivateKey, KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    let mut text = Zeroizing::new(String::new());
    file.take(MAX_KEY_FILE + 1)
        .read_to_string(&mut text)
        .map_err(io)?;
    if text.len() as u64 > MAX_KEY_FILE {
        return Err(KeyError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    PrivateKey::from_base64(&text).map_err(|e| KeyError::Malformed {
        path: path.to_path_buf(),
        reason: Box::new(e),
    })
}

/// Writes a private key file with mode 0600.
pub fn write_private_key_file(path: &Path, key: &PrivateKey) -> Result<(), KeyError> {
    use std::io::Write;
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(io)?;
    let mut line = key.to_base64();
    line.push('\n');
    f.write_all(line.as_bytes()).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> [u8; 32] {
        let mut b = [0u8; 32];
        for i in 0..32 {
            b[i] = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        b
    }

    #[test]
    fn rfc7748_vector() {
        let k = PrivateKey::from_bytes(hex(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        ));
        assert_eq!(
            k.public_key().0,
            hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        );
    }

    #[test]
    fn base64_roundtrip_and_errors() {
        let k = PrivateKey::generate();
        let text = k.to_base64();
        assert_eq!(text.len(), 44);
        let back = PrivateKey::from_base64(&format!("  {}\n", &*text)).unwrap();
        assert_eq!(back.as_bytes(), k.as_bytes());
        let p = k.public_key();
        assert_eq!(p.to_string().parse::<PublicKey>().unwrap(), p);
        assert!(matches!(
            PublicKey::from_base64("not base64!"),
            Err(KeyError::NotBase64)
        ));
        assert!(matches!(
            PublicKey::from_base64("AAAA"),
            Err(KeyError::BadLength(3))
        ));
    }

    #[test]
    fn debug_never_shows_private_key() {
        let k = PrivateKey::from_bytes([0x41; 32]);
        let shown = format!("{k:?}");
        assert!(!shown.contains(&*k.to_base64()) && shown.contains("redacted"));
    }

    #[test]
    fn key_files() {
        let dir = std::env::temp_dir().join(format!("mlvpn-keys-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("k");
        let k = PrivateKey::generate();
        write_private_key_file(&path, &k).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(read_private_key_file(&path).unwrap().as_bytes(), k.as_bytes());

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_private_key_file(&path).unwrap_err().to_string();
        assert!(
            e.contains("readable by group or others") && e.contains("0644"),
            "{e}"
        );

        let missing = read_private_key_file(&dir.join("missing"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("missing"), "{missing}");

        let bad = dir.join("bad");
        std::fs::write(&bad, "hello\n").unwrap();
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = read_private_key_file(&bad).unwrap_err().to_string();
        assert!(e.contains("not base64"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! X25519 keys for mlvpn-rs: generation, the base64 text form (as `wg`
//! uses), and key files.
//!
//! Private keys live in [`Zeroizing`] buffers, are wiped on drop, and never
//! appear in `Debug`, `Display` or error messages.
#![forbid(unsafe_code)]

use std::fmt;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand_core::{OsRng, RngCore};
use thiserror::Error;
use zeroize::Zeroizing;

/// Largest key file read: a key is one 44-character line; anything much
/// bigger is the wrong file, and reading it whole would be pointless.
const MAX_KEY_FILE: u64 = 4096;

/// What is wrong with a key or key file. Never contains key material.
#[derive(Debug, Error)]
pub enum KeyError {
    #[error("not base64 (a key is 44 characters of base64, as printed by `mlvpn-rs genkey` or `pubkey`)")]
    NotBase64,
    #[error("decodes to {0} bytes, expected 32")]
    BadLength(usize),
    #[error("cannot read private key file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write private key file {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("private key file {path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error(
        "private key file {path} is readable by group or others (mode {mode:04o}); run chmod 600 {path}"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error(
        "private key file {path} is owned by uid {uid} (mode {mode:04o}), not by root or the \
         daemon's own user; run chown root {path}"
    )]
    Owner { path: PathBuf, uid: u32, mode: u32 },
    #[error("private key file {path} is larger than {MAX_KEY_FILE} bytes; not a key file")]
    TooLarge { path: PathBuf },
    #[error("private key file {path}: {reason}")]
    Malformed {
        path: PathBuf,
        #[source]
        reason: Box<KeyError>,
    },
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
        write!(f, "PublicKey({self})")
    }
}

/// The base64 text form, as `mlvpn-rs pubkey` prints it.
impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

/// Decodes 32 bytes of padded standard base64, ignoring surrounding
/// whitespace (key files end in a newline). The intermediate buffer is
/// wiped, since it may hold a private key.
fn decode32(s: &str) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let bytes = Zeroizing::new(STANDARD.decode(s.trim()).map_err(|_| KeyError::NotBase64)?);
    let mut out = Zeroizing::new([0u8; 32]);
    if bytes.len() != out.len() {
        return Err(KeyError::BadLength(bytes.len()));
    }
    out.copy_from_slice(&bytes);
    Ok(out)
}

impl PrivateKey {
    /// Wraps raw key bytes; X25519 clamps on every use, so any 32 bytes
    /// are a valid key.
    pub fn from_bytes(b: [u8; 32]) -> Self {
        PrivateKey(Zeroizing::new(b))
    }

    /// A new random key from the OS generator, clamped as RFC 7748 and
    /// `wg genkey` do, so the stored form is canonical.
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

    /// The 44-character text form, in a buffer wiped on drop.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(*self.0))
    }

    pub fn from_base64(s: &str) -> Result<Self, KeyError> {
        Ok(PrivateKey(decode32(s)?))
    }
}

impl PublicKey {
    /// The 44-character text form.
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

/// Reads a private key file: one base64 line, owned by root or by the user
/// reading it, no permission bits for group or others (as ssh does, refuse
/// rather than use a key others may have read or replaced; the worker's
/// unprivileged user in particular must not own it).
pub fn read_private_key_file(path: &Path) -> Result<PrivateKey, KeyError> {
    let path_buf = || path.to_path_buf();
    let read = |source| KeyError::Read {
        path: path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    let meta = file.metadata().map_err(read)?;
    if !meta.is_file() {
        return Err(KeyError::NotAFile { path: path_buf() });
    }
    let mode = meta.permissions().mode() & 0o7777;
    let uid = std::os::unix::fs::MetadataExt::uid(&meta);
    if uid != 0 && uid != nix::unistd::geteuid().as_raw() {
        return Err(KeyError::Owner {
            path: path_buf(),
            uid,
            mode,
        });
    }
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions {
            path: path_buf(),
            mode,
        });
    }
    // Sized up front so the buffer never reallocates (a reallocation would
    // leave an unwiped copy of the key behind).
    let mut text = Zeroizing::new(String::with_capacity(MAX_KEY_FILE as usize + 1));
    file.take(MAX_KEY_FILE + 1)
        .read_to_string(&mut text)
        .map_err(read)?;
    if text.len() as u64 > MAX_KEY_FILE {
        return Err(KeyError::TooLarge { path: path_buf() });
    }
    PrivateKey::from_base64(&text).map_err(|e| KeyError::Malformed {
        path: path_buf(),
        reason: Box::new(e),
    })
}

/// Writes a private key file (one base64 line) with mode 0600, tightening
/// the mode of an existing file before the key is written into it.
pub fn write_private_key_file(path: &Path, key: &PrivateKey) -> Result<(), KeyError> {
    let write = |source| KeyError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(write)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(write)?;
    f.write_all(key.to_base64().as_bytes()).map_err(write)?;
    f.write_all(b"\n").map_err(write)?;
    f.sync_all().map_err(write)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> [u8; 32] {
        let mut b = [0u8; 32];
        for (i, byte) in b.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        b
    }

    fn set_mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn rfc7748_vector() {
        // RFC 7748 section 6.1, Alice.
        let k = PrivateKey::from_bytes(hex(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        ));
        assert_eq!(
            k.public_key().0,
            hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        );
    }

    #[test]
    fn generated_keys_are_clamped_and_distinct() {
        let (a, b) = (PrivateKey::generate(), PrivateKey::generate());
        assert_ne!(a.as_bytes(), b.as_bytes());
        let k = a.as_bytes();
        assert_eq!((k[0] & 7, k[31] & 0xc0), (0, 0x40));
    }

    #[test]
    fn base64_roundtrip() {
        let k = PrivateKey::generate();
        let text = k.to_base64();
        assert_eq!(text.len(), 44);
        let back = PrivateKey::from_base64(&format!("  {}\n", &*text)).unwrap();
        assert_eq!(back.as_bytes(), k.as_bytes());
        let p = k.public_key();
        assert_eq!(p.to_string().len(), 44);
        assert_eq!(p.to_string().parse::<PublicKey>().unwrap(), p);
        assert_eq!(PublicKey::from_base64(&format!("{p}\n")).unwrap(), p);
    }

    #[test]
    fn bad_base64_and_wrong_length() {
        let e = PublicKey::from_base64("not base64!").unwrap_err();
        assert!(matches!(e, KeyError::NotBase64), "{e}");
        assert!(e.to_string().contains("not base64"));
        assert!(matches!(
            PublicKey::from_base64("@SERVER_PUBLIC_KEY@"),
            Err(KeyError::NotBase64)
        ));
        let e = PrivateKey::from_base64("AAAA").unwrap_err();
        assert!(matches!(e, KeyError::BadLength(3)));
        assert_eq!(e.to_string(), "decodes to 3 bytes, expected 32");
        // 33 bytes
        let long = STANDARD.encode([1u8; 33]);
        assert!(matches!(
            PublicKey::from_base64(&long),
            Err(KeyError::BadLength(33))
        ));
    }

    #[test]
    fn secrets_are_never_shown() {
        let k = PrivateKey::from_bytes([0x41; 32]);
        let shown = format!("{k:?}");
        assert!(!shown.contains(&*k.to_base64()) && shown.contains("redacted"));
    }

    #[test]
    fn key_file_roundtrip_is_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        // An existing, looser file is tightened before the key goes in.
        std::fs::write(&path, "old").unwrap();
        set_mode(&path, 0o644);
        let k = PrivateKey::generate();
        write_private_key_file(&path, &k).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), 45);
        assert_eq!(read_private_key_file(&path).unwrap().as_bytes(), k.as_bytes());
    }

    #[test]
    fn group_or_world_access_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_private_key_file(&path, &PrivateKey::generate()).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o620] {
            set_mode(&path, mode);
            let e = read_private_key_file(&path).unwrap_err();
            assert!(matches!(e, KeyError::Permissions { .. }), "{e}");
            let shown = e.to_string();
            assert!(shown.contains("readable by group or others"), "{shown}");
            assert!(shown.contains(&format!("{mode:04o}")), "{shown}");
            assert!(
                shown.contains(&format!("chmod 600 {}", path.display())),
                "{shown}"
            );
        }
        set_mode(&path, 0o400);
        assert!(read_private_key_file(&path).is_ok());
    }

    #[test]
    fn a_key_owned_by_another_user_is_refused() {
        if !nix::unistd::geteuid().is_root() {
            let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
            assert!(
                !ci,
                "a_key_owned_by_another_user_is_refused needs root under CI=true"
            );
            eprintln!("SKIPPED a_key_owned_by_another_user_is_refused: needs root (chown)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_private_key_file(&path, &PrivateKey::generate()).unwrap();
        // nobody: typically the worker's user, which must not own the key.
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        let e = read_private_key_file(&path).unwrap_err();
        assert!(matches!(e, KeyError::Owner { uid: 65534, .. }), "{e}");
        let shown = e.to_string();
        assert!(
            shown.contains("owned by uid 65534 (mode 0600)")
                && shown.contains(&format!("chown root {}", path.display())),
            "{shown}"
        );
        std::os::unix::fs::chown(&path, Some(0), None).unwrap();
        assert!(read_private_key_file(&path).is_ok());
    }

    #[test]
    fn missing_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.key");
        let e = read_private_key_file(&path).unwrap_err();
        assert!(matches!(e, KeyError::Read { .. }), "{e}");
        assert!(e.to_string().contains(&*path.to_string_lossy()), "{e}");
    }

    #[test]
    fn malformed_large_and_non_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad");
        std::fs::write(&bad, "hello\n").unwrap();
        set_mode(&bad, 0o600);
        let e = read_private_key_file(&bad).unwrap_err().to_string();
        assert!(
            e.contains("not base64") && e.contains(&*bad.to_string_lossy()),
            "{e}"
        );

        std::fs::write(&bad, "A".repeat(5000)).unwrap();
        let e = read_private_key_file(&bad).unwrap_err();
        assert!(matches!(e, KeyError::TooLarge { .. }), "{e}");

        let sub = dir.path().join("dir");
        std::fs::create_dir(&sub).unwrap();
        set_mode(&sub, 0o700);
        let e = read_private_key_file(&sub).unwrap_err();
        assert!(matches!(e, KeyError::NotAFile { .. }), "{e}");
    }
}

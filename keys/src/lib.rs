//! X25519 keys for mlvpn-rs.
use zeroize::Zeroizing;

/// A private X25519 key. Zeroized on drop; `Debug` never shows it.
pub struct PrivateKey(Zeroizing<[u8; 32]>);

/// A public X25519 key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}
impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({:02x?})", &self.0[..4])
    }
}
impl PrivateKey {
    pub fn from_bytes(b: [u8; 32]) -> Self { PrivateKey(Zeroizing::new(b)) }
    pub fn as_bytes(&self) -> &[u8; 32] { &self.0 }
    pub fn public_key(&self) -> PublicKey {
        let s = x25519_dalek::StaticSecret::from(*self.0);
        PublicKey(x25519_dalek::PublicKey::from(&s).to_bytes())
    }
}
// TEMPORARY (replaced by the full keys crate)
use base64::Engine;
impl PublicKey {
    pub fn to_base64(&self) -> String { base64::engine::general_purpose::STANDARD.encode(self.0) }
}
impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(&self.to_base64()) }
}
impl PrivateKey {
    pub fn generate() -> Self { let mut b=[0u8;32]; rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b); Self::from_bytes(b) }
    pub fn to_base64(&self) -> Zeroizing<String> { Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(*self.0)) }
    pub fn from_base64(s: &str) -> Result<Self, String> { let v = base64::engine::general_purpose::STANDARD.decode(s.trim()).map_err(|e| e.to_string())?; Ok(Self::from_bytes(v.try_into().map_err(|_| "len".to_string())?)) }
}

//! The cheap MAC on handshake messages.
//!
//! `mac1` is a keyed BLAKE2s-128 over the message, keyed by a hash of the
//! *receiver's* public key. Anyone who knows that public key can compute it,
//! so it is not authentication; it lets the receiver discard junk and
//! messages meant for someone else before spending a Diffie-Hellman on them.

use blake2::digest::consts::U16;
use blake2::digest::{Digest, Mac};
use blake2::{Blake2s256, Blake2sMac};
use mlvpn_keys::PublicKey;

use super::wire::MAC_LEN;

/// Key for `mac1` of messages sent to the owner of a public key.
#[derive(Clone)]
pub struct Mac1Key([u8; 32]);

impl Mac1Key {
    pub fn for_receiver(public: &PublicKey) -> Self {
        let mut h = Blake2s256::new();
        h.update(b"mlvpn-rs mac1---");
        h.update(public.0);
        Mac1Key(h.finalize().into())
    }

    pub fn compute(&self, covered: &[u8]) -> [u8; MAC_LEN] {
        let mut m = <Blake2sMac<U16> as Mac>::new_from_slice(&self.0).expect("32-byte key is valid");
        m.update(covered);
        m.finalize().into_bytes().into()
    }

    /// Constant-time check.
    pub fn verify(&self, covered: &[u8], mac: &[u8; MAC_LEN]) -> bool {
        let mut m = <Blake2sMac<U16> as Mac>::new_from_slice(&self.0).expect("32-byte key is valid");
        m.update(covered);
        m.verify_slice(mac).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_own_mac_only() {
        let k = Mac1Key::for_receiver(&PublicKey([1; 32]));
        let other = Mac1Key::for_receiver(&PublicKey([2; 32]));
        let mac = k.compute(b"hello");
        assert!(k.verify(b"hello", &mac));
        assert!(!k.verify(b"hellp", &mac));
        assert!(!other.verify(b"hello", &mac));
    }
}

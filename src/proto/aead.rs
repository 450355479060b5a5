//! [`PacketCipher`]: the data-packet AEAD, ChaCha20-Poly1305 (RFC 8439).
//!
//! ring's implementation: it picks SIMD code at run time, so the default
//! portable build gets it (0.85 µs against RustCrypto's 3.1 µs per
//! 1420-byte packet, `examples/aead_speed.rs`). Nonce = 4 zero bytes ‖
//! counter (u64 LE), no associated data, the 16-byte tag kept apart from
//! the ciphertext.
//! RustCrypto's `chacha20poly1305` is the independent implementation the
//! tests below cross-check it with. The key is wiped on drop
//! (`crypto::wiped_key::WipedKey`).

use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, CHACHA20_POLY1305};

use super::wire::TAG_LEN;
use crate::crypto::wiped_key::WipedKey;

pub const KEY_LEN: usize = 32;

/// The tag did not verify.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct AuthFailed;

pub struct PacketCipher {
    key: WipedKey,
}

// Shared (`Arc`) between a session and the seal and open jobs that run on
// other threads (`seal_job.rs`, `open_job.rs`): `seal` and `open` take
// `&self`, and ring's key is plain data (`WipedKey` is a box of it).
const _: fn() = || {
    fn shared_across_threads<T: Send + Sync>() {}
    shared_across_threads::<PacketCipher>();
};

fn nonce(counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_le_bytes());
    Nonce::assume_unique_for_key(n)
}

impl PacketCipher {
    pub fn new(key: &[u8; KEY_LEN]) -> Self {
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, key).expect("a ChaCha20-Poly1305 key is 32 bytes");
        PacketCipher {
            key: WipedKey::new(LessSafeKey::new(unbound)),
        }
    }

    /// Encrypts `in_out` in place; returns the tag. The caller never uses a
    /// counter twice with one key.
    #[inline]
    pub fn seal(&self, counter: u64, in_out: &mut [u8]) -> [u8; TAG_LEN] {
        let tag = self
            .key
            .get()
            .seal_in_place_separate_tag(nonce(counter), Aad::empty(), in_out)
            .expect("ChaCha20-Poly1305 seals any length below 256 GiB");
        tag.as_ref().try_into().expect("the tag is 16 bytes")
    }

    /// Decrypts `in_out` in place if `tag` verifies. On failure `in_out` is
    /// zeroed (ring decrypts while it authenticates and clears the result).
    #[inline]
    pub fn open(&self, counter: u64, in_out: &mut [u8], tag: &[u8; TAG_LEN]) -> Result<(), AuthFailed> {
        self.key
            .get()
            .open_in_place_separate_tag(nonce(counter), Aad::empty(), Tag::from(*tag), in_out, 0..)
            .map(|_| ())
            .map_err(|_| AuthFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20poly1305::aead::AeadInPlace;
    use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
    use rand::{Rng, RngCore, SeedableRng};

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 8439 §2.8.2 (with its AAD and nonce: ring's API, not our framing).
    #[test]
    fn rfc8439_2_8_2_vector() {
        let plaintext = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let key: [u8; 32] = hex("80 81 82 83 84 85 86 87 88 89 8a 8b 8c 8d 8e 8f
                                 90 91 92 93 94 95 96 97 98 99 9a 9b 9c 9d 9e 9f")
        .try_into()
        .unwrap();
        let nonce: [u8; 12] = hex("07 00 00 00 40 41 42 43 44 45 46 47").try_into().unwrap();
        let aad = hex("50 51 52 53 c0 c1 c2 c3 c4 c5 c6 c7");
        let ciphertext = hex("d3 1a 8d 34 64 8e 60 db 7b 86 af bc 53 ef 7e c2
             a4 ad ed 51 29 6e 08 fe a9 e2 b5 a7 36 ee 62 d6
             3d be a4 5e 8c a9 67 12 82 fa fb 69 da 92 72 8b
             1a 71 de 0a 9e 06 0b 29 05 d6 a5 b6 7e cd 3b 36
             92 dd bd 7f 2d 77 8b 8c 98 03 ae e3 28 09 1b 58
             fa b3 24 e4 fa d6 75 94 55 85 80 8b 48 31 d7 bc
             3f f4 de f0 8e 4b 7a 9d e5 76 d2 65 86 ce c6 4b
             61 16");
        let tag = hex("1a e1 0b 59 4f 09 e2 6a 7e 90 2e cb d0 60 06 91");

        let k = PacketCipher::new(&key);
        let mut buf = plaintext.to_vec();
        let t = k
            .key
            .get()
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&aad), &mut buf)
            .unwrap();
        assert_eq!(buf, ciphertext);
        assert_eq!(t.as_ref(), &tag[..]);
        let t: [u8; 16] = tag.clone().try_into().unwrap();
        let out = k
            .key
            .get()
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad),
                Tag::from(t),
                &mut buf,
                0..,
            )
            .unwrap();
        assert_eq!(out, plaintext);
        // The independent implementation agrees on the vector.
        let rc = ChaCha20Poly1305::new((&key).into());
        let mut buf = plaintext.to_vec();
        let t = rc
            .encrypt_in_place_detached((&nonce).into(), &aad, &mut buf)
            .unwrap();
        assert_eq!((buf, t.to_vec()), (ciphertext, tag));
    }

    /// Our framing (nonce = 0⁴ ‖ counter LE, no AAD): for every length
    /// 0..=2000, each with a random key and a low, high or random counter,
    /// ring seals what RustCrypto opens and
    /// the reverse, byte for byte.
    #[test]
    fn ring_and_rustcrypto_agree() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x8439);
        for len in 0..=2000usize {
            let mut key = [0u8; 32];
            rng.fill_bytes(&mut key);
            let counter = match len % 4 {
                0 => len as u64,
                1 => u64::MAX - len as u64,
                _ => rng.gen(),
            };
            let mut plain = vec![0u8; len];
            rng.fill_bytes(&mut plain);
            // Built here, not by `nonce()`: the framing is checked too.
            let mut rc_nonce = chacha20poly1305::Nonce::default();
            rc_nonce[4..].copy_from_slice(&counter.to_le_bytes());
            let ours = PacketCipher::new(&key);
            let theirs = ChaCha20Poly1305::new((&key).into());

            let mut a = plain.clone();
            let tag_a = ours.seal(counter, &mut a);
            let mut b = plain.clone();
            let tag_b = theirs.encrypt_in_place_detached(&rc_nonce, &[], &mut b).unwrap();
            assert_eq!((&a, &tag_a[..]), (&b, &tag_b[..]), "len {len} counter {counter}");

            // RustCrypto opens ring's, ring opens RustCrypto's.
            theirs
                .decrypt_in_place_detached(&rc_nonce, &[], &mut a, &tag_a.into())
                .unwrap();
            assert_eq!(a, plain);
            ours.open(counter, &mut b, &tag_b.into()).unwrap();
            assert_eq!(b, plain);
        }
    }

    #[test]
    fn tampering_fails() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(16);
        for len in [0usize, 1, 63, 64, 65, 1420, 2000] {
            let mut key = [0u8; 32];
            rng.fill_bytes(&mut key);
            let k = PacketCipher::new(&key);
            let mut plain = vec![0u8; len];
            rng.fill_bytes(&mut plain);
            let mut sealed = plain.clone();
            let tag = k.seal(7, &mut sealed);

            let mut bad_tag = tag;
            bad_tag[rng.gen_range(0..16)] ^= 1 << rng.gen_range(0..8);
            assert_eq!(k.open(7, &mut sealed.clone(), &bad_tag), Err(AuthFailed));
            if len > 0 {
                let mut bad = sealed.clone();
                bad[rng.gen_range(0..len)] ^= 1 << rng.gen_range(0..8);
                assert_eq!(k.open(7, &mut bad, &tag), Err(AuthFailed));
            }
            // Another counter (nonce) or key does not open it either.
            assert_eq!(k.open(8, &mut sealed.clone(), &tag), Err(AuthFailed));
            key[0] ^= 1;
            assert_eq!(
                PacketCipher::new(&key).open(7, &mut sealed.clone(), &tag),
                Err(AuthFailed)
            );
            let mut ok = sealed;
            k.open(7, &mut ok, &tag).unwrap();
            assert_eq!(ok, plain);
        }
    }
}

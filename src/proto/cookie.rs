//! Handshake DoS defence: cookies and `mac2`, after WireGuard.
//!
//! Anyone who knows the server's public key can make an initiation with a
//! valid `mac1`, and each one costs the server Diffie-Hellman operations.
//! When initiations arrive faster than [`UNDER_LOAD_PER_SEC`], the server
//! stops doing DH for initiations that do not prove their source address:
//! it answers with a small *cookie reply* instead. The cookie is a MAC of
//! the sender's address under a secret that changes every two minutes, sent
//! encrypted (XChaCha20-Poly1305, key from the server's public key, the
//! initiation's `mac1` as associated data, so only whoever sent that
//! initiation can use it). The client retries at once with
//! `mac2 = MAC(cookie, message up to mac2)`. A spoofed source never sees
//! its cookie; a real one is then rate-limited per IP address
//! ([`super::ratelimit`]).
//!
//! The reply is smaller than the initiation (64 < 178 bytes): no
//! amplification.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use blake2::digest::consts::U16;
use blake2::digest::{Digest, Mac};
use blake2::{Blake2s256, Blake2sMac};
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use mlvpn_keys::PublicKey;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use zeroize::Zeroizing;

use super::wire::{self, CookieReply, COOKIE_REPLY_LEN, MAC_LEN, TAG_LEN};

/// Initiations per second (with a valid `mac1`) above which the server
/// requires `mac2`.
pub const UNDER_LOAD_PER_SEC: u32 = 64;
/// The server's cookie secret changes this often.
pub const SECRET_LIFETIME: Duration = Duration::from_secs(120);
/// A client uses a cookie for less than its secret can live.
pub const COOKIE_LIFETIME: Duration = Duration::from_secs(110);

pub type Cookie = [u8; MAC_LEN];

fn mac16(key: &[u8], parts: &[&[u8]]) -> [u8; MAC_LEN] {
    let mut m = <Blake2sMac<U16> as Mac>::new_from_slice(key).expect("key of 16 or 32 bytes");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// Key that encrypts cookies sent by the owner of `public`.
fn reply_key(public: &PublicKey) -> Zeroizing<[u8; 32]> {
    let mut h = Blake2s256::new();
    h.update(b"mlvpn-rs cookie-");
    h.update(public.0);
    Zeroizing::new(h.finalize().into())
}

fn addr_bytes(a: SocketAddr) -> ([u8; 18], usize) {
    let mut b = [0u8; 18];
    let n = match a.ip() {
        std::net::IpAddr::V4(v4) => {
            b[..4].copy_from_slice(&v4.octets());
            4
        }
        std::net::IpAddr::V6(v6) => {
            b[..16].copy_from_slice(&v6.octets());
            16
        }
    };
    b[n..n + 2].copy_from_slice(&a.port().to_le_bytes());
    (b, n + 2)
}

/// `mac2` of a handshake message (`covered` = everything before `mac2`).
pub fn mac2(cookie: &Cookie, covered: &[u8]) -> [u8; MAC_LEN] {
    mac16(cookie, &[covered])
}

/// The server's side: the rotating secret, load detection, cookie replies.
pub struct CookieChecker {
    secret: Zeroizing<[u8; 32]>,
    secret_born: Option<Instant>,
    reply_key: XChaCha20Poly1305,
    /// Initiations seen in the current and the previous one-second window.
    window: Option<Instant>,
    count: u32,
    previous: u32,
    /// New secrets and reply nonces; seeded by the tunnel (the core has
    /// no randomness of its own).
    rng: StdRng,
}

impl CookieChecker {
    /// `rng_seed` seeds its secrets and nonces: from the OS in the daemon
    /// (through the tunnel's RNG), fixed in tests.
    pub fn new(our_public: &PublicKey, rng_seed: [u8; 32]) -> CookieChecker {
        CookieChecker {
            secret: Zeroizing::new([0; 32]),
            secret_born: None,
            reply_key: XChaCha20Poly1305::new(reply_key(our_public).as_ref().into()),
            window: None,
            count: 0,
            previous: 0,
            rng: StdRng::from_seed(rng_seed),
        }
    }

    /// Counts an initiation that passed `mac1`; returns whether the server
    /// is now under load (until a full second below the threshold).
    pub fn count_initiation(&mut self, now: Instant) -> bool {
        match self.window {
            Some(start) if now.saturating_duration_since(start) < Duration::from_secs(1) => {}
            Some(start) if now.saturating_duration_since(start) < Duration::from_secs(2) => {
                self.previous = self.count;
                self.count = 0;
                self.window = Some(start + Duration::from_secs(1));
            }
            _ => {
                self.previous = 0;
                self.count = 0;
                self.window = Some(now);
            }
        }
        self.count = self.count.saturating_add(1);
        self.count.max(self.previous) > UNDER_LOAD_PER_SEC
    }

    fn cookie(&mut self, from: SocketAddr, now: Instant) -> Cookie {
        if self
            .secret_born
            .is_none_or(|t| now.saturating_duration_since(t) >= SECRET_LIFETIME)
        {
            self.rng.fill_bytes(self.secret.as_mut());
            self.secret_born = Some(now);
        }
        let (a, n) = addr_bytes(from);
        mac16(self.secret.as_ref(), &[&a[..n]])
    }

    /// Whether `mac2` proves the sender got our cookie for `from`.
    pub fn mac2_valid(
        &mut self,
        from: SocketAddr,
        covered: &[u8],
        mac2: &[u8; MAC_LEN],
        now: Instant,
    ) -> bool {
        self.check(from, covered, mac2, now).is_ok()
    }

    /// Checks `mac2` of an initiation from `from`; if it is not valid,
    /// returns the cookie to send back (one cookie computation either way).
    pub fn check(
        &mut self,
        from: SocketAddr,
        covered: &[u8],
        mac2: &[u8; MAC_LEN],
        now: Instant,
    ) -> Result<(), Cookie> {
        let issued_before = self.secret_born.is_some();
        let cookie = self.cookie(from, now);
        let expected = self::mac2(&cookie, covered);
        // Constant time: a MAC comparison.
        let equal = expected.iter().zip(mac2).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0;
        if issued_before && equal {
            Ok(())
        } else {
            Err(cookie)
        }
    }

    /// The cookie reply to an initiation from `from` (its sender index and
    /// `mac1`).
    pub fn reply(
        &mut self,
        from: SocketAddr,
        receiver: u32,
        mac1: &[u8; MAC_LEN],
        now: Instant,
    ) -> [u8; COOKIE_REPLY_LEN] {
        let cookie = self.cookie(from, now);
        self.seal_reply(&cookie, receiver, mac1)
    }

    /// Encrypts `cookie` into a reply to the initiation with `receiver` and
    /// `mac1`.
    pub fn seal_reply(
        &mut self,
        cookie: &Cookie,
        receiver: u32,
        mac1: &[u8; MAC_LEN],
    ) -> [u8; COOKIE_REPLY_LEN] {
        let mut msg = [0u8; COOKIE_REPLY_LEN];
        msg[0] = wire::TYPE_COOKIE_REPLY;
        msg[4..8].copy_from_slice(&receiver.to_le_bytes());
        let mut nonce = [0u8; 24];
        self.rng.fill_bytes(&mut nonce);
        msg[8..32].copy_from_slice(&nonce);
        let (body, tag_out) = msg[32..].split_at_mut(MAC_LEN);
        body.copy_from_slice(cookie);
        let tag = self
            .reply_key
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), mac1, body)
            .expect("16 bytes always encrypt");
        tag_out.copy_from_slice(&tag);
        msg
    }
}

/// The client's side: opens a cookie reply from the server `server`.
pub fn open_reply(server: &PublicKey, reply: &CookieReply<'_>, our_mac1: &[u8; MAC_LEN]) -> Option<Cookie> {
    let cipher = XChaCha20Poly1305::new(reply_key(server).as_ref().into());
    let mut cookie: Cookie = reply.cookie[..MAC_LEN].try_into().ok()?;
    let tag = &reply.cookie[MAC_LEN..MAC_LEN + TAG_LEN];
    cipher
        .decrypt_in_place_detached(XNonce::from_slice(reply.nonce), our_mac1, &mut cookie, tag.into())
        .ok()?;
    Some(cookie)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::wire::{decode, Message};

    fn server_key() -> PublicKey {
        PublicKey([5; 32])
    }

    #[test]
    fn a_cookie_reply_opens_only_with_the_right_mac1_and_gives_a_valid_mac2() {
        let t = Instant::now();
        let mut c = CookieChecker::new(&server_key(), [3; 32]);
        let from: SocketAddr = "192.0.2.7:4000".parse().unwrap();
        let mac1 = [9u8; MAC_LEN];
        let reply = c.reply(from, 77, &mac1, t);
        let Ok(Message::CookieReply(r)) = decode(&reply) else {
            panic!("decodes as a cookie reply")
        };
        assert_eq!(r.receiver, 77);
        assert!(
            open_reply(&server_key(), &r, &[8; MAC_LEN]).is_none(),
            "other mac1"
        );
        assert!(
            open_reply(&PublicKey([6; 32]), &r, &mac1).is_none(),
            "other server"
        );
        let cookie = open_reply(&server_key(), &r, &mac1).unwrap();
        let msg = b"initiation up to mac2";
        assert!(c.mac2_valid(from, msg, &mac2(&cookie, msg), t));
        assert!(!c.mac2_valid("192.0.2.7:4001".parse().unwrap(), msg, &mac2(&cookie, msg), t));
        assert!(!c.mac2_valid(from, b"another message", &mac2(&cookie, msg), t));
        // A new secret after its lifetime: old cookies stop working.
        assert!(!c.mac2_valid(from, msg, &mac2(&cookie, msg), t + SECRET_LIFETIME));
    }

    #[test]
    fn mac2_is_never_valid_before_any_cookie_was_issued() {
        let mut c = CookieChecker::new(&server_key(), [3; 32]);
        let from: SocketAddr = "192.0.2.7:4000".parse().unwrap();
        assert!(!c.mac2_valid(from, b"m", &[0; MAC_LEN], Instant::now()));
    }

    #[test]
    fn load_is_initiations_per_second_with_a_second_of_memory() {
        let t = Instant::now();
        let mut c = CookieChecker::new(&server_key(), [3; 32]);
        let ms = Duration::from_millis;
        for i in 0..UNDER_LOAD_PER_SEC {
            assert!(!c.count_initiation(t + ms(u64::from(i))));
        }
        assert!(c.count_initiation(t + ms(500)), "one more within the second");
        // Still under load during the next second (previous window counts)...
        assert!(c.count_initiation(t + ms(1500)));
        // ...and not after a quiet second.
        assert!(!c.count_initiation(t + ms(3000)));
    }
}

//! One transport session: the keys of one completed handshake on one path.
//!
//! ChaCha20-Poly1305 ([`PacketCipher`]) with the Noise split keys, a 64-bit
//! counter sent in the clear as the nonce, and a [`ReplayWindow`] checked
//! before decryption and updated only after the tag verified. Keys are
//! zeroized on drop ([`PacketCipher`] wipes its key).
//!
//! The ciphers are shared (`Arc`) so that the AEAD can run without the
//! session: [`Session::reserve`] takes a send counter and hands out the
//! cipher ([`seal_datagram`] does the rest), [`Session::recv_cipher`] and
//! [`open_datagram`] decrypt, [`Session::accept_counter`] records the
//! counter afterwards. [`Session::seal`] and [`Session::open`] are those
//! steps in one call.

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use thiserror::Error;

use super::aead::PacketCipher;
use super::handshake::SessionKeys;
use super::replay::ReplayWindow;
use super::wire::{self, DataHeader, DATA_HEADER_LEN, TAG_LEN};

/// Start a new handshake after this many messages on one session.
pub const REKEY_AFTER_MESSAGES: u64 = 1 << 60;
/// Never send with a counter at or beyond this (leaves room below 2^64).
pub const REJECT_AFTER_MESSAGES: u64 = u64::MAX - (1 << 13);

#[derive(Debug, Error, PartialEq, Eq, Clone, Copy)]
pub enum OpenError {
    #[error("counter replayed or too old")]
    Replayed,
    #[error("authentication failed")]
    Auth,
}

#[derive(Debug, Error, PartialEq, Eq, Clone, Copy)]
#[error("session exhausted its counters")]
pub struct Exhausted;

pub struct Session {
    pub local_index: u32,
    pub remote_index: u32,
    send: Arc<PacketCipher>,
    recv: Arc<PacketCipher>,
    send_counter: u64,
    replay: ReplayWindow,
    pub created: Instant,
}

impl Session {
    pub fn new(keys: SessionKeys, local_index: u32, remote_index: u32, now: Instant) -> Self {
        Session {
            local_index,
            remote_index,
            send: Arc::new(PacketCipher::new(&keys.send)),
            recv: Arc::new(PacketCipher::new(&keys.recv)),
            send_counter: 0,
            replay: ReplayWindow::new(),
            created: now,
        }
    }

    pub fn messages_sent(&self) -> u64 {
        self.send_counter
    }

    /// Encrypts `buf[DATA_HEADER_LEN..DATA_HEADER_LEN + len]` in place, writes
    /// the header before it and the tag after it; returns the datagram length.
    /// `buf` must have room for the tag.
    pub fn seal(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Exhausted> {
        let (cipher, counter) = self.reserve(buf)?;
        Ok(seal_datagram(&cipher, counter, buf, len))
    }

    /// Takes the next send counter and writes the data header with it at
    /// the start of `buf`; returns the cipher and the counter to seal the
    /// frame after the header with ([`seal_datagram`]), which needs no
    /// `&mut Session`. A reserved counter is used once, sealed or not.
    pub fn reserve(&mut self, buf: &mut [u8]) -> Result<(Arc<PacketCipher>, u64), Exhausted> {
        if self.send_counter >= REJECT_AFTER_MESSAGES {
            return Err(Exhausted);
        }
        let counter = self.send_counter;
        self.send_counter += 1;
        wire::encode_data_header(
            buf,
            DataHeader {
                receiver: self.remote_index,
                counter,
            },
        );
        Ok((Arc::clone(&self.send), counter))
    }

    /// Cheap pre-check before decryption.
    pub fn may_accept(&self, counter: u64) -> bool {
        self.replay.check(counter)
    }

    /// The cipher that opens what the peer sends on this session
    /// ([`open_datagram`]).
    pub fn recv_cipher(&self) -> &Arc<PacketCipher> {
        &self.recv
    }

    /// Records `counter` of a datagram that authenticated; false if the
    /// window no longer accepts it (a copy got there first): it must then
    /// be dropped as a replay.
    pub fn accept_counter(&mut self, counter: u64) -> bool {
        self.replay.update(counter)
    }

    /// Decrypts a data datagram in place; returns the plaintext range.
    pub fn open(&mut self, datagram: &mut [u8], counter: u64) -> Result<Range<usize>, OpenError> {
        if !self.may_accept(counter) {
            return Err(OpenError::Replayed);
        }
        let plain = open_datagram(&self.recv, counter, datagram)?;
        self.accept_counter(counter);
        Ok(plain)
    }
}

/// The AEAD step of sealing: encrypts `buf[DATA_HEADER_LEN..][..len]` in
/// place with `counter` (reserved by [`Session::reserve`], which wrote the
/// header) and writes the tag after it; returns the datagram length.
pub fn seal_datagram(cipher: &PacketCipher, counter: u64, buf: &mut [u8], len: usize) -> usize {
    let end = DATA_HEADER_LEN + len;
    let tag = cipher.seal(counter, &mut buf[DATA_HEADER_LEN..end]);
    buf[end..end + TAG_LEN].copy_from_slice(&tag);
    end + TAG_LEN
}

/// The AEAD step of opening: decrypts the data datagram `datagram`
/// (header, ciphertext, tag) in place; returns the plaintext range.
/// Touches no replay window.
pub fn open_datagram(
    cipher: &PacketCipher,
    counter: u64,
    datagram: &mut [u8],
) -> Result<Range<usize>, OpenError> {
    // Shorter than any datagram `wire::decode` lets through: no tag to check.
    let Some(end) = datagram
        .len()
        .checked_sub(TAG_LEN)
        .filter(|&e| e >= DATA_HEADER_LEN)
    else {
        return Err(OpenError::Auth);
    };
    let tag: [u8; TAG_LEN] = datagram[end..].try_into().expect("TAG_LEN bytes");
    cipher
        .open(counter, &mut datagram[DATA_HEADER_LEN..end], &tag)
        .map_err(|_| OpenError::Auth)?;
    Ok(DATA_HEADER_LEN..end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn pair(now: Instant) -> (Session, Session) {
        let a = SessionKeys {
            send: Zeroizing::new([1; 32]),
            recv: Zeroizing::new([2; 32]),
        };
        let b = SessionKeys {
            send: Zeroizing::new([2; 32]),
            recv: Zeroizing::new([1; 32]),
        };
        (Session::new(a, 10, 20, now), Session::new(b, 20, 10, now))
    }

    #[test]
    fn seal_open_replay_and_tamper() {
        let now = Instant::now();
        let (mut a, mut b) = pair(now);
        let mut buf = [0u8; 128];
        buf[16..21].copy_from_slice(b"hello");
        let n = a.seal(&mut buf, 5).unwrap();
        assert_eq!(n, 16 + 5 + 16);
        let copy = buf;
        let r = b.open(&mut buf[..n], 0).unwrap();
        assert_eq!(&buf[r], b"hello");
        // Replay of the same datagram.
        let mut again = copy;
        assert_eq!(b.open(&mut again[..n], 0), Err(OpenError::Replayed));
        // Tampering, and a forged counter, do not move the window.
        let mut bad = copy;
        bad[17] ^= 1;
        assert_eq!(b.open(&mut bad[..n], 5), Err(OpenError::Auth));
        assert!(b.may_accept(5));
    }

    /// The split API: the AEAD runs apart from the session; the window is
    /// checked before, and updated after, exactly once per counter.
    #[test]
    fn split_open_records_each_counter_once() {
        let now = Instant::now();
        let (mut a, mut b) = pair(now);
        let mut buf = [0u8; 128];
        buf[16..21].copy_from_slice(b"hello");
        let (cipher, counter) = a.reserve(&mut buf).unwrap();
        assert_eq!((counter, a.messages_sent()), (0, 1));
        let n = seal_datagram(&cipher, counter, &mut buf, 5);
        assert_eq!(n, 16 + 5 + 16);

        // A tampered copy fails and leaves the window alone.
        let mut bad = buf;
        bad[n - 1] ^= 1;
        assert_eq!(
            open_datagram(b.recv_cipher(), counter, &mut bad[..n]),
            Err(OpenError::Auth)
        );
        assert!(b.may_accept(counter));

        // Two copies both pass the pre-check and both decrypt; only the
        // first is recorded.
        let (mut one, mut two) = (buf, buf);
        assert!(b.may_accept(counter) && b.may_accept(counter));
        let r1 = open_datagram(b.recv_cipher(), counter, &mut one[..n]).unwrap();
        let r2 = open_datagram(b.recv_cipher(), counter, &mut two[..n]).unwrap();
        assert_eq!((&one[r1], &two[r2]), (&b"hello"[..], &b"hello"[..]));
        assert!(b.accept_counter(counter));
        assert!(!b.accept_counter(counter));
        assert!(!b.may_accept(counter));
        // Too short to hold a header and a tag: refused, no panic.
        assert_eq!(
            open_datagram(b.recv_cipher(), 1, &mut [0u8; 31]),
            Err(OpenError::Auth)
        );
    }

    /// Reserving refuses the last counters, and a refusal takes none.
    #[test]
    fn reserve_refuses_exhausted_counters() {
        let (mut a, _) = pair(Instant::now());
        a.send_counter = REJECT_AFTER_MESSAGES - 1;
        let mut buf = [0u8; 64];
        let (_, counter) = a.reserve(&mut buf).unwrap();
        assert_eq!(counter, REJECT_AFTER_MESSAGES - 1);
        assert_eq!(buf[8..16], counter.to_le_bytes());
        assert!(matches!(a.reserve(&mut buf), Err(Exhausted)));
        assert_eq!(a.seal(&mut buf, 0), Err(Exhausted));
        assert_eq!(a.messages_sent(), REJECT_AFTER_MESSAGES);
    }

    /// The wire format, checked with the independent implementation:
    /// header, then ciphertext under nonce 0⁴ ‖ counter LE with no AAD, then
    /// the tag.
    #[test]
    fn datagrams_open_with_rustcrypto() {
        use chacha20poly1305::aead::AeadInPlace;
        use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
        let (mut a, _) = pair(Instant::now());
        let theirs = ChaCha20Poly1305::new(&[1; 32].into());
        for (counter, len) in [(0u64, 0usize), (1, 1), (2, 1420), (3, 2000)] {
            let mut buf = vec![0u8; DATA_HEADER_LEN + len + TAG_LEN];
            for (i, b) in buf[DATA_HEADER_LEN..DATA_HEADER_LEN + len].iter_mut().enumerate() {
                *b = i as u8;
            }
            let plain = buf[DATA_HEADER_LEN..DATA_HEADER_LEN + len].to_vec();
            assert_eq!(a.seal(&mut buf, len), Ok(buf.len()));
            assert_eq!(buf[..8], [4, 0, 0, 0, 20, 0, 0, 0]);
            assert_eq!(buf[8..16], counter.to_le_bytes());
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&counter.to_le_bytes());
            let (body, tag) = buf[DATA_HEADER_LEN..].split_at_mut(len);
            theirs
                .decrypt_in_place_detached((&nonce).into(), &[], body, (&*tag).into())
                .unwrap();
            assert_eq!(body, &plain[..]);
        }
    }
}

//! [`OpenJob`]: the decryption of one data datagram, done apart from the
//! [`Tunnel`](super::Tunnel), and [`OpenStep`], what the tunnel makes of
//! a datagram before it.
//!
//! Opening splits in three (as boringtun's does), so that a driver that
//! shares the tunnel between threads behind a lock runs the
//! ChaCha20-Poly1305 outside it:
//! 1. [`Tunnel::prepare_open`](super::Tunnel::prepare_open), under the
//!    lock: the receiver index names a live session and the counter passes
//!    that session's replay window (read only) — else a counted drop;
//! 2. [`OpenJob::open`], without it: decrypts in place, touches no state;
//! 3. [`Tunnel::accept_opened`](super::Tunnel::accept_opened), under the
//!    lock: finds the session again, checks the replay window again and
//!    records the counter (two copies of one datagram that raced through
//!    step 2 cannot both pass), then the rest of the receive path.

use std::ops::Range;
use std::sync::Arc;

use super::aead::PacketCipher;
use super::session::{open_datagram, OpenError};

/// What [`Tunnel::prepare_open`](super::Tunnel::prepare_open) made of a
/// datagram.
pub enum OpenStep {
    /// A data message for a live session, not replayed so far: decrypt it
    /// with [`OpenJob::open`], then hand the result to
    /// [`Tunnel::accept_opened`](super::Tunnel::accept_opened).
    Open(OpenJob),
    /// A handshake message or a cookie reply: give the datagram to
    /// [`Tunnel::handle_datagram`](super::Tunnel::handle_datagram).
    NotData,
    /// Malformed, for an unknown or expired session, or replayed: dropped
    /// and counted.
    Dropped,
}

/// One data datagram to decrypt with the receiving cipher of the session
/// its receiver index named.
pub struct OpenJob {
    pub(crate) cipher: Arc<PacketCipher>,
    pub(crate) receiver: u32,
    pub(crate) counter: u64,
}

impl OpenJob {
    /// The receiver index (our local index of the session).
    pub fn receiver(&self) -> u32 {
        self.receiver
    }

    /// The datagram's counter (the nonce).
    pub fn counter(&self) -> u64 {
        self.counter
    }

    /// Decrypts the datagram (the whole of `buf`, as given to
    /// `prepare_open`) in place; returns the plaintext's range. No replay
    /// state is touched: that is `accept_opened`'s.
    pub fn open(&self, buf: &mut [u8]) -> Result<Range<usize>, OpenError> {
        open_datagram(&self.cipher, self.counter, buf)
    }
}

const _: fn() = || {
    fn sent_to_other_threads<T: Send + Sync>() {}
    sent_to_other_threads::<OpenJob>();
};

//! [`SealJob`]: the encryption of one data datagram, done apart from the
//! [`Tunnel`](super::Tunnel).
//!
//! Sealing splits in two (as boringtun's does): everything that reads or
//! changes tunnel state — route, path, sequence number, frame header,
//! in-flight log, the session's counter, the data header, accounting —
//! happens in [`Tunnel::prepare_tun_packet`](super::Tunnel::prepare_tun_packet)
//! under `&mut Tunnel`; what it returns needs only the buffer, so a driver
//! that shares the tunnel between threads behind a lock can run the
//! ChaCha20-Poly1305 outside it. The counter is reserved when the job is
//! made: a job dropped without sealing only leaves a gap the peer's replay
//! window tolerates.

use std::sync::Arc;

use super::aead::PacketCipher;
use super::session::seal_datagram;
use super::tunnel::Transmit;
use super::wire::DATA_HEADER_LEN;

/// One data datagram whose header is written and whose frame, at
/// `buf[DATA_HEADER_LEN..][..frame_len]`, is left to encrypt.
pub struct SealJob {
    cipher: Arc<PacketCipher>,
    counter: u64,
    frame_len: usize,
    transmit: Transmit,
}

impl SealJob {
    pub(crate) fn new(cipher: Arc<PacketCipher>, counter: u64, frame_len: usize, transmit: Transmit) -> Self {
        SealJob {
            cipher,
            counter,
            frame_len,
            transmit,
        }
    }

    /// Where the datagram goes and its length once sealed.
    pub fn transmit(&self) -> Transmit {
        self.transmit
    }

    /// The session counter reserved for it (the nonce).
    pub fn counter(&self) -> u64 {
        self.counter
    }

    /// The frame's range in the buffer: the plaintext, encrypted in place.
    pub fn plaintext(&self) -> std::ops::Range<usize> {
        DATA_HEADER_LEN..DATA_HEADER_LEN + self.frame_len
    }

    /// Encrypts the frame in the buffer the job was prepared in and writes
    /// the tag after it: `buf[..t.len]` is then the datagram `t`.
    pub fn seal(&self, buf: &mut [u8]) -> Transmit {
        let len = seal_datagram(&self.cipher, self.counter, buf, self.frame_len);
        debug_assert_eq!(len, self.transmit.len);
        self.transmit
    }
}

const _: fn() = || {
    fn sent_to_other_threads<T: Send + Sync>() {}
    sent_to_other_threads::<SealJob>();
};

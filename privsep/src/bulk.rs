//! Messages larger than one datagram: the hand-over and reload settings of
//! a concentrator with thousands of peers (about 120 bytes of JSON each).
//!
//! A SOCK_SEQPACKET datagram carries at most 64 KiB, so such a message goes
//! as a header that declares the total length (and carries the descriptors,
//! see [`crate::msg::Reply::Handover`]) followed by numbered chunks of
//! exactly [`CHUNK`] bytes, the last one holding the rest. The receiver
//! checks every chunk: its kind, its number (the next one), its exact
//! length, that it carries no descriptors; the total is at most
//! [`MAX_BULK`], so a header can make it allocate no more than that. Any
//! mismatch refuses the whole message.
//!
//! Only the trusted parent sends these; the checks are there so that a bug
//! or a mixed-up stream is an error instead of a wrong configuration.

use zeroize::Zeroizing;

use crate::msg::{self, MsgError};

/// Largest message: 32 MiB, twice the largest config file (whose JSON
/// form is no larger than its TOML); a 10 000-peer server hands over about
/// 1.1 MB.
pub const MAX_BULK: usize = 32 << 20;

/// Payload bytes per chunk: a chunk datagram (envelope, number, payload)
/// stays below the 64 KiB datagram limit.
pub const CHUNK: usize = 60 * 1024;

/// The chunk datagrams of `payload` (after its header), built one at a time
/// into one buffer that is wiped when the iterator is dropped (the payload
/// may hold the private key).
pub struct Chunks<'a> {
    payload: &'a [u8],
    next: u32,
    buf: Zeroizing<Vec<u8>>,
}

impl<'a> Chunks<'a> {
    pub fn new(payload: &'a [u8]) -> Chunks<'a> {
        Chunks {
            payload,
            next: 0,
            buf: Zeroizing::new(Vec::with_capacity(msg::CHUNK_OVERHEAD + CHUNK)),
        }
    }

    /// The next chunk datagram, or `None` after the last.
    pub fn next_chunk(&mut self) -> Option<&[u8]> {
        let start = self.next as usize * CHUNK;
        if start >= self.payload.len() {
            return None;
        }
        let end = (start + CHUNK).min(self.payload.len());
        msg::encode_chunk(self.next, &self.payload[start..end], &mut self.buf);
        self.next += 1;
        Some(&self.buf)
    }
}

/// A large message being received: feed it the datagrams that follow its
/// header until it is complete.
pub struct Reassembly {
    total: usize,
    next: u32,
    data: Zeroizing<Vec<u8>>,
}

impl Reassembly {
    /// Starts a message of `total` bytes (from its header). Refuses one
    /// larger than [`MAX_BULK`] before allocating anything. The buffer is
    /// allocated once, whole, so it never leaves an unwiped copy behind by
    /// growing.
    pub fn new(total: u32) -> Result<Reassembly, MsgError> {
        let total = total as usize;
        if total > MAX_BULK {
            return Err(MsgError::TooLarge);
        }
        Ok(Reassembly {
            total,
            next: 0,
            data: Zeroizing::new(Vec::with_capacity(total)),
        })
    }

    pub fn is_complete(&self) -> bool {
        self.data.len() == self.total
    }

    /// Takes one datagram (`fds`: how many descriptors came with it).
    /// Returns whether the message is now complete.
    pub fn push(&mut self, datagram: &[u8], fds: usize) -> Result<bool, MsgError> {
        if self.is_complete() {
            return Err(MsgError::ChunkBeyondEnd);
        }
        if fds > 0 {
            return Err(MsgError::ChunkDescriptors(fds));
        }
        let (seq, part) = msg::decode_chunk(datagram)?;
        if seq != self.next {
            return Err(MsgError::ChunkOrder {
                expected: self.next,
                got: seq,
            });
        }
        let expected = (self.total - self.data.len()).min(CHUNK);
        if part.len() != expected {
            return Err(MsgError::ChunkLength {
                expected,
                got: part.len(),
            });
        }
        self.data.extend_from_slice(part);
        self.next += 1;
        Ok(self.is_complete())
    }

    /// The whole message (once complete), in a buffer wiped on drop.
    pub fn into_bytes(self) -> Result<Zeroizing<Vec<u8>>, MsgError> {
        if !self.is_complete() {
            return Err(MsgError::Truncated {
                expected: self.total,
                got: self.data.len(),
            });
        }
        Ok(self.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic bytes that differ from chunk to chunk.
    fn payload(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 997) as u8).collect()
    }

    fn datagrams(p: &[u8]) -> Vec<Vec<u8>> {
        let mut c = Chunks::new(p);
        let mut out = Vec::new();
        while let Some(d) = c.next_chunk() {
            assert!(d.len() <= msg::MAX_MESSAGE, "a chunk fits in one datagram");
            out.push(d.to_vec());
        }
        out
    }

    #[test]
    fn a_multi_megabyte_message_round_trips() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK, 3_000_017] {
            let p = payload(len);
            let chunks = datagrams(&p);
            assert_eq!(chunks.len(), len.div_ceil(CHUNK));
            let mut r = Reassembly::new(len as u32).unwrap();
            assert_eq!(r.is_complete(), len == 0);
            for (i, c) in chunks.iter().enumerate() {
                assert_eq!(r.push(c, 0), Ok(i + 1 == chunks.len()), "chunk {i} of {len}");
            }
            assert_eq!(&r.into_bytes().unwrap()[..], &p[..]);
        }
    }

    #[test]
    fn oversized_out_of_order_truncated_and_foreign_chunks_are_refused() {
        assert_eq!(
            Reassembly::new(MAX_BULK as u32 + 1).err(),
            Some(MsgError::TooLarge)
        );
        assert_eq!(Reassembly::new(u32::MAX).err(), Some(MsgError::TooLarge));
        let p = payload(3 * CHUNK + 10);
        let c = datagrams(&p);
        // Out of order.
        let mut r = Reassembly::new(p.len() as u32).unwrap();
        r.push(&c[0], 0).unwrap();
        assert_eq!(
            r.push(&c[2], 0),
            Err(MsgError::ChunkOrder { expected: 1, got: 2 })
        );
        // Repeated.
        let mut r = Reassembly::new(p.len() as u32).unwrap();
        r.push(&c[0], 0).unwrap();
        assert!(matches!(r.push(&c[0], 0), Err(MsgError::ChunkOrder { .. })));
        // Truncated: the stream stops early.
        let mut r = Reassembly::new(p.len() as u32).unwrap();
        r.push(&c[0], 0).unwrap();
        assert!(matches!(r.into_bytes(), Err(MsgError::Truncated { .. })));
        // A chunk shorter than declared.
        let mut r = Reassembly::new(p.len() as u32).unwrap();
        let mut short = c[0].clone();
        short.truncate(short.len() - 1);
        let n = (short.len() - 2) as u16;
        short[..2].copy_from_slice(&n.to_be_bytes());
        assert!(matches!(r.push(&short, 0), Err(MsgError::ChunkLength { .. })));
        // The header lied about the total: the last chunk is too long.
        let mut r = Reassembly::new(p.len() as u32 - 5).unwrap();
        for chunk in &c[..3] {
            r.push(chunk, 0).unwrap();
        }
        assert!(matches!(r.push(&c[3], 0), Err(MsgError::ChunkLength { .. })));
        // Nothing after the end.
        let small = payload(10);
        let sc = datagrams(&small);
        let mut r = Reassembly::new(10).unwrap();
        assert_eq!(r.push(&sc[0], 0), Ok(true));
        assert_eq!(r.push(&sc[0], 0), Err(MsgError::ChunkBeyondEnd));
        // Descriptors on a chunk, or another message in the stream.
        let mut r = Reassembly::new(p.len() as u32).unwrap();
        assert_eq!(r.push(&c[0], 1), Err(MsgError::ChunkDescriptors(1)));
        let mut r = Reassembly::new(p.len() as u32).unwrap();
        assert!(matches!(
            r.push(&crate::msg::Reply::Ok.encode(), 0),
            Err(MsgError::Kind(_))
        ));
        // Garbage never panics.
        for len in 0..12 {
            for b in [0u8, 0x92, 0xff] {
                let mut r = Reassembly::new(100).unwrap();
                let _ = r.push(&vec![b; len], 0);
            }
        }
    }
}

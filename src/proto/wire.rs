//! Outer datagram formats: what travels in each UDP payload.
//!
//! Every datagram starts with a one-byte type and three zero bytes, so the
//! header of each message is 4-byte aligned and future versions can use the
//! reserved bytes. All integers are little endian. Decoding never panics and
//! never allocates: it returns views into the datagram.
//!
//! ```text
//! initiation (1): type, 0,0,0, sender u32, noise[INIT_NOISE_LEN], mac1[16], mac2[16]
//! response   (2): type, 0,0,0, sender u32, receiver u32, noise[RESP_NOISE_LEN], mac1[16], mac2[16]
//! cookie     (3): type, 0,0,0, receiver u32, nonce[24], encrypted cookie[16] + tag[16]
//! data       (4): type, 0,0,0, receiver u32, counter u64, ciphertext (>= 16-byte tag)
//! ```

use thiserror::Error;

pub const TYPE_INITIATION: u8 = 1;
pub const TYPE_RESPONSE: u8 = 2;
pub const TYPE_COOKIE_REPLY: u8 = 3;
pub const TYPE_DATA: u8 = 4;

pub const MAC_LEN: usize = 16;
pub const TAG_LEN: usize = 16;

/// Noise payload carried in the initiation (encrypted): see
/// [`crate::proto::handshake::InitPayload`].
pub const INIT_PAYLOAD_LEN: usize = 8 + 1 + 1 + 32;
/// `e` (32) + encrypted `s` (32 + 16) + encrypted payload (+16).
pub const INIT_NOISE_LEN: usize = 32 + 48 + INIT_PAYLOAD_LEN + TAG_LEN;
pub const INIT_LEN: usize = 8 + INIT_NOISE_LEN + 2 * MAC_LEN;
/// `e` (32) + empty encrypted payload (16).
pub const RESP_NOISE_LEN: usize = 32 + TAG_LEN;
pub const RESP_LEN: usize = 12 + RESP_NOISE_LEN + 2 * MAC_LEN;
/// Cookie reply: header (8) + nonce (24) + encrypted cookie (16 + 16).
pub const COOKIE_REPLY_LEN: usize = 8 + 24 + MAC_LEN + TAG_LEN;

/// Header of a data message, authenticated through the nonce (counter) and
/// the session lookup (receiver index).
pub const DATA_HEADER_LEN: usize = 16;
/// Smallest data message: header + tag + the smallest inner frame.
pub const DATA_MIN_LEN: usize = DATA_HEADER_LEN + crate::proto::frame::FRAME_HEADER_LEN + TAG_LEN;

#[derive(Debug, Error, PartialEq, Eq, Clone, Copy)]
pub enum WireError {
    #[error("empty datagram")]
    Empty,
    #[error("unknown message type {0}")]
    UnknownType(u8),
    #[error("reserved bytes not zero")]
    Reserved,
    #[error("message type {kind} has length {len}, expected {expected}")]
    BadLength { kind: u8, len: usize, expected: usize },
}

/// A decoded datagram: views into the buffer it came from.
#[derive(Debug)]
pub enum Message<'a> {
    Initiation(Initiation<'a>),
    Response(Response<'a>),
    CookieReply(CookieReply<'a>),
    Data(DataHeader),
}

/// The server's answer to an initiation while it is under load.
#[derive(Debug)]
pub struct CookieReply<'a> {
    /// The initiation's sender index.
    pub receiver: u32,
    pub nonce: &'a [u8; 24],
    /// Encrypted cookie and its tag.
    pub cookie: &'a [u8; MAC_LEN + TAG_LEN],
}

#[derive(Debug)]
pub struct Initiation<'a> {
    pub sender: u32,
    pub noise: &'a [u8],
    /// What `mac1` covers: the message up to `mac1`.
    pub mac1_covered: &'a [u8],
    pub mac1: &'a [u8; MAC_LEN],
    /// What `mac2` covers: the message up to `mac2` (`mac1` included).
    pub mac2_covered: &'a [u8],
    pub mac2: &'a [u8; MAC_LEN],
}

#[derive(Debug)]
pub struct Response<'a> {
    pub sender: u32,
    pub receiver: u32,
    pub noise: &'a [u8],
    pub mac1_covered: &'a [u8],
    pub mac1: &'a [u8; MAC_LEN],
    pub mac2: &'a [u8; MAC_LEN],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataHeader {
    pub receiver: u32,
    pub counter: u64,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn mac_at(b: &[u8], at: usize) -> &[u8; MAC_LEN] {
    b[at..at + MAC_LEN].try_into().expect("slice of MAC_LEN")
}

fn exact(kind: u8, b: &[u8], expected: usize) -> Result<(), WireError> {
    if b.len() != expected {
        return Err(WireError::BadLength {
            kind,
            len: b.len(),
            expected,
        });
    }
    Ok(())
}

/// Decodes one datagram. Checks only structure; nothing is authenticated yet.
pub fn decode(b: &[u8]) -> Result<Message<'_>, WireError> {
    let kind = *b.first().ok_or(WireError::Empty)?;
    match kind {
        TYPE_INITIATION => exact(kind, b, INIT_LEN)?,
        TYPE_RESPONSE => exact(kind, b, RESP_LEN)?,
        TYPE_COOKIE_REPLY => exact(kind, b, COOKIE_REPLY_LEN)?,
        TYPE_DATA => {
            if b.len() < DATA_MIN_LEN {
                return Err(WireError::BadLength {
                    kind,
                    len: b.len(),
                    expected: DATA_MIN_LEN,
                });
            }
        }
        other => return Err(WireError::UnknownType(other)),
    }
    if b[1..4] != [0, 0, 0] {
        return Err(WireError::Reserved);
    }
    Ok(match kind {
        TYPE_INITIATION => {
            let mac1_at = 8 + INIT_NOISE_LEN;
            Message::Initiation(Initiation {
                sender: u32_at(b, 4),
                noise: &b[8..mac1_at],
                mac1_covered: &b[..mac1_at],
                mac1: mac_at(b, mac1_at),
                mac2_covered: &b[..mac1_at + MAC_LEN],
                mac2: mac_at(b, mac1_at + MAC_LEN),
            })
        }
        TYPE_RESPONSE => {
            let mac1_at = 12 + RESP_NOISE_LEN;
            Message::Response(Response {
                sender: u32_at(b, 4),
                receiver: u32_at(b, 8),
                noise: &b[12..mac1_at],
                mac1_covered: &b[..mac1_at],
                mac1: mac_at(b, mac1_at),
                mac2: mac_at(b, mac1_at + MAC_LEN),
            })
        }
        TYPE_COOKIE_REPLY => Message::CookieReply(CookieReply {
            receiver: u32_at(b, 4),
            nonce: b[8..32].try_into().expect("24 bytes"),
            cookie: b[32..COOKIE_REPLY_LEN].try_into().expect("32 bytes"),
        }),
        _ => Message::Data(DataHeader {
            receiver: u32_at(b, 4),
            counter: u64_at(b, 8),
        }),
    })
}

/// Writes the 16-byte data header into `out[..16]`.
pub fn encode_data_header(out: &mut [u8], h: DataHeader) {
    out[0] = TYPE_DATA;
    out[1..4].fill(0);
    out[4..8].copy_from_slice(&h.receiver.to_le_bytes());
    out[8..16].copy_from_slice(&h.counter.to_le_bytes());
}

/// Writes the fixed part of a handshake message header; returns its length.
pub fn encode_handshake_header(out: &mut [u8], kind: u8, sender: u32, receiver: Option<u32>) -> usize {
    out[0] = kind;
    out[1..4].fill(0);
    out[4..8].copy_from_slice(&sender.to_le_bytes());
    match receiver {
        Some(r) => {
            out[8..12].copy_from_slice(&r.to_le_bytes());
            12
        }
        None => 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_header_roundtrip() {
        let mut b = vec![0u8; DATA_MIN_LEN];
        encode_data_header(
            &mut b,
            DataHeader {
                receiver: 7,
                counter: 1 << 40,
            },
        );
        match decode(&b).unwrap() {
            Message::Data(h) => assert_eq!(
                h,
                DataHeader {
                    receiver: 7,
                    counter: 1 << 40
                }
            ),
            m => panic!("{m:?}"),
        }
    }

    #[test]
    fn lengths_are_enforced() {
        assert_eq!(decode(&[]).unwrap_err(), WireError::Empty);
        assert_eq!(decode(&[9, 0, 0, 0]).unwrap_err(), WireError::UnknownType(9));
        assert!(matches!(
            decode(&[TYPE_DATA; 20]),
            Err(WireError::BadLength { .. })
        ));
        assert!(matches!(
            decode(&[TYPE_INITIATION; INIT_LEN - 1]),
            Err(WireError::BadLength { .. })
        ));
        let mut init = vec![0u8; INIT_LEN];
        init[0] = TYPE_INITIATION;
        init[2] = 1;
        assert_eq!(decode(&init).unwrap_err(), WireError::Reserved);
        init[2] = 0;
        assert!(matches!(decode(&init), Ok(Message::Initiation(_))));
        let mut resp = vec![0u8; RESP_LEN];
        resp[0] = TYPE_RESPONSE;
        assert!(matches!(decode(&resp), Ok(Message::Response(_))));
        let mut cookie = vec![0u8; COOKIE_REPLY_LEN];
        cookie[0] = TYPE_COOKIE_REPLY;
        assert!(matches!(decode(&cookie), Ok(Message::CookieReply(_))));
        assert!(matches!(
            decode(&cookie[..COOKIE_REPLY_LEN - 1]),
            Err(WireError::BadLength { .. })
        ));
    }

    #[test]
    fn decode_never_panics_on_any_prefix_of_any_type() {
        for kind in 0u8..=255 {
            for len in 0..(INIT_LEN + 2) {
                let mut b = vec![0u8; len];
                if len > 0 {
                    b[0] = kind;
                }
                let _ = decode(&b);
            }
        }
    }
}

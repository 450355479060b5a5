//! Inner frames: the plaintext inside every data message.
//!
//! Every frame carries timestamps so that each path measures its RTT from
//! ordinary traffic (timestamp echo, as in TCP's RFC 7323): the sender's
//! clock, the latest peer timestamp seen on this path, and how long it was
//! held before being echoed. Data frames add the tunnel-wide sequence number
//! the receiver uses to put packets from several paths back in order.
//!
//! ```text
//! kind u8, flags u8, 0,0, ts u32 (µs, wraps), echo u32, echo_delay u32 (µs)
//! data:      seq u64, then the IP packet
//! keepalive: rx_packets u64, rx_bytes u64 (receive report)
//! ```
//! A keepalive doubles as the receive report: how many datagrams and bytes
//! of this path the sender of the report has received so far, from which
//! the other side derives the path's loss and delivery rate. A keepalive
//! with `FLAG_REPLY` is a probe: answer with a report now (the answer never
//! carries the flag, so probes cannot bounce). `FLAG_NO_DATA` says the
//! sender gives this path no data at the moment (it is a `fallback` or
//! `lossy` path while a better one is up): the receiver then knows the path
//! cannot be carrying a missing packet, and skips a hole as soon as the
//! paths that do carry data have delivered past it. Receivers that do not
//! know the flag ignore it.

use thiserror::Error;

pub const KIND_DATA: u8 = 1;
pub const KIND_KEEPALIVE: u8 = 2;
/// Keepalive flag: the sender wants a report at once.
pub const FLAG_REPLY: u8 = 1;
/// Keepalive flag: the sender sends no data on this path for now.
pub const FLAG_NO_DATA: u8 = 2;

/// Header common to all frames.
pub const FRAME_HEADER_LEN: usize = 16;
/// Header of a data frame (common header + sequence number).
pub const DATA_FRAME_HEADER_LEN: usize = FRAME_HEADER_LEN + 8;
/// A keepalive with its receive report.
pub const KEEPALIVE_LEN: usize = FRAME_HEADER_LEN + 16;

/// Cumulative receive counters of one path, as seen by its receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Report {
    pub rx_packets: u64,
    pub rx_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timestamps {
    /// Sender's clock in microseconds (wrapping).
    pub ts: u32,
    /// Latest `ts` the sender received from us on this path; 0 = none.
    pub echo: u32,
    /// Microseconds between receiving `echo` and sending this frame.
    pub echo_delay: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A tunnelled IP packet at `payload_offset..` of the plaintext.
    Data { times: Timestamps, seq: u64 },
    /// Keeps NAT mappings and liveness; carries the receive report.
    Keepalive {
        times: Timestamps,
        report: Report,
        /// A probe: answer with a report at once.
        reply: bool,
        /// The sender gives this path no data for now.
        no_data: bool,
    },
}

#[derive(Debug, Error, PartialEq, Eq, Clone, Copy)]
pub enum FrameError {
    #[error("frame too short ({0} bytes)")]
    Short(usize),
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Decodes a plaintext frame.
pub fn decode(b: &[u8]) -> Result<Frame, FrameError> {
    if b.len() < FRAME_HEADER_LEN {
        return Err(FrameError::Short(b.len()));
    }
    let times = Timestamps {
        ts: u32_at(b, 4),
        echo: u32_at(b, 8),
        echo_delay: u32_at(b, 12),
    };
    match b[0] {
        KIND_KEEPALIVE => {
            if b.len() < KEEPALIVE_LEN {
                return Err(FrameError::Short(b.len()));
            }
            let report = Report {
                rx_packets: u64::from_le_bytes(b[16..24].try_into().expect("8 bytes")),
                rx_bytes: u64::from_le_bytes(b[24..32].try_into().expect("8 bytes")),
            };
            Ok(Frame::Keepalive {
                times,
                report,
                reply: b[1] & FLAG_REPLY != 0,
                no_data: b[1] & FLAG_NO_DATA != 0,
            })
        }
        KIND_DATA => {
            if b.len() < DATA_FRAME_HEADER_LEN {
                return Err(FrameError::Short(b.len()));
            }
            let seq = u64::from_le_bytes(b[16..24].try_into().expect("8 bytes"));
            Ok(Frame::Data { times, seq })
        }
        k => Err(FrameError::UnknownKind(k)),
    }
}

fn encode_common(out: &mut [u8], kind: u8, t: Timestamps) {
    out[0] = kind;
    out[1..4].fill(0);
    out[4..8].copy_from_slice(&t.ts.to_le_bytes());
    out[8..12].copy_from_slice(&t.echo.to_le_bytes());
    out[12..16].copy_from_slice(&t.echo_delay.to_le_bytes());
}

/// Writes a data frame header into `out[..DATA_FRAME_HEADER_LEN]`.
pub fn encode_data_header(out: &mut [u8], t: Timestamps, seq: u64) {
    encode_common(out, KIND_DATA, t);
    out[16..24].copy_from_slice(&seq.to_le_bytes());
}

/// Writes a keepalive frame into `out[..KEEPALIVE_LEN]`.
pub fn encode_keepalive(out: &mut [u8], t: Timestamps, r: Report, reply: bool, no_data: bool) {
    encode_common(out, KIND_KEEPALIVE, t);
    out[1] = if reply { FLAG_REPLY } else { 0 } | if no_data { FLAG_NO_DATA } else { 0 };
    out[16..24].copy_from_slice(&r.rx_packets.to_le_bytes());
    out[24..32].copy_from_slice(&r.rx_bytes.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let t = Timestamps {
            ts: 1,
            echo: 2,
            echo_delay: 3,
        };
        let mut b = [0u8; 40];
        encode_data_header(&mut b, t, 99);
        assert_eq!(decode(&b).unwrap(), Frame::Data { times: t, seq: 99 });
        let r = Report {
            rx_packets: 5,
            rx_bytes: 6000,
        };
        for (reply, no_data) in [(false, false), (true, false), (false, true), (true, true)] {
            encode_keepalive(&mut b, t, r, reply, no_data);
            assert_eq!(
                decode(&b[..KEEPALIVE_LEN]).unwrap(),
                Frame::Keepalive {
                    times: t,
                    report: r,
                    reply,
                    no_data,
                }
            );
        }
        assert_eq!(
            decode(&b[..KEEPALIVE_LEN - 1]),
            Err(FrameError::Short(KEEPALIVE_LEN - 1))
        );
    }

    #[test]
    fn short_and_unknown() {
        assert_eq!(decode(&[1; 15]), Err(FrameError::Short(15)));
        assert_eq!(decode(&[1; 20]), Err(FrameError::Short(20)));
        assert_eq!(decode(&[9; 20]), Err(FrameError::UnknownKind(9)));
    }
}

//! The `wire` target: outer datagrams, inner frames, the inner IP summary
//! and `mac1`, decoded and re-encoded without any state.

use mlvpn_rs::proto::cookie;
use mlvpn_rs::proto::frame::{self, Frame};
use mlvpn_rs::proto::ip;
use mlvpn_rs::proto::mac::Mac1Key;
use mlvpn_rs::proto::wire::{self, Message, MAC_LEN};

use super::input::u32_le;
use crate::fixtures::{public, CLIENT_KEY, SERVER_KEY};

/// Outer datagrams (`wire::decode`), inner frames (`frame::decode`), the
/// inner IP summary and `mac1`: decoding never panics, what decodes
/// re-encodes to the same bytes, views point where the layout says.
pub fn wire(data: &[u8]) {
    wire_outer(data);
    wire_frame(data);
    if let Some(s) = ip::summarize(data) {
        assert!(
            s.len >= 20 && s.len <= data.len(),
            "{s:?} of {} bytes",
            data.len()
        );
        assert_eq!(s.src.is_ipv4(), s.dst.is_ipv4());
    }
}

fn wire_outer(data: &[u8]) {
    match wire::decode(data) {
        Ok(Message::Initiation(m)) => {
            assert_eq!(data.len(), wire::INIT_LEN);
            assert_eq!(data[0], wire::TYPE_INITIATION);
            assert_eq!(m.sender, u32_le(&data[4..]));
            let mac1_at = wire::INIT_LEN - 2 * MAC_LEN;
            assert_eq!(m.noise, &data[8..mac1_at]);
            assert_eq!(m.noise.len(), wire::INIT_NOISE_LEN);
            assert_eq!(m.mac1_covered, &data[..mac1_at]);
            assert_eq!(&m.mac1[..], &data[mac1_at..mac1_at + MAC_LEN]);
            assert_eq!(m.mac2_covered, &data[..mac1_at + MAC_LEN]);
            assert_eq!(&m.mac2[..], &data[mac1_at + MAC_LEN..]);
            let mut hdr = [0u8; 8];
            let n = wire::encode_handshake_header(&mut hdr, wire::TYPE_INITIATION, m.sender, None);
            assert_eq!(&hdr[..n], &data[..n]);
            check_mac1(m.mac1_covered, m.mac1);
        }
        Ok(Message::Response(m)) => {
            assert_eq!(data.len(), wire::RESP_LEN);
            assert_eq!(data[0], wire::TYPE_RESPONSE);
            assert_eq!((m.sender, m.receiver), (u32_le(&data[4..]), u32_le(&data[8..])));
            let mac1_at = wire::RESP_LEN - 2 * MAC_LEN;
            assert_eq!(m.noise, &data[12..mac1_at]);
            assert_eq!(m.mac1_covered, &data[..mac1_at]);
            assert_eq!(&m.mac1[..], &data[mac1_at..mac1_at + MAC_LEN]);
            assert_eq!(&m.mac2[..], &data[mac1_at + MAC_LEN..]);
            let mut hdr = [0u8; 12];
            let n = wire::encode_handshake_header(&mut hdr, wire::TYPE_RESPONSE, m.sender, Some(m.receiver));
            assert_eq!(&hdr[..n], &data[..n]);
            check_mac1(m.mac1_covered, m.mac1);
        }
        Ok(Message::Data(h)) => {
            assert!(data.len() >= wire::DATA_MIN_LEN);
            let mut copy = data.to_vec();
            wire::encode_data_header(&mut copy, h);
            assert_eq!(copy, data, "data header re-encodes to itself");
        }
        Ok(Message::CookieReply(r)) => {
            assert_eq!(data.len(), wire::COOKIE_REPLY_LEN);
            assert_eq!(r.receiver, u32_le(&data[4..]));
            assert_eq!(&r.nonce[..], &data[8..32]);
            assert_eq!(&r.cookie[..], &data[32..]);
            let _ = cookie::open_reply(&public(SERVER_KEY), &r, &[0; MAC_LEN]);
        }
        Err(e) => {
            let _ = e.to_string();
            if data.is_empty() {
                assert_eq!(e, wire::WireError::Empty);
            }
        }
    }
    // The structure alone decides: a known type with its length and zero
    // reserved bytes decodes (a data message is not looked into before
    // decryption), anything else of a known type does not.
    let well_formed = match data.first() {
        Some(&wire::TYPE_INITIATION) => data.len() == wire::INIT_LEN,
        Some(&wire::TYPE_RESPONSE) => data.len() == wire::RESP_LEN,
        Some(&wire::TYPE_COOKIE_REPLY) => data.len() == wire::COOKIE_REPLY_LEN,
        Some(&wire::TYPE_DATA) => data.len() >= wire::DATA_MIN_LEN,
        _ => return,
    } && data[1..4] == [0, 0, 0];
    assert_eq!(
        wire::decode(data).is_ok(),
        well_formed,
        "{:02x?}",
        &data[..data.len().min(16)]
    );
}

/// `verify` agrees with `compute` for both keys a datagram can be for.
fn check_mac1(covered: &[u8], mac: &[u8; MAC_LEN]) {
    for k in [SERVER_KEY, CLIENT_KEY] {
        let key = Mac1Key::for_receiver(&public(k));
        let expected = key.compute(covered);
        assert_eq!(key.verify(covered, mac), expected == *mac);
        assert!(key.verify(covered, &expected));
    }
}

fn wire_frame(data: &[u8]) {
    match frame::decode(data) {
        Ok(f @ Frame::Data { times, seq }) => {
            assert!(data.len() >= frame::DATA_FRAME_HEADER_LEN);
            let mut b = [0u8; frame::DATA_FRAME_HEADER_LEN];
            frame::encode_data_header(&mut b, times, seq);
            assert_eq!(frame::decode(&b), Ok(f));
            assert_eq!(b[0], data[0]);
            assert_eq!(b[4..], data[4..frame::DATA_FRAME_HEADER_LEN]);
        }
        Ok(
            f @ Frame::Keepalive {
                times,
                report,
                reply,
                no_data,
            },
        ) => {
            assert!(data.len() >= frame::KEEPALIVE_LEN);
            let mut b = [0u8; frame::KEEPALIVE_LEN];
            frame::encode_keepalive(&mut b, times, report, reply, no_data);
            assert_eq!(frame::decode(&b), Ok(f));
            assert_eq!(b[0], data[0]);
            assert_eq!(b[4..], data[4..frame::KEEPALIVE_LEN]);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

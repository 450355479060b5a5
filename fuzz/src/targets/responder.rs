//! The `responder` target: a server's handshake responder given hostile
//! initiations, at ease and under load (cookies).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mlvpn_rs::proto::cookie;
use mlvpn_rs::proto::frame::{self, Report, Timestamps};
use mlvpn_rs::proto::handshake::{InitPayload, Initiator, MAX_PATH_NAME};
use mlvpn_rs::proto::mac::Mac1Key;
use mlvpn_rs::proto::session::Session;
use mlvpn_rs::proto::wire::{self, Message, MAC_LEN, TAG_LEN};
use mlvpn_rs::proto::Tunnel;

use super::input::{u32_le, Cursor};
use super::nodes::{fix_mac1, server_tunnel, ROGUE_KEY, STRANGER_KEY};
use crate::fixtures::{addr, key, public, socket_id, CLIENT_KEY, CLIENT_SOCKETS, SERVER_KEY};

/// First byte of a `responder` input that describes an initiation to build
/// (rather than the datagram itself). Not a message type.
pub const STRUCTURED_INIT: u8 = 0xa5;

struct ResponderState {
    /// A server at ease: every input a second after the previous one.
    calm: Tunnel,
    calm_now: Instant,
    calm_start: Instant,
    /// A server under load (time stands still for it), so initiations
    /// need a cookie (`mac2`) before it does any Diffie-Hellman.
    loaded: Tunnel,
    loaded_now: Instant,
    loaded_inputs: u32,
    /// Source addresses for the loaded server: a fresh one per attempt, so
    /// the per-address rate limit never decides.
    next_ip: u32,
}

/// What the server did with one datagram.
struct Verdict {
    sent: Vec<Vec<u8>>,
    responded: bool,
}

thread_local! {
    static RESPONDER: RefCell<Option<ResponderState>> = const { RefCell::new(None) };
}

/// A server put under load: more than `UNDER_LOAD_PER_SEC` initiations with
/// a valid `mac1` at one instant.
fn loaded_server() -> (Tunnel, Instant) {
    let now = Instant::now();
    let mut server = server_tunnel(now);
    let mut junk = vec![0u8; wire::INIT_LEN];
    junk[0] = wire::TYPE_INITIATION;
    let from = addr("198.51.100.1:1000");
    for i in 0..=cookie::UNDER_LOAD_PER_SEC {
        junk[4..8].copy_from_slice(&i.to_le_bytes());
        fix_mac1(&mut junk, &public(SERVER_KEY));
        server.handle_datagram(socket_id(0), from, &mut junk, now);
    }
    let mut tx = vec![0u8; 2048];
    while server.poll_transmit(&mut tx, now).is_some() {}
    assert!(
        server.drops().handshake_cookie_sent > 0,
        "not under load after a flood"
    );
    (server, now)
}

/// A server `Tunnel` fed the input as an initiation: as is; with a valid
/// `mac1` when it has the initiation's length (so the Noise responder
/// really runs), to a server at ease and to one under load (which must
/// answer with a cookie reply that opens with that `mac1`; with the cookie
/// as `mac2` the initiation then reaches the Noise responder); and, for
/// inputs starting with [`STRUCTURED_INIT`], a real initiation built from
/// the input's fields. Nothing is ever delivered, every datagram is either
/// answered or counted as a drop, and a real initiation from a configured
/// peer is accepted exactly when its payload is valid, after which the
/// handshake completes and the session works.
pub fn responder(data: &[u8]) {
    RESPONDER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let st = slot.get_or_insert_with(|| {
            let start = Instant::now();
            let (loaded, loaded_now) = loaded_server();
            ResponderState {
                calm: server_tunnel(start),
                calm_now: start,
                calm_start: start,
                loaded,
                loaded_now,
                loaded_inputs: 0,
                next_ip: 0,
            }
        });
        st.calm_now += Duration::from_secs(1);
        st.loaded_inputs += 1;
        let from = addr(CLIENT_SOCKETS[0]);
        let mut raw = data.to_vec();
        let mut accepted = feed_initiation(&mut st.calm, st.calm_now, &mut raw, from).responded;
        if data.len() == wire::INIT_LEN {
            let mut fixed = data.to_vec();
            fix_mac1(&mut fixed, &public(SERVER_KEY));
            accepted |= feed_initiation(&mut st.calm, st.calm_now, &mut fixed, from).responded;
            let from = st.fresh_source();
            if let Some(v) = with_cookie(&mut st.loaded, st.loaded_now, &mut fixed, from) {
                if v.responded {
                    st.loaded_inputs = u32::MAX;
                }
            }
        }
        if data.first() == Some(&STRUCTURED_INIT) {
            let loaded = data.get(1).is_some_and(|b| b & 0x80 != 0);
            if loaded {
                let from = st.fresh_source();
                if structured_initiation(&mut st.loaded, st.loaded_now, &data[1..], from, true) {
                    st.loaded_inputs = u32::MAX;
                }
            } else {
                accepted |= structured_initiation(&mut st.calm, st.calm_now, &data[1..], from, false);
            }
        }
        // Every input meets the same servers: a fresh one after anything
        // was accepted (or after a while).
        if accepted || st.calm_now.saturating_duration_since(st.calm_start) > Duration::from_secs(1 << 20) {
            st.calm_start = st.calm_now;
            st.calm = server_tunnel(st.calm_now);
        }
        if st.loaded_inputs >= 1000 {
            (st.loaded, st.loaded_now) = loaded_server();
            st.loaded_inputs = 0;
        }
    });
}

/// Forgets the servers kept between inputs.
pub(super) fn reset() {
    RESPONDER.with(|r| r.borrow_mut().take());
}

impl ResponderState {
    fn fresh_source(&mut self) -> SocketAddr {
        self.next_ip = self.next_ip.wrapping_add(1);
        SocketAddr::from((
            std::net::Ipv4Addr::from(0x0ac8_0000 | (self.next_ip & 0xffff)),
            4000,
        ))
    }
}

/// Gives one datagram to the server; returns what it sent back. Asserts that
/// nothing is delivered and that a datagram not answered is counted.
fn feed_initiation(server: &mut Tunnel, now: Instant, msg: &mut [u8], from: SocketAddr) -> Verdict {
    let before = server.drops().total();
    let sender = msg.get(4..8).map(u32_le);
    let delivered = server.handle_datagram(socket_id(0), from, msg, now);
    assert!(delivered.is_none(), "a handshake message delivered a packet");
    let mut out = vec![0u8; 2048];
    assert!(server.poll_deliver(&mut out).is_none());
    let mut sent = Vec::new();
    while let Some(t) = server.poll_transmit(&mut out, now) {
        assert_eq!(t.dest, from, "answer sent elsewhere");
        sent.push(out[..t.len].to_vec());
    }
    let counted = server.drops().total() > before;
    assert!(
        counted || !sent.is_empty(),
        "datagram neither answered nor counted as a drop"
    );
    let mut responded = false;
    for s in &sent {
        match wire::decode(s) {
            Ok(Message::Response(r)) => {
                assert!(!counted, "answered and counted as a drop");
                assert_eq!(Some(r.receiver), sender, "response to another sender index");
                responded = true;
            }
            Ok(Message::CookieReply(r)) => {
                assert!(counted, "cookie replies are counted (handshake_cookie_sent)");
                assert_eq!(Some(r.receiver), sender, "cookie reply to another sender index");
            }
            _ => panic!("the server answered a handshake with {s:02x?}"),
        }
    }
    assert!(sent.len() <= 1, "more than one answer to one datagram");
    Verdict { sent, responded }
}

/// To a server under load: `msg` (an initiation with a valid `mac1`) gets a
/// cookie reply that opens with that `mac1`; `msg` with the cookie as `mac2`
/// then gets past the load check. Returns the second verdict.
fn with_cookie(server: &mut Tunnel, now: Instant, msg: &mut [u8], from: SocketAddr) -> Option<Verdict> {
    let mac1_at = wire::INIT_LEN - 2 * MAC_LEN;
    let mac2_at = mac1_at + MAC_LEN;
    if msg.len() != wire::INIT_LEN || msg[..4] != [wire::TYPE_INITIATION, 0, 0, 0] {
        return None;
    }
    let before = *server.drops();
    let v = feed_initiation(server, now, msg, from);
    if server.drops().handshake_bad_mac > before.handshake_bad_mac {
        return None;
    }
    assert_eq!(
        server.drops().handshake_cookie_sent,
        before.handshake_cookie_sent + 1,
        "a server under load did DH without a mac2"
    );
    let Some(Ok(Message::CookieReply(reply))) = v.sent.first().map(|s| wire::decode(s)) else {
        panic!("no cookie reply from a server under load");
    };
    let mac1: [u8; MAC_LEN] = msg[mac1_at..mac2_at].try_into().expect("16 bytes");
    let cookie = cookie::open_reply(&public(SERVER_KEY), &reply, &mac1)
        .expect("the cookie reply opens with the initiation's mac1");
    let mut wrong = mac1;
    wrong[0] ^= 1;
    assert!(cookie::open_reply(&public(SERVER_KEY), &reply, &wrong).is_none());
    let mac2 = cookie::mac2(&cookie, &msg[..mac2_at]);
    msg[mac2_at..].copy_from_slice(&mac2);
    let before = *server.drops();
    let v = feed_initiation(server, now, msg, from);
    let after = *server.drops();
    assert_eq!(
        after.handshake_cookie_sent, before.handshake_cookie_sent,
        "a valid mac2 was refused"
    );
    assert_eq!(
        after.handshake_rate_limited, before.handshake_rate_limited,
        "a fresh address was rate limited"
    );
    Some(v)
}

/// Builds a real initiation from the input's fields (key, path id,
/// timestamp, name, then an optional byte flip) and checks the verdict;
/// under load, with the cookie the server answers first. Returns whether
/// the server accepted it.
fn structured_initiation(
    server: &mut Tunnel,
    now: Instant,
    data: &[u8],
    from: SocketAddr,
    loaded: bool,
) -> bool {
    let mut c = Cursor::new(data);
    let initiator_key = [CLIENT_KEY, ROGUE_KEY, STRANGER_KEY, SERVER_KEY][usize::from(c.byte() % 4)];
    let path_id = c.byte();
    let unix_ns = c.u64();
    let name_len = usize::from(c.byte() % 48);
    let name = String::from_utf8_lossy(c.take(name_len)).into_owned();
    let (flip_at, flip) = (usize::from(c.u16()), c.byte());
    let sender = u32::from(c.u16()) | 0x1000_0000;
    let payload = InitPayload {
        unix_ns,
        path_id,
        path_name: name.clone(),
    };
    let Ok((initiator, msg)) =
        Initiator::start(&key(initiator_key), &public(SERVER_KEY), sender, &payload, None)
    else {
        return false;
    };
    let (mut initiator, mut msg) = if loaded {
        let mut first = msg.to_vec();
        let v = feed_initiation(server, now, &mut first, from);
        let Some(Ok(Message::CookieReply(reply))) = v.sent.first().map(|s| wire::decode(s)) else {
            panic!("no cookie reply from a server under load");
        };
        let cookie = cookie::open_reply(&public(SERVER_KEY), &reply, &initiator.mac1)
            .expect("the cookie reply opens with the initiation's mac1");
        let Ok((i, m)) = Initiator::start(
            &key(initiator_key),
            &public(SERVER_KEY),
            sender,
            &payload,
            Some(&cookie),
        ) else {
            return false;
        };
        assert!(i.with_cookie);
        (i, m.to_vec())
    } else {
        (initiator, msg.to_vec())
    };
    let flipped = flip != 0;
    if flipped {
        let at = flip_at % msg.len();
        msg[at] ^= flip;
        if flip_at & 0x8000 != 0 {
            fix_mac1(&mut msg, &public(SERVER_KEY));
        }
    }
    let v = feed_initiation(server, now, &mut msg, from);
    if flipped {
        return v.responded;
    }
    // The name as it travels: at most 32 bytes, then checked as UTF-8 of
    // `[A-Za-z0-9_.-]`.
    let wire_name = &name.as_bytes()[..name.len().min(MAX_PATH_NAME)];
    let name_ok = wire_name
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c));
    let configured = initiator_key == CLIENT_KEY || initiator_key == ROGUE_KEY;
    // A fresh server has no path yet, so any timestamp is new (under load,
    // the server may have accepted one before: no verdict).
    let acceptable = configured && name_ok;
    if !acceptable {
        assert!(
            !v.responded,
            "accepted an initiation it should refuse: {payload:?}"
        );
        return false;
    }
    if !v.responded {
        assert!(loaded, "no response to a valid initiation: {payload:?}");
        return false;
    }
    let Ok(Message::Response(r)) = wire::decode(&v.sent[0]) else {
        unreachable!("checked in feed_initiation");
    };
    assert!(
        Mac1Key::for_receiver(&public(initiator_key)).verify(r.mac1_covered, r.mac1),
        "response mac1 is not for the initiator"
    );
    let keys = initiator
        .finish(&r)
        .expect("the initiator accepts the server's response");
    // The session works: a keepalive on it authenticates and is not
    // delivered (it carries no packet).
    let mut session = Session::new(keys, sender, r.sender, now);
    let mut buf = vec![0u8; wire::DATA_HEADER_LEN + frame::KEEPALIVE_LEN + TAG_LEN];
    frame::encode_keepalive(
        &mut buf[wire::DATA_HEADER_LEN..wire::DATA_HEADER_LEN + frame::KEEPALIVE_LEN],
        Timestamps {
            ts: 1,
            echo: 0,
            echo_delay: 0,
        },
        Report::default(),
        false,
        false,
    );
    let n = session
        .seal(&mut buf, frame::KEEPALIVE_LEN)
        .expect("fresh session");
    let before = *server.drops();
    let got = server.handle_datagram(socket_id(0), from, &mut buf[..n], now);
    assert!(got.is_none());
    assert_eq!(
        *server.drops(),
        before,
        "the first packet of a fresh session was dropped"
    );
    true
}

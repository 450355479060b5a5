//! The operations a `transport` input is made of, and how they run.

use std::time::Duration;

use super::super::input::Cursor;
use super::super::nodes::{fix_mac1, ROGUE_ADDR};
use super::Pair;
use crate::fixtures::{addr, public, CLIENT_KEY, CLIENT_SOCKETS, SERVER_KEY, SERVER_SOCKETS};

/// Most simulated time one input may let pass.
const TIME_PER_INPUT: Duration = Duration::from_secs(1);

/// A genuine datagram of A, kept to be given to the server later.
struct Stashed {
    bytes: Vec<u8>,
    delivered: bool,
}

/// What one input's operations share: the datagrams they kept and the
/// budgets of the input.
struct Run {
    kept_a: Vec<Stashed>,
    kept_b: Vec<Vec<u8>>,
    time_left: Duration,
    handshakes: u32,
}

/// Operation codes of the `transport` input (low 3 bits of the op byte).
pub mod op {
    /// `op, len u8, sel u8, bytes[len * 4 + (op >> 6)]`: a forged datagram;
    /// bit 3 of op: to the client (else the server); `sel` picks the
    /// receiver index written at bytes 4..8 (0xff: leave them), bit 5 of op
    /// fixes `mac1` of a handshake-length message.
    pub const FORGED: u8 = 0;
    /// `op, sel u8`: a valid cookie reply (anyone can make one: its key
    /// comes from the server's public key) to initiation `sel` the client
    /// sent; bit 3 of op: for another `mac1` (it must not open).
    pub const COOKIE: u8 = 1;
    /// `op, len u8`: A sends a packet of `36 + len * 4` bytes; bit 3 of op:
    /// deliver it now (else keep it for later).
    pub const GENUINE: u8 = 2;
    /// `op, sel u8, at u16, xor u8`: deliver kept datagram `sel` of A (again),
    /// with `xor` applied at `at` when non-zero.
    pub const REPLAY: u8 = 3;
    /// `op, len u16, plaintext[len % 2048]`: B seals the frame; bit 3 of op:
    /// deliver now (else keep it).
    pub const ROGUE: u8 = 4;
    /// `op, sel u8`: deliver kept datagram `sel` of B (again).
    pub const ROGUE_REPLAY: u8 = 5;
    /// `op, ms u8`: time passes (`ms * 4` ms, at most 1 s per input),
    /// timers run, control messages are relayed.
    pub const TIME: u8 = 6;
    /// `op, path u8`: for `path` >= 0xc0, B handshakes again on path
    /// `path % 40`, or for 0xfe the server forgets B (a reload without it,
    /// then with it) and B handshakes anew; one per input (a handshake
    /// costs ~1 ms). Otherwise the timers run, no time passing.
    pub const ROGUE_HANDSHAKE: u8 = 7;
}

/// Runs one `transport` input on `pair`.
pub fn run_ops(pair: &mut Pair, data: &[u8]) {
    let mut c = Cursor::new(data);
    let mut run = Run {
        kept_a: Vec::new(),
        kept_b: Vec::new(),
        time_left: TIME_PER_INPUT,
        handshakes: 0,
    };
    let mut ops = 0;
    while !c.is_empty() && ops < 256 {
        ops += 1;
        let code = c.byte();
        match code & 7 {
            op::COOKIE => cookie(pair, &mut c, code),
            op::FORGED => forged(pair, &mut c, code),
            op::GENUINE => run.genuine(pair, &mut c, code),
            op::REPLAY => run.replay(pair, &mut c),
            op::ROGUE => run.rogue(pair, &mut c, code),
            op::ROGUE_REPLAY => run.rogue_replay(pair, &mut c),
            op::TIME => run.time(pair, &mut c),
            _ => run.rogue_handshake(pair, &mut c),
        }
    }
    // Whatever A sent and was kept arrives now, so A's sequence has no hole
    // left, and then a new packet from A must get through.
    for k in run.kept_a.iter_mut().filter(|k| !k.delivered) {
        k.delivered = true;
        let mut d = k.bytes.clone();
        pair.give_server(0, addr(CLIENT_SOCKETS[0]), &mut d);
    }
    pair.check_genuine();
}

/// [`op::COOKIE`]
fn cookie(pair: &mut Pair, c: &mut Cursor, code: u8) {
    let sel = usize::from(c.byte());
    if !pair.client_initiations.is_empty() {
        let n = pair.client_initiations.len();
        let (sender, mut mac1) = pair.client_initiations[n - 1 - sel % n];
        if code & 8 != 0 {
            mac1[0] ^= 1;
        }
        pair.cookie_reply(sender, &mac1, code & 8 != 0);
    }
}

/// [`op::FORGED`]
fn forged(pair: &mut Pair, c: &mut Cursor, code: u8) {
    let len = usize::from(c.byte()) * 4 + usize::from(code >> 6);
    let sel = c.byte();
    let mut bytes = c.take(len).to_vec();
    let to_client = code & 8 != 0;
    let indices = if to_client {
        &pair.client_indices
    } else {
        &pair.server_indices
    };
    if sel != 0xff && bytes.len() >= 8 && !indices.is_empty() {
        // 0 = the newest index, 1 the one before, ...
        let index = indices[indices.len() - 1 - usize::from(sel) % indices.len()];
        bytes[4..8].copy_from_slice(&index.to_le_bytes());
    }
    if code & 0x20 != 0 {
        let to = if to_client { CLIENT_KEY } else { SERVER_KEY };
        fix_mac1(&mut bytes, &public(to));
    }
    pair.forged(to_client, &mut bytes);
}

impl Run {
    /// [`op::GENUINE`]
    fn genuine(&mut self, pair: &mut Pair, c: &mut Cursor, code: u8) {
        let len = 36 + usize::from(c.byte()) * 4;
        if let Some((_, d)) = pair.client_datagram(len) {
            if pair.capture.is_some() {
                pair.record(addr(CLIENT_SOCKETS[0]), addr(SERVER_SOCKETS[0]), &d);
            }
            let now = code & 8 != 0;
            self.kept_a.push(Stashed {
                bytes: d,
                delivered: now,
            });
            if now {
                let mut d = self.kept_a.last().expect("pushed").bytes.clone();
                pair.give_server(0, addr(CLIENT_SOCKETS[0]), &mut d);
            }
        }
    }

    /// [`op::REPLAY`]
    fn replay(&mut self, pair: &mut Pair, c: &mut Cursor) {
        let sel = usize::from(c.byte());
        let at = usize::from(c.u16());
        let xor = c.byte();
        if self.kept_a.is_empty() {
            return;
        }
        let i = sel % self.kept_a.len();
        let mut d = self.kept_a[i].bytes.clone();
        if xor != 0 {
            let at = at % d.len();
            d[at] ^= xor;
            pair.forged(false, &mut d);
        } else {
            let first = !self.kept_a[i].delivered;
            self.kept_a[i].delivered = true;
            let before = pair.server.drops().total();
            pair.give_server(0, addr(CLIENT_SOCKETS[0]), &mut d);
            if !first {
                let after = pair.server.drops().total();
                assert!(after > before, "a replayed datagram was not refused");
            }
        }
    }

    /// [`op::ROGUE`]
    fn rogue(&mut self, pair: &mut Pair, c: &mut Cursor, code: u8) {
        let len = usize::from(c.u16()) % 2048;
        let plain = c.take(len).to_vec();
        if let Some(d) = pair.rogue_datagram(&plain) {
            if code & 8 != 0 {
                let mut d2 = d.clone();
                pair.give_server(1, addr(ROGUE_ADDR), &mut d2);
            }
            self.kept_b.push(d);
        }
    }

    /// [`op::ROGUE_REPLAY`]
    fn rogue_replay(&mut self, pair: &mut Pair, c: &mut Cursor) {
        let sel = usize::from(c.byte());
        if !self.kept_b.is_empty() {
            let mut d = self.kept_b[sel % self.kept_b.len()].clone();
            pair.give_server(1, addr(ROGUE_ADDR), &mut d);
        }
    }

    /// [`op::TIME`]
    fn time(&mut self, pair: &mut Pair, c: &mut Cursor) {
        let d = Duration::from_millis(u64::from(c.byte()) * 4).min(self.time_left);
        self.time_left -= d;
        pair.advance(d);
    }

    /// [`op::ROGUE_HANDSHAKE`]
    fn rogue_handshake(&mut self, pair: &mut Pair, c: &mut Cursor) {
        // A handshake costs ~1 ms: only for `path` >= 0xc0, one per input;
        // otherwise timers run without time passing.
        let path = c.byte();
        if path < 0xc0 || self.handshakes > 0 {
            pair.advance(Duration::ZERO);
        } else if path == 0xfe {
            self.handshakes += 1;
            pair.reset_rogue();
        } else {
            self.handshakes += 1;
            pair.connect_rogue(path % 40);
        }
    }
}

//! The `transport` target: an established client/server pair in memory,
//! fed forged, replayed and authenticated-but-hostile datagrams.

mod history;
pub mod ops;
pub mod pair;

use std::cell::RefCell;
use std::time::Duration;

use super::input::Cursor;
pub use history::HISTORY_MAGIC;
pub use ops::{op, run_ops};
pub use pair::Pair;

thread_local! {
    static PAIR: RefCell<Option<Pair>> = const { RefCell::new(None) };
}

/// Forgets the pair kept between inputs.
pub(super) fn reset() {
    PAIR.with(|p| p.borrow_mut().take());
}

/// Inputs a pair serves before a fresh one is built.
const PAIR_INPUTS: u32 = 500;
/// Simulated time a pair lives (it rekeys every 40 s meanwhile).
const PAIR_LIFE: Duration = Duration::from_secs(150);

/// An established pair fed a sequence of operations, one byte each plus
/// arguments (see [`op`] and docs/fuzzing.md): forged datagrams to either
/// side (their receiver index usually rewritten to a real one, so
/// decryption and the replay window run), genuine datagrams from A
/// delivered late, twice or corrupted, frames written by the authenticated
/// peer B, and time passing. Invariants: nothing forged is delivered or
/// released, every forged datagram is counted, a packet is delivered at
/// most as often as a peer authenticated it, the client never delivers
/// anything, and afterwards a genuine packet from A still gets through.
///
/// The pair lives on across inputs (a handshake costs ~1 ms here), so a
/// failure may depend on earlier inputs. With `MLVPN_FUZZ_HISTORY=DIR` set
/// (fuzz/run.sh sets it), a panic writes every input since the pair was
/// built to `DIR/transport-history-*`: a single input (starting with
/// [`HISTORY_MAGIC`]) that replays them on a fresh pair, so it reproduces
/// the failure on its own.
pub fn transport(data: &[u8]) {
    if let Some(segments) = data.strip_prefix(HISTORY_MAGIC) {
        let mut pair = Pair::establish(false);
        let mut c = Cursor::new(segments);
        while !c.is_empty() {
            let len = u32::from_le_bytes([c.byte(), c.byte(), c.byte(), c.byte()]) as usize;
            one_input(&mut pair, c.take(len));
        }
        return;
    }
    let recording = history::hook();
    PAIR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let mut fresh = slot
            .as_ref()
            .is_none_or(|p| p.inputs >= PAIR_INPUTS || p.now.saturating_duration_since(p.start) > PAIR_LIFE);
        if recording {
            fresh = history::record(data, fresh);
        }
        if fresh {
            *slot = Some(Pair::establish(false));
        }
        one_input(slot.as_mut().expect("built above"), data);
    });
}

/// One input, as [`transport`] runs it on a pair that lives on.
fn one_input(pair: &mut Pair, data: &[u8]) {
    pair.inputs += 1;
    run_ops(pair, data);
}

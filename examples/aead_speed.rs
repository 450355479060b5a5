//! Per-packet cost of the data-packet AEAD: ring (what `Session` uses, via
//! `PacketCipher`) against RustCrypto's `chacha20poly1305`, both sealing and
//! opening 1420-byte payloads with the same key, nonce framing and no AAD.
//!
//!     cargo run --release --example aead_speed [MILLISECONDS_EACH]
//!
//! Each of the four measurements runs for MILLISECONDS_EACH (default 400).
//! Opening needs the ciphertext back every time: both sides copy it in
//! first, and that copy (measured alone) is subtracted.

use std::hint::black_box;
use std::time::{Duration, Instant};

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce};
use mlvpn_rs::proto::aead::PacketCipher;

const LEN: usize = 1420;

/// Nanoseconds per call of `f`, run for about `budget`.
fn per_call(budget: Duration, mut f: impl FnMut(u64)) -> f64 {
    for i in 0..1000 {
        f(i);
    }
    let start = Instant::now();
    let mut n = 0u64;
    loop {
        for _ in 0..1024 {
            f(n);
            n += 1;
        }
        let spent = start.elapsed();
        if spent >= budget {
            return spent.as_nanos() as f64 / n as f64;
        }
    }
}

fn nonce(counter: u64) -> Nonce {
    let mut n = Nonce::default();
    n[4..].copy_from_slice(&counter.to_le_bytes());
    n
}

fn main() {
    let ms: u64 = std::env::args()
        .nth(1)
        .map_or(400, |a| a.parse().expect("milliseconds"));
    let budget = Duration::from_millis(ms);
    let key = [0x5a; 32];
    let ring = PacketCipher::new(&key);
    let rc = ChaCha20Poly1305::new(&key.into());
    let mut buf = vec![0xabu8; LEN];

    let ring_seal = per_call(budget, |c| {
        black_box(ring.seal(c, black_box(&mut buf)));
    });
    let rc_seal = per_call(budget, |c| {
        black_box(
            rc.encrypt_in_place_detached(&nonce(c), &[], black_box(&mut buf))
                .unwrap(),
        );
    });

    let plain = vec![0xabu8; LEN];
    let mut sealed = plain.clone();
    let tag = ring.seal(7, &mut sealed);
    let copy = per_call(budget / 4, |_| {
        black_box(&mut buf).copy_from_slice(black_box(&sealed));
    });
    let ring_open = per_call(budget, |_| {
        buf.copy_from_slice(&sealed);
        ring.open(7, black_box(&mut buf), &tag).unwrap();
    }) - copy;
    let rc_open = per_call(budget, |_| {
        buf.copy_from_slice(&sealed);
        rc.decrypt_in_place_detached(&nonce(7), &[], black_box(&mut buf), &tag.into())
            .unwrap();
    }) - copy;
    assert_eq!(buf, plain);

    let gbit = |ns: f64| (LEN * 8) as f64 / ns;
    println!("ChaCha20-Poly1305, {LEN}-byte payload, one core (copy of {LEN} bytes: {copy:.0} ns, subtracted from open)");
    println!(
        "{:<6} {:>12} {:>10} {:>12} {:>10}",
        "", "ring", "", "RustCrypto", ""
    );
    for (what, r, c) in [("seal", ring_seal, rc_seal), ("open", ring_open, rc_open)] {
        println!(
            "{what:<6} {:>9.3} µs {:>6.2} Gb/s {:>9.3} µs {:>6.2} Gb/s   ring {:.2}x faster",
            r / 1000.0,
            gbit(r),
            c / 1000.0,
            gbit(c),
            c / r
        );
    }
}

//! Random mixes of flows through the coalescer and back through
//! `segments`: nothing lost, nothing changed, no flow reordered.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::super::coalesce::{Coalescer, PushError};
use super::super::headers::{TCP_FIN, TCP_PSH};
use super::super::test_packets::{checksums_ok, Ip, Tcp, Udp};
use super::super::virtio_hdr::{VirtioNetHdr, GSO_NONE, VNET_HDR_LEN};
use super::{split, BOTH};

/// A packet's flow in this test (each flow has its own source port) and
/// the packet with the fields coalescing may change zeroed: the IPv4 ID
/// and, with it, the header checksum (DF is set, so the ID means nothing).
fn normalized(p: &[u8]) -> (u8, u8, Vec<u8>) {
    let mut p = p.to_vec();
    let (l4, proto) = if p[0] >> 4 == 4 {
        p[4..6].fill(0);
        p[10..12].fill(0);
        (20, p[9])
    } else {
        (40, p[6])
    };
    let port = p[l4 + 1];
    (proto, port, p)
}

/// One random packet of flow `f`, advancing its sequence number.
fn packet(rng: &mut StdRng, f: usize, seq: &mut u32, id: &mut u16) -> Vec<u8> {
    let mut ip = if f % 2 == 0 { Ip::v4() } else { Ip::v6() };
    *id = if rng.gen_bool(0.9) {
        id.wrapping_add(1)
    } else {
        rng.gen()
    };
    ip.id = *id;
    let len = match rng.gen_range(0..10) {
        0 => rng.gen_range(0..1200),
        1 => 0,
        _ => 1200,
    };
    let mut p = if f < 2 {
        let mut t = Tcp::new(ip, *seq, len);
        t.src_port = f as u16;
        if rng.gen_bool(0.05) {
            t.flags |= TCP_PSH;
        }
        if rng.gen_bool(0.02) {
            t.flags |= TCP_FIN;
        }
        if rng.gen_bool(0.05) {
            t.ack += 1;
        }
        if rng.gen_bool(0.03) {
            t.seq += 1; // a gap
        }
        *seq = t.seq.wrapping_add(len as u32);
        t.build()
    } else {
        let mut u = Udp::new(ip, len.max(1), rng.gen());
        u.src_port = f as u16;
        u.build()
    };
    if len > 0 && rng.gen_bool(0.03) {
        // A payload bit: the checksum no longer verifies.
        let at = rng.gen_range(p.len() - len..p.len());
        p[at] ^= 1 << rng.gen_range(0..8);
    }
    p
}

#[test]
fn random_mixes_come_back_unchanged_and_in_flow_order() {
    let mut rng = StdRng::seed_from_u64(16);
    let (mut super_packets, mut with_udp) = (0, 0);
    for _ in 0..30 {
        let mut coalescer = Coalescer::with_slots(BOTH, rng.gen_range(1..10));
        let mut seqs = [7u32, 0xffff_f000, 0, 0];
        let mut ids = [0u16, 0, 0xfff0, 0];
        let mut sent = Vec::new();
        let mut written: Vec<Vec<u8>> = Vec::new();
        let mut flush = |c: &mut Coalescer| {
            c.flush(|b| {
                written.push(b.to_vec());
                Ok(())
            })
            .unwrap()
        };
        for _ in 0..rng.gen_range(1..300) {
            let f = rng.gen_range(0..4);
            let p = packet(&mut rng, f, &mut seqs[f], &mut ids[f]);
            match coalescer.push(&p) {
                Ok(()) => {}
                Err(PushError::Full) => {
                    flush(&mut coalescer);
                    coalescer.push(&p).unwrap();
                }
                Err(e) => panic!("{e}"),
            }
            sent.push(p);
        }
        flush(&mut coalescer);
        assert!(written.len() <= sent.len());
        let mut received = Vec::new();
        for b in &written {
            let hdr = VirtioNetHdr::decode(b).unwrap();
            let p = &b[VNET_HDR_LEN..];
            if hdr.gso_type == GSO_NONE {
                assert_eq!(hdr, VirtioNetHdr::default());
                assert!(sent.iter().any(|s| s == p), "a packet passed through is one sent");
                received.push(p.to_vec());
            } else {
                super_packets += 1;
                with_udp += usize::from(hdr.gso_type == super::super::virtio_hdr::GSO_UDP_L4);
                for s in split(&hdr, p) {
                    assert!(checksums_ok(&s));
                    received.push(s);
                }
            }
        }
        for flow in 0..4u8 {
            let of_flow = |v: &[Vec<u8>]| -> Vec<Vec<u8>> {
                v.iter()
                    .map(|p| normalized(p))
                    .filter(|n| n.1 == flow)
                    .map(|n| n.2)
                    .collect()
            };
            assert_eq!(of_flow(&received), of_flow(&sent), "flow {flow}");
        }
        assert_eq!(received.len(), sent.len());
    }
    assert!(
        super_packets > 100 && with_udp > 30,
        "{super_packets} super-packets, {with_udp} UDP"
    );
}

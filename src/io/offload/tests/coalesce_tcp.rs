use super::super::coalesce::{CoalesceConfig, Coalescer, PushError};
use super::super::headers::{be16, TCP_ACK, TCP_CWR, TCP_FIN, TCP_PSH, TCP_SYN};
use super::super::test_packets::{checksums_ok, Ip, Tcp};
use super::super::virtio_hdr::{F_NEEDS_CSUM, GSO_TCPV4, GSO_TCPV6};
use super::{coalesce, split, BOTH};

/// `n` contiguous segments of `mss` payload bytes (the last `last` bytes)
/// of one flow, with IPv4 IDs counting up as Linux sends them.
fn flow(ip: Ip, n: usize, mss: usize, last: usize) -> Vec<Tcp> {
    (0..n)
        .map(|i| {
            let mut ip = ip.clone();
            ip.id = ip.id.wrapping_add(i as u16);
            Tcp::new(
                ip,
                1_000_000 + (i * mss) as u32,
                if i + 1 == n { last } else { mss },
            )
        })
        .collect()
}

fn build(segs: &[Tcp]) -> Vec<Vec<u8>> {
    segs.iter().map(Tcp::build).collect()
}

/// The flush output is these packets passed through unchanged, in order.
fn assert_passed_through(out: &[(super::VirtioNetHdr, Vec<u8>)], packets: &[Vec<u8>]) {
    assert_eq!(out.len(), packets.len());
    for ((hdr, p), want) in out.iter().zip(packets) {
        assert_eq!(*hdr, Default::default());
        assert_eq!(p, want);
    }
}

#[test]
fn a_run_becomes_one_super_packet_and_splits_back() {
    for (ip, gso_type) in [(Ip::v4(), GSO_TCPV4), (Ip::v6(), GSO_TCPV6)] {
        let mut segs = flow(ip.clone(), 6, 1000, 400);
        segs[5].flags |= TCP_PSH;
        let packets = build(&segs);
        let out = coalesce(BOTH, &packets);
        assert_eq!(out.len(), 1);
        let (hdr, p) = &out[0];
        let l4 = ip.header_len();
        assert_eq!(hdr.flags, F_NEEDS_CSUM);
        assert_eq!(hdr.gso_type, gso_type);
        assert_eq!(usize::from(hdr.gso_size), 1000);
        assert_eq!(usize::from(hdr.hdr_len), segs[0].header_len());
        assert_eq!(usize::from(hdr.csum_start), l4);
        assert_eq!(hdr.csum_offset, 16);
        assert_eq!(p.len(), segs[0].header_len() + 5 * 1000 + 400);
        if !ip.v6 {
            assert_eq!(usize::from(be16(p, 2)), p.len());
        } else {
            assert_eq!(usize::from(be16(p, 4)) + 40, p.len());
        }
        assert_eq!(
            split(hdr, p),
            packets,
            "the kernel's segmentation gives back what went in"
        );
    }
}

#[test]
fn interleaved_flows_each_make_a_super_packet() {
    let a = flow(Ip::v4(), 3, 1000, 1000);
    let mut b = flow(Ip::v4(), 3, 1000, 1000);
    for t in &mut b {
        t.src_port = 40001;
    }
    let packets: Vec<Vec<u8>> = (0..3).flat_map(|i| [a[i].build(), b[i].build()]).collect();
    let out = coalesce(BOTH, &packets);
    assert_eq!(out.len(), 2);
    assert_eq!(split(&out[0].0, &out[0].1), build(&a));
    assert_eq!(split(&out[1].0, &out[1].1), build(&b));
}

#[test]
fn a_gap_in_sequence_starts_a_new_run() {
    let mut segs = flow(Ip::v4(), 4, 1000, 1000);
    segs[2].seq += 1;
    segs[3].seq += 1;
    let packets = build(&segs);
    let out = coalesce(BOTH, &packets);
    assert_eq!(out.len(), 2);
    assert_eq!(split(&out[0].0, &out[0].1), packets[..2]);
    assert_eq!(split(&out[1].0, &out[1].1), packets[2..]);
}

/// Two segments that differ in one way Linux GRO does not merge across.
fn assert_not_merged(change: impl Fn(&mut Tcp)) {
    let mut segs = flow(Ip::v4(), 2, 1000, 1000);
    change(&mut segs[1]);
    let packets = build(&segs);
    assert_passed_through(&coalesce(BOTH, &packets), &packets);
}

#[test]
fn segments_that_differ_are_not_merged() {
    assert_not_merged(|t| t.src_port += 1);
    assert_not_merged(|t| t.ip.dst += 1);
    assert_not_merged(|t| t.ack += 1);
    assert_not_merged(|t| t.window += 1);
    assert_not_merged(|t| t.flags |= TCP_SYN);
    assert_not_merged(|t| t.flags |= TCP_CWR);
    assert_not_merged(|t| t.options[11] ^= 1); // timestamp echo reply
    assert_not_merged(|t| t.options = vec![1, 1, 1, 1]);
    assert_not_merged(|t| t.ip.ttl -= 1);
    assert_not_merged(|t| t.ip.tos = 0x10);
    assert_not_merged(|t| t.ip.df = false);
    assert_not_merged(|t| t.payload.push(0)); // longer than the first
}

#[test]
fn a_syn_or_an_undersized_first_segment_is_never_merged_into() {
    for first_change in [
        (|t: &mut Tcp| t.flags = TCP_SYN | TCP_ACK) as fn(&mut Tcp),
        |t| t.flags |= TCP_PSH,
        |t| t.payload.clear(),
    ] {
        let mut segs = flow(Ip::v6(), 2, 1000, 1000);
        first_change(&mut segs[0]);
        segs[1].seq = segs[0].seq.wrapping_add(segs[0].payload.len() as u32);
        let packets = build(&segs);
        assert_passed_through(&coalesce(BOTH, &packets), &packets);
    }
}

#[test]
fn a_bad_checksum_passes_through_untouched() {
    let segs = flow(Ip::v4(), 3, 1000, 1000);
    let mut packets = build(&segs);
    packets[1][100] ^= 0x55;
    assert!(!checksums_ok(&packets[1]));
    let out = coalesce(BOTH, &packets);
    assert_passed_through(&out, &packets);

    // A bad first segment does not start a run either.
    let mut packets = build(&segs);
    packets[0][100] ^= 0x55;
    let out = coalesce(BOTH, &packets);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].1, packets[0]);
    assert_eq!(split(&out[1].0, &out[1].1), packets[1..]);

    // Nor does a broken IPv4 header checksum.
    let mut packets = build(&segs);
    packets[0][10] ^= 1;
    assert_eq!(coalesce(BOTH, &packets)[0].1, packets[0]);
}

#[test]
fn a_shorter_segment_ends_the_run() {
    let mut segs = flow(Ip::v4(), 3, 1000, 1000);
    segs[1].payload.truncate(500);
    segs[2].seq = segs[1].seq + 500;
    let packets = build(&segs);
    let out = coalesce(BOTH, &packets);
    assert_eq!(out.len(), 2);
    assert_eq!(split(&out[0].0, &out[0].1), packets[..2]);
    assert_passed_through(&out[1..], &packets[2..]);
}

#[test]
fn psh_or_fin_ends_the_run() {
    for flag in [TCP_PSH, TCP_FIN] {
        let mut segs = flow(Ip::v6(), 4, 1000, 1000);
        segs[1].flags |= flag;
        let packets = build(&segs);
        let out = coalesce(BOTH, &packets);
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0].1[40 + 13],
            TCP_ACK | flag,
            "the super-packet carries the flag"
        );
        assert_eq!(split(&out[0].0, &out[0].1), packets[..2]);
        assert_eq!(split(&out[1].0, &out[1].1), packets[2..]);
    }
}

#[test]
fn a_flow_is_never_reordered() {
    // Segments 0 and 1 merge; then a packet of the flow that cannot be
    // merged (a window update); then segment 2, contiguous with 1, must not
    // jump ahead of it into the first super-packet.
    let segs = flow(Ip::v4(), 3, 1000, 1000);
    let mut update = segs[2].clone();
    update.payload.clear();
    update.window += 100;
    let packets = vec![segs[0].build(), segs[1].build(), update.build(), segs[2].build()];
    let out = coalesce(BOTH, &packets);
    assert_eq!(out.len(), 3);
    assert_eq!(split(&out[0].0, &out[0].1), packets[..2]);
    assert_passed_through(&out[1..], &packets[2..]);
}

#[test]
fn super_packets_stay_within_64_kib() {
    let segs = flow(Ip::v4(), 70, 1000, 1000);
    let packets = build(&segs);
    let out = coalesce(BOTH, &packets);
    assert_eq!(out.len(), 2);
    let mut back = Vec::new();
    for (hdr, p) in &out {
        assert!(p.len() <= 65535);
        back.extend(split(hdr, p));
    }
    assert_eq!(back, packets);
}

#[test]
fn tcp_coalescing_can_be_off() {
    let packets = build(&flow(Ip::v4(), 3, 1000, 1000));
    let out = coalesce(
        CoalesceConfig {
            tcp: false,
            udp: true,
        },
        &packets,
    );
    assert_passed_through(&out, &packets);
}

#[test]
fn a_full_coalescer_asks_for_a_flush() {
    let mut c = Coalescer::with_slots(BOTH, 2);
    let a = flow(Ip::v4(), 2, 1000, 1000);
    let mut other = a[0].clone();
    other.dst_port = 80;
    c.push(&a[0].build()).unwrap();
    c.push(&other.build()).unwrap();
    assert_eq!(c.push(&Tcp::new(Ip::v6(), 1, 10).build()), Err(PushError::Full));
    // Joining a run needs no slot.
    c.push(&a[1].build()).unwrap();
    assert_eq!(c.len(), 2);
    let mut written = Vec::new();
    c.flush(|b| {
        written.push(b.to_vec());
        Ok(())
    })
    .unwrap();
    assert_eq!(written.len(), 2);
    assert!(c.is_empty());
    c.push(&Tcp::new(Ip::v6(), 1, 10).build()).unwrap();
    assert_eq!(c.push(&vec![0x45; 70_000]), Err(PushError::TooLong(70_000)));
}

#[test]
fn a_failed_write_does_not_lose_the_others() {
    let mut c = Coalescer::new(BOTH);
    let packets = [
        Tcp::new(Ip::v4(), 1, 10).build(),
        vec![0x45, 0, 0],
        Tcp::new(Ip::v6(), 1, 10).build(),
    ];
    for p in &packets {
        c.push(p).unwrap();
    }
    let mut offered = Vec::new();
    let r = c.flush(|b| {
        offered.push(b[10..].to_vec());
        if offered.len() == 2 {
            Err(std::io::Error::other("refused"))
        } else {
            Ok(())
        }
    });
    assert!(r.is_err());
    assert_eq!(offered, packets);
    assert!(c.is_empty());
}

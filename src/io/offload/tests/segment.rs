use super::super::headers::{be16, be32, TCP_ACK, TCP_CWR, TCP_FIN, TCP_PSH};
use super::super::segment::segments;
use super::super::test_packets::{checksums_ok, partial, Ip, Tcp, Udp};
use super::super::virtio_hdr::{VirtioNetHdr, F_NEEDS_CSUM, GSO_ECN, GSO_NONE};
use super::super::OffloadError;
use super::split;

/// The segments the kernel would have sent for `whole` cut at `mss`.
fn expected_tcp(whole: &Tcp, mss: usize) -> Vec<Vec<u8>> {
    let chunks: Vec<&[u8]> = whole.payload.chunks(mss).collect();
    let last = chunks.len() - 1;
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut t = whole.clone();
            t.payload = chunk.to_vec();
            t.seq = whole.seq.wrapping_add((i * mss) as u32);
            t.ip.id = whole.ip.id.wrapping_add(i as u16);
            if i < last {
                t.flags &= !(TCP_FIN | TCP_PSH);
            }
            if i > 0 {
                t.flags &= !TCP_CWR;
            }
            t.build()
        })
        .collect()
}

#[test]
fn splits_a_tcpv4_super_packet() {
    let mut ip = Ip::v4();
    ip.id = 0xfffe; // the ID wraps
    let mut whole = Tcp::new(ip, 0xffff_f000, 3 * 1000 + 500); // and so does the sequence
    whole.flags = TCP_ACK | TCP_PSH | TCP_FIN;
    let (hdr, packet) = whole.super_packet(1000);
    let segs = split(&hdr, &packet);
    assert_eq!(segs, expected_tcp(&whole, 1000));
    for (i, s) in segs.iter().enumerate() {
        assert_eq!(usize::from(be16(s, 2)), s.len(), "IPv4 total length");
        assert_eq!(s.len(), whole.header_len() + if i == 3 { 500 } else { 1000 });
        assert_eq!(be16(s, 4), 0xfffeu16.wrapping_add(i as u16), "IPv4 ID");
        assert_eq!(
            be32(s, 24),
            0xffff_f000u32.wrapping_add(1000 * i as u32),
            "sequence"
        );
        let flags = s[20 + 13];
        assert_eq!(
            flags & (TCP_PSH | TCP_FIN) != 0,
            i == 3,
            "PSH/FIN only on the last"
        );
        assert!(checksums_ok(s), "segment {i}");
    }
}

#[test]
fn splits_a_tcpv6_super_packet_with_ecn() {
    let mut whole = Tcp::new(Ip::v6(), 7, 5 * 1200);
    whole.flags = TCP_ACK | TCP_CWR | TCP_FIN;
    let (mut hdr, packet) = whole.super_packet(1200);
    hdr.gso_type |= GSO_ECN;
    let segs = split(&hdr, &packet);
    assert_eq!(segs, expected_tcp(&whole, 1200));
    assert_eq!(segs.len(), 5);
    for (i, s) in segs.iter().enumerate() {
        assert_eq!(usize::from(be16(s, 4)) + 40, s.len(), "IPv6 payload length");
        let flags = s[40 + 13];
        assert_eq!(flags & TCP_CWR != 0, i == 0, "CWR only on the first");
        assert_eq!(flags & TCP_FIN != 0, i == 4, "FIN only on the last");
        assert!(checksums_ok(s), "segment {i}");
    }
}

#[test]
fn a_super_packet_within_one_mss_is_one_segment() {
    let whole = Tcp::new(Ip::v4(), 1, 900);
    let (hdr, packet) = whole.super_packet(1000);
    assert_eq!(split(&hdr, &packet), vec![whole.build()]);
}

#[test]
fn trusts_the_tcp_header_over_hdr_len() {
    let whole = Tcp::new(Ip::v4(), 1, 2000);
    let (mut hdr, packet) = whole.super_packet(1000);
    hdr.hdr_len = 20; // wrong, as some kernels send it
    assert_eq!(split(&hdr, &packet), expected_tcp(&whole, 1000));
}

#[test]
fn splits_udp_super_packets() {
    for ip in [Ip::v4(), Ip::v6()] {
        let whole = Udp::new(ip, 3 * 1200 + 100, 5);
        let (hdr, packet) = whole.super_packet(1200);
        let segs = split(&hdr, &packet);
        let expected: Vec<Vec<u8>> = whole
            .payload
            .chunks(1200)
            .enumerate()
            .map(|(i, chunk)| {
                let mut d = whole.clone();
                d.payload = chunk.to_vec();
                d.ip.id = whole.ip.id.wrapping_add(i as u16);
                d.build()
            })
            .collect();
        assert_eq!(segs, expected);
        for s in &segs {
            assert!(checksums_ok(s));
            let l4 = whole.ip.header_len();
            assert_eq!(usize::from(be16(s, l4 + 4)), s.len() - l4, "UDP length");
        }
    }
}

#[test]
fn gso_none_passes_the_packet_through() {
    let p = Tcp::new(Ip::v6(), 1, 100).build();
    let mut packet = p.clone();
    let segs = segments(&VirtioNetHdr::default(), &mut packet).unwrap();
    assert_eq!(segs.len(), 1);
    assert_eq!(segs.whole(), Some(&p[..]));
    // Even a non-IP packet: without offload there is nothing to check.
    assert_eq!(
        split(&VirtioNetHdr::default(), &[0xde, 0xad]),
        vec![vec![0xde, 0xad]]
    );
}

#[test]
fn gso_none_with_needs_csum_completes_the_checksum() {
    let cases = [
        Tcp::new(Ip::v4(), 1, 333).build(),
        Tcp::new(Ip::v6(), 1, 1000).build(),
        Udp::new(Ip::v4(), 77, 3).build(),
        Udp::new(Ip::v6(), 1, 3).build(),
    ];
    for complete in cases {
        let (l4, csum_offset) = match (
            complete[0] >> 4,
            complete.get(9).copied(),
            complete.get(6).copied(),
        ) {
            (4, Some(6), _) => (20, 16),
            (4, _, _) => (20, 6),
            (_, _, Some(6)) => (40, 16),
            _ => (40, 6),
        };
        let (mut hdr, mut packet) = partial(complete.clone(), GSO_NONE, l4, l4, 0, csum_offset);
        hdr.gso_size = 0;
        assert_ne!(packet, complete);
        let segs = segments(&hdr, &mut packet).unwrap();
        assert_eq!(segs.whole(), Some(&complete[..]), "completed in place");
        assert_eq!(
            split(
                &hdr,
                &partial(complete.clone(), GSO_NONE, l4, l4, 0, csum_offset).1
            ),
            vec![complete.clone()]
        );
        assert!(checksums_ok(&complete));
    }
}

#[test]
fn a_small_buffer_is_an_error_and_the_segment_stays_next() {
    let whole = Tcp::new(Ip::v4(), 1, 2500);
    let (hdr, mut packet) = whole.super_packet(1000);
    let mut segs = segments(&hdr, &mut packet).unwrap();
    assert_eq!(segs.len(), 3);
    assert_eq!(segs.max_segment_len(), whole.header_len() + 1000);
    let mut small = [0u8; 100];
    assert!(matches!(
        segs.next_into(&mut small),
        Some(Err(OffloadError::BufferTooSmall { .. }))
    ));
    let mut buf = vec![0u8; segs.max_segment_len()];
    let n = segs.next_into(&mut buf).unwrap().unwrap();
    assert_eq!(buf[..n], expected_tcp(&whole, 1000)[0][..]);
}

#[test]
fn the_partial_sum_is_what_completion_expects() {
    // The same packet split by `segments` or completed whole agree.
    let whole = Udp::new(Ip::v4(), 500, 9);
    let (mut hdr, packet) = whole.super_packet(1000);
    let as_gso = split(&hdr, &packet);
    hdr.gso_type = GSO_NONE;
    hdr.flags = F_NEEDS_CSUM;
    assert_eq!(split(&hdr, &packet), as_gso);
    assert_eq!(as_gso, vec![whole.build()]);
}

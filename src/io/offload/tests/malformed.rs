//! Inconsistent headers and packets give errors, never panics.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::super::coalesce::{CoalesceConfig, Coalescer, PushError};
use super::super::segment::{segments, MAX_SEGMENTS};
use super::super::test_packets::{Ip, Tcp, Udp};
use super::super::virtio_hdr::{VirtioNetHdr, F_NEEDS_CSUM, GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP};
use super::super::OffloadError;

fn error(hdr: &VirtioNetHdr, packet: &[u8]) -> OffloadError {
    let mut packet = packet.to_vec();
    segments(hdr, &mut packet).expect_err("must be refused")
}

#[test]
fn truncated_headers() {
    let (hdr, packet) = Tcp::new(Ip::v4(), 1, 3000).super_packet(1000);
    assert!(matches!(
        error(&hdr, &packet[..10]),
        OffloadError::HdrLenTooBig { .. }
    ));
    let mut short_hint = hdr;
    short_hint.hdr_len = 0;
    assert!(matches!(
        error(&short_hint, &packet[..10]),
        OffloadError::Truncated { .. }
    ));
    assert!(matches!(
        error(&short_hint, &packet[..30]),
        OffloadError::Truncated { .. }
    ));
    assert!(matches!(
        error(&short_hint, &[]),
        OffloadError::IpVersion { version: 0, .. }
    ));
    // The TCP header (with options) ends past the packet.
    assert!(matches!(
        error(&short_hint, &packet[..45]),
        OffloadError::TcpHeaderLen(32)
    ));
    let (hdr6, packet6) = Tcp::new(Ip::v6(), 1, 3000).super_packet(1000);
    let mut short_hint6 = hdr6;
    short_hint6.hdr_len = 0;
    assert!(matches!(
        error(&short_hint6, &packet6[..39]),
        OffloadError::Truncated { .. }
    ));
    let (hdr_udp, packet_udp) = Udp::new(Ip::v4(), 3000, 1).super_packet(1000);
    let mut short_udp = hdr_udp;
    short_udp.hdr_len = 0;
    assert!(matches!(
        error(&short_udp, &packet_udp[..25]),
        OffloadError::Truncated { .. }
    ));
}

#[test]
fn csum_start_beyond_the_end() {
    let p = Udp::new(Ip::v4(), 10, 1).build();
    let hdr = VirtioNetHdr {
        flags: F_NEEDS_CSUM,
        csum_start: 100,
        csum_offset: 6,
        ..Default::default()
    };
    assert!(matches!(
        error(&hdr, &p),
        OffloadError::CsumOutOfRange { start: 100, .. }
    ));
    // The field itself must fit: start in range, offset not.
    let hdr = VirtioNetHdr {
        flags: F_NEEDS_CSUM,
        csum_start: 20,
        csum_offset: 17,
        ..Default::default()
    };
    assert!(matches!(error(&hdr, &p), OffloadError::CsumOutOfRange { .. }));
    let hdr = VirtioNetHdr {
        flags: F_NEEDS_CSUM,
        csum_start: u16::MAX,
        csum_offset: u16::MAX,
        ..Default::default()
    };
    assert!(matches!(error(&hdr, &p), OffloadError::CsumOutOfRange { .. }));
}

#[test]
fn bad_gso_fields() {
    let (hdr, packet) = Tcp::new(Ip::v4(), 1, 3000).super_packet(1000);
    let with = |f: &dyn Fn(&mut VirtioNetHdr)| {
        let mut h = hdr;
        f(&mut h);
        error(&h, &packet)
    };
    assert_eq!(with(&|h| h.gso_size = 0), OffloadError::ZeroGsoSize);
    assert!(matches!(
        with(&|h| h.hdr_len = 5000),
        OffloadError::HdrLenTooBig { hdr_len: 5000, .. }
    ));
    assert!(matches!(
        with(&|h| h.gso_type = GSO_TCPV6),
        OffloadError::IpVersion { version: 4, .. }
    ));
    assert_eq!(
        with(&|h| h.gso_type = GSO_UDP),
        OffloadError::UnknownGsoType(GSO_UDP)
    );
    assert_eq!(with(&|h| h.gso_type = 0x42), OffloadError::UnknownGsoType(0x42));
    assert_eq!(with(&|h| h.flags = 0), OffloadError::GsoWithoutCsum(GSO_TCPV4));
    assert!(matches!(
        with(&|h| h.csum_start = 24),
        OffloadError::IpHeaderLen { .. }
    ));
    assert!(matches!(
        with(&|h| h.csum_offset = 6),
        OffloadError::CsumOffset { got: 6, want: 16 }
    ));
    assert_eq!(with(&|h| h.gso_size = 1), OffloadError::TooManySegments(3000));
    const { assert!(MAX_SEGMENTS < 3000) };

    let mut bad_offset = packet.clone();
    bad_offset[20 + 12] = 0x40; // 16-byte TCP header
    assert_eq!(error(&hdr, &bad_offset), OffloadError::TcpHeaderLen(16));
    let header_only = &packet[..Tcp::new(Ip::v4(), 1, 0).header_len()];
    assert_eq!(error(&hdr, header_only), OffloadError::NoPayload);

    let (hdr6, packet6) = Tcp::new(Ip::v6(), 1, 3000).super_packet(1000);
    let mut h = hdr6;
    h.csum_start = 20;
    assert!(matches!(error(&h, &packet6), OffloadError::IpHeaderLen { .. }));
    h.gso_type = GSO_TCPV4;
    assert!(matches!(
        error(&h, &packet6),
        OffloadError::IpVersion { version: 6, .. }
    ));

    let mut too_long = packet6.clone();
    too_long.resize(70_000, 0);
    assert_eq!(error(&hdr6, &too_long), OffloadError::TooLong(70_000));
}

/// Random headers over random bytes and over damaged real super-packets:
/// never a panic, and every segment produced fits what `max_segment_len`
/// promised.
#[test]
fn random_input_never_panics() {
    let mut rng = StdRng::seed_from_u64(0x00ff_10ad);
    let valid = [
        Tcp::new(Ip::v4(), 1, 5000).super_packet(1000),
        Tcp::new(Ip::v6(), 1, 5000).super_packet(1400),
        Udp::new(Ip::v4(), 3000, 1).super_packet(1000),
        Udp::new(Ip::v6(), 3000, 1).super_packet(700),
    ];
    let mut buf = vec![0u8; 70_000];
    let mut coalescer = Coalescer::with_slots(CoalesceConfig { tcp: true, udp: true }, 4);
    for round in 0..20_000 {
        let (mut hdr, mut packet) = if round % 2 == 0 {
            let len = rng.gen_range(0..200);
            let mut p: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            if let Some(b) = p.first_mut() {
                *b = (*b & 0x0f) | if rng.gen() { 0x40 } else { 0x60 };
            }
            let hdr = VirtioNetHdr {
                flags: rng.gen_range(0..4),
                gso_type: [GSO_NONE, 1, 3, 4, 5, 0x81, 0x84, rng.gen()][rng.gen_range(0..8)],
                hdr_len: rng.gen_range(0..100),
                gso_size: rng.gen_range(0..300),
                csum_start: rng.gen_range(0..100),
                csum_offset: rng.gen_range(0..30),
            };
            (hdr, p)
        } else {
            let (hdr, mut p) = valid[rng.gen_range(0..valid.len())].clone();
            for _ in 0..rng.gen_range(1..4) {
                let at = rng.gen_range(0..p.len().min(80));
                p[at] = rng.gen();
            }
            p.truncate(rng.gen_range(0..=p.len()));
            (hdr, p)
        };
        if round % 7 == 0 {
            hdr.gso_size = rng.gen();
        }
        if let Err(e) = coalescer.push(&packet) {
            assert_eq!(e, PushError::Full);
            coalescer
                .flush(|b| {
                    assert!(b.len() >= 10);
                    Ok(())
                })
                .unwrap();
            coalescer.push(&packet).unwrap();
        }
        let Ok(mut segs) = segments(&hdr, &mut packet) else {
            continue;
        };
        let max = segs.max_segment_len();
        let mut n = 0;
        while let Some(r) = segs.next_into(&mut buf) {
            assert!(r.unwrap() <= max);
            n += 1;
        }
        assert_eq!(n, segs.len());
    }
}

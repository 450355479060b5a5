use super::super::coalesce::{CoalesceConfig, MAX_UDP_SEGMENTS};
use super::super::headers::{be16, put_be16};
use super::super::test_packets::{Ip, Udp};
use super::super::virtio_hdr::{VirtioNetHdr, F_NEEDS_CSUM, GSO_UDP_L4};
use super::{coalesce, split, BOTH};

/// `n` datagrams of one flow, `size` bytes of payload each but the last
/// (`last`), IPv4 IDs counting up.
fn datagrams(ip: Ip, n: usize, size: usize, last: usize) -> Vec<Udp> {
    (0..n)
        .map(|i| {
            let mut ip = ip.clone();
            ip.id = ip.id.wrapping_add(i as u16);
            Udp::new(ip, if i + 1 == n { last } else { size }, i as u32 * 7919)
        })
        .collect()
}

fn build(d: &[Udp]) -> Vec<Vec<u8>> {
    d.iter().map(Udp::build).collect()
}

fn assert_passed_through(out: &[(VirtioNetHdr, Vec<u8>)], packets: &[Vec<u8>]) {
    assert_eq!(out.len(), packets.len());
    for ((hdr, p), want) in out.iter().zip(packets) {
        assert_eq!(*hdr, VirtioNetHdr::default());
        assert_eq!(p, want);
    }
}

#[test]
fn datagrams_become_one_super_packet_and_split_back() {
    for ip in [Ip::v4(), Ip::v6()] {
        let packets = build(&datagrams(ip.clone(), 5, 1200, 300));
        let out = coalesce(BOTH, &packets);
        assert_eq!(out.len(), 1);
        let (hdr, p) = &out[0];
        let l4 = ip.header_len();
        assert_eq!(hdr.flags, F_NEEDS_CSUM);
        assert_eq!(hdr.gso_type, GSO_UDP_L4);
        assert_eq!(hdr.gso_size, 1200);
        assert_eq!(usize::from(hdr.hdr_len), l4 + 8);
        assert_eq!(usize::from(hdr.csum_start), l4);
        assert_eq!(hdr.csum_offset, 6);
        assert_eq!(
            usize::from(be16(p, l4 + 4)),
            p.len() - l4,
            "UDP length of the whole"
        );
        assert_eq!(split(hdr, p), packets);
    }
}

#[test]
fn a_larger_datagram_after_a_smaller_is_not_merged() {
    let mut d = datagrams(Ip::v4(), 3, 1000, 1000);
    d[1].payload.truncate(400);
    let packets = build(&d);
    let out = coalesce(BOTH, &packets);
    assert_eq!(out.len(), 2);
    assert_eq!(split(&out[0].0, &out[0].1), packets[..2]);
    assert_passed_through(&out[1..], &packets[2..]);

    let mut d = datagrams(Ip::v6(), 2, 1000, 1000);
    d[1].payload.push(1);
    let packets = build(&d);
    assert_passed_through(&coalesce(BOTH, &packets), &packets);
}

#[test]
fn other_flows_and_fields_are_not_merged() {
    for change in [
        (|d: &mut Udp| d.dst_port += 1) as fn(&mut Udp),
        |d| d.ip.src += 1,
        |d| d.ip.ttl += 1,
        |d| d.ip.tos = 0x20,
        |d| d.ip.df = false,
    ] {
        let mut d = datagrams(Ip::v4(), 2, 1000, 1000);
        change(&mut d[1]);
        let packets = build(&d);
        assert_passed_through(&coalesce(BOTH, &packets), &packets);
    }
    let mut d = datagrams(Ip::v6(), 2, 1000, 1000);
    d[1].ip.tos = 0x20;
    let packets = build(&d);
    assert_passed_through(&coalesce(BOTH, &packets), &packets);
}

#[test]
fn datagrams_without_or_with_a_bad_checksum_pass_through() {
    let mut packets = build(&datagrams(Ip::v4(), 3, 1000, 1000));
    put_be16(&mut packets[0], 26, 0); // no checksum
    packets[1][50] ^= 1; // bad checksum
    let out = coalesce(BOTH, &packets);
    assert_eq!(out.len(), 3);
    assert_passed_through(&out, &packets);
}

#[test]
fn udp_coalescing_can_be_off() {
    let packets = build(&datagrams(Ip::v4(), 3, 1000, 1000));
    assert_passed_through(
        &coalesce(
            CoalesceConfig {
                tcp: true,
                udp: false,
            },
            &packets,
        ),
        &packets,
    );
}

#[test]
fn at_most_64_datagrams_per_super_packet() {
    let packets = build(&datagrams(Ip::v6(), MAX_UDP_SEGMENTS + 3, 100, 100));
    let out = coalesce(BOTH, &packets);
    assert_eq!(out.len(), 2);
    assert_eq!(split(&out[0].0, &out[0].1), packets[..MAX_UDP_SEGMENTS]);
    assert_eq!(split(&out[1].0, &out[1].1), packets[MAX_UDP_SEGMENTS..]);
}

#[test]
fn udp_and_tcp_of_the_same_addresses_and_ports_are_different_flows() {
    use super::super::test_packets::Tcp;
    let d = datagrams(Ip::v4(), 2, 1000, 1000);
    let mut t = Tcp::new(Ip::v4(), 5, 1000);
    t.src_port = d[0].src_port;
    t.dst_port = d[0].dst_port;
    let packets = vec![d[0].build(), t.build(), d[1].build()];
    let out = coalesce(BOTH, &packets);
    assert_eq!(out.len(), 2);
    assert_eq!(
        split(&out[0].0, &out[0].1),
        vec![packets[0].clone(), packets[2].clone()]
    );
    assert_eq!(out[1].1, packets[1]);
}

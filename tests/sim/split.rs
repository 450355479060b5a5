//! The split data path: sealing and opening through jobs that do the AEAD
//! apart from the tunnel (`Tunnel::prepare_tun_packet` + `SealJob::seal`;
//! `Tunnel::prepare_open` + `OpenJob::open` + `Tunnel::accept_opened`),
//! interoperating with the one-call entry points, with the replay window
//! checked again when a job is accepted.

use std::net::SocketAddr;
use std::time::Duration;

use mlvpn_rs::proto::session::OpenError;
use mlvpn_rs::proto::tunnel::{HEADROOM, OVERHEAD, REJECT_AFTER_TIME};
use mlvpn_rs::proto::wire::{INIT_LEN, TYPE_INITIATION};
use mlvpn_rs::proto::{OpenJob, OpenStep, SocketId};

use crate::fixtures::reconfig;
use crate::net::{ipv4_packet, packet_id, Net};
use crate::{status, two_path_net, CLIENT_IP, SERVER_IP};

const SERVER: usize = 0;
const CLIENT: usize = 1;

/// A buffer holding `packet` where `handle_tun_packet` wants it.
fn tun_buffer(packet: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; packet.len() + OVERHEAD];
    buf[HEADROOM..HEADROOM + packet.len()].copy_from_slice(packet);
    buf
}

/// Node `n` seals `packet` the one-call way, without sending it: (from,
/// to, datagram).
fn sealed(net: &mut Net, n: usize, packet: &[u8]) -> (SocketAddr, SocketAddr, Vec<u8>) {
    let mut buf = tun_buffer(packet);
    let now = net.now;
    let t = net.nodes[n]
        .tunnel
        .handle_tun_packet(&mut buf, packet.len(), now)
        .expect("a path is up");
    buf.truncate(t.len);
    (net.nodes[n].sockets[&t.socket], t.dest, buf)
}

/// The node and socket that own address `to`.
fn socket_at(net: &Net, to: SocketAddr) -> (usize, SocketId) {
    net.nodes
        .iter()
        .enumerate()
        .find_map(|(n, node)| node.sockets.iter().find(|(_, a)| **a == to).map(|(s, _)| (n, *s)))
        .expect("a node has that address")
}

/// Node `n`'s first step on `datagram`, which must yield a job.
fn prepare(net: &mut Net, n: usize, datagram: &[u8]) -> OpenJob {
    let now = net.now;
    match net.nodes[n].tunnel.prepare_open(datagram, now) {
        OpenStep::Open(job) => job,
        OpenStep::NotData => panic!("a data datagram taken for a control message"),
        OpenStep::Dropped => panic!("dropped: {:?}", net.nodes[n].tunnel.drops()),
    }
}

/// Node `n`'s last step for `job`, whose datagram arrived on `socket`
/// from `from`: the IP packet it yields at once, if any.
fn accept(
    net: &mut Net,
    n: usize,
    (socket, from): (SocketId, SocketAddr),
    job: &OpenJob,
    datagram: &mut [u8],
    opened: Result<std::ops::Range<usize>, OpenError>,
) -> Option<Vec<u8>> {
    let now = net.now;
    net.nodes[n]
        .tunnel
        .accept_opened(socket, from, job, datagram, opened, now)
        .map(|r| datagram[r].to_vec())
}

#[test]
fn packets_sealed_by_jobs_on_another_thread_are_received_by_handle_datagram() {
    let mut net = two_path_net();
    for round in 0..20u64 {
        for (n, src, dst) in [(CLIENT, CLIENT_IP, SERVER_IP), (SERVER, SERVER_IP, CLIENT_IP)] {
            // Eight packets prepared in order under the tunnel…
            let mut prepared = Vec::new();
            for i in round * 8..round * 8 + 8 {
                let packet = ipv4_packet(src, dst, i, 300 + i as usize);
                let mut buf = tun_buffer(&packet);
                let now = net.now;
                let job = net.nodes[n]
                    .tunnel
                    .prepare_tun_packet(&mut buf, packet.len(), now)
                    .expect("a path is up");
                prepared.push((job, buf));
            }
            // …sealed on another thread, last first: counters reach the
            // peer out of order, as with a sealing thread racing another.
            let sealed = std::thread::scope(|s| {
                s.spawn(move || {
                    prepared
                        .into_iter()
                        .rev()
                        .map(|(job, mut buf)| {
                            let t = job.seal(&mut buf);
                            assert_eq!(t, job.transmit());
                            assert_eq!(t.len, job.plaintext().end + 16);
                            buf.truncate(t.len);
                            (t, buf)
                        })
                        .collect::<Vec<_>>()
                })
                .join()
                .unwrap()
            });
            for (t, bytes) in sealed {
                let from = net.nodes[n].sockets[&t.socket];
                net.send_raw(from, t.dest, bytes);
            }
        }
        net.run_for(Duration::from_millis(5));
    }
    net.run_for(Duration::from_millis(100));
    for n in [SERVER, CLIENT] {
        let mut got: Vec<u64> = net.nodes[n].delivered.iter().map(|p| packet_id(p)).collect();
        got.sort();
        assert_eq!(got, (0..160).collect::<Vec<_>>(), "node {n}");
    }
    let (s, c) = (status(&net, SERVER), status(&net, CLIENT));
    assert_eq!(
        s.drops.total() + c.drops.total(),
        0,
        "{:?} {:?}",
        s.drops,
        c.drops
    );
    let tx: u64 = c.peers[0].paths.iter().map(|p| p.tx_packets).sum();
    assert!(tx >= 160, "the client's paths counted {tx} datagrams");
}

#[test]
fn a_datagram_sealed_by_handle_tun_packet_is_received_through_the_split_api() {
    let mut net = two_path_net();
    let packet = ipv4_packet(CLIENT_IP, SERVER_IP, 7, 400);
    let (from, to, mut datagram) = sealed(&mut net, CLIENT, &packet);
    let (n, socket) = socket_at(&net, to);
    assert_eq!(n, SERVER);
    let job = prepare(&mut net, SERVER, &datagram);
    let opened = job.open(&mut datagram);
    assert_eq!(opened, Ok(16..datagram.len() - 16));
    let got = accept(&mut net, SERVER, (socket, from), &job, &mut datagram, opened);
    assert_eq!(got.as_deref(), Some(&packet[..]));
    assert_eq!(status(&net, SERVER).drops.total(), 0);

    // A control message is left to handle_datagram, uncounted; junk is
    // dropped and counted as handle_datagram counts it.
    let now = net.now;
    let mut init = vec![0u8; INIT_LEN];
    init[0] = TYPE_INITIATION;
    let server = &mut net.nodes[SERVER].tunnel;
    assert!(matches!(server.prepare_open(&init, now), OpenStep::NotData));
    assert_eq!(server.drops().total(), 0);
    assert!(matches!(
        server.prepare_open(&[9, 0, 0, 0], now),
        OpenStep::Dropped
    ));
    assert_eq!(server.drops().malformed, 1);
    // The same datagram again: its counter is recorded, so it is refused
    // before any decryption.
    assert!(matches!(server.prepare_open(&datagram, now), OpenStep::Dropped));
    assert_eq!(server.drops().replayed, 1);
}

#[test]
fn a_datagram_opened_twice_at_once_is_delivered_once() {
    let mut net = two_path_net();
    let packet = ipv4_packet(SERVER_IP, CLIENT_IP, 11, 500);
    let (from, to, datagram) = sealed(&mut net, SERVER, &packet);
    let (n, socket) = socket_at(&net, to);
    assert_eq!(n, CLIENT);
    let (mut one, mut two) = (datagram.clone(), datagram);
    // Both pass the first step (nothing recorded yet) and both decrypt.
    let (job1, job2) = (prepare(&mut net, CLIENT, &one), prepare(&mut net, CLIENT, &two));
    assert_eq!(job1.counter(), job2.counter());
    let (opened1, opened2) = (job1.open(&mut one), job2.open(&mut two));
    assert!(opened1.is_ok() && opened2.is_ok());
    let got1 = accept(&mut net, CLIENT, (socket, from), &job1, &mut one, opened1);
    let got2 = accept(&mut net, CLIENT, (socket, from), &job2, &mut two, opened2);
    assert_eq!(got1.as_deref(), Some(&packet[..]));
    assert_eq!(got2, None);
    let drops = status(&net, CLIENT).drops;
    assert_eq!((drops.replayed, drops.total()), (1, 1), "{drops:?}");
    net.run_for(Duration::from_millis(50));
    assert!(net.nodes[CLIENT].delivered.iter().all(|p| packet_id(p) != 11));
}

#[test]
fn a_tampered_datagram_is_an_auth_failure_and_leaves_the_replay_window() {
    let mut net = two_path_net();
    let packet = ipv4_packet(CLIENT_IP, SERVER_IP, 3, 200);
    let (from, to, mut datagram) = sealed(&mut net, CLIENT, &packet);
    let (_, socket) = socket_at(&net, to);
    let mut tampered = datagram.clone();
    tampered[HEADROOM + 20] ^= 0x40;

    let job = prepare(&mut net, SERVER, &tampered);
    let opened = job.open(&mut tampered);
    assert_eq!(opened, Err(OpenError::Auth));
    assert_eq!(
        accept(&mut net, SERVER, (socket, from), &job, &mut tampered, opened),
        None
    );
    let drops = status(&net, SERVER).drops;
    assert_eq!((drops.auth_failed, drops.total()), (1, 1), "{drops:?}");

    // The genuine datagram, same counter, still gets through.
    let job = prepare(&mut net, SERVER, &datagram);
    let opened = job.open(&mut datagram);
    let got = accept(&mut net, SERVER, (socket, from), &job, &mut datagram, opened);
    assert_eq!(got.as_deref(), Some(&packet[..]));
    assert_eq!(status(&net, SERVER).drops.total(), 1);
}

#[test]
fn an_open_job_whose_session_went_away_is_dropped_and_counted() {
    let mut net = two_path_net();
    // Removed by a reload (the peer is gone) between the steps.
    let packet = ipv4_packet(CLIENT_IP, SERVER_IP, 5, 200);
    let (from, to, mut datagram) = sealed(&mut net, CLIENT, &packet);
    let (_, socket) = socket_at(&net, to);
    let job = prepare(&mut net, SERVER, &datagram);
    let now = net.now;
    let report = net.nodes[SERVER]
        .tunnel
        .reconfigure(reconfig(vec![], vec![], &[]), now);
    assert_eq!(report.peers_removed, 1);
    opened_then_dropped_as_unknown(&mut net, (socket, from), &job, &mut datagram);
    assert!(net.nodes[SERVER].delivered.is_empty());

    // Expired by the timers between the steps.
    let mut net = two_path_net();
    let (from, to, mut datagram) = sealed(&mut net, CLIENT, &packet);
    let (_, socket) = socket_at(&net, to);
    let job = prepare(&mut net, SERVER, &datagram);
    net.now += REJECT_AFTER_TIME;
    let now = net.now;
    net.nodes[SERVER].tunnel.handle_timeout(now);
    opened_then_dropped_as_unknown(&mut net, (socket, from), &job, &mut datagram);
}

/// `job` still decrypts (it holds the key), but the server no longer has
/// its session: accepting it is one drop, counted as an unknown index.
fn opened_then_dropped_as_unknown(
    net: &mut Net,
    at: (SocketId, SocketAddr),
    job: &OpenJob,
    datagram: &mut [u8],
) {
    let opened = job.open(datagram);
    assert!(opened.is_ok());
    assert_eq!(accept(net, SERVER, at, job, datagram, opened), None);
    let drops = status(net, SERVER).drops;
    assert_eq!((drops.unknown_index, drops.total()), (1, 1), "{drops:?}");
}

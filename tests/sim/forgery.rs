//! An attacker on one uplink who sees the client's initiations there (they
//! travel in the clear) and forges answers: responses with a valid `mac1`
//! (keyed by the client's public key, which is no secret) and cookie
//! replies, on that path and sprayed at the other path's socket. Every
//! path must keep handshaking and rekeying as if the attacker were not
//! there.

use std::net::SocketAddr;
use std::time::Duration;

use mlvpn_rs::proto::cookie::CookieChecker;
use mlvpn_rs::proto::mac::Mac1Key;
use mlvpn_rs::proto::tunnel::REKEY_AFTER_TIME;
use mlvpn_rs::proto::wire::{self, MAC_LEN, RESP_LEN, TYPE_INITIATION, TYPE_RESPONSE};

use crate::net::{ipv4_packet, Rng};
use crate::{addr, key, states, status, two_path_net, CLIENT_IP, SERVER_IP};

/// A response to the client's handshake `receiver`, garbage inside, with
/// a valid `mac1`.
fn forged_response(rng: &mut Rng, receiver: u32) -> Vec<u8> {
    let mut m = vec![0u8; RESP_LEN];
    m[0] = TYPE_RESPONSE;
    m[4..8].copy_from_slice(&(rng.next() as u32).to_le_bytes());
    m[8..12].copy_from_slice(&receiver.to_le_bytes());
    for b in &mut m[12..RESP_LEN - 2 * MAC_LEN] {
        *b = rng.next() as u8;
    }
    let mac1_at = RESP_LEN - 2 * MAC_LEN;
    let mac = Mac1Key::for_receiver(&key(2).public_key()).compute(&m[..mac1_at]);
    m[mac1_at..mac1_at + MAC_LEN].copy_from_slice(&mac);
    m
}

#[test]
fn forged_responses_on_one_uplink_stop_no_path_from_rekeying() {
    let mut net = two_path_net();
    assert_eq!(states(&status(&net, 1)), ["up", "up"]);
    let (dsl, lte) = (addr("10.101.0.1:40000"), addr("10.102.0.1:40001"));
    let server_dsl = addr("10.101.0.2:5080");
    // The attacker can make cookie replies too: their key comes from the
    // server's public key.
    let mut cookies = CookieChecker::new(&key(1).public_key(), [9; 32]);
    let mut rng = Rng::new(7);
    net.capturing = true;
    let mut forged = 0u64;
    let mut answered = 0u64;
    let end = net.now + REKEY_AFTER_TIME * 3 + Duration::from_secs(30);
    let mut i = 0u64;
    while net.now < end {
        net.tun_send(1, &ipv4_packet(CLIENT_IP, SERVER_IP, i, 200));
        net.tun_send(0, &ipv4_packet(SERVER_IP, CLIENT_IP, i, 200));
        i += 1;
        net.run_for(Duration::from_millis(20));
        let captured: Vec<(SocketAddr, Vec<u8>)> = net
            .capture
            .drain(..)
            .filter(|(from, _, b)| *from == dsl && b.first() == Some(&TYPE_INITIATION))
            .map(|(_, to, b)| (to, b))
            .collect();
        for (_, init) in captured {
            let Ok(wire::Message::Initiation(m)) = wire::decode(&init) else {
                panic!("the client sent a malformed initiation")
            };
            // On the uplink it watches, ahead of the server's answer.
            for _ in 0..3 {
                net.send_raw(server_dsl, dsl, forged_response(&mut rng, m.sender));
            }
            let reply = cookies.seal_reply(&[0x42; MAC_LEN], m.sender, m.mac1);
            for _ in 0..3 {
                net.send_raw(server_dsl, dsl, reply.to_vec());
            }
            // And at the other uplink's socket, with the indices a
            // sequential allocator would have given its handshakes.
            for d in 0..8u32 {
                for r in [m.sender.wrapping_add(d), m.sender.wrapping_sub(d)] {
                    net.send_raw(server_dsl, lte, forged_response(&mut rng, r));
                }
            }
            forged += 3 + 3 + 16;
            answered += 1;
        }
        assert_eq!(
            states(&status(&net, 1)),
            ["up", "up"],
            "after {:?} and {forged} forgeries",
            net.now - end + REKEY_AFTER_TIME * 3 + Duration::from_secs(30)
        );
    }
    let c = status(&net, 1);
    // One rekey per path in the window at least (the first handshake came
    // before the attacker started watching).
    assert!(answered >= 3, "the attacker answered {answered} initiations");
    for p in &c.peers[0].paths {
        // The first handshake, then a rekey every REKEY_AFTER_TIME.
        assert!(
            p.handshakes >= 4,
            "{} completed {} handshakes",
            p.name,
            p.handshakes
        );
    }
    assert!(c.drops.handshake_invalid >= forged / 2, "{:?}", c.drops);
}

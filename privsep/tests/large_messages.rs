//! Hand-over and reload messages larger than one datagram cross the real
//! channel in chunks, with their descriptors, in both the blocking (worker
//! start-up) and the async (reload) receive.

use std::io::{Read, Seek, Write};
use std::os::fd::AsFd;

use mlvpn_privsep::bulk::MAX_BULK;
use mlvpn_privsep::channel::{self, AsyncChannel};
use mlvpn_privsep::msg::Reply;

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ (i >> 16) as u8).collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_multi_megabyte_hand_over_arrives_whole_with_its_descriptors() {
    let (parent, worker) = channel::pair().unwrap();
    let sent = payload(5_000_000 + 123);
    let expected = sent.clone();
    let sender = std::thread::spawn(move || {
        runtime().block_on(async move {
            let chan = AsyncChannel::new(parent).unwrap();
            let mut f = tempfile::tempfile().unwrap();
            f.write_all(b"passed along").unwrap();
            chan.send_bulk(|len| Reply::Handover { len }, &sent, &[f.as_fd()])
                .await
                .unwrap();
        })
    });
    // The worker's side: blocking, as at start-up.
    let mut buf = channel::buffer();
    let (n, fds) = channel::recv(worker.as_fd(), &mut buf).unwrap();
    let Ok(Reply::Handover { len }) = Reply::decode(&buf[..n]) else {
        panic!("expected a hand-over header");
    };
    assert_eq!(len as usize, expected.len());
    assert_eq!(fds.len(), 1, "the descriptors come with the header");
    let got = channel::recv_chunks(worker.as_fd(), len, &mut buf).unwrap();
    assert!(got[..] == expected[..], "the payload arrives unchanged");
    assert!(buf.iter().all(|b| *b == 0), "the receive buffer is wiped");
    let mut f = std::fs::File::from(fds.into_iter().next().unwrap());
    f.rewind().unwrap();
    let mut text = String::new();
    f.read_to_string(&mut text).unwrap();
    assert_eq!(text, "passed along");
    sender.join().unwrap();
}

#[test]
fn a_reload_arrives_whole_on_the_async_side_and_the_sender_refuses_over_the_limit() {
    let (parent, worker) = channel::pair().unwrap();
    let sent = payload(1_300_000);
    let expected = sent.clone();
    let sender = std::thread::spawn(move || {
        runtime().block_on(async move {
            let chan = AsyncChannel::new(parent).unwrap();
            let too_big = vec![0u8; MAX_BULK + 1];
            let e = chan
                .send_bulk(|len| Reply::Reload { len }, &too_big, &[])
                .await
                .unwrap_err();
            assert!(e.to_string().contains("exceeds the limit of 32 MiB"), "{e}");
            chan.send_bulk(|len| Reply::Reload { len }, &sent, &[])
                .await
                .unwrap();
        })
    });
    runtime().block_on(async move {
        let chan = AsyncChannel::new(worker).unwrap();
        let mut buf = channel::buffer();
        let (n, fds) = chan.recv(&mut buf).await.unwrap();
        assert!(fds.is_empty());
        let Ok(Reply::Reload { len }) = Reply::decode(&buf[..n]) else {
            panic!("expected a reload header (nothing of the refused message was sent)");
        };
        let got = chan.recv_chunks(len, &mut buf).await.unwrap();
        assert!(got[..] == expected[..]);
    });
    sender.join().unwrap();
}

#[test]
fn a_hand_over_cut_short_by_the_parent_is_an_error() {
    let (parent, worker) = channel::pair().unwrap();
    // A header that promises more than ever comes, then the parent is gone.
    channel::send(parent.as_fd(), &Reply::Handover { len: 200_000 }.encode(), &[]).unwrap();
    drop(parent);
    let mut buf = channel::buffer();
    let (n, _) = channel::recv(worker.as_fd(), &mut buf).unwrap();
    let Ok(Reply::Handover { len }) = Reply::decode(&buf[..n]) else {
        panic!("header");
    };
    let e = channel::recv_chunks(worker.as_fd(), len, &mut buf).unwrap_err();
    assert!(e.to_string().contains("ended after 0 of 200000 bytes"), "{e}");
}

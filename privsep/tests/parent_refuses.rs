//! A compromised worker talks to the parent over the real channel: every
//! malformed or out-of-policy request is refused and changes nothing; valid
//! ones are carried out.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};

use mlvpn_privsep::channel::{self, AsyncChannel};
use mlvpn_privsep::msg::{HookEvent, Reply, Request, VERSION};
use mlvpn_privsep::policy::{serve, AnswerLog, Policy, Privileged};
use mlvpn_privsep::startup::{StartupFailure, StartupStep};

#[derive(Default)]
struct Calls {
    hooks: Vec<(HookEvent, String)>,
    rebinds: Vec<u8>,
}

struct Mock(Arc<Mutex<Calls>>);

impl Privileged for Mock {
    fn run_hook(&mut self, event: HookEvent, path: &str) {
        self.0.lock().unwrap().hooks.push((event, path.to_string()));
    }
    fn rebind(&mut self, path: u8) -> std::io::Result<OwnedFd> {
        self.0.lock().unwrap().rebinds.push(path);
        Ok(OwnedFd::from(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()))
    }
}

fn ask(worker: &OwnedFd, bytes: &[u8], fds: &[std::os::fd::BorrowedFd<'_>]) -> (Reply, usize) {
    channel::send(worker.as_fd(), bytes, fds).unwrap();
    let mut buf = channel::buffer();
    let (n, got) = channel::recv(worker.as_fd(), &mut buf).unwrap();
    (Reply::decode(&buf[..n]).unwrap(), got.len())
}

/// The parent's loop on its own thread, as the daemon runs it, until `stop`.
fn spawn_parent(
    parent: OwnedFd,
    paths: &'static [&'static str],
    mock: Mock,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::thread::JoinHandle<std::io::Result<AnswerLog>> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let chan = AsyncChannel::new(parent).unwrap();
            let policy = Policy {
                paths: paths.iter().map(|p| p.to_string()).collect(),
                up_script: true,
                down_script: false,
            };
            let mut mock = mock;
            serve(&chan, &policy, &mut mock, stop).await
        })
    })
}

fn refused(r: (Reply, usize)) -> String {
    match r {
        (Reply::Refused(why), 0) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn bad_requests_are_refused_valid_ones_served() {
    let (parent, worker) = channel::pair().unwrap();
    let calls = Arc::new(Mutex::new(Calls::default()));
    let mock = Mock(calls.clone());
    let server = spawn_parent(parent, &["dsl", "lte"], mock, std::future::pending());

    // Malformed envelopes.
    assert!(refused(ask(&worker, b"\x00", &[])).contains("malformed"));
    assert!(refused(ask(&worker, &[0, 9, VERSION, 2, 0], &[])).contains("malformed"));
    assert!(refused(ask(&worker, &[0, 3, 99, 2, 0], &[])).contains("version"));
    assert!(refused(ask(&worker, &[0, 3, VERSION, 0x42, 0], &[])).contains("kind"));
    assert!(refused(ask(&worker, &[0, 4, VERSION, 2, 0, 0], &[])).contains("field"));
    assert!(refused(ask(&worker, &[0, 4, VERSION, 1, 9, 0], &[])).contains("event"));
    assert!(refused(ask(&worker, &vec![0xff; 5000], &[])).contains("malformed"));
    // Well-formed but out of policy.
    assert!(refused(ask(&worker, &Request::Rebind { path: 2 }.encode(), &[])).contains("path index 2"));
    let unknown = Request::RunHook {
        event: HookEvent::PathUp,
        path: "wifi".into(),
    };
    assert!(
        refused(ask(&worker, &unknown.encode(), &[])).contains("\"wifi\" is not a configured client path")
    );
    let hook_down = Request::RunHook {
        event: HookEvent::PathDown,
        path: "dsl".into(),
    };
    assert!(refused(ask(&worker, &hook_down.encode(), &[])).contains("no down_script"));
    let up = Request::RunHook {
        event: HookEvent::PathUp,
        path: "lte".into(),
    };
    let stray = std::fs::File::open("/dev/null").unwrap();
    assert!(refused(ask(&worker, &up.encode(), &[stray.as_fd()])).contains("descriptors"));
    assert!(calls.lock().unwrap().hooks.is_empty() && calls.lock().unwrap().rebinds.is_empty());

    // Valid requests are carried out.
    assert_eq!(ask(&worker, &up.encode(), &[]), (Reply::Ok, 0));
    assert_eq!(
        ask(&worker, &Request::Rebind { path: 0 }.encode(), &[]),
        (Reply::Socket { path: 0 }, 1)
    );
    {
        let c = calls.lock().unwrap();
        assert_eq!(c.hooks, vec![(HookEvent::PathUp, "lte".to_string())]);
        assert_eq!(c.rebinds, vec![0]);
    }
    // The worker going away ends the loop cleanly.
    drop(worker);
    server.join().unwrap().unwrap();
}

#[test]
fn a_start_up_failure_ends_the_loop_with_step_and_errno_also_on_a_server() {
    let (parent, worker) = channel::pair().unwrap();
    // A server: the worker may name no path.
    let server = spawn_parent(parent, &[], Mock(Arc::default()), std::future::pending());
    let report = Request::StartupFailed(StartupFailure {
        step: StartupStep::BoundingSet,
        errno: 1,
    });
    channel::send(worker.as_fd(), &report.encode(), &[]).unwrap();
    let err = server.join().unwrap().unwrap_err();
    assert_eq!(
        err.to_string(),
        "worker: dropping the capability bounding set: EPERM (Operation not permitted)"
    );
}

#[test]
fn a_worker_that_floods_requests_and_never_reads_cannot_stall_the_parent() {
    let (parent, worker) = channel::pair().unwrap();
    let calls = Arc::new(Mutex::new(Calls::default()));
    let mock = Mock(calls.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stop = async {
        let _ = stop_rx.await;
    };
    let parent_loop = spawn_parent(parent, &["dsl"], mock, stop);
    // Many more requests than the worker's receive queue holds replies for;
    // the worker reads none. Its sends give up after 5 s if the parent
    // stops reading (as it did when it waited for each reply to go out).
    let timeout = nix::sys::time::TimeVal::new(5, 0);
    nix::sys::socket::setsockopt(&worker, nix::sys::socket::sockopt::SendTimeout, &timeout).unwrap();
    let up = Request::RunHook {
        event: HookEvent::PathUp,
        path: "dsl".into(),
    }
    .encode();
    let mut sent = 0;
    for _ in 0..2000 {
        if channel::send(worker.as_fd(), &up, &[]).is_err() {
            break;
        }
        sent += 1;
    }
    // Another event: the parent's loop must still see it.
    let _ = stop_tx.send(());
    // Bounded wait: a stalled parent fails the test rather than hanging it.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || done_tx.send(parent_loop.join().unwrap()));
    let log = done_rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the parent's loop still answers another event")
        .unwrap();
    assert_eq!(sent, 2000, "the parent kept reading requests");
    // (Those still queued when the stop came are not carried out.)
    let carried_out = calls.lock().unwrap().hooks.len();
    assert!(carried_out > 0 && carried_out <= 2000, "{carried_out}");
    assert!(
        log.dropped_replies > 0 && log.dropped_replies < 2000,
        "replies the worker did not read were dropped and counted: {}",
        log.dropped_replies
    );
    drop(worker);
}

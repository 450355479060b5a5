//! The `privsep` target: the messages between the privileged parent and
//! the worker, and the parent's policy check.

use mlvpn_privsep::bulk::Reassembly;
use mlvpn_privsep::msg::{HookEvent, Reply, Request};
use mlvpn_privsep::policy::{self, Policy};

/// `Request::decode`, `Reply::decode`, a chunk of a large message, and
/// `policy::check` under a few policies: what decodes re-encodes to the
/// same bytes, and `check` allows exactly what the policy says.
pub fn privsep(data: &[u8]) {
    // As the first chunk of a large message: taken whole or refused.
    let mut r = Reassembly::new(100_000).expect("under the limit");
    if r.push(data, 0).is_ok() {
        assert!(data.len() > 8, "a chunk has an envelope and a number");
    }
    let request = Request::decode(data);
    match &request {
        Ok(r) => {
            assert_eq!(r.encode(), data, "request re-encodes differently");
            assert_eq!(Request::decode(&r.encode()).as_ref(), Ok(r));
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    match Reply::decode(data) {
        Ok(r) => {
            let enc = r.encode();
            match &r {
                // A refusal is cut to 200 bytes (on a character boundary).
                Reply::Refused(why) if why.len() > 200 => match Reply::decode(&enc) {
                    Ok(Reply::Refused(cut)) => {
                        assert!(cut.len() <= 200 && why.starts_with(&cut), "{cut:?}")
                    }
                    other => panic!("refusal re-decodes as {other:?}"),
                },
                _ => {
                    assert_eq!(enc, data, "reply re-encodes differently");
                    assert_eq!(Reply::decode(&enc).as_ref(), Ok(&r));
                }
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    let policies = [
        Policy {
            paths: Vec::new(),
            up_script: true,
            down_script: true,
        },
        Policy {
            paths: vec!["dsl".into(), "lte".into()],
            up_script: true,
            down_script: false,
        },
        Policy {
            paths: (0..256).map(|i| format!("p{i}")).collect(),
            up_script: false,
            down_script: true,
        },
    ];
    for p in &policies {
        for fds in [0, 1] {
            let verdict = policy::check(p, data, fds);
            #[allow(unreachable_patterns)]
            let allowed = match &request {
                Ok(_) if fds > 0 => Some(false),
                Err(_) => Some(false),
                Ok(Request::RunHook { event, path }) => Some(
                    p.paths.contains(path)
                        && match event {
                            HookEvent::PathUp => p.up_script,
                            HookEvent::PathDown => p.down_script,
                        },
                ),
                Ok(Request::Rebind { path }) => Some(usize::from(*path) < p.paths.len()),
                // The worker's last word asks for nothing: always heard.
                Ok(Request::StartupFailed(_)) => Some(true),
                Ok(_) => None,
            };
            match (verdict, allowed) {
                (Ok(r), Some(true)) => assert_eq!(Ok(&r), request.as_ref()),
                (Err(why), Some(false)) => assert!(!why.to_string().is_empty()),
                (v, Some(a)) => panic!("policy {p:?}, {fds} fds: check gave {v:?}, expected allowed={a}"),
                (_, None) => {}
            }
        }
    }
}

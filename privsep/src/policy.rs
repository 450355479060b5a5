//! What the parent agrees to do for the worker, and the loop that answers
//! the worker's requests.
//!
//! Every request is decoded strictly ([`crate::msg`]) and then checked
//! against the configuration: the path index must name a configured client
//! path, a hook must be configured. Anything else is refused, logged (rate
//! limited) and changes nothing.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use tracing::warn;

use crate::channel::{buffer, AsyncChannel};
use crate::msg::{HookEvent, Reply, Request};
use crate::startup::StartupFailure;

/// What the configuration allows.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Number of configured client paths (path indices are `0..paths`);
    /// 0 on a server, whose paths are not named by the worker.
    pub paths: usize,
    pub up_script: bool,
    pub down_script: bool,
}

/// The privileged operations, implemented by the daemon's parent (and by
/// tests).
pub trait Privileged {
    /// Starts the hook for `event` on `path` (must not block).
    fn run_hook(&mut self, event: HookEvent, path: u8);
    /// Binds a fresh socket for `path`.
    fn rebind(&mut self, path: u8) -> Result<OwnedFd, String>;
}

/// Decodes and checks one request.
pub fn check(policy: &Policy, bytes: &[u8], fds: usize) -> Result<Request, String> {
    if fds > 0 {
        return Err(format!(
            "request carried {fds} descriptors; the worker sends none"
        ));
    }
    let req = Request::decode(bytes).map_err(|e| format!("malformed request: {e}"))?;
    let path = match req {
        Request::RunHook { path, .. } | Request::Rebind { path } => path,
        // The worker's last word, on a server too: asks for nothing.
        Request::StartupFailed(_) => return Ok(req),
    };
    if usize::from(path) >= policy.paths {
        return Err(format!(
            "path index {path} is not a configured client path (have {})",
            policy.paths
        ));
    }
    match req {
        Request::RunHook {
            event: HookEvent::PathUp,
            ..
        } if !policy.up_script => Err("no up_script configured".into()),
        Request::RunHook {
            event: HookEvent::PathDown,
            ..
        } if !policy.down_script => Err("no down_script configured".into()),
        r => Ok(r),
    }
}

/// Rate limit for refusal log lines: at most 10 per second, so a
/// compromised worker cannot flood the log.
#[derive(Debug)]
pub struct RefusalLog {
    window: Instant,
    count: u32,
}

impl Default for RefusalLog {
    fn default() -> Self {
        RefusalLog {
            window: Instant::now(),
            count: 0,
        }
    }
}

impl RefusalLog {
    fn log(&mut self, why: &str) {
        if self.window.elapsed() > Duration::from_secs(1) {
            *self = RefusalLog::default();
        }
        self.count += 1;
        if self.count <= 10 {
            warn!("refused worker request: {why}");
        }
    }
}

/// What answering a request came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Answered {
    /// Carried out or refused; the reply was sent.
    Done,
    /// The worker reports that it could not start (it exits next).
    WorkerFailed(StartupFailure),
}

/// Checks and carries out one request (`bytes` and the descriptors that
/// came with it), then sends the reply.
pub async fn answer(
    chan: &AsyncChannel,
    policy: &Policy,
    ops: &mut impl Privileged,
    bytes: &[u8],
    fds: Vec<OwnedFd>,
    refusals: &mut RefusalLog,
) -> std::io::Result<Answered> {
    let reply = match check(policy, bytes, fds.len()) {
        Ok(Request::StartupFailed(f)) => return Ok(Answered::WorkerFailed(f)),
        Ok(Request::RunHook { event, path }) => {
            ops.run_hook(event, path);
            Reply::Ok
        }
        Ok(Request::Rebind { path }) => match ops.rebind(path) {
            Ok(fd) => {
                chan.send(&Reply::Socket { path }.encode(), &[fd.as_fd()]).await?;
                return Ok(Answered::Done);
            }
            Err(e) => Reply::Refused(format!("rebind failed: {e}")),
        },
        Err(why) => {
            refusals.log(&why);
            Reply::Refused(why)
        }
    };
    drop(fds);
    chan.send(&reply.encode(), &[]).await?;
    Ok(Answered::Done)
}

/// Answers requests until the worker closes its end (returns Ok), reports
/// a failed start-up (an error naming step and errno) or the channel fails.
pub async fn serve(chan: &AsyncChannel, policy: &Policy, ops: &mut impl Privileged) -> std::io::Result<()> {
    let mut buf = buffer();
    let mut refusals = RefusalLog::default();
    loop {
        let (n, fds) = chan.recv(&mut buf).await?;
        if n == 0 && fds.is_empty() {
            return Ok(());
        }
        if let Answered::WorkerFailed(f) = answer(chan, policy, ops, &buf[..n], fds, &mut refusals).await? {
            return Err(std::io::Error::other(f.to_string()));
        }
    }
}

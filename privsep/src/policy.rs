//! What the parent agrees to do for the worker, and the loop that answers
//! the worker's requests.
//!
//! Every request is decoded strictly ([`crate::msg`]) and then checked
//! against the configuration: the path index must name a configured client
//! path, a hook must be configured. Anything else is refused, logged (rate
//! limited) and changes nothing.

use std::future::Future;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use tracing::warn;

use crate::channel::{buffer, AsyncChannel};
use crate::log_limit::{suppressed_note, LogLimit};
use crate::msg::{HookEvent, MsgError, Reply, Request};
use crate::startup::StartupFailure;

/// What the configuration allows.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The configured client paths' names, in config order (a `Rebind`
    /// names a path by its position in this list); empty on a server,
    /// whose paths the worker never names.
    pub paths: Vec<String>,
    pub up_script: bool,
    pub down_script: bool,
}

/// The privileged operations, implemented by the daemon's parent (and by
/// tests).
pub trait Privileged {
    /// Starts the hook for `event` on `path` (must not block).
    fn run_hook(&mut self, event: HookEvent, path: &str);
    /// Binds a fresh socket for `path`.
    fn rebind(&mut self, path: u8) -> std::io::Result<OwnedFd>;
}

/// Why the parent refuses a worker's request; its text goes back to the
/// worker in [`Reply::Refused`] and into the parent's log.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("request carried {0} descriptors; the worker sends none")]
    Descriptors(usize),
    #[error("malformed request: {0}")]
    Malformed(#[source] MsgError),
    #[error("path index {path} is not a configured client path (have {paths})")]
    UnknownPath { path: u8, paths: usize },
    #[error("path {0:?} is not a configured client path")]
    UnknownPathName(String),
    #[error("no up_script configured")]
    NoUpScript,
    #[error("no down_script configured")]
    NoDownScript,
}

/// Decodes and checks one request.
pub fn check(policy: &Policy, bytes: &[u8], fds: usize) -> Result<Request, Refusal> {
    if fds > 0 {
        return Err(Refusal::Descriptors(fds));
    }
    let req = Request::decode(bytes).map_err(Refusal::Malformed)?;
    match &req {
        Request::RunHook { path, .. } if !policy.paths.contains(path) => {
            return Err(Refusal::UnknownPathName(path.clone()))
        }
        Request::Rebind { path } if usize::from(*path) >= policy.paths.len() => {
            return Err(Refusal::UnknownPath {
                path: *path,
                paths: policy.paths.len(),
            })
        }
        // The worker's last word, on a server too: asks for nothing.
        Request::StartupFailed(_) => return Ok(req),
        _ => {}
    }
    match req {
        Request::RunHook {
            event: HookEvent::PathUp,
            ..
        } if !policy.up_script => Err(Refusal::NoUpScript),
        Request::RunHook {
            event: HookEvent::PathDown,
            ..
        } if !policy.down_script => Err(Refusal::NoDownScript),
        r => Ok(r),
    }
}

/// What the parent logs about the worker's requests (at most 10 lines a
/// second: a compromised worker cannot flood the log) and counts.
#[derive(Debug)]
pub struct AnswerLog {
    lines: LogLimit,
    /// Requests refused.
    pub refused: u64,
    /// Replies not sent because the worker had not read the earlier ones.
    pub dropped_replies: u64,
}

impl Default for AnswerLog {
    fn default() -> Self {
        AnswerLog {
            lines: LogLimit::new(10),
            refused: 0,
            dropped_replies: 0,
        }
    }
}

impl AnswerLog {
    fn refused(&mut self, why: &str) {
        self.refused += 1;
        if let Some(n) = self.lines.allow(Instant::now()) {
            warn!("refused worker request: {why}{}", suppressed_note(n));
        }
    }

    fn reply_dropped(&mut self) {
        self.dropped_replies += 1;
        if let Some(n) = self.lines.allow(Instant::now()) {
            warn!(
                "the worker does not read its replies: {} dropped so far{}",
                self.dropped_replies,
                suppressed_note(n)
            );
        }
    }
}

/// What answering a request came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Answered {
    /// Carried out or refused; the reply sent, or dropped (counted) if
    /// the worker had not read the earlier ones.
    Done,
    /// The worker reports that it could not start (it exits next).
    WorkerFailed(StartupFailure),
}

/// Checks and carries out one request (`bytes` and the descriptors that
/// came with it), then sends the reply without waiting: a worker that
/// floods requests and never reads the replies fills its receive queue,
/// and the parent must not then stop watching signals and the worker's
/// exit. Such replies are dropped and counted; the worker acts on none of
/// them except a socket (which it never asks for yet).
pub fn answer(
    chan: &AsyncChannel,
    policy: &Policy,
    ops: &mut impl Privileged,
    bytes: &[u8],
    fds: Vec<OwnedFd>,
    log: &mut AnswerLog,
) -> std::io::Result<Answered> {
    let reply = match check(policy, bytes, fds.len()) {
        Ok(Request::StartupFailed(f)) => return Ok(Answered::WorkerFailed(f)),
        Ok(Request::RunHook { event, path }) => {
            ops.run_hook(event, &path);
            Reply::Ok
        }
        Ok(Request::Rebind { path }) => match ops.rebind(path) {
            Ok(fd) => {
                if !chan.try_send(&Reply::Socket { path }.encode(), &[fd.as_fd()])? {
                    log.reply_dropped();
                }
                return Ok(Answered::Done);
            }
            Err(e) => Reply::Refused(format!("rebind failed: {e}")),
        },
        Err(why) => {
            let why = why.to_string();
            log.refused(&why);
            Reply::Refused(why)
        }
    };
    drop(fds);
    if !chan.try_send(&reply.encode(), &[])? {
        log.reply_dropped();
    }
    Ok(Answered::Done)
}

/// Answers requests until `stop` completes or the worker closes its end
/// (returns what it counted), the worker reports a failed start-up (an
/// error naming step and errno) or the channel fails.
pub async fn serve(
    chan: &AsyncChannel,
    policy: &Policy,
    ops: &mut impl Privileged,
    stop: impl Future<Output = ()>,
) -> std::io::Result<AnswerLog> {
    let mut buf = buffer();
    let mut log = AnswerLog::default();
    let mut stop = std::pin::pin!(stop);
    loop {
        let (n, fds) = tokio::select! {
            r = chan.recv(&mut buf) => r?,
            _ = &mut stop => return Ok(log),
        };
        if n == 0 && fds.is_empty() {
            return Ok(log);
        }
        if let Answered::WorkerFailed(f) = answer(chan, policy, ops, &buf[..n], fds, &mut log)? {
            return Err(std::io::Error::other(f.to_string()));
        }
    }
}

//! Up/down hook scripts, run by the parent with a fixed environment and a
//! time limit, at a pace the parent controls ([`HookScheduler`]).
//!
//! The script path comes from the config (trusted); the environment holds
//! only values from the config and the path index the worker named (checked
//! against the config): nothing from the network, no shell.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::hook_queue::{Dropped, HookKey, HookLimits, HookQueue};
use crate::log_limit::{suppressed_note, LogLimit};
use crate::trusted_file;

/// Why a hook did not run to a successful end: one line for the log.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The script (or a directory above it) is not root's own.
    #[error("not run: {0}")]
    NotRun(#[source] trusted_file::Untrusted),
    #[error("{}: {source}", .script.display())]
    Start {
        script: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} exited with {status}", .script.display())]
    Failed { script: PathBuf, status: ExitStatus },
    #[error("{}: {source}", .script.display())]
    Wait {
        script: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} did not finish within {limit:?}; killed", .script.display())]
    TimedOut { script: PathBuf, limit: Duration },
}

/// Runs `script` with exactly `env` (plus a fixed PATH), waits at most
/// `limit`, kills it past that. The error is a one-line outcome for the log.
/// A script (or a directory above it) that another user owns or could
/// write is not run: root would run their code.
pub async fn run(script: &Path, env: &[(String, String)], limit: Duration) -> Result<(), HookError> {
    trusted_file::check_path("hook script", script).map_err(HookError::NotRun)?;
    let mut cmd = tokio::process::Command::new(script);
    cmd.env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let script = script.to_path_buf();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(source) => return Err(HookError::Start { script, source }),
    };
    match tokio::time::timeout(limit, child.wait()).await {
        Ok(Ok(st)) if st.success() => Ok(()),
        Ok(Ok(status)) => Err(HookError::Failed { script, status }),
        Ok(Err(source)) => Err(HookError::Wait { script, source }),
        Err(_) => {
            let _ = child.kill().await;
            Err(HookError::TimedOut { script, limit })
        }
    }
}

/// One hook to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookJob {
    pub script: PathBuf,
    pub env: Vec<(String, String)>,
    pub limit: Duration,
}

impl HookJob {
    fn event(&self) -> &str {
        self.env
            .iter()
            .find(|(k, _)| k == "MLVPN_EVENT")
            .map_or("", |(_, v)| v.as_str())
    }
}

/// What carries a hook out: [`run`] in the daemon, a fake in tests.
pub type Runner =
    Arc<dyn Fn(HookJob) -> Pin<Box<dyn Future<Output = Result<(), HookError>> + Send>> + Send + Sync>;

/// The daemon's runner: [`run`], outcome logged.
pub fn process_runner() -> Runner {
    Arc::new(|job: HookJob| Box::pin(async move { run(&job.script, &job.env, job.limit).await }))
}

struct Shared {
    queue: Mutex<HookQueue<HookJob>>,
    wake: Notify,
    drops: Mutex<(LogLimit, u64)>,
}

/// Runs hooks in the background within [`HookLimits`]: the parent submits
/// without waiting, a task of the runtime starts them when the limits allow.
#[derive(Clone)]
pub struct HookScheduler {
    shared: Arc<Shared>,
}

impl HookScheduler {
    /// Starts the scheduling task on the current tokio runtime.
    pub fn start(limits: HookLimits, runner: Runner) -> HookScheduler {
        let shared = Arc::new(Shared {
            queue: Mutex::new(HookQueue::new(limits)),
            wake: Notify::new(),
            drops: Mutex::new((LogLimit::new(10), 0)),
        });
        tokio::spawn(drive(shared.clone(), runner));
        HookScheduler { shared }
    }

    /// Queues a hook; when the queue is full it is dropped, counted, and
    /// logged at most 10 lines a second. Never waits.
    pub fn submit(&self, key: HookKey, job: HookJob) {
        let event = job.event().to_string();
        let result = self.shared.queue.lock().expect("not poisoned").submit(key, job);
        match result {
            Ok(()) => self.shared.wake.notify_one(),
            Err(why) => {
                let mut d = self.shared.drops.lock().expect("not poisoned");
                d.1 += 1;
                let total = d.1;
                if let Some(n) = d.0.allow(Instant::now()) {
                    let why = match why {
                        Dropped::QueueFull => "too many hooks waiting",
                        Dropped::PathQueueFull => "too many hooks waiting for this path",
                    };
                    warn!(
                        event,
                        ?key,
                        "hook dropped: {why} ({total} dropped so far){}",
                        suppressed_note(n)
                    );
                }
            }
        }
    }

    /// (running, waiting) hooks.
    pub fn counts(&self) -> (usize, usize) {
        let q = self.shared.queue.lock().expect("not poisoned");
        (q.running(), q.waiting())
    }

    /// Hooks dropped so far.
    pub fn dropped(&self) -> u64 {
        self.shared.drops.lock().expect("not poisoned").1
    }
}

/// Starts hooks as the limits allow, until the runtime stops.
async fn drive(shared: Arc<Shared>, runner: Runner) {
    let mut running: JoinSet<HookKey> = JoinSet::new();
    loop {
        let retry = {
            let now = Instant::now();
            let mut q = shared.queue.lock().expect("not poisoned");
            while let Some((key, job)) = q.next_start(now) {
                let run = runner(job.clone());
                running.spawn(async move {
                    match run.await {
                        Ok(()) => info!(script = %job.script.display(), event = job.event(), "hook ran"),
                        Err(e) => warn!(event = job.event(), "hook failed: {e}"),
                    }
                    key
                });
            }
            q.retry_at(now)
        };
        let retry = retry.map(tokio::time::Instant::from_std);
        tokio::select! {
            Some(done) = running.join_next(), if !running.is_empty() => {
                // A hook that panicked still frees its key (JoinError has
                // no key: free none rather than guess; cannot happen with
                // `run`, which does not panic).
                if let Ok(key) = done {
                    shared.queue.lock().expect("not poisoned").finished(key);
                }
            }
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep_until(retry.unwrap_or_else(tokio::time::Instant::now)), if retry.is_some() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::{mpsc, oneshot};

    /// A runner whose hooks finish when the test says: each start is
    /// reported with the switch that ends it.
    fn fake() -> (Runner, mpsc::UnboundedReceiver<(String, oneshot::Sender<()>)>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let runner: Runner = Arc::new(move |job: HookJob| {
            let (done_tx, done_rx) = oneshot::channel();
            let name = job.script.display().to_string();
            let tx = tx.clone();
            Box::pin(async move {
                let _ = tx.send((name, done_tx));
                let _ = done_rx.await;
                Ok(())
            })
        });
        (runner, rx)
    }

    fn job(name: &str) -> HookJob {
        HookJob {
            script: PathBuf::from(name),
            env: vec![("MLVPN_EVENT".into(), "path_up".into())],
            limit: Duration::from_secs(1),
        }
    }

    #[tokio::test]
    async fn a_script_others_could_write_is_not_run() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("up.sh");
        let ran = dir.path().join("ran");
        std::fs::write(&script, format!("#!/bin/sh\ntouch {}\n", ran.display())).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = run(&script, &[], Duration::from_secs(5))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("not run: hook script") && e.contains("chmod go-w"),
            "{e}"
        );
        assert!(!ran.exists());
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        run(&script, &[], Duration::from_secs(5)).await.unwrap();
        assert!(ran.exists());
    }

    #[tokio::test]
    async fn a_paths_hooks_run_one_at_a_time_in_order_and_a_flood_is_dropped() {
        let limits = HookLimits {
            concurrent: 2,
            per_second: 1000,
            queued: 6,
            queued_per_path: 3,
        };
        let (runner, mut started) = fake();
        let s = HookScheduler::start(limits, runner);
        for name in ["a1", "a2", "a3", "a4"] {
            s.submit(HookKey::Path(0), job(name));
        }
        assert_eq!(s.dropped(), 1, "a path's queue holds 3");
        s.submit(HookKey::Path(1), job("b1"));
        s.submit(HookKey::Path(2), job("c1"));
        // Two at once: a1 and b1; a2 waits for a1, c1 for a free slot.
        let (a1, end_a1) = started.recv().await.unwrap();
        let (b1, end_b1) = started.recv().await.unwrap();
        assert_eq!((a1.as_str(), b1.as_str()), ("a1", "b1"));
        assert!(started.try_recv().is_err(), "nothing else runs yet");
        end_a1.send(()).unwrap();
        let (a2, end_a2) = started.recv().await.unwrap();
        assert_eq!(a2, "a2", "path 0's next, in order");
        end_b1.send(()).unwrap();
        let (c1, end_c1) = started.recv().await.unwrap();
        assert_eq!(c1, "c1");
        end_a2.send(()).unwrap();
        let (a3, end_a3) = started.recv().await.unwrap();
        assert_eq!(a3, "a3");
        end_c1.send(()).unwrap();
        end_a3.send(()).unwrap();
        // A flood: at most `queued` wait, the rest is dropped.
        for i in 0..100 {
            s.submit(HookKey::Path((i % 30) as u8), job("flood"));
        }
        assert_eq!(s.dropped(), 1 + 100 - 6, "6 wait, the rest is dropped");
        // Two of them run, the others wait their turn.
        let (_, end_1) = started.recv().await.unwrap();
        let (_, _end_2) = started.recv().await.unwrap();
        assert_eq!(s.counts(), (2, 4), "(running, waiting)");
        end_1.send(()).unwrap();
        let (_, _end_3) = started.recv().await.unwrap();
        assert_eq!(s.counts(), (2, 3));
    }
}

//! Up/down hook scripts, run by the parent with a fixed environment and a
//! time limit.
//!
//! The script path comes from the config (trusted); the environment holds
//! only values from the config and the path index the worker named (checked
//! against the config): nothing from the network, no shell.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tracing::{info, warn};

/// Runs `script` with exactly `env` (plus a fixed PATH), waits at most
/// `limit`, kills it past that. Returns a one-line outcome for the log.
pub async fn run(script: &Path, env: &[(String, String)], limit: Duration) -> Result<(), String> {
    let mut cmd = tokio::process::Command::new(script);
    cmd.env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| format!("{}: {e}", script.display()))?;
    match tokio::time::timeout(limit, child.wait()).await {
        Ok(Ok(st)) if st.success() => Ok(()),
        Ok(Ok(st)) => Err(format!("{} exited with {st}", script.display())),
        Ok(Err(e)) => Err(format!("{}: {e}", script.display())),
        Err(_) => {
            let _ = child.kill().await;
            Err(format!(
                "{} did not finish within {limit:?}; killed",
                script.display()
            ))
        }
    }
}

/// Runs a hook in the background and logs its outcome.
pub fn spawn(
    script: std::path::PathBuf,
    env: Vec<(String, String)>,
    limit: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let event = env
            .iter()
            .find(|(k, _)| k == "MLVPN_EVENT")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        match run(&script, &env, limit).await {
            Ok(()) => info!(script = %script.display(), event, "hook ran"),
            Err(e) => warn!(event, "hook failed: {e}"),
        }
    })
}

//! The control socket: a Unix socket (mode 0600) answering `status`.
//!
//! Protocol: the client sends one request line (`status`), the daemon answers
//! with one JSON document and closes. Requests are bounded in size and time;
//! the event loop answers them from its own task, so the socket task never
//! touches tunnel state.

use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

const MAX_REQUEST: usize = 256;
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// Status queries served at once; more connections wait in the listen
/// backlog (bounded by the kernel).
pub const MAX_CLIENTS: usize = 16;

/// A request for the event loop; it answers on `reply`.
pub struct ControlRequest {
    pub command: String,
    pub reply: oneshot::Sender<String>,
}

/// Binds the socket with mode 0600. Something already at `path` is
/// removed only if it is a stale socket (one nobody answers on, left by a
/// daemon that did not stop cleanly); a live one means another daemon runs
/// there, and anything else (a file, a link) is not ours to delete.
pub fn bind(path: &Path) -> io::Result<std::os::unix::net::UnixListener> {
    let fail = |kind: io::ErrorKind, what: String| {
        io::Error::new(kind, format!("control socket {}: {what}", path.display()))
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("control socket directory {}: {e}", dir.display()),
            )
        })?;
    }
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e.kind(), e.to_string())),
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(fail(
                io::ErrorKind::AlreadyExists,
                "exists and is not a socket; not replacing it (remove it or choose another control_socket)"
                    .into(),
            ));
        }
        Ok(_) => match StdUnixStream::connect(path) {
            Ok(_) => {
                return Err(fail(
                    io::ErrorKind::AddrInUse,
                    format!("another daemon is running on {}", path.display()),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                std::fs::remove_file(path)
                    .map_err(|e| fail(e.kind(), format!("removing the stale socket: {e}")))?;
            }
            Err(e) => return Err(fail(e.kind(), format!("is it stale? {e}"))),
        },
    }
    let l = std::os::unix::net::UnixListener::bind(path).map_err(|e| fail(e.kind(), e.to_string()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// Accepts connections forever, forwarding each request to the event loop.
pub async fn serve(listener: UnixListener, to_loop: mpsc::Sender<ControlRequest>) {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CLIENTS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let to_loop = to_loop.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(CLIENT_TIMEOUT, answer(stream, to_loop)).await;
            drop(permit);
        });
    }
}

async fn answer(stream: tokio::net::UnixStream, to_loop: mpsc::Sender<ControlRequest>) -> io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut line = String::new();
    BufReader::new(r.take(MAX_REQUEST as u64))
        .read_line(&mut line)
        .await?;
    let (reply, answer) = oneshot::channel();
    let command = line.trim().to_string();
    if to_loop.send(ControlRequest { command, reply }).await.is_err() {
        return Ok(());
    }
    if let Ok(text) = answer.await {
        w.write_all(text.as_bytes()).await?;
        w.shutdown().await?;
    }
    Ok(())
}

/// Largest answer `query` reads: 64 MiB. A status is about 250 bytes per
/// peer and 350 per path: 10 000 peers with 2 paths each answer 10 MB.
pub const MAX_ANSWER: usize = 64 << 20;

/// Client side: sends `command` and returns the daemon's answer.
pub fn query(path: &PathBuf, command: &str) -> io::Result<String> {
    query_at_most(path, command, MAX_ANSWER)
}

/// [`query`] with a size limit: a longer answer is an error, never cut
/// silently (a cut JSON document would only fail later, less clearly).
fn query_at_most(path: &PathBuf, command: &str, limit: usize) -> io::Result<String> {
    let mut s = StdUnixStream::connect(path)
        .map_err(|e| io::Error::new(e.kind(), format!("control socket {}: {e}", path.display())))?;
    s.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    s.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    s.write_all(format!("{command}\n").as_bytes())?;
    let mut out = String::new();
    s.take(limit as u64 + 1).read_to_string(&mut out)?;
    if out.len() > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "control socket {}: answer larger than {} bytes",
                path.display(),
                limit
            ),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers one query with `answer` from a plain listener.
    fn answer_once(path: &Path, answer: Vec<u8>) -> std::thread::JoinHandle<()> {
        let l = std::os::unix::net::UnixListener::bind(path).unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut line = [0u8; 7];
            s.read_exact(&mut line).unwrap();
            let _ = s.write_all(&answer);
        })
    }

    #[test]
    fn only_a_stale_socket_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        // Stale: bound, then its owner gone without removing it.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let live = bind(&path).expect("a stale socket is replaced");
        // Live: someone answers there.
        let e = bind(&path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        assert!(
            e.to_string()
                .contains(&format!("another daemon is running on {}", path.display())),
            "{e}"
        );
        drop(live);
        std::fs::remove_file(&path).unwrap();
        // Not a socket: left alone.
        std::fs::write(&path, "precious").unwrap();
        let e = bind(&path).unwrap_err();
        assert!(e.to_string().contains("exists and is not a socket"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
        std::fs::remove_file(&path).unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "").unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let e = bind(&path).unwrap_err();
        assert!(e.to_string().contains("exists and is not a socket"), "{e}");
        assert!(target.exists() && std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
    }

    #[test]
    fn an_answer_over_the_limit_is_an_error_not_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        let t = answer_once(&path, vec![b'x'; 1001]);
        let e = query_at_most(&path, "status", 1000).unwrap_err();
        assert!(e.to_string().contains("answer larger than 1000 bytes"), "{e}");
        t.join().unwrap();
        std::fs::remove_file(&path).unwrap();
        let t = answer_once(&path, vec![b'x'; 1000]);
        assert_eq!(query_at_most(&path, "status", 1000).unwrap().len(), 1000);
        t.join().unwrap();
    }

    #[tokio::test]
    async fn at_most_max_clients_are_served_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        let l = bind(&path).unwrap();
        l.set_nonblocking(true).unwrap();
        let (tx, mut rx) = mpsc::channel(64);
        tokio::spawn(serve(UnixListener::from_std(l).unwrap(), tx));
        let mut clients = Vec::new();
        for _ in 0..MAX_CLIENTS + 4 {
            let mut s = tokio::net::UnixStream::connect(&path).await.unwrap();
            s.write_all(b"status\n").await.unwrap();
            clients.push(s);
        }
        // The event loop does not answer: MAX_CLIENTS requests reach it...
        let mut held = Vec::new();
        for _ in 0..MAX_CLIENTS {
            held.push(rx.recv().await.unwrap());
        }
        // ...and no more while they are pending.
        let more = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await;
        assert!(more.is_err(), "a request beyond the bound was accepted");
        // Answering frees the slots for the rest.
        for r in held {
            let _ = r.reply.send("{}".into());
        }
        for _ in 0..4 {
            rx.recv().await.unwrap();
        }
    }
}

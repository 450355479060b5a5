//! Histories: every input a `transport` pair has seen, saved when one of
//! them panics, so one file reproduces a failure that needed earlier inputs.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::OnceLock;

/// A history file (see [`transport`](super::transport)) starts with this line.
pub const HISTORY_MAGIC: &[u8] = b"MLVPN-FUZZ-TRANSPORT-HISTORY\n";
/// Most bytes of history kept (a longer one starts a fresh pair).
const HISTORY_MAX: usize = 1 << 20;

thread_local! {
    /// The inputs this thread's pair has seen, as a history file.
    static HISTORY: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// Adds `data` to the history; a `fresh` pair (or one whose history grew
/// too long) starts a new one. Returns whether the pair must be fresh.
pub(super) fn record(data: &[u8], mut fresh: bool) -> bool {
    HISTORY.with(|h| {
        let mut h = h.borrow_mut();
        let h = h.get_or_insert_with(Vec::new);
        fresh |= h.len() + 4 + data.len() > HISTORY_MAX;
        if fresh {
            h.clear();
            h.extend_from_slice(HISTORY_MAGIC);
        }
        h.extend_from_slice(&(data.len() as u32).to_le_bytes());
        h.extend_from_slice(data);
    });
    fresh
}

/// With `MLVPN_FUZZ_HISTORY` set, installs (once) a panic hook that saves
/// the history before the previous hook (libFuzzer's abort) runs; returns
/// whether histories are recorded.
pub(super) fn hook() -> bool {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(std::env::var_os("MLVPN_FUZZ_HISTORY")?);
        let previous = std::panic::take_hook();
        let hook_dir = dir.clone();
        std::panic::set_hook(Box::new(move |info| {
            let history = HISTORY.with(|h| h.try_borrow().ok().and_then(|h| h.clone()));
            if let Some(h) = history {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                let file = hook_dir.join(format!("transport-history-{nanos}"));
                if std::fs::create_dir_all(&hook_dir)
                    .and_then(|()| std::fs::write(&file, &h))
                    .is_ok()
                {
                    eprintln!(
                        "transport: the inputs since the pair was built: {}",
                        file.display()
                    );
                }
            }
            previous(info);
        }));
        Some(dir)
    })
    .is_some()
}

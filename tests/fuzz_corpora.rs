//! The fuzz corpora as regression tests, on stable `cargo test`: every
//! file of `fuzz/corpus/<target>/` (the minimized corpus, seeds included)
//! and `fuzz/artifacts/<target>/` (inputs that once broke something) is
//! run through the same target body libFuzzer runs (`fuzz/src/targets/`).
//! A body panics when an invariant breaks. See docs/fuzzing.md.

#[path = "../fuzz/src/targets/mod.rs"]
mod targets;

/// The target bodies use them as `crate::fixtures`, as in the fuzz crate.
#[path = "fixtures/mod.rs"]
mod fixtures;

#[path = "../fuzz/src/seeds.rs"]
mod seeds;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Files of a directory, sorted (so a failure names the same file each run).
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// Runs `body` on every corpus and artifact file of `target`; fails if the
/// corpus is missing or empty, and names the file that panicked.
fn replay(target: &str, body: fn(&[u8])) {
    let corpus = files(&fuzz_dir().join("corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target}/ is missing or empty: nothing would be tested"
    );
    let artifacts = files(&fuzz_dir().join("artifacts").join(target));
    for (n, file) in corpus.iter().chain(&artifacts).enumerate() {
        if n >= corpus.len() {
            // An artifact is replayed as the fuzzer found it: in a fresh process.
            targets::reset();
        }
        let data = std::fs::read(file).expect("readable corpus file");
        let run = std::panic::catch_unwind(|| body(&data));
        if let Err(e) = run {
            std::panic::resume_unwind(Box::new(format!(
                "{target}: {} fails: {}",
                file.display(),
                e.downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| e.downcast_ref::<&str>().copied())
                    .unwrap_or("(panic)")
            )));
        }
    }
    eprintln!(
        "{target}: {} corpus files, {} artifacts",
        corpus.len(),
        artifacts.len()
    );
}

#[test]
fn offload_corpus() {
    replay("offload", targets::offload);
}

#[test]
fn wire_corpus() {
    replay("wire", targets::wire);
}

#[test]
fn responder_corpus() {
    replay("responder", targets::responder);
}

#[test]
fn transport_corpus() {
    replay("transport", targets::transport);
}

#[test]
fn config_corpus() {
    replay("config", targets::config);
}

#[test]
fn privsep_corpus() {
    replay("privsep", targets::privsep);
}

/// Rewrites the seed files (`seed-*`) of every corpus from real traffic,
/// configs and messages: run after a wire-format change with
/// `cargo test --test fuzz_corpora -- --ignored write_seed_corpora`.
#[test]
#[ignore = "writes fuzz/corpus/; run by hand"]
fn write_seed_corpora() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let n = seeds::write(&fuzz_dir().join("corpus"), repo).expect("write seeds");
    eprintln!("wrote {n} seed files");
}

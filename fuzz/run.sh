#!/usr/bin/env bash
# Fuzzes one target with libFuzzer on a stable toolchain, then merges what
# it found into the minimized corpus kept in the repository.
#
#   fuzz/run.sh TARGET [SECONDS] [LIBFUZZER_FLAGS...]
#   fuzz/run.sh wire 600
#   fuzz/run.sh transport 900 -runs=10000000
#   fuzz/run.sh TARGET repro FILE      # run one input (an artifact)
#   fuzz/run.sh TARGET minimize FILE   # shrink a crashing input (cargo fuzz tmin)
#
# TARGET: wire, responder, transport, config, privsep or offload (docs/fuzzing.md).
# Stable rustc cannot pass -Zsanitizer, so this builds with --sanitizer none
# (coverage instrumentation only; safe Rust needs no ASan) and sets
# RUSTC_BOOTSTRAP=1 for the -Z flags cargo-fuzz still uses. Debug assertions
# and overflow checks are on. The cryptography crates are built without
# coverage instrumentation (fuzz/rustc-wrapper.sh). Runs under `nice -n 19`,
# one process.
#
# New inputs grow fuzz/target/corpus-work/TARGET (not in git); at the end
# that and fuzz/corpus/TARGET are merged (-merge=1) into a minimal set that
# keeps every seed-* file and replaces fuzz/corpus/TARGET. A crash is saved
# by libFuzzer under fuzz/artifacts/TARGET/, which tests/fuzz_corpora.rs
# replays; `transport` also saves there the history that reproduces it
# (transport-history-*: its state lives across inputs).
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:?usage: fuzz/run.sh TARGET [SECONDS] [LIBFUZZER_FLAGS...]}
case "$target" in
  wire | responder | transport | config | privsep | offload) ;;
  *) echo "unknown target $target (wire, responder, transport, config, privsep)" >&2; exit 2 ;;
esac
shift

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
if ! command -v c++ >/dev/null 2>&1; then
  # libfuzzer-sys compiles libFuzzer itself.
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq g++
fi

export RUSTC_BOOTSTRAP=1
export RUSTC_WRAPPER=$PWD/fuzz/rustc-wrapper.sh
export MLVPN_FUZZ_HISTORY=$PWD/fuzz/artifacts/$target
fuzz=(cargo fuzz run --sanitizer none --debug-assertions "$target")

case "${1:-}" in
  repro)
    exec nice -n 19 "${fuzz[@]}" "${2:?usage: fuzz/run.sh TARGET repro FILE}"
    ;;
  minimize)
    exec nice -n 19 cargo fuzz tmin --sanitizer none --debug-assertions "$target" \
      "${2:?usage: fuzz/run.sh TARGET minimize FILE}"
    ;;
esac

seconds=${1:-60}
shift || true
corpus=fuzz/corpus/$target
work=fuzz/target/corpus-work/$target
merged=fuzz/target/corpus-merge/$target
logs=fuzz/target/logs
mkdir -p "$corpus" "$work" "$logs" "fuzz/artifacts/$target"
log=$logs/$target-$(date +%Y%m%d-%H%M%S).log

status=0
nice -n 19 "${fuzz[@]}" "$work" "$corpus" -- \
  -max_total_time="$seconds" -timeout=30 -print_final_stats=1 "$@" 2>&1 | tee "$log" || status=$?

# Minimize: the seeds, plus whatever else adds coverage.
rm -rf "$merged"
mkdir -p "$merged"
cp "$corpus"/seed-* "$merged"/ 2>/dev/null || true
nice -n 19 "${fuzz[@]}" "$merged" "$corpus" "$work" -- -merge=1 -timeout=30 >"$log.merge" 2>&1
find "$corpus" -maxdepth 1 -type f -delete
cp "$merged"/* "$corpus"/

runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
echo "$target: ${runs:-?} executions, ${speed:-?} exec/s; corpus $(find "$corpus" -type f | wc -l) files," \
  "$(du -sb "$corpus" | cut -f1) bytes; log $log"
exit "$status"

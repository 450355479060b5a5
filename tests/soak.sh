#!/usr/bin/env bash
# Soak: the two-site topology of tests/bench/lib.sh for SECONDS with one TCP
# transfer throughout, a link flap (blackhole both directions, restore)
# every few seconds on alternating links, a NAT mapping reset every fourth
# event, and a rekey of every path every 5 s (rekey_after). Samples the
# workers' RSS and open descriptors.
#
#   sudo tests/soak.sh [SECONDS]        (default 120; the closing figures
#                                        of the hardening work used 1800)
#
# Fails (exit 1) on: a daemon dying, the transfer failing or being reset, a
# flap not recovered within 5 s (both paths up), or RSS / descriptor count
# of the last window more than MAX_GROWTH % above the first (windows: 5
# minutes, or a third of the rest when shorter, after a warm-up of a quarter
# of the run, at most 60 s). MAX_GROWTH defaults to 10 for runs of 10
# minutes or more and 25 for shorter ones: the bounded buffer pools
# (resequencing <= 4 MiB, in-flight copies <= 1 MiB per path) grow in steps
# to their high-water mark during the first minutes (a step, not a leak; a
# 30-minute run shows the plateau).
# BIN_DIR=target/debug uses binaries already built (as `cargo test` does).
set -euo pipefail
secs=${1:-120}
cc=cubic; omit=0
. "$(dirname "$0")/bench/lib.sh"

sed -i 's/^control_socket = .*/&\nrekey_after = "5s"/' $work/c.toml
start_tunnel "rate=50mbit delay=10ms"

worker_of() { # $1 = namespace: pid of the worker there
  ip netns pids $1 | while read -r p; do tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null | grep -q __worker && echo $p; done | head -1
}
cw=$(worker_of $A); sw=$(worker_of $B)
echo "soak: ${secs}s, client worker $cw, server worker $sw"
sample() { # t rss_c fds_c rss_s fds_s
  echo "$1 $(awk '/VmRSS/{print $2}' /proc/$cw/status) $(ls /proc/$cw/fd | wc -l) $(awk '/VmRSS/{print $2}' /proc/$sw/status) $(ls /proc/$sw/fd | wc -l)"
}

ip netns exec $B iperf3 -s -1 -B 10.42.0.1 >/dev/null 2>&1 & pids+=($!)
for _ in $(seq 100); do ip netns exec $B ss -ltn | grep -q 10.42.0.1:5201 && break; sleep 0.05; done
ip netns exec $A iperf3 -c 10.42.0.1 -t "$secs" -C "$cc" -J > $work/iperf.json 2>&1 &
ipid=$!

start=$(date +%s); event=0; flaps=0; worst=0; failures=()
: > $work/samples
next_sample=0
while [ $(( $(date +%s) - start )) -lt $((secs - 3)) ]; do
  now=$(( $(date +%s) - start ))
  if [ $now -ge $next_sample ]; then sample $now >> $work/samples; next_sample=$((now + 5)); fi
  link=$(( event % 2 + 1 )); event=$((event + 1))
  if [ $((event % 4)) = 0 ]; then
    ctl $link nat-reset
  else
    ctl $link cut both; sleep 1.5; ctl $link restore both
  fi
  t0=$(date +%s.%N)
  if wait_paths 2 2>/dev/null; then
    took=$(python3 -c "print(round($(date +%s.%N) - $t0, 2))")
    worst=$(python3 -c "print(max($worst, $took))")
    flaps=$((flaps + 1))
  else
    failures+=("event $event (link $link at ${now}s) not recovered within 10 s")
  fi
  for w in $cw $sw; do [ -d /proc/$w ] || failures+=("worker $w died"); done
  [ ${#failures[@]} -gt 0 ] && break
  sleep 2
done
sample $(( $(date +%s) - start )) >> $work/samples
wait $ipid || true
python3 - $work/iperf.json <<'PY' || failures+=("transfer failed")
import json, sys
d = json.load(open(sys.argv[1]))
err = d.get("error")
end = d.get("end", {}).get("sum_received", {})
print(f"  transfer: {end.get('bytes', 0) / 1e6:.0f} MB at {end.get('bits_per_second', 0) / 1e6:.1f} Mbit/s, error: {err or 'none'}")
sys.exit(1 if err or not end.get("bytes") else 0)
PY
hs=$(ip netns exec $A "$bin" status --json -c $work/c.toml | python3 -c 'import json,sys; print(sum(p["handshakes"] for p in json.load(sys.stdin)["peers"][0]["paths"]))')
echo "  events: $event ($flaps recovered, slowest $worst s), client handshakes: $hs"
max_growth=${MAX_GROWTH:-$([ "$secs" -ge 600 ] && echo 10 || echo 25)}
python3 - $work/samples "$secs" "$max_growth" <<'PY' || failures+=("memory or descriptors grew more than $max_growth %")
import sys
rows = [list(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
secs = int(sys.argv[2])
limit = float(sys.argv[3])
# Buffers (resequencing, in-flight copies) fill during the first seconds of
# traffic: the first window starts after a warm-up.
warmup = min(60, secs // 4)
window = min(300, max(5, (secs - warmup) // 3))
first = [r for r in rows if warmup <= r[0] < warmup + window]
last = [r for r in rows if r[0] >= rows[-1][0] - window]
ok = True
for i, name in [(1, "client RSS kB"), (2, "client fds"), (3, "server RSS kB"), (4, "server fds")]:
    a = sum(r[i] for r in first) / len(first)
    b = sum(r[i] for r in last) / len(last)
    grew = (b - a) / a * 100
    flag = "ok" if grew <= limit else "GREW"
    ok &= grew <= limit
    print(f"  {name:14} from {warmup}s for {window}s {a:9.0f}  last {window}s {b:9.0f}  {grew:+5.1f} %  {flag}")
sys.exit(0 if ok else 1)
PY
if [ ${#failures[@]} -gt 0 ]; then printf '  FAIL: %s\n' "${failures[@]}"; exit 1; fi
echo "  soak passed"

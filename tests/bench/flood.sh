#!/usr/bin/env bash
# Flood resistance (not a test: prints figures).
#
#   sudo tests/bench/flood.sh [SECONDS]
#
# The two-site topology of lib.sh (2 x 50 Mbit/s, 10 ms, emulated). From the
# "internet" namespace, which reaches the server's listening sockets over an
# unshaped link (a data-centre uplink), mlvpn-flood sends
#   - 50 000 garbage datagrams/s (random, truncated, forged data headers),
#   - 20 000 handshake initiations/s with valid mac1 from 64 source ports,
# while one iperf3 TCP stream runs through the tunnel. Each is reported as a
# ratio to the goodput without a flood measured in the same run (the better
# of two runs). During the initiation flood a reload adds a third client path, which must complete
# its handshake (it gets a cookie and retries). LINK="rate=0 delay=1ms"
# (unshaped) makes the tunnel CPU-bound instead: every cycle the flood costs
# then shows in the goodput.
set -euo pipefail
secs=${1:-10}
cc=${TCP_CC:-cubic}
omit=${OMIT:-0}
EXTRA_PACKAGES="-p mlvpn-flood"
. "$(dirname "$0")/lib.sh"
flood="$bindir/mlvpn-flood"

start_tunnel "${LINK:-rate=50mbit delay=10ms}"
drops() { ip netns exec $B "$bin" status --json -c $work/s.toml | python3 -c 'import json,sys; d=json.load(sys.stdin)["drops"]; print(" ".join(f"{k}={v}" for k,v in sorted(d.items()) if v))'; }
cpu() { # CPU seconds used so far by the server's worker
  w=$(ip netns pids $B | while read -r p; do tr '\0' ' ' < /proc/$p/cmdline | grep -q __worker && echo $p; done | head -1)
  awk '{print ($14 + $15) / 100}' /proc/$w/stat
}

echo "one TCP stream ($cc), ${secs}s each, links: ${LINK:-rate=50mbit delay=10ms} (goodput through the tunnel)"
# The reference is the better of two runs without a flood, back to back:
# a slow TCP ramp in one of them must not flatter the ratios.
c1=$(cpu)
read -r base rbase < <(iperf_json "" | mbps)
c2=$(cpu)
read -r base2 rbase2 < <(iperf_json "" | mbps)
echo "  no flood:                      $base and $base2 Mbit/s (retransmits $rbase, $rbase2); server worker CPU $(python3 -c "print(round(100*($c2-$c1)/$secs))") %"
base=$(python3 -c "print(max($base, $base2))")

run_flood() { # $1 = label, rest = mlvpn-flood arguments
  local label=$1; shift
  local c1; c1=$(cpu)
  ip netns exec $I "$flood" "$@" > $work/flood.out 2>&1 &
  local fp=$!
  read -r got r < <(iperf_json "" | mbps)
  wait $fp || true
  local c2; c2=$(cpu)
  python3 - "$label" "$got" "$base" "$r" "$(cat $work/flood.out)" "$c1" "$c2" "$secs" <<'PY'
import sys
label, got, base, r, out, c1, c2, secs = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5], float(sys.argv[6]), float(sys.argv[7]), float(sys.argv[8])
print(f"  {label:<30} {got} Mbit/s = {100*got/base:.1f} % of no flood ({base}) (retransmits {r}); server worker CPU {100*(c2-c1)/secs:.0f} %")
print(f"    {out}")
PY
}

run_flood "50k garbage datagrams/s" garbage 10.201.0.2:5080 50000 "$secs" 64
echo "    server drops: $(drops)"

# Initiation flood, and a path added by reload in the middle of it.
cp $work/c.toml $work/c2.toml
cat >> $work/c.toml <<EOF2
[[path]]
name = "link3"
bind = "10.101.0.1:0"
endpoint = "10.101.0.254:5080"
EOF2
( sleep $((secs / 2)); t0=$(date +%s.%N)
  kill -HUP "$(ip netns pids $A | while read -r p; do tr '\0' ' ' < /proc/$p/cmdline | grep -q -- "run -c" && echo $p; done | head -1)"
  for _ in $(seq 200); do
    st=$(ip netns exec $A "$bin" status --json -c $work/c.toml | python3 -c 'import json,sys; print([p["state"] for p in json.load(sys.stdin)["peers"][0]["paths"] if p["name"]=="link3"])')
    [ "$st" = "['up']" ] && break; sleep 0.05; done
  t1=$(date +%s.%N)
  echo "$st $(python3 -c "print(round($t1 - $t0, 2))")" > $work/link3.out ) &
hp=$!
run_flood "20k initiations/s, 64 ports" initiations 10.201.0.2:5081 20000 "$secs" "$spub" 64
wait $hp || true
read -r st took < $work/link3.out
echo "    server drops: $(drops)"
echo "    path link3 added by reload during the flood: $st after $took s"

#!/usr/bin/env bash
# Bonding quality over emulated links (not a test: prints figures).
#
#   sudo tests/bench/bonding.sh [SECONDS]
#
# Topology: site A (client) has two uplinks into an "internet" namespace I,
# where one linkemu relay per uplink shapes the link (rate, delay, loss) and
# NATs towards site B (server). For each scenario, one iperf3 TCP stream runs
# through the tunnel over link 1 alone, link 2 alone (the other cut), and both:
# efficiency = both / (link 1 alone + link 2 alone), all in the same run, so
# tunnel overhead cancels out. Also: retransmits, packets delivered out of
# order by the resequencing queue, and a mid-transfer blackhole.
set -euo pipefail
secs=${1:-10}
# Congestion control of the measured stream: cubic is what most end hosts run
# (Linux, Windows and macOS defaults); TCP_CC=bbr measures BBR instead
# (not CC: that names the C compiler ring's build script runs).
cc=${TCP_CC:-cubic}
# Seconds at the start of each stream left out of its figure (iperf3 -O):
# OMIT=10 measures the steady state after TCP's ramp-up.
omit=${OMIT:-0}
# One TCP stream's ramp over a large-BDP bond varies a lot from run to run
# (10/60 ms: 86-100 % between consecutive runs): "both" is measured REPEAT
# times (default 3) and the mean is the figure; each run is printed too.
repeat=${REPEAT:-3}
# ONLY=<regex>: the scenarios whose name matches ("60 ms", "30 %|failover").
. "$(dirname "$0")/lib.sh"
qdrops() { # $1 = link: packets dropped by its full queue, towards the server
  local port=$((7000 + $1))
  ip netns exec $I python3 -c 'import socket,sys,json; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(1); s.sendto(b"stats",("127.0.0.1",int(sys.argv[1]))); print(json.loads(s.recv(4096))["up"]["dropped_queue"])' $port
}

late() { ip netns exec $B "$bin" status --json -c $work/s.toml | python3 -c 'import json,sys; r=json.load(sys.stdin)["peers"][0]["reorder"]; print(r["late"], r["in_order"]+r["reordered"]+r["late"])'; }

start_tunnel

scenario() { # $1 = name, $2 = link 1 spec, $3 = link 2 spec
  [[ "$1" =~ ${ONLY:-.} ]] || return 0
  for l in 1 2; do spec=$2; [ $l = 2 ] && spec=$3; ctl $l "set both $spec"; ctl $l restore both; done
  wait_paths 2
  ctl 2 cut both; wait_paths 1
  read -r one r1 < <(iperf_json "" | mbps)
  ctl 2 restore both; wait_paths 2; ctl 1 cut both; wait_paths 1
  read -r two r2 < <(iperf_json "" | mbps)
  ctl 1 restore both; wait_paths 2
  read -r l0 n0 < <(late)
  q10=$(qdrops 1); q20=$(qdrops 2)
  if [ -n "${VERBOSE:-}" ]; then
    ( for t in $(seq $((secs - 1))); do sleep 1
      ip netns exec $A ss -tin dst 10.42.0.1 | grep -oE "(cwnd|rtt|retrans|rwnd_limited|sndbuf_limited|unacked|lost|delivery_rate|pacing_rate)[: ][^ ]*" | tail -n +3 | tr "\n" " "; echo
      for s in c s; do
        ip netns exec $A "$bin" status --json -c $work/$s.toml | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["mode"][0], " | ".join("%s %s srtt %.1f loss %s rate %s tx %d rx %d" % (p["name"], p["state"], p["srtt_ms"] or 0, p["loss"] and round(p["loss"],3), p["rate_mbps"] and round(p["rate_mbps"],1), p["tx_packets"], p["rx_packets"]) for p in d["peers"][0]["paths"]))'
      done; done ) >&2 &
  fi
  runs=""; rb=0
  for r in $(seq $repeat); do
    iperf_json "" > $work/both.json; [ -n "${VERBOSE:-}" ] && python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(\"iperf:\", d.get(\"error\",\"ok\"), [round(i[\"sum\"][\"bits_per_second\"]/1e6,1) for i in d.get(\"intervals\",[])])" $work/both.json >&2
    read -r b1 r1 < <(mbps < $work/both.json)
    runs="$runs $b1"; rb=$((rb + r1))
  done
  read -r l1 n1 < <(late)
  [ -n "${VERBOSE:-}" ] && echo "queue drops during 'both': link1 $(( $(qdrops 1) - q10 )) link2 $(( $(qdrops 2) - q20 ))" >&2
  python3 - "$1" "$one" "$two" "$rb" "$((l1 - l0))" "$((n1 - n0))" $runs <<'PY'
import sys
name, (one, two, retr, late, total), runs = sys.argv[1], map(float, sys.argv[2:7]), [float(r) for r in sys.argv[7:]]
both = sum(runs) / len(runs)
eff = 100 * both / (one + two) if one + two > 0 else 0
ooo = 100 * late / total if total else 0
print(f"  {name:<34} link1 {one:6.1f}  link2 {two:6.1f}  both {both:6.1f} Mbit/s  efficiency {eff:5.1f} %  retransmits {int(retr / len(runs)):5d}  out-of-order {ooo:.3f} %")
if len(runs) > 1:
    effs = [100 * r / (one + two) if one + two > 0 else 0 for r in runs]
    print(f"  {'':<34} {len(runs)} runs of 'both': " + " ".join(f"{e:.0f}" for e in effs) + f" %  (min {min(effs):.0f}, max {max(effs):.0f})")
PY
}

echo "one TCP stream ($cc), ${secs}s per measurement after ${omit}s left out (goodput through the tunnel)"
scenario "2 x 50 Mbit/s, 10 ms each"        "rate=50mbit delay=10ms loss=0" "rate=50mbit delay=10ms loss=0"
scenario "80 + 20 Mbit/s, 10 ms each"       "rate=80mbit delay=10ms loss=0" "rate=20mbit delay=10ms loss=0"
scenario "50 + 50 Mbit/s, 10 ms / 60 ms"    "rate=50mbit delay=10ms loss=0" "rate=50mbit delay=60ms loss=0"
scenario "50 clean + 50 with 30 % loss"     "rate=50mbit delay=10ms loss=0" "rate=50mbit delay=10ms loss=0.3"

[[ failover =~ ${ONLY:-.} ]] || exit 0
# Failover: 2 x 50 Mbit/s; blackhole link 1 (both directions) mid-transfer,
# restore it later; report the longest stretch below 50 % of link 2's rate.
for l in 1 2; do ctl $l "set both rate=50mbit delay=10ms loss=0"; ctl $l restore both; done
wait_paths 2
( sleep $((secs / 3)); ctl 1 cut both; sleep $((secs / 3)); ctl 1 restore both ) &
iperf_json "-i 0.1 --get-server-output" "-J -i 0.1" > $work/failover.json
python3 - $work/failover.json "$secs" <<'PY'
import json, os, sys
d = json.load(open(sys.argv[1]))
# The receiver's intervals: goodput. The sender's count what the
# application could write into its socket buffer, which after a stall
# refills only once half of it was acknowledged: they showed stalls up to
# 0.4 s longer than the receiver saw.
srv = d.get("server_output_json", {}).get("intervals")
iv = [(i["sum"]["start"], i["sum"]["bits_per_second"] / 1e6) for i in (srv or d["intervals"])]
if not srv:
    print("  (no receiver intervals: sender's used)", file=sys.stderr)
worst, run, start = 0.0, 0.0, None
for t, mbps in iv[5:]:  # skip slow start
    if mbps < 25.0:
        run += 0.1
        worst = max(worst, run)
    else:
        run = 0.0
end = d["end"]
if os.environ.get("VERBOSE"):
    print("  Mbit/s per 0.1 s: " + " ".join(f"{t:.1f}:{m:.0f}" for t, m in iv), file=sys.stderr)
print(f"  failover (link 1 blackholed at {int(sys.argv[2])//3}s, restored at {2*int(sys.argv[2])//3}s): "
      f"goodput {end['sum_received']['bits_per_second']/1e6:.1f} Mbit/s, longest stretch below 25 Mbit/s {worst:.1f} s, "
      f"retransmits {end['sum_sent'].get('retransmits', 0)}, error: {d.get('error', 'none')}")
PY
echo "  packets re-sent from the dead path: $(ip netns exec $A "$bin" status --json -c $work/c.toml | python3 -c 'import json,sys; print(json.load(sys.stdin)["peers"][0].get("resent", 0))')"
echo "  path events:"; grep -hE "path (up|down)" $work/c.log | sed 's/^/    /' | tail -6

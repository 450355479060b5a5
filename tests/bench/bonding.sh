#!/usr/bin/env bash
# Bonding quality over emulated links (not a test: prints figures).
#
#   sudo tests/bench/bonding.sh [SECONDS]
#
# Topology: site A (client) has three uplinks into an "internet" namespace I,
# where one linkemu relay per uplink shapes the link (rate, delay, jitter,
# loss, queue) and NATs towards site B (server). A scenario gives each link
# it uses a spec; the others are cut (blackholed). For each scenario and each
# congestion control, one iperf3 TCP stream runs through the tunnel over
# each link alone (the others cut) and over all of them: efficiency = all /
# (sum of each alone), in the same run, so tunnel overhead cancels out. Also:
# retransmits, packets the resequencing queue delivered late (after skipping
# their hole), a link whose rate steps, a voice-like flow beside a bulk
# stream, and a mid-transfer blackhole. Kernel defaults throughout (the TCP
# metrics cache is flushed before each transfer, not switched off).
#
# Knobs (environment):
#   TCP_CC="cubic bbr"  congestion controls, each measured in every scenario
#   REPEAT=3            transfers over all links per figure (the mean counts)
#   OMIT=0              seconds at the start of each stream left out (-O)
#   ONLY=<regex>        scenarios whose name matches ("60 ms", "voice")
set -euo pipefail
secs=${1:-10}
# (TCP_CC, not CC: CC names the C compiler ring's build script runs.)
ccs=${TCP_CC:-cubic bbr}
omit=${OMIT:-0}
# One TCP stream's ramp over a large-BDP bond varies a lot from run to run
# (10/60 ms: 86-100 % between consecutive runs): the bond is measured REPEAT
# times and the mean is the figure; each run is printed too.
repeat=${REPEAT:-3}
cc=${ccs%% *}
LINKS=3
. "$(dirname "$0")/lib.sh"

late() { ip netns exec $B "$bin" status --json -c $work/s.toml | python3 -c 'import json,sys; r=json.load(sys.stdin)["peers"][0]["reorder"]; print(r["late"], r["in_order"]+r["reordered"]+r["late"])'; }

# Gives link i spec ${specs[i-1]} (cut when there is none) and waits until
# the paths of the links in $1 (a list like "1 3") are the ones up.
use_links() { # $1 = links to keep up, rest = specs of links 1..n
  local keep=$1 i n=0; shift
  local specs=("$@")
  for i in $(seq $links); do
    # Settings apply on top of the link's current ones: reset them all.
    if [ $i -le ${#specs[@]} ]; then ctl $i "set both delay=0ms jitter=0ms loss=0 reorder=0 ${specs[$((i - 1))]}"; fi
    if [[ " $keep " == *" $i "* ]]; then ctl $i restore both; n=$((n + 1)); else ctl $i cut both; fi
  done
  wait_paths $n
}

# Receiver-side goodput per 0.1 s of a JSON report (--get-server-output):
# prints "Mbit/s longest-stretch-below-$2-Mbit/s".
stalls() { # $1 = report, $2 = threshold Mbit/s
  python3 - "$1" "$2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
srv = d.get("server_output_json", {}).get("intervals") or d.get("intervals", [])
iv = [i["sum"]["bits_per_second"] / 1e6 for i in srv]
worst = run = 0.0
for m in iv[10:]:  # the first second is slow start
    run = run + 0.1 if m < float(sys.argv[2]) else 0.0
    worst = max(worst, run)
print(f"{d['end']['sum_received']['bits_per_second'] / 1e6:.1f} {worst:.1f}")
PY
}

scenario() { # $1 = name, rest = spec of link 1, 2, (3)
  [[ "$1" =~ ${ONLY:-.} ]] || return 0
  local name=$1; shift
  local specs=("$@") n=$# i all alone r b1 r1 runs rb l0 n0 l1 n1
  all=$(seq -s ' ' $n)
  for cc in $ccs; do
    alone=()
    for i in $all; do
      use_links "$i" "${specs[@]}"
      read -r b1 r1 < <(iperf_json "" | mbps)
      alone+=("$b1")
    done
    use_links "$all" "${specs[@]}"
    read -r l0 n0 < <(late)
    runs=""; rb=0
    for r in $(seq $repeat); do
      iperf_json "" > $work/all.json
      read -r b1 r1 < <(mbps < $work/all.json)
      runs="$runs $b1"; rb=$((rb + r1))
    done
    read -r l1 n1 < <(late)
    python3 - "$name" "$cc" "$rb" "$((l1 - l0))" "$((n1 - n0))" "${alone[*]}" $runs <<'PY'
import sys
name, cc, retr, late, total = sys.argv[1], sys.argv[2], *map(float, sys.argv[3:6])
alone = [float(a) for a in sys.argv[6].split()]
runs = [float(r) for r in sys.argv[7:]]
both = sum(runs) / len(runs)
s = sum(alone)
eff = lambda x: 100 * x / s if s > 0 else 0
print(f"  {name:<40} {cc:<5} alone " + " + ".join(f"{a:.1f}" for a in alone)
      + f"  all {both:6.1f} Mbit/s  efficiency {eff(both):5.1f} % (runs " + " ".join(f"{eff(r):.0f}" for r in runs)
      + f")  retransmits {int(retr / len(runs))}  late {100 * late / total if total else 0:.3f} %")
PY
  done
}

# A link whose rate steps 50 -> 10 -> 50 Mbit/s every 5 s beside a steady
# one: goodput against what the links offered (each link's own goodput alone
# at 50 Mbit/s, the stepping one weighted by its mean rate over the run), and
# the longest stretch below 10 Mbit/s.
rate_steps() {
  local name="50 Mbit/s stepping 50/10/50 every 5 s + 50"
  [[ "$name" =~ ${ONLY:-.} ]] || return 0
  local steady="rate=50mbit delay=10ms" spec1="rate=50mbit delay=20ms" one two got stall t mean
  local steps=$(( (secs + 4) / 5 ))
  for cc in $ccs; do
    use_links "1" "$spec1" "$steady"; read -r one _ < <(iperf_json "" | mbps)
    use_links "2" "$spec1" "$steady"; read -r two _ < <(iperf_json "" | mbps)
    use_links "1 2" "$spec1" "$steady"
    ( for t in $(seq 1 $((steps - 1))); do
        sleep 5
        if [ $((t % 2)) = 1 ]; then ctl 1 "set both rate=10mbit"; else ctl 1 "set both rate=50mbit"; fi
      done ) &
    local stepper=$!
    iperf_json "-i 0.1 --get-server-output" "-J -i 0.1" > $work/steps.json
    kill $stepper 2>/dev/null || true; wait $stepper 2>/dev/null || true
    ctl 1 "set both rate=50mbit"
    read -r got stall < <(stalls $work/steps.json 10)
    python3 - "$name" "$cc" "$one" "$two" "$got" "$stall" "$secs" <<'PY'
import sys
name, cc, one, two, got, stall, secs = sys.argv[1], sys.argv[2], *map(float, sys.argv[3:])
# Seconds at 50 and at 10 Mbit/s on link 1 over the run (steps of 5 s).
t, at10, s = 0.0, 0.0, 0
while t < secs:
    d = min(5.0, secs - t)
    if s % 2 == 1:
        at10 += d
    t += d; s += 1
mean = (50 * (secs - at10) + 10 * at10) / secs
offered = one * mean / 50 + two
print(f"  {name:<40} {cc:<5} offered {offered:6.1f}  got {got:6.1f} Mbit/s  {100 * got / offered:5.1f} %  longest stretch below 10 Mbit/s {stall:.1f} s")
PY
  done
}

# A voice-like flow (50 datagrams/s of 160 bytes, A -> B) beside one bulk
# stream: its one-way delay p50 alone and p99 beside the bulk stream (both
# namespaces share the host's monotonic clock), and the bulk stream's
# goodput with and without it.
voice() {
  local name="voice beside bulk, 50 + 20 Mbit/s"
  [[ "$name" =~ ${ONLY:-.} ]] || return 0
  local l1="rate=50mbit delay=10ms" l2="rate=20mbit delay=10ms" bulk alone idle busy
  cat > $work/voice.py <<'PY'
import socket, struct, sys, time
role, secs = sys.argv[1], float(sys.argv[2])
if role == "rx":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.42.0.1", 5999)); s.settimeout(secs + 5)
    d = []
    try:
        while True:
            b = s.recv(2048)
            if b == b"end":
                break
            d.append((time.clock_gettime(time.CLOCK_MONOTONIC) - struct.unpack("d", b[:8])[0]) * 1000)
    except socket.timeout:
        pass
    d.sort()
    q = lambda p: d[min(len(d) - 1, int(p * len(d)))] if d else float("nan")
    print(f"{q(0.5):.2f} {q(0.99):.2f} {len(d)}")
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    end = time.monotonic() + secs
    while time.monotonic() < end:
        s.sendto(struct.pack("d", time.clock_gettime(time.CLOCK_MONOTONIC)) + b"v" * 152, ("10.42.0.1", 5999))
        time.sleep(0.02)
    for _ in range(3):
        s.sendto(b"end", ("10.42.0.1", 5999)); time.sleep(0.05)
PY
  voice_run() { # $1 = seconds; prints "p50 p99 count"
    ip netns exec $B python3 $work/voice.py rx "$1" > $work/voice.out &
    local rx=$!
    for _ in $(seq 100); do ip netns exec $B ss -lun | grep -q 10.42.0.1:5999 && break; sleep 0.05; done
    ip netns exec $A python3 $work/voice.py tx "$1"
    wait $rx; cat $work/voice.out
  }
  use_links "1 2" "$l1" "$l2"
  read -r idle _ _ < <(voice_run 5)
  for cc in $ccs; do
    read -r alone _ < <(iperf_json "" | mbps)
    ( voice_run $((secs - 2)) > $work/voice.busy ) &
    local vp=$!
    read -r bulk _ < <(iperf_json "" | mbps)
    wait $vp
    read -r _ busy n < $work/voice.busy
    python3 -c "import sys; n,cc,idle,busy,cnt,alone,bulk=sys.argv[1:]; print(f'  {n:<40} {cc:<5} voice one-way p50 idle {float(idle):.1f} ms, p99 beside bulk {float(busy):.1f} ms ({cnt} datagrams); bulk {float(bulk):.1f} of {float(alone):.1f} Mbit/s alone ({100*float(bulk)/float(alone):.0f} %)')" "$name" "$cc" "$idle" "$busy" "$n" "$alone" "$bulk"
  done
}

start_tunnel
echo "one TCP stream per figure (${ccs}), ${secs}s per transfer after ${omit}s left out, mean of ${repeat} over all links (goodput through the tunnel)"
scenario "2 x 50 Mbit/s, 10 ms each"              "rate=50mbit delay=10ms" "rate=50mbit delay=10ms"
scenario "80 + 20 Mbit/s, 10 ms each"             "rate=80mbit delay=10ms" "rate=20mbit delay=10ms"
scenario "50 + 50 Mbit/s, 10 ms / 60 ms"          "rate=50mbit delay=10ms" "rate=50mbit delay=60ms"
scenario "DSL 50/10ms + LTE 30/40ms+-5 + sat 20/300ms" "rate=50mbit delay=10ms" "rate=30mbit delay=40ms jitter=5ms" "rate=20mbit delay=300ms"
scenario "50 + 50 at 30 ms"                        "rate=50mbit delay=10ms" "rate=50mbit delay=30ms"
scenario "50 + 50 at 30 +- 15 ms reordering"       "rate=50mbit delay=10ms" "rate=50mbit delay=30ms jitter=15ms reorder=1"
scenario "50 clean + 50 with 30 % loss"           "rate=50mbit delay=10ms" "rate=50mbit delay=10ms loss=0.3"
rate_steps
voice

[[ failover =~ ${ONLY:-.} ]] || exit 0
# Failover: 2 x 50 Mbit/s; blackhole link 1 (both directions) mid-transfer,
# restore it later; report the longest stretch below 50 % of link 2's rate.
for cc in $ccs; do
  use_links "1 2" "rate=50mbit delay=10ms loss=0" "rate=50mbit delay=10ms loss=0"
  ( sleep $((secs / 3)); ctl 1 cut both; sleep $((secs / 3)); ctl 1 restore both ) &
  iperf_json "-i 0.1 --get-server-output" "-J -i 0.1" > $work/failover.json
  read -r got stall < <(stalls $work/failover.json 25)
  echo "  failover ($cc; link 1 blackholed at $((secs / 3))s, restored at $((2 * secs / 3))s): goodput $got Mbit/s, longest stretch below 25 Mbit/s $stall s"
done
echo "  packets re-sent from dead paths: $(ip netns exec $A "$bin" status --json -c $work/c.toml | python3 -c 'import json,sys; print(json.load(sys.stdin)["peers"][0].get("resent", 0))')"

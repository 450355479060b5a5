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
# (Linux, Windows and macOS defaults); CC=bbr measures BBR instead.
cc=${CC:-cubic}
# Seconds at the start of each stream left out of its figure (iperf3 -O):
# OMIT=10 measures the steady state after TCP's ramp-up.
omit=${OMIT:-0}
here=$(cd "$(dirname "$0")/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "bonding.sh: needs root" >&2; exit 1; }
for p in iperf3 ip python3; do command -v $p >/dev/null || { echo "missing $p" >&2; exit 1; }; done
cargo build --release --manifest-path "$here/Cargo.toml" -q -p mlvpn-rs -p mlvpn-linkemu
bin="$here/target/release/mlvpn-rs"
emu="$here/target/release/linkemu"
sfx=$$
A=mlbo-a-$sfx; I=mlbo-i-$sfx; B=mlbo-b-$sfx
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for ns in $A $I $B; do
    for p in $(ip netns pids $ns 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del $ns 2>/dev/null || true
  done
  [ -n "${VERBOSE:-}" ] && cp "$work"/*.log /tmp/ 2>/dev/null; rm -rf "$work"
}
trap cleanup EXIT INT TERM

for ns in $A $I $B; do ip netns add $ns; ip -n $ns link set lo up; done
for i in 1 2; do
  ip -n $A link add va$i type veth peer name ia$i netns $I
  ip -n $A addr add 10.10$i.0.1/24 dev va$i; ip -n $I addr add 10.10$i.0.254/24 dev ia$i
  ip -n $A link set va$i up; ip -n $I link set ia$i up
done
ip -n $I link add ib type veth peer name vb netns $B
ip -n $I addr add 10.201.0.254/24 dev ib; ip -n $B addr add 10.201.0.2/24 dev vb
ip -n $I link set ib up; ip -n $B link set vb up

(umask 077; "$bin" genkey > $work/c.key; "$bin" genkey > $work/s.key)
cpub=$("$bin" pubkey < $work/c.key); spub=$("$bin" pubkey < $work/s.key)
cat > $work/s.toml <<EOF
mode = "server"
[interface]
name = "mlvpn0"
address = ["10.42.0.1/30"]
private_key_file = "$work/s.key"
control_socket = "$work/s.sock"
[[peer]]
public_key = "$cpub"
allowed_ips = ["10.42.0.2/32"]
[[path]]
name = "isp1"
bind = "10.201.0.2:5080"
[[path]]
name = "isp2"
bind = "10.201.0.2:5081"
EOF
cat > $work/c.toml <<EOF
mode = "client"
[interface]
name = "mlvpn0"
address = ["10.42.0.2/30"]
private_key_file = "$work/c.key"
control_socket = "$work/c.sock"
[[peer]]
public_key = "$spub"
allowed_ips = ["10.42.0.0/30"]
[[path]]
name = "link1"
bind = "10.101.0.1:0"
endpoint = "10.101.0.254:5080"
[[path]]
name = "link2"
bind = "10.102.0.1:0"
endpoint = "10.102.0.254:5081"
EOF

ctl() { # $1 = link (1|2), rest = command
  local port=$((7000 + $1)); shift
  ip netns exec $I bash -c "exec 3<>/dev/udp/127.0.0.1/$port; echo '$*' >&3; timeout 1 head -c 200 <&3 >/dev/null || true"
}

start_link() { # $1 = link, $2 = spec (both directions)
  ip netns exec $I "$emu" --listen 10.10$1.0.254:508$(($1 - 1)) --upstream 10.201.0.2:508$(($1 - 1)) \
    --control 127.0.0.1:$((7000 + $1)) --up "$2" --down "$2" --seed $1 > $work/emu$1.out 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do grep -q ready $work/emu$1.out 2>/dev/null && return; sleep 0.05; done
  echo "linkemu $1 did not start" >&2; exit 1
}

qdrops() { # $1 = link: packets dropped by its full queue, towards the server
  local port=$((7000 + $1))
  ip netns exec $I python3 -c 'import socket,sys,json; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(1); s.sendto(b"stats",("127.0.0.1",int(sys.argv[1]))); print(json.loads(s.recv(4096))["up"]["dropped_queue"])' $port
}

paths_up() { ip netns exec $A "$bin" status --json -c $work/c.toml 2>/dev/null | grep -oE '"state":"(up|lossy)"' | wc -l; }
wait_paths() { # $1 = number of paths that must be up
  for _ in $(seq 200); do [ "$(paths_up)" = "$1" ] && return 0; sleep 0.05; done
  echo "paths did not reach $1 up" >&2; return 1
}

iperf_json() { # $1 = extra args; prints the JSON report
  ip netns exec $B iperf3 -s -1 -B 10.42.0.1 >/dev/null 2>&1 &
  local sp=$!
  for _ in $(seq 100); do ip netns exec $B ss -ltn | grep -q 10.42.0.1:5201 && break; sleep 0.05; done
  ip netns exec $A iperf3 -c 10.42.0.1 -t "$secs" -O "$omit" -C "$cc" -J $1 || true
  wait $sp 2>/dev/null || true
}

mbps() { python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.1f %d" % (d["end"]["sum_received"]["bits_per_second"]/1e6, d["end"]["sum_sent"].get("retransmits",0)))'; }

late() { ip netns exec $B "$bin" status --json -c $work/s.toml | python3 -c 'import json,sys; r=json.load(sys.stdin)["peers"][0]["reorder"]; print(r["late"], r["in_order"]+r["reordered"]+r["late"])'; }

ip netns exec $B "$bin" run -c $work/s.toml 2> $work/s.log & pids+=($!)
start_link 1 "rate=50mbit delay=10ms"
start_link 2 "rate=50mbit delay=10ms"
ip netns exec $A "$bin" run -c $work/c.toml 2> $work/c.log & pids+=($!)
wait_paths 2

scenario() { # $1 = name, $2 = link 1 spec, $3 = link 2 spec
  case "$1" in *"${ONLY:-}"*) ;; *) return 0 ;; esac
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
  iperf_json "" > $work/both.json; [ -n "${VERBOSE:-}" ] && python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(\"iperf:\", d.get(\"error\",\"ok\"), [round(i[\"sum\"][\"bits_per_second\"]/1e6,1) for i in d.get(\"intervals\",[])])" $work/both.json >&2
  read -r both rb < <(mbps < $work/both.json)
  read -r l1 n1 < <(late)
  [ -n "${VERBOSE:-}" ] && echo "queue drops during 'both': link1 $(( $(qdrops 1) - q10 )) link2 $(( $(qdrops 2) - q20 ))" >&2
  python3 - "$1" "$one" "$two" "$both" "$rb" "$((l1 - l0))" "$((n1 - n0))" <<'PY'
import sys
name, one, two, both, retr, late, total = sys.argv[1], *map(float, sys.argv[2:])
eff = 100 * both / (one + two) if one + two > 0 else 0
ooo = 100 * late / total if total else 0
print(f"  {name:<34} link1 {one:6.1f}  link2 {two:6.1f}  both {both:6.1f} Mbit/s  efficiency {eff:5.1f} %  retransmits {int(retr):5d}  out-of-order {ooo:.3f} %")
PY
}

echo "one TCP stream ($cc), ${secs}s per measurement after ${omit}s left out (goodput through the tunnel)"
scenario "2 x 50 Mbit/s, 10 ms each"        "rate=50mbit delay=10ms loss=0" "rate=50mbit delay=10ms loss=0"
scenario "80 + 20 Mbit/s, 10 ms each"       "rate=80mbit delay=10ms loss=0" "rate=20mbit delay=10ms loss=0"
scenario "50 + 50 Mbit/s, 10 ms / 60 ms"    "rate=50mbit delay=10ms loss=0" "rate=50mbit delay=60ms loss=0"
scenario "50 clean + 50 with 30 % loss"     "rate=50mbit delay=10ms loss=0" "rate=50mbit delay=10ms loss=0.3"

case failover in *"${ONLY:-}"*) ;; *) exit 0 ;; esac
# Failover: 2 x 50 Mbit/s; blackhole link 1 (both directions) mid-transfer,
# restore it later; report the longest stretch below 50 % of link 2's rate.
for l in 1 2; do ctl $l "set both rate=50mbit delay=10ms loss=0"; ctl $l restore both; done
wait_paths 2
( sleep $((secs / 3)); ctl 1 cut both; sleep $((secs / 3)); ctl 1 restore both ) &
iperf_json "-i 0.1" > $work/failover.json
python3 - $work/failover.json "$secs" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
iv = [(i["sum"]["start"], i["sum"]["bits_per_second"] / 1e6) for i in d["intervals"]]
worst, run, start = 0.0, 0.0, None
for t, mbps in iv[5:]:  # skip slow start
    if mbps < 25.0:
        run += 0.1
        worst = max(worst, run)
    else:
        run = 0.0
end = d["end"]
print(f"  failover (link 1 blackholed at {int(sys.argv[2])//3}s, restored at {2*int(sys.argv[2])//3}s): "
      f"goodput {end['sum_received']['bits_per_second']/1e6:.1f} Mbit/s, longest stretch below 25 Mbit/s {worst:.1f} s, "
      f"retransmits {end['sum_sent'].get('retransmits', 0)}, error: {d.get('error', 'none')}")
PY
echo "  packets re-sent from the dead path: $(ip netns exec $A "$bin" status --json -c $work/c.toml | python3 -c 'import json,sys; print(json.load(sys.stdin)["peers"][0].get("resent", 0))')"
echo "  path events:"; grep -hE "path (up|down)" $work/c.log | sed 's/^/    /' | tail -6

#!/usr/bin/env bash
# Demo: a two-site bonded tunnel in network namespaces on this machine.
#
#   sudo tests/demo.sh
#
# Builds mlvpn-rs, creates site A (client) and site B (server) joined by two
# uplinks (veth pairs "dsl" 50 Mbit/s and "lte" 20 Mbit/s, shaped with tc
# tbf), starts both daemons from the example
# configs in conf/, pings through the tunnel, runs a 5-second TCP transfer
# (iperf3) and prints how many bytes each uplink carried. Everything it made
# is removed when it exits, also on failure or Ctrl-C.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (it creates network namespaces and TUN devices)" >&2; exit 1; }

need=()
for pair in iperf3:iperf3 ip:iproute2 ping:iputils-ping ss:iproute2; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

echo "== building"
cargo build --release --manifest-path "$here/Cargo.toml"
bin="$here/target/release/mlvpn-rs"

A=mlvpn-demo-a-$$; B=mlvpn-demo-b-$$
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for ns in $A $B; do
    for p in $(ip netns pids $ns 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del $ns 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "== topology: $A (client site) <= dsl, lte => $B (server site)"
ip netns add $A; ip netns add $B
ip -n $A link set lo up; ip -n $B link set lo up
for i in 1 2; do
  ip -n $A link add va$i type veth peer name vb$i netns $B
  ip -n $A addr add 10.10$i.0.1/24 dev va$i; ip -n $B addr add 10.10$i.0.2/24 dev vb$i
  ip -n $A link set va$i up; ip -n $B link set vb$i up
done
# Uplinks like a branch office's: dsl 50 Mbit/s, lte 20 Mbit/s (upload).
ip netns exec $A tc qdisc add dev va1 root tbf rate 50mbit burst 512kbit latency 100ms
ip netns exec $A tc qdisc add dev va2 root tbf rate 20mbit burst 512kbit latency 100ms
echo "   uplinks shaped: dsl 50 Mbit/s, lte 20 Mbit/s (one TCP stream needs both)"

echo "== keys and configs (from conf/client.toml, conf/server.toml)"
(umask 077; "$bin" genkey > $work/client.key; "$bin" genkey > $work/server.key)
cpub=$("$bin" pubkey < $work/client.key); spub=$("$bin" pubkey < $work/server.key)
for side in client server; do
  sed -e "s|@SERVER_PUBLIC_KEY@|$spub|; s|@CLIENT_PUBLIC_KEY@|$cpub|" \
      -e "s|/etc/mlvpn-rs/$side.key|$work/$side.key|" \
      -e "s|/run/mlvpn-rs/mlvpn0.sock|$work/$side.sock|" \
      "$here/conf/$side.toml" > $work/$side.toml
  "$bin" check -c $work/$side.toml
done

echo "== starting the daemons"
ip netns exec $B "$bin" run -c $work/server.toml 2> $work/server.log & pids+=($!)
ip netns exec $A "$bin" run -c $work/client.toml 2> $work/client.log & pids+=($!)
echo "== waiting for both paths to be up"
for _ in $(seq 150); do
  up=$(ip netns exec $A "$bin" status --json -c $work/client.toml 2>/dev/null | grep -o '"state":"up"' | wc -l || true)
  [ "$up" = 2 ] && break
  sleep 0.1
done
[ "$up" = 2 ] || { echo "paths did not come up; client log:"; cat $work/client.log; exit 1; }

echo "== ping through the tunnel"
ip netns exec $A ping -c 3 -i 0.2 10.42.0.1

echo "== 5-second TCP transfer (iperf3) through the tunnel"
tx1=$(ip netns exec $A cat /sys/class/net/va1/statistics/tx_bytes)
tx2=$(ip netns exec $A cat /sys/class/net/va2/statistics/tx_bytes)
ip netns exec $B iperf3 -s -1 -B 10.42.0.1 >/dev/null 2>&1 & pids+=($!)
for _ in $(seq 100); do ip netns exec $B ss -ltn | grep -q 10.42.0.1:5201 && break; sleep 0.05; done
ip netns exec $A iperf3 -c 10.42.0.1 -t 5
d1=$(( $(ip netns exec $A cat /sys/class/net/va1/statistics/tx_bytes) - tx1 ))
d2=$(( $(ip netns exec $A cat /sys/class/net/va2/statistics/tx_bytes) - tx2 ))

echo "== bytes sent by each uplink of the client site during the transfer"
printf '  dsl (va1): %12d bytes (%d%%)\n' $d1 $(( 100 * d1 / (d1 + d2) ))
printf '  lte (va2): %12d bytes (%d%%)\n' $d2 $(( 100 * d2 / (d1 + d2) ))

echo "== mlvpn-rs status (client)"
ip netns exec $A "$bin" status -c $work/client.toml
echo "== mlvpn-rs status (server)"
ip netns exec $B "$bin" status -c $work/server.toml

#!/usr/bin/env bash
# Single-stream TCP throughput through mlvpn-rs (1 and 2 paths) next to
# WireGuard userspace implementations (boringtun-cli, wireguard-go), all on the
# same unshaped veth topology in the same run. Not a test: prints figures.
#
#   sudo tests/bench/baseline.sh [SECONDS]
#
# Needs: iperf3, iproute2, wireguard-tools (wg); optional: boringtun-cli
# (cargo install boringtun-cli), wireguard-go (Debian package). Missing peers
# are skipped with a message.
set -euo pipefail
secs=${1:-10}
here=$(cd "$(dirname "$0")/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "baseline.sh: needs root" >&2; exit 1; }
for p in iperf3 ip; do command -v $p >/dev/null || { echo "missing $p" >&2; exit 1; }; done
cargo build --release --manifest-path "$here/Cargo.toml" -q
bin="$here/target/release/mlvpn-rs"
sfx=$$
A=mlb-a-$sfx; B=mlb-b-$sfx
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns del $A 2>/dev/null || true; ip netns del $B 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ip netns add $A; ip netns add $B
ip -n $A link set lo up; ip -n $B link set lo up
for i in 1 2; do
  ip link add va$i-$sfx type veth peer name vb$i-$sfx
  ip link set va$i-$sfx netns $A name va$i; ip link set vb$i-$sfx netns $B name vb$i
  ip -n $A addr add 10.10$i.0.1/24 dev va$i; ip -n $B addr add 10.10$i.0.2/24 dev vb$i
  ip -n $A link set va$i up; ip -n $B link set vb$i up
done

iperf() { # $1 = server address in B
  ip netns exec $B iperf3 -s -1 -B "$1" >/dev/null 2>&1 &
  local sp=$!
  for _ in $(seq 100); do ip netns exec $B ss -ltn | grep -q ":5201" && break; sleep 0.05; done
  ip netns exec $A iperf3 -c "$1" -t "$secs" -J 2>/dev/null \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.0f" % (d["end"]["sum_received"]["bits_per_second"]/1e6))' || echo "failed"
  wait $sp 2>/dev/null || true
}

wait_ping() { # $1 = address
  for _ in $(seq 200); do ip netns exec $A ping -c1 -W1 "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done
  return 1
}

declare -A result
result[veth]=$(iperf 10.101.0.2)

# --- mlvpn-rs
"$bin" genkey > $work/c.key; "$bin" genkey > $work/s.key
cpub=$("$bin" pubkey < $work/c.key); spub=$("$bin" pubkey < $work/s.key)
mlvpn() { # $1 = number of paths
  local n=$1
  {
    echo 'mode = "server"'; echo '[interface]'; echo 'name = "mlvpn0"'; echo 'address = ["10.42.0.1/30"]'
    echo "private_key_file = \"$work/s.key\""; echo "control_socket = \"$work/s.sock\""
    echo '[[peer]]'; echo "public_key = \"$cpub\""; echo 'allowed_ips = ["10.42.0.2/32"]'
    for i in $(seq $n); do echo '[[path]]'; echo "name = \"isp$i\""; echo "bind = \"10.10$i.0.2:508$i\""; done
  } > $work/s.toml
  {
    echo 'mode = "client"'; echo '[interface]'; echo 'name = "mlvpn0"'; echo 'address = ["10.42.0.2/30"]'
    echo "private_key_file = \"$work/c.key\""; echo "control_socket = \"$work/c.sock\""
    echo '[[peer]]'; echo "public_key = \"$spub\""; echo 'allowed_ips = ["10.42.0.0/30"]'
    for i in $(seq $n); do echo '[[path]]'; echo "name = \"p$i\""; echo "bind = \"10.10$i.0.1:0\""; echo "endpoint = \"10.10$i.0.2:508$i\""; done
  } > $work/c.toml
  ip netns exec $B "$bin" run -c $work/s.toml 2>$work/s.log & local s=$!
  ip netns exec $A "$bin" run -c $work/c.toml 2>$work/c.log & local c=$!
  pids+=($s $c)
  if wait_ping 10.42.0.1; then iperf 10.42.0.1; else echo "no tunnel"; fi
  kill $s $c; wait $s $c 2>/dev/null || true
  grep -h "path down" $work/s.log $work/c.log >&2 || true
}
result[mlvpn1]=$(mlvpn 1)
result[mlvpn2]=$(mlvpn 2)

# --- WireGuard userspace peers (1 path: 10.101.0.0/24)
wgpeer() { # $1 = boringtun-cli | wireguard-go
  local impl=$1
  command -v wg >/dev/null || { echo "skipped (no wg)"; return; }
  command -v "$impl" >/dev/null || { echo "skipped (no $impl)"; return; }
  (umask 077; wg genkey > $work/wa; wg genkey > $work/wb)
  # Distinct names: the userspace API socket lives in /var/run/wireguard,
  # shared by both namespaces.
  local ia=wga$sfx ib=wgb$sfx
  ia=${ia:0:15}; ib=${ib:0:15}
  for x in "$A $ia" "$B $ib"; do
    set -- $x
    if [ "$impl" = boringtun-cli ]; then
      ip netns exec $1 env WG_SUDO=1 boringtun-cli --disable-drop-privileges "$2" >/dev/null 2>&1
    else
      ip netns exec $1 wireguard-go "$2" >/dev/null 2>&1
    fi
  done
  ip netns exec $A wg set $ia private-key $work/wa listen-port 51820 peer "$(wg pubkey < $work/wb)" allowed-ips 10.43.0.0/30 endpoint 10.101.0.2:51820
  ip netns exec $B wg set $ib private-key $work/wb listen-port 51820 peer "$(wg pubkey < $work/wa)" allowed-ips 10.43.0.0/30
  ip -n $A addr add 10.43.0.2/30 dev $ia; ip -n $B addr add 10.43.0.1/30 dev $ib
  ip -n $A link set $ia mtu 1420 up; ip -n $B link set $ib mtu 1420 up
  if wait_ping 10.43.0.1; then iperf 10.43.0.1; else echo "no tunnel"; fi
  ip -n $A link del $ia 2>/dev/null || true; ip -n $B link del $ib 2>/dev/null || true
  pkill -f "$impl $ia" 2>/dev/null || true; pkill -f "$impl $ib" 2>/dev/null || true
}
result[boringtun]=$(wgpeer boringtun-cli)
result[wggo]=$(wgpeer wireguard-go)

echo
echo "single TCP stream, ${secs}s, Mbit/s (same run, same topology)"
printf '  %-28s %s\n' "raw veth" "${result[veth]}" \
  "mlvpn-rs, 1 path" "${result[mlvpn1]}" \
  "mlvpn-rs, 2 paths" "${result[mlvpn2]}" \
  "boringtun-cli, 1 path" "${result[boringtun]}" \
  "wireguard-go, 1 path" "${result[wggo]}"

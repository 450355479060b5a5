# Shared by the benchmarks: the two-site topology with emulated links.
#
# Site A (client) has $LINKS uplinks (default 2) into an "internet"
# namespace I, where one linkemu relay per uplink shapes the link (rate,
# delay, jitter, loss) and NATs towards site B (server). Sourced after the
# caller set $secs, $omit and $cc; defines $A $I $B, $links, $work, $bin,
# $emu, the keys ($spub, $cpub), both configs and the helpers below. The
# EXIT trap removes everything it made. Kernel defaults are kept: the TCP
# metrics cache is flushed before each transfer (iperf_json), never
# switched off, so figures are what users see.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "$(basename "$0"): needs root" >&2; exit 1; }
for p in iperf3 ip python3; do command -v $p >/dev/null || { echo "missing $p" >&2; exit 1; }; done
# BIN_DIR: use binaries already built there (the soak test under `cargo
# test` passes target/debug); otherwise build release ones.
if [ -n "${BIN_DIR:-}" ]; then
  bindir=$BIN_DIR
else
  cargo build --release --manifest-path "$here/Cargo.toml" -q -p mlvpn-rs -p mlvpn-linkemu ${EXTRA_PACKAGES:-}
  bindir="$here/target/release"
fi
bin="$bindir/mlvpn-rs"
emu="$bindir/linkemu"
for b in "$bin" "$emu"; do [ -x "$b" ] || { echo "missing $b" >&2; exit 1; }; done
sfx=$$
A=mlbo-a-$sfx; I=mlbo-i-$sfx; B=mlbo-b-$sfx
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for ns in $A $I $B; do
    for p in $(ip netns pids $ns 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del $ns 2>/dev/null || true
  done
  [ -n "${VERBOSE:-}" ] && cp "$work"/*.log /tmp/ 2>/dev/null; rm -rf "$work"
}
trap cleanup EXIT INT TERM

links=${LINKS:-2}
[[ $links =~ ^[1-9]$ ]] || { echo "LINKS: 1 to 9" >&2; exit 2; }
for ns in $A $I $B; do ip netns add $ns; ip -n $ns link set lo up; done
for i in $(seq $links); do
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
EOF
for i in $(seq $links); do
  printf '[[path]]\nname = "isp%d"\nbind = "10.201.0.2:%d"\n' $i $((5079 + i)) >> $work/s.toml
done
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
EOF
for i in $(seq $links); do
  printf '[[path]]\nname = "link%d"\nbind = "10.10%d.0.1:0"\nendpoint = "10.10%d.0.254:%d"\n' $i $i $i $((5079 + i)) >> $work/c.toml
done

ctl() { # $1 = link (1..$links), rest = command
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

paths_up() { ip netns exec $A "$bin" status --json -c $work/c.toml 2>/dev/null | grep -oE '"state":"(up|lossy)"' | wc -l; }
wait_paths() { # $1 = number of paths that must be up
  # An idle path that was cut is noticed by its probes (seconds).
  for _ in $(seq 600); do [ "$(paths_up)" = "$1" ] && return 0; sleep 0.05; done
  echo "paths did not reach $1 up within 30 s:" >&2
  ip netns exec $A "$bin" status -c $work/c.toml >&2 || true
  return 1
}

iperf_json() { # $1 = extra args, $2 = extra server args; prints the JSON report
  # Each transfer starts from the same TCP state: nothing (ssthresh, RTT)
  # cached from the previous one, which ran over other links.
  ip -n $A tcp_metrics flush all 2>/dev/null || true
  ip -n $B tcp_metrics flush all 2>/dev/null || true
  ip netns exec $B iperf3 -s -1 -B 10.42.0.1 ${2:-} >/dev/null 2>&1 &
  local sp=$!
  for _ in $(seq 100); do ip netns exec $B ss -ltn | grep -q 10.42.0.1:5201 && break; sleep 0.05; done
  ip netns exec $A iperf3 -c 10.42.0.1 -t "$secs" -O "$omit" -C "$cc" -J $1 || true
  wait $sp 2>/dev/null || true
}

mbps() { python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.1f %d" % (d["end"]["sum_received"]["bits_per_second"]/1e6, d["end"]["sum_sent"].get("retransmits",0)))'; }

start_tunnel() { # server, every link with spec $1, client; waits for every path
  ip netns exec $B "$bin" run -c $work/s.toml 2> $work/s.log & pids+=($!)
  local i
  for i in $(seq $links); do start_link $i "${1:-rate=50mbit delay=10ms}"; done
  ip netns exec $A "$bin" run -c $work/c.toml 2> $work/c.log & pids+=($!)
  wait_paths $links
}

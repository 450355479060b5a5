#!/usr/bin/env bash
# mlvpn-rs next to WireGuard userspace implementations on the same unshaped
# veth topology, all in one run. Not a test: prints figures.
#
#   sudo tests/bench/baseline.sh [SECS] [KNOB=VALUE ...]
#
# Two namespaces joined by two unshaped veth pairs (10.101.0.0/24 and
# 10.102.0.0/24). Tunnels: veth (raw, no tunnel), mlvpn1 and mlvpn2 (mlvpn-rs
# over 1 and 2 of the veths), boringtun (boringtun-cli) and wggo
# (wireguard-go), both over the first veth. For each tunnel and each
# congestion control, iperf3 measures (a) 1 TCP stream, (b) 4 streams (-P 4),
# (c) 1 stream held at RATE (-b); each figure is the median of REPS runs. The
# TCP metrics cache of both namespaces is flushed before every transfer (it
# is never disabled). CPU is utime+stime of both tunnel endpoints' processes
# and all their descendants (mlvpn-rs: privileged parent + worker), read from
# /proc/PID/stat right before and after each transfer, per GB received.
# Idle ping p50: the median of PINGS per-packet times at a 10-ms interval,
# before the transfers. mlvpn-rs worker peak RSS: VmHWM of both ends' workers
# after the transfers, the larger one.
#
# Knobs (environment, or KNOB=VALUE arguments; a bare number is SECS):
#   SECS=10              seconds per transfer (not SECONDS: bash owns it)
#   REPS=3               repetitions per figure (the median is printed)
#   TCP_CC="cubic bbr"   congestion controls (iperf3 -C), one table each
#   TUNNELS="veth mlvpn1 mlvpn2 boringtun wggo"   subset and order to run
#   RATE=300M            the rate of the held stream (iperf3 -b)
#   PINGS=200            pings for the idle p50
#   MLVPN_EXTRA_ARGS=    extra arguments to `mlvpn-rs run` (word-split)
#   MLVPN_OFFLOAD=off    passed through to the mlvpn-rs daemons (the header
#                        says whether it was set)
#   WIREGUARD_GO=path    default: ../shared/anchors/wireguard-go from the
#                        repository root, else wireguard-go on PATH
#   BORINGTUN=path       default: boringtun-cli on PATH
#   BIN_DIR=dir          use the mlvpn-rs binary there instead of building
#                        (the build honours CARGO_TARGET_DIR)
#   KEEP_LOGS=dir        copy the daemons' logs there on exit
#
# Needs: iperf3, iproute2, ping, python3, wireguard-tools (wg) for the
# WireGuard peers. Missing peers are skipped with a message.
set -euo pipefail

knobs="SECS REPS TCP_CC TUNNELS RATE PINGS MLVPN_EXTRA_ARGS MLVPN_OFFLOAD WIREGUARD_GO BORINGTUN BIN_DIR KEEP_LOGS"
for arg in "$@"; do
  case $arg in
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    [0-9]*) SECS=$arg ;;
    *=*)
      k=${arg%%=*}
      [[ " $knobs " == *" $k "* ]] || { echo "baseline.sh: unknown knob $k (known: $knobs)" >&2; exit 2; }
      export "${k}=${arg#*=}" ;;
    *) echo "baseline.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done
secs=${SECS:-10}
reps=${REPS:-3}
ccs=${TCP_CC:-cubic bbr}
tunnels=${TUNNELS:-veth mlvpn1 mlvpn2 boringtun wggo}
rate=${RATE:-300M}
pings=${PINGS:-200}
read -ra mlvpn_extra <<< "${MLVPN_EXTRA_ARGS:-}"
[[ $secs =~ ^[0-9]+$ && $reps =~ ^[1-9][0-9]*$ && $pings =~ ^[1-9][0-9]*$ ]] \
  || { echo "baseline.sh: SECS, REPS and PINGS must be whole numbers" >&2; exit 2; }
for t in $tunnels; do
  case $t in veth|mlvpn1|mlvpn2|boringtun|wggo) ;; *) echo "baseline.sh: unknown tunnel $t" >&2; exit 2 ;; esac
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "baseline.sh: needs root" >&2; exit 1; }
for p in iperf3 ip ping python3; do command -v $p >/dev/null || { echo "baseline.sh: missing $p" >&2; exit 1; }; done

need_mlvpn=0
[[ " $tunnels " == *" mlvpn"* ]] && need_mlvpn=1
bin=
if [ $need_mlvpn = 1 ]; then
  if [ -n "${BIN_DIR:-}" ]; then
    bindir=$BIN_DIR
  else
    cargo build --release --manifest-path "$here/Cargo.toml" -q -p mlvpn-rs
    # Where cargo put it: CARGO_TARGET_DIR, a configured target-dir or target/.
    bindir=$(cargo metadata --manifest-path "$here/Cargo.toml" --format-version 1 --no-deps \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release
  fi
  bin=$bindir/mlvpn-rs
  [ -x "$bin" ] || { echo "baseline.sh: missing $bin" >&2; exit 1; }
fi

wggo=${WIREGUARD_GO:-}
if [ -z "$wggo" ]; then
  if [ -x "$here/../shared/anchors/wireguard-go" ]; then
    wggo=$(cd "$here/../shared/anchors" && pwd)/wireguard-go
  else
    wggo=$(command -v wireguard-go || true)
  fi
fi
boringtun=${BORINGTUN:-$(command -v boringtun-cli || true)}

sfx=$$
A=mlb-a-$sfx; B=mlb-b-$sfx
work=$(mktemp -d)
res=$work/results
pids=()
wgsocks=()
cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  for ns in $A $B; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  for s in "${wgsocks[@]}"; do rm -f "$s"; done
  if [ -n "${KEEP_LOGS:-}" ]; then mkdir -p "$KEEP_LOGS" && cp "$work"/*.log "$KEEP_LOGS"/ 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- helpers (numbers, medians and the report are done by this Python file)
cat > "$work/h.py" <<'PY'
import json, os, re, statistics, sys

def procs():
    """pid -> parent pid, for every process."""
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    out[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    return out

def tree(roots):
    """The roots and all their living descendants."""
    parent = procs()
    kids = {}
    for p, pp in parent.items():
        kids.setdefault(pp, []).append(p)
    seen, todo = [], [r for r in roots if r in parent]
    while todo:
        p = todo.pop()
        seen.append(p)
        todo.extend(kids.get(p, []))
    return seen

def cpu(roots):
    """utime + stime (own, not the cumulative children's) of the trees, s."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    for p in tree(roots):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / tick

def hwm(roots):
    """The largest VmHWM (kB) of the mlvpn-rs workers in the trees."""
    best = 0
    for p in tree(roots):
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                if b"__worker" not in f.read():
                    continue
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        best = max(best, int(line.split()[1]))
        except (OSError, ValueError):
            pass
    return best

def iperf(path):
    """'Mbit/s bytes' received, or 'nan 0' with the error on stderr."""
    try:
        d = json.load(open(path))
        r = d["end"]["sum_received"]
        return "%.1f %d" % (r["bits_per_second"] / 1e6, r["bytes"])
    except Exception as e:  # an empty or truncated report, an iperf3 error
        try:
            err = json.load(open(path)).get("error", e)
        except Exception:
            err = e
        print(f"    iperf3: {err}", file=sys.stderr)
        return "nan 0"

def ping(path):
    t = [float(x) for x in re.findall(r"time=([0-9.]+) ms", open(path).read())]
    return "%.3f %d" % (statistics.median(t), len(t)) if t else "nan 0"

def med(xs):
    xs = [x for x in xs if x == x]
    return statistics.median(xs) if xs else float("nan")

LABEL = {"veth": "raw veth", "mlvpn1": "mlvpn-rs, 1 path", "mlvpn2": "mlvpn-rs, 2 paths",
         "boringtun": "boringtun-cli", "wggo": "wireguard-go"}

def report(path, ccs, tunnels, rate, secs, reps):
    rows, pingp50, note, rss = {}, {}, {}, {}
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if f[0] == "R":  # R tunnel cc mode mbps bytes cpu_s
            _, t, cc, mode, mbps, nbytes, c = f
            mbps, gb = float(mbps), int(nbytes) / 1e9
            cpg = float(c) / gb if c != "-" and gb > 0 else float("nan")
            rows.setdefault((t, cc, mode), []).append((mbps, cpg, c == "-"))
        elif f[0] == "P":
            pingp50[f[1]] = float(f[2])
        elif f[0] == "S":
            note[f[1]] = f[2]
        elif f[0] == "H":
            rss[f[1]] = int(f[2])

    def fig(t, cc, mode, i):
        return med([r[i] for r in rows.get((t, cc, mode), [])])

    def num(x, d=0):
        return "failed" if x != x else f"{x:,.{d}f}".replace(",", " ")

    def cpu_txt(t, cc, mode):
        r = rows.get((t, cc, mode), [])
        if r and r[0][2]:
            return "–"
        return num(fig(t, cc, mode, 1), 1)

    def ratio(a, b):
        return "n/a" if a != a or b != b or b == 0 else f"{a / b:.2f}x"

    veth = pingp50.get("veth")
    head = ("tunnel", "1 stream Mbit/s", "4 streams Mbit/s", f"{rate} CPU s/GB",
            "full-speed CPU s/GB", "ping p50 ms", "ping - veth ms")
    w = (18, 15, 16, 14, 19, 11, 14)
    def line(cells):
        print("  " + "  ".join(c.ljust(w[0]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(cells)))
    for cc in ccs:
        print()
        print(f"TCP {cc}: iperf3 {secs} s per transfer, median of {reps}; CPU = both endpoints' "
              f"processes per GB received (full speed: the 1-stream transfer)")
        line(head)
        starred = False
        for t in tunnels:
            if t in note:
                print("  " + LABEL[t].ljust(w[0]) + "  " + note[t])
                continue
            p = pingp50.get(t, float("nan"))
            dp = "–" if t == "veth" or veth is None or p != p else f"{p - veth:+.3f}"
            held = fig(t, cc, "rate", 0)
            mark = "*" if held == held and held < 0.95 * float(rate.rstrip("MmKkGg")) * \
                {"k": 1e-3, "m": 1, "g": 1e3}.get(rate[-1].lower(), 1e-6) else ""
            starred = starred or bool(mark)
            line((LABEL[t], num(fig(t, cc, "1", 0)), num(fig(t, cc, "4", 0)),
                  cpu_txt(t, cc, "rate") + mark, cpu_txt(t, cc, "1"), num(p, 3), dp))
        # mlvpn-rs 1 path against the fastest WireGuard (1 stream, this CC).
        wgs = [t for t in ("boringtun", "wggo") if t in tunnels and t not in note
               and fig(t, cc, "1", 0) == fig(t, cc, "1", 0)]
        if "mlvpn1" in tunnels and "mlvpn1" not in note and wgs:
            best = max(wgs, key=lambda t: fig(t, cc, "1", 0))
            pm, pb = pingp50.get("mlvpn1", float("nan")), pingp50.get(best, float("nan"))
            line(("ratio: ours/theirs", ratio(fig("mlvpn1", cc, "1", 0), fig(best, cc, "1", 0)),
                  ratio(fig("mlvpn1", cc, "4", 0), fig(best, cc, "4", 0)),
                  ratio(fig("mlvpn1", cc, "rate", 1), fig(best, cc, "rate", 1)),
                  ratio(fig("mlvpn1", cc, "1", 1), fig(best, cc, "1", 1)),
                  ratio(pm, pb), "n/a" if veth is None or pm != pm else f"{pm - veth:+.3f}"))
            print(f"  (mlvpn-rs, 1 path / {LABEL[best]}, the fastest WireGuard at 1 stream; "
                  f"last column: mlvpn-rs's ping p50 minus raw veth's)")
        else:
            print("  (no ratio: needs mlvpn1 and a WireGuard peer that ran)")
        if starred:
            print(f"  *: the held stream got less than 95 % of {rate}")
    print()
    if rss:
        print("mlvpn-rs worker peak RSS (VmHWM, larger of both ends, after the transfers): "
              + ", ".join(f"{LABEL[t]} {kb / 1024:.1f} MiB" for t, kb in rss.items()))

cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "cpu":
    print("%.2f" % cpu([int(a) for a in args]))
elif cmd == "hwm":
    print(hwm([int(a) for a in args]))
elif cmd == "iperf":
    print(iperf(args[0]))
elif cmd == "ping":
    print(ping(args[0]))
elif cmd == "sub":
    print("%.2f" % (float(args[0]) - float(args[1])))
elif cmd == "report":
    report(args[0], args[1].split(), args[2].split(), args[3], args[4], args[5])
PY
h() { python3 "$work/h.py" "$@"; }

# --- header
echo "baseline.sh: ${secs} s per transfer, median of ${reps}, CC: ${ccs}, held rate ${rate}, tunnels: ${tunnels}"
echo "  host: $(uname -r), $(nproc) CPUs; $(iperf3 --version | head -1)"
if [ -n "$bin" ]; then
  echo "  mlvpn-rs: $bin ($(git -C "$here" describe --always --dirty 2>/dev/null || echo '?'))${MLVPN_EXTRA_ARGS:+, extra args: $MLVPN_EXTRA_ARGS}"
fi
if [ -n "${MLVPN_OFFLOAD+x}" ]; then
  export MLVPN_OFFLOAD
  echo "  MLVPN_OFFLOAD=${MLVPN_OFFLOAD} (passed to the mlvpn-rs daemons)"
else
  echo "  MLVPN_OFFLOAD not set (mlvpn-rs offload defaults)"
fi
if [[ " $tunnels " == *" wggo "* ]]; then
  if [ -n "$wggo" ] && [ -x "$wggo" ]; then
    echo "  wireguard-go: $wggo ($("$wggo" --version 2>&1 | head -1))"
  else
    echo "  wireguard-go: not found (WIREGUARD_GO, ../shared/anchors/wireguard-go, PATH)"
  fi
fi
if [[ " $tunnels " == *" boringtun "* ]]; then
  if [ -n "$boringtun" ]; then
    echo "  boringtun-cli: $boringtun ($("$boringtun" --version 2>&1 | head -1))"
  else
    echo "  boringtun-cli: not found (BORINGTUN, PATH)"
  fi
fi

# --- topology
ip netns add $A; ip netns add $B
ip -n $A link set lo up; ip -n $B link set lo up
for i in 1 2; do
  ip link add va$i-$sfx type veth peer name vb$i-$sfx
  ip link set va$i-$sfx netns $A name va$i; ip link set vb$i-$sfx netns $B name vb$i
  ip -n $A addr add 10.10$i.0.1/24 dev va$i; ip -n $B addr add 10.10$i.0.2/24 dev vb$i
  ip -n $A link set va$i up; ip -n $B link set vb$i up
done

# Congestion controls the kernel offers (iperf3 -C fails on the others).
avail=$(ip netns exec $A sysctl -n net.ipv4.tcp_available_congestion_control)
run_ccs=""
for cc in $ccs; do
  if [[ " $avail " != *" $cc "* ]]; then
    modprobe "tcp_$cc" 2>/dev/null || true
    avail=$(ip netns exec $A sysctl -n net.ipv4.tcp_available_congestion_control)
  fi
  if [[ " $avail " == *" $cc "* ]]; then run_ccs="$run_ccs $cc"; else echo "  CC $cc: not available (kernel offers: $avail), skipped"; fi
done
run_ccs=${run_ccs# }
[ -n "$run_ccs" ] || { echo "baseline.sh: no congestion control to run" >&2; exit 1; }
: > "$res"

wait_ping() { # $1 = address
  for _ in $(seq 200); do ip netns exec $A ping -c1 -W1 "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done
  return 1
}

# The tunnel's daemons, both ends (empty for the raw veth).
tpids=()

# One transfer: prints "Mbit/s bytes CPU-seconds" ("-" without daemons).
transfer() { # $1 = server address, $2 = CC, rest = extra iperf3 args
  local addr=$1 cc=$2; shift 2
  ip -n $A tcp_metrics flush all; ip -n $B tcp_metrics flush all
  ip netns exec $B iperf3 -s -1 -B "$addr" >/dev/null 2>&1 &
  local sp=$!
  for _ in $(seq 100); do ip netns exec $B ss -ltn | grep -q "$addr:5201" && break; sleep 0.05; done
  local c0=- c1=-
  [ ${#tpids[@]} -gt 0 ] && c0=$(h cpu "${tpids[@]}")
  timeout $((secs + 30)) ip netns exec $A iperf3 -c "$addr" -t "$secs" -C "$cc" -J "$@" > "$work/iperf.json" 2>/dev/null || true
  [ ${#tpids[@]} -gt 0 ] && c1=$(h cpu "${tpids[@]}")
  kill $sp 2>/dev/null || true; wait $sp 2>/dev/null || true
  local cpu=-
  [ ${#tpids[@]} -gt 0 ] && cpu=$(h sub "$c1" "$c0")
  echo "$(h iperf "$work/iperf.json") $cpu"
}

# Everything for one tunnel whose server end is $2.
measure() { # $1 = tunnel, $2 = server address
  local t=$1 addr=$2 cc mode r mbps bytes cpu p50 n
  ip netns exec $A ping -n -i 0.01 -c "$pings" "$addr" > "$work/ping.txt" 2>&1 || true
  read -r p50 n < <(h ping "$work/ping.txt")
  printf 'P\t%s\t%s\n' "$t" "$p50" >> "$res"
  echo "  $t: idle ping p50 $p50 ms ($n replies)"
  for cc in $run_ccs; do
    for mode in 1 4 rate; do
      local extra=()
      case $mode in 4) extra=(-P 4) ;; rate) extra=(-b "$rate") ;; esac
      for r in $(seq "$reps"); do
        read -r mbps bytes cpu < <(transfer "$addr" "$cc" "${extra[@]}")
        printf 'R\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$cc" "$mode" "$mbps" "$bytes" "$cpu" >> "$res"
        echo "  $t $cc ${extra[*]:-1 stream} #$r: $mbps Mbit/s, CPU $cpu s"
      done
    done
  done
}

skip() { # $1 = tunnel, $2 = why
  printf 'S\t%s\t%s\n' "$1" "$2" >> "$res"
  echo "  $1: $2"
}

stop() { # the daemons in tpids
  local p
  for p in "${tpids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${tpids[@]}"; do wait "$p" 2>/dev/null || true; done
  tpids=()
}

# --- raw veth
run_veth() {
  tpids=()
  wait_ping 10.101.0.2 || { skip veth "no ping over the veth"; return; }
  measure veth 10.101.0.2
}

# --- mlvpn-rs
run_mlvpn() { # $1 = number of paths
  local n=$1 t=mlvpn$1 i s c
  if [ ! -f "$work/c.key" ]; then
    (umask 077; "$bin" genkey > "$work/c.key"; "$bin" genkey > "$work/s.key")
  fi
  local cpub spub
  cpub=$("$bin" pubkey < "$work/c.key"); spub=$("$bin" pubkey < "$work/s.key")
  {
    echo 'mode = "server"'; echo '[interface]'; echo 'name = "mlvpn0"'; echo 'address = ["10.42.0.1/30"]'
    echo "private_key_file = \"$work/s.key\""; echo "control_socket = \"$work/s$n.sock\""
    echo '[[peer]]'; echo "public_key = \"$cpub\""; echo 'allowed_ips = ["10.42.0.2/32"]'
    for i in $(seq "$n"); do echo '[[path]]'; echo "name = \"isp$i\""; echo "bind = \"10.10$i.0.2:508$i\""; done
  } > "$work/s$n.toml"
  {
    echo 'mode = "client"'; echo '[interface]'; echo 'name = "mlvpn0"'; echo 'address = ["10.42.0.2/30"]'
    echo "private_key_file = \"$work/c.key\""; echo "control_socket = \"$work/c$n.sock\""
    echo '[[peer]]'; echo "public_key = \"$spub\""; echo 'allowed_ips = ["10.42.0.0/30"]'
    for i in $(seq "$n"); do echo '[[path]]'; echo "name = \"p$i\""; echo "bind = \"10.10$i.0.1:0\""; echo "endpoint = \"10.10$i.0.2:508$i\""; done
  } > "$work/c$n.toml"
  ip netns exec $B "$bin" run -c "$work/s$n.toml" "${mlvpn_extra[@]}" 2> "$work/mlvpn$n-server.log" & s=$!
  ip netns exec $A "$bin" run -c "$work/c$n.toml" "${mlvpn_extra[@]}" 2> "$work/mlvpn$n-client.log" & c=$!
  pids+=("$s" "$c"); tpids=("$s" "$c")
  if wait_ping 10.42.0.1; then
    measure "$t" 10.42.0.1
    printf 'H\t%s\t%s\n' "$t" "$(h hwm "${tpids[@]}")" >> "$res"
  else
    skip "$t" "no tunnel (see KEEP_LOGS)"
  fi
  stop
  grep -h "path down" "$work/mlvpn$n-server.log" "$work/mlvpn$n-client.log" >&2 || true
}

# --- WireGuard userspace peers (1 path: 10.101.0.0/24), in the foreground so
# their pids are known.
run_wg() { # $1 = boringtun | wggo
  local t=$1 exe ia ib x ns ifc p
  command -v wg >/dev/null || { skip "$t" "skipped (no wg: install wireguard-tools)"; return; }
  if [ "$t" = boringtun ]; then exe=$boringtun; else exe=$wggo; fi
  if [ -z "$exe" ] || [ ! -x "$exe" ]; then
    if [ "$t" = wggo ]; then skip "$t" "skipped (no wireguard-go)"; else skip "$t" "skipped (no boringtun-cli)"; fi
    return
  fi
  (umask 077; wg genkey > "$work/wa"; wg genkey > "$work/wb")
  # Distinct names: the userspace API socket lives in /var/run/wireguard,
  # shared by both namespaces.
  ia=wga$sfx; ib=wgb$sfx; ia=${ia:0:15}; ib=${ib:0:15}
  tpids=()
  for x in "$A $ia" "$B $ib"; do
    read -r ns ifc <<< "$x"
    wgsocks+=("/var/run/wireguard/$ifc.sock")
    if [ "$t" = boringtun ]; then
      ip netns exec "$ns" env WG_SUDO=1 "$exe" --foreground --disable-drop-privileges "$ifc" > "$work/$t-$ifc.log" 2>&1 &
    else
      ip netns exec "$ns" env WG_PROCESS_FOREGROUND=1 "$exe" -f "$ifc" > "$work/$t-$ifc.log" 2>&1 &
    fi
    p=$!; pids+=("$p"); tpids+=("$p")
  done
  for ifc in $ia $ib; do
    for _ in $(seq 100); do [ -S "/var/run/wireguard/$ifc.sock" ] && break; sleep 0.05; done
  done
  if ! ip netns exec $A wg set "$ia" private-key "$work/wa" listen-port 51820 peer "$(wg pubkey < "$work/wb")" allowed-ips 10.43.0.0/30 endpoint 10.101.0.2:51820 \
    || ! ip netns exec $B wg set "$ib" private-key "$work/wb" listen-port 51820 peer "$(wg pubkey < "$work/wa")" allowed-ips 10.43.0.0/30; then
    skip "$t" "failed to configure (see KEEP_LOGS)"; stop; return
  fi
  ip -n $A addr add 10.43.0.2/30 dev "$ia"; ip -n $B addr add 10.43.0.1/30 dev "$ib"
  ip -n $A link set "$ia" mtu 1420 up; ip -n $B link set "$ib" mtu 1420 up
  if wait_ping 10.43.0.1; then measure "$t" 10.43.0.1; else skip "$t" "no tunnel (see KEEP_LOGS)"; fi
  ip -n $A link del "$ia" 2>/dev/null || true; ip -n $B link del "$ib" 2>/dev/null || true
  stop
}

echo
echo "runs:"
for t in $tunnels; do
  case $t in
    veth) run_veth ;;
    mlvpn1) run_mlvpn 1 ;;
    mlvpn2) run_mlvpn 2 ;;
    boringtun|wggo) run_wg "$t" ;;
  esac
done

h report "$res" "$run_ccs" "$tunnels" "$rate" "$secs" "$reps"

#!/usr/bin/env bash
# Wake paths per request: how many epoll_wait calls, futex calls and
# write(2) calls (threadlet's only write(2) is a worker waker's eventfd; socket
# writes are send/sendmsg) a threadlet echo server makes per request, counted
# by kernel tracepoints (perf stat, negligible overhead) while `loadgen` runs.
#
#   bash benches/wake_counts.sh [--bin DIR] [--conns N] [--secs S] [--reps R] [--peer P]
#
# DIR defaults to ${CARGO_TARGET_DIR:-target}/release; pass another build's
# release dir (say, one of main) to compare before/after. Prints one line per
# run: req/s and the three counts per request.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${CARGO_TARGET_DIR:-target}/release" CONNS=1000 SECS=3 REPS=3 PEER=threadlet
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) BIN="$2"; shift 2 ;;
        --conns) CONNS="$2"; shift 2 ;;
        --secs) SECS="$2"; shift 2 ;;
        --reps) REPS="$2"; shift 2 ;;
        --peer) PEER="$2"; shift 2 ;;
        -h|--help) sed -n 2,11p "$0"; exit 0 ;;
        *) echo "wake_counts.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
ulimit -n "$(ulimit -Hn)"
PORT=26000
EVENTS=syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_futex,syscalls:sys_enter_write
for rep in $(seq "$REPS"); do
    PORT=$((PORT + 1))
    "$BIN/peer-$PEER" echo-server --workers 2 --port "$PORT" 2>/dev/null &
    pid=$!
    for _ in $(seq 100); do
        ss -Hltn "sport = :$PORT" | grep -q . && break
        sleep 0.05
    done
    out=$(mktemp)
    perf stat -x, -e "$EVENTS" -p "$pid" -o "$out" &
    perf_pid=$!
    v=$("$BIN/loadgen" --addr "127.0.0.1:$PORT" --conns "$CONNS" --duration "$SECS" --warmup 0 \
        | sed 's/.*"value":\([0-9.]*\).*/\1/')
    kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true
    kill "$pid"; wait "$pid" 2>/dev/null || true
    python3 - "$rep" "$v" "$SECS" "$out" <<'EOF'
import sys
rep, rps, secs, path = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
counts = {}
for line in open(path):
    parts = line.strip().split(",")
    if len(parts) > 2 and parts[2].startswith("syscalls:"):
        name = parts[2].split("sys_enter_")[1]
        counts[name] = float(parts[0]) if parts[0].replace(".", "").isdigit() else 0.0
reqs = rps * secs
epoll = counts.get("epoll_wait", 0) + counts.get("epoll_pwait", 0)
print(f"run {rep}: {rps:,.0f} req/s; per request: epoll_wait {epoll / reqs:.3f}, "
      f"futex {counts.get('futex', 0) / reqs:.3f}, write(eventfd) {counts.get('write', 0) / reqs:.3f}")
EOF
    rm -f "$out"
done

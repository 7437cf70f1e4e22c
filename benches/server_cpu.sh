#!/usr/bin/env bash
# Server CPU per request: how much CPU time (user + system, from
# /proc/PID/stat) each runtime's echo or HTTP server spends per request
# under the same load, runs interleaved. On a 2-core machine the load
# generator shares the cores with the server, so requests/s alone mixes the
# server's cost with the client's; this separates them.
#
#   bash benches/server_cpu.sh [--kind echo|http] [--conns N] [--reps R] [--secs S] [PEER...]
#
# PEERs default to "threadlet tokio may". Needs the binaries of
# `bash benches/run.sh` (or `cargo build --release -p threadlet-peers`) in
# ${CARGO_TARGET_DIR:-target}/release, and wrk for --kind http. Prints, per
# peer, the median requests/s and the median server CPU µs per request.
set -euo pipefail
cd "$(dirname "$0")/.."
KIND=echo CONNS=1000 REPS=5 SECS=3
PEERS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --kind) KIND="$2"; shift 2 ;;
        --conns) CONNS="$2"; shift 2 ;;
        --reps) REPS="$2"; shift 2 ;;
        --secs) SECS="$2"; shift 2 ;;
        -h|--help) sed -n 2,14p "$0"; exit 0 ;;
        *) PEERS+=("$1"); shift ;;
    esac
done
[ ${#PEERS[@]} -gt 0 ] || PEERS=(threadlet tokio may)
BIN="${CARGO_TARGET_DIR:-target}/release"
ulimit -n "$(ulimit -Hn)"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
declare -A RPS CPU
PORT=25000
for _ in $(seq "$REPS"); do
    for p in "${PEERS[@]}"; do
        PORT=$((PORT + 1))
        "$BIN/peer-$p" "$KIND-server" --workers 2 --port "$PORT" 2>/dev/null &
        pid=$!
        for _ in $(seq 100); do
            ss -Hltn "sport = :$PORT" | grep -q . && break
            sleep 0.05
        done
        t0=$(ticks "$pid")
        if [ "$KIND" = echo ]; then
            v=$("$BIN/loadgen" --addr "127.0.0.1:$PORT" --conns "$CONNS" --duration "$SECS" --warmup 0 \
                | sed 's/.*"value":\([0-9.]*\).*/\1/')
        else
            v=$(wrk -t2 -c"$CONNS" -d"${SECS}s" "http://127.0.0.1:$PORT/" | awk '/Requests\/sec/ {print $2}')
        fi
        t1=$(ticks "$pid")
        kill "$pid"; wait "$pid" 2>/dev/null || true
        RPS[$p]="${RPS[$p]:-} $v"
        # clock ticks are 1/100 s: µs per request = ticks * 10^4 / requests
        CPU[$p]="${CPU[$p]:-} $(python3 -c "print(($t1 - $t0) * 1e4 / ($v * $SECS))")"
    done
done
echo "$KIND, $CONNS connections, $REPS runs of ${SECS}s each, medians:"
for p in "${PEERS[@]}"; do
    python3 - "$p" "${RPS[$p]}" "${CPU[$p]}" <<'EOF'
import statistics, sys
name, rps, cpu = sys.argv[1], [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split()]
print(f"  {name:<10} {statistics.median(rps):>9,.0f} req/s   server CPU {statistics.median(cpu):5.2f} us/request")
EOF
done

#!/usr/bin/env bash
# Where a server's CPU goes: samples the echo or HTTP server of each peer
# with `perf record -e cpu-clock` (a software clock: works in VMs that
# expose no hardware counters) while the usual load runs, then prints for
# each peer the split kernel / runtime binary / libc, the heaviest kernel
# syscall paths, and the heaviest user-space symbols.
#
#   bash benches/profile.sh [--kind echo|http] [--conns N] [--secs S] [PEER...]
#
# PEERs default to "threadlet tokio". Needs `perf` (Debian's linux-perf;
# installed when missing), wrk for --kind http, and the binaries of
# `bash benches/run.sh` in ${CARGO_TARGET_DIR:-target}/release. Profiles are
# kept in benches/results/raw/profile-<stamp>/ (not committed).
set -euo pipefail
cd "$(dirname "$0")/.."
KIND=echo CONNS=1000 SECS=2
PEERS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --kind) KIND="$2"; shift 2 ;;
        --conns) CONNS="$2"; shift 2 ;;
        --secs) SECS="$2"; shift 2 ;;
        -h|--help) sed -n 2,13p "$0"; exit 0 ;;
        *) PEERS+=("$1"); shift ;;
    esac
done
[ ${#PEERS[@]} -gt 0 ] || PEERS=(threadlet tokio)
if ! command -v perf >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq linux-perf >/dev/null
fi
BIN="${CARGO_TARGET_DIR:-target}/release"
OUT="benches/results/raw/profile-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)"
PORT=26000
for p in "${PEERS[@]}"; do
    PORT=$((PORT + 1))
    "$BIN/peer-$p" "$KIND-server" --workers 2 --port "$PORT" 2>/dev/null &
    pid=$!
    for _ in $(seq 100); do
        ss -Hltn "sport = :$PORT" | grep -q . && break
        sleep 0.05
    done
    # The load runs 2 s longer than the sample, which starts after 1 s.
    if [ "$KIND" = echo ]; then
        "$BIN/loadgen" --addr "127.0.0.1:$PORT" --conns "$CONNS" --duration $((SECS + 2)) \
            --peer "$p" > "$OUT/load-$p.txt" 2>&1 &
    else
        wrk -t2 -c"$CONNS" -d$((SECS + 2))s "http://127.0.0.1:$PORT/" > "$OUT/load-$p.txt" 2>&1 &
    fi
    load=$!
    sleep 1
    perf record -q -e cpu-clock -F 4000 -g -p "$pid" -o "$OUT/$p.data" -- sleep "$SECS" 2>/dev/null
    wait "$load" || true
    kill "$pid"; wait "$pid" 2>/dev/null || true
done
for p in "${PEERS[@]}"; do
    echo "== $p ($KIND, $CONNS connections)"
    echo "-- share of the server's CPU by binary"
    perf report -i "$OUT/$p.data" --no-children --stdio --sort dso 2>/dev/null | grep -E '^ +[0-9]' | head -4
    echo "-- syscalls (with what they call)"
    perf report -i "$OUT/$p.data" --children --stdio --sort sym -g none 2>/dev/null |
        grep -E '^ +[0-9].*\[k\] (__x64_sys_[a-z_0-9]+|schedule)$' | head -8
    echo "-- user-space symbols"
    perf report -i "$OUT/$p.data" --no-children --stdio --sort sym 2>/dev/null |
        grep -E '^ +[0-9.]+%.*\[\.\]' | head -12
done
echo "profiles: $OUT"

#!/usr/bin/env bash
# Peer comparison: threadlet vs tokio (multi-thread), may and std threads.
#
#   bash benches/run.sh [--workers N] [--reps R] [--echo-secs S] [--wrk-secs S] [--only LIST]
#
# Builds benches/peers in release mode, runs every workload in a fresh
# process R times (default 3) per peer, interleaving the peers so that a
# change in machine load hits all of them alike, then writes
#   benches/results/raw/<stamp>/   every raw result line + wrk output (gitignored)
#   benches/results/latest.md      medians, threadlet/peer ratios, PASS/MISS, machine info
#   benches/results/latest.png     the ratios as a bar chart
# --only takes a comma list of: spawn,yield,pingpong,rss,echo,http,mix.
# Servers bind 127.0.0.1 only. About 7 minutes on 2 cores after the build.
# See benches/README.md.
set -euo pipefail

WORKERS=2
REPS=3
ECHO_SECS=3
WRK_SECS=5
ONLY="spawn,yield,pingpong,rss,echo,http,mix"
PEERS=(threadlet tokio may std)
ECHO_CONNS=(100 1000 10000)
WRK_CONNS=256

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --workers) WORKERS="$2"; shift 2 ;;
        --reps) REPS="$2"; shift 2 ;;
        --echo-secs) ECHO_SECS="$2"; shift 2 ;;
        --wrk-secs) WRK_SECS="$2"; shift 2 ;;
        --only) ONLY="$2"; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "run.sh: unknown argument '$1'" >&2; usage 2 ;;
    esac
done
want() { [[ ",$ONLY," == *",$1,"* ]]; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/release"
STAMP="$(date +%Y%m%d-%H%M%S)"
RAW="$ROOT/benches/results/raw/$STAMP"
OUT="$RAW/results.jsonl"
mkdir -p "$RAW"
: > "$OUT"
T0=$SECONDS

log() { printf '[%4ds] %s\n' "$((SECONDS - T0))" "$*" >&2; }

# --- tools -----------------------------------------------------------------
if want http && ! command -v wrk >/dev/null 2>&1; then
    log "wrk missing: installing Debian's wrk"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq wrk >/dev/null
fi
if ! python3 -c 'import matplotlib' >/dev/null 2>&1; then
    log "matplotlib missing: pip install matplotlib (the chart is skipped if this fails)"
    python3 -m pip install --quiet matplotlib >/dev/null 2>&1 || log "pip install matplotlib failed: no chart"
fi

# 10,000 connections need more fds than the usual soft limit (the binaries
# also raise it themselves with setrlimit).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 10100 ]; then
    log "warning: fd limit $(ulimit -n) < 10100: the 10,000-connection echo will fail (raise the hard limit)"
fi

# --- build -----------------------------------------------------------------
log "building threadlet-peers (release) into $TARGET_DIR"
cargo build --release --quiet -p threadlet-peers --bins

# --- machine info ----------------------------------------------------------
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "nproc: $(nproc)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "kernel: $(uname -sr)"
    echo "rustc: $(rustc --version)"
    echo "workers: $WORKERS"
    echo "reps: $REPS"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$RAW/machine.txt"

# --- helpers ---------------------------------------------------------------
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT INT TERM

# Appends one JSON line (plus the rep number) to $OUT, or an error line.
record() { # peer workload rep line
    local peer="$1" workload="$2" rep="$3" line="$4"
    if [[ "$line" == \{* ]]; then
        echo "${line%\}},\"rep\":$rep}" >> "$OUT"
    else
        echo "{\"peer\":\"$peer\",\"workload\":\"$workload\",\"rep\":$rep,\"error\":\"no result (exit status or timeout)\"}" >> "$OUT"
    fi
}

# One micro workload in a fresh process.
micro() { # peer workload rep [args...]
    local peer="$1" workload="$2" rep="$3"; shift 3
    local line
    line="$(timeout 180 "$BIN/peer-$peer" "$workload" --workers "$WORKERS" "$@" 2>>"$RAW/stderr.log" | tail -n1)" || true
    record "$peer" "$workload" "$rep" "$line"
    log "  $peer $workload $*: ${line:-FAILED}"
}

PORT=20000
# Starts `peer-$1 $2 --port P` in the background and waits until it listens.
start_server() { # peer kind
    PORT=$((PORT + 1))
    "$BIN/peer-$1" "$2" --workers "$WORKERS" --port "$PORT" 2>>"$RAW/stderr.log" &
    SERVER_PID=$!
    local i
    for i in $(seq 200); do
        if ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q .; then return 0; fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
        sleep 0.05
    done
    log "  $1 $2 did not start listening on 127.0.0.1:$PORT"
    return 1
}
stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# --- runs ------------------------------------------------------------------
for rep in $(seq "$REPS"); do
    log "rep $rep/$REPS"
    for p in "${PEERS[@]}"; do
        if want spawn; then
            micro "$p" spawn "$rep"
            micro "$p" spawn "$rep" --batch 1000
        fi
        if want yield; then micro "$p" yield "$rep"; fi
        if want pingpong; then
            micro "$p" pingpong "$rep"
            micro "$p" pingpong-cross "$rep"
        fi
        if want rss; then micro "$p" rss "$rep"; fi
    done
    if want echo; then
        for c in "${ECHO_CONNS[@]}"; do
            for p in "${PEERS[@]}"; do
                line=""
                if start_server "$p" echo-server; then
                    line="$(timeout $((ECHO_SECS + 60)) "$BIN/loadgen" --addr "127.0.0.1:$PORT" --conns "$c" \
                        --duration "$ECHO_SECS" --peer "$p" 2>>"$RAW/stderr.log" | tail -n1)" || true
                fi
                stop_server
                record "$p" "echo-$c" "$rep" "$line"
                log "  $p echo $c conns: ${line:-FAILED}"
            done
        done
    fi
    if want http; then
        for p in "${PEERS[@]}"; do
            line=""
            if start_server "$p" http-server; then
                wout="$RAW/wrk-$p-$rep.txt"
                timeout $((WRK_SECS + 30)) wrk -t2 -c"$WRK_CONNS" -d"${WRK_SECS}s" --latency \
                    "http://127.0.0.1:$PORT/" > "$wout" 2>&1 || true
                line="$(python3 benches/report.py wrk "$p" < "$wout" || true)"
            fi
            stop_server
            record "$p" http "$rep" "$line"
            log "  $p http: ${line:-FAILED}"
        done
    fi
    if want mix; then
        # A connection per request with a CPU-bound request in the mix
        # (mixgen): threadlet's net::serve, threadlet's accept-loop fiber,
        # tokio's accept loop.
        for pk in "threadlet mix-server serve-mix" "threadlet mix-accept-server serve-mix-loop" \
                  "tokio mix-server serve-mix"; do
            set -- $pk
            line=""
            if start_server "$1" "$2"; then
                line="$(timeout $((ECHO_SECS + 60)) "$BIN/mixgen" --addr "127.0.0.1:$PORT" \
                    --duration "$ECHO_SECS" --peer "$1" --workload "$3" 2>>"$RAW/stderr.log" | tail -n1)" || true
            fi
            stop_server
            record "$1" "$3" "$rep" "$line"
            log "  $1 $3: ${line:-FAILED}"
        done
    fi
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$RAW/machine.txt"
echo "duration: $((SECONDS - T0)) s (build included)" >> "$RAW/machine.txt"

# --- report ----------------------------------------------------------------
python3 benches/report.py summarize "$OUT" --machine "$RAW/machine.txt" \
    --md benches/results/latest.md --png benches/results/latest.png
cat benches/results/latest.md
log "done: benches/results/latest.md, benches/results/latest.png, raw data in $RAW"

#!/usr/bin/env bash
# Real servers driven by real clients: mini_redis under redis-benchmark and
# the HTTP server under wrk, each on threadlet (the examples), on tokio and
# on std threads (benches/peers: the same parser, store and routes, included
# from the examples; only the connection loop differs).
#
#   bash benches/clients.sh [--reps R] [--wrk-secs S] [--requests N]
#
# 1. installs what is missing: Debian's redis-tools and wrk (apt-get, with
#    sudo when not root), matplotlib (pip; without it no chart);
# 2. builds the six servers (release);
# 3. correctness first, against every server: redis-cli SET/GET/INCR/
#    EXPIRE/TTL round trips, HTTP requests by curl (or bash's /dev/tcp);
#    any wrong answer stops the script before any load;
# 4. the load, interleaved (each repetition runs every server on each
#    workload in turn, a fresh server process each time, the order rotated
#    per repetition):
#    - redis-benchmark -t ping,set,get,incr -n N -c 100 -q   (N = 200000)
#    - the same with -P 16
#    - wrk -t2 -c256 -d S and -c10000 -d 2S, --latency, on /  (S = 5)
# 5. writes benches/results/clients.md (medians, ratios, the targets of
#    issue 13) and benches/results/clients.png, and prints the table.
# Raw outputs go to benches/results/raw/clients-<stamp>/ (not committed).
# About 5 minutes on 2 cores with the defaults (R = 2), plus the build.
set -euo pipefail

REPS=2
WRK_SECS=5
REQUESTS=200000
usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) REPS="$2"; shift 2 ;;
        --wrk-secs) WRK_SECS="$2"; shift 2 ;;
        --requests) REQUESTS="$2"; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "clients.sh: unknown argument '$1'" >&2; usage 2 ;;
    esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
REL="$TARGET_DIR/release"
STAMP="$(date +%Y%m%d-%H%M%S)"
RAW="$ROOT/benches/results/raw/clients-$STAMP"
OUT="$RAW/results.jsonl"
mkdir -p "$RAW"
: > "$OUT"
T0=$SECONDS
log() { printf '[%4ds] %s\n' "$((SECONDS - T0))" "$*" >&2; }

# --- tools -----------------------------------------------------------------
missing=()
command -v redis-benchmark >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian's ${missing[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! python3 -c 'import matplotlib' >/dev/null 2>&1; then
    log "matplotlib missing: pip install matplotlib (the chart is skipped if this fails)"
    python3 -m pip install --quiet matplotlib >/dev/null 2>&1 || log "pip install matplotlib failed: no chart"
fi
# 10,000 wrk connections: the client and the server each need >10k fds.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 10100 ]; then
    log "warning: fd limit $(ulimit -n) < 10100: wrk at 10,000 connections will report errors"
fi

# --- build -----------------------------------------------------------------
log "building the servers (release) into $TARGET_DIR"
cargo build --release --quiet --example mini_redis --example http_server
cargo build --release --quiet -p threadlet-peers \
    --bin mini-redis-tokio --bin mini-redis-std --bin http-server-tokio --bin http-server-std
PEERS=(threadlet tokio std)
bin() { # kind peer
    case "$2" in
        threadlet) echo "$REL/examples/$1" ;;
        *) echo "$REL/${1//_/-}-$2" ;;
    esac
}

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "nproc: $(nproc)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "kernel: $(uname -sr)"
    echo "rustc: $(rustc --version)"
    echo "clients: $(redis-benchmark --version 2>/dev/null | head -1); $(wrk -v 2>&1 | head -1)"
    echo "workers: the default of each (threadlet and tokio: one per core; std: a thread per connection)"
    echo "reps: $REPS"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$RAW/machine.txt"

# --- servers ---------------------------------------------------------------
SERVER_PID=""
ADDR=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT INT TERM

# Starts server `kind` of `peer` on a free port; sets ADDR, HOST, PORT.
RUN=0
start() { # kind peer
    RUN=$((RUN + 1))
    local out="$RAW/server-$RUN-$1-$2.out" i
    "$(bin "$1" "$2")" 127.0.0.1:0 > "$out" 2>> "$RAW/stderr.log" &
    SERVER_PID=$!
    for i in $(seq 200); do
        ADDR="$(sed -n 's/^listening on //p' "$out")"
        if [ -n "$ADDR" ]; then HOST="${ADDR%:*}"; PORT="${ADDR##*:}"; return 0; fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    log "$2 $1 did not print 'listening on ADDR'"
    return 1
}
# SIGTERM (the threadlet examples stop gracefully: at most 10 s), then
# SIGKILL if the server is still there after 20 s.
stop() {
    local i
    kill "$SERVER_PID" 2>/dev/null || true
    for i in $(seq 400); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        log "  server $SERVER_PID still running 20 s after SIGTERM: SIGKILL"
        kill -9 "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# --- correctness -------------------------------------------------------------
fail() { log "CORRECTNESS FAILED: $*"; exit 1; }
expect() { # what got want
    [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
}
http_get() { # path -> prints the response (status line, headers, body)
    if command -v curl >/dev/null 2>&1; then
        curl -s -i --max-time 10 "http://$ADDR$1"
    else
        exec 3<>"/dev/tcp/$HOST/$PORT"
        printf 'GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' "$1" >&3
        timeout 10 cat <&3
        exec 3<&-
    fi
}
for p in "${PEERS[@]}"; do
    start mini_redis "$p" || fail "$p mini_redis did not start"
    rc() { timeout 10 redis-cli -h "$HOST" -p "$PORT" "$@"; }
    expect "$p SET" "$(rc SET greeting hello)" OK
    expect "$p GET" "$(rc GET greeting)" hello
    expect "$p INCR" "$(rc INCR visits)" 1
    expect "$p INCR" "$(rc INCR visits)" 2
    expect "$p INCRBY" "$(rc INCRBY visits 40)" 42
    expect "$p TTL without expiry" "$(rc TTL greeting)" -1
    expect "$p EXPIRE" "$(rc EXPIRE greeting 100)" 1
    ttl="$(rc TTL greeting)"
    [ "$ttl" -ge 99 ] && [ "$ttl" -le 100 ] || fail "$p TTL after EXPIRE 100: $ttl"
    expect "$p SET PX" "$(rc SET short x PX 200)" OK
    for i in $(seq 100); do [ -z "$(rc GET short)" ] && break; sleep 0.05; done
    expect "$p expired GET" "$(rc GET short)" ""
    expect "$p TTL of a missing key" "$(rc TTL short)" -2
    expect "$p DEL" "$(rc DEL greeting visits)" 2
    stop
    start http_server "$p" || fail "$p http_server did not start"
    resp="$(http_get /)"
    [[ "$resp" == "HTTP/1.1 200 OK"* && "$resp" == *"Hello, world!"* ]] || fail "$p GET /: $resp"
    resp="$(http_get /json)"
    [[ "$resp" == *"application/json"* && "$resp" == *'"message":"Hello, world!"'* ]] || fail "$p GET /json: $resp"
    resp="$(http_get /nowhere)"
    [[ "$resp" == "HTTP/1.1 404"* ]] || fail "$p GET /nowhere: $resp"
    stop
    log "correctness: $p mini_redis (redis-cli) and http_server (HTTP) answer right"
done

# --- load --------------------------------------------------------------------
# CPU time (user + system, clock ticks) the server has used so far: with the
# clients on the same two cores, CPU per request is the steadier figure.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat" 2>/dev/null || echo 0; }
# One redis-benchmark run; one JSON line per test it ran.
redis_run() { # peer pipeline rep
    local wout="$RAW/redis-$1-P$2-$3.txt" c0
    c0=$(cpu_ticks)
    timeout 300 redis-benchmark -h "$HOST" -p "$PORT" -t ping,set,get,incr -n "$REQUESTS" -c 100 -P "$2" -q \
        > "$wout" 2>&1 || true
    python3 benches/clients_report.py redis "$1" "redis-P$2" "$3" "$(( $(cpu_ticks) - c0 ))" "$REQUESTS" \
        < "$wout" >> "$OUT" \
        || echo "{\"peer\":\"$1\",\"workload\":\"redis-P$2\",\"rep\":$3,\"error\":\"no result\"}" >> "$OUT"
    log "  $1 redis -P $2: $(tr '\r' '\n' < "$wout" | grep -o '^[A-Z_]*: [0-9.]* requests per second' | sed 's/ requests per second//' | tr '\n' ' ')"
}
wrk_run() { # peer conns rep
    local wout="$RAW/wrk-$1-c$2-$3.txt" c0
    # 10,000 connections take a few seconds to open: measure twice as long.
    local secs=$WRK_SECS
    [ "$2" -gt 1000 ] && secs=$((WRK_SECS * 2))
    c0=$(cpu_ticks)
    timeout $((secs + 60)) wrk -t2 -c"$2" -d"${secs}s" --timeout 10s --latency "http://$ADDR/" \
        > "$wout" 2>&1 || true
    python3 benches/clients_report.py wrk "$1" "http-c$2" "$3" "$(( $(cpu_ticks) - c0 ))" < "$wout" >> "$OUT" \
        || echo "{\"peer\":\"$1\",\"workload\":\"http-c$2\",\"rep\":$3,\"error\":\"no result\"}" >> "$OUT"
    log "  $1 wrk -c$2: $(grep -E 'Requests/sec|errors' "$wout" | tr -s ' ' | tr '\n' ' ')"
}
for rep in $(seq "$REPS"); do
    log "rep $rep/$REPS"
    # Rotate the order so that no server always runs first (or last).
    order=()
    for i in 0 1 2; do order+=("${PEERS[$(( (i + rep - 1) % 3 ))]}"); done
    for pipe in 1 16; do
        for p in "${order[@]}"; do
            if start mini_redis "$p"; then redis_run "$p" "$pipe" "$rep"; fi
            stop
        done
    done
    for conns in 256 10000; do
        for p in "${order[@]}"; do
            if start http_server "$p"; then wrk_run "$p" "$conns" "$rep"; fi
            stop
        done
    done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$RAW/machine.txt"
echo "duration: $((SECONDS - T0)) s (build included)" >> "$RAW/machine.txt"

# --- report ------------------------------------------------------------------
python3 benches/clients_report.py summarize "$OUT" --machine "$RAW/machine.txt" \
    --md benches/results/clients.md --png benches/results/clients.png
cat benches/results/clients.md
log "done: benches/results/clients.md, benches/results/clients.png, raw outputs in $RAW"

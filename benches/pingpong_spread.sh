#!/usr/bin/env bash
# The spread of the channel ping-pong over fresh processes (issue 11, "no
# slow mode": every run within 3x of the median).
#
#   bash benches/pingpong_spread.sh [RUNS] [WORKLOAD...]
#
# Runs `peer-threadlet <workload> --workers 2` RUNS times (default 30) for
# each workload (default: pingpong pingpong-cross), interleaved, and prints
# every figure (ns per round trip), the median, the slowest run's ratio to
# the median and how many runs are over 3x the median. Builds
# benches/peers (release) into ${CARGO_TARGET_DIR:-target} first.
set -euo pipefail
RUNS="${1:-30}"
shift || true
WORKLOADS=("$@")
[ "${#WORKLOADS[@]}" -gt 0 ] || WORKLOADS=(pingpong pingpong-cross)
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
cargo build --release --quiet -p threadlet-peers --bin peer-threadlet
OUT="$(mktemp)"
trap 'rm -f "$OUT"' EXIT
for _ in $(seq "$RUNS"); do
    for w in "${WORKLOADS[@]}"; do
        timeout 120 "$BIN/peer-threadlet" "$w" --workers 2 | tail -n1 >> "$OUT" || true
    done
done
python3 - "$OUT" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        continue
    runs.setdefault(row["workload"], []).append(row["value"])
for w, vals in runs.items():
    med = statistics.median(vals)
    print("%s (%d runs, ns/round trip): %s" % (w, len(vals), " ".join("%.0f" % v for v in vals)))
    print("  median %.0f, max/median %.2f, runs over 3x the median: %d"
          % (med, max(vals) / med, sum(v > 3 * med for v in vals)))
PY

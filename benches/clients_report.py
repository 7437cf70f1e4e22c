#!/usr/bin/env python3
"""Table and chart for benches/clients.sh (real clients against real servers).

  clients_report.py redis PEER WORKLOAD REP CPU_TICKS N < redis-benchmark -q output  -> JSON lines
  clients_report.py wrk PEER WORKLOAD REP CPU_TICKS < wrk --latency output             -> JSON lines

CPU_TICKS is the server's user+system CPU time over the run (clock ticks of
/proc/PID/stat), N the requests per redis-benchmark test; they give one
more line per run, test "cpu", in µs of server CPU per request.
  clients_report.py summarize RESULTS.jsonl --machine M.txt --md OUT.md [--png OUT.png]

A result line is {"peer", "workload", "test", "value" (req/s), "rep", ...}
or an {"error": ...} line. The summary takes medians over repetitions,
ratios threadlet/peer (higher is better for threadlet), the geometric mean
of the redis-benchmark tests per pipeline depth, and checks the targets of
issue 13. The chart draws the ratios on a log scale with a red tick at each
target, in the style of report.py's chart.
"""

import json
import math
import os
import re
import statistics
import sys
from collections import defaultdict

PEERS = ["threadlet", "tokio", "std"]
OTHERS = ["tokio", "std"]
REDIS_TESTS = ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR"]
GEOMEAN = "geomean"
# (workload, test, peer, bound, also needs 0 errors)
TARGETS = [
    ("redis-P1", GEOMEAN, "tokio", 1.1, False),
    ("redis-P16", GEOMEAN, "tokio", 1.0, False),
    ("redis-P1", GEOMEAN, "std", 1.5, False),
    ("redis-P16", GEOMEAN, "std", 1.5, False),
    ("http-c256", "GET /", "tokio", 1.0, True),
    ("http-c10000", "GET /", "tokio", 1.0, True),
]
LABELS = {
    "redis-P1": "redis-benchmark -c 100",
    "redis-P16": "redis-benchmark -c 100 -P 16",
    "http-c256": "wrk -t2 -c256",
    "http-c10000": "wrk -t2 -c10000",
}


def cpu_line(peer, workload, rep, ticks, requests):
    if requests > 0 and int(ticks) > 0:
        us = int(ticks) / os.sysconf("SC_CLK_TCK") * 1e6 / requests
        print(json.dumps({"peer": peer, "workload": workload, "test": "cpu", "value": us,
                          "unit": "µs/req", "rep": int(rep)}))


def redis_to_json(peer, workload, rep, ticks, per_test):
    text = sys.stdin.read().replace("\r", "\n")
    found = 0
    for m in re.finditer(r"^\s*([A-Z_]+): ([\d.]+) requests per second(?:, p50=([\d.]+) msec)?", text, re.M):
        row = {"peer": peer, "workload": workload, "test": m.group(1), "value": float(m.group(2)),
               "unit": "req/s", "rep": int(rep)}
        if m.group(3):
            row["p50_us"] = float(m.group(3)) * 1000
        print(json.dumps(row))
        found += 1
    if not found:
        sys.stderr.write("clients_report.py: no 'requests per second' in the redis-benchmark output\n")
        sys.exit(1)
    cpu_line(peer, workload, rep, ticks, found * int(per_test))


def wrk_to_json(peer, workload, rep, ticks):
    text = sys.stdin.read()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not rps:
        sys.stderr.write("clients_report.py: no 'Requests/sec' in the wrk output\n")
        sys.exit(1)

    def lat(p):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % p, text, re.M)
        return float(m.group(1)) * {"us": 1.0, "ms": 1e3, "s": 1e6}[m.group(2)] if m else None

    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        errors += int(m.group(1))
    print(json.dumps({"peer": peer, "workload": workload, "test": "GET /", "value": float(rps.group(1)),
                      "unit": "req/s", "p50_us": lat(50), "p99_us": lat(99), "errors": errors,
                      "rep": int(rep)}))
    done = re.search(r"(\d+) requests in", text)
    cpu_line(peer, workload, rep, ticks, int(done.group(1)) if done else 0)


def load(path):
    runs = defaultdict(list)  # (workload, test, peer) -> [row]
    errors = defaultdict(list)
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "error" in row:
                errors[(row.get("workload"), row.get("peer"))].append(row["error"])
            else:
                runs[(row["workload"], row["test"], row["peer"])].append(row)
    return runs, errors


def med(rows, field="value"):
    vals = [r[field] for r in rows if r.get(field) is not None]
    return statistics.median(vals) if vals else None


def fmt(v):
    if v is None:
        return "—"
    return "{:,.0f}".format(v) if abs(v) >= 100 else "%.1f" % v


def summarize(args):
    path = args[0]
    opts = dict(zip(args[1::2], args[2::2]))
    runs, errors = load(path)
    value = {k: med(v) for k, v in runs.items()}

    def ratio(workload, test, peer):
        if test == GEOMEAN:
            rs = [ratio(workload, t, peer) for t in REDIS_TESTS]
            rs = [r for r in rs if r is not None]
            return math.exp(sum(map(math.log, rs)) / len(rs)) if rs and len(rs) == len(REDIS_TESTS) else None
        t, p = value.get((workload, test, "threadlet")), value.get((workload, test, peer))
        return t / p if t and p else None

    def total_errors(workload, peer):
        rows = runs.get((workload, "GET /", peer), [])
        return sum(r.get("errors", 0) for r in rows) if rows else None

    rows = []  # (workload, test)
    for w in ["redis-P1", "redis-P16"]:
        rows += [(w, t) for t in REDIS_TESTS] + [(w, GEOMEAN)]
    rows += [("http-c256", "GET /"), ("http-c10000", "GET /")]

    out = ["# Real clients: redis-benchmark and wrk against threadlet, tokio and std threads\n",
           "`bash benches/clients.sh`. Requests per second, medians over the repetitions (each a fresh "
           "server process); ratio = threadlet / peer, higher is better for threadlet. Servers: "
           "`examples/mini_redis` and `examples/http_server` on threadlet; `benches/peers` "
           "`mini-redis-{tokio,std}` and `http-server-{tokio,std}` include the examples' parser, "
           "store and routes and differ only in the connection loop.\n",
           "| client | test | threadlet | tokio | std | ×tokio | ×std |",
           "|---|---|---:|---:|---:|---:|---:|"]
    for w, t in rows:
        if t == GEOMEAN:
            cells = ["", "", ""]
            name = "**geometric mean**"
        else:
            cells = [fmt(value.get((w, t, p))) if (w, t, p) in runs
                     else ("fail" if (w, p) in errors else "—") for p in PEERS]
            name = t
        rats = ["%.2f" % r if r is not None else "—" for r in (ratio(w, t, p) for p in OTHERS)]
        if t == GEOMEAN:
            rats = ["**%s**" % r for r in rats]
        out.append("| %s | %s | %s | %s |" % (LABELS[w], name, " | ".join(cells), " | ".join(rats)))

    out.append("\n## wrk latency and errors (median p50 / p99 in µs; errors summed over repetitions)\n")
    out.append("| client | threadlet | tokio | std |")
    out.append("|---|---:|---:|---:|")
    for w in ["http-c256", "http-c10000"]:
        cells = []
        for p in PEERS:
            rs = runs.get((w, "GET /", p), [])
            if not rs:
                cells.append("—")
                continue
            cells.append("%s / %s, %d errors" % (fmt(med(rs, "p50_us")), fmt(med(rs, "p99_us")),
                                                 total_errors(w, p)))
        out.append("| %s | %s |" % (LABELS[w], " | ".join(cells)))

    out.append("\n## Targets (issue 13)\n")
    out.append("| target | measured | result |")
    out.append("|---|---:|---|")
    checks = []
    for w, t, peer, bound, need_clean in TARGETS:
        r = ratio(w, t, peer)
        desc = "%s%s: threadlet ≥ %.1f× %s" % (LABELS[w], " (geomean)" if t == GEOMEAN else "", bound, peer)
        shown = "%.3f×" % r if r is not None else "—"
        ok = r is not None and r >= bound
        if need_clean:
            errs = total_errors(w, "threadlet")
            desc += ", 0 errors"
            shown += ", %s errors" % ("—" if errs is None else errs)
            ok = ok and errs == 0
        out.append("| %s | %s | **%s** |" % (desc, shown, "n/a" if r is None else ("PASS" if ok else "MISS")))
        checks.append((w, t, peer, r, bound))

    cpu = [w for w in LABELS if any((w, "cpu", p) in runs for p in PEERS)]
    if cpu:
        out.append("\n## Server CPU per request (µs, user + system; lower is better)\n")
        out.append("Over each whole run (redis-benchmark's setup included), from /proc/PID/stat; "
                   "steadier than requests/s when the clients share the cores.\n")
        out.append("| client | threadlet | tokio | std | ×tokio | ×std |")
        out.append("|---|---:|---:|---:|---:|---:|")
        for w in cpu:
            vals = [value.get((w, "cpu", p)) for p in PEERS]
            rats = ["%.2f" % (vals[0] / v) if vals[0] and v else "—" for v in vals[1:]]
            out.append("| %s | %s | %s |" % (LABELS[w], " | ".join(
                "%.1f" % v if v is not None else "—" for v in vals), " | ".join(rats)))

    notes = sorted({"%s / %s: %s" % (LABELS.get(w, w), p, e[0]) for (w, p), e in errors.items()})
    if notes:
        out.append("")
        out += ["- failed: " + n for n in notes]
    out.append("\n## Machine\n")
    if "--machine" in opts:
        with open(opts["--machine"]) as f:
            out += ["- " + line.strip() for line in f if line.strip()]
    out.append("")
    md = "\n".join(out) + "\n"
    with open(opts["--md"], "w") as f:
        f.write(md)
    if "--png" in opts:
        chart(opts["--png"], rows, ratio, checks)


def chart(path, rows, ratio, checks):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.stderr.write("clients_report.py: matplotlib not available: no chart\n")
        return
    groups = [(w, t) for w, t in rows if any(ratio(w, t, p) is not None for p in OTHERS)]
    if not groups:
        return
    colors = {"tokio": "#4c72b0", "std": "#55a868"}
    width = 0.38
    fig, ax = plt.subplots(figsize=(14, 6.5))
    for i, p in enumerate(OTHERS):
        xs = [g + (i - 0.5) * width for g, (w, t) in enumerate(groups) if ratio(w, t, p) is not None]
        ys = [ratio(w, t, p) for w, t in groups if ratio(w, t, p) is not None]
        # Bars grow from the 1.0 line: up means threadlet served more.
        ax.bar(xs, [y - 1.0 for y in ys], width, bottom=1.0, label="threadlet / " + p, color=colors[p])
        for x, y in zip(xs, ys):
            ax.annotate("%.2f" % y, (x, y), ha="center", va="bottom" if y >= 1 else "top", fontsize=7,
                        xytext=(0, 2 if y >= 1 else -2), textcoords="offset points")
    for w, t, peer, _r, bound in checks:
        if (w, t) in groups:
            x = groups.index((w, t)) + (OTHERS.index(peer) - 0.5) * width
            ax.plot([x - width / 2, x + width / 2], [bound, bound], color="red", lw=2.5)
    ax.axhline(1.0, color="black", lw=1)
    ax.set_yscale("log")
    ax.set_xticks(range(len(groups)))
    short = {"redis-P1": "redis", "redis-P16": "redis -P16", "http-c256": "wrk 256", "http-c10000": "wrk 10k"}
    ax.set_xticklabels(["%s\n%s" % (short[w], "GEOMEAN" if t == GEOMEAN else t.replace("_", "\n"))
                        for w, t in groups], fontsize=7)
    ax.set_ylabel("threadlet req/s ÷ peer req/s (log scale)")
    ax.set_title("mini_redis under redis-benchmark, HTTP server under wrk: threadlet relative to "
                 "tokio and std threads (red ticks: issue-13 targets)")
    ax.plot([], [], color="red", lw=2.5, label="target")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)
    lo, hi = ax.get_ylim()
    ax.set_ylim(min(lo, 0.5) / 1.2, max(hi, 2.0) * 1.2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    a = sys.argv[1:]
    if len(a) == 6 and a[0] == "redis":
        redis_to_json(*a[1:])
    elif len(a) == 5 and a[0] == "wrk":
        wrk_to_json(*a[1:])
    elif len(a) >= 2 and a[0] == "summarize":
        summarize(a[1:])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()

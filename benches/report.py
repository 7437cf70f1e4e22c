#!/usr/bin/env python3
"""Table and chart for the peer comparison (benches/run.sh).

  report.py wrk PEER < wrk-output          -> one JSON result line for the HTTP workload
  report.py summarize RESULTS.jsonl --machine M.txt --md OUT.md [--png OUT.png]

Every result line is {"peer", "workload", "value", "unit", "rep", ...} or an
{"error": ...} line. The summary takes the median over the repetitions, the
ratio threadlet/peer for every workload (so for times and memory lower is
better for threadlet, for throughput higher is), and checks the targets of
issues 5 and 11. The chart plots the same ratios on a log scale, one group per
workload, one bar per peer, a line at 1.0 and a red tick at each target.
"""

import json
import re
import statistics
import sys
from collections import defaultdict

PEERS = ["threadlet", "tokio", "may", "std"]
OTHERS = ["tokio", "may", "std"]

# workload -> (label, lower_is_better)
WORKLOADS = [
    ("spawn", "spawn+join 100k (std: 10k), all alive", True),
    ("spawn-b1000", "spawn+join 100k (std: 10k), 1000 alive", True),
    ("yield", "yield switch, 1 worker", True),
    ("pingpong", "channel ping-pong round trip", True),
    ("pingpong-cross", "same, the two ends forced onto two workers (tokio: as above, it moves tasks)", True),
    ("rss", "RSS per parked task (std: 10k, others 100k)", True),
    ("echo-100", "echo 64 B, 100 conns", False),
    ("echo-1000", "echo 64 B, 1000 conns", False),
    ("echo-10000", "echo 64 B, 10000 conns", False),
    ("http", "HTTP hello, wrk 256 conns", False),
    ("serve-mix", "serve: p99 of plain requests (a conn per request) while 4 other conns take turns sending 50 ms CPU requests every 100 ms "
     "(threadlet: net::serve; tokio: accept loop)", True),
    ("serve-mix-loop", "same, threadlet with an accept-loop fiber instead of net::serve", True),
]

# Short names for the chart's x axis.
SHORT = {
    "spawn": "spawn+join\n100k alive",
    "spawn-b1000": "spawn+join\n1000 alive",
    "yield": "yield\nswitch",
    "pingpong": "channel\nping-pong",
    "pingpong-cross": "ping-pong,\n2 workers",
    "rss": "memory per\nparked task",
    "echo-100": "echo\n100 conns",
    "echo-1000": "echo\n1000 conns",
    "echo-10000": "echo\n10k conns",
    "http": "HTTP hello\n256 conns",
    "serve-mix": "serve, CPU req\nin mix: p99",
    "serve-mix-loop": "accept loop,\nCPU req: p99",
}

# (workload, peer or "self:<workload>", op, bound): ratio threadlet/peer op bound.
TARGETS = [
    # issue 5
    ("yield", "may", "<=", 0.5),
    ("yield", "tokio", "<=", 0.5),
    ("spawn", "tokio", "<=", 1.0),
    ("pingpong", "tokio", "<=", 1.0),
    ("rss", "abs", "<=", 8192.0),
    # issue 11
    ("echo-100", "tokio", ">=", 1.1),
    ("echo-1000", "tokio", ">=", 1.1),
    ("echo-10000", "tokio", ">=", 1.1),
    ("echo-100", "may", ">=", 1.2),
    ("echo-1000", "may", ">=", 1.2),
    ("echo-10000", "may", ">=", 1.2),
    ("http", "tokio", ">=", 1.1),
    ("http", "may", ">=", 1.0),
]


def wrk_to_json(peer):
    text = sys.stdin.read()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not rps:
        sys.stderr.write("report.py: no 'Requests/sec' in the wrk output\n")
        sys.exit(1)

    def lat(p):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % p, text, re.M)
        if not m:
            return 0.0
        return float(m.group(1)) * {"us": 1.0, "ms": 1e3, "s": 1e6}[m.group(2)]

    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        errors += int(m.group(1))
    print(json.dumps({"peer": peer, "workload": "http", "value": float(rps.group(1)), "unit": "req/s",
                      "p50_us": lat(50), "p99_us": lat(99), "errors": errors}))


def load(path):
    runs = defaultdict(list)  # (workload, peer) -> [row]
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
            key = (row.get("workload"), row.get("peer"))
            if "error" in row:
                errors[key].append(row["error"])
            else:
                runs[key].append(row)
    return runs, errors


def median(rows, field="value"):
    vals = [r[field] for r in rows if field in r]
    return statistics.median(vals) if vals else None


def fmt(v, unit=""):
    if v is None:
        return "—"
    if unit == "B/task":
        return "%.2f KiB" % (v / 1024)
    if abs(v) >= 100:
        return "{:,.0f}".format(v)
    return "%.1f" % v


def check(op, ratio, bound):
    if ratio is None:
        return "n/a"
    ok = ratio <= bound if op == "<=" else ratio >= bound
    return "PASS" if ok else "MISS"


def summarize(args):
    path = args[0]
    opts = dict(zip(args[1::2], args[2::2]))
    runs, errors = load(path)
    med = {k: median(v) for k, v in runs.items()}
    units = {k[0]: v[0]["unit"] for k, v in runs.items() if v}

    def ratio(workload, peer):
        t, p = med.get((workload, "threadlet")), med.get((workload, peer))
        if t is None or p is None or p == 0:
            return None
        return t / p

    out = []
    out.append("# threadlet vs peers\n")
    out.append("Medians of every repetition (each a fresh process); ratio = threadlet / peer "
               "(times and memory: lower is better for threadlet; req/s: higher is better).\n")
    out.append("| workload | unit | threadlet | tokio | may | std | ×tokio | ×may | ×std |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    notes = []
    for w, label, _lower in WORKLOADS:
        if not any((w, p) in runs or (w, p) in errors for p in PEERS):
            continue
        cells = []
        for p in PEERS:
            v = med.get((w, p))
            if v is None and (w, p) in errors:
                cells.append("fail¹")
                notes.append("%s / %s: %s" % (label, p, errors[(w, p)][0]))
            else:
                cells.append(fmt(v, units.get(w, "")))
        rats = []
        for p in OTHERS:
            r = ratio(w, p)
            rats.append("%.2f" % r if r is not None else "—")
        out.append("| %s | %s | %s | %s |" % (label, units.get(w, ""), " | ".join(cells), " | ".join(rats)))
        partial = [r for r in runs.get((w, "may"), []) if r.get("spawn_failed")]
        if partial:
            notes.append("%s / may: measured at %d coroutines, where may's stack mmap failed "
                         "(two mappings per stack; vm.max_map_count=65530)" % (label, int(partial[0]["tasks"])))
    if notes:
        out.append("")
        for n in dict.fromkeys(notes):
            out.append("¹ " + n)

    out.append("\n## Targets (issues 5 and 11)\n")
    out.append("| target | measured | result |")
    out.append("|---|---:|---|")
    target_rows = []
    for w, peer, op, bound in TARGETS:
        if peer == "abs":
            v = med.get((w, "threadlet"))
            desc = "%s: threadlet %s %.0f KiB/fiber" % (w, op.replace("<=", "≤"), bound / 1024)
            shown = fmt(v, "B/task")
            res = check(op, v, bound)
            target_rows.append((w, None, v / bound if v else None, 1.0))
        elif peer.startswith("self:"):
            base = peer[5:]
            t, b = med.get((w, "threadlet")), med.get((base, "threadlet"))
            r = t / b if t and b else None
            desc = "%s: threadlet %s %.1f× threadlet's %s" % (w, op.replace(">=", "≥"), bound, base)
            shown = "%.2f×" % r if r is not None else "—"
            res = check(op, r, bound)
            target_rows.append((w, "self", r, bound))
        else:
            r = ratio(w, peer)
            desc = "%s: threadlet %s %.1f× %s" % (w, op.replace("<=", "≤").replace(">=", "≥"), bound, peer)
            shown = "%.2f×" % r if r is not None else "—"
            res = check(op, r, bound)
            target_rows.append((w, peer, r, bound))
        out.append("| %s | %s | **%s** |" % (desc, shown, res))

    lat = [(w, label) for w, label, _ in WORKLOADS if w.startswith("echo") or w == "http"]
    if any((w, p) in runs for w, _ in lat for p in PEERS):
        out.append("\n## Latency (median over repetitions of each run's p50 / p99, µs)\n")
        out.append("| workload | threadlet | tokio | may | std |")
        out.append("|---|---:|---:|---:|---:|")
        for w, label in lat:
            cells = []
            for p in PEERS:
                rows = runs.get((w, p), [])
                p50, p99 = median(rows, "p50_us"), median(rows, "p99_us")
                cells.append("%s / %s" % (fmt(p50), fmt(p99)) if p50 is not None else "—")
            out.append("| %s | %s |" % (label, " | ".join(cells)))

    out.append("\n## Machine\n")
    if "--machine" in opts:
        with open(opts["--machine"]) as f:
            for line in f:
                out.append("- " + line.strip())
    out.append("")
    out.append("Workload details: benches/README.md. Raw lines: benches/results/raw/ (not committed).")
    md = "\n".join(out) + "\n"
    with open(opts["--md"], "w") as f:
        f.write(md)
    if "--png" in opts:
        chart(opts["--png"], ratio, target_rows, errors)


def chart(path, ratio, target_rows, errors):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.stderr.write("report.py: matplotlib not available: no chart\n")
        return
    groups = [(w, label, lower) for w, label, lower in WORKLOADS
              if any(ratio(w, p) is not None for p in OTHERS)]
    if not groups:
        return
    colors = {"tokio": "#4c72b0", "may": "#dd8452", "std": "#55a868"}
    width = 0.26
    fig, ax = plt.subplots(figsize=(13, 6.5))
    # Bars grow from the 1.0 line (up: threadlet's number is larger than the
    # peer's), so a log scale reads the same both ways.
    for i, p in enumerate(OTHERS):
        xs, ys = [], []
        for g, (w, _label, _lower) in enumerate(groups):
            r = ratio(w, p)
            if r is not None:
                xs.append(g + (i - 1) * width)
                ys.append(r)
        ax.bar(xs, [y - 1.0 for y in ys], width, bottom=1.0, label="threadlet / " + p, color=colors[p])
        for x, y in zip(xs, ys):
            ax.annotate("%.2f" % y, (x, y), ha="center", va="bottom" if y >= 1 else "top",
                        fontsize=7, xytext=(0, 2 if y >= 1 else -2), textcoords="offset points")
        for g, (w, _label, _lower) in enumerate(groups):
            if ratio(w, p) is None and (w, p) in errors:
                ax.annotate("%s:\nfail" % p, (g + (i - 1) * width, 1.0), ha="center", va="bottom",
                            fontsize=7, color="darkred", xytext=(0, 2), textcoords="offset points")
    for w, peer, r, bound in target_rows:
        g = next((k for k, (gw, _, _) in enumerate(groups) if gw == w), None)
        if g is None or peer in (None, "self"):
            continue
        x = g + (OTHERS.index(peer) - 1) * width
        ax.plot([x - width / 2, x + width / 2], [bound, bound], color="red", lw=2.5)
    ax.axhline(1.0, color="black", lw=1)
    ax.set_yscale("log")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(["%s\n(%s is better)" % (SHORT.get(w, w), "lower" if lower else "higher")
                        for w, _label, lower in groups], fontsize=8)
    ax.set_ylabel("threadlet / peer (log scale)")
    ax.set_title("threadlet relative to each peer: medians, ratio threadlet/peer (red ticks: issue-5 targets)")
    ax.plot([], [], color="red", lw=2.5, label="target")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)
    lo, hi = ax.get_ylim()
    ax.set_ylim(min(lo, 0.5) / 1.3, max(hi, 2.0) * 1.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "wrk":
        wrk_to_json(sys.argv[2])
    elif len(sys.argv) >= 3 and sys.argv[1] == "summarize":
        summarize(sys.argv[2:])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()

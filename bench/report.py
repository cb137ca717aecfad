#!/usr/bin/python3
"""bench/report.py — the report of a bench/run: each key figure per server
as min / median / max over the runs, and the median as a ratio to siohub's.

Usage: report.py --scenario S META RESULTS
META is bench/run's meta.txt (printed first); RESULTS holds one line per
run: "server=NAME run=N order=K bench_exit=E server_exit=S RESULT {json}"
(or "... start=failed"). Prints the report on stdout.
"""
import argparse
import json
import statistics
import sys

# (JSON key or a derived name, what it is, unit, "lower" or "higher" is better)
FIGURES = [
    ("server_cpu_us_per_delivery", "server CPU per delivered message", "µs", "lower"),
    ("rss_kib_per_conn", "userland memory (server RSS) per idle connection", "KiB", "lower"),
    ("latency_ms.p99", "p99 latency, publish to client", "ms", "lower"),
    ("handshakes_per_s", "handshakes per second", "/s", "higher"),
    ("server_cpu_us_per_handshake", "server CPU per handshake", "µs", "lower"),
    ("max_rate_p99_under_50ms", "highest publish rate with p99 under the limit", "/s", "higher"),
    ("round_trips_per_s", "round trips per second", "/s", "higher"),
    ("latency_ms.p50", "p50 latency", "ms", "lower"),
    ("latency_ms.p999", "p99.9 latency", "ms", "lower"),
    ("delivery_rate", "deliveries per second", "/s", "higher"),
    ("server_cpu_us_per_connect", "server CPU per connect", "µs", "lower"),
    ("kernel_kib_per_conn", "kernel TCP memory per connection (machine-wide)", "KiB", "lower"),
    ("connect_latency_ms.p99", "connect latency p99", "ms", "lower"),
]

# The bars the issue sets, per scenario: (figure, other server, bound, text).
BARS = {
    "fanout": [
        ("server_cpu_us_per_delivery", "floor", 1.3,
         "siohub's server CPU per delivery is within 1.3x of the bare send() loop's"),
        ("server_cpu_us_per_delivery", "nchan", 1.0,
         "siohub's server CPU per delivery is below nchan's"),
    ],
}


def parse_line(line):
    head, _, result = line.partition(" RESULT ")
    fields = dict(kv.split("=", 1) for kv in head.split() if "=" in kv)
    try:
        fields["result"] = json.loads(result) if result.strip() not in ("", "none") else None
    except ValueError:
        fields["result"] = None
    return fields


def value(result, key):
    if result is None:
        return None
    if key == "server_cpu_us_per_connect":
        cpu, n = result.get("server_connect_cpu_s"), result.get("connected")
        return cpu * 1e6 / n if isinstance(cpu, (int, float)) and n else None
    v = result
    for part in key.split("."):
        if not isinstance(v, dict) or part not in v:
            return None
        v = v[part]
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def fmt(x):
    if x is None:
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}" if abs(x) < 1 else f"{x:.2f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", required=True)
    ap.add_argument("meta")
    ap.add_argument("results")
    args = ap.parse_args()
    with open(args.meta, encoding="utf-8") as f:
        meta = f.read().rstrip("\n")
    with open(args.results, encoding="utf-8") as f:
        runs = [parse_line(line) for line in f if line.strip()]

    servers = []
    for r in runs:
        if r.get("server") not in servers:
            servers.append(r["server"])
    out = [meta, ""]
    out.append("runs, in the order they ran (ok: siohub-bench's checks held, server exit 0 after SIGTERM):")
    for s in servers:
        mine = [r for r in runs if r["server"] == s]
        ok = sum(1 for r in mine if r.get("bench_exit") == "0")
        clean = sum(1 for r in mine if set(r.get("server_exit", "x").split(",")) == {"0"})
        failed = [r["run"] for r in mine if r.get("bench_exit") != "0"]
        out.append(f"  {s:<7} {len(mine)} runs, checks held in {ok}, clean exit in {clean}"
                   + (f"; failed runs: {', '.join(failed)} (see logs/)" if failed else ""))
    out.append("")

    medians = {}
    base = "siohub"
    for key, what, unit, better in FIGURES:
        per_server = {}
        for s in servers:
            vals = [value(r.get("result"), key) for r in runs if r["server"] == s]
            vals = [v for v in vals if v is not None]
            if vals:
                per_server[s] = vals
        if not per_server:
            continue
        out.append(f"{what} ({unit}, {better} is better)")
        out.append(f"  {'server':<7} {'min':>10} {'median':>10} {'max':>10} {'/ siohub':>9}  runs")
        for s in servers:
            vals = per_server.get(s)
            if not vals:
                out.append(f"  {s:<7} {'-':>10} {'-':>10} {'-':>10} {'-':>9}  0")
                continue
            med = statistics.median(vals)
            medians[(key, s)] = med
            ref = medians.get((key, base))
            if ref is None and base in per_server:
                ref = statistics.median(per_server[base])
            ratio = f"{med / ref:.2f}x" if ref else "-"
            out.append(f"  {s:<7} {fmt(min(vals)):>10} {fmt(med):>10} {fmt(max(vals)):>10}"
                       f" {ratio:>9}  {len(vals)}")
        out.append("")

    # The bars compare servers at equal load; --find-max leaves each at its
    # own highest rate, where CPU per delivery says how well it batches.
    searched = any(value(r.get("result"), "max_rate_p99_under_50ms") is not None for r in runs)
    if searched and BARS.get(args.scenario):
        out.append("bars: not checked: --find-max measured each server at its own highest rate,"
                   " not at equal load")
    for key, other, bound, text in [] if searched else BARS.get(args.scenario, []):
        mine, theirs = medians.get((key, base)), medians.get((key, other))
        if mine is None or theirs is None or theirs == 0:
            continue
        ratio = mine / theirs
        held = ratio <= bound if bound != 1.0 else ratio < bound
        out.append(f"bar: {text}: siohub / {other} = {ratio:.2f} (bound {bound}): "
                   f"{'held' if held else 'NOT held'}")
    # A floor that no bar judges (chat's, bench/peers/chat_floor): how far
    # siohub is from what the kernel's share of the same deliveries costs.
    # A distance to read, not a bound to hold.
    judged = any(other == "floor" for _, other, _, _ in BARS.get(args.scenario, []))
    mine = medians.get(("server_cpu_us_per_delivery", base))
    floor = medians.get(("server_cpu_us_per_delivery", "floor"))
    if not judged and not searched and mine is not None and floor:
        out.append(f"floor: siohub / floor = {mine / floor:.2f} in server CPU per delivery"
                   " (the floor does the same syscalls with next to nothing in user space;"
                   " no bar)")
    out.append("Ratios are of medians; a figure from runs whose checks failed is still shown"
               " (see the runs above).")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

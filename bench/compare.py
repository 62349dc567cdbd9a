#!/usr/bin/env python3
"""Regression check between two benchmark results.

    python3 bench/compare.py bench/results/baseline.json bench/results/latest.json
    python3 bench/compare.py --self-test

Compares every secrets-sync figure of the two `latest.json` files written by
bench/run.py (medians, per N present in both) and exits 1 when any of them is
worse by more than the tolerance (10 % by default), 0 otherwise. All figures
are lower-is-better. Absolute figures (seconds, KiB, bytes) depend on the
machine; the ratios against the agent and the bare client, measured in the
same run, are the ones to trust across machines, so they are checked too.

A figure only counts as worse when it also moved by more than its
measurement resolution: CPU seconds come in clock ticks (0.01 s) and the
harness polls for files every 5 ms.

`baseline.json` is the release the next one is held to: copy a full run's
`latest.json` over it when a release is cut.
"""

import argparse
import json
import math
import sys

TOLERANCE = 0.10

# (name, path into a size's table entry, resolution in the figure's unit)
FIGURES = [
    ("cold sync s", ("cold_sync_s", "secrets-sync", "median"), 0.005),
    ("cold sync / bare client", ("ratio_wall_vs_limit",), 0.0),
    ("cold sync / agent", ("ratio_wall_vs_agent",), 0.0),
    ("steady RSS KiB", ("steady_rss_kib", "secrets-sync", "median"), 0.0),
    ("peak RSS KiB", ("peak_rss_kib", "secrets-sync", "median"), 0.0),
    ("RSS / agent", ("ratio_rss_vs_agent",), 0.0),
    ("CPU to sync s", ("cpu_sync_s", "secrets-sync", "median"), 0.01),
    ("idle CPU s", ("idle_cpu_s", "secrets-sync", "median"), 0.01),
    ("idle CPU / agent", ("ratio_idle_cpu_vs_agent",), 0.0),
    ("Vault reads per secret per refresh", ("requests_per_refresh_per_secret", "secrets-sync", "median"), 0.0),
    ("files rewritten while idle", ("files_rewritten_idle", "secrets-sync", "median"), 0.0),
    ("run --once s", ("once_s", "secrets-sync", "median"), 0.005),
]


def dig(d, path):
    for k in path:
        if not isinstance(d, dict) or d.get(k) is None:
            return None
        d = d[k]
    if isinstance(d, (int, float)) and not (isinstance(d, float) and math.isnan(d)):
        return float(d)
    return None


def compare(old, new, tolerance=TOLERANCE):
    """Returns (rows, regressions); a row is (N, figure, old, new, change, worse)."""
    rows, worse = [], []

    def check(n, name, a, b, resolution):
        if a is None or b is None:
            return
        change = (b - a) / a if a else (0.0 if b == a else math.inf)
        bad = b > a * (1 + tolerance) and b - a > resolution
        rows.append((n, name, a, b, change, bad))
        if bad:
            worse.append((n, name, a, b, change))

    old_t, new_t = old.get("table", {}), new.get("table", {})
    for n in sorted(set(old_t) & set(new_t), key=int):
        for name, path, resolution in FIGURES:
            check(n, name, dig(old_t[n], path), dig(new_t[n], path), resolution)
    check("-", "binary bytes", dig(old, ("binary_bytes", "secrets-sync")),
          dig(new, ("binary_bytes", "secrets-sync")), 0.0)
    growth = ("derived", "rss_kib_per_extra_secret", "secrets-sync")
    check("-", "RSS KiB per extra secret", dig(old, growth), dig(new, growth), 0.0)
    return rows, worse


def markdown(rows, worse, tolerance=TOLERANCE):
    out = [f"| N | figure | baseline | latest | change |", "|---|---|---|---|---|"]
    for n, name, a, b, change, bad in rows:
        mark = " **worse**" if bad else ""
        out.append(f"| {n} | {name} | {a:.4g} | {b:.4g} | {change:+.1%}{mark} |")
    verdict = (f"{len(worse)} figure(s) worse by more than {tolerance:.0%}" if worse
               else f"no figure worse by more than {tolerance:.0%}")
    return "\n".join(out + ["", verdict])


def self_test():
    def result(wall, rss, binary, ratio):
        return {"binary_bytes": {"secrets-sync": binary},
                "table": {"1000": {"cold_sync_s": {"secrets-sync": {"median": wall}},
                                   "steady_rss_kib": {"secrets-sync": {"median": rss}},
                                   "ratio_wall_vs_limit": ratio,
                                   "idle_cpu_s": {"secrets-sync": {"median": 0.02}}}}}
    base = result(0.30, 10000, 6_000_000, 1.20)
    _, worse = compare(base, result(0.32, 10500, 6_100_000, 1.25))
    assert worse == [], worse
    _, worse = compare(base, result(0.40, 12000, 6_000_000, 1.20))
    assert [w[1] for w in worse] == ["cold sync s", "steady RSS KiB"], worse
    _, worse = compare(base, result(0.30, 10000, 7_000_000, 1.40))
    assert [w[1] for w in worse] == ["cold sync / bare client", "binary bytes"], worse
    # One clock tick more idle CPU (0.02 -> 0.03 s) is resolution, not a regression.
    new = result(0.30, 10000, 6_000_000, 1.20)
    new["table"]["1000"]["idle_cpu_s"]["secrets-sync"]["median"] = 0.03
    assert compare(base, new)[1] == []
    new["table"]["1000"]["idle_cpu_s"]["secrets-sync"]["median"] = 0.05
    assert [w[1] for w in compare(base, new)[1]] == ["idle CPU s"]
    # Sizes only one side has are skipped; missing figures too.
    assert compare(base, {"table": {"10": {}}})[0] == []
    print("compare.py self-test ok")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("baseline", nargs="?")
    ap.add_argument("latest", nargs="?")
    ap.add_argument("--tolerance", type=float, default=TOLERANCE)
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    if a.self_test:
        self_test()
        return 0
    if not (a.baseline and a.latest):
        ap.error("give BASELINE and LATEST (or --self-test)")
    with open(a.baseline) as f:
        old = json.load(f)
    with open(a.latest) as f:
        new = json.load(f)
    rows, worse = compare(old, new, a.tolerance)
    print(markdown(rows, worse, a.tolerance))
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main())

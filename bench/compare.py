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

A figure only counts as worse when its median moved by more than the
tolerance and by more than its measurement resolution (CPU seconds come in
clock ticks of 0.01 s), and the new runs' min-max range lies wholly above the
baseline's: on a noisy machine medians of 3 move by 30 % with no change in
the code (seen at N=100, where a sync takes tens of milliseconds).

`baseline.json` is the release the next one is held to: copy a full run's
`latest.json` over it when a release is cut.
"""

import argparse
import json
import math
import sys

TOLERANCE = 0.10

def summary(entry, key, tool="secrets-sync"):
    """(median, min, max) of a measured figure, or None."""
    v = entry.get(key, {})
    v = v.get(tool) if isinstance(v, dict) else None
    if not isinstance(v, dict) or v.get("median") is None:
        return None
    return (float(v["median"]), float(v.get("min", v["median"])), float(v.get("max", v["median"])))


def ratio(entry, key, other):
    """ss/other as (ratio of medians, lowest, highest ratio the runs allow)."""
    a, b = summary(entry, key), summary(entry, key, other)
    if not a or not b or not b[0] or not b[1] or not b[2]:
        return None
    return (a[0] / b[0], a[1] / b[2], a[2] / b[1])


# (name, how to get (median, min, max) from a size's table entry, resolution in the figure's unit)
FIGURES = [
    ("cold sync s", lambda e: summary(e, "cold_sync_s"), 0.005),
    ("cold sync / bare client", lambda e: ratio(e, "cold_sync_s", "bare"), 0.0),
    ("cold sync / bare client + files", lambda e: ratio(e, "cold_sync_s", "bare-files"), 0.0),
    ("cold sync / agent", lambda e: ratio(e, "cold_sync_s", "agent"), 0.0),
    ("steady RSS KiB", lambda e: summary(e, "steady_rss_kib"), 0.0),
    ("peak RSS KiB", lambda e: summary(e, "peak_rss_kib"), 0.0),
    ("RSS / agent", lambda e: ratio(e, "steady_rss_kib", "agent"), 0.0),
    ("CPU to sync s", lambda e: summary(e, "cpu_sync_s"), 0.01),
    ("idle CPU s", lambda e: summary(e, "idle_cpu_s"), 0.01),
    ("idle CPU / agent", lambda e: ratio(e, "idle_cpu_s", "agent"), 0.0),
    ("Vault reads per secret per refresh", lambda e: summary(e, "requests_per_refresh_per_secret"), 0.0),
    ("files rewritten while idle", lambda e: summary(e, "files_rewritten_idle"), 0.0),
    ("run --once s", lambda e: summary(e, "once_s"), 0.005),
]


def single(d, path):
    for k in path:
        if not isinstance(d, dict) or d.get(k) is None:
            return None
        d = d[k]
    if isinstance(d, (int, float)) and not (isinstance(d, float) and math.isnan(d)):
        return (float(d), float(d), float(d))
    return None


def compare(old, new, tolerance=TOLERANCE):
    """Returns (rows, regressions); a row is (N, figure, old, new, change, worse).

    Worse means: the median moved up by more than the tolerance and by more
    than the figure's resolution, and the new runs' range lies wholly above
    the old one (min-max, from `--runs`); figures measured once have no range."""
    rows, worse = [], []

    def check(n, name, a, b, resolution):
        if a is None or b is None:
            return
        (am, alo, ahi), (bm, blo, bhi) = a, b
        change = (bm - am) / am if am else (0.0 if bm == am else math.inf)
        bad = bm > am * (1 + tolerance) and bm - am > resolution and blo > ahi
        rows.append((n, name, am, bm, change, bad))
        if bad:
            worse.append((n, name, am, bm, change))

    old_t, new_t = old.get("table", {}), new.get("table", {})
    for n in sorted(set(old_t) & set(new_t), key=int):
        for name, get, resolution in FIGURES:
            check(n, name, get(old_t[n]), get(new_t[n]), resolution)
    check("-", "binary bytes", single(old, ("binary_bytes", "secrets-sync")),
          single(new, ("binary_bytes", "secrets-sync")), 0.0)
    growth = ("derived", "rss_kib_per_extra_secret", "secrets-sync")
    check("-", "RSS KiB per extra secret", single(old, growth), single(new, growth), 0.0)
    return rows, worse


def markdown(rows, worse, tolerance=TOLERANCE):
    out = ["| N | figure | baseline | latest | change |", "|---|---|---|---|---|"]
    for n, name, a, b, change, bad in rows:
        mark = " **worse**" if bad else ""
        out.append(f"| {n} | {name} | {a:.4g} | {b:.4g} | {change:+.1%}{mark} |")
    verdict = (f"{len(worse)} figure(s) worse by more than {tolerance:.0%}" if worse
               else f"no figure worse by more than {tolerance:.0%} (beyond the runs' spread)")
    return "\n".join(out + ["", verdict])


def self_test():
    def fig(med, lo=None, hi=None):
        return {"median": med, "min": med if lo is None else lo, "max": med if hi is None else hi}

    def result(wall, rss, binary, bare=0.25, spread=0.0):
        return {"binary_bytes": {"secrets-sync": binary},
                "table": {"1000": {"cold_sync_s": {"secrets-sync": fig(wall, wall - spread, wall + spread),
                                                   "bare": fig(bare)},
                                   "steady_rss_kib": {"secrets-sync": fig(rss)},
                                   "idle_cpu_s": {"secrets-sync": fig(0.02)}}}}
    base = result(0.30, 10000, 6_000_000)
    _, worse = compare(base, result(0.32, 10500, 6_100_000))
    assert worse == [], worse
    _, worse = compare(base, result(0.40, 12000, 6_000_000))
    assert [w[1] for w in worse] == ["cold sync s", "cold sync / bare client", "steady RSS KiB"], worse
    # A slower bare client makes the ratio better, not worse.
    _, worse = compare(base, result(0.30, 10000, 7_000_000, bare=0.20))
    assert [w[1] for w in worse] == ["cold sync / bare client", "binary bytes"], worse
    # Overlapping ranges are noise: not worse, however the medians moved.
    noisy = result(0.30, 10000, 6_000_000, spread=0.05)
    assert compare(noisy, result(0.34, 10000, 6_000_000, spread=0.05))[1] == []
    assert [w[1] for w in compare(noisy, result(0.42, 10000, 6_000_000, spread=0.05))[1]] == [
        "cold sync s", "cold sync / bare client"]
    # One clock tick more idle CPU (0.02 -> 0.03 s) is resolution, not a regression.
    new = result(0.30, 10000, 6_000_000)
    new["table"]["1000"]["idle_cpu_s"]["secrets-sync"] = fig(0.03)
    assert compare(base, new)[1] == []
    new["table"]["1000"]["idle_cpu_s"]["secrets-sync"] = fig(0.05)
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

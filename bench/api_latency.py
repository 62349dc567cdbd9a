#!/usr/bin/env python3
"""Latency of the local secrets API (SECRETS_API=true) on loopback.

A real OpenBao dev server holds 10 secrets (two fields each); secrets-sync
(the release binary) syncs them to files and serves them. One client on one
keep-alive connection then makes CALLS (default 1000) calls of
`POST /v1/secrets:batchGet` asking for all 10, after 50 warm-up calls, and
the same number of `GET /v1/secrets/{name}` of one secret. Reported: the
median, p90, p99 and max of each, in microseconds, as Markdown and JSON in
bench/results/api.{md,json}. Every answer is checked (status 200, 10
secrets, the right content).

    python3 bench/api_latency.py [--binary target/release/secrets-sync] [--calls 1000]

Not in the test suite (a timing on a shared machine is not a test).
"""

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import Bao, free_port, sh, ROOT  # noqa: E402

N = 10


def percentile(values, p):
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


def timed(conn, method, path, body=None):
    headers = {"Content-Type": "application/json"} if body else {}
    t0 = time.perf_counter_ns()
    conn.request(method, path, body, headers)
    r = conn.getresponse()
    data = r.read()
    took = (time.perf_counter_ns() - t0) / 1000
    if r.status != 200:
        raise RuntimeError(f"{method} {path}: {r.status} {data[:200]!r}")
    return took, json.loads(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=str(ROOT / "target" / "release" / "secrets-sync"))
    ap.add_argument("--calls", type=int, default=1000)
    args = ap.parse_args()
    bao_bin = sh(str(ROOT / "scripts" / "install-openbao.sh"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bao = Bao(bao_bin, work)
        proc = None
        try:
            prefix = "apibench"
            bao.seed(N, prefix)
            out = work / "out"
            out.mkdir()
            cfg = work / "config.yaml"
            lines = ["secrets:"]
            for i in range(N):
                lines.append(f"  - name: s{i}\n    path: {prefix}/s{i}\n    refreshInterval: 1h\n"
                             f"    files: [{{path: {out}/s{i}-a, key: a}}, {{path: {out}/s{i}-b, key: b}}]")
            cfg.write_text("\n".join(lines) + "\n")
            port = free_port()
            env = dict(os.environ, VAULT_ADDR=f"http://{bao.addr}", VAULT_TOKEN="root", CONFIG_FILE=str(cfg),
                       HTTP_PORT="0", METRICS_PORT=str(port), SECRETS_API="true", LOG_LEVEL="warn",
                       AUDIT_LOG="false", STATUS_FILE=str(work / "ready"))
            proc = subprocess.Popen([args.binary, "run"], env=env)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            names = [f"s{i}" for i in range(N)]
            body = json.dumps({"names": names})
            deadline = time.monotonic() + 30
            while True:
                try:
                    _, v = timed(conn, "POST", "/v1/secrets:batchGet", body)
                    if len(v["secrets"]) == N:
                        break
                except (OSError, RuntimeError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                if time.monotonic() > deadline:
                    raise RuntimeError("the secrets were not served within 30 s")
                time.sleep(0.1)
            for _ in range(50):
                timed(conn, "POST", "/v1/secrets:batchGet", body)
            batch = []
            for _ in range(args.calls):
                took, v = timed(conn, "POST", "/v1/secrets:batchGet", body)
                if len(v["secrets"]) != N or v["errors"]:
                    raise RuntimeError(f"incomplete answer: {v['errors']}")
                batch.append(took)
            first = v["secrets"][0]
            if first["data"]["a"] != "00000000-" + "a" * 23:
                raise RuntimeError("wrong content served")
            single = []
            for _ in range(args.calls):
                took, v = timed(conn, "GET", "/v1/secrets/s3")
                single.append(took)
        finally:
            if proc:
                proc.terminate()
                proc.wait()
            bao.stop()
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    res = {
        "commit": rev,
        "calls": args.calls,
        "secrets_per_batch": N,
        "batchGet_us": {"median": statistics.median(batch), "p90": percentile(batch, 90),
                        "p99": percentile(batch, 99), "max": max(batch)},
        "get_us": {"median": statistics.median(single), "p90": percentile(single, 90),
                   "p99": percentile(single, 99), "max": max(single)},
        "cpus": os.cpu_count(),
    }
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "api.json").write_text(json.dumps(res, indent=2) + "\n")
    md = [
        f"# Local secrets API latency (commit {rev}, {os.cpu_count()} CPUs, loopback, one keep-alive connection)",
        "",
        f"{args.calls} calls each after 50 warm-up calls; microseconds, client-side (Python http.client).",
        "",
        "| call | median | p90 | p99 | max |",
        "|---|---|---|---|---|",
    ]
    for label, key in [(f"POST /v1/secrets:batchGet ({N} secrets, 2 files each)", "batchGet_us"),
                       ("GET /v1/secrets/{name}", "get_us")]:
        r = res[key]
        md.append(f"| {label} | {r['median']:.0f} | {r['p90']:.0f} | {r['p99']:.0f} | {r['max']:.0f} |")
    (results / "api.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Cold sync of N templated secrets against the bare client, timed as a process.

The set-up an external harness used to measure the cold sync (issue 27), reproduced:
N KV v2 secrets `{username, password}`, each rendered by secrets-sync through the
template `'{{ .username }}:{{ .password }}'` into one file on tmpfs; against it the bare
client (`bench/bare-client` with FIELDS `username,password`) keeping 32 requests in
flight on 32 keep-alive connections, cutting the two values out of each answer without
a JSON parser and writing `username:password` by temp file and rename. Both are timed
the same way: from `Popen` until every file holds the right content (inotify for the
files, then a content check). Rounds alternate the two tools; the report gives medians,
min and max, and the median of the per-round ratios.

    python3 bench/cold_sync.py                          # N = 1000, 9 rounds
    python3 bench/cold_sync.py --n 1000 --rounds 5 --binary target/release/secrets-sync

Writes bench/results/cold_sync.md and cold_sync.json. Not part of the test suite.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (the shared OpenBao, inotify and process helpers)

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = 32
TEMPLATE = "{{ .username }}:{{ .password }}"


def username(i):
    return f"user-{i:06d}"


def password(i):
    return f"{i:08d}-" + "p" * 24


def expected(i):
    return f"{username(i)}:{password(i)}"


def seed(bao, n, prefix):
    """N secrets {username, password}."""
    bao.seed(n, prefix, lambda i: {"username": username(i), "password": password(i)})


def secrets_sync_cmd(binary, bao, prefix, n, out, workdir):
    cfg = workdir / "cold-sync.yaml"
    lines = ["secrets:"]
    for i in range(n):
        lines.append(f"  - name: s{i}\n    path: {prefix}/s{i}\n    refreshInterval: 1h\n"
                     f"    template: {{data: {{v: '{TEMPLATE}'}}}}\n"
                     f"    files: [{{path: {out}/s{i}, key: v}}]")
    cfg.write_text("\n".join(lines) + "\n")
    env = dict(os.environ, VAULT_ADDR=f"http://{bao.addr}", VAULT_TOKEN="root", CONFIG_FILE=str(cfg),
               HTTP_PORT="0", LOG_LEVEL="warn", AUDIT_LOG="false", STATUS_FILE=str(workdir / "ready"))
    return [str(binary), "run"], env


def timed(kind, args, env, out, n):
    """Seconds from process start until all N files hold the right content."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    watch = run.DirWatch(out, n)
    t0 = time.monotonic()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return run.time_to_content(kind, proc, watch, t0, out, n, 120, expected)
    finally:
        run.stop(proc)


def stats(xs):
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--binary", default=str(ROOT / "target" / "release" / "secrets-sync"))
    ap.add_argument("--dir", default="/dev/shm", help="where the files go (tmpfs by default)")
    a = ap.parse_args()

    bao_bin = os.environ.get("BAO_BIN") or str(ROOT / ".tools" / "bin" / "bao")
    if not Path(bao_bin).exists():
        run.sh("bash", "scripts/install-openbao.sh", cwd=ROOT)
    if not Path(a.binary).exists():
        run.sh("cargo", "build", "--release", "--quiet", cwd=ROOT)
    run.sh("cargo", "build", "--release", "--quiet", cwd=ROOT / "bench" / "bare-client")
    bare_bin = ROOT / "bench" / "bare-client" / "target" / "release" / "bare-client"

    workdir = Path(tempfile.mkdtemp(prefix="cold-sync-"))
    out = Path(tempfile.mkdtemp(prefix="cold-sync-out-", dir=a.dir))
    bao = run.Bao(bao_bin, workdir)
    try:
        prefix = "cold"
        seed(bao, a.n, prefix)
        ss_args, ss_env = secrets_sync_cmd(a.binary, bao, prefix, a.n, out, workdir)
        bare_args = [str(bare_bin), bao.addr, "root", prefix, str(a.n), str(CONCURRENCY), str(out),
                     "username,password"]
        # One unmeasured run of each warms OpenBao's cache and the page cache.
        timed("secrets-sync", ss_args, ss_env, out, a.n)
        timed("bare client", bare_args, dict(os.environ), out, a.n)
        ss, bare = [], []
        for r in range(a.rounds):
            ss.append(timed("secrets-sync", ss_args, ss_env, out, a.n))
            bare.append(timed("bare client", bare_args, dict(os.environ), out, a.n))
            print(f"round {r + 1}: secrets-sync {ss[-1]:.3f}s bare client + files {bare[-1]:.3f}s "
                  f"ratio {ss[-1] / bare[-1]:.2f}", flush=True)
    finally:
        bao.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)

    ratios = [s / b for s, b in zip(ss, bare)]
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                 text=True).stdout.strip(),
        "n": a.n, "rounds": a.rounds, "concurrency_bare": CONCURRENCY, "template": TEMPLATE,
        "files_on": a.dir, "cpus": os.cpu_count(),
        "secrets_sync_s": stats(ss), "bare_files_s": stats(bare), "ratio": stats(ratios),
        "raw": {"secrets_sync_s": ss, "bare_files_s": bare},
    }
    res = ROOT / "bench" / "results"
    (res / "cold_sync.json").write_text(json.dumps(result, indent=2) + "\n")
    f = lambda s: f"{s['median']:.3f} s ({s['min']:.3f}–{s['max']:.3f})"  # noqa: E731
    md = ["# Cold sync of templated secrets against the bare client + files", "",
          f"{result['date']}, commit {result['commit']}, {result['cpus']} CPUs; N = {a.n} secrets "
          f"`{{username, password}}`, template `'{TEMPLATE}'`, one file each on {a.dir}; the bare client "
          f"keeps {CONCURRENCY} requests in flight; both timed from process start until every file holds "
          f"the right content; {a.rounds} alternating rounds after one warm-up each (median, min–max).", "",
          "| secrets-sync | bare client + files | ratio (median of rounds) |", "|---|---|---|",
          f"| {f(result['secrets_sync_s'])} | {f(result['bare_files_s'])} | "
          f"{result['ratio']['median']:.2f} ({result['ratio']['min']:.2f}–{result['ratio']['max']:.2f}) |", ""]
    (res / "cold_sync.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Benchmark: secrets-sync against OpenBao Agent and a bare client.

    python3 bench/run.py                      # N = 10, 100, 1000, 10000; 3 runs
    python3 bench/run.py --sizes 10,100 --runs 1 --idle 0   # quick

For each N, on one freshly started OpenBao dev server (with a file audit
device) seeded with N KV v2 secrets of two ~32-byte fields, the three tools
run in alternation, several times each:

* secrets-sync (release build), one file per secret, into tmpfs (/dev/shm);
* OpenBao Agent (`bao agent` from the same pinned wheel), token_file
  auto-auth, one template stanza per secret, static_secret_render_interval
  equal to our refresh interval;
* the bare client (bench/bare-client): keep-alive GETs of the N secrets at
  its best concurrency (found by a sweep before the runs), nothing else: the
  physical limit. Like the others it is timed from process start;
* the bare client + files: the same, also writing each secret's field to
  its file (temp file + rename, nothing more), timed like the daemons until
  the harness has seen every file: the floor for the whole job.

Reported per tool: wall time from process start to all N files present with
the right content; peak RSS (VmHWM) and steady RSS (VmRSS 10 s after sync);
CPU seconds to sync; CPU seconds over an idle window holding at least one
refresh of unchanged secrets; Vault requests per refresh (audit log); binary
size. Then the ratios secrets-sync/agent and secrets-sync/limit, medians with
min and max, as markdown (bench/results/latest.md) and JSON. A second
scenario times `run --once` against the agent's one-shot mode.
"""

import argparse
import ctypes
import http.client
import json
import os
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")


def sh(*args, **kw):
    return subprocess.run(args, check=True, text=True, capture_output=True, **kw).stdout.strip()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def proc_stat(pid):
    """(cpu seconds, VmRSS KiB, VmHWM KiB) of a live process."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    cpu = (int(parts[11]) + int(parts[12])) / TICK
    rss = hwm = None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return cpu, rss, hwm


class Bao:
    def __init__(self, bao_bin, workdir):
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        # Not beside the tools' configs: secrets-sync watches its config's
        # directory, and the audit log grows by two lines per request.
        (workdir / "bao").mkdir()
        self.audit = workdir / "bao" / "audit.log"
        hcl = workdir / "bao" / "audit.hcl"
        hcl.write_text(f'audit "file" "file" {{\n  options {{\n    file_path = "{self.audit}"\n  }}\n}}\n')
        self.proc = subprocess.Popen(
            [bao_bin, "server", "-dev", "-dev-root-token-id=root", f"-dev-listen-address={self.addr}", f"-config={hcl}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                c = http.client.HTTPConnection(self.addr, timeout=2)
                c.request("GET", "/v1/sys/health")
                if c.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("bao dev server did not start")

    def seed(self, n, prefix, data=None):
        """Writes N secrets with 8 threads over keep-alive connections; `data(i)` is secret i's
        fields (by default two ~32-byte fields `a` and `b`)."""
        data = data or (lambda i: {"a": f"{i:08d}-" + "a" * 23, "b": f"{i:08d}-" + "b" * 23})

        def worker(ids):
            c = http.client.HTTPConnection(self.addr, timeout=30)
            for i in ids:
                body = json.dumps({"data": data(i)})
                c.request("POST", f"/v1/secret/data/{prefix}/s{i}", body, {"X-Vault-Token": "root"})
                r = c.getresponse()
                r.read()
                assert r.status in (200, 204), r.status
        threads = [threading.Thread(target=worker, args=(range(k, n, 8),)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def read_requests(self, prefix):
        if not self.audit.exists():
            return 0
        needle = f'"path":"secret/data/{prefix}/'
        with open(self.audit) as f:
            return sum(1 for l in f if '"type":"request"' in l and needle in l)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def expected(i):
    return f"{i:08d}-" + "a" * 23


IN_CLOSE_WRITE, IN_MOVED_TO, IN_Q_OVERFLOW, IN_NONBLOCK = 0x8, 0x80, 0x4000, 0o4000


class DirWatch:
    """Waits for the files s0..s{N-1} to appear in a directory, by inotify.

    Polling the directory instead (a scan of 10 000 entries takes ~10 ms of
    Python) ate up to half a core on a 2-core machine while the daemons ran,
    but not while the bare client did, and so skewed the ratios. inotify
    costs nothing until a file lands; both tools write a temp file and rename
    it, and the agent's temp names are not s<i>, so only finished files count.
    Falls back to polling where inotify is unavailable. Create it before the
    tool starts."""

    def __init__(self, out, n):
        self.out, self.missing = out, {f"s{i}" for i in range(n)}
        self.fd = -1
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(IN_NONBLOCK)
            if fd >= 0 and libc.inotify_add_watch(fd, str(out).encode(), IN_CLOSE_WRITE | IN_MOVED_TO) >= 0:
                self.fd = fd
            elif fd >= 0:
                os.close(fd)
        except (OSError, AttributeError):
            pass

    def rescan(self):
        self.missing -= {e.name for e in os.scandir(self.out)}

    def wait(self, proc, timeout):
        """True once every file exists, False on timeout."""
        deadline = time.monotonic() + timeout
        try:
            while self.missing:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if proc.poll() is not None and proc.returncode not in (0, None):
                    raise RuntimeError(f"tool exited with {proc.returncode}")
                if self.fd < 0:
                    self.rescan()
                    time.sleep(0.005)
                    continue
                if not select.select([self.fd], [], [], min(left, 0.2))[0]:
                    continue
                buf = os.read(self.fd, 1 << 20)
                off = 0
                while off < len(buf):
                    _, mask, _, size = struct.unpack_from("iIII", buf, off)
                    name = buf[off + 16:off + 16 + size].rstrip(b"\0").decode()
                    off += 16 + size
                    if mask & IN_Q_OVERFLOW:
                        self.rescan()
                    self.missing.discard(name)
            return True
        finally:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1


def verify(out, n, expect=None):
    expect = expect or expected
    for i in range(n):
        if (out / f"s{i}").read_text() != expect(i):
            raise RuntimeError(f"wrong content in s{i}")


def time_to_content(kind, proc, watch, t0, out, n, timeout, expect=None):
    """Seconds from t0 until all N files exist (inotify) and hold the right content: the time
    of the first check at which all do (the tools replace files atomically)."""
    if not watch.wait(proc, timeout=timeout):
        raise RuntimeError(f"{kind}: files not complete in time")
    wall = time.monotonic() - t0
    deadline = time.monotonic() + 60
    while True:
        try:
            verify(out, n, expect)
            return wall
        except (RuntimeError, FileNotFoundError):
            if time.monotonic() > deadline:
                raise
            wall = time.monotonic() - t0
            time.sleep(0.005)


def secrets_sync_cmd(binary, bao, prefix, n, out, interval, workdir, once=False):
    cfg = workdir / "secrets-sync.yaml"
    lines = ["secrets:"]
    for i in range(n):
        lines.append(f"  - name: s{i}\n    path: {prefix}/s{i}\n    refreshInterval: {interval}s\n"
                     f"    files: [{{path: {out}/s{i}, key: a}}]")
    cfg.write_text("\n".join(lines) + "\n")
    env = dict(os.environ, VAULT_ADDR=f"http://{bao.addr}", VAULT_TOKEN="root", CONFIG_FILE=str(cfg),
               HTTP_PORT="0", LOG_LEVEL="warn", AUDIT_LOG="false", STATUS_FILE=str(workdir / "ready"))
    args = [str(binary), "run"] + (["--once"] if once else [])
    return args, env


def agent_cmd(bao_bin, bao, prefix, n, out, interval, workdir, once=False):
    token = workdir / "token"
    token.write_text("root")
    parts = [f'vault {{\n  address = "http://{bao.addr}"\n}}',
             f'auto_auth {{\n  method "token_file" {{\n    config = {{\n      token_file_path = "{token}"\n    }}\n  }}\n}}',
             f'template_config {{\n  static_secret_render_interval = "{interval}s"\n  exit_on_retry_failure = true\n}}']
    if once:
        parts.append("exit_after_auth = true")
    for i in range(n):
        parts.append(f'template {{\n  destination = "{out}/s{i}"\n'
                     f'  contents = "{{{{ with secret \\"secret/data/{prefix}/s{i}\\" }}}}{{{{ .Data.data.a }}}}{{{{ end }}}}"\n}}')
    cfg = workdir / "agent.hcl"
    cfg.write_text("\n".join(parts) + "\n")
    return [bao_bin, "agent", f"-config={cfg}"], dict(os.environ, BAO_LOG_LEVEL="error", VAULT_LOG_LEVEL="error")


def run_daemon(kind, args, env, bao, prefix, n, out, idle, interval):
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    before = bao.read_requests(prefix)
    watch = DirWatch(out, n)
    t0 = time.monotonic()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wall = time_to_content(kind, proc, watch, t0, out, n, max(120, n / 20))
        cpu_sync, _, _ = proc_stat(proc.pid)
        first_requests = bao.read_requests(prefix) - before
        time.sleep(10)
        cpu10, rss, hwm = proc_stat(proc.pid)
        res = {"wall_s": wall, "cpu_sync_s": cpu_sync, "rss_kib": rss, "hwm_kib": hwm,
               "requests_first_sync": first_requests}
        if idle:
            mtimes = {e.name: e.stat().st_mtime_ns for e in os.scandir(out)}
            r0 = bao.read_requests(prefix)
            c0, _, _ = proc_stat(proc.pid)
            time.sleep(idle)
            c1, _, _ = proc_stat(proc.pid)
            r1 = bao.read_requests(prefix)
            refreshes = max(1, int(idle // interval))
            rewritten = sum(1 for e in os.scandir(out) if mtimes.get(e.name) != e.stat().st_mtime_ns)
            res.update({"idle_cpu_s": c1 - c0, "idle_window_s": idle, "refreshes": refreshes,
                        "requests_per_refresh_per_secret": (r1 - r0) / refreshes / n,
                        "files_rewritten_idle": rewritten})
        return res
    finally:
        stop(proc)


def stop(proc):
    """SIGTERM (a graceful stop), SIGKILL after 30 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_once(kind, args, env, n, out):
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    t0 = time.monotonic()
    p = subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{kind} one-shot exited {p.returncode}")
    verify(out, n)
    return {"wall_s": wall}


def bare_once(bare_bin, bao, prefix, n, conc):
    """Wall time of one bare-client run, timed from process start like the other tools."""
    t0 = time.monotonic()
    sh(str(bare_bin), bao.addr, "root", prefix, str(n), str(conc))
    return time.monotonic() - t0


def bare_best_concurrency(bare_bin, bao, prefix, n):
    """The concurrency at which the bare client is fastest on this server (a sweep, not reported)."""
    best = None
    for conc in (1, 2, 4, 8, 16, 32):
        if conc > n:
            break
        t = min(bare_once(bare_bin, bao, prefix, n, conc) for _ in range(2))
        if best is None or t < best[0]:
            best = (t, conc)
    return best[1]


def bare(bare_bin, bao, prefix, n, conc):
    return {"wall_s": bare_once(bare_bin, bao, prefix, n, conc), "concurrency": conc}


def bare_files(bare_bin, bao, prefix, n, conc, out):
    """The bare client that also writes each secret's field to out/s<i> (temp file + rename,
    nothing else): the floor for the whole job, timed like the daemons (from Popen until the
    harness has seen every file by inotify)."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    watch = DirWatch(out, n)
    t0 = time.monotonic()
    proc = subprocess.Popen([str(bare_bin), bao.addr, "root", prefix, str(n), str(conc), str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not watch.wait(proc, timeout=max(120, n / 20)):
            raise RuntimeError("bare client + files: files not complete in time")
        wall = time.monotonic() - t0
    finally:
        proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"bare client + files exited {proc.returncode}")
    verify(out, n)
    return {"wall_s": wall, "concurrency": conc}


def summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10,100,1000,10000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--interval", type=int, default=30, help="refresh interval (s) of both tools")
    ap.add_argument("--idle", type=int, default=60, help="idle window (s) measured for N >= 100; 0 skips")
    ap.add_argument("--dir", default="/dev/shm", help="where files are written (tmpfs by default)")
    ap.add_argument("--static", action="store_true",
                    help="measure the fully static musl binary the container image ships "
                         "(scripts/build-static.sh) instead of the glibc build")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--baseline", default=str(ROOT / "bench" / "results" / "baseline.json"),
                    help="results of the last release; every figure is checked against it (bench/compare.py)")
    ap.add_argument("--report-only", metavar="RAW_JSON",
                    help="rebuild latest.md/latest.json from a raw.json of an earlier run, measure nothing")
    a = ap.parse_args()
    if a.report_only:
        report(json.loads(Path(a.report_only).read_text()), Path(a.out))
        return check_baseline(Path(a.baseline), Path(a.out))

    bao_bin = sh(str(ROOT / "scripts" / "install-openbao.sh"))
    if a.static:
        # The fully static (musl) binary the FROM-scratch image ships.
        binary = Path(sh("bash", str(ROOT / "scripts" / "build-static.sh")).strip().splitlines()[-1])
    else:
        sh("cargo", "build", "--release", "--locked", cwd=ROOT)
        binary = ROOT / "target" / "release" / "secrets-sync"
    sh("cargo", "build", "--release", "--quiet", cwd=ROOT / "bench" / "bare-client")
    bare_bin = ROOT / "bench" / "bare-client" / "target" / "release" / "bare-client"
    sizes = [int(s) for s in a.sizes.split(",")]
    results = {"sizes": {}, "binary_bytes": {"secrets-sync": binary.stat().st_size,
                                              "bao": Path(os.path.realpath(bao_bin)).stat().st_size},
               "machine": {"cpus": os.cpu_count()}, "interval_s": a.interval,
               "build": "static musl" if a.static else "glibc"}
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="secrets-sync-bench-") as wd:
            wd = Path(wd)
            bao = Bao(bao_bin, wd)
            try:
                prefix = f"bench{n}"
                bao.seed(n, prefix)
                out = Path(tempfile.mkdtemp(prefix="secrets-sync-bench-out-", dir=a.dir))
                runs = {"secrets-sync": [], "agent": [], "bare": [], "bare-files": [],
                        "once-secrets-sync": [], "once-agent": []}
                ss_args, ss_env = secrets_sync_cmd(binary, bao, prefix, n, out, a.interval, wd)
                ag_args, ag_env = agent_cmd(bao_bin, bao, prefix, n, out, a.interval, wd)
                conc = bare_best_concurrency(bare_bin, bao, prefix, n)
                for r in range(a.runs):
                    idle = a.idle if (r == 0 and n >= 100 and a.idle) else 0
                    if idle:
                        idle = max(idle, a.interval + 5)
                    runs["bare"].append(bare(bare_bin, bao, prefix, n, conc))
                    runs["bare-files"].append(bare_files(bare_bin, bao, prefix, n, conc, out))
                    runs["secrets-sync"].append(run_daemon("secrets-sync", ss_args, ss_env, bao, prefix, n, out, idle, a.interval))
                    runs["agent"].append(run_daemon("agent", ag_args, ag_env, bao, prefix, n, out, idle, a.interval))
                    o_args, o_env = secrets_sync_cmd(binary, bao, prefix, n, out, a.interval, wd, once=True)
                    runs["once-secrets-sync"].append(run_once("secrets-sync --once", o_args, o_env, n, out))
                    oa_args, oa_env = agent_cmd(bao_bin, bao, prefix, n, out, a.interval, wd, once=True)
                    runs["once-agent"].append(run_once("agent one-shot", oa_args, oa_env, n, out))
                    print(f"N={n} run {r + 1}: ss {runs['secrets-sync'][-1]['wall_s']:.3f}s "
                          f"agent {runs['agent'][-1]['wall_s']:.3f}s bare {runs['bare'][-1]['wall_s']:.3f}s "
                          f"bare+files {runs['bare-files'][-1]['wall_s']:.3f}s", flush=True)
                shutil.rmtree(out, ignore_errors=True)
            finally:
                bao.stop()
        results["sizes"][n] = runs
        # Keep the raw runs even if the report below fails.
        Path(a.out).mkdir(parents=True, exist_ok=True)
        (Path(a.out) / "raw.json").write_text(json.dumps(results, indent=2, default=str))
    report(results, Path(a.out))
    return check_baseline(Path(a.baseline), Path(a.out))


def check_baseline(baseline, out_dir):
    """Appends the comparison with the last release to latest.md; 1 if a figure regressed."""
    if not baseline.exists():
        print(f"no baseline at {baseline}: nothing to compare with")
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import compare
    latest = json.loads((out_dir / "latest.json").read_text())
    rows, worse = compare.compare(json.loads(baseline.read_text()), latest)
    text = compare.markdown(rows, worse)
    with open(out_dir / "latest.md", "a") as f:
        f.write(f"\n## Against the baseline ({baseline.name})\n\n{text}\n")
    print(text)
    return 1 if worse else 0


def report(results, out_dir):
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    table = {}
    for n, runs in results["sizes"].items():
        def m(tool, key):
            return summary([r.get(key) for r in runs.get(tool, [])])
        ss, ag, bw = m("secrets-sync", "wall_s"), m("agent", "wall_s"), m("bare", "wall_s")
        bf = m("bare-files", "wall_s")  # absent from runs before 2026-11-24
        entry = {
            "cold_sync_s": {"secrets-sync": ss, "agent": ag, "bare": bw, "bare-files": bf},
            "ratio_wall_vs_agent": ss["median"] / ag["median"],
            "ratio_wall_vs_limit": ss["median"] / bw["median"],
            "ratio_wall_vs_limit_with_files": ss["median"] / bf["median"] if bf else None,
            "steady_rss_kib": {"secrets-sync": m("secrets-sync", "rss_kib"), "agent": m("agent", "rss_kib")},
            "peak_rss_kib": {"secrets-sync": m("secrets-sync", "hwm_kib"), "agent": m("agent", "hwm_kib")},
            "cpu_sync_s": {"secrets-sync": m("secrets-sync", "cpu_sync_s"), "agent": m("agent", "cpu_sync_s")},
            "idle_cpu_s": {"secrets-sync": m("secrets-sync", "idle_cpu_s"), "agent": m("agent", "idle_cpu_s")},
            "requests_per_refresh_per_secret": {"secrets-sync": m("secrets-sync", "requests_per_refresh_per_secret"),
                                                "agent": m("agent", "requests_per_refresh_per_secret")},
            "requests_first_sync_per_secret": {"secrets-sync": m("secrets-sync", "requests_first_sync"),
                                               "agent": m("agent", "requests_first_sync")},
            "files_rewritten_idle": {"secrets-sync": m("secrets-sync", "files_rewritten_idle")},
            "once_s": {"secrets-sync": m("once-secrets-sync", "wall_s"), "agent": m("once-agent", "wall_s")},
        }
        for k in ("requests_first_sync_per_secret",):
            for t, v in entry[k].items():
                if v:
                    entry[k][t] = {kk: vv / int(n) for kk, vv in v.items()}
        agent_rss = entry["steady_rss_kib"]["agent"]
        entry["ratio_rss_vs_agent"] = (entry["steady_rss_kib"]["secrets-sync"]["median"] / agent_rss["median"]
                                       if agent_rss and agent_rss["median"] else float("nan"))
        if entry["idle_cpu_s"]["agent"] and entry["idle_cpu_s"]["agent"]["median"] > 0:
            entry["ratio_idle_cpu_vs_agent"] = entry["idle_cpu_s"]["secrets-sync"]["median"] / entry["idle_cpu_s"]["agent"]["median"]
        table[str(n)] = entry  # as JSON keys it, whether from a run or from raw.json

        def f(s, unit=""):
            return "-" if not s else f"{s['median']:.3g}{unit} ({s['min']:.3g}–{s['max']:.3g})"
        vs_files = entry["ratio_wall_vs_limit_with_files"]
        rows.append(f"| {n} | {f(ss, 's')} | {f(ag, 's')} | {f(bw, 's')} | {f(bf, 's')} | "
                    f"{entry['ratio_wall_vs_agent']:.3f} | {entry['ratio_wall_vs_limit']:.2f} | "
                    f"{'-' if vs_files is None else f'{vs_files:.2f}'} | {f(entry['steady_rss_kib']['secrets-sync'])} | "
                    f"{f(entry['steady_rss_kib']['agent'])} | {entry['ratio_rss_vs_agent']:.3f} | "
                    f"{f(entry['idle_cpu_s']['secrets-sync'], 's')} | {f(entry['idle_cpu_s']['agent'], 's')} | "
                    f"{f(entry['requests_per_refresh_per_secret']['secrets-sync'])} | "
                    f"{f(entry['once_s']['secrets-sync'], 's')} | {f(entry['once_s']['agent'], 's')} |")
    results["table"] = table
    # Memory growth per secret between the two largest sizes of 1000 and more.
    big = sorted((int(n) for n in table if int(n) >= 1000))
    growth = {}
    if len(big) >= 2:
        lo, hi = table[str(big[0])], table[str(big[-1])]
        for tool in ("secrets-sync", "agent"):
            a, b = lo["steady_rss_kib"][tool], hi["steady_rss_kib"][tool]
            if a and b:
                growth[tool] = (b["median"] - a["median"]) / (big[-1] - big[0])
        results["derived"] = {"rss_kib_per_extra_secret": growth, "between": [big[0], big[-1]]}
    md = ["# Benchmark: secrets-sync vs OpenBao Agent vs bare client", "",
          f"{results['machine']['cpus']} CPUs; refresh interval {results['interval_s']} s; files on tmpfs; "
          f"medians (min–max). Binary: secrets-sync ({results.get('build', 'glibc')} build) "
          f"{results['binary_bytes']['secrets-sync']} bytes, "
          f"bao {results['binary_bytes']['bao']} bytes.", "",
          "| N | secrets-sync cold sync | agent | bare client | bare client + files | ss/agent | ss/limit | "
          "ss/(limit + files) | ss steady RSS KiB | agent RSS KiB | "
          "RSS ratio | ss idle CPU | agent idle CPU | ss Vault reads per secret per refresh | ss --once | agent one-shot |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|", *rows, ""]
    if growth:
        md += [f"Steady RSS per extra secret from N={big[0]} to N={big[-1]}: "
               + ", ".join(f"{t} {v:.2f} KiB" for t, v in growth.items()), ""]
    (out_dir / "latest.md").write_text("\n".join(md))
    (out_dir / "latest.json").write_text(json.dumps(results, indent=2, default=str))
    print("\n".join(md))


if __name__ == "__main__":
    sys.exit(main())

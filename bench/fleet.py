#!/usr/bin/env python3
"""Fleet benchmark: many sidecars against one OpenBao.

    python3 bench/fleet.py                                  # N = 100 and 500 secrets-sync, 100 agents
    python3 bench/fleet.py --sizes 20 --agent-sizes 20 --interval 20 --outage 30   # a quick look

One OpenBao dev server (file audit device: every request counted) seeded
with S KV v2 secrets, AppRole auth (each sidecar logs in with its own
token). Between the sidecars and OpenBao a loopback TCP proxy that can cut
the line (existing connections reset, new ones refused). For each tool and
fleet size N, N processes start together, each syncing the same S secrets
to files of its own every INTERVAL seconds, and the harness measures:

* steady state: Vault requests per second over two intervals (mean and the
  busiest second), the fleet's total RSS and CPU over that window;
* an outage: the line is cut for OUTAGE seconds; after it is restored, the
  time until every sidecar has read every secret again ("time to fresh"),
  and the busiest second of that catch-up against the steady mean;
* a rolling restart: every sidecar is stopped (SIGTERM) and started again,
  one after the other; logins counted (audit log) and live tokens on the
  server (`LIST auth/token/accessors`) before and after.

The tools: secrets-sync (release build; AppRole by VAULT_ROLE_ID /
VAULT_SECRET_ID) and `bao agent` (auto_auth approle, one template per
secret, static_secret_render_interval = INTERVAL), at the N its memory
allows (--agent-sizes). Results: bench/results/fleet.md and fleet.json.
Not part of the test suite.
"""

import argparse
import calendar
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import ROOT, Bao, free_port, proc_stat, sh  # noqa: E402


class Proxy:
    """A TCP proxy on a free loopback port to `target`; `cut()` resets every
    connection and refuses new ones until `restore()`."""

    def __init__(self, target):
        self.target = target
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.up = True
        self.conns = []
        self.lock = threading.Lock()
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", self.port))
        self.srv.listen(1024)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            if not self.up:
                self._reset(c)
                continue
            try:
                host, port = self.target.split(":")
                u = socket.create_connection((host, int(port)), timeout=5)
            except OSError:
                self._reset(c)
                continue
            with self.lock:
                self.conns += [c, u]
            ended = [0]  # pipes of this pair that ended; the second closes both
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pipe, args=(a, b, ended), daemon=True).start()

    @staticmethod
    def _reset(s):
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        except OSError:
            pass

    def _pipe(self, a, b, ended):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        # Both directions over: close the pair (a fleet of 500 sidecars
        # reconnecting after idle timeouts ran the bench out of descriptors
        # when closed connections were only shut down).
        with self.lock:
            ended[0] += 1
            if ended[0] < 2:
                return
            for s in (a, b):
                if s in self.conns:
                    self.conns.remove(s)
        for s in (a, b):
            try:
                s.close()
            except OSError:
                pass

    def cut(self):
        self.up = False
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            self._reset(s)

    def restore(self):
        self.up = True


def api(bao, method, path, body=None):
    import http.client
    c = http.client.HTTPConnection(bao.addr, timeout=30)
    c.request(method, path, json.dumps(body) if body is not None else None, {"X-Vault-Token": "root"})
    r = c.getresponse()
    data = r.read()
    if r.status >= 300 and r.status != 404:
        raise RuntimeError(f"{method} {path}: {r.status} {data[:200]!r}")
    return json.loads(data) if data else {}


def setup_approle(bao):
    api(bao, "POST", "/v1/sys/auth/approle", {"type": "approle"})
    api(bao, "PUT", "/v1/sys/policies/acl/fleet", {"policy": 'path "secret/data/*" { capabilities = ["read"] }'})
    api(bao, "POST", "/v1/auth/approle/role/fleet", {"token_policies": "fleet", "token_ttl": "1h", "token_max_ttl": "24h"})
    rid = api(bao, "GET", "/v1/auth/approle/role/fleet/role-id")["data"]["role_id"]
    sid = api(bao, "POST", "/v1/auth/approle/role/fleet/secret-id", {})["data"]["secret_id"]
    return rid, sid


def live_tokens(bao):
    return len(api(bao, "LIST", "/v1/auth/token/accessors").get("data", {}).get("keys", []))


def audit_requests(bao, since):
    """(unix time, path, accessor) of every request logged after `since`."""
    out = []
    if not bao.audit.exists():
        return out
    with open(bao.audit) as f:
        for line in f:
            if '"type":"request"' not in line:
                continue
            try:
                v = json.loads(line)
            except ValueError:
                continue
            t = v.get("time", "")
            try:
                frac = t[20:].rstrip("Z") if t[19:20] == "." else ""
                ts = calendar.timegm(time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S")) + float("0." + (frac or "0"))
            except ValueError:
                continue
            if ts >= since:
                out.append((ts, v.get("request", {}).get("path", ""), (v.get("auth") or {}).get("accessor", "")))
    return out


def per_second(times, start, end):
    n = max(1, int(end - start))
    bins = [0] * n
    for t in times:
        if start <= t < end:
            bins[min(n - 1, int(t - start))] += 1
    return bins


class Fleet:
    def __init__(self, tool, n, args, bao, proxy, rid, sid, binary, bao_bin, work):
        self.tool, self.n, self.args = tool, n, args
        self.bao, self.proxy, self.rid, self.sid = bao, proxy, rid, sid
        self.binary, self.bao_bin, self.work = binary, bao_bin, work
        self.procs = [None] * n

    def out(self, i):
        return self.work / f"pod{i}" / "out"

    def start(self, i):
        d = self.work / f"pod{i}"
        d.mkdir(parents=True, exist_ok=True)
        out = self.out(i)
        out.mkdir(exist_ok=True)
        for f in out.iterdir():
            f.unlink()
        s, iv = self.args.secrets, self.args.interval
        if self.tool == "secrets-sync":
            lines = ["secretStore: {authMethod: approle}", "secrets:"]
            for j in range(s):
                lines.append(f"  - {{name: s{j}, path: fleet/s{j}, refreshInterval: {iv}s, files: [{{path: {out}/s{j}, key: a}}]}}")
            (d / "config.yaml").write_text("\n".join(lines) + "\n")
            env = dict(os.environ, VAULT_ADDR=f"http://{self.proxy.addr}", VAULT_ROLE_ID=self.rid,
                       VAULT_SECRET_ID=self.sid, CONFIG_FILE=str(d / "config.yaml"), HTTP_PORT="0",
                       METRICS_PORT="0", LOG_LEVEL="warn", AUDIT_LOG="false", STATUS_FILE=str(d / "ready"))
            args = [str(self.binary), "run"]
        else:
            (d / "role_id").write_text(self.rid)
            (d / "secret_id").write_text(self.sid)
            parts = [f'vault {{\n  address = "http://{self.proxy.addr}"\n}}',
                     'auto_auth {\n  method "approle" {\n    config = {\n'
                     f'      role_id_file_path = "{d}/role_id"\n      secret_id_file_path = "{d}/secret_id"\n'
                     '      remove_secret_id_file_after_reading = false\n    }\n  }\n}',
                     f'template_config {{\n  static_secret_render_interval = "{iv}s"\n}}']
            for j in range(s):
                parts.append(f'template {{\n  destination = "{out}/s{j}"\n'
                             f'  contents = "{{{{ with secret \\"secret/data/fleet/s{j}\\" }}}}{{{{ .Data.data.a }}}}{{{{ end }}}}"\n}}')
            (d / "agent.hcl").write_text("\n".join(parts) + "\n")
            env = dict(os.environ, BAO_LOG_LEVEL="error", VAULT_LOG_LEVEL="error")
            args = [self.bao_bin, "agent", f"-config={d}/agent.hcl"]
        self.procs[i] = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def synced(self, i):
        return all((self.out(i) / f"s{j}").exists() for j in range(self.args.secrets))

    def stop(self, i):
        p = self.procs[i]
        if p is None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        self.procs[i] = None

    def stop_all(self):
        for i in range(self.n):
            self.stop(i)

    def usage(self):
        cpu = rss = 0
        for p in self.procs:
            if p is not None and p.poll() is None:
                c, r, _ = proc_stat(p.pid)
                cpu, rss = cpu + c, rss + (r or 0)
        return cpu, rss


def wait(cond, timeout, step=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def measure(tool, n, args, bao, proxy, rid, sid, binary, bao_bin, work):
    f = Fleet(tool, n, args, bao, proxy, rid, sid, binary, bao_bin, work / f"{tool}-{n}")
    iv = args.interval
    res = {"tool": tool, "n": n, "secrets": args.secrets, "interval_s": iv, "outage_s": args.outage}
    try:
        tokens0 = live_tokens(bao)
        t0 = time.time()
        for i in range(n):
            f.start(i)
        if not wait(lambda: all(f.synced(i) for i in range(n)), 60 + n / 5):
            raise RuntimeError(f"{tool} x{n}: not every file after start")
        res["start_s"] = time.time() - t0
        # Steady state: two intervals, after one interval of settling.
        time.sleep(iv)
        c0, _ = f.usage()
        s0 = time.time()
        time.sleep(2 * iv)
        s1 = time.time()
        c1, rss = f.usage()
        reads = [t for t, p, _ in audit_requests(bao, s0) if p.startswith("secret/data/fleet/") and t < s1]
        bins = per_second(reads, s0, s1)
        mean = len(reads) / max(1.0, s1 - s0)
        res.update({"steady_rps": mean, "steady_busiest_s": max(bins) if bins else 0,
                    "fleet_rss_mib": rss / 1024, "fleet_cpu_s_per_interval": (c1 - c0) / 2,
                    "live_tokens_after_start": live_tokens(bao) - tokens0})
        # Outage.
        proxy.cut()
        time.sleep(args.outage)
        proxy.restore()
        back = time.time()
        want = n * args.secrets

        def fresh():
            seen = {(a, p) for t, p, a in audit_requests(bao, back) if p.startswith("secret/data/fleet/")}
            return len(seen) >= want
        ok = wait(fresh, 10 * iv + 120, step=0.5)
        reqs = [(t, p, a) for t, p, a in audit_requests(bao, back) if p.startswith("secret/data/fleet/")]
        firsts = {}
        for t, p, a in sorted(reqs):
            firsts.setdefault((a, p), t)
        res["time_to_fresh_s"] = (max(firsts.values()) - back) if ok and firsts else None
        end = back + max(10.0, res["time_to_fresh_s"] or 10.0)
        cbins = per_second([t for t, _, _ in reqs], back, end)
        res["catchup_busiest_s"] = max(cbins) if cbins else 0
        res["catchup_busiest_over_steady"] = res["catchup_busiest_s"] / mean if mean else None
        # Rolling restart.
        time.sleep(2)
        r0 = time.time()
        before = live_tokens(bao)
        for i in range(n):
            f.stop(i)
            f.start(i)
            wait(lambda: f.synced(i), 30, step=0.05)
        time.sleep(2)
        logins = [p for _, p, _ in audit_requests(bao, r0) if p == "auth/approle/login"]
        res.update({"restart_logins": len(logins), "live_tokens_before_restart": before - tokens0,
                    "live_tokens_after_restart": live_tokens(bao) - tokens0})
    finally:
        f.stop_all()
        proxy.restore()
    res["live_tokens_after_stop"] = live_tokens(bao) - tokens0
    return res


def report(results, out_dir):
    rows = ["| tool | N | secrets each | steady req/s | busiest s | time to fresh after outage | catch-up busiest s (x steady) | fleet RSS | fleet CPU per interval | live tokens: after start / after rolling restart / after stop | logins in the restart |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        ttf = f"{r['time_to_fresh_s']:.1f} s" if r.get("time_to_fresh_s") is not None else "not within the wait"
        ratio = r.get("catchup_busiest_over_steady")
        rows.append(
            f"| {r['tool']} | {r['n']} | {r['secrets']} | {r['steady_rps']:.1f} | {r['steady_busiest_s']} | {ttf} | "
            f"{r['catchup_busiest_s']} ({ratio:.1f}x) | {r['fleet_rss_mib']:.0f} MiB | {r['fleet_cpu_s_per_interval']:.2f} s | "
            f"{r['live_tokens_after_start']} / {r['live_tokens_after_restart']} / {r['live_tokens_after_stop']} | {r['restart_logins']} |")
    first = results[0] if results else {}
    head = (f"# Fleet benchmark\n\n2 CPUs; {first.get('secrets')} secrets per sidecar, refresh {first.get('interval_s')} s, "
            f"outage {first.get('outage_s')} s through a loopback proxy; AppRole logins.\n\n")
    text = head + "\n".join(rows) + "\n"
    (out_dir / "fleet.md").write_text(text)
    (out_dir / "fleet.json").write_text(json.dumps(results, indent=1) + "\n")
    print(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100,500", help="secrets-sync fleet sizes")
    ap.add_argument("--agent-sizes", default="100", help="bao agent fleet sizes ('' skips)")
    ap.add_argument("--secrets", type=int, default=10, help="secrets per sidecar")
    ap.add_argument("--interval", type=int, default=60, help="refresh interval (s)")
    ap.add_argument("--outage", type=int, default=120, help="line cut (s)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = ap.parse_args()
    bao_bin = sh(str(ROOT / "scripts" / "install-openbao.sh"))
    sh("cargo", "build", "--release", "--locked", cwd=ROOT)
    binary = ROOT / "target" / "release" / "secrets-sync"
    import tempfile
    results = []
    with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
        work = Path(tmp)
        bao = Bao(bao_bin, work)
        try:
            for j in range(args.secrets):
                api(bao, "POST", f"/v1/secret/data/fleet/s{j}", {"data": {"a": f"value-{j}"}})
            rid, sid = setup_approle(bao)
            proxy = Proxy(bao.addr)
            plan = [("secrets-sync", int(n)) for n in args.sizes.split(",") if n] + \
                   [("agent", int(n)) for n in args.agent_sizes.split(",") if n]
            for tool, n in plan:
                print(f"{tool} x{n} ...", flush=True)
                r = measure(tool, n, args, bao, proxy, rid, sid, binary, bao_bin, work)
                print(json.dumps(r), flush=True)
                results.append(r)
        finally:
            bao.stop()
    report(results, Path(args.out))


if __name__ == "__main__":
    main()

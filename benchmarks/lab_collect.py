"""Host-collection cost on real sshds: the namespace lab, and 50 loopback hosts. Prints figures.

    sudo python benchmarks/lab_collect.py [--runs 3] [--loopback-hosts 50] [--loopback-runs 1] [--concurrency 16]
                                          [--apt-index empty|machine|both]

1. The lab (tests/lab.py): lab-web, lab-db and lab-legacy, each its own network/mount/PID namespace with its own
   sshd, collected by ``python -m agent.cli scan --only host`` run inside the lab's scanner namespace.
2. Loopback fleet: a fresh network namespace that has only ``lo``; one sshd listening on 127.0.0.1 … 127.0.0.N
   (tests/sshd.py), and the scanner, in that namespace, collecting N inventory hosts 127.0.0.1 … 127.0.0.N.

Each is measured with an empty apt index on the targets (the agent's own cost) and with this machine's index
(the patch probe's ``apt-get -s dist-upgrade`` then dominates: ~2 s CPU per host here, because this Docker-derived
image disables apt's binary package cache).

Figures: wall time of the scan command, CPU of the scanner process (getrusage RUSAGE_CHILDREN: user+sys of the
waited child), CPU spent on the target side (sshd and everything it started, from /proc via psutil), hosts/s.
Needs root (namespaces). Nothing leaves the machine: all traffic stays inside the namespaces.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Optional

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

import lab as labmod  # noqa: E402
from collectors import signing  # noqa: E402

LOOP_NS = labmod.PREFIX + "bench-lo"


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def tree_cpu(pids: list[int]) -> float:
    """CPU (user+sys, including reaped children) of processes, without double counting their live children."""
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


def sshd_pids(lab: labmod.Lab, names: list[str]) -> list[int]:
    """The listening sshd of each lab host (its sessions are its children, reaped into its children_* times)."""
    out = []
    for n in names:
        for pid in lab.pids(n):
            try:
                p = psutil.Process(pid)
                if p.name() == "sshd" and p.ppid() == lab._pid1(lab.host(n)):
                    out.append(pid)
            except psutil.Error:
                pass
    return out


def timed_scan(run: Any, out: str) -> dict[str, Any]:
    c0, t0 = child_cpu(), time.monotonic()
    rc = run()
    wall = time.monotonic() - t0
    cpu = child_cpu() - c0
    if rc not in (0, 2):
        raise SystemExit(f"the scan failed with exit code {rc}")
    res = json.load(open(os.path.join(out, "results.json"), encoding="utf-8"))
    collected = sum(1 for h in res["hosts"] if h["collected"])
    durs, facts, complete = [], 0, 0
    incomplete: dict[str, int] = {}
    for h in res["hosts"]:
        f = json.load(open(os.path.join(out, "facts", f"{h['name']}.json"), encoding="utf-8"))
        durs.append(f["duration_seconds"])
        facts += len(f["facts"])
        complete += sum(1 for x in f["facts"].values() if x["status"] == "collected")
        for name, x in f["facts"].items():
            if x["status"] != "collected":
                why = (x.get("reason") or x["status"])[:70]
                incomplete[f"{name}: {why}"] = incomplete.get(f"{name}: {why}", 0) + 1
    return {"rc": rc, "wall": wall, "cpu": cpu, "collected": collected, "hosts": len(res["hosts"]),
            "facts": facts, "complete": complete, "incomplete": incomplete,
            "host_median": statistics.median(durs) if durs else 0.0, "host_max": max(durs, default=0.0)}


def bench_lab(runs: int, concurrency: int, work: str, key: str, apt_index: bool) -> None:
    names = ["lab-web", "lab-db", "lab-legacy"]
    specs = labmod.default_specs()
    for s in specs:
        s.apt_index = apt_index
    with labmod.Lab(specs) as lab:
        print(f"lab up in {lab.startup_seconds:.2f}s: {', '.join(names)} (+ scanner, switch, dark namespaces)")
        hosts = ["lab-web", "lab-db", {"name": "lab-legacy", "ssh": {"legacy_algorithms": True}}]
        inv_text = lab.inventory(hosts)
        rows = []
        for i in range(runs):
            out = os.path.join(work, f"lab-{i}")
            sshds = sshd_pids(lab, names)
            s0 = tree_cpu(sshds)
            res: dict[str, Any] = {}

            def run() -> int:
                rc, so, se = lab.scan(inv_text, out, key, "--only", "host", "-q", "--concurrency", str(concurrency))
                if rc != 0:
                    print(se[-2000:], file=sys.stderr)
                return rc

            res = timed_scan(run, out)
            res["target_cpu"] = tree_cpu(sshds) - s0
            rows.append(res)
        apt = "this machine's apt index" if apt_index else "empty apt index"
        report(f"lab: {len(names)} namespace hosts, full host collection (all registered probes), {apt}, "
               f"load average now {os.getloadavg()[0]:.1f}", rows)


#: run the loopback fleet with an empty apt index (private tmpfs lists and cache in the benchmark's mount namespace)
EMPTY_APT = ("mount -t tmpfs ea-lab-apt /var/cache/apt && mount -t tmpfs ea-lab-apt-lists /var/lib/apt/lists && "
             "mkdir /var/lib/apt/lists/partial && exec \"$@\"")


def bench_loopback(n: int, runs: int, concurrency: int, work: str, key: str, apt_index: bool) -> None:
    lock = labmod._Lock()
    lock.acquire()
    try:
        labmod._delete_namespace(LOOP_NS) if LOOP_NS in labmod.lab_namespaces() else None
        subprocess.run(["ip", "netns", "add", LOOP_NS], check=True)
        subprocess.run(["ip", "-n", LOOP_NS, "link", "set", "lo", "up"], check=True)
        wrap = [] if apt_index else ["unshare", "--mount", "--propagation", "private", "sh", "-c", EMPTY_APT, "sh"]
        r = subprocess.run(["ip", "netns", "exec", LOOP_NS, *wrap, sys.executable, os.path.abspath(__file__),
                            "--inner-loopback", str(n), "--runs", str(runs), "--concurrency", str(concurrency),
                            "--work", work, "--key", key], capture_output=True, text=True, timeout=1800)
        if r.returncode != 0:
            raise SystemExit(f"loopback benchmark failed: {r.stderr[-3000:]}")
        rows = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
        apt = "this machine's apt index" if apt_index else "empty apt index"
        report(f"loopback: {n} inventory hosts 127.0.0.1-127.0.0.{n} on one sshd, in namespace {LOOP_NS} (lo only), "
               f"{apt}, load average now {os.getloadavg()[0]:.1f}", rows)
    finally:
        labmod._delete_namespace(LOOP_NS)
        lock.release()


def inner_loopback(n: int, runs: int, concurrency: int, work: str, key: str) -> None:
    """Runs inside the lo-only namespace: one sshd on 127.0.0.1..N, the scanner against N hosts."""
    from sshd import start_sshd
    addrs = tuple(f"127.0.0.{i}" for i in range(1, n + 1))
    # sshd listens on at most 16 addresses (MAX_LISTEN_SOCKS); this namespace has only lo, so the wildcard
    # address is exactly "all of 127.0.0.0/8" and nothing else.
    srv = start_sshd(("0.0.0.0",), workdir=tempfile.mkdtemp(prefix="sshd-", dir=work))
    with open(srv.known_hosts, "w") as f:
        f.writelines(f"[{a}]:{srv.port} {srv.host_pub}\n" for a in addrs)
    try:
        hosts = "\n".join(f"  - {{name: lo-{i:03d}, address: {a}, ssh: {{port: {srv.port}}}}}"
                          for i, a in enumerate(addrs, 1))
        inv = os.path.join(work, "loopback.yml")
        with open(inv, "w") as f:
            f.write(f"""version: 1
scope: {{allow: [127.0.0.0/8]}}
defaults:
  ssh: {{user: root, key_file: {srv.client_key}, known_hosts: {srv.known_hosts}, host_key_policy: strict}}
  timeouts: {{connect: 10, host: 300}}
hosts:
{hosts}
""")
        # tests/sshd.py execs sshd in place of its unshare/sh wrapper: the Popen pid is the listening sshd
        sshd = [srv.proc.pid] if srv.proc else []
        env = dict(os.environ, PYTHONPATH=ROOT)
        for i in range(runs):
            out = os.path.join(work, f"loop-{i}")
            s0 = tree_cpu(sshd)

            def run() -> int:
                p = subprocess.run([sys.executable, "-m", "agent.cli", "scan", "--inventory", inv, "--out", out,
                                    "--key", key, "--only", "host", "-q", "--concurrency", str(concurrency)],
                                   cwd=ROOT, env=env, capture_output=True, text=True)
                if p.returncode != 0:
                    print(p.stderr[-2000:], file=sys.stderr)
                return p.returncode

            res = timed_scan(run, out)
            res["target_cpu"] = tree_cpu(sshd) - s0
            print(json.dumps(res), flush=True)
    finally:
        srv.stop()


def report(title: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n{title}")
    print(f"  {'run':>3} {'rc':>3} {'collected':>9} {'wall s':>7} {'scanner CPU s':>13} {'target CPU s':>12} "
          f"{'hosts/s':>8} {'host median s':>13} {'host max s':>10} {'facts complete':>14}")
    for i, r in enumerate(rows, 1):
        print(f"  {i:>3} {r['rc']:>3} {int(r['collected']):>4}/{int(r['hosts']):<4} {r['wall']:>7.2f} {r['cpu']:>13.2f} "
              f"{r['target_cpu']:>12.2f} {r['hosts'] / r['wall']:>8.2f} {r['host_median']:>13.2f} {r['host_max']:>10.2f} "
              f"{int(r['complete']):>8}/{int(r['facts']):<5}")
    seen: dict[str, int] = {}
    for r in rows:
        for k, v in r.get("incomplete", {}).items():
            seen[k] = max(seen.get(k, 0), v)
    for k, v in sorted(seen.items()):
        print(f"  incomplete fact (max per run {v}): {k}")
    if len(rows) > 1:
        w = statistics.median(r["wall"] for r in rows)
        c = statistics.median(r["cpu"] for r in rows)
        t = statistics.median(r["target_cpu"] for r in rows)
        n = rows[0]["hosts"]
        print(f"  median: wall {w:.2f}s, scanner CPU {c:.2f}s ({c / n * 1000:.0f} ms/host), "
              f"target CPU {t:.2f}s ({t / n * 1000:.0f} ms/host), {n / w:.2f} hosts/s")


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="scans of the lab (default: %(default)s)")
    ap.add_argument("--loopback-runs", type=int, default=1, help="scans of the loopback fleet (default: %(default)s)")
    ap.add_argument("--loopback-hosts", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--apt-index", choices=("empty", "machine", "both"), default="both",
                    help="targets see an empty apt index, this machine's (a full `apt-get -s dist-upgrade`, "
                         "~2 s CPU per host on this image), or each in turn (default: %(default)s)")
    ap.add_argument("--skip-lab", action="store_true")
    ap.add_argument("--skip-loopback", action="store_true")
    ap.add_argument("--inner-loopback", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--key", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.inner_loopback:
        inner_loopback(a.inner_loopback, a.runs, a.concurrency, a.work, a.key)
        return 0
    why = labmod.preflight()
    if why:
        print(f"lab_collect: skipped: {why}")
        return 0
    work = tempfile.mkdtemp(prefix="ea-bench-lab-")
    os.chmod(work, 0o755)  # the loopback sshd reads its authorized_keys from here
    try:
        key = signing.keygen(os.path.join(work, "signing_key")).path
        print(f"evidence-agent host collection benchmark: {os.cpu_count()} CPUs, python {sys.version.split()[0]}, "
              f"--concurrency {a.concurrency}, load average at start {os.getloadavg()[0]:.1f}")
        apt_modes = {"empty": [False], "machine": [True], "both": [False, True]}[a.apt_index]
        for apt in apt_modes:
            sub = os.path.join(work, "machine-apt" if apt else "empty-apt")
            os.makedirs(sub, mode=0o755)
            if not a.skip_lab:
                bench_lab(a.runs, a.concurrency, sub, key, apt)
            if not a.skip_loopback:
                bench_loopback(a.loopback_hosts, a.loopback_runs, a.concurrency, sub, key, apt)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Distributed-mode benchmark (issue 15): N loopback hosts over 2 zone workers vs the single-process run. Prints figures.

    sudo .venv/bin/python benchmarks/distributed.py [--hosts 500] [--concurrency 16] [--pools threads,prefork]
        [--worker-concurrency C] [--apt-cache server|as-is] [--keep-work]

Setup, all on this machine and nowhere else (the target side is benchmarks/fleet.py's, reused as is):

* a fresh network namespace ``ea-dist-bench-<pid>`` with only ``lo`` up (the benchmark re-runs itself inside it);
  one sshd on 0.0.0.0 there serves N addresses 127.1.x.y (fleet.Target), each in known_hosts;
* one inventory: the N hosts alternately in zones ``internal`` and ``dmz`` (N/2 each), ``workers:`` accepting one
  worker key per zone; no ``broker:`` section, so the same file runs single-process or with ``--broker``;
* single-process: ``python -m agent.cli scan --only host -j C`` on that inventory (no broker), with an idle
  redis-server on the broker's port: the targets are this namespace, so they see the broker listening, and a
  database listening is part of what 14.4.1 judges; without it the verdicts could not be equal;
* distributed, per pool: a fresh password-protected redis-server on that port (tests/distlab.Redis), two
  ``evidence-agent worker --zone Z --pool P --concurrency C`` processes (tests/distlab.Worker: the real CLI, each
  in its own session), then the controller ``python -m agent.cli scan --broker URL --only host -j C`` as a
  subprocess (it keeps at most C hosts in flight per zone, so each worker gets C at once).

Figures: wall; the controller's and the single-process run's CPU (getrusage RUSAGE_CHILDREN of the waited
process, start-up and bundle signing included); each worker's CPU during the controller's run (user+sys of the
worker's live process tree plus what it reaped, before/after; its start-up before the run is given apart) and
redis-server's the same way; peak RSS of each part (its process tree's summed RSS, sampled every 0.1 s); the
target side (the sshd and every session it reaped) for both modes; bytes and commands through Redis
(``INFO stats`` before/after). The broker's per-host overhead = (controller + workers + redis CPU − single-process
CPU) / N. Both modes share this machine's two cores with the target side, so wall time mostly measures the
target; the CPU columns are what a scanner box pays. Verdicts of both runs are compared
(scripts/lab_verdicts.verdicts) and every host must appear once, in inventory order.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Optional

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fleet  # noqa: E402 - sets sys.path for the project and tests/

ROOT = fleet.ROOT
sys.path.insert(0, os.path.join(ROOT, "scripts"))

ZONES = ("internal", "dmz")


def tree_cpu(pid: int) -> float:
    """User+sys of a live process tree, plus what its members reaped (a recycled prefork child stays counted)."""
    try:
        root = psutil.Process(pid)
        procs = [root] + root.children(recursive=True)
    except psutil.Error:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


def zone_of(i: int) -> str:
    return ZONES[i % len(ZONES)]


def write_inventory(path: str, n: int, target: fleet.Target, pubs: dict[str, str]) -> list[str]:
    names = [f"h{i:04d}" for i in range(n)]
    with open(path, "w") as f:
        f.write(f"""version: 1
organisation: distributed benchmark
scope: {{allow: [127.0.0.0/8]}}
defaults:
  ssh: {{user: root, port: {target.port}, key_file: {target.client_key}, known_hosts: {target.known_hosts},
         host_key_policy: strict}}
  timeouts: {{connect: 30, command: 120, host: 900}}
workers:
""")
        f.writelines(f"  {z}: [{json.dumps(pubs[z])}]\n" for z in ZONES)
        f.write("hosts:\n")
        f.writelines(f"  - {{name: {names[i]}, address: {fleet.address(i)}, zone: {zone_of(i)}}}\n"
                     for i in range(n))
    return names


def check_bundle(out: str, names: list[str]) -> dict[str, Any]:
    """Collected count, each host once in inventory order, and the verdicts (rule × host → status)."""
    from lab_verdicts import verdicts

    try:
        with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
            res = json.load(f)
    except (OSError, ValueError) as e:
        return {"error": f"{type(e).__name__}: {e}", "collected": 0, "once": False, "verdicts": {}}
    got = [h["name"] for h in res["hosts"]]
    files = [x for x in os.listdir(os.path.join(out, "facts")) if x.startswith("h")]
    return {"collected": sum(1 for h in res["hosts"] if h["collected"]),
            "once": got == names and len(set(got)) == len(got) and len(files) == len(names),
            "verdicts": verdicts(res), "errors": sorted({h.get("error") for h in res["hosts"] if h.get("error")})[:3]}


def redis_stats(r: Any) -> dict[str, int]:
    s = r.client().info("stats")
    return {k: int(s[k]) for k in ("total_net_input_bytes", "total_net_output_bytes", "total_commands_processed")}


def run_single(n: int, a: argparse.Namespace, target: fleet.Target, work: str, inv: str, key: str,
               names: list[str], redis_port: int) -> dict[str, Any]:
    """The single-process scan, with an idle redis-server on the broker's port: the targets are this namespace,
    and their listening-services fact must be the same in both modes (a DB listening changes 14.4.1's verdict)."""
    from distlab import Redis

    out = os.path.join(work, f"single-{n}")
    argv = [sys.executable, "-m", "agent.cli", "scan", "--inventory", inv, "--out", out, "--key", key,
            "--only", "host", "-q", "-j", str(a.concurrency), "--lang", "en"]
    idle = Redis(port=redis_port, dir=os.path.join(work, f"redis-idle-{n}"))
    os.makedirs(idle.dir, exist_ok=True)
    try:
        idle.start()
        r = fleet.measure(argv, dict(os.environ, PYTHONPATH=ROOT), target, out + ".log")
    finally:
        idle.stop()
    r.update(check_bundle(out, names))
    return r


def run_distributed(n: int, pool: str, a: argparse.Namespace, target: fleet.Target, work: str, inv: str,
                    key: str, wkeys: dict[str, str], names: list[str], redis_port: int) -> dict[str, Any]:
    from distlab import Redis, Worker

    out = os.path.join(work, f"dist-{pool}-{n}")
    redis = Redis(port=redis_port, dir=os.path.join(work, f"redis-{pool}-{n}"))
    os.makedirs(redis.dir, exist_ok=True)
    workers = [Worker([z], "", wkeys[z], f"w-{z}", concurrency=a.worker_concurrency or a.concurrency, pool=pool,
                      log_path=os.path.join(work, f"worker-{pool}-{z}-{n}.log")) for z in ZONES]
    r: dict[str, Any] = {}
    try:
        redis.start()
        for w in workers:
            w.broker = redis.url
            w.start(wait=False)
        t0 = time.monotonic()
        for w in workers:
            w.wait_ready(timeout=120)
        r["workers_ready_s"] = time.monotonic() - t0
        assert redis.proc is not None
        pids = {w.name: w.proc.pid for w in workers if w.proc}
        start_cpu = {name: tree_cpu(pid) for name, pid in pids.items()}
        rss = {name: fleet.TreeRss(pid).start() for name, pid in pids.items()}
        rss["redis"] = fleet.TreeRss(redis.proc.pid).start()
        redis_cpu0, stats0 = tree_cpu(redis.proc.pid), redis_stats(redis)
        prof = ["-m", "cProfile", "-o", f"{a.profile}.{pool}.{n}.prof"] if a.profile else []
        argv = [sys.executable, *prof, "-m", "agent.cli", "scan", "--inventory", inv, "--out", out, "--key", key,
                "--only", "host", "-q", "-j", str(a.concurrency), "--lang", "en", "--broker", redis.url]
        r.update(fleet.measure(argv, dict(os.environ, PYTHONPATH=ROOT), target, out + ".log"))
        stats1, redis_cpu1 = redis_stats(redis), tree_cpu(redis.proc.pid)
        end_cpu = {name: tree_cpu(pid) for name, pid in pids.items()}
        for s in rss.values():
            s.stop()
        r["workers"] = {name: {"startup_cpu": start_cpu[name], "cpu": end_cpu[name] - start_cpu[name],
                               "peak_rss_mb": rss[name].peak / 2**20, "procs": rss[name].peak_procs}
                        for name in pids}
        r["redis"] = {"cpu": redis_cpu1 - redis_cpu0, "peak_rss_mb": rss["redis"].peak / 2**20,
                      **{k: stats1[k] - stats0[k] for k in stats0}}
        r.update(check_bundle(out, names))
        with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
            dist = json.load(f)["run"].get("distributed") or {}
        r["by_worker"] = {w["hostname"]: w["tasks"] for w in dist.get("workers", [])}
    finally:
        for w in workers:
            w.stop()
        redis.stop()
    return r


def show_single(n: int, s: dict[str, Any]) -> None:
    print(f"  single-process scan       wall {s['wall']:7.2f}s  CPU {s['cpu']:7.2f}s ({s['cpu'] / n * 1000:4.0f} ms/host)"
          f"  peak RSS {s['peak_rss_mb']:6.1f} MB  target CPU {s['target_cpu']:6.1f}s  rc={s['rc']} collected "
          f"{s['collected']}/{n}" + (f"  ERROR {s['error']}" if s.get("error") else ""), flush=True)


def show_dist(n: int, pool: str, d: dict[str, Any], s: dict[str, Any]) -> dict[str, Any]:
    """Print one distributed run against the single-process one; returns the derived figures."""
    if "workers" not in d:
        print(f"  distributed [{pool}]: FAILED {d}", flush=True)
        return {}
    w_cpu = sum(w["cpu"] for w in d["workers"].values())
    w_rss = sum(w["peak_rss_mb"] for w in d["workers"].values())
    total_cpu = d["cpu"] + w_cpu + d["redis"]["cpu"]
    total_rss = d["peak_rss_mb"] + w_rss + d["redis"]["peak_rss_mb"]
    print(f"  distributed [{pool}]: workers up in {d['workers_ready_s']:.1f}s; rc={d['rc']} collected "
          f"{d['collected']}/{n}; hosts per worker {d.get('by_worker')}"
          + (f"  ERROR {d['error']}" if d.get("error") else ""))
    print(f"    controller              wall {d['wall']:7.2f}s  CPU {d['cpu']:7.2f}s ({d['cpu'] / n * 1000:4.0f} ms/host)"
          f"  peak RSS {d['peak_rss_mb']:6.1f} MB  target CPU {d['target_cpu']:6.1f}s")
    for name, w in d["workers"].items():
        hosts = sum(1 for i in range(n) if f"w-{zone_of(i)}" == name)
        print(f"    worker {name:<16} CPU {w['cpu']:7.2f}s ({w['cpu'] / hosts * 1000:4.0f} ms/host of its {hosts})"
              f"  peak RSS {w['peak_rss_mb']:6.1f} MB over {w['procs']} process(es)  (start-up {w['startup_cpu']:.2f}s "
              "CPU, not counted)")
    rd = d["redis"]
    print(f"    redis-server            CPU {rd['cpu']:7.2f}s ({rd['cpu'] / n * 1000:4.1f} ms/host)  peak RSS "
          f"{rd['peak_rss_mb']:6.1f} MB  in {rd['total_net_input_bytes'] / 2**20:.1f} MiB, out "
          f"{rd['total_net_output_bytes'] / 2**20:.1f} MiB, {rd['total_commands_processed']} commands")
    print(f"    all parts               CPU {total_cpu:7.2f}s ({total_cpu / n * 1000:4.0f} ms/host)  peak RSS "
          f"{total_rss:6.1f} MB (sum of the parts' peaks)")
    over = (total_cpu - s["cpu"]) / n * 1000
    print(f"    distributed/single      wall x{d['wall'] / s['wall']:.2f}, CPU x{total_cpu / s['cpu']:.2f} (controller "
          f"alone x{d['cpu'] / s['cpu']:.2f}), peak RSS x{total_rss / s['peak_rss_mb']:.2f} (controller alone "
          f"x{d['peak_rss_mb'] / s['peak_rss_mb']:.2f}), target CPU x{d['target_cpu'] / s['target_cpu']:.2f}")
    print(f"    broker overhead per host: {over:.1f} ms CPU (all parts − single-process) / N; through Redis "
          f"{(rd['total_net_input_bytes'] + rd['total_net_output_bytes']) / n / 1024:.1f} KiB "
          f"(in {rd['total_net_input_bytes'] / n / 1024:.1f}, out {rd['total_net_output_bytes'] / n / 1024:.1f}) "
          f"and {rd['total_commands_processed'] / n:.1f} commands")
    same = d["verdicts"] == s["verdicts"] and bool(s["verdicts"])
    diff = sorted(k for k in set(d["verdicts"]) | set(s["verdicts"]) if d["verdicts"].get(k) != s["verdicts"].get(k))
    print(f"    verdicts equal: {'yes' if same else 'no'} ({len(s['verdicts'])} verdicts"
          + (f"; {len(diff)} differ, e.g. {diff[:3]}" if diff else "") + f"); each host once: "
          f"{'yes' if d['once'] else 'no'}", flush=True)
    return {"total_cpu": total_cpu, "total_rss_mb": total_rss, "overhead_ms_per_host": over,
            "verdicts_equal": same}


def inside(a: argparse.Namespace) -> int:
    from collectors import signing
    from distlab import worker_key
    from sshd import free_port

    n = a.hosts
    pools = [p for p in a.pools.split(",") if p]
    work = tempfile.mkdtemp(prefix="ea-dist-bench-")
    key = os.path.join(work, "signing_key")
    signing.keygen(key)
    wkeys = {z: os.path.join(work, f"worker-{z}.key") for z in ZONES}
    pubs = {z: worker_key(p) for z, p in wkeys.items()}
    target = fleet.Target(work, n, a.apt_cache, own_pids=True)
    summary: list[dict[str, Any]] = []
    ok = True
    try:
        warm = target.ssh(fleet.address(0), "apt-get -s -o Debug::NoLocking=1 dist-upgrade >/dev/null 2>&1; "
                                             "/usr/bin/python3 -c 'import json'; echo ok")
        inv = os.path.join(work, "inventory.yml")
        names = write_inventory(inv, n, target, pubs)
        wc = a.worker_concurrency or a.concurrency
        print(f"target: sshd on 0.0.0.0:{target.port} in a lo-only namespace, {n} addresses {fleet.address(0)}.."
              f"{fleet.address(n - 1)} in zones {'/'.join(ZONES)}; apt cache: {a.apt_cache}; warm-up: "
              f"{warm.stdout.strip()}")
        print(f"single-process -j {a.concurrency}; distributed: controller -j {a.concurrency} (per zone), 2 workers "
              f"x {wc} ({', '.join(pools)}); {os.cpu_count()} CPUs; load average at start {os.getloadavg()[0]:.1f}",
              flush=True)
        print(f"N={n}")
        redis_port = free_port()
        s = run_single(n, a, target, work, inv, key, names, redis_port)
        show_single(n, s)
        summary.append({"n": n, "mode": "single", **{k: v for k, v in s.items() if k != "verdicts"}})
        for pool in pools:
            d = run_distributed(n, pool, a, target, work, inv, key, wkeys, names, redis_port)
            derived = show_dist(n, pool, d, s)
            ok = ok and bool(derived.get("verdicts_equal")) and bool(d.get("once"))
            summary.append({"n": n, "mode": f"distributed-{pool}", **derived,
                            **{k: v for k, v in d.items() if k != "verdicts"}})
    finally:
        target.stop()
        if a.keep_work:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("\nsummary (JSON):")
    for row in summary:
        print(json.dumps(_rounded(row)))
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    return 0 if ok else 1


def _rounded(x: Any) -> Any:
    if isinstance(x, float):
        return round(x, 3)
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    return x


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--hosts", type=int, default=500, help="N hosts, split over the two zones (default: %(default)s)")
    ap.add_argument("--concurrency", "-j", type=int, default=16,
                    help="single-process -j, and the controller's hosts in flight per zone (default: %(default)s)")
    ap.add_argument("--worker-concurrency", type=int, default=0, help="each worker's --concurrency (default: -j)")
    ap.add_argument("--pools", default="threads,prefork", help="worker pools to measure (default: %(default)s)")
    ap.add_argument("--apt-cache", choices=("server", "as-is"), default="server",
                    help="target apt behaviour (benchmarks/fleet.py's doc; default: %(default)s)")
    ap.add_argument("--profile", metavar="PREFIX", help="diagnosis: run the controller under cProfile (wall clock) "
                    "into PREFIX.<pool>.<N>.prof; its figures then include the profiler's overhead")
    ap.add_argument("--keep-work", action="store_true", help="keep the bundles and logs (printed path)")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.hosts < 2:
        ap.error("--hosts must be at least 2 (one per zone)")
    if a.inside:
        return inside(a)
    if os.geteuid() != 0:
        print("needs root: network and mount namespaces, and an sshd logging in as root", file=sys.stderr)
        return 2
    if not shutil.which("redis-server"):
        print("redis-server is not installed (scripts/system-deps.sh installs it)", file=sys.stderr)
        return 2
    ns = f"ea-dist-bench-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
        args = list(argv if argv is not None else sys.argv[1:])
        return subprocess.run(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__), "--inside",
                               *args]).returncode
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


if __name__ == "__main__":
    sys.exit(main())

"""Fleet benchmark: our full host collection vs ``ansible all -m setup`` on the same N hosts. Prints figures.

    sudo .venv/bin/python benchmarks/fleet.py [--sizes 50,200,500] [--ansible-sizes 50,200]
        [--concurrency 16] [--skip-ansible] [--ansible PATH] [--apt-cache server|as-is] [--floor]

Setup, all on this machine and nowhere else:

* a fresh network namespace ``ea-fleet-bench-<pid>`` with only ``lo`` up: every 127.x address reaches
  the one sshd started there, and nothing outside is reachable (the benchmark re-runs itself inside it);
* one OpenSSH sshd listening on 0.0.0.0 in that namespace (sshd binds at most 16 addresses, and here the
  wildcard is exactly loopback), in its own mount namespace where root's ``~/.bashrc`` is an empty file
  (as tests/sshd.py does) — so N hosts = N addresses 127.1.x.y of that sshd, each in known_hosts;
* ours: ``python -m agent.cli scan --only host -j C`` (agent.run.scan, every probe registered in
  probes/host at that time, policies evaluated, bundle written and signed);
* the peer: ``ansible all -m setup -f C`` (ansible-core from requirements-bench.txt in its own venv),
  same hosts, same key, host keys checked against the same known_hosts (StrictHostKeyChecking=yes).
  Configured in its favour: pipelining on, interpreter given (no discovery round trip), ControlPersist
  as by default. The benchmark process is a child subreaper, so the ssh ControlPersist masters that
  ansible daemonises stay in our process tree: their CPU and memory are counted, and they are ended
  (by pid) once ansible has exited.

``--apt-cache server`` (default): the target side behaves like an ordinary Debian server. This container's
``/etc/apt/apt.conf.d/docker-clean`` disables apt's binary package cache, so every ``apt-get -s`` (the
patch probe) rebuilds it from the lists: ~2.3 CPU-s per host here, against ~0.2 s on a normal server.
Inside the sshd's private mount namespace only, that file is masked by an empty one and
``/var/cache/apt`` by a scratch directory (nothing on the machine changes). ``--apt-cache as-is`` keeps the
container's behaviour.

Figures per tool and size: wall time; CPU time of the tool's process tree (getrusage RUSAGE_CHILDREN over
waited children, which includes every descendant that was waited for); target-side CPU (the sshd and all
sessions it reaped); peak RSS = the largest sum of RSS over the tool's live process tree, sampled every
0.1 s; hosts collected. Both tools share this machine's cores with the target side.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Optional

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

PR_SET_CHILD_SUBREAPER = 36


def address(i: int) -> str:
    return f"127.1.{i // 250}.{i % 250 + 1}"


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def proc_cpu(pid: int) -> float:
    """CPU of a live process plus everything it has reaped (its sessions, for sshd)."""
    try:
        t = psutil.Process(pid).cpu_times()
        return t.user + t.system + t.children_user + t.children_system
    except psutil.Error:
        return 0.0


def _is_ssh_master(p: psutil.Process) -> bool:
    """An ssh client process adopted by us (the subreaper): ansible's daemonised ControlPersist masters.
    The target side never runs an ssh client, and ours never starts one."""
    try:
        return p.name() == "ssh"
    except psutil.Error:
        return False


class TreeRss:
    """Samples the summed RSS of the tool's process tree: the tool, its descendants, and the ssh masters it
    daemonised (adopted by us). Orphans of the target side (also adopted by us) are not the tool's."""

    def __init__(self, root: int, interval: float = 0.1) -> None:
        self.root = root
        self.interval = interval
        self.peak = 0
        self.peak_procs = 0
        self.peak_single = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        procs: dict[int, psutil.Process] = {}
        try:
            r = psutil.Process(self.root)
            for p in [r] + r.children(recursive=True):
                procs[p.pid] = p
        except psutil.Error:
            pass
        for c in psutil.Process().children():
            if _is_ssh_master(c):
                procs[c.pid] = c
        total, n = 0, 0
        for p in procs.values():
            try:
                rss = p.memory_info().rss
            except psutil.Error:
                continue
            if rss:
                total += rss
                n += 1
                self.peak_single = max(self.peak_single, rss)
        if total > self.peak:
            self.peak, self.peak_procs = total, n

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def start(self) -> "TreeRss":
        self._t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._t.join()


def end_ssh_masters() -> int:
    """Terminate and reap (by pid) the ssh masters we adopted, so their CPU is counted as the tool's."""
    masters = [c for c in psutil.Process().children() if _is_ssh_master(c)]
    for c in masters:
        try:
            c.terminate()
        except psutil.Error:
            pass
    for c in masters:
        try:
            os.waitpid(c.pid, 0)
        except ChildProcessError:
            pass
    return len(masters)


# -- the target: one sshd for all addresses ------------------------------------------------------------

class Target:
    def __init__(self, work: str, n: int, apt_cache: str, own_pids: bool = False) -> None:
        """own_pids: the sshd in its own PID namespace, so the targets' process list is theirs alone (not every
        process of a shared machine: another run's lab servers would change process-based verdicts)."""
        from sshd import SSHD, free_port, keygen_ssh, sshd_config, wait_port

        self.dir = os.path.join(work, "sshd")
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)
        d = self.dir
        self.port = free_port("0.0.0.0")
        keygen_ssh(f"{d}/host_key")
        keygen_ssh(f"{d}/client_key")
        shutil.copy(f"{d}/client_key.pub", f"{d}/authorized_keys")
        self.client_key = f"{d}/client_key"
        self.known_hosts = f"{d}/known_hosts"
        host_pub = " ".join(open(f"{d}/host_key.pub").read().split()[:2])
        with open(self.known_hosts, "w") as f:
            f.writelines(f"[{address(i)}]:{self.port} {host_pub}\n" for i in range(n))
        with open(f"{d}/sshd_config", "w") as f:
            f.write(sshd_config(d, [f"0.0.0.0:{self.port}"], max_startups="1000:30:2000", max_sessions=100))
        open(f"{d}/empty", "w").close()
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        mounts = []
        bashrc = os.path.expanduser("~/.bashrc")
        if os.path.exists(bashrc):
            mounts.append(f"mount --bind {d}/empty {bashrc}")
        if apt_cache == "server" and os.path.exists("/etc/apt/apt.conf.d/docker-clean"):
            os.makedirs(f"{d}/apt-cache/archives/partial")
            mounts.append(f"mount --bind {d}/empty /etc/apt/apt.conf.d/docker-clean")
            mounts.append(f"mount --bind {d}/apt-cache /var/cache/apt")
        inner = " && ".join(mounts + [f"exec {SSHD} -D -e -f {d}/sshd_config"])
        pid_ns = ["--pid", "--mount-proc", "--kill-child"] if own_pids else []
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", *pid_ns, "sh", "-c", inner],
                                     stdout=subprocess.DEVNULL, stderr=open(f"{d}/sshd.log", "wb"))
        wait_port(address(0), self.port)
        # the process whose CPU (with every session it reaped) is the target side's: sshd itself
        self.cpu_pid = psutil.Process(self.proc.pid).children()[0].pid if own_pids else self.proc.pid

    def ssh(self, addr: str, command: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ssh", "-i", self.client_key, "-p", str(self.port), "-o", "BatchMode=yes",
                               "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
                               f"root@{addr}", command], capture_output=True, text=True, timeout=120)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# -- the two tools ---------------------------------------------------------------------------------------

def measure(argv: list[str], env: dict[str, str], target: Target, out_path: str) -> dict[str, Any]:
    c0, s0, t0 = child_cpu(), proc_cpu(target.cpu_pid), time.monotonic()
    with open(out_path, "wb") as out:
        p = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        rss = TreeRss(p.pid).start()
        rc = p.wait()
        wall = time.monotonic() - t0
        masters = end_ssh_masters()  # ansible's ControlPersist masters: reaped here, so counted
        rss.stop()
    return {"rc": rc, "wall": wall, "cpu": child_cpu() - c0, "target_cpu": proc_cpu(target.cpu_pid) - s0,
            "peak_rss_mb": rss.peak / 2**20, "peak_procs": rss.peak_procs, "max_single_rss_mb": rss.peak_single / 2**20,
            "ssh_masters_reaped": masters}


def run_ours(n: int, concurrency: int, target: Target, work: str, key: str, without: list[str],
             profile: Optional[str], tag: str = "ours") -> dict[str, Any]:
    inv = os.path.join(work, f"inv-{n}.yml")
    with open(inv, "w") as f:
        f.write(f"""version: 1
organisation: fleet benchmark
scope: {{allow: [127.0.0.0/8]}}
defaults:
  ssh: {{user: root, port: {target.port}, key_file: {target.client_key}, known_hosts: {target.known_hosts},
         host_key_policy: strict}}
  timeouts: {{connect: 30, command: 120, host: 900}}
hosts:
""")
        f.writelines(f"  - {{name: h{i:04d}, address: {address(i)}}}\n" for i in range(n))
    out = os.path.join(work, f"{tag}-{n}")
    env = dict(os.environ, PYTHONPATH=ROOT)
    argv = ["scan", "--inventory", inv, "--out", out, "--key", key, "--only", "host", "-q", "-j", str(concurrency),
            "--lang", "en"]
    if tag == "run":  # what a timer calls; measured on the second run, which compares with the first
        argv = ["run", "--inventory", inv, "--bundles", out, "--key", key, "--only", "host", "-j", str(concurrency),
                "--quiet", "--lang", "en"]
    # the CLI itself; --without-probes drops probes from the registry first (diagnosis only)
    launcher = os.path.join(work, "launch_ours.py")
    with open(launcher, "w") as f:
        f.write("import sys\n"
                "import probes.host as H\n"
                "H.PROBES[:] = [p for p in H.PROBES if p.name not in sys.argv[1].split(',')]\n"
                "from agent.cli import main\n"
                "sys.exit(main(sys.argv[2:]))\n")
    spy = ([profile.split("=", 1)[0], "record", "--nonblocking", "--format", "raw", "--rate", "200",
            "-o", profile.split("=", 1)[1], "--"] if profile else [])
    if tag == "run":
        measure([sys.executable, launcher, ",".join(without), *argv], env, target, out + ".first.log")
    r = measure([*spy, sys.executable, launcher, ",".join(without), *argv], env, target, out + ".log")
    if tag == "run":
        out = os.path.join(out, "latest")
    try:
        res = json.load(open(os.path.join(out, "results.json"), encoding="utf-8"))
        r["collected"] = sum(1 for h in res["hosts"] if h["collected"])
        durs = sorted(json.load(open(os.path.join(out, "facts", f"h{i:04d}.json"), encoding="utf-8"))
                      ["duration_seconds"] for i in range(n))
        r["host_median"] = durs[len(durs) // 2]
        f0 = json.load(open(os.path.join(out, "facts", "h0000.json"), encoding="utf-8"))["facts"]
        r["facts"] = f"{sum(1 for x in f0.values() if x['status'] == 'collected')}/{len(f0)} facts on h0000"
    except (OSError, ValueError, KeyError) as e:
        r["collected"] = 0
        r["error"] = f"{type(e).__name__}: {e}; see {out}.log"
    if tag == "ours" and r.get("collected"):
        for fmt in ("html", "xlsx"):  # what ops teams open next: the reports of the N-host bundle
            t0 = time.monotonic()
            rc = subprocess.run([sys.executable, "-m", "agent.cli", "report", out, "--format", fmt, "--out",
                                 f"{out}.report.{fmt}"], env=env, cwd=ROOT, capture_output=True).returncode
            r[f"report_{fmt}_s"] = time.monotonic() - t0 if rc == 0 else None
    return r


def run_ansible(n: int, concurrency: int, target: Target, work: str, ansible: str) -> dict[str, Any]:
    home = os.path.join(work, f"ansible-{n}")
    os.makedirs(home)
    inv = os.path.join(home, "hosts.ini")
    with open(inv, "w") as f:
        f.write("[fleet]\n")
        f.writelines(f"{address(i)}\n" for i in range(n))
        f.write(f"\n[fleet:vars]\nansible_port={target.port}\nansible_user=root\n"
                f"ansible_ssh_private_key_file={target.client_key}\nansible_python_interpreter=/usr/bin/python3\n")
    cfg = os.path.join(home, "ansible.cfg")
    open(cfg, "w").close()
    cp_dir = os.path.join(home, "cp")
    env = dict(os.environ, ANSIBLE_CONFIG=cfg, ANSIBLE_HOME=home, ANSIBLE_LOCAL_TEMP=os.path.join(home, "tmp"),
               ANSIBLE_HOST_KEY_CHECKING="True", ANSIBLE_PIPELINING="True", ANSIBLE_SSH_CONTROL_PATH_DIR=cp_dir,
               ANSIBLE_SSH_ARGS=f"-C -o ControlMaster=auto -o ControlPersist=60s "
                                f"-o UserKnownHostsFile={target.known_hosts} -o StrictHostKeyChecking=yes",
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORKS=str(concurrency))
    out = os.path.join(home, "out.txt")

    r = measure([ansible, "all", "-i", inv, "-m", "setup", "-f", str(concurrency)], env, target, out)
    text = open(out, encoding="utf-8", errors="replace").read()
    r["collected"] = text.count(" | SUCCESS =>")
    r["failed"] = text.count(" | UNREACHABLE!") + text.count(" | FAILED!")
    return r


def find_ansible(given: Optional[str]) -> Optional[str]:
    for cand in ([given] if given else []) + [os.path.join(ROOT, ".venv-bench", "bin", "ansible"),
                                               "/tmp/ansible-venv/bin/ansible", shutil.which("ansible") or ""]:
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def inside(a: argparse.Namespace) -> int:
    from collectors import signing
    from probes.host import PROBES

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    sizes = [int(x) for x in a.sizes.split(",") if x]
    without = [x for x in (a.without_probes or "").split(",") if x]
    spy = a.py_spy if a.profile and os.access(a.py_spy, os.X_OK) else None
    if a.profile and not spy:
        print("py-spy not found (pip install py-spy==0.4.3, or --py-spy PATH): not profiling", flush=True)
    ansible_sizes = set() if a.skip_ansible else {int(x) for x in a.ansible_sizes.split(",") if x}
    ansible = None if a.skip_ansible else find_ansible(a.ansible)
    if ansible_sizes and not ansible:
        print("ansible not found (install requirements-bench.txt into .venv-bench/ or pass --ansible); "
              "measuring ours only", flush=True)
        ansible_sizes = set()
    work = tempfile.mkdtemp(prefix="ea-fleet-bench-")
    key = os.path.join(work, "signing_key")
    signing.keygen(key)
    n_max = max(sizes)
    target = Target(work, n_max, a.apt_cache)
    rows: list[tuple[int, str, dict[str, Any]]] = []
    try:
        warm = target.ssh(address(0), "apt-get -s -o Debug::NoLocking=1 dist-upgrade >/dev/null 2>&1; "
                                       "/usr/bin/python3 -c 'import json'; echo ok")
        print(f"target: sshd on 0.0.0.0:{target.port} in a lo-only namespace, {n_max} addresses "
              f"{address(0)}..{address(n_max - 1)}; apt cache: {a.apt_cache}; warm-up: {warm.stdout.strip()}")
        print(f"probes: {len(PROBES) - len(without)} ({', '.join(p.name for p in PROBES if p.name not in without)})"
              + (f", WITHOUT {', '.join(without)}" if without else "") + f"; concurrency/forks {a.concurrency}; "
              f"{os.cpu_count()} CPUs; load average at start {os.getloadavg()[0]:.1f}", flush=True)
        if a.floor:
            n = sizes[0]
            r = run_ours(n, a.concurrency, target, work, key, [p.name for p in PROBES], None, tag="floor")
            show(n, "ours, no probes", r)
            print(f"  floor: an SSH session running an empty script costs the target "
                  f"{r['target_cpu'] / n * 1000:.0f} ms/host and the collector {r['cpu'] / n * 1000:.0f} ms/host "
                  f"(including its start-up); benchmarks/target_cost.py gives each command's share", flush=True)
        for n in sizes:
            r = run_ours(n, a.concurrency, target, work, key, without,
                         f"{spy}={a.profile}.{n}.txt" if a.profile and spy else None)
            rows.append((n, "evidence-agent", r))
            show(n, "evidence-agent", r)
            if a.as_run:
                rr = run_ours(n, a.concurrency, target, work, key, without, None, tag="run")
                rows.append((n, "evidence-agent run", rr))
                show(n, "evidence-agent run", rr)
            if n in ansible_sizes and ansible:
                r = run_ansible(n, a.concurrency, target, work, ansible)
                rows.append((n, "ansible -m setup", r))
                show(n, "ansible -m setup", r)
                ours = next(x for m, t, x in rows if m == n and t == "evidence-agent")
                print(f"  N={n}: ansible/ours  wall x{r['wall'] / ours['wall']:.1f}, CPU (tool) "
                      f"x{r['cpu'] / max(ours['cpu'], 1e-9):.1f}, CPU (tool + target) "
                      f"x{(r['cpu'] + r['target_cpu']) / max(ours['cpu'] + ours['target_cpu'], 1e-9):.1f}, "
                      f"peak RSS x{r['peak_rss_mb'] / max(ours['peak_rss_mb'], 1e-9):.1f}", flush=True)
    finally:
        target.stop()
        if not a.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    print("\nsummary (JSON):")
    for n, tool, r in rows:
        print(json.dumps({"n": n, "tool": tool, **{k: (round(v, 3) if isinstance(v, float) else v)
                                                   for k, v in r.items()}}))
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    return 0


def show(n: int, tool: str, r: dict[str, Any]) -> None:
    extra = f", host median {r['host_median']:.2f}s, {r.get('facts')}" if "host_median" in r else ""
    if "report_html_s" in r:
        extra += "; report " + ", ".join(f"{f} {r[f'report_{f}_s']:.1f}s" if r[f"report_{f}_s"] is not None
                                         else f"{f} FAILED" for f in ("html", "xlsx"))
    print(f"  N={n:<4} {tool:17} rc={r['rc']} collected {r['collected']}/{n} wall {r['wall']:7.2f}s "
          f"({n / r['wall']:.2f} hosts/s)  CPU tool {r['cpu']:7.2f}s ({r['cpu'] / n * 1000:.0f} ms/host)  "
          f"CPU target {r['target_cpu']:7.2f}s  peak RSS {r['peak_rss_mb']:7.1f} MB over {r['peak_procs']} "
          f"process(es) (largest single {r['max_single_rss_mb']:.0f} MB){extra}"
          + (f"  ERROR {r['error']}" if r.get("error") else ""), flush=True)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="50,200,500", help="fleet sizes N (default: %(default)s)")
    ap.add_argument("--ansible-sizes", default="50,200", help="sizes at which ansible also runs (default: %(default)s)")
    ap.add_argument("--concurrency", "-j", type=int, default=16, help="our workers = ansible forks (default: 16)")
    ap.add_argument("--skip-ansible", action="store_true")
    ap.add_argument("--ansible", help="the ansible executable (default: .venv-bench/bin/ansible, then PATH)")
    ap.add_argument("--apt-cache", choices=("server", "as-is"), default="server",
                    help="target apt behaviour (see the module doc; default: %(default)s)")
    ap.add_argument("--without-probes", help="diagnosis: leave these probes out of OUR run (comma separated)")
    ap.add_argument("--as-run", action="store_true", help="also measure `run` (what a timer calls: scan, drift "
                    "comparison with the previous run, history, retention) at each size, on its second run")
    ap.add_argument("--floor", action="store_true", help="first measure sessions with no probe at all (the cost "
                    "of SSH and of the collector alone, at the first size)")
    ap.add_argument("--profile", metavar="PREFIX", help="sample our scan with py-spy (all threads) into "
                    "PREFIX.<N>.txt, collapsed stacks; the figures of a profiled run include py-spy's overhead")
    ap.add_argument("--py-spy", default=shutil.which("py-spy") or "/tmp/pyspy-venv/bin/py-spy")
    ap.add_argument("--keep-work", action="store_true", help="keep the bundles and logs (printed path)")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.inside:
        return inside(a)
    if os.geteuid() != 0:
        print("needs root: network and mount namespaces, and an sshd logging in as root", file=sys.stderr)
        return 2
    ns = f"ea-fleet-bench-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
        args = [x for x in (argv if argv is not None else sys.argv[1:])]
        return subprocess.run(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__), "--inside",
                               *args]).returncode
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


if __name__ == "__main__":
    sys.exit(main())

"""A segmented network of namespaces for jump-host tests and benchmarks: scanner ↔ bastion ↔ targets.

Why: a jump host is only proven when the targets really are unreachable except through it. Each node is a
network namespace; links are veth pairs (point to point); no namespace forwards packets (ip_forward 0), so a
packet from the scanner can only reach a target as the payload of an SSH channel through the bastion::

    scan 10.231.61.2 ── 10.231.61.1 bast1 10.231.62.1 ── 10.231.62.2 tgt (+ 10.231.63.1-N on lo)   (netns only)
                                         10.231.64.1 ── 10.231.64.2 bast2 10.231.65.1 ── 10.231.65.2 deep  (netns)

* ``bast1``: sshd with ``MaxSessions 10`` and ``LogLevel DEBUG1`` to a file, whose ``channel N: free: …,
  nchannels M`` lines give the most channels its connection had open at once (:meth:`JumpLab.peak_channels`);
  a route to 10.231.63.0/24 (netns) via ``tgt``. It also serves ``HANG_PORT``: a listener that accepts and never speaks.
* ``tgt``: one sshd on every address, N targets as N addresses (like benchmarks/fleet.py).
* ``bast2`` → ``deep``: the second hop of a chain; ``deep`` is reachable from ``bast2`` only.

All addresses are lab-internal (10.231.6x, inside these namespaces only); every namespace is named
``ea-jump-*`` and removed by :meth:`JumpLab.stop`, a crashed earlier run's at start. A lock file serialises
users across processes. Nothing in the root namespace is changed.
"""
from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREFIX = "ea-jump-"
SCAN, BAST1, TGT, BAST2, DEEP = (PREFIX + n for n in ("scan", "bast1", "tgt", "bast2", "deep"))
LOCK_FILE = os.path.join(tempfile.gettempdir(), "ea-jump.lock")
SCANNER_IP = "10.231.61.2"  # netns lab address
BAST1_IP = "10.231.61.1"  # netns lab address (the scanner's side of bast1)
BAST2_IP = "10.231.64.2"  # netns lab address (reachable from bast1 only)
DEEP_IP = "10.231.65.2"  # netns lab address (reachable from bast2 only)
TGT_LINK_IP = "10.231.62.2"  # netns lab address
VOID_IP = "10.231.62.99"  # netns lab address: behind bast1, nothing answers
SUBNET = "10.231.60.0/22"  # netns lab addresses: 10.231.60.0 - 10.231.63.255
SCOPE = [SUBNET, "10.231.64.0/23"]  # netns lab addresses
HANG_PORT = 2201  # on bast1: accepts and never sends a banner
REFUSED_PORT = 2200  # on bast1: nothing listens
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
LINKS = [  # (ns a, ip a, ns b, ip b) — netns lab addresses
    (SCAN, SCANNER_IP, BAST1, BAST1_IP),
    (BAST1, "10.231.62.1", TGT, TGT_LINK_IP),  # netns
    (BAST1, "10.231.64.1", BAST2, BAST2_IP),  # netns
    (BAST2, "10.231.65.1", DEEP, DEEP_IP),  # netns
]


def target_ip(i: int) -> str:
    """The i-th target address (0-based) served by tgt's sshd."""
    return f"10.231.63.{i + 1}"  # netns lab address


def _run(argv: Sequence[str], check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({r.returncode}): {(r.stderr or r.stdout).strip()[-500:]}")
    return r


def _ns(ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run(["ip", "netns", "exec", ns, *argv], check=check)


def preflight() -> Optional[str]:
    if sys.platform != "linux" or os.geteuid() != 0:
        return "the jump-host lab needs Linux and root (ip netns)"
    for tool in ("ip", "unshare", "ssh-keygen"):
        if not shutil.which(tool):
            return f"{tool} is not installed"
    if not os.path.exists(SSHD):
        return "sshd is not installed"
    return None


def cleanup() -> None:
    r = _run(["ip", "netns", "list"], check=False)
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(PREFIX):
            for pid in _run(["ip", "netns", "pids", name], check=False).stdout.split():
                try:
                    os.kill(int(pid), 9)
                except (OSError, ValueError):
                    pass
            _run(["ip", "netns", "del", name], check=False)


class JumpLab:
    def __init__(self, workdir: str, targets: int = 50) -> None:
        self.dir = workdir
        self.targets = targets
        self.procs: list[subprocess.Popen] = []
        self._lock: Any = None
        self.client_key = os.path.join(workdir, "client_key")
        self.wrong_key = os.path.join(workdir, "wrong_key")  # not authorized anywhere
        self.known_hosts = os.path.join(workdir, "known_hosts")
        self.host_pub: dict[str, str] = {}

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> "JumpLab":
        self._lock = open(LOCK_FILE, "w")
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        try:
            cleanup()
            self._network()
            self._keys()
            for ns, log_level in ((BAST1, "DEBUG1"), (BAST2, "ERROR"), (TGT, "ERROR"), (DEEP, "ERROR")):
                self._sshd(ns, log_level)
            self.procs.append(subprocess.Popen(  # a hung hop: accepts, never speaks
                ["ip", "netns", "exec", BAST1, sys.executable, "-c",
                 "import socket,time\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                 f"s.bind(('{BAST1_IP}',{HANG_PORT}));s.listen(64)\nc=[]\nwhile True: c.append(s.accept())"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            for ns, ip in ((BAST1, BAST1_IP), (TGT, target_ip(0)), (BAST2, BAST2_IP), (DEEP, DEEP_IP)):
                self._wait_ssh(ns, ip, 22)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
        self.procs = []
        cleanup()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> "JumpLab":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- building --------------------------------------------------------------------------------------------
    def _network(self) -> None:
        for ns in (SCAN, BAST1, TGT, BAST2, DEEP):
            _run(["ip", "netns", "add", ns])
            _ns(ns, "ip", "link", "set", "lo", "up")
            _ns(ns, "sysctl", "-qw", "net.ipv4.ip_forward=0")
        for i, (a, ip_a, b, ip_b) in enumerate(LINKS):
            va, vb = f"ejv{i}a", f"ejv{i}b"
            _run(["ip", "link", "add", va, "netns", a, "type", "veth", "peer", "name", vb, "netns", b])
            for ns, dev, ip in ((a, va, ip_a), (b, vb, ip_b)):
                _ns(ns, "ip", "addr", "add", f"{ip}/24", "dev", dev)
                _ns(ns, "ip", "link", "set", dev, "up")
        for i in range(self.targets):
            _ns(TGT, "ip", "addr", "add", f"{target_ip(i)}/32", "dev", "lo")
        _ns(BAST1, "ip", "route", "add", "10.231.63.0/24", "via", TGT_LINK_IP)  # netns lab address

    def _keys(self) -> None:
        os.makedirs(self.dir, exist_ok=True)
        for k in (self.client_key, self.wrong_key):
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k])
        addresses = {BAST1: [BAST1_IP], BAST2: [BAST2_IP], DEEP: [DEEP_IP],
                     TGT: [target_ip(i) for i in range(self.targets)] + [VOID_IP]}
        lines = []
        for ns, addrs in addresses.items():
            d = os.path.join(self.dir, ns)
            os.makedirs(d, exist_ok=True)
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(d, "host_key")])
            pub = " ".join(open(os.path.join(d, "host_key.pub")).read().split()[:2])
            self.host_pub[ns] = pub
            lines += [f"{a} {pub}" for a in addrs]
        with open(self.known_hosts, "w") as f:
            f.write("\n".join(lines) + "\n")

    def _sshd(self, ns: str, log_level: str) -> None:
        from sshd import sshd_config

        d = os.path.join(self.dir, ns)
        shutil.copy(self.client_key + ".pub", os.path.join(d, "authorized_keys"))
        with open(os.path.join(d, "sshd_config"), "w") as f:  # OpenSSH's MaxSessions default (10), forwarding on
            f.write(sshd_config(d, ["0.0.0.0:22"], max_sessions=10, log_level=log_level,
                                extra="AllowTcpForwarding yes\n"))
        open(os.path.join(d, "empty_bashrc"), "w").close()
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        inner = f"exec {SSHD} -D -E {d}/sshd.log -f {d}/sshd_config"
        bashrc = os.path.expanduser("~/.bashrc")
        if os.path.exists(bashrc):  # the machine's shell start-up files would slow every command
            inner = f"mount --bind {d}/empty_bashrc {bashrc} && " + inner
        self.procs.append(subprocess.Popen(["ip", "netns", "exec", ns, "unshare", "--mount", "--propagation",
                                            "private", "sh", "-c", inner],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def _wait_ssh(self, ns: str, ip: str, port: int) -> None:
        code = (f"import socket,sys,time\nend=time.time()+15\nwhile time.time()<end:\n try:\n"
                f"  s=socket.create_connection(('{ip}',{port}),1)\n  sys.exit(0 if s.recv(4)==b'SSH-' else 2)\n"
                f" except OSError: time.sleep(0.1)\nsys.exit(1)")
        if _ns(ns, sys.executable, "-c", code, check=False).returncode != 0:
            log = os.path.join(self.dir, ns, "sshd.log")
            raise RuntimeError(f"sshd in {ns} did not come up: "
                               + (open(log).read()[-1000:] if os.path.exists(log) else ""))

    # -- use -------------------------------------------------------------------------------------------------
    def reachable_from_scanner(self, ip: str, port: int = 22) -> bool:
        """Whether the scanner namespace can open a TCP connection to ip:port (it must not, behind a bastion)."""
        code = (f"import socket,sys\ntry:\n socket.create_connection(('{ip}',{port}),2).close()\n"
                f"except OSError: sys.exit(1)")
        return _ns(SCAN, sys.executable, "-c", code, check=False).returncode == 0

    def bastion_log(self, ns: str = BAST1) -> str:
        with open(os.path.join(self.dir, ns, "sshd.log"), errors="replace") as f:
            return f.read()

    def peak_channels(self, ns: str = BAST1) -> int:
        """The most channels one connection to the bastion had open at once, from its sshd's own log: sshd logs
        ``channel N: free: …, nchannels M`` (M counts the channel being freed), and every channel is freed when
        its connection ends, so the largest M is the peak."""
        return max((int(m) for m in re.findall(r"free: .*nchannels (\d+)", self.bastion_log(ns))), default=0)

    def scan(self, inventory: str, out_dir: str, key: str, *extra: str, timeout: float = 600,
             ns: str = SCAN) -> subprocess.CompletedProcess:
        """``python -m agent.cli scan`` inside ``ns``: the scanner namespace, or (for a direct baseline that reaches
        the targets without a hop) bast1's."""
        if ns not in (SCAN, BAST1):
            raise ValueError(f"not a scanner place of the jump lab: {ns}")
        inv = os.path.abspath(out_dir.rstrip("/")) + ".inventory.yml"
        with open(inv, "w") as f:
            f.write(inventory)
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        return subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m", "agent.cli", "scan", "--inventory",
                               inv, "--out", out_dir, "--key", key, *extra], capture_output=True, text=True,
                              timeout=timeout, cwd=ROOT, env=env)

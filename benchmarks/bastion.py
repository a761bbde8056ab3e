"""Bastion benchmark: N targets collected through one jump host vs directly. Prints figures.

    sudo .venv/bin/python benchmarks/bastion.py [--targets 100] [--concurrency 16] [--max-sessions 8]

Uses the namespace topology of tests/jumplab.py (lab-internal 10.231.6x addresses only): N targets are N
addresses of one sshd in the target namespace. "direct" runs the same scan from inside the bastion's namespace
(which reaches the targets without a hop); "via bastion" runs it from the scanner namespace, every target a
direct-tcpip channel of one shared connection to the bastion (at most --max-sessions at once). Controller CPU is
the scan process's user+system time (children of this script), the bastion's sshd is not counted. The bastion's
peak channels come from its own sshd log.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

import jumplab  # noqa: E402
from collectors import signing  # noqa: E402


def inventory(lab: jumplab.JumpLab, n: int, via: bool, max_sessions: int) -> str:
    hosts: list[dict[str, Any]] = [{"name": "bast1", "address": jumplab.BAST1_IP, "collect": False,
                                    "ssh": {"max_sessions": max_sessions}}] if via else []
    hosts += [{"name": f"t{i:03d}", "address": jumplab.target_ip(i), **({"ssh": {"jump": "bast1"}} if via else {})}
              for i in range(n)]
    return json.dumps({"version": 1, "scope": {"allow": jumplab.SCOPE},
                       "defaults": {"ssh": {"user": "root", "key_file": lab.client_key, "known_hosts": lab.known_hosts,
                                            "connect_timeout": 10},
                                    "timeouts": {"connect": 10, "command": 120, "host": 300}},
                       "hosts": hosts})


def run(lab: jumplab.JumpLab, work: str, key: str, n: int, via: bool, concurrency: int, max_sessions: int,
        label: str) -> dict[str, Any]:
    out = os.path.join(work, label.replace(" ", "-"))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    r = lab.scan(inventory(lab, n, via, max_sessions), out, key, "--only", "host", "--concurrency", str(concurrency),
                 "--quiet", ns=jumplab.SCAN if via else jumplab.BAST1, timeout=1800)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    collected = sum(1 for i in range(n) if json.load(open(os.path.join(out, "facts", f"t{i:03d}.json")))["collected"])
    return {"label": label, "rc": r.returncode, "wall": wall, "cpu": cpu, "collected": collected}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--targets", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--max-sessions", type=int, default=8)
    a = ap.parse_args()
    why = jumplab.preflight()
    if why:
        print(f"cannot run: {why}")
        return 2
    work = tempfile.mkdtemp(prefix="ea-bastion-bench-")
    key = os.path.join(work, "signing_key")
    signing.keygen(key)
    with jumplab.JumpLab(os.path.join(work, "lab"), targets=a.targets) as lab:
        rows = [run(lab, work, key, a.targets, False, a.concurrency, a.max_sessions, f"direct -j {a.concurrency}"),
                run(lab, work, key, a.targets, False, a.max_sessions, a.max_sessions, f"direct -j {a.max_sessions}"),
                run(lab, work, key, a.targets, True, a.concurrency, a.max_sessions,
                    f"via bastion -j {a.concurrency} max_sessions {a.max_sessions}")]
        peak = lab.peak_channels()
    print(f"{a.targets} targets, one sshd behind the bastion; {os.cpu_count()} CPUs (shared)")
    print(f"{'run':44} {'collected':>9} {'wall s':>8} {'ctl CPU s':>10} {'CPU/host ms':>12}")
    for r in rows:
        print(f"{r['label']:44} {r['collected']:>9} {r['wall']:>8.1f} {r['cpu']:>10.2f} "
              f"{1000 * r['cpu'] / a.targets:>12.1f}")
    d16, d8, via = rows
    print(f"via bastion / direct -j {a.concurrency}: wall x{via['wall'] / d16['wall']:.2f}, "
          f"controller CPU x{via['cpu'] / d16['cpu']:.2f}")
    print(f"via bastion / direct -j {a.max_sessions} (same parallelism): wall x{via['wall'] / d8['wall']:.2f}, "
          f"controller CPU x{via['cpu'] / d8['cpu']:.2f}")
    print(f"bastion peak channels open at once (its sshd's log): {peak} (max_sessions {a.max_sessions}, "
          "sshd MaxSessions 10)")
    return 0 if all(r["rc"] == 0 and r["collected"] == a.targets for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

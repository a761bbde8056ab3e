"""Where the target's CPU goes: each host-probe command's cost on THIS machine, and the whole framed script's.

    sudo .venv/bin/python benchmarks/target_cost.py [--runs 10] [--apt-cache server|as-is]

Why: in benchmarks/fleet.py the target side (sshd + our script) dominates the wall time, because targets share
the cores with the tool. This prints, per command, the CPU its process tree used (getrusage RUSAGE_CHILDREN,
mean of --runs), framed exactly as probes/batch.py frames it (a one-command script, minus the prelude's
own cost): a ``may_hang`` command pays for ``timeout`` + ``sh -c``, the others run in a subshell where
each blocking tool pays for its own ``timeout``. The reference rows give the unit costs here
(one fork+exec of a small binary, the ``timeout`` guard, an SSH session's shell start-up is in fleet.py).

``--apt-cache server`` (default, needs root): like fleet.py, runs inside a private mount namespace in which
this container's ``docker-clean`` apt setting is masked, so apt keeps its binary cache as on a normal server.
Nothing on the machine changes. Only this machine's shell and tools run; no network traffic at all.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from typing import Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from probes.batch import build_script, dedupe, new_nonce  # noqa: E402
from probes.host import PROBES  # noqa: E402

ENV = {"LC_ALL": "C", "LANG": "C", "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cost(argv: list[str], runs: int, stdin: Optional[bytes] = None) -> float:
    """Mean CPU milliseconds of one run of argv (its whole process tree)."""
    c0 = child_cpu()
    for _ in range(runs):
        subprocess.run(argv, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV,
                       stdin=None if stdin is not None else subprocess.DEVNULL)
    return (child_cpu() - c0) / runs * 1000


def inside(a: argparse.Namespace) -> int:
    cmds = dedupe(c for p in PROBES for c in p.commands)
    shell = cost(["sh", "-c", "true"], a.runs * 3)
    print(f"reference, mean of {a.runs * 3} runs: sh -c true {shell:.2f} ms; one exec of /bin/true from sh "
          f"{cost(['sh', '-c', '/bin/true; /bin/true'], a.runs * 3) - cost(['sh', '-c', '/bin/true'], a.runs * 3):.2f} ms; "
          f"timeout guard (timeout 5 sh -c :) {cost(['sh', '-c', 'timeout 5 sh -c :'], a.runs * 3) - shell:.2f} ms")
    rows = []
    nonce = new_nonce()
    empty = cost(["sh", "-s"], a.runs * 3, stdin=build_script([], nonce).encode())
    print(f"the framing's prelude alone (clock, uid, guard): {empty:.2f} ms")
    for c in cmds:
        # the command framed exactly as in a host's script, minus the prelude
        one = cost(["sh", "-s"], a.runs, stdin=build_script([c], nonce).encode())
        rows.append((one - empty, c.name, "timeout sh -c" if c.may_hang else "subshell, $_ea_g per tool"))
    rows.sort(reverse=True)
    total = sum(r[0] for r in rows)
    print(f"\n{'CPU ms':>8}  {'share':>5}  command (framing)")
    for ms, name, how in rows:
        print(f"{ms:8.1f}  {ms / total * 100:4.0f}%  {name} ({how})")
    script = build_script(cmds, nonce).encode()
    whole = cost(["sh", "-s"], a.runs, stdin=script)
    print(f"{total:8.1f}        sum of the {len(cmds)} commands")
    print(f"{whole:8.1f}        the whole framed script (what one host's session runs), mean of {a.runs}")
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10, help="runs per command (default: %(default)s)")
    ap.add_argument("--apt-cache", choices=("server", "as-is"), default="server",
                    help="apt behaviour, as in fleet.py (default: %(default)s)")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    clean = "/etc/apt/apt.conf.d/docker-clean"
    if a.inside or a.apt_cache == "as-is" or not os.path.exists(clean):
        return inside(a)
    if os.geteuid() != 0:
        print("--apt-cache server needs root (a private mount namespace); or pass --apt-cache as-is", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ea-target-cost-") as d:
        os.makedirs(f"{d}/apt-cache/archives/partial")
        open(f"{d}/empty", "w").close()
        inner = (f"mount --bind {d}/empty {clean} && mount --bind {d}/apt-cache /var/cache/apt && "
                 f"apt-cache policy >/dev/null 2>&1; exec {sys.executable} {os.path.abspath(__file__)} --inside "
                 f"--runs {a.runs}")
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", inner]).returncode


if __name__ == "__main__":
    sys.exit(main())

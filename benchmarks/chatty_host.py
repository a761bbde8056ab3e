"""Collector memory against chatty hosts: peak RSS of ``scan --only host`` with 0, 1 and 4 hosts whose forced
command prints endless short lines, next to good hosts. Prints one line per case.

    sudo .venv/bin/python benchmarks/chatty_host.py [--good 2] [--chatty 0,1,4] [--host-timeout 60]

Setup, on loopback only: two real OpenSSH sshds from tests/sshd.py, one ordinary (the good hosts) and one
with ``ForceCommand yes`` (every session prints ``y\\n`` until it is cut: the collector stops at the 32 MiB
whole-host cap or the host deadline). Each chatty host is one inventory entry pointing at that sshd. The scan
runs as a child process (``python -m agent.cli scan``), its peak RSS is ``ru_maxrss`` of that child, and the
figures are: wall time, peak RSS, and each host's collected flag / error.

Why: a chatty host used to cost ~1 GB of collector memory (its 32 MiB of output split into 16 M line objects),
linear in the number of such hosts; the framing parser now streams, so memory per host is bounded.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]


def inventory(path: str, good_srv, chatty_srv, n_good: int, n_chatty: int, host_timeout: float) -> str:
    lines = [f"version: 1\nscope: {{allow: [127.0.0.0/8]}}\ndefaults:\n  timeouts: {{connect: 10, host: {host_timeout}}}",
             "hosts:"]
    for i in range(n_good):
        lines.append(f"  - {{name: good-{i}, address: 127.0.0.1, ssh: {{port: {good_srv.port}, "
                     f"key_file: {good_srv.client_key}, known_hosts: {good_srv.known_hosts}}}}}")
    for i in range(n_chatty):
        lines.append(f"  - {{name: chatty-{i}, address: 127.0.0.1, ssh: {{port: {chatty_srv.port}, "
                     f"key_file: {chatty_srv.client_key}, known_hosts: {chatty_srv.known_hosts}}}}}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def run_case(tmp: str, label: str, inv: str, key: str) -> dict:
    out = os.path.join(tmp, f"bundle-{label}")
    env = dict(os.environ, PYTHONPATH=ROOT)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "scan", "-i", inv, "-o", out, "--key", key,
                             "--only", "host", "-q", "-j", "16"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = proc.communicate()
    wall = time.monotonic() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest single child so far: each case runs in a fresh order of
    # increasing cost, and a smaller figure than before means "not larger than the previous case"
    hosts = []
    try:
        with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
            hosts = json.load(f)["hosts"]
    except (OSError, ValueError, KeyError):
        pass
    return {"label": label, "rc": proc.returncode, "wall": wall, "peak_mib": peak_kib / 1024,
            "prev_peak_mib": before / 1024, "hosts": hosts, "stderr": err.decode(errors="replace")[-500:]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--good", type=int, default=2)
    ap.add_argument("--chatty", default="0,1,4")
    ap.add_argument("--host-timeout", type=float, default=60)
    a = ap.parse_args()
    from collectors import signing
    from sshd import start_sshd

    tmp = tempfile.mkdtemp(prefix="ea-chatty-")
    key = os.path.join(tmp, "signing_key")
    signing.keygen(key)
    good = start_sshd(("127.0.0.1",), workdir=os.path.join(tmp, "good"))
    chatty = start_sshd(("127.0.0.1",), extra_config="ForceCommand yes", workdir=os.path.join(tmp, "chatty"))
    try:
        print(f"chatty-host benchmark: {a.good} good host(s), a chatty host = ForceCommand yes, "
              f"host deadline {a.host_timeout:.0f}s")
        print(f"{'case':<22} {'wall s':>7} {'peak RSS MiB':>13}  hosts")
        for n in (int(x) for x in a.chatty.split(",")):
            # each case in its own child process tree: ru_maxrss(children) is a running maximum, so run each
            # case through a fresh python that reports its own child's figure
            r = subprocess.run([sys.executable, __file__, "--_case", tmp, key, str(a.good), str(n),
                                str(a.host_timeout), str(good.port), good.client_key, good.known_hosts,
                                str(chatty.port), chatty.client_key, chatty.known_hosts],
                               capture_output=True, text=True)
            try:
                res = json.loads(r.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                print(f"{n} chatty: failed: {r.stderr[-800:]}")
                continue
            states = ", ".join(f"{h['name']}={'ok' if h['collected'] else 'NOT: ' + (h['error'] or '')[:70]}"
                               for h in res["hosts"])
            print(f"{a.good} good + {n} chatty{'':<8} {res['wall']:>7.1f} {res['peak_mib']:>13.0f}  {states}")
    finally:
        good.stop()
        chatty.stop()
    return 0


def _case(argv: list[str]) -> int:
    tmp, key, n_good, n_chatty, host_timeout = argv[0], argv[1], int(argv[2]), int(argv[3]), float(argv[4])

    class Srv:
        def __init__(self, port: str, client_key: str, known_hosts: str) -> None:
            self.port, self.client_key, self.known_hosts = int(port), client_key, known_hosts

    good, chatty = Srv(*argv[5:8]), Srv(*argv[8:11])
    inv = inventory(os.path.join(tmp, f"inv-{n_chatty}.yml"), good, chatty, n_good, n_chatty, host_timeout)
    res = run_case(tmp, f"{n_good}g{n_chatty}c", inv, key)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--_case":
        sys.exit(_case(sys.argv[2:]))
    sys.exit(main())

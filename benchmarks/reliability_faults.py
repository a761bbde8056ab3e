"""Reliability against a hostile world: SSH faults tried / survived, runs killed / bundles left verifiable.

    sudo .venv/bin/python benchmarks/reliability_faults.py [--kills 12] [--seed 16]

Everything on loopback (tests/hostile/faults.py): a real OpenSSH sshd for the good hosts, and one server per
fault (refused, silent, tar-pit, escape-code banner, reset mid-handshake, wrong key, changed host key, unknown
host key, hung shell, 50 MB of garbage, endless output, session killed mid-script).

1. Faults: one ``scan`` with every fault host and two good hosts. A fault *survived* when its host ends with
   the expected reason (killed-mid-session: the script did not finish or did not run), the good hosts are
   collected as in a clean scan (same facts, same statuses), the run ends within the host deadline + 10 s and
   the bundle verifies.
2. Kills: ``scan`` and ``run`` (alternately) killed with SIGKILL at a random instant of a normal run. Counted:
   runs killed, folders left that verify (allowed only when whole: a run killed after its seal), folders left
   half-written that verify (must be 0), and reruns into the same place that proceed and verify.

The bundle-tamper and secret counterpart is verify16's benchmark; ``make reliability`` runs both.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]


def cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "agent.cli", *args], cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def verifies(path: str, pub: str) -> bool:
    return cli("verify", path, "--pubkey", pub).wait() == 0


def shape(bundle: str, host: str) -> dict:
    with open(os.path.join(bundle, "facts", f"{host}.json"), encoding="utf-8") as f:
        rec = json.load(f)
    return {k: (v["status"], sorted(v["data"])) for k, v in rec["facts"].items()}


def faults(tmp: str, good, key: str) -> None:
    from hostile.faults import CONNECT, EXPECTED, HOST_DEADLINE, host_entry, inventory, start_faults

    entries, stop = start_faults(tmp, good)
    goods = [host_entry("good-1", good.port), host_entry("good-2", good.port)]
    try:
        inventory(os.path.join(tmp, "clean.yml"), good, goods, connect=CONNECT, host=HOST_DEADLINE)
        inventory(os.path.join(tmp, "mixed.yml"), good, list(entries.values()) + goods, connect=CONNECT,
                  host=HOST_DEADLINE)
        for name in ("clean", "mixed"):
            t0 = time.monotonic()
            p = cli("scan", "-i", os.path.join(tmp, f"{name}.yml"), "-o", os.path.join(tmp, name), "--key", key,
                    "--only", "host", "-q")
            _, err = p.communicate()
            wall = time.monotonic() - t0
            if p.returncode != 0:
                print(f"{name} scan failed ({p.returncode}): {err.decode()[-500:]}")
                return
    finally:
        stop()
    mixed = os.path.join(tmp, "mixed")
    with open(os.path.join(mixed, "results.json"), encoding="utf-8") as f:
        hosts = {h["name"]: h for h in json.load(f)["hosts"]}
    same = all(shape(mixed, g) == shape(os.path.join(tmp, "clean"), g) for g in ("good-1", "good-2"))
    in_time = wall < HOST_DEADLINE + 10
    valid = verifies(mixed, key + ".pub")
    survived = 0
    print(f"SSH faults (host deadline {HOST_DEADLINE}s, connect {CONNECT}s): run {wall:.1f}s, good hosts "
          f"{'identical to a clean scan' if same else 'DIFFERENT from a clean scan'}, bundle "
          f"{'verifies' if valid else 'does NOT verify'}")
    for name in entries:
        h = hosts[name]
        if name == "killed-mid-session":
            with open(os.path.join(mixed, "facts", f"{name}.json"), encoding="utf-8") as f:
                rec = json.load(f)
            ok = (rec["collected"] and "did not finish" in (rec.get("warning") or "")) or \
                "did not run" in (rec.get("error") or "")
            reason = rec.get("warning") or rec.get("error")
        else:
            pattern, collected = EXPECTED[name]
            ok = h["collected"] is collected and bool(re.search(pattern, h["error"] or ""))
            reason = h["error"]
        ok = ok and same and in_time and valid
        survived += ok
        print(f"  {'survived' if ok else 'FAILED  '} {name:<20} {(reason or '')[:110]}")
    print(f"faults tried: {len(entries)}, survived: {survived}")


def kills(tmp: str, good, key: str, n: int, seed: int) -> None:
    from agent.history import PARTIAL_PREFIX
    from hostile.faults import host_entry, inventory

    inv = inventory(os.path.join(tmp, "kill.yml"), good, [host_entry(f"h{i}", good.port) for i in range(3)])
    pub = key + ".pub"
    t0 = time.monotonic()
    cli("scan", "-i", inv, "-o", os.path.join(tmp, "kill-ref"), "--key", key, "--only", "host", "-q").wait()
    whole = time.monotonic() - t0
    rnd = random.Random(seed)
    killed = left_whole = left_half_verifying = rerun_ok = 0
    for i in range(n):
        mode = ("scan", "run")[i % 2]
        target = os.path.join(tmp, f"kill-{mode}-{i}")
        args = (["scan", "-i", inv, "-o", target] if mode == "scan" else ["run", "-i", inv, "--bundles", target]) \
            + ["--key", key, "--only", "host", "-q"]
        p = cli(*args)
        time.sleep(rnd.uniform(0.2, whole * 1.1))
        was_killed = p.poll() is None
        if was_killed:
            p.kill()
            killed += 1
        p.wait()
        folders = [target] if mode == "scan" else [
            os.path.join(target, d) for d in (os.listdir(target) if os.path.isdir(target) else [])
            if d.startswith(PARTIAL_PREFIX)]
        for d in folders:
            if os.path.isdir(d) and os.listdir(d) and was_killed and verifies(d, pub):
                whole_bundle = os.path.exists(os.path.join(d, "results.json")) and all(
                    os.path.exists(os.path.join(d, "facts", f"h{k}.json")) for k in range(3))
                left_whole += whole_bundle
                left_half_verifying += not whole_bundle
        p = cli(*args)
        p.communicate()
        final = target if mode == "scan" else os.path.join(target, "latest")
        rerun_ok += p.returncode == 0 and verifies(final, pub)
    print(f"kill -9 at random instants of scan/run (a whole run takes {whole:.1f}s): runs killed: {killed} of {n}, "
          f"folders left that verify: {left_whole} (all whole, sealed before the kill), half-written folders "
          f"that verify: {left_half_verifying}, reruns that proceeded and verify: {rerun_ok} of {n}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kills", type=int, default=12)
    ap.add_argument("--seed", type=int, default=16)
    a = ap.parse_args()
    from collectors import signing
    from sshd import start_sshd

    tmp = tempfile.mkdtemp(prefix="ea-reliability-")
    key = os.path.join(tmp, "signing_key")
    signing.keygen(key)
    good = start_sshd(("127.0.0.1",), workdir=os.path.join(tmp, "good"))
    try:
        faults(tmp, good, key)
        kills(tmp, good, key, a.kills, a.seed)
    finally:
        good.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

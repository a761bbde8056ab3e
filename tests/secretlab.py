"""Plant the secret corpus (tests/data/secrets_corpus.yaml) on a real scanned host and scan it.

Why a private mount namespace: the host is this machine through the local transport (the
same probe scripts as over SSH), and the corpus must be in the files the probes print
(``/etc/ssh/sshd_config.d/*.conf`` is printed whole, ``/etc/profile.d/*.sh`` by its TMOUT
lines). ``unshare --mount`` gives the scan its own view of /etc in which copies of those
folders with the planted files are bind-mounted; the machine's real files, and every other
process (other tests, other scans), never see them.

Used by tests/hostile/test_secrets.py and benchmarks/reliability_bundles.py.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "tests", "data", "secrets_corpus.yaml")
PLACES = {"sshd_config.d": ("/etc/ssh/sshd_config.d", "zz-ea-secrets.conf"),
          "profile.d": ("/etc/profile.d", "zz-ea-secrets.sh")}
#: free-text inventory fields are copied into inventory.json: they get planted secrets too
INVENTORY = """version: 1
organisation: "Secret Test password=OrgPw90qw"
scope: {{allow: [127.0.0.0/8]}}
hosts:
  - name: planted
    transport: local
    address: 127.0.0.1
    declare: {{note: "bindpw DeclPw91qw", compensating_controls: {{antivirus: "api_key=DeclKey92qw"}}}}
"""
INVENTORY_SECRETS = ["OrgPw90qw", "DeclPw91qw", "DeclKey92qw"]


def load_corpus() -> list[dict[str, Any]]:
    with open(CORPUS, encoding="utf-8") as f:
        return yaml.safe_load(f)["forms"]


def available() -> str:
    """Why the lab cannot run here ('' when it can)."""
    if os.geteuid() != 0:
        return "needs root (a private mount namespace)"
    if not shutil.which("unshare"):
        return "needs unshare (util-linux)"
    return ""


def plant_and_scan(workdir: str, key: str, forms: list[dict[str, Any]]) -> str:
    """Scan the local host with every form planted; returns the bundle folder."""
    binds = []
    for where, (real, name) in PLACES.items():
        copy = os.path.join(workdir, "planted-" + where)
        if os.path.isdir(real):
            shutil.copytree(real, copy, symlinks=True)
        else:
            os.makedirs(copy)
        with open(os.path.join(copy, name), "w") as f:
            f.write("\n".join(fm["text"] for fm in forms if fm["where"] == where) + "\n")
        binds.append(f"mkdir -p {real} && mount --bind {copy} {real}")
    inv = os.path.join(workdir, "inventory.yml")
    with open(inv, "w") as f:
        f.write(INVENTORY.format())
    out = os.path.join(workdir, "bundle")
    script = " && ".join(binds) + ' && exec "$@"'
    cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
           sys.executable, "-m", "agent.cli", "scan", "--inventory", inv, "--out", out, "--key", key,
           "--only", "host", "-q"]
    r = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True,
                       timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"planted scan failed ({r.returncode}): {r.stderr[-2000:]}")
    return out


def leaks(bundle: str, secrets: list[str]) -> dict[str, list[str]]:
    """secret -> bundle files whose bytes contain it."""
    found: dict[str, list[str]] = {}
    for d, _, files in os.walk(bundle):
        for fn in files:
            p = os.path.join(d, fn)
            data = open(p, "rb").read()
            for s in secrets:
                if s.encode() in data:
                    found.setdefault(s, []).append(os.path.relpath(p, bundle))
    return found

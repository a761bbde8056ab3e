"""Real bundles for the report tests, made once per session by the real CLI (local transport, no sshd).

Run A: app-1, app-2 (local) and web-1 (ssh to a closed port: not collected).
Run B: app-1 with an active waiver, web-1 now local, app-2 gone, app-3 added with a
loosened session timeout (a guide deviation). Between them every kind of change
the diff reports on hosts and findings happens for real.
"""
from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import tempfile
from typing import Any

from agent.cli import main
from collectors import signing

INV_A = """version: 1
organisation: "Diff <b>Test</b> & Co"
scope: {allow: [127.0.0.0/8]}
defaults:
  ssh: {user: root, port: 1, connect_timeout: 1, host_key_policy: "off"}
  timeouts: {connect: 1, host: 10}
hosts:
  - {name: app-1, transport: local, address: 127.0.0.1, roles: [app]}
  - {name: app-2, transport: local, address: 127.0.0.1, roles: [app]}
  - {name: web-1, transport: ssh, address: 127.0.0.1, roles: [web]}
"""
INV_B = """version: 1
organisation: "Diff <b>Test</b> & Co"
scope: {allow: [127.0.0.0/8]}
hosts:
  - {name: app-1, transport: local, address: 127.0.0.1, roles: [app]}
  - {name: web-1, transport: local, address: 127.0.0.1, roles: [web]}
  - {name: app-3, transport: local, address: 127.0.0.1, roles: [app]}
policy:
  set_by: "ops lead"
  hosts:
    app-3: {params: {max_idle_seconds: 1800, min_retention_days: 90}}
waivers:
  - {rule: session-timeout, host: app-1, reason: "batch host, no interactive login", approver: "CISO Kim",
     expires: "2099-12-31"}
"""


@functools.lru_cache(maxsize=None)
def workdir() -> str:
    d = tempfile.mkdtemp(prefix="ea-report-tests-")
    atexit.register(shutil.rmtree, d, True)
    return d


@functools.lru_cache(maxsize=None)
def key() -> str:
    path = os.path.join(workdir(), "signing_key")
    signing.keygen(path)
    return path


@functools.lru_cache(maxsize=None)
def bundle(name: str) -> str:
    """Bundle "A" or "B" (see module doc), scanned once; treat as read-only (copy() before changing)."""
    inv = os.path.join(workdir(), f"{name}.yml")
    with open(inv, "w") as f:
        f.write({"A": INV_A, "B": INV_B}[name])
    out = os.path.join(workdir(), name)
    rc = main(["scan", "--inventory", inv, "--out", out, "--key", key(), "--only", "host", "-q"])
    assert rc == 0, rc
    return out


def copy(name: str, dest_parent: str) -> str:
    dest = os.path.join(dest_parent, f"bundle-{name}")
    shutil.copytree(bundle(name), dest)
    return dest


def results(root: str) -> dict[str, Any]:
    with open(os.path.join(root, "results.json"), encoding="utf-8") as f:
        return json.load(f)


def write_results(root: str, res: dict[str, Any]) -> None:
    with open(os.path.join(root, "results.json"), "w", encoding="utf-8") as f:
        json.dump(res, f, ensure_ascii=False, indent=2)

"""What a task carries to a worker: one host (with its jump chain) or one network family job, as plain JSON.

No secret ever travels: the inventory holds none (passwords are named by ``password_env``, keys by path), and the
worker reads its own environment and key files. Payloads are size-capped on both ends, because a queue is an
input like any other.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any

from common.scope import Scope
from probes.transport.ssh import SshOptions

from ..inventory import Host, Inventory, Timeouts
from ..netfamilies import NetJob

SCHEMA = "evidence-agent/task/v1"
MAX_TASK_BYTES = 1024 * 1024


class PayloadError(ValueError):
    pass


def _host_json(h: Host) -> dict[str, Any]:
    d = dataclasses.asdict(h)
    d["ssh"]["jump"] = list(h.ssh.jump)
    d["ssh"]["host_key_policy"] = str(getattr(h.ssh.host_key_policy, "value", h.ssh.host_key_policy))
    d["route"] = list(h.route)
    d["declared"] = {}  # declarations are judged by the controller; free text an operator typed stays home
    d.pop("line", None)
    return d


def _host_from(d: dict[str, Any]) -> Host:
    d = dict(d)
    ssh = dict(d.pop("ssh"))
    ssh["jump"] = tuple(ssh.get("jump") or ())
    known = {f.name for f in dataclasses.fields(SshOptions)}
    if set(ssh) - known:
        raise PayloadError(f"unknown ssh option(s) {sorted(set(ssh) - known)}")
    fields = {f.name for f in dataclasses.fields(Host)}
    if set(d) - fields:
        raise PayloadError(f"unknown host field(s) {sorted(set(d) - fields)}")
    d["route"] = tuple(d.get("route") or ())
    return Host(ssh=SshOptions(**ssh), **d)


def host_task(run_id: str, inv: Inventory, h: Host, zone: str) -> dict[str, Any]:
    return {"schema": SCHEMA, "run": run_id, "kind": "host", "zone": zone, "name": h.name,
            "scope": inv.scope.to_json(), "timeouts": dataclasses.asdict(inv.timeouts), "host": _host_json(h),
            "jumps": {n: _host_json(inv.jump_hosts[n]) for n in h.route}}


def family_task(run_id: str, family: str, job: NetJob, zone: str) -> dict[str, Any]:
    return {"schema": SCHEMA, "run": run_id, "kind": "family", "zone": zone, "name": f"{family}@{zone}",
            "family": family, "job": job.to_json()}


def encode(task: dict[str, Any]) -> dict[str, Any]:
    """Refuse a payload over the cap before it is queued (a huge network list belongs in several runs)."""
    size = len(json.dumps(task).encode())
    if size > MAX_TASK_BYTES:
        raise PayloadError(f"task {task.get('name')!r} is {size} bytes, over the {MAX_TASK_BYTES}-byte cap")
    return task


def check(task: Any) -> dict[str, Any]:
    """A received payload, checked for shape and size before anything runs."""
    if not isinstance(task, dict) or task.get("schema") != SCHEMA:
        raise PayloadError("not an evidence-agent task (schema)")
    if len(json.dumps(task).encode()) > MAX_TASK_BYTES:
        raise PayloadError(f"task over the {MAX_TASK_BYTES}-byte cap")
    if task.get("kind") not in ("host", "family") or not isinstance(task.get("zone"), str):
        raise PayloadError("task kind or zone missing")
    return task


def inventory_for(task: dict[str, Any]) -> tuple[Inventory, Host]:
    """The one-host inventory a worker collects with (scope, timeouts, jump chain as the controller sent them)."""
    sc = task.get("scope") or {}
    scope = Scope.parse(sc.get("allow") or [], sc.get("deny") or [])
    host = _host_from(task["host"])
    scope.check_address(host.address, f"host {host.name}")  # a worker never goes outside the declared scope
    jumps = {n: _host_from(j) for n, j in (task.get("jumps") or {}).items()}
    for j in jumps.values():
        scope.check_address(j.address, f"jump host {j.name}")
    inv = Inventory(path="(task)", organisation=None, scope=scope, hosts=[host], networks=[],
                    timeouts=Timeouts(**(task.get("timeouts") or {})), jump_hosts=jumps)
    return inv, host

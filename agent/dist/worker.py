"""The task body a zone worker runs: collect one host or one network family, exactly as a single-process run does,
and return the result signed with the worker's own key.

The host path is ``agent.run.collect_host`` itself, writing into a :class:`CaptureWriter` instead of a bundle, so
facts and evidence are byte-for-byte what a single-process run would have written (the controller replays them
into its bundle). Evidence is redacted here already, so no secret crosses the broker.
"""
from __future__ import annotations

import dataclasses
import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Optional

from collectors import signing
from collectors.bundle import now_iso
from collectors.redact import redact, redact_obj
from probes.base import Evidence, Fact

from .. import __version__
from . import envelope, payload


@dataclass
class WorkerContext:
    """Set once in the worker's main process before the pool starts (prefork children inherit it)."""

    key: signing.KeyPair
    zones: tuple[str, ...]
    hostname: str
    identity: Optional[str] = None  # the worker's own SSH key for targets (overrides the inventory's key_file)
    known_hosts: Optional[str] = None  # the worker's own known_hosts (overrides the inventory's)
    logger: Any = None  # agent.logjson.Logger
    max_deliveries: int = 2  # late acknowledgement redelivers a killed worker's task once; never a third time
    scope: Any = None  # common.scope.Scope from --scope: the worker's own bound, whatever a task says

    def bound(self, addr: str, what: str) -> None:
        """Whoever can write to the broker can queue a task: with ``--scope`` a worker never touches a target
        outside its own allow list, even when the task's scope would allow it."""
        if self.scope is not None:
            try:
                self.scope.check_address(addr, what)
            except Exception as e:
                raise payload.PayloadError(f"outside this worker's --scope: {e}") from None

    def describe(self) -> dict[str, Any]:
        return {"hostname": self.hostname, "zones": list(self.zones), "fingerprint": signing.fingerprint(self.key.public),
                "pid": os.getpid(), "version": __version__}


CONTEXT: Optional[WorkerContext] = None
_DELIVERIES: Any = None  # redis client, per process (made after fork)
_DELIVERIES_PID = 0
_LOCK = threading.Lock()


class CaptureWriter:
    """Stands in for the bundle writer on a worker: keeps the evidence and the facts record for the signed result.
    Evidence names are placeholders (``@0``, ``@1`` …) that the controller replaces with its bundle's names."""

    def __init__(self) -> None:
        self.evidence_list: list[dict[str, Any]] = []
        self.record: Optional[dict[str, Any]] = None

    def evidence(self, host: str, ev: Evidence, header: dict[str, Any]) -> str:
        d = dataclasses.asdict(ev)
        d["items"] = list(ev.items)
        d["content"] = redact(d["content"])  # nothing secret crosses the broker
        self.evidence_list.append({"host": host, "header": redact_obj(dict(header)), "ev": d})
        return f"@{len(self.evidence_list) - 1}"

    def write_json(self, rel: str, obj: Any, redacted: bool = False) -> str:
        self.record = redact_obj(obj)
        return rel

    def path(self, rel: str) -> str:
        return rel


def _client(app: Any) -> Any:
    """The result store's redis client, one per process (made after the pool forks)."""
    global _DELIVERIES, _DELIVERIES_PID
    with _LOCK:
        if _DELIVERIES is None or _DELIVERIES_PID != os.getpid():
            _DELIVERIES = app.backend.client
            _DELIVERIES_PID = os.getpid()
        return _DELIVERIES


def _count_delivery(client: Any, task_id: str) -> int:
    """How many times this task reached a worker (kept in the broker's Redis, one day)."""
    key = f"evidence-agent:deliveries:{task_id}"
    n = int(client.incr(key))
    client.expire(key, 86400)
    return n


def collect(self: Any, task: Any) -> dict[str, Any]:
    """The Celery task (registered by ``agent.dist.broker.make_app``)."""
    ctx = CONTEXT
    if ctx is None:
        raise RuntimeError("not a configured evidence-agent worker")
    task_id = str(self.request.id)
    client = _client(self.app)
    attempt = _count_delivery(client, task_id)
    if isinstance(task, dict) and not client.exists(RUN_KEY.format(str(task.get("run")))):  # a stale task of a finished run
        body = {"task_id": task_id, "worker": ctx.describe(), "attempt": attempt, "kind": task.get("kind"),
                "zone": task.get("zone"), "name": task.get("name"), "started": now_iso(), "finished": now_iso(),
                "refused": "the run that sent this task has ended; not collected"}
        return envelope.seal(body, ctx.key)
    return execute(task, ctx, task_id, attempt)


#: The controller marks its run open in the broker while it waits for results; a task queued by a run that has
#: ended (given up on, or interrupted) is never executed later by a worker that comes up afterwards.
RUN_KEY = "evidence-agent:run:{}"


def execute(task: Any, ctx: WorkerContext, task_id: str, attempt: int = 1) -> dict[str, Any]:
    """Run one task and return its signed envelope. Never raises for a target's fault: that is the result."""
    started = now_iso()
    t0 = time.monotonic()
    body: dict[str, Any] = {"task_id": task_id, "worker": ctx.describe(), "attempt": attempt, "started": started}
    log = ctx.logger
    try:
        task = payload.check(task)
        body.update({"run": task.get("run"), "kind": task["kind"], "zone": task["zone"], "name": task.get("name")})
        if task["zone"] not in ctx.zones:
            raise payload.PayloadError(f"this worker serves zones {', '.join(ctx.zones)}, not {task['zone']!r}")
        if log:
            log.info("task-start", task_id=task_id, zone=task["zone"], host=task.get("name"), worker=ctx.hostname,
                     attempt=attempt)
        if attempt > ctx.max_deliveries:
            body["refused"] = (f"delivered {attempt} times (a worker died on it each time); not tried again")
        elif task["kind"] == "host":
            body.update(_host(task, ctx))
        else:
            body.update(_family(task, ctx))
    except payload.PayloadError as e:
        body["refused"] = f"task refused by the worker: {e}"
    except Exception as e:  # a bug must come back as a reason, not as a lost task
        from probes.transport import describe_error

        body["refused"] = f"worker error: {describe_error(e)}"
    body["finished"] = now_iso()
    body["duration_seconds"] = round(time.monotonic() - t0, 3)
    if log:
        log.info("task-done", task_id=task_id, zone=body.get("zone"), host=body.get("name"), worker=ctx.hostname,
                 duration_seconds=body["duration_seconds"], outcome="refused" if "refused" in body else "done")
    return envelope.seal(body, ctx.key)


def _host(task: dict[str, Any], ctx: WorkerContext) -> dict[str, Any]:
    from ..run import ScanOptions, collect_host

    inv, host = payload.inventory_for(task)
    ctx.bound(host.address, f"host {host.name}")
    for j in inv.jump_hosts.values():
        ctx.bound(j.address, f"jump host {j.name}")
    if ctx.identity:
        host.ssh = dataclasses.replace(host.ssh, key_file=ctx.identity)
    if ctx.known_hosts:
        host.ssh = dataclasses.replace(host.ssh, known_hosts=ctx.known_hosts)
        for j in inv.jump_hosts.values():
            j.ssh = dataclasses.replace(j.ssh, known_hosts=ctx.known_hosts)
    if ctx.identity:
        for j in inv.jump_hosts.values():
            j.ssh = dataclasses.replace(j.ssh, key_file=ctx.identity)
    # the probe list and the collection are the single-process run's own; there is no bundle key here
    opts = ScanOptions(out="", key=None, profile=None, concurrency=1)  # type: ignore[arg-type]
    cw = CaptureWriter()
    try:
        collect_host(host, inv, opts, cw)  # type: ignore[arg-type]
    finally:
        if opts.jumps is not None:
            opts.jumps.close()
    rec = cw.record or {}
    rec.setdefault("transport", {})["identity"] = "worker" if ctx.identity else "inventory key_file"
    return {"record": rec, "evidence": cw.evidence_list}


def _family(task: dict[str, Any], ctx: WorkerContext) -> dict[str, Any]:
    from ..netfamilies import REGISTRY, NetJob

    fam = REGISTRY.get(str(task.get("family")))
    if fam is None:
        raise payload.PayloadError(f"unknown network family {str(task.get('family'))[:40]!r}")
    job = NetJob.from_json(task["job"])
    if ctx.scope is not None:
        for n in job.networks:
            try:
                ctx.scope.check_network(str(n.get("cidr")), f"network {n.get('name')}")
            except Exception as e:
                raise payload.PayloadError(f"outside this worker's --scope: {e}") from None
        for ep in job.endpoints:
            ctx.bound(str(ep.get("host")), "tls endpoint")
        from urllib.parse import urlsplit

        for u in job.urls:
            ctx.bound(str(urlsplit(u).hostname), "web URL")
    fact: Fact = fam.collect(job)
    evidence = []
    for ev in fact.evidence:
        d = dataclasses.asdict(ev)
        d["items"] = list(ev.items)
        d["content"] = redact(d["content"])
        evidence.append({"host": "network", "header": {"vantage": job.vantage,
                                                       "scope": json.dumps(job.scope.to_json())}, "ev": d})
    return {"family": fam.fact, "vantage": job.vantage, "fact": redact_obj(fact.to_json()), "evidence": evidence}


def hostname() -> str:
    return socket.gethostname()

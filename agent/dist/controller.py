"""The controller of a distributed run: dispatch one task per host and per network family to its zone's queue,
stream the workers' signed results into the bundle as they finish, bound every task by a deadline, judge and
sign once.

It reads results straight from the result store (one MGET for all tasks in flight per poll), which also shows
which worker has started what, so a host is timed from when a worker took it, as in a single-process run.
Faults end as 점검불가 with the reason, never as a lost or doubled host: no live worker for a zone, a worker that
died holding a task (redelivered once by late acknowledgement, else given up at the deadline), a result signed by
an unknown key, and a broker lost mid-run (what arrived is kept, the bundle is still signed).
"""
from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Optional

from collectors.bundle import BundleWriter, now_iso, safe_component
from common.yamlsrc import ConfigError
from policies.engine import Evaluator, HostInput
from probes.base import Evidence, ReasonCode, not_collected
from probes.transport import printable

from ..inventory import DEFAULT_ZONE, Host, Inventory
from ..merge import combine_network
from ..netfamilies import REGISTRY, NetJob, follow_scan, wanted
from ..run import (ScanOptions, _progress, _redacted, evaluation_inventory, inventory_record, net_job, run_record,
                   seal_run)
from . import envelope, payload
from .broker import TASK_NAME, BrokerConfig, make_app, mask, ping, queue
from .worker import RUN_KEY

POLL = 0.25  # seconds between result polls when nothing arrived
LIVENESS_EVERY = 3.0  # seconds between "which zones have a live worker" broadcasts
BROKER_GRACE = 10.0  # seconds the broker may be unreachable mid-run before the rest is given up
STARTED_GRACE = 15.0  # beyond a task's own deadline: connection set-up, result upload


@dataclass
class Task:
    id: str
    kind: str  # host | family
    zone: str
    name: str  # the host's name, or the family
    deadline: float  # seconds a worker may spend on it
    host: Optional[Host] = None
    job: Optional[NetJob] = None
    family: Optional[str] = None
    sent: float = 0.0
    started: Optional[float] = None
    worker: Optional[str] = None  # "hostname pid" of the worker that took it (changes when redelivered)
    node: Optional[str] = None  # the Celery node name of that worker (for liveness)
    deliveries: int = 0
    missing: int = 0  # liveness broadcasts in a row its worker did not answer
    resent: int = 0  # times the controller gave it out again after its worker died
    dead: set[str] = field(default_factory=set)  # nodes that died holding it (their STARTED state is stale)


@dataclass
class _State:
    hosts: dict[str, HostInput] = field(default_factory=dict)
    parts: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # vantage → family → fact
    evidence: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # vantage → family → files
    workers: dict[str, dict[str, Any]] = field(default_factory=dict)  # fingerprint → {hostname, zones, tasks}
    lost: Optional[str] = None  # why the broker was given up mid-run


def zones_used(inv: Inventory, only: tuple[str, ...]) -> dict[str, list[str]]:
    """zone → what needs it (for the error that names a zone without accepted worker keys)."""
    used: dict[str, list[str]] = {}
    if "host" in only:
        for h in inv.hosts:
            used.setdefault(h.zone or DEFAULT_ZONE, []).append(f"host {h.name}")
    if "network" in only:
        for n in inv.networks:
            used.setdefault(n.served_by, []).append(f"network {n.name}")
    if "tls" in only:
        for t in inv.tls:
            used.setdefault(t.served_by, []).append(f"tls {t.host}:{t.port}")
    if "web" in only:
        for u in inv.urls:
            used.setdefault(inv.url_zones.get(u, DEFAULT_ZONE), []).append(f"web {u}")
    return used


def check_inventory(inv: Inventory, only: tuple[str, ...]) -> None:
    """Refuse, before anything is sent, a zone that is not a queue name or that no worker key is accepted for."""
    from ..inventory import _NAME

    for zone, users in zones_used(inv, only).items():
        if not _NAME.fullmatch(zone):
            raise ConfigError(inv.path, None, "zone", f"zone {zone!r} ({users[0]}) cannot name a work queue: use "
                              "letters, digits, '.', '_' and '-'")
        if not inv.workers.get(zone):
            raise ConfigError(inv.path, None, f"workers.{zone}",
                              f"no worker key is accepted for zone {zone!r} ({', '.join(users[:3])}"
                              f"{' …' if len(users) > 3 else ''}): list the public keys of its workers under "
                              f"workers: {{{zone}: [ssh-ed25519 …]}}")


def vantage_jobs(inv: Inventory, opts: ScanOptions) -> dict[str, NetJob]:
    """The network work split by the zone that does it (a network's ``vantage`` or ``zone``)."""
    whole = net_job(inv, "", lambda m: _progress(opts, m))
    jobs: dict[str, NetJob] = {}

    def job(z: str) -> NetJob:
        if z not in jobs:
            jobs[z] = NetJob(vantage=z, scope=whole.scope, known=whole.known, nmap=whole.nmap,
                             tls_options=whole.tls_options, web_options=whole.web_options, progress=whole.progress)
        return jobs[z]

    for n, nd in zip(inv.networks, whole.networks):
        job(n.served_by).networks.append(nd)
    for t, td in zip(inv.tls, whole.endpoints):
        job(t.served_by).endpoints.append(td)
    from policies.netview import normalize_url

    for u in inv.urls:
        j = job(inv.url_zones.get(u, DEFAULT_ZONE))
        nu = normalize_url(u)
        if nu not in j.urls:
            j.urls.append(nu)
    return jobs


def scan(inv: Inventory, opts: ScanOptions, cfg: BrokerConfig, max_result_bytes: Optional[int] = None) -> dict[str, Any]:
    """Like ``agent.run.scan``, with collection done by the zones' workers. BrokerError when the broker cannot be
    reached at the start (nothing is created then)."""
    check_inventory(inv, opts.only)
    ping(cfg)
    evaluator = Evaluator(opts.profile, inv.policy, inv.waivers, inventory=evaluation_inventory(inventory_record(inv)))
    app = make_app(cfg)
    client = cfg.redis()
    cap = max_result_bytes or (inv.broker.max_result_bytes if inv.broker else 32 * 1024 * 1024)
    writer = BundleWriter(opts.out)
    writer.create()
    started = now_iso()
    run_id = str(uuid.uuid4())
    run_key = RUN_KEY.format(run_id)
    st = _State()
    obs = opts.observer
    positions = {h.name: i for i, h in enumerate(inv.hosts)}

    # what to send: hosts per zone (at most --concurrency in flight per zone), network families per vantage
    waiting: dict[str, list[Task]] = {}
    if "host" in opts.only:
        for h in inv.hosts:
            z = h.zone or DEFAULT_ZONE
            waiting.setdefault(z, []).append(Task(str(uuid.uuid4()), "host", z, h.name, inv.timeouts.host, host=h))
    jobs = vantage_jobs(inv, opts) if set(opts.only) - {"host"} else {}
    for z, job in jobs.items():
        todo = wanted(job, opts.only)
        names = ["network_scan"] if todo["network_scan"] else [n for n in ("tls", "web") if todo[n]]
        for n in names:
            waiting.setdefault(z, []).insert(0, _family_task(n, z, job))
    inflight: dict[str, Task] = {}
    n_hosts = sum(1 for ts in waiting.values() for t in ts if t.kind == "host")
    done_hosts = 0
    if obs:
        obs.phase("hosts", n_hosts)
    _progress(opts, f"distributed: {sum(len(v) for v in waiting.values())} task(s) for zone(s) "
                    f"{', '.join(sorted(waiting)) or '-'} through {mask(cfg.url)}")
    client.set(run_key, "open", ex=7 * 86400)

    def tell(event: str, t: Optional[Task], msg: str, **fields: Any) -> None:
        """A structured task event for the run's observers (``run --log-json``): task_id, zone, host, worker."""
        if obs is not None and hasattr(obs, "task"):
            base = {"task_id": t.id, "zone": t.zone, "host": t.name} if t else {}
            obs.task(event, msg, **base, **fields)

    def send(t: Task) -> None:
        if t.host is not None:
            body = payload.host_task(run_id, inv, t.host, t.zone)
        else:
            assert t.job is not None and t.family is not None
            body = payload.family_task(run_id, t.family, t.job, t.zone)
        app.send_task(TASK_NAME, args=[payload.encode(body)], queue=queue(t.zone), task_id=t.id)
        t.sent = time.monotonic()
        inflight[t.id] = t
        tell("task-sent", t, f"{t.name}: sent to {queue(t.zone)}")
        if t.kind == "host" and obs:
            obs.host_started(t.name)

    def fill() -> None:
        for z, ts in waiting.items():
            while ts and sum(1 for t in inflight.values() if t.zone == z and t.kind == "host") < max(1, opts.concurrency):
                send(ts.pop(0))
            while ts and ts[0].kind == "family":
                send(ts.pop(0))

    def finish(t: Task) -> None:
        nonlocal done_hosts
        inflight.pop(t.id, None)
        try:
            app.backend.forget(t.id)  # the result lives in the bundle now, not in Redis
        except Exception:
            pass
        if t.kind == "host":
            done_hosts += 1
            hi = st.hosts[t.name]
            if obs:
                obs.host_done(t.name, hi.collected, hi.error, time.monotonic() - (t.started or t.sent))
            _progress(opts, f"[{done_hosts}/{n_hosts}] {t.name}: " + (
                "collected" if hi.collected else f"NOT collected — {hi.error}") + f" (zone {t.zone})")

    def fail(t: Task, reason: str, code: ReasonCode = ReasonCode.OTHER) -> None:
        """The task ends without a result: its host or family is 점검불가 with the reason."""
        tell("task-failed", t, f"{t.name}: {reason}", reason_code=code.value)
        if t.kind == "host":
            assert t.host is not None
            st.hosts[t.name] = _host_failed(writer, t, reason, code)
        else:
            _keep_family(st, writer, t, not_collected(t.family or "", reason, code).to_json(), [], None)
            _after_family(t, None)
        finish(t)

    def _after_family(t: Task, fact: Optional[dict[str, Any]]) -> None:
        """A finished scan releases its vantage's TLS and web families (over what it found open)."""
        if t.family != "network_scan" or t.job is None:
            return
        scanned = fact is not None and fact.get("status") in ("collected", "partial")
        if fact is not None and scanned:
            follow_scan(t.job, fact)
        todo = wanted(t.job, opts.only)
        for n in ("tls", "web"):
            if REGISTRY[n].only in opts.only and (todo[n] or scanned):
                waiting.setdefault(t.zone, []).insert(0, _family_task(n, t.zone, t.job))

    def arrived(t: Task, result: Any) -> None:
        try:
            body, fp = envelope.open_result(result, inv.workers.get(t.zone, []), t.id, t.zone, cap)
        except envelope.Refused as e:
            return fail(t, str(e))
        w = body.get("worker") or {}
        who = {"hostname": printable(str(w.get("hostname")), 100), "fingerprint": fp, "zone": t.zone,
               "task_id": t.id, "attempt": body.get("attempt")}
        info = st.workers.setdefault(fp, {"fingerprint": fp, "hostname": who["hostname"], "zones": set(), "tasks": 0})
        info["zones"].add(t.zone)
        info["tasks"] += 1
        tell("task-result", t, f"{t.name}: result of worker {who['hostname']} accepted", worker=who["hostname"],
             fingerprint=fp, attempt=body.get("attempt"))
        if body.get("refused"):
            return fail(t, f"{printable(str(body['refused']), 500)} (worker {who['hostname']}, zone {t.zone})")
        try:
            if t.kind == "host":
                st.hosts[t.name] = _host_arrived(writer, t, body, who)
            else:
                fact = body.get("fact")
                if not isinstance(fact, dict) or body.get("family") != t.family:
                    raise ValueError("the result holds no fact of this family")
                files = _replay(writer, "network", body.get("evidence") or [], who)
                _keep_family(st, writer, t, fact, files, who)
                _after_family(t, fact)
        except (ValueError, TypeError, KeyError) as e:
            return fail(t, f"malformed result from worker {who['hostname']}: {printable(str(e), 200)}")
        finish(t)

    def _worker_died(t: Task) -> None:
        """The worker that held the task is gone (killed with its pool, or cut off): give the task out once more
        (same id: one result slot, the first result wins), else end it."""
        if t.resent >= 1:
            return fail(t, f"the workers holding the task died twice (last {printable(str(t.node), 100)}); "
                           "not given out again")
        _progress(opts, f"distributed: worker {t.node} died holding {t.name}; giving the task out again")
        tell("worker-died", t, f"{t.name}: worker {t.node} died holding it; given out again", worker=t.node)
        t.dead.add(str(t.node))
        t.resent += 1
        t.started = t.worker = t.node = None
        t.missing = 0
        inflight.pop(t.id, None)
        send(t)

    live = _Liveness(app)
    seen_round = 0
    served: set[str] = set()
    no_worker_since: dict[str, float] = {}
    lost_since: Optional[float] = None
    try:
        fill()
        while inflight or any(waiting.values()):
            if opts.cancel.is_set():
                raise KeyboardInterrupt
            now = time.monotonic()
            progressed = False
            try:
                ids = list(inflight)
                raws = client.mget([app.backend.get_key_for_task(i) for i in ids]) if ids else []
                rnd, served, nodes = live.snapshot()
                if rnd > seen_round:  # a new liveness broadcast came back
                    seen_round = rnd
                    for t in list(inflight.values()):
                        if t.started is None or not t.node:
                            continue
                        t.missing = 0 if t.node in nodes else t.missing + 1
                        if t.missing >= 2:  # twice in a row: not a slow reply, a dead worker
                            _worker_died(t)
                lost_since = None
            except Exception as e:  # the broker is gone (or refusing): wait a little, then give up what is left
                lost_since = lost_since or now
                if now - lost_since < BROKER_GRACE:
                    time.sleep(1.0)
                    continue
                st.lost = f"lost the broker mid-run ({mask(printable(str(e), 200)) or type(e).__name__})"
                tell("broker-lost", None, st.lost)
                _progress(opts, f"distributed: {st.lost}; the remaining tasks are not collected")
                for t in list(inflight.values()) + [t for ts in waiting.values() for t in ts]:
                    fail(t, st.lost, ReasonCode.UNREACHABLE)
                waiting.clear()
                break
            done: list[tuple[Task, dict[str, Any]]] = []
            for tid, raw in zip(ids, raws):
                got = inflight.get(tid)
                if got is None or raw is None:
                    continue
                t = got
                meta = app.backend.decode_result(raw)
                status = meta.get("status")
                if status == "STARTED":
                    res = meta.get("result") or {}
                    who = f"{res.get('hostname')} {res.get('pid')}"
                    if who != t.worker and res.get("hostname") not in t.dead:
                        # first taken, or taken again after its task process died (late acknowledgement)
                        t.worker, t.node, t.started = who, str(res.get("hostname")), time.monotonic()
                        t.deliveries += 1
                        tell("task-started", t, f"{t.name}: taken by {t.node}", worker=t.node)
                elif status in ("SUCCESS", "FAILURE", "REVOKED"):
                    done.append((t, meta))
            if done:
                # the finished tasks' slots are given out before their results are checked and written: a worker
                # never waits for the controller's bookkeeping of a whole batch (slow when the box is busy)
                for t, _ in done:
                    inflight.pop(t.id, None)
                fill()
                progressed = True
            for t, meta in done:
                if meta.get("status") == "SUCCESS":
                    arrived(t, meta.get("result"))
                else:
                    res = meta.get("result") or {}
                    fail(t, f"the worker's task failed: {printable(str(res.get('exc_type') or meta.get('status')), 80)}"
                            f": {printable(str(res.get('exc_message') or ''), 300)}")
            now = time.monotonic()
            for z in {t.zone for t in inflight.values()} | {z for z, ts in waiting.items() if ts}:
                if z in served:
                    no_worker_since.pop(z, None)
                    continue
                since = no_worker_since.setdefault(z, now)
                # nobody to take this zone's tasks: every task of it not yet started ends at the host deadline
                if now - since >= inv.timeouts.host:
                    reason = f"no worker serves zone {z!r} (none answered for {inv.timeouts.host:.0f} s)"
                    for t in [t for t in inflight.values() if t.zone == z and t.started is None]:
                        fail(t, reason, ReasonCode.UNREACHABLE)
                    for t in waiting.pop(z, []):
                        fail(t, reason, ReasonCode.UNREACHABLE)
                    progressed = True
            for t in list(inflight.values()):
                if t.started is not None and now - t.started > t.deadline + STARTED_GRACE:
                    fail(t, f"worker {printable(str(t.worker), 100)} took the task but returned no result within "
                            f"its {t.deadline:.0f} s deadline (killed, hung or cut off from the broker)",
                         ReasonCode.TIMED_OUT)
                    progressed = True
            fill()
            if not progressed:
                time.sleep(POLL)
    except BaseException:
        live.close()
        _revoke(app, list(inflight))
        try:
            client.delete(run_key)
        except Exception:
            pass
        raise
    live.close()
    try:
        client.delete(run_key)  # tasks still queued for this run are refused by any worker from now on
    except Exception:
        pass

    hosts_in = sorted(st.hosts.values(), key=lambda h: positions.get(h.meta["name"], 0))
    run_facts, run_evidence = _network_facts(st, writer, inv)
    if obs:
        obs.phase("evaluate")
    vantages = sorted(st.parts)
    workers = [{**w, "zones": sorted(w["zones"])} for w in sorted(st.workers.values(), key=lambda w: w["fingerprint"])]
    run_meta = run_record(inv, opts, run_id, started, vantages[0] if len(vantages) == 1 else "distributed",
                          vantages=vantages, distributed={"broker": mask(cfg.url), "workers": workers,
                                                          **({"lost": st.lost} if st.lost else {})})
    return seal_run(writer, evaluator, inv, opts, hosts_in, run_facts, run_evidence, run_meta)


def _family_task(name: str, zone: str, job: NetJob) -> Task:
    return Task(str(uuid.uuid4()), "family", zone, name, REGISTRY[name].deadline(job), job=job, family=name)


class _Liveness:
    """Which zones have a live worker and which workers are alive, refreshed in the background every few seconds:
    the broadcast waits a second for replies, and the result loop must not wait with it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._state: tuple[int, set[str], set[str]] = (0, set(), set())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ea-liveness", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                served, nodes = _zones_served(self.app)
                with self._lock:
                    self._state = (self._state[0] + 1, served, nodes)
            except Exception:  # the broker is gone: the result loop notices it and decides
                pass
            self._stop.wait(LIVENESS_EVERY)

    def snapshot(self) -> tuple[int, set[str], set[str]]:
        with self._lock:
            return self._state

    def close(self) -> None:
        self._stop.set()
        self._thread.join(3)


def _zones_served(app: Any) -> tuple[set[str], set[str]]:
    """(zones with at least one live worker consuming their queue, the live workers' node names): a one-second
    broadcast that every worker answers."""
    from .broker import QUEUE_PREFIX

    replies = app.control.inspect(timeout=1.0).active_queues() or {}
    zones = {q["name"][len(QUEUE_PREFIX):] for qs in replies.values() for q in (qs or [])
             if str(q.get("name", "")).startswith(QUEUE_PREFIX)}
    return zones, set(replies)


def _revoke(app: Any, ids: list[str]) -> None:
    try:
        if ids:
            app.control.revoke(ids)
    except Exception:
        pass


_EV_FIELDS = {"label", "command", "content", "collected_at", "items", "exit_code", "ext", "description_ko",
              "description_en"}


def _replay(writer: BundleWriter, host: str, evidence: list[Any], who: dict[str, Any]) -> list[str]:
    """Write a worker's evidence files into the bundle (redacted and framed again by the writer, with the worker
    named in each header); returns the bundle names in order."""
    out = []
    for e in evidence:
        ev = dict(e["ev"])
        extra = set(ev) - _EV_FIELDS
        if extra:
            raise ValueError(f"unknown evidence field(s) {sorted(extra)[:3]}")
        ev["items"] = tuple(str(i) for i in ev.get("items") or ())
        header = {str(k): printable(str(v), 500) for k, v in (e.get("header") or {}).items()}
        header["collected by"] = f"worker {who['hostname']} (zone {who['zone']}, key {who['fingerprint']})"
        out.append(writer.evidence(host, Evidence(**ev), header))
    return out


def _host_meta(h: Host) -> dict[str, Any]:
    meta = h.meta()
    meta["declared"] = _redacted(meta["declared"])
    return meta


def _host_arrived(writer: BundleWriter, t: Task, body: dict[str, Any], who: dict[str, Any]) -> HostInput:
    assert t.host is not None
    rec = body.get("record")
    if not isinstance(rec, dict) or not isinstance(rec.get("facts"), dict) or not isinstance(rec.get("evidence"), dict):
        raise ValueError("the result holds no facts record")
    files = _replay(writer, t.name, body.get("evidence") or [], who)
    placeholders = {f"@{i}": f for i, f in enumerate(files)}
    evidence = {str(p): [placeholders[x] for x in fs] for p, fs in rec["evidence"].items()}
    facts = {str(k): v for k, v in rec["facts"].items() if isinstance(v, dict)}
    sent = rec.get("transport")
    transport: dict[str, Any] = {**(sent if isinstance(sent, dict) else {"kind": t.host.transport}), "worker": who}
    record = {k: v for k, v in rec.items() if k in ("uid", "privilege", "warning", "connected", "duration_seconds",
                                                   "error_code")}
    # the host's identity is the controller's (the inventory), never what a worker says it is
    record = {"host": _host_meta(t.host), "collected": bool(rec.get("collected")),
              "error": printable(str(rec["error"]), 1000) if rec.get("error") else None,
              "transport": transport, **record, "worker": who, "facts": facts, "evidence": evidence}
    rel = writer.write_json(f"facts/{safe_component(t.name)}.json", record)
    return HostInput(meta=record["host"], collected=record["collected"], error=record["error"], facts=None,
                     evidence=evidence, session=transport, facts_file=writer.path(rel),
                     error_code=record.get("error_code"))


def _host_failed(writer: BundleWriter, t: Task, reason: str, code: ReasonCode) -> HostInput:
    """A host no worker result came back for: 점검불가, with the reason and its code (no worker, lost broker:
    unreachable; a worker past its deadline: timed out; a refused result: other)."""
    assert t.host is not None
    transport = {"kind": t.host.transport, "worker": {"zone": t.zone, "task_id": t.id,
                                                      **({"taken_by": t.worker} if t.worker else {})}}
    meta = _host_meta(t.host)
    record = {"host": meta, "collected": False, "error": reason, "error_code": code.value, "transport": transport,
              "duration_seconds": round(time.monotonic() - t.sent, 3) if t.sent else 0.0, "facts": {}, "evidence": {}}
    rel = writer.write_json(f"facts/{safe_component(t.name)}.json", record)
    return HostInput(meta=meta, collected=False, error=reason, facts=None, evidence={},
                     session=transport, facts_file=writer.path(rel), error_code=code.value)


def _keep_family(st: _State, writer: BundleWriter, t: Task, fact: dict[str, Any], files: list[str],
                 who: Optional[dict[str, Any]]) -> None:
    fact = dict(fact)
    if who:
        fact["worker"] = who
    st.parts.setdefault(t.zone, {})[t.family or ""] = fact
    st.evidence.setdefault(t.zone, {})[t.family or ""] = files


def _network_facts(st: _State, writer: BundleWriter, inv: Inventory) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """One vantage: its facts as a single-process run at that vantage has them. Several: united as ``merge`` does
    (agent.merge.combine_network), so verdicts equal the merged single-zone runs."""
    if not st.parts:
        return {}, {}
    if len(st.parts) == 1:
        (vantage, facts), = st.parts.items()
        evidence: dict[str, list[str]] = st.evidence.get(vantage, {})
        writer.write_json("facts/_network.json", {"vantage": vantage, "scope": inv.scope.to_json(),
                                                  "facts": facts, "evidence": evidence})
        return facts, evidence
    facts = combine_network(sorted(st.parts.items()))
    evidence = {}
    for v in sorted(st.evidence):
        for fam, files in st.evidence[v].items():
            evidence.setdefault(fam, []).extend(files)
    writer.write_json("facts/_network.json", {"vantage": "distributed", "vantages": sorted(st.parts),
                                              "scope": inv.scope.to_json(), "facts": facts, "evidence": evidence,
                                              "by_vantage": st.parts})
    return facts, evidence


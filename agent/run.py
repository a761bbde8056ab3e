"""One scan run: collect every host concurrently, run network probes, evaluate policies, write and seal the bundle.

Each host is collected in its own worker under its own deadline, and its facts
and evidence are written as soon as it finishes, so one slow host never holds
the others and memory does not grow with the fleet. Failures are per host:
the run goes on, records why, and is still signed.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Optional

from collectors import signing
from collectors.bundle import BundleWriter, now_iso, safe_component, seal
from collectors.redact import redact, redact_obj
from policies.engine import Evaluator, HostInput, summarize
from policies.model import Profile
from policies.netview import normalize_url
from probes.base import Evidence, Fact, FactStatus, HostProbe, RawOutput, ReasonCode, classify_reason, not_collected
from probes.batch import dedupe
from probes.host import PROBES
from probes.transport import TransportError, describe_error, describe_session, printable
from probes.transport.local import LocalTransport
from probes.transport.jump import Hop, JumpPool
from probes.transport.ssh import SshTransport

from . import __version__
from .inventory import Host, Inventory
from .netfamilies import REGISTRY, NetJob, follow_scan, wanted

FAMILIES = ("host", "network", "tls", "web")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_SCHEMA = "evidence-agent/results/v1"


@dataclass
class ScanOptions:
    out: str
    key: signing.KeyPair
    profile: Profile
    concurrency: int = 16
    only: tuple[str, ...] = FAMILIES
    vantage: str = "internal"
    progress: Optional[Callable[[str], None]] = None
    probes: list[HostProbe] = field(default_factory=lambda: list(PROBES))
    baseline: Optional[dict[str, Any]] = None  # {path, run_id, finished} of a previous bundle, recorded in run
    plans_from: Optional[str] = None  # a previous bundle whose open plans (E) are carried over (`run`)
    observer: Optional[Any] = None  # agent.progress.ScanObserver: phase and per-host events (display, JSON log)
    cancel: threading.Event = field(default_factory=threading.Event)  # set on Ctrl-C: transports give up at once
    live: set[Any] = field(default_factory=set, repr=False)  # transports in use, aborted on Ctrl-C
    jumps: Optional[JumpPool] = field(default=None, repr=False)  # the run's jump-host connections (scan() makes it)


def _evidence_for(probe: HostProbe, outputs: dict[str, RawOutput], header: dict[str, Any]) -> Evidence:
    """All raw outputs of one probe in one auditor-readable file, each with its command and exit code."""
    parts = []
    codes = []
    for i, c in enumerate(probe.commands, 1):
        o = outputs.get(c.name)
        if o is None:
            continue
        state = ("timed out" if o.timed_out else
                 f"cut off ({o.truncated_reason or 'no end marker'})" if o.truncated else
                 (o.error or f"exit {o.exit_code}"))
        codes.append(o.exit_code if o.complete else None)
        parts.append(f"=== [{i}/{len(probe.commands)}] {c.name} — {state}, started {o.started}, {o.duration:.0f}s\n"
                     f"$ {c.script}\n{o.output}\n")
    complete = all(x is not None for x in codes)
    return Evidence(
        label=probe.name, command=f"{len(parts)} command(s), shown below; run with LC_ALL=C in one sh -s session",
        content="\n".join(parts), collected_at=min((outputs[c.name].started for c in probe.commands
                                                    if c.name in outputs), default=now_iso()),
        items=tuple(probe.items), exit_code=0 if complete else None,
        description_ko=probe.description_ko, description_en=probe.description_en,
    )


def collect_host(host: Host, inv: Inventory, opts: ScanOptions, writer: BundleWriter) -> HostInput:
    started = time.monotonic()
    meta = host.meta()
    meta["declared"] = _redacted(meta["declared"])
    transport: Any
    if host.transport == "local":
        transport = LocalTransport(become=host.become, cancel=opts.cancel)
    else:
        # the connection phase, too, stays inside the host's overall deadline
        transport = SshTransport(host.address, replace(host.ssh, become=host.become, connect_timeout=min(
            host.ssh.connect_timeout, inv.timeouts.host)), cancel=opts.cancel, via=_route(host, inv, opts))
    opts.live.add(transport)
    record: dict[str, Any] = {"host": meta, "collected": False, "error": None, "transport": {"kind": host.transport}}
    if host.route:  # the path is recorded even when a hop failed
        record["transport"]["jump"] = [{"name": n} for n in host.route]
    if host.ssh_config:  # what came from the operator's ssh_config rather than the inventory
        record["transport"]["ssh_config"] = host.ssh_config
    facts: dict[str, dict[str, Any]] = {}
    evidence: dict[str, list[str]] = {}
    try:
        session = transport.open()
        record["transport"] = {"kind": session.transport, **session.info,
                               **({"ssh_config": host.ssh_config} if host.ssh_config else {})}
        cap = inv.timeouts.command
        cmds = [replace(c, timeout=min(c.timeout, cap)) if cap else c for c in dedupe(
            c for p in opts.probes for c in p.commands)]
        # waiting for a free channel on a jump host is not the host's time (its deadline starts after)
        batch = transport.run(cmds, started + getattr(transport, "waited", 0.0) + inv.timeouts.host)
    except TransportError as e:
        record["error"] = printable(str(e), 1000)  # may quote the target (a banner): escaped for every reader
        record["error_code"] = e.reason_code.value
    except Exception as e:  # a bug or an unexpected library error must not kill the run
        record["error"] = f"unexpected error: {describe_error(e)}"
    finally:
        transport.close()
        opts.live.discard(transport)
    if opts.cancel.is_set() and record["error"] is None:
        record["error"] = "run interrupted"
    if record["error"] is None:
        problem = batch.script_problem()
        if problem:  # connected is not collected: a hung shell, a forced command, garbage without frames
            record["error"] = problem
            record["connected"] = True
    if record["error"] is not None:
        record.setdefault("error_code", classify_reason(record["error"]).value)
    if record["error"] is None:
        record["collected"] = True
        record["uid"] = batch.uid
        if host.become and batch.sudo_refused:
            record["privilege"] = "sudo -n refused; collected unprivileged"
        elif batch.uid == 0:
            record["privilege"] = "root"
        else:
            record["privilege"] = f"unprivileged (uid {batch.uid})"
        if not batch.done:
            record["warning"] = ("the probe script did not finish ("
                                 + (batch.stream_error or "the session ended early") + "); some facts are incomplete")
        header = {
            "host": f"{host.name} ({host.address})",
            "transport": describe_session(record["transport"]),
            "privilege": record["privilege"],
        }
        for probe in opts.probes:
            outs = {c.name: batch.outputs[c.name] for c in probe.commands if c.name in batch.outputs}
            try:
                fact = probe.parse(outs)
                if host.transport == "local" and probe.local is not None:
                    fact = probe.local(fact)
            except Exception as e:  # a parser bug on odd output: unknown, with the reason
                fact = not_collected(probe.name, f"parser error on this output: {describe_error(e)}",
                                     ReasonCode.PARSE_ERROR)
            if batch.uid not in (0, None) and fact.status != FactStatus.COLLECTED and any(
                    c.privileged for c in probe.commands):
                fact.reason = (fact.reason or "") + " (collected without root: some parts need privilege)"
            rel = writer.evidence(host.name, _evidence_for(probe, outs, header), header)
            evidence[probe.name] = [rel]
            for ev in fact.evidence:
                evidence[probe.name].append(writer.evidence(host.name, ev, header))
            facts[probe.name] = fact.to_json()
    if record.get("warning"):
        missing = sum(1 for f in facts.values() if f.get("status") != FactStatus.COLLECTED.value)
        record["warning"] += f"; {missing} of {len(facts)} facts not fully collected"
    record["duration_seconds"] = round(time.monotonic() - started, 3)
    record["facts"] = facts
    record["evidence"] = evidence
    rel = writer.write_json(f"facts/{safe_component(host.name)}.json", record)
    # facts are handed over for the host's own judgement only, then dropped by the caller; later readers
    # read them back one host at a time (memory flat in the fleet size)
    return HostInput(meta=meta, collected=record["collected"], error=record["error"], facts=facts,
                     evidence=evidence, session=record["transport"], facts_file=writer.path(rel),
                     error_code=record.get("error_code"))


def _route(host: Host, inv: Inventory, opts: ScanOptions) -> Optional[Any]:
    """The last jump host of the host's chain (None: a direct connection). Each hop's connect timeout is capped by
    the host deadline, as a target's is, so a hung hop is bounded like a hung target."""
    if not host.route:
        return None
    if opts.jumps is None:
        opts.jumps = JumpPool(opts.cancel)
    hops = []
    for name in host.route:
        j = inv.jump_hosts[name]
        hops.append(Hop(j.name, j.address, replace(j.ssh, connect_timeout=min(j.ssh.connect_timeout, inv.timeouts.host)),
                        j.ssh.max_sessions))
    return opts.jumps.route(hops)


def net_job(inv: Inventory, vantage: str, progress: Optional[Callable[[str], None]] = None) -> NetJob:
    """The inventory's network work as seen from one vantage (single-process mode: all of it)."""
    return NetJob(
        vantage=vantage, scope=inv.scope, networks=[{"name": n.name, "cidr": n.cidr, "zone": n.zone} for n in inv.networks],
        known={h.address: h.name for h in inv.hosts},
        endpoints=[{"host": t.host, "port": t.port, "server_name": t.server_name, "name": t.name,
                    "external_institution": t.external_institution} for t in inv.tls],
        urls=list(dict.fromkeys(normalize_url(u) for u in inv.urls)),  # http://a:80/ and http://a/ are one URL
        nmap=dict(inv.nmap), tls_options=dict(inv.tls_options), web_options=dict(inv.web_options), progress=progress)


def run_families(job: NetJob, only: tuple[str, ...], keep: Callable[[str, Fact], None]) -> None:
    """The registry's families in order for one job: the scan, then TLS and web over what was declared and what
    the scan found open. Each result goes to ``keep`` as it is made."""
    todo = wanted(job, only)
    scanned = False
    if todo["network_scan"]:
        scan = REGISTRY["network_scan"].collect(job)
        keep("network_scan", scan)
        scanned = scan.status in (FactStatus.COLLECTED, FactStatus.PARTIAL)
        if scanned:
            follow_scan(job, scan.to_json())
    for name in ("tls", "web"):
        fam = REGISTRY[name]
        if fam.only in only and (todo[name] or scanned):
            keep(name, fam.collect(job))


def run_network(inv: Inventory, opts: ScanOptions, writer: BundleWriter) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Network families (nmap, sslyze, HTTP) at run level; each failure becomes a not-collected fact."""
    facts: dict[str, dict[str, Any]] = {}
    evidence: dict[str, list[str]] = {}

    def keep(name: str, fact: Fact) -> None:
        files = [writer.evidence("network", ev, {"vantage": opts.vantage, "scope": json.dumps(inv.scope.to_json())})
                 for ev in fact.evidence]
        facts[name] = fact.to_json()
        evidence[name] = files

    run_families(net_job(inv, opts.vantage, lambda m: _progress(opts, m)), opts.only, keep)
    if facts:
        writer.write_json("facts/_network.json", {"vantage": opts.vantage, "scope": inv.scope.to_json(),
                                                  "facts": facts, "evidence": evidence})
    return facts, evidence


def _progress(opts: ScanOptions, msg: str) -> None:
    if opts.progress:
        opts.progress(redact(msg))  # host errors and names reach the terminal and the journal


def scan(inv: Inventory, opts: ScanOptions) -> dict[str, Any]:
    """Run everything and seal the bundle. Returns results (also written to results.json)."""
    # waivers and policy parameters are validated before anything is created: a bad waiver leaves no folder
    evaluator = Evaluator(opts.profile, inv.policy, inv.waivers,
                          inventory=evaluation_inventory(inventory_record(inv)))
    writer = BundleWriter(opts.out)
    writer.create()
    started = now_iso()
    run_id = str(uuid.uuid4())
    hosts_in: list[HostInput] = []
    obs = opts.observer
    # The network families run first: their facts are then final, so each host can be judged by its
    # worker as soon as it is collected (evaluation overlaps collection instead of following it).
    if obs and set(opts.only) - {"host"}:
        obs.phase("network")
    run_facts, run_evidence = run_network(inv, opts, writer) if set(opts.only) - {"host"} else ({}, {})
    if "host" in opts.only and inv.hosts:
        lock = threading.Lock()
        done = 0
        if obs:
            obs.phase("hosts", len(inv.hosts))
        position = {h.name: i for i, h in enumerate(inv.hosts)}

        def work(h: Host) -> HostInput:
            t0 = time.monotonic()  # in the worker: time waiting for a free worker is not the host's
            if obs:
                obs.host_started(h.name)
            hi = collect_host(h, inv, opts, writer)
            try:
                hi.judged = evaluator.judge_host(position[h.name], hi, run_facts, run_evidence)
            except Exception:  # judged again (and reported) when the bundle is finalised
                hi.judged = None
            hi.facts = None  # on disk already; not kept for the rest of the run
            if obs:
                obs.host_done(h.name, hi.collected, hi.error, time.monotonic() - t0)
            return hi

        pool = ThreadPoolExecutor(max_workers=max(1, opts.concurrency))
        if any(h.route for h in inv.hosts):
            opts.jumps = JumpPool(opts.cancel)
            opts.live.add(opts.jumps)  # Ctrl-C cuts the hop connections, and with them every channel through them
        try:
            futs = {pool.submit(work, h): h for h in inv.hosts}
            for fut in as_completed(futs):
                h = futs[fut]
                hi = fut.result()
                with lock:
                    done += 1
                    hosts_in.append(hi)
                _progress(opts, f"[{done}/{len(inv.hosts)}] {h.name}: "
                                + ("collected" if hi.collected else f"NOT collected — {hi.error}"))
        except BaseException:  # Ctrl-C (or a bug): stop now, not after every running host's deadline
            interrupt(opts)
            pool.shutdown(wait=True, cancel_futures=True)
            if opts.jumps is not None:
                opts.jumps.close()
            raise
        pool.shutdown(wait=True)
        if opts.jumps is not None:
            opts.jumps.close()
            opts.live.discard(opts.jumps)
        hosts_in.sort(key=lambda x: position[x.meta["name"]])
    if obs:
        obs.phase("evaluate")
    return seal_run(writer, evaluator, inv, opts, hosts_in, run_facts, run_evidence,
                    run_record(inv, opts, run_id, started, opts.vantage))


def run_record(inv: Inventory, opts: ScanOptions, run_id: str, started: str, vantage: str,
               **extra: Any) -> dict[str, Any]:
    """results.json ``run``: what was run, by which tool, where from (single-process and distributed runs alike)."""
    meta = {"id": run_id, "started": started, "profile": opts.profile.catalog.profile, "tool_version": __version__,
            "vantage": vantage, **extra, "only": list(opts.only), "inventory": os.path.basename(inv.path),
            "organisation": _redacted(inv.organisation), "scope": inv.scope.to_json(), "python": sys.version.split()[0]}
    if opts.baseline:
        meta["baseline"] = opts.baseline
    if opts.plans_from:
        meta["plans_from"] = os.path.abspath(opts.plans_from)
    return meta


def seal_run(writer: BundleWriter, evaluator: Evaluator, inv: Inventory, opts: ScanOptions, hosts_in: list[HostInput],
             run_facts: dict[str, Any], run_evidence: dict[str, list[str]], run_meta: dict[str, Any]) -> dict[str, Any]:
    """The inventory record, then judgement, results.json and the signature (:func:`finalize`)."""
    writer.write_json("inventory.json", inventory_record(inv))
    return finalize(writer, evaluator, hosts_in, run_facts, run_evidence, run_meta, opts.key)


def interrupt(opts: ScanOptions) -> None:
    """Cancel the running hosts: pending ones never start, running transports are cut (sockets shut, local
    scripts killed), so the workers return within about half a second."""
    opts.cancel.set()
    for t in list(opts.live):
        try:
            t.abort()
        except Exception:  # best effort: the host deadline still bounds it
            pass


def _redacted(v: Any) -> Any:
    """Free text an operator typed (declarations, organisation) through the same redaction as evidence."""
    if isinstance(v, str):
        return redact(v)
    if isinstance(v, dict):
        return {k: _redacted(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_redacted(x) for x in v]
    return v


def inventory_record(inv: Inventory) -> dict[str, Any]:
    """What of the inventory a later merge or re-evaluation needs; free-text fields are redacted (passwords
    are never read from an inventory, but an operator may paste one into a declaration)."""
    return {"organisation": _redacted(inv.organisation), "scope": inv.scope.to_json(),
            "hosts": [{**h.meta(), "declared": _redacted(h.declared)} for h in inv.hosts],
            "networks": [{"name": n.name, "cidr": n.cidr, "zone": n.zone} for n in inv.networks],
            "policy": inv.policy, "waivers": _redacted(inv.waivers), "declared": _redacted(inv.declared)}


def evaluation_inventory(record: dict[str, Any]) -> dict[str, Any]:
    """What run-scope rules read of the inventory besides its hosts: networks and organisation-wide declarations."""
    return {"networks": record.get("networks") or [], "declared": record.get("declared") or {}}


def _form_upkeep(writer: BundleWriter, evaluator: Evaluator, controls: list[dict[str, Any]],
                 run_meta: dict[str, Any]) -> None:
    """Stable per-item evidence names (collectors.labels), and open plans (E) carried over from the baseline."""
    from collectors.labels import relabel
    from output.form import carry_plans

    prefix = str((evaluator.profile.catalog.form or {}).get("evidence_prefix") or "자료")  # the profile's form
    run_meta["evidence_prefix"] = prefix
    writer.evidence_index = relabel(writer.root, writer.evidence_index, controls, prefix,
                                    {str(c["id"]) for c in evaluator.profile.catalog.controls})
    base = (run_meta.get("baseline") or {}).get("path") or run_meta.get("plans_from")
    if base:
        try:
            with open(os.path.join(base, "results.json"), encoding="utf-8") as f:
                old = json.load(f)
        except (OSError, ValueError):
            return
        modes = {str(c["id"]): str(c.get("mode") or "manual") for c in evaluator.profile.catalog.controls}
        carry_plans(old, controls, modes, (old.get("run") or {}).get("id"))


def finalize(writer: BundleWriter, evaluator: Evaluator, hosts_in: list[HostInput], run_facts: dict[str, Any],
             run_evidence: dict[str, list[str]], run_meta: dict[str, Any], key: signing.KeyPair,
             extra_predicate: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Evaluate the policies over the collected facts, write results.json, and seal the bundle."""
    evaluated = evaluator.run(hosts_in, run_facts, run_evidence)
    _form_upkeep(writer, evaluator, evaluated["controls"], run_meta)
    run = dict(run_meta)
    run["finished"] = now_iso()
    results = {
        "schema": RESULTS_SCHEMA,
        "run": run,
        "hosts": [{"name": h.meta["name"], "address": h.meta["address"], "transport": h.meta["transport"],
                   "roles": h.meta["roles"], "zone": h.meta["zone"], "collected": h.collected, "error": h.error,
                   "error_code": h.error_code}
                  for h in hosts_in],
        "controls": evaluated["controls"],
        "deviations": evaluated["deviations"],
        "waivers": evaluated["waivers"],
        "summary": summarize(evaluated["controls"]),
        "rules": {r.id: {"items": r.items, "title": r.title, "criterion": r.criterion, "criteria": r.criteria,
                         "level": r.level,
                         "scope": r.scope, "facts": r.facts, "params": r.params, "guide_limits": r.guide_limits,
                         "remediation": r.remediation, "source": os.path.relpath(r.source, ROOT)
                         if r.source.startswith(ROOT) else r.source}
                  for r in evaluator.profile.rules},
        "evidence_index": sorted(writer.evidence_index, key=lambda e: e["file"]),
    }
    # results.json is redacted like every file, then records how many secrets were removed from the bundle
    results = redact_obj(results, writer.redactions)
    results["redactions"] = writer.redactions.to_json()
    writer.write_json("results.json", results, redacted=True)
    predicate = {"run": results["run"], "hosts": results["hosts"], "revision": 1, "revisions": []}
    predicate.update(extra_predicate or {})
    seal(writer.root, key, predicate)
    return results



"""Drift between two runs of the same inventory: what got worse, what got better, what merely changed.

The differences themselves come from :func:`output.diff.diff_bundles` (the same
comparison ``evidence-agent diff`` prints); this module only *classifies* them,
because a scheduled run must decide whether to wake someone up. Plus one thing
the diff does not list: live addresses the network scan found that the inventory
does not declare (``undeclared_hosts`` of the ``network_scan`` fact).

Direction of a status change uses one severity order, worst last::

    implemented = not_applicable < unknown < partial < not_implemented

so ``implemented → unknown`` (evidence lost) is *worse*, ``not_implemented →
partial`` is *better*, and ``not_implemented → unknown`` only *changed* (the
failure may still be there; the evidence no longer says). Worse as well: a new
open finding, a port newly open to nmap or newly listening beyond loopback, a
new undeclared live host, a host no longer collected. Their opposites are
better. Inventory edits (hosts added or removed), changed finding details,
certificates replaced and loopback-only listeners are *changed*: worth a line in
the history, not an alarm.
"""
from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from output.diff import diff_bundles
from policies.engine import LABELS
from policies.model import Verdict

WORSE, BETTER, CHANGED = "worse", "better", "changed"
_RANK = {Verdict.IMPLEMENTED.value: 0, Verdict.NOT_APPLICABLE.value: 0, Verdict.UNKNOWN.value: 1, Verdict.PARTIAL.value: 2,
         Verdict.NOT_IMPLEMENTED.value: 3}


@dataclass(frozen=True)
class Change:
    """One classified difference.

    Attributes:
        kind: ``control`` (overall status of a guide item), ``host_control`` (one host's status for an item),
            ``finding`` (a rule newly open, resolved, or no longer evidenced on a host), ``host_added``,
            ``host_removed``, ``host_collection`` (collected ↔ not collected), ``port`` (nmap or listening),
            ``network_host`` (a live address not in the inventory), ``certificate``.
        direction: ``worse``, ``better`` or ``changed``.
        subject: a control id, a host name, ``address proto/port``, an endpoint.
        host: the inventory host concerned, when there is one.
        before, after: old and new value (status label, open/closed, present/absent).
        text: one human line (notifications, logs, ``history``).
    """

    kind: str
    direction: str
    subject: str
    host: Optional[str]
    before: Optional[str]
    after: Optional[str]
    text: str


@dataclass
class Drift:
    previous: Optional[str]
    current: str
    changes: list[Change] = field(default_factory=list)
    diff: Optional[dict[str, Any]] = None  # the full output.diff structure, when there was a previous run

    @property
    def worse(self) -> list[Change]:
        return [c for c in self.changes if c.direction == WORSE]

    @property
    def better(self) -> list[Change]:
        return [c for c in self.changes if c.direction == BETTER]

    def counts(self) -> dict[str, int]:
        return {WORSE: len(self.worse), BETTER: len(self.better),
                CHANGED: sum(1 for c in self.changes if c.direction == CHANGED)}

    def short(self) -> str:
        """``2 worse, 1 better`` (or ``no change`` / ``first run``)."""
        if self.previous is None:
            return "first run"
        n = self.counts()
        return ", ".join(f"{n[k]} {k}" for k in (WORSE, BETTER, CHANGED) if n[k]) or "no change"

    def summary(self, limit: int = 40) -> str:
        """Worse first, then better, then the rest; at most ``limit`` detail lines."""
        if self.previous is None:
            return f"{self.current}: first run, nothing to compare with"
        lines = [f"{self.current} compared with {self.previous}: {self.short()}"]
        shown = 0
        for direction, title in ((WORSE, "Got worse"), (BETTER, "Got better"), (CHANGED, "Changed")):
            group = [c for c in self.changes if c.direction == direction]
            if group and shown < limit:
                lines.append(f"{title}:")
            for c in group:
                if shown >= limit:
                    break
                lines.append(f"  - {c.text}")
                shown += 1
        if shown < len(self.changes):
            lines.append(f"  … and {len(self.changes) - shown} more (evidence-agent diff OLD NEW shows all)")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"previous": self.previous, "current": self.current, "counts": self.counts(),
                "changes": [asdict(c) for c in self.changes]}


def direction(before: Optional[str], after: Optional[str]) -> str:
    rb, ra = _RANK.get(before or "", 1), _RANK.get(after or "", 1)
    if ra > rb:
        return WORSE
    if ra < rb and after != "unknown":
        return BETTER
    return CHANGED


def _loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr.split("%")[0].strip("[]")).is_loopback
    except ValueError:
        return addr in ("localhost",)


def _undeclared(bundle: str) -> Optional[set[tuple[str, str]]]:
    """(vantage, address) of live hosts not in the inventory; None when no network scan finished."""
    try:
        with open(os.path.join(bundle, "facts", "_network.json"), encoding="utf-8") as f:
            net = json.load(f)
    except (OSError, ValueError):
        return None
    fact = (net.get("facts") or {}).get("network_scan") or {}
    scans = [s for s in (fact.get("data") or {}).get("scans") or [] if not s.get("error")]
    if not scans:
        return None
    return {(str(s.get("vantage") or ""), str(a)) for s in scans for a in s.get("undeclared_hosts") or []}


def _txt(d: Any, lang: str) -> str:
    return str(d.get(lang) or d.get("en") or "") if isinstance(d, dict) else str(d or "")


def compare(previous: Optional[str], current: str, lang: str = "en") -> Drift:
    """Classify the differences between bundle directories ``previous`` (None: first run) and ``current``."""
    d = Drift(previous=os.path.basename(previous.rstrip("/")) if previous else None,
              current=os.path.basename(current.rstrip("/")))
    if previous is None:
        return d
    try:
        diff = diff_bundles(previous, current)
    except ValueError:
        d.previous = None  # the previous bundle is unreadable: treat as a first run rather than fail the run
        return d
    d.diff = diff
    L = LABELS.get(lang, LABELS["en"])

    def lbl(s: Optional[str]) -> str:
        return L.get(s or "", str(s)) if s else "—"

    ch = d.changes
    for h in diff["hosts_added"]:
        ch.append(Change("host_added", CHANGED, h, h, None, "present", f"host {h} added to the inventory"))
    for h in diff["hosts_removed"]:
        ch.append(Change("host_removed", CHANGED, h, h, "present", None, f"host {h} removed from the inventory"))
    for c in diff["collection_changed"]:
        if c["new"]:
            ch.append(Change("host_collection", BETTER, c["host"], c["host"], "not collected", "collected",
                             f"host {c['host']} is collected again"))
        else:
            ch.append(Change("host_collection", WORSE, c["host"], c["host"], "collected", "not collected",
                             f"host {c['host']} could not be collected: {c.get('error')}"))
    gone_or_new = set(diff["hosts_added"]) | set(diff["hosts_removed"])
    for it in diff["items"]:
        cid = it["id"]
        if it["old"] != it["new"] and it["old"] and it["new"]:
            ch.append(Change("control", direction(it["old"], it["new"]), cid, None, it["old"], it["new"],
                             f"control {cid}: {lbl(it['old'])} → {lbl(it['new'])}"))
        for h in it["hosts"]:
            if h["host"] in gone_or_new or not h["old"] or not h["new"]:
                continue
            ch.append(Change("host_control", direction(h["old"], h["new"]), cid, h["host"], h["old"], h["new"],
                             f"{h['host']}: control {cid} {lbl(h['old'])} → {lbl(h['new'])}"))
        for f in it["new_findings"]:
            ch.append(Change("finding", WORSE, cid, f["host"], None, f["status"],
                             f"{f['host']}: new finding {f['rule']} ({cid}): {_txt(f.get('detail'), lang)}"))
        for f in it["resolved_findings"]:
            ch.append(Change("finding", BETTER, cid, f["host"], f["was"], f["status"],
                             f"{f['host']}: finding {f['rule']} ({cid}) resolved"))
        for f in it.get("unverified_findings") or []:
            ch.append(Change("finding", CHANGED, cid, f["host"], f["was"], f["status"],
                             f"{f['host']}: finding {f['rule']} ({cid}) no longer evidenced ({lbl(f['status'])})"))
        for f in it["changed_findings"]:
            ch.append(Change("finding", CHANGED, cid, f["host"], None, None,
                             f"{f['host']}: finding {f['rule']} ({cid}) now: {_txt(f.get('new'), lang)}"))
    ports = diff.get("ports") or {}
    for verb, key, dirn in (("open", "opened", WORSE), ("closed", "closed", BETTER)):
        for p in ports.get(key) or []:
            src = str(p["source"])
            local = src.startswith("listen@") and _loopback(str(p["address"]))
            where = f"from {src[5:]}" if src.startswith("nmap@") else f"on {src[7:]}"
            host = src[7:] if src.startswith("listen@") else None
            ch.append(Change("port", CHANGED if local else dirn, f"{p['address']} {p['proto']}/{p['port']}", host,
                             None if verb == "open" else "open", verb,
                             f"port {p['address']} {p['proto']}/{p['port']} {p.get('service') or ''} "
                             f"{'now open' if verb == 'open' else 'no longer open'} {where}".replace("  ", " ")))
    certs = diff.get("certificates") or {}
    for key, what in (("added", "new certificate"), ("removed", "certificate gone"), ("changed", "certificate replaced")):
        for x in certs.get(key) or []:
            ch.append(Change("certificate", CHANGED, x["endpoint"], None, None, None, f"{what} at {x['endpoint']}"))
    up, uc = _undeclared(previous), _undeclared(current)
    if up is not None and uc is not None:
        for v, a in sorted(uc - up):
            ch.append(Change("network_host", WORSE, a, None, "absent", "present",
                             f"new live host {a} not in the inventory (seen from {v})"))
        for v, a in sorted(up - uc):
            ch.append(Change("network_host", BETTER, a, None, "present", "absent",
                             f"undeclared host {a} no longer seen from {v}"))
    return d

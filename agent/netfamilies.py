"""The network probe families (nmap, sslyze, HTTP) as a registry: family name → function, deadline from the inventory.

Why a registry: the same family runs in two places — in the scanning process (single-process mode) and in a
collection worker of a zone (distributed mode, ``agent.dist``) — and a new family is one entry here, not one more
branch in each of them. A :class:`NetJob` is everything a family needs, as plain data, so it can travel in a task.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from common.scope import Scope
from policies.netview import normalize_url
from probes.base import Fact, FactStatus, not_collected
from probes.transport import describe_error


@dataclass
class NetJob:
    """One vantage's share of the network work: what to scan and with which inventory options."""

    vantage: str
    scope: Scope
    networks: list[dict[str, Any]] = field(default_factory=list)  # {name, cidr, zone}
    known: dict[str, str] = field(default_factory=dict)  # declared address → host name (nmap labels)
    endpoints: list[dict[str, Any]] = field(default_factory=list)  # TLS {host, port, server_name, name, external_institution}
    urls: list[str] = field(default_factory=list)
    nmap: dict[str, Any] = field(default_factory=dict)
    tls_options: dict[str, Any] = field(default_factory=dict)
    web_options: dict[str, Any] = field(default_factory=dict)
    progress: Optional[Callable[[str], None]] = None

    def to_json(self) -> dict[str, Any]:
        return {"vantage": self.vantage, "scope": self.scope.to_json(), "networks": self.networks,
                "known": self.known, "endpoints": self.endpoints, "urls": self.urls, "nmap": self.nmap,
                "tls_options": self.tls_options, "web_options": self.web_options}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "NetJob":
        sc = d.get("scope") or {}
        return cls(vantage=str(d["vantage"]), scope=Scope.parse(sc.get("allow") or [], sc.get("deny") or []),
                   networks=list(d.get("networks") or []), known=dict(d.get("known") or {}),
                   endpoints=list(d.get("endpoints") or []), urls=list(d.get("urls") or []),
                   nmap=dict(d.get("nmap") or {}), tls_options=dict(d.get("tls_options") or {}),
                   web_options=dict(d.get("web_options") or {}))

    def say(self, msg: str) -> None:
        if self.progress:
            self.progress(msg)


def run_scan(job: NetJob) -> Fact:
    from probes.net import nmap_scan

    job.say(f"network: scanning {len(job.networks)} network(s) from vantage {job.vantage!r}")
    settings = dict(job.nmap)
    overall = float(settings.pop("overall_timeout", 1800))
    return nmap_scan.scan_networks(job.networks, job.scope, job.known, nmap_scan.NmapOptions(**settings),
                                   job.vantage, time.monotonic() + overall)


def run_tls(job: NetJob) -> Fact:
    from probes.net import tls

    if not job.endpoints:
        return Fact("tls", FactStatus.COLLECTED, {"endpoints": []}, source="sslyze",
                    reason="no TLS endpoint declared in the inventory or found open by the scan")
    job.say(f"tls: assessing {len(job.endpoints)} endpoint(s)")
    settings = dict(job.tls_options)
    deadline = float(settings.pop("deadline", tls.DEFAULT_DEADLINE))
    fact = tls.assess_tls(job.endpoints, job.scope, tls.TlsOptions(**settings), time.monotonic() + deadline)
    declared = {(e["host"], e["port"]): e for e in job.endpoints}
    for ep in fact.data.get("endpoints", []):
        src = declared.get((ep.get("host"), ep.get("port")), {})
        ep["external_institution"] = bool(src.get("external_institution"))
        ep["name"] = src.get("name")
        ep["vantage"] = job.vantage
    return fact


def run_web(job: NetJob) -> Fact:
    from probes.net import web

    if not job.urls:
        return Fact("web", FactStatus.COLLECTED, {"urls": []}, source="http",
                    reason="no web URL declared in the inventory or web port found open by the scan")
    job.say(f"web: checking {len(job.urls)} URL(s)")
    opts = web.WebOptions(**job.web_options)
    fact = web.check_web(job.urls, job.scope, opts, time.monotonic() + opts.deadline)
    for u in fact.data.get("urls", []):
        u["vantage"] = job.vantage
    return fact


@dataclass(frozen=True)
class Family:
    """``only`` is the ``--only`` word that selects it; ``fact`` the fact name it produces."""

    fact: str
    only: str
    run: Callable[[NetJob], Fact]
    failure: str  # how a crash of the family reads in the fact's reason

    def deadline(self, job: NetJob) -> float:
        """Seconds the family may take, from the inventory's own options (the worker and controller bound)."""
        if self.fact == "network_scan":
            return float(job.nmap.get("overall_timeout", 1800))
        if self.fact == "tls":
            from probes.net.tls import DEFAULT_DEADLINE

            return float(job.tls_options.get("deadline", DEFAULT_DEADLINE))
        from probes.net.web import WebOptions

        return float(WebOptions(**job.web_options).deadline)

    def collect(self, job: NetJob) -> Fact:
        """The family's fact; a crash becomes a not-collected fact with the reason, never an exception."""
        try:
            return self.run(job)
        except Exception as e:
            return not_collected(self.fact, f"{self.failure}: {describe_error(e)}")


#: in run order: the scan first, because TLS and web also assess what it finds open
REGISTRY: dict[str, Family] = {
    "network_scan": Family("network_scan", "network", run_scan, "network scan failed"),
    "tls": Family("tls", "tls", run_tls, "TLS assessment failed"),
    "web": Family("web", "web", run_web, "web checks failed"),
}


def wanted(job: NetJob, only: tuple[str, ...]) -> dict[str, bool]:
    """Which families this job runs before a scan result is known (tls/web may still follow a scan)."""
    return {"network_scan": "network" in only and bool(job.networks),
            "tls": "tls" in only and bool(job.endpoints),
            "web": "web" in only and bool(job.urls)}


def follow_scan(job: NetJob, scan: dict[str, Any]) -> None:
    """Add what the scan found open to the job's TLS endpoints and URLs (each once)."""
    if scan.get("status") not in ("collected", "partial"):
        return
    from probes.net import tls

    seen = {(e["host"], e["port"]) for e in job.endpoints}
    for e in tls.tls_ports_from_scan(scan.get("data") or {}):
        if (e["host"], e["port"]) not in seen:
            job.endpoints.append(e)
            seen.add((e["host"], e["port"]))
    job.urls = list(dict.fromkeys(normalize_url(u) for u in job.urls))
    job.urls += [u for u in web_urls_from_scan(scan) if u not in job.urls]


WEB_PORTS = {80: "http", 443: "https", 8000: "http", 8008: "http", 8080: "http", 8443: "https", 8888: "http"}


def web_urls_from_scan(network_scan: dict[str, Any]) -> list[str]:
    """Open ports that nmap saw speaking HTTP (or that sit on a usual web port) as URLs to check."""
    urls = []
    for scan in (network_scan.get("data") or {}).get("scans", []) or []:
        for h in scan.get("hosts", []) or []:
            for p in h.get("ports", []) or []:
                if p.get("proto") != "tcp" or p.get("state") != "open":
                    continue
                svc = (p.get("service") or "").lower()
                tls = p.get("tunnel") == "ssl" or svc in ("https", "ssl/http", "https-alt")
                if "http" in svc or p["port"] in WEB_PORTS:
                    if p.get("method") == "table" and p["port"] not in WEB_PORTS:
                        continue
                    scheme = "https" if tls or (WEB_PORTS.get(p["port"]) == "https" and svc != "http") else "http"
                    host = h["address"] if ":" not in h["address"] else f"[{h['address']}]"
                    urls.append(normalize_url(f"{scheme}://{host}:{p['port']}/"))
    return sorted(set(urls))

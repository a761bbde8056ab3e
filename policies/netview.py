"""What the network probes saw, attributed to the inventory host that owns it.

Why: a host is judged on everything that answers on its addresses, not only on the one address
the inventory uses to log in. An internal server with a second, public address on an interface
is reachable from outside through that address; its TLS endpoints and URLs are its own, and an
endpoint nobody owns is an asset the inventory does not know (3.1.1).

A host **owns** its declared address, the aliases the inventory declares (``addresses:`` — NAT,
VIPs, load-balancer front ends) and every address its interfaces report (``interfaces`` and
``identity`` facts; loopback and link-local addresses excepted: every host has them).

The same endpoint seen from several vantages (or declared and also found) is **one** entry with the
``vantages`` that saw it; URLs are compared with default ports removed (``http://a:80/`` is
``http://a/``). Two observations of one endpoint that disagree (say a different certificate from
outside) stay two entries, each with its vantages.

A **cleartext service** is an endpoint that speaks a protocol without encryption: a STARTTLS-capable
service that refused the upgrade (FTP without AUTH TLS, SMTP without STARTTLS …), telnet and the
r-services, and plain HTTP serving content without a redirect to HTTPS. It is a finding of its own,
not a TLS endpoint that could not be assessed.
"""
from __future__ import annotations

import ipaddress
import json
import re
from typing import Any, Iterable, Mapping, Optional
from urllib.parse import urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
#: services with no encrypted variant (nmap service names, and their usual ports when nmap only guessed)
CLEARTEXT_SERVICES = {"telnet": 23, "login": 513, "shell": 514, "exec": 512, "rlogin": 513, "rsh": 514,
                      "rexec": 512}
CLEARTEXT_PORTS = {23: "telnet", 512: "exec", 513: "login", 514: "shell"}
WEB_PORTS = (80, 443, 8000, 8008, 8080, 8443, 8888)
#: services whose protocol is itself encrypted (nmap service names); anything else needs a TLS assessment
ENCRYPTED_SERVICES = {"ssh", "https", "https-alt", "ssl/http", "imaps", "pop3s", "smtps", "submissions", "ldaps",
                      "ftps", "ftps-data", "ircs", "nntps", "xmpps"}


def _ip(text: Any) -> Optional[str]:
    try:
        return str(ipaddress.ip_address(str(text).split("/", 1)[0].split("%", 1)[0]))
    except ValueError:
        return None


def _incidental(ip: str) -> bool:
    a = ipaddress.ip_address(ip)
    return a.is_loopback or a.is_link_local or a.is_unspecified


def host_addresses(meta: Mapping[str, Any], facts: Mapping[str, Any]) -> list[str]:
    """Every address the host owns (see the module docstring). ``facts``: probe name → fact data."""
    out: list[str] = []

    def add(a: Any, interface: bool) -> None:
        ip = _ip(a) if a is not None else None
        if ip is None:
            if a and not interface and str(a) not in out:
                out.append(str(a))  # a declared name: matched as written
            return
        if interface and _incidental(ip):
            return
        if ip not in out:
            out.append(ip)

    add(meta.get("address"), False)
    for a in meta.get("addresses") or []:
        add(a, False)
    for i in ((facts.get("interfaces") or {}).get("interfaces") or []):
        for a in i.get("addresses") or []:
            add(a.get("address") if isinstance(a, dict) else a, True)
    for i in ((facts.get("identity") or {}).get("interfaces") or []):
        for a in i.get("addresses") or []:
            add(a, True)
    return out


def normalize_url(url: str) -> str:
    """Scheme and host in lower case, the default port dropped, an empty path as ``/``."""
    try:
        p = urlsplit(url)
        port = p.port
    except ValueError:
        return url
    scheme = (p.scheme or "").lower()
    host = (p.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, p.path or "/", p.query, ""))


def _vantages(e: Mapping[str, Any]) -> list[str]:
    v = list(e.get("vantages") or [])
    if e.get("vantage") and e["vantage"] not in v:
        v.append(e["vantage"])
    return v


def _tls_fingerprint(e: Mapping[str, Any]) -> str:
    cert = (e.get("certificate") or {}).get("chain") or [{}]
    return json.dumps([e.get("status"), e.get("protocols"),
                       {k: sorted(c.get("name") for c in v) for k, v in (e.get("cipher_suites") or {}).items()},
                       cert[0].get("sha256"), e.get("vulnerabilities"), e.get("client_cert_requested")],
                      sort_keys=True, default=str)


def _web_fingerprint(e: Mapping[str, Any]) -> str:
    return json.dumps([e.get("status"), e.get("status_code"), normalize_url(e.get("final_url") or ""),
                       (e.get("https_redirect") or {}).get("redirects_to_https"), e.get("discloses_version"),
                       (e.get("directory_listing") or {}).get("found"),
                       sorted(p.get("id") for p in e.get("default_pages") or []), e.get("trace_enabled")],
                      sort_keys=True, default=str)


def _dedupe(entries: Iterable[Mapping[str, Any]], key: Any, fingerprint: Any, ok: str) -> list[dict[str, Any]]:
    """One entry per key and distinct observation; unassessed sightings join an assessed one of the same key."""
    groups: dict[Any, list[dict[str, Any]]] = {}
    order: list[Any] = []
    for e in entries:
        k = key(e)
        if k not in groups:
            groups[k] = []
            order.append(k)
        fp = fingerprint(e)
        same = next((g for g in groups[k] if g["_fp"] == fp), None)
        if same is None:
            groups[k].append({**e, "vantages": _vantages(e), "_fp": fp})
        else:
            same["vantages"] = sorted(set(same["vantages"]) | set(_vantages(e)))
    out = []
    for k in order:
        g = groups[k]
        good = [x for x in g if x.get("status") == ok]
        if good:
            for x in g:
                if x.get("status") != ok:  # seen but not assessed from there: a sighting, not a second entry
                    good[0]["vantages"] = sorted(set(good[0]["vantages"]) | set(x["vantages"]))
                    good[0].setdefault("not_assessed_from", []).extend(
                        v for v in x["vantages"] if v not in good[0].get("not_assessed_from", []))
            g = good
        for x in g:
            x.pop("_fp", None)
            x["vantages"] = sorted(set(x["vantages"]))
            out.append(x)
    return out


def dedupe_endpoints(endpoints: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """TLS endpoints: one per (address, port, server name) and distinct observation, with its vantages."""
    return _dedupe(endpoints, lambda e: (_ip(e.get("ip")) or e.get("host"), int(e.get("port") or 0),
                                         e.get("server_name")), _tls_fingerprint, "assessed")


def dedupe_sites(sites: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Web URLs: one per normalised URL and distinct observation, with its vantages (URL shown normalised)."""
    out = _dedupe(({**s, "url": normalize_url(s.get("url") or "")} for s in sites),
                  lambda s: s["url"], _web_fingerprint, "checked")
    return out


def _url_host(url: str) -> Optional[str]:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def _owner_of(addr: Optional[str], owners: Mapping[str, str]) -> Optional[str]:
    if addr is None:
        return None
    return owners.get(_ip(addr) or addr)


def _ok_scans(run_ctx: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [s for s in ((run_ctx.get("network_scan") or {}).get("scans") or []) if not s.get("error")]


def _inside(addr: str, cidr: Optional[str]) -> bool:
    try:
        return ipaddress.ip_address(addr) in ipaddress.ip_network(cidr or "", strict=False)
    except ValueError:
        return False


def cleartext(ports: list[dict[str, Any]], endpoints: list[dict[str, Any]], sites: list[dict[str, Any]]
              ) -> tuple[list[dict[str, Any]], list[str]]:
    """(cleartext services, endpoints whose encryption could not be told) from a subject's own observations."""
    found: dict[tuple[str, int], dict[str, Any]] = {}

    def add(addr: str, port: int, proto: str, why: str, vantages: list[str]) -> None:
        cur = found.setdefault((addr, port), {"address": addr, "port": port, "protocol": proto, "why": why,
                                              "vantages": []})
        cur["vantages"] = sorted(set(cur["vantages"]) | set(vantages))

    for e in endpoints:
        if e.get("status") == "cleartext":
            add(_ip(e.get("ip")) or str(e.get("host")), int(e["port"]), e.get("starttls") or "?",
                e.get("reason") or "TLS upgrade refused", _vantages(e))
    for p in ports:
        svc = (p.get("service") or "").lower()
        if p.get("proto") == "tcp" and (svc in CLEARTEXT_SERVICES or (
                int(p["port"]) in CLEARTEXT_PORTS and (not svc or p.get("method") != "probed"))):
            add(p["address"], int(p["port"]), svc or CLEARTEXT_PORTS[int(p["port"])], "no encrypted variant",
                [p["vantage"]] if p.get("vantage") else [])
    for s in sites:
        if (s.get("status") == "checked" and str(s.get("url", "")).startswith("http://")
                and isinstance(s.get("status_code"), int) and s["status_code"] < 300
                and not str(s.get("final_url") or "").startswith("https://")):
            u = urlsplit(s["url"])
            add(_ip(s.get("ip")) or (u.hostname or ""), u.port or 80, "http", "content served over plain HTTP",
                _vantages(s))
    unclear = [f"{e.get('host')}:{e.get('port')}" for e in endpoints
               if e.get("starttls") and e.get("status") == "unknown"]
    unclear += [s["url"] for s in sites if str(s.get("url", "")).startswith("http://") and s.get("status") != "checked"]
    out = sorted(found.values(), key=lambda c: (str(c["address"]), c["port"]))
    for c in out:
        c["label"] = f"{c['address']}:{c['port']}/{c['protocol']}"
    return out, unclear


def encryption_unverified(ports: list[dict[str, Any]], endpoints: list[dict[str, Any]], sites: list[dict[str, Any]],
                          clear: list[dict[str, Any]]) -> list[str]:
    """Open TCP ports whose channel is neither known encrypted nor known cleartext: a database port, an unknown
    service. 15.4.1 ("secure communications") cannot pass over them — nothing showed their channel is protected."""
    told = {(str(c["address"]), int(c["port"])) for c in clear}
    told |= {(_ip(e.get("ip")) or str(e.get("host")), int(e["port"])) for e in endpoints
             if e.get("status") in ("assessed", "cleartext")}
    for s in sites:
        u = urlsplit(str(s.get("url", "")))  # HTTPS served, or plain HTTP that only redirects (else: in clear)
        if s.get("status") == "checked":
            told.add((_ip(s.get("ip")) or (u.hostname or ""), u.port or (443 if u.scheme == "https" else 80)))
    out = []
    for p in open_ports(ports):
        svc = (p.get("service") or "").lower()
        if p.get("proto", "tcp") != "tcp" or svc in ENCRYPTED_SERVICES or svc.startswith("ssl/"):
            continue
        if (str(p["address"]), int(p["port"])) not in told:
            out.append(f"{p['address']}:{p['port']}/{svc or '?'}")
    return out


def open_ports(ports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Open ports once per (address, port, protocol), with the vantages that saw them (``label``: "a:p [v, …]")."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for p in ports:
        k = (p.get("address"), p.get("port"), p.get("proto", "tcp"))
        cur = out.setdefault(k, {"address": k[0], "port": k[1], "proto": k[2], "service": p.get("service"),
                                 "vantages": []})
        if p.get("vantage") and p["vantage"] not in cur["vantages"]:
            cur["vantages"].append(p["vantage"])
    for c in out.values():
        c["vantages"].sort()
        c["label"] = f"{c['address']}:{c['port']}" + (f" [{', '.join(c['vantages'])}]" if c["vantages"] else "")
    return list(out.values())


def _tls_view(endpoints: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for e in endpoints:
        e["label"] = f"{e.get('host')}:{e.get('port')}" + (f" [{', '.join(e['vantages'])}]" if e.get("vantages") else "")
    return [e for e in endpoints if e.get("status") != "cleartext"]


def host_view(meta: Mapping[str, Any], run_ctx: Mapping[str, Any], owned: list[str]) -> dict[str, Any]:
    """``net``, ``tls_endpoints``, ``web_sites`` and ``cleartext`` of one host: what was seen on the addresses it owns.

    ``net.by_vantage`` has an entry only for vantages whose finished scans covered one of the host's
    addresses, so "nothing open from outside" is only ever said after looking (``net.covered`` says where).
    """
    mine = set(owned)
    ports: list[dict[str, Any]] = []
    covered: dict[Optional[str], list[str]] = {}  # by vantage
    seen: set[tuple[Any, ...]] = set()
    for scan in _ok_scans(run_ctx):
        v = scan.get("vantage")
        hits = [a for a in owned if _ip(a) and _inside(a, scan.get("cidr"))]
        if not hits:
            continue
        covered.setdefault(v, [])
        covered[v] += [a for a in hits if a not in covered[v]]
        for h in scan.get("hosts", []) or []:
            addr = _ip(h.get("address"))
            if addr not in mine:
                continue
            for p in h.get("ports", []) or []:
                k = (addr, p.get("port"), p.get("proto"), v)
                if p.get("state") in ("open", "open|filtered") and k not in seen:
                    seen.add(k)
                    ports.append({**p, "address": addr, "vantage": v})
    endpoints = [e for e in dedupe_endpoints((run_ctx.get("tls") or {}).get("endpoints") or [])
                 if (_ip(e.get("ip")) or e.get("host")) in mine or e.get("host") in mine]
    sites = [s for s in dedupe_sites((run_ctx.get("web") or {}).get("urls") or [])
             if (_ip(s.get("ip")) or _url_host(s["url"])) in mine or _url_host(s["url"]) in mine]
    clear, unclear = cleartext(ports, endpoints, sites)
    by_vantage = {v: [p for p in ports if p["vantage"] == v] for v in covered}
    return {"net": {"scanned": bool(covered), "addresses": list(owned), "covered": covered,
                    "vantages": list(covered), "ports": ports, "open": open_ports(ports), "by_vantage": by_vantage,
                    "external_web_ports": [p for p in by_vantage.get("external", [])
                                           if p.get("proto", "tcp") == "tcp" and p.get("port") in WEB_PORTS]},
            "tls_endpoints": _tls_view(endpoints), "web_sites": sites, "cleartext": clear,
            "cleartext_unclear": unclear, "encryption_unverified": encryption_unverified(ports, endpoints, sites, clear),
            "evidence_labels": _labels(endpoints, sites)}


def network_view(run_ctx: Mapping[str, Any], owners: Mapping[str, list[str]]) -> dict[str, Any]:
    """The ``_network`` row's data: live addresses nobody owns (3.1.1, each listed once with the vantages
    that saw it), and the TLS endpoints, URLs and cleartext services nobody owns. ``owners``: host → addresses."""
    by_addr: dict[str, str] = {}
    for name, addrs in owners.items():
        for a in addrs:
            by_addr.setdefault(_ip(a) or a, name)
    scans = _ok_scans(run_ctx)
    live: dict[str, dict[str, Any]] = {}
    ports: list[dict[str, Any]] = []
    for s in scans:
        for h in s.get("hosts", []) or []:
            addr = _ip(h.get("address"))
            if not addr or not h.get("live"):
                continue
            rec = live.setdefault(addr, {"address": addr, "owner": by_addr.get(addr), "vantages": [], "ports": []})
            if s.get("vantage") not in rec["vantages"]:
                rec["vantages"].append(s.get("vantage"))
            for p in h.get("ports", []) or []:
                if p.get("state") == "open" and p.get("port") not in rec["ports"]:
                    rec["ports"].append(p.get("port"))
                if rec["owner"] is None and p.get("state") in ("open", "open|filtered"):
                    ports.append({**p, "address": addr, "vantage": s.get("vantage")})
    ordered = sorted(live.values(), key=lambda r: ipaddress.ip_address(r["address"]))
    for r in ordered:
        r["vantages"] = sorted(v for v in r["vantages"] if v)
        r["ports"] = sorted(r["ports"])
        r["label"] = r["address"] + (f" (ports {', '.join(map(str, r['ports']))}; seen from "
                                     f"{', '.join(r['vantages'])})" if r["ports"] else
                                     f" (seen from {', '.join(r['vantages'])})")
    missing = []
    for name, addrs in owners.items():
        inside = [a for a in addrs if _ip(a) and any(_inside(a, s.get("cidr")) for s in scans)]
        if inside and not any(_ip(a) in live for a in inside):
            missing.append(f"{name} ({', '.join(inside)})")
    endpoints = [e for e in dedupe_endpoints((run_ctx.get("tls") or {}).get("endpoints") or [])
                 if _owner_of(e.get("ip") or e.get("host"), by_addr) is None
                 and _owner_of(e.get("host"), by_addr) is None]
    sites = [s for s in dedupe_sites((run_ctx.get("web") or {}).get("urls") or [])
             if _owner_of(s.get("ip") or _url_host(s["url"]), by_addr) is None
             and _owner_of(_url_host(s["url"]), by_addr) is None]
    clear, unclear = cleartext(ports, endpoints, sites)
    vantages = sorted({str(s["vantage"]) for s in scans if s.get("vantage")})
    return {"network": {"scanned": [s.get("cidr") for s in scans], "live": [r["address"] for r in ordered],
                        "hosts": ordered, "undeclared": [r for r in ordered if r["owner"] is None],
                        "inventory_missing": missing},
            # the network row has no addresses of its own to cover: it judges what is there (nothing: n/a)
            "net": {"scanned": True, "scans_finished": bool(scans), "addresses": [],
                    "covered": {v: [] for v in vantages},
                    "vantages": vantages, "ports": ports, "open": open_ports(ports),
                    "by_vantage": {v: [p for p in ports if p["vantage"] == v] for v in vantages},
                    "external_web_ports": [p for p in ports if p["vantage"] == "external"
                                           and p.get("port") in WEB_PORTS]},
            "tls_endpoints": _tls_view(endpoints), "web_sites": sites, "cleartext": clear,
            "cleartext_unclear": unclear, "encryption_unverified": encryption_unverified(ports, endpoints, sites, clear),
            "evidence_labels": _labels(endpoints, sites)}


def _component(label: str) -> str:
    """The label as the bundle writes it into an evidence file name (collectors.bundle.safe_component)."""
    return re.sub(r"[^\w.\-가-힣]", "_", label).strip("._")[:80]


_PER_TARGET = re.compile(r"_network_(tls|web)_")


def _labels(endpoints: list[dict[str, Any]], sites: list[dict[str, Any]]) -> list[str]:
    return sorted({_component(str(e["evidence"])) for e in endpoints + sites if e.get("evidence")})


def own_evidence(files: Iterable[str], view: Mapping[str, Any]) -> list[str]:
    """The evidence files a subject's verdict rests on: per-endpoint TLS and per-URL web files only for the
    endpoints and URLs in its view (``evidence_labels``); every other file (nmap XML …) as it is."""
    names = view.get("evidence_labels") or []
    out = []
    for f in files:
        stem = f.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        if not _PER_TARGET.search(stem) or any(stem.endswith("_network_" + n) for n in names):
            out.append(f)
    return out

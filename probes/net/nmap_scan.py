"""Network scan: which hosts answer in each declared network, and which ports and services they expose.

Why: the guide asks for an asset list that matches reality (3.1.1), for no service
beyond the system's purpose (14.3.1), for no remote-administration port reachable
from where it must not be (14.2.1), and for a DMZ that really separates zones
(15.1.1). All four are answered from the same evidence: an nmap scan of each
declared network, from a recorded vantage point, compared with the inventory.

How: one nmap invocation per network, so nmap parallelises the whole range itself
(no host-by-host loop). nmap writes its XML to a temporary file; the file is read
back with an incremental parser that keeps only a compact record per *live* host
(closed ports and dead addresses are dropped as they stream past), and the XML
itself becomes the evidence. ``python-nmap`` (``nmap.PortScanner``) locates and
identifies the nmap binary; its ``scan()`` is not used for the scan because it
reads the whole XML from a pipe into memory, builds a dict of every host, and on
timeout kills nmap and discards everything it had found.

Every network is checked against the :class:`common.scope.Scope` before nmap starts,
and nmap always gets ``-n`` (no reverse DNS: no packet to a resolver outside scope),
``--max-retries`` and ``--host-timeout``; the whole call is bounded by ``deadline``
(``time.monotonic()`` seconds), after which nmap is killed and what it had written
is kept, with an error saying so.

"Live" host, defined
--------------------
Every 127.x address answers on loopback (the kernel replies for the whole /8), so
"nmap says up" proves nothing there. A host is **live** when

* it has at least one open port (TCP ``open``, or UDP ``open``), or
* it answered host discovery on a non-loopback network (nmap state ``up`` with a
  reason other than ``user-set``/``localhost-response``; ``user-set`` is what
  ``-Pn`` produces and proves nothing either).

Only live hosts count as present: ``undeclared_hosts`` lists live hosts absent from
the inventory, ``inventory_missing`` lists inventory addresses in the network that
are not live. ``hosts`` holds every live host plus every inventory host of the
network (the latter with ``live: false`` when not seen) plus every host nmap abandoned
at ``--host-timeout`` (its ports unknown, named in the scan's ``error``), never the
silent rest.

Fact ``network_scan`` (source ``nmap``), ``data``::

    {"scans": [{
        "network": str,              # inventory name of the network
        "cidr": str,                 # as scanned, e.g. "127.0.5.0/24"
        "zone": str,                 # inventory zone (dmz, internal, ...)
        "vantage": str,              # where the scanner stood (free text from the caller)
        "scan_type": "syn" | "connect",
        "privileged": bool,          # scanner ran as root (SYN/UDP need it)
        "started": str, "finished": str,   # ISO-8601 UTC
        "nmap_seconds": float,       # wall time of the nmap run itself
        "nmap_args": [str],          # argv as run (XML path replaced by "<xml>")
        "nmap_version": str | null,
        "ports_scanned": str,        # "top:1000" or the explicit TCP spec
        "udp_ports": str | null,     # UDP spec scanned, null when none
        "udp_skipped": str | null,   # why UDP was asked for but not scanned
        "discovery": "ping" | "skipped (-Pn)",
        "hosts_up": int,             # hosts nmap reported up (loopback: every address)
        "hosts": [{
            "address": str, "in_inventory": bool, "inventory_host": str | null,
            "state": "up" | "down" | "unknown",  # nmap's host state; inventory hosts nmap did not
                                     # report: "down", or "unknown" when the scan did not finish
            "reason": str | null,    # nmap's reason (echo-reply, syn-ack, localhost-response, user-set ...)
            "live": bool,            # see "Live host, defined"
            "timed_out": bool,       # nmap gave up on it (--host-timeout): its ports are unknown
            "ports": [{              # open TCP ports, open and open|filtered UDP ports
                "port": int, "proto": "tcp" | "udp", "state": str,
                "service": str | null, "product": str | null, "version": str | null,
                "extrainfo": str | null,
                "tunnel": str | null,          # "ssl" when nmap saw TLS under the service
                "method": "probed" | "table" | null,  # "table": name guessed from the port number only
            }],
        }],
        "undeclared_hosts": [str],   # live, not in the inventory
        "inventory_missing": [str],  # in the inventory and this network, not live
        "hosts_timed_out": [str],    # hosts nmap abandoned at --host-timeout (also named in "error")
        "error": str | null,         # set when the scan failed or was cut short
    }]}

The fact is COLLECTED when every scan finished, PARTIAL when some did (or a scan
was cut short but left hosts), NOT_COLLECTED when none produced anything; the
reason lists each failed scan. Evidence: one XML file per scan (guide items
14.3.1, 3.1.1, 15.1.1, 14.2.1).
"""
from __future__ import annotations

import ipaddress
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Optional, Sequence

from common.scope import Scope

from ..base import Evidence, Fact, FactStatus

PROBE = "network_scan"
ITEMS = ("14.3.1", "3.1.1", "15.1.1", "14.2.1")

_PORTSPEC = re.compile(r"^[0-9]{1,5}(-[0-9]{1,5})?(,[0-9]{1,5}(-[0-9]{1,5})?)*$")
_HOST_TIMEOUT = re.compile(r"^[0-9]+(ms|s|m|h)?$")
#: nmap reasons that say nothing about a host being there.
_NO_PROOF_REASONS = {"user-set", "localhost-response"}
_NMAP_SERVICES = ("/usr/share/nmap/nmap-services", "/usr/local/share/nmap/nmap-services")


@dataclass(frozen=True)
class NmapOptions:
    """How to scan. Defaults suit a production network: quick, light, few retries.

    Attributes:
        ports: explicit TCP ports/ranges ("21-23,80,443"); overrides ``top_ports``.
        top_ports: scan nmap's N most common TCP ports when ``ports`` is not set.
        udp_ports: short UDP list ("137,161,500"), scanned only as root; None: no UDP.
        service_detection: ``-sV`` on open ports.
        version_intensity: ``--version-intensity`` 0-9 (2 = nmap's ``--version-light``).
        timing: ``-T`` template 0-5.
        max_retries: ``--max-retries`` (port probe retransmissions).
        host_timeout: ``--host-timeout`` (nmap syntax: "300s", "5m"); a host that takes
            longer is abandoned by nmap and reported without results.
        min_rate / max_rate: packets per second bounds, None: nmap decides.
        skip_discovery: ``-Pn`` (treat every address as up; for networks that drop pings).
            Hosts "up" only by this assumption are not live.
        scan_type: "auto" (SYN as root, else connect), "syn" or "connect".
        nmap_path: the nmap binary; None: found on PATH.
        max_xml_bytes: cap of the XML kept as evidence (the fact is parsed from the whole file).
    """

    ports: Optional[str] = None
    top_ports: int = 1000
    udp_ports: Optional[str] = None
    service_detection: bool = True
    version_intensity: int = 2
    timing: int = 4
    max_retries: int = 1
    host_timeout: str = "300s"
    min_rate: Optional[int] = None
    max_rate: Optional[int] = None
    skip_discovery: bool = False
    scan_type: str = "auto"
    nmap_path: Optional[str] = None
    max_xml_bytes: int = 32 * 1024 * 1024

    def validate(self) -> None:
        """Reject values that would change what nmap does beyond these options."""
        for name, spec in (("ports", self.ports), ("udp_ports", self.udp_ports)):
            if spec is not None and not _PORTSPEC.match(spec):
                raise ValueError(f"NmapOptions.{name}: {spec!r} is not a port list like '22,80,8000-8100'")
        if not 1 <= self.top_ports <= 65535:
            raise ValueError("NmapOptions.top_ports must be 1..65535")
        if not 0 <= self.version_intensity <= 9:
            raise ValueError("NmapOptions.version_intensity must be 0..9")
        if not 0 <= self.timing <= 5:
            raise ValueError("NmapOptions.timing must be 0..5")
        if not 0 <= self.max_retries <= 10:
            raise ValueError("NmapOptions.max_retries must be 0..10")
        if not _HOST_TIMEOUT.match(self.host_timeout):
            raise ValueError(f"NmapOptions.host_timeout: {self.host_timeout!r} is not like '300s'")
        if self.scan_type not in ("auto", "syn", "connect"):
            raise ValueError("NmapOptions.scan_type must be auto, syn or connect")


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def find_nmap(opts: NmapOptions) -> tuple[Optional[str], Optional[str], Optional[str]]:
    """(path, version, problem): the nmap binary, checked by python-nmap (runs ``nmap -V`` only)."""
    import nmap  # python-nmap

    path = opts.nmap_path or shutil.which("nmap")
    if not path:
        return None, None, "nmap not found on PATH (install the nmap package)"
    try:
        ps = nmap.PortScanner(nmap_search_path=(path,))
    except nmap.PortScannerError as exc:
        return None, None, f"{path} is not a working nmap: {exc}"
    major, minor = ps.nmap_version()
    return path, f"{major}.{minor}", None


def top_tcp_ports(n: int, services_paths: Sequence[str] = _NMAP_SERVICES) -> Optional[str]:
    """nmap's N most frequent TCP ports as an explicit list (what ``--top-ports`` uses).

    Needed when UDP is scanned too: ``--top-ports`` would then apply to UDP as well.
    """
    for p in services_paths:
        try:
            with open(p, encoding="utf-8", errors="replace") as f:
                rows = []
                for line in f:
                    if line.startswith("#"):
                        continue
                    parts = line.split()
                    if len(parts) >= 3 and parts[1].endswith("/tcp"):
                        try:
                            rows.append((float(parts[2]), int(parts[1].split("/")[0])))
                        except ValueError:
                            continue
        except OSError:
            continue
        rows.sort(key=lambda r: -r[0])
        return ",".join(str(port) for port in sorted({port for _, port in rows[:n]}))
    return None


def build_args(
    cidr: str, opts: NmapOptions, privileged: bool, xml_path: str
) -> tuple[list[str], dict[str, Any]]:
    """nmap argv (without the binary) and what it means for the fact."""
    scan_type = opts.scan_type
    if scan_type == "auto":
        scan_type = "syn" if privileged else "connect"
    notes: dict[str, Any] = {"udp_skipped": None}
    if scan_type == "syn" and not privileged:
        scan_type = "connect"
        notes["scan_type_note"] = "SYN scan asked for without root: connect scan used"
    args = ["-n", "-oX", xml_path, "--no-stylesheet", "--reason", f"-T{opts.timing}",
            "--max-retries", str(opts.max_retries), "--host-timeout", opts.host_timeout]
    args.append("-sS" if scan_type == "syn" else "-sT")
    udp = opts.udp_ports
    if udp and not privileged:
        notes["udp_skipped"] = "UDP scan needs root; not scanned"
        udp = None
    if opts.ports:
        tcp_spec = opts.ports
        ports_label = opts.ports
    else:
        tcp_spec = None
        ports_label = f"top:{opts.top_ports}"
    if udp:
        args.append("-sU")
        if tcp_spec is None:
            tcp_spec = top_tcp_ports(opts.top_ports)
            if tcp_spec is None:
                raise RuntimeError("nmap-services not found: cannot combine top TCP ports with a UDP list")
        args += ["-p", f"T:{tcp_spec},U:{udp}"]
    elif tcp_spec is not None:
        args += ["-p", tcp_spec]
    else:
        args += ["--top-ports", str(opts.top_ports)]
    if opts.service_detection:
        args += ["-sV", "--version-intensity", str(opts.version_intensity)]
    if opts.skip_discovery:
        args.append("-Pn")
    if opts.min_rate:
        args += ["--min-rate", str(int(opts.min_rate))]
    if opts.max_rate:
        args += ["--max-rate", str(int(opts.max_rate))]
    if ipaddress.ip_network(cidr, strict=False).version == 6:
        args.append("-6")
    args.append(str(ipaddress.ip_network(cidr, strict=False)))
    notes.update(scan_type=scan_type, ports_scanned=ports_label, udp_ports=udp)
    return args, notes


def _attr(el: Optional[ET.Element], name: str) -> Optional[str]:
    if el is None:
        return None
    v = el.get(name)
    return v if v not in ("", None) else None


def parse_host(el: ET.Element) -> Optional[dict[str, Any]]:
    """Compact record of one ``<host>``: address, state, open ports."""
    addr = None
    for a in el.findall("address"):
        if a.get("addrtype") in ("ipv4", "ipv6"):
            addr = a.get("addr")
            break
    if not addr:
        return None
    status = el.find("status")
    ports = []
    for p in el.iterfind("ports/port"):
        st = _attr(p.find("state"), "state") or "unknown"
        proto = p.get("protocol") or "tcp"
        if not (st == "open" or (proto == "udp" and st == "open|filtered")):
            continue
        svc = p.find("service")
        try:
            portid = int(p.get("portid") or "")
        except ValueError:
            continue
        ports.append({
            "port": portid, "proto": proto, "state": st,
            "service": _attr(svc, "name"), "product": _attr(svc, "product"),
            "version": _attr(svc, "version"), "extrainfo": _attr(svc, "extrainfo"),
            "tunnel": _attr(svc, "tunnel"), "method": _attr(svc, "method"),
        })
    ports.sort(key=lambda x: (x["proto"], x["port"]))
    return {"address": str(ipaddress.ip_address(addr)), "state": _attr(status, "state") or "unknown",
            "reason": _attr(status, "reason"), "ports": ports, "timed_out": el.get("timedout") == "true"}


def is_live(host: Mapping[str, Any]) -> bool:
    """See the module docstring: an open port, or a real discovery answer off loopback."""
    if any(p["state"] == "open" for p in host["ports"]):
        return True
    if host["state"] != "up" or host.get("reason") in _NO_PROOF_REASONS:
        return False
    return not ipaddress.ip_address(host["address"]).is_loopback


def parse_xml(
    path: str, cidr: str, known: Mapping[str, str], complete: bool = True
) -> tuple[dict[str, Any], Optional[str]]:
    """Stream-parse nmap's XML file into the compact scan record; (record, problem).

    Only live hosts and inventory hosts are kept; each ``<host>`` element is freed
    once read, so memory follows the number of live hosts, not the range size.
    A truncated file (nmap killed) yields what was complete plus a problem.
    Inventory hosts nmap did not report are "down" when the scan ran to its end
    (``complete``), else "unknown" (the scan may not have reached them) and then
    not counted in ``inventory_missing``.
    """
    net = ipaddress.ip_network(cidr, strict=False)
    rec: dict[str, Any] = {"nmap_version": None, "hosts_up": 0, "finished_ok": False, "xml_written": True}
    hosts: dict[str, dict[str, Any]] = {}
    problem = None
    if not os.path.exists(path):
        rec["xml_written"] = False
        problem = "nmap wrote no XML"
    try:
        if not rec["xml_written"]:
            raise FileNotFoundError(path)
        ctx = ET.iterparse(path, events=("start", "end"))
        root = None
        for event, el in ctx:
            if event == "start":
                if root is None:
                    root = el
                    rec["nmap_version"] = el.get("version")
                continue
            if el.tag == "host":
                h = parse_host(el)
                if h is not None and ipaddress.ip_address(h["address"]) in net:
                    if h["state"] == "up":
                        rec["hosts_up"] += 1
                    h["live"] = is_live(h)
                    if h["live"] or h["address"] in known or h["timed_out"]:
                        hosts[h["address"]] = h
                el.clear()
                if root is not None:
                    # Drop the finished <host> from the tree so a /16 does not accumulate.
                    for child in list(root):
                        if child.tag in ("host", "hosthint"):
                            root.remove(child)
            elif el.tag == "finished":
                rec["finished_ok"] = el.get("exit", "success") == "success"
                if el.get("exit") == "error":
                    problem = f"nmap reported an error: {el.get('errormsg') or 'no message'}"
    except ET.ParseError as exc:
        problem = f"nmap XML incomplete ({exc})"
    except FileNotFoundError:
        pass
    except OSError as exc:
        problem = f"nmap XML not readable: {exc}"
    for addr, name in known.items():
        if addr in hosts or ipaddress.ip_address(addr) not in net:
            continue
        hosts[addr] = {"address": addr, "state": "down" if complete else "unknown", "reason": None,
                       "ports": [], "live": False,
                       "timed_out": False}
    out = []
    for addr in sorted(hosts, key=lambda a: ipaddress.ip_address(a)):
        h = hosts[addr]
        out.append({"address": addr, "in_inventory": addr in known, "inventory_host": known.get(addr),
                    "state": h["state"], "reason": h["reason"], "live": h["live"],
                    "timed_out": h["timed_out"], "ports": h["ports"]})
    rec["hosts"] = out
    rec["undeclared_hosts"] = [h["address"] for h in out if h["live"] and not h["in_inventory"]]
    rec["inventory_missing"] = [h["address"] for h in out
                                if h["in_inventory"] and not h["live"] and h["state"] != "unknown"]
    rec["hosts_timed_out"] = [h["address"] for h in out if h["timed_out"]]
    return rec, problem


def _normalise_known(known: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for addr, name in (known or {}).items():
        try:
            out[str(ipaddress.ip_address(addr))] = name
        except ValueError:
            continue  # inventory names that are not addresses cannot be matched to scan results
    return out


def _read_capped(path: str, cap: int) -> tuple[str, bool]:
    try:
        with open(path, "rb") as f:
            data = f.read(cap + 1)
    except OSError:
        return "", False
    return data[:cap].decode("utf-8", "replace"), len(data) > cap


def _run_nmap(argv: list[str], deadline: float) -> tuple[Optional[int], str, Optional[str]]:
    """Run nmap until it ends or the deadline; (exit code, stderr excerpt, problem)."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return None, "", "deadline reached before the scan started"
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=remaining)
        return proc.returncode, err.decode("utf-8", "replace")[-2000:], None
    except subprocess.TimeoutExpired:
        for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                _, err = proc.communicate(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            err = b""
        return None, (err or b"").decode("utf-8", "replace")[-2000:], \
            f"nmap stopped at the deadline after {remaining:.0f}s"


def scan_networks(
    networks: Sequence[Mapping[str, str]],
    scope: Scope,
    known: Mapping[str, str],
    opts: NmapOptions,
    vantage: str,
    deadline: float,
) -> Fact:
    """Scan each network (``name``, ``cidr``, ``zone``) with one nmap run; see the module docstring.

    Raises :class:`common.scope.ScopeError` before any packet when a network is not
    entirely inside ``scope``, and ValueError on invalid options.
    """
    opts.validate()
    # Scope first, for every network, before any nmap run.
    for n in networks:
        scope.check_network(n["cidr"], f"network {n.get('name', '?')}")
    known_n = _normalise_known(known)
    privileged = hasattr(os, "geteuid") and os.geteuid() == 0
    path, version, problem = find_nmap(opts)
    scans: list[dict[str, Any]] = []
    evidence: list[Evidence] = []
    for n in networks:
        cidr = str(ipaddress.ip_network(n["cidr"], strict=False))
        entry: dict[str, Any] = {
            "network": n.get("name", cidr), "cidr": cidr, "zone": n.get("zone"), "vantage": vantage,
            "scan_type": None, "privileged": privileged, "started": _now(), "finished": None,
            "nmap_seconds": None, "nmap_args": [], "nmap_version": version, "ports_scanned": None,
            "udp_ports": None, "udp_skipped": None,
            "discovery": "skipped (-Pn)" if opts.skip_discovery else "ping",
            "hosts_up": 0, "hosts": [], "undeclared_hosts": [], "inventory_missing": [],
            "hosts_timed_out": [], "error": None,
        }
        scans.append(entry)
        if problem or not path:
            entry["error"] = problem
            entry["finished"] = _now()
            continue
        scope.check_network(cidr, f"network {entry['network']}")  # defence in depth, right before use
        with tempfile.TemporaryDirectory(prefix="ea-nmap-") as tmp:
            xml_path = os.path.join(tmp, "scan.xml")
            try:
                args, notes = build_args(cidr, opts, privileged, xml_path)
            except RuntimeError as exc:
                entry["error"] = str(exc)
                entry["finished"] = _now()
                continue
            shown = [a if a != xml_path else "<xml>" for a in args]
            entry.update(scan_type=notes["scan_type"], ports_scanned=notes["ports_scanned"],
                         udp_ports=notes["udp_ports"], udp_skipped=notes["udp_skipped"],
                         nmap_args=shown)
            if "scan_type_note" in notes:
                entry["scan_type_note"] = notes["scan_type_note"]
            t0 = time.monotonic()
            rc, stderr, run_problem = _run_nmap([path] + args, deadline)
            entry["nmap_seconds"] = round(time.monotonic() - t0, 3)
            entry["finished"] = _now()
            rec, parse_problem = parse_xml(xml_path, cidr, known_n, complete=run_problem is None and rc == 0)
            xml_text, xml_cut = _read_capped(xml_path, opts.max_xml_bytes)
        entry["nmap_version"] = rec["nmap_version"] or version
        entry["hosts_up"] = rec["hosts_up"]
        entry["hosts"] = rec["hosts"]
        entry["undeclared_hosts"] = rec["undeclared_hosts"]
        entry["inventory_missing"] = rec["inventory_missing"]
        entry["hosts_timed_out"] = rec["hosts_timed_out"]
        errors = []
        if run_problem:
            errors.append(run_problem)
            if any(h["state"] != "unknown" for h in rec["hosts"]):
                errors.append(f"results written before that are kept ({len(rec['hosts'])} hosts listed)")
        else:
            if rc != 0:
                errors.append(f"nmap exited {rc}: {stderr.strip()[-500:] or 'no message'}")
            if parse_problem:
                errors.append(parse_problem)
            elif not rec["finished_ok"]:
                errors.append("nmap XML has no successful end marker")
        if rec["hosts_timed_out"]:
            late = rec["hosts_timed_out"]
            shown_to = ", ".join(late[:20]) + (" ..." if len(late) > 20 else "")
            errors.append(f"{len(rec['hosts_timed_out'])} host(s) hit --host-timeout {opts.host_timeout}, "
                          f"their ports are unknown: {shown_to}")
        entry["error"] = "; ".join(errors) or None
        if xml_text:
            evidence.append(Evidence(
                label=f"nmap_{_safe(entry['network'])}",
                command=" ".join(shlex.quote(a) for a in ["nmap"] + shown),
                content=xml_text + ("\n<!-- evidence-agent: XML cut at %d bytes -->\n" % opts.max_xml_bytes
                                    if xml_cut else ""),
                collected_at=entry["finished"],
                items=ITEMS,
                exit_code=rc,
                ext="xml",
                description_ko=f"네트워크 {entry['network']} ({cidr}, {entry['zone']}) 포트 스캔 결과 "
                               f"(관측 위치: {vantage})",
                description_en=f"Port scan of network {entry['network']} ({cidr}, zone {entry['zone']}) "
                               f"from {vantage}",
            ))
    return _fact(scans, evidence)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name))[:60] or "network"


def _fact(scans: list[dict[str, Any]], evidence: list[Evidence]) -> Fact:
    failed = [s for s in scans if s["error"]]
    if not scans:
        return Fact(probe=PROBE, status=FactStatus.NOT_COLLECTED, data={"scans": []},
                    reason="no network to scan", source="nmap")
    if not failed:
        status, reason = FactStatus.COLLECTED, None
    else:
        reason = "; ".join(f"{s['network']} ({s['cidr']}): {s['error']}" for s in failed)
        useful = [s for s in scans if not s["error"] or any(h["state"] != "unknown" for h in s["hosts"])]
        status = FactStatus.PARTIAL if useful else FactStatus.NOT_COLLECTED
    return Fact(probe=PROBE, status=status, data={"scans": scans}, reason=reason, source="nmap",
                evidence=evidence)


def open_ports(fact: Fact) -> Iterable[tuple[str, dict[str, Any]]]:
    """(address, port record) for every open port of every live host in a network_scan fact."""
    for scan in (fact.data or {}).get("scans", []):
        for h in scan.get("hosts", []):
            for p in h.get("ports", []):
                if p.get("state") == "open":
                    yield h["address"], p

"""Listening services (guide 14.3.1, 14.4.1, 14.5.1): every listening TCP/UDP socket and what it is.

Why: the guide asks that ports and services outside the system's purpose be
removed, that unsafe ones (NetBIOS, file sharing, telnet...) be blocked or
wrapped, and that public web servers stand alone (no database on them). Sockets
come from ``ss``, else ``netstat``, else ``/proc/net/{tcp,udp}[6]``; process names
of other users' sockets need root, and the fact says so when they are missing.
With the local transport the sockets come from psutil instead (same schema).

Recognition tables: ``probes/data/services.yaml`` (database engines, web servers).
Which services are insecure is not decided here: the rules ``no-insecure-services``
(14.3.1) and ``admin-encrypted-channels`` (13.1.1) hold that list as their
``insecure_services`` parameter and match it against ``sockets``.

Fact schema (``data``)::

    tool: "ss"|"netstat"|"proc"|"psutil"|null
    sockets: [{proto: "tcp"|"udp", family: "ipv4"|"ipv6"|"any", address, port: int,
               interface: str|null, process: str|null, pid: int|null,
               loopback: bool, wildcard: bool}]
    processes_visible: bool|null       # false: not root, other users' processes unknown
    tcp_ports: [int]                   # listening TCP ports (any address)
    udp_ports: [int]
    exposed_tcp_ports: [int]           # bound beyond loopback
    exposed_udp_ports: [int]
    inetd_services: [{service, source, enabled: bool}]   # enabled entries of inetd.conf / xinetd.d
    snmp: {configured: bool, default_community: bool|null, directives: [str]} | null
    databases: [{engine, port, address, process, loopback, matched_by: "process"|"port"}]
    web_servers: [{server, port, address, process, loopback, matched_by}]
                                       # server "other": a web port, unknown program
    web_role: bool                     # a web server listens beyond loopback
    db_on_web_host: bool               # a database engine listens on a web-role host
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Mapping, Optional

from ..base import (
    CommandSpec, Fact, FactStatus, HostProbe, Problem, RawOutput, ReasonCode, about, fact_with_problems, not_collected,
)
from .common import INETD, LISTEN, load_data, split_files, split_parts, uid_of, usable



def _table() -> Any:
    """probes/data/services.yaml, read on first use (load_data caches it), never at import."""
    return load_data("services.yaml")

SNMP_CONF = CommandSpec(
    "snmp_conf",
    'echo "uid=${_ea_uid:-$(id -u)}"; for f in /etc/snmp/snmpd.conf /etc/snmp/snmpd.conf.d/*.conf; do [ -f "$f" ] || '
    'continue; '
    'if [ -r "$f" ]; then awk -v F="$f" \'$1 ~ /^(rocommunity6?|rwcommunity6?|com2sec6?)$/ { '
    'c = ($1 ~ /^com2sec/) ? $NF : $2; k = (c == "public" || c == "private") ? c : "(other)"; '
    'print F ": " $1 " " k }\' "$f"; else echo "$f: (not readable)"; fi; done; true',
    timeout=10,
    privileged=True,
    may_hang=False,
)

COMMANDS = (LISTEN, INETD, SNMP_CONF)


def _addr(local: str) -> Optional[tuple[str, Optional[str], int]]:
    """``ss``/``netstat`` local address → (address, interface, port)."""
    if ":" not in local:
        return None
    host, _, port = local.rpartition(":")
    if not port.isdecimal():
        return None
    iface = None
    if "%" in host:
        host, _, iface = host.partition("%")
        iface = iface.rstrip("]") or None
    host = host.strip("[]")
    return host, iface, int(port)


def _family(address: str) -> str:
    if address == "*":
        return "any"
    return "ipv6" if ":" in address else "ipv4"


def make_socket(
    proto: str,
    address: str,
    port: int,
    iface: Optional[str] = None,
    process: Optional[str] = None,
    pid: Optional[int] = None,
) -> dict[str, Any]:
    fam = _family(address)
    wildcard = address in ("*", "0.0.0.0", "::")
    try:
        ip = ipaddress.ip_address(address)
        mapped = getattr(ip, "ipv4_mapped", None)
        loopback = bool((mapped or ip).is_loopback)
    except ValueError:
        loopback = False
    return {
        "proto": proto,
        "family": fam,
        "address": address,
        "port": port,
        "interface": iface,
        "process": process,
        "pid": pid,
        "loopback": loopback,
        "wildcard": wildcard,
    }


def _ss_process(rest: str) -> tuple[Optional[str], Optional[int]]:
    m = re.search(r'users:\(\("([^"]*)",pid=(\d+)', rest)
    return (m.group(1), int(m.group(2))) if m else (None, None)


def _hex_addr(h: str) -> tuple[str, int]:
    a, _, p = h.partition(":")
    port = int(p, 16)
    raw = bytes.fromhex(a)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1])), port
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return str(ipaddress.IPv6Address(words)), port


def parse_listen(text: str) -> tuple[Optional[str], list[dict[str, Any]]]:
    """(tool, sockets) from the ``listen`` command."""
    tool = None
    socks: list[dict[str, Any]] = []
    for header, lines in split_parts(text):
        kind = header.split()[0]
        tool = tool or kind
        if kind == "ss":
            for line in lines:
                f = line.split()
                if len(f) < 5 or f[0] not in ("tcp", "udp"):
                    continue
                a = _addr(f[4])
                if a is None:
                    continue
                name, pid = _ss_process(line)
                socks.append(make_socket(f[0], a[0], a[2], a[1], name, pid))
        elif kind == "netstat":
            for line in lines:
                f = line.split()
                if len(f) < 5 or not f[0].startswith(("tcp", "udp")):
                    continue
                a = _addr(f[3])
                if a is None:
                    continue
                proto = "tcp" if f[0].startswith("tcp") else "udp"
                if proto == "tcp" and (len(f) < 6 or f[5] != "LISTEN"):
                    continue
                prog = (
                    f[6]
                    if proto == "tcp" and len(f) > 6
                    else (f[5] if proto == "udp" and len(f) > 5 else None)
                )
                name = pid = None
                if prog and "/" in prog:
                    p, _, n = prog.partition("/")
                    pid = int(p) if p.isdecimal() else None
                    name = n.rstrip(":") or None
                socks.append(make_socket(proto, a[0], a[2], a[1], name, pid))
        elif kind == "proc":
            table = header.split()[1] if len(header.split()) > 1 else ""
            proto = "tcp" if table.startswith("tcp") else "udp"
            for line in lines:
                f = line.split()
                if len(f) < 4 or not f[0].rstrip(":").isdecimal():
                    continue
                state = f[3]
                if (proto == "tcp" and state != "0A") or (proto == "udp" and state != "07"):
                    continue
                try:
                    address, port = _hex_addr(f[1])
                except ValueError:
                    continue
                socks.append(make_socket(proto, address, port))
    return tool, socks


def parse_inetd(text: str) -> list[dict[str, Any]]:
    """Services inetd/xinetd would start: inetd.conf lines, xinetd ``service`` blocks not disabled."""
    out = []
    for path, lines in split_files(text):
        if path.endswith("inetd.conf") and "xinetd" not in path:
            for ln in lines:
                f = ln.split()
                if len(f) >= 6 and not ln.lstrip().startswith("#"):
                    out.append({"service": f[0], "source": path, "enabled": True})
            continue
        name = None
        disabled = False
        for ln in lines:
            m = re.match(r"^\s*service\s+(\S+)", ln)
            if m:
                if name:
                    out.append({"service": name, "source": path, "enabled": not disabled})
                name, disabled = m.group(1), False
                continue
            m = re.match(r"^\s*disable\s*=\s*(\S+)", ln)
            if m and name:
                disabled = m.group(1).lower() == "yes"
        if name:
            out.append({"service": name, "source": path, "enabled": not disabled})
    return out


def parse_snmp(text: str) -> Optional[dict[str, Any]]:
    directives, unreadable = [], False
    for ln in text.splitlines():
        if ln.startswith("uid=") or not ln.strip():
            continue
        if "(not readable)" in ln:
            unreadable = True
            continue
        directives.append(ln.strip()[:200])
    if not directives and not unreadable:
        return {"configured": False, "default_community": False, "directives": []}
    default = any(re.search(r"\s(public|private)$", d) for d in directives)
    return {
        "configured": True,
        "default_community": True if default else (None if unreadable else False),
        "directives": directives,
    }


def derive(sockets: list[dict[str, Any]]) -> dict[str, Any]:
    """Port lists, database engines and web servers recognised from the sockets (shared with the psutil hook)."""

    def ports(proto: str, exposed: bool = False) -> list[int]:
        return sorted(
            {s["port"] for s in sockets if s["proto"] == proto and (not exposed or not s["loopback"])}
        )

    dbs, webs = [], []
    for s in sockets:
        for row in _table()["databases"]:
            by_proc = bool(s["process"]) and s["process"][:15] in {p[:15] for p in row["processes"]}
            if by_proc or s["port"] in row["ports"]:
                dbs.append(
                    {
                        "engine": row["engine"],
                        "port": s["port"],
                        "address": s["address"],
                        "process": s["process"],
                        "loopback": s["loopback"],
                        "matched_by": "process" if by_proc else "port",
                    }
                )
                break
        if s["proto"] != "tcp":
            continue
        for row in _table()["web"]:
            procs = {p[:15] for p in row["processes"]}
            if procs:  # a named server is recognised by its process (and tomcat's java by its port too)
                hit = (
                    bool(s["process"])
                    and s["process"][:15] in procs
                    and (row["server"] != "tomcat" or s["port"] in row["ports"])
                )
            else:
                hit = s["port"] in row["ports"]
            if hit:
                webs.append(
                    {
                        "server": row["server"],
                        "port": s["port"],
                        "address": s["address"],
                        "process": s["process"],
                        "loopback": s["loopback"],
                        "matched_by": "process" if procs else "port",
                    }
                )
                break
    web_role = any(not w["loopback"] for w in webs)
    return {
        "tcp_ports": ports("tcp"),
        "udp_ports": ports("udp"),
        "exposed_tcp_ports": ports("tcp", True),
        "exposed_udp_ports": ports("udp", True),
        "databases": dbs,
        "web_servers": webs,
        "web_role": web_role,
        "db_on_web_host": web_role and bool(dbs),
    }


def parse(outputs: Mapping[str, RawOutput]) -> Fact:
    out, prob = usable(outputs, "listen")
    if out is None:
        return not_collected("listening", about(prob, "listening sockets not read"))
    tool, socks = parse_listen(out.output)
    if tool is None:
        return not_collected("listening", Problem("no ss, netstat or /proc/net tables on the target",
                                                  ReasonCode.TOOL_MISSING))
    problems = []
    uid = uid_of(out.output)
    if tool == "proc":
        visible: Optional[bool] = False
        problems.append(Problem("no ss/netstat: process names unknown (read from /proc/net)", ReasonCode.TOOL_MISSING))
    elif uid == 0:
        visible = True
    else:
        visible = False
        problems.append(Problem("not root: processes of other users' sockets not shown (needs privilege)",
                                ReasonCode.PERMISSION))
    data: dict[str, Any] = {"tool": tool, "sockets": socks, "processes_visible": visible}
    data.update(derive(socks))
    inetd_out, iprob = usable(outputs, "inetd")
    if inetd_out is None:
        problems.append(about(iprob, "inetd configuration not read"))
        data["inetd_services"] = None
    else:
        data["inetd_services"] = [s for s in parse_inetd(inetd_out.output) if s["enabled"]]
    snmp_out, sprob = usable(outputs, "snmp_conf")
    if snmp_out is None:
        problems.append(about(sprob, "snmpd configuration not read"))
        data["snmp"] = None
    else:
        data["snmp"] = parse_snmp(snmp_out.output)
        if data["snmp"] and data["snmp"]["default_community"] is None:
            problems.append(Problem("snmpd.conf not readable (needs privilege)", ReasonCode.PERMISSION))
    return fact_with_problems("listening", data, problems)


def psutil_sockets() -> list[dict[str, Any]]:
    """Listening sockets from psutil (local transport)."""
    import socket

    import psutil

    names: dict[int, Optional[str]] = {}
    socks = []
    for c in psutil.net_connections(kind="inet"):
        if c.type == socket.SOCK_STREAM and c.status != psutil.CONN_LISTEN:
            continue
        if c.type == socket.SOCK_DGRAM and c.raddr:
            continue
        if not c.laddr:
            continue
        name = None
        if c.pid:
            if c.pid not in names:
                try:
                    names[c.pid] = psutil.Process(c.pid).name()
                except (psutil.Error, OSError):
                    names[c.pid] = None
            name = names[c.pid]
        address, iface = c.laddr.ip, None
        if "%" in address:
            address, _, iface = address.partition("%")
        socks.append(
            make_socket(
                "tcp" if c.type == socket.SOCK_STREAM else "udp", address, c.laddr.port, iface, name, c.pid
            )
        )
    return socks


def local(fact: Fact) -> Fact:
    """Local transport: sockets (with processes) from psutil; inetd/snmp stay from the shell."""
    try:
        import os

        socks = psutil_sockets()
        visible = os.geteuid() == 0
    except Exception:  # noqa: BLE001 - psutil missing or denied: keep the shell reading
        return fact
    data: dict[str, Any] = dict(fact.data) if fact.data else {"inetd_services": None, "snmp": None}
    data.update({"tool": "psutil", "sockets": socks, "processes_visible": visible})
    data.update(derive(socks))
    reason = fact.reason
    if reason:
        kept = [
            r
            for r in reason.split("; ")
            if not r.startswith(("not root:", "no ss/netstat", "listening sockets"))
        ]
        reason = "; ".join(kept) or None
    if not visible:
        reason = "; ".join(filter(None, [reason, "not root: processes of other users' sockets not shown"]))
    status = FactStatus.PARTIAL if reason else FactStatus.COLLECTED
    return Fact("listening", status, data, reason=reason, source="psutil", evidence=fact.evidence)


PROBE = HostProbe(
    name="listening",
    items=("14.3.1", "14.4.1", "14.5.1"),
    commands=COMMANDS,
    parse=parse,
    description_ko="열린 포트 및 서비스(TCP/UDP 수신 소켓과 프로세스, inetd·SNMP 설정, 웹서버의 DB 동거 여부)",
    description_en="Listening services (TCP/UDP sockets and processes, inetd, SNMP, databases on web hosts)",
    local=local,
)

"""Host identity for ``facts/<host>.json``: hostname, OS release, kernel, addresses and MACs.

Why: an auditor must be able to tell which machine the evidence came from, not
only which inventory name was asked for.

Fact schema (``data``)::

    hostname: str
    os: {id, version_id, pretty_name, id_like: [str], version_codename} | null
    kernel: str|null
    machine: str|null
    interfaces: [{name, mac, addresses: [str]}] | null
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from ..base import CommandSpec, Fact, FactStatus, HostProbe, RawOutput, about, not_collected, section_problem

HOSTNAME = CommandSpec("hostname", "hostname 2>/dev/null || cat /proc/sys/kernel/hostname", may_hang=False)
OS_RELEASE = CommandSpec(
    "os_release",
    "for f in /etc/os-release /usr/lib/os-release; do [ -r \"$f\" ] && { cat \"$f\"; exit 0; }; done; "
    "cat /etc/redhat-release /etc/system-release 2>/dev/null; exit 0",
    may_hang=False,
)
UNAME = CommandSpec("uname", "uname -srm", may_hang=False)
ADDRS = CommandSpec(
    "ip_addr",
    "if command -v ip >/dev/null 2>&1; then ip -o addr show; ip -o link show; "
    "else for i in /sys/class/net/*; do echo \"sys $(basename $i) $(cat $i/address 2>/dev/null)\"; done; "
    "ifconfig -a 2>/dev/null; fi",
    may_hang=False,
)


def parse_os_release(text: str) -> dict[str, Any]:
    kv: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Z_]+)=(.*)$", line.strip())
        if m:
            kv[m.group(1)] = m.group(2).strip().strip("\"'")
    if not kv and text.strip():
        # /etc/redhat-release style: "CentOS Linux release 7.9.2009 (Core)"
        first = text.strip().splitlines()[0]
        m = re.search(r"release\s+([\d.]+)", first)
        return {"id": first.split()[0].lower(), "version_id": m.group(1) if m else None,
                "pretty_name": first, "id_like": []}
    return {
        "id": kv.get("ID"),
        "version_id": kv.get("VERSION_ID"),
        "pretty_name": kv.get("PRETTY_NAME"),
        "id_like": kv.get("ID_LIKE", "").split(),
        "version_codename": kv.get("VERSION_CODENAME"),
    }


def parse_ip(text: str) -> list[dict[str, Any]]:
    """``ip -o addr`` + ``ip -o link`` (or the /sys fallback) → interfaces with MACs and addresses."""
    ifaces: dict[str, dict[str, Any]] = {}

    def get(name: str) -> dict[str, Any]:
        name = name.split("@", 1)[0]
        return ifaces.setdefault(name, {"name": name, "mac": None, "addresses": []})

    for line in text.splitlines():
        m = re.match(r"^\d+:\s+(\S+?):?\s+(inet6?)\s+(\S+)", line)
        if m:
            get(m.group(1))["addresses"].append(m.group(3))
            continue
        m = re.match(r"^\d+:\s+(\S+?):\s+<.*link/\w+\s+([0-9a-f:]{17})", line)
        if m:
            get(m.group(1))["mac"] = m.group(2)
            continue
        m = re.match(r"^sys\s+(\S+)\s+([0-9a-f:]{17})?", line)
        if m:
            get(m.group(1))["mac"] = m.group(2)
    return list(ifaces.values())


def parse(outputs: Mapping[str, RawOutput]) -> Fact:
    h = outputs.get("hostname")
    prob = section_problem(h)
    if prob or h is None or not h.output.strip():
        return not_collected("identity", about(prob, "hostname not read") if prob else "hostname not read: empty output")
    data: dict[str, Any] = {"hostname": h.output.strip().splitlines()[0][:255]}
    missing = []
    o = outputs.get("os_release")
    data["os"] = parse_os_release(o.output) if o is not None and o.complete else None
    if data["os"] is None:
        missing.append("os-release")
    u = outputs.get("uname")
    if u is not None and u.ok:
        parts = u.output.split()
        data["kernel"] = parts[1] if len(parts) > 1 else None
        data["machine"] = parts[2] if len(parts) > 2 else None
    else:
        data["kernel"] = data["machine"] = None
        missing.append("uname")
    a = outputs.get("ip_addr")
    data["interfaces"] = parse_ip(a.output) if a is not None and a.complete else None
    if data["interfaces"] is None:
        missing.append("interfaces")
    status = FactStatus.PARTIAL if missing else FactStatus.COLLECTED
    return Fact("identity", status, data, reason=("not read: " + ", ".join(missing)) if missing else None)


PROBE = HostProbe(
    name="identity",
    items=("3.1.1",),
    commands=(HOSTNAME, OS_RELEASE, UNAME, ADDRS),
    parse=parse,
    description_ko="서버 식별 정보(호스트명, OS, 커널, 주소, MAC)",
    description_en="Host identity (hostname, OS, kernel, addresses, MACs)",
)

"""Interfaces and addresses (guide 15.2.1, 15.3.1): addresses, private or not, default route, wireless.

Why: the guide asks that internal networks use private addresses (it names 10/8,
172.16/12 and 192.168/16; for IPv6 the locally assigned ULA fd00::/8 is taken as
private) and that wireless use be minimal and controlled. Every other global-scope
address is named by its range, so a verdict can say what it is: a documentation
range (192.0.2.0/24…, 2001:db8::/32) on a real host is a misconfiguration, shared
CGNAT space (100.64/10) is a carrier's, not the organisation's private space.
Addresses come from ``ip`` (else /sys and ``ifconfig``); with the local
transport from psutil (wireless flags and routes stay from the shell: psutil
knows neither).

Fact schema (``data``)::

    tool: "ip"|"ifconfig"|"psutil"|null
    interfaces: [{name, mac: str|null, up: bool|null, loopback: bool, wireless: bool|null,
                  addresses: [{address, prefixlen: int|null, family: "ipv4"|"ipv6",
                               category: "loopback"|"link_local"|"private"|"shared"|"documentation"|
                                         "benchmark"|"multicast"|"public"|"reserved",
                               private: bool}]}]
    private_addresses: [str]          # 10/8, 172.16/12, 192.168/16, fd00::/8
    public_addresses: [str]           # globally routable
    other_addresses: [str]            # shared CGNAT 100.64/10, documentation, benchmark, other reserved
    global_addresses: [str]           # every address of global scope (not loopback, link-local, multicast)
    non_private_addresses: [{address, interface, category}]   # global scope outside the private ranges
    all_private: bool|null            # every global-scope address is private (null: none seen)
    default_routes: [{family, gateway: str|null, interface: str|null}]
    wireless: [str]                   # wireless interface names
    psutil_fields: [str]
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Mapping, Optional

from ..base import (
    CommandSpec, Fact, FactStatus, HostProbe, Problem, RawOutput, ReasonCode, about, fact_with_problems, not_collected,
)
from . import identity
from .common import split_parts, usable

ROUTES = CommandSpec(
    "routes",
    "if command -v ip >/dev/null 2>&1; then echo '### ip4'; ip route show default 2>&1; "
    "echo '### ip6'; ip -6 route show default 2>&1; "
    "else echo '### proc'; cat /proc/net/route 2>&1; fi",
    timeout=10,
    may_hang=False,
)
WIRELESS = CommandSpec(
    "wireless",
    'echo \'### sys\'; for i in /sys/class/net/*; do { [ -d "$i/wireless" ] || [ -e "$i/phy80211" ]; } '
    "&& echo \"${i##*/}\"; done; echo '### proc'; cat /proc/net/wireless 2>/dev/null; true",
    timeout=10,
    may_hang=False,
)
COMMANDS = (identity.ADDRS, ROUTES, WIRELESS)

def _nets(*ns: str) -> list[Any]:
    return [ipaddress.ip_network(n) for n in ns]


#: Ranges by category, checked in this order (RFC 1918, RFC 4193 fd00::/8, RFC 6598, RFC 5737/3849/9637,
#: RFC 2544/5180). Anything else global is "public"; the rest of the special-purpose space "reserved".
RANGES = (
    ("private", _nets("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8")),  # the RFC 1918 table (data)
    ("shared", _nets("100.64.0.0/10")),
    ("documentation", _nets("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20")),
    ("benchmark", _nets("198.18.0.0/15", "2001:2::/48")),
)
#: Not of global scope: an address in these never leaves the host or its link.
LOCAL_SCOPE = ("loopback", "link_local", "multicast")


def classify(address: str) -> tuple[str, bool]:
    """(category, private) of one address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "reserved", False
    if ip.is_loopback:
        return "loopback", False
    if ip.is_link_local:
        return "link_local", False
    if ip.is_multicast:
        return "multicast", False
    for cat, nets in RANGES:
        if any(ip.version == n.version and ip in n for n in nets):
            return cat, cat == "private"
    if ip.is_global:
        return "public", False
    return "reserved", False


def make_address(address: str, prefixlen: Optional[int]) -> dict[str, Any]:
    address = address.split("%", 1)[0]
    cat, private = classify(address)
    return {
        "address": address,
        "prefixlen": prefixlen,
        "family": "ipv6" if ":" in address else "ipv4",
        "category": cat,
        "private": private,
    }


def parse_addrs(text: str) -> tuple[Optional[str], list[dict[str, Any]]]:
    """``ip -o addr``/``ip -o link`` or the /sys + ifconfig fallback → (tool, interfaces)."""
    ifaces: dict[str, dict[str, Any]] = {}
    tool = None

    def get(name: str) -> dict[str, Any]:
        name = name.split("@", 1)[0].rstrip(":")
        return ifaces.setdefault(
            name,
            {"name": name, "mac": None, "up": None, "loopback": False, "wireless": None, "addresses": []},
        )

    cur = None
    for line in text.splitlines():
        m = re.match(r"^\d+:\s+(\S+?)\s+(inet6?)\s+([0-9a-fA-F.:]+)(?:/(\d+))?", line)
        if m:
            tool = "ip"
            get(m.group(1))["addresses"].append(
                make_address(m.group(3), int(m.group(4)) if m.group(4) else None)
            )
            continue
        m = re.match(r"^\d+:\s+(\S+?):\s+<([^>]*)>.*?link/(\w+)(?:\s+([0-9a-f:]{17}))?", line)
        if m:
            tool = "ip"
            i = get(m.group(1))
            flags = m.group(2).split(",")
            i["up"] = "UP" in flags
            i["loopback"] = "LOOPBACK" in flags or m.group(3) == "loopback"
            if m.group(4) and m.group(3) != "loopback":
                i["mac"] = m.group(4)
            continue
        m = re.match(r"^sys\s+(\S+)\s*([0-9a-f:]{17})?", line)
        if m:
            i = get(m.group(1))
            if m.group(2) and m.group(2) != "00:00:00:00:00:00":
                i["mac"] = m.group(2)
            continue
        # ifconfig (net-tools 2.x "eth0: flags=4163<UP,...>", old/BusyBox "eth0  Link encap:...")
        m = re.match(r"^(\S+?):?\s+(?:flags=\d+<([^>]*)>|Link encap:(\S+))", line)
        if m:
            tool = tool or "ifconfig"
            cur = get(m.group(1))
            if m.group(2) is not None:
                flags = m.group(2).split(",")
                cur["up"] = "UP" in flags
                cur["loopback"] = "LOOPBACK" in flags
            elif m.group(3) == "Local":
                cur["loopback"] = True
            hw = re.search(r"HWaddr\s+([0-9A-Fa-f:]{17})", line)
            if hw:
                cur["mac"] = hw.group(1).lower()
            continue
        if cur is None or not line.startswith((" ", "\t")):
            if line.strip() == "":
                cur = None
            continue
        s = line.strip()
        m = re.match(r"^inet (?:addr:)?([\d.]+).*?(?:netmask |Mask:)([\d.]+)", s)
        if m:
            try:
                plen = ipaddress.IPv4Network(f"0.0.0.0/{m.group(2)}").prefixlen
            except ValueError:
                plen = None
            cur["addresses"].append(make_address(m.group(1), plen))
            continue
        m = re.match(r"^inet6 (?:addr:\s*)?([0-9a-fA-F:]+)(?:/(\d+)|\s+prefixlen (\d+))", s)
        if m:
            cur["addresses"].append(make_address(m.group(1), int(m.group(2) or m.group(3))))
            continue
        m = re.match(r"^ether ([0-9a-f:]{17})", s)
        if m:
            cur["mac"] = m.group(1)
            continue
        if re.match(r"^UP\b", s) and cur["up"] is None:
            cur["up"] = True
    if tool == "ifconfig":
        for i in ifaces.values():
            if i["up"] is None:
                i["up"] = False  # ifconfig -a prints no UP flag for a down interface
    return tool, list(ifaces.values())


def parse_routes(text: str) -> list[dict[str, Any]]:
    routes = []
    for header, lines in split_parts(text):
        for line in lines:
            if header in ("ip4", "ip6"):
                m = re.match(r"^default(?:\s+via\s+(\S+))?(?:.*?\sdev\s+(\S+))?", line.strip())
                if m:
                    routes.append(
                        {
                            "family": "ipv4" if header == "ip4" else "ipv6",
                            "gateway": m.group(1),
                            "interface": m.group(2),
                        }
                    )
            elif header == "proc":
                f = line.split()
                if len(f) >= 8 and f[1] == "00000000" and f[7] == "00000000":
                    try:
                        gw = str(ipaddress.IPv4Address(bytes.fromhex(f[2])[::-1]))
                    except ValueError:
                        gw = None
                    routes.append(
                        {"family": "ipv4", "gateway": None if gw == "0.0.0.0" else gw, "interface": f[0]}
                    )
    return routes


def parse_wireless(text: str) -> list[str]:
    names: list[str] = []
    for header, lines in split_parts(text):
        for line in lines:
            if header == "sys" and line.strip():
                names.append(line.strip())
            elif header == "proc":
                m = re.match(r"^\s*(\S+):\s+\d", line)
                if m and m.group(1) not in names:
                    names.append(m.group(1))
    return names


def summarize(ifaces: list[dict[str, Any]]) -> dict[str, Any]:
    addrs = [(i["name"], a) for i in ifaces for a in i["addresses"]]
    private = [a["address"] for _, a in addrs if a["private"]]
    public = [a["address"] for _, a in addrs if a["category"] == "public"]
    routable = [(n, a) for n, a in addrs if a["category"] not in LOCAL_SCOPE]
    other = [a["address"] for _, a in routable if not a["private"] and a["category"] != "public"]
    return {
        "private_addresses": private,
        "public_addresses": public,
        "other_addresses": other,
        "global_addresses": [a["address"] for _, a in routable],
        "non_private_addresses": [{"address": a["address"], "interface": n, "category": a["category"]}
                                  for n, a in routable if not a["private"]],
        "all_private": all(a["private"] for _, a in routable) if routable else None,
    }


def parse(outputs: Mapping[str, RawOutput]) -> Fact:
    out, prob = usable(outputs, "ip_addr")
    if out is None:
        return not_collected("interfaces", about(prob, "interfaces not read"))
    tool, ifaces = parse_addrs(out.output)
    if not ifaces:
        return not_collected("interfaces", Problem("no interface found in ip/ifconfig output", ReasonCode.PARSE_ERROR))
    problems = []
    wl_out, wprob = usable(outputs, "wireless")
    wireless = parse_wireless(wl_out.output) if wl_out is not None else None
    if wireless is None:
        problems.append(about(wprob, "wireless interfaces not read"))
    for i in ifaces:
        i["wireless"] = (i["name"] in wireless) if wireless is not None else None
    rt_out, rprob = usable(outputs, "routes")
    routes = parse_routes(rt_out.output) if rt_out is not None else None
    if routes is None:
        problems.append(about(rprob, "routes not read"))
    if tool is None:
        problems.append(Problem("no ip/ifconfig: addresses unknown (only names and MACs from /sys)",
                                ReasonCode.TOOL_MISSING))
    data: dict[str, Any] = {"tool": tool, "interfaces": ifaces}
    data.update(
        summarize(ifaces)
        if tool
        else {"private_addresses": [], "public_addresses": [], "other_addresses": [], "global_addresses": [],
              "non_private_addresses": [], "all_private": None}
    )
    data["default_routes"] = routes
    data["wireless"] = wireless
    data["psutil_fields"] = []
    return fact_with_problems("interfaces", data, problems)


def _prefixlen(netmask: Optional[str]) -> Optional[int]:
    if not netmask:
        return None
    try:
        if ":" in netmask:
            return bin(int(ipaddress.IPv6Address(netmask))).count("1")
        return ipaddress.IPv4Network(f"0.0.0.0/{netmask}").prefixlen
    except ValueError:
        return None


def psutil_interfaces() -> list[dict[str, Any]]:
    import socket

    import psutil

    stats = psutil.net_if_stats()
    out = []
    for name, addrs in psutil.net_if_addrs().items():
        i: dict[str, Any] = {
            "name": name,
            "mac": None,
            "up": stats[name].isup if name in stats else None,
            "loopback": False,
            "wireless": None,
            "addresses": [],
        }
        for a in addrs:
            if a.family == getattr(psutil, "AF_LINK", None):
                if a.address and a.address != "00:00:00:00:00:00":
                    i["mac"] = a.address.lower()
            elif a.family in (socket.AF_INET, socket.AF_INET6):
                i["addresses"].append(make_address(a.address, _prefixlen(a.netmask)))
        i["loopback"] = any(a["category"] == "loopback" for a in i["addresses"]) or name == "lo"
        out.append(i)
    return out


def local(fact: Fact) -> Fact:
    """Local transport: interfaces, addresses, MACs and up state from psutil."""
    try:
        ifaces = psutil_interfaces()
    except Exception:  # noqa: BLE001 - keep the shell reading
        return fact
    shell = {i["name"]: i for i in (fact.data or {}).get("interfaces") or []}
    wireless = (fact.data or {}).get("wireless")
    for i in ifaces:
        if i["name"] in shell:
            i["loopback"] = i["loopback"] or shell[i["name"]]["loopback"]
        i["wireless"] = (i["name"] in wireless) if wireless is not None else None
    data = dict(fact.data or {})
    data.update({"tool": "psutil", "interfaces": ifaces, "psutil_fields": ["interfaces"]})
    data.setdefault("default_routes", None)
    data.setdefault("wireless", wireless)
    data.update(summarize(ifaces))
    reason = fact.reason if fact.status != FactStatus.NOT_COLLECTED else "routes/wireless from shell not read"
    status = FactStatus.PARTIAL if reason else FactStatus.COLLECTED
    return Fact("interfaces", status, data, reason=reason, source="psutil", evidence=fact.evidence)


PROBE = HostProbe(
    name="interfaces",
    items=("15.2.1", "15.3.1"),
    commands=COMMANDS,
    parse=parse,
    description_ko="네트워크 인터페이스와 IP 주소(사설 IP 여부, 기본 경로, 무선 인터페이스)",
    description_en="Interfaces and addresses (private or not, default route, wireless)",
    local=local,
)

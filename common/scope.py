"""Scope: the address ranges an inventory allows evidence-agent to touch.

Why: the tool scans and logs into machines; a typo in an inventory must never
send a packet to someone else's network. Every target is checked here before any
connection, and the scope itself is recorded in the evidence.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Sequence, Union

Net = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


class ScopeError(ValueError):
    """A target falls outside the declared scope (or cannot be resolved to check it)."""


@dataclass(frozen=True)
class Scope:
    allow: tuple[Net, ...]
    deny: tuple[Net, ...] = field(default_factory=tuple)

    @classmethod
    def parse(cls, allow: Sequence[str], deny: Sequence[str] = ()) -> "Scope":
        return cls(tuple(ipaddress.ip_network(a, strict=False) for a in allow),
                   tuple(ipaddress.ip_network(d, strict=False) for d in deny))

    def contains_address(self, addr: str) -> bool:
        ip = ipaddress.ip_address(addr)
        return any(ip in n for n in self.allow if n.version == ip.version) and not any(
            ip in n for n in self.deny if n.version == ip.version
        )

    def contains_network(self, cidr: str) -> bool:
        """True when every address of ``cidr`` is allowed and none is denied."""
        net = ipaddress.ip_network(cidr, strict=False)
        inside = any(net.version == n.version and net.subnet_of(n) for n in self.allow)  # type: ignore[arg-type]
        denied = any(net.version == d.version and net.overlaps(d) for d in self.deny)
        return inside and not denied

    def check_address(self, addr: str, what: str) -> str:
        """Resolve ``addr`` (without sending packets for literal IPs) and insist it is in scope."""
        ips = resolve(addr)
        bad = [ip for ip in ips if not self.contains_address(ip)]
        if not ips or bad:
            raise ScopeError(f"{what}: {addr} ({', '.join(bad or ['unresolvable'])}) is outside scope.allow "
                             f"{[str(n) for n in self.allow]}" + (f" minus scope.deny {[str(n) for n in self.deny]}" if self.deny else ""))
        return ips[0]

    def check_network(self, cidr: str, what: str) -> None:
        if not self.contains_network(cidr):
            raise ScopeError(f"{what}: {cidr} is not inside scope.allow {[str(n) for n in self.allow]}"
                             + (f" minus scope.deny {[str(n) for n in self.deny]}" if self.deny else ""))

    def to_json(self) -> dict[str, list[str]]:
        return {"allow": [str(n) for n in self.allow], "deny": [str(n) for n in self.deny]}


def resolve(name: str) -> list[str]:
    """Literal IPs are returned as is; names go through the system resolver (no packets to targets)."""
    try:
        return [str(ipaddress.ip_address(name))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        return []
    return sorted({str(i[4][0]) for i in infos})

"""Transports move a probe script to a target and its framed output back; they never parse facts.

``ssh`` (paramiko, agentless) and ``local`` (subprocess + psutil) run the same
script from :mod:`probes.batch`, so the same parsers serve both.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol, Sequence

from ..base import CommandSpec, ReasonCode, classify_reason
from ..batch import BatchResult


#: Set when the run is interrupted (Ctrl-C) and no cancel event was given: transports stop reading within
#: half a second and give up. A scan passes its own event (see agent.run.ScanOptions.cancel).
CANCEL = threading.Event()

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str, limit: int = 300) -> str:
    """Target-controlled text (an SSH banner, an error that quotes the server) made safe for a terminal, a log
    line or a report: control characters, C1 codes and bidi overrides become visible escapes, length capped."""
    text = _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                       else f"\\u{ord(m.group()):04x}", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class TransportError(Exception):
    """The host could not be collected at all (connect, host key, login). Message is safe to log.

    ``code`` is set where the failure is known (a refused or unreachable address, a timeout, a login or host key
    refused); :attr:`reason_code` falls back to the message's words only when it was not."""

    def __init__(self, message: str, code: Optional[ReasonCode] = None) -> None:
        super().__init__(message)
        self.code = code

    @property
    def reason_code(self) -> ReasonCode:
        return self.code or classify_reason(str(self))


@dataclass
class Session:
    """What a transport reports about how it reached the host (recorded in the evidence)."""

    transport: str
    info: dict[str, Any] = field(default_factory=dict)


class Transport(Protocol):
    def open(self) -> Session: ...

    def run(self, commands: Sequence[CommandSpec], deadline: float) -> BatchResult: ...

    def close(self) -> None: ...


def describe_error(exc: BaseException) -> str:
    """A short, secret-free description of a connection failure."""
    name = type(exc).__name__
    msg = str(exc).splitlines()[0] if str(exc) else ""
    return printable(f"{name}: {msg}" if msg else name)


def _verified(t: dict[str, Any]) -> str:
    hk = t.get("host_key_policy")
    return ("verified against known_hosts" if hk == "strict" else
            f"accepted on first use ({t['host_key_accepted_new']})" if t.get("host_key_accepted_new") else
            "verified against known_hosts (accept-new)" if hk == "accept-new" else
            "NOT VERIFIED (host_key_policy: off)")


def describe_session(t: dict[str, Any]) -> str:
    """The evidence header's one line on how a host was reached (from ``{"kind": transport, **Session.info}``):
    user, address, the host key and how it was checked, and every jump host on the way with its own key."""
    if t.get("kind") != "ssh":
        return f"{t.get('kind')} (user {t.get('user', '?')})"
    line = (f"ssh {t.get('user')}@{t.get('address')}:{t.get('port')}, host key {t.get('host_key_type')} "
            f"{t.get('host_key_fingerprint_sha256')} {_verified(t)}")
    hops = t.get("jump") or []
    for i, j in enumerate(hops, 1):  # the path, scanner side first: each hop and how its own host key was checked
        line += (f"; via jump host {i} of {len(hops)} {j.get('name')} {j.get('user')}@{j.get('address')}:"
                 f"{j.get('port')}, host key "
                 f"{j.get('host_key_type')} {j.get('host_key_fingerprint_sha256')} {_verified(j)}")
    return line

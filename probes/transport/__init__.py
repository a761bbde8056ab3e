"""Transports move a probe script to a target and its framed output back; they never parse facts.

``ssh`` (paramiko, agentless) and ``local`` (subprocess + psutil) run the same
script from :mod:`probes.batch`, so the same parsers serve both.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

from ..base import CommandSpec
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
    """The host could not be collected at all (connect, host key, login). Message is safe to log."""


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



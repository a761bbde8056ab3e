"""Transports move a probe script to a target and its framed output back; they never parse facts.

``ssh`` (paramiko, agentless) and ``local`` (subprocess + psutil) run the same
script from :mod:`probes.batch`, so the same parsers serve both.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

from ..base import CommandSpec
from ..batch import BatchResult


#: Set when the run is interrupted (Ctrl-C): transports stop reading within half a second and give up.
CANCEL = threading.Event()


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
    return f"{name}: {msg}"[:300] if msg else name



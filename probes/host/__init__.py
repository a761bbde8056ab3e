"""Host probes: each module declares its commands and a pure parser (see :mod:`probes.base`).

``PROBES`` is the registry the collector runs, in order. To add a fact, write a
module with a ``PROBE = HostProbe(...)`` and list it here.
"""
from __future__ import annotations

from ..base import HostProbe
from . import identity, session_timeout

PROBES: list[HostProbe] = [
    identity.PROBE,
    session_timeout.PROBE,
]


def by_name(name: str) -> HostProbe:
    for p in PROBES:
        if p.name == name:
            return p
    raise KeyError(name)

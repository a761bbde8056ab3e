"""Host probes: each module declares its commands and a pure parser (see :mod:`probes.base`).

``PROBES`` is the registry the collector runs, in order. To add a fact, write a
module with a ``PROBE = HostProbe(...)``, list it here and give its data a model in :mod:`probes.facts`
(the tests validate every fixture's output against it; regenerate facts.schema.json and docs/facts.md). Helpers shared by
several probes (commands run once per host, YAML tables) live in
:mod:`probes.host.common`; :mod:`probes.host.sshd` holds the sshd readers.
"""
from __future__ import annotations

from ..base import HostProbe
from . import (accounts, antivirus, firewall, identity, interfaces, listening, logging_time, os_release,
               password_policy, patch, remote_admin, session_timeout)

PROBES: list[HostProbe] = [
    identity.PROBE,
    session_timeout.PROBE,
    os_release.PROBE,
    patch.PROBE,
    antivirus.PROBE,
    listening.PROBE,
    interfaces.PROBE,
    firewall.PROBE,
    remote_admin.PROBE,
    accounts.PROBE,
    password_policy.PROBE,
    logging_time.PROBE,
]


def by_name(name: str) -> HostProbe:
    for p in PROBES:
        if p.name == name:
            return p
    raise KeyError(name)

"""Distributed mode: collection workers per zone on Celery, with Redis as broker and result store.

Why: an estate spans zones no single box reaches (internal, DMZ, a branch, an outside vantage). The controller
(``scan``/``run --broker``) validates the inventory and its scope, sends one task per host and per network family
to the queue of its zone (``ea.zone.<zone>``), verifies each worker's signed result, judges and signs the bundle
once. Workers (``evidence-agent worker --zone``) run the very probes of a single-process run and never hold the
bundle's signing key. Modules: ``broker`` (the Celery app and connection), ``payload`` (what a task carries),
``envelope`` (a worker's signed result), ``worker`` (the task body), ``controller`` (dispatch, stream, deadlines).
"""
from __future__ import annotations

from typing import Any, Optional


def scan_with(inv: Any, opts: Any, broker: Optional[str]) -> dict[str, Any]:
    """The run of ``scan`` and ``run``: distributed when ``--broker`` or the inventory's ``broker:`` says so, else the
    embedded single-process run. Raises ``broker.BrokerError`` when the broker cannot be used at the start."""
    from .broker import BrokerConfig

    cfg = BrokerConfig.resolve(broker, inv.broker)
    if cfg is None:
        from ..run import scan

        return scan(inv, opts)
    from . import controller

    return controller.scan(inv, opts, cfg)


def broker_lost(results: dict[str, Any]) -> Optional[str]:
    """Why the broker was given up mid-run (the bundle is signed, the rest is 점검불가), or None."""
    return ((results.get("run") or {}).get("distributed") or {}).get("lost")

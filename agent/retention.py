"""Retention of scheduled bundles: ``--keep N`` newest and/or ``--keep-days D``, never the ones that matter.

Never deleted, whatever the options: the newest bundle, the one ``latest`` points
at, and any bundle with a keep marker ``DIR/<bundle>.keep`` (an auditor asked for
it). The marker sits beside the bundle, not inside: a file added inside a signed
bundle would make it fail verification.

With both options a bundle is deleted only when neither keeps it (the newest N
*or* the last D days survive), so adding a rule can never delete more.
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Optional

from . import history


@dataclass
class Plan:
    keep: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)  # kept bundle -> why it is kept


def plan(root: str, keep: Optional[int], keep_days: Optional[float], now: Optional[float] = None) -> Plan:
    names = history.list_bundles(root)  # oldest first
    p = Plan()
    if not names or (keep is None and keep_days is None):
        p.keep = names
        return p
    now = time.time() if now is None else now
    newest = names[-1]
    pinned = history.latest(root)
    last_n = set(names[-keep:]) if keep else set()
    for n in names:
        t = history.bundle_time(n)
        why = None
        if n == newest:
            why = "newest"
        elif n == pinned:
            why = "latest"
        elif history.is_kept(root, n):
            why = "keep marker"
        elif keep is not None and n in last_n:
            why = f"among the {keep} newest"
        elif keep_days is not None and t is not None and now - t <= keep_days * 86400:
            why = f"younger than {keep_days:g} days"
        if why:
            p.keep.append(n)
            p.reasons[n] = why
        else:
            p.delete.append(n)
    return p


def apply(root: str, p: Plan) -> list[str]:
    """Delete the planned bundles; returns the names actually deleted."""
    gone = []
    for n in p.delete:
        path = os.path.join(root, n)
        if not history.is_bundle_name(n) or os.path.islink(path) or not os.path.isdir(path):
            continue  # only real bundle directories of ours, never through a symlink
        shutil.rmtree(path)
        gone.append(n)
    return gone

"""The bundles directory of scheduled runs: one signed bundle per run, ``latest``, and an index of runs.

Layout (``evidence-agent run --bundles DIR``)::

    DIR/20260123T020000Z/        one signed bundle per run (UTC start time; "-2", "-3" if a name is taken)
    DIR/20260123T020000Z.keep    keep marker: retention never deletes that bundle (outside it, so the
                                 signed bundle stays verifiable)
    DIR/latest -> 20260123T020000Z   symlink to the newest complete bundle, replaced atomically
    DIR/index.jsonl              one JSON line per run (schema evidence-agent/index/v1), appended
    DIR/.lock                    held (flock) while a run is going on
    DIR/.partial-<name>/         a run being written; renamed to <name> once sealed

A bundle appears under its final name only when it is complete and signed, so
``latest`` and readers of ``DIR`` never see half a bundle.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from datetime import datetime, timezone
from typing import Any, Iterator, Optional

from policies.model import Verdict

INDEX = "index.jsonl"
INDEX_SCHEMA = "evidence-agent/index/v1"
LATEST = "latest"
PARTIAL_PREFIX = ".partial-"
KEEP_SUFFIX = ".keep"
_NAME = re.compile(r"^(\d{8}T\d{6}Z)(?:-(\d+))?$")
STATUSES = tuple(Verdict(s).value for s in ("implemented", "partial", "not_implemented", "unknown", "not_applicable"))


def is_bundle_name(name: str) -> bool:
    return bool(_NAME.match(name))


def bundle_time(name: str) -> Optional[float]:
    """Epoch seconds of a bundle from its name (its run's UTC start), None if the name is not ours."""
    m = _NAME.match(name)
    if not m:
        return None
    return datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp()


def _order(name: str) -> tuple[str, int]:
    m = _NAME.match(name)
    assert m
    return m.group(1), int(m.group(2) or 1)


def list_bundles(root: str) -> list[str]:
    """Complete bundles under ``root``, oldest first (names only)."""
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    out = [n for n in names if is_bundle_name(n) and os.path.isdir(os.path.join(root, n))
           and not os.path.islink(os.path.join(root, n))]
    return sorted(out, key=_order)


def new_bundle_name(root: str, now: Optional[float] = None) -> str:
    base = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now if now is not None else time.time()))
    name, n = base, 1
    while (os.path.lexists(os.path.join(root, name)) or
           os.path.lexists(os.path.join(root, PARTIAL_PREFIX + name))):
        n += 1
        name = f"{base}-{n}"
    return name


def latest(root: str) -> Optional[str]:
    """Name of the bundle ``DIR/latest`` points at, if it points at one."""
    p = os.path.join(root, LATEST)
    try:
        target = os.readlink(p)
    except OSError:
        return None
    name = os.path.basename(target.rstrip("/"))
    return name if is_bundle_name(name) and os.path.isdir(os.path.join(root, name)) else None


def set_latest(root: str, name: str) -> None:
    """Point ``DIR/latest`` at ``name`` atomically (symlink to a temporary name, then rename over)."""
    tmp = os.path.join(root, f".latest.{os.getpid()}")
    if os.path.lexists(tmp):
        os.remove(tmp)
    os.symlink(name, tmp)  # relative: the directory can be moved or mounted elsewhere
    os.replace(tmp, os.path.join(root, LATEST))


def keep_marker(root: str, name: str) -> str:
    return os.path.join(root, name + KEEP_SUFFIX)


def is_kept(root: str, name: str) -> bool:
    return os.path.exists(keep_marker(root, name))


def remove_stale_partials(root: str) -> list[str]:
    """Half-written bundles of crashed runs; only called while holding the run lock."""
    gone = []
    for n in os.listdir(root):
        p = os.path.join(root, n)
        if n.startswith(PARTIAL_PREFIX) and os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p, ignore_errors=True)
            gone.append(n)
    return gone


# -- index -------------------------------------------------------------------------------------------

def index_entry(name: str, results: dict[str, Any], drift: Any, extra: Optional[dict[str, Any]] = None
                ) -> dict[str, Any]:
    """One index line from a run's results (and its drift against the previous run)."""
    hosts = results.get("hosts") or []
    run = results.get("run") or {}
    summary = results.get("summary") or {}
    entry: dict[str, Any] = {
        "schema": INDEX_SCHEMA, "bundle": name, "started": run.get("started"), "finished": run.get("finished"),
        "organisation": run.get("organisation"), "profile": run.get("profile"),
        "hosts": len(hosts), "collected": sum(1 for h in hosts if h.get("collected")),
        "failed_hosts": [h["name"] for h in hosts if not h.get("collected")][:50],
        "controls": summary.get("automated_controls") or {},
        "overall": summary.get("overall_automated"),
    }
    if drift is not None:
        entry["previous"] = drift.previous
        entry["changes"] = drift.counts() if drift.previous else None
        entry["worse"] = [c.text for c in drift.worse][:20]
    entry.update(extra or {})
    return entry


def append_index(root: str, entry: dict[str, Any]) -> None:
    """One line per run; a single write of a line under the run lock, so lines never interleave."""
    line = json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n"
    fd = os.open(os.path.join(root, INDEX), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def read_index(root: str) -> Iterator[dict[str, Any]]:
    try:
        f = open(os.path.join(root, INDEX), encoding="utf-8")
    except FileNotFoundError:
        return
    with f:
        for line in f:
            try:
                v = json.loads(line)
            except ValueError:
                continue  # a torn last line after a crash must not hide the rest
            if isinstance(v, dict) and v.get("bundle"):
                yield v


def runs(root: str) -> list[dict[str, Any]]:
    """Every known run, oldest first: index lines, plus bundles the index does not know (read from results.json).

    Each entry gets ``present`` (the bundle directory still exists) and ``kept``.
    """
    from .drift import compare

    by_name: dict[str, dict[str, Any]] = {}
    for e in read_index(root):
        by_name[e["bundle"]] = e
    present = list_bundles(root)
    prev: Optional[str] = None
    for name in present:
        if name not in by_name:
            try:
                with open(os.path.join(root, name, "results.json"), encoding="utf-8") as f:
                    res = json.load(f)
            except (OSError, ValueError):
                prev = name
                continue
            d = compare(os.path.join(root, prev) if prev else None, os.path.join(root, name))
            by_name[name] = index_entry(name, res, d, {"source": "results.json"})
        prev = name
    out = []
    for name in sorted(by_name, key=lambda n: _order(n) if is_bundle_name(n) else (n, 0)):
        e = dict(by_name[name])
        e["present"] = name in present
        e["kept"] = is_kept(root, name)
        out.append(e)
    return out


def render_history(entries: list[dict[str, Any]], latest_name: Optional[str] = None) -> str:
    head = f"{'finished (UTC)':20} {'bundle':20} {'hosts':>9} {'impl':>5} {'part':>5} {'not':>5} {'unkn':>5}  changes"
    lines = [head, "-" * len(head)]
    for e in entries:
        c = e.get("controls") or {}
        hosts = f"{e.get('collected', '?')}/{e.get('hosts', '?')}"
        ch = e.get("changes")
        if ch is None:
            changes = "first run" if not e.get("previous") else "-"
        else:
            changes = ", ".join(f"{ch[k]} {k}" for k in ("worse", "better", "changed") if ch.get(k)) or "no change"
        flags = []
        if e["bundle"] == latest_name:
            flags.append("latest")
        if e.get("kept"):
            flags.append("kept")
        if not e.get("present", True):
            flags.append("deleted")
        if e.get("exit") == 2:
            flags.append("no host collected")
        fin = (e.get("finished") or "").replace("T", " ").rstrip("Z")
        lines.append(f"{fin:20} {e['bundle']:20} {hosts:>9} {c.get('implemented', 0):>5} {c.get('partial', 0):>5} "
                     f"{c.get('not_implemented', 0):>5} {c.get('unknown', 0):>5}  {changes}"
                     + (f"  [{', '.join(flags)}]" if flags else ""))
        for w in (e.get("worse") or [])[:5]:
            lines.append(f"{'':42}↳ {w}")
    if len(lines) == 2:
        lines.append("(no runs yet)")
    return "\n".join(lines)

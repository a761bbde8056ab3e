"""Stable, per-item evidence labels (자료<item>-<n>), given once every host is judged.

Why after the fact: hosts are collected concurrently, so a serial handed out as
files are written follows which host finished first — the same evidence got
another number in the next run — and a file shared by several items kept its
probe's first item number (15.3.1 cited 자료15.2.1-1). Here, once the results are
known, every (item, file) pair the results use gets its name from a fixed order:
item, then host name, then probe label. A file used by several items sits under
one name per item (text files say their own name in their first line, so those
copies differ only there); the manifest hashes each name. Facts, findings and
the evidence index are rewritten to the new names.
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Iterable, Optional

from .bundle import iter_readable, safe_component

UNUSED = "수집"  # evidence collected by a probe but used by no item of the run's profile: 수집-<n>_<host>_<probe>
_HEAD = re.compile(rb"^# evidence-agent evidence file \([^\n]*\)\n")


def _item_key(item: str) -> tuple[Any, ...]:
    return tuple((0, int(x), "") if x.isdigit() else (1, 0, x) for x in re.split(r"[.\-]", item))


def _ext(rel: str) -> str:
    return rel.rsplit(".", 1)[-1] if "." in rel.rsplit("/", 1)[-1] else "txt"


def _uses(controls: list[dict[str, Any]]) -> Iterable[tuple[str, str]]:
    for c in controls:
        cid = str(c.get("id"))
        for h in c.get("hosts") or []:
            for rel in h.get("evidence") or []:
                yield cid, rel
            for f in h.get("findings") or []:
                for rel in f.get("evidence") or []:
                    yield cid, rel


def relabel(root: str, evidence_index: list[dict[str, Any]], controls: list[dict[str, Any]],
            prefix: str = "자료", catalog_items: Optional[set[str]] = None) -> list[dict[str, Any]]:
    """Rename the run's evidence files to stable per-item names; returns the new evidence index.

    ``controls`` (results' controls) and ``facts/*.json`` are updated in place. Files attached by a person
    (``manual``) keep their names: they are numbered when attached, after the automated ones.
    """
    entries = {e["file"]: e for e in evidence_index if not e.get("manual")}
    used: dict[str, set[str]] = {rel: set(e.get("items") or []) & (catalog_items or set(e.get("items") or []))
                                 for rel, e in entries.items()}  # a probe's items of another profile do not count
    for cid, rel in _uses(controls):
        if rel in used:
            used[rel].add(cid)
    by_item: dict[str, list[str]] = {}
    for rel, items in used.items():
        for it in items or {""}:  # evidence no item of this profile uses: named apart, never as an item's
            by_item.setdefault(it, []).append(rel)
    alias: dict[str, dict[str, str]] = {rel: {} for rel in used}
    for it in sorted(by_item, key=_item_key):
        rels = sorted(by_item[it], key=lambda r: (str(entries[r].get("host")), str(entries[r].get("label")), r))
        for n, rel in enumerate(rels, 1):
            e = entries[rel]
            head = f"{safe_component(prefix, 8)}{safe_component(it, 16)}" if it else UNUSED
            alias[rel][it] = (f"evidence/{head}-{n}_{safe_component(str(e.get('host')))}_"
                              f"{safe_component(str(e.get('label')))}.{safe_component(_ext(rel), 8)}")
    # two phases, so that a new name may be an old name of another file
    staged = {}
    for i, rel in enumerate(sorted(alias)):
        tmp = os.path.join(root, "evidence", f".relabel-{i}")
        os.replace(os.path.join(root, rel), tmp)
        staged[rel] = tmp
    new_index = [e for e in evidence_index if e.get("manual")]
    primary: dict[str, str] = {}
    for rel, names in alias.items():
        with open(staged[rel], "rb") as f:
            data = f.read()
        first = None
        for it in sorted(names, key=_item_key):
            new = names[it]
            body = data
            if _HEAD.match(data):
                body = _HEAD.sub(f"# evidence-agent evidence file ({new.split('/')[-1]})\n".encode(), data, 1)
            with open(os.path.join(root, new), "wb") as f:
                f.write(body)
            new_index.append({**entries[rel], "file": new, "items": [it] if it else [],
                              **({"same_evidence_as": first} if first else {})})
            first = first or new
        primary[rel] = first or rel
        os.unlink(staged[rel])
    apply_aliases(controls, alias)
    _rewrite_facts(root, primary)
    return sorted(new_index, key=lambda e: e["file"])


def apply_aliases(controls: list[dict[str, Any]], alias: dict[str, dict[str, str]]) -> None:
    """Point every item's findings at that item's own name of each file (findings shared by items are copied)."""
    for c in controls:
        cid = str(c.get("id"))
        for h in c.get("hosts") or []:
            h["evidence"] = sorted({alias.get(r, {}).get(cid, r) for r in h.get("evidence") or []})
            h["findings"] = [{**f, "evidence": sorted({alias.get(r, {}).get(cid, r) for r in f.get("evidence") or []})}
                             for f in h.get("findings") or []]


def aliases_from_index(evidence_index: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """``{name facts cite: {item: that item's name}}`` as recorded in a bundle's evidence index (re-evaluation)."""
    out: dict[str, dict[str, str]] = {}
    for e in evidence_index:
        first = e.get("same_evidence_as") or e["file"]
        for it in e.get("items") or []:
            out.setdefault(first, {})[str(it)] = e["file"]
    return out


def _rewrite_facts(root: str, primary: dict[str, str]) -> None:
    d = os.path.join(root, "facts")
    if not os.path.isdir(d):
        return
    for name in sorted(os.listdir(d)):
        if not name.endswith(".json"):
            continue
        p = os.path.join(d, name)
        with open(p, encoding="utf-8") as f:
            doc = json.load(f)
        ev = doc.get("evidence")
        if not isinstance(ev, dict):
            continue
        doc["evidence"] = {k: [primary.get(r, r) for r in v] if isinstance(v, list) else v for k, v in ev.items()}
        tmp = p + ".tmp"
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            for piece in iter_readable(doc):
                f.write(piece)
            f.write("\n")
        os.replace(tmp, p)


__all__ = ["relabel"]

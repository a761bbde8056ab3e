"""Attach documents (and a person's answer) to a manual item, then re-sign the bundle as a new revision.

Why: about 40 of the guide's detailed items are policies, contracts, training
records — no probe can evidence them. The guide still wants them in the same
report with evidence named 자료<item>-<n>. ``attach`` puts the files under
evidence/ with the guide's names, records the declared status for that one
item as *declared by a person* (``manual_answer``; the tool never judges it), and
seals again.

Revision design: the bundle is verified first (a tampered bundle is never
re-signed). The previous ``manifest.json``, ``manifest.json.sig`` and
``results.json`` are copied to ``revisions/<n>/`` — so the earlier verdicts stay
checkable against the earlier signature — and the new manifest says
``revision: n+1`` with ``revisions: [{revision: n, sealed, fingerprint,
manifest_sha256, reason: "attach 1.1.1 by NAME"}, …]``. ``verify`` checks each
kept revision's signature against that record.

Items with automated results (mixed items such as 13.1.1) take a declared status
too: it is the person's attestation of the *manual half* only. It is stored
beside the automated verdict (``manual_answer.part: manual``) and never alters
it; the report combines both halves into the guide's C. ``add_plan`` stores a
plan (E) the same way, as a signed revision.
"""
from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import os
import re
import shutil
from typing import Any, Optional, Sequence

from policies.engine import summarize
from policies.model import Verdict

from . import signing
from .bundle import now_iso, safe_component, seal
from .redact import redact_bytes, redact_obj
from .safeio import read_regular
from .verify import verify_bundle

STATUSES = tuple(v.value for v in Verdict if v is not Verdict.UNKNOWN)  # an attached answer is never "unknown"
MAX_FILE_BYTES = 100 * 1024 * 1024


class AttachError(ValueError):
    pass


def _write_json(path: str, obj: Any) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(redact_obj(obj), ensure_ascii=False, indent=2) + "\n")
    os.replace(tmp, path)


def next_serial(evidence_dir: str, item: str, prefix: str = "자료") -> int:
    pat = re.compile(rf"^{re.escape(prefix)}{re.escape(item)}-(\d+)_")
    nums = [int(m.group(1)) for f in (os.listdir(evidence_dir) if os.path.isdir(evidence_dir) else [])
            if (m := pat.match(f))]
    return max(nums, default=0) + 1


def attach(bundle: str, item: str, files: Sequence[str], key: signing.KeyPair, status: Optional[str] = None,
           reason: Optional[str] = None, by: Optional[str] = None, note: Optional[str] = None,
           pubkey: Optional[str] = None) -> dict[str, Any]:
    """Add ``files`` to ``item``, optionally declare its status, re-seal. Returns the new revision record."""
    if not files and not status:
        raise AttachError("nothing to do: give files to attach and/or --status")
    if status is not None and status not in STATUSES:
        raise AttachError(f"--status must be one of {', '.join(STATUSES)}")
    if status in ("not_applicable", "partial", "not_implemented") and not (reason or "").strip():
        raise AttachError(f"--reason is required with --status {status}")
    for f in files:
        if not os.path.isfile(f):
            raise AttachError(f"{f}: not a regular file")
        if os.path.getsize(f) > MAX_FILE_BYTES:
            raise AttachError(f"{f}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    root, results, mbytes, pred, control, n = _open_revision(bundle, item, pubkey)
    automated = bool(control.get("hosts"))
    by = by or os.environ.get("SUDO_USER") or getpass.getuser()
    at = now_iso()
    ev_dir = os.path.join(root, "evidence")
    os.makedirs(ev_dir, exist_ok=True)
    prefix = str((results.get("run") or {}).get("evidence_prefix") or "자료")
    serial = next_serial(ev_dir, item, prefix)
    added = []
    for i, src in enumerate(files):
        rel = f"evidence/{safe_component(prefix, 8)}{safe_component(item, 16)}-{serial + i}_manual_{safe_component(os.path.basename(src))}"
        with open(src, "rb") as fh:  # a text document goes through the same redaction as every bundle file
            data = redact_bytes(fh.read(), rel.endswith(".json"))
        with open(os.path.join(root, rel), "wb") as fh:
            fh.write(data)
        digest = hashlib.sha256(data).hexdigest()
        desc = f"{note} ({os.path.basename(src)})" if note else os.path.basename(src)
        results.setdefault("evidence_index", []).append({
            "file": rel, "host": "manual", "label": "manual", "items": [item], "collected_at": at,
            "exit_code": None, "description_ko": desc, "description_en": desc, "manual": True,
            "original_name": os.path.basename(src), "attached_by": by, "sha256": digest})
        added.append(rel)
    results["evidence_index"] = sorted(results.get("evidence_index") or [], key=lambda e: e["file"])
    control.setdefault("attachments", []).append({"files": added, "note": note, "by": by, "at": at,
                                                  "revision": n + 1})
    if status is not None:
        previous = control.get("manual_answer")
        all_files = [f for a in control["attachments"] for f in a["files"]]
        control["manual_answer"] = {"status": status, "reason": reason, "note": note, "by": by, "at": at,
                                    "files": all_files, "declared_by": "person", "revision": n + 1,
                                    "part": "manual" if automated else "whole",
                                    **({"previous": previous} if previous else {})}
        if not automated:  # a mixed item's automated verdict stays the rules' (the report combines the halves)
            control["status"] = status
            control["status_source"] = "declared"
            control["detail"] = {"ko": f"담당자 선언({by}): {reason or ''}".rstrip(": "),
                                 "en": f"declared by {by}: {reason or ''}".rstrip(": ")}
    return _seal_revision(root, key, results, mbytes, pred, n, f"attach {item} by {by}", added)


def _seal_revision(root: str, key: signing.KeyPair, results: dict[str, Any], mbytes: bytes, pred: dict[str, Any],
                   n: int, reason: str, added: list[str]) -> dict[str, Any]:
    """Write results.json and seal as revision n+1, recording revision n (already copied to revisions/n/)."""
    results["summary"] = summarize(results.get("controls") or [])
    _write_json(os.path.join(root, "results.json"), results)
    record = {"revision": n, "sealed": pred.get("sealed"), "fingerprint": (pred.get("signer") or {}).get("fingerprint"),
              "manifest_sha256": hashlib.sha256(mbytes).hexdigest(), "reason": reason}
    new_pred = {k: val for k, val in pred.items() if k not in ("signer", "sealed")}
    new_pred["revision"] = n + 1
    new_pred["revisions"] = list(pred.get("revisions") or []) + [record]
    seal(root, key, new_pred)
    return {"revision": n + 1, "files": added, "record": record}


def _open_revision(bundle: str, item: str, pubkey: Optional[str]) -> tuple[str, dict[str, Any], bytes, dict[str, Any],
                                                                              dict[str, Any], int]:
    """Verify, read, find the item, and keep the current revision under revisions/<n>/."""
    root = os.path.abspath(bundle)
    v = verify_bundle(root, pubkey)
    if not v.valid:
        raise AttachError(f"{bundle}: the bundle does not verify; refusing to re-sign it: " + "; ".join(v.problems[:5]))
    results = json.loads(read_regular(root, "results.json").decode("utf-8"))
    mbytes = read_regular(root, "manifest.json")
    pred = json.loads(mbytes).get("predicate") or {}
    control = next((c for c in results.get("controls") or [] if str(c.get("id")) == item), None)
    if control is None:
        raise AttachError(f"item {item} is not in this bundle's profile ({(results.get('run') or {}).get('profile')})")
    n = int(pred.get("revision") or 1)
    rev_dir = os.path.join(root, "revisions", str(n))
    if os.path.exists(rev_dir):
        raise AttachError(f"revisions/{n} already exists; the bundle's revision record is inconsistent")
    os.makedirs(rev_dir)
    for name in ("manifest.json", "manifest.json.sig", "results.json"):
        shutil.copy2(os.path.join(root, name), os.path.join(rev_dir, name))
    return root, results, mbytes, pred, control, n


def add_plan(bundle: str, item: str, due: str, text: str, key: signing.KeyPair, by: Optional[str] = None,
             pubkey: Optional[str] = None, today: Optional[dt.date] = None) -> dict[str, Any]:
    """Store a plan (E: 목표 시기 ``due``, 이행 방법 ``text``) for ``item`` as a signed revision."""
    try:
        d = dt.date.fromisoformat(str(due))
    except ValueError:
        raise AttachError(f"--due {due!r}: expected a date YYYY-MM-DD") from None
    if not (text or "").strip():
        raise AttachError("--text is required: how the item will be implemented")
    if len(text) > 4000:
        raise AttachError("--text is longer than 4000 characters")
    root, results, mbytes, pred, control, n = _open_revision(bundle, item, pubkey)
    by = by or os.environ.get("SUDO_USER") or getpass.getuser()
    rec = {"due": d.isoformat(), "text": text.strip(), "by": by, "at": now_iso(), "revision": n + 1}
    control.setdefault("plans", []).append(rec)
    out = _seal_revision(root, key, results, mbytes, pred, n, f"plan {item} by {by}", [])
    out["plan"] = rec
    return out

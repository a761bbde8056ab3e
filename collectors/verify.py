"""Offline verification of a bundle: signatures, every file's hash, no file added or removed, freshness.

The same checks a third party makes with ``ssh-keygen -Y verify`` and
``sha256sum -c`` (see README), plus consistency between manifest and SHA256SUMS.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional

from . import signing
from .bundle import CONTROL_FILES, PREDICATE_TYPE, STATEMENT_TYPE, file_list
from .safeio import MAX_CONTROL_BYTES, UnsafeFile, check_tree, chunks, read_optional


@dataclass
class Verdict:
    valid: bool
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fingerprint: Optional[str] = None
    files: int = 0
    age_days: Optional[float] = None
    stale: bool = False
    pinned: bool = False  # checked against a trusted key given by the caller (not the key inside the bundle)


def _read(root: str, rel: str, v: Optional[Verdict] = None) -> Optional[bytes]:
    """A control file, never through a link, never more than the cap; None (with the reason in ``v``) if unreadable."""
    try:
        return read_optional(root, rel, MAX_CONTROL_BYTES)
    except OSError as e:
        if v is not None:
            v.problems.append(str(e) if isinstance(e, UnsafeFile) else f"{rel}: {e.strerror or e}")
        return None


def _digest(root: str, rel: str, size: int) -> tuple[str, int]:
    """sha256 and length of a listed file, reading at most one byte more than the manifest's size."""
    h = hashlib.sha256()
    n = 0
    for b in chunks(root, rel, max(0, size)):
        h.update(b)
        n += len(b)
    return h.hexdigest(), n


def verify_bundle(root: str, pubkey_text: Optional[str] = None, max_age_days: Optional[float] = None) -> Verdict:
    v = Verdict(valid=False)
    if not os.path.isdir(root):
        v.problems.append(f"{root}: not a directory")
        return v
    # the shape first: a link, FIFO or device anywhere is refused before any file is opened
    v.problems.extend(check_tree(root))
    if v.problems:
        return v
    mbytes = _read(root, "manifest.json", v)
    msig = _read(root, "manifest.json.sig", v)
    sbytes = _read(root, "SHA256SUMS", v)
    ssig = _read(root, "SHA256SUMS.sig", v)
    for name, data in (("manifest.json", mbytes), ("manifest.json.sig", msig), ("SHA256SUMS", sbytes),
                       ("SHA256SUMS.sig", ssig)):
        if data is None and not any(p.startswith(name + ":") for p in v.problems):
            v.problems.append(f"{name}: missing")
    if v.problems:
        return v
    assert mbytes is not None and msig is not None and sbytes is not None and ssig is not None

    trusted = None
    if pubkey_text is not None:
        try:
            trusted = signing.load_public(pubkey_text)
        except signing.SignatureError as e:
            v.problems.append(f"--pubkey: {e}")
            return v
    for name, data, sig in (("manifest.json", mbytes, msig), ("SHA256SUMS", sbytes, ssig)):
        try:
            signer = signing.verify(data, sig.decode("ascii", "replace"))
        except signing.SignatureError as e:
            v.problems.append(f"{name}.sig: {e}")
            continue
        if trusted is not None and not signing.same_key(signer, trusted):
            v.problems.append(f"{name}.sig: signed by {signing.fingerprint(signer)}, not by the given --pubkey "
                              f"{signing.fingerprint(trusted)}")
        v.fingerprint = signing.fingerprint(signer)
    v.pinned = trusted is not None
    if trusted is None:
        v.warnings.append("signature checked against the key recorded in the bundle, which anyone who changed the "
                          "bundle could have replaced; pass --pubkey (or set EVIDENCE_AGENT_PUBKEY) to pin the signer")
    try:
        manifest = json.loads(mbytes)
        subjects = {str(s["name"]): s for s in manifest["subject"]}
        if manifest.get("_type") != STATEMENT_TYPE or manifest.get("predicateType") != PREDICATE_TYPE:
            v.problems.append("manifest.json: not an evidence-agent in-toto statement")
    except (ValueError, KeyError, TypeError):
        v.problems.append("manifest.json: not valid JSON of the expected form")
        return v
    sums: dict[str, str] = {}
    for line in sbytes.decode("utf-8", "replace").splitlines():
        m = re.match(r"^([0-9a-f]{64})  (.+)$", line)
        if not m:
            v.problems.append(f"SHA256SUMS: malformed line {line[:80]!r}")
            continue
        sums[m.group(2)] = m.group(1)
    if sums.get("manifest.json") != hashlib.sha256(mbytes).hexdigest():
        v.problems.append("SHA256SUMS: manifest.json hash does not match")
    if sums.get("manifest.json.sig") != hashlib.sha256(msig).hexdigest():
        v.problems.append("SHA256SUMS: manifest.json.sig hash does not match")
    present = set(file_list(root)) - set(CONTROL_FILES) - {"manifest.json"}
    for rel in sorted(present - set(subjects)):
        v.problems.append(f"{rel}: file added after signing (not in the manifest)")
    for rel in sorted(set(subjects) - present):
        v.problems.append(f"{rel}: file listed in the manifest is missing")
    for rel in sorted(present & set(subjects)):
        try:
            want = str(subjects[rel]["digest"]["sha256"])
            want_size = int((subjects[rel].get("annotations") or {}).get("size", MAX_CONTROL_BYTES))
            digest, size = _digest(root, rel, want_size)
        except (KeyError, TypeError, ValueError, AttributeError):
            v.problems.append(f"{rel}: manifest entry malformed")
            continue
        except OSError as e:
            v.problems.append(str(e) if isinstance(e, UnsafeFile) else f"{rel}: cannot be read ({e.strerror})")
            continue
        if size != want_size:
            v.problems.append(f"{rel}: content changed (size: {'more than ' if size > want_size else ''}{size} "
                              f"bytes, the manifest says {want_size})")
        elif digest != want:
            v.problems.append(f"{rel}: content changed (sha256 {digest[:12]}… != {want[:12]}…)")
        if sums.get(rel) != want:
            v.problems.append(f"{rel}: SHA256SUMS and manifest.json disagree")
    for rel in sorted(set(sums) - set(subjects) - {"manifest.json", "manifest.json.sig"}):
        v.problems.append(f"{rel}: listed in SHA256SUMS but not in the manifest")
    v.files = len(subjects)
    finished = (manifest.get("predicate") or {}).get("run", {}).get("finished")
    if finished:
        try:
            t = datetime.strptime(finished, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
            v.age_days = (datetime.now(timezone.utc) - t).total_seconds() / 86400
        except ValueError:
            v.warnings.append("run.finished is not a valid time")
    if max_age_days is not None and v.age_days is not None and v.age_days > max_age_days:
        v.stale = True
    _check_revisions(root, manifest.get("predicate") or {}, v)
    v.valid = not v.problems
    return v


def _check_revisions(root: str, pred: dict[str, Any], v: Verdict) -> None:
    """Earlier revisions kept under revisions/<n>/ (see collectors.attach) must still verify and match the record."""
    for r in pred.get("revisions") or []:
        n = r.get("revision") if isinstance(r, dict) else None
        if not isinstance(n, int):
            v.problems.append(f"revision record malformed: {str(r)[:80]!r}")
            continue
        mb, sig = _read(root, f"revisions/{n}/manifest.json", v), _read(root, f"revisions/{n}/manifest.json.sig", v)
        if mb is None or sig is None:
            v.problems.append(f"revisions/{n}: manifest.json or its signature missing")
            continue
        try:
            fp = signing.fingerprint(signing.verify(mb, sig.decode("ascii", "replace")))
        except signing.SignatureError as e:
            v.problems.append(f"revisions/{n}/manifest.json.sig: {e}")
            continue
        if r.get("fingerprint") and fp != r["fingerprint"]:
            v.problems.append(f"revisions/{n}: signed by {fp}, the revision record says {r['fingerprint']}")
        if r.get("manifest_sha256") and hashlib.sha256(mb).hexdigest() != r["manifest_sha256"]:
            v.problems.append(f"revisions/{n}/manifest.json: does not match the revision record")


def verify_path(path: str, pubkey_text: Optional[str] = None, max_age_days: Optional[float] = None) -> Verdict:
    """A bundle folder, or a .zip of one (extracted safely into a temporary folder, then removed)."""
    if os.path.isfile(path):
        import contextlib

        from .archive import ArchiveError, extracted

        with contextlib.ExitStack() as stack:
            try:
                root = stack.enter_context(extracted(path))
            except (ArchiveError, OSError) as e:
                return Verdict(valid=False, problems=[str(e)])
            return verify_bundle(root, pubkey_text, max_age_days)
    return verify_bundle(path, pubkey_text, max_age_days)

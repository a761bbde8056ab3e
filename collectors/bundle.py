"""Writes the evidence bundle: evidence files named as the guide asks, facts, results, manifest, signature.

Layout::

    results.json              verdicts (schema evidence-agent/results/v1)
    facts/<host>.json         typed facts per host; facts/_network.json for run-level facts
    evidence/자료<item>-<n>_<host>_<probe>.txt   raw outputs with a provenance header
    manifest.json             in-toto Statement v1: one subject per file (sha256, size) + run metadata
    manifest.json.sig         SSHSIG (Ed25519) over manifest.json
    SHA256SUMS                every file above (incl. manifest.json), for `sha256sum -c`
    SHA256SUMS.sig            SSHSIG over SHA256SUMS: the standard-tool entry point
    allowed_signers           the signer's public key, for convenience (pin your own copy)

Files are written as each host finishes (memory stays flat on large fleets); the
manifest is computed from what is on disk at the end.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import unicodedata
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

from probes.base import Evidence

from . import signing
from .redact import Tally, redact_bytes, redact_obj, scan_bytes, scan_json_file

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "urn:evidence-agent:bundle:v1"
CONTROL_FILES = ("manifest.json.sig", "SHA256SUMS", "SHA256SUMS.sig")
MAX_EVIDENCE_BYTES = 2 * 1024 * 1024


def safe_component(s: str, limit: int = 80) -> str:
    """A path component from untrusted or user text: no separators, no dots-only, no control chars."""
    s = unicodedata.normalize("NFC", s)
    s = re.sub(r"[^\w.\-가-힣]", "_", s)
    s = s.strip("._") or "_"
    return s[:limit]


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _clean(text: str) -> str:
    """Control characters (other than newline/tab) become visible escapes; terminals and viewers stay safe."""
    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", lambda m: f"\\x{ord(m.group()):02x}", text)


#: Written first into a bundle folder and removed by :func:`seal`: a folder holding it is an unfinished bundle
#: (an interrupted or killed run) that a rerun may remove. It names the writing process (pid).
UNFINISHED = ".evidence-agent-unfinished"


def unfinished_owner(root: str) -> "int | None":
    """The pid that wrote ``root``'s unfinished marker (0 when unreadable), or None when there is no marker."""
    try:
        with open(os.path.join(root, UNFINISHED), encoding="utf-8") as f:
            return int(f.read().split()[0])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, IndexError):
        return 0


class BundleWriter:
    """Thread-safe writer: serial numbers per guide item are allocated under a lock."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self._lock = threading.Lock()
        self._dirs: set[str] = set()
        self._serial: dict[str, int] = {}
        self._claimed: set[str] = set()  # casefolded names written by this writer
        self.evidence_index: list[dict[str, Any]] = []
        #: every redaction made while writing, by kind; finalize records it in results.json ``redactions``
        self.redactions = Tally()

    def create(self) -> None:
        if os.path.exists(self.root):
            if not os.path.isdir(self.root):
                raise FileExistsError(f"{self.root} exists and is not a directory")
            if os.listdir(self.root):
                raise FileExistsError(f"{self.root} is not empty; refusing to mix bundles")
        os.makedirs(self.root, exist_ok=True)
        with open(os.path.join(self.root, UNFINISHED), "x", encoding="utf-8") as f:
            f.write(f"{os.getpid()} this folder is an unfinished bundle until it is sealed\n")
        os.makedirs(os.path.join(self.root, "evidence"), exist_ok=True)
        os.makedirs(os.path.join(self.root, "facts"), exist_ok=True)

    def path(self, rel: str) -> str:
        full = os.path.normpath(os.path.join(self.root, rel))
        if not full.startswith(self.root + os.sep):
            raise ValueError(f"refusing to write outside the bundle: {rel!r}")
        return full

    def _target(self, rel: str) -> str:
        """The file's full path, its folder made once per folder (not once per file)."""
        full = self.path(rel)
        parent = os.path.dirname(full)
        if parent not in self._dirs:
            os.makedirs(parent, exist_ok=True)
            self._dirs.add(parent)
        return full

    def _claim(self, rel: str) -> str:
        """Reserve a file name for one write. Two writes to one name (or to names differing only in case,
        which collide when the bundle is unpacked on macOS or Windows) are a bug that would silently lose
        evidence: refused with FileExistsError, never overwritten."""
        folded = unicodedata.normalize("NFC", rel).casefold()
        with self._lock:
            if folded in self._claimed:
                raise FileExistsError(f"refusing to overwrite {rel!r} in the bundle (two writers chose one name)")
            self._claimed.add(folded)
        return self._target(rel)

    def _publish(self, tmp: str, full: str, rel: str) -> None:
        """Move the finished temporary file into place only if the name is free (link(2) never replaces)."""
        try:
            os.link(tmp, full)
        except FileExistsError:
            raise FileExistsError(f"refusing to overwrite {rel!r} in the bundle (the file already exists)") from None
        finally:
            os.unlink(tmp)

    def write_bytes(self, rel: str, data: bytes) -> str:
        """Every file of the bundle is written here or by :meth:`write_json`, and both redact secrets first."""
        data = redact_bytes(data, rel.endswith(".json"), self.redactions)
        full = self._claim(rel)
        tmp = f"{full}.{threading.get_ident()}.tmp"
        with open(tmp, "xb") as f:
            f.write(data)
        self._publish(tmp, full, rel)
        return rel

    def write_json(self, rel: str, obj: Any, redacted: bool = False) -> str:
        """Streamed to the file (a 500-host results.json is ~13 MB: never held as one string). Every string is
        redacted first, unless the caller already did (``redacted``: results.json, whose counts come last)."""
        if not redacted:
            obj = redact_obj(obj, self.redactions)
        full = self._claim(rel)
        tmp = f"{full}.{threading.get_ident()}.tmp"
        with open(tmp, "x", encoding="utf-8", newline="\n") as f:
            for piece in iter_readable(obj):
                f.write(piece)
            f.write("\n")
        self._publish(tmp, full, rel)
        return rel

    def evidence(self, host: str, ev: Evidence, header: dict[str, Any]) -> str:
        """Write one evidence file; returns its bundle-relative path."""
        item = ev.items[0] if ev.items else "0.0.0"
        with self._lock:
            n = self._serial.get(item, 0) + 1
            self._serial[item] = n
        ext = safe_component(ev.ext, 8)
        rel = f"evidence/자료{safe_component(item, 16)}-{n}_{safe_component(host)}_{safe_component(ev.label)}.{ext}"
        body = ev.content  # redacted with the whole file by write_bytes
        raw = body.encode("utf-8", "replace")
        truncated = len(raw) > MAX_EVIDENCE_BYTES
        if truncated:
            body = raw[:MAX_EVIDENCE_BYTES].decode("utf-8", "ignore")
        if ext in ("json", "xml"):
            data = body  # machine formats stay parseable; provenance goes into the index
        else:
            lines = [f"# evidence-agent evidence file ({rel.split('/')[-1]})"]
            for k, v in header.items():
                lines.append(f"# {k}: {_clean(str(v))}")
            lines.append(f"# items: {', '.join(ev.items)}")
            lines.append(f"# collected: {ev.collected_at}")
            lines.append(f"# exit code: {ev.exit_code if ev.exit_code is not None else 'none (not completed)'}")
            for i, cl in enumerate(_clean(ev.command).splitlines() or [""]):
                lines.append(f"# {'command: ' if i == 0 else '          '}{cl}")
            if truncated:
                lines.append(f"# NOTE: output cut at {MAX_EVIDENCE_BYTES} bytes")
            lines.append("# " + "-" * 70)
            data = "\n".join(lines) + "\n" + _clean(body) + ("\n" if body and not body.endswith("\n") else "")
        self.write_bytes(rel, data.encode("utf-8"))
        with self._lock:
            self.evidence_index.append({
                "file": rel, "host": host, "label": ev.label, "items": list(ev.items),
                "collected_at": ev.collected_at, "exit_code": ev.exit_code,
                "description_ko": ev.description_ko, "description_en": ev.description_en,
                **({"truncated": True} if truncated else {}),
            })
        return rel


    def copy_evidence(self, src_root: str, rel: str, host: str, meta: dict[str, Any]) -> str:
        """Copy an evidence file from another (verified) bundle under a fresh serial; content unchanged."""
        name = rel.split("/")[-1]
        m = re.match(r"^자료([0-9.]+)-\d+_.*?_([^_]+)\.(\w+)$", name)
        item = (meta.get("items") or [m.group(1) if m else "0.0.0"])[0]
        label = meta.get("label") or (m.group(2) if m else "evidence")
        ext = m.group(3) if m else "txt"
        with self._lock:
            n = self._serial.get(item, 0) + 1
            self._serial[item] = n
        new = f"evidence/자료{safe_component(item, 16)}-{n}_{safe_component(host)}_{safe_component(label)}.{ext}"
        src = os.path.normpath(os.path.join(src_root, rel))
        if not src.startswith(os.path.abspath(src_root) + os.sep):
            raise ValueError(f"evidence path escapes its bundle: {rel!r}")
        from .safeio import read_regular

        self.write_bytes(new, read_regular(src_root, rel))
        with self._lock:
            self.evidence_index.append({**meta, "file": new, "host": host, "copied_from": rel})
        return new


def dumps_readable(obj: Any, depth: int = 3, level: int = 0) -> str:
    """JSON indented for its first ``depth`` levels, one compact line per value below.

    Why: ``json.dumps(indent=...)`` falls back to the pure-Python encoder, which cost ~13 ms per host for
    the facts files and seconds for a large fleet's results.json; compact values go through the C encoder.
    A reader still sees one key, one host or one fact per line.
    """
    return "".join(iter_readable(obj, depth, level))


def iter_readable(obj: Any, depth: int = 3, level: int = 0) -> Iterator[str]:
    """``dumps_readable`` in pieces, so a large results.json is written without building it whole in memory."""
    if depth <= 0 or not isinstance(obj, (dict, list)) or not obj:
        yield json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))
        return
    pad, end = "  " * (level + 1), "  " * level
    if isinstance(obj, dict):
        yield "{\n"
        for i, (k, v) in enumerate(obj.items()):
            yield (",\n" if i else "") + pad + json.dumps(str(k), ensure_ascii=False) + ": "
            yield from iter_readable(v, depth - 1, level + 1)
        yield "\n" + end + "}"
        return
    yield "[\n"
    for i, v in enumerate(obj):
        yield (",\n" if i else "") + pad
        yield from iter_readable(v, depth - 1, level + 1)
    yield "\n" + end + "]"


def file_list(root: str) -> list[str]:
    out = []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            rel = os.path.relpath(os.path.join(d, f), root).replace(os.sep, "/")
            out.append(rel)
    return out


def sha256_file(path: str) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


SIGNED_ARTEFACTS = frozenset(CONTROL_FILES) | {"manifest.json", "allowed_signers"}


def final_scan(root: str) -> dict[str, Any]:
    """The last look before signing: every file of the bundle read back and scanned by the same detectors the
    writer used. Anything found (a file written around the writer, a detector that only matches the file as a
    whole) is redacted in place, so it is never signed in clear, and reported."""
    found: dict[str, int] = {}
    files: list[str] = []
    scanned = 0
    for rel in file_list(root):
        # signed artefacts of the tool itself are never rewritten: the top-level ones are made after this scan;
        # a kept revision (attach, plan) or a merged source's manifest and signatures were sealed, and scanned,
        # before — rewriting one would break its signature (base64 signatures look like high-entropy secrets)
        if rel.rsplit("/", 1)[-1] in SIGNED_ARTEFACTS or rel.startswith("revisions/") or rel == UNFINISHED:
            continue
        full = os.path.join(root, rel)
        scanned += 1
        if rel.endswith(".json") and os.path.getsize(full) > (1 << 20):
            kinds = scan_json_file(full)  # a fleet's results.json: line by line, never whole in memory
            if not kinds:
                continue
        with open(full, "rb") as f:
            data = f.read()
        kinds = scan_bytes(data, rel.endswith(".json"))
        if not kinds:
            continue
        t = Tally()
        red = redact_bytes(data, rel.endswith(".json"), t)
        if red == data or scan_bytes(red, rel.endswith(".json")):
            red = b"<redacted: this file held a secret the redaction could not remove>\n"
        with open(full + ".tmp", "wb") as f:
            f.write(red)
        os.replace(full + ".tmp", full)
        files.append(rel)
        for k in kinds:
            found[k] = found.get(k, 0) + 1
    return {"files_scanned": scanned, "found": sum(found.values()), "by_kind": found, "files": files}


def seal(root: str, key: signing.KeyPair, predicate: dict[str, Any]) -> dict[str, Any]:
    """Scan for secrets one last time, hash every file, write manifest + SHA256SUMS, sign both. Returns the
    manifest. The unfinished marker goes last: a run killed anywhere before the signatures are complete leaves a
    folder that still says it is unfinished (verify rejects it; a rerun removes it)."""
    for name in CONTROL_FILES + ("manifest.json", "allowed_signers"):
        p = os.path.join(root, name)
        if os.path.exists(p):
            os.remove(p)
    scan = final_scan(root)
    with open(os.path.join(root, "allowed_signers"), "w") as f:
        f.write(f"{signing.SIGNER_ID} namespaces=\"{signing.NAMESPACE}\" {signing.pub_line(key.public, '')}\n")
    subjects: list[dict[str, Any]] = []
    for rel in file_list(root):
        if rel == UNFINISHED:
            continue
        digest, size = sha256_file(os.path.join(root, rel))
        subjects.append({"name": rel, "digest": {"sha256": digest}, "annotations": {"size": size}})
    pred = redact_obj(dict(predicate))
    pred["secret_scan"] = scan  # must say found: 0 (the writer redacted everything already)
    pred["signer"] = {"fingerprint": signing.fingerprint(key.public), "public_key": signing.pub_line(key.public),
                      "namespace": signing.NAMESPACE, "identity": signing.SIGNER_ID}
    pred["sealed"] = now_iso()
    manifest = {"_type": STATEMENT_TYPE, "subject": subjects, "predicateType": PREDICATE_TYPE, "predicate": pred}
    mbytes = (dumps_readable(manifest) + "\n").encode()
    with open(os.path.join(root, "manifest.json"), "wb") as f:
        f.write(mbytes)
    with open(os.path.join(root, "manifest.json.sig"), "w") as f:
        f.write(signing.sign(mbytes, key))
    with open(os.path.join(root, "manifest.json.sig"), "rb") as f:
        sigbytes = f.read()
    sums = []
    for s in subjects + [{"name": "manifest.json", "digest": {"sha256": hashlib.sha256(mbytes).hexdigest()}},
                         {"name": "manifest.json.sig", "digest": {"sha256": hashlib.sha256(sigbytes).hexdigest()}}]:
        sums.append(f"{s['digest']['sha256']}  {s['name']}\n")
    sbytes = "".join(sorted(sums, key=lambda x: x[66:])).encode()
    with open(os.path.join(root, "SHA256SUMS"), "wb") as f:
        f.write(sbytes)
    with open(os.path.join(root, "SHA256SUMS.sig"), "w") as f:
        f.write(signing.sign(sbytes, key))
    try:
        os.remove(os.path.join(root, UNFINISHED))
    except FileNotFoundError:
        pass
    return manifest


def read_json(root: str, rel: str) -> Any:
    """A JSON file of a bundle: a regular file (never through a link, never a FIFO), size-capped."""
    from .safeio import read_regular

    return json.loads(read_regular(root, rel).decode("utf-8"))


def iter_facts(root: str) -> Iterable[tuple[str, dict[str, Any]]]:
    d = os.path.join(root, "facts")
    for f in sorted(os.listdir(d)) if os.path.isdir(d) and not os.path.islink(d) else []:
        if f.endswith(".json"):
            yield f[:-5], read_json(root, f"facts/{f}")



"""A bundle as one .zip to hand over, and the careful way back from a .zip to a folder.

Why: auditors receive one file by mail or portal. File names carry Korean
(자료14.3.1-1_…); every entry is written with the UTF-8 flag (general-purpose bit
11) so Windows Explorer and other unzip tools show them intact. A received zip
is untrusted: :func:`safe_extract` refuses absolute paths, ``..``, drive letters,
backslashes, links and special files, duplicate names, and stops at a size and
entry cap counted on the bytes actually decompressed (header sizes can lie).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from typing import Iterator, Optional

from .bundle import file_list

UTF8_FLAG = 0x800
MAX_TOTAL_BYTES = 2 * 1024 ** 3
MAX_ENTRIES = 100_000


class ArchiveError(ValueError):
    pass


class _Utf8Info(zipfile.ZipInfo):
    """Marks every name as UTF-8 (bit 11). zipfile sets it only for non-ASCII names and clears
    ``flag_bits`` when an entry is opened for writing, so the flag is added where names are encoded."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # noqa: N802 (zipfile's name)
        return self.filename.encode("utf-8"), self.flag_bits | UTF8_FLAG


def pack(bundle: str, out: str) -> int:
    """Write ``bundle`` into ``out`` under one top folder named after the bundle; returns the entry count."""
    root = os.path.abspath(bundle)
    top = os.path.basename(root.rstrip(os.sep)) or "bundle"
    files = file_list(root)
    tmp = out + ".tmp"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for rel in files:
            full = os.path.join(root, rel)
            if os.path.islink(full) or not os.path.isfile(full):
                raise ArchiveError(f"{rel}: not a regular file; refusing to pack it")
            zi = _Utf8Info.from_file(full, f"{top}/{rel}")
            zi.external_attr = (stat.S_IFREG | 0o644) << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            with open(full, "rb") as src, z.open(zi, "w") as dst:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    dst.write(chunk)
    os.replace(tmp, out)
    return len(files)


def _check_name(name: str) -> list[str]:
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(f"{name!r}: absolute path, drive letter or backslash in the archive")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts) or not parts:
        raise ArchiveError(f"{name!r}: path escapes the archive")
    if any("\x00" in p for p in parts):
        raise ArchiveError(f"{name!r}: NUL in a path")
    return parts


def safe_extract(zpath: str, dest: str, max_total: int = MAX_TOTAL_BYTES, max_entries: int = MAX_ENTRIES) -> str:
    """Extract into ``dest`` (which must exist and be empty); returns the bundle root inside it."""
    dest = os.path.abspath(dest)
    total = 0
    seen: set[str] = set()
    try:
        z = zipfile.ZipFile(zpath)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as e:
        raise ArchiveError(f"{zpath}: not a readable zip ({e})") from None
    with z:
        infos = z.infolist()
        if len(infos) > max_entries:
            raise ArchiveError(f"{zpath}: {len(infos)} entries, more than the cap of {max_entries}")
        for zi in infos:
            parts = _check_name(zi.filename)
            if zi.flag_bits & 0x1:
                raise ArchiveError(f"{zi.filename!r}: encrypted entry; a bundle zip is never encrypted")
            if zi.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                method = {9: "deflate64", 12: "bzip2", 14: "lzma", 93: "zstd"}.get(zi.compress_type, "unknown")
                raise ArchiveError(f"{zi.filename!r}: compression method {zi.compress_type} ({method}) is not one "
                                   "`pack` writes (stored or deflate); refusing it")
            kind = stat.S_IFMT(zi.external_attr >> 16)  # 0: no Unix type recorded (plain file)
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise ArchiveError(f"{zi.filename!r}: a link or special file; refusing it")
            key = "/".join(parts)
            if key in seen:
                raise ArchiveError(f"{zi.filename!r}: duplicate entry")
            seen.add(key)
            target = os.path.join(dest, *parts)
            if not os.path.abspath(target).startswith(dest + os.sep):
                raise ArchiveError(f"{zi.filename!r}: path escapes the archive")
            if zi.is_dir():
                os.makedirs(target, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            try:
                with z.open(zi) as src, open(target, "xb") as dst:
                    for chunk in iter(lambda: src.read(1 << 20), b""):
                        total += len(chunk)
                        if total > max_total:
                            raise ArchiveError(f"{zpath}: more than {max_total} bytes once decompressed; refusing it")
                        dst.write(chunk)
            except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError, ValueError) as e:
                if isinstance(e, ArchiveError):
                    raise
                # bad CRC, truncated data, a method or feature zipfile cannot read: a clear refusal, no traceback
                raise ArchiveError(f"{zpath}: entry {zi.filename!r} cannot be read ({type(e).__name__}: {e})") from None
    return bundle_root(dest)


def bundle_root(dest: str) -> str:
    """The folder holding manifest.json: the archive root, or its single top folder."""
    if os.path.exists(os.path.join(dest, "manifest.json")):
        return dest
    entries = os.listdir(dest)
    if len(entries) == 1 and os.path.isdir(os.path.join(dest, entries[0])):
        return os.path.join(dest, entries[0])
    return dest


def default_zip_path(bundle: str, out: Optional[str] = None) -> str:
    root = os.path.abspath(bundle).rstrip(os.sep)
    return out or os.path.join(os.path.dirname(root), os.path.basename(root) + ".zip")


@contextlib.contextmanager
def extracted(zpath: str) -> Iterator[str]:
    """A packed bundle extracted safely into a temporary folder, removed on exit; yields the bundle root.
    Raises ArchiveError (or OSError) for an unsafe or unreadable zip."""
    tmp = tempfile.mkdtemp(prefix="evidence-agent-")
    try:
        yield safe_extract(zpath, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

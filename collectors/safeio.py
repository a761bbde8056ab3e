"""Reading a bundle that may have been tampered with: regular files and folders only, never more than expected.

Why: a received bundle is untrusted input. A FIFO in place of an evidence file
blocks a plain ``open`` for ever, a symlink to ``/dev/zero`` makes ``read()``
endless, and a symlink to a file of the same content (or a symlinked folder)
would let ``verify`` accept files that are not in the bundle at all. So every
reader of a bundle — ``verify``, ``report``, ``merge``, ``attach``, ``diff`` —
goes through this module: :func:`check_tree` refuses anything but regular files
and folders (``lstat``, links never followed), and :func:`open_regular` walks
the path one component at a time with ``O_NOFOLLOW`` (so a component swapped for
a link after the check is refused too), opens without blocking, checks with
``fstat`` that it got a regular file, and :func:`read_regular` stops at a cap
(the manifest's size for a listed file).
"""
from __future__ import annotations

import errno
import os
import stat
from typing import IO, Iterator, Optional

#: control files and JSON documents: generous, but bounded
MAX_CONTROL_BYTES = 256 * 1024 * 1024


class UnsafeFile(OSError):
    """A path inside a bundle that is not a regular file (link, FIFO, device, socket) or is too large."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def check_tree(root: str) -> list[str]:
    """Problems with the bundle's shape: every entry under ``root`` must be a regular file or a folder (lstat).
    ``root`` itself may be a link the user gave; nothing inside it may be."""
    problems: list[str] = []
    try:
        st = os.stat(root)
    except OSError as e:
        return [f"{root}: {e.strerror}"]
    if not stat.S_ISDIR(st.st_mode):
        return [f"{root}: not a directory"]
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            names = sorted(os.listdir(os.path.join(root, rel) if rel else root))
        except OSError as e:
            problems.append(f"{rel or '.'}: cannot be listed ({e.strerror})")
            continue
        for n in names:
            r = f"{rel}/{n}" if rel else n
            try:
                m = os.lstat(os.path.join(root, r)).st_mode
            except OSError as e:
                problems.append(f"{r}: {e.strerror}")
                continue
            if stat.S_ISDIR(m):
                stack.append(r)
            elif not stat.S_ISREG(m):
                problems.append(f"{r}: {_kind(m)}; a bundle holds regular files and folders only")
    return problems


def _parts(rel: str) -> list[str]:
    parts = [p for p in rel.replace(os.sep, "/").split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts) or rel.startswith("/"):
        raise UnsafeFile(errno.EINVAL, f"{rel!r}: not a path inside the bundle")
    return parts


def open_regular(root: str, rel: str) -> IO[bytes]:
    """``root/rel`` opened for reading, refusing links at every component, and anything not a regular file."""
    parts = _parts(rel)
    dfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for p in parts[:-1]:
            try:
                nfd = os.open(p, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dfd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafeFile(e.errno, f"{rel}: {p} is not a folder of the bundle (a link?)") from None
                raise
            os.close(dfd)
            dfd = nfd
        try:
            st = os.stat(parts[-1], dir_fd=dfd, follow_symlinks=False)
        except OSError as e:
            raise OSError(e.errno, f"{rel}: {e.strerror}") from None
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFile(errno.EINVAL, f"{rel}: {_kind(st.st_mode)}; a bundle holds regular files only")
        # O_NONBLOCK: should the entry be swapped for a FIFO after the lstat, open does not block
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0),
                     dir_fd=dfd)
    except OSError as e:
        if isinstance(e, UnsafeFile):
            raise
        if e.errno == errno.ELOOP:
            raise UnsafeFile(e.errno, f"{rel}: a symbolic link; a bundle holds regular files only") from None
        raise
    finally:
        os.close(dfd)
    try:
        fst = os.fstat(fd)
        if not stat.S_ISREG(fst.st_mode) or (fst.st_ino, fst.st_dev) != (st.st_ino, st.st_dev):
            raise UnsafeFile(errno.EINVAL, f"{rel}: changed while being opened; refusing it")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(root: str, rel: str, limit: int = MAX_CONTROL_BYTES) -> bytes:
    """The whole file, refused (UnsafeFile) when it is larger than ``limit``."""
    with open_regular(root, rel) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise UnsafeFile(errno.EFBIG, f"{rel}: larger than {limit} bytes; refusing to read it")
    return data


def read_optional(root: str, rel: str, limit: int = MAX_CONTROL_BYTES) -> Optional[bytes]:
    """As :func:`read_regular`, None when the file does not exist."""
    try:
        return read_regular(root, rel, limit)
    except UnsafeFile:
        raise
    except FileNotFoundError:
        return None


def chunks(root: str, rel: str, limit: int, size: int = 1 << 20) -> Iterator[bytes]:
    """The file's bytes in pieces, at most ``limit + 1`` bytes in all (one more tells the caller it is longer)."""
    left = limit + 1
    with open_regular(root, rel) as f:
        while left > 0:
            b = f.read(min(size, left))
            if not b:
                return
            left -= len(b)
            yield b

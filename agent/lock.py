"""One run at a time per bundles directory: an exclusive ``flock`` on ``DIR/.lock``.

Why flock: the kernel drops the lock when the process dies, however it dies
(kill -9, OOM, reboot), so a crashed run never leaves a stale lock for an operator
to clean up. The file itself stays; it only carries the holder's pid and start
time so the refusal message can say who holds it.
"""
from __future__ import annotations

import fcntl
import json
import os
import time
from typing import Any, Optional


class Locked(Exception):
    """Another process holds the lock. ``str()`` says which, when it could be read."""


class RunLock:
    """``with RunLock(path): ...`` — raises :class:`Locked` at once (never waits) when held elsewhere."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: Optional[int] = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            who = (f" (pid {holder.get('pid')}, started {holder.get('started')})"
                   if holder.get("pid") else "")
            raise Locked(f"another run holds {self.path}{who}; not starting a second one") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps({"pid": os.getpid(), "started": time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime())}) + "\n").encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _holder(fd: int) -> dict[str, Any]:
    try:
        data = os.pread(fd, 4096, 0)
        v = json.loads(data.decode() or "{}")
        return v if isinstance(v, dict) else {}
    except (OSError, ValueError):
        return {}

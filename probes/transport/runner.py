"""Pumps a framed script's output from a byte source into the frame parser under a deadline and a size cap.

Shared by the SSH and local transports so both enforce the same limits: a hung
command or an endless stream can cost at most its host's deadline, and memory stays
bounded because bytes go to the streaming parser as they arrive (never gathered whole).
"""
from __future__ import annotations

import time
from typing import Callable, Optional

#: Whole-host output cap: a host printing more than this is cut (and its sections marked).
MAX_HOST_BYTES = 32 * 1024 * 1024


def pump(
    recv: Callable[[], Optional[bytes]],
    sink: Callable[[bytes], None],
    deadline: float,
    cap: int = MAX_HOST_BYTES,
    cancelled: Optional[Callable[[], bool]] = None,
) -> Optional[str]:
    """Call ``recv`` (b"" at EOF, None when nothing arrived yet) and hand each piece to ``sink`` until EOF,
    deadline, cap or ``cancelled()``. Returns why the stream did not end by itself, or None."""
    size = 0
    while True:
        if time.monotonic() > deadline:
            return "host deadline exceeded"
        if cancelled is not None and cancelled():
            return "run interrupted"
        piece = recv()
        if piece is None:
            continue
        if piece == b"":
            return None
        if size + len(piece) > cap:
            sink(piece[: cap - size])
            return f"output larger than {cap // (1024 * 1024)} MiB; cut"
        size += len(piece)
        sink(piece)


def read_until(
    recv: Callable[[], Optional[bytes]],
    deadline: float,
    cap: int = MAX_HOST_BYTES,
) -> tuple[bytes, Optional[str]]:
    """The whole stream as bytes (for callers that need it raw; the transports use :func:`pump`)."""
    chunks: list[bytes] = []
    err = pump(recv, chunks.append, deadline, cap)
    return b"".join(chunks), err

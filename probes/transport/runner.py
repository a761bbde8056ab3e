"""Reads a framed script's output from a byte source under a hard deadline and a size cap.

Shared by the SSH and local transports so both enforce the same limits: a hung
command or an endless stream can cost at most its host's deadline.
"""
from __future__ import annotations

import time
from typing import Callable, Optional

#: Whole-host output cap: a host printing more than this is cut (and its sections marked).
MAX_HOST_BYTES = 32 * 1024 * 1024


def read_until(
    recv: Callable[[], Optional[bytes]],
    deadline: float,
    cap: int = MAX_HOST_BYTES,
) -> tuple[bytes, Optional[str]]:
    """Call ``recv`` (returns b"" at EOF, None when nothing arrived yet) until EOF, deadline or cap.

    Returns the bytes and, when the stream did not end by itself, why.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            return b"".join(chunks), "host deadline exceeded"
        piece = recv()
        if piece is None:
            continue
        if piece == b"":
            return b"".join(chunks), None
        chunks.append(piece)
        size += len(piece)
        if size > cap:
            return b"".join(chunks)[:cap], f"output larger than {cap} bytes; cut"

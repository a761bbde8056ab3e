"""Local transport: the same framed script run by this machine's ``sh``, for the agent mode.

psutil readings (sockets, interfaces, boot time) are applied afterwards by each
probe's ``local`` hook, so the agent works where ss/ip are missing.
"""
from __future__ import annotations

import getpass
import os
import select
import subprocess
import threading
from typing import Optional, Sequence

from ..base import CommandSpec
from ..batch import BatchResult, FrameParser, build_script, new_nonce, wrapper
from . import CANCEL, Session, TransportError
from .runner import pump


class LocalTransport:
    def __init__(self, become: bool = False, cancel: Optional[threading.Event] = None) -> None:
        self.become = become
        self.cancel = cancel or CANCEL
        self._proc: Optional[subprocess.Popen] = None

    def abort(self) -> None:
        """From another thread (Ctrl-C): end the script's process group now."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, 9)
            except ProcessLookupError:
                pass

    def open(self) -> Session:
        return Session(transport="local", info={"user": getpass.getuser(), "uid": os.getuid()})

    def run(self, commands: Sequence[CommandSpec], deadline: float) -> BatchResult:
        nonce = new_nonce()
        script = build_script(commands, nonce).encode()
        try:
            proc = subprocess.Popen(
                ["sh", "-c", wrapper(self.become, nonce)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as e:
            raise TransportError(f"cannot start sh: {e}") from None
        assert proc.stdin and proc.stdout
        self._proc = proc
        proc.stdin.write(script)
        proc.stdin.close()
        fd = proc.stdout.fileno()

        def recv() -> Optional[bytes]:
            r, _, _ = select.select([fd], [], [], 0.5)
            return os.read(fd, 65536) if r else None

        parser = FrameParser(commands, nonce)
        err = pump(recv, parser.feed, deadline, cancelled=self.cancel.is_set)
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, 9)
            except ProcessLookupError:
                pass
        proc.wait()
        proc.stdout.close()
        return parser.finish(err)

    def close(self) -> None:
        pass

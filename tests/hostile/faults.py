"""SSH fault servers on loopback for the hostile suite, and a small inventory builder.

Each fault is a real server: OpenSSH sshds (tests/sshd.py) with a ``ForceCommand`` that misbehaves, or plain
TCP listeners that refuse, never speak, speak one byte at a time, or die mid-handshake. Nothing leaves
127.0.0.1.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any, Optional

from sshd import SshdServer, free_port, keygen_ssh, start_sshd


class TcpFault:
    """A TCP listener on 127.0.0.1 whose every connection runs ``behave(conn)`` in a thread."""

    def __init__(self, behave) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.behave = behave
        self.conns: list[socket.socket] = []
        self.closed = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self.closed.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c: socket.socket) -> None:
        try:
            self.behave(c, self.closed)
        except OSError:
            pass

    def close(self) -> None:
        self.closed.set()
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


def silent(c: socket.socket, stop: threading.Event) -> None:
    """Accepts and never says anything: no SSH banner."""
    stop.wait(120)


def tarpit(c: socket.socket, stop: threading.Event) -> None:
    """A banner of endless pre-banner lines, one byte every 0.2 s (RFC 4253 allows lines before the banner)."""
    while not stop.is_set():
        c.sendall(b"x")
        if stop.wait(0.2):
            return


def escape_banner(c: socket.socket, stop: threading.Event) -> None:
    """A banner with terminal escape codes (clear screen, set title), then silence."""
    c.sendall(b"SSH-2.0-Evil\x1b[2J\x1b]0;pwned\x07\r\n")
    stop.wait(120)


def killed_mid_handshake(c: socket.socket, stop: threading.Event) -> None:
    """A valid banner, then the connection is reset."""
    c.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
    time.sleep(0.2)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()


def refused_port() -> int:
    return free_port()


def forced(tmp: str, name: str, command: str) -> SshdServer:
    """A real sshd whose every session runs ``command`` instead of the probe script."""
    return start_sshd(("127.0.0.1",), extra_config=f"ForceCommand {command}", workdir=os.path.join(tmp, name))


def wrong_key(tmp: str) -> str:
    path = os.path.join(tmp, "wrong_key")
    if not os.path.exists(path):
        keygen_ssh(path)
    return path


def host_entry(name: str, port: int, key: Optional[str] = None, known_hosts: Optional[str] = None,
               **ssh: Any) -> str:
    opts = {"port": port, **({"key_file": key} if key else {}), **({"known_hosts": known_hosts} if known_hosts else {}),
            **ssh}
    inner = ", ".join(f"{k}: {v}" for k, v in opts.items())
    return f"  - {{name: {name}, address: 127.0.0.1, ssh: {{{inner}}}}}"


def inventory(path: str, srv: SshdServer, entries: list[str], connect: float = 3, host: float = 20) -> str:
    """Inventory whose defaults reach ``srv`` (the good sshd); ``entries`` from :func:`host_entry`."""
    with open(path, "w") as f:
        f.write(f"""version: 1
scope: {{allow: [127.0.0.0/8]}}
defaults:
  ssh: {{user: root, key_file: {srv.client_key}, known_hosts: {srv.known_hosts}, port: {srv.port}}}
  timeouts: {{connect: {connect}, host: {host}}}
hosts:
""" + "\n".join(entries) + "\n")
    return path

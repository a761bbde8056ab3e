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


HOST_DEADLINE = 15
CONNECT = 3

#: fault host name -> (regex its error must match, collected?); "killed-mid-session" is checked apart
EXPECTED = {
    "refused": (r"^connection to 127\.0\.0\.1:\d+ refused$", False),
    "silent": (rf"^no SSH banner from 127\.0\.0\.1:\d+ within {CONNECT}s$", False),
    "tarpit": (rf"^no SSH banner from 127\.0\.0\.1:\d+ within {CONNECT}s$", False),
    "escape-banner": (r"^server 'SSH-2\.0-Evil\\x1b\[2J\\x1b\]0;pwned\\x07' at .* did not complete the SSH "
                      r"handshake", False),
    "reset-handshake": (r"closed the connection during the SSH handshake", False),
    "wrong-key": (r"^authentication failed for user 'root'$", False),
    "changed-hostkey": (r"^host key mismatch for 127\.0\.0\.1:\d+: got ssh-ed25519 .*man-in-the-middle", False),
    "unknown-hostkey": (r"^unknown host key for 127\.0\.0\.1:\d+ \(host_key_policy: strict", False),
    "hung-shell": (r"^connected, but the probe script did not run \(host deadline exceeded; no output at all\)$",
                   False),
    "garbage-50mb": (r"^connected, but the probe script did not run \(output larger than 32 MiB; cut; "
                     r"33554432 bytes without framing markers\)$", False),
    "endless": (r"^connected, but the probe script did not run \(output larger than 32 MiB; cut; "
                r"33554432 bytes without framing markers\)$", False),
}


def start_faults(tmp: str, good: SshdServer):
    """Start every SSH fault (``good`` is the ordinary sshd, used for the key and host-key faults).

    Returns (inventory entries by host name, stop function)."""
    servers = {
        "hung": forced(tmp, "hung", "sleep 600"),
        "garbage": forced(tmp, "garbage", "head -c 52428800 /dev/urandom"),
        "endless": forced(tmp, "endless", "yes"),
        # the probe script starts (stdin kept: an async list would get /dev/null), then its session is killed
        "killed": forced(tmp, "killed", "sh -c 'exec 3<&0; (eval \"$SSH_ORIGINAL_COMMAND\") <&3 & sleep 0.4; kill -9 $PPID'"),
    }
    tcp = {"silent": TcpFault(silent), "tarpit": TcpFault(tarpit), "escape": TcpFault(escape_banner),
           "reset": TcpFault(killed_mid_handshake)}
    other_kh = os.path.join(tmp, "changed_known_hosts")
    with open(other_kh, "w") as f:  # the host's name with another host's key: a changed host key
        f.write(f"[127.0.0.1]:{good.port} {servers['hung'].host_pub}\n")
    empty_kh = os.path.join(tmp, "empty_known_hosts")
    open(empty_kh, "w").close()
    p = good.port
    off = "'off'"  # quoted: a bare YAML off is a boolean

    def srv(name: str, key: str) -> str:
        s = servers[key]
        return host_entry(name, s.port, s.client_key, s.known_hosts)

    entries = {
        "refused": host_entry("refused", refused_port()),
        "silent": host_entry("silent", tcp["silent"].port, host_key_policy=off),
        "tarpit": host_entry("tarpit", tcp["tarpit"].port, host_key_policy=off),
        "escape-banner": host_entry("escape-banner", tcp["escape"].port, host_key_policy=off),
        "reset-handshake": host_entry("reset-handshake", tcp["reset"].port, host_key_policy=off),
        "wrong-key": host_entry("wrong-key", p, wrong_key(tmp)),
        "changed-hostkey": host_entry("changed-hostkey", p, known_hosts=other_kh),
        "unknown-hostkey": host_entry("unknown-hostkey", p, known_hosts=empty_kh),
        "hung-shell": srv("hung-shell", "hung"),
        "garbage-50mb": srv("garbage-50mb", "garbage"),
        "endless": srv("endless", "endless"),
        "killed-mid-session": srv("killed-mid-session", "killed"),
    }

    def stop() -> None:
        for s in servers.values():
            s.stop()
        for t in tcp.values():
            t.close()

    return entries, stop

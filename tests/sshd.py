"""A real OpenSSH sshd for the tests, on loopback, with its own config, host key and client key.

It runs in its own mount namespace where root's ``~/.bashrc`` is replaced by an
empty file (bind mount visible only inside that namespace), so the machine's
``pyenv init`` does not slow or stall every SSH command. Nothing outside the
namespace is modified except the privilege-separation directory sshd needs.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Optional


SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def free_port(addr: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


def wait_port(addr: str, port: int, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection((addr, port), timeout=0.5) as s:
                if s.recv(4).startswith(b"SSH"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"sshd did not come up on {addr}:{port}")


@dataclass
class SshdServer:
    dir: str
    port: int
    addresses: tuple[str, ...]
    client_key: str
    known_hosts: str
    host_pub: str
    proc: Optional[subprocess.Popen] = None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def sshd_config(d: str, listen: list[str], max_startups: str = "200:30:400", max_sessions: int = 50,
                extra: str = "", log_level: str = "ERROR") -> str:
    """A test sshd's config: its own host key and authorized_keys in ``d``, key auth only, root allowed."""
    lines = "\n".join(f"ListenAddress {a}" for a in listen)
    return f"""{lines}
HostKey {d}/host_key
AuthorizedKeysFile {d}/authorized_keys
PidFile {d}/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
LogLevel {log_level}
MaxStartups {max_startups}
MaxSessions {max_sessions}
UseDNS no
{extra}
"""


def keygen_ssh(path: str) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True)


def start_sshd(addresses: tuple[str, ...] = ("127.0.0.1",), port: Optional[int] = None,
               extra_config: str = "", workdir: Optional[str] = None) -> SshdServer:
    if os.geteuid() != 0:
        raise RuntimeError("the test sshd needs root (it logs in as root with its own authorized_keys)")
    d = workdir or tempfile.mkdtemp(prefix="ea-sshd-")
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    port = port or free_port(addresses[0])
    keygen_ssh(f"{d}/host_key")
    keygen_ssh(f"{d}/client_key")
    shutil.copy(f"{d}/client_key.pub", f"{d}/authorized_keys")
    host_pub = open(f"{d}/host_key.pub").read().split()[:2]
    with open(f"{d}/known_hosts", "w") as f:
        for a in addresses:
            f.write(f"[{a}]:{port} {host_pub[0]} {host_pub[1]}\n")
    with open(f"{d}/sshd_config", "w") as f:
        f.write(sshd_config(d, [f"{a}:{port}" for a in addresses], extra=extra_config))
    open(f"{d}/empty_bashrc", "w").close()
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    bashrc = os.path.expanduser("~/.bashrc")
    inner = f"exec {SSHD} -D -e -f {d}/sshd_config"
    if os.path.exists(bashrc):
        inner = f"mount --bind {d}/empty_bashrc {bashrc} && " + inner
    proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", inner],
                            stdout=subprocess.DEVNULL, stderr=open(f"{d}/sshd.log", "wb"))
    srv = SshdServer(d, port, addresses, f"{d}/client_key", f"{d}/known_hosts", " ".join(host_pub), proc)
    try:
        wait_port(addresses[0], port)
    except RuntimeError:
        srv.stop()
        raise RuntimeError("sshd failed to start: " + open(f"{d}/sshd.log").read()[-2000:])
    return srv


class Hang:
    """A TCP listener that accepts and never speaks: a hung sshd."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self) -> None:
        try:
            while True:
                c, _ = self.sock.accept()
                self.conns.append(c)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()

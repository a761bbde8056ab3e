"""Distributed-mode test parts: a real password-protected redis-server and real `evidence-agent worker` processes.

Everything listens on loopback (or, for the namespace lab, on an address inside a namespace the test made);
each worker is a separate process started with the same CLI a site runs, optionally inside a network namespace
(``ip netns exec``) so it reaches only its own zone's hosts plus the broker.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Optional, Sequence

from sshd import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


@dataclass
class Redis:
    """A redis-server the test owns: its own config and folder, a random password, no persistence."""

    bind: str = "127.0.0.1"
    port: int = 0
    password: str = field(default_factory=lambda: secrets.token_hex(16))
    netns: Optional[str] = None
    dir: str = ""
    proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        host = f"[{self.bind}]" if ":" in self.bind else self.bind
        return f"redis://:{self.password}@{host}:{self.port}/0"

    def start(self) -> "Redis":
        if not os.path.exists(REDIS):
            raise RuntimeError("redis-server is not installed (scripts/system-deps.sh test installs it)")
        self.dir = self.dir or tempfile.mkdtemp(prefix="ea-redis-")
        self.port = self.port or free_port(self.bind if not self.netns else "127.0.0.1")
        conf = os.path.join(self.dir, "redis.conf")
        with open(conf, "w") as f:
            f.write(f"bind {self.bind}\nport {self.port}\nrequirepass {self.password}\nprotected-mode yes\n"
                    f"save \"\"\nappendonly no\ndaemonize no\ndir {self.dir}\nlogfile {self.dir}/redis.log\n"
                    "unixsocket \"\"\nmaxclients 2000\n")
        os.chmod(conf, 0o600)
        argv = [REDIS, conf]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        self.wait()
        return self

    def client(self):  # noqa: ANN201 - redis.Redis
        import redis

        return redis.Redis(host=self.bind, port=self.port, password=self.password, socket_timeout=2,
                           socket_connect_timeout=2)

    def wait(self, timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log()[-1000:]}")
            try:
                if self.netns:
                    r = subprocess.run(["ip", "netns", "exec", self.netns, "redis-cli", "-h", self.bind, "-p",
                                        str(self.port), "--no-auth-warning", "-a", self.password, "ping"],
                                       capture_output=True, text=True, timeout=5)
                    if r.stdout.strip() == "PONG":
                        return
                elif self.client().ping():
                    return
            except Exception:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING")

    def log(self) -> str:
        try:
            with open(os.path.join(self.dir, "redis.log")) as f:
                return f.read()
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL: the broker is lost, as when its machine dies."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> "Redis":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def worker_key(path: str) -> str:
    """Make a worker key; returns its public line (what the inventory's workers: lists)."""
    from collectors import signing

    k = signing.keygen(path)
    return signing.pub_line(k.public, f"worker-{os.path.basename(path)}")


@dataclass
class Worker:
    """One `evidence-agent worker` process (its own session: killed as a group)."""

    zones: Sequence[str]
    broker: str
    key: str
    name: str
    concurrency: int = 4
    pool: str = "threads"
    netns: Optional[str] = None
    extra: Sequence[str] = ()
    log_path: str = ""
    proc: Optional[subprocess.Popen] = None

    def start(self, wait: bool = True) -> "Worker":
        argv = [sys.executable, "-m", "agent.cli", "worker", "--key", self.key, "--hostname", self.name,
                "--concurrency", str(self.concurrency), "--pool", self.pool, "--log-json", *self.extra]
        for z in self.zones:
            argv += ["--zone", z]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        self.log_path = self.log_path or tempfile.mktemp(prefix=f"ea-worker-{self.name}-", suffix=".log")
        env = {**os.environ, "EVIDENCE_AGENT_BROKER": self.broker, "PYTHONPATH": ROOT}
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=open(self.log_path, "wb"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until the worker answers a broadcast for its queue (it consumes from then on)."""
        __import__("redis")  # fail early when the client is missing

        from agent.dist.broker import BrokerConfig, make_app, queue

        app = make_app(BrokerConfig(self.broker))
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited {self.proc.returncode}: {self.log()[-2000:]}")
            replies = app.control.inspect(timeout=0.5).active_queues() or {}
            for node, qs in replies.items():
                if node.endswith("@" + self.name) and {queue(z) for z in self.zones} <= {q["name"] for q in qs}:
                    return
        raise RuntimeError(f"worker {self.name} did not come up: {self.log()[-2000:]}")

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def pids(self) -> list[int]:
        """The worker's processes (main first, then pool children)."""
        if not self.proc:
            return []
        out = subprocess.run(["pgrep", "-s", str(self.proc.pid)], capture_output=True, text=True).stdout.split()
        return sorted(int(p) for p in out)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
            except ProcessLookupError:
                pass

"""Distributed-mode test parts: a real password-protected redis-server and real `evidence-agent worker` processes.

Everything listens on loopback (or, for the namespace lab, on an address inside a namespace the test made);
each worker is a separate process started with the same CLI a site runs, optionally inside a network namespace
(``ip netns exec``) so it reaches only its own zone's hosts plus the broker.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from redislab import RedisServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Redis(RedisServer):
    """The broker of the distributed-mode tests: :class:`redislab.RedisServer` (password, no persistence, its own
    folder) under the argument names these tests use — ``bind`` (an address inside a namespace for the lab) and
    ``dir`` (where its folder goes, for benchmarks that keep their work files together)."""

    def __init__(self, bind: str = "127.0.0.1", port: int = 0, netns: Optional[str] = None, dir: str = "",
                 **kw: Any) -> None:
        super().__init__(bind, port or None, netns=netns, maxmemory=kw.pop("maxmemory", "512mb"), **kw)
        if dir:
            os.makedirs(dir, mode=0o700, exist_ok=True)
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = dir
            self.conf = os.path.join(dir, "redis.conf")
            self.log = os.path.join(dir, "redis.log")

    @property
    def bind(self) -> str:
        return self.host


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

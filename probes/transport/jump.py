"""Jump hosts (bastions): targets reached through SSH ``direct-tcpip`` channels of a shared hop connection.

Why one connection per bastion: ops teams reach segmented servers through a bastion, and a bastion
(OpenSSH ``MaxSessions``, a PAM gateway's channel cap) refuses or stalls when a client opens too many
channels on one connection. So every target behind a bastion borrows a channel from the same connection,
and a per-bastion slot count (``max_sessions``, default 8, below OpenSSH's MaxSessions 10) bounds how many
are open at once: a target first waits for a slot (cancel-aware; that wait is not charged to its host
deadline), then opens its channel, and gives the slot back when its connection closes. A hop of a chain
holds one slot of its parent for as long as it is connected.

Each hop is an :class:`~probes.transport.ssh.SshTransport` of its own inventory host: its own user, key,
port, known_hosts and host-key policy, verified exactly like a target's. A hop that cannot be reached
(down, key refused, changed host key, hung banner) is remembered for the run, so every target behind it is
reported not collected with that hop's reason at once, while other hosts go on.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

import paramiko

from ..base import ReasonCode
from . import CANCEL, TransportError, describe_error, printable

MAX_RECONNECTS = 3  # a hop connection lost mid-run is made again at most this often
DEFAULT_MAX_SESSIONS = 8  # below OpenSSH's default MaxSessions (10)
#: RFC 4254 5.1 reason codes of a refused channel open, in the words an operator needs
_OPEN_FAILURES = {
    1: "the jump host refuses forwarding (AllowTcpForwarding / PermitOpen)",
    2: "the jump host could not open a TCP connection to it",
    3: "the jump host does not support direct-tcpip channels",
    4: "the jump host is out of resources (too many channels or connections)",
}


@dataclass(frozen=True)
class Hop:
    """A hop as the inventory describes it: name, address and its own SSH options (``SshOptions``)."""

    name: str
    address: str
    opts: Any  # probes.transport.ssh.SshOptions
    max_sessions: int = DEFAULT_MAX_SESSIONS


def _wait(acquire: Callable[[float], bool], cancel: threading.Event) -> None:
    """Block until ``acquire`` succeeds, checking for a cancelled run every 0.2 s."""
    while not acquire(0.2):
        if cancel.is_set():
            raise TransportError("run interrupted")


class Bastion:
    """One hop of a route: its connection (made on first use, through its parent when it has one), its slots."""

    def __init__(self, hop: Hop, parent: Optional["Bastion"], cancel: threading.Event) -> None:
        self.hop = hop
        self.parent = parent
        self.cancel = cancel
        self.slots = threading.BoundedSemaphore(hop.max_sessions)
        self._lock = threading.Lock()
        self._transport: Any = None  # SshTransport once connected
        self._info: Optional[dict[str, Any]] = None
        self.error: Optional[str] = None
        self.error_code: Optional[ReasonCode] = None  # the hop's own failure code, kept with its message
        self.reconnects = 0
        self._count = threading.Lock()
        self.open_now = 0
        self.peak = 0  # most channels this client had open at once on this hop (reported by JumpPool.stats)

    # -- the "via" interface SshTransport uses -------------------------------------------------------------
    def connect(self, address: str, port: int, timeout: float,
                cancel: threading.Event) -> tuple[Any, Callable[[], None], float]:
        """A direct-tcpip channel to ``address:port``, the callable that gives its slot back, and the seconds spent
        waiting for a free slot. Raises TransportError naming the hop when the hop or the target cannot be reached."""
        t0 = time.monotonic()
        _wait(lambda t: self.slots.acquire(timeout=t), cancel)
        waited = time.monotonic() - t0
        try:
            t = self._ensure(cancel)
            chan = self._open(t, address, port, timeout)
        except BaseException:
            self.slots.release()
            raise
        with self._count:
            self.open_now += 1
            self.peak = max(self.peak, self.open_now)
        released = threading.Event()

        def release() -> None:
            if not released.is_set():
                released.set()
                self._confirm_closed(t, chan)
                with self._count:
                    self.open_now -= 1
                self.slots.release()
        return chan, release, waited

    @staticmethod
    def _confirm_closed(t: paramiko.Transport, chan: paramiko.Channel, limit: float = 5.0) -> None:
        """Wait (bounded) until the bastion has answered our CHANNEL_CLOSE with its own, so the slot is free on the
        server's side too before another target may take it: sshd frees a channel in the same pass in which it
        sends its close, whereas a new channel open queued right behind our close would be counted while the old
        one still is (measured: 9 channels on a MaxSessions-10 bastion with 8 slots, without this wait). When the
        bastion's close was already in (it may have closed first, and paramiko answered at once), sshd is left a
        moment to process that answer."""
        chan.close()
        channels = getattr(t, "_channels", None)  # paramiko drops a channel from this map on the server's close
        if channels is None or not t.is_active():
            return
        if channels.get(chan.get_id()) is not chan:
            time.sleep(0.1)
            return
        end = time.monotonic() + limit
        while t.is_active() and time.monotonic() < end and channels.get(chan.get_id()) is chan:
            time.sleep(0.01)

    def describe(self) -> list[dict[str, Any]]:
        """The path to here, first hop first: what each hop was and how its host key was checked."""
        out = self.parent.describe() if self.parent else []
        i = self._info or {}
        out.append({"name": self.hop.name, "address": self.hop.address, "port": self.hop.opts.port,
                    "user": self.hop.opts.user, "max_sessions": self.hop.max_sessions,
                    **{k: i[k] for k in ("host_key_policy", "known_hosts", "server_version", "host_key_type",
                                         "host_key_fingerprint_sha256", "host_key_accepted_new",
                                         "host_key_unverified", "kex", "cipher") if k in i}})
        return out

    # -- internals -----------------------------------------------------------------------------------------
    def _where(self) -> str:
        return f"jump host {self.hop.name} ({self.hop.address}:{self.hop.opts.port})"

    def _ensure(self, cancel: threading.Event) -> paramiko.Transport:
        """The hop's live SSH transport, connecting it (and its parents) on first use; a failure is kept for the run."""
        _wait(lambda t: self._lock.acquire(timeout=t), cancel)
        try:
            if self.error:
                raise TransportError(self.error, self.error_code)
            if self._transport is not None:
                t = self._transport.client.get_transport() if self._transport.client else None
                if t is not None and t.is_active():
                    return t
                # dropped during the run (the targets in flight lost their channels): connect again, a few times
                self._transport.close()
                self._transport = None
                self.reconnects += 1
                if self.reconnects > MAX_RECONNECTS:
                    self.error = (f"{self._where()}: the connection to the jump host closed during the run "
                                  f"{self.reconnects} times")
                    self.error_code = ReasonCode.UNREACHABLE
                    raise TransportError(self.error, self.error_code)
            from .ssh import SshTransport  # here: ssh imports nothing of this module, and must not

            tr = SshTransport(self.hop.address, replace(self.hop.opts, become=False), cancel=self.cancel,
                              via=self.parent)
            try:
                session = tr.open()
            except TransportError as e:
                tr.close()
                self.error, self.error_code = f"{self._where()}: {e}", e.reason_code
                raise TransportError(self.error, self.error_code) from None
            self._transport = tr
            self._info = session.info
            assert tr.client is not None  # open() succeeded
            t = tr.client.get_transport()
            assert t is not None
            return t
        finally:
            self._lock.release()

    def _open(self, t: paramiko.Transport, address: str, port: int, timeout: float) -> paramiko.Channel:
        where = f"{address}:{port}"
        try:
            return t.open_channel("direct-tcpip", (address, port), ("127.0.0.1", 0), timeout=timeout)
        except paramiko.ChannelException as e:
            text = printable(str(getattr(e, "text", "") or e), 200)
            code = getattr(e, "code", None)
            meaning = (_OPEN_FAILURES.get(code, "channel open failed") if isinstance(code, int)
                       else "channel open failed")
            raise TransportError(f"{self._where()} could not connect to {where}: {meaning} "
                                 f"(server said {text!r}, code {code})", ReasonCode.UNREACHABLE) from None
        except paramiko.SSHException as e:
            if "Timeout" in str(e):
                raise TransportError(f"no connection to {where} through {self._where()} within {timeout:g}s",
                                     ReasonCode.TIMED_OUT) from None
            raise TransportError(f"{self._where()}: cannot open a channel to {where}: {describe_error(e)}") from None
        except (EOFError, OSError) as e:
            raise TransportError(f"{self._where()}: connection lost opening a channel to {where}: "
                                 f"{describe_error(e)}", ReasonCode.UNREACHABLE) from None

    def abort(self) -> None:
        tr = self._transport
        if tr is not None:
            tr.abort()

    def close(self) -> None:
        with self._lock:
            if self._transport is not None:
                self._transport.close()  # gives its parent slot back too
                self._transport = None
                if not self.error:
                    self.error = f"{self._where()}: closed (the run is over)"


class JumpPool:
    """Every hop connection of a run, keyed by its path (``b2`` reached through ``b1`` is not ``b2`` reached directly)."""

    def __init__(self, cancel: Optional[threading.Event] = None) -> None:
        self.cancel = cancel or CANCEL
        self._lock = threading.Lock()
        self._bastions: dict[tuple[str, ...], Bastion] = {}

    def route(self, hops: list[Hop]) -> Bastion:
        """The last hop of a chain, its parents made (not connected) as needed."""
        if not hops:
            raise ValueError("a route needs at least one hop")
        with self._lock:
            parent: Optional[Bastion] = None
            for i, hop in enumerate(hops):
                key = tuple(h.name for h in hops[: i + 1])
                b = self._bastions.get(key)
                if b is None:
                    b = self._bastions[key] = Bastion(hop, parent, self.cancel)
                parent = b
            assert parent is not None
            return parent

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per path: the most channels open at once and the hop's error, if any (for logs and benchmarks)."""
        return {" > ".join(k): {"peak_channels": b.peak, "max_sessions": b.hop.max_sessions, "error": b.error,
                                "reconnects": b.reconnects}
                for k, b in self._bastions.items()}

    def abort(self) -> None:
        for b in list(self._bastions.values()):
            try:
                b.abort()
            except Exception:  # best effort on Ctrl-C
                pass

    def close(self) -> None:
        """Children first: a hop's connection runs inside its parent's channel."""
        for key in sorted(self._bastions, key=len, reverse=True):
            self._bastions[key].close()

"""Agentless SSH transport (paramiko): one connection and one channel per host.

Host keys are checked against known_hosts (``strict``) unless the inventory says
``accept-new`` (trust on first use, written back and recorded) or ``off`` (recorded
loudly in the evidence). Legacy algorithms (ssh-rsa/SHA-1, group1/group14-sha1
KEX, CBC ciphers) are refused unless the inventory allows them, and their use is
recorded because it is itself a 12.1.1 finding.
"""
from __future__ import annotations

import enum
import functools
import logging
import os
import socket
import threading
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import paramiko

from ..base import CommandSpec, ReasonCode
from ..batch import BatchResult, FrameParser, build_script, new_nonce, wrapper
from . import CANCEL, Session, TransportError, describe_error, printable
from .runner import pump

LEGACY = {
    "kex": ["diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1", "diffie-hellman-group-exchange-sha1"],
    "keys": ["ssh-rsa", "ssh-dss"],
    "pubkeys": ["ssh-rsa", "ssh-dss"],
    "ciphers": ["aes128-cbc", "aes192-cbc", "aes256-cbc", "3des-cbc"],
}


@functools.cache
def _quiet_paramiko() -> None:
    """paramiko logs tracebacks of failed handshakes at ERROR level; the reason is reported per host instead.
    Set when the first connection is made, not at import: importing a module configures no logging."""
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)


class HostKeyPolicy(str, enum.Enum):
    """How an unknown host key is treated. Anything else is refused where the connection is made (fail closed):
    a value that slipped past inventory validation must never mean "accept any key"."""

    STRICT = "strict"  # the key must be in known_hosts
    ACCEPT_NEW = "accept-new"  # trust on first use, written to known_hosts and recorded
    OFF = "off"  # not verified; recorded loudly


@dataclass
class SshOptions:
    user: str = "root"
    port: int = 22
    key_file: Optional[str] = "~/.ssh/id_ed25519"
    known_hosts: str = "~/.ssh/known_hosts"
    host_key_policy: str = "strict"  # strict | accept-new | off
    password_env: Optional[str] = None  # name of an environment variable, never the password
    become: bool = False  # run the script through `sudo -n` once
    legacy_algorithms: bool = False
    connect_timeout: float = 10.0
    jump: tuple[str, ...] = ()  # inventory names of the hops, first hop first (resolved by agent.inventory)
    max_sessions: int = 8  # as a jump host: channels open at once on its one connection (probes.transport.jump)


class _AcceptNew(paramiko.MissingHostKeyPolicy):
    """Trust on first use: append the unknown key to known_hosts and remember that we did.

    Appended under a process-wide lock, never rewritten from this connection's copy: with many hosts
    collected at once, a full rewrite by each worker would drop the keys other workers just added.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.accepted: Optional[str] = None

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        with _FILES_LOCK:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        self.accepted = f"{key.get_name()} {key.fingerprint}"


class _Recorded(paramiko.MissingHostKeyPolicy):
    """host_key_policy: off — accept anything, but record the key that was seen."""

    def __init__(self) -> None:
        self.seen: Optional[str] = None

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        self.seen = f"{key.get_name()} {key.fingerprint}"


class _RecordingTransport(paramiko.Transport):
    """Remembers the negotiated key exchange (paramiko drops its kex engine after the handshake).

    Prefers AES-GCM: an AEAD cipher needs no separate MAC, and paramiko checks a MAC byte by byte in
    Python (measured: ~10% of the collector's CPU per host). CTR + HMAC-SHA2 stay as fallbacks.
    """

    _preferred_ciphers = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com") + tuple(
        c for c in paramiko.Transport._preferred_ciphers if not c.endswith("-gcm@openssh.com"))
    negotiated_kex: Optional[str] = None

    def _parse_kex_init(self, m: Any) -> None:  # noqa: D401 - paramiko hook
        super()._parse_kex_init(m)
        engine = type(self.kex_engine) if self.kex_engine is not None else None
        self.negotiated_kex = next((k for k, v in self._kex_info.items() if v is engine), None)


def _known_host_name(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


# Parsed known_hosts files and private keys, shared by all workers of a run and re-read when the file
# changes. Why: a fleet's known_hosts has a line per host, and parsing it (a key object per line) for every
# connection made the collector's cost grow with the square of the fleet size.
_FILES_LOCK = threading.Lock()
_KNOWN_HOSTS: dict[str, tuple[tuple[int, int], paramiko.HostKeys]] = {}
_PKEYS: dict[str, tuple[tuple[int, int], paramiko.PKey]] = {}


def _stamp(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_mtime_ns, st.st_size


def known_host_keys(path: str, name: str) -> dict[str, paramiko.PKey]:
    """The keys known_hosts lists for ``name`` (hashed entries included), from a cached parse."""
    with _FILES_LOCK:
        stamp = _stamp(path)
        hit = _KNOWN_HOSTS.get(path)
        if hit is None or hit[0] != stamp:
            hit = (stamp, paramiko.HostKeys(path))
            _KNOWN_HOSTS[path] = hit
    entry = hit[1].lookup(name)
    return dict(entry) if entry else {}


def private_key(path: str) -> Optional[paramiko.PKey]:
    """The private key, parsed once per run; None when paramiko must try it itself (e.g. a passphrase)."""
    with _FILES_LOCK:
        stamp = _stamp(path)
        hit = _PKEYS.get(path)
        if hit is None or hit[0] != stamp:
            try:
                hit = (stamp, paramiko.PKey.from_path(path))
            except (paramiko.SSHException, ValueError, OSError):
                return None
            _PKEYS[path] = hit
    return hit[1]


def host_key_policy(value: str, known_hosts: str) -> paramiko.MissingHostKeyPolicy:
    """The paramiko policy for an inventory value; an unknown value is refused, never "accept anything"."""
    try:
        kind = HostKeyPolicy(value)
    except ValueError:
        raise TransportError(f"unknown host_key_policy {printable(str(value), 40)!r} (expected strict, "
                             "accept-new or off); refusing to connect", ReasonCode.AUTH_FAILED) from None
    if kind is HostKeyPolicy.STRICT:
        return paramiko.RejectPolicy()
    if kind is HostKeyPolicy.ACCEPT_NEW:
        return _AcceptNew(known_hosts)
    if kind is HostKeyPolicy.OFF:
        return _Recorded()
    raise TransportError(f"host_key_policy {kind.value!r} is not handled; refusing to connect")  # pragma: no cover


#: paramiko's words for "the handshake never got going": the banner or the key exchange did not come in time
_NO_HANDSHAKE = ("Error reading SSH protocol banner", "No existing session")


class SshTransport:
    """``via``: a :class:`probes.transport.jump.Bastion` when the host is reached through jump hosts (the TCP
    connection is then a direct-tcpip channel of the bastion's shared connection); None: a direct connection."""

    def __init__(self, address: str, opts: SshOptions, cancel: Optional[threading.Event] = None,
                 via: Optional[Any] = None) -> None:
        self.address = address
        self.opts = opts
        self.cancel = cancel or CANCEL
        self.client: Optional[paramiko.SSHClient] = None
        self.session: Optional[Session] = None
        self._sock: Any = None  # a socket, or a paramiko Channel through a jump host
        self.via = via
        self._release: Optional[Any] = None  # gives the jump host's channel slot back
        self.waited = 0.0  # seconds spent waiting for a free channel slot on the jump host (not the host's time)

    def abort(self) -> None:
        """From another thread (Ctrl-C): end the connection now, so a handshake or a read returns at once."""
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _connect_socket(self) -> socket.socket:
        """Our own TCP connection, so TCP failures and SSH failures are told apart and a cancel can end it."""
        o = self.opts
        where = f"{self.address}:{o.port}"
        if self.via is not None:
            chan, self._release, self.waited = self.via.connect(self.address, o.port, o.connect_timeout, self.cancel)
            self._sock = chan
            if self.cancel.is_set():
                self.abort()
            return _DeferredClose(chan)  # type: ignore[return-value]
        try:
            sock = socket.create_connection((self.address, o.port), timeout=o.connect_timeout)
        except ConnectionRefusedError:
            raise TransportError(f"connection to {where} refused", ReasonCode.UNREACHABLE) from None
        except (socket.timeout, TimeoutError):
            raise TransportError(f"connection to {where} timed out after {o.connect_timeout:g}s",
                                 ReasonCode.TIMED_OUT) from None
        except OSError as e:
            raise TransportError(f"cannot connect to {where}: {describe_error(e)}", ReasonCode.UNREACHABLE) from None
        self._sock = sock
        if self.cancel.is_set():
            self.abort()
        return sock

    def _handshake_failure(self, e: BaseException, t: Optional[paramiko.Transport]) -> Optional[str]:
        """Say what the server did when the SSH handshake did not complete; None when it is another error."""
        o = self.opts
        where = f"{self.address}:{o.port}"
        if self.cancel.is_set():
            return "run interrupted"
        text = str(e)
        if not (isinstance(e, (EOFError, ConnectionError)) or any(x in text for x in _NO_HANDSHAKE)):
            return None
        version = printable(getattr(t, "remote_version", "") or "", 120)
        if not version:
            if isinstance(e, (EOFError, ConnectionError)) or "EOF" in text:
                return f"connection to {where} closed before the SSH banner"
            return f"no SSH banner from {where} within {o.connect_timeout:g}s"
        if isinstance(e, (EOFError, ConnectionError)):
            return f"server '{version}' at {where} closed the connection during the SSH handshake"
        return f"server '{version}' at {where} did not complete the SSH handshake within {o.connect_timeout:g}s"

    def open(self) -> Session:
        o = self.opts
        _quiet_paramiko()
        client = paramiko.SSHClient()
        kh = os.path.expanduser(o.known_hosts)
        policy = host_key_policy(o.host_key_policy, kh)
        if os.path.exists(kh):
            name = _known_host_name(self.address, o.port)
            try:
                for ktype, key in known_host_keys(kh, name).items():
                    client.get_host_keys().add(name, ktype, key)
            except (OSError, paramiko.SSHException) as e:
                raise TransportError(f"cannot read known_hosts {kh}: {describe_error(e)}") from None
        elif isinstance(policy, paramiko.RejectPolicy):
            raise TransportError(f"known_hosts file {kh} does not exist (host_key_policy: strict)",
                                 ReasonCode.AUTH_FAILED)
        client.set_missing_host_key_policy(policy)
        password = None
        if o.password_env:
            password = os.environ.get(o.password_env)
            if password is None:
                raise TransportError(f"environment variable {o.password_env} (password_env) is not set",
                                     ReasonCode.AUTH_FAILED)
        key_file = os.path.expanduser(o.key_file) if o.key_file else None
        if key_file and not os.path.exists(key_file):
            if password is None:
                raise TransportError(f"key_file {key_file} does not exist", ReasonCode.AUTH_FAILED)
            key_file = None
        disabled = {} if o.legacy_algorithms else LEGACY
        pkey = private_key(key_file) if key_file else None
        sock = self._connect_socket()
        made: list[paramiko.Transport] = []

        def factory(*args: Any, **kw: Any) -> paramiko.Transport:
            made.append(_RecordingTransport(*args, **kw))
            return made[-1]

        try:
            client.connect(
                self.address, port=o.port, username=o.user, pkey=pkey, key_filename=None if pkey else key_file,
                password=password, sock=sock,
                timeout=o.connect_timeout, banner_timeout=o.connect_timeout, auth_timeout=o.connect_timeout,
                allow_agent=False, look_for_keys=False, disabled_algorithms=disabled,
                transport_factory=factory,
            )
        except paramiko.BadHostKeyException as e:
            raise TransportError(
                f"host key mismatch for {self.address}:{o.port}: got {e.key.get_name()} {e.key.fingerprint}, "
                "known_hosts has a different key (possible man-in-the-middle)", ReasonCode.AUTH_FAILED
            ) from None
        except paramiko.AuthenticationException:
            raise TransportError(f"authentication failed for user {o.user!r}", ReasonCode.AUTH_FAILED) from None
        except (paramiko.SSHException, EOFError, ConnectionError) as e:
            client.close()
            why = self._handshake_failure(e, made[-1] if made else None)
            if why:
                raise TransportError(why) from None
            text = str(e)
            if "not found in known_hosts" in text:
                raise TransportError(
                    f"unknown host key for {self.address}:{o.port} (host_key_policy: strict; "
                    "add it to known_hosts or set accept-new)", ReasonCode.AUTH_FAILED
                ) from None
            hint = ""
            if "acceptable" in text.lower() or "incompatible" in type(e).__name__.lower():
                hint = (" — the server offers only legacy algorithms; if that is accepted, set "
                        "ssh: {legacy_algorithms: true} for this host (its use is recorded as a 12.1.1 finding)")
            raise TransportError(f"SSH negotiation failed: {describe_error(e)}{hint}") from None
        except (socket.timeout, TimeoutError):
            client.close()
            raise TransportError(f"connection to {self.address}:{o.port} timed out after {o.connect_timeout:.0f}s",
                                 ReasonCode.TIMED_OUT) from None
        except paramiko.ssh_exception.NoValidConnectionsError as e:
            refused = all(getattr(x, "errno", None) == 111 for x in e.errors.values())
            raise TransportError(f"connection to {self.address}:{o.port} "
                                 + ("refused" if refused else f"failed: {describe_error(e)}"),
                                 ReasonCode.UNREACHABLE) from None
        except ConnectionRefusedError:
            raise TransportError(f"connection to {self.address}:{o.port} refused", ReasonCode.UNREACHABLE) from None
        except OSError as e:
            raise TransportError(f"cannot connect to {self.address}:{o.port}: {describe_error(e)}",
                                 ReasonCode.UNREACHABLE) from None
        self.client = client
        t = client.get_transport()
        assert t is not None
        info: dict[str, Any] = {
            "address": self.address,
            "port": o.port,
            "user": o.user,
            "auth": "password" if password and not key_file else "publickey",
            "host_key_policy": o.host_key_policy,
            "known_hosts": kh,
            "server_version": printable(t.remote_version or "", 255),
            "host_key_type": t.host_key_type,
            "host_key_fingerprint_sha256": _sha256_fp(t.get_remote_server_key()),
            "kex": getattr(t, "negotiated_kex", None),
            "cipher": getattr(t, "local_cipher", None),
            "mac": getattr(t, "local_mac", None),
            "legacy_algorithms_allowed": o.legacy_algorithms,
        }
        legacy_used = [
            x for x in (t.host_key_type, getattr(t, "negotiated_kex", None), getattr(t, "local_cipher", None))
            if x in LEGACY["keys"] + LEGACY["kex"] + LEGACY["ciphers"]
        ]
        info["legacy_algorithms_used"] = legacy_used
        if isinstance(policy, _AcceptNew) and policy.accepted:
            info["host_key_accepted_new"] = policy.accepted
        if isinstance(policy, _Recorded):
            info["host_key_unverified"] = policy.seen or "key was already known"
        if self.via is not None:
            info["jump"] = self.via.describe()
        self.session = Session(transport="ssh", info=info)
        return self.session

    def run(self, commands: Sequence[CommandSpec], deadline: float) -> BatchResult:
        if self.client is None:
            raise TransportError("not connected")
        t = self.client.get_transport()
        if t is None or not t.is_active():
            raise TransportError("SSH connection closed")
        nonce = new_nonce()
        script = build_script(commands, nonce).encode()
        try:
            chan = t.open_session(timeout=self.opts.connect_timeout)
            chan.settimeout(0.5)
            chan.set_combine_stderr(True)
            chan.exec_command(wrapper(self.opts.become, nonce))
            chan.sendall(script)
            chan.shutdown_write()
        except (paramiko.SSHException, OSError) as e:
            raise TransportError(f"cannot start the probe script: {describe_error(e)}") from None

        def recv() -> Optional[bytes]:
            try:
                return chan.recv(65536)
            except socket.timeout:
                return None

        parser = FrameParser(commands, nonce)
        err = pump(recv, parser.feed, deadline, cancelled=self.cancel.is_set)
        chan.close()
        return parser.finish(err)

    def close(self) -> None:
        if self.client is not None:
            t = self.client.get_transport()
            self.client.close()
            self.client = None
            if self.via is not None and t is not None:
                t.join(2)  # see _DeferredClose: nothing may be sent on the channel once it is closed
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._release is not None:
            self._release()
            self._release = None


class _DeferredClose:
    """A jump-host channel as the target connection's socket, whose ``close`` waits for :meth:`SshTransport.close`.

    Why: paramiko's ``Transport.close`` closes its socket without waiting for its reader thread, which may still
    send a WINDOW_ADJUST on the channel; OpenSSH frees a channel once both sides sent CLOSE and disconnects the
    whole connection — every target behind the bastion — on a packet for a freed channel ("data packet referred
    to nonexistent channel", seen with 100 targets). So the channel is closed only after that thread ended."""

    def __init__(self, chan: paramiko.Channel) -> None:
        self._chan = chan

    def __getattr__(self, name: str) -> Any:
        return getattr(self._chan, name)

    def close(self) -> None:
        pass


def _sha256_fp(key: paramiko.PKey) -> str:
    import base64
    import hashlib

    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")



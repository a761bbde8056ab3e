"""A real ``redis-server`` owned by one test: the broker and result store of the distributed mode (issue 15).

Why a real server: the faults the distributed mode must survive (a password refused, the
broker killed mid-run, a TLS certificate that does not verify) are behaviours of Redis and
of the client libraries, which a fake would only imitate. Each server gets

* its own temporary directory with a generated config file (mode 0600: it holds the password);
* ``requirepass`` with a random password (or, with ``username=``, an ACL file whose only enabled user has
  it as a SHA-256 digest) and ``protected-mode yes``, bound to one address
  (a free loopback port by default, or a given address, e.g. inside a network namespace);
* no persistence (``save ""``, ``appendonly no``) and no unix socket, so nothing outlives it
  and nothing is reachable except the TCP listener;
* ``maxmemory`` with ``noeviction`` (an evicted queue key would be a lost task);
* optionally TLS only (``port 0`` + ``tls-port``), with a CA, server and client certificates made by
  ``openssl`` in the temporary directory: :attr:`RedisServer.url` is then the ``rediss://`` URL of the
  docs' recipe (``ssl_cert_reqs=required&ssl_ca_certs=…``).

:meth:`RedisServer.kill` is SIGKILL ("broker lost": no goodbye to the clients),
:meth:`RedisServer.restart` starts it again on the same address, port and password.
:func:`start_in_netns` runs it inside a network namespace (``ip netns exec NS redis-server CONF``);
readiness is then checked by a ``PING`` run inside that namespace.
"""
from __future__ import annotations

import atexit
import hashlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import quote

from tests.sshd import free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: what the docs' ACL user may do: everything but the dangerous commands (CONFIG, DEBUG, KEYS, FLUSHALL, …)
ACL_RULES = "~* &* +@all -@dangerous"

_LIVE: "weakref.WeakSet[RedisServer]" = weakref.WeakSet()


class RedisLabError(RuntimeError):
    """The test broker could not be started; the message carries the tail of its log."""


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a test PKI: the CA that signed the server certificate, and a client certificate."""

    ca_file: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str


def make_tls_files(d: str, server_names: tuple[str, ...] = ("127.0.0.1", "localhost")) -> TlsFiles:
    """A CA, a server certificate for ``server_names`` (IP or DNS subjectAltNames) and a client certificate."""
    os.makedirs(d, mode=0o700, exist_ok=True)
    p = lambda name: os.path.join(d, name)  # noqa: E731

    def run(*args: str) -> None:
        r = subprocess.run([OPENSSL, *args], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RedisLabError(f"openssl {args[0]} failed: {r.stderr.strip()[-400:]}")

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
        "-subj", "/CN=evidence-agent test broker CA", "-keyout", p("ca.key"), "-out", p("ca.crt"))
    sans = ",".join(("IP:" if _is_ip(n) else "DNS:") + n for n in server_names)
    for who, cn, ext in (("server", "evidence-agent test broker", f"subjectAltName={sans}\nextendedKeyUsage=serverAuth"),
                         ("client", "evidence-agent test worker", "extendedKeyUsage=clientAuth")):
        with open(p(f"{who}.ext"), "w") as f:
            f.write(ext + "\n")
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={cn}",
            "-keyout", p(f"{who}.key"), "-out", p(f"{who}.csr"))
        run("x509", "-req", "-in", p(f"{who}.csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"), "-CAcreateserial",
            "-days", "2", "-extfile", p(f"{who}.ext"), "-out", p(f"{who}.crt"))
    for f in os.listdir(d):
        os.chmod(p(f), 0o600)
    return TlsFiles(p("ca.crt"), p("server.crt"), p("server.key"), p("client.crt"), p("client.key"))


def _is_ip(s: str) -> bool:
    import ipaddress
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class RedisServer:
    """One ``redis-server`` process and its files; see the module docstring.

    ``tls=True`` serves TLS only; ``tls_client_auth=True`` additionally requires a client certificate
    (``tls-auth-clients yes``), which :attr:`url` then names (``ssl_certfile``/``ssl_keyfile``).
    ``netns`` runs it in that network namespace (see :func:`start_in_netns`).
    """

    def __init__(self, host: str = "127.0.0.1", port: Optional[int] = None, *, netns: Optional[str] = None,
                 password: Optional[str] = None, tls: bool = False, tls_client_auth: bool = False,
                 maxmemory: str = "64mb", db: int = 0, username: Optional[str] = None,
                 acl_rules: str = ACL_RULES, config: Optional[str] = None) -> None:
        self.host = host
        self.netns = netns
        self.password = password or secrets.token_urlsafe(24)  # URL-safe: no escaping surprises in the URL
        self.tls = tls or tls_client_auth
        self.tls_client_auth = tls_client_auth
        self.maxmemory = maxmemory
        self.db = db
        self.username = username  # an ACL user (aclfile, default user off) instead of requirepass
        self.acl_rules = acl_rules
        self.config = config  # a whole config text instead of config_text() (to test a documented recipe)
        self._fixed_port = port
        self.port = port or (6379 if netns else 0)
        self.dir = tempfile.mkdtemp(prefix="ea-redis-")
        os.chmod(self.dir, 0o700)
        self.conf = os.path.join(self.dir, "redis.conf")
        self.log = os.path.join(self.dir, "redis.log")
        self.tls_files: Optional[TlsFiles] = (make_tls_files(os.path.join(self.dir, "tls"), (host, "localhost"))
                                              if self.tls else None)
        self.proc: Optional[subprocess.Popen] = None

    # -- addresses ------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``redis://:PASSWORD@HOST:PORT/DB``, or with TLS the ``rediss://`` URL that verifies the server."""
        scheme = "rediss" if self.tls else "redis"
        user = quote(self.username, safe="") if self.username else ""
        base = f"{scheme}://{user}:{quote(self.password, safe='')}@{_url_host(self.host)}:{self.port}/{self.db}"
        if not self.tls_files:
            return base
        q = f"?ssl_cert_reqs=required&ssl_ca_certs={quote(self.tls_files.ca_file, safe='/')}"
        if self.tls_client_auth:
            q += (f"&ssl_certfile={quote(self.tls_files.client_cert, safe='/')}"
                  f"&ssl_keyfile={quote(self.tls_files.client_key, safe='/')}")
        return base + q

    def config_text(self) -> str:
        lines = [
            f"bind {self.host}",
            "protected-mode yes",
            (f"aclfile {self.acl_file}" if self.username else f"requirepass {self.password}"),
            "# no unixsocket line: the TCP listener is the only way in",
            "daemonize no",
            "supervised no",
            f"dir {self.dir}",
            f"logfile {self.log}",
            "loglevel notice",
            "save \"\"",
            "appendonly no",
            f"maxmemory {self.maxmemory}",
            "maxmemory-policy noeviction",
            "databases 16",
            "tcp-keepalive 60",
        ]
        if self.tls_files:
            t = self.tls_files
            lines += ["port 0", f"tls-port {self.port}", f"tls-cert-file {t.server_cert}",
                      f"tls-key-file {t.server_key}", f"tls-ca-cert-file {t.ca_file}",
                      f"tls-auth-clients {'yes' if self.tls_client_auth else 'no'}",
                      "tls-protocols \"TLSv1.2 TLSv1.3\""]
        else:
            lines.append(f"port {self.port}")
        return "\n".join(lines) + "\n"

    # -- life cycle -----------------------------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> "RedisServer":
        """Start and wait until an authenticated ``PING`` answers; a taken free port is retried."""
        if self.proc and self.proc.poll() is None:
            return self
        attempts = 1 if (self._fixed_port or self.netns) else 5
        for attempt in range(attempts):
            if not self._fixed_port and not self.netns and (attempt or not self.port):
                self.port = free_port(self.host)
            self._spawn()
            try:
                self._wait_ready(timeout)
                _LIVE.add(self)
                return self
            except RedisLabError:
                if self.proc and self.proc.poll() is None:
                    raise
                if attempt + 1 == attempts or "Address already in use" not in self.log_tail():
                    raise
        raise RedisLabError("unreachable")  # pragma: no cover

    @property
    def acl_file(self) -> str:
        return os.path.join(self.dir, "users.acl")

    def _spawn(self) -> None:
        if self.username:  # the password only as its SHA-256, as the docs recommend
            digest = hashlib.sha256(self.password.encode()).hexdigest()
            fd = os.open(self.acl_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(f"user default off\nuser {self.username} on #{digest} {self.acl_rules}\n")
        fd = os.open(self.conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.config if self.config is not None else self.config_text())
        argv = [REDIS_SERVER, self.conf]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]  # ip execs redis-server: same pid
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         start_new_session=True)

    def _wait_ready(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        while True:
            if self.proc is None or self.proc.poll() is not None:
                raise RedisLabError(f"redis-server exited ({self.proc.returncode if self.proc else '-'}): "
                                    f"{self.log_tail()}")
            if self.ping():
                return
            if time.monotonic() > end:
                self._terminate(signal.SIGKILL)
                raise RedisLabError(f"redis-server did not answer PING in {timeout:g}s: {self.log_tail()}")
            time.sleep(0.05)

    def ping(self) -> bool:
        """An authenticated ``PING`` from where the clients are (inside the namespace when there is one)."""
        if self.netns:
            code = ("import sys, redis\ntry:\n    ok = redis.Redis.from_url(sys.argv[1], socket_timeout=2, "
                    "socket_connect_timeout=2).ping()\nexcept Exception:\n    ok = False\nsys.exit(0 if ok else 1)\n")
            env = dict(os.environ, PYTHONPATH=ROOT)
            try:
                r = subprocess.run(["ip", "netns", "exec", self.netns, sys.executable, "-c", code, self.url],
                                   capture_output=True, timeout=15, env=env)
            except subprocess.TimeoutExpired:
                return False
            return r.returncode == 0
        try:
            return bool(self.client(socket_timeout=2, socket_connect_timeout=2).ping())
        except Exception:
            return False

    def client(self, **kw: Any) -> Any:
        """A redis-py client for :attr:`url` (a new connection pool each call)."""
        import redis
        return redis.Redis.from_url(self.url, **kw)

    def _terminate(self, sig: int, timeout: float = 10.0) -> None:
        p = self.proc
        if p is None or p.poll() is not None:
            return
        try:
            os.kill(p.pid, sig)
        except ProcessLookupError:
            return
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout)

    def stop(self) -> None:
        """Orderly shutdown (SIGTERM; nothing is saved), SIGKILL after 10 s."""
        self._terminate(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: the broker is lost without closing its connections' sessions politely."""
        self._terminate(signal.SIGKILL)

    def restart(self, kill: bool = False, timeout: float = 15.0) -> "RedisServer":
        """Stop (or kill) and start again on the same address, port and password (a broker coming back)."""
        self.kill() if kill else self.stop()
        self._fixed_port = self.port  # the clients' URL stays valid
        return self.start(timeout)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def close(self) -> None:
        """Stop the server and remove its directory (config, log, certificates)."""
        self.stop()
        _LIVE.discard(self)
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, n: int = 1500) -> str:
        try:
            with open(self.log, "rb") as f:
                data = f.read()
        except OSError:
            return "(no log)"
        return data[-n:].decode("utf-8", "replace").replace(self.password, "***")

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()


def start_redis(**kw: Any) -> RedisServer:
    """A started :class:`RedisServer` on a free loopback port (keyword arguments as for the class)."""
    return RedisServer(**kw).start()


def start_in_netns(netns: str, address: str, port: int = 6379, **kw: Any) -> RedisServer:
    """A started :class:`RedisServer` inside network namespace ``netns``, bound to ``address`` (an address that
    namespace has, e.g. its end of a lab bridge), via ``ip netns exec NS redis-server CONF``."""
    return RedisServer(address, port, netns=netns, **kw).start()


@atexit.register
def _cleanup() -> None:
    """A test that forgot :meth:`RedisServer.close` must not leave a broker running after pytest exits."""
    for srv in list(_LIVE):
        srv.kill()

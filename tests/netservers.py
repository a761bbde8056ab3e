"""Real servers on loopback for the network-probe tests and the benchmark.

Why: the network probes are only worth something if nmap and sslyze find exactly
what is there, so the tests plant known services (TLS servers with chosen protocol
versions and certificates, an HTTP server with known flaws, banner listeners on
21/23/3306) on dedicated 127.N.9.x addresses and compare. Everything binds to
loopback; every server is stopped by the context manager even when a test fails.

Readiness is read from ``/proc/net/tcp`` (LISTEN sockets), so waiting for a server
sends it no packet, which keeps the "no traffic" assertions of the scope tests exact.

Used as a pytest plugin (``pytest_plugins = ["netservers"]``) for the ``netlab``
fixture, and imported by ``benchmarks/net_bench.py``.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import ipaddress
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

# ---------------------------------------------------------------------------------------------
# Certificates


@dataclass
class CertFiles:
    cert: str
    key: str


def _name(cn: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "evidence-agent tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key_usage(**set_bits: bool) -> Any:
    from cryptography import x509

    bits = dict(digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False)
    bits.update(set_bits)
    return x509.KeyUsage(**bits)


def _write_key(path: str, key: Any) -> None:
    from cryptography.hazmat.primitives import serialization

    Path(path).write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))


def make_ca(directory: Path, cn: str = "evidence-agent Test CA") -> tuple[CertFiles, Any, Any]:
    """A self-signed CA (RSA 2048, 10 years); returns files, certificate and key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.timezone.utc)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder()
            .subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    files = CertFiles(str(directory / "ca.pem"), str(directory / "ca.key"))
    Path(files.cert).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(files.key, key)
    return files, cert, key


def make_leaf(directory: Path, stem: str, ca_cert: Any, ca_key: Any, dns: Sequence[str], ips: Sequence[str],
              not_before: dt.datetime, not_after: dt.datetime, key_size: int = 2048) -> CertFiles:
    """A server certificate signed by the CA, with SANs and serverAuth."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (x509.CertificateBuilder()
            .subject_name(_name(dns[0] if dns else ips[0])).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(_key_usage(key_encipherment=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    files = CertFiles(str(directory / f"{stem}.pem"), str(directory / f"{stem}.key"))
    Path(files.cert).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(files.key, key)
    return files


def make_self_signed(directory: Path, stem: str, cn: str, days: int = 30) -> CertFiles:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography import x509

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
            .sign(key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    files = CertFiles(str(directory / f"{stem}.pem"), str(directory / f"{stem}.key"))
    Path(files.cert).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(files.key, key)
    return files


# ---------------------------------------------------------------------------------------------
# Readiness without traffic


def listening(host: str, port: int, proto: str = "tcp") -> bool:
    """Is a socket bound to host:port (or the wildcard) in LISTEN state? Reads /proc, sends nothing."""
    ip = ipaddress.ip_address(host)
    table = f"/proc/net/{proto}" if ip.version == 4 else f"/proc/net/{proto}6"
    want_port = f"{port:04X}"
    try:
        lines = Path(table).read_text().splitlines()[1:]
    except OSError:
        return False
    for line in lines:
        parts = line.split()
        local, state = parts[1], parts[3]
        if proto == "tcp" and state != "0A":
            continue
        a, p = local.split(":")
        if p != want_port:
            continue
        if ip.version == 4:
            addr = ipaddress.ip_address(bytes.fromhex(a)[::-1])
        else:
            raw = bytes.fromhex(a)
            addr = ipaddress.ip_address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
        if addr == ip or addr.is_unspecified:
            return True
    return False


def wait_listening(host: str, port: int, timeout: float = 10.0,
                   proc: Optional[subprocess.Popen] = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if listening(host, port):
            return
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read().decode("utf-8", "replace") if proc.stdout else ""
            raise RuntimeError(f"server for {host}:{port} exited {proc.returncode}: {out[-800:]}")
        time.sleep(0.02)
    raise RuntimeError(f"nothing listening on {host}:{port} after {timeout}s")


# ---------------------------------------------------------------------------------------------
# Servers


class Lab:
    """Owns every server it starts and stops them all on close (reverse order)."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self.procs: list[subprocess.Popen] = []

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def process(self, argv: Sequence[str], host: str, port: int,
                cwd: Optional[str] = None) -> subprocess.Popen:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True)
        self.procs.append(proc)
        self._stack.callback(_stop, proc)
        wait_listening(host, port, proc=proc)
        return proc

    def s_server(self, host: str, port: int, cert: CertFiles, protocols: Sequence[str],
                 cipher: str = "DEFAULT", extra: Sequence[str] = ()) -> subprocess.Popen:
        """``openssl s_server -www`` accepting exactly ``protocols`` (tls1, tls1_1, tls1_2, tls1_3)."""
        argv = ["openssl", "s_server", "-accept", f"{host}:{port}", "-cert", cert.cert, "-key", cert.key,
                "-www", "-quiet", "-cipher", cipher]
        for p in ("tls1", "tls1_1", "tls1_2", "tls1_3"):
            if p not in protocols:
                argv.append(f"-no_{p}")
        argv += list(extra)
        return self.process(argv, host, port)

    def nginx(self, conf_text: str, prefix: Path, listens: Sequence[tuple[str, int]]) -> subprocess.Popen:
        prefix.mkdir(parents=True, exist_ok=True)
        (prefix / "logs").mkdir(exist_ok=True)
        conf = prefix / "nginx.conf"
        conf.write_text(conf_text)
        proc = self.process(["nginx", "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"], *listens[0])
        for h, p in listens[1:]:
            wait_listening(h, p, proc=proc)
        return proc

    def tcp(self, host: str, port: int, banner: bytes = b"") -> "TcpListener":
        srv = TcpListener(host, port, banner)
        self._stack.callback(srv.stop)
        return srv

    def udp(self, host: str, port: int, reply: bytes) -> "UdpResponder":
        srv = UdpResponder(host, port, reply)
        self._stack.callback(srv.stop)
        return srv

    def http(self, host: str, port: int, root: Path) -> "FlawedHttpServer":
        srv = FlawedHttpServer(host, port, root)
        self._stack.callback(srv.stop)
        return srv


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


class TcpListener:
    """Accepts, optionally sends a banner, closes; counts accepted connections."""

    def __init__(self, host: str, port: int, banner: bytes = b"") -> None:
        self.accepted = 0
        self.banner = banner
        fam = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted += 1
            try:
                if self.banner:
                    conn.sendall(self.banner)
                    time.sleep(0.05)
            except OSError:
                pass
            finally:
                conn.close()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=2)
        self.sock.close()


class UdpResponder:
    def __init__(self, host: str, port: int, reply: bytes) -> None:
        self.received = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.settimeout(0.2)
        self.reply = reply
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                _, addr = self.sock.recvfrom(4096)
            except (socket.timeout, OSError):
                continue
            self.received += 1
            with contextlib.suppress(OSError):
                self.sock.sendto(self.reply, addr)

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=2)
        self.sock.close()


#: Banners nmap's -sV recognises at once (NULL probe), so the scan needs no probe timeouts.
FTP_BANNER = b"220 ProFTPD 1.3.5 Server (Debian) [127.0.0.1]\r\n"
TELNET_BANNER = b"\xff\xfd\x18\xff\xfd\x20\xff\xfd\x23\xff\xfd\x27"
MYSQL_BANNER = (b"J\x00\x00\x00\n5.7.33-log\x00\x08\x00\x00\x00+:_-6=.&\x00\xff\xf7\x08\x02\x00\xff\x81\x15"
                b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00^s.O$l*qI:|I\x00mysql_native_password\x00")


class _FlawedHandler(http.server.SimpleHTTPRequestHandler):
    """Directory listings, a version banner, X-Powered-By, TRACE echo, a phpinfo page, a
    stack trace on /crash, a redirect to wherever ``/go?to=`` says. No security headers."""

    server_version = "SimpleHTTP/0.6"
    protocol_version = "HTTP/1.0"
    # A verbose error page: every error (404, 400 ...) shows a Python stack trace.
    error_message_format = ("<html><body><h1>Error %(code)d</h1><p>%(message)s</p><pre>"
                            "Traceback (most recent call last):\n"
                            '  File "/srv/app/handlers.py", line 17, in handle\n'
                            "FileNotFoundError: %(explain)s</pre></body></html>")

    def log_message(self, *args: Any) -> None:
        self.server.requests.append(self.requestline)  # type: ignore[attr-defined]

    def end_headers(self) -> None:
        self.send_header("X-Powered-By", "PHP/7.4.3")
        super().end_headers()

    def do_GET(self) -> None:
        if self.path.startswith("/go?to="):
            self.send_response(302)
            self.send_header("Location", self.path[len("/go?to="):])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/crash"):
            body = (b"<html><body><h1>500 Internal Server Error</h1><pre>Traceback (most recent call last):\n"
                    b'  File "/srv/app/views.py", line 42, in index\nZeroDivisionError: division by zero\n'
                    b"</pre></body></html>")
            self.send_response(500)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def do_TRACE(self) -> None:
        body = (self.requestline + "\r\n" + str(self.headers)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "message/http")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class FlawedHttpServer:
    def __init__(self, host: str, port: int, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        (root / "files").mkdir(exist_ok=True)
        (root / "files" / "backup.tar.gz").write_bytes(b"not really")
        (root / "test.html").write_text("<html><body><h1>test page</h1></body></html>")
        (root / "big.html").write_bytes(b"<html>" + b"A" * (2 * 1024 * 1024) + b"</html>")
        (root / "phpinfo.php").write_text("<html><title>phpinfo()</title><body>PHP Version 7.4.3"
                                          "</body></html>")
        handler = lambda *a, **kw: _FlawedHandler(*a, directory=str(root), **kw)  # noqa: E731

        class Srv(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                # Clients that stop reading (the body-cap test) reset the connection mid-write.
                self.errors.append(client_address)  # type: ignore[attr-defined]

        self.httpd = Srv((host, port), handler)
        self.httpd.requests = []  # type: ignore[attr-defined]
        self.httpd.errors = []  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    @property
    def requests(self) -> list[str]:
        return self.httpd.requests  # type: ignore[attr-defined]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=2)


NGINX_GOOD = """
worker_processes 1;
error_log {prefix}/logs/error.log;
pid {prefix}/logs/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    server_tokens off;
    client_body_temp_path {prefix}/tmp_body;
    proxy_temp_path {prefix}/tmp_proxy;
    fastcgi_temp_path {prefix}/tmp_fastcgi;
    uwsgi_temp_path {prefix}/tmp_uwsgi;
    scgi_temp_path {prefix}/tmp_scgi;
    server {{
        listen {host}:80;
        return 301 https://$host$request_uri;
    }}
    server {{
        listen {host}:443 ssl;
        server_name {name};
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        add_header Strict-Transport-Security "max-age=31536000; includeSubDomains" always;
        add_header Content-Security-Policy "default-src 'self'" always;
        add_header X-Frame-Options DENY always;
        add_header X-Content-Type-Options nosniff always;
        add_header Referrer-Policy no-referrer always;
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""


def have(*tools: str) -> Optional[str]:
    """The first missing tool, or None."""
    for t in tools:
        if shutil.which(t) is None:
            return t
    return None


# ---------------------------------------------------------------------------------------------
# The lab used by the tests


def _block_busy(second_octet: int) -> bool:
    """Does any socket listen on 127.<n>.8.0/23 already (another test session's lab)?"""
    lo = ipaddress.ip_network(f"127.{second_octet}.8.0/23")
    for table in ("/proc/net/tcp", "/proc/net/udp"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            addr = ipaddress.ip_address(bytes.fromhex(line.split()[1].split(":")[0])[::-1])
            if addr in lo:
                return True
    return False


def free_block(preferred: int = 0) -> int:
    """A second octet N whose 127.N.8.0/23 nobody listens on: concurrent test sessions do not collide."""
    import random

    candidates = [preferred] + random.sample(range(1, 255), 254)
    for n in candidates:
        if not _block_busy(n):
            return n
    raise RuntimeError("no free 127.N.8.0/23 block on loopback")


@dataclass
class NetLab:
    """What the ``netlab`` fixture planted: in-scope hosts in 127.N.9.0/24, the out-of-scope
    listener in 127.N.8.0/24 (N = 0 unless another session's lab is using it)."""

    tmp: Path
    ca_file: str
    n: int = 0
    http_server: Optional[FlawedHttpServer] = None
    outside_listener: Optional[TcpListener] = None
    extras: dict[str, Any] = field(default_factory=dict)

    def addr(self, last: int) -> str:
        """An address of the in-scope /24."""
        return f"127.{self.n}.9.{last}"

    @property
    def net(self) -> str:
        return f"127.{self.n}.9"

    @property
    def scope_allow(self) -> str:
        return f"127.{self.n}.9.0/24"

    @property
    def outside_net(self) -> str:
        return f"127.{self.n}.8.0/24"

    # .1 :21/:23/:3306 banners; .2 :443 TLS 1.0 + 1.1 only, ALL:COMPLEMENTOFALL:@SECLEVEL=0, self-signed;
    # .3 :443 TLS 1.2 + 1.3, test-CA certificate strong.test; .4 :443 TLS 1.2 + 1.3, expired test-CA
    # certificate, asks for a client certificate; .5 :80 flawed HTTP server; .6 nginx :80 -> https,
    # :443 with good headers and a test-CA certificate good.test.
    svc = property(lambda self: self.addr(1))
    weak = property(lambda self: self.addr(2))
    strong = property(lambda self: self.addr(3))
    expired = property(lambda self: self.addr(4))
    web = property(lambda self: self.addr(5))
    good = property(lambda self: self.addr(6))
    outside = property(lambda self: f"127.{self.n}.8.1")  # counting listener, out of scope
    outside_port = 8081

    @property
    def planted_tcp(self) -> dict[str, set[int]]:
        return {self.svc: {21, 23, 3306}, self.weak: {443}, self.strong: {443}, self.expired: {443},
                self.web: {80}, self.good: {80, 443}}


@contextlib.contextmanager
def start_netlab(tmp: Path, n: Optional[int] = None) -> Iterator[NetLab]:
    now = dt.datetime.now(dt.timezone.utc)
    with Lab() as lab:
        ca, ca_cert, ca_key = make_ca(tmp / "pki")
        nl = NetLab(tmp=tmp, ca_file=ca.cert, n=free_block() if n is None else n)
        weak = make_self_signed(tmp / "pki", "weak", "weak.test")
        strong = make_leaf(tmp / "pki", "strong", ca_cert, ca_key, ["strong.test"], [nl.strong],
                           now - dt.timedelta(days=1), now + dt.timedelta(days=200))
        expired = make_leaf(tmp / "pki", "expired", ca_cert, ca_key, ["expired.test"], [nl.expired],
                            now - dt.timedelta(days=400), now - dt.timedelta(days=10))
        good = make_leaf(tmp / "pki", "good", ca_cert, ca_key, ["good.test"], [nl.good],
                         now - dt.timedelta(days=1), now + dt.timedelta(days=300))
        lab.tcp(nl.svc, 21, FTP_BANNER)
        lab.tcp(nl.svc, 23, TELNET_BANNER)
        lab.tcp(nl.svc, 3306, MYSQL_BANNER)
        lab.s_server(nl.weak, 443, weak, ["tls1", "tls1_1"], cipher="ALL:COMPLEMENTOFALL:@SECLEVEL=0",
                     extra=["-legacy_renegotiation"])
        lab.s_server(nl.strong, 443, strong, ["tls1_2", "tls1_3"])
        lab.s_server(nl.expired, 443, expired, ["tls1_2", "tls1_3"], extra=["-verify", "1"])
        nl.http_server = lab.http(nl.web, 80, tmp / "www")
        lab.nginx(NGINX_GOOD.format(prefix=tmp / "nginx", host=nl.good, name="good.test", cert=good.cert,
                                    key=good.key), tmp / "nginx", [(nl.good, 80), (nl.good, 443)])
        nl.outside_listener = lab.tcp(nl.outside, nl.outside_port)
        yield nl


try:
    import pytest

    @pytest.fixture(scope="session")
    def netlab(tmp_path_factory: Any) -> Iterator[NetLab]:
        if os.geteuid() != 0:
            pytest.skip("the network lab binds ports below 1024 and SYN-scans: needs root")
        missing = have("nmap", "openssl", "nginx")
        if missing:
            pytest.skip(f"{missing} not installed")
        with start_netlab(tmp_path_factory.mktemp("netlab")) as nl:
            yield nl
except ImportError:  # imported by the benchmark without pytest
    pass

"""Public web server checks: what a visitor's requests reveal.

Why: guide item 14.5.1 asks for separate protection of public web servers —
encrypted transport (HTTPS), no unnecessary pages (test/default pages), no system
information leaking through error handling, no unneeded features. These are seen
from the outside with a handful of ordinary HTTP requests per URL.

How: ``requests`` with redirects handled by hand: every ``Location`` is resolved
and checked against the :class:`common.scope.Scope` before it is followed, and an
out-of-scope target is recorded, never contacted. Every request is bounded by a connect
timeout, a read timeout (each read) and a total time (connect, TLS handshake, headers and
body: a server that sends one byte a second, or never stops, is cut there by a timer that
shuts its socket down); every URL by its own time budget (``url_timeout``, and never more
than its fair share of what is left of the family's deadline, so one slow server cannot
starve the others); every body is streamed and cut at ``max_body_bytes`` (256 KiB). The
limits come from the inventory's ``web_options`` (agent/inventory.py). Proxy settings from the
environment are ignored (``trust_env = False``): a proxy would be a host outside
scope. Certificates are not verified unless the options name a CA bundle or the
system store (internal servers often use an internal CA); the fact records which.

Residual risk, stated: a URL given by *name* is resolved for the scope check and
again by the HTTP client when it connects; a DNS answer that changes in between
could point the second lookup elsewhere. Give IP addresses (or names pinned in
/etc/hosts) when that matters.

Requests per URL: the URL itself (redirects followed within scope), the http://
twin of an https URL on port 443 (HTTP→HTTPS redirect), a random 404 path, a
malformed request (raw socket), TRACE, the directory-listing paths and the default
pages of ``probes/data/web_default_pages.yaml`` (about 25 requests in all).

Fact ``web`` (source ``http``), ``data``::

    {"tls_verification": "system" | "ca_file:<path>" | "disabled (internal CA)",
     "default_pages_list": {"version": str, "entries": int},
     "urls": [{
        "url": str, "ip": str,
        "status": "checked" | "unknown",
        "reason": str | null,                # why unknown (first request failed, deadline ...)
        "status_code": int | null,           # of the final response
        "final_url": str | null,
        "redirect_chain": [{"url": str, "status": int, "location": str | null}],
        "redirect_refused": null | {"location": str, "reason": str},   # not followed (scope)
        "https_redirect": {
            "checked": bool,
            "http_url": str | null,          # the plain-HTTP URL tried
            "reachable": bool | null,        # plain HTTP answered at all
            "redirects_to_https": bool | null,
            "status": int | null, "location": str | null,
            "reason": str | null},           # why not checked / not reachable
        "version_disclosure": [{"header": str, "value": str, "has_version": bool}],
        "discloses_version": bool,           # some header has a version number
        "directory_listing": {"found": bool, "paths": [str]},
        "default_pages": [{"id": str, "path": str, "status": int, "what": str}],   # found only
        "default_pages_checked": int,
        "error_pages": {
            "not_found": {"path": str,       # a random path
                          "status": int | null,
                          "soft_404": bool,  # answered 200: page checks without a pattern compare bodies
                          "stack_trace": bool,
                          "version_strings": [str]},   # product/version strings in body and headers
            "malformed": {"status": int | null, "stack_trace": bool, "version_strings": [str],
                          "error": str | null}},
        "security_headers": {"strict-transport-security" | "content-security-policy" |
                             "x-frame-options" | "x-content-type-options" | "referrer-policy": str | null},
        "trace_enabled": bool | null,        # TRACE answered 200 echoing our request
        "requests": int,                     # requests sent for this URL
        "errors": [str],                     # individual requests that failed
        "evidence": str}]}                   # label of the request/response transcript

COLLECTED when every URL was checked, else PARTIAL (each URL carries its own status); NOT_COLLECTED when
no URL was given. Evidence: per URL, the request and response headers of every request and a
capped body excerpt (text, item 14.5.1).
"""
from __future__ import annotations

import ipaddress
import os
import re
import secrets
import socket
import ssl
import threading
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence
from urllib.parse import urljoin, urlsplit, urlunsplit

from common.scope import Scope, ScopeError

from ..base import Evidence, Fact, fact_from_entries

PROBE = "web"
ITEMS = ("14.5.1",)
DEFAULT_PAGES_FILE = Path(__file__).resolve().parent.parent / "data" / "web_default_pages.yaml"

SECURITY_HEADERS = ("strict-transport-security", "content-security-policy", "x-frame-options",
                    "x-content-type-options", "referrer-policy")
DISCLOSURE_HEADERS = ("server", "x-powered-by", "x-aspnet-version", "x-aspnetmvc-version", "x-generator",
                      "x-version", "x-backend-server", "via", "microsoftsharepointteamservices")
_HAS_VERSION = re.compile(r"\d+\.\d+|/\d+")
_VERSION_STRINGS = re.compile(
    r"\b(Apache(?:-Coyote)?|Apache Tomcat|nginx|Microsoft-IIS|PHP|OpenSSL|Tomcat|Jetty|JBoss|WildFly|"
    r"Werkzeug|Python|SimpleHTTP|Express|ASP\.NET|lighttpd|Node\.js|Django|Spring Boot|WebLogic|WebSphere|"
    r"Oracle-HTTP-Server|gunicorn|uvicorn|OpenResty|Caddy|LiteSpeed)[/ ]v?(\d+(?:\.\d+)+)",
    re.IGNORECASE)
_STACK_TRACE = re.compile(
    r"Traceback \(most recent call last\)|\bat [\w$.<>]+\([\w$]+\.java:\d+\)|java\.lang\.\w+Exception|"
    r"Exception in thread|\.php on line \d+|<b>(?:Fatal error|Warning|Parse error)</b>:|Stack trace:|"
    r"System\.\w+Exception|Server Error in '/' Application|Whitelabel Error Page|\bORA-\d{5}\b|SQLSTATE\[|"
    r"You have an error in your SQL syntax|you have DEBUG = True|Werkzeug Debugger|"
    r"\bat \S+ \(\S+\.js:\d+:\d+\)", re.IGNORECASE)
_REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class WebOptions:
    """How to check.

    Attributes:
        tls_verify: None: no certificate verification (recorded as "disabled (internal CA)");
            "system": the system store; any other value: path of a CA bundle.
        connect_timeout: seconds to open the TCP connection.
        read_timeout: seconds of silence allowed on each read.
        request_timeout: seconds for a whole request (connect, handshake, headers, body).
        url_timeout: seconds for all the requests of one URL.
        deadline: seconds for the whole web family (the caller turns it into the ``deadline`` argument).
        max_body_bytes: body bytes read per response.
        max_redirects: redirects followed per URL (each one checked against the scope).
        evidence_body_bytes: body excerpt kept per response in the evidence.
        default_pages_file: the YAML list; None: the packaged one.
        check_default_pages: request the listed default/test pages.
        user_agent: sent with every request.
    """

    tls_verify: Optional[str] = None
    connect_timeout: float = 5.0
    read_timeout: float = 5.0
    request_timeout: float = 10.0
    url_timeout: float = 30.0
    deadline: float = 300.0
    max_body_bytes: int = 256 * 1024
    max_redirects: int = 5
    evidence_body_bytes: int = 4096
    default_pages_file: Optional[str] = None
    check_default_pages: bool = True
    user_agent: str = "evidence-agent/0.1 (security self-check)"


def _iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_default_pages(path: Optional[str] = None) -> dict[str, Any]:
    import yaml

    with open(path or DEFAULT_PAGES_FILE, encoding="utf-8") as f:
        doc = yaml.safe_load(f) or {}
    pages = []
    for p in doc.get("pages", []):
        match = re.compile(p["match"], re.IGNORECASE | re.MULTILINE) if p.get("match") else None
        pages.append({"id": str(p["id"]), "path": str(p["path"]), "what": str(p.get("what", "")),
                      "status": [int(s) for s in p.get("status", [200])], "match": match})
    return {"version": str(doc.get("version", "")), "pages": pages,
            "listing_paths": [str(x) for x in doc.get("listing_paths", ["/"])],
            "listing_patterns": [re.compile(x, re.IGNORECASE) for x in doc.get("listing_patterns", [])]}


class _Watch:
    """One request's total-time timer (see :class:`_Tracker`)."""

    def __init__(self, tracker: "_Tracker", budget: float) -> None:
        self.started = time.monotonic()
        self.fired = False
        self._tracker = tracker
        self._timer = threading.Timer(budget, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        self._tracker.cut()

    def cancel(self) -> None:
        self._timer.cancel()


class _Tracker:
    """The sockets a checker's HTTP session opens, so that a request past its total time can be cut.

    Why: ``requests`` bounds the connect and each read, not the whole: a server sending one byte
    every few seconds (in the TLS handshake, the headers or the body) never trips the read timeout.
    A timer shuts the request's socket down at its total limit; the blocked read then returns and the
    request fails cleanly. The file descriptor is recorded when the TCP connection is made (before any
    TLS wrapping), and checked to be the same connection (addresses) before it is shut down.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._socks: list[tuple[int, Any, Any]] = []

    def add(self, sock: socket.socket) -> None:
        try:
            rec = (sock.fileno(), sock.getsockname(), sock.getpeername())
        except OSError:
            return
        with self._lock:
            self._socks.append(rec)

    def watch(self, budget: float) -> _Watch:
        with self._lock:  # connections of earlier requests are done with (no keep-alive, see _session)
            self._socks.clear()
        return _Watch(self, budget)

    def cut(self) -> None:
        with self._lock:
            socks, self._socks = self._socks, []
        for fd, local, peer in socks:
            try:
                s = socket.socket(fileno=os.dup(fd))
            except OSError:
                continue
            try:
                if s.getsockname() == local and s.getpeername() == peer:
                    s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            finally:
                s.close()


def _session(opts: "WebOptions") -> Any:
    """A requests session whose connections are tracked (total time per request) and never kept alive
    (each request opens its own connection, so a cut never hits the next one)."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    tracker = _Tracker()

    class Conn(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            s = super()._new_conn()
            tracker.add(s)
            return s

    class TlsConn(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            s = super()._new_conn()
            tracker.add(s)
            return s

    class Pool(HTTPConnectionPool):
        ConnectionCls = Conn

    class TlsPool(HTTPSConnectionPool):
        ConnectionCls = TlsConn

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": TlsPool}

    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: it would be a host outside scope
    session.headers["User-Agent"] = opts.user_agent
    session.headers["Connection"] = "close"
    adapter = Adapter(pool_connections=1, pool_maxsize=1, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.ea_tracker = tracker  # type: ignore[attr-defined]
    return session


class _Response:
    """What we keep of one response: status, headers, capped body."""

    def __init__(self, status: Optional[int], headers: Mapping[str, str], body: bytes, truncated: bool,
                 error: Optional[str] = None):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body
        self.truncated = truncated
        self.error = error

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class _Checker:
    """One URL's checks, sharing a session, a transcript and the deadline."""

    def __init__(self, url: str, ip: str, scope: Scope, opts: WebOptions, deadline: float,
                 session: Any, verify: Any):
        self.url = url      # as given: the HTTP->HTTPS check starts here
        self.ip = ip
        self.base = url     # where the page checks run: the final URL of the in-scope redirects
        self.base_ip = ip
        self.scope = scope
        self.opts = opts
        self.deadline = deadline
        self.session = session
        self.verify = verify
        self.transcript: list[str] = []
        self.requests = 0
        self.slow = 0  # requests cut at the request limit
        self.skipped = 0  # requests not sent: the URL's time budget was used up
        self.errors: list[str] = []
        self.cache: dict[tuple[str, str], _Response] = {}
        self.tracker: _Tracker = getattr(session, "ea_tracker", None) or _Tracker()
        self.out_of_time = "time budget of this URL used up; request not sent"

    # -- plumbing --------------------------------------------------------------------------

    def _time_left(self) -> float:
        return self.deadline - time.monotonic()

    def in_scope(self, url: str) -> Optional[str]:
        """None when url's host is in scope, else the reason."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"not an http(s) URL: {url}"
        try:
            self.scope.check_address(parts.hostname, f"web URL {url}")
        except ScopeError as exc:
            return str(exc)
        return None

    def fetch(self, method: str, url: str, headers: Optional[Mapping[str, str]] = None) -> _Response:
        """One request, no redirect followed, body streamed and capped, bounded in time."""
        key = (method, url)
        if key in self.cache and not headers:
            return self.cache[key]
        problem = self.in_scope(url)
        if problem:  # never reached in practice: callers check first; kept as the last guard
            raise ScopeError(problem)
        left = self._time_left()
        if left <= 0.5:
            self.skipped += 1
            resp = _Response(None, {}, b"", False, self.out_of_time)
            self._log(method, url, {}, resp)
            return resp
        budget = min(self.opts.request_timeout, left)
        import requests
        import urllib3

        self.requests += 1
        sent_headers: Mapping[str, str] = {}
        watch = self.tracker.watch(budget)  # shuts the socket down when the whole request overruns
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # InsecureRequestWarning when verification is off
                r = self.session.request(method, url, headers=dict(headers or {}), allow_redirects=False,
                                         stream=True, timeout=(min(self.opts.connect_timeout, budget),
                                                               min(self.opts.read_timeout, budget)),
                                         verify=self.verify)
            sent_headers = dict(r.request.headers)
            body, cut = bytearray(), False
            end = watch.started + budget
            try:
                while True:  # read1: what has arrived (a drip is kept byte by byte), never waits for 8 KiB
                    chunk = r.raw.read1(8192, decode_content=True)
                    if not chunk:
                        break
                    body += chunk
                    if len(body) >= self.opts.max_body_bytes:
                        del body[self.opts.max_body_bytes:]
                        cut = True
                        break
                    if time.monotonic() > end:
                        cut = True
                        break
            except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
                # Headers arrived, the body broke off (reset, read timeout, bad encoding): keep what came.
                cut = True
                if not watch.fired:
                    self.errors.append(f"{method} {url}: body cut: {_short(exc)}")
            finally:
                r.close()
            if watch.fired or time.monotonic() > end:
                self.errors.append(f"{method} {url}: body not finished within the request limit of {budget:g}s "
                                   f"(kept {len(body)} bytes)")
                self.slow += 1
            resp = _Response(r.status_code, r.headers, bytes(body), cut)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            if watch.fired:
                resp = _Response(None, {}, b"", False, f"no complete response within the request limit of "
                                                       f"{budget:g}s (connect, handshake and headers)")
                self.slow += 1
            else:
                resp = _Response(None, {}, b"", False, _short(exc))
            self.errors.append(f"{method} {url}: {resp.error}")
        finally:
            watch.cancel()
        self._log(method, url, sent_headers, resp)
        if not headers:
            self.cache[key] = resp
        return resp

    def _log(self, method: str, url: str, sent: Mapping[str, str], resp: _Response) -> None:
        lines = [f"### {method} {url}  ({_iso()})"]
        lines += [f"> {k}: {v}" for k, v in sent.items()]
        if resp.error:
            lines.append(f"! {resp.error}")
        else:
            lines.append(f"< status {resp.status}")
            lines += [f"< {k}: {v}" for k, v in resp.headers.items()]
            excerpt = resp.body[: self.opts.evidence_body_bytes].decode("utf-8", "replace")
            more = len(resp.body) > self.opts.evidence_body_bytes or resp.truncated
            lines.append("")
            lines.append(excerpt + ("\n[... body cut ...]" if more else ""))
        self.transcript.append("\n".join(lines) + "\n")

    # -- checks ----------------------------------------------------------------------------

    def follow(
        self, url: str
    ) -> tuple[Optional[_Response], str, list[dict[str, Any]], Optional[dict[str, str]]]:
        """GET url following redirects inside scope; (final response, final url, chain, refused)."""
        chain: list[dict[str, Any]] = []
        current = url
        for _ in range(self.opts.max_redirects + 1):
            resp = self.fetch("GET", current)
            if resp.status is None:
                return resp, current, chain, None
            loc = resp.headers.get("location")
            if resp.status not in _REDIRECTS or not loc:
                return resp, current, chain, None
            nxt = urljoin(current, loc)
            chain.append({"url": current, "status": resp.status, "location": nxt})
            problem = self.in_scope(nxt)
            if problem:
                return resp, current, chain, {"location": nxt, "reason": f"not followed: {problem}"}
            current = nxt
        too_many = {"location": current, "reason": f"more than {self.opts.max_redirects} redirects"}
        return resp, current, chain, too_many

    def https_redirect(self, chain: list[dict[str, Any]]) -> dict[str, Any]:
        parts = urlsplit(self.url)
        out: dict[str, Any] = {"checked": False, "http_url": None, "reachable": None,
                               "redirects_to_https": None, "status": None, "location": None, "reason": None}
        if parts.scheme == "http":
            out.update(checked=True, http_url=self.url)
            first = self.cache.get(("GET", self.url))
            out["reachable"] = bool(first and first.status is not None)
            if chain:
                out["status"], out["location"] = chain[0]["status"], chain[0]["location"]
            out["redirects_to_https"] = any(urlsplit(h["location"] or "").scheme == "https" for h in chain) \
                if out["reachable"] else None
            return out
        if parts.port not in (None, 443):
            out["reason"] = f"https on port {parts.port}: no known plain-HTTP twin"
            return out
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        twin = urlunsplit(("http", netloc, parts.path or "/", parts.query, ""))
        out.update(checked=True, http_url=twin)
        resp = self.fetch("GET", twin)
        if resp.status is None:
            out.update(reachable=False, reason=f"plain HTTP not reachable: {resp.error}")
            return out
        loc = resp.headers.get("location")
        out.update(reachable=True, status=resp.status, location=urljoin(twin, loc) if loc else None)
        out["redirects_to_https"] = resp.status in _REDIRECTS and bool(loc) and \
            urlsplit(urljoin(twin, loc)).scheme == "https"
        return out

    def rebase(self, final_url: str) -> None:
        if final_url != self.base:
            self.base = final_url
            host = urlsplit(final_url).hostname or ""
            self.base_ip = self.scope.check_address(host, f"web URL {final_url}")

    def path_url(self, path: str) -> str:
        parts = urlsplit(self.base)
        return urlunsplit((parts.scheme, parts.netloc, path, "", ""))

    def malformed(self) -> dict[str, Any]:
        """A request with a bad escape and a header line without a colon, over a raw socket."""
        out: dict[str, Any] = {"status": None, "stack_trace": False, "version_strings": [], "error": None}
        parts = urlsplit(self.base)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        left = self._time_left()
        if left <= 0.5:
            self.skipped += 1
            out["error"] = self.out_of_time
            return out
        budget = min(self.opts.request_timeout, left)
        host_hdr = parts.netloc.rsplit("@", 1)[-1]
        raw = (f"GET /%zz{secrets.token_hex(4)} HTTP/1.1\r\nHost: {host_hdr}\r\nThis is not a header\r\n"
               f"User-Agent: {self.opts.user_agent}\r\nConnection: close\r\n\r\n").encode()
        self.scope.check_address(self.base_ip, f"web URL {self.base}")  # defence in depth
        self.requests += 1
        data = bytearray()
        try:
            fam = socket.AF_INET6 if ipaddress.ip_address(self.base_ip).version == 6 else socket.AF_INET
            sock = socket.socket(fam, socket.SOCK_STREAM)
            end = time.monotonic() + budget
            sock.settimeout(min(self.opts.connect_timeout, budget))
            watch = self.tracker.watch(budget)  # a TLS handshake sent byte by byte is cut at the limit too
            try:
                sock.connect((self.base_ip, port))
                self.tracker.add(sock)
                sock.settimeout(max(0.1, min(self.opts.read_timeout, end - time.monotonic())))
                if parts.scheme == "https":
                    ctx = self._ssl_context()
                    # An IP here is matched against IP SANs; Python sends no SNI for it.
                    sock = ctx.wrap_socket(sock, server_hostname=parts.hostname)
                sock.sendall(raw)
                while len(data) < self.opts.max_body_bytes and time.monotonic() < end:
                    # each read waits no longer than what is left of the request: a drip cannot stretch it
                    sock.settimeout(max(0.05, min(self.opts.read_timeout, end - time.monotonic())))
                    chunk = sock.recv(8192)
                    if not chunk:
                        break
                    data += chunk
            finally:
                watch.cancel()
                sock.close()
        except (OSError, ssl.SSLError, ValueError) as exc:
            if not data:
                out["error"] = f"{type(exc).__name__}: {exc}"
        text = bytes(data[: self.opts.max_body_bytes]).decode("utf-8", "replace")
        m = re.match(r"HTTP/\d(?:\.\d)?\s+(\d{3})", text)
        out["status"] = int(m.group(1)) if m else None
        out["stack_trace"] = bool(_STACK_TRACE.search(text))
        out["version_strings"] = _versions(text)
        excerpt = text[: self.opts.evidence_body_bytes + 2048]
        self.transcript.append(f"### RAW malformed request to {self.base_ip}:{port}  ({_iso()})\n"
                               + "\n".join("> " + ln for ln in raw.decode().split("\r\n") if ln)
                               + ("\n! " + out["error"] if out["error"] else "")
                               + "\n<<<\n" + excerpt + "\n")
        return out

    def _ssl_context(self) -> ssl.SSLContext:
        if self.verify is False:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        if self.verify is True:
            return ssl.create_default_context()
        return ssl.create_default_context(cafile=str(self.verify))

    def trace(self) -> Optional[bool]:
        nonce = secrets.token_hex(8)
        resp = self.fetch("TRACE", self.base, headers={"X-EA-Trace": nonce})
        if resp.status is None:
            return None
        return resp.status == 200 and nonce in resp.text


def _same_page(body: bytes, soft_404_body: bytes, nf_path: str) -> bool:
    """Is body the server's catch-all page (the one it sent for our random path)?"""
    norm = body.replace(nf_path.encode(), b"")
    return norm.strip() == soft_404_body.replace(nf_path.encode(), b"").strip()


def _short(exc: BaseException) -> str:
    msg = str(exc)
    m = re.search(r"\[Errno -?\d+\] [^'\")]+|Connection refused|timed out|"
                  r"certificate verify failed[^'\")]*", msg)
    return f"{type(exc).__name__}: {m.group(0) if m else msg[:300]}"


def _versions(text: str) -> list[str]:
    seen: list[str] = []
    for m in _VERSION_STRINGS.finditer(text):
        s = f"{m.group(1)}/{m.group(2)}"
        if s not in seen:
            seen.append(s)
        if len(seen) >= 10:
            break
    return seen


def _verify_setting(opts: WebOptions) -> tuple[Any, str]:
    if opts.tls_verify is None or opts.tls_verify in ("", "disabled", "off"):
        return False, "disabled (internal CA)"
    if opts.tls_verify == "system":
        return True, "system"
    return opts.tls_verify, f"ca_file:{opts.tls_verify}"


def _label(url: str) -> str:
    parts = urlsplit(url)
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"web_{parts.scheme}_{parts.hostname}_{parts.port or ''}")[:80]


def check_url(url: str, ip: str, scope: Scope, opts: WebOptions, deadline: float, session: Any,
              verify: Any, pages: Mapping[str, Any]) -> tuple[dict[str, Any], Evidence]:
    c = _Checker(url, ip, scope, opts, deadline, session, verify)
    entry: dict[str, Any] = {
        "url": url, "ip": ip, "status": "unknown", "reason": None, "status_code": None, "final_url": None,
        "redirect_chain": [], "redirect_refused": None, "https_redirect": None, "version_disclosure": [],
        "discloses_version": False, "directory_listing": {"found": False, "paths": []}, "default_pages": [],
        "default_pages_checked": 0, "error_pages": None,
        "security_headers": {h: None for h in SECURITY_HEADERS},
        "trace_enabled": None, "requests": 0, "errors": c.errors, "evidence": _label(url),
    }
    final, final_url, chain, refused = c.follow(url)
    entry.update(redirect_chain=chain, redirect_refused=refused, final_url=final_url,
                 status_code=final.status if final else None)
    if final is None or final.status is None:
        entry["reason"] = f"no HTTP response from {final_url}: {final.error if final else 'not requested'}"
    elif c.slow and final.truncated and not final.body:
        entry["reason"] = "the server is too slow: no body within the request limit"
    else:
        entry["status"] = "checked"
        # Headers are judged on the last response we were allowed to see (the final page, or the
        # redirect that pointed out of scope).
        hdrs = final.headers
        for h in SECURITY_HEADERS:
            entry["security_headers"][h] = hdrs.get(h)
        seen_disclosure = {}
        for resp in [c.cache.get(("GET", url)), final]:
            if resp is None:
                continue
            for h in DISCLOSURE_HEADERS:
                if h in resp.headers and h not in seen_disclosure:
                    seen_disclosure[h] = resp.headers[h]
        entry["version_disclosure"] = [{"header": h, "value": v, "has_version": bool(_HAS_VERSION.search(v))}
                                       for h, v in seen_disclosure.items()]
        entry["discloses_version"] = any(d["has_version"] for d in entry["version_disclosure"])
        entry["https_redirect"] = c.https_redirect(chain)

        # Further checks run against the final origin (where the redirects, within scope, led).
        c.rebase(final_url)

        listing_paths = [urlsplit(final_url).path or "/"] + [p for p in pages["listing_paths"]]
        for p in dict.fromkeys(listing_paths):
            r = c.fetch("GET", c.path_url(p))
            if r.status == 200 and any(rx.search(r.text) for rx in pages["listing_patterns"]):
                entry["directory_listing"]["paths"].append(p)
        entry["directory_listing"]["found"] = bool(entry["directory_listing"]["paths"])

        # The 404 probe comes first: a server that answers 200 to anything ("soft 404") would
        # otherwise make every listed page look present.
        nf_path = f"/ea-{secrets.token_hex(6)}-404"
        nf = c.fetch("GET", c.path_url(nf_path))
        nf_text = nf.text + "\n" + "\n".join(f"{k}: {v}" for k, v in nf.headers.items()
                                             if k in DISCLOSURE_HEADERS)
        soft_404 = nf.status == 200
        entry["error_pages"] = {
            "not_found": {"path": nf_path, "status": nf.status, "soft_404": soft_404,
                          "stack_trace": bool(_STACK_TRACE.search(nf.text)),
                          "version_strings": _versions(nf_text)},
            "malformed": c.malformed(),
        }

        if opts.check_default_pages:
            for page in pages["pages"]:
                r = c.fetch("GET", c.path_url(page["path"]))
                entry["default_pages_checked"] += 1
                if r.status not in page["status"]:
                    continue
                if page["match"] is not None:
                    found = bool(page["match"].search(r.text))
                else:
                    found = not (soft_404 and r.status == nf.status and _same_page(r.body, nf.body, nf_path))
                if found:
                    entry["default_pages"].append({"id": page["id"], "path": page["path"], "status": r.status,
                                                   "what": page["what"]})

        entry["trace_enabled"] = c.trace()
        if c.skipped or time.monotonic() > deadline:
            entry["status"] = "unknown"
            entry["reason"] = (f"this URL's time budget ran out before every check ran ({c.skipped} request(s) "
                               "not sent)")
            if c.slow:
                entry["reason"] += (f": the server is too slow ({c.slow} request(s) cut at the request limit of "
                                    f"{opts.request_timeout:g}s)")
    entry["requests"] = c.requests
    ev = Evidence(
        label=entry["evidence"],
        command=f"evidence-agent web checks of {url} "
                f"(python-requests; tls verification: {_verify_setting(opts)[1]})",
        content="".join(c.transcript),
        collected_at=_iso(),
        items=ITEMS,
        ext="txt",
        description_ko=f"{url} 공개 웹서버 점검 요청/응답 기록",
        description_en=f"Requests and responses of the web server checks of {url}",
    )
    return entry, ev


def check_web(urls: Sequence[str], scope: Scope, opts: WebOptions, deadline: float) -> Fact:
    """Check each URL (see the module docstring).

    Raises :class:`common.scope.ScopeError` before any request when a URL's host is
    out of scope, ValueError when a URL is not http(s).
    """

    checked = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        checked.append((url, scope.check_address(parts.hostname, f"web URL {url}")))
    verify, verify_label = _verify_setting(opts)
    pages = load_default_pages(opts.default_pages_file)
    data: dict[str, Any] = {"tls_verification": verify_label,
                            "default_pages_list": {"version": pages["version"],
                                                   "entries": len(pages["pages"])},
                            "urls": []}
    evidence = []
    session = _session(opts)
    try:
        for i, (url, ip) in enumerate(checked):
            # each URL: its own budget, never more than its fair share of what is left, so a slow server
            # cannot take the time of the URLs after it
            now = time.monotonic()
            left = deadline - now
            share = max(left / (len(checked) - i), min(left, opts.request_timeout))
            url_deadline = now + max(0.0, min(opts.url_timeout, share))
            entry, ev = check_url(url, ip, scope, opts, url_deadline, session, verify, pages)
            data["urls"].append(entry)
            evidence.append(ev)
    finally:
        session.close()
    return fact_from_entries(PROBE, data, data["urls"], "checked", lambda e: e["url"], "http", evidence,
                             "no URL given")

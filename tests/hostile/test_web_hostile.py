"""Hostile web servers cannot stretch a run: real servers on 127.0.0.1 that drip their body, their headers or a
TLS handshake one byte at a time (for ever), next to a well-behaved server. Each request is cut at its total
limit, each URL at its budget, the family at its deadline, and the good URL is still checked. Limits come from
the inventory's ``web_options`` / ``tls_options.deadline`` and bad values are refused with file:line:key."""
from __future__ import annotations

import http.server
import os
import socket
import threading
import time

import pytest

from agent.cli import main
from agent.inventory import load_inventory
from agent.scope import Scope
from agent.yamlsrc import ConfigError
from probes.net.web import WebOptions, check_web
from conftest import write_inventory
from hostile.faults import TcpFault


def _request_read(c: socket.socket) -> None:
    c.settimeout(1)
    try:
        c.recv(65536)
    except OSError:
        pass


def drip(head: bytes, body: bytes = b"x", every: float = 0.3) -> TcpFault:
    """Answers each connection with ``head`` at once, then one byte of ``body`` every ``every`` seconds, for ever
    (until closed)."""
    def behave(c: socket.socket, stop: threading.Event) -> None:
        _request_read(c)
        if head:
            c.sendall(head)
        i = 0
        while not stop.is_set():
            c.sendall(body[i % len(body):][:1])
            i += 1
            if stop.wait(every):
                return
    return TcpFault(behave)


def fixed(raw: bytes) -> TcpFault:
    """Answers every request with the same raw bytes, then closes."""
    def behave(c: socket.socket, stop: threading.Event) -> None:
        _request_read(c)
        c.sendall(raw)
        c.close()
    return TcpFault(behave)


class Good:
    """A plain, quick HTTP server."""

    def __init__(self) -> None:
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                body = b"<html>hello</html>"
                self.send_response(200 if self.path == "/" else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_TRACE = do_GET  # noqa: N815

            def log_message(self, *a: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def servers():
    s = {
        "body": drip(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"),
        "headers": drip(b"", b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 10000),
        "tls": drip(b"", b"\x16\x03\x01\x00\x50" + b"\x00" * 100),
        "good": Good(),
    }
    yield s
    for v in s.values():
        v.close()


SCOPE = Scope.parse(["127.0.0.0/8"])
FAST = dict(connect_timeout=1.0, read_timeout=1.0, request_timeout=1.5, url_timeout=4.0)


def test_drips_are_cut_and_the_good_url_is_checked(servers):
    urls = [f"http://127.0.0.1:{servers['body'].port}/", f"http://127.0.0.1:{servers['headers'].port}/",
            f"https://127.0.0.1:{servers['tls'].port}/", f"http://127.0.0.1:{servers['good'].port}/"]
    t0 = time.monotonic()
    fact = check_web(urls, SCOPE, WebOptions(**FAST, deadline=60), time.monotonic() + 60)
    took = time.monotonic() - t0
    # three hostile URLs at most their budget each (+ slack for this loaded 2-core box), the good one quick
    assert took < 3 * 4.0 + 8, took
    by = {u["url"]: u for u in fact.data["urls"]}
    good = by[urls[3]]
    assert good["status"] == "checked" and good["status_code"] == 200, good
    for u in urls[:3]:
        e = by[u]
        assert e["status"] == "unknown", e
        assert e["reason"], e
    assert "too slow" in by[urls[0]]["reason"] or "budget" in by[urls[0]]["reason"]
    assert any("request limit" in err for err in by[urls[0]]["errors"])
    assert "request limit" in by[urls[1]]["reason"] or "request limit" in " ".join(by[urls[1]]["errors"])


def test_fair_share_keeps_time_for_the_last_url(servers):
    """Budgets larger than the deadline: the dripping URLs still leave the last one its share."""
    urls = [f"http://127.0.0.1:{servers['body'].port}/", f"http://127.0.0.1:{servers['headers'].port}/",
            f"http://127.0.0.1:{servers['good'].port}/"]
    opts = WebOptions(connect_timeout=1, read_timeout=1, request_timeout=2, url_timeout=1000, deadline=9)
    t0 = time.monotonic()
    fact = check_web(urls, SCOPE, opts, time.monotonic() + opts.deadline)
    assert time.monotonic() - t0 < opts.deadline + 4
    assert fact.data["urls"][2]["status"] == "checked", fact.data["urls"][2]


INV = """version: 1
scope: {{allow: [127.0.0.0/8]}}
web: [{urls}]
web_options: {{connect_timeout: 1, read_timeout: 1, request_timeout: 1.5, url_timeout: 3, deadline: 20}}
tls_options: {{deadline: 30}}
"""


def test_scan_takes_limits_from_the_inventory(servers, tmp_path, signing_key):
    urls = ", ".join(f'"http://127.0.0.1:{servers[k].port}/"' for k in ("body", "headers", "good"))
    inv = write_inventory(str(tmp_path / "inv.yml"), INV.format(urls=urls))
    assert load_inventory(inv).web_options["url_timeout"] == 3.0
    t0 = time.monotonic()
    assert main(["scan", "-i", inv, "--out", str(tmp_path / "b"), "--key", signing_key, "--only", "web", "-q"]) == 0
    assert time.monotonic() - t0 < 3 * 3 + 10
    import json

    net = json.load(open(os.path.join(tmp_path, "b", "facts", "_network.json"), encoding="utf-8"))
    statuses = [u["status"] for u in net["facts"]["web"]["data"]["urls"]]
    assert statuses == ["unknown", "unknown", "checked"], statuses


@pytest.mark.parametrize("value,problem", [
    (".inf", "finite"), (".nan", "finite"), ("-1", "positive"), ("0", "positive"), ("lots", "positive"),
    ("true", "positive"), ("100000", "more than a day"),
])
@pytest.mark.parametrize("where", ["web_options.request_timeout", "web_options.deadline", "tls_options.deadline"])
def test_bad_limits_are_refused_with_file_line_key(tmp_path, value, problem, where):
    section, key = where.split(".")
    body = f"version: 1\nscope: {{allow: [127.0.0.0/8]}}\n{section}:\n  {key}: {value}\n"
    path = write_inventory(str(tmp_path / "inv.yml"), body)
    with pytest.raises(ConfigError) as e:
        load_inventory(path)
    msg = str(e.value)
    assert "inv.yml:4:" in msg and key in msg and problem in msg, msg


def test_unknown_web_option_is_refused(tmp_path):
    path = write_inventory(str(tmp_path / "inv.yml"),
                           "version: 1\nscope: {allow: [127.0.0.0/8]}\nweb_options:\n  timeout: 3\n")
    with pytest.raises(ConfigError) as e:
        load_inventory(path)
    assert "inv.yml:4" in str(e.value) and "timeout" in str(e.value)


def test_hostile_header_is_inert_in_terminal_html_and_markdown(tmp_path, signing_key, capsys):
    """A Server header with a terminal escape (set the window title), a C1 control and HTML: shown, never acted on."""
    body = b"<html>ok</html>"
    srv = fixed(b"HTTP/1.1 200 OK\r\nServer: Evil/1.0 \x1b]0;pwned\x07 \x9b2J <script>alert(1)</script>\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
    try:
        inv = write_inventory(str(tmp_path / "inv.yml"),
                              f'version: 1\nscope: {{allow: [127.0.0.0/8]}}\nweb: ["http://127.0.0.1:{srv.port}/"]\n'
                              "web_options: {request_timeout: 3, url_timeout: 20}\n"
                              "hosts: [{name: web-1, transport: local, address: 127.0.0.1, roles: [web], public: true}]\n")
        out = str(tmp_path / "b")
        assert main(["scan", "-i", inv, "--out", out, "--key", signing_key, "--only", "host,web", "-q",
                     "--lang", "en"]) == 0
    finally:
        srv.close()
    term = capsys.readouterr()
    assert "\x1b" not in term.out + term.err and "\x9b" not in term.out + term.err
    for fmt in ("html", "md"):
        path = str(tmp_path / f"r.{fmt}")
        assert main(["report", out, "--format", fmt, "--out", path, "--pubkey", signing_key + ".pub",
                     "--lang", "en"]) == 0
        text = open(path, encoding="utf-8").read()
        assert "Evil/1.0" in text  # the finding names the header ...
        assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text  # ... inert
        assert "\\x1b" in text
        assert "<script>alert(1)" not in text


def test_visible_shows_controls_and_bidi_overrides():
    from output.safe_text import one_line, visible

    assert visible("cn=\x1b[31mred\u202egnp.exe\x00") == "cn=\\x1b[31mred\\u202egnp.exe\\x00"
    assert visible("서버 세션\t타임아웃\n") == "서버 세션\t타임아웃\n"
    assert one_line("a\nb\x9b") == "a\\nb\\x9b"

"""web probe against a deliberately flawed HTTP server and a hardened nginx."""
from __future__ import annotations

import time

import pytest

from agent.scope import Scope
from probes.base import FactStatus
from probes.net.web import WebOptions, _Checker, check_web, load_default_pages

pytest_plugins = ["netservers"]
pytestmark = pytest.mark.slow


def _one(fact):
    (entry,) = fact.data["urls"]
    return entry


def test_flawed_server(netlab):
    fact = check_web([f"http://{netlab.web}/"], Scope.parse([netlab.scope_allow]), WebOptions(),
                     time.monotonic() + 60)
    assert fact.status is FactStatus.COLLECTED, fact.reason
    e = _one(fact)
    assert e["status"] == "checked" and e["status_code"] == 200
    assert e["https_redirect"]["checked"] and e["https_redirect"]["redirects_to_https"] is False
    disclosed = {d["header"]: d for d in e["version_disclosure"]}
    assert disclosed["server"]["value"].startswith("SimpleHTTP/0.6 Python/3.")
    assert disclosed["server"]["has_version"]
    assert disclosed["x-powered-by"] == {"header": "x-powered-by", "value": "PHP/7.4.3", "has_version": True}
    assert e["discloses_version"] is True
    assert e["directory_listing"] == {"found": True, "paths": ["/", "/files/"]}
    assert {p["id"] for p in e["default_pages"]} == {"phpinfo", "test_html"}
    nf = e["error_pages"]["not_found"]
    assert nf["status"] == 404 and nf["stack_trace"] is True and nf["soft_404"] is False
    assert "PHP/7.4.3" in nf["version_strings"]
    assert e["error_pages"]["malformed"]["status"] in (400, 404)
    assert e["error_pages"]["malformed"]["stack_trace"] is True
    assert e["security_headers"] == {h: None for h in e["security_headers"]}
    assert e["trace_enabled"] is True
    assert fact.data["tls_verification"] == "disabled (internal CA)"
    (ev,) = fact.evidence
    assert ev.items == ("14.5.1",)
    assert f"### GET http://{netlab.web}/" in ev.content and "< server: SimpleHTTP" in ev.content
    assert "### RAW malformed request" in ev.content and "### TRACE" in ev.content


def test_hardened_server_via_http(netlab):
    fact = check_web([f"http://{netlab.good}/"], Scope.parse([netlab.scope_allow]),
                     WebOptions(tls_verify=netlab.ca_file), time.monotonic() + 60)
    assert fact.status is FactStatus.COLLECTED, fact.reason
    e = _one(fact)
    assert fact.data["tls_verification"] == f"ca_file:{netlab.ca_file}"
    assert e["redirect_chain"] == [{"url": f"http://{netlab.good}/", "status": 301,
                                    "location": f"https://{netlab.good}/"}]
    assert e["final_url"] == f"https://{netlab.good}/" and e["status_code"] == 200
    assert e["https_redirect"]["redirects_to_https"] is True
    assert all(e["security_headers"].values())
    assert e["security_headers"]["strict-transport-security"].startswith("max-age=31536000")
    assert e["version_disclosure"] == [{"header": "server", "value": "nginx", "has_version": False}]
    assert e["discloses_version"] is False
    assert e["directory_listing"]["found"] is False
    assert e["error_pages"]["not_found"]["soft_404"] is True
    assert e["default_pages"] == []  # nginx answers 200 "ok" to anything: not a test page
    assert e["trace_enabled"] is False
    assert e["error_pages"]["malformed"]["status"] == 400


def test_https_twin_and_verification_modes(netlab):
    scope = Scope.parse([netlab.scope_allow])
    e = _one(check_web([f"https://{netlab.good}/"], scope, WebOptions(), time.monotonic() + 60))
    assert e["status"] == "checked"
    assert e["https_redirect"]["http_url"] == f"http://{netlab.good}/"
    assert e["https_redirect"]["redirects_to_https"] is True
    fact = check_web([f"https://{netlab.good}/"], scope, WebOptions(tls_verify="system"),
                     time.monotonic() + 60)
    assert fact.data["tls_verification"] == "system"
    e = _one(fact)
    assert e["status"] == "unknown" and "certificate verify failed" in e["reason"]
    assert fact.status is FactStatus.PARTIAL  # the URL itself is unknown, with the reason


def test_redirect_out_of_scope_is_not_followed(netlab):
    before = netlab.outside_listener.accepted
    target = f"http://{netlab.outside}:{netlab.outside_port}/"
    fact = check_web([f"http://{netlab.web}/go?to={target}"], Scope.parse([netlab.scope_allow]), WebOptions(),
                     time.monotonic() + 60)
    e = _one(fact)
    assert e["redirect_refused"]["location"] == target and "outside scope" in e["redirect_refused"]["reason"]
    assert e["status_code"] == 302
    assert netlab.outside_listener.accepted == before


def test_closed_port_is_unknown_not_empty(netlab):
    fact = check_web([f"http://{netlab.strong}:8080/"], Scope.parse([netlab.scope_allow]), WebOptions(),
                     time.monotonic() + 30)
    assert fact.status is FactStatus.PARTIAL  # the URL itself is unknown, with the reason
    e = _one(fact)
    assert e["status"] == "unknown" and "refused" in e["reason"].lower()


def test_body_is_capped(netlab):
    import requests

    scope = Scope.parse([netlab.scope_allow])
    s = requests.Session()
    s.trust_env = False
    c = _Checker(f"http://{netlab.web}/", netlab.web, scope, WebOptions(max_body_bytes=1000),
                 time.monotonic() + 30, s, False)
    r = c.fetch("GET", f"http://{netlab.web}/big.html")
    assert r.status == 200 and len(r.body) == 1000 and r.truncated
    assert "[... body cut ...]" in c.transcript[-1]


def test_default_pages_list_is_dated_and_valid():
    pages = load_default_pages()
    assert pages["version"] and len(pages["pages"]) >= 10
    ids = [p["id"] for p in pages["pages"]]
    assert len(ids) == len(set(ids))
    assert all(p["path"].startswith("/") for p in pages["pages"])


def test_body_that_breaks_off_is_kept_partial(netlab):
    """A server announcing 100000 bytes and closing after 3: the check goes on with what came."""
    from netservers import TcpListener

    addr = netlab.addr(15)
    srv = TcpListener(addr, 8080, b"HTTP/1.1 200 OK\r\nServer: Broken/1.0\r\nContent-Length: 100000\r\n\r\nabc")
    try:
        fact = check_web([f"http://{addr}:8080/"], Scope.parse([netlab.scope_allow]), WebOptions(request_timeout=3),
                         time.monotonic() + 60)
    finally:
        srv.stop()
    e = _one(fact)
    assert e["status"] == "checked" and e["status_code"] == 200
    assert any("body cut" in err for err in e["errors"])
    assert e["version_disclosure"] == [{"header": "server", "value": "Broken/1.0", "has_version": True}]

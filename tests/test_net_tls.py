"""tls probe against planted openssl s_server / nginx endpoints: versions, suites, certificates."""
from __future__ import annotations

import json
import socket
import time

import pytest

from agent.scope import Scope
from probes.base import FactStatus
from probes.net.tls import TlsOptions, assess_tls, cipher_flags, hostname_matches, tls_ports_from_scan

pytest_plugins = ["netservers"]
pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")]


@pytest.fixture(scope="module")
def tls_fact(netlab):
    eps = [
        {"host": netlab.weak, "port": 443},
        {"host": netlab.strong, "port": 443, "server_name": "strong.test"},
        {"host": netlab.expired, "port": 443},
        {"host": netlab.good, "port": 443, "server_name": "good.test"},
        {"host": netlab.svc, "port": 21, "starttls": "ftp"},  # FTP without AUTH TLS
    ]
    return assess_tls(eps, Scope.parse([netlab.scope_allow]), TlsOptions(ca_file=netlab.ca_file),
                      time.monotonic() + 90)


def _by_host(fact):
    return {e["host"]: e for e in fact.data["endpoints"]}


def _accepted(entry):
    return {v for v, ok in entry["protocols"].items() if ok}


def test_versions_are_exactly_the_planted_ones(netlab, tls_fact):
    e = _by_host(tls_fact)
    assert _accepted(e[netlab.weak]) == {"TLS 1.0", "TLS 1.1"}
    assert _accepted(e[netlab.strong]) == {"TLS 1.2", "TLS 1.3"}
    assert _accepted(e[netlab.expired]) == {"TLS 1.2", "TLS 1.3"}
    assert _accepted(e[netlab.good]) == {"TLS 1.2", "TLS 1.3"}
    for addr in (netlab.weak, netlab.strong, netlab.expired, netlab.good):
        assert e[addr]["status"] == "assessed" and e[addr]["errors"] == {}, e[addr]
        assert all(v is not None for v in e[addr]["protocols"].values())
    assert e[netlab.weak]["highest_version"] == "TLS 1.1"
    assert e[netlab.strong]["highest_version"] == "TLS 1.3"


def test_weak_cipher_flags(netlab, tls_fact):
    weak = _by_host(tls_fact)[netlab.weak]
    suites = weak["cipher_suites"]["TLS 1.0"]
    assert set(weak["cipher_suites"]) == {"TLS 1.0", "TLS 1.1"}
    assert any(s["null"] and s["key_size"] == 0 for s in suites)
    assert any(s["anonymous"] and not s["forward_secrecy"] for s in suites)
    assert any(s["cbc"] for s in suites)
    assert any(s["forward_secrecy"] and s["name"].startswith("TLS_ECDHE_RSA") for s in suites)
    strong = _by_host(tls_fact)[netlab.strong]
    assert all(s["forward_secrecy"] and not s["cbc"] for s in strong["cipher_suites"]["TLS 1.3"])
    assert not any(s["null"] or s["anonymous"] or s["export"] or s["rc4"]
                   for v in strong["cipher_suites"].values() for s in v)


def test_certificates(netlab, tls_fact):
    e = _by_host(tls_fact)
    strong = e[netlab.strong]["certificate"]
    leaf = strong["chain"][0]
    assert leaf["sans"] == {"dns": ["strong.test"], "ip": [netlab.strong]}
    assert (leaf["expired"], leaf["self_signed"]) == (False, False)
    assert (leaf["key_type"], leaf["key_size"]) == ("RSA", 2048)
    assert 198 <= leaf["days_left"] <= 200
    assert leaf["signature_algorithm"] == "sha256WithRSAEncryption" and leaf["signature_hash"] == "sha256"
    assert "CN=evidence-agent Test CA" in leaf["issuer"]
    assert strong["hostname_match"] is True
    assert strong["trusted_by_ca_file"] is True and strong["ca_file_trust_error"] is None
    assert strong["trusted_by_system_store"] is False and strong["system_trust_error"]
    assert strong["ocsp_stapling"] is False

    expired = e[netlab.expired]["certificate"]
    assert expired["chain"][0]["expired"] is True and expired["chain"][0]["days_left"] < 0
    assert expired["trusted_by_ca_file"] is False and "not valid" in expired["ca_file_trust_error"]
    assert expired["hostname_match"] is True  # validated by IP: the SAN carries it

    weak = e[netlab.weak]["certificate"]
    assert weak["chain"][0]["self_signed"] is True
    assert weak["hostname_match"] is False  # weak.test certificate reached by IP


def test_client_cert_hsts_and_vulnerabilities(netlab, tls_fact):
    e = _by_host(tls_fact)
    assert e[netlab.expired]["client_cert_requested"] == "optional"
    assert e[netlab.strong]["client_cert_requested"] == "none"
    assert e[netlab.good]["hsts"] == {"present": True, "max_age": 31536000, "include_subdomains": True,
                                      "preload": False}
    assert e[netlab.strong]["hsts"]["present"] is False
    for addr in (netlab.weak, netlab.strong):
        v = e[addr]["vulnerabilities"]
        assert v["heartbleed"] is False and v["ccs_injection"] is False and v["compression"] is False
        assert v["insecure_renegotiation"] is False and v["robot_vulnerable"] is False


def test_unreachable_endpoint_is_kept_as_unknown(netlab, tls_fact):
    ftp = _by_host(tls_fact)[netlab.svc]
    assert ftp["status"] == "unknown" and ftp["reason"] and ftp["starttls"] == "ftp"
    assert tls_fact.status is FactStatus.PARTIAL
    assert f"{netlab.svc}:21" in tls_fact.reason
    assert len(tls_fact.data["endpoints"]) == 5


def test_evidence_is_sslyze_json_per_endpoint(tls_fact):
    assert len(tls_fact.evidence) == 5
    for ev in tls_fact.evidence:
        assert ev.ext == "json" and ev.items == ("15.4.1", "12.1.1")
        doc = json.loads(ev.content)
        assert "server_location" in doc
    labels = {e["evidence"] for e in tls_fact.data["endpoints"]}
    assert labels == {ev.label for ev in tls_fact.evidence}


def test_deadline_already_passed_sends_nothing(netlab):
    before = netlab.outside_listener.accepted
    fact = assess_tls([{"host": netlab.strong, "port": 443}], Scope.parse([netlab.scope_allow]), TlsOptions(),
                      time.monotonic() - 1)
    assert fact.status is FactStatus.PARTIAL  # the endpoint carries why it was not assessed
    (e,) = fact.data["endpoints"]
    assert e["status"] == "unknown" and "deadline" in e["reason"]
    assert netlab.outside_listener.accepted == before


def test_silent_endpoint_times_out_as_unknown(netlab):
    addr = netlab.addr(13)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 4443))
    s.listen(16)  # never accepts, never answers
    try:
        t0 = time.monotonic()
        fact = assess_tls([{"host": addr, "port": 4443}], Scope.parse([netlab.scope_allow]),
                          TlsOptions(network_timeout=1, network_max_retries=0), time.monotonic() + 30)
        took = time.monotonic() - t0
    finally:
        s.close()
    (e,) = fact.data["endpoints"]
    assert e["status"] == "unknown" and e["reason"]
    assert fact.status is FactStatus.PARTIAL  # the endpoint itself is unknown, with the reason
    assert took < 20


def test_scan_to_tls_pipeline(netlab):
    """The endpoints tls_ports_from_scan derives from a scan-shaped fact are assessed as given."""
    scan = {"scans": [{"hosts": [
        {"address": netlab.strong, "ports": [{"port": 443, "proto": "tcp", "state": "open",
                                              "service": "https", "tunnel": "ssl", "method": "probed"}]},
        {"address": netlab.web, "ports": [{"port": 80, "proto": "tcp", "state": "open", "service": "http",
                                           "tunnel": None, "method": "probed"}]}]}]}
    eps = tls_ports_from_scan(scan)
    assert eps == [{"host": netlab.strong, "port": 443, "server_name": None, "starttls": None}]


def test_helpers():
    assert hostname_matches(["*.example.com"], [], "a.example.com")
    assert not hostname_matches(["*.example.com"], [], "a.b.example.com")
    assert not hostname_matches(["*.example.com"], [], "example.com")
    assert hostname_matches([], ["10.0.0.1"], "10.0.0.1")
    assert not hostname_matches(["10.0.0.1"], [], "10.0.0.1")  # an IP must be in an IP SAN
    f = cipher_flags("TLS_RSA_WITH_3DES_EDE_CBC_SHA", "DES-CBC3-SHA", 168, False, "TLS 1.0")
    assert f["3des"] and f["cbc"] and not f["des"] and not f["forward_secrecy"]
    f = cipher_flags("TLS_RSA_EXPORT_WITH_DES40_CBC_SHA", "EXP-DES-CBC-SHA", 40, False, "TLS 1.0")
    assert f["export"] and f["des"] and not f["3des"]
    f = cipher_flags("TLS_RSA_WITH_RC4_128_SHA", "RC4-SHA", 128, False, "TLS 1.0")
    assert f["rc4"] and not f["cbc"]
    f = cipher_flags("TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256", 128, False, "TLS 1.3")
    assert f["forward_secrecy"]
    assert not any(f[k] for k in ("null", "export", "rc4", "des", "3des", "cbc", "anonymous"))

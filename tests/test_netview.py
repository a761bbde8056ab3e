"""Ownership of network facts, one entry per endpoint/URL, cleartext services (policies/netview.py), and the
inventory keys behind them (addresses:, public, top-level declare:). Addresses here are pure data."""
from __future__ import annotations

from typing import Any

import pytest

from agent.inventory import load_inventory
from agent.yamlsrc import ConfigError
from policies import netview
from policies.engine import Evaluator, HostInput
from policies.model import load_profile

PROFILE = load_profile("fsi-openapi-2018")


def test_host_owns_declared_aliases_and_interface_addresses_not_loopback():
    meta = {"address": "10.0.0.5", "addresses": ["198.51.100.7"]}
    facts = {"interfaces": {"interfaces": [
        {"name": "lo", "addresses": [{"address": "127.0.0.1"}, {"address": "::1"}]},
        {"name": "eth0", "addresses": [{"address": "10.0.0.5"}, {"address": "203.0.113.5"},
                                       {"address": "fe80::1"}]}]},
        "identity": {"interfaces": [{"name": "eth1", "addresses": ["2001:db8::5/64"]}]}}
    assert netview.host_addresses(meta, facts) == ["10.0.0.5", "198.51.100.7", "203.0.113.5", "2001:db8::5"]
    # a declared loopback address (the local transport) is still owned
    assert netview.host_addresses({"address": "127.0.0.1"}, {}) == ["127.0.0.1"]


@pytest.mark.parametrize("url,norm", [
    ("http://A.example:80/", "http://a.example/"), ("HTTPS://a:443", "https://a/"),
    ("http://a:8080/x?q=1", "http://a:8080/x?q=1"), ("https://[2001:DB8::1]:443/", "https://[2001:db8::1]/"),
])
def test_urls_are_normalised(url, norm):
    assert netview.normalize_url(url) == norm


def test_one_endpoint_per_address_and_port_with_its_vantages():
    a = {"host": "203.0.113.5", "ip": "203.0.113.5", "port": 443, "status": "assessed",
         "protocols": {"TLS 1.2": True}, "cipher_suites": {}, "certificate": {"chain": [{"sha256": "aa"}]}}
    out = netview.dedupe_endpoints([{**a, "vantage": "internal"}, {**a, "vantage": "external"},
                                    {**a, "vantage": "external", "status": "unknown", "reason": "timeout"}])
    assert len(out) == 1 and out[0]["vantages"] == ["external", "internal"]
    # a different certificate seen from outside is a different observation: kept, each with its vantage
    out = netview.dedupe_endpoints([{**a, "vantage": "internal"},
                                    {**a, "vantage": "external", "certificate": {"chain": [{"sha256": "bb"}]}}])
    assert [e["vantages"] for e in out] == [["internal"], ["external"]]
    sites = netview.dedupe_sites([{"url": "http://a:80/", "status": "checked", "vantage": "internal"},
                                  {"url": "http://a/", "status": "checked", "vantage": "external"}])
    assert [(s["url"], s["vantages"]) for s in sites] == [("http://a/", ["external", "internal"])]


def test_host_view_attributes_ports_endpoints_and_sites_to_the_owner():
    run = {"network_scan": {"scans": [
        {"cidr": "203.0.113.0/24", "vantage": "external", "error": None,
         "hosts": [{"address": "203.0.113.5", "live": True, "ports": [{"port": 22, "proto": "tcp", "state": "open"}]},
                   {"address": "203.0.113.9", "live": True, "ports": [{"port": 23, "proto": "tcp", "state": "open",
                                                                         "service": "telnet"}]}]}]},
        "tls": {"endpoints": [{"host": "203.0.113.5", "ip": "203.0.113.5", "port": 21, "starttls": "ftp",
                               "status": "cleartext", "reason": "ftp service refused the TLS upgrade"}]},
        "web": {"urls": [{"url": "http://203.0.113.5:80/", "ip": "203.0.113.5", "status": "checked",
                          "status_code": 200, "final_url": "http://203.0.113.5/"}]}}
    v = netview.host_view({"address": "10.0.0.5"}, run, ["10.0.0.5", "203.0.113.5"])
    assert v["net"]["covered"] == {"external": ["203.0.113.5"]}
    assert [(p["address"], p["port"]) for p in v["net"]["by_vantage"]["external"]] == [("203.0.113.5", 22)]
    assert v["tls_endpoints"] == []  # the cleartext FTP is not a TLS endpoint ...
    assert [c["label"] for c in v["cleartext"]] == ["203.0.113.5:21/ftp", "203.0.113.5:80/http"]  # ... but a finding
    n = netview.network_view(run, {"h": ["10.0.0.5", "203.0.113.5"]})
    assert [u["address"] for u in n["network"]["undeclared"]] == ["203.0.113.9"]
    assert [c["label"] for c in n["cleartext"]] == ["203.0.113.9:23/telnet"]
    assert n["tls_endpoints"] == [] and n["web_sites"] == []


def _judge_dmz(declared: dict[str, Any], zone: str) -> dict[str, Any]:
    rule = next(r for r in PROFILE.rules if r.id == "dmz-in-place")
    meta = {"name": "h1", "address": "10.0.0.5", "transport": "ssh", "roles": [], "zone": zone, "declared": {}}
    ev = Evaluator(type(PROFILE)(PROFILE.catalog, [rule]), {}, [], inventory={"declared": declared, "networks": []})
    res = ev.run([HostInput(meta, True, None, {}, {})], {}, {})
    c = next(c for c in res["controls"] if c["id"] == "15.1.1")
    return next(h for h in c["hosts"] if h["name"] == "_network")["findings"][0]


def test_no_dmz_is_unknown_unless_the_inventory_affirms_there_is_no_public_server():
    assert _judge_dmz({}, "internal")["status"] == "unknown"
    f = _judge_dmz({"no_public_servers": "none — CISO Kim 2026-11-30"}, "internal")
    assert f["status"] == "not_applicable" and "no public server" in f["detail"]["en"]


def _inv(tmp_path, host_extra: str, top: str = "") -> Any:
    p = tmp_path / "inv.yml"
    p.write_text("version: 1\nscope: {allow: [10.0.0.0/24, 203.0.113.0/28]}\nhosts:\n"
                 "  - name: web-1\n    address: 10.0.0.5\n" + host_extra + top, encoding="utf-8")
    return load_inventory(str(p))


def test_inventory_addresses_public_and_declare(tmp_path):
    inv = _inv(tmp_path, "    addresses: [203.0.113.5]\n    public: true\n", "declare: {no_public_servers: x}\n")
    assert inv.hosts[0].meta()["addresses"] == ["203.0.113.5"] and inv.hosts[0].public is True
    assert inv.declared == {"no_public_servers": "x"}
    with pytest.raises(ConfigError, match=r"inv.yml:6: hosts\[0\].addresses\[0\]: .*outside scope.allow"):
        _inv(tmp_path, "    addresses: [198.51.100.7]\n")
    with pytest.raises(ConfigError, match=r"inv.yml:6: hosts\[0\].addresses\[0\]: not an IP address"):
        _inv(tmp_path, "    addresses: [web-1-nat]\n")

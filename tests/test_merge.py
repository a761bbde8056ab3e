"""Merging an internal host run with an external-vantage network scan: 14.2.1 and 15.1.1 get judged.

Real nmap against real listeners on loopback; the "external" vantage is a label
given on the command line, exactly as a scanner box at the edge would record it.
"""
from __future__ import annotations

import json
import os
import shutil
import socket

import pytest

from agent.cli import main
from conftest import write_inventory

pytestmark = pytest.mark.skipif(shutil.which("nmap") is None, reason="nmap not installed (make test installs it)")

ADDR = "127.0.7.1"


@pytest.fixture(scope="module")
def listeners():
    socks = []
    for port in (22, 443):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ADDR, port))
        s.listen(16)
        socks.append(s)
    yield
    for s in socks:
        s.close()


def inv(tmp_path, name: str) -> str:
    return write_inventory(str(tmp_path / f"{name}.yml"), f"""version: 1
organisation: Merge Test
scope: {{allow: [127.0.7.0/29]}}
hosts:
  - name: web
    transport: local
    address: {ADDR}
    roles: [web]
    zone: internal
networks:
  - name: edge
    cidr: 127.0.7.0/29
    zone: dmz
nmap: {{ports: "22,443", service_detection: false, host_timeout: "30s", overall_timeout: 60}}
""")


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, listeners, signing_key):
    tmp = tmp_path_factory.mktemp("merge")
    ext, internal = str(tmp / "ext"), str(tmp / "int")
    assert main(["scan", "-i", inv(tmp, "e"), "--out", ext, "--key", signing_key, "--only", "network",
                 "--vantage", "external", "-q"]) == 0
    assert main(["scan", "-i", inv(tmp, "i"), "--out", internal, "--key", signing_key, "--only", "host", "-q"]) == 0
    return tmp, ext, internal


def control(out: str, cid: str) -> dict:
    res = json.load(open(os.path.join(out, "results.json"), encoding="utf-8"))
    return next(c for c in res["controls"] if c["id"] == cid)


def finding(out: str, cid: str, rule: str, host: str) -> dict:
    c = control(out, cid)
    h = next(h for h in c["hosts"] if h["name"] == host)
    return next(f for f in h["findings"] if f["rule"] == rule)


def test_without_external_scan_reachability_is_unknown(bundles):
    _, _, internal = bundles
    f = finding(internal, "14.2.1", "remote-admin-not-external", "web")
    assert f["status"] == "unknown"
    assert "external" in f["detail"]["en"]


def test_merge_judges_reachability_from_the_external_vantage(bundles, signing_key):
    tmp, ext, internal = bundles
    out = str(tmp / "merged")
    assert main(["merge", ext, internal, "--out", out, "--key", signing_key, "--pubkey", signing_key + ".pub"]) == 0
    assert main(["verify", out, "--pubkey", signing_key + ".pub"]) == 0
    f = finding(out, "14.2.1", "remote-admin-not-external", "web")
    assert f["status"] == "not_implemented", f["detail"]
    assert "22/" in f["detail"]["en"]
    g = finding(out, "15.1.1", "internal-not-external", "web")
    assert g["status"] == "not_implemented" and "22" in g["detail"]["en"] and "443" in g["detail"]["en"]
    # host facts survived the merge with their evidence; sources kept as evidence
    facts = json.load(open(os.path.join(out, "facts", "web.json"), encoding="utf-8"))
    assert facts["collected"] and facts["facts"]["session_timeout"]["status"] != "not_collected"
    for f in facts["evidence"]["session_timeout"]:
        assert os.path.exists(os.path.join(out, f))
    net = json.load(open(os.path.join(out, "facts", "_network.json"), encoding="utf-8"))
    assert {s["vantage"] for s in net["facts"]["network_scan"]["data"]["scans"]} == {"external"}
    srcs = sorted(os.listdir(os.path.join(out, "sources")))
    assert len(srcs) == 2
    for s in srcs:
        assert os.path.exists(os.path.join(out, "sources", s, "manifest.json.sig"))
    res = json.load(open(os.path.join(out, "results.json"), encoding="utf-8"))
    assert res["run"]["vantages"] == ["external", "internal"]


def test_merge_refuses_a_bundle_that_does_not_verify(bundles, signing_key, tmp_path, capsys):
    _, ext, internal = bundles
    bad = str(tmp_path / "bad")
    shutil.copytree(internal, bad)
    with open(os.path.join(bad, "results.json"), "a") as f:
        f.write(" ")
    out = str(tmp_path / "never")
    assert main(["merge", ext, bad, "--out", out, "--key", signing_key]) == 1
    assert "does not verify" in capsys.readouterr().err
    assert not os.path.exists(out) or not os.listdir(out)

"""Network verdicts on the host that owns the address, in the namespace lab (issue 11, classes 1, 2, 3 and 7).

The lab: ``lab-app`` (internal zone) carries a second address from a documentation range (203.0.113.17, configured
only inside the lab's namespaces) on its interface, with sshd and an HTTPS listener on it; ``lab-intapp`` (internal
application server) serves plain HTTP on 8080 and an FTP server that refuses AUTH TLS; ``lab-stray`` answers HTTPS
but is in no inventory. The internal scanner (10.231.0.2, plus 203.0.113.3) and an external-vantage scanner
namespace (203.0.113.2) scan with the real CLI; the bundles are merged with ``merge`` and rendered with ``report``.
Every packet stays on the lab bridge: scope.allow lists only the lab subnet and the lab's documentation range.

Run: ``python -m pytest -q tests/test_lab_network_verdicts.py`` (root; marked ``lab``).
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter
from typing import Any, Optional

import pytest

import lab as labmod
from agent.cli import main

pytestmark = pytest.mark.lab

DOC_NET = "203.0.113.16/28"  # documentation range: exists only inside the lab's namespaces
APP_PUBLIC = "203.0.113.17"  # netns lab address (documentation range)
INTERNAL_NET = "10.231.0.16/28"  # netns lab address range

SPECS = [
    labmod.HostSpec(name="lab-app", ip="10.231.0.17", roles=("app",), zone="internal",  # netns lab address
                    extra_addresses=(f"{APP_PUBLIC}/24",), listeners={"nginx": (443,)}, tls_ports=(443,)),
    labmod.HostSpec(name="lab-intapp", ip="10.231.0.18", roles=("app",), zone="internal",  # netns lab address
                    listeners={"gunicorn": (8080,), "vsftpd": (21,)}),
    labmod.HostSpec(name="lab-stray", ip="10.231.0.20", sshd=False,  # netns lab address; not in the inventory
                    listeners={"nginx": (443,)}, tls_ports=(443,)),
]
HOSTS = ["lab-app", "lab-intapp"]
NMAP = {"ports": "21,22,80,443,8080", "service_detection": False, "host_timeout": "60s", "overall_timeout": 240,
        "timing": 4}


def inventory(netlab: labmod.Lab, networks: list[dict[str, str]]) -> str:
    return netlab.inventory(HOSTS, more={
        "scope": {"allow": [labmod.SUBNET, DOC_NET]},  # lab-only ranges
        "networks": networks, "nmap": NMAP, "tls_options": {"network_timeout": 3, "robot": False}})


@pytest.fixture(scope="module")
def netlab():
    why = labmod.preflight()
    if why:
        pytest.skip(why)
    if not __import__("shutil").which("nmap"):
        pytest.skip("nmap not installed")
    with labmod.Lab(SPECS, scanner_addresses=["203.0.113.3/24"], external_scanner="203.0.113.2/24") as running:
        yield running


def load(out: str, name: str) -> dict[str, Any]:
    with open(os.path.join(out, name), encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def bundles(netlab, signing_key, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("labnet")
    internal, external, merged = str(tmp / "int"), str(tmp / "ext"), str(tmp / "merged")
    nets_int = [{"name": "lab-internal", "cidr": INTERNAL_NET, "zone": "internal"},
                {"name": "lab-doc", "cidr": DOC_NET, "zone": "external"}]
    rc, so, se = netlab.scan(inventory(netlab, nets_int), internal, signing_key, "-q", timeout=600)
    assert rc == 0 and os.path.exists(os.path.join(internal, "results.json")), f"{rc}\n{so[-1500:]}\n{se[-3000:]}"
    # the external scanner also scans the internal range (which it cannot reach): "covered, nothing open" there
    rc, so, se = netlab.scan(inventory(netlab, nets_int),
                             external, signing_key, "--only", "network,tls,web", "--vantage", "external", "-q",
                             timeout=600, ns=labmod.EXT_SCANNER_NS)
    assert rc in (0, 2) and os.path.exists(os.path.join(external, "results.json")), f"{rc}\n{se[-3000:]}"
    assert main(["merge", external, internal, "--out", merged, "--key", signing_key,
                 "--pubkey", signing_key + ".pub"]) == 0
    html = str(tmp / "merged.html")
    assert main(["report", merged, "--format", "html", "--out", html, "--pubkey", signing_key + ".pub"]) == 0
    with open(html, encoding="utf-8") as f:
        page = f.read()
    return {"int": internal, "ext": external, "merged": merged, "results": load(merged, "results.json"),
            "html": page}


def finding(res: dict[str, Any], item: str, host: str, rule: str) -> Optional[dict[str, Any]]:
    c = next(c for c in res["controls"] if c["id"] == item)
    for h in c.get("hosts", []):
        if h["name"] == host:
            return next((f for f in h["findings"] if f["rule"] == rule), None)
    return None


def host_status(res: dict[str, Any], item: str, host: str) -> str:
    c = next(c for c in res["controls"] if c["id"] == item)
    return next(h["status"] for h in c["hosts"] if h["name"] == host)


ENDPOINT = re.compile(r"\b(\d{1,3}(?:\.\d{1,3}){3}:\d+)\b")
URL = re.compile(r"\bhttps?://[^\s,;)\]]+")


def repeated(text: str) -> list[str]:
    """Endpoints or URLs listed more than once in one clause (fail messages are joined by '; ')."""
    out = []
    for clause in text.split("; "):
        counts = Counter(ENDPOINT.findall(clause)) + Counter(URL.findall(clause))
        out += [k for k, n in counts.items() if n > 1]
    return out


# --- class 1: network facts belong to the host that owns the address -----------------------------------------

def test_second_address_reachable_from_outside_fails_14_2_1_and_15_1_1(bundles):
    res = bundles["results"]
    f = finding(res, "14.2.1", "lab-app", "remote-admin-not-external")
    assert f["status"] == "not_implemented", f["detail"]
    assert f"{APP_PUBLIC}:22/ssh" in f["detail"]["en"]
    g = finding(res, "15.1.1", "lab-app", "internal-not-external")
    assert g["status"] == "not_implemented", g["detail"]
    assert f"{APP_PUBLIC}:22" in g["detail"]["en"] and f"{APP_PUBLIC}:443" in g["detail"]["en"]
    assert host_status(res, "15.1.1", "lab-app") == "not_implemented"
    # no DMZ in this inventory: the organisation-level 15.1.1 row is unknown with the guide's reason, never 이행
    d = finding(res, "15.1.1", "_network", "dmz-in-place")
    assert d["status"] == "unknown" and "no DMZ host or network" in d["detail"]["en"], d
    assert host_status(res, "14.2.1", "lab-app") != "implemented"
    # the host's own sshd on a non-private address, no firewall: the host-side rule agrees
    s = finding(res, "14.2.1", "lab-app", "sshd-exposure")
    assert s["status"] == "not_implemented", s["detail"]


def test_owned_address_is_not_an_undeclared_host_and_each_is_listed_once(bundles):
    f = finding(bundles["results"], "3.1.1", "_network", "asset-inventory-complete")
    assert f["status"] == "not_implemented", f["detail"]  # lab-stray is in no inventory
    assert APP_PUBLIC not in f["detail"]["en"]
    assert f["detail"]["en"].count("10.231.0.20") == 1, f["detail"]
    # the external bundle alone (no host facts) cannot know that 203.0.113.17 is lab-app's: it says so
    ext = finding(load(bundles["ext"], "results.json"), "3.1.1", "_network", "asset-inventory-complete")
    assert ext["detail"]["en"].count(APP_PUBLIC) == 1


# --- class 2: TLS and web verdicts per host; one entry per endpoint and URL -------------------------------------

def test_every_inventory_host_has_its_own_15_4_1_and_12_1_1_rows(bundles):
    res = bundles["results"]
    for item in ("15.4.1", "12.1.1"):
        c = next(c for c in res["controls"] if c["id"] == item)
        assert set(HOSTS) <= {h["name"] for h in c["hosts"]}, item
    tp = finding(res, "15.4.1", "lab-app", "tls-protocols")
    assert tp["status"] == "implemented", tp["detail"]
    assert f"{APP_PUBLIC}:443 [external, internal]" in tp["detail"]["en"]
    assert "10.231.0.17:443 [internal]" in tp["detail"]["en"]
    # its evidence (B) is the files of its own endpoints (one per vantage), not those of other hosts
    tls_files = [e for e in tp["evidence"] if "_network_tls_" in e]
    assert len([e for e in tls_files if e.endswith(f"_tls_{APP_PUBLIC}_443.json")]) == 2, tls_files
    assert not [e for e in tls_files if "10.231.0.20" in e or "10.231.0.18" in e], tls_files
    # the HTML report: a 15.4.1 row (C column) for every inventory host
    sec = bundles["html"].split('id="item-15.4.1"', 1)[1].split("</section>", 1)[0]
    for h in HOSTS:
        assert re.search(rf"<li>{h}: <span class=\"badge", sec), h


def test_no_endpoint_or_url_listed_twice_after_merge(bundles):
    net = load(bundles["merged"], "facts/_network.json")["facts"]
    eps = [(e.get("ip") or e["host"], e["port"]) for e in net["tls"]["data"]["endpoints"]]
    assert len(eps) == len(set(eps)), eps
    assert (APP_PUBLIC, 443) in eps
    urls = [u["url"] for u in net["web"]["data"]["urls"]]
    assert len(urls) == len(set(urls)), urls
    assert not [u for u in urls if re.search(r"http://[^/]+:80/|https://[^/]+:443/", u)], urls
    for c in bundles["results"]["controls"]:
        for h in c.get("hosts", []):
            for f in h["findings"]:
                assert not repeated(f["detail"]["en"]), (c["id"], h["name"], f["rule"], f["detail"]["en"])
    for li in re.findall(r"<li>(.*?)</li>", bundles["html"], re.S):
        assert not repeated(re.sub(r"<[^>]+>", "", li)), li[:500]


def test_unowned_endpoint_is_on_the_network_row(bundles):
    f = finding(bundles["results"], "15.4.1", "_network", "tls-protocols")
    assert f["status"] == "implemented", f["detail"]
    assert "10.231.0.20:443" in f["detail"]["en"] and APP_PUBLIC not in f["detail"]["en"]


# --- class 3: a cleartext service is a finding, not a failed TLS assessment -------------------------------------

def test_ftp_refusing_auth_tls_is_a_cleartext_finding(bundles):
    res = bundles["results"]
    for item, rule in (("15.4.1", "secure-communications"), ("14.3.1", "cleartext-services")):
        c = finding(res, item, "lab-intapp", rule)
        assert c["status"] == "not_implemented", c["detail"]
        assert "10.231.0.18:21/ftp" in c["detail"]["en"]
    for rule in ("tls-protocols", "tls-ciphers", "tls-certificates", "tls-vulnerabilities"):
        for host in ("lab-intapp", "lab-app", "_network"):
            f = finding(res, "15.4.1", host, rule)
            assert f["status"] != "unknown", (rule, host, f["detail"])
            assert "not assessed" not in f["detail"]["en"]
    assert finding(res, "15.4.1", "lab-intapp", "tls-vulnerabilities")["status"] == "not_applicable"
    eps = load(bundles["int"], "facts/_network.json")["facts"]["tls"]["data"]["endpoints"]
    ftp = next(e for e in eps if e["port"] == 21)
    assert ftp["status"] == "cleartext" and "refused" in ftp["reason"]


# --- class 7: 14.5.1 judges public web servers only ------------------------------------------------------------

def test_internal_application_server_is_not_a_public_web_server(bundles):
    res = bundles["results"]
    f = finding(res, "14.5.1", "lab-intapp", "public-web-server")
    assert f["status"] == "not_applicable", f["detail"]
    assert "not a public web server" in f["detail"]["en"]
    # lab-app's HTTPS port answers the external vantage: it is judged as a public web server
    g = finding(res, "14.5.1", "lab-app", "public-web-server")
    assert g["status"] != "not_applicable", g["detail"]


def test_bundles_verify(bundles, signing_key):
    for b in ("int", "ext", "merged"):
        assert main(["verify", bundles[b], "--pubkey", signing_key + ".pub"]) == 0

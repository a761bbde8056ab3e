"""Verdicts earned on real hosts of the namespace lab (issue 11): no pass over an empty set, addresses named by
their range. One small lab (two hosts), one host-only scan; each assertion reads that bundle.

lab-int    zone internal; eth0 in the lab subnet plus eth1 192.0.2.10/24 (a documentation range, on a veth pair
           that never leaves the host's namespace); accounts root and svc-batch, both never expiring, no name
           that looks external
lab-int2   zone internal; eth0 only (private); an external user's account ext_lee without expiry (9999-12-31);
           an rsync daemon stand-in listening on 873 (not in the built-in insecure list)

Run: ``python -m pytest -q tests/test_lab_verdicts.py`` (root; marked ``lab``).
"""
from __future__ import annotations

import json
import os
from typing import Any

import pytest

import lab as labmod

pytestmark = pytest.mark.lab

SPECS = [
    labmod.HostSpec(name="lab-int", ip="10.231.0.31", roles=("app",), zone="internal",  # netns lab address
                    local_addresses=(("eth1", "192.0.2.10/24"),),  # documentation range, host-only
                    accounts=(labmod.Account("svc-batch", 1011, 1011, max_days="99999"),)),
    labmod.HostSpec(name="lab-int2", ip="10.231.0.32", roles=("app",), zone="internal",  # netns lab address
                    accounts=(labmod.Account("ext_lee", 2001, 2001),), listeners={"rsync": (873,)}),
]
FLEET = [
    "lab-int",
    "lab-int2",
    # the same server once more, with the inventory affirming that it has no external users' accounts
    {"name": "int-affirmed", "host": "lab-int", "declare": {"accounts": {"external": "none — CISO Kim, 2026-11-30"}}},
    # lab-int2 once more, for a site that counts rsync among its insecure services (inventory policy params)
    {"name": "int2-site", "host": "lab-int2"},
]
RSYNC = {"service": "rsync", "proto": "tcp", "ports": [873], "processes": ["rsync"], "reason": "cleartext file sync"}


def site_policy() -> dict[str, Any]:
    from policies.model import load_profile
    rule = next(r for r in load_profile("fsi-openapi-2018").rules if r.id == "no-insecure-services")
    return {"hosts": {"int2-site": {"params": {"insecure_services": rule.params["insecure_services"] + [RSYNC]}}}}


@pytest.fixture(scope="module")
def results(signing_key: str, tmp_path_factory: Any) -> dict[str, Any]:
    why = labmod.preflight()
    if why:
        pytest.skip(why)
    out = str(tmp_path_factory.mktemp("lab-verdicts") / "bundle")
    with labmod.Lab(SPECS) as lab:
        inv = lab.inventory(FLEET, more={"policy": site_policy()})
        rc, so, se = lab.scan(inv, out, signing_key, "--only", "host", "-q")
    assert os.path.exists(os.path.join(out, "results.json")), f"rc={rc}\n{so[-2000:]}\n{se[-2000:]}"
    with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
        res = json.load(f)
    res["_facts"] = {}
    for h in ("lab-int", "lab-int2"):
        with open(os.path.join(out, "facts", f"{h}.json"), encoding="utf-8") as f:
            res["_facts"][h] = json.load(f)["facts"]
    return res


def finding(res: dict[str, Any], host: str, rule: str) -> dict[str, Any]:
    for c in res["controls"]:
        for h in c.get("hosts", []):
            if h["name"] == host:
                for f in h["findings"]:
                    if f["rule"] == rule:
                        return f
    raise AssertionError(f"no finding of {rule} for {host}")


def test_the_interfaces_probe_names_the_documentation_address(results: dict[str, Any]) -> None:
    data = results["_facts"]["lab-int"]["interfaces"]["data"]
    assert {"address": "192.0.2.10", "interface": "eth1", "category": "documentation"} in data["non_private_addresses"]
    assert "10.231.0.31" in data["private_addresses"]  # netns lab address
    assert results["_facts"]["lab-int2"]["interfaces"]["data"]["non_private_addresses"] == []


def test_internal_host_with_a_documentation_address_fails_15_2_1_naming_the_range(results: dict[str, Any]) -> None:
    f = finding(results, "lab-int", "internal-private-addresses")
    assert f["status"] == "not_implemented", f["detail"]
    assert "192.0.2.10 (eth1, documentation range)" in f["detail"]["en"]
    ok = finding(results, "lab-int2", "internal-private-addresses")
    assert ok["status"] == "implemented", ok["detail"]  # netns lab address below
    assert "10.231.0.32" in ok["detail"]["en"]


def test_no_external_account_seen_is_unknown_unless_the_inventory_affirms_it(results: dict[str, Any]) -> None:
    f = finding(results, "lab-int", "external-account-expiry")
    assert f["status"] == "unknown", f["detail"]
    assert "no login account was identified as an external user's" in f["detail"]["en"]
    a = finding(results, "int-affirmed", "external-account-expiry")
    assert a["status"] == "implemented", a["detail"]
    assert "none — CISO Kim, 2026-11-30" in a["detail"]["en"] and a["affirmed"][0]["by"].startswith("none")
    assert "root, svc-batch" in a["detail"]["en"]  # the non-external accounts without expiry, named in D


def test_an_external_account_without_expiry_fails(results: dict[str, Any]) -> None:
    f = finding(results, "lab-int2", "external-account-expiry")
    assert f["status"] == "not_implemented", f["detail"]
    assert "ext_lee" in f["detail"]["en"]


def test_a_server_without_wireless_is_not_applicable_for_15_3_1(results: dict[str, Any]) -> None:
    f = finding(results, "lab-int", "no-wireless-on-servers")
    assert f["status"] == "not_applicable" and "no wireless interface" in f["detail"]["en"], f


def test_a_site_tightens_the_insecure_services_list_in_the_inventory(results: dict[str, Any]) -> None:
    """What is insecure is a rule parameter: the same real host passes 14.3.1 with the built-in list and fails
    it, naming the socket, once the inventory adds rsync to ``insecure_services`` for that host."""
    ok = finding(results, "lab-int2", "no-insecure-services")
    assert ok["status"] == "implemented", ok["detail"]
    assert "873" in ok["detail"]["en"]  # the rsync socket was seen, and the built-in list does not judge it
    f = finding(results, "int2-site", "no-insecure-services")
    assert f["status"] == "not_implemented", f["detail"]
    assert "insecure services listening: rsync 0.0.0.0:873 (rsync)" in f["detail"]["en"], f["detail"]
    assert f["params"]["insecure_services"][-1] == RSYNC

"""14.6.1 on lab hosts with a crafted apt state (tests/lab.py ``HostSpec.apt_state``), judged end to end: a real
sshd in each host's namespaces, our scan from the scanner namespace, real ``apt-cache policy`` over the host's
own lists, the real engine and profile.

The done-when of issue 11: a fully patched Debian 12 host with its security suite gives 14.6.1 이행. The lab
hosts share this machine's kernel (they are namespaces inside a docker container), so ``reboot-pending`` is
not applicable there — by the host's own container facts, not by the lab's say-so — and the item's verdict is
the aggregate of the other three rules.

Run: ``python -m pytest -q tests/test_lab_patch.py`` (root).
"""
from __future__ import annotations

import json
import os

import pytest

import lab as labmod

pytestmark = pytest.mark.lab

RULES = ("os-supported", "security-updates", "patch-recency", "reboot-pending")
SPECS = [
    labmod.HostSpec(name="lab-patched", ip="10.231.0.41", roles=("app",), apt_state="current"),  # netns lab address
    labmod.HostSpec(name="lab-pending", ip="10.231.0.42", roles=("app",),  # netns lab address
                    apt_state="security_pending"),
]


@pytest.fixture(scope="module")
def scanned(signing_key, tmp_path_factory):
    why = labmod.preflight()
    if why:
        pytest.skip(why)
    if not os.path.exists("/var/lib/dpkg/status") or not os.path.isdir("/etc/apt/sources.list.d"):
        pytest.skip("needs a Debian-family machine (dpkg database, apt)")
    out = str(tmp_path_factory.mktemp("labpatch") / "bundle")
    with labmod.Lab(SPECS) as lab:
        rc, so, se = lab.scan([s.name for s in SPECS], out, signing_key, "--only", "host", "-q")
    assert os.path.exists(os.path.join(out, "results.json")), f"rc={rc}\n{so[-2000:]}\n{se[-2000:]}"
    with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
        results = json.load(f)

    def facts(host: str) -> dict:
        with open(os.path.join(out, "facts", f"{host}.json"), encoding="utf-8") as f:
            return json.load(f)["facts"]

    return results, facts


def item(results: dict, host: str) -> dict:
    c = next(c for c in results["controls"] if c["id"] == "14.6.1")
    return next(h for h in c["hosts"] if h["name"] == host)


def verdicts(results: dict, host: str) -> dict:
    rec = item(results, host)
    out = {f["rule"]: f["status"] for f in rec["findings"] if f["rule"] in RULES}
    out["14.6.1"] = rec["status"]
    return out


def test_facts_of_the_patched_host(scanned):
    _, facts = scanned
    os_ = facts("lab-patched")["os"]["data"]
    assert os_["id"] == "debian" and os_["version_id"] == "12"
    assert os_["security_source"] is True
    assert os_["security_sources"] == ["bookworm-security (http://deb.debian.org/debian-security)"]
    assert os_["extended_enrolled"] is True  # Debian LTS = the security suite, no enrolment
    assert os_["own_kernel"] is False and os_["container"]  # a namespace on this machine's kernel
    p = facts("lab-patched")["patch"]["data"]
    assert p["manager"] == "apt" and p["security_index"] is True and p["index_age_days"] == 0
    assert p["pending_total"] == 0 and p["pending_security"] == 0
    assert p["last_update_source"] == "dpkg.log" and p["days_since_update"] == 2


def test_fully_patched_debian12_with_its_security_suite_is_implemented(scanned):
    results, facts = scanned
    v = verdicts(results, "lab-patched")
    phase = facts("lab-patched")["os"]["data"]["support_phase"]
    assert phase in ("regular", "extended")  # by the target's clock: regular until 2026-06-10, then Debian LTS
    assert v == {"os-supported": "implemented", "security-updates": "implemented", "patch-recency": "implemented",
                 "reboot-pending": "not_applicable", "14.6.1": "implemented"}, v
    rb = next(f for f in item(results, "lab-patched")["findings"] if f["rule"] == "reboot-pending")
    assert "container" in rb["detail"]["en"]


def test_a_pending_security_update_fails_and_patch_recency_does_not_pass(scanned):
    results, facts = scanned
    p = facts("lab-pending")["patch"]["data"]
    assert p["pending_security"] == 1 and p["pending"][0]["name"] == "openssl"
    assert p["pending"][0]["origin"].startswith("bookworm-security")
    v = verdicts(results, "lab-pending")
    assert v["os-supported"] == "implemented"
    assert v["security-updates"] == "not_implemented"
    assert v["patch-recency"] == "not_implemented"  # the upgrade 2 days ago does not make up for it
    assert v["14.6.1"] == "partial"  # some requirements met, some not (guide Section IV)
    sec = next(f for f in item(results, "lab-pending")["findings"] if f["rule"] == "security-updates")
    assert "openssl" in sec["detail"]["en"]

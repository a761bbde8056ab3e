"""14.6.1 judged on the recorded and written hosts (tests/fixtures/host/): the os and patch facts the probes
parse, through the real engine and the built-in profile. The recorded Debian 12 VM in its LTS period (93
security updates waiting, an install today, a docker container) is the case the issue reported."""
from __future__ import annotations

import pytest

from policies.engine import Evaluator, HostInput
from policies.model import load_profile
from probes.host import os_release, patch
from tests.host_fixture_loader import load

PROFILE = load_profile("fsi-openapi-2018")
RULES = ("os-supported", "security-updates", "patch-recency", "reboot-pending")


def judge(distro: str) -> dict[str, str]:
    out = load(distro)
    facts = {f.probe: {"status": f.status.value, "reason": f.reason, "data": f.data}
             for f in (os_release.parse(out), patch.parse(out))}
    meta = {"name": distro, "address": "127.0.0.1", "transport": "ssh", "roles": [], "zone": None, "declared": {}}
    prof = type(PROFILE)(PROFILE.catalog, [r for r in PROFILE.rules if r.id in RULES])
    res = Evaluator(prof, {}, []).run([HostInput(meta, True, None, facts, {}, None)], {}, {})
    item = next(c for c in res["controls"] if c["id"] == "14.6.1")
    verdicts = {f["rule"]: f["status"] for f in item["hosts"][0]["findings"]}
    verdicts["14.6.1"] = item["status"]
    return verdicts


@pytest.mark.parametrize("distro,expected", [
    # recorded: Debian 12 in LTS with bookworm-security (clock 2026-11-23, 74 security updates pending)
    ("debian12", {"os-supported": "implemented", "security-updates": "not_implemented",
                  "patch-recency": "not_implemented", "reboot-pending": "unknown", "14.6.1": "partial"}),
    # recorded today: same image in docker, 93 security updates pending, last dpkg install 0 days ago
    ("debian12_lts", {"os-supported": "implemented", "security-updates": "not_implemented",
                      "patch-recency": "not_implemented", "reboot-pending": "not_applicable",
                      "14.6.1": "partial"}),
    # written: Ubuntu 20.04 past standard support, attached with esm-infra enabled
    ("ubuntu2004", {"os-supported": "implemented", "security-updates": "not_implemented",
                    "patch-recency": "not_implemented"}),
    # written: Ubuntu 24.04, nothing pending, security suite (deb822), index fresh
    ("ubuntu2404", {"os-supported": "implemented", "security-updates": "implemented",
                    "patch-recency": "implemented", "reboot-pending": "implemented"}),
    # written: Debian 11 after its LTS ended 2026-08-31
    ("debian11", {"os-supported": "not_implemented"}),
    # written: Amazon Linux 2023 with nothing pending from the amazonlinux repo
    ("amazon2023", {"os-supported": "implemented", "security-updates": "implemented"}),
    # written: Alpine 3.19 past its end; apk repositories not modelled: no security count
    ("alpine", {"os-supported": "not_implemented", "security-updates": "unknown"}),
])
def test_fixture_verdicts(distro: str, expected: dict[str, str]) -> None:
    got = judge(distro)
    assert {k: got.get(k) for k in expected} == expected

"""Every SSH fault ends with its own reason, within its own deadline, while the good hosts of the same run are
collected exactly as in a clean scan (issue 16 items 6, 7, 8 and the standing suite)."""
from __future__ import annotations

import json
import os
import re
import time

import pytest

from hostile.faults import CONNECT, EXPECTED, HOST_DEADLINE, host_entry, inventory, start_faults


@pytest.fixture(scope="module")
def faults(tmp_path_factory, sshd_server):
    tmp = str(tmp_path_factory.mktemp("faults"))
    entries, stop = start_faults(tmp, sshd_server)
    yield tmp, entries
    stop()


def _scan(tmp, sshd_server, signing_key, entries, name):
    from agent.inventory import load_inventory
    from agent.run import ScanOptions, scan
    from collectors import signing
    from policies.model import load_profile

    inv = load_inventory(inventory(os.path.join(tmp, f"{name}.yml"), sshd_server, entries, connect=CONNECT,
                                   host=HOST_DEADLINE))
    t0 = time.monotonic()
    res = scan(inv, ScanOptions(out=os.path.join(tmp, name), key=signing.load_private(signing_key),
                                profile=load_profile("fsi-openapi-2018", []), only=("host",), concurrency=16))
    return res, time.monotonic() - t0


def _shape(bundle: str, host: str) -> dict:
    """What must not depend on the other hosts of the run: each fact's status and the keys of its data."""
    rec = json.load(open(os.path.join(bundle, "facts", f"{host}.json"), encoding="utf-8"))
    return {k: (f["status"], sorted(f["data"])) for k, f in rec["facts"].items()}


def test_each_fault_ends_with_its_reason_and_good_hosts_are_unchanged(faults, sshd_server, signing_key):
    tmp, entries = faults
    good = [host_entry("good-1", sshd_server.port), host_entry("good-2", sshd_server.port)]
    clean, _ = _scan(tmp, sshd_server, signing_key, good, "clean")
    mixed, wall = _scan(tmp, sshd_server, signing_key, list(entries.values()) + good, "mixed")
    hosts = {h["name"]: h for h in mixed["hosts"]}
    for name, (pattern, collected) in EXPECTED.items():
        h = hosts[name]
        assert h["collected"] is collected and h["error"] and re.search(pattern, h["error"]), (name, h["error"])
        assert "\x1b" not in h["error"] and "\x07" not in h["error"]
    # killed mid-session: whatever ran is kept; the host says the script did not finish, or that it did not run
    k = json.load(open(os.path.join(tmp, "mixed", "facts", "killed-mid-session.json"), encoding="utf-8"))
    assert (k["collected"] and "did not finish" in k["warning"]) or "did not run" in (k["error"] or ""), k
    for g in ("good-1", "good-2"):
        assert hosts[g]["collected"] and hosts[g]["error"] is None
        a, b = _shape(os.path.join(tmp, "mixed"), g), _shape(os.path.join(tmp, "clean"), g)
        assert a == b, (g, {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)})
    assert wall < HOST_DEADLINE + 20, wall  # ~HOST_DEADLINE + 1 s idle; margin for a loaded 2-core box
    from collectors.verify import verify_bundle
    assert verify_bundle(os.path.join(tmp, "mixed"), None).valid


def test_unknown_host_key_policy_fails_closed(sshd_server):
    """A value that bypassed inventory validation is refused where the connection is made."""
    from probes.transport import TransportError
    from probes.transport.ssh import SshOptions, SshTransport

    for bad in ("Strict", "accept_new", "", "yes", None):
        opts = SshOptions(port=sshd_server.port, key_file=sshd_server.client_key, known_hosts="/nonexistent",
                          host_key_policy=bad)  # type: ignore[arg-type]
        with pytest.raises(TransportError, match="unknown host_key_policy"):
            SshTransport("127.0.0.1", opts).open()

"""Every SSH fault ends with its own reason, within its own deadline, while the good hosts of the same run are
collected exactly as in a clean scan (issue 16 items 6, 7, 8 and the standing suite)."""
from __future__ import annotations

import json
import os
import re
import time

import pytest

from hostile.faults import (TcpFault, escape_banner, forced, host_entry, inventory, killed_mid_handshake,
                            refused_port, silent, tarpit, wrong_key)

HOST_DEADLINE = 15
CONNECT = 3

#: name -> (regex the error must match, collected?)
EXPECTED = {
    "refused": (r"^connection to 127\.0\.0\.1:\d+ refused$", False),
    "silent": (rf"^no SSH banner from 127\.0\.0\.1:\d+ within {CONNECT}s$", False),
    "tarpit": (rf"^no SSH banner from 127\.0\.0\.1:\d+ within {CONNECT}s$", False),
    "escape-banner": (r"^server 'SSH-2\.0-Evil\\x1b\[2J\\x1b\]0;pwned\\x07' at .* did not complete the SSH "
                      r"handshake", False),
    "reset-handshake": (r"closed the connection during the SSH handshake", False),
    "wrong-key": (r"^authentication failed for user 'root'$", False),
    "changed-hostkey": (r"^host key mismatch for 127\.0\.0\.1:\d+: got ssh-ed25519 .*man-in-the-middle", False),
    "unknown-hostkey": (r"^unknown host key for 127\.0\.0\.1:\d+ \(host_key_policy: strict", False),
    "hung-shell": (r"^connected, but the probe script did not run \(host deadline exceeded; no output at all\)$",
                   False),
    "garbage-50mb": (r"^connected, but the probe script did not run \(output larger than 32 MiB; cut; "
                     r"33554432 bytes without framing markers\)$", False),
    "endless": (r"^connected, but the probe script did not run \(output larger than 32 MiB; cut; "
                r"33554432 bytes without framing markers\)$", False),
}


@pytest.fixture(scope="module")
def faults(tmp_path_factory, sshd_server):
    tmp = str(tmp_path_factory.mktemp("faults"))
    servers = {
        "hung": forced(tmp, "hung", "sleep 600"),
        "garbage": forced(tmp, "garbage", "head -c 52428800 /dev/urandom"),
        "endless": forced(tmp, "endless", "yes"),
        # the probe script starts, then its session is killed mid-way
        "killed": forced(tmp, "killed", "sh -c '(eval \"$SSH_ORIGINAL_COMMAND\") & sleep 1.5; kill -9 $PPID'"),
    }
    tcp = {"silent": TcpFault(silent), "tarpit": TcpFault(tarpit), "escape": TcpFault(escape_banner),
           "reset": TcpFault(killed_mid_handshake)}
    other_kh = os.path.join(tmp, "changed_known_hosts")
    with open(other_kh, "w") as f:  # the host's name with another host's key: a changed host key
        f.write(f"[127.0.0.1]:{sshd_server.port} {servers['hung'].host_pub}\n")
    empty_kh = os.path.join(tmp, "empty_known_hosts")
    open(empty_kh, "w").close()
    p = sshd_server.port
    entries = {
        "refused": host_entry("refused", refused_port()),
        "silent": host_entry("silent", tcp["silent"].port, host_key_policy="'off'"),
        "tarpit": host_entry("tarpit", tcp["tarpit"].port, host_key_policy="'off'"),
        "escape-banner": host_entry("escape-banner", tcp["escape"].port, host_key_policy="'off'"),
        "reset-handshake": host_entry("reset-handshake", tcp["reset"].port, host_key_policy="'off'"),
        "wrong-key": host_entry("wrong-key", p, wrong_key(tmp)),
        "changed-hostkey": host_entry("changed-hostkey", p, known_hosts=other_kh),
        "unknown-hostkey": host_entry("unknown-hostkey", p, known_hosts=empty_kh),
        "hung-shell": host_entry("hung-shell", servers["hung"].port, servers["hung"].client_key,
                                 servers["hung"].known_hosts),
        "garbage-50mb": host_entry("garbage-50mb", servers["garbage"].port, servers["garbage"].client_key,
                                   servers["garbage"].known_hosts),
        "endless": host_entry("endless", servers["endless"].port, servers["endless"].client_key,
                              servers["endless"].known_hosts),
        "killed-mid-session": host_entry("killed-mid-session", servers["killed"].port,
                                         servers["killed"].client_key, servers["killed"].known_hosts),
    }
    yield tmp, entries
    for s in servers.values():
        s.stop()
    for t in tcp.values():
        t.close()


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
        assert _shape(os.path.join(tmp, "mixed"), g) == _shape(os.path.join(tmp, "clean"), g)
    assert wall < HOST_DEADLINE + 10, wall
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

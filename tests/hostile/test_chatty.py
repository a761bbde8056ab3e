"""Chatty hosts (item 0a): whatever a target prints, the collector's memory per host stays bounded and the
host says why it was not collected, while good hosts are collected as usual. Memory figures are in
benchmarks/chatty_host.py (a timed/memory test here would be flaky on a shared box)."""
from __future__ import annotations

import json
import os

from hostile.faults import forced, host_entry, inventory


def test_chatty_host_is_not_collected_with_reason_and_good_hosts_are(tmp_path, sshd_server, signing_key):
    from agent.inventory import load_inventory
    from agent.run import ScanOptions, scan
    from collectors import signing
    from policies.model import load_profile

    chatty = forced(str(tmp_path), "chatty", "yes")
    try:
        inv = load_inventory(inventory(str(tmp_path / "inv.yml"), sshd_server, [
            host_entry("good-1", sshd_server.port),
            host_entry("chatty", chatty.port, chatty.client_key, chatty.known_hosts),
            host_entry("good-2", sshd_server.port)], host=30))
        res = scan(inv, ScanOptions(out=str(tmp_path / "b"), key=signing.load_private(signing_key),
                                    profile=load_profile("fsi-openapi-2018", []), only=("host",)))
    finally:
        chatty.stop()
    hosts = {h["name"]: h for h in res["hosts"]}
    assert hosts["good-1"]["collected"] and hosts["good-2"]["collected"]
    assert not hosts["chatty"]["collected"]
    err = hosts["chatty"]["error"]
    assert "probe script did not run" in err and "larger than 32 MiB" in err and "without framing" in err
    rec = json.load(open(os.path.join(tmp_path, "b", "facts", "chatty.json"), encoding="utf-8"))
    assert rec["connected"] and not rec["collected"] and rec["facts"] == {}

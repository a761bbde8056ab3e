"""Jump hosts: inventory rules (unit) and collection through real bastions in a namespace topology (lab).

The topology (tests/jumplab.py) puts the targets where the scanner cannot reach them except through the
bastion's SSH channels; the bastion's sshd has MaxSessions 10 and logs every channel it frees with the number
it had open, which is how the channel limit is checked from the server's side.
"""
from __future__ import annotations

import glob
import json
import os
import time

import pytest

import jumplab
from agent.inventory import load_inventory
from agent.yamlsrc import ConfigError


def _inv(tmp_path, hosts: str, defaults: str = "") -> str:
    p = tmp_path / "inv.yml"
    p.write_text(f"version: 1\nscope: {{allow: [10.231.60.0/22]}}\n{defaults}hosts:\n{hosts}")
    return str(p)


# ---------------------------------------------------------------------------------------------------- inventory

def test_jump_chain_resolves_like_openssh(tmp_path) -> None:
    """A chain's first hop is reached by its own jump list; collect: false hops are not collected targets."""
    inv = load_inventory(_inv(tmp_path, """\
  - {name: b1, address: 10.231.61.1, collect: false, ssh: {user: ops, port: 2222, max_sessions: 4}}
  - {name: b2, address: 10.231.62.1, collect: false, ssh: {jump: b1}}
  - {name: b3, address: 10.231.62.3, ssh: {jump: [b1]}}
  - {name: t1, address: 10.231.63.1, ssh: {jump: b2}}
  - {name: t2, address: 10.231.63.2, ssh: {jump: [b2, b3]}}
  - {name: direct, address: 10.231.61.5}
"""))
    by = {h.name: h for h in inv.hosts}
    assert sorted(by) == ["b3", "direct", "t1", "t2"]  # b1, b2 are hops only
    assert by["t1"].route == ("b1", "b2")
    assert by["t2"].route == ("b1", "b2", "b3")
    assert by["b3"].route == ("b1",)
    assert by["direct"].route == () and "jump" not in by["direct"].meta()  # a direct host's record is unchanged
    assert by["t1"].meta()["jump"] == ["b1", "b2"]
    assert set(inv.jump_hosts) == {"b1", "b2", "b3"}
    b1 = inv.jump_hosts["b1"]
    assert (b1.ssh.user, b1.ssh.port, b1.ssh.max_sessions, b1.collect) == ("ops", 2222, 4, False)
    assert inv.jump_hosts["b2"].ssh.max_sessions == 8  # the default, below OpenSSH's MaxSessions 10


@pytest.mark.parametrize("hosts,words", [
    ("  - {name: t1, address: 10.231.63.1, ssh: {jump: nope}}\n", ["inv.yml:4: hosts[0].ssh.jump:", "'nope' is not a host"]),
    ("  - {name: a, address: 10.231.61.1, ssh: {jump: b}}\n  - {name: b, address: 10.231.61.2, ssh: {jump: a}}\n",
     ["loop"]),
    ("  - {name: a, address: 10.231.61.1, ssh: {jump: a}}\n", ["loop"]),
    ("  - {name: b, address: 10.231.61.1, collect: false, ssh: {max_sessions: 0}}\n", ["hosts[0].ssh.max_sessions"]),
    ("  - {name: b, address: 192.0.2.1, collect: false}\n  - {name: t, address: 10.231.63.1, ssh: {jump: b}}\n",
     ["outside", "inv.yml:4: hosts[0].address"]),
    ("  - {name: b, address: 10.231.61.1, transport: local}\n  - {name: t, address: 10.231.63.1, ssh: {jump: b}}\n",
     ["not an ssh host"]),
])
def test_bad_jump_lists_name_line_and_key(tmp_path, hosts: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as e:
        load_inventory(_inv(tmp_path, hosts))
    text = str(e.value)
    assert "inv.yml" in text
    for w in words:
        assert w in text, text


def test_defaults_jump_with_the_bastion_opting_out(tmp_path) -> None:
    inv = load_inventory(_inv(tmp_path, """\
  - {name: b1, address: 10.231.61.1, collect: false, ssh: {jump: []}}
  - {name: t1, address: 10.231.63.1}
""", defaults="defaults: {ssh: {jump: b1}}\n"))
    assert inv.hosts[0].route == ("b1",) and inv.jump_hosts["b1"].route == ()


# ---------------------------------------------------------------------------------------------------- lab

@pytest.fixture(scope="module")
def jlab(tmp_path_factory):
    why = jumplab.preflight()
    if why:
        pytest.skip(why)
    lab = jumplab.JumpLab(str(tmp_path_factory.mktemp("jumplab")), targets=50)
    lab.start()
    yield lab
    lab.stop()


def _yaml(lab: jumplab.JumpLab, hosts: list[dict], host_timeout: float = 120) -> str:
    body = {"version": 1, "scope": {"allow": jumplab.SCOPE},
            "defaults": {"ssh": {"user": "root", "key_file": lab.client_key, "known_hosts": lab.known_hosts,
                                 "host_key_policy": "strict", "connect_timeout": 5},
                         "timeouts": {"connect": 5, "command": 60, "host": host_timeout}},
            "hosts": hosts}
    return json.dumps(body, indent=1)


def _record(out: str, name: str) -> dict:
    with open(os.path.join(out, "facts", f"{name}.json")) as f:
        return json.load(f)


@pytest.mark.lab
def test_fifty_targets_through_one_bastion_within_its_channel_limit(jlab, tmp_path, signing_key) -> None:
    # the targets really are behind the bastion: the scanner cannot reach them itself
    assert jlab.reachable_from_scanner(jumplab.BAST1_IP)
    assert not jlab.reachable_from_scanner(jumplab.target_ip(0))
    assert not jlab.reachable_from_scanner(jumplab.DEEP_IP)
    hosts = [{"name": "bast1", "address": jumplab.BAST1_IP, "collect": False},
             {"name": "bast2", "address": jumplab.BAST2_IP, "collect": False, "ssh": {"jump": "bast1"}},
             {"name": "deep", "address": jumplab.DEEP_IP, "ssh": {"jump": ["bast1", "bast2"]}}]
    hosts += [{"name": f"t{i:02d}", "address": jumplab.target_ip(i), "ssh": {"jump": "bast1"}} for i in range(50)]
    out = str(tmp_path / "out")
    before = jlab.peak_channels()
    r = jlab.scan(_yaml(jlab, hosts), out, signing_key, "--only", "host", "--concurrency", "24")
    assert r.returncode == 0, r.stderr[-2000:]
    for i in range(50):
        rec = _record(out, f"t{i:02d}")
        assert rec["collected"], rec["error"]
        hops = rec["transport"]["jump"]
        assert [h["name"] for h in hops] == ["bast1"]
        assert hops[0]["host_key_fingerprint_sha256"].startswith("SHA256:")
        assert hops[0]["host_key_policy"] == "strict" and hops[0]["max_sessions"] == 8
        assert rec["transport"]["address"] == jumplab.target_ip(i)
    deep = _record(out, "deep")
    assert deep["collected"], deep["error"]
    assert [h["name"] for h in deep["transport"]["jump"]] == ["bast1", "bast2"]
    assert deep["facts"]["os"]["status"] == "collected"
    assert not os.path.exists(os.path.join(out, "facts", "bast1.json"))  # a hop only: never collected
    # every evidence file's header names the path
    files = glob.glob(os.path.join(out, "evidence", "*_deep_*"))
    assert files
    with open(files[0], encoding="utf-8") as f:
        head = f.read(2000)
    assert "via jump host 1 of 2 bast1 root@10.231.61.1:22" in head and "via jump host 2 of 2 bast2" in head
    # the server's own count: never more channels open at once than max_sessions (8), and it was reached
    peak = jlab.peak_channels()
    assert peak > before or before == 0
    assert 2 <= peak <= 8, peak
    assert "nchannels 9" not in jlab.bastion_log() and "nchannels 10" not in jlab.bastion_log()


@pytest.mark.lab
def test_bastion_faults_are_per_bastion_and_the_run_goes_on(jlab, tmp_path, signing_key) -> None:
    wrong_kh = str(tmp_path / "wrong_known_hosts")
    with open(wrong_kh, "w") as f:  # bast1's address with another host's key: a changed host key
        f.write(f"{jumplab.BAST1_IP} {jlab.host_pub[jumplab.DEEP]}\n")
    b = jumplab.BAST1_IP
    hosts = [
        {"name": "bast1", "address": b, "collect": False},
        {"name": "b-down", "address": b, "collect": False, "ssh": {"port": jumplab.REFUSED_PORT}},
        {"name": "b-key", "address": b, "collect": False, "ssh": {"key_file": jlab.wrong_key}},
        {"name": "b-changed", "address": b, "collect": False, "ssh": {"known_hosts": wrong_kh}},
        {"name": "b-hung", "address": b, "collect": False, "ssh": {"port": jumplab.HANG_PORT, "connect_timeout": 60}},
        {"name": "ok", "address": jumplab.target_ip(0), "ssh": {"jump": "bast1"}},
        {"name": "void", "address": jumplab.VOID_IP, "ssh": {"jump": "bast1"}},
    ]
    for bad in ("b-down", "b-key", "b-changed", "b-hung"):
        hosts += [{"name": f"{bad}-t{i}", "address": jumplab.target_ip(i + 1), "ssh": {"jump": bad}} for i in range(2)]
    out = str(tmp_path / "out")
    t0 = time.monotonic()
    r = jlab.scan(_yaml(jlab, hosts, host_timeout=8), out, signing_key, "--only", "host")
    wall = time.monotonic() - t0
    assert r.returncode == 0, r.stderr[-2000:]
    assert _record(out, "ok")["collected"], _record(out, "ok")["error"]
    expect = {"b-down": "refused", "b-key": "authentication failed", "b-changed": "host key mismatch",
              "b-hung": "no SSH banner"}
    for bad, why in expect.items():
        for i in range(2):
            rec = _record(out, f"{bad}-t{i}")
            assert not rec["collected"]
            assert rec["error"].startswith(f"jump host {bad} ({b}:"), rec["error"]
            assert why in rec["error"], rec["error"]
            assert rec["transport"]["jump"] == [{"name": bad}]
    # the hung hop waited its connect timeout capped by the host deadline (8 s), not its own 60 s
    assert "within 8s" in _record(out, "b-hung-t0")["error"]
    assert wall < 60, wall
    void = _record(out, "void")  # the bastion is fine; the target behind it is not
    assert not void["collected"]
    assert void["error"].startswith(f"jump host bast1 ({b}:22) could not connect to {jumplab.VOID_IP}:22: "
                                    "the jump host could not open a TCP connection") or \
        f"no connection to {jumplab.VOID_IP}:22 through jump host bast1" in void["error"], void["error"]
    with open(os.path.join(out, "results.json")) as f:
        results = json.load(f)
    assert {h["name"] for h in results["hosts"]} == {"ok", "void"} | {f"{x}-t{i}" for x in expect for i in range(2)}


@pytest.mark.lab
def test_ssh_config_proxyjump_through_the_topology(jlab, tmp_path, signing_key) -> None:
    cfg = tmp_path / "ssh_config"
    cfg.write_text(f"Host bast1\n  HostName {jumplab.BAST1_IP}\n  User root\n\n"
                   f"Host tgt-*\n  ProxyJump bast1\n\n"
                   f"Host tgt-a\n  HostName {jumplab.target_ip(3)}\n\nHost *\n  IdentityFile {jlab.client_key}\n")
    body = json.loads(_yaml(jlab, [{"name": "bast1", "collect": False}, {"name": "tgt-a"}]))
    body["defaults"]["ssh_config"] = str(cfg)
    del body["defaults"]["ssh"]["key_file"]  # so the file's IdentityFile is the one used
    out = str(tmp_path / "out")
    r = jlab.scan(json.dumps(body), out, signing_key, "--only", "host")
    assert r.returncode == 0, r.stderr[-2000:]
    rec = _record(out, "tgt-a")
    assert rec["collected"], rec["error"]
    assert rec["transport"]["address"] == jumplab.target_ip(3)
    assert [h["name"] for h in rec["transport"]["jump"]] == ["bast1"]
    assert rec["transport"]["jump"][0]["address"] == jumplab.BAST1_IP
    taken = rec["transport"]["ssh_config"]
    assert taken["file"] == str(cfg) and taken["address"] == jumplab.target_ip(3)
    assert taken["jump"] == ["bast1"] and taken["key_file"] == jlab.client_key


@pytest.mark.lab
def test_ansible_inventory_converts_and_scans_through_the_bastion(jlab, tmp_path, signing_key) -> None:
    from test_ansible_import import MAPPING, _ansible, make_ansible

    _ansible()
    import yaml

    src = make_ansible(tmp_path, bastion=jumplab.BAST1_IP, targets=(jumplab.target_ip(4), jumplab.target_ip(5)),
                       db=jumplab.target_ip(6), key=jlab.client_key)
    m = tmp_path / "map.yml"
    m.write_text(yaml.safe_dump({**MAPPING, "defaults": {"ssh": {"known_hosts": jlab.known_hosts, "connect_timeout": 5},
                                                         "timeouts": {"host": 120, "command": 60}}}))
    inv = str(tmp_path / "inventory.yml")
    from agent.cli import main

    assert main(["inventory", "from-ansible", src, "--map", str(m), "--scope", *jumplab.SCOPE, "--out", inv]) == 0
    out = str(tmp_path / "out")
    r = jlab.scan(open(inv).read(), out, signing_key, "--only", "host")
    assert r.returncode == 0, r.stderr[-2000:]
    for name in ("web1", "web2", "db1"):
        rec = _record(out, name)
        assert rec["collected"], (name, rec["error"])
        assert [h["name"] for h in rec["transport"]["jump"]] == ["bastion1"]
    assert _record(out, "bastion1")["collected"]  # an Ansible host itself: collected directly
    assert "jump" not in _record(out, "bastion1")["transport"]

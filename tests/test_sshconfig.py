"""``defaults: {ssh_config: FILE}``: OpenSSH config text read through paramiko's SSHConfig (no network)."""
from __future__ import annotations

import pytest

from agent.inventory import load_inventory
from agent.yamlsrc import ConfigError

CONFIG = """\
Host bastion
    HostName 10.231.61.1
    User ops
    Port 2222
    IdentityFile ~/.ssh/ops_ed25519
    UserKnownHostsFile /etc/ea/known_hosts_ops

Host web-* !web-legacy
    User deploy
    ProxyJump bastion

Host web-legacy
    HostName 10.231.63.9
    ProxyJump none

Host db1
    HostName 10.231.63.20
    Port 2200
    ProxyJump bastion,web-1

Host *
    User fallback
    IdentityFile /keys/default
"""


def _load(tmp_path, hosts: str, defaults: str = "", config: str = CONFIG):
    (tmp_path / "ssh_config").write_text(config)
    p = tmp_path / "inv.yml"
    p.write_text("version: 1\nscope: {allow: [10.231.60.0/22]}\n"
                 f"defaults: {{ssh_config: ssh_config{defaults}}}\nhosts:\n{hosts}")
    return load_inventory(str(p))


def test_values_come_from_matching_host_blocks(tmp_path) -> None:
    inv = _load(tmp_path, """\
  - {name: bastion, collect: false}
  - {name: web-1, address: 10.231.63.1}
  - {name: web-legacy}
  - {name: db1, ssh: {user: root}}
""")
    by = {h.name: h for h in inv.hosts}
    b = inv.jump_hosts["bastion"]
    assert (b.address, b.ssh.user, b.ssh.port) == ("10.231.61.1", "ops", 2222)
    assert b.ssh.key_file.endswith("/.ssh/ops_ed25519") and b.ssh.known_hosts == "/etc/ea/known_hosts_ops"
    assert b.ssh_config["file"].endswith("ssh_config") and b.ssh_config["user"] == "ops"
    web = by["web-1"]  # the pattern block first (User deploy wins over Host *'s User: first value wins)
    assert (web.address, web.ssh.user, web.ssh.key_file, web.route) == ("10.231.63.1", "deploy", "/keys/default",
                                                                         ("bastion",))
    assert "address" not in web.ssh_config  # the inventory's own address, not the file's
    assert web.ssh_config["jump"] == ["bastion"]
    legacy = by["web-legacy"]  # excluded from web-* by the negation; ProxyJump none
    assert (legacy.address, legacy.ssh.user, legacy.route) == ("10.231.63.9", "fallback", ())
    db = by["db1"]
    assert db.ssh.user == "root" and "user" not in db.ssh_config  # the inventory's value wins
    assert (db.address, db.ssh.port, db.route) == ("10.231.63.20", 2200, ("bastion", "web-1"))


def test_inventory_defaults_win_over_the_file(tmp_path) -> None:
    inv = _load(tmp_path, "  - {name: web-1, address: 10.231.63.1}\n  - {name: bastion, collect: false}\n",
                defaults=", ssh: {user: auditor, key_file: /keys/audit}")
    h = inv.hosts[0]
    assert (h.ssh.user, h.ssh.key_file, h.route) == ("auditor", "/keys/audit", ("bastion",))
    assert set(h.ssh_config) == {"file", "jump"}


def test_without_the_opt_in_nothing_is_read(tmp_path) -> None:
    p = tmp_path / "inv.yml"
    p.write_text("version: 1\nscope: {allow: [10.231.60.0/22]}\nhosts:\n  - {name: web-1, address: 10.231.63.1}\n")
    h = load_inventory(str(p)).hosts[0]
    assert (h.ssh.user, h.route, h.ssh_config) == ("root", (), {})


@pytest.mark.parametrize("hosts,config,words", [
    ("  - {name: web-1}\n", "Host web-1\n  User x\n", ["inv.yml:5", "address", "HostName"]),
    ("  - {name: web-1}\n", "Host web-1\n  HostName 192.0.2.7\n", ["outside scope.allow"]),
    ("  - {name: web-1, address: 10.231.63.1}\n", "Host web-1\n  ProxyJump gw\n",
     ["inv.yml:5", "ProxyJump in", "'gw' is not a host"]),
    ("  - {name: web-1, address: 10.231.63.1}\n", "Host web-1\n  ProxyJump ops@gw:2222\n",
     ["inv.yml:5", "name an inventory host"]),
    ("  - {name: web-1, address: 10.231.63.1}\n", "Host web-1\n  Port many\n", ["Port", "not a number"]),
])
def test_bad_config_values_name_the_host_and_file(tmp_path, hosts: str, config: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, hosts, config=config)
    for w in words:
        assert w in str(e.value), str(e.value)


def test_missing_file_is_an_error_at_its_key(tmp_path) -> None:
    p = tmp_path / "inv.yml"
    p.write_text("version: 1\nscope: {allow: [10.231.60.0/22]}\ndefaults: {ssh_config: nope/config}\nhosts: []\n")
    with pytest.raises(ConfigError) as e:
        load_inventory(str(p))
    assert "inv.yml:3" in str(e.value) and "defaults.ssh_config" in str(e.value) and "cannot read" in str(e.value)

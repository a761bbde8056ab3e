"""``inventory from-ansible``: a real INI inventory with groups and group_vars through the real ansible-inventory."""
from __future__ import annotations

import os
import shutil
import sys

import pytest
import yaml

from agent.ansible_import import find_ansible_inventory
from agent.cli import main
from agent.inventory import load_inventory


def _ansible() -> str:
    try:
        return find_ansible_inventory(None)
    except ValueError:
        pytest.skip("ansible-inventory is not installed (ansible-core, requirements-test.txt)")


def make_ansible(tmp_path, bastion: str = "10.231.61.1", targets: tuple[str, ...] = ("10.231.63.1", "10.231.63.2"),
                 db: str = "10.231.63.3", key: str = "/keys/ops") -> str:
    d = tmp_path / "ansible"
    (d / "group_vars").mkdir(parents=True)
    (d / "hosts.ini").write_text(f"""\
[bastions]
bastion1 ansible_host={bastion}

[web]
web1 ansible_host={targets[0]}
web2 ansible_host={targets[1]} ansible_port=22

[db]
db1 ansible_host={db} ansible_become=true ansible_become_password=notreal

[outside]
far1 ansible_host=192.0.2.50

[winbox]
win1 ansible_host=10.231.63.8 ansible_connection=winrm

[prod:children]
web
db
""")
    (d / "group_vars" / "prod.yml").write_text(f"""\
ansible_user: root
ansible_ssh_private_key_file: {key}
ansible_ssh_common_args: '-o ProxyJump=bastion1 -o ServerAliveInterval=30'
""")
    (d / "group_vars" / "bastions.yml").write_text(f"ansible_user: root\nansible_ssh_private_key_file: {key}\n")
    return str(d / "hosts.ini")


MAPPING = {"roles": {"web": ["web"], "db": "db"}, "zones": {"prod": "internal", "bastions": "mgmt"}}


def test_ini_with_groups_group_vars_and_proxyjump_converts_and_validates(tmp_path, capsys) -> None:
    _ansible()
    src = make_ansible(tmp_path)
    m = tmp_path / "map.yml"
    m.write_text(yaml.safe_dump(MAPPING))
    out = str(tmp_path / "inventory.yml")
    rc = main(["inventory", "from-ansible", src, "--map", str(m), "--scope", "10.231.60.0/22", "--out", out])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    inv = load_inventory(out)  # a normal inventory
    by = {h.name: h for h in inv.hosts}
    assert sorted(by) == ["bastion1", "db1", "web1", "web2"]
    assert by["web1"].address == "10.231.63.1" and by["web1"].ssh.user == "root"
    assert by["web1"].ssh.key_file == "/keys/ops"
    assert by["web1"].route == ("bastion1",) and by["db1"].route == ("bastion1",)
    assert by["bastion1"].route == () and by["bastion1"].zone == "mgmt"
    assert by["web2"].roles == ["web"] and by["web2"].zone == "internal"
    assert by["db1"].roles == ["db"] and by["db1"].become
    text = open(out).read()
    assert "notreal" not in text  # a secret is never written, only named
    for word in ("far1", "outside scope.allow", "win1", "winrm", "ansible_become_password",
                 "never written"):
        assert word in text and word in printed.out, word
    assert "scope" in yaml.safe_load(text) and yaml.safe_load(text)["scope"]["allow"] == ["10.231.60.0/22"]


def test_limit_and_an_unknown_proxyjump_hop_become_a_hop_entry(tmp_path) -> None:
    exe = _ansible()
    src = make_ansible(tmp_path)
    with open(os.path.join(os.path.dirname(src), "group_vars", "prod.yml"), "a") as f:
        f.write("ansible_ssh_extra_args: ''\n")
    with open(src, "a") as f:
        f.write("\n[edge]\nedge1 ansible_host=10.231.62.7 ansible_ssh_common_args='-J ops@10.231.61.9:2222'\n")
    out = str(tmp_path / "inventory.yml")
    rc = main(["inventory", "from-ansible", src, "--limit", "edge", "--scope", "10.231.60.0/22", "--out", out,
               "--ansible-inventory", exe])
    assert rc == 0
    inv = load_inventory(out)
    assert [h.name for h in inv.hosts] == ["edge1"]
    hop = inv.jump_hosts["jump-10.231.61.9"]
    assert (hop.address, hop.ssh.user, hop.ssh.port, hop.collect) == ("10.231.61.9", "ops", 2222, False)
    assert inv.hosts[0].route == ("jump-10.231.61.9",)


def test_scope_is_required_and_errors_are_clear(tmp_path, capsys) -> None:
    _ansible()
    src = make_ansible(tmp_path)
    with pytest.raises(SystemExit):
        main(["inventory", "from-ansible", src, "--out", str(tmp_path / "x.yml")])
    rc = main(["inventory", "from-ansible", str(tmp_path / "missing.ini"), "--scope", "10.231.60.0/22",
               "--out", str(tmp_path / "x.yml"), "--limit", "nothing-matches"])
    assert rc == 1 and not os.path.exists(tmp_path / "x.yml")
    assert "evidence-agent:" in capsys.readouterr().err
    bad = tmp_path / "bad-map.yml"
    bad.write_text("groups: {web: web}\n")
    rc = main(["inventory", "from-ansible", src, "--map", str(bad), "--scope", "10.231.60.0/22",
               "--out", str(tmp_path / "x.yml")])
    assert rc == 1 and "roles, zones and defaults only" in capsys.readouterr().err


def test_found_next_to_this_python() -> None:
    exe = _ansible()
    assert os.path.basename(exe) == "ansible-inventory"
    assert shutil.which("ansible-inventory") or os.path.dirname(exe) == os.path.dirname(sys.executable)

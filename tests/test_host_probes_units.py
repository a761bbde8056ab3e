"""Host probes: secrets, command scripts, data tables, registry and single parsers."""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest

from host_fixture_loader import FIXTURES, distros, load
from probes.batch import dedupe
from probes.host import (
    PROBES,
    accounts,
    common,
    firewall,
    interfaces,
    listening,
    logging_time,
    patch,
)
from probes.host.common import load_data
from policies.expr import bind_params, evaluate
from policies.model import load_profile

INSECURE_SERVICES = next(r for r in load_profile("fsi-openapi-2018").rules if r.id == "no-insecure-services").params[
    "insecure_services"]

ALL_COMMANDS = dedupe(c for p in PROBES for c in p.commands)

#: A crypt(3) hash or salt: "$id$" followed by salt/hash characters, or a bare 13-char DES hash field.
HASH_RE = re.compile(r"\$(1|2[abxy]|5|6|y|gy|7|md5|sha1)\$[./0-9A-Za-z]{2,}|\$[0-9a-z]{1,4}\$rounds=")
DES_FIELD_RE = re.compile(r"^[^:\s]+:[./0-9A-Za-z]{13}:", re.M)

SHADOW_SAMPLE = """\
root:$y$j9T$QzZ1Jc0aFakeSaltXX$AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdef:20000:0:99999:7:::
alice:$6$rounds=5000$saltsaltsalt$0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ./0123456789abcdefg:20100:1:90:7:30:21000:
bob:!$6$saltsalt$ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ:20100:0:99999:7:::
carol::20100:0:99999:7:::
dave:!!:20100::::::
erin:abCDefGHijKLm:19000:0:99999:7:::
frank:$1$saltsalt$aaaaaaaaaaaaaaaaaaaaaa:19000:0:99999:7:::
gina:$2b$12$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01:19000:::::
hank:$gy$j9T$saltsaltsalt$hashhashhashhashhashhashhashhashhashhashhash:19000:::::
ivan:$SECRETSECRETSECRET$x:1:::::
"""


def _run(shell: list[str], script: str) -> str:
    return subprocess.run(shell + [script], capture_output=True, text=True, timeout=30).stdout


SHELLS = [["sh", "-c"]] + ([["busybox", "sh", "-c"]] if shutil.which("busybox") else [])


# --- secrets ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_shadow_command_strips_hashes_on_the_target(tmp_path, shell):
    f = tmp_path / "shadow"
    f.write_text(SHADOW_SAMPLE)
    script = common.SHADOW.script.replace("/etc/shadow", str(f))
    if shell[0] == "busybox":  # the BusyBox awk, not the system one
        script = script.replace("awk -F:", "busybox awk -F:")
    out = _run(shell, script)
    assert "shadow: ok" in out
    assert not HASH_RE.search(out), out
    assert not DES_FIELD_RE.search(out), out
    for secret in ("QzZ1Jc0a", "saltsalt", "ZZZZZZZZ", "abCDefGHijKLm", "SECRET", "abcdefghijklmnop"):
        assert secret not in out
    shadow, state = accounts.parse_shadow(out)
    assert state == "ok"
    assert {k: (v["state"], v["algo"]) for k, v in shadow.items()} == {
        "root": ("set", "yescrypt"),
        "alice": ("set", "sha512"),
        "bob": ("locked", "sha512"),
        "carol": ("empty", None),
        "dave": ("locked", None),
        "erin": ("set", "des"),
        "frank": ("set", "md5"),
        "gina": ("set", "bcrypt"),
        "hank": ("set", "gost-yescrypt"),
        "ivan": ("set", "unknown"),
    }
    assert shadow["alice"]["max"] == 90 and shadow["alice"]["expire"] == 21000


def test_passwd_and_group_commands_strip_legacy_hashes(tmp_path):
    pw = tmp_path / "passwd"
    pw.write_text(
        "root:x:0:0:root:/root:/bin/bash\nold:$1$salt$abcdefghabcdefgh:1000:1000::/home/old:/bin/sh\n"
        "des:abCDefGHijKLm:1001:1001::/:/bin/sh\nnopw::1002:1002::/:/bin/sh\n"
    )
    gr = tmp_path / "group"
    gr.write_text("wheel:$6$salt$hashhashhash:10:alice\nsudo:x:27:bob\n")
    out = _run(["sh", "-c"], accounts.PASSWD.script.replace("/etc/passwd", str(pw)))
    assert "(hash)" in out and "(empty)" in out
    assert not HASH_RE.search(out) and "abCDefGHijKLm" not in out
    users = {u["name"]: u for u in accounts.parse_passwd(out)}
    assert users["old"]["pwfield"] == "(hash)" and users["nopw"]["pwfield"] == "(empty)"
    gout = _run(["sh", "-c"], accounts.GROUP.script.replace("/etc/group", str(gr)))
    assert not HASH_RE.search(gout)
    assert accounts.parse_groups(gout)["wheel"]["members"] == ["alice"]


def test_real_shadow_of_this_machine_leaves_no_hash():
    """The command as shipped, on this host's /etc/shadow (complete only as root)."""
    import time

    from probes.transport.local import LocalTransport

    res = LocalTransport().run([common.SHADOW, accounts.PASSWD, accounts.GROUP], time.monotonic() + 30)
    for out in res.outputs.values():
        assert not HASH_RE.search(out.output)
        assert not DES_FIELD_RE.search(out.output)


def test_no_fixture_file_holds_a_hash():
    for f in FIXTURES.rglob("*.txt"):
        text = f.read_text(encoding="utf-8")
        assert not HASH_RE.search(text), f
        if f.name == "shadow.txt":
            assert not DES_FIELD_RE.search(text), f


@pytest.mark.parametrize("distro", distros())
def test_no_fact_holds_a_hash(distro):
    outputs = load(distro)
    for p in PROBES:
        blob = json.dumps(p.parse(outputs).to_json())
        assert not HASH_RE.search(blob), (distro, p.name)


# --- command scripts ------------------------------------------------------------------------------


@pytest.mark.parametrize("shell", ["sh", "dash", "busybox"])
def test_every_command_is_posix_sh(shell):
    argv = ["busybox", "sh", "-n", "-c"] if shell == "busybox" else [shell, "-n", "-c"]
    if not shutil.which(argv[0]):
        pytest.skip(f"{argv[0]} not installed")
    for c in ALL_COMMANDS:
        r = subprocess.run(argv + [c.script], capture_output=True, text=True)
        assert r.returncode == 0, (c.name, r.stderr)


def test_command_hygiene():
    bashisms = re.compile(r"(^|[;&|\s])\[\[\s|\bfunction\b|<<<|\$\{[^}]*//|\bsource\b|&>")
    for c in ALL_COMMANDS:
        assert not bashisms.search(c.script), c.name
        assert not re.search(r"\bfind\s+/(\s|$)", c.script), c.name  # no filesystem walks
        assert "apt-get update" not in c.script and "makecache" not in c.script, c.name
        if re.search(r"\b(dnf|yum)\s", c.script):  # the tool, not a path like /etc/yum.repos.d
            assert " -C " in c.script, c.name  # cache only, never a metadata refresh
        assert 1 <= c.timeout <= 180, c.name
    names = [c.name for c in ALL_COMMANDS]
    assert len(names) == len(set(names))


def test_privileged_commands_say_who_ran_them():
    for c in ALL_COMMANDS:
        if c.privileged and c.name not in ("sshd_T",):
            assert "uid=${_ea_uid:-$(id -u)}" in c.script, c.name


def test_shared_commands_are_identical_across_probes():
    seen: dict = {}
    for p in PROBES:
        for c in p.commands:
            assert seen.setdefault(c.name, c.script) == c.script, c.name


# --- registry and data ----------------------------------------------------------------------------


def test_registry_order_and_files_on_disk():
    names = [p.name for p in PROBES]
    assert names[:2] == ["identity", "session_timeout"]
    assert len(names) == len(set(names))
    host_dir = Path(__file__).resolve().parents[1] / "probes" / "host"
    modules = {
        f.stem
        for f in host_dir.glob("*.py")
        if re.search(r"^PROBE = HostProbe\(", f.read_text(encoding="utf-8"), re.M)
    }
    registered = {p.parse.__module__.rsplit(".", 1)[-1] for p in PROBES}
    assert modules == registered
    for p in PROBES:
        assert p.items and p.description_ko and p.description_en


def test_eol_table_is_dated_and_well_formed():
    """Every release carries its dates, the vendor page they come from and when they were recorded; an unsure
    entry says what is unsure; an extended end names its programme, which says whether enrolment is needed."""
    t = load_data("os_eol.yaml")
    assert isinstance(t["table_date"], date)
    for key, prog in t["programmes"].items():
        assert prog["name"] and isinstance(prog["enrolment"], bool) and prog["source"], key
    assert t["programmes"]["debian-lts"]["enrolment"] is False  # LTS ships through the security suite
    assert t["programmes"]["ubuntu-esm"]["enrolment"] and t["programmes"]["rhel-els"]["enrolment"]
    for os_id, rows in t["releases"].items():
        assert os_id in t["version_key"]
        for ver, row in rows.items():
            assert isinstance(row["eol"], date), (os_id, ver)
            assert row.get("extended") is None or row["extended"] >= row["eol"], (os_id, ver)
            assert row["source"] and isinstance(row["recorded"], date) and row["recorded"] <= t["table_date"]
            assert isinstance(row["certain"], bool), (os_id, ver)
            assert row["certain"] or row.get("note"), (os_id, ver)  # unsure: says what
            if row.get("extended") is not None:
                assert row["programme"] in t["programmes"], (os_id, ver)


def test_data_tables_are_well_formed():
    av = load_data("antivirus.yaml")
    assert av["table_date"]
    for p in av["products"]:
        assert {"name", "vendor", "processes", "services", "paths"} <= set(p), p.get("name")
        assert set(p.get("realtime_processes", [])) <= set(p["processes"]), p["name"]
    sv = load_data("services.yaml")
    assert "insecure" not in sv  # what is insecure: the no-insecure-services rule's params
    for row in INSECURE_SERVICES:
        assert {"service", "proto", "ports", "processes", "reason"} == set(row), row
        assert row["proto"] in ("tcp", "udp", "any") and all(isinstance(x, int) for x in row["ports"])
        assert isinstance(row["reason"], str) and all(isinstance(p, str) for p in row["processes"])
    algos = load_data("ssh_algorithms.yaml")
    assert "pam_google_authenticator.so" in algos["mfa_pam_modules"] and "ciphers" not in algos  # weak: rule params
    kp = load_data("key_packages.yaml")
    for pats in kp["components"].values():
        for pat in pats:
            re.compile(pat)


# --- single parsers -------------------------------------------------------------------------------


@pytest.mark.parametrize("sample", ["ifconfig_busybox.txt", "ifconfig_nettools.txt"])
def test_ifconfig_formats(sample):
    text = (FIXTURES / "_samples" / sample).read_text()
    tool, ifaces = interfaces.parse_addrs(text)
    assert tool == "ifconfig"
    eth0 = next(i for i in ifaces if i["name"] == "eth0")
    assert eth0["mac"] == "02:fc:00:00:00:01" and eth0["up"] is True
    assert [(a["address"], a["prefixlen"]) for a in eth0["addresses"]] == [
        ("192.0.2.2", 24),
        ("fd00::2", 64),
        ("fe80::fc:ff:fe00:1", 64),
    ]
    lo = next(i for i in ifaces if i["name"] == "lo")
    assert lo["loopback"] is True
    assert next(i for i in ifaces if i["name"] == "ifb0")["up"] is False


@pytest.mark.parametrize(
    "addr,category,private",
    [
        ("10.1.2.3", "private", True),
        ("172.31.255.1", "private", True),
        ("172.32.0.1", "public", False),
        ("192.168.1.1", "private", True),
        ("fd12::1", "private", True),
        ("fe80::1", "link_local", False),
        ("169.254.169.254", "link_local", False),
        ("100.64.0.1", "shared", False),
        ("127.0.0.1", "loopback", False),
        ("100.127.255.254", "shared", False),
        ("100.128.0.1", "public", False),
        ("127.0.0.1", "loopback", False),
        ("192.0.2.1", "documentation", False),
        ("198.51.100.7", "documentation", False),
        ("203.0.113.9", "documentation", False),
        ("198.18.0.1", "benchmark", False),
        ("198.19.255.254", "benchmark", False),
        ("198.20.0.1", "public", False),
        ("8.8.8.8", "public", False),
        ("0.0.0.1", "reserved", False),
        ("240.0.0.1", "reserved", False),
        ("224.0.0.251", "multicast", False),
        ("2001:db8::1", "documentation", False),
        ("2001:2::1", "benchmark", False),
        ("2600:1f18::1", "public", False),
        ("fd00::2", "private", True),
        ("fc00::1", "reserved", False),  # the undefined half of fc00::/7 is not locally assigned ULA
        ("::1", "loopback", False),
    ],
)
def test_address_classification(addr, category, private):
    assert interfaces.classify(addr) == (category, private)


def test_every_global_address_outside_the_private_ranges_is_named_by_its_range():
    text = "\n".join([
        "1: lo    inet 127.0.0.1/8 scope host lo",
        "1: lo    inet6 ::1/128 scope host",
        "2: eth0    inet 10.20.1.15/24 brd 10.20.1.255 scope global eth0",
        "2: eth0    inet6 fe80::1/64 scope link",
        "2: eth0    inet6 fd00:20::15/64 scope global",
        "3: eth1    inet 192.0.2.10/24 scope global eth1",
        "3: eth1    inet 100.64.3.7/10 scope global eth1",
        "3: eth1    inet 198.18.0.5/15 scope global eth1",
        "3: eth1    inet 211.45.60.10/24 scope global eth1",
        "3: eth1    inet6 2406:da12::10/64 scope global",
    ])
    tool, ifaces = interfaces.parse_addrs(text)
    s = interfaces.summarize(ifaces)
    assert s["private_addresses"] == ["10.20.1.15", "fd00:20::15"]
    assert s["global_addresses"] == ["10.20.1.15", "fd00:20::15", "192.0.2.10", "100.64.3.7", "198.18.0.5",
                                     "211.45.60.10", "2406:da12::10"]
    assert s["non_private_addresses"] == [
        {"address": "192.0.2.10", "interface": "eth1", "category": "documentation"},
        {"address": "100.64.3.7", "interface": "eth1", "category": "shared"},
        {"address": "198.18.0.5", "interface": "eth1", "category": "benchmark"},
        {"address": "211.45.60.10", "interface": "eth1", "category": "public"},
        {"address": "2406:da12::10", "interface": "eth1", "category": "public"},
    ]
    assert s["public_addresses"] == ["211.45.60.10", "2406:da12::10"]
    assert s["other_addresses"] == ["192.0.2.10", "100.64.3.7", "198.18.0.5"]
    assert s["all_private"] is False
    only_lo = interfaces.summarize(interfaces.parse_addrs(text.split("\n2:")[0])[1])
    assert only_lo["global_addresses"] == [] and only_lo["all_private"] is None


def test_proc_net_tcp6_and_udp_decoding():
    text = """uid=1000
### proc tcp6
  sl  local_address                         remote_address                        st
   0: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000
   1: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000
### proc udp
  sl  local_address rem_address   st
  12: 00000000:00A1 00000000:0000 07 00000000:00000000
  13: 0100007F:0035 0200007F:0035 01 00000000:00000000
"""
    tool, socks = listening.parse_listen(text)
    assert tool == "proc"
    assert [(s["proto"], ipaddress.ip_address(s["address"]), s["port"], s["loopback"]) for s in socks] == [
        ("tcp", ipaddress.ip_address("::1"), 22, True),
        ("tcp", ipaddress.ip_address("::ffff:127.0.0.1"), 8080, True),
        ("udp", ipaddress.ip_address("0.0.0.0"), 161, False),
    ]
    assert "insecure" not in listening.derive(socks)  # the probe reports; the rule's table judges
    expr = bind_params("matching_services(@, params.insecure_services)", {"insecure_services": INSECURE_SERVICES})
    found = evaluate(expr, socks)
    assert [(i["service"], i["matched_by"]) for i in found] == [("snmp", "port")]



def test_nft_blocks_sets_and_multiline_rules():
    text = """table inet filter {
\tset blocked {
\t\ttype ipv4_addr
\t\telements = { 10.0.0.1, 10.0.0.2,
\t\t\t     10.0.0.3 }
\t}
\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t\tip saddr @blocked drop
\t\ttcp dport vmap { 22 : accept,
\t\t\t\t  80 : accept }
\t}
}
rc=0"""
    r = firewall.parse_nft(text.splitlines())
    assert r["rule_count"] == 2
    assert r["input_chains"] == [
        {"table": "inet filter", "chain": "input", "policy": "accept", "rules": 2, "drops": True}
    ]


def test_updateinfo_and_check_update_formats():
    names, advs = patch.parse_updateinfo(
        [
            "RHSA-2024:8447 Important/Sec. kernel-5.14.0-427.42.1.el9_4.x86_64",
            "ALAS2KERNEL-5.10-2024-071 important/Sec. kernel-5.10.229-220.885.amzn2.x86_64",
            "FEDORA-2024-1a2b3c4d5e Moderate/Sec.  openssl-libs-1:3.1.4-4.fc39.x86_64",
            "RHBA-2024:1111 bugfix tzdata-2024b-2.el9.noarch",
            "updateinfo list done",
        ]
    )
    assert names == {"kernel", "openssl-libs"} and len(advs) == 3
    assert patch.nevra_name("openssl-1:3.0.7-27.el9_4.x86_64") == "openssl"
    pending = patch.parse_check_update(
        [
            "",
            "a-very-long-name.x86_64",
            "   1.0-1.el9   baseos",
            "b.noarch  2-1  appstream",
            "Obsoleting Packages",
            "c.x86_64 1-1 x",
        ]
    )
    assert [(p["name"], p["to_version"]) for p in pending] == [
        ("a-very-long-name", "1.0-1.el9"),
        ("b", "2-1"),
    ]


def test_apt_inst_lines():
    pending = patch.parse_apt(
        [
            "Inst libgcrypt20-dev [1.10.1-3] (1.10.1-3+deb12u1 Debian:12.15/oldstable, "
            "Debian-Security:12/oldstable-security [amd64]) []",
            "Inst linux-image-6.1.0-28-amd64 (6.1.119-1 Debian-Security:12/stable-security [amd64])",
            "Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u1 Debian:12.11/stable-updates [all])",
            "Conf tzdata (2025b-0+deb12u1 Debian:12.11/stable-updates [all])",
        ]
    )
    assert [(p["name"], p["from_version"], p["security"]) for p in pending] == [
        ("libgcrypt20-dev", "1.10.1-3", True),
        ("linux-image-6.1.0-28-amd64", None, True),
        ("tzdata", "2024a-0+deb12u1", False),
    ]


def test_logrotate_semantics():
    files = [
        ("/etc/logrotate.conf", ["daily", "rotate 10", "include /etc/logrotate.d"]),
        (
            "/etc/logrotate.d/a",
            [
                "/var/log/a.log /var/log/b.log {",
                "weekly",
                "rotate 5",
                "maxage 20",
                "}",
                "/var/log/c.log {",
                "size 100M",
                "}",
                "/var/log/d.log { monthly",
                "rotate 0",
                "}",
                "/var/log/e.log {",
                "rotate 3",
                "postrotate",
                "weekly",
                "endscript",
                "}",
            ],
        ),
    ]
    r = logging_time.parse_logrotate(files)
    got = {e["path"]: e["retention_days"] for e in r["files"]}
    assert got == {
        "/var/log/a.log": 20,
        "/var/log/b.log": 20,
        "/var/log/c.log": None,
        "/var/log/d.log": 0,
        "/var/log/e.log": 3,
    }
    assert (r["default_period"], r["default_rotate"]) == ("daily", 10)


def test_systemd_time_spans():
    assert logging_time._seconds("1year") == 31557600
    assert logging_time._seconds("2w 3d") == 2 * 604800 + 3 * 86400
    assert logging_time._seconds("0") is None and logging_time._seconds("infinity") is None
    assert logging_time._seconds("5fortnights") is None


def test_lastlog_formats():
    text = """### lastlog2
Username         Port     From                                       Latest
root             pts/0    192.168.122.1                              Fri Mar 15 10:27:45 +0100 2024
bin                                                                  **Never logged in**
ko               pts/1    10.0.0.1                                   금  3월 15 10:27:45 +0900 2024
"""
    source, ll, unparsed = accounts.parse_lastlog(text)
    assert source == "lastlog2"
    assert ll["root"]["epoch"] == 1710494865 and ll["root"]["from"] == "192.168.122.1"
    assert ll["bin"]["never"] is True
    assert unparsed == ["ko"]


def test_ssh_weak_algorithm_matching():
    """What is weak is the rule's data, matched by the expression function `matching` (prefixes dropped)."""
    from policies.expr import evaluate

    data = {"c": ["aes128-ctr", "+aes128-cbc", "3des-cbc"], "k": ["gss-gex-sha1-abc=="]}
    assert evaluate("matching(c, `[\"3des-cbc\", \"aes128-cbc\"]`)", data) == ["aes128-cbc", "3des-cbc"]
    assert evaluate("matching(k, `[\"gss-gex-sha1-*\"]`)", data) == ["gss-gex-sha1-abc=="]
    assert evaluate("matching(missing, `[\"x\"]`)", data) == []


def test_ipaddress_sanity_of_listening_loopback():
    s = listening.make_socket("tcp", "::ffff:127.0.0.1", 80)
    assert s["loopback"] is True and s["family"] == "ipv6"
    assert listening.make_socket("tcp", "*", 80)["wildcard"] is True
    assert ipaddress.ip_address("127.0.0.1").is_loopback


def test_apt_list_lines():
    pending = patch.parse_apt_list([
        "",
        "WARNING: apt does not have a stable CLI interface. Use with caution in scripts.",
        "Listing...",
        "libssl3/stable-security 3.0.15-1~deb12u1 amd64 [upgradable from: 3.0.11-1~deb12u2]",
        "tzdata/stable-updates,stable 2025b-0+deb12u1 all [upgradable from: 2024a-0+deb12u1]",
        "libssl1.1/focal-infra-security 1.1.1f-1ubuntu2.24+esm1 amd64 [upgradable from: 1.1.1f-1ubuntu2.23]",
        "rc=0",
    ])
    assert [(p["name"], p["from_version"], p["to_version"], p["security"]) for p in pending] == [
        ("libssl3", "3.0.11-1~deb12u2", "3.0.15-1~deb12u1", True),
        ("tzdata", "2024a-0+deb12u1", "2025b-0+deb12u1", False),
        ("libssl1.1", "1.1.1f-1ubuntu2.23", "1.1.1f-1ubuntu2.24+esm1", True),
    ]


# Raw `apt-cache policy` as apt 2.6 (Debian 12) and 2.4 (Ubuntu 22.04) print it: several origins for the
# candidate, an installed-only version, a foreign-arch package, a package with no candidate, an error line.
_APT_POLICY_RAW = """\
apt:
  Installed: 2.6.1
  Candidate: 2.6.2
  Version table:
     2.6.2 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
 *** 2.6.1 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
        100 /var/lib/dpkg/status
libssl3:i386:
  Installed: 3.0.2-0ubuntu1.15
  Candidate: 3.0.2-0ubuntu1.18
  Version table:
     3.0.2-0ubuntu1.18 500
        500 http://archive.ubuntu.com/ubuntu jammy-updates/main i386 Packages
        500 http://security.ubuntu.com/ubuntu jammy-security/main i386 Packages
 *** 3.0.2-0ubuntu1.15 100
        100 /var/lib/dpkg/status
bash:
  Installed: 5.2.15-2+b8
  Candidate: 5.2.15-2+b8
  Version table:
 *** 5.2.15-2+b8 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
        100 /var/lib/dpkg/status
localtool:
  Installed: 1.0-local
  Candidate: 1.0-local
  Version table:
 *** 1.0-local 100
        100 /var/lib/dpkg/status
gone:
  Installed: (none)
  Candidate: 2.0
  Version table:
     2.0 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
W: Unable to locate package ghost
rc=0
"""


@pytest.mark.parametrize("awk", ["awk", "busybox awk"])
def test_apt_policy_filter_on_target_then_parse(awk: str):
    """The awk program the target runs keeps only upgradable packages, with every origin of the candidate."""
    if shutil.which(awk.split()[0]) is None:
        pytest.skip(f"{awk} not installed")
    out = subprocess.run([*awk.split(), patch._APT_POLICY_AWK.strip()], input=_APT_POLICY_RAW, text=True,
                         capture_output=True, check=True).stdout
    pending, errors = patch.parse_apt_policy(out.splitlines())
    assert [(p["name"], p["from_version"], p["to_version"], p["security"], p["origin"]) for p in pending] == [
        ("apt", "2.6.1", "2.6.2", True, "bookworm-security/main"),
        ("libssl3:i386", "3.0.2-0ubuntu1.15", "3.0.2-0ubuntu1.18", True, "jammy-updates/main,jammy-security/main"),
    ]
    assert errors == ["W: Unable to locate package ghost"]


def test_apt_policy_error_makes_pending_unknown():
    """An apt E: line (broken cache) must not read as 'nothing pending'."""
    from probes.base import RawOutput

    out = ("### manager apt\n### index\n1795440628 /var/lib/apt/lists/x_InRelease\n### policy\n"
           "! E: The package cache file is corrupted\nrc=0")
    outputs = {"pkg_updates": RawOutput("pkg_updates", "", out, 0, "2026-11-23T00:00:00Z", 0.1)}
    fact = patch.parse(outputs)
    assert fact.data["pending_total"] is None
    assert any("corrupted" in p for p in (fact.reason or "").split(";")), fact.reason


def test_chrony_leap_status_without_a_value_is_read_not_raised():
    """A ``Leap status :`` line with nothing after it (the last line of a cut ``chronyc tracking``) made the old
    pattern reach past the line end and fail with AttributeError; the value is now read on its own line."""
    from probes.host.logging_time import parse_time

    text = "### chronyc\nReference ID    : C0A80001 (192.0.2.1)\nStratum         : 3\nLeap status     :"
    d = parse_time(text)
    assert d["sync_source"] == "chronyc" and d["stratum"] == 3 and d["reference"] == "192.0.2.1"
    assert d["synchronized"] is True  # no "Not synchronised", stratum < 16, a real reference

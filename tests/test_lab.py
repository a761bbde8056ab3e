"""The namespace lab (tests/lab.py): real, different hosts on a private bridge, scanned by the CLI from a scanner
namespace. One scan collects every lab host (and a few ways of reaching them); the tests read that one bundle.

Identity, session timeout (and its 13.1.1 verdict), transport (legacy algorithms, timeouts) and privilege (become
vs none) are asserted always. Facts of other probes (listening sockets, anti-malware, accounts, firewall, password
aging) are asserted when the probe is registered in ``probes.host.PROBES``, and verdicts of other rules when the
rule is in the profile, so the file keeps working while probes and rules are added.

Run: ``python -m pytest -q tests/test_lab.py`` (root; ``-m lab`` selects these tests, ``-m "not lab"`` skips them).
"""
from __future__ import annotations

import json
import os
import re
import socket
import time
from dataclasses import dataclass
from typing import Any, Optional

import pytest

import lab as labmod
from agent.cli import main
from policies.expr import bind_params, evaluate
from policies.model import load_profile

pytestmark = pytest.mark.lab

#: what the scan asks for: the three real hosts, plus the same hosts reached differently
FLEET = [
    "lab-web",
    "lab-db",
    {"name": "lab-legacy", "ssh": {"legacy_algorithms": True}},
    {"name": "lab-legacy-default", "host": "lab-legacy"},  # same server, default (modern-only) algorithms
    "lab-dark",  # iptables DROP everything: a silent-drop host
    {"name": "lab-void", "address": labmod.VOID_IP},  # nothing at all behind this address
    {"name": "db-auditor-sudo", "host": "lab-db", "ssh": {"user": "auditor"}, "become": True},
    {"name": "db-auditor", "host": "lab-db", "ssh": {"user": "auditor"}},
    {"name": "db-auditor2-sudo", "host": "lab-db", "ssh": {"user": "auditor2"}, "become": True},
]
COLLECTED = {"lab-web", "lab-db", "lab-legacy", "db-auditor-sudo", "db-auditor", "db-auditor2-sudo"}
NOT_COLLECTED = {"lab-legacy-default", "lab-dark", "lab-void"}


@pytest.fixture(scope="module")
def netlab():
    """The running lab; torn down (processes, namespaces, files) whatever the tests did."""
    why = labmod.preflight()
    if why:
        pytest.skip(why)
    with labmod.Lab() as running:
        yield running


@dataclass
class Scan:
    out: str
    rc: int
    stdout: str
    stderr: str
    wall: float
    results: dict[str, Any]

    def facts(self, host: str) -> dict[str, Any]:
        with open(os.path.join(self.out, "facts", f"{host}.json"), encoding="utf-8") as f:
            return json.load(f)

    def fact(self, host: str, name: str) -> Optional[dict[str, Any]]:
        return self.facts(host)["facts"].get(name)

    def host13(self, host: str) -> dict[str, Any]:
        c = next(c for c in self.results["controls"] if c["id"] == "13.1.1")
        return next(h for h in c["hosts"] if h["name"] == host)


def registered() -> dict[str, Any]:
    from probes.host import PROBES
    return {p.name: p for p in PROBES}


def probe_reading(command: str) -> list[str]:
    """Names of the registered probes that run a given command (e.g. "shadow")."""
    return [n for n, p in registered().items() if any(c.name == command for c in p.commands)]


@pytest.fixture(scope="module")
def fleet(netlab, signing_key, tmp_path_factory) -> Scan:
    out = str(tmp_path_factory.mktemp("lab") / "bundle")
    t0 = time.monotonic()
    rc, so, se = netlab.scan(FLEET, out, signing_key, "--only", "host", "-q")
    wall = time.monotonic() - t0
    assert os.path.exists(os.path.join(out, "results.json")), f"rc={rc}\n{so[-2000:]}\n{se[-2000:]}"
    with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
        res = json.load(f)
    return Scan(out, rc, so, se, wall, res)


# --- the lab itself ----------------------------------------------------------------------------------------------

def test_lab_hosts_are_isolated_from_this_machine(netlab):
    # inside lab-db: its own accounts, hostname, processes and an empty root .bashrc
    r = netlab.host_exec("lab-db", ["sh", "-c", "grep -c '^toor:' /etc/passwd; hostname; ps -e -o comm=; "
                                    "wc -c < /root/.bashrc 2>/dev/null || echo 0"])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert lines[0] == "1" and lines[1] == "lab-db" and lines[-1] == "0"
    assert "mysqld" in lines and "clamd" not in lines and "nginx" not in lines
    # the machine itself is untouched: files, hostname, root-namespace addresses
    with open("/etc/passwd", encoding="utf-8") as f:
        assert not re.search(r"^(toor|auditor2?|guest|svc-batch):", f.read(), re.M)
    assert socket.gethostname() not in netlab.hosts
    with open("/proc/net/fib_trie", encoding="utf-8") as f:  # this (root) namespace's addresses
        assert labmod.SCANNER_IP not in f.read()
    # the web host's firewall lives in its namespace only
    r = netlab.host_exec("lab-web", ["iptables", "-S", "INPUT"])
    assert "-P INPUT DROP" in r.stdout


def test_lab_starts_fast(netlab):
    assert netlab.startup_seconds < 15


# --- one scan of the whole lab -----------------------------------------------------------------------------------

def test_scan_collects_reachable_hosts_and_bundle_verifies(fleet, signing_key, capsys):
    assert fleet.rc == 0, fleet.stderr[-2000:]
    assert "Traceback" not in fleet.stderr
    assert fleet.results["run"]["scope"]["allow"] == [labmod.SUBNET]
    collected = {h["name"]: h["collected"] for h in fleet.results["hosts"]}
    assert collected == {**{n: True for n in COLLECTED}, **{n: False for n in NOT_COLLECTED}}
    assert main(["verify", fleet.out, "--pubkey", signing_key + ".pub"]) == 0
    assert capsys.readouterr().out.startswith("valid:")


def test_identity_is_each_hosts_own(fleet, netlab):
    fps = set()
    for name in ("lab-web", "lab-db", "lab-legacy"):
        rec = fleet.facts(name)
        ident = rec["facts"]["identity"]
        assert ident["status"] == "collected", ident
        assert ident["data"]["hostname"] == name
        addrs = [a.split("/")[0] for i in ident["data"]["interfaces"] for a in i["addresses"]]
        assert netlab.host(name).ip in addrs
        assert [i["name"] for i in ident["data"]["interfaces"] if i["name"] != "lo"] == ["eth0"]
        assert ident["data"]["os"]["id"]
        assert rec["transport"]["address"] == netlab.host(name).ip
        assert rec["transport"]["host_key_policy"] == "strict"
        fps.add(rec["transport"]["host_key_fingerprint_sha256"])
    assert len(fps) == 3  # every host has its own host key


def test_session_timeout_differs_as_planted(fleet):
    web = fleet.fact("lab-web", "session_timeout")
    db = fleet.fact("lab-db", "session_timeout")
    legacy = fleet.fact("lab-legacy", "session_timeout")
    for f in (web, db, legacy):
        assert f["status"] == "collected", f
    assert web["data"]["idle_timeout_seconds"] == 300
    assert web["data"]["idle_timeout_source"] == "TMOUT"
    assert web["data"]["tmout"]["readonly"] is True
    assert web["data"]["tmout"]["file"] == "/etc/profile.d/tmout.sh"
    assert web["data"]["sshd"]["client_alive_interval"] == 300
    assert db["data"]["idle_timeout_seconds"] == 900
    assert db["data"]["tmout"]["readonly"] is False
    assert legacy["data"]["idle_timeout_seconds"] is None
    assert legacy["data"]["tmout"] is None


def test_13_1_1_per_host(fleet, netlab):
    def finding(host: str) -> dict[str, Any]:
        return next(f for f in fleet.host13(host)["findings"] if f["rule"] == "session-timeout")

    # the session-timeout rule per host (the host's 13.1.1 status also aggregates the item's other rules)
    assert finding("lab-web")["status"] == "implemented"
    assert "300" in finding("lab-web")["detail"]["en"]
    assert finding("lab-db")["status"] == "not_implemented"
    assert "900" in finding("lab-db")["detail"]["en"] and "900" in finding("lab-db")["detail"]["ko"]
    assert finding("lab-legacy")["status"] == "not_implemented"
    assert "TMOUT" in finding("lab-legacy")["detail"]["en"]
    assert fleet.host13("lab-db")["status"] in ("not_implemented", "partial")
    assert fleet.host13("lab-web")["status"] in ("implemented", "partial")
    for name in NOT_COLLECTED:
        assert fleet.host13(name)["status"] == "unknown"
        assert all("not collected" in f["detail"]["en"] for f in fleet.host13(name)["findings"])
    # the evidence file is named as the guide asks, and says where it came from
    ev = finding("lab-web")["evidence"]
    assert any(re.match(r"evidence/자료13\.1\.1-\d+_lab-web_session_timeout\.txt$", e) for e in ev)
    with open(os.path.join(fleet.out, ev[0]), encoding="utf-8") as f:
        head = f.read(2000)
    assert f"# host: lab-web ({netlab.host('lab-web').ip})" in head


def rule_finding(fleet: Scan, host: str, rule: str) -> Optional[dict[str, Any]]:
    for c in fleet.results["controls"]:
        for h in c.get("hosts", []):
            if h["name"] == host:
                for f in h["findings"]:
                    if f["rule"] == rule:
                        return f
    return None


def test_other_planted_findings_when_their_rules_exist(fleet):
    """Verdicts of rules other than session-timeout, asserted only when the rule exists in the profile."""
    seen = 0
    if rule_finding(fleet, "lab-db", "no-empty-passwords"):
        seen += 1
        assert rule_finding(fleet, "lab-db", "no-empty-passwords")["status"] == "not_implemented"
        assert "guest" in rule_finding(fleet, "lab-db", "no-empty-passwords")["detail"]["en"]
        assert rule_finding(fleet, "lab-web", "no-empty-passwords")["status"] == "implemented"
        # without root the shadow file cannot be read: unknown, never a pass
        low = rule_finding(fleet, "db-auditor2-sudo", "no-empty-passwords")
        assert low["status"] == "unknown" and re.search(r"privilege|root|become", low["detail"]["en"]), low
        if labmod.have_sudo():  # with become, the same account sees what root sees
            assert rule_finding(fleet, "db-auditor-sudo", "no-empty-passwords")["status"] == "not_implemented"
    if rule_finding(fleet, "lab-db", "one-account-per-person"):
        seen += 1
        assert rule_finding(fleet, "lab-db", "one-account-per-person")["status"] == "not_implemented"
        assert "toor" in rule_finding(fleet, "lab-db", "one-account-per-person")["detail"]["en"]
        assert rule_finding(fleet, "lab-web", "one-account-per-person")["status"] == "implemented"
    if rule_finding(fleet, "lab-web", "admin-encrypted-channels"):
        seen += 1
        assert rule_finding(fleet, "lab-web", "admin-encrypted-channels")["status"] == "not_implemented"
        assert "telnet" in rule_finding(fleet, "lab-web", "admin-encrypted-channels")["detail"]["en"]
        assert rule_finding(fleet, "lab-db", "admin-encrypted-channels")["status"] == "implemented"
    if rule_finding(fleet, "lab-legacy", "ssh-algorithms"):
        seen += 1
        legacy = rule_finding(fleet, "lab-legacy", "ssh-algorithms")
        assert legacy["status"] == "not_implemented"
        assert re.search(r"diffie-hellman-group14-sha1|ssh-rsa", legacy["detail"]["en"]), legacy
        assert rule_finding(fleet, "db-auditor2-sudo", "ssh-algorithms")["status"] == "unknown"  # no sshd -T
    if not seen:
        pytest.skip("none of the account/remote-admin/ssh-algorithm rules is in the profile yet")


def test_legacy_server_refused_by_default_with_a_reason(fleet):
    rec = fleet.facts("lab-legacy-default")
    assert rec["collected"] is False
    assert re.search(r"negotiation failed", rec["error"], re.I)
    assert re.search(r"kex|host key|algorithm", rec["error"], re.I)
    assert fleet.host13("lab-legacy-default")["status"] == "unknown"


def test_legacy_algorithms_allowed_are_recorded(fleet):
    t = fleet.facts("lab-legacy")["transport"]
    assert t["legacy_algorithms_allowed"] is True
    assert t["host_key_type"] == "ssh-rsa"
    assert "ssh-rsa" in t["legacy_algorithms_used"]
    modern = fleet.facts("lab-web")["transport"]
    assert modern["legacy_algorithms_allowed"] is False and modern["legacy_algorithms_used"] == []


def test_silent_drop_host_times_out_within_connect_timeout(fleet):
    for name in ("lab-dark", "lab-void"):
        rec = fleet.facts(name)
        assert rec["collected"] is False
        assert "timed out" in rec["error"] or "unreachable" in rec["error"].lower() or "no route" in rec["error"].lower()
        assert rec["duration_seconds"] <= labmod.CONNECT_TIMEOUT + 1.5, rec
    assert "timed out" in fleet.facts("lab-dark")["error"]
    # hosts are collected concurrently: the silent ones cost their connect timeout, not the others' collection
    assert all(fleet.facts(n)["collected"] for n in COLLECTED)
    assert fleet.wall < 90


# --- privilege: become (sudo -n, once per host) vs none ---------------------------------------------------------

def needs_sudo() -> None:
    if not labmod.have_sudo():
        pytest.skip("sudo is not installed (apt-get install -y sudo; scripts/system-deps.sh test installs it)")


def test_become_gives_root_and_refusal_is_reported(fleet):
    needs_sudo()
    assert fleet.facts("db-auditor-sudo")["privilege"] == "root"
    assert fleet.facts("db-auditor-sudo")["uid"] == 0
    assert fleet.facts("db-auditor")["privilege"] == "unprivileged (uid 1001)"
    assert fleet.facts("db-auditor2-sudo")["privilege"] == "sudo -n refused; collected unprivileged"
    assert fleet.facts("db-auditor2-sudo")["uid"] == 1002
    ev = [e for e in os.listdir(os.path.join(fleet.out, "evidence")) if "_db-auditor2-sudo_session_timeout" in e]
    with open(os.path.join(fleet.out, "evidence", ev[0]), encoding="utf-8") as f:
        assert "sudo -n refused" in f.read(2000)


def test_become_collects_what_root_collects(fleet):
    needs_sudo()
    root = fleet.facts("lab-db")["facts"]
    sudo = fleet.facts("db-auditor-sudo")["facts"]
    assert {k: v["status"] for k, v in sudo.items()} == {k: v["status"] for k, v in root.items()}
    assert sudo["session_timeout"]["data"]["sshd"]["source"] == "sshd -T"


def test_unprivileged_facts_say_they_need_privilege(fleet):
    needs_sudo()
    root = fleet.facts("db-auditor-sudo")["facts"]
    for user in ("db-auditor", "db-auditor2-sudo"):
        facts = fleet.facts(user)["facts"]
        # sshd -T needs root: the config file is read instead, and the facts still agree
        st = facts["session_timeout"]["data"]
        assert st["sshd"]["source"] == "config"
        assert st["idle_timeout_seconds"] == 900
        for name, f in facts.items():
            if root[name]["status"] == "collected" and f["status"] != "collected":
                assert "privilege" in (f.get("reason") or ""), (user, name, f)
    for name in probe_reading("shadow"):  # account/shadow facts, once such a probe is registered
        assert root[name]["status"] == "collected", root[name]
        f = fleet.facts("db-auditor2-sudo")["facts"][name]
        assert f["status"] != "collected" and "privilege" in (f.get("reason") or ""), f


# --- facts of probes that may or may not be registered yet ----------------------------------------------------

def registered_fact(name: str) -> None:
    if name not in registered():
        pytest.skip(f"the {name} probe is not registered in probes.host.PROBES yet")


def test_listening_ports_differ_as_planted(fleet):
    registered_fact("listening")
    web = fleet.fact("lab-web", "listening")["data"]
    db = fleet.fact("lab-db", "listening")["data"]
    legacy = fleet.fact("lab-legacy", "listening")["data"]
    assert {22, 23, 80, 443} <= set(web["tcp_ports"]) and 3306 not in web["tcp_ports"]
    assert {22, 3306} <= set(db["tcp_ports"]) and not {23, 80, 443} & set(db["tcp_ports"])
    assert set(legacy["tcp_ports"]) == {22}
    procs = {s["port"]: s.get("process") for s in web.get("sockets", [])}
    assert procs.get(80) == "nginx" and procs.get(23) == "in.telnetd"  # root sees the owners (own PID namespace)
    # the no-insecure-services rule's table, applied to what each host reports
    table = next(r for r in load_profile("fsi-openapi-2018").rules if r.id == "no-insecure-services").params
    expr = bind_params("matching_services(sockets, params.insecure_services)", table)
    assert [(i["service"], i["port"]) for i in evaluate(expr, web) if not i["loopback"]] == [("telnet", 23)]
    assert evaluate(expr, db) == [] and "insecure" not in web
    if "databases" in db:
        assert any(d["port"] == 3306 for d in db["databases"])


def test_antimalware_runs_only_on_web(fleet):
    registered_fact("antivirus")
    web = fleet.fact("lab-web", "antivirus")["data"]
    db = fleet.fact("lab-db", "antivirus")["data"]
    assert web["any_running"] is True
    assert "clamd" in json.dumps(web)
    assert db["any_running"] is not True


def test_accounts_show_planted_anomalies(fleet):
    registered_fact("accounts")
    db = fleet.fact("lab-db", "accounts")
    web = fleet.fact("lab-web", "accounts")
    assert db["status"] == "collected" and web["status"] == "collected"
    assert db["data"]["uid0_non_root"] == ["toor"] and web["data"]["uid0_non_root"] == []
    assert "guest" in db["data"]["empty_password"] and not web["data"]["empty_password"]
    assert "svc-batch" in db["data"]["password_never_expires"]
    assert {"principal": "auditor", "nopasswd": True, "all_commands": True} in (db["data"]["sudoers"] or [])
    assert labmod.FAKE_HASH not in json.dumps(db)  # no hash ever leaves the host
    # without privilege the shadow-based parts say so, the passwd-based parts are still there
    low = fleet.fact("db-auditor2-sudo", "accounts")
    assert low["status"] != "collected" and "privilege" in low["reason"]
    assert low["data"]["uid0_non_root"] == ["toor"]


def test_firewall_differs_as_planted(fleet):
    registered_fact("firewall")
    web = fleet.fact("lab-web", "firewall")["data"]
    db = fleet.fact("lab-db", "firewall")["data"]
    assert web["active"] is True and web["default_input_policy"] == "drop"
    assert db["active"] is False and db["default_input_policy"] in ("accept", None)
    low = fleet.fact("db-auditor2-sudo", "firewall")
    assert low["status"] != "collected" and "privilege" in low["reason"]


def test_password_aging_differs_as_planted(fleet):
    registered_fact("password_policy")
    assert fleet.fact("lab-web", "password_policy")["data"]["aging"]["pass_max_days"] == 90
    assert fleet.fact("lab-db", "password_policy")["data"]["aging"]["pass_max_days"] == 99999

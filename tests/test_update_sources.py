"""Update sources, extended-support enrolment and container detection (probes/host/update_sources.py), and the
os fact built from them. Outputs here are written from the documented formats (apt sources.list(5) one-line
and deb822 forms, yum.repos.d(5), `pro status` of ubuntu-pro-client, systemd-detect-virt(1)); the recorded
Debian 12 host is in tests/fixtures/host/debian12*/ (see test_host_probes.py)."""
from __future__ import annotations

import dataclasses
import subprocess

from probes.host import os_release, update_sources as us
from tests.host_fixture_loader import load


def _os(distro: str, **replace: str) -> dict:
    outputs = load(distro)
    for name, text in replace.items():
        outputs[name] = dataclasses.replace(outputs[name], output=text)
    return os_release.parse(outputs).data


def test_deb822_disabled_stanza_options_and_credentials():
    text = """### apt
## file /etc/apt/sources.list
deb [arch=amd64 signed-by=/k.gpg] https://user:s3cret@mirror.example.internal/debian-security bookworm-security main
deb-src http://deb.debian.org/debian-security bookworm-security main
## file /etc/apt/sources.list.d/old.sources
Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Enabled: no
## file /etc/apt/sources.list.d/locked.list
## unreadable
### rpm
### pro
absent"""
    s = us.parse_sources(text)
    assert [(e["type"], e["suite"], e["enabled"]) for e in s["apt"]] == [
        ("deb", "bookworm-security", True), ("deb-src", "bookworm-security", True),
        ("deb", "bookworm-security", False)]
    assert "s3cret" not in repr(s) and s["apt"][0]["uri"] == "https://mirror.example.internal/debian-security"
    assert s["apt_unreadable"] == ["/etc/apt/sources.list.d/locked.list"]
    sec, esm = us.apt_security(s["apt"], "debian", "bookworm")
    assert len(sec) == 1 and sec[0]["file"] == "/etc/apt/sources.list" and esm == []  # deb-src, disabled: no


def test_credentials_are_cut_on_the_target_too():
    script = os_release.UPDATE_SOURCES.script
    sed = script.split("sed -e ")[1].split(" |")[0].strip("'")
    out = subprocess.run(["sed", "-e", sed], input="deb https://u:p@h.example/x bookworm main\n",
                         capture_output=True, text=True, check=True).stdout
    assert out == "deb https://h.example/x bookworm main\n"


def test_debian_security_suite_missing_is_a_fact_not_a_guess():
    only_main = "### apt\n## file /etc/apt/sources.list\ndeb http://deb.debian.org/debian bookworm main\n### rpm\n### pro\nabsent"
    d = _os("debian12", update_sources=only_main)
    assert d["security_source"] is False and d["extended_enrolled"] is False
    assert d["extended_evidence"] == "no security suite configured"
    unreadable = "### apt\n## file /etc/apt/sources.list\n## unreadable\n### rpm\n### pro\nabsent"
    d = _os("debian12", update_sources=unreadable)
    assert d["security_source"] is None and d["extended_enrolled"] is None
    buster = us.apt_security([{"type": "deb", "enabled": True, "uri": "http://security.debian.org/debian-security",
                               "suite": "buster/updates", "components": ["main"], "file": "f"}], "debian", "buster")
    assert len(buster[0]) == 1  # Debian <= 10 names its security suite <codename>/updates


def test_ubuntu_not_attached_and_attached_without_esm_infra():
    pro_off = """SERVICE          AVAILABLE  DESCRIPTION
esm-infra        yes        Expanded Security Maintenance for Infrastructure
This machine is not attached to an Ubuntu Pro subscription."""
    p = us.parse_pro(["client present", "token present"] + pro_off.splitlines())
    assert p["attached"] is False and p["services"] == {}  # no STATUS column: nothing is "enabled"
    p = us.parse_pro(["client present", "token present", "SERVICE ENTITLED STATUS DESCRIPTION",
                      "esm-infra yes disabled Expanded Security Maintenance for Infrastructure"])
    assert p["attached"] is True and p["services"] == {"esm-infra": "disabled"}
    src = ("### apt\n## file /etc/apt/sources.list\ndeb http://archive.ubuntu.com/ubuntu focal main\n"
           "deb http://security.ubuntu.com/ubuntu focal-security main\n### rpm\n### pro\nclient present\n"
           "token present\nSERVICE ENTITLED STATUS DESCRIPTION\nesm-infra yes disabled x")
    d = _os("ubuntu2004", update_sources=src)
    assert d["support_phase"] == "extended" and d["extended_enrolled"] is False
    assert d["extended_evidence"] == "pro status: esm-infra disabled"
    unseen = src.split("### pro")[0] + "### pro\nclient present\nprivate unreadable"
    assert _os("ubuntu2004", update_sources=unseen)["extended_enrolled"] is None  # as non-root: not visible
    assert us.parse_pro(["absent"])["tool"] is False


def test_rhel_els_repository_is_the_enrolment():
    repos = """### apt
### rpm
## file /etc/yum.repos.d/redhat.repo
[rhel-7-server-rpms]
enabled = 1
[rhel-7-server-els-rpms]
enabled = 1
[rhel-7-server-optional-rpms]
enabled = 0
### pro
absent"""
    rel = 'NAME="Red Hat Enterprise Linux Server"\nID="rhel"\nVERSION_ID="7.9"\nPRETTY_NAME="RHEL Server 7.9"'
    d = _os("rhel9", update_sources=repos, os_release=rel)
    assert d["support_phase"] == "extended" and d["extended_needs_enrolment"] is True
    assert d["extended_enrolled"] is True and "rhel-7-server-els-rpms" in d["extended_evidence"]
    assert d["security_sources"] == ["rhel-7-server-els-rpms", "rhel-7-server-rpms"]
    no_els = repos.replace("[rhel-7-server-els-rpms]\nenabled = 1\n", "")
    d = _os("rhel9", update_sources=no_els, os_release=rel)
    assert d["extended_enrolled"] is False and d["security_source"] is True
    assert [r["enabled"] for r in us.parse_rpm_repos(["## file f", "[a]", "[b]", "enabled=0"])] == [True, False]


def test_container_detection():
    assert us.parse_container(["file /.dockerenv ", "detect-virt docker"])["container"] == "docker"
    assert us.parse_container(["file /run/.containerenv engine=\"podman-4.3.1\" "])["container"] == "podman"
    assert us.parse_container(["file /run/systemd/container lxc "])["container"] == "lxc"
    assert us.parse_container(["openvz"])["container"] == "openvz"
    assert us.parse_container(["0::/kubepods/besteffort/pod1"])["container"] == "kubernetes"
    none = us.parse_container(["detect-virt none"])
    assert none == {"container": None, "evidence": []}
    boot = "### uptime\n5.0 1.0\n### btime\nbtime 1\n### container\ndetect-virt none"
    d = _os("debian12", os_boot=boot)
    assert d["own_kernel"] is True and d["container"] is None
    assert _os("debian12")["own_kernel"] is None  # no container section: not checked, not "own kernel"

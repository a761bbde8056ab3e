"""The facts' typed contract (probes/facts.py): parsers emit it, the published schema is it, rules read only it."""
from __future__ import annotations

import glob
import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from agent.cli import main
from agent.yamlsrc import ConfigError
from conftest import write_inventory
from host_fixture_loader import distros, load
from policies.factpaths import PathError, check_expr, check_template
from policies.model import HERE, load_rules
from probes.base import Fact, FactStatus, ReasonCode, classify_reason, not_collected
from probes.facts import FACTS, HOST_FACTS, validate
from probes.host import PROBES
from test_policy_dirs import INV, RULES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_host_probe_has_a_model():
    assert {p.name for p in PROBES} == set(HOST_FACTS)


@pytest.mark.parametrize("distro", distros())
def test_every_fixture_parses_to_its_model(distro):
    raw = load(distro)
    checked = 0
    for p in PROBES:
        f = p.parse(raw)
        if f.status == FactStatus.NOT_COLLECTED:
            assert f.data == {} or f.data is not None
            continue
        validate(p.name, f.data)  # raises ValidationError naming the field
        checked += 1
    assert checked > 0


def test_a_model_refuses_an_unknown_or_mistyped_field():
    raw = load("debian12")
    data = next(p for p in PROBES if p.name == "session_timeout").parse(raw).data
    with pytest.raises(ValidationError):
        validate("session_timeout", {**data, "idle_timeout": 5})
    with pytest.raises(ValidationError):
        validate("session_timeout", {**data, "idle_timeout_seconds": "five"})
    m = validate("session_timeout", data)
    with pytest.raises(ValidationError):  # frozen
        m.idle_timeout_seconds = 1  # type: ignore[misc]


def test_committed_schema_and_reference_match_the_models():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "gen_facts_schema.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_every_built_in_rule_reads_only_fields_of_the_schema():
    n = 0
    for path in sorted(glob.glob(os.path.join(HERE, "rules", "*.yaml"))):
        _, rules = load_rules(path)  # the load itself checks every path
        for r in rules:
            assert all(f in FACTS for f in r.facts), (r.id, r.facts)
            for m in r.fail + r.advice + r.unknown + ([r.passes] if r.passes else []):
                check_expr(m.when)
                check_template(m.ko)
                check_template(m.en)
                n += 1
            for o in r.observed:
                check_expr(o.of)
                n += 1
    assert n > 100


@pytest.mark.parametrize("expr,hint", [
    ("listening.sockets[?!(loopbak)]", "did you mean 'loopback'"),
    ("matching_services(listening.sockts, params.insecure_services)", "did you mean 'sockets'"),
    ("remote_admin.ssh.permit_root_logn == 'no'", "did you mean 'permit_root_login'"),
    ("count(acounts.accounts) > `0`", "did you mean 'accounts'"),
    ("sort_by(accounts.accounts, &uidd)[0].name", "did you mean 'uid'"),
    ("tls.endpoints[].certificate.chain[0].days_lefts", "did you mean 'days_left'"),
    ("logging_time.time.services.*.runing", "did you mean 'running'"),
    ("accounts.accounts.name", "is a list"),
])
def test_misspelt_paths_are_refused_with_a_suggestion(expr, hint):
    with pytest.raises(PathError, match=hint):
        check_expr(expr)


def test_paths_that_exist_pass():
    for e in ["patch.packages.openssl", "host.roles", "web.urls[?status=='checked'].https_redirect.status",
              "count(matching_services(listening.sockets, params.insecure_services)[?!(loopback)]) > `0`",
              "tls.endpoints[].certificate.chain[0].days_left",
              "session_timeout.idle_timeout_seconds <= params.limit"]:
        check_expr(e)


def test_a_misspelt_path_in_a_site_rule_stops_scan_with_file_line_and_suggestion(tmp_path, signing_key, capsys):
    d = tmp_path / "site"
    (d / "rules").mkdir(parents=True)
    (d / "rules" / "x.yaml").write_text(
        RULES.replace("profile: acme-baseline", "profile: fsi-openapi-2018").replace('items: ["A.1"]', 'items: ["13.1.1"]')
        .replace('when: "session_timeout.idle_timeout_seconds <= params.limit"',
                 'when: "session_timeout.idle_timout_seconds <= params.limit"'), encoding="utf-8")
    inv = write_inventory(str(tmp_path / "i.yml"), INV)
    out = str(tmp_path / "never")
    assert main(["scan", "-i", inv, "--out", out, "--key", signing_key, "-q", "--policy-dir", str(d)]) == 1
    err = capsys.readouterr().err
    line = next(i for i, t in enumerate((d / "rules" / "x.yaml").read_text().splitlines(), 1)
                if "idle_timout_seconds <=" in t)
    assert f"x.yaml:{line}" in err and "rules[0].pass.when" in err, err
    assert "did you mean 'idle_timeout_seconds'" in err
    assert not os.path.exists(out)


def test_a_misspelt_fact_name_is_a_load_error(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text(RULES.replace("facts: [session_timeout]", "facts: [session_timout]"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"r\.yaml:\d+: rules\[0\]\.facts.*did you mean 'session_timeout'"):
        load_rules(str(p))


def test_reason_codes_form_a_closed_set_in_the_envelope():
    assert {c.value for c in ReasonCode} == {"unreachable", "auth_failed", "permission", "tool_missing", "timed_out",
                                             "truncated", "parse_error", "not_applicable", "other"}
    assert Fact("x", FactStatus.COLLECTED).to_json()["reason_code"] is None
    assert not_collected("x", "command timed out after 20s").to_json()["reason_code"] == "timed_out"
    assert not_collected("x", "parser error on this output: KeyError").to_json()["reason_code"] == "parse_error"
    assert not_collected("x", "whatever", ReasonCode.AUTH_FAILED).to_json()["reason_code"] == "auth_failed"
    assert classify_reason("output truncated (size)") == ReasonCode.TRUNCATED
    assert classify_reason("something odd") == ReasonCode.OTHER


def test_every_fixture_fact_that_is_not_collected_gets_a_reason_code():
    for distro in distros():
        raw = load(distro)
        for p in PROBES:
            j = p.parse(raw).to_json()
            if j["status"] == "collected":
                assert j["reason_code"] is None
            else:
                assert j["reason_code"] in {c.value for c in ReasonCode} and j["reason"]


def test_the_local_transport_readings_keep_the_model():
    """With the local transport some facts are replaced by psutil readings of this machine (real, not faked)."""
    raw = load("debian12")
    n = 0
    for p in PROBES:
        if p.local is None:
            continue
        f = p.local(p.parse(raw))
        if f.status != FactStatus.NOT_COLLECTED:
            validate(p.name, f.data)
            n += 1
    assert n >= 2

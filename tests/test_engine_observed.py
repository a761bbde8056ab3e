"""The engine's guards against unearned verdicts: no pass over an empty set (``observed``), degrees from a
rule's ``requirements`` (guide Section IV: all met → 이행, some → 부분이행, none → 미이행), per-item criteria."""
from __future__ import annotations

import textwrap
from typing import Any

import pytest

from agent.yamlsrc import ConfigError
from policies.engine import Evaluator, HostInput, observed
from policies.model import load_profile, load_rules

PROFILE = load_profile("fsi-openapi-2018")

RULES = """\
schema: evidence-agent/rules/v1
profile: fsi-openapi-2018
rules:
  - id: ext-expiry
    items: ["5.3.1"]
    title: {ko: 외부 계정 만료일, en: external accounts expire}
    criterion: "외부 사용자 계정"
    facts: [accounts]
    observed:
      - of: "accounts.accounts"
        affirmed_by: "host.declared.accounts.external"
        ko: "외부 계정으로 식별된 계정 없음"
        en: "no account was identified as external"
    fail:
      - {when: "count(accounts.accounts[?expires == null]) > `0`", ko: "만료일 없음", en: "no expiry"}
    pass: {when: "count(accounts.accounts[?expires == null]) == `0`", ko: "모두 만료일", en: "all expire"}
  - id: av
    items: ["14.1.1"]
    title: {ko: 백신, en: AV}
    criterion: "백신"
    facts: [antivirus]
    observed: [{of: "antivirus", ko: 백신 정보 없음, en: no anti-malware facts}]
    requirements:
      - id: running
        title: {ko: 설치·실행, en: installed and running}
        fail: {when: "antivirus.any_running == `false`", ko: 미실행, en: not running}
        pass: {when: "antivirus.any_running == `true`", ko: 실행, en: running}
      - id: realtime
        title: {ko: 실시간 검사, en: real-time}
        fail: {when: "antivirus.any_realtime == `false`", ko: 실시간 꺼짐, en: real-time off}
        pass: {when: "antivirus.any_realtime == `true`", ko: 실시간, en: real-time on}
"""


@pytest.fixture(scope="module")
def rules(tmp_path_factory: Any) -> dict[str, Any]:
    p = tmp_path_factory.mktemp("rules") / "r.yaml"
    p.write_text(RULES, encoding="utf-8")
    return {r.id: r for r in load_rules(str(p))[1]}


def judge(rule: Any, facts: dict[str, Any], declared: Any = None) -> dict[str, Any]:
    profile = type(PROFILE)(PROFILE.catalog, [rule])
    meta = {"name": "h1", "address": "127.0.0.1", "transport": "ssh", "roles": [], "zone": None,
            "declared": declared or {}}
    fs = {k: {"status": "collected", "data": v} for k, v in facts.items()}
    res = Evaluator(profile, {}, []).run([HostInput(meta, True, None, fs, {})], {}, {})
    ctl = next(c for c in res["controls"] if c["id"] == rule.items[0])
    return ctl["hosts"][0]["findings"][0]


def test_observed_values() -> None:
    assert not observed(None) and not observed([]) and not observed({}) and not observed("")
    assert observed(0) and observed(False) and observed([0]) and observed("x")


def test_pass_over_empty_set_is_unknown(rules: dict[str, Any]) -> None:
    f = judge(rules["ext-expiry"], {"accounts": {"accounts": []}})
    assert f["status"] == "unknown"
    assert "no account was identified as external" in f["detail"]["en"]
    f = judge(rules["ext-expiry"], {"accounts": {}})
    assert f["status"] == "unknown"


def test_affirmed_emptiness_passes_and_says_who(rules: dict[str, Any]) -> None:
    f = judge(rules["ext-expiry"], {"accounts": {"accounts": []}},
              {"accounts": {"external": "none (CISO Kim, 2026-11-30)"}})
    assert f["status"] == "implemented"
    assert "CISO Kim" in f["detail"]["en"] and f["affirmed"][0]["by"].startswith("none")


def test_observed_set_passes_and_fails_on_data(rules: dict[str, Any]) -> None:
    assert judge(rules["ext-expiry"], {"accounts": {"accounts": [{"expires": "2027-01-01"}]}})["status"] == "implemented"
    assert judge(rules["ext-expiry"], {"accounts": {"accounts": [{"expires": None}]}})["status"] == "not_implemented"


@pytest.mark.parametrize("running,realtime,expect", [
    (True, True, "implemented"), (True, False, "partial"), (False, True, "partial"),
    (False, False, "not_implemented"), (True, None, "unknown"), (False, None, "not_implemented"),
])
def test_requirements_give_degrees(rules: dict[str, Any], running: Any, realtime: Any, expect: str) -> None:
    f = judge(rules["av"], {"antivirus": {"any_running": running, "any_realtime": realtime}})
    assert f["status"] == expect, f["detail"]
    assert [r["id"] for r in f["requirements"]] == ["running", "realtime"]
    if expect == "partial":
        assert "[met]" in f["detail"]["en"] and "[not met]" in f["detail"]["en"]


def test_criterion_per_item_must_cover_every_item(tmp_path: Any) -> None:
    src = RULES.replace('criterion: "외부 사용자 계정"', 'criterion: {"5.3.1": "외부 사용자 계정"}')
    src = src.replace('items: ["5.3.1"]', 'items: ["5.3.1", "13.1.1"]', 1)
    p = tmp_path / "r.yaml"
    p.write_text(src, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_rules(str(p))
    assert "13.1.1" in str(e.value) and "r.yaml:" in str(e.value)
    p.write_text(src.replace('{"5.3.1": "외부 사용자 계정"}', '{"5.3.1": "외부 사용자 계정", "13.1.1": "계정"}'),
                 encoding="utf-8")
    r = {x.id: x for x in load_rules(str(p))[1]}["ext-expiry"]
    assert r.criterion_for("13.1.1") == "계정" and r.criterion_for("5.3.1") == "외부 사용자 계정"


def test_applicability_reason_is_words_not_an_expression(tmp_path: Any) -> None:
    src = textwrap.dedent("""\
        schema: evidence-agent/rules/v1
        profile: fsi-openapi-2018
        rules:
          - id: web-only
            items: ["14.5.1"]
            title: {ko: 웹, en: web}
            criterion: "공개용 웹서버"
            facts: [listening]
            applies: {when: "listening.web_role == `true`"}
            observed: [{of: "listening", ko: 없음, en: none}]
            pass: {when: "`true`", ko: 통과, en: ok}
        """)
    p = tmp_path / "r.yaml"
    p.write_text(src, encoding="utf-8")
    f = judge(load_rules(str(p))[1][0], {"listening": {"web_role": False}})
    assert f["status"] == "not_applicable"
    assert "`" not in f["detail"]["en"] and "web_role" not in f["detail"]["en"]

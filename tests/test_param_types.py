"""Policy parameters are type-checked when the evaluator is built: an inventory override whose type differs
from the rule's default (``max_idle_seconds: lots``) is a load error naming file, line and key — never a
silently ignored value that would leave the rule quietly unknown or passing on a comparison with null."""
from __future__ import annotations

import textwrap
from typing import Any

import pytest

from agent.inventory import load_inventory
from agent.yamlsrc import ConfigError
from policies.engine import Evaluator
from policies.model import load_profile, load_rules

PROFILE = load_profile("fsi-openapi-2018")


def inventory(tmp_path: Any, policy: str) -> Any:
    p = tmp_path / "inventory.yml"
    p.write_text(textwrap.dedent("""\
        version: 1
        scope: {allow: [127.0.0.0/8]}
        hosts:
          - {name: h1, address: 127.0.0.1}
        """) + textwrap.dedent(policy), encoding="utf-8")
    return load_inventory(str(p))


@pytest.mark.parametrize("policy,line,key,words", [
    ("policy:\n  params:\n    max_idle_seconds: lots\n", 7, "policy.params.max_idle_seconds", "expected a number"),
    ("policy:\n  roles:\n    batch:\n      params: {session-timeout.max_idle_seconds: '900'}\n", 8,
     "policy.roles.batch.params.session-timeout.max_idle_seconds", 'got "900"'),
    ("policy:\n  hosts:\n    h1:\n      params:\n        safe_methods: SHA512\n", 9,
     "policy.hosts.h1.params.safe_methods", "expected a list"),
    ("policy:\n  zones:\n    dmz:\n      params:\n        always_allowed: [22, ssh]\n", 9,
     "policy.zones.dmz.params.always_allowed", 'got "ssh" in it'),
    ("policy:\n  params:\n    allowed_ports_by_role: {web: 443}\n", 7, "policy.params.allowed_ports_by_role", "web:"),
    ("policy:\n  params:\n    dormant_after_days: true\n", 7, "policy.params.dormant_after_days", "got true"),
])
def test_wrong_type_is_a_load_error_naming_file_line_key(tmp_path: Any, policy: str, line: int, key: str,
                                                         words: str) -> None:
    inv = inventory(tmp_path, policy)
    with pytest.raises(ConfigError) as e:
        Evaluator(PROFILE, inv.policy, inv.waivers)
    err = e.value
    assert err.path.endswith("inventory.yml") and err.line == line and err.key == key, str(err)
    assert words in str(err)


def test_right_types_load_and_apply(tmp_path: Any) -> None:
    inv = inventory(tmp_path, """\
        policy:
          params: {max_idle_seconds: 300, max_offset_seconds: 2, external_accounts: [parkjs]}
          roles: {web: {params: {allowed_ports_by_role: {web: [22, 443]}}}}
        """)
    ev = Evaluator(PROFILE, inv.policy, inv.waivers)
    rule = next(r for r in PROFILE.rules if r.id == "session-timeout")
    assert ev.params(rule, {"name": "h1", "roles": []})["max_idle_seconds"] == 300
    ok = next(r for r in PROFILE.rules if r.id == "time-sync")
    assert ev.params(ok, {"name": "h1", "roles": []})["max_offset_seconds"] == 2  # int for a float default


def test_policy_without_source_lines_still_names_the_key() -> None:
    with pytest.raises(ConfigError) as e:
        Evaluator(PROFILE, {"params": {"max_idle_seconds": "lots"}}, [])
    assert "policy.params.max_idle_seconds" in str(e.value)


def test_guide_limit_on_a_non_numeric_parameter_is_refused(tmp_path: Any) -> None:
    p = tmp_path / "site.yaml"
    p.write_text(textwrap.dedent("""\
        schema: evidence-agent/rules/v1
        profile: fsi-openapi-2018
        rules:
          - id: site-rule
            items: ["13.1.1"]
            title: {ko: 사이트, en: site}
            criterion: "주요 정보처리시스템에 대한 연결시간을 제한하여야 한다."
            facts: [session_timeout]
            params: {limit: "600"}
            guide_limits: {limit: {max: 600}}
            observed: [{of: "session_timeout", ko: 없음, en: none}]
            pass: {when: "`true`", ko: 통과, en: ok}
        """), encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_rules(str(p))
    assert "site.yaml:10" in str(e.value) and "guide_limits.limit" in str(e.value)

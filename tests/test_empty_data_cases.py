"""Every rule declares what its pass rests on (``observed``, required at load) and has a policy case with empty data whose expected
verdict is not 이행: the table-driven cases (tests/policy_cases/) then prove the rule never passes over nothing."""
from __future__ import annotations

import glob
import os

import yaml

from policies.model import load_profile

CASES_DIR = os.path.join(os.path.dirname(__file__), "policy_cases")


def test_rules_with_observed_have_an_empty_data_case_that_does_not_pass() -> None:
    cases: dict[str, list[dict]] = {}
    for path in glob.glob(os.path.join(CASES_DIR, "*.yaml")):
        doc = yaml.safe_load(open(path, encoding="utf-8"))
        cases.setdefault(doc["rule"], []).extend(doc["cases"])
    missing = []
    for rule in load_profile("fsi-openapi-2018").rules:
        empty = [c for c in cases.get(rule.id, []) if "empty data" in c["name"]]
        if not empty or any(c["expect"] == "implemented" for c in empty):
            missing.append(rule.id)
    assert not missing, f"rules with `observed` but no empty-data case expecting a verdict other than 이행: {missing}"

"""Hosts are judged by the collector's workers as they finish (policies.engine.Evaluator.judge_host).
That must give exactly what judging the stored facts afterwards gives: same verdicts, findings,
deviations (and their order) and waivers — checked on real bundles with a waiver, a loosened parameter
(a guide deviation) and a host that was not collected."""
from __future__ import annotations

import json
import os

import pytest

import reportlib
from collectors.labels import aliases_from_index, apply_aliases
from policies.engine import Evaluator, HostInput
from policies.model import load_profile


@pytest.mark.parametrize("name", ["A", "B"])
def test_early_judgement_equals_judging_the_stored_facts(name):
    root = reportlib.bundle(name)
    results = json.load(open(os.path.join(root, "results.json"), encoding="utf-8"))
    inv = json.load(open(os.path.join(root, "inventory.json"), encoding="utf-8"))
    hosts = []
    for h in results["hosts"]:
        rec = json.load(open(os.path.join(root, "facts", f"{h['name']}.json"), encoding="utf-8"))
        hosts.append(HostInput(meta=rec["host"], collected=rec["collected"], error=rec["error"], facts=None,
                               evidence=rec["evidence"], session=rec["transport"],
                               facts_file=os.path.join(root, "facts", f"{h['name']}.json"),
                               error_code=rec.get("error_code")))
    ev = Evaluator(load_profile(results["run"]["profile"]), inv["policy"], inv["waivers"])
    again = ev.run(hosts, {}, {})
    # the bundle names each file once per item it serves (collectors.labels); facts cite the first name
    apply_aliases(again["controls"], aliases_from_index(results["evidence_index"]))
    assert again["controls"] == results["controls"]
    assert again["deviations"] == results["deviations"]
    assert again["waivers"] == results["waivers"]
    if name == "B":
        assert results["deviations"] and any(w["host"] == "app-1" for w in results["waivers"])
    else:
        assert any(not h["collected"] for h in results["hosts"])

"""Users add rules and whole profiles as data (--policy-dir), without touching Python."""
from __future__ import annotations

import json
import os

from agent.cli import main
from conftest import write_inventory

INV = "version: 1\nscope: {allow: [127.0.0.0/8]}\nhosts:\n  - {name: me, transport: local, roles: [web]}\n"

CATALOG = """schema: evidence-agent/catalog/v1
profile: acme-baseline
title: {ko: 사내 기준, en: ACME baseline}
answer_scale: yes_no
controls:
  - {id: "A.1", ko: "세션 타임아웃", en: "Session timeout", mode: automated}
  - {id: "A.2", ko: "보안 교육", en: "Security training", mode: manual}
"""

RULES = """schema: evidence-agent/rules/v1
profile: acme-baseline
rules:
  - id: acme-tmout
    items: ["A.1"]
    title: {ko: "TMOUT 300초 이하", en: "TMOUT at most 300 s"}
    criterion: "ACME 표준 3.2: 유휴 세션 300초 이내 종료"
    facts: [session_timeout]
    params: {limit: 300}
    observed:
      - {of: "session_timeout.idle_timeout_seconds", ko: "유휴 타임아웃 값 없음", en: "no idle timeout value read"}
    fail:
      - when: "session_timeout.idle_timeout_seconds == null || session_timeout.idle_timeout_seconds > params.limit"
        ko: "유휴 타임아웃 {session_timeout.idle_timeout_seconds} (기준 {params.limit})"
        en: "idle timeout {session_timeout.idle_timeout_seconds} (limit {params.limit})"
    pass:
      when: "session_timeout.idle_timeout_seconds <= params.limit"
      ko: "유휴 타임아웃 {session_timeout.idle_timeout_seconds}"
      en: "idle timeout {session_timeout.idle_timeout_seconds}"
"""


def test_a_site_profile_from_a_policy_dir(tmp_path, signing_key):
    d = tmp_path / "acme"
    (d / "catalog").mkdir(parents=True)
    (d / "rules").mkdir()
    (d / "catalog" / "acme-baseline.yaml").write_text(CATALOG, encoding="utf-8")
    (d / "rules" / "acme.yaml").write_text(RULES, encoding="utf-8")
    inv = write_inventory(str(tmp_path / "i.yml"), INV)
    out = str(tmp_path / "b")
    assert main(["scan", "-i", inv, "--out", out, "--key", signing_key, "--only", "host", "-q",
                 "--profile", "acme-baseline", "--policy-dir", str(d)]) == 0
    res = json.load(open(os.path.join(out, "results.json"), encoding="utf-8"))
    assert res["run"]["profile"] == "acme-baseline"
    ctl = {c["id"]: c for c in res["controls"]}
    assert set(ctl) == {"A.1", "A.2"}
    f = ctl["A.1"]["hosts"][0]["findings"][0]
    assert f["rule"] == "acme-tmout" and f["status"] in ("implemented", "not_implemented")
    assert "limit 300" in f["detail"]["en"] or f["status"] == "implemented"
    assert ctl["A.2"]["manual"] and ctl["A.2"]["status"] == "unknown"
    md = str(tmp_path / "r.md")
    assert main(["report", out, "--format", "md", "--out", md, "--policy-dir", str(d)]) == 0
    text = open(md, encoding="utf-8").read()
    assert ("| 예" in text or "아니오" in text) and "acme-tmout" in text and "이행" not in text.replace("이행계획", "")


def test_a_malformed_site_rule_stops_the_run_with_file_line_key(tmp_path, signing_key, capsys):
    d = tmp_path / "bad"
    (d / "rules").mkdir(parents=True)
    (d / "rules" / "x.yaml").write_text(RULES.replace("profile: acme-baseline", "profile: fsi-openapi-2018")
                                        .replace('items: ["A.1"]', 'items: ["13.1.1"]')
                                        .replace("params: {limit: 300}", "params: {limit: 300}\n    levle: must"),
                                        encoding="utf-8")
    inv = write_inventory(str(tmp_path / "i.yml"), INV)
    out = str(tmp_path / "never")
    assert main(["scan", "-i", inv, "--out", out, "--key", signing_key, "-q", "--policy-dir", str(d)]) == 1
    err = capsys.readouterr().err
    assert "x.yaml:" in err and "levle" in err and "unknown key" in err
    assert not os.path.exists(out)


def test_a_site_rule_added_to_the_guide_profile(tmp_path, signing_key):
    d = tmp_path / "extra"
    (d / "rules").mkdir(parents=True)
    (d / "rules" / "x.yaml").write_text(RULES.replace("profile: acme-baseline", "profile: fsi-openapi-2018")
                                        .replace('items: ["A.1"]', 'items: ["13.1.1"]'), encoding="utf-8")
    inv = write_inventory(str(tmp_path / "i.yml"), INV)
    out = str(tmp_path / "b")
    assert main(["scan", "-i", inv, "--out", out, "--key", signing_key, "--only", "host", "-q",
                 "--policy-dir", str(d)]) == 0
    res = json.load(open(os.path.join(out, "results.json"), encoding="utf-8"))
    c = next(c for c in res["controls"] if c["id"] == "13.1.1")
    rules = {f["rule"] for h in c["hosts"] for f in h["findings"]}
    assert {"acme-tmout", "session-timeout"} <= rules


def test_a_site_rule_without_observed_is_refused_with_file_and_line(tmp_path, signing_key, capsys):
    d = tmp_path / "acme"
    (d / "catalog").mkdir(parents=True)
    (d / "rules").mkdir()
    (d / "catalog" / "acme-baseline.yaml").write_text(CATALOG, encoding="utf-8")
    bad = RULES.replace(RULES[RULES.index("    observed:"):RULES.index("    fail:")], "")
    (d / "rules" / "acme.yaml").write_text(bad, encoding="utf-8")
    inv = write_inventory(str(tmp_path / "i.yml"), INV)
    rc = main(["scan", "-i", inv, "--out", str(tmp_path / "b"), "--key", signing_key, "--policy-dir", str(d),
               "--profile", "acme-baseline", "-q"])
    err = capsys.readouterr().err
    assert rc == 1 and not (tmp_path / "b").exists()
    assert "acme.yaml:4" in err and "observed" in err, err

"""diff between two real bundles (hosts added/removed, statuses, findings), ports and certificates, and --baseline."""
from __future__ import annotations

import json
import os
import shutil

import pytest

import reportlib
from agent.cli import main
from output.diff import diff_bundles, render_text


@pytest.fixture(scope="module")
def d():
    return diff_bundles(reportlib.bundle("A"), reportlib.bundle("B"))


def item(d, cid):
    return next(i for i in d["items"] if i["id"] == cid)


def test_hosts_added_removed_and_collected(d):
    assert d["hosts_added"] == ["app-3"] and d["hosts_removed"] == ["app-2"]
    assert d["collection_changed"] == [{"host": "web-1", "old": False, "new": True, "error": None}]


def test_status_changes_new_and_resolved_findings(d):
    it = item(d, "13.1.1")
    hosts = {h["host"]: (h["old"], h["new"]) for h in it["hosts"]}
    assert hosts["web-1"][0] == "unknown" and hosts["web-1"][1] in ("not_implemented", "partial")
    assert hosts["app-3"][0] is None and hosts["app-3"][1] in ("not_implemented", "partial")
    assert hosts["app-2"][1] is None and hosts["app-2"][0] in ("not_implemented", "partial")
    new = {(f["host"], f["rule"]) for f in it["new_findings"]}
    assert ("web-1", "session-timeout") in new and ("app-3", "session-timeout") in new
    assert [(f["host"], f["rule"]) for f in it["resolved_findings"]] == [("app-1", "session-timeout")]
    assert not any(f["host"] == "app-2" for f in it["resolved_findings"])  # removed, not fixed


def test_a_finding_that_became_unknown_is_not_resolved(tmp_path):
    new = reportlib.copy("B", str(tmp_path))
    res = reportlib.results(new)
    f = next(h for c in res["controls"] if c["id"] == "13.1.1" for h in c["hosts"] if h["name"] == "web-1")
    for x in f["findings"]:
        x.update(status="unknown", detail={"ko": "호스트 수집 실패", "en": "host not collected"})
    f["status"] = "unknown"
    reportlib.write_results(new, res)
    old = reportlib.bundle("B")
    it = next(i for i in diff_bundles(old, new)["items"] if i["id"] == "13.1.1")
    assert not it["resolved_findings"]
    assert {x["host"] for x in it["unverified_findings"]} == {"web-1"}
    assert "session-timeout" in {x["rule"] for x in it["unverified_findings"]}


def _net(root, ports, cert_sha):
    os.makedirs(os.path.join(root, "facts"), exist_ok=True)
    facts = {"network_scan": {"status": "collected", "data": {"scans": [{"vantage": "internal", "error": None,
                                                                         "hosts": [
        {"address": "10.0.0.5", "ports": [{"port": p, "proto": "tcp", "state": "open", "service": s}
                                          for p, s in ports]}]}]}},
             "tls": {"status": "collected", "data": {"endpoints": [{"host": "api.example", "port": 443,
                     "highest_version": "TLS 1.3", "certificate": {"chain": [
                         {"sha256": cert_sha, "subject": "CN=api.example", "not_after": "2027-01-01T00:00:00Z"}]}}]}}}
    with open(os.path.join(root, "facts", "_network.json"), "w") as f:
        json.dump({"vantage": "internal", "facts": facts}, f)


def test_ports_opened_closed_and_certificate_changed(tmp_path):
    old, new = reportlib.copy("A", str(tmp_path / "o")), reportlib.copy("A", str(tmp_path / "n"))
    _net(old, [(22, "ssh"), (23, "telnet")], "aa" * 32)
    _net(new, [(22, "ssh"), (443, "https")], "bb" * 32)
    d = diff_bundles(old, new)
    assert [(p["port"], p["service"]) for p in d["ports"]["opened"]] == [(443, "https")]
    assert [(p["port"], p["service"]) for p in d["ports"]["closed"]] == [(23, "telnet")]
    assert "nmap@internal" in d["ports"]["compared"]
    assert d["certificates"]["changed"][0]["endpoint"] == "api.example:443"
    text = render_text(d)
    assert "포트 열림: 10.0.0.5 tcp/443 https (nmap@internal)" in text and "인증서 변경: api.example:443" in text


def test_listening_ports_compared_only_for_hosts_seen_in_both(d):
    assert set(d.get("ports", {}).get("compared", [])) <= {"listen@app-1", "listen@web-1"}
    assert not any(p["source"] in ("listen@app-3", "listen@app-2") for p in d.get("ports", {}).get("opened", []))


def test_cli_diff_text_and_json(capsys):
    assert main(["diff", reportlib.bundle("A"), reportlib.bundle("B")]) == 0
    out = capsys.readouterr().out
    assert "호스트 추가: app-3" in out and "web-1: 점검불가 → 미이행" in out
    assert main(["diff", reportlib.bundle("A"), reportlib.bundle("B"), "-f", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["schema"] == "evidence-agent/diff/v1"
    assert main(["diff", reportlib.bundle("A"), "/nonexistent"]) == 1


def test_report_baseline_adds_changes_section(tmp_path):
    out = str(tmp_path / "r.html")
    assert main(["report", reportlib.bundle("B"), "--baseline", reportlib.bundle("A"), "--out", out]) == 0
    doc = open(out, encoding="utf-8").read()
    assert "이전 점검 대비 변경 사항" in doc and "호스트 추가: app-3" in doc
    out_md = str(tmp_path / "r.md")
    assert main(["report", reportlib.bundle("B"), "-f", "md", "--baseline", reportlib.bundle("A"),
                 "--out", out_md]) == 0
    assert "## 이전 점검 대비 변경 사항" in open(out_md, encoding="utf-8").read()


def test_no_changes(tmp_path):
    b = reportlib.bundle("B")
    copy = str(tmp_path / "same")
    shutil.copytree(b, copy)
    assert "변경 사항 없음" in render_text(diff_bundles(b, copy))

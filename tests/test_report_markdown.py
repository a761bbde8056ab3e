"""Markdown report for tickets: what needs doing first, escaped, in Korean or English."""
from __future__ import annotations

import reportlib
from agent.cli import main
from output.markdown import md, render_markdown
from output.report_model import build_model


def test_markdown_content(capsys):
    assert main(["report", reportlib.bundle("B"), "-f", "md", "--out", "-"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# 보안점검 결과보고서 — Diff &lt;b&gt;Test&lt;/b&gt; &amp; Co")
    assert "## 조치 필요" in text and "### 13.1.1 " in text
    assert "web-1: 유휴 세션 타임아웃 미설정" in text
    assert "향후 이행계획 (E)" in text and "/etc/profile.d/tmout.sh" in text
    # every item with its A–E, passing and manual ones included (same content as the HTML)
    assert "### 1.1.1 " in text and "(수동 점검 필요) 담당자의 확인" in text
    assert text.count("- **점검기준 (A)**") == text.count("- **점검결과 (C)**") == 42
    assert "SHA256:" in text


def test_markdown_english():
    text = render_markdown(build_model(reportlib.bundle("B"), lang="en"))
    assert "## Action needed" in text and "web-1: no idle session timeout" in text
    assert "Remediation plan (E)" in text


def test_markdown_escaping():
    assert md("<script>a|b</script>") == "&lt;script&gt;a\\|b&lt;/script&gt;"
    assert md("`x`\n*y*") == "\\`x\\`<br>\\*y\\*"

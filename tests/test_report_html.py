"""HTML report: escaping of target-derived text, no external fetches, relative evidence links, real rendering."""
from __future__ import annotations

import os
import re
import urllib.parse

import pytest

import reportlib
from agent.cli import main
from browser import CHROMIUM, Browser
from conftest import ROOT
from output.html import render_html
from output.report_model import build_model

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def evil_bundle(tmp_path_factory):
    """Bundle B with a finding detail, a host name and an evidence description carrying markup."""
    root = reportlib.copy("B", str(tmp_path_factory.mktemp("evil")))
    res = reportlib.results(root)
    c = next(c for c in res["controls"] if c["id"] == "13.1.1")
    h = next(h for h in c["hosts"] if h["name"] == "web-1")
    h["findings"][0]["detail"] = {"ko": "TMOUT=" + EVIL, "en": "TMOUT=" + EVIL}
    res["evidence_index"][0]["description_ko"] = EVIL
    res["run"]["organisation"] = EVIL
    reportlib.write_results(root, res)
    return root


def test_target_text_is_escaped(evil_bundle, tmp_path):
    m = build_model(evil_bundle, verify=False)
    doc = render_html(m, str(tmp_path / "r.html"))
    assert "<script" not in doc.lower() and "<img" not in doc.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in doc
    # organisation from a real inventory (valid bundle) is escaped too
    doc_b = render_html(build_model(reportlib.bundle("B")), str(tmp_path / "b.html"))
    assert "Diff &lt;b&gt;Test&lt;/b&gt; &amp; Co" in doc_b and "<b>Test</b>" not in doc_b


def test_cli_refuses_a_bundle_that_does_not_verify(evil_bundle, tmp_path, capsys):
    out = str(tmp_path / "r.html")
    assert main(["report", evil_bundle, "--out", out]) == 1
    assert not os.path.exists(out)
    assert main(["report", evil_bundle, "--out", out, "--allow-invalid"]) == 0
    doc = open(out, encoding="utf-8").read()
    assert 'class="banner"' in doc and "results.json: content changed" in doc


def test_self_contained(tmp_path):
    doc = render_html(build_model(reportlib.bundle("B")), str(tmp_path / "r.html"))
    assert "<script" not in doc and "<link" not in doc and "@import" not in doc and "url(" not in doc
    for attr in re.findall(r'(?:src|href)="([^"]*)"', doc):
        assert not re.match(r"^[a-z]+:", attr) and not attr.startswith("//"), attr
    assert "Content-Security-Policy" in doc and "@page { size: A4" in doc and "break-before: page" in doc


def _links_resolve(doc: str, base: str) -> list[str]:
    hrefs = [urllib.parse.unquote(h) for h in re.findall(r'href="([^"#][^"]*)"', doc)]
    assert hrefs
    for h in hrefs:
        assert os.path.isfile(os.path.join(base, h)), h
    return hrefs


@pytest.mark.parametrize("where", ["beside", "elsewhere"])
def test_evidence_links_are_relative_to_where_the_report_is(where, tmp_path):
    bundle = reportlib.bundle("B")
    out = (os.path.join(os.path.dirname(bundle), "B.report.html") if where == "beside"
           else str(tmp_path / "deep" / "r.html"))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    hrefs = _links_resolve(render_html(build_model(bundle), out), os.path.dirname(out))
    assert all(h.startswith("B/evidence/") for h in hrefs) if where == "beside" else True


def test_cli_default_out_is_beside_the_bundle_and_verify_still_passes(tmp_path):
    bundle = reportlib.copy("B", str(tmp_path))
    assert main(["report", bundle]) == 0
    out = bundle + ".report.html"
    _links_resolve(open(out, encoding="utf-8").read(), str(tmp_path))
    assert main(["verify", bundle, "--pubkey", reportlib.key() + ".pub"]) == 0
    assert main(["report", bundle, "--out", os.path.join(bundle, "r.html")]) == 4  # never inside the signed set


@pytest.mark.skipif(not CHROMIUM, reason="Debian chromium is not installed (apt-get install chromium fonts-noto-cjk)")
def test_renders_in_a_real_browser(tmp_path):
    bundle = reportlib.bundle("B")
    out = str(tmp_path / "report.html")
    with open(out, "w", encoding="utf-8") as f:
        f.write(render_html(build_model(bundle), out))
    shot = str(tmp_path / "report.png")
    with Browser() as b:
        b.open(out)
        text = b.eval("document.body.innerText")
        for label in ("보안점검 결과보고서", "점검기준 (A)", "증빙자료 (B)", "점검결과 (C)", "점검결과 요약 (D)",
                      "향후 이행계획 (E)", "이행", "미이행", "수동 점검 필요", "자료13.1.1-"):
            assert label in text, label
        assert "web-1: 유휴 세션 타임아웃 미설정" in text
        assert "Diff <b>Test</b> & Co" in text  # shown as text, not markup
        assert b.eval("document.querySelectorAll('script, img, link, iframe').length") == 0
        reqs = b.requests()
        assert reqs and all(u.startswith("file://") for u in reqs), reqs  # nothing fetched from anywhere else
        # the link to the first evidence file points at a file that exists
        first = b.eval("document.querySelector('section a[href]').href")
        assert os.path.isfile(urllib.parse.unquote(first[len("file://"):]))
        b.screenshot(shot, "#item-13\\.1\\.1")
        pdf = b.pdf()
    assert os.path.getsize(shot) > 10_000
    items = len(build_model(bundle).items)
    assert pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages") >= items  # one page (at least) per item


def test_docs_screenshot_is_committed():
    path = os.path.join(ROOT, "docs", "report-screenshot.png")
    assert os.path.getsize(path) > 10_000
    assert "![report](docs/report-screenshot.png)" in open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()

"""The self-check form a company can hand in: both halves of an item, attestations, its own criteria (A), plans (E),
approved exceptions, clean guide text, stable per-item evidence labels, and the PDF.

Every bundle here is a real scan of this machine (local transport, the real CLI), changed only through the CLI.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from agent.cli import main
from output import form
from output.html import render_html
from output.markdown import render_markdown
from output.report_model import build_model
from policies.engine import IMPL, NI, PART, UNK
import reportlib

SITE_CRITERIA = """version: 1
organisation: 테스트 핀테크
criteria:
  "13.1.1":
    ko: "당사 기준: 오픈API 서버는 지정된 관리자 단말에서 SSH로만 접근한다."
    en: "Our standard: open-API servers are reached only over SSH from designated admin terminals."
  "4.1.1": {ko: "당사 기준: 전 직원 연 2회 정보보호 교육 이수."}
"""
RAW_EXPR = re.compile(r"applicability condition|!= `|== `|&&|\|\||\[\?")


@pytest.fixture(autouse=True)
def _pinned(monkeypatch):
    """verify pins the signer: the report bundles' key is the trusted one here."""
    monkeypatch.setenv("EVIDENCE_AGENT_PUBKEY", reportlib.key() + ".pub")


@pytest.fixture()
def bundle(tmp_path):
    return reportlib.copy("B", str(tmp_path))


def _control(root: str, cid: str) -> dict:
    return next(c for c in reportlib.results(root)["controls"] if c["id"] == cid)


def _item(model, cid):
    return next(i for i in model.items if i.id == cid)


# -- the two halves ----------------------------------------------------------------------------------------------

def test_combination_follows_the_guide():
    assert form.combine("mixed", IMPL, None) == UNK  # never 이행 from host checks alone
    assert form.combine("mixed", NI, None) == NI  # a known failure shows through a pending half
    assert form.combine("mixed", IMPL, IMPL) == IMPL
    assert form.combine("mixed", IMPL, NI) == PART and form.combine("mixed", PART, IMPL) == PART
    assert form.combine("mixed", NI, NI) == NI
    assert form.combine("automated", IMPL, None) == IMPL
    assert form.combine("manual", None, None) == UNK and form.combine("manual", None, PART) == PART


def test_a_mixed_item_waits_for_a_person_then_combines(bundle, tmp_path):
    key = reportlib.key()
    before = _control(bundle, "15.2.1")
    m0 = build_model(bundle)
    it = _item(m0, "15.2.1")
    assert it.mode == "mixed" and it.automated_status is not None
    assert it.status != IMPL and it.manual_part["pending"]
    assert "담당자 확인 대기" in it.manual_part["text"] and "자동 점검은 완료" in it.manual_part["text"]

    doc = tmp_path / "관리자단말_지정대장.txt"
    doc.write_text("관리자 단말 지정 대장 v3")
    assert main(["attach", bundle, "--item", "15.2.1", str(doc), "--status", "implemented", "--note",
                 "관리자 단말 지정 대장", "--by", "보안담당 김철수", "--key", key]) == 0
    assert main(["verify", bundle]) == 0
    after = _control(bundle, "15.2.1")
    # the automated verdict is untouched; the person's answer sits beside it, for the manual half
    assert after["status"] == before["status"] and after["hosts"] == before["hosts"]
    assert after["manual_answer"]["part"] == "manual" and after["manual_answer"]["by"] == "보안담당 김철수"
    assert after["manual_answer"]["files"] == ["evidence/자료15.2.1-" + after["manual_answer"]["files"][0]
                                               .split("-", 1)[1]]
    it = _item(build_model(bundle), "15.2.1")
    assert not it.manual_part["pending"] and it.manual_part["by"] == "보안담당 김철수"
    assert it.status == form.combine("mixed", it.automated_status, IMPL)
    html = render_html(build_model(bundle))
    assert "자동 점검 결과" in html and "수동 점검 (담당자 확인)" in html and "보안담당 김철수" in html


def test_two_manual_items_answered(bundle, tmp_path):
    key = reportlib.key()
    doc = tmp_path / "교육기록.txt"
    doc.write_text("2026 정보보호 교육 이수 명단")
    assert main(["attach", bundle, "--item", "4.1.1", str(doc), "--status", "implemented", "--by", "홍길동",
                 "--key", key]) == 0
    assert main(["attach", bundle, "--item", "8.1.1", "--status", "partial", "--reason", "모의훈련 미실시",
                 "--by", "홍길동", "--key", key]) == 0
    assert main(["verify", bundle]) == 0
    m = build_model(bundle)
    a, b = _item(m, "4.1.1"), _item(m, "8.1.1")
    assert a.status == IMPL and b.status == PART
    assert a.manual_part["by"] == b.manual_part["by"] == "홍길동"
    assert m.cover.attested_count == 2


def test_the_whole_form_in_every_format(bundle, tmp_path):
    """The issue's scenario: attest 13.1.1's manual half, answer two manual items, site criteria, a plan; every
    format shows both halves, who attested, A from the site file and E; verify passes after each revision."""
    key = reportlib.key()
    doc = tmp_path / "단말지정.txt"
    doc.write_text("관리자 단말 지정 대장")
    steps = [["attach", bundle, "--item", "13.1.1", str(doc), "--status", "implemented", "--by", "김철수"],
             ["attach", bundle, "--item", "4.1.1", str(doc), "--status", "implemented", "--by", "박영희"],
             ["attach", bundle, "--item", "10.1.1", "--status", "not_applicable", "--reason", "전산실 없음",
              "--by", "박영희"],
             ["plan", bundle, "--item", "14.6.1", "--due", "2099-03-31", "--text", "월간 패치 창 운영"]]
    for st in steps:
        assert main([*st, "--key", key]) == 0
        assert main(["verify", bundle]) == 0
    crit = tmp_path / "criteria.yaml"
    crit.write_text(SITE_CRITERIA, encoding="utf-8")
    texts = {}
    for fmt in ("html", "md", "xlsx", "pdf"):
        if fmt == "pdf" and not shutil.which("chromium"):
            continue
        out = tmp_path / f"r.{fmt}"
        assert main(["report", bundle, "-f", fmt, "--criteria", str(crit), "--out", str(out)]) == 0
        if fmt == "xlsx":
            import openpyxl

            wb = openpyxl.load_workbook(out)
            texts[fmt] = "\n".join(str(c) for ws in wb for row in ws.iter_rows(values_only=True) for c in row
                                   if c is not None)
        elif fmt == "pdf":
            texts[fmt] = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True,
                                        check=True).stdout
        else:
            texts[fmt] = out.read_text(encoding="utf-8")
    for fmt, t in texts.items():
        flat = re.sub(r"\s+", "", t)
        for needle in ("자동점검결과", "수동점검(담당자확인)", "김철수", "박영희", "당사기준:오픈API서버는",
                       "월간패치창운영", "2099-03-31"):
            assert needle in flat, (fmt, needle)


# -- A: the organisation's criteria, the guide's text cleaned ----------------------------------------------------

def test_site_criteria_replace_A_and_keep_the_guide_as_reference(bundle, tmp_path):
    pdir = tmp_path / "site"
    pdir.mkdir()
    (pdir / "criteria.yaml").write_text(SITE_CRITERIA, encoding="utf-8")
    m = build_model(bundle, policy_dirs=[str(pdir)])
    it = _item(m, "13.1.1")
    assert it.org_criterion.startswith("당사 기준: 오픈API 서버는")
    assert it.guide_criterion  # the guide's text stays as a reference block
    html = render_html(m)
    assert "기관 점검기준" in html and "가이드 원문 (참고)" in html
    assert _item(build_model(bundle, lang="en", policy_dirs=[str(pdir)]), "13.1.1").org_criterion.startswith(
        "Our standard")
    # the same through `report --criteria FILE`, in every text format
    for fmt in ("html", "md"):
        out = tmp_path / f"r.{fmt}"
        assert main(["report", bundle, "-f", fmt, "--criteria", str(pdir / "criteria.yaml"), "--out", str(out)]) == 0
        assert "당사 기준: 전 직원 연 2회" in out.read_text(encoding="utf-8")


def test_bad_criteria_file_names_file_line_and_key(bundle, tmp_path, capsys):
    bad = tmp_path / "criteria.yaml"
    bad.write_text('version: 1\ncriteria:\n  "13.1.1": {ko: x, fr: y}\n', encoding="utf-8")
    assert main(["report", bundle, "--criteria", str(bad), "--out", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:3: criteria.13.1.1.fr: unknown key" in err


def test_criteria_init_writes_every_item(tmp_path):
    out = tmp_path / "criteria.yaml"
    assert main(["criteria", "init", "--out", str(out)]) == 0
    crit, _ = form.load_criteria([str(out)])
    from policies.model import load_profile

    ids = [str(c["id"]) for c in load_profile("fsi-openapi-2018").catalog.controls]
    text = out.read_text(encoding="utf-8")
    assert all(f'"{i}":' in text for i in ids) and len(ids) == 42
    assert "13.1.1" in crit and not form.damaged(crit["13.1.1"]["ko"])
    assert main(["criteria", "init", "--out", str(out)]) == 4  # never overwritten


def test_guide_text_cleaning():
    text, lost = form.clean_block("• 읽히는 문장.\n  ** 그렇지 않은 경우 … 야 함\n• 또 하나.", "ko")
    assert text == "• 읽히는 문장.\n• 또 하나." and lost
    assert form.clean_title("정보자산 보… 책임자를 지정", "ko") == "정보자산 보 (원문 누락) 책임자를 지정"
    assert form.elide("… 보호대책을 수립 … 적용", "ko") == "보호대책을 수립 (중략) 적용"


INV_ROBO = """version: 1
scope: {allow: [127.0.0.0/8]}
hosts:
  - {name: admin-pc-1, transport: local, address: 127.0.0.1, roles: [important-pc]}
"""


@pytest.fixture(scope="module")
def robo_bundle(tmp_path_factory):
    d = tmp_path_factory.mktemp("robo")
    (d / "inv.yml").write_text(INV_ROBO)
    out = str(d / "bundle")
    assert main(["scan", "--inventory", str(d / "inv.yml"), "--profile", "robo-advisor-2017", "--only", "host",
                 "--out", out, "--key", reportlib.key(), "-q"]) == 0
    return out


def test_the_form_belongs_to_the_profile(robo_bundle, tmp_path):
    """robo-advisor-2017: 심사번호 / 확인결과 / 증적자료, 적합·부적합·N/A (no partly), evidence 첨부<no>-<n>;
    its rules are the open-API guide's, used through the catalog's crosswalk (not copied)."""
    res = reportlib.results(robo_bundle)
    ctl = next(c for c in res["controls"] if c["id"] == "S2-05-SE-1")
    rules = {f["rule"] for h in ctl["hosts"] for f in h["findings"]}
    assert rules and all(r.endswith("@S2-05-SE-1") for r in rules)
    m = build_model(robo_bundle)
    html = render_html(m)
    for word in ("심사번호", "확인결과", "증적자료", "적합(예)", "부적합(아니오)", "N/A"):
        assert word in html, word
    assert "부분이행" not in html and "이행" not in html.replace("이행계획", "")
    assert m.choices == ("implemented", "not_implemented", "not_applicable")
    it = _item(m, "S2-05-SE-1")
    assert it.status != "partial" and it.evidence and all(e.ref.startswith("첨부S2-05-SE-1-") for e in it.evidence)
    doc = tmp_path / "pc.txt"
    doc.write_text("인터넷 차단 정책 화면")
    assert main(["attach", robo_bundle, "--item", "S2-05-SE-1", str(doc), "--status", "implemented",
                 "--key", reportlib.key()]) == 0
    assert any(f.startswith("첨부S2-05-SE-1-") and f.endswith("_manual_pc.txt")
               for f in os.listdir(os.path.join(robo_bundle, "evidence")))


@pytest.mark.parametrize("profile", ["fsi", "robo"])
def test_no_rendered_report_carries_ocr_damage_or_raw_rules(bundle, robo_bundle, profile):
    models = [build_model(bundle if profile == "fsi" else robo_bundle, lang=lang) for lang in ("ko", "en")]
    for m in models:
        for text in (render_html(m), render_markdown(m)):
            assert "판독 불가" not in text and "판독불가" not in text
            assert "OCR" not in text
            assert not RAW_EXPR.search(text.replace("&amp;&amp;", "")), RAW_EXPR.search(text)
        for it in m.items:
            a = "\n".join([it.org_criterion, it.guide_criterion, *(c.text for c in it.criteria)])
            assert "…" not in a and "..." not in a, (it.id, a)
            assert "…" not in it.title and not any("…" in x for x in it.evidence_examples + it.references)
            for s in it.summary:
                assert not RAW_EXPR.search(s.text), (it.id, s.text)


def test_d_is_in_words():
    from output.report_model import _words

    raw = "applicability condition not met: remote_admin.ssh.installed != `false`"
    assert _words(raw, "ko") == "이 대상에는 해당하지 않음 (규칙의 적용 조건에 맞지 않음)"
    hint = ("증적 수집 불가 — no network scan from the 'external' vantage (scanned from: internal); run "
            "`scan --only network --vantage external` there and `merge` the bundles")
    ko = _words(hint, "ko")
    assert "“scan --only network --vantage external”" in ko and "merge" in ko and "`" not in ko
    assert not RAW_EXPR.search(_words("x: foo.bar == `1` && y", "en"))


# -- E: plans ----------------------------------------------------------------------------------------------------

def test_plan_is_signed_carried_forward_and_flagged_when_overdue(bundle, tmp_path):
    key = reportlib.key()
    assert main(["plan", bundle, "--item", "13.1.1", "--due", "2099-03-31", "--text", "TMOUT=600 전 서버 적용",
                 "--by", "운영팀", "--key", key]) == 0
    assert main(["plan", bundle, "--item", "14.6.1", "--due", "2020-01-31", "--text", "월간 패치 창",
                 "--key", key]) == 0
    assert main(["verify", bundle]) == 0
    assert main(["plan", bundle, "--item", "13.1.1", "--due", "31/03/2027", "--text", "x", "--key", key]) == 1
    m = build_model(bundle)
    p = _item(m, "13.1.1").plans
    assert p[0]["due"] == "2099-03-31" and p[0]["by"] == "운영팀" and not p[0]["overdue"]
    assert _item(m, "14.6.1").plans[0]["overdue"] and m.cover.overdue_plans == 1
    html = render_html(m)
    assert "TMOUT=600 전 서버 적용" in html and "기한 경과" in html
    # a later scan with --baseline carries the open plans over (both items are still not 이행)
    inv = os.path.join(reportlib.workdir(), "B.yml")
    new = str(tmp_path / "next")
    assert main(["scan", "--inventory", inv, "--out", new, "--key", key, "--only", "host", "-q",
                 "--baseline", bundle]) == 0
    plans = _control(new, "13.1.1").get("plans") or []
    assert [x["text"] for x in plans] == ["TMOUT=600 전 서버 적용"] and plans[0]["carried_from"]
    assert "이전 점검에서 이월" in render_html(build_model(new))


# -- approved exceptions ---------------------------------------------------------------------------------------

def test_an_approved_exception_is_shown_and_never_makes_an_item_implemented(bundle):
    m = build_model(bundle)
    it = _item(m, "13.1.1")  # bundle B: session-timeout waived on app-1 by CISO Kim
    ex = [x for x in it.exceptions if x["host"] == "app-1"]
    assert ex and ex[0]["approver"] == "CISO Kim" and ex[0]["active"]
    assert it.status != IMPL
    app1 = next(h for h in it.hosts if h.name == "app-1")
    assert app1.status != "not_applicable"  # a waived failure is not 해당없음
    assert any(s.kind == "waiver" and "예외 승인" in s.text and "CISO Kim" in s.text and "2099-12-31" in s.text
               for s in it.summary)
    assert m.cover.excepted_count >= 1
    html = render_html(m)
    assert "예외 승인 포함 항목" in html
    # an expired waiver: the engine keeps the failure; the report says so
    assert form.automated_status([{"findings": [{"status": "not_applicable", "excepted": True}]}]) == NI


def test_an_expired_waiver_is_a_failure(tmp_path):
    inv = tmp_path / "inv.yml"
    inv.write_text(INV_TWO + """waivers:
  - {rule: session-timeout, host: "*", reason: "batch hosts", approver: "CISO Kim", expires: "2020-01-31"}
""")
    out = str(tmp_path / "b")
    assert main(["scan", "--inventory", str(inv), "--out", out, "--key", reportlib.key(), "--only", "host",
                 "-q"]) == 0
    fs = [f for h in _control(out, "13.1.1")["hosts"] for f in h["findings"] if f["rule"] == "session-timeout"]
    assert fs and all(not f["waiver"]["active"] for f in fs if f.get("waiver"))
    m = build_model(out)
    it = _item(m, "13.1.1")
    if any(f["status"] == "not_implemented" for f in fs):  # this machine has no idle timeout: the usual case
        assert it.status in (NI, PART) and m.cover.excepted_count == 0
        assert any(s.kind == "waiver" and "만료됨 — 미이행으로 판정" in s.text for s in it.summary)


def test_run_carries_plans_from_the_previous_bundle(tmp_path):
    inv = tmp_path / "inv.yml"
    inv.write_text(INV_TWO)
    d = str(tmp_path / "bundles")
    args = ["run", "--inventory", str(inv), "--bundles", d, "--key", reportlib.key(), "--only", "host", "-q"]
    assert main(args) == 0
    first = os.path.join(d, os.readlink(os.path.join(d, "latest")))
    assert main(["plan", first, "--item", "13.1.1", "--due", "2099-01-31", "--text", "TMOUT 적용",
                 "--key", reportlib.key()]) == 0
    import time

    time.sleep(1.1)  # bundle folders are named by the second
    assert main(args) == 0
    second = os.path.join(d, os.readlink(os.path.join(d, "latest")))
    assert second != first
    # 13.1.1 is mixed and nobody attested its manual part in the new run: not 이행, so its plan is still open
    assert [p["text"] for p in _control(second, "13.1.1").get("plans") or []] == ["TMOUT 적용"]


# -- evidence labels ---------------------------------------------------------------------------------------------

INV_TWO = """version: 1
scope: {allow: [127.0.0.0/8]}
hosts:
  - {name: zeta, transport: local, address: 127.0.0.1, roles: [app]}
  - {name: alpha, transport: local, address: 127.0.0.1, roles: [web]}
"""


def test_labels_are_stable_and_per_item(tmp_path):
    inv = tmp_path / "inv.yml"
    inv.write_text(INV_TWO)
    runs = []
    for n in (1, 2):
        out = str(tmp_path / f"run{n}")
        assert main(["scan", "--inventory", str(inv), "--out", out, "--key", reportlib.key(), "--only", "host",
                     "-q", "-j", "2"]) == 0
        assert main(["verify", out]) == 0
        runs.append(out)
    names = [sorted(os.listdir(os.path.join(r, "evidence"))) for r in runs]
    assert names[0] == names[1]
    # ordered by item, then host name: alpha's evidence comes before zeta's under every item
    assert "자료13.1.1-1_alpha_accounts.txt" in names[0]
    m = build_model(runs[0])
    for it in m.items:
        for ev in it.evidence:
            assert ev.ref.startswith(f"자료{it.id}-"), (it.id, ev.ref)
            assert os.path.isfile(os.path.join(runs[0], ev.file))
    # each name is hashed in the manifest; a shared file's copies say their own name
    with open(os.path.join(runs[0], "manifest.json"), encoding="utf-8") as f:
        subjects = {s["name"] for s in json.load(f)["subject"]}
    assert all(f"evidence/{n}" in subjects for n in names[0])
    with open(os.path.join(runs[0], "evidence", "자료13.1.1-1_alpha_accounts.txt"), encoding="utf-8") as f:
        assert f.readline() == "# evidence-agent evidence file (자료13.1.1-1_alpha_accounts.txt)\n"


# -- PDF ---------------------------------------------------------------------------------------------------------

@pytest.mark.skipif(not shutil.which("chromium") or not shutil.which("pdftoppm"), reason="chromium/poppler missing")
def test_pdf_embeds_korean_fonts_and_renders(bundle, tmp_path):
    out = tmp_path / "report.pdf"
    assert main(["report", bundle, "-f", "pdf", "--out", str(out)]) == 0
    assert out.read_bytes()[:5] == b"%PDF-"
    fonts = subprocess.run(["pdffonts", str(out)], capture_output=True, text=True, check=True).stdout
    rows = [r for r in fonts.splitlines()[2:] if r.strip()]
    assert rows and all(r.split()[-5] == "yes" for r in rows), fonts  # every font embedded
    text = subprocess.run(["pdftotext", "-l", "3", str(out), "-"], capture_output=True, text=True, check=True).stdout
    assert "보안점검 결과보고서" in text
    # page 1 as a greyscale image (PGM: a short header, then one byte per pixel): text was drawn on it
    subprocess.run(["pdftoppm", "-gray", "-r", "40", "-f", "1", "-l", "1", str(out), str(tmp_path / "p")], check=True)
    pgm = next(p for p in os.listdir(tmp_path) if p.startswith("p") and p.endswith(".pgm"))
    data = (tmp_path / pgm).read_bytes()
    magic, w, h, maxval, pixels = data.split(maxsplit=4)
    assert magic == b"P5" and int(w) > 200 and int(h) > 300
    dark = sum(1 for px in pixels[: int(w) * int(h)] if px < 128)
    assert dark > 500
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".html")]  # the temporary HTML is gone

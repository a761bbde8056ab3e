"""XLSX report: the guide's form per item and host, and a round trip through openpyxl after the ops team fills E."""
from __future__ import annotations

import openpyxl
import pytest

import reportlib
from agent.cli import main
from output.report_model import build_model
from output.xlsx import COLUMNS, HEADER_ROW, write_xlsx


def col(name: str) -> int:
    return [k for k, _ in COLUMNS].index(name) + 1


@pytest.fixture(scope="module")
def workbook(tmp_path_factory):
    m = build_model(reportlib.bundle("B"))
    path = str(tmp_path_factory.mktemp("xlsx") / "report.xlsx")
    write_xlsx(m, path)
    return m, path


def rows(ws):
    return [r for r in ws.iter_rows(min_row=HEADER_ROW + 1, values_only=True)]


def test_form_sheet_layout(workbook):
    m, path = workbook
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["보안점검 결과", "요약", "증빙자료 목록"]
    ws = wb["보안점검 결과"]
    heads = [c.value for c in ws[HEADER_ROW]]
    for h in ("보안영역", "점검분야", "보안점검 항목", "세부 점검항목", "점검기준 (A)", "증빙자료 (B)", "점검결과 (C)",
              "점검결과 요약 (D)", "향후 이행계획 (E) 목표시기", "향후 이행계획 (E) 세부 이행계획"):
        assert h in heads, h
    assert ws.freeze_panes == f"A{HEADER_ROW + 1}"
    assert ws.auto_filter.ref.startswith(f"A{HEADER_ROW}:")
    assert ws.cell(HEADER_ROW + 1, col("criterion")).alignment.wrap_text
    data = rows(ws)
    ids = [r[col("control_id") - 1] for r in data]
    assert set(ids) == {i.id for i in m.items}  # every detailed item
    web = [r for r in data if r[col("control_id") - 1] == "13.1.1"]
    # one row per host (the automated half), and one for the manual half a person confirms
    assert {r[col("host") - 1] for r in web} == {"app-1", "web-1", "app-3", "수동 점검 (담당자 확인)"}
    w1 = next(r for r in web if r[col("host") - 1] == "web-1")
    assert w1[col("result") - 1] in ("미이행", "부분이행") and "TMOUT" in w1[col("summary") - 1]
    assert "자료13.1.1-" in w1[col("evidence") - 1] and "TMOUT" in w1[col("remediation") - 1]
    manual = next(r for r in data if r[col("control_id") - 1] == "1.1.1")
    assert "수동 점검 필요" in manual[col("result") - 1] and "점검 자료의 예" in manual[col("evidence") - 1]


def test_e_columns_unlocked_rest_protected(workbook):
    _, path = workbook
    ws = openpyxl.load_workbook(path)["보안점검 결과"]
    r = HEADER_ROW + 1
    assert ws.protection.sheet and not ws.protection.autoFilter  # filtering still allowed
    assert not ws.cell(r, col("target_date")).protection.locked
    assert not ws.cell(r, col("plan_detail")).protection.locked
    assert ws.cell(r, col("summary")).protection.locked


def test_round_trip_fill_e_save_reopen(workbook, tmp_path):
    m, path = workbook
    wb = openpyxl.load_workbook(path)
    ws = wb["보안점검 결과"]
    before = [list(r) for r in rows(ws)]
    target = next(i for i, r in enumerate(before)
                  if r[col("host") - 1] == "web-1" and r[col("control_id") - 1] == "13.1.1")
    rr = HEADER_ROW + 1 + target
    ws.cell(rr, col("target_date"), "2026. 3.")
    ws.cell(rr, col("plan_detail"), "TMOUT=600 readonly 적용 후 재점검 — 담당: 김보안")
    again = str(tmp_path / "filled.xlsx")
    wb.save(again)
    wb2 = openpyxl.load_workbook(again)
    ws2 = wb2["보안점검 결과"]
    after = [list(r) for r in rows(ws2)]
    assert after[target][col("plan_detail") - 1] == "TMOUT=600 readonly 적용 후 재점검 — 담당: 김보안"
    assert after[target][col("target_date") - 1] == "2026. 3."
    for i, (a, b) in enumerate(zip(before, after)):
        if i != target:
            assert a == b
    assert ws2.freeze_panes == ws.freeze_panes and ws2.auto_filter.ref == ws.auto_filter.ref
    assert not ws2.cell(rr, col("plan_detail")).protection.locked and ws2.protection.sheet
    assert wb2["요약"]["B3"].value == "Diff <b>Test</b> & Co"
    wb2.save(str(tmp_path / "third.xlsx"))  # and once more


def test_summary_and_evidence_sheets(workbook):
    m, path = workbook
    wb = openpyxl.load_workbook(path)
    vals = [c for r in wb["요약"].iter_rows(values_only=True) for c in r if c is not None]
    assert m.cover.fingerprint in vals and "미이행" in vals
    ev = list(wb["증빙자료 목록"].iter_rows(min_row=2, values_only=True))
    assert ev and all(r[0].startswith("evidence/자료") for r in ev)


def test_evidence_file_names_are_links_that_resolve_from_the_workbook(workbook):
    """Each file name opens the evidence file: the link is relative to the workbook and points at a real file."""
    import os

    m, path = workbook
    ws = openpyxl.load_workbook(path)["증빙자료 목록"]
    cells = [r[0] for r in ws.iter_rows(min_row=2)]
    assert cells and all(c.hyperlink is not None for c in cells)
    for c in cells:
        target = c.hyperlink.target
        assert not os.path.isabs(target) and target.endswith(c.value)
        assert os.path.isfile(os.path.join(os.path.dirname(path), target)), target


def test_control_characters_from_targets_do_not_break_the_workbook(tmp_path):
    root = reportlib.copy("B", str(tmp_path))
    res = reportlib.results(root)
    h = next(h for c in res["controls"] if c["id"] == "13.1.1" for h in c["hosts"] if h["name"] == "web-1")
    h["findings"][0]["detail"] = {"ko": "bell\x07 esc\x1b[31m 한글", "en": "x"}
    reportlib.write_results(root, res)
    out = str(tmp_path / "r.xlsx")
    write_xlsx(build_model(root, verify=False), out)
    ws = openpyxl.load_workbook(out)["보안점검 결과"]
    texts = [c.value for r in ws.iter_rows() for c in r if isinstance(c.value, str)]
    assert any("bell\\x07 esc\\x1b[31m 한글" in t for t in texts)


def test_english_and_cli(tmp_path):
    out = str(tmp_path / "en.xlsx")
    assert main(["report", reportlib.bundle("B"), "-f", "xlsx", "--lang", "en", "--out", out]) == 0
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["Self-check results", "Summary", "Evidence"]
    assert "Criterion (A)" in [c.value for c in wb.worksheets[0][HEADER_ROW]]
    assert main(["report", reportlib.bundle("B"), "-f", "xlsx", "--out", "-"]) == 1

"""The control catalogs (policies/catalog/*.yaml) are data derived from the source documents.

These tests pin their structure and the exact numbering the documents give, so that an edit
that drops, renumbers or orphans an item fails here rather than in an auditor's report.
The expected lists below are transcribed from the guides themselves:
  - fsi-openapi-2018: Section III-1 "보안점검 항목 예시" table (fields, items) and the
    Section III-2 "세부 점검항목" pages (controls) of seeds/001_da63a7ec929e92da.txt;
  - robo-advisor-2017: the one check reproduced in seeds/004_a02d705d038c2755.txt.
"""
from __future__ import annotations

import copy
import os
import re
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CATALOG_DIR = os.path.join(ROOT, "policies", "catalog")
FSI = os.path.join(CATALOG_DIR, "fsi-openapi-2018.yaml")
ROBO = os.path.join(CATALOG_DIR, "robo-advisor-2017.yaml")

TOP_KEYS = {"schema", "profile", "title", "source", "answer_scale", "areas", "fields", "items", "controls"}
OPTIONAL_TOP_KEYS = {"form", "crosswalk"}  # the profile's own form (labels, scale, prefix) and its item crosswalk
AREA_KEYS = {"id", "ko", "en"}
FIELD_KEYS = {"id", "area", "ko", "en"}
ITEM_KEYS = {"id", "field", "ko", "en"}
ITEM_OPTIONAL = {"offline_applicable"}
CONTROL_KEYS = {"id", "item", "ko", "en", "criterion_ko", "criterion_en", "evidence_examples_ko", "references", "mode"}
MODES = {"automated", "manual", "mixed"}
HANGUL = re.compile(r"[\uac00-\ud7a3]")

# ── fsi-openapi-2018: the guide's own numbering ──────────────────────────────────────────────
FSI_FIELDS = {
    "1": ("management", "정보보호 정책·조직"),
    "2": ("management", "외부자 관리"),
    "3": ("management", "정보자산 관리"),
    "4": ("management", "정보보호 교육"),
    "5": ("management", "인적 보안"),
    "6": ("management", "위험 관리"),
    "7": ("management", "침해사고 대응"),
    "8": ("management", "장애 대응"),
    "9": ("management", "이용자 보호"),
    "10": ("physical", "물리적 보안"),
    "11": ("technical", "개발 보안"),
    "12": ("technical", "암호 통제"),
    "13": ("technical", "접근 통제"),
    "14": ("technical", "시스템 보안"),
    "15": ("technical", "네트워크 보안"),
}

FSI_ITEMS = {
    "1.1": "정보보호최고책임자 지정 및 실무조직",
    "1.2": "정보보호정책 수립 및 공표",
    "2.1": "위탁업체 선정 및 관리",
    "3.1": "정보자산 식별 및 등급부여",
    "3.2": "정보자산별 책임자 지정",
    "4.1": "정보보호 교육계획 수립 및 이행",
    "4.2": "실무자 정보보호 교육 이수",
    "5.1": "비밀유지서약서",
    "5.2": "직무분리",
    "5.3": "퇴직 및 직무변경 관리",
    "6.1": "취약점 점검 정책 수립 및 점검 수행",
    "7.1": "침해사고 대응절차 마련 및 교육 시행",
    "7.2": "침해사고 대응 관련 로그 보존 및 모니터링",
    "8.1": "백업정책 수립 및 복구절차 마련",
    "9.1": "개인정보 처리 관련 이용자 보호",
    "9.2": "개인·신용정보 접근 및 거래지시 권한 관련 안내",
    "9.3": "이용자 고충 처리방침 마련 및 공개",
    "9.4": "이용자 보안 주의사항 안내",
    "10.1": "보호구역 지정 및 출입 통제",
    "10.2": "보호구역 반출입 관리",
    "10.3": "사무실 환경 보안 정책 수립 및 이행",
    "11.1": "설계 시 보안 요구사항 도출 및 반영",
    "11.2": "시큐어 코딩 적용 및 보안 취약점 점검·보완",
    "11.3": "테스트 시 이용자 개인·신용정보 사용 제한",
    "11.4": "소스 프로그램 및 전산원장 대상 접근·변경 통제",
    "12.1": "중요 정보 암호화 정책 수립 및 이행",
    "13.1": "중요 정보자산 계정 및 접근 권한 관리",
    "13.2": "중요 단말기 지정 및 접근 통제",
    "14.1": "주요 시스템 등의 악성코드 감염 및 정보유출 방지",
    "14.2": "인터넷망을 통한 원격관리 통제",
    "14.3": "주요 시스템 목적 외 기능·프로그램·포트 등 제거",
    "14.4": "중요 서버 독립 운영 및 정보보호시스템 적용",
    "14.5": "공개용 웹서버 보호대책 마련",
    "14.6": "중요 보안패치 적용 지침 수립 및 이행",
    "15.1": "DMZ 구간 구성",
    "15.2": "내부망 사설IP 활용 및 주요 시스템 배치",
    "15.3": "무선 네트워크 이용 최소화 및 보안대책 수립·적용",
    "15.4": "대외기관과 통신 시 보안통신 적용",
}

FSI_CONTROLS = [
    "1.1.1", "1.1.2", "1.2.1",
    "2.1.1", "2.1.2",
    "3.1.1", "3.2.1",
    "4.1.1", "4.2.1",
    "5.1.1", "5.2.1", "5.3.1",
    "6.1.1",
    "7.1.1", "7.1.2", "7.2.1",
    "8.1.1",
    "9.1.1", "9.2.1", "9.3.1", "9.4.1",
    "10.1.1", "10.2.1", "10.3.1",
    "11.1.1", "11.2.1", "11.3.1", "11.4.1",
    "12.1.1",
    "13.1.1", "13.1.2", "13.2.1",
    "14.1.1", "14.2.1", "14.3.1", "14.4.1", "14.5.1", "14.6.1",
    "15.1.1", "15.2.1", "15.3.1", "15.4.1",
]

# Controls a machine must be able to evidence at least in part (mode automated or mixed).
FSI_MACHINE_MIN = {"12.1.1", "13.1.1", "14.1.1", "14.3.1", "15.4.1", "3.1.1", "5.3.1", "7.2.1"}
# Controls that are documents, contracts, training or physical: must stay manual.
FSI_MANUAL_MIN = {"1.1.1", "1.2.1", "2.1.1", "4.1.1", "4.2.1", "5.1.1", "7.1.2", "8.1.1", "10.1.1", "10.2.1",
                  "10.3.1"}

# ── robo-advisor-2017: what document 004 actually reproduces ────────────────────────────────
ROBO_CONTROLS = ["S2-05-SE-1"]
ROBO_DECLARED_FIELDS, ROBO_DECLARED_ITEMS, ROBO_OFFLINE_ITEMS = 6, 31, 27


def load(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def fsi() -> dict:
    return load(FSI)


@pytest.fixture(scope="module")
def robo() -> dict:
    return load(ROBO)


def _nonempty_str(v) -> bool:
    return isinstance(v, str) and v.strip() != ""


def structural_errors(cat: dict) -> list[str]:
    """Every structural problem of a catalog (empty list = sound)."""
    errs: list[str] = []
    if not TOP_KEYS <= set(cat) <= TOP_KEYS | OPTIONAL_TOP_KEYS:
        errs.append(f"top-level keys {sorted((set(cat) - OPTIONAL_TOP_KEYS) ^ TOP_KEYS)} differ from the schema")
    if cat.get("schema") != "evidence-agent/catalog/v1":
        errs.append("schema must be evidence-agent/catalog/v1")
    title = cat.get("title") or {}
    if not (_nonempty_str(title.get("ko")) and HANGUL.search(title.get("ko", "")) and _nonempty_str(title.get("en"))):
        errs.append("title needs a Korean ko and an en")
    if not _nonempty_str(cat.get("source")):
        errs.append("source is empty")

    def unique(kind: str, rows: list) -> set[str]:
        ids = [str(r.get("id")) for r in rows]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            errs.append(f"duplicate {kind} ids {sorted(dup)}")
        return set(ids)

    areas = cat.get("areas") or []
    fields = cat.get("fields") or []
    items = cat.get("items") or []
    controls = cat.get("controls") or []
    for kind, rows in (("area", areas), ("field", fields), ("item", items), ("control", controls)):
        if not rows:
            errs.append(f"no {kind}s")
    area_ids, field_ids, item_ids = unique("area", areas), unique("field", fields), unique("item", items)
    unique("control", controls)

    for a in areas:
        if set(a) != AREA_KEYS:
            errs.append(f"area {a.get('id')}: keys {sorted(set(a))}")
    for f in fields:
        if set(f) != FIELD_KEYS:
            errs.append(f"field {f.get('id')}: keys {sorted(set(f))}")
        if f.get("area") not in area_ids:
            errs.append(f"field {f.get('id')}: unknown area {f.get('area')}")
    for it in items:
        if not (ITEM_KEYS <= set(it) <= ITEM_KEYS | ITEM_OPTIONAL):
            errs.append(f"item {it.get('id')}: keys {sorted(set(it))}")
        if str(it.get("field")) not in field_ids:
            errs.append(f"item {it.get('id')}: unknown field {it.get('field')}")
        if "offline_applicable" in it and not isinstance(it["offline_applicable"], bool):
            errs.append(f"item {it.get('id')}: offline_applicable must be a boolean")
    used_items = set()
    for c in controls:
        cid = c.get("id")
        if set(c) != CONTROL_KEYS:
            errs.append(f"control {cid}: keys {sorted(set(c) ^ CONTROL_KEYS)} differ from the schema")
        if str(c.get("item")) not in item_ids:
            errs.append(f"control {cid}: unknown item {c.get('item')}")
        used_items.add(str(c.get("item")))
        if c.get("mode") not in MODES:
            errs.append(f"control {cid}: mode {c.get('mode')!r}")
        for k in ("criterion_ko", "criterion_en", "en"):
            if not _nonempty_str(c.get(k)):
                errs.append(f"control {cid}: empty {k}")
        for k in ("evidence_examples_ko", "references"):
            v = c.get(k)
            if not isinstance(v, list) or not all(_nonempty_str(x) for x in v):
                errs.append(f"control {cid}: {k} must be a list of non-empty strings")
    for row_kind, rows in (("area", areas), ("field", fields), ("item", items), ("control", controls)):
        for r in rows:
            ko = r.get("ko")
            if not (_nonempty_str(ko) and HANGUL.search(ko)):
                errs.append(f"{row_kind} {r.get('id')}: Korean title (ko) empty or not Korean")
    for it in item_ids - used_items:
        errs.append(f"item {it} has no detailed control")
    for f in field_ids - {str(it.get("field")) for it in items}:
        errs.append(f"field {f} has no item")
    return errs


# ── both catalogs ───────────────────────────────────────────────────────────────────────────
@pytest.mark.parametrize("path", [FSI, ROBO], ids=["fsi", "robo"])
def test_catalog_is_structurally_sound(path):
    assert structural_errors(load(path)) == []


@pytest.mark.parametrize("path", [FSI, ROBO], ids=["fsi", "robo"])
def test_project_loader_accepts_catalog(path):
    sys.path.insert(0, ROOT)
    try:
        from policies.model import load_catalog
    except ImportError as e:  # pragma: no cover - the loader is part of the repo
        pytest.skip(f"policies.model not importable: {e}")
    cat = load_catalog(path)
    assert [c["id"] for c in cat.controls] == [c["id"] for c in load(path)["controls"]]


def test_profiles_match_file_names(fsi, robo):
    assert fsi["profile"] == "fsi-openapi-2018"
    assert robo["profile"] == "robo-advisor-2017"


@pytest.mark.parametrize("mutate, expect", [
    (lambda c: c["controls"].append(copy.deepcopy(c["controls"][0])), "duplicate control ids"),
    (lambda c: c["controls"][0].__setitem__("item", "99.9"), "unknown item"),
    (lambda c: c["items"][0].__setitem__("field", "99"), "unknown field"),
    (lambda c: c["controls"][0].__setitem__("ko", " "), "Korean title"),
    (lambda c: c["controls"][0].__setitem__("mode", "auto"), "mode"),
    (lambda c: c["controls"][0].__setitem__("extra_key", 1), "differ from the schema"),
    (lambda c: c["controls"][0].__setitem__("references", "not a list"), "references must be a list"),
])
def test_checker_catches_broken_catalogs(fsi, mutate, expect):
    broken = copy.deepcopy(fsi)
    mutate(broken)
    assert any(expect in e for e in structural_errors(broken)), structural_errors(broken)


# ── fsi-openapi-2018 ────────────────────────────────────────────────────────────────────────
def test_fsi_header(fsi):
    assert fsi["title"]["ko"] == "금융권 오픈API 이용기관 자체 보안점검 가이드"
    assert fsi["answer_scale"] == "fsi"
    assert "2018.12" in fsi["source"]
    assert {a["id"]: a["ko"] for a in fsi["areas"]} == {"management": "관리", "physical": "물리", "technical": "기술"}


def test_fsi_fields_are_1_to_15_as_in_the_guide(fsi):
    assert [f["id"] for f in fsi["fields"]] == [str(i) for i in range(1, 16)]
    assert {f["id"]: (f["area"], f["ko"]) for f in fsi["fields"]} == FSI_FIELDS


def test_fsi_items_are_the_guides_table(fsi):
    assert [i["id"] for i in fsi["items"]] == list(FSI_ITEMS)
    assert {i["id"]: i["ko"] for i in fsi["items"]} == FSI_ITEMS
    for i in fsi["items"]:
        assert i["id"].split(".")[0] == i["field"], i["id"]


def test_fsi_controls_are_exactly_the_guides_detailed_items(fsi):
    ids = [c["id"] for c in fsi["controls"]]
    assert ids == FSI_CONTROLS
    assert (len(fsi["fields"]), len(fsi["items"]), len(ids)) == (15, 38, 42)


def test_fsi_ids_well_formed_and_numbered_continuously(fsi):
    for it in fsi["items"]:
        assert re.fullmatch(r"[1-9]\d?\.[1-9]", it["id"]), it["id"]
    for c in fsi["controls"]:
        assert re.fullmatch(r"[1-9]\d?\.[1-9]\.[1-9]", c["id"]), c["id"]
        assert c["id"].rsplit(".", 1)[0] == c["item"], c["id"]
    # within a field the item numbers run 1..n, within an item the control numbers run 1..n
    by_field: dict[str, list[int]] = {}
    for it in fsi["items"]:
        by_field.setdefault(it["field"], []).append(int(it["id"].split(".")[1]))
    for f, nums in by_field.items():
        assert nums == list(range(1, len(nums) + 1)), (f, nums)
    by_item: dict[str, list[int]] = {}
    for c in fsi["controls"]:
        by_item.setdefault(c["item"], []).append(int(c["id"].split(".")[2]))
    for it, nums in by_item.items():
        assert nums == list(range(1, len(nums) + 1)), (it, nums)


def test_fsi_titles_are_the_guides_sentences(fsi):
    c = {x["id"]: x for x in fsi["controls"]}
    # spot checks against the guide's wording (fully legible cells)
    assert c["1.1.1"]["ko"] == "정보보호최고책임자를 지정하고, 실무조직을 구성하고 있다."
    assert c["13.1.1"]["ko"] == "오픈API 관련 정보처리시스템에 대한 접근 권한을 안전하게 통제하고 있다."
    assert c["14.3.1"]["ko"] == "오픈API 관련 전산시스템 내 서비스 목적 외의 기능·프로그램·포트 등을 제거하고 있다."
    assert c["15.4.1"]["ko"] == "대외기관과 통신 시 보안통신이 적용되어 있다."
    # every legible detailed-item title is a "…고 있다 / …되어 있다" statement
    for x in fsi["controls"]:
        if x["id"] in ("1.2.1", "3.2.1"):  # 1.2.1 illegible (item title used); 3.2.1 ends "하여야 한다" in the guide
            continue
        assert x["ko"].endswith("있다."), x["id"]


def test_fsi_machine_evidenced_controls(fsi):
    modes = {c["id"]: c["mode"] for c in fsi["controls"]}
    machine = {cid for cid, m in modes.items() if m in ("automated", "mixed")}
    assert FSI_MACHINE_MIN <= machine, FSI_MACHINE_MIN - machine
    assert {f"14.{i}.1" for i in range(1, 7)} <= machine
    assert {f"15.{i}.1" for i in range(1, 5)} <= machine
    for cid in FSI_MANUAL_MIN:
        assert modes[cid] == "manual", cid
    # physical security is never machine-evidenced
    assert all(modes[c] == "manual" for c in modes if c.startswith("10."))


def test_fsi_modality_preserved(fsi):
    c = {x["id"]: x for x in fsi["controls"]}
    # the guide says "권고" for remote administration (prohibition recommended), "하여야 한다" for safeguards
    assert "권고" in c["14.2.1"]["criterion_ko"] and "하여야 한다" in c["14.2.1"]["criterion_ko"]
    # session timeout is a must in 13.1.1; extra authentication only "적극 권장"
    assert "세션 타임아웃" in c["13.1.1"]["criterion_ko"] and "적극 권장" in c["13.1.1"]["criterion_ko"]
    assert "1개월 이상" in c["10.1.1"]["criterion_ko"]


# ── robo-advisor-2017 ───────────────────────────────────────────────────────────────────────
def test_robo_header(robo):
    assert robo["answer_scale"] == "yes_no"
    assert "로보어드바이저" in robo["title"]["ko"]


def test_robo_controls_are_what_the_document_gives(robo):
    assert [c["id"] for c in robo["controls"]] == ROBO_CONTROLS
    item = {i["id"]: i for i in robo["items"]}["S2-05-SE"]
    assert item["ko"] == "중요PC 통제"
    c = robo["controls"][0]
    assert c["item"] == "S2-05-SE" and c["id"].startswith(c["item"] + "-")
    assert "외부통신망" in c["ko"] and "불필요한 프로그램" in c["ko"]
    assert "사유" in c["criterion_ko"]  # reason mandatory for 아니오 / N/A


def test_robo_within_declared_bounds(robo):
    assert len(robo["fields"]) <= ROBO_DECLARED_FIELDS
    assert len(robo["items"]) <= ROBO_DECLARED_ITEMS
    online_only = [i for i in robo["items"] if i.get("offline_applicable") is False]
    assert len(online_only) <= ROBO_DECLARED_ITEMS - ROBO_OFFLINE_ITEMS
    for i in robo["items"]:
        assert re.fullmatch(r"S\d-\d\d-[A-Z]{2}", i["id"]), i["id"]
        assert i["id"].split("-")[0] == i["field"], i["id"]
    for c in robo["controls"]:
        assert re.fullmatch(r"S\d-\d\d-[A-Z]{2}-[1-9]\d*", c["id"]), c["id"]

"""One report model for every renderer (HTML, XLSX, Markdown, JSON), built from a bundle on disk.

Why a model: the guide's result form (Section IV: 점검기준 A, 증빙자료 B, 점검결과 C,
점검결과 요약 D, 향후 이행계획 E) must say the same thing in every format. All the
judgement about *what* goes in each cell lives here; renderers only lay it out
and escape it. Strings are resolved for one language (``ko`` by default, as the
guide writes them; ``en`` on request); status codes stay beside their labels so
renderers can colour or filter without parsing text.

Sources, all read from the bundle except the rule texts:

- ``results.json`` — verdicts, findings, parameters, deviations, evidence index;
- ``manifest.json`` — signer fingerprint, seal time, revisions;
- the catalog and rules of the run's profile (``policies/``) — area/field/item
  titles, the guide's criteria, evidence examples, each rule's criterion and
  remediation. A rule that no longer exists is shown by id, never invented.

Nothing here trusts the bundle blindly: :func:`build_model` verifies it first
(unless told not to) and the verdict goes on the cover.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from types import SimpleNamespace
from typing import Any, Optional

from policies.engine import IMPL, NA, NETWORK_HOST, NI, PART, UNK, labels_for

from . import form

STATUS_ORDER = (IMPL, PART, NI, NA, UNK)
GUIDE_CHOICES = (IMPL, PART, NI)  # the three boxes of the guide's form (C)

UI: dict[str, dict[str, str]] = {
    "ko": {
        "title": "보안점검 결과보고서", "organisation": "기관", "scope": "점검 범위", "run": "점검 일시",
        "run_id": "실행 ID", "tool": "도구", "profile": "점검 기준(프로파일)", "vantage": "점검 위치",
        "families": "수집 범위", "inventory": "인벤토리", "totals": "점검결과 집계", "hosts": "대상 호스트",
        "not_collected": "수집 실패 호스트", "signature": "서명", "fingerprint": "서명 키 지문",
        "sealed": "서명 시각", "revision": "개정판", "verification": "번들 검증",
        "verified": "유효 (서명·해시 일치)", "not_verified": "검증하지 않음", "invalid": "무효 — 변조 또는 누락",
        "pinned": "지정 공개키로 검증", "unpinned": "번들에 기록된 공개키로 검증 (공개키를 지정해 고정하십시오)",
        "area": "보안영역", "field": "점검분야", "item": "보안점검 항목", "control": "세부 점검항목",
        "host": "호스트", "criterion": "점검기준 (A)", "evidence": "증빙자료 (B)", "result": "점검결과 (C)",
        "summary": "점검결과 요약 (D)", "plan": "향후 이행계획 (E)", "target_date": "목표시기",
        "plan_detail": "세부 이행계획", "remediation": "권고 조치", "manual": "수동 점검 필요",
        "evidence_examples": "점검 자료의 예", "references": "참고 법규", "guide_criterion": "가이드 세부설명",
        "params": "적용 기준값", "deviations": "가이드 기준 완화", "declared": "담당자 선언",
        "declared_note": "사람이 선언한 결과이며 도구가 판정하지 않음", "rule": "규칙",
        "mixed_note": "자동 점검은 아래 규칙의 범위에 한하며, 그 밖의 기준은 수동 확인이 필요함",
        "no_evidence": "증빙자료 없음", "none": "없음", "index": "항목별 점검결과", "changes": "이전 점검 대비 변경 사항",
        "waiver": "예외 승인", "advice": "권고", "all_hosts": "—", "network_host": "(네트워크 점검)",
        "status": "상태", "count": "건수", "automated": "자동 점검", "manual_items": "수동 점검",
        "total": "합계", "address": "주소", "transport": "접속 방식", "zone": "구역", "collected": "수집",
        "reason": "사유", "reason_code": "사유 구분", "yes": "예", "no": "아니오", "warnings": "주의", "file": "파일", "description": "설명",
        "items": "항목", "collected_at": "수집 시각", "by": "선언자", "at": "선언 시각", "unknown_rule": "규칙 정의 없음",
        "evidence_sheet": "증빙자료 목록", "summary_sheet": "요약", "form_sheet": "보안점검 결과",
        "attached": "담당자 첨부", "auto_part": "자동 점검 결과", "manual_part": "수동 점검 (담당자 확인)",
        "pending": "확인 대기", "attested_by": "확인자", "org_criterion": "기관 점검기준",
        "guide_reference": "가이드 원문 (참고)", "excepted": "예외 승인", "approver": "승인자", "expires": "만료일",
        "expired": "만료됨 — 미이행으로 판정", "plan_due": "목표 시기", "plan_text": "이행 방법",
        "overdue": "기한 경과", "carried": "이전 점검에서 이월", "attested_count": "담당자 확인 완료",
        "pending_count": "담당자 확인 대기", "excepted_count": "예외 승인 포함 항목", "note": "비고",
    },
    "en": {
        "title": "Security self-check report", "organisation": "Organisation", "scope": "Scope", "run": "Run time",
        "run_id": "Run ID", "tool": "Tool", "profile": "Profile", "vantage": "Vantage",
        "families": "Probe families", "inventory": "Inventory", "totals": "Results", "hosts": "Hosts",
        "not_collected": "Hosts not collected", "signature": "Signature", "fingerprint": "Signing key fingerprint",
        "sealed": "Sealed", "revision": "Revision", "verification": "Bundle verification",
        "verified": "valid (signatures and hashes match)", "not_verified": "not verified",
        "invalid": "INVALID — tampered or incomplete",
        "pinned": "checked against the given public key",
        "unpinned": "checked against the key recorded in the bundle (pin a public key)",
        "area": "Area", "field": "Field", "item": "Check item", "control": "Detailed item",
        "host": "Host", "criterion": "Criterion (A)", "evidence": "Evidence (B)", "result": "Result (C)",
        "summary": "Summary of findings (D)", "plan": "Remediation plan (E)", "target_date": "Target date",
        "plan_detail": "Plan", "remediation": "Suggested remediation", "manual": "Manual check needed",
        "evidence_examples": "Examples of evidence", "references": "References", "guide_criterion": "Guide criterion",
        "params": "Parameters", "deviations": "Loosened guide limits", "declared": "Declared by a person",
        "declared_note": "declared by a person, not judged by the tool", "rule": "Rule",
        "mixed_note": "automated checks cover only the rules below; the rest of the criterion needs a manual check",
        "no_evidence": "no evidence", "none": "none", "index": "Results per item",
        "changes": "Changes since the baseline",
        "waiver": "Waiver", "advice": "Advice", "all_hosts": "—", "network_host": "(network)",
        "status": "Status", "count": "Count", "automated": "Automated", "manual_items": "Manual",
        "total": "Total", "address": "Address", "transport": "Transport", "zone": "Zone", "collected": "Collected",
        "reason": "Reason", "reason_code": "reason code", "yes": "yes", "no": "no", "warnings": "Warnings", "file": "File",
        "description": "Description", "items": "Items", "collected_at": "Collected", "by": "Declared by",
        "at": "Declared at", "unknown_rule": "rule not defined", "evidence_sheet": "Evidence",
        "summary_sheet": "Summary", "form_sheet": "Self-check results", "attached": "attached by a person",
        "auto_part": "Automated part", "manual_part": "Manual part (a person's confirmation)",
        "pending": "pending", "attested_by": "Confirmed by", "org_criterion": "Organisation's criterion",
        "guide_reference": "Guide text (reference)", "excepted": "Approved exception", "approver": "approver",
        "expires": "expires", "expired": "expired — judged not implemented", "plan_due": "Target date",
        "plan_text": "How", "overdue": "overdue", "carried": "carried over from an earlier run",
        "attested_count": "Confirmed by a person", "pending_count": "Waiting for a person",
        "excepted_count": "Items with an approved exception", "note": "Note",
    },
}

_REF = re.compile(r"^([^_]+?-\d+)_")


@dataclass
class EvidenceRef:
    """One evidence file (B): its guide reference (자료14.3.1-1), bundle-relative path and one-line description."""

    ref: str
    file: str
    host: str
    description: str
    collected_at: str = ""
    manual: bool = False


@dataclass
class Criterion:
    """What one rule checks (A), with the parameter values used and any loosened guide limit."""

    rule: str
    title: str
    text: str
    level: str
    params: dict[str, Any]
    params_by_host: dict[str, dict[str, Any]] = field(default_factory=dict)  # only when hosts differ
    deviations: list[str] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)  # param -> where its value comes from, in words
    origins_by_host: dict[str, dict[str, str]] = field(default_factory=dict)  # only when hosts differ


@dataclass
class HostResult:
    name: str
    status: str
    label: str


@dataclass
class SummaryLine:
    """One line of D, as an auditor writes it: ``web-1: <observed values>`` with the evidence it rests on."""

    host: str
    status: str
    label: str
    kind: str  # finding | advice | waiver | declared | manual
    text: str
    refs: list[str] = field(default_factory=list)

    def line(self) -> str:
        return f"{self.host}: {self.text}" if self.host else self.text


@dataclass
class PlanRow:
    """One row of E: what failed, where, the suggested fix; date and plan left for the operator."""

    rule: str
    title: str
    hosts: list[str]
    remediation: str
    target_date: str = ""
    plan: str = ""


@dataclass
class ItemReport:
    id: str
    area: str
    field: str
    item: str
    title: str
    mode: str
    manual: bool  # no automated result for this item
    status: str
    status_label: str
    declared: Optional[dict[str, Any]]
    guide_criterion: str
    criteria: list[Criterion]
    evidence: list[EvidenceRef]
    hosts: list[HostResult]
    summary: list[SummaryLine]
    plan: list[PlanRow]
    evidence_examples: list[str]
    references: list[str]
    note: str = ""
    automated_status: Optional[str] = None  # the rules' half (None: no automated part)
    automated_label: str = ""
    manual_part: Optional[dict[str, Any]] = None  # {status, label, pending, text, by, at, reason, note, files}
    org_criterion: str = ""  # the organisation's own A (site criteria file), when given
    guide_note: str = ""  # one sentence when parts of the guide's text are illegible
    plans: list[dict[str, Any]] = field(default_factory=list)  # stored E: {due, text, by, at, overdue, carried_from}
    exceptions: list[dict[str, Any]] = field(default_factory=list)  # waivers: {rule, host, reason, approver, …}


@dataclass
class Cover:
    title: str
    organisation: str
    scope: dict[str, Any]
    inventory: str
    run_id: str
    started: str
    finished: str
    vantage: str
    families: list[str]
    tool_version: str
    profile: str
    profile_title: str
    totals: dict[str, int]
    automated_totals: dict[str, int]
    manual_count: int
    declared_count: int
    hosts: list[dict[str, Any]]
    not_collected: list[dict[str, Any]]
    fingerprint: str
    sealed: str
    revision: int
    revisions: list[dict[str, Any]]
    verification: dict[str, Any]
    deviations: list[str]
    waivers: list[dict[str, Any]]
    warnings: list[str]
    attested_count: int = 0
    pending_count: int = 0
    excepted_count: int = 0
    overdue_plans: int = 0
    criteria_source: str = ""


@dataclass
class ReportModel:
    lang: str
    labels: dict[str, str]
    status_labels: dict[str, str]
    bundle: str
    cover: Cover
    items: list[ItemReport]
    changes: Optional[dict[str, Any]] = None
    choices: tuple[str, ...] = GUIDE_CHOICES  # the boxes of C in this profile's form
    evidence_prefix: str = "자료"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["schema"] = "evidence-agent/report/v1"
        return d


def _read_json(root: str, rel: str) -> Any:
    from collectors.bundle import read_json  # regular files only, size-capped (a FIFO or link is refused)

    return read_json(root, rel)


def evidence_ref(path: str) -> str:
    """``evidence/자료14.3.1-1_web-1_x.txt`` → ``자료14.3.1-1`` (the name the guide asks for)."""
    base = path.rsplit("/", 1)[-1]
    m = _REF.match(base)
    return m.group(1) if m else base


def _pick(d: Any, lang: str) -> str:
    if isinstance(d, dict):
        return str(d.get(lang) or d.get("ko") or d.get("en") or "")
    return "" if d is None else str(d)


def _fmt_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt_value(x) for x in v)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def fmt_params(p: dict[str, Any], origins: Optional[dict[str, str]] = None) -> str:
    """``k=v`` pairs; with ``origins``, each value says where it comes from (guide, tool default, organisation)."""
    o = origins or {}
    return ", ".join(f"{k}={_fmt_value(v)}" + (f" ({o[k]})" if k in o else "") for k, v in p.items())


def _deviation_text(d: dict[str, Any], lang: str) -> str:
    lim = d.get("guide_limit") or {}
    lims = ", ".join(f"{k} {_fmt_value(v)}" for k, v in lim.items() if k != "source")
    if lim.get("source"):
        lims += f" — {'가이드' if lang == 'ko' else 'the guide'}: “{lim['source']}”"
    where = d.get("set_at") or "?"
    who = d.get("set_by") or ("미기재" if lang == "ko" else "not stated")
    host = d.get("host") or "?"
    if lang == "ko":
        return (f"{d.get('param')}={_fmt_value(d.get('value'))} — 가이드 한도({lims})보다 완화됨; "
                f"설정 위치 {where}, 설정자 {who}, 호스트 {host}")
    return (f"{d.get('param')}={_fmt_value(d.get('value'))} — looser than the guide limit ({lims}); "
            f"set at {where} by {who}, host {host}")


def form_of(catalog: Any, lang: str) -> tuple[dict[str, str], dict[str, str], tuple[str, ...], dict[str, str]]:
    """(labels, status labels, C's choices, collapse map) — from the profile's catalog ``form:`` block: each
    framework has its own column names and answer scale (robo-advisor: 심사번호/확인결과/증적자료, 적합·부적합·N/A)."""
    frm = getattr(catalog, "form", None) or {}
    labels = {**UI[lang], **((frm.get("labels") or {}).get(lang) or {})}
    st = {**labels_for(getattr(catalog, "answer_scale", None), lang), **((frm.get("scale") or {}).get(lang) or {})}
    choices = tuple(frm.get("choices") or GUIDE_CHOICES)
    return labels, st, choices, dict(frm.get("collapse") or {})


def _load_profile(name: str, policy_dirs: Optional[list[str]]) -> tuple[Any, dict[str, Any], Optional[str]]:
    """(catalog or None, rules by id, warning). A missing profile degrades the report, it does not stop it."""
    try:
        from policies.model import load_profile

        prof = load_profile(name, policy_dirs)
    except Exception as e:  # ConfigError or a catalog being edited: render from results alone
        return None, {}, f"catalog/rules of profile {name!r} could not be loaded: {e}"
    return prof.catalog, {r.id: r for r in prof.rules}, None


def _lookup(rows: Any, key: str) -> dict[str, Any]:
    for r in rows or []:
        if isinstance(r, dict) and str(r.get("id")) == key:
            return r
    return {}


def _titles(catalog: Any, ctl: dict[str, Any], cid: str, lang: str) -> tuple[str, str, str]:
    """(area, field, item) labels, e.g. ("기술", "13. 접근 통제", "13.1 중요 정보자산 …")."""
    item_id = str(ctl.get("item") or cid.rsplit(".", 1)[0])
    item = _lookup(getattr(catalog, "items", None), item_id)
    field_id = str(item.get("field") or item_id.split(".", 1)[0])
    fld = _lookup(getattr(catalog, "fields", None), field_id)
    area = _lookup(getattr(catalog, "areas", None), str(fld.get("area") or ""))
    return (_pick(area, lang) or str(fld.get("area") or ""),
            f"{field_id}. {_pick(fld, lang)}".rstrip(". ") if fld else field_id,
            f"{item_id} {_pick(item, lang)}".strip() if item else item_id)


def _host_label(name: str, lang: str) -> str:
    return UI[lang]["network_host"] if name == NETWORK_HOST else name


def link_prefix(bundle: str, out_path: Optional[str]) -> str:
    """Relative path from a report's folder to the bundle root ('' when the report sits in the bundle root):
    reports link evidence files relatively, so a report and its bundle can be moved together."""
    base = os.path.dirname(os.path.abspath(out_path)) if out_path else os.getcwd()
    rel = os.path.relpath(os.path.abspath(bundle), base).replace(os.sep, "/")
    return "" if rel == "." else rel


def build_model(bundle: str, lang: str = "ko", policy_dirs: Optional[list[str]] = None,
                pubkey: Optional[str] = None, verify: bool = True,
                criteria_file: Optional[str] = None) -> ReportModel:
    """Read a bundle directory and build the report model for ``lang`` (ko|en).

    ``verify``: check signatures and hashes first and record the verdict on the
    cover (the caller decides whether an invalid bundle may be rendered).
    """
    if lang not in UI:
        raise ValueError(f"unknown language {lang!r} (ko|en)")
    root = os.path.abspath(bundle)
    results = _read_json(root, "results.json")
    try:
        manifest = _read_json(root, "manifest.json")
    except (OSError, ValueError):
        manifest = {}
    pred = manifest.get("predicate") or {}
    run = results.get("run") or {}
    catalog, rules, warn = _load_profile(str(run.get("profile") or ""), policy_dirs)
    # Rule texts as they were when the bundle was sealed win over today's policy files.
    for rid, r in (results.get("rules") or {}).items():
        if isinstance(r, dict):
            rules[rid] = SimpleNamespace(title=r.get("title") or {}, criterion=str(r.get("criterion") or ""),
                                         criteria=r.get("criteria") or {},
                                         level=str(r.get("level") or ""), remediation=r.get("remediation") or {},
                                         params=r.get("params") or {},
                                         guide_limits=_current_limits(rules.get(rid), r.get("guide_limits")))
    labels, st, choices, _ = form_of(catalog, lang)
    warnings = [warn] if warn else []

    verification: dict[str, Any] = {"checked": False, "valid": None, "problems": [], "pinned": pubkey is not None}
    if verify:
        from collectors.verify import verify_bundle

        v = verify_bundle(root, pubkey)
        verification.update(checked=True, valid=v.valid, problems=v.problems[:50], fingerprint=v.fingerprint)

    index = {e["file"]: e for e in results.get("evidence_index") or [] if isinstance(e, dict) and e.get("file")}
    # "looser than the guide" only where the guide states the value (older bundles recorded other limits too)
    deviations = [d for d in results.get("deviations") or []
                  if d.get("param") in (getattr(rules.get(str(d.get("rule"))), "guide_limits", None) or {})]
    res_controls = {str(c.get("id")): c for c in results.get("controls") or []}
    order = [str(c.get("id")) for c in (catalog.controls if catalog else [])]
    order += [cid for cid in res_controls if cid not in order]

    criteria, criteria_src = form.load_criteria(form.criteria_paths(policy_dirs, criteria_file))
    items = [_item(cid, (catalog.control(cid) if catalog else None) or {}, res_controls.get(cid), catalog, rules,
                   index, deviations, lang, criteria.get(cid)) for cid in order]

    totals = {s: 0 for s in STATUS_ORDER}
    auto = {s: 0 for s in STATUS_ORDER}
    for it in items:
        totals[it.status] = totals.get(it.status, 0) + 1
        if it.automated_status:
            auto[it.automated_status] = auto.get(it.automated_status, 0) + 1
    hosts = results.get("hosts") or []
    cover = Cover(
        title=labels["title"], organisation=str(run.get("organisation") or ""), scope=run.get("scope") or {},
        inventory=str(run.get("inventory") or ""), run_id=str(run.get("id") or ""),
        started=str(run.get("started") or ""), finished=str(run.get("finished") or ""),
        vantage=str(run.get("vantage") or ""), families=list(run.get("only") or []),
        tool_version=str(run.get("tool_version") or ""), profile=str(run.get("profile") or ""),
        profile_title=_pick(getattr(catalog, "title", None), lang) if catalog else "",
        totals=totals, automated_totals=auto, manual_count=sum(1 for i in items if i.manual and not i.declared),
        declared_count=sum(1 for i in items if i.declared),
        hosts=hosts, not_collected=[{"name": h.get("name"), "address": h.get("address"), "code": h.get("error_code"),
                                     "error": _with_code(h.get("error"), [h["error_code"]] if h.get("error_code") else [],
                                                         labels, lang)}
                                    for h in hosts if not h.get("collected")],
        fingerprint=str((pred.get("signer") or {}).get("fingerprint") or ""), sealed=str(pred.get("sealed") or ""),
        revision=int(pred.get("revision") or 1), revisions=list(pred.get("revisions") or []),
        verification=verification, deviations=[_deviation_text(d, lang) for d in deviations],
        waivers=list(results.get("waivers") or []), warnings=warnings,
        attested_count=sum(1 for i in items if i.manual_part and not i.manual_part["pending"]),
        pending_count=sum(1 for i in items if i.manual_part and i.manual_part["pending"]),
        excepted_count=sum(1 for i in items if any(x["active"] for x in i.exceptions)),
        overdue_plans=sum(1 for i in items for p in i.plans if p.get("overdue")),
        criteria_source=criteria_src or "",
    )
    return ReportModel(lang=lang, labels=labels, status_labels=st, bundle=root, cover=cover, items=items,
                       choices=choices, evidence_prefix=str((getattr(catalog, "form", None) or {})
                                                           .get("evidence_prefix") or "자료"))


def _item(cid: str, ctl: dict[str, Any], res: Optional[dict[str, Any]], catalog: Any, rules: dict[str, Any],
          index: dict[str, dict[str, Any]], deviations: list[dict[str, Any]], lang: str,
          org: Optional[dict[str, str]] = None) -> ItemReport:
    labels, st, _, collapse = form_of(catalog, lang)
    res = res or {"id": cid, "status": UNK, "manual": True, "hosts": []}
    area, fld, item = _titles(catalog, ctl, cid, lang)
    title = form.clean_title(_pick({"ko": ctl.get("ko") or res.get("title"),
                                    "en": ctl.get("en") or res.get("title_en")}, lang), lang)
    host_recs = [h for h in res.get("hosts") or [] if isinstance(h, dict)]
    manual = bool(res.get("manual")) or not host_recs
    declared = res.get("manual_answer") if isinstance(res.get("manual_answer"), dict) else None
    mode = str(ctl.get("mode") or res.get("mode") or "manual")
    # C: the automated half (a waived failure still a failure) and the person's half, combined by the guide
    auto = form.automated_status(host_recs)
    auto = collapse.get(auto, auto) if auto else auto
    attested = str(declared.get("status")) if declared else None
    status = form.combine(mode, auto, attested)
    status = collapse.get(status, status)  # a scale without "partly" answers "no" unless wholly met
    manual_part = None
    if form.has_manual_part(mode, auto):
        mst = attested or UNK
        manual_part = {"status": mst, "label": st.get(mst, "?") if attested else labels["pending"],
                       "pending": attested is None,
                       "text": "" if attested else form.pending_text(auto, lang, st),
                       **{k: (declared or {}).get(k) for k in ("by", "at", "reason", "note", "files", "revision")}}

    # A: the rules' criteria and parameters actually used, per host when they differ
    criteria: list[Criterion] = []
    by_rule: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for h in host_recs:
        for f in h.get("findings") or []:
            by_rule.setdefault(str(f.get("rule")), []).append((str(h.get("name")), f))
    for rid, fs in by_rule.items():
        r = rules.get(rid)
        params_seen = {name: f.get("params") or {} for name, f in fs}
        distinct = {json.dumps(p, sort_keys=True) for p in params_seen.values()}
        criteria.append(Criterion(
            rule=rid, title=_pick(r.title, lang) if r else labels["unknown_rule"],
            text=form.elide((getattr(r, f"criterion_{lang}", None) or (getattr(r, "criteria", None) or {}).get(cid)
                             or r.criterion) if r else "", lang),
            level=(r.level if r else str(fs[0][1].get("level") or "")),
            params=next(iter(params_seen.values()), {}) if len(distinct) <= 1 else {},
            params_by_host={_host_label(n, lang): p for n, p in params_seen.items()} if len(distinct) > 1 else {},
            deviations=[_deviation_text(d, lang) for d in deviations if d.get("rule") == rid],
            origins=_origins(r, [f.get("params") or {} for _, f in fs], lang),
            origins_by_host={_host_label(n, lang): _origins(r, [p], lang) for n, p in params_seen.items()}
            if len(distinct) > 1 else {}))

    # B: files the findings rest on, plus files collected or attached for this item
    files: list[str] = []
    for _, f in [x for fs in by_rule.values() for x in fs]:
        files += [e for e in f.get("evidence") or [] if e not in files]
    for h in host_recs:
        files += [e for e in h.get("evidence") or [] if e not in files]
    for rel, e in index.items():
        if cid in (e.get("items") or []) and rel not in files:
            files.append(rel)
    evidence = []
    for rel in files:
        e = index.get(rel, {})
        desc = _pick({"ko": e.get("description_ko"), "en": e.get("description_en")}, lang) or str(e.get("label") or "")
        host = labels["attached"] if e.get("manual") else _host_label(str(e.get("host") or ""), lang)
        evidence.append(EvidenceRef(ref=evidence_ref(rel), file=rel, host=host,
                                    description=desc, collected_at=str(e.get("collected_at") or ""),
                                    manual=bool(e.get("manual"))))
    evidence.sort(key=lambda x: _ref_key(x.ref))

    # C and D
    hosts = []
    for h in host_recs:
        hst = form.automated_status([h]) or UNK
        hst = collapse.get(hst, hst)
        hosts.append(HostResult(_host_label(str(h.get("name")), lang), hst, st.get(hst, "?")))
    summary: list[SummaryLine] = []
    failing: dict[str, list[str]] = {}
    exceptions: list[dict[str, Any]] = []
    for h in host_recs:
        hn = _host_label(str(h.get("name")), lang)
        for f in h.get("findings") or []:
            fst = str(f.get("status") or UNK)
            refs = [evidence_ref(e) for e in f.get("evidence") or []]
            w = f.get("waiver")
            if isinstance(w, dict):
                # an approved exception is shown as what it is, never as 해당없음 and never as 이행
                exceptions.append({"rule": f.get("rule"), "host": hn, "reason": w.get("reason"),
                                   "approver": w.get("approver"), "expires": w.get("expires"),
                                   "active": bool(w.get("active"))})
                txt = (f"{_words(_pick(f.get('detail'), lang), lang)} — {labels['excepted']}: {w.get('reason')} "
                       f"({labels['approver']} {w.get('approver')}, {labels['expires']} {w.get('expires')}"
                       + ("" if w.get("active") else f", {labels['expired']}") + ")")
                summary.append(SummaryLine(hn, NI, labels["excepted"] if w.get("active") else
                                           f"{labels['excepted']} ({labels['expired']})", "waiver", txt, refs))
            else:
                summary.append(SummaryLine(hn, fst, st.get(fst, "?"), "finding",
                                           _with_code(_words(_pick(f.get("detail"), lang), lang),
                                                      f.get("reason_codes") if fst == UNK else None, labels, lang),
                                           refs))
            for a in f.get("advice") or []:
                summary.append(SummaryLine(hn, fst, labels["advice"], "advice", _pick(a, lang)))
            if fst in (NI, PART) and not f.get("excepted"):
                failing.setdefault(str(f.get("rule")), [])
                if hn not in failing[str(f.get("rule"))]:
                    failing[str(f.get("rule"))].append(hn)
    note = ""
    if declared:
        dst = str(declared.get("status") or UNK)
        why = "; ".join(x for x in (declared.get("reason"), declared.get("note")) if x)
        txt = f"{why} ({labels['attested_by']} {declared.get('by')}, {declared.get('at')})".strip()
        summary.insert(0, SummaryLine("", dst, st.get(dst, "?"), "declared", txt,
                                      [evidence_ref(x) for x in declared.get("files") or []]))
    elif manual_part:
        summary.insert(0, SummaryLine("", UNK, labels["manual"] if auto is None else labels["pending"], "manual",
                                      manual_part["text"]))
    if not manual and mode == "mixed":
        note = labels["mixed_note"]
    plans = []
    for p in res.get("plans") or []:
        if isinstance(p, dict):
            plans.append({**p, "overdue": form.plan_overdue(p) and status != IMPL})

    # E: one row per failing rule; a failing declaration gets an empty row for the operator
    plan = []
    for rid, hs in failing.items():
        r = rules.get(rid)
        plan.append(PlanRow(rid, _pick(r.title, lang) if r else labels["unknown_rule"], hs,
                            _pick(r.remediation, lang) if r else ""))
    if declared and str(declared.get("status")) in (NI, PART):
        plan.append(PlanRow("", labels["declared"], [], ""))

    # A: the organisation's own text first; the guide's text, cleaned of illegible fragments, as a reference
    guide_text, lost = form.clean_block(str(ctl.get(f"criterion_{lang}") or ctl.get("criterion_ko") or ""), lang)
    examples, lost_ex = form.clean_list([str(x) for x in (ctl.get(f"evidence_examples_{lang}")
                                                          or ctl.get("evidence_examples_ko") or [])])
    refs_, lost_refs = form.clean_list([str(x) for x in ctl.get("references") or []])
    org_text = _pick(org, lang) if org else ""
    return ItemReport(
        id=cid, area=area, field=fld, item=item, title=title, mode=mode,
        manual=manual, status=status, status_label=st.get(status, "?"), declared=declared,
        guide_criterion=guide_text.strip(), criteria=criteria, evidence=evidence, hosts=hosts, summary=summary,
        plan=plan, evidence_examples=examples, references=refs_, note=note,
        automated_status=auto, automated_label=st.get(auto, "?") if auto else "", manual_part=manual_part,
        org_criterion=org_text, guide_note=form.ILLEGIBLE[lang] if (lost or lost_ex or lost_refs) else "",
        plans=plans, exceptions=exceptions)


def _current_limits(current: Any, recorded: Any) -> dict[str, Any]:
    """The guide limits as recorded in the bundle; a limit without the guide's sentence (older bundles) takes the
    sentence from today's rule, or is not shown as the guide's at all."""
    now = getattr(current, "guide_limits", None) or {}
    out = {}
    for k, lim in (recorded or {}).items():
        if isinstance(lim, dict):
            src = lim.get("source") or (now.get(k) or {}).get("source")
            if src:
                out[k] = {**lim, "source": src}
    return out


def _origins(rule: Any, seen: list[dict[str, Any]], lang: str) -> dict[str, str]:
    """Each parameter labelled by origin: the guide's value (with its sentence), the tool's default, or the
    organisation's own value. Only a value the guide states is called the guide's."""
    ko = lang == "ko"
    defaults = getattr(rule, "params", None) or {}
    limits = getattr(rule, "guide_limits", None) or {}
    out = {}
    for k in sorted({k for p in seen for k in p}):
        values = {json.dumps(p.get(k), sort_keys=True) for p in seen if k in p}
        own = any(v != json.dumps(defaults.get(k), sort_keys=True) for v in values) if k in defaults else True
        lim = limits.get(k) or {}
        guide = ""
        if lim.get("source"):
            bound = ", ".join(f"{'최소' if ko else 'min'} {_fmt_value(lim[x])}" if x == "min"
                              else f"{'최대' if ko else 'max'} {_fmt_value(lim[x])}" for x in ("min", "max") if x in lim)
            guide = (f"가이드 기준 {bound} — “{lim['source']}”" if ko else f"guide: {bound} — “{lim['source']}”")
        base = ("기관 설정값" if ko else "organisation's own value") if own else ("도구 기본값" if ko else "tool default")
        if not guide and all(isinstance(p.get(k), (int, float)) and not isinstance(p.get(k), bool)
                             for p in seen if k in p):
            base += " (가이드에 수치 없음)" if ko else " (the guide states no number)"
        out[k] = base + (f"; {guide}" if guide else "")
    return out


#: probes.base.ReasonCode in the report's words: why evidence is missing, from the closed set the collector sets
REASON_CODE_WORDS = {
    "unreachable": {"ko": "접속 불가", "en": "unreachable"},
    "auth_failed": {"ko": "로그인 실패", "en": "login failed"},
    "permission": {"ko": "권한 부족", "en": "needs privilege"},
    "tool_missing": {"ko": "도구·파일 없음", "en": "tool or file missing"},
    "timed_out": {"ko": "시간 초과", "en": "timed out"},
    "truncated": {"ko": "출력 잘림", "en": "output cut off"},
    "parse_error": {"ko": "해석 불가", "en": "output not understood"},
    "not_applicable": {"ko": "수집 대상 아님", "en": "nothing to collect"},
    "other": {"ko": "기타", "en": "other"},
}


def _with_code(text: Optional[str], codes: Optional[list[str]], labels: dict[str, str], lang: str) -> str:
    """``text (reason code: timed out)``: the code the engine read from the facts, said in the report's language."""
    words = [REASON_CODE_WORDS.get(c, {}).get(lang, c) for c in codes or []]
    if not words:
        return text or ""
    return f"{text or ''} ({labels['reason_code']}: {', '.join(words)})"


_NA_WORDS = [
    (re.compile(r"^applicability condition not met: .*", re.S),
     {"ko": "이 대상에는 해당하지 않음 (규칙의 적용 조건에 맞지 않음)",
      "en": "does not apply here (the rule's conditions for applying are not met)"}),
    (re.compile(r"^applicability error: .*", re.S),
     {"ko": "적용 여부를 판단할 수 없음 (규칙 조건 평가 실패)", "en": "applicability could not be decided"}),
    (re.compile(r"^applies to roles (.*) only$"), {"ko": "역할 {0} 대상에만 적용", "en": "applies to roles {0} only"}),
    (re.compile(r"^does not apply to roles (.*)$"), {"ko": "역할 {0} 에는 적용하지 않음",
                                                      "en": "does not apply to roles {0}"}),
    (re.compile(r"^applies to zones (.*) only$"), {"ko": "구역 {0} 에만 적용", "en": "applies to zones {0} only"}),
    (re.compile(r"^applies to transports (.*) only$"), {"ko": "접속 방식 {0} 에만 적용",
                                                         "en": "applies to transports {0} only"}),
    (re.compile(r"^applies to OS families (.*) only$"), {"ko": "운영체제 {0} 에만 적용",
                                                          "en": "applies to OS families {0} only"}),
]
_RAW_EXPR = re.compile(r"[!=<>]=\s*`|`\s*[!=<>]=|&&|\|\||\[\?")
_IN_TEXT = [  # the engine's English reasons inside a Korean detail, said in Korean
    (re.compile(r"no network scan from the '([\w-]+)' vantage(?: in this run)?(?: \(scanned from: ([^)]*)\))?; run "
                r"`([^`]*)` there and `merge` the bundles"),
     {"ko": lambda m: (f"'{m.group(1)}' 위치에서 한 네트워크 스캔이 없음"
                       + (f" (스캔 위치: {m.group(2)})" if m.group(2) else "")
                       + f"; 그 위치에서 “{m.group(3)}”을 실행하고 번들을 merge 하십시오"),
      "en": lambda m: (f"no network scan from the '{m.group(1)}' vantage"
                       + (f" (scanned from: {m.group(2)})" if m.group(2) else "")
                       + f"; run “{m.group(3)}” there and merge the bundles")}),
    (re.compile(r"([\w.]+): not collected \(no such fact in this run\)"),
     {"ko": lambda m: f"{m.group(1)}: 이번 실행에서 수집되지 않음", "en": lambda m: m.group(0)}),
]


def _words(detail: str, lang: str) -> str:
    """D in words: the engine's technical reasons (a rule's raw condition) said as an auditor reads them."""
    for pat, words in _NA_WORDS:
        m = pat.match(detail or "")
        if m:
            return words[lang].format(*m.groups())
    text = detail or ""
    for pat, fn in _IN_TEXT:
        text = pat.sub(fn[lang], text)
    if _RAW_EXPR.search(text):
        cut = _RAW_EXPR.split(text)[0].rstrip(" :—-(")
        cut = re.sub(r"\s*\S*$", "", cut) if cut.endswith(("`", "'")) else cut
        return cut or ("규칙 조건에 따른 판정" if lang == "ko" else "judged by the rule's condition")
    return re.sub(r"`([^`]*)`", r"“\1”", text)


def _ref_key(ref: str) -> tuple[Any, ...]:
    m = re.match(r"^\D*?([0-9A-Za-z.\-]+)-(\d+)$", ref)
    if not m:
        return ((9999,), 0, ref)
    return (tuple(int(x) if x.isdigit() else 0 for x in re.split(r"[.\-]", m.group(1))), int(m.group(2)), ref)


def status_choices(status: str, choices: tuple[str, ...] = GUIDE_CHOICES) -> list[tuple[str, bool]]:
    """The form's C boxes (the guide's 이행/부분이행/미이행), plus 해당없음/점검불가 when that is the result."""
    out = [(s, s == status) for s in choices]
    if status not in choices:
        out.append((status, True))
    return out

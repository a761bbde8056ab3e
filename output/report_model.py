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
        "reason": "사유", "yes": "예", "no": "아니오", "warnings": "주의", "file": "파일", "description": "설명",
        "items": "항목", "collected_at": "수집 시각", "by": "선언자", "at": "선언 시각", "unknown_rule": "규칙 정의 없음",
        "evidence_sheet": "증빙자료 목록", "summary_sheet": "요약", "form_sheet": "보안점검 결과",
        "attached": "담당자 첨부",
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
        "reason": "Reason", "yes": "yes", "no": "no", "warnings": "Warnings", "file": "File",
        "description": "Description", "items": "Items", "collected_at": "Collected", "by": "Declared by",
        "at": "Declared at", "unknown_rule": "rule not defined", "evidence_sheet": "Evidence",
        "summary_sheet": "Summary", "form_sheet": "Self-check results", "attached": "attached by a person",
    },
}

_REF = re.compile(r"^(자료[0-9.]+-\d+)")


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


@dataclass
class ReportModel:
    lang: str
    labels: dict[str, str]
    status_labels: dict[str, str]
    bundle: str
    cover: Cover
    items: list[ItemReport]
    changes: Optional[dict[str, Any]] = None

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


def fmt_params(p: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt_value(v)}" for k, v in p.items())


def _deviation_text(d: dict[str, Any], lang: str) -> str:
    lim = d.get("guide_limit") or {}
    lims = ", ".join(f"{k} {_fmt_value(v)}" for k, v in lim.items())
    where = d.get("set_at") or "?"
    who = d.get("set_by") or ("미기재" if lang == "ko" else "not stated")
    host = d.get("host") or "?"
    if lang == "ko":
        return (f"{d.get('param')}={_fmt_value(d.get('value'))} — 가이드 한도({lims})보다 완화됨; "
                f"설정 위치 {where}, 설정자 {who}, 호스트 {host}")
    return (f"{d.get('param')}={_fmt_value(d.get('value'))} — looser than the guide limit ({lims}); "
            f"set at {where} by {who}, host {host}")


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
                pubkey: Optional[str] = None, verify: bool = True) -> ReportModel:
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
                                         level=str(r.get("level") or ""), remediation=r.get("remediation") or {})
    labels, st = UI[lang], labels_for(getattr(catalog, "answer_scale", None), lang)
    warnings = [warn] if warn else []

    verification: dict[str, Any] = {"checked": False, "valid": None, "problems": [], "pinned": pubkey is not None}
    if verify:
        from collectors.verify import verify_bundle

        v = verify_bundle(root, pubkey)
        verification.update(checked=True, valid=v.valid, problems=v.problems[:50], fingerprint=v.fingerprint)

    index = {e["file"]: e for e in results.get("evidence_index") or [] if isinstance(e, dict) and e.get("file")}
    deviations = results.get("deviations") or []
    res_controls = {str(c.get("id")): c for c in results.get("controls") or []}
    order = [str(c.get("id")) for c in (catalog.controls if catalog else [])]
    order += [cid for cid in res_controls if cid not in order]

    items = [_item(cid, (catalog.control(cid) if catalog else None) or {}, res_controls.get(cid), catalog, rules,
                   index, deviations, lang) for cid in order]

    totals = {s: 0 for s in STATUS_ORDER}
    auto = {s: 0 for s in STATUS_ORDER}
    for it in items:
        totals[it.status] = totals.get(it.status, 0) + 1
        if not it.manual:
            auto[it.status] = auto.get(it.status, 0) + 1
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
        hosts=hosts, not_collected=[{"name": h.get("name"), "address": h.get("address"), "error": h.get("error")}
                                    for h in hosts if not h.get("collected")],
        fingerprint=str((pred.get("signer") or {}).get("fingerprint") or ""), sealed=str(pred.get("sealed") or ""),
        revision=int(pred.get("revision") or 1), revisions=list(pred.get("revisions") or []),
        verification=verification, deviations=[_deviation_text(d, lang) for d in deviations],
        waivers=list(results.get("waivers") or []), warnings=warnings,
    )
    return ReportModel(lang=lang, labels=labels, status_labels=st, bundle=root, cover=cover, items=items)


def _item(cid: str, ctl: dict[str, Any], res: Optional[dict[str, Any]], catalog: Any, rules: dict[str, Any],
          index: dict[str, dict[str, Any]], deviations: list[dict[str, Any]], lang: str) -> ItemReport:
    labels, st = UI[lang], labels_for(getattr(catalog, "answer_scale", None), lang)
    res = res or {"id": cid, "status": UNK, "manual": True, "hosts": []}
    area, fld, item = _titles(catalog, ctl, cid, lang)
    title = _pick({"ko": ctl.get("ko") or res.get("title"), "en": ctl.get("en") or res.get("title_en")}, lang)
    status = str(res.get("status") or UNK)
    host_recs = [h for h in res.get("hosts") or [] if isinstance(h, dict)]
    manual = bool(res.get("manual")) or not host_recs
    declared = res.get("manual_answer") if isinstance(res.get("manual_answer"), dict) else None

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
            text=(getattr(r, f"criterion_{lang}", None) or (getattr(r, "criteria", None) or {}).get(cid)
                  or r.criterion) if r else "",
            level=(r.level if r else str(fs[0][1].get("level") or "")),
            params=next(iter(params_seen.values()), {}) if len(distinct) <= 1 else {},
            params_by_host={_host_label(n, lang): p for n, p in params_seen.items()} if len(distinct) > 1 else {},
            deviations=[_deviation_text(d, lang) for d in deviations if d.get("rule") == rid]))

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
    hosts = [HostResult(_host_label(str(h.get("name")), lang), str(h.get("status") or UNK),
                        st.get(str(h.get("status") or UNK), "?")) for h in host_recs]
    summary: list[SummaryLine] = []
    failing: dict[str, list[str]] = {}
    for h in host_recs:
        hn = _host_label(str(h.get("name")), lang)
        for f in h.get("findings") or []:
            fst = str(f.get("status") or UNK)
            refs = [evidence_ref(e) for e in f.get("evidence") or []]
            summary.append(SummaryLine(hn, fst, st.get(fst, "?"), "finding", _pick(f.get("detail"), lang), refs))
            for a in f.get("advice") or []:
                summary.append(SummaryLine(hn, fst, labels["advice"], "advice", _pick(a, lang)))
            w = f.get("waiver")
            if isinstance(w, dict):
                txt = (f"{w.get('reason')} ({w.get('approver')}, ~{w.get('expires')}"
                       + ("" if w.get("active") else (", 만료됨" if lang == "ko" else ", expired")) + ")")
                summary.append(SummaryLine(hn, fst, labels["waiver"], "waiver", txt))
            if fst in (NI, PART) and not f.get("excepted"):
                failing.setdefault(str(f.get("rule")), [])
                if hn not in failing[str(f.get("rule"))]:
                    failing[str(f.get("rule"))].append(hn)
    note = ""
    if declared:
        dst = str(declared.get("status") or UNK)
        txt = f"{declared.get('reason') or ''} ({labels['by']} {declared.get('by')}, {declared.get('at')})".strip()
        summary.insert(0, SummaryLine("", dst, st.get(dst, "?"), "declared", txt,
                                      [evidence_ref(x) for x in declared.get("files") or []]))
    elif manual:
        summary.append(SummaryLine("", UNK, labels["manual"], "manual", _pick(res.get("detail"), lang)
                                   or labels["manual"]))
    elif str(ctl.get("mode") or res.get("mode")) == "mixed":
        note = labels["mixed_note"]

    # E: one row per failing rule; a failing declaration gets an empty row for the operator
    plan = []
    for rid, hs in failing.items():
        r = rules.get(rid)
        plan.append(PlanRow(rid, _pick(r.title, lang) if r else labels["unknown_rule"], hs,
                            _pick(r.remediation, lang) if r else ""))
    if declared and str(declared.get("status")) in (NI, PART):
        plan.append(PlanRow("", labels["declared"], [], ""))

    return ItemReport(
        id=cid, area=area, field=fld, item=item, title=title, mode=str(ctl.get("mode") or res.get("mode") or "manual"),
        manual=manual, status=status, status_label=st.get(status, "?"), declared=declared,
        guide_criterion=str(ctl.get(f"criterion_{lang}") or ctl.get("criterion_ko") or "").strip(),
        criteria=criteria, evidence=evidence, hosts=hosts, summary=summary, plan=plan,
        evidence_examples=[str(x) for x in (ctl.get(f"evidence_examples_{lang}") or ctl.get("evidence_examples_ko")
                                            or [])],
        references=[str(x) for x in ctl.get("references") or []], note=note)


def _ref_key(ref: str) -> tuple[Any, ...]:
    m = re.match(r"자료([0-9.]+)-(\d+)", ref)
    if not m:
        return ((9999,), 0, ref)
    return (tuple(int(x) for x in m.group(1).split(".") if x.isdigit()), int(m.group(2)), ref)


def status_choices(status: str) -> list[tuple[str, bool]]:
    """The guide's C boxes (이행/부분이행/미이행), plus 해당없음/점검불가 when that is the result."""
    out = [(s, s == status) for s in GUIDE_CHOICES]
    if status not in GUIDE_CHOICES:
        out.append((status, True))
    return out

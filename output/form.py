"""The self-check form's own rules: the two halves of an item, the organisation's criteria, plans, clean guide text.

Why a module of its own: the guide's Section IV form is answered by a machine
(the rules) *and* by people (policies, approvals, designated terminals). Its
C column is one answer, by the guide's definition: all requirements met →
이행, some → 부분이행, none → 미이행. So the automated half and a person's
attestation of the manual half are combined here, once, for every renderer;
the automated verdict itself is never changed by an attestation.

Also here: the organisation's own criteria (A) read from a site file, the
plans (E) stored in the bundle, and the guide's OCR'd text made presentable —
an illegible passage is said in one clean sentence, never shown as fragments.
"""
from __future__ import annotations

import datetime as dt
import os
import re
from typing import Any, Iterable, Optional

from policies.engine import IMPL, NA, NI, PART, UNK, aggregate

#: What marks the catalog's OCR damage (see the catalog's header: "…" = missing/illegible text).
_DAMAGE = re.compile(r"…|\.\.\.|판독\s*불가|판독불가|OCR|illegible", re.I)
ILLEGIBLE = {
    "ko": "가이드 원문의 이 대목은 사용한 사본에서 읽을 수 없어 싣지 않았습니다(가이드 원문 참조).",
    "en": "Part of the guide's text cannot be read in the copy used and is left out (see the guide itself).",
}
_TITLE_GAP = {"ko": "(원문 누락)", "en": "(text missing)"}


def damaged(text: str) -> bool:
    return bool(_DAMAGE.search(text or ""))


def clean_block(text: str, lang: str) -> tuple[str, bool]:
    """The guide's multi-line text without its illegible lines: ``(clean text, something was left out)``."""
    kept, lost = [], False
    for line in (text or "").splitlines():
        if damaged(line):
            lost = True
            continue
        kept.append(line.rstrip())
    return "\n".join(kept).strip("\n"), lost


def clean_list(rows: Iterable[str]) -> tuple[list[str], bool]:
    """List entries without the illegible ones: ``(kept, something was left out)``."""
    rows = [str(r) for r in rows]
    kept = [r for r in rows if not damaged(r)]
    return kept, len(kept) != len(rows)


def clean_title(text: str, lang: str) -> str:
    """A title keeps its readable words; each gap becomes one marker, notes about the OCR are dropped."""
    t = re.sub(r"\s*\((?:title )?partly illegible\)", "", text or "", flags=re.I)
    t = re.sub(r"\s*(?:…|\.\.\.)+\s*", f" {_TITLE_GAP[lang]} ", t).strip()
    return re.sub(r"\s{2,}", " ", t)


def elide(text: str, lang: str) -> str:
    """A rule's quotation of the guide: a cut at either end is simply dropped, a cut inside says (중략)."""
    t = re.sub(r"^\s*(?:…|\.\.\.)+\s*|\s*(?:…|\.\.\.)+\s*$", "", text or "")
    t = re.sub(r"\s*(?:…|\.\.\.)+\s*", " (중략) " if lang == "ko" else " (omitted) ", t)
    return re.sub(r"\(\s+\((중략|omitted)\)\s*", r"((\1) ", t)


# -- the two halves -----------------------------------------------------------------------------------------

def automated_status(host_recs: list[dict[str, Any]]) -> Optional[str]:
    """The automated half, recomputed from findings so that an approved exception (a waived failure) still
    counts as a failure: a waiver explains a gap, it never turns it into 이행. None: no automated part."""
    if not host_recs:
        return None
    per_host = []
    for h in host_recs:
        fs = h.get("findings") or []
        if fs:
            per_host.append(aggregate(NI if f.get("excepted") else str(f.get("status") or UNK) for f in fs))
        else:
            per_host.append(str(h.get("status") or UNK))
    return aggregate(per_host)


def has_manual_part(mode: str, automated: Optional[str]) -> bool:
    return automated is None or mode in ("manual", "mixed")


def combine(mode: str, automated: Optional[str], attested: Optional[str]) -> str:
    """C of the guide's form from both halves. An unattested manual half is unknown (so an item is never 이행
    from host checks alone), yet a known failure of either half still shows through."""
    if not has_manual_part(mode, automated):
        return automated or UNK
    manual = attested or UNK
    if automated is None:
        return manual
    return aggregate([automated, manual])


def pending_text(automated: Optional[str], lang: str, labels: dict[str, str]) -> str:
    """The plain sentence for an item waiting for a person."""
    if automated is None:
        return ("담당자의 확인(증빙 첨부와 결과 기재)이 필요합니다." if lang == "ko"
                else "A person must answer this item (attach evidence and state whether it is met).")
    a = labels.get(automated, automated)
    if lang == "ko":
        return f"자동 점검은 완료({a})되었고, 수동 점검 사항은 담당자 확인 대기 중입니다."
    return f"The automated part is done ({a}); the manual part is waiting for a person's confirmation."


# -- the organisation's criteria (A) ------------------------------------------------------------------------

CRITERIA_FILE = "criteria.yaml"


def load_criteria(paths: Iterable[str]) -> tuple[dict[str, dict[str, str]], Optional[str]]:
    """``{item: {ko, en}}`` from ``criteria.yaml`` files (later files win) and the file name(s) used.

    Format (version 1)::

        version: 1
        organisation: Example Fintech        # optional
        criteria:
          "13.1.1": {ko: "…", en: "…"}        # one text per item; an empty text keeps the guide's
    """
    from common.yamlsrc import Node, load

    out: dict[str, dict[str, str]] = {}
    used = []
    for p in paths:
        if not os.path.isfile(p):
            continue
        root = Node(p, load(p), "", 1).mapping({"version", "organisation", "profile", "criteria"}, ("version",))
        if root.get("version").value != 1:
            raise root.get("version").error("expected version: 1")
        crit = root.get("criteria", {})
        for item, node in crit.items():
            v = node.value
            if isinstance(v, str):
                v = {"ko": v}
            elif isinstance(v, dict):
                node.mapping({"ko", "en"})
            elif v is not None:
                raise node.error("expected {ko: text, en: text}")
            texts = {k: str(x).strip() for k, x in (v or {}).items() if x is not None and str(x).strip()}
            if texts:
                out[item] = texts
        used.append(p)
    return out, (", ".join(os.path.basename(u) for u in used) or None)


def criteria_paths(policy_dirs: Optional[list[str]], criteria_file: Optional[str]) -> list[str]:
    paths = [os.path.join(d, CRITERIA_FILE) for d in policy_dirs or []]
    if criteria_file:
        paths.append(criteria_file)
    return paths


def criteria_template(catalog: Any) -> str:
    """A starting ``criteria.yaml`` for every item of a catalog: the guide's readable text as a first draft,
    for the organisation to rewrite as its own standard."""
    import yaml

    crit: dict[str, dict[str, str]] = {}
    for c in catalog.controls:
        ko, _ = clean_block(str(c.get("criterion_ko") or ""), "ko")
        en, _ = clean_block(str(c.get("criterion_en") or ""), "en")
        crit[str(c["id"])] = {"ko": ko, "en": en}
    head = (f"# Organisation criteria (점검기준 A) for profile {catalog.profile}.\n"
            "# Rewrite each text as your own standard; the report shows it in column A and keeps the guide's\n"
            "# text as a reference. An empty text keeps the guide's. Put this file in --policy-dir or pass\n"
            "# `report --criteria FILE`.\n")
    class Dumper(yaml.SafeDumper):
        pass

    def text(d: Any, v: str) -> Any:  # multi-line texts as literal blocks: readable and editable
        return d.represent_scalar("tag:yaml.org,2002:str", v, style="|" if "\n" in v else None if v in ("ko", "en") else '"')

    Dumper.add_representer(str, text)
    body = yaml.dump({"version": 1, "profile": catalog.profile, "criteria": crit}, Dumper=Dumper,
                     allow_unicode=True, sort_keys=False, width=1000)
    body = body.replace('"version": 1', "version: 1").replace('"profile":', "profile:").replace('"criteria":',
                                                                                               "criteria:")
    return head + body


# -- plans (E) -----------------------------------------------------------------------------------------------

def plan_overdue(plan: dict[str, Any], today: Optional[dt.date] = None) -> bool:
    try:
        due = dt.date.fromisoformat(str(plan.get("due"))[:10])
    except ValueError:
        return False
    return due < (today or dt.date.today())


def carry_plans(old_results: dict[str, Any], controls: list[dict[str, Any]], catalog_modes: dict[str, str],
                old_run: Optional[str] = None) -> int:
    """Copy the open plans of an earlier run onto the items still not 이행 in this one. Returns how many."""
    old = {str(c.get("id")): c for c in old_results.get("controls") or []}
    n = 0
    for c in controls:
        plans = (old.get(str(c.get("id"))) or {}).get("plans") or []
        if not plans:
            continue
        auto = automated_status(c.get("hosts") or [])
        mode = catalog_modes.get(str(c.get("id")), str(c.get("mode") or "manual"))
        if combine(mode, auto, None) == IMPL:
            continue
        kept = []
        for p in plans:
            q = {k: v for k, v in p.items() if k != "revision"}
            q.setdefault("carried_from", old_run)
            kept.append(q)
        c["plans"] = kept
        n += len(kept)
    return n


__all__ = ["IMPL", "PART", "NI", "NA", "UNK", "combine", "automated_status", "clean_block", "clean_list",
           "clean_title", "load_criteria", "criteria_template", "carry_plans", "plan_overdue", "pending_text"]

"""Terminal summary of a run: one line per control that has automated results, then the totals.

Korean labels by default (as the guide writes them), English with ``lang="en"``.
"""
from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Any

from policies.engine import LABELS

from .safe_text import one_line


def _width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def _pad(s: str, w: int) -> str:
    return s + " " * max(0, w - _width(s))


def _cut(s: str, w: int) -> str:
    out, n = "", 0
    for ch in s:
        cw = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        if n + cw > w - 1:
            return out + "…"
        out += ch
        n += cw
    return out


def render_summary(results: dict[str, Any], lang: str = "ko", show_manual: bool = False) -> str:
    labels = LABELS[lang]
    lines = []
    head = (("항목", "점검결과", "이행/대상", "세부 점검항목") if lang == "ko"
            else ("Item", "Result", "ok/hosts", "Detailed item"))
    lines.append(f"{_pad(head[0], 8)} {_pad(head[1], 26)} {_pad(head[2], 10)} {head[3]}")
    lines.append("-" * 80)
    for c in results["controls"]:
        if c.get("manual") and not show_manual:
            continue
        title = c.get("title") if lang == "ko" else (c.get("title_en") or c.get("title"))
        hosts = c.get("hosts") or []
        st = labels[c["status"]]
        if c.get("mode") == "mixed" and not c.get("manual_answer"):  # the automated half only, so far
            st += " (수동 확인 대기)" if lang == "ko" else " (manual pending)"
        applicable = [h for h in hosts if h["status"] != "not_applicable"]
        ok = f"{sum(1 for h in applicable if h['status'] == 'implemented')}/{len(applicable)}" if applicable else "-"
        lines.append(f"{_pad(c['id'], 8)} {_pad(st, 26)} {_pad(ok, 10)} {_cut(title or '', 32)}")
    lines.append("-" * 80)
    manual = sum(1 for c in results["controls"] if c.get("manual"))
    parts = [f"{labels[k]} {v}" for k, v in sorted(results["summary"].get("automated_controls", {}).items())]
    lines.append(("자동 점검: " if lang == "ko" else "Automated: ") + ", ".join(parts)
                 + (f"; 수동 점검 필요 {manual}" if lang == "ko" else f"; manual items {manual}"))
    excepted = sorted({c["id"] for c in results["controls"] for h in c.get("hosts") or []
                       for f in h.get("findings") or [] if f.get("waiver")})
    if excepted:
        lines.append(("예외 승인 포함 항목: " if lang == "ko" else "Items with an approved exception: ")
                     + ", ".join(excepted))
    today = dt.date.today().isoformat()
    for c in results["controls"]:
        for p in c.get("plans") or []:
            if str(p.get("due")) < today:
                lines.append(("이행계획 기한 경과: " if lang == "ko" else "Plan overdue: ")
                             + f"{c['id']} ({p.get('due')}) {p.get('text')}")
    bad = [h for h in results["hosts"] if not h["collected"]]
    for h in bad:
        lines.append(("수집 실패: " if lang == "ko" else "Not collected: ")
                     + one_line(f"{h['name']} ({h['address']}): {h['error']}"))  # an SSH banner's escapes stay inert
    return "\n".join(lines)

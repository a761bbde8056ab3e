"""The report as Markdown, for pasting into tickets and merge requests.

Why its own shape: a ticket wants what needs doing first. So: a short cover,
then the items that are not implemented or partial (with D and the suggested
E), then the other automated items in one table, then the manual items in one
table with the guide's evidence examples. Target-derived text is escaped (HTML
characters, table pipes, backticks) because ticket systems render Markdown and
often raw HTML too.
"""
from __future__ import annotations

import re
from typing import Any

from policies.engine import NI, PART

from .diff import diff_lines
from .report_model import STATUS_ORDER, ItemReport, ReportModel, fmt_params
from .safe_text import visible

_MD = re.compile(r"([\\`*_\[\]|#])")


def md(x: Any) -> str:
    """Escape text for a Markdown paragraph or table cell: no HTML, no markup, no line breaks inside cells."""
    s = visible(x)  # control and bidi characters shown as escapes
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _MD.sub(r"\\\1", s)
    return s.replace("\r", " ").replace("\n", "<br>")


def render_markdown(m: ReportModel) -> str:
    L, c, st = m.labels, m.cover, m.status_labels
    ko = m.lang == "ko"
    out = [f"# {md(L['title'])} — {md(c.organisation)}", ""]
    v = c.verification
    ver = (L["not_verified"] if not v.get("checked") else L["verified"] if v.get("valid") else
           f"**{L['invalid']}**")
    out += [f"- {md(L['profile'])}: {md(c.profile_title or c.profile)} (`{md(c.profile)}`)",
            f"- {md(L['run'])}: {md(c.started)} ~ {md(c.finished)} (UTC), {md(L['vantage'])} {md(c.vantage)}",
            f"- {md(L['tool'])}: evidence-agent {md(c.tool_version)}; {md(L['fingerprint'])}: `{md(c.fingerprint)}`"
            f"; {md(L['revision'])} {c.revision}",
            f"- {md(L['verification'])}: {ver}",
            "- " + md(L["totals"]) + ": " + ", ".join(f"{st[s]} {c.totals.get(s, 0)}" for s in STATUS_ORDER)
            + f" ({md(L['manual'])} {c.manual_count})"]
    for h in c.not_collected:
        out.append(f"- {md(L['not_collected'])}: {md(h['name'])} ({md(h.get('address'))}) — {md(h.get('error'))}")
    for d in c.deviations:
        out.append(f"- {md(L['deviations'])}: {md(d)}")
    out.append("")
    if m.changes is not None:
        out += [f"## {md(L['changes'])}", ""]
        lines = list(diff_lines(m.changes, m.lang))
        out += [("  - " if x.startswith(" ") else "- ") + md(x.strip()) for x in lines] or [
            ("변경 사항 없음" if ko else "no changes")]
        out.append("")
    failing = [it for it in m.items if it.status in (NI, PART)]
    if failing:
        out += [f"## {'조치 필요' if ko else 'Action needed'} ({len(failing)})", ""]
        for it in failing:
            out += _item(it, m)
    auto = [it for it in m.items if not it.manual and it.status not in (NI, PART)]
    if auto:
        out += [f"## {'자동 점검 결과' if ko else 'Other automated results'}", "",
                f"| {md(L['control'])} | {md(L['result'])} | {md(L['host'])} |", "|---|---|---|"]
        for it in auto:
            hosts = ", ".join(f"{h.name}: {h.label}" for h in it.hosts)
            out.append(f"| {md(it.id)} {md(it.title)} | {md(it.status_label)} | {md(hosts)} |")
        out.append("")
    manual = [it for it in m.items if it.manual and it.status not in (NI, PART)]
    if manual:
        out += [f"## {md(L['manual'])} / {md(L['declared'])} ({len(manual)})", "",
                f"| {md(L['control'])} | {md(L['result'])} | {md(L['evidence'])} | {md(L['evidence_examples'])} |",
                "|---|---|---|---|"]
        for it in manual:
            res = f"{it.status_label} ({L['declared']})" if it.declared else L["manual"]
            ev = "<br>".join(md(f"{e.ref} {e.description}") for e in it.evidence)
            ex = "<br>".join(md(x) for x in it.evidence_examples)
            out.append(f"| {md(it.id)} {md(it.title)} | {md(res)} | {ev} | {ex} |")
        out.append("")
    return "\n".join(out)


def _item(it: ItemReport, m: ReportModel) -> list[str]:
    L = m.labels
    out = [f"### {md(it.id)} {md(it.title)} — {md(it.status_label)}", "",
           f"*{md(it.area)} / {md(it.field)} / {md(it.item)}*", ""]
    for c in it.criteria:
        params = fmt_params(c.params) if c.params else "; ".join(
            f"{h}: {fmt_params(p)}" for h, p in c.params_by_host.items())
        out.append(f"- **{md(L['criterion'])}** `{md(c.rule)}` {md(c.title)}"
                   + (f" ({md(L['params'])}: {md(params)})" if params else ""))
        out += [f"  - {md(L['deviations'])}: {md(d)}" for d in c.deviations]
    if it.declared:
        out.append(f"- **{md(L['declared'])}**: {md(it.declared.get('by'))} {md(it.declared.get('at'))}")
    out.append(f"- **{md(L['evidence'])}**: " + (", ".join(md(f"{e.ref} {e.description}") for e in it.evidence)
                                                  or md(L["no_evidence"])))
    out.append(f"- **{md(L['result'])}**: " + (", ".join(f"{md(h.name)} {md(h.label)}" for h in it.hosts)
                                                or md(it.status_label)))
    out.append(f"- **{md(L['summary'])}**")
    for s in it.summary:
        refs = f" \\[{md(', '.join(s.refs))}\\]" if s.refs else ""
        out.append(f"  - ({md(s.label)}) {md(s.line())}{refs}")
    out.append(f"- **{md(L['plan'])}** — {md(L['target_date'])}: ____, {md(L['plan_detail'])}: ____")
    for p in it.plan:
        if p.remediation:
            out.append(f"  - `{md(p.rule)}` ({md(', '.join(p.hosts))}): {md(p.remediation)}")
    out.append("")
    return out

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
            "- " + md(L["totals"]) + ": " + ", ".join(f"{st[s]} {c.totals.get(s, 0)}" for s in STATUS_ORDER
                                                       if s != "partial" or s in m.choices)
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
    # counts of the two halves, exceptions and plans, as on the HTML cover
    out.insert(-1, f"- {md(L['attested_count'])} {c.attested_count}, {md(L['pending_count'])} {c.pending_count}, "
                   f"{md(L['excepted_count'])} {c.excepted_count}"
                   + (f", {md(L['overdue'])} {c.overdue_plans}" if c.overdue_plans else ""))
    for w in c.waivers:
        out.insert(-1, f"- {md(L['excepted'])}: {md(w.get('rule'))} @ {md(w.get('host'))}: {md(w.get('reason'))} "
                       f"({md(L['approver'])} {md(w.get('approver'))}, {md(L['expires'])} {md(w.get('expires'))}"
                       + ("" if w.get("active", True) else f", {md(L['expired'])}") + ")")
    failing = [it for it in m.items if it.status in (NI, PART)]
    if failing:
        out += [f"## {'조치 필요' if ko else 'Action needed'} ({len(failing)})", ""]
        for it in failing:
            out += _item(it, m)
    rest = [it for it in m.items if it.status not in (NI, PART)]
    if rest:
        out += [f"## {md(L['index'])}", ""]
        for it in rest:
            out += _item(it, m)
    return "\n".join(out)


def _item(it: ItemReport, m: ReportModel) -> list[str]:
    """One detailed item with the form's five columns, as the HTML report shows them."""
    L = m.labels
    out = [f"### {md(it.id)} {md(it.title)} — {md(it.status_label)}", "",
           f"*{md(it.area)} / {md(it.field)} / {md(it.item)}*", "", f"- **{md(L['criterion'])}**"]
    if it.org_criterion:
        out.append(f"  - {md(L['org_criterion'])}: {md(it.org_criterion)}")
    if it.note:
        out.append(f"  - *{md(it.note)}*")
    for c in it.criteria:
        params = fmt_params(c.params, c.origins) if c.params else "; ".join(
            f"{h}: {fmt_params(p, c.origins_by_host.get(h))}" for h, p in c.params_by_host.items())
        out.append(f"  - `{md(c.rule)}` {md(c.title)}: {md(c.text)}"
                   + (f" ({md(L['params'])}: {md(params)})" if params else ""))
        out += [f"    - {md(L['deviations'])}: {md(d)}" for d in c.deviations]
    if it.guide_criterion or it.guide_note:
        label = L["guide_reference"] if it.org_criterion else L["guide_criterion"]
        out.append(f"  - {md(label)}: {md(it.guide_criterion)}" + (f" *{md(it.guide_note)}*" if it.guide_note else ""))
    out.append(f"- **{md(L['evidence'])}**: " + ("; ".join(md(f"{e.ref} {e.description}") for e in it.evidence)
                                                  or md(L["no_evidence"])))
    if it.manual and it.evidence_examples:
        out.append(f"  - {md(L['evidence_examples'])}: " + "; ".join(md(x) for x in it.evidence_examples))
    out.append(f"- **{md(L['result'])}**: {md(it.status_label)}")
    if it.automated_status:
        out.append(f"  - {md(L['auto_part'])}: {md(it.automated_label)} ("
                   + ", ".join(f"{md(h.name)} {md(h.label)}" for h in it.hosts) + ")")
    mp = it.manual_part
    if mp:
        who = (f" — {md(L['attested_by'])} {md(mp.get('by'))} ({md(mp.get('at'))})"
               + "".join(f"; {md(mp.get(k))}" for k in ("reason", "note") if mp.get(k))) if not mp["pending"] else ""
        out.append(f"  - {md(L['manual_part'])}: {md(mp['label'])}" + (f" — {md(mp['text'])}" if mp["pending"] else who))
    for x in it.exceptions:
        out.append(f"  - {md(L['excepted'])}: `{md(x['rule'])}` {md(x['host'])}: {md(x['reason'])} "
                   f"({md(L['approver'])} {md(x['approver'])}, {md(L['expires'])} {md(x['expires'])}"
                   + ("" if x["active"] else f", {md(L['expired'])}") + ")")
    out.append(f"- **{md(L['summary'])}**")
    for s in it.summary:
        refs = f" \\[{md(', '.join(s.refs))}\\]" if s.refs else ""
        out.append(f"  - ({md(s.label)}) {md(s.line())}{refs}")
    if it.plans:
        out.append(f"- **{md(L['plan'])}**")
        for p in it.plans:
            out.append(f"  - {md(L['plan_due'])} {md(p.get('due'))}"
                       + (f" **{md(L['overdue'])}**" if p.get("overdue") else "")
                       + (f" ({md(L['carried'])})" if p.get("carried_from") else "")
                       + f": {md(p.get('text'))} ({md(p.get('by'))}, {md(p.get('at'))})")
    else:
        out.append(f"- **{md(L['plan'])}** — {md(L['target_date'])}: ____, {md(L['plan_detail'])}: ____")
    for p in it.plan:
        if p.remediation:
            out.append(f"  - {md(L['remediation'])} `{md(p.rule)}` ({md(', '.join(p.hosts))}): {md(p.remediation)}")
    if it.references:
        out.append(f"- **{md(L['references'])}**: " + "; ".join(md(r) for r in it.references))
    out.append("")
    return out

"""The report as ONE self-contained HTML file, laid out like the guide's result form (Section IV).

Why this shape: auditors print it (A4, one detailed item per page) and read it
on screen; it must open offline from a USB stick or a zip, so there is no
script, no web font, no external reference — only inline CSS, plus a Content
Security Policy that forbids anything else should a future change slip. Every
string that comes from a target, an inventory or a bundle is escaped with
:func:`html.escape` (target output is untrusted); evidence links are relative,
computed for where the file is written, so the report works beside or inside
an unpacked bundle.
"""
from __future__ import annotations

import html
import posixpath
from typing import Any, Iterable, Optional
from urllib.parse import quote

from .diff import diff_lines
from .report_model import STATUS_ORDER, ItemReport, ReportModel, fmt_params, link_prefix, status_choices
from .safe_text import visible

CSS = """
@page { size: A4; margin: 14mm 12mm 16mm 12mm; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans CJK KR", "Noto Sans KR", "Malgun Gothic", "Apple SD Gothic Neo", sans-serif;
       font-size: 10.5pt; line-height: 1.45; color: #111; margin: 0; }
main { max-width: 1100px; margin: 0 auto; padding: 16px; }
h1 { font-size: 18pt; margin: 0 0 4px; } h2 { font-size: 13pt; margin: 18px 0 6px; border-bottom: 2px solid #333; }
h3 { font-size: 11.5pt; margin: 0 0 6px; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 10px; }
th, td { border: 1px solid #777; padding: 4px 6px; vertical-align: top; text-align: left; }
th { background: #e8edf3; font-weight: 600; white-space: nowrap; }
table.form th { width: 17%; }
table.narrow { width: auto; min-width: 45%; }
tr { break-inside: avoid; page-break-inside: avoid; }
table.form > tbody > tr { break-inside: auto; page-break-inside: auto; }  /* a long A or D cell flows on */
h3 { break-after: avoid; page-break-after: avoid; }
.muted { color: #555; font-size: 9pt; }
.pre { white-space: pre-wrap; }
.badge { display: inline-block; padding: 0 6px; border-radius: 3px; font-weight: 600; border: 1px solid #888; }
.s-implemented { background: #d9f2dd; } .s-partial { background: #fff0c2; } .s-not_implemented { background: #f9d3d0; }
.s-not_applicable { background: #eee; } .s-unknown { background: #e3e3f7; }
.choice { margin-right: 14px; white-space: nowrap; } .choice.on { font-weight: 700; }
.banner { border: 2px solid #b00; background: #fdecea; padding: 8px; margin: 8px 0; font-weight: 600; }
.ok { color: #0a6b1f; font-weight: 600; }
ul { margin: 2px 0; padding-left: 18px; } li { margin: 1px 0; }
a { color: #0645ad; }
.item { break-before: page; page-break-before: always; padding-top: 4px; }
.fill { min-height: 2.2em; }
@media print { main { max-width: none; padding: 0; } a { color: #111; text-decoration: none; } }
"""

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


def e(x: Any) -> str:
    """Escape anything for HTML text and attribute values (quotes included)."""
    return html.escape(visible(x), quote=True)  # control and bidi characters shown as escapes


def _badge(status: str, label: str) -> str:
    return f'<span class="badge s-{e(status)}">{e(label)}</span>'


def _ul(rows: Iterable[str]) -> str:
    rows = list(rows)
    return "<ul>" + "".join(f"<li>{r}</li>" for r in rows) + "</ul>" if rows else ""


def href(prefix: str, rel: str) -> str:
    return e(quote(posixpath.join(prefix, rel) if prefix else rel, safe="/"))


def render_html(model: ReportModel, out_path: Optional[str] = None) -> str:
    """The whole document; ``out_path`` is where it will be written (for relative evidence links)."""
    L, c = model.labels, model.cover
    prefix = link_prefix(model.bundle, out_path)
    parts = [f'<!DOCTYPE html><html lang="{e(model.lang)}"><head><meta charset="utf-8">',
             f'<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{e(L['title'])} — {e(c.organisation)}</title><style>{CSS}</style></head><body><main>"]
    parts.append(_cover(model))
    if model.changes is not None:
        parts.append(_changes(model))
    parts.append(_index(model))
    for it in model.items:
        parts.append(_item(model, it, prefix))
    parts.append("</main></body></html>\n")
    return "".join(parts)


def _cover(m: ReportModel) -> str:
    L, c, st = m.labels, m.cover, m.status_labels
    out = [f"<header><h1>{e(L['title'])}</h1>",
           f'<div class="muted">{e(c.profile_title or c.profile)}</div></header>']
    v = c.verification
    if v.get("checked") and not v.get("valid"):
        out.append(f'<div class="banner">{e(L["verification"])}: {e(L["invalid"])}'
                   + _ul(e(p) for p in v.get("problems") or []) + "</div>")
    scope = c.scope or {}
    scope_txt = ", ".join(scope.get("allow") or []) + (
        f" (deny: {', '.join(scope.get('deny') or [])})" if scope.get("deny") else "")
    ver = (L["not_verified"] if not v.get("checked") else
           f'<span class="ok">{e(L["verified"])}</span> — {e(L["pinned"] if v.get("pinned") else L["unpinned"])}'
           if v.get("valid") else f'<b>{e(L["invalid"])}</b>')
    rows = [(L["organisation"], e(c.organisation)), (L["scope"], e(scope_txt)),
            (L["run"], e(f"{c.started} ~ {c.finished} (UTC)")), (L["run_id"], e(c.run_id)),
            (L["vantage"], e(c.vantage)), (L["families"], e(", ".join(c.families))),
            (L["inventory"], e(c.inventory)), (L["profile"], e(c.profile)),
            (L["tool"], e(f"evidence-agent {c.tool_version}")),
            (L["fingerprint"], f"<code>{e(c.fingerprint)}</code>"),
            (L["sealed"], e(c.sealed)), (L["revision"], e(c.revision) + _revisions(c.revisions)),
            (L["verification"], ver)]
    out.append('<table class="form">' + "".join(f"<tr><th>{e(k)}</th><td>{v_}</td></tr>" for k, v_ in rows)
               + "</table>")
    out.append(f"<h2>{e(L['totals'])}</h2><table class=\"narrow\"><tr><th>{e(L['status'])}</th><th>{e(L['total'])}</th>"
               f"<th>{e(L['automated'])}</th></tr>")
    for s in STATUS_ORDER:
        if s == "partial" and s not in m.choices:  # a scale without "partly" (robo-advisor: 예/아니오/N/A)
            continue
        out.append(f"<tr><td>{_badge(s, st[s])}</td><td>{c.totals.get(s, 0)}</td>"
                   f"<td>{c.automated_totals.get(s, 0)}</td></tr>")
    out.append(f"<tr><td>{e(L['manual'])}</td><td>{c.manual_count}</td><td></td></tr>")
    for key, n in (("attested_count", c.attested_count), ("pending_count", c.pending_count),
                   ("excepted_count", c.excepted_count), ("overdue", c.overdue_plans)):
        if n or key != "overdue":
            out.append(f"<tr><td>{e(L[key])}</td><td>{n}</td><td></td></tr>")
    out.append("</table>")
    out.append(f"<h2>{e(L['hosts'])}</h2><table><tr><th>{e(L['host'])}</th><th>{e(L['address'])}</th>"
               f"<th>{e(L['transport'])}</th><th>{e(L['zone'])}</th><th>{e(L['collected'])}</th></tr>")
    for h in c.hosts:
        ok = L["yes"] if h.get("collected") else f"{L['no']} — {h.get('error') or ''}"
        out.append(f"<tr><td>{e(h.get('name'))}</td><td>{e(h.get('address'))}</td><td>{e(h.get('transport'))}</td>"
                   f"<td>{e(h.get('zone'))}</td><td>{e(ok)}</td></tr>")
    out.append("</table>")
    if c.not_collected:
        out.append(f"<h2>{e(L['not_collected'])}</h2>"
                   + _ul(f"{e(h['name'])} ({e(h.get('address'))}): {e(h.get('error'))}" for h in c.not_collected))
    if c.deviations:
        out.append(f"<h2>{e(L['deviations'])}</h2>" + _ul(e(d) for d in c.deviations))
    if c.waivers:
        out.append(f"<h2>{e(L['excepted'])}</h2>" + _ul(
            e(f"{w.get('rule')} @ {w.get('host')}: {w.get('reason')} ({L['approver']} {w.get('approver')}, "
              f"{L['expires']} {w.get('expires')}" + ("" if w.get("active", True) else f", {L['expired']}") + ")")
            for w in c.waivers))
    if c.warnings:
        out.append(f"<h2>{e(L['warnings'])}</h2>" + _ul(e(w) for w in c.warnings))
    return "".join(out)


def _revisions(revs: list[dict[str, Any]]) -> str:
    if not revs:
        return ""
    return _ul(e(f"r{r.get('revision')} ({r.get('sealed')}, {r.get('fingerprint')}): {r.get('reason')}")
               for r in revs)


def _changes(m: ReportModel) -> str:
    d = m.changes or {}
    lines = list(diff_lines(d, m.lang))
    old = d.get("old") or {}
    head = f"<h2>{e(m.labels['changes'])}</h2><p class='muted'>{e(old.get('bundle'))} ({e(old.get('finished'))})</p>"
    empty = "변경 사항 없음" if m.lang == "ko" else "no changes"
    return head + (f'<div class="pre">{e(chr(10).join(lines))}</div>' if lines else f"<p>{e(empty)}</p>")


def _index(m: ReportModel) -> str:
    L = m.labels
    out = [f"<h2>{e(L['index'])}</h2><table><tr><th>{e(L['control'])}</th><th>{e(L['result'])}</th>"
           f"<th>{e(L['host'])}</th></tr>"]
    for it in m.items:
        hosts = ", ".join(f"{h.name}: {h.label}" for h in it.hosts)
        if it.manual_part and not it.manual:
            hosts += f" / {L['manual_part']}: {it.manual_part['label']}"
        elif it.manual_part:
            hosts = f"{L['manual_part']}: {it.manual_part['label']}"
        out.append(f'<tr><td><a href="#item-{e(it.id)}">{e(it.id)}</a> {e(it.title)}</td>'
                   f"<td>{_badge(it.status, it.status_label)}</td><td>{e(hosts)}</td></tr>")
    out.append("</table>")
    return "".join(out)


def _item(m: ReportModel, it: ItemReport, prefix: str) -> str:
    L, st = m.labels, m.status_labels
    rows = [(L["area"], f"{e(it.area)} &nbsp; <b>{e(L['field'])}</b> {e(it.field)}"),
            (L["item"], e(it.item)),
            (L["control"], f"<b>{e(it.id)}</b> {e(it.title)}")]
    # A
    a = []
    if it.org_criterion:
        a.append(f"<div><b>{e(L['org_criterion'])}</b></div><div class='pre'>{e(it.org_criterion)}</div>")
    if it.note:
        a.append(f'<p class="muted">{e(it.note)}</p>')
    for cr in it.criteria:
        params = fmt_params(cr.params, cr.origins) if cr.params else "; ".join(
            f"{h}: {fmt_params(p, cr.origins_by_host.get(h))}" for h, p in cr.params_by_host.items())
        a.append(f"<p><b>[{e(cr.rule)}] {e(cr.title)}</b><br>{e(cr.text)}"
                 + (f"<br><span class='muted'>{e(L['params'])}: {e(params)}</span>" if params else "")
                 + "".join(f"<br><span class='badge s-partial'>{e(L['deviations'])}</span> {e(d)}"
                           for d in cr.deviations) + "</p>")
    if it.guide_criterion or it.guide_note:
        ref = bool(it.criteria or it.org_criterion)
        label = L["guide_reference"] if it.org_criterion else L["guide_criterion"] if it.criteria else ""
        a.append((f"<div class='muted'>{e(label)}</div>" if label else "")
                 + f'<div class="pre{" muted" if ref else ""}">{e(it.guide_criterion)}</div>'
                 + (f"<div class='muted'><i>{e(it.guide_note)}</i></div>" if it.guide_note else ""))
    rows.append((L["criterion"], "".join(a)))
    # B
    if it.evidence:
        b = _ul(f'<a href="{href(prefix, ev.file)}">{e(ev.ref)}</a> {e(ev.description)}'
                + (f' <span class="muted">({e(ev.host)}, {e(ev.collected_at)})</span>' if ev.host else "")
                for ev in it.evidence)
    else:
        b = f'<span class="muted">{e(L["no_evidence"])}</span>'
    if it.manual and it.evidence_examples:
        b += f"<div class='muted'>{e(L['evidence_examples'])}:</div>" + _ul(e(x) for x in it.evidence_examples)
    rows.append((L["evidence"], b))
    # C
    c = "".join(f'<span class="choice{" on" if on else ""}">{"●" if on else "○"} {e(st[s])}</span>'
                for s, on in status_choices(it.status, m.choices))
    halves = []
    if it.automated_status:
        halves.append(f"<tr><th>{e(L['auto_part'])}</th><td>{_badge(it.automated_status, it.automated_label)}"
                      + (_ul(f"{e(h.name)}: {_badge(h.status, h.label)}" for h in it.hosts) if it.hosts else "")
                      + "</td></tr>")
    mp = it.manual_part
    if mp:
        who = (f"<div>{e(L['attested_by'])}: <b>{e(mp.get('by'))}</b> ({e(mp.get('at'))})"
               + (f" — {e(mp.get('reason'))}" if mp.get("reason") else "")
               + (f" — {e(mp.get('note'))}" if mp.get("note") else "") + "</div>") if not mp["pending"] else ""
        halves.append(f"<tr><th>{e(L['manual_part'])}</th><td>{_badge(mp['status'], mp['label'])}"
                      + (f"<div>{e(mp['text'])}</div>" if mp["pending"] else who) + "</td></tr>")
    if halves:
        c += f"<table>{''.join(halves)}</table>"
    for x in it.exceptions:
        c += (f"<div><span class='badge s-partial'>{e(L['excepted'])}</span> [{e(x['rule'])}] {e(x['host'])}: "
              f"{e(x['reason'])} ({e(L['approver'])} {e(x['approver'])}, {e(L['expires'])} {e(x['expires'])}"
              + ("" if x["active"] else f", {e(L['expired'])}") + ")</div>")
    rows.append((L["result"], c))
    # D
    d = _ul(_summary_line(s, m) for s in it.summary)
    rows.append((L["summary"], d))
    # E
    e_rows = []
    for p in it.plans:
        flag = (f" <span class='badge s-not_implemented'>{e(L['overdue'])}</span>" if p.get("overdue") else "")
        carried = f" <span class='muted'>({e(L['carried'])})</span>" if p.get("carried_from") else ""
        e_rows.append(f"<tr><th>{e(L['plan_due'])}</th><td>{e(p.get('due'))}{flag}{carried}</td></tr>"
                      f"<tr><th>{e(L['plan_text'])}</th><td class='pre'>{e(p.get('text'))} "
                      f"<span class='muted'>({e(p.get('by'))}, {e(p.get('at'))})</span></td></tr>")
    if not it.plans:
        e_rows += [f"<tr><th>{e(L['target_date'])}</th><td class='fill'></td></tr>",
                   f"<tr><th>{e(L['plan_detail'])}</th><td class='fill'></td></tr>"]
    if it.plan:
        e_rows.append(f"<tr><th>{e(L['remediation'])}</th><td>" + _ul(
            f"[{e(p.rule)}] {e(p.title)}" + (f" ({e(', '.join(p.hosts))})" if p.hosts else "")
            + (f": {e(p.remediation)}" if p.remediation else "") for p in it.plan) + "</td></tr>")
    rows.append((L["plan"], f"<table>{''.join(e_rows)}</table>"))
    if it.references:
        rows.append((L["references"], _ul(e(r) for r in it.references)))
    body = "".join(f"<tr><th>{e(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return (f'<section class="item" id="item-{e(it.id)}"><h3>{e(it.id)} {e(it.title)} '
            f'{_badge(it.status, it.status_label)}</h3><table class="form">{body}</table></section>')


def _summary_line(s: Any, m: ReportModel) -> str:
    refs = f' <span class="muted">[{e(", ".join(s.refs))}]</span>' if s.refs else ""
    if s.kind == "finding":
        return f"{_badge(s.status, s.label)} {e(s.line())}{refs}"
    if s.kind == "waiver":
        return f"<span class='badge s-partial'>{e(s.label)}</span> {e(s.line())}{refs}"
    if s.kind == "advice":
        return f"<i>{e(s.label)}</i> {e(s.line())}"
    if s.kind == "declared":
        return f"{_badge(s.status, s.label)} <b>{e(m.labels['manual_part'])}</b>: {e(s.text)}{refs}"
    return f"<b>{e(s.label)}</b> — {e(s.text)}"


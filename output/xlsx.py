"""The report as an Excel workbook in the guide's form, for the ops team to complete.

Why a workbook: the self-check is usually handed around as a spreadsheet and the
향후 이행계획 (E) columns are filled in by people after the scan. So: one row per
detailed item per host (the unit someone fixes), columns A–E with the area, field
and item beside them, autofilter and frozen headers, wrapped text. The sheet is
protected without a password so tool-derived cells are not changed by accident,
while the two E columns are unlocked and filtering, sorting and resizing stay
allowed ("Unprotect sheet" removes it). Sheets: the form, a summary, the
evidence list.
"""
from __future__ import annotations

import posixpath
from copy import copy

from typing import Any, Optional

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Border, Font, PatternFill, Protection, Side
from openpyxl.utils import get_column_letter

from .report_model import STATUS_ORDER, ItemReport, ReportModel, fmt_params, link_prefix

FILLS = {"implemented": "D9F2DD", "partial": "FFF0C2", "not_implemented": "F9D3D0", "not_applicable": "EEEEEE",
         "unknown": "E3E3F7"}
HEAD_FILL = PatternFill("solid", fgColor="E8EDF3")
THIN = Side(style="thin", color="999999")
BORDER = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
WRAP = Alignment(wrap_text=True, vertical="top")
HEADER_ROW = 3  # rows 1-2: title and run line; row 3: column headers (frozen with them)

# (key, width); E columns are the two the operator fills in
COLUMNS = [("area", 8), ("field", 16), ("item", 22), ("control_id", 8), ("control", 34), ("item_result", 11),
           ("host", 14), ("criterion", 48), ("evidence", 40), ("result", 11), ("summary", 60), ("remediation", 44),
           ("target_date", 14), ("plan_detail", 40)]
E_COLUMNS = ("target_date", "plan_detail")
MAX_CELL = 32_000  # Excel's limit is 32 767 characters per cell


def cell_text(v: Any) -> Any:
    """Target-derived text made storable: control characters (which openpyxl refuses) shown as \\xNN, length capped."""
    if not isinstance(v, str):
        return v
    v = ILLEGAL_CHARACTERS_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", v)
    return v if len(v) <= MAX_CELL else v[:MAX_CELL] + " …"


def _headers(L: dict[str, str]) -> dict[str, str]:
    ko = L["area"] == "보안영역"
    return {"area": L["area"], "field": L["field"], "item": L["item"],
            "control_id": "번호" if ko else "No.", "control": L["control"], "item_result": L["result"],
            "host": f"{L['host']} / {L['manual_part']}",
            "criterion": L["criterion"], "evidence": L["evidence"],
            "result": f"{L['auto_part']} / {L['manual_part']}", "summary": L["summary"],
            "remediation": L["remediation"], "target_date": f"{L['plan']} {L['target_date']}",
            "plan_detail": f"{L['plan']} {L['plan_detail']}"}


def _criterion(it: ItemReport, L: dict[str, str]) -> str:
    parts = []
    if it.org_criterion:
        parts.append(f"[{L['org_criterion']}]\n{it.org_criterion}")
    if it.note:
        parts.append(it.note)
    for c in it.criteria:
        params = fmt_params(c.params, c.origins) if c.params else "; ".join(
            f"{h}: {fmt_params(p, c.origins_by_host.get(h))}" for h, p in c.params_by_host.items())
        parts.append(f"[{c.rule}] {c.title}\n{c.text}" + (f"\n{L['params']}: {params}" if params else "")
                     + "".join(f"\n{L['deviations']}: {d}" for d in c.deviations))
    if (it.guide_criterion or it.guide_note) and (it.org_criterion or not it.criteria):
        head = f"[{L['guide_reference']}]\n" if it.org_criterion else ""
        parts.append(head + "\n".join(x for x in (it.guide_criterion, it.guide_note) if x))
    return "\n\n".join(parts)


def _plan_cells(it: ItemReport, L: dict[str, str]) -> dict[str, str]:
    """Stored plans (E) fill the two E cells; without one they stay empty for the operator."""
    if not it.plans:
        return {}
    return {"target_date": "\n".join(str(p.get("due")) + (f" ({L['overdue']})" if p.get("overdue") else "")
                                     for p in it.plans),
            "plan_detail": "\n".join(f"{p.get('text')} ({p.get('by')}, {p.get('at')})" for p in it.plans)}


def _manual_row(it: ItemReport, L: dict[str, str]) -> dict[str, Any]:
    mp = it.manual_part or {}
    if mp.get("pending"):
        text = mp.get("text") or ""
    else:
        text = (f"{L['attested_by']}: {mp.get('by')} ({mp.get('at')})"
                + "".join(f"\n{mp.get(k)}" for k in ("reason", "note") if mp.get(k)))
    ev = [f"{e.ref} {e.description}".strip() for e in it.evidence if e.manual]
    if it.evidence_examples:
        ev.append(f"[{L['evidence_examples']}]")
        ev += [f"- {x}" for x in it.evidence_examples]
    return {"host": L["manual_part"], "evidence": "\n".join(ev), "result": mp.get("label", ""),
            "status": mp.get("status", "unknown"), "summary": text, "remediation": ""}


def _evidence(it: ItemReport, L: dict[str, str], host: Optional[str],
              names: Optional[set[str]] = None) -> str:
    names = names if names is not None else {h.name for h in it.hosts}
    rows = [f"{ev.ref} {ev.description}".strip() for ev in it.evidence
            if host is None or ev.host in (host, "") or ev.manual or ev.host not in names]
    if it.manual and it.evidence_examples:
        rows.append(f"[{L['evidence_examples']}]")
        rows += [f"- {x}" for x in it.evidence_examples]
    return "\n".join(rows)


def _summary_line(s: Any, text: str) -> str:
    return f"({s.label}) {text}" + (f" [{', '.join(s.refs)}]" if s.refs else "")


def _rows(m: ReportModel) -> list[dict[str, Any]]:
    """One row per item and host. Each item's evidence, summary lines and plan are grouped by host once:
    filtering them again for every host made a 500-host workbook take minutes (quadratic in the hosts)."""
    L = m.labels
    out = []
    for it in m.items:
        base = {"area": it.area, "field": it.field, "item": it.item, "control_id": it.id, "control": it.title,
                "item_result": it.status_label, "item_status": it.status, "criterion": _criterion(it, L),
                **_plan_cells(it, L)}
        if it.hosts:
            names = {h.name for h in it.hosts}
            ev_host: dict[str, list[str]] = {}
            ev_common: list[tuple[int, str]] = []
            for i, ev in enumerate(it.evidence):
                row = f"{ev.ref} {ev.description}".strip()
                if ev.host == "" or ev.manual or ev.host not in names:
                    ev_common.append((i, row))
                else:
                    ev_host.setdefault(ev.host, []).append((i, row))  # type: ignore[arg-type]
            sum_host: dict[str, list[tuple[int, Any]]] = {}
            sum_common: list[tuple[int, Any]] = []
            for i, sl in enumerate(it.summary):
                (sum_host.setdefault(sl.host, []) if sl.host else sum_common).append((i, sl))
            plan = [(p, set(p.hosts)) for p in it.plan if p.remediation]
            for h in it.hosts:
                evid = [r for _, r in sorted(ev_host.get(h.name, []) + ev_common)]  # type: ignore[operator]
                if it.manual and it.evidence_examples:
                    evid.append(f"[{L['evidence_examples']}]")
                    evid += [f"- {x}" for x in it.evidence_examples]
                lines = [sl for _, sl in sorted(sum_host.get(h.name, []) + sum_common, key=lambda x: x[0])]
                out.append({**base, "host": h.name, "evidence": "\n".join(evid), "result": h.label,
                            "status": h.status, "summary": "\n".join(_summary_line(sl, sl.text) for sl in lines),
                            "remediation": "\n".join(f"[{p.rule}] {p.remediation}" for p, hs in plan if h.name in hs)})
            if it.manual_part:
                out.append({**base, **_manual_row(it, L)})
        else:
            mp = it.manual_part or {}
            label = it.status_label + (f" ({L['attested_by']} {mp.get('by')})" if it.declared else
                                       f" ({L['manual']})" if it.manual else "")
            out.append({**base, "host": L["manual_part"] if it.manual_part else L["all_hosts"],
                        "evidence": _evidence(it, L, None), "result": label, "status": it.status,
                        "summary": "\n".join(_summary_line(sl, sl.line()) for sl in it.summary),
                        "remediation": "\n".join(f"[{p.rule}] {p.remediation}" for p in it.plan if p.remediation)})
    return out


def build_workbook(m: ReportModel, out_path: Optional[str] = None) -> Workbook:
    """The workbook; ``out_path`` is where it will be saved (evidence file names link relative to it)."""
    L, c = m.labels, m.cover
    wb = Workbook()
    ws = wb.active
    ws.title = L["form_sheet"]
    heads = _headers(L)
    ncol = len(COLUMNS)
    ws.cell(1, 1, cell_text(f"{L['title']} — {c.organisation}")).font = Font(bold=True, size=14)
    ws.cell(2, 1, cell_text(f"{c.profile_title or c.profile} | {L['run']}: {c.started} ~ {c.finished} (UTC) | "
                  f"{L['fingerprint']}: {c.fingerprint} | {L['revision']} {c.revision}"))
    for j, (key, width) in enumerate(COLUMNS, 1):
        cell = ws.cell(HEADER_ROW, j, heads[key])
        cell.font, cell.fill, cell.alignment, cell.border = Font(bold=True), HEAD_FILL, WRAP, BORDER
        ws.column_dimensions[get_column_letter(j)].width = width
    rows = _rows(m)
    # Styles are built once per kind of cell and copied: assigning style objects cell by cell hashes them every
    # time (most of a 500-host workbook's build time in openpyxl 3.1).
    styles: dict[tuple[str, str], Any] = {}
    for i, r in enumerate(rows, HEADER_ROW + 1):
        for j, (key, _) in enumerate(COLUMNS, 1):
            cell = ws.cell(i, j, cell_text(r.get(key, "")) if key not in E_COLUMNS else cell_text(r.get(key)))
            kind = (("edit", "") if key in E_COLUMNS else ("result", r["status"]) if key == "result"
                    else ("result", r["item_status"]) if key == "item_result" else ("plain", ""))
            st = styles.get(kind)
            if st is not None:
                cell._style = copy(st)
                continue
            cell.alignment, cell.border = WRAP, BORDER
            if kind[0] == "edit":
                cell.protection = Protection(locked=False)
            if kind[0] == "result":
                cell.fill = PatternFill("solid", fgColor=FILLS.get(r["status"], "FFFFFF"))
            styles[kind] = copy(cell._style)
    last = HEADER_ROW + max(1, len(rows))
    ws.auto_filter.ref = f"A{HEADER_ROW}:{get_column_letter(ncol)}{last}"
    ws.freeze_panes = ws.cell(HEADER_ROW + 1, 1)
    ws.print_title_rows = f"{HEADER_ROW}:{HEADER_ROW}"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    _protect(ws)

    _summary_sheet(wb.create_sheet(L["summary_sheet"]), m)
    _evidence_sheet(wb.create_sheet(L["evidence_sheet"]), m, out_path)
    wb.active = 0
    return wb


def _protect(ws: Any) -> None:
    """Protect against accidental edits (no password); the E cells stay editable, filters keep working."""
    p = ws.protection
    p.sheet = True
    p.autoFilter = p.sort = p.formatColumns = p.formatRows = p.formatCells = False
    p.selectLockedCells = p.selectUnlockedCells = False


def _kv(ws: Any, row: int, key: str, value: Any) -> int:
    a, b = ws.cell(row, 1, cell_text(key)), ws.cell(row, 2, cell_text("" if value is None else str(value)))
    a.font, a.fill = Font(bold=True), HEAD_FILL
    a.alignment = b.alignment = WRAP
    return row + 1


def _summary_sheet(ws: Any, m: ReportModel) -> None:
    L, c, st = m.labels, m.cover, m.status_labels
    ws.column_dimensions["A"].width, ws.column_dimensions["B"].width = 26, 90
    ws.column_dimensions["C"].width = 14
    ws.cell(1, 1, L["title"]).font = Font(bold=True, size=14)
    v = c.verification
    ver = (L["not_verified"] if not v.get("checked") else L["verified"] if v.get("valid") else L["invalid"])
    r = 3
    for k, val in ((L["organisation"], c.organisation), (L["scope"], ", ".join((c.scope or {}).get("allow") or [])),
                   (L["run"], f"{c.started} ~ {c.finished} (UTC)"), (L["run_id"], c.run_id),
                   (L["vantage"], c.vantage), (L["families"], ", ".join(c.families)), (L["inventory"], c.inventory),
                   (L["profile"], f"{c.profile} — {c.profile_title}"), (L["tool"], f"evidence-agent {c.tool_version}"),
                   (L["fingerprint"], c.fingerprint), (L["sealed"], c.sealed), (L["revision"], c.revision),
                   (L["verification"], ver)):
        r = _kv(ws, r, k, val)
    r += 1
    for j, h in enumerate((L["status"], L["total"], L["automated"]), 1):
        cell = ws.cell(r, j, h)
        cell.font, cell.fill = Font(bold=True), HEAD_FILL
    r += 1
    for s in STATUS_ORDER:
        if s == "partial" and s not in m.choices:
            continue
        ws.cell(r, 1, st[s]).fill = PatternFill("solid", fgColor=FILLS[s])
        ws.cell(r, 2, c.totals.get(s, 0))
        ws.cell(r, 3, c.automated_totals.get(s, 0))
        r += 1
    ws.cell(r, 1, L["manual"])
    ws.cell(r, 2, c.manual_count)
    r += 1
    for key, n in (("attested_count", c.attested_count), ("pending_count", c.pending_count),
                   ("excepted_count", c.excepted_count), ("overdue", c.overdue_plans)):
        ws.cell(r, 1, L[key])
        ws.cell(r, 2, n)
        r += 1
    r += 1
    ws.cell(r, 1, L["hosts"]).font = Font(bold=True)
    r += 1
    for h in c.hosts:
        ok = L["yes"] if h.get("collected") else f"{L['no']} — {h.get('error') or ''}"
        r = _kv(ws, r, str(h.get("name")), f"{h.get('address')} ({h.get('transport')}, {h.get('zone')}): "
                                           f"{L['collected']} {ok}")
    waivers = [f"{w.get('rule')} @ {w.get('host')}: {w.get('reason')} ({L['approver']} {w.get('approver')}, "
               f"{L['expires']} {w.get('expires')}" + ("" if w.get("active", True) else f", {L['expired']}") + ")"
               for w in c.waivers]
    for title, rows in ((L["deviations"], c.deviations), (L["excepted"], waivers), (L["warnings"], c.warnings)):
        if rows:
            r += 1
            ws.cell(r, 1, title).font = Font(bold=True)
            r += 1
            for x in rows:
                ws.cell(r, 2, cell_text(x)).alignment = WRAP
                r += 1


def _evidence_sheet(ws: Any, m: ReportModel, out_path: Optional[str] = None) -> None:
    L = m.labels
    cols = [(L["file"], 60), (L["host"], 14), (L["items"], 14), (L["description"], 50), (L["collected_at"], 22)]
    for j, (h, w) in enumerate(cols, 1):
        cell = ws.cell(1, j, h)
        cell.font, cell.fill, cell.border = Font(bold=True), HEAD_FILL, BORDER
        ws.column_dimensions[get_column_letter(j)].width = w
    seen: dict[str, list[str]] = {}
    info: dict[str, Any] = {}
    for it in m.items:
        for ev in it.evidence:
            seen.setdefault(ev.file, []).append(it.id)
            info[ev.file] = ev
    prefix = link_prefix(m.bundle, out_path)
    for i, f in enumerate(sorted(seen), 2):
        ev = info[f]
        for j, v in enumerate((f, ev.host, ", ".join(seen[f]), ev.description, ev.collected_at), 1):
            ws.cell(i, j, cell_text(v)).alignment = WRAP
        # a click opens the file (relative to the workbook, so it works wherever the two are copied together)
        link = ws.cell(i, 1)
        link.hyperlink = posixpath.join(prefix, f) if prefix else f
        link.style = "Hyperlink"
        link.alignment = WRAP
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:E{max(2, len(seen) + 1)}"


def write_xlsx(m: ReportModel, path: str) -> None:
    build_workbook(m, path).save(path)

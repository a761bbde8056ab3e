"""What changed between two bundles: per item and host status, findings, hosts, ports, certificates.

Why: a self-check is repeated (quarterly, after remediation); reviewers ask
"what is different since last time?". Answering from two signed bundles —
rather than from two reports — keeps the answer tied to the evidence, and the
same structure feeds ``evidence-agent diff`` (text/JSON) and the "changes since"
section of the reports.

A finding is *open* when its status is 미이행 or 부분이행 (not excepted). New =
open now and not before on the same host and rule; resolved = open before, not
now (implemented, not applicable or excepted), on a host present in both runs;
a finding that turned 점검불가 is listed as *no longer evidenced*, never as
resolved, and a removed host is reported as removed, not as fixed. Ports come
from ``facts/_network.json`` (nmap, per vantage) and from each host's
``listening`` fact; certificates from the ``tls`` fact.
"""
from __future__ import annotations

import os
from typing import Any, Iterable, Optional

from policies.engine import IMPL, LABELS, NA, NI, PART

OPEN = (NI, PART)


def _load(root: str, rel: str) -> Any:
    from collectors.bundle import read_json  # regular files only, size-capped (a FIFO or link is refused)

    try:
        return read_json(root, rel)
    except (OSError, ValueError):
        return None


def _net(root: str) -> dict[str, Any]:
    """The run-level (network) facts as stored; a missing file gives an empty dict."""
    return (_load(root, "facts/_network.json") or {}).get("facts") or {}


def _host_facts(root: str) -> Iterable[tuple[str, dict[str, Any]]]:
    """(host, facts) one host at a time: a large fleet's facts are never all in memory at once."""
    d = os.path.join(root, "facts")
    for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        if f.endswith(".json") and f != "_network.json":
            rec = _load(root, f"facts/{f}") or {}
            yield ((rec.get("host") or {}).get("name")) or f[:-5], rec.get("facts") or {}


def slim_results(r: Any) -> Any:
    """What a diff reads of results.json: runs, hosts, control and host statuses, and per finding its rule,
    status, exception and detail. Dropping the rest (evidence lists, parameters, rule texts, the evidence
    index) right after loading keeps two 500-host results in a fraction of the memory."""
    if not isinstance(r, dict):
        return r
    keep = ("rule", "status", "excepted", "detail")
    return {
        "run": r.get("run"), "hosts": r.get("hosts"), "summary": r.get("summary"),
        "controls": [{**{k: c.get(k) for k in ("id", "title", "title_en", "status", "manual", "manual_answer")
                         if k in c},
                      "hosts": [{"name": h.get("name"), "status": h.get("status"),
                                 "findings": [{k: f[k] for k in keep if k in f} for f in h.get("findings") or []]}
                                for h in c.get("hosts") or []]}
                     for c in r.get("controls") or []],
    }


def _data(fact: Any) -> dict[str, Any]:
    if not isinstance(fact, dict) or fact.get("status") == "not_collected":
        return {}
    return fact.get("data") or {}


def open_ports(root: str) -> tuple[dict[tuple[Any, ...], str], set[str]]:
    """({(source, address, proto, port): service}, sources looked at).

    A source is ``nmap@<vantage>`` for a finished scan or ``listen@<host>`` for a
    collected ``listening`` fact; ports are compared only for sources present in
    both runs (a host not collected last time has not "opened" its ports).
    """
    net = _net(root)
    sources: set[str] = set()
    out: dict[tuple[Any, ...], str] = {}
    for scan in _data(net.get("network_scan")).get("scans") or []:
        if scan.get("error"):
            continue
        src = "nmap@" + str(scan.get("vantage"))
        sources.add(src)
        for h in scan.get("hosts") or []:
            for p in h.get("ports") or []:
                if p.get("state") == "open":
                    out[(src, str(h.get("address")), str(p.get("proto")), int(p.get("port") or 0))] = \
                        str(p.get("service") or p.get("product") or "")
    for name, facts in _host_facts(root):
        d = _data(facts.get("listening"))
        if "sockets" not in d:
            continue
        sources.add("listen@" + name)
        for s in d.get("sockets") or []:
            out[("listen@" + name, str(s.get("address")), str(s.get("proto")), int(s.get("port") or 0))] = \
                str(s.get("process") or "")
    return out, sources


def certificates(root: str) -> Optional[dict[str, dict[str, Any]]]:
    """{"host:port": leaf certificate summary}; None when no TLS fact exists."""
    net = _net(root)
    if "tls" not in net:
        return None
    out = {}
    for e in _data(net.get("tls")).get("endpoints") or []:
        chain = ((e.get("certificate") or {}).get("chain")) or []
        leaf = chain[0] if chain else {}
        out[f"{e.get('host')}:{e.get('port')}"] = {
            "sha256": leaf.get("sha256"), "subject": leaf.get("subject"), "not_after": leaf.get("not_after"),
            "highest_version": e.get("highest_version")}
    return out


def _findings(results: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    out = {}
    for c in results.get("controls") or []:
        for h in c.get("hosts") or []:
            for f in h.get("findings") or []:
                out[(str(c.get("id")), str(h.get("name")), str(f.get("rule")))] = f
    return out


def _is_open(f: Optional[dict[str, Any]]) -> bool:
    return bool(f) and f.get("status") in OPEN and not f.get("excepted")  # type: ignore[union-attr]


def _fixed(f: Optional[dict[str, Any]]) -> bool:
    """Resolved means shown fixed (implemented), not applicable any more, or excepted — never merely unknown."""
    return bool(f) and (f.get("status") in (IMPL, NA) or bool(f.get("excepted")))  # type: ignore[union-attr]


def diff_bundles(old: str, new: str) -> dict[str, Any]:
    """Structured differences between bundle directories ``old`` and ``new`` (see module doc)."""
    ro = slim_results(_load(old, "results.json"))
    rn = slim_results(_load(new, "results.json"))
    if not isinstance(ro, dict) or not isinstance(rn, dict):
        raise ValueError(f"{old if not isinstance(ro, dict) else new}: no readable results.json (not a bundle?)")
    ho = {h["name"]: h for h in ro.get("hosts") or []}
    hn = {h["name"]: h for h in rn.get("hosts") or []}
    common = set(ho) & set(hn)
    fo, fn = _findings(ro), _findings(rn)
    co = {str(c.get("id")): c for c in ro.get("controls") or []}
    cn = {str(c.get("id")): c for c in rn.get("controls") or []}
    items = []
    for cid in list(cn) + [c for c in co if c not in cn]:
        a, b = co.get(cid) or {}, cn.get(cid) or {}
        hsa = {h["name"]: h.get("status") for h in a.get("hosts") or []}
        hsb = {h["name"]: h.get("status") for h in b.get("hosts") or []}
        host_changes = [{"host": h, "old": hsa.get(h), "new": hsb.get(h)}
                        for h in list(hsb) + [x for x in hsa if x not in hsb] if hsa.get(h) != hsb.get(h)]
        keys = {k for k in list(fo) + list(fn) if k[0] == cid}
        new_f = [{"host": k[1], "rule": k[2], "status": fn[k]["status"], "detail": fn[k].get("detail")}
                 for k in sorted(keys) if _is_open(fn.get(k)) and not _is_open(fo.get(k))
                 and (k[1] in common or k[1] not in ho)]
        gone = [k for k in sorted(keys) if _is_open(fo.get(k)) and not _is_open(fn.get(k)) and k[1] in common]
        resolved = [{"host": k[1], "rule": k[2], "status": fn[k]["status"], "was": fo[k]["status"],
                     "detail": fn[k].get("detail")} for k in gone if _fixed(fn.get(k))]
        unverified = [{"host": k[1], "rule": k[2], "status": (fn.get(k) or {}).get("status"), "was": fo[k]["status"],
                       "detail": (fn.get(k) or {}).get("detail")} for k in gone if not _fixed(fn.get(k))]
        changed = [{"host": k[1], "rule": k[2], "old": fo[k].get("detail"), "new": fn[k].get("detail")}
                   for k in sorted(keys) if _is_open(fo.get(k)) and _is_open(fn.get(k))
                   and fo[k].get("detail") != fn[k].get("detail")]
        declared = ((a.get("manual_answer") or {}).get("status"), (b.get("manual_answer") or {}).get("status"))
        if a.get("status") != b.get("status") or host_changes or new_f or resolved or unverified or changed or \
                declared[0] != declared[1]:
            items.append({"id": cid, "title": b.get("title") or a.get("title"),
                          "title_en": b.get("title_en") or a.get("title_en"),
                          "old": a.get("status"), "new": b.get("status"), "hosts": host_changes,
                          "new_findings": new_f, "resolved_findings": resolved, "unverified_findings": unverified,
                          "changed_findings": changed,
                          **({"declared": {"old": declared[0], "new": declared[1]}}
                             if declared[0] != declared[1] else {})})
    collected = [{"host": h, "old": ho[h].get("collected"), "new": hn[h].get("collected"),
                  "error": hn[h].get("error")} for h in sorted(common)
                 if ho[h].get("collected") != hn[h].get("collected")]
    out: dict[str, Any] = {
        "schema": "evidence-agent/diff/v1",
        "old": _run_ref(old, ro), "new": _run_ref(new, rn),
        "hosts_added": sorted(set(hn) - set(ho)), "hosts_removed": sorted(set(ho) - set(hn)),
        "collection_changed": collected, "items": items,
    }
    (po, so), (pn, sn) = open_ports(old), open_ports(new)
    both = so & sn
    if both:
        po = {k: v for k, v in po.items() if k[0] in both}
        pn = {k: v for k, v in pn.items() if k[0] in both}
        out["ports"] = {"compared": sorted(both),
                        "opened": [_port(k, pn[k]) for k in sorted(set(pn) - set(po), key=str)],
                        "closed": [_port(k, po[k]) for k in sorted(set(po) - set(pn), key=str)]}
    xo, xn = certificates(old), certificates(new)
    if xo is not None and xn is not None:
        out["certificates"] = {
            "added": [{"endpoint": k, **xn[k]} for k in sorted(set(xn) - set(xo))],
            "removed": [{"endpoint": k, **xo[k]} for k in sorted(set(xo) - set(xn))],
            "changed": [{"endpoint": k, "old": xo[k], "new": xn[k]} for k in sorted(set(xo) & set(xn))
                        if xo[k] != xn[k]]}
    return out


def _run_ref(root: str, r: dict[str, Any]) -> dict[str, Any]:
    run = r.get("run") or {}
    return {"bundle": os.path.abspath(root), "run_id": run.get("id"), "finished": run.get("finished"),
            "profile": run.get("profile"), "vantage": run.get("vantage")}


def _port(k: tuple[Any, ...], service: str) -> dict[str, Any]:
    return {"source": k[0], "address": k[1], "proto": k[2], "port": k[3], "service": service}


def is_empty(d: dict[str, Any]) -> bool:
    p, c = d.get("ports") or {}, d.get("certificates") or {}
    return not (d["hosts_added"] or d["hosts_removed"] or d["collection_changed"] or d["items"]
                or p.get("opened") or p.get("closed") or c.get("added") or c.get("removed") or c.get("changed"))


def _lbl(s: Optional[str], lang: str) -> str:
    return LABELS[lang].get(s or "", "—") if s else "—"


def _txt(d: Any, lang: str) -> str:
    return str(d.get(lang) or d.get("ko") or "") if isinstance(d, dict) else str(d or "")


def diff_lines(d: dict[str, Any], lang: str = "ko") -> Iterable[str]:
    """Human lines (used by the text format and by the HTML/Markdown "changes since" section)."""
    ko = lang == "ko"
    if d["hosts_added"]:
        yield ("호스트 추가: " if ko else "hosts added: ") + ", ".join(d["hosts_added"])
    if d["hosts_removed"]:
        yield ("호스트 제외: " if ko else "hosts removed: ") + ", ".join(d["hosts_removed"])
    for c in d["collection_changed"]:
        state = ("수집됨" if ko else "collected") if c["new"] else (("수집 실패: " if ko else "not collected: ")
                                                                  + str(c.get("error")))
        yield f"{c['host']}: {state}"
    for it in d["items"]:
        title = it["title"] if ko else (it.get("title_en") or it["title"])
        head = f"{it['id']} {title or ''}".strip()
        if it["old"] != it["new"]:
            head += f": {_lbl(it['old'], lang)} → {_lbl(it['new'], lang)}"
        yield head
        for h in it["hosts"]:
            yield f"  {h['host']}: {_lbl(h['old'], lang)} → {_lbl(h['new'], lang)}"
        for f in it["new_findings"]:
            yield f"  + {f['host']} [{f['rule']}] {_txt(f['detail'], lang)}"
        for f in it["resolved_findings"]:
            yield f"  - {f['host']} [{f['rule']}] " + ("해소: " if ko else "resolved: ") + _txt(f["detail"], lang)
        for f in it.get("unverified_findings") or []:
            yield f"  ? {f['host']} [{f['rule']}] " + ("확인 불가로 바뀜: " if ko else "no longer evidenced: ") + \
                _txt(f["detail"], lang)
        for f in it["changed_findings"]:
            yield f"  ~ {f['host']} [{f['rule']}] {_txt(f['old'], lang)} ⇒ {_txt(f['new'], lang)}"
        if "declared" in it:
            yield ("  담당자 선언: " if ko else "  declared: ") + \
                f"{_lbl(it['declared']['old'], lang)} → {_lbl(it['declared']['new'], lang)}"
    p = d.get("ports") or {}
    for x in p.get("opened") or []:
        yield ("포트 열림: " if ko else "port opened: ") + _port_txt(x)
    for x in p.get("closed") or []:
        yield ("포트 닫힘: " if ko else "port closed: ") + _port_txt(x)
    c = d.get("certificates") or {}
    for x in c.get("added") or []:
        yield ("인증서 추가: " if ko else "certificate added: ") + f"{x['endpoint']} {x.get('subject')}"
    for x in c.get("removed") or []:
        yield ("인증서 제거: " if ko else "certificate removed: ") + f"{x['endpoint']}"
    for x in c.get("changed") or []:
        yield ("인증서 변경: " if ko else "certificate changed: ") + \
            f"{x['endpoint']} {x['old'].get('not_after')} → {x['new'].get('not_after')}"


def _port_txt(x: dict[str, Any]) -> str:
    return " ".join(str(p) for p in (x["address"], f"{x['proto']}/{x['port']}", x["service"], f"({x['source']})") if p)


def render_text(d: dict[str, Any], lang: str = "ko") -> str:
    ko = lang == "ko"
    head = (f"{'기준' if ko else 'old'}: {d['old']['bundle']} ({d['old']['finished']})\n"
            f"{'비교' if ko else 'new'}: {d['new']['bundle']} ({d['new']['finished']})")
    lines = list(diff_lines(d, lang))
    return head + "\n" + ("\n".join(lines) if lines else ("변경 사항 없음" if ko else "no changes"))

"""Anti-malware (guide 14.1.1): engine, running, real-time scanning, signature age, scheduled scans.

Why: the guide asks for an anti-virus program on important servers, updated
regularly, with real-time scanning and periodic scans. Products are recognised
from ``probes/data/antivirus.yaml`` (process, service and install-path names);
only what the host shows is reported: a managed EDR agent whose schedule lives
in a vendor console gets ``scheduled_scan: null``, not false.

Fact schema (``data``)::

    products: [{
        name, vendor, verified: bool,     # verified: the table's names were checked against the product
        installed: bool,                  # an install path, service or process was found
        running: bool|null,               # one of its processes runs
        realtime: bool|null,              # real-time/on-access scanning visible
        signature_date: str|null,         # ISO-8601 UTC
        signature_age_days: int|null,
        scheduled_scan: bool|null,        # a crontab/timer runs its scanner
        services: [{unit, enabled: bool|null, active: bool|null}],
        matched: [str],                   # what recognised it ("process clamd", "path /etc/clamav"...)
    }]
    any_installed: bool|null
    any_running: bool|null
    any_realtime: bool|null
    newest_signature_age_days: int|null
    schedule_entries: [str]              # crontab/timer lines naming a scanner (file:line)
"""

from __future__ import annotations

import re
import shlex
from datetime import datetime
from typing import Any, Mapping, Optional

from ..base import (
    CommandSpec, Fact, HostProbe, LazyCommands, Problem, RawOutput, ReasonCode, about, fact_with_problems,
    not_collected,
)
from .common import (
    NOW,
    PROCESSES,
    SERVICES,
    days_since,
    iso,
    load_data,
    needs_privilege,
    now_of,
    processes_and_services,
    running,
    split_parts,
    unit_state,
    usable,
)



def _products() -> list[dict[str, Any]]:
    """probes/data/antivirus.yaml's products, read on first use (load_data caches it), never at import."""
    return load_data("antivirus.yaml")["products"]


def _files_script() -> str:
    paths: list[str] = []
    sigs: list[str] = []
    for p in _products():
        paths += [x for x in p.get("paths", []) if x not in paths]
        sigs += [x for x in p.get("signature_files", []) if x not in sigs]
    q = " ".join(shlex.quote(x) for x in paths)
    s = " ".join(shlex.quote(x) for x in sigs)
    return (
        f'echo \'### paths\'; for f in {q}; do [ -e "$f" ] && echo "$f"; done; '
        f"echo '### signatures'; for f in {s}; do [ -f \"$f\" ] || continue; "
        'echo "$(stat -c %Y "$f" 2>/dev/null) $f $(dd if="$f" bs=64 count=1 2>/dev/null | tr -c '
        '\'[:print:]\' \' \')"; '
        "done; "
        "echo '### clamd-onaccess'; for f in /etc/clamav/clamd.conf /etc/clamd.d/*.conf /etc/clamd.conf; do "
        '[ -f "$f" ] && grep -H -E \'^[[:space:]]*(OnAccess[A-Za-z]*|ScanOnAccess)[[:space:]]\' "$f"; done; '
        "echo '### mdatp'; if command -v mdatp >/dev/null 2>&1; then $_ea_g mdatp health 2>&1 | grep -E "
        "'^(healthy|real_time_protection_enabled|definitions_updated_minutes_ago|definitions_status|"
        "app_version|definitions_version)[[:space:]]'; else echo absent; fi; true"
    )


def _sched_script() -> str:
    words = sorted({w for p in _products() for w in p.get("scan_commands", [])})
    pat = shlex.quote("|".join(re.escape(w) for w in words))
    return (
        'echo "uid=${_ea_uid:-$(id -u)}"; set --; '
        "for d in /var/spool/cron/crontabs /var/spool/cron /etc/cron.d /etc/crontabs; do "
        '[ -d "$d" ] && [ ! -r "$d" ] && echo "$d: (not readable)"; done; '
        "for f in /etc/crontab /etc/anacrontab /etc/cron.d/* /etc/cron.hourly/* /etc/cron.daily/* "
        "/etc/cron.weekly/* "
        "/etc/cron.monthly/* /var/spool/cron/crontabs/* /var/spool/cron/* /etc/crontabs/* "
        "/etc/systemd/system/*.service "
        '/etc/systemd/system/*.timer; do [ -f "$f" ] || continue; '
        # one grep over every readable file (a grep per file was ~20 ms of target CPU)
        'if [ -r "$f" ]; then set -- "$@" "$f"; else echo "$f: (not readable)"; fi; '
        f'done; [ $# -gt 0 ] && grep -H -n -E {pat} "$@" | cut -c1-300; true'
    )


def _commands() -> tuple[CommandSpec, ...]:
    """Built from the products table on first use (see LazyCommands)."""
    return (
        CommandSpec("av_files", _files_script(), timeout=20, may_hang=False),
        CommandSpec("av_schedule", _sched_script(), timeout=15, privileged=True, may_hang=False),
        PROCESSES,
        SERVICES,
        NOW,
    )


COMMANDS = LazyCommands(_commands)

_CLAM_HDR = re.compile(r"ClamAV-VDB:\s*(\d{1,2} \w{3} \d{4} \d\d:\d\d [+-]\d{4})")


def parse_files(text: str) -> dict[str, Any]:
    parts = dict(split_parts(text))
    paths = {ln.strip() for ln in parts.get("paths", []) if ln.startswith("/")}
    sigs: dict[str, int] = {}
    for ln in parts.get("signatures", []):
        m = re.match(r"^(\d+)?\s*(/\S+)\s*(.*)$", ln)
        if not m:
            continue
        t: Optional[int] = int(m.group(1)) if m.group(1) else None
        h = _CLAM_HDR.search(m.group(3))
        if h:
            try:
                t = int(datetime.strptime(h.group(1), "%d %b %Y %H:%M %z").timestamp())
            except ValueError:
                pass
        if t is not None:
            sigs[m.group(2)] = t
    onaccess: dict[str, str] = {}
    for ln in parts.get("clamd-onaccess", []):
        _, _, rest = ln.partition(":")
        f = rest.split(None, 1)
        if len(f) == 2:
            onaccess.setdefault(f[0], f[1].strip())
    mdatp: Optional[dict[str, str]] = None
    md = [ln for ln in parts.get("mdatp", []) if ln.strip()]
    if md and md[0].strip() != "absent":
        mdatp = {}
        for ln in md:
            k, _, v = ln.partition(":")
            mdatp[k.strip()] = v.strip().strip('"')
    return {"paths": paths, "signatures": sigs, "onaccess": onaccess, "mdatp": mdatp}


def parse_schedule(text: str) -> tuple[list[str], bool]:
    """(matching crontab/timer lines, some location was unreadable)."""
    hits, unreadable = [], False
    for ln in text.splitlines():
        if ln.startswith("uid="):
            continue
        if "(not readable)" in ln or needs_privilege(ln):
            unreadable = True
            continue
        if ln.strip():
            hits.append(ln.strip()[:300])
    return hits, unreadable


def _yes(v: Optional[str]) -> Optional[bool]:
    if v is None:
        return None
    v = v.split()[0].lower() if v.split() else ""
    return True if v in ("true", "yes", "1") else False if v in ("false", "no", "0") else None


def parse(outputs: Mapping[str, RawOutput]) -> Fact:
    problems: list[str] = []
    files_out, prob = usable(outputs, "av_files")
    if files_out is None:
        return not_collected("antivirus", about(prob, "install paths not read"))
    files = parse_files(files_out.output)
    procs, svc = processes_and_services(outputs, problems)
    sched_out, schprob = usable(outputs, "av_schedule")
    sched_hits: list[str]
    if sched_out is None:
        problems.append(about(schprob, "schedules not read"))
        sched_hits, sched_unreadable = [], True
    else:
        sched_hits, sched_unreadable = parse_schedule(sched_out.output)
        if sched_unreadable:
            problems.append(Problem("some crontabs not readable (needs privilege)", ReasonCode.PERMISSION))
    now = now_of(outputs)
    if now is None:
        problems.append("target clock not read: signature ages not computed")

    found = []
    for p in _products():
        matched = [f"path {x}" for x in p.get("paths", []) if x in files["paths"]]
        is_running = running(procs, p.get("processes", []))
        if is_running:
            names = {n[:15] for n in p.get("processes", [])}
            matched += sorted({f"process {q['comm']}" for q in procs or [] if q["comm"][:15] in names})
        units = []
        for u in p.get("services", []):
            st = unit_state(svc, [u])
            if st["unit"]:
                units.append(st)
                matched.append(f"service {st['unit']}")
        sig_times = [files["signatures"][f] for f in p.get("signature_files", []) if f in files["signatures"]]
        if sig_times:
            matched.append("signature files")
        mdatp = files["mdatp"] if p["name"].startswith("Microsoft Defender") else None
        if mdatp is not None:
            matched.append("mdatp health")
        if not matched:
            continue
        if is_running is None and any(u["active"] for u in units):
            is_running = True
        rt_procs = p.get("realtime_processes", [])
        realtime: Optional[bool] = None
        if p["name"] == "ClamAV":
            oa = files["onaccess"]
            configured = (
                bool(oa.get("OnAccessIncludePath") or oa.get("OnAccessMountPath"))
                or _yes(oa.get("ScanOnAccess")) is True
            )
            clamonacc = running(procs, ["clamonacc"])
            clamd = running(procs, ["clamd"])
            if clamonacc or (configured and clamd and _yes(oa.get("ScanOnAccess")) is True):
                realtime = True
            elif procs is not None:
                realtime = False
        elif mdatp is not None:
            realtime = _yes(mdatp.get("real_time_protection_enabled"))
        elif rt_procs:
            rt = running(procs, rt_procs)
            realtime = True if rt else (False if rt is not None else None)
        sig_time = max(sig_times) if sig_times else None
        age = days_since(sig_time, now)
        if mdatp is not None and mdatp.get("definitions_updated_minutes_ago", "").isdecimal():
            age = int(mdatp["definitions_updated_minutes_ago"]) // 1440
            if now is not None:
                sig_time = now - int(mdatp["definitions_updated_minutes_ago"]) * 60
        words = p.get("scan_commands", [])
        hit = any(any(w in h for w in words) for h in sched_hits) if words else False
        if hit:
            scheduled: Optional[bool] = True
        elif p.get("managed") or sched_unreadable:
            scheduled = None
        else:
            scheduled = False
        found.append(
            {
                "name": p["name"],
                "vendor": p.get("vendor"),
                "verified": bool(p.get("verified")),
                "installed": True,
                "running": is_running,
                "realtime": realtime,
                "signature_date": iso(sig_time),
                "signature_age_days": age,
                "scheduled_scan": scheduled,
                "services": units,
                "matched": matched,
            }
        )

    def _any(key: str) -> Optional[bool]:
        vals = [f[key] for f in found]
        if any(v is True for v in vals):
            return True
        if found and all(v is False for v in vals):
            return False
        if not found:
            return False if procs is not None else None
        return None

    ages = [f["signature_age_days"] for f in found if f["signature_age_days"] is not None]
    data = {
        "products": found,
        "any_installed": bool(found) if (procs is not None or found) else None,
        "any_running": _any("running"),
        "any_realtime": _any("realtime"),
        "newest_signature_age_days": min(ages) if ages else None,
        "schedule_entries": sched_hits[:50],
    }
    return fact_with_problems("antivirus", data, problems)


PROBE = HostProbe(
    name="antivirus",
    items=("14.1.1",),
    commands=COMMANDS,
    parse=parse,
    description_ko="백신(악성코드 방지) 프로그램 설치·실행·실시간 감시·엔진 업데이트·정기 검사 현황",
    description_en="Anti-malware: engine, running, real-time scanning, signature age, scheduled scans",
)

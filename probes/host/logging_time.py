"""Logging and time (guide 7.2.1): log daemons, retention, auditd, time synchronisation.

Why: the guide asks that logs needed for incident analysis be kept for a set
period and that system clocks be accurate (synchronised) so logs line up.
Retention is read from configuration (logrotate, journald, auditd) and, as a
cross-check, observed on disk (the oldest rotated file, the oldest journal
entry). Time synchronisation is read from the running daemon (``chronyc
tracking``, ``ntpq -p``) or ``timedatectl``; output that cannot be understood
(another locale, an old version) leaves ``synchronized`` null, never true.

Fact schema (``data``)::

    syslog: {daemon: "rsyslog"|"syslog-ng"|"syslogd"|null, running: bool|null,
             remote_forwarding: bool|null, remote_targets: [str]}
    journald: {installed: bool|null, running: bool|null, storage: str|null, persistent: bool|null,
               max_retention_days: float|null, system_max_use: str|null,
               oldest_entry: str|null, span_days: int|null, disk_usage: str|null}
    logrotate: {installed: bool|null, configured: bool, default_period: str|null, default_rotate: int|null,
                files: [{path, period: str|null, rotate: int|null, maxage: int|null,
                         size_based: bool, retention_days: int|null, config: str}]}
    syslog_retention_days: int|null     # configured, /var/log/syslog or /var/log/messages
    auth_log_retention_days: int|null   # configured, /var/log/auth.log or /var/log/secure
    observed: [{log, files: int, oldest: str, span_days: int|null}]   # rotated files present on disk
    auditd: {installed: bool|null, running: bool|null, enabled: bool|null, rules: int|null,
             log_file: str|null, num_logs: int|null, max_log_file_mb: int|null,
             max_log_file_action: str|null}
    time: {service: "chronyd"|"ntpd"|"systemd-timesyncd"|"openntpd"|null,
           services: {name: {running: bool|null, enabled: bool|null}},
           synchronized: bool|null,            # null also when no time service runs (see service)
           sync_source: "chronyc"|"ntpq"|"timedatectl"|null, ntp_enabled: bool|null,
           reference: str|null, stratum: int|null, offset_seconds: float|null,
           servers: [str], timezone: str|null}
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any, Mapping, Optional

from ..base import (
    CommandSpec, Fact, HostProbe, Problem, RawOutput, ReasonCode, about, fact_with_problems, not_collected,
)
from .common import (
    COMMENT,
    NOW,
    PROCESSES,
    SERVICES,
    days_since,
    iso,
    now_of,
    processes_and_services,
    running,
    show_files,
    split_files,
    split_parts,
    to_int,
    uid_of,
    unit_state,
    usable,
)

LOG_CONF = CommandSpec(
    "log_conf",
    "echo '### journald'; set --; for f in /etc/systemd/journald.conf /etc/systemd/journald.conf.d/*.conf "
    '/usr/lib/systemd/journald.conf.d/*.conf /run/systemd/journald.conf.d/*.conf; do [ -f "$f" ] && '
    'set -- "$@" "$f"; done; [ $# -gt 0 ] && '
    "grep -H -E '^[[:space:]]*(Storage|MaxRetentionSec|MaxFileSec|SystemMaxUse|ForwardToSyslog)"
    "[[:space:]]*=' \"$@\"; "
    "echo '### journal-dir'; if [ -d /var/log/journal ]; then echo present; else echo absent; fi; "
    "echo '### forwarding'; set --; for f in /etc/rsyslog.conf /etc/rsyslog.d/*.conf /etc/syslog-ng/syslog-ng.conf "
    '/etc/syslog-ng/conf.d/*.conf /etc/syslog.conf; do [ -f "$f" ] && set -- "$@" "$f"; done; [ $# -gt 0 ] && '
    "grep -H -E '@@?[[:alnum:][(]|omfwd|omrelp|network\\(|tcp\\(|udp\\(|syslog\\(' \"$@\" | cut -c1-200; "
    "echo '### logrotate-bin'; command -v logrotate || echo absent; "
    "echo '### logrotate'; " + show_files("/etc/logrotate.conf /etc/logrotate.d/*", drop=COMMENT, max_lines=200)
    + "true",
    timeout=15,
    may_hang=False,
)
LOG_FILES = CommandSpec(
    "log_files",
    'echo "uid=${_ea_uid:-$(id -u)}"; for f in /var/log/syslog* /var/log/messages* /var/log/auth.log* /var/log/secure* '
    '/var/log/audit/audit.log*; do [ -e "$f" ] && stat -c \'%Y %s %n\' "$f"; done; '
    "[ -d /var/log/audit ] && [ ! -r /var/log/audit ] && echo '/var/log/audit: (not readable)'; true",
    timeout=10,
    privileged=True,
    may_hang=False,
)
JOURNAL = CommandSpec(
    "journal_span",
    "echo \"uid=${_ea_uid:-$(id -u)}\"; if command -v journalctl >/dev/null 2>&1; then echo '### disk-usage'; "
    "$_ea_g journalctl --disk-usage 2>&1 | head -n 3; echo '### oldest'; $_ea_g journalctl --no-pager -o short-unix 2>&1 | "
    # awk stops journalctl after 5 lines (head + awk was one process more)
    "awk 'NR > 5 { exit } { if ($1 ~ /^[0-9]+(\\.[0-9]+)?$/) print $1; else print substr($0, 1, 120) }'; "
    "else echo '### absent'; fi",
    timeout=20,
    privileged=True,
    may_hang=False,
)
AUDITD = CommandSpec(
    "auditd",
    "echo \"uid=${_ea_uid:-$(id -u)}\"; echo '### conf'; if [ -r /etc/audit/auditd.conf ]; then grep -E "
    "'^[[:space:]]*(log_file|num_logs|max_log_file|max_log_file_action|space_left_action|disk_full_action)"
    "[[:space:]]*=' /etc/audit/auditd.conf; elif [ -e /etc/audit/auditd.conf ]; then echo '(not readable)'; "
    "else echo absent; fi; echo '### status'; if command -v auditctl >/dev/null 2>&1; then $_ea_g auditctl -s 2>&1 "
    "| "
    "head -n 20; echo '### rules'; $_ea_g auditctl -l 2>&1 | head -n 500; else echo absent; fi",
    timeout=15,
    privileged=True,
    may_hang=False,
)
TIME_SYNC = CommandSpec(
    "time_sync",
    "echo '### chronyc'; if command -v chronyc >/dev/null 2>&1; then $_ea_g chronyc -n tracking 2>&1; echo "
    "\"rc=$?\"; "
    "else echo absent; fi; "
    "echo '### ntpq'; if command -v ntpq >/dev/null 2>&1; then $_ea_g ntpq -pn 2>&1 | head -n 30; else echo "
    "absent; fi; "
    "echo '### timedatectl'; if command -v timedatectl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then "
    "$_ea_g timedatectl show 2>&1 || $_ea_g timedatectl status 2>&1; else echo absent; fi; "
    "echo '### servers'; for f in /etc/chrony.conf /etc/chrony/chrony.conf /etc/chrony/sources.d/*.sources "
    "/etc/chrony/conf.d/*.conf /etc/ntp.conf /etc/ntpsec/ntp.conf /etc/systemd/timesyncd.conf "
    '/etc/systemd/timesyncd.conf.d/*.conf /etc/openntpd/ntpd.conf; do [ -f "$f" ] && '
    "grep -H -E '^[[:space:]]*(server|pool|peer|servers|NTP|FallbackNTP)[[:space:]=]' \"$f\"; done; true",
    timeout=20,
    may_hang=False,
)
COMMANDS = (LOG_CONF, LOG_FILES, JOURNAL, AUDITD, TIME_SYNC, PROCESSES, SERVICES, NOW)

_PERIOD_DAYS = {"hourly": 1, "daily": 1, "weekly": 7, "monthly": 30, "yearly": 365}
_SYSLOG_PATHS = ("/var/log/syslog", "/var/log/messages")
_AUTH_PATHS = ("/var/log/auth.log", "/var/log/secure")


def _seconds(s: str) -> Optional[float]:
    """systemd time span → seconds (None for 0/infinity/garbage)."""
    s = s.strip()
    if s in ("", "0", "infinity"):
        return None
    units = {
        "": 1,
        "s": 1,
        "sec": 1,
        "second": 1,
        "seconds": 1,
        "m": 60,
        "min": 60,
        "minute": 60,
        "minutes": 60,
        "h": 3600,
        "hr": 3600,
        "hour": 3600,
        "hours": 3600,
        "d": 86400,
        "day": 86400,
        "days": 86400,
        "w": 604800,
        "week": 604800,
        "weeks": 604800,
        "month": 2629800,
        "months": 2629800,
        "y": 31557600,
        "year": 31557600,
        "years": 31557600,
    }
    total = 0.0
    found = False
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", s):
        if unit not in units:
            return None
        total += float(num) * units[unit]
        found = True
    return total if found and total > 0 else None


def parse_logrotate(files: list[tuple[str, list[str]]]) -> dict[str, Any]:
    """Global defaults of logrotate.conf, then one entry per path pattern of every stanza."""
    defaults: dict[str, Any] = {"period": None, "rotate": None, "maxage": None, "size": False}
    entries: list[dict[str, Any]] = []

    def apply(d: dict[str, Any], words: list[str]) -> None:
        if not words:
            return
        k = words[0]
        if k in _PERIOD_DAYS:  # the last of period/size wins, as in logrotate
            d["period"] = k
            d["size"] = False
        elif k == "rotate" and len(words) > 1:
            d["rotate"] = to_int(words[1])
        elif k == "maxage" and len(words) > 1:
            d["maxage"] = to_int(words[1])
        elif k == "size" or (k.startswith("size=")):
            d["size"] = True

    main = next((lines for p, lines in files if p == "/etc/logrotate.conf"), [])
    depth = 0
    for ln in main:
        s = ln.strip()
        if "{" in s:
            depth += 1
        if depth == 0 and s and not s.startswith("include"):
            apply(defaults, s.split())
        if "}" in s:
            depth = max(0, depth - 1)
    for path, lines in files:
        pending: list[str] = []
        cur: Optional[dict[str, Any]] = None
        script = False
        for ln in lines:
            s = ln.strip()
            if script:
                if s == "endscript":
                    script = False
                continue
            if s in ("postrotate", "prerotate", "firstaction", "lastaction", "preremove"):
                script = True
                continue
            if cur is None:
                head, brace, rest = s.partition("{")
                pending += [w for w in head.split() if w.startswith("/") or "*" in w]
                if brace:
                    cur = dict(defaults)
                    if rest.strip() and rest.strip() != "}":
                        apply(cur, rest.replace("}", "").split())
                    if "}" in rest:
                        entries += _entries(pending, cur, path)
                        pending, cur = [], None
                continue
            if s.startswith("}"):
                entries += _entries(pending, cur, path)
                pending, cur = [], None
                continue
            apply(cur, s.split())
    return {
        "installed": None,
        "configured": bool(files),
        "default_period": defaults["period"],
        "default_rotate": defaults["rotate"],
        "files": entries,
    }


def _entries(patterns: list[str], d: dict[str, Any], config: str) -> list[dict[str, Any]]:
    size_based = d["size"] is True
    ret: Optional[int] = None
    if not size_based and d["period"] and d["rotate"] is not None:
        ret = max(1, int(d["rotate"] * _PERIOD_DAYS[d["period"]])) if d["rotate"] > 0 else 0
    if d["maxage"] is not None and ret is not None:
        ret = min(ret, d["maxage"])
    return [
        {
            "path": p,
            "period": d["period"],
            "rotate": d["rotate"],
            "maxage": d["maxage"],
            "size_based": size_based,
            "retention_days": ret,
            "config": config,
        }
        for p in patterns
    ]


def retention_for(entries: list[dict[str, Any]], paths: tuple[str, ...]) -> Optional[int]:
    for want in paths:
        for e in entries:
            if fnmatch.fnmatch(want, e["path"]):
                return e["retention_days"]
    return None


def parse_log_files(text: str, now: Optional[int]) -> tuple[list[dict[str, Any]], bool]:
    groups: dict[str, list[int]] = {}
    unreadable = "(not readable)" in text
    for ln in text.splitlines():
        m = re.match(r"^(\d+) \d+ (/var/log/\S+)$", ln.strip())
        if not m:
            continue
        base = re.sub(r"(\.\d+)?(\.gz|\.xz|\.bz2|\.zst)?$", "", m.group(2))
        base = re.sub(r"-\d{8,10}$", "", base)
        groups.setdefault(base, []).append(int(m.group(1)))
    out = [
        {"log": k, "files": len(v), "oldest": iso(min(v)), "span_days": days_since(min(v), now)}
        for k, v in sorted(groups.items())
    ]
    return out, unreadable


def parse_journal(text: str, now: Optional[int]) -> dict[str, Any]:
    parts = dict(split_parts(text))
    d: dict[str, Any] = {"oldest_entry": None, "span_days": None, "disk_usage": None}
    du = " ".join(parts.get("disk-usage", []))
    m = re.search(r"take up ([\d.]+\s*[KMGTPE]?i?B?)", du)
    if m:
        d["disk_usage"] = m.group(1).strip()
    for ln in parts.get("oldest", []):
        if re.match(r"^\d+(\.\d+)?$", ln.strip()):
            t = int(float(ln.strip()))
            d["oldest_entry"], d["span_days"] = iso(t), days_since(t, now)
            break
    return d


def parse_auditd(text: str) -> dict[str, Any]:
    parts = dict(split_parts(text))
    d: dict[str, Any] = {
        "rules": None,
        "log_file": None,
        "num_logs": None,
        "max_log_file_mb": None,
        "max_log_file_action": None,
        "enabled_flag": None,
        "conf_readable": None,
    }
    conf = parts.get("conf", [])
    if conf[:1] == ["(not readable)"]:
        d["conf_readable"] = False
    elif conf[:1] != ["absent"]:
        d["conf_readable"] = True
        kv = {}
        for ln in conf:
            k, _, v = ln.partition("=")
            kv[k.strip()] = v.strip()
        d["log_file"] = kv.get("log_file")
        d["num_logs"] = to_int(kv.get("num_logs"))
        d["max_log_file_mb"] = to_int(kv.get("max_log_file"))
        d["max_log_file_action"] = kv.get("max_log_file_action")
    status = parts.get("status", [])
    m = re.search(r"^enabled (\d)", "\n".join(status), re.M)
    if m:
        d["enabled_flag"] = int(m.group(1))
    rules = parts.get("rules")
    if rules is not None:
        body = [ln for ln in rules if ln.strip()]
        if body == ["No rules"]:
            d["rules"] = 0
        elif body and all(ln.startswith("-") for ln in body):
            d["rules"] = len(body)
    return d


def parse_time(text: str) -> dict[str, Any]:
    parts = dict(split_parts(text))
    d: dict[str, Any] = {
        "synchronized": None,
        "sync_source": None,
        "reference": None,
        "stratum": None,
        "offset_seconds": None,
        "servers": [],
        "timezone": None,
        "ntp_enabled": None,
    }
    chrony = parts.get("chronyc", [])
    tracking = "\n".join(chrony)
    leap_m = re.search(r"^Leap status[ \t]*:[ \t]*(.*)$", tracking, re.M)  # an empty value stays on its line
    if leap_m:
        leap = leap_m.group(1).strip()
        ref = re.search(r"^Reference ID\s*:\s*(\S+)(?:\s+\(([^)]*)\))?", tracking, re.M)
        strat = re.search(r"^Stratum\s*:\s*(\d+)", tracking, re.M)
        off = re.search(r"^System time\s*:\s*([\d.]+) seconds (fast|slow)", tracking, re.M)
        d["sync_source"] = "chronyc"
        d["reference"] = (ref.group(2) or ref.group(1)) if ref else None
        d["stratum"] = int(strat.group(1)) if strat else None
        if off:
            d["offset_seconds"] = float(off.group(1)) * (1 if off.group(2) == "fast" else -1)
        d["synchronized"] = (
            leap != "Not synchronised"
            and (d["stratum"] or 16) < 16
            and (ref is None or ref.group(1) != "00000000")
        )
    ntpq = parts.get("ntpq", [])
    if d["synchronized"] is None and ntpq and ntpq[0].strip() != "absent":
        peers = [ln for ln in ntpq if re.match(r"^[ *+#ox.-]\S", ln) and not ln.startswith("=")]
        if any("remote" in ln and "refid" in ln for ln in ntpq):
            sys_peer = [ln for ln in peers if ln.startswith(("*", "o"))]
            d["sync_source"] = "ntpq"
            d["synchronized"] = bool(sys_peer)
            if sys_peer:
                f = sys_peer[0][1:].split()
                d["reference"] = f[0]
                d["stratum"] = to_int(f[2]) if len(f) > 2 else None
                try:
                    d["offset_seconds"] = float(f[8]) / 1000.0 if len(f) > 8 else None
                except ValueError:
                    pass
    tdc = "\n".join(parts.get("timedatectl", []))
    m = re.search(r"^NTPSynchronized=(yes|no)$", tdc, re.M) or re.search(
        r"^\s*(?:System clock synchronized|NTP synchronized):\s*(yes|no)\s*$", tdc, re.M
    )
    if m and d["synchronized"] is None:
        d["synchronized"] = m.group(1) == "yes"
        d["sync_source"] = "timedatectl"
    m = re.search(r"^NTP=(yes|no)$", tdc, re.M) or re.search(
        r"^\s*(?:NTP service|NTP enabled|Network time on):\s*(\S+)\s*$", tdc, re.M
    )
    if m:
        d["ntp_enabled"] = m.group(1) in ("yes", "active")
    m = re.search(r"^Timezone=(\S+)$", tdc, re.M) or re.search(r"^\s*Time zone:\s*(\S+)", tdc, re.M)
    if m:
        d["timezone"] = m.group(1)
    servers: list[str] = []
    for ln in parts.get("servers", []):
        _, _, rest = ln.partition(":")
        f = rest.replace("=", " ").split()
        if len(f) >= 2:
            for s in f[1:] if f[0] in ("NTP", "FallbackNTP", "servers") else f[1:2]:
                if s not in servers and not s.startswith("#"):
                    servers.append(s)
    d["servers"] = servers
    return d


def parse(outputs: Mapping[str, RawOutput]) -> Fact:
    conf_out, prob = usable(outputs, "log_conf")
    ts_out, tprob = usable(outputs, "time_sync")
    if conf_out is None and ts_out is None:
        return not_collected("logging_time", Problem(f"log and time configuration not read: {prob}; {tprob}",
                                                     prob.code if prob else ReasonCode.OTHER))
    problems: list[str] = []
    now = now_of(outputs)
    if now is None:
        problems.append("target clock not read: ages not computed")
    procs, svc = processes_and_services(outputs, problems)

    parts = dict(split_parts(conf_out.output)) if conf_out is not None else {}
    if conf_out is None:
        problems.append(about(prob, "log configuration not read"))

    # syslog daemon and forwarding
    daemon = None
    for name, procnames in (
        ("rsyslog", ["rsyslogd"]),
        ("syslog-ng", ["syslog-ng"]),
        ("syslogd", ["syslogd"]),
    ):
        st = unit_state(svc, [name if name != "syslogd" else "syslog"])
        if running(procs, procnames) or st["active"]:
            daemon = name
            break
    targets = []
    for ln in parts.get("forwarding", []):
        path, _, rest = ln.partition(":")
        code = rest.strip()
        if not code or code.startswith(("#", "//")):
            continue
        m = re.search(r"@@?\(?[^\s;]*?\)?([\w.:\[\]-]+)", code)
        t = re.search(r'target\s*=\s*"([^"]+)"', code)
        host = t.group(1) if t else (m.group(1) if m and "@" in code else None)
        if host is None:
            m2 = re.search(r'(?:tcp|udp|network|syslog)\(\s*"?([\w.:-]+)"?', code)
            host = m2.group(1) if m2 else None
        if host and host not in targets:
            targets.append(host)
    syslog = {
        "daemon": daemon,
        "running": (daemon is not None) if procs is not None or svc is not None else None,
        "remote_forwarding": bool(targets) if conf_out is not None else None,
        "remote_targets": targets,
    }

    # journald
    jconf: dict[str, str] = {}
    for ln in parts.get("journald", []):
        _, _, kv = ln.partition(":")
        k, _, v = kv.partition("=")
        jconf[k.strip()] = v.strip()
    storage = jconf.get("Storage", "auto") if conf_out is not None else None
    jdir = (parts.get("journal-dir") or [""])[0].strip()
    persistent = None
    if storage is not None:
        persistent = storage == "persistent" or (storage == "auto" and jdir == "present")
    ret = _seconds(jconf.get("MaxRetentionSec", ""))
    jo, jprob = usable(outputs, "journal_span")
    has_journal = None if jo is None else not jo.output.rstrip().endswith("### absent")
    if has_journal is False:
        storage = persistent = None  # no journald on the host: its defaults mean nothing
    journald: dict[str, Any] = {
        "installed": has_journal,
        "running": running(procs, ["systemd-journald"]),
        "storage": storage,
        "persistent": persistent,
        "max_retention_days": round(ret / 86400, 2) if ret else None,
        "system_max_use": jconf.get("SystemMaxUse"),
    }
    if jo is None:
        journald.update({"oldest_entry": None, "span_days": None, "disk_usage": None})
        problems.append(about(jprob, "journal span not read"))
    else:
        journald.update(parse_journal(jo.output, now))
        if uid_of(jo.output) not in (0, None) and journald["oldest_entry"] is not None:
            journald["oldest_entry"], journald["span_days"] = None, None
            problems.append(Problem("journal: only the user's own entries visible (needs privilege)",
                                    ReasonCode.PERMISSION))

    lr_files = split_files("\n".join(parts.get("logrotate", [])))
    logrotate = parse_logrotate(lr_files)
    lrbin = [ln.strip() for ln in parts.get("logrotate-bin", []) if ln.strip()]
    logrotate["installed"] = (lrbin[0] != "absent") if lrbin else None
    entries = logrotate["files"]
    lf, lfprob = usable(outputs, "log_files")
    observed: list[dict[str, Any]] = []
    if lf is None:
        problems.append(about(lfprob, "log files not listed"))
    else:
        observed, unreadable = parse_log_files(lf.output, now)
        if unreadable:
            problems.append(Problem("/var/log/audit not readable (needs privilege)", ReasonCode.PERMISSION))

    ad, aprob = usable(outputs, "auditd")
    au = parse_auditd(ad.output) if ad is not None else None
    if ad is None:
        problems.append(about(aprob, "auditd not read"))
    elif au and au["conf_readable"] is False:
        problems.append(Problem("auditd.conf not readable (needs privilege)", ReasonCode.PERMISSION))
    ast = unit_state(svc, ["auditd"])
    auditd = {
        "installed": (au is not None and au["conf_readable"] is not None) or bool(ast["unit"])
        if (ad is not None or svc is not None)
        else None,
        "running": running(procs, ["auditd"]),
        "enabled": ast["enabled"],
        "rules": au["rules"] if au else None,
        "log_file": au["log_file"] if au else None,
        "num_logs": au["num_logs"] if au else None,
        "max_log_file_mb": au["max_log_file_mb"] if au else None,
        "max_log_file_action": au["max_log_file_action"] if au else None,
    }
    if ad is not None and au and au["rules"] is None and auditd["running"] and uid_of(ad.output) not in (0, None):
        problems.append(Problem("audit rules: needs privilege", ReasonCode.PERMISSION))

    # time
    time_d = parse_time(ts_out.output) if ts_out is not None else parse_time("")
    if ts_out is None:
        problems.append(about(tprob, "time sync not read"))
    tservices = {}
    active_service = None
    for name, procnames, units in (
        ("chronyd", ["chronyd"], ["chronyd", "chrony"]),
        ("ntpd", ["ntpd"], ["ntpd", "ntp", "ntpsec"]),
        ("systemd-timesyncd", ["systemd-timesyncd"], ["systemd-timesyncd"]),
        ("openntpd", ["openntpd"], ["openntpd"]),
    ):
        st = unit_state(svc, units)
        run = running(procs, procnames)
        if st["active"]:
            run = True
        if st["unit"] or run:
            tservices[name] = {"running": run, "enabled": st["enabled"]}
        if run and active_service is None:
            active_service = name
    time_d["service"] = active_service
    time_d["services"] = tservices
    if time_d["synchronized"] is None and ts_out is not None:
        if not (active_service is None and procs is not None):  # no service at all: a finding, not a gap
            problems.append(Problem("time synchronisation state not understood", ReasonCode.PARSE_ERROR))

    data = {
        "syslog": syslog,
        "journald": journald,
        "logrotate": logrotate,
        "syslog_retention_days": retention_for(entries, _SYSLOG_PATHS),
        "auth_log_retention_days": retention_for(entries, _AUTH_PATHS),
        "observed": observed,
        "auditd": auditd,
        "time": time_d,
    }
    return fact_with_problems("logging_time", data, problems)


PROBE = HostProbe(
    name="logging_time",
    items=("7.2.1",),
    commands=COMMANDS,
    parse=parse,
    description_ko="로그 보존(rsyslog/journald/logrotate/auditd) 및 시각 동기화(chrony/ntpd/timesyncd) 현황",
    description_en="Logging and time (syslog/journald/logrotate/auditd retention, time synchronisation)",
)

"""Session idle timeout (guide 13.1.1): shell TMOUT, systemd-logind StopIdleSessionSec, sshd ClientAlive*.

TMOUT is read from the files a login shell sources, in the order it sources
them; a later assignment overrides an earlier one unless the earlier made it
readonly. sshd's ClientAliveInterval is a dead-peer keepalive, not an idle
timeout: recorded, but it never counts as one.

Fact schema (``data``; the typed contract is :class:`probes.facts.SessionTimeout`)::

    tmout: {value: int|null, file, line, readonly: bool, exported: bool,   # effective assignment
            conditional: bool}         # indented: inside an if/case block, may not apply to every login
    tmout_assignments: [{file, line, value: int|null, raw, readonly, exported, conditional,
                         ignored_reason?}]   # ignored_reason only on an assignment that does not count
    logind_stop_idle_seconds: int|null
    idle_timeout_seconds: int|null      # the enforced idle timeout (smallest >0 of TMOUT, logind)
    idle_timeout_source: "TMOUT"|"logind"|null
    sshd: {source: "sshd -T"|"config", client_alive_interval, client_alive_count_max} | null
    sshd_problem: str|null
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Optional

from ..base import (
    CommandSpec, Fact, FactStatus, HostProbe, Problem, RawOutput, ReasonCode, about, first_code, not_collected,
    section_problem,
)
from . import sshd
from .common import show_files

PROFILE_FILES = "/etc/profile /etc/profile.d/*.sh /etc/bash.bashrc /etc/bashrc /etc/environment"

TMOUT_FILES = CommandSpec(
    name="tmout_files",
    script=show_files(PROFILE_FILES, keep="TMOUT|readonly|declare|typeset", numbered=True) + "true",
    may_hang=False,
)
LOGIND = CommandSpec(
    name="logind_idle",
    script=show_files("/etc/systemd/logind.conf /etc/systemd/logind.conf.d/*.conf",
                      keep=r"^[ \t]*StopIdleSessionSec", numbered=True) + "true",
    may_hang=False,
)

_ASSIGN = re.compile(
    r"(?:^|[;&|\s])(?:(export|readonly|declare|typeset|local)\s+(-[a-zA-Z]+\s+)*)?TMOUT=(\"[^\"]*\"|'[^']*'|[^\s;&|]*)"
)
_READONLY_NAME = re.compile(r"(?:^|[;&|\s])(?:readonly(?:\s+-\w+)*|declare\s+-\w*r\w*|typeset\s+-\w*r\w*)\s+(?:[\w=\"']+\s+)*TMOUT\b")
_EXPORT_NAME = re.compile(r"(?:^|[;&|\s])export\s+(?:[\w=\"']+\s+)*TMOUT\b")


def _value(raw: str) -> Optional[int]:
    v = raw.strip("\"'")
    return int(v) if v.isdecimal() else None


def parse_tmout(text: str) -> list[dict[str, Any]]:
    """Every TMOUT assignment (and readonly/export marking) in source order."""
    out: list[dict[str, Any]] = []
    current = None
    for line in text.splitlines():
        if line.startswith("==> ") and line.endswith(" <=="):
            current = line[4:-4]
            continue
        if current is None or ":" not in line:
            continue
        num, _, body = line.partition(":")
        if not num.isdecimal():
            continue
        code = body.split("#", 1)[0]
        if "TMOUT" not in code:
            continue
        m = _ASSIGN.search(code)
        ro = bool(_READONLY_NAME.search(code)) or bool(m and m.group(1) == "readonly")
        if m and m.group(2) and "r" in m.group(2) and m.group(1) in ("declare", "typeset"):
            ro = True
        ex = bool(_EXPORT_NAME.search(code)) or bool(m and m.group(1) == "export")
        indented = body[: len(body) - len(body.lstrip())] != ""
        entry = {
            "file": current,
            "line": int(num),
            "raw": body.strip()[:200],
            "value": _value(m.group(3)) if m else None,
            "assigns": bool(m),
            "readonly": ro,
            "exported": ex,
            "conditional": indented,
        }
        if m and entry["value"] is None:
            entry["ignored_reason"] = "value is not a literal number"
        out.append(entry)
    return out


def effective_tmout(assigns: list[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """Apply shell semantics: last literal assignment wins unless an earlier one is readonly."""
    eff: Optional[dict[str, Any]] = None
    locked = False
    readonly_seen = False
    exported = False
    for a in assigns:
        if a["assigns"] and a["value"] is not None:
            if locked:
                a["ignored_reason"] = "TMOUT is already readonly"
                continue
            eff = dict(a)
        if a["exported"]:
            exported = True
        if a["readonly"]:
            readonly_seen = True
            if eff is not None:
                locked = True
    if eff is None:
        return None
    return {
        "value": eff["value"],
        "file": eff["file"],
        "line": eff["line"],
        "readonly": readonly_seen and locked,
        "exported": exported,
        "conditional": eff["conditional"],
    }


def parse_logind(text: str) -> Optional[int]:
    val: Optional[int] = None
    for line in text.splitlines():
        m = re.search(r"StopIdleSessionSec\s*=\s*(\S+)", line)
        if m:
            val = _seconds(m.group(1))
    return val


def _seconds(s: str) -> Optional[int]:
    """systemd time span ("600", "10min", "1h 30s", "infinity") to seconds."""
    if s in ("infinity", "0"):
        return None
    total = 0
    units = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400}
    for num, unit in re.findall(r"(\d+)\s*([a-z]*)", s):
        mult = units.get(unit or "s")
        if mult is None:
            return None
        total += int(num) * mult
    return total or None


def parse(outputs: Mapping[str, RawOutput]) -> Fact:
    tm = outputs.get("tmout_files")
    prob = section_problem(tm)
    if prob or tm is None:
        return not_collected("session_timeout", about(prob, "shell profile files not read"))
    if "(not readable)" in tm.output:
        return not_collected("session_timeout", Problem("a shell profile file is not readable (needs privilege)",
                                                        ReasonCode.PERMISSION))
    assigns = parse_tmout(tm.output)
    eff = effective_tmout(assigns)
    problems: list[str] = []
    lg = outputs.get("logind_idle")
    lprob = section_problem(lg)
    logind = parse_logind(lg.output) if lg is not None and not lprob else None
    if lprob:  # logind may enforce a shorter timeout than TMOUT: the idle timeout below is then an upper bound
        problems.append(about(lprob, "logind.conf not read"))
    tmout_val = eff["value"] if eff and eff["value"] and eff["value"] > 0 else None
    cands = [(v, s) for v, s in ((tmout_val, "TMOUT"), (logind, "logind")) if v]
    idle, src = min(cands) if cands else (None, None)
    settings, source, sprob = sshd.effective(outputs)
    tprob = section_problem(outputs.get("sshd_T"))
    if settings is not None and source == "config" and tprob:
        problems.append(Problem(f"sshd -T: {tprob}; ClientAlive* read from the config files", tprob.code))
    sshd_data = None
    if settings is not None:
        sshd_data = {
            "source": source,
            "client_alive_interval": sshd.first_int(settings, "clientaliveinterval", sshd.DEFAULTS["clientaliveinterval"]),
            "client_alive_count_max": sshd.first_int(settings, "clientalivecountmax", sshd.DEFAULTS["clientalivecountmax"]),
        }
    data = {
        "tmout": eff,
        "tmout_assignments": [{k: v for k, v in a.items() if k != "assigns"} for a in assigns if a["assigns"] or a["readonly"]],
        "logind_stop_idle_seconds": logind,
        "idle_timeout_seconds": idle,
        "idle_timeout_source": src,
        "sshd": sshd_data,
        "sshd_problem": sprob,
    }
    if sshd_data is None and sprob:
        problems.append(sprob)
    status = FactStatus.PARTIAL if problems or sshd_data is None else FactStatus.COLLECTED
    return Fact("session_timeout", status, data, reason="; ".join(problems) or None, reason_code=first_code(problems))


PROBE = HostProbe(
    name="session_timeout",
    items=("13.1.1",),
    commands=(TMOUT_FILES, LOGIND, *sshd.COMMANDS),
    parse=parse,
    description_ko="세션 타임아웃 설정(TMOUT, logind, sshd ClientAlive)",
    description_en="Session idle timeout settings (TMOUT, logind, sshd ClientAlive)",
)

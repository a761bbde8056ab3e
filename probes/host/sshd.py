"""sshd's effective settings: ``sshd -T`` when permitted, else the config files with their Includes.

Shared by the session-timeout and remote-administration facts (the commands are
named so the batch runs them once).
"""
from __future__ import annotations

import fnmatch
import re
import shlex
from typing import Mapping, Optional

from ..base import CommandSpec, Problem, RawOutput, ReasonCode, section_problem
from .common import show_files

SSHD_T = CommandSpec(
    name="sshd_T",
    script="for s in /usr/sbin/sshd /usr/local/sbin/sshd sshd; do if command -v \"$s\" >/dev/null 2>&1; "
    "then $_ea_g \"$s\" -T 2>&1; exit $?; fi; done; echo 'sshd: not found'; exit 127",
    privileged=True,
    may_hang=False,
)
SSHD_CONFIG = CommandSpec(
    name="sshd_config",
    script=show_files("/etc/ssh/sshd_config /etc/ssh/sshd_config.d/*.conf") + "true",
    may_hang=False,
)
COMMANDS = [SSHD_T, SSHD_CONFIG]

_HEADER = re.compile(r"^==> (.+) <==$")


def parse_sshd_t(text: str) -> dict[str, list[str]]:
    """``sshd -T`` prints ``key value`` lines (lower-case keys); some keys repeat."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or " " not in line:
            continue
        k, v = line.split(None, 1)
        if not re.fullmatch(r"[a-z0-9]+", k):
            continue
        out.setdefault(k, []).append(v.strip())
    return out


def split_files(text: str) -> list[tuple[str, list[str]]]:
    """Split ``==> path <==`` framed concatenation into (path, lines)."""
    files: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            files.append((m.group(1), []))
        elif files:
            files[-1][1].append(line)
    return files


def parse_sshd_config(text: str) -> dict[str, list[str]]:
    """Global settings of sshd_config with Include expanded in place; first value wins.

    Lines after a ``Match`` block start apply conditionally and are ignored here
    (sshd -T, when permitted, is the authority). Includes are resolved against the
    files that were read (``/etc/ssh/sshd_config.d/*.conf`` in the usual layout).
    """
    files = dict(split_files(text))
    out: dict[str, list[str]] = {}
    seen: set[str] = set()

    def walk(path: str, depth: int) -> bool:
        """Returns False when a Match block started (rest of the main file is conditional)."""
        if depth > 8 or path in seen:
            return True
        seen.add(path)
        for raw in files.get(path, []):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 1)
            key = parts[0].lower()
            val = parts[1].strip() if len(parts) > 1 else ""
            if "=" in key:
                key, _, val = line.partition("=")
                key = key.strip().lower()
                val = val.strip()
            if key == "match":
                return False
            if key == "include":
                for pat in shlex.split(val):
                    if not pat.startswith("/"):
                        pat = "/etc/ssh/" + pat
                    for cand in sorted(files):
                        if fnmatch.fnmatch(cand, pat):
                            if not walk(cand, depth + 1):
                                return False
                continue
            if key in out and key not in ("hostkey", "listenaddress", "port", "acceptenv", "subsystem"):
                continue
            out.setdefault(key, []).append(val)
        return True

    if "/etc/ssh/sshd_config" in files:
        walk("/etc/ssh/sshd_config", 0)
    return out


def effective(outputs: Mapping[str, RawOutput]) -> tuple[Optional[dict[str, list[str]]], str, Optional[str]]:
    """(settings, source, problem). ``source`` is "sshd -T" or "config"; settings None when unknown."""
    t = outputs.get("sshd_T")
    if t is not None and t.ok and "port " in t.output:
        return parse_sshd_t(t.output), "sshd -T", None
    c = outputs.get("sshd_config")
    why_t = section_problem(t) or (t.output.strip().splitlines()[-1][:200] if t and t.output.strip() else "no output")
    prob = section_problem(c)
    if prob:
        return None, "config", Problem(f"sshd -T failed ({why_t}); config not read: {prob}", prob.code)
    if c is not None and "==> /etc/ssh/sshd_config <==" not in c.output:
        return None, "config", Problem(f"sshd -T failed ({why_t}); /etc/ssh/sshd_config not found",
                                       ReasonCode.TOOL_MISSING)
    if c is not None and "(not readable)" in c.output:
        return None, "config", Problem(f"sshd -T failed ({why_t}); sshd_config not readable (needs privilege)",
                                       ReasonCode.PERMISSION)
    return parse_sshd_config(c.output if c else ""), "config", None


def first_int(settings: Mapping[str, list[str]], key: str, default: Optional[int]) -> Optional[int]:
    vals = settings.get(key)
    if not vals:
        return default
    try:
        return int(vals[0].split()[0])
    except (ValueError, IndexError):
        return None


#: OpenSSH defaults for keys the config fallback may not mention.
DEFAULTS = {"clientaliveinterval": 0, "clientalivecountmax": 3}

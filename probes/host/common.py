"""Commands and parsing helpers shared by several host probes.

Why shared: the batch runs a command once per host however many probes list it
(same :class:`CommandSpec` name), so the process list, the service states, the
sanitised shadow summary and the listening sockets are read once and parsed by
every fact that needs them.

Conventions of the multi-part scripts here and in the probe modules:

* a part starts with a line ``### <part> [args]`` printed by the script itself;
  file contents are either printed after ``==> path <==`` (the sshd convention)
  or grepped with ``-H`` so that no line of a file can start a part;
* a command that needs root prints ``uid=<n>`` first, so its parser can tell
  "nothing there" from "not allowed to look";
* "absent" is printed explicitly (``### ss absent``) rather than inferred from
  silence.

Ages ("days since") are computed against the target's own clock, printed by the
``now`` command, never against the collector's: parsers stay pure and a stored
bundle re-parses to the same facts.
"""

from __future__ import annotations

import functools
import re
import shlex
from datetime import date, datetime, timedelta, timezone
from importlib import resources
from typing import Any, Iterable, Mapping, Optional

import yaml

from ..base import CommandSpec, Problem, RawOutput, ReasonCode, about, section_problem


def show_files(paths: str, *, drop: str = "", keep: str = "", numbered: bool = False, width: int = 0,
               max_lines: int = 0) -> str:
    """Shell that prints every regular file among ``paths`` (globs allowed) as ``==> path <==`` then its
    lines, or ``(not readable)``, with ONE awk process for all of them.

    Why: a ``grep`` (and ``cut``/``head``) per file cost ~1 ms of target CPU each, dozens per host. The
    output is what the per-file loop printed (``grep -n`` style ``N:`` prefixes when ``numbered``), so the
    parsers and recorded fixtures are unchanged. ``drop``/``keep`` are awk EREs applied to each line (use
    ``[ \t]``, not ``[[:space:]]``: mawk 1.3.3 has no classes); ``width`` cuts lines like ``cut -c1-N``;
    ``max_lines`` keeps the first N kept lines of each file.
    """
    cond = []
    if drop:
        cond.append(f"l ~ /{drop}/")
    if keep:
        cond.append(f"l !~ /{keep}/")
    skip = f"if ({' || '.join(cond)}) continue; " if cond else ""
    cap = f"if (n >= {max_lines}) continue; " if max_lines else ""
    line = f"substr(l, 1, {width})" if width else "l"
    out = f'k ":" {line}' if numbered else line
    prog = (
        "BEGIN { for (i = 1; i < ARGC; i++) { f = ARGV[i]; print \"==> \" f \" <==\"; n = 0; k = 0; "
        f"while ((r = (getline l < f)) > 0) {{ k++; {skip}{cap}n++; print {out} }} "
        "if (r < 0) print \"(not readable)\"; close(f) } }"
    )
    return (f'set --; for f in {paths}; do [ -f "$f" ] && set -- "$@" "$f"; done; '
            f"[ $# -gt 0 ] && awk {shlex.quote(prog)} \"$@\"; ")


#: awk ERE for a comment or blank line (what ``grep -v -E '^[[:space:]]*(#|$)'`` dropped).
COMMENT = r"^[ \t]*(#|$)"

NOW = CommandSpec("now", "date '+%s%n%Y-%m-%dT%H:%M:%S%z'", timeout=5, may_hang=False)

#: pid, user and command name only: full argument lists can carry passwords
#: (``mysql -pSECRET``), so they never enter the evidence.
PROCESSES = CommandSpec(
    "processes",
    "if $_ea_g ps -e -o pid= -o user= -o comm= 2>/dev/null; then :; "
    "elif $_ea_g ps -o pid,user,comm 2>/dev/null; then :; "
    'else for p in /proc/[0-9]*; do [ -r "$p/comm" ] && echo "${p#/proc/} ? $(cat "$p/comm" 2>/dev/null)"; '
    "done; fi",
    timeout=15,
    may_hang=False,
)

SERVICES = CommandSpec(
    "services",
    "if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then "
    "echo '### init systemd'; echo '### unit-files'; "
    "$_ea_g systemctl list-unit-files --no-legend --no-pager --type=service,socket,timer 2>&1; "
    "echo '### units'; $_ea_g systemctl list-units --all --no-legend --no-pager --plain "
    "--type=service,socket,timer 2>&1; "
    "elif command -v rc-status >/dev/null 2>&1; then echo '### init openrc'; echo '### rc-update'; "
    "$_ea_g rc-update show -v 2>&1; echo '### rc-status'; $_ea_g rc-status -a 2>&1; "
    "elif [ -d /etc/init.d ]; then echo '### init sysv'; echo '### init.d'; ls /etc/init.d 2>&1; "
    'for r in 2 3 5; do [ -d /etc/rc$r.d ] && { echo "### rc$r.d"; ls /etc/rc$r.d; }; done; '
    "else echo '### init unknown'; fi; true",
    timeout=20,
    may_hang=False,
)

#: inetd/xinetd-started services (telnet, rsh, tftp, finger... usually live there).
INETD = CommandSpec(
    "inetd",
    show_files("/etc/inetd.conf", drop=COMMENT)
    + show_files("/etc/xinetd.conf /etc/xinetd.d/*",
                 keep=r"^[ \t]*(service|disable|server|socket_type|protocol|port)[ \t=]|^[ \t]*[{}]")
    + "true",
    timeout=10,
    may_hang=False,
)

LOGIN_DEFS = CommandSpec(
    "login_defs",
    show_files("/etc/login.defs /etc/default/useradd", drop=COMMENT) + "true",
    timeout=10,
    may_hang=False,
)

#: The PAM stacks and their module configuration files (comment lines dropped).
PAM_CONF = CommandSpec(
    "pam_conf",
    show_files("/etc/pam.d/common-auth /etc/pam.d/common-account /etc/pam.d/common-password "
               "/etc/pam.d/system-auth /etc/pam.d/password-auth /etc/pam.d/sshd /etc/pam.d/login /etc/pam.d/su "
               "/etc/security/pwquality.conf /etc/security/pwquality.conf.d/*.conf /etc/security/faillock.conf",
               drop=COMMENT)
    # password history: only whether the file exists (it holds old hashes)
    + "[ -f /etc/security/opasswd ] && printf '%s\\n' '==> /etc/security/opasswd <==' '(exists)'; true",
    timeout=10,
    may_hang=False,
)

#: /etc/shadow reduced ON THE TARGET to name, hash state/algorithm and aging fields:
#: no hash or salt ever leaves the host. Without awk nothing is printed (never cat).
SHADOW = CommandSpec(
    "shadow",
    'echo "uid=${_ea_uid:-$(id -u)}"; '
    "if [ ! -e /etc/shadow ]; then echo 'shadow: absent'; "
    "elif [ ! -r /etc/shadow ]; then echo 'shadow: not readable (needs privilege)'; "
    "elif ! command -v awk >/dev/null 2>&1; then echo 'shadow: awk missing'; "
    'else echo \'shadow: ok\'; awk -F: \'NF >= 2 { p = $2; st = "set"; a = ""; '
    'if (p == "") { st = "empty" } '
    'else { if (substr(p, 1, 1) == "!" || substr(p, 1, 1) == "*") { st = "locked"; '
    'while (substr(p, 1, 1) == "!" || substr(p, 1, 1) == "*") p = substr(p, 2) } '
    'if (p != "") { if (substr(p, 1, 1) == "$") { n = index(substr(p, 2), "$"); '
    'a = (n > 0 && n <= 5) ? substr(p, 1, n + 1) : "unknown"; if (substr(p, 1, 4) == "$md5") a = "$md5$" } '
    'else if (length(p) == 13) a = "des"; else if (substr(p, 1, 1) == "_") a = "bsdi"; '
    'else a = "unknown" } } '
    'print $1 ":" st ":" a ":" $3 ":" $4 ":" $5 ":" $6 ":" $7 ":" $8 }\' /etc/shadow; fi',
    timeout=10,
    privileged=True,
    may_hang=False,
)

#: Listening TCP/UDP sockets: ss, else netstat, else the kernel tables.
LISTEN = CommandSpec(
    "listen",
    'echo "uid=${_ea_uid:-$(id -u)}"; '
    # each tool runs once: its output is kept if it succeeded, else the next is tried
    "if command -v ss >/dev/null 2>&1 && _o=$($_ea_g ss -tulpn 2>/dev/null); then echo '### ss'; printf '%s\\n' \"$_o\"; "
    "elif command -v netstat >/dev/null 2>&1 && _o=$($_ea_g netstat -tulpn 2>/dev/null); then echo '### netstat'; "
    "printf '%s\\n' \"$_o\"; "
    "elif command -v netstat >/dev/null 2>&1 && _o=$($_ea_g netstat -tuln 2>/dev/null); then echo '### netstat'; "
    "printf '%s\\n' \"$_o\"; "
    'else for f in tcp tcp6 udp udp6; do [ -r /proc/net/$f ] && { echo "### proc $f"; cat /proc/net/$f; }; '
    'done; fi',
    timeout=20,
    privileged=True,
    may_hang=False,
)

_PRIV_RE = re.compile(
    r"permission denied|operation not permitted|must be root|need to be root|needs privilege|"
    r"you must be root|are you root|access denied|not permitted|requires root|run as root",
    re.I,
)

#: Login shells that do not give a shell.
NOLOGIN_SHELLS = frozenset(
    {
        "/sbin/nologin",
        "/usr/sbin/nologin",
        "/bin/false",
        "/usr/bin/false",
        "/bin/sync",
        "/usr/bin/sync",
        "/sbin/shutdown",
        "/usr/sbin/shutdown",
        "/sbin/halt",
        "/usr/sbin/halt",
        "/bin/nologin",
        "/usr/bin/nologin",
        "/dev/null",
    }
)


@functools.lru_cache(maxsize=None)
def load_data(name: str) -> Any:
    """A YAML table shipped in ``probes/data`` (package data)."""
    text = resources.files("probes").joinpath("data", name).read_text(encoding="utf-8")
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml when present


def usable(outputs: Mapping[str, RawOutput], name: str) -> tuple[Optional[RawOutput], Optional[Problem]]:
    """(output, problem): the output when it can be parsed, else None and why."""
    out = outputs.get(name)
    prob = section_problem(out)
    if prob:
        return None, about(prob, name)
    return out, None


def needs_privilege(text: str) -> bool:
    return bool(_PRIV_RE.search(text))


def uid_of(text: str) -> Optional[int]:
    """The ``uid=<n>`` line a privileged command prints first."""
    m = re.search(r"^uid=(\d+)\s*$", text, re.M)
    return int(m.group(1)) if m else None


def now_of(outputs: Mapping[str, RawOutput]) -> Optional[int]:
    """The target's clock (epoch seconds) from the ``now`` command."""
    out = outputs.get("now")
    if section_problem(out) or out is None:
        return None
    for line in out.output.splitlines():
        line = line.strip()
        if line.isdecimal():
            return int(line)
    return None


def tz_of(outputs: Mapping[str, RawOutput]) -> Optional[timezone]:
    """The target's UTC offset (for local timestamps found in logs)."""
    out = outputs.get("now")
    if section_problem(out) or out is None:
        return None
    m = re.search(r"T\d\d:\d\d:\d\d([+-])(\d\d)(\d\d)\s*$", out.output, re.M)
    if not m:
        return None
    delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
    return timezone(-delta if m.group(1) == "-" else delta)


def iso(epoch: Optional[float]) -> Optional[str]:
    if epoch is None:
        return None
    try:
        return datetime.fromtimestamp(int(epoch), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError, OSError):
        return None


def days_since(then: Optional[float], now: Optional[float]) -> Optional[int]:
    """Whole days from ``then`` to ``now`` (both epoch seconds); None if either is unknown."""
    if then is None or now is None:
        return None
    return int((now - then) // 86400)


def day_to_iso(days: Optional[int]) -> Optional[str]:
    """Days since 1970-01-01 (shadow's unit) → ISO date."""
    if days is None:
        return None
    try:
        return (date(1970, 1, 1) + timedelta(days=days)).isoformat()
    except OverflowError:
        return None


def split_parts(text: str, marker: str = "### ") -> list[tuple[str, list[str]]]:
    """Split a multi-part output on ``### name`` lines → [(header, lines)]."""
    parts: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith(marker):
            parts.append((line[len(marker) :].strip(), []))
        elif parts:
            parts[-1][1].append(line)
    return parts


def split_files(text: str) -> list[tuple[str, list[str]]]:
    """Split ``==> path <==`` framed concatenation into (path, lines)."""
    files: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        m = re.match(r"^==> (.+) <==$", line)
        if m:
            files.append((m.group(1), []))
        elif files:
            files[-1][1].append(line)
    return files


def keyvals(lines: Iterable[str], sep: Optional[str] = None) -> dict[str, str]:
    """``KEY value`` (or ``KEY=value`` with sep="=") lines → dict, last one wins, comments dropped."""
    out: dict[str, str] = {}
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if sep:
            if sep not in line:
                continue
            k, _, v = line.partition(sep)
        else:
            parts = line.split(None, 1)
            k, v = parts[0], parts[1] if len(parts) > 1 else ""
        out[k.strip()] = v.strip().strip("\"'")
    return out


def to_int(v: Any) -> Optional[int]:
    try:
        return int(str(v).strip())
    except (TypeError, ValueError):
        return None


# --- processes and services -------------------------------------------------------------


def parse_processes(text: str) -> list[dict[str, Any]]:
    """``pid user comm`` lines (procps, BusyBox or the /proc loop) → [{pid, user, comm}]."""
    procs = []
    for line in text.splitlines():
        parts = line.split(None, 2)
        if len(parts) < 3 or not parts[0].isdecimal():
            continue
        comm = parts[2].strip()
        if comm.startswith("[") and comm.endswith("]"):
            comm = comm[1:-1]
        comm = comm.split()[0] if comm else comm
        procs.append(
            {
                "pid": int(parts[0]),
                "user": None if parts[1] == "?" else parts[1],
                "comm": comm.rsplit("/", 1)[-1],
            }
        )
    return procs


def processes(outputs: Mapping[str, RawOutput]) -> tuple[Optional[list[dict[str, Any]]], Optional[str]]:
    out, prob = usable(outputs, "processes")
    if out is None:
        return None, prob
    procs = parse_processes(out.output)
    if not procs:
        return None, Problem("processes: no process listed", ReasonCode.PARSE_ERROR)
    return procs, None


def processes_and_services(outputs: Mapping[str, RawOutput], problems: list[str]) -> tuple[
        Optional[list[dict[str, Any]]], Optional[dict[str, Any]]]:
    """The process list and the service states (either None when unread), each missing one named in
    ``problems``: what probes that look for a daemon read first."""
    procs, pprob = processes(outputs)
    if procs is None:
        problems.append(pprob or "processes")
    svc, sprob = services(outputs)
    if svc is None:
        problems.append(sprob or "services")
    return procs, svc


def running(procs: Optional[list[dict[str, Any]]], names: Iterable[str]) -> Optional[bool]:
    """Whether a process with one of ``names`` runs (comm is cut at 15 characters by the kernel)."""
    if procs is None:
        return None
    wanted = {n[:15] for n in names}
    return any(p["comm"][:15] in wanted for p in procs)


def parse_services(text: str) -> dict[str, Any]:
    """The ``services`` command → {init, units: {name: {enabled, active, sub}}}.

    ``enabled`` is the unit-file state (enabled, disabled, static, masked...) or,
    for SysV/OpenRC, "enabled" when a start link/runlevel entry exists.
    """
    init = "unknown"
    units: dict[str, dict[str, Optional[str]]] = {}

    def unit(name: str) -> dict[str, Optional[str]]:
        return units.setdefault(name, {"enabled": None, "active": None, "sub": None})

    for header, lines in split_parts(text):
        if header.startswith("init "):
            init = header.split()[1]
            continue
        for line in lines:
            f = (
                line.replace("●", " ").replace("*", " ", 1).split()
                if line.lstrip().startswith(("●", "*"))
                else line.split()
            )
            if not f:
                continue
            if header == "unit-files" and len(f) >= 2 and "." in f[0]:
                unit(f[0])["enabled"] = f[1]
            elif header == "units" and len(f) >= 4 and "." in f[0]:
                u = unit(f[0])
                u["active"], u["sub"] = f[2], f[3]
            elif header == "rc-update" and "|" in line:
                name, _, levels = line.partition("|")
                u = unit(name.strip() + ".service")
                u["enabled"] = "enabled" if levels.strip() else "disabled"
            elif header == "rc-status" and len(f) >= 2 and f[0] != "Runlevel:":
                state = line.split("[", 1)[-1].split("]", 1)[0].strip() if "[" in line else ""
                u = unit(f[0] + ".service")
                u["active"] = "active" if state == "started" else "inactive"
                u["sub"] = state or None
            elif header == "init.d":
                for name in f:
                    unit(name + ".service")
            elif re.fullmatch(r"rc\d\.d", header):
                for name in f:
                    m = re.match(r"^S\d\d(.+)$", name)
                    if m:
                        unit(m.group(1) + ".service")["enabled"] = "enabled"
    if init in ("systemd", "openrc"):
        for u in units.values():
            if u["active"] is None:  # installed but not loaded/started
                u["active"], u["sub"] = "inactive", "dead"
    if init == "sysv":
        for u in units.values():
            if u["enabled"] is None:
                u["enabled"] = "disabled"
    return {"init": init, "units": units}


def services(outputs: Mapping[str, RawOutput]) -> tuple[Optional[dict[str, Any]], Optional[str]]:
    out, prob = usable(outputs, "services")
    if out is None:
        return None, prob
    return parse_services(out.output), None


def unit_state(svc: Optional[dict[str, Any]], names: Iterable[str]) -> dict[str, Any]:
    """The first of ``names`` (unit names, ``.service`` implied) known to the init system.

    Returns {unit, enabled: bool|null, active: bool|null}; all null when the init
    system does not know any of them or could not be read.
    """
    if svc is None:
        return {"unit": None, "enabled": None, "active": None}
    for n in names:
        key = n if "." in n else n + ".service"
        u = svc["units"].get(key)
        if u is None:
            continue
        en = u["enabled"]
        enabled = (
            None
            if en is None
            else en in ("enabled", "enabled-runtime", "static", "alias", "indirect", "generated")
        )
        act = u["active"]
        active = None if act is None else act in ("active", "activating", "reloading")
        return {"unit": key, "enabled": enabled, "active": active}
    if svc["init"] in ("systemd", "openrc", "sysv"):
        return {"unit": None, "enabled": False, "active": False if svc["init"] != "sysv" else None}
    return {"unit": None, "enabled": None, "active": None}

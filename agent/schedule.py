"""Scheduled runs: a systemd service + timer (cron expression translated to ``OnCalendar=``) or a cron entry.

Ops teams think in cron expressions, so ``--every`` takes the standard five
fields (``minute hour day-of-month month day-of-week``, names like ``mon`` and
``jan``, lists, ranges, steps, and the ``@daily``-style macros). Where systemd
runs, the expression becomes one or two ``OnCalendar=`` lines; everything that has
no exact calendar equivalent (``@reboot``, a seconds field, Quartz's ``L W # ?``,
a date that never occurs) is refused with the reason instead of being approximated.

Cron's day rule is kept exactly: when both day-of-month and day-of-week are
restricted (neither starts with ``*``), cron fires when *either* matches, while one
``OnCalendar=`` line needs *both*; such an expression becomes two lines, one per
day field, and a timer elapses when any of its lines does.

What is written (every file carries a marker comment; list/remove touch only
files that have it):

* systemd: ``evidence-agent-NAME.service`` (``Type=oneshot``, runs
  ``evidence-agent run`` in the state directory, exit code 5 "another run holds
  the lock" counted as success) and ``evidence-agent-NAME.timer``
  (``Persistent=true``: a run missed while the machine was off happens at boot);
* cron: a block between ``# evidence-agent schedule NAME: begin/end`` lines in a
  cron.d file (default ``/etc/cron.d/evidence-agent``), output appended to
  ``STATE/run.log``.

Secrets given at install time (the webhook URL) go to ``STATE/env`` (mode 0600),
read by the service (``EnvironmentFile=``) or the cron line, never into the
world-readable unit or cron file.
"""
from __future__ import annotations

import calendar
import datetime as dt
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Iterator, Optional, Sequence

MARKER = "evidence-agent schedule"
DEFAULT_UNIT_DIR = "/etc/systemd/system"
DEFAULT_CRON_FILE = "/etc/cron.d/evidence-agent"
DEFAULT_STATE_ROOT = "/var/lib/evidence-agent"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")

MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
DOWS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
SD_DOW = {1: "Mon", 2: "Tue", 3: "Wed", 4: "Thu", 5: "Fri", 6: "Sat", 7: "Sun"}
MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
          "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
FIELDS = (("minute", 0, 59, None), ("hour", 0, 23, None), ("day-of-month", 1, 31, None),
          ("month", 1, 12, MONTHS), ("day-of-week", 0, 7, DOWS))


class ScheduleError(Exception):
    """Invalid schedule input (bad expression, name, backend); the message says what and why."""


# -- cron expressions -----------------------------------------------------------------------------

@dataclass(frozen=True)
class CronSpec:
    """A parsed five-field expression: the set of values per field, and which day fields are restricted."""

    expr: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday (7 folded into 0)
    dom_star: bool  # day-of-month field started with '*' (cron then ANDs the day fields)
    dow_star: bool

    def matches(self, t: dt.datetime) -> bool:
        """Whether cron would fire at minute ``t`` (Vixie cron semantics)."""
        if t.minute not in self.minutes or t.hour not in self.hours or t.month not in self.months:
            return False
        dom = t.day in self.days
        dow = (t.isoweekday() % 7) in self.weekdays
        if self.dom_star or self.dow_star:
            return dom and dow
        return dom or dow

    def next_times(self, after: dt.datetime, n: int = 5, horizon_days: int = 366 * 8) -> list[dt.datetime]:
        """The next ``n`` firing minutes strictly after ``after`` (naive local time)."""
        out: list[dt.datetime] = []
        start = after.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        day = start.date()
        for _ in range(horizon_days):
            probe = dt.datetime.combine(day, dt.time())
            if probe.month in self.months and self.matches(probe.replace(hour=min(self.hours),
                                                                         minute=min(self.minutes))):
                for h in sorted(self.hours):
                    for m in sorted(self.minutes):
                        t = probe.replace(hour=h, minute=m)
                        if t >= start:
                            out.append(t)
                            if len(out) == n:
                                return out
            day += dt.timedelta(days=1)
        return out


def _field(text: str, name: str, lo: int, hi: int, names: Optional[dict[str, int]]) -> set[int]:
    def num(s: str) -> int:
        if names and s.lower() in names:
            return names[s.lower()]
        if not s.isdigit():
            raise ScheduleError(f"{name} field: {s!r} is not a number"
                                + (f" or a name ({', '.join(names)})" if names else ""))
        v = int(s)
        if not lo <= v <= hi:
            raise ScheduleError(f"{name} field: {v} is outside {lo}-{hi}")
        return v

    if any(ch in text for ch in "?LW#"):
        raise ScheduleError(f"{name} field {text!r}: '?', 'L', 'W' and '#' are Quartz extensions, not cron; "
                            "they have no exact OnCalendar equivalent")
    out: set[int] = set()
    for part in text.split(","):
        if not part:
            raise ScheduleError(f"{name} field {text!r}: empty list element")
        rng, _, step_s = part.partition("/")
        step = 1
        if _:
            if not step_s.isdigit() or int(step_s) == 0:
                raise ScheduleError(f"{name} field {part!r}: the step after '/' must be a positive number")
            step = int(step_s)
        if rng == "*":
            a, b = lo, hi
        elif "-" in rng:
            sa, _, sb = rng.partition("-")
            a, b = num(sa), num(sb)
            if a > b:
                raise ScheduleError(f"{name} field {part!r}: range runs backwards (cron has no wrap-around)")
        else:
            a = num(rng)
            b = hi if _ else a  # "5/15" is "5-59/15" (Vixie cron)
        out.update(range(a, b + 1, step))
    return out


def parse_cron(expr: str) -> CronSpec:
    """Parse a five-field cron expression or an @-macro; raises ScheduleError naming the problem."""
    raw = expr.strip()
    if raw.lower() == "@reboot":
        raise ScheduleError("--every @reboot has no calendar equivalent; run the service at boot instead "
                            "(systemctl enable evidence-agent-NAME.service)")
    text = MACROS.get(raw.lower(), raw)
    if text.startswith("@"):
        raise ScheduleError(f"--every {expr!r}: unknown macro (known: {', '.join(sorted(MACROS))})")
    parts = text.split()
    if len(parts) != 5:
        hint = (" (a sixth field of seconds or years is not cron; use minute hour day-of-month month day-of-week)"
                if len(parts) in (6, 7) else " (minute hour day-of-month month day-of-week)")
        raise ScheduleError(f"--every {expr!r}: expected 5 fields, got {len(parts)}{hint}")
    vals = []
    for text_f, (name, lo, hi, names) in zip(parts, FIELDS):
        try:
            vals.append(_field(text_f, name, lo, hi, names))
        except ScheduleError as e:
            raise ScheduleError(f"--every {expr!r}: {e}") from None
    weekdays = {0 if d == 7 else d for d in vals[4]}
    spec = CronSpec(expr=raw, minutes=frozenset(vals[0]), hours=frozenset(vals[1]), days=frozenset(vals[2]),
                    months=frozenset(vals[3]), weekdays=frozenset(weekdays),
                    dom_star=parts[2].startswith("*"), dow_star=parts[4].startswith("*"))
    if not spec.dom_star and spec.dow_star:
        # Only the day of month restricts: it must exist in at least one chosen month (Feb 29 counts).
        if not any(d <= calendar.monthrange(2024, m)[1] for m in spec.months for d in spec.days):
            raise ScheduleError(f"--every {expr!r}: never fires (no chosen month has day "
                                f"{', '.join(map(str, sorted(spec.days)))})")
    return spec


def _compact(values: Sequence[int], lo: int, hi: int, width: int) -> str:
    """A set of values as a systemd calendar component: ``*``, ``a/step``, ``a..b`` or a list."""
    vs = sorted(values)
    if vs == list(range(lo, hi + 1)):
        return "*"
    f = (lambda v: f"{v:0{width}d}") if width else str
    if len(vs) >= 3:
        step = vs[1] - vs[0]
        if step > 1 and vs == list(range(vs[0], hi + 1, step)):
            return f"{f(vs[0])}/{step}"
    out, i = [], 0
    while i < len(vs):
        j = i
        while j + 1 < len(vs) and vs[j + 1] == vs[j] + 1:
            j += 1
        out.append(f"{f(vs[i])}..{f(vs[j])}" if j - i >= 2 else ",".join(f(v) for v in vs[i:j + 1]))
        i = j + 1
    return ",".join(out)


def _weekdays(days: frozenset[int]) -> str:
    iso = sorted(7 if d == 0 else d for d in days)  # systemd weeks start on Monday
    if iso == list(range(1, 8)):
        return ""
    out, i = [], 0
    while i < len(iso):
        j = i
        while j + 1 < len(iso) and iso[j + 1] == iso[j] + 1:
            j += 1
        out.append(f"{SD_DOW[iso[i]]}..{SD_DOW[iso[j]]}" if j - i >= 2 else ",".join(SD_DOW[d] for d in iso[i:j + 1]))
        i = j + 1
    return ",".join(out)


def to_oncalendar(spec: CronSpec) -> list[str]:
    """``OnCalendar=`` values with exactly the firing times of ``spec`` (one, or two for cron's day OR rule)."""
    t = f"{_compact(sorted(spec.hours), 0, 23, 2)}:{_compact(sorted(spec.minutes), 0, 59, 2)}:00"
    month = _compact(sorted(spec.months), 1, 12, 2)
    dom = _compact(sorted(spec.days), 1, 31, 2)
    dow = _weekdays(spec.weekdays)
    if not spec.dom_star and not spec.dow_star:
        return [f"*-{month}-{dom} {t}", f"{dow} *-{month}-* {t}".strip()]
    return [f"{dow} *-{month}-{dom} {t}".strip()]


# -- what the scheduled job runs ------------------------------------------------------------------

@dataclass
class Job:
    """A schedule as installed: where it runs and what ``evidence-agent run`` arguments it passes."""

    name: str
    every: str
    inventory: str
    bundles: str
    state_dir: str
    run_args: list[str] = field(default_factory=list)  # extra `run` options (--keep 30 …), secret-free
    env: dict[str, str] = field(default_factory=dict)  # secrets and settings for STATE/env (mode 0600)
    key: Optional[str] = None  # signing key; default STATE/signing_key, created on first run
    user: str = "root"  # cron.d user field
    exe: Optional[list[str]] = None  # how to start evidence-agent; default: this installation

    def command(self) -> list[str]:
        exe = self.exe or default_exe()
        key = self.key or os.path.join(self.state_dir, "signing_key")
        args = [*exe, "run", "--inventory", self.inventory, "--bundles", self.bundles, "--key", key]
        if not self.key:
            args.append("--create-key")
        return args + list(self.run_args)


def default_exe() -> list[str]:
    """The ``evidence-agent`` beside this interpreter (a venv's bin/), else ``python -m agent.cli``."""
    cand = os.path.join(os.path.dirname(sys.executable), "evidence-agent")
    if os.access(cand, os.X_OK):
        return [cand]
    found = shutil.which("evidence-agent")
    if found:
        return [os.path.abspath(found)]
    return [sys.executable, "-m", "agent.cli"]


def _pythonpath() -> Optional[str]:
    """When started as ``python -m agent.cli`` from a source tree, the job needs that tree on its path."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return root if os.path.isfile(os.path.join(root, "agent", "cli.py")) else None


def validate_name(name: str) -> str:
    if not _NAME.match(name):
        raise ScheduleError(f"schedule name {name!r}: letters, digits, '_' and '-' only (max 63)")
    return name


def default_name(inventory: str) -> str:
    stem = os.path.splitext(os.path.basename(inventory))[0]
    s = re.sub(r"[^A-Za-z0-9_-]", "-", stem).strip("-_") or "default"
    return s[:63]


def detect_backend() -> str:
    """``systemd`` when systemd is PID 1 (the sd_booted test), else ``cron``."""
    return "systemd" if os.path.isdir("/run/systemd/system") and shutil.which("systemctl") else "cron"


# -- systemd --------------------------------------------------------------------------------------

def _sd_quote(arg: str) -> str:
    """One ExecStart= argument: specifiers (%) and variables ($) taken literally, quoted when needed."""
    s = arg.replace("%", "%%").replace("$", "$$")
    if s and not re.search(r"[\s\"'\\;]", s):
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _sd_path(path: str) -> str:
    """A path setting (WorkingDirectory=, EnvironmentFile=): taken literally to the end of the line, so never
    quoted (systemd would keep the quotes and call the path relative); only ``%`` needs escaping."""
    if "\n" in path:
        raise ScheduleError(f"{path!r}: a newline cannot be written into a unit file")
    return path.replace("%", "%%")


def unit_names(name: str) -> tuple[str, str]:
    return f"evidence-agent-{name}.service", f"evidence-agent-{name}.timer"


def _header(job: Job) -> str:
    return (f"# {MARKER}: {job.name}\n# Written by `evidence-agent schedule install`; remove with "
            f"`evidence-agent schedule remove {job.name}`.\n# every: {job.every}\n# inventory: {job.inventory}\n"
            f"# bundles: {job.bundles}\n# state: {job.state_dir}\n")


def render_systemd(job: Job, spec: CronSpec) -> tuple[str, str]:
    service_name, timer_name = unit_names(job.name)
    env_lines = ""
    pp = _pythonpath() if (job.exe or default_exe())[-1] == "agent.cli" else None
    if pp:
        env_lines += f"Environment={_sd_quote('PYTHONPATH=' + pp)}\n"
    service = (
        f"{_header(job)}\n"
        "[Unit]\n"
        f"Description=evidence-agent scheduled evidence collection ({job.name})\n"
        "Wants=network-online.target\nAfter=network-online.target\n\n"
        "[Service]\nType=oneshot\n"
        f"WorkingDirectory={_sd_path(job.state_dir)}\n"
        f"EnvironmentFile=-{_sd_path(os.path.join(job.state_dir, 'env'))}\n"
        f"{env_lines}"
        f"ExecStart={' '.join(_sd_quote(a) for a in job.command())}\n"
        "# 5: another run still holds the bundles directory's lock; that run will finish the work.\n"
        "SuccessExitStatus=5\n"
        "UMask=0077\nNoNewPrivileges=yes\nPrivateTmp=yes\nNice=10\nIOSchedulingClass=best-effort\n"
    )
    oncal = "".join(f"OnCalendar={c}\n" for c in to_oncalendar(spec))
    timer = (
        f"{_header(job)}\n"
        "[Unit]\n"
        f"Description=evidence-agent schedule {job.name} ({job.every})\n\n"
        "[Timer]\n"
        f"{oncal}"
        "Persistent=true\n"
        "AccuracySec=1min\n"
        f"Unit={service_name}\n\n"
        "[Install]\nWantedBy=timers.target\n"
    )
    return service, timer


# -- cron -----------------------------------------------------------------------------------------

def _begin(name: str) -> str:
    return f"# {MARKER} {name}: begin"


def _end(name: str) -> str:
    return f"# {MARKER} {name}: end"


def render_cron(job: Job, spec: CronSpec) -> str:
    env = os.path.join(job.state_dir, "env")
    log = os.path.join(job.state_dir, "run.log")
    pp = _pythonpath() if (job.exe or default_exe())[-1] == "agent.cli" else None
    pre = f"PYTHONPATH={shlex.quote(pp)} " if pp else ""
    cmd = (f"cd {shlex.quote(job.state_dir)} && {{ [ ! -f {shlex.quote(env)} ] || {{ set -a; . {shlex.quote(env)}; "
           f"set +a; }}; }} && {pre}exec {' '.join(shlex.quote(a) for a in job.command())} >>{shlex.quote(log)} 2>&1")
    cmd = cmd.replace("%", "\\%")  # cron turns an unescaped % into a newline
    expr = " ".join(spec.expr.split()) if not spec.expr.startswith("@") else spec.expr
    header = "".join(line + "\n" for line in _header(job).splitlines()[1:])
    return f"{_begin(job.name)}\n{header}{expr} {job.user} {cmd}\n{_end(job.name)}\n"


def _cron_blocks(text: str) -> Iterator[tuple[str, int, int]]:
    """(name, first line, last line) of each of our blocks in a cron file."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(rf"^# {MARKER} ([A-Za-z0-9_-]+): begin$", line)
        if m:
            for j in range(i + 1, len(lines)):
                if lines[j] == _end(m.group(1)):
                    yield m.group(1), i, j
                    break


# -- install / list / remove ----------------------------------------------------------------------

@dataclass
class Installed:
    name: str
    backend: str
    files: list[str]
    every: Optional[str] = None
    oncalendar: list[str] = field(default_factory=list)
    inventory: Optional[str] = None
    bundles: Optional[str] = None
    state: Optional[str] = None
    activated: Optional[bool] = None  # systemd only: enabled with systemctl here
    notes: list[str] = field(default_factory=list)


def _write(path: str, text: str, mode: int = 0o644) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def write_env(state_dir: str, env: dict[str, str]) -> Optional[str]:
    if not env:
        return None
    for k, v in env.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k) or "'" in v or "\n" in v:
            raise ScheduleError(f"cannot store {k} in the environment file (quote or newline in the value)")
    path = os.path.join(state_dir, "env")
    _write(path, "# secrets for evidence-agent scheduled runs (mode 0600)\n"
           + "".join(f"{k}='{v}'\n" for k, v in env.items()), 0o600)
    return path


def _systemctl(*args: str) -> tuple[bool, str]:
    try:
        r = subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)
    return r.returncode == 0, (r.stderr or r.stdout).strip()


def install(job: Job, backend: str, unit_dir: Optional[str] = None, cron_file: Optional[str] = None,
            enable: bool = True) -> Installed:
    """Write the schedule. With the default unit directory on a running systemd, also enable the timer."""
    validate_name(job.name)
    spec = parse_cron(job.every)
    os.makedirs(job.state_dir, mode=0o700, exist_ok=True)
    inst = Installed(job.name, backend, [], every=job.every, inventory=job.inventory, bundles=job.bundles,
                     state=job.state_dir)
    envfile = write_env(job.state_dir, job.env)
    if envfile:
        inst.files.append(envfile)
    if backend == "systemd":
        d = unit_dir or DEFAULT_UNIT_DIR
        service, timer = render_systemd(job, spec)
        sname, tname = unit_names(job.name)
        _write(os.path.join(d, sname), service)
        _write(os.path.join(d, tname), timer)
        inst.files += [os.path.join(d, sname), os.path.join(d, tname)]
        inst.oncalendar = to_oncalendar(spec)
        live = unit_dir is None and detect_backend() == "systemd"
        if enable and live:
            ok1, msg1 = _systemctl("daemon-reload")
            ok2, msg2 = _systemctl("enable", "--now", tname) if ok1 else (False, "")
            inst.activated = ok1 and ok2
            if not inst.activated:
                inst.notes.append(f"systemctl failed: {msg1 or msg2}")
        else:
            inst.activated = False
            inst.notes.append(f"activate with: systemctl daemon-reload && systemctl enable --now {tname}")
    elif backend == "cron":
        path = cron_file or DEFAULT_CRON_FILE
        old = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
        text = _remove_block(old, job.name)
        if not text:
            text = ("# evidence-agent schedules (cron.d format: minute hour dom month dow user command)\n"
                    "SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n")
        _write(path, text.rstrip("\n") + "\n" + render_cron(job, spec))
        inst.files.append(path)
        if not (shutil.which("cron") or shutil.which("crond") or os.path.exists("/usr/sbin/cron")):
            inst.notes.append("no cron daemon found on this machine; install one (apt-get install cron) "
                              "or copy the entry to where your cron reads it")
    else:
        raise ScheduleError(f"unknown backend {backend!r} (systemd or cron)")
    return inst


def _remove_block(text: str, name: str) -> str:
    lines = text.splitlines()
    for _n, i, j in [b for b in _cron_blocks(text) if b[0] == name][:1]:
        del lines[i:j + 1]
    out = "\n".join(lines)
    if not any(b for b in _cron_blocks(out)) and all(
            not ln.strip() or ln.startswith(("#", "SHELL=", "PATH=")) for ln in lines):
        return ""
    return out + ("\n" if out else "")


def _meta(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        m = re.match(r"^# (every|inventory|bundles|state): (.*)$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def list_installed(unit_dir: Optional[str] = None, cron_file: Optional[str] = None,
                   backends: Sequence[str] = ("systemd", "cron")) -> list[Installed]:
    found: list[Installed] = []
    if "systemd" in backends:
        d = unit_dir or DEFAULT_UNIT_DIR
        for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            m = re.match(r"^evidence-agent-([A-Za-z0-9_-]+)\.timer$", f)
            if not m:
                continue
            text = open(os.path.join(d, f), encoding="utf-8").read()
            if f"# {MARKER}: {m.group(1)}" not in text:
                continue
            meta = _meta(text)
            sname, _ = unit_names(m.group(1))
            files = [os.path.join(d, f)] + ([os.path.join(d, sname)] if os.path.exists(os.path.join(d, sname)) else [])
            found.append(Installed(m.group(1), "systemd", files, meta.get("every"),
                                   re.findall(r"^OnCalendar=(.*)$", text, re.M), meta.get("inventory"),
                                   meta.get("bundles"), meta.get("state")))
    if "cron" in backends:
        path = cron_file or DEFAULT_CRON_FILE
        text = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
        lines = text.splitlines()
        for name, i, j in _cron_blocks(text):
            meta = _meta("\n".join(lines[i:j + 1]))
            found.append(Installed(name, "cron", [path], meta.get("every"), [], meta.get("inventory"),
                                   meta.get("bundles"), meta.get("state")))
    return found


def remove(name: str, unit_dir: Optional[str] = None, cron_file: Optional[str] = None) -> list[str]:
    """Remove schedule ``name`` wherever it is installed; returns the files removed or rewritten."""
    validate_name(name)
    touched: list[str] = []
    for inst in list_installed(unit_dir, cron_file):
        if inst.name != name:
            continue
        if inst.backend == "systemd":
            live = unit_dir is None and detect_backend() == "systemd"
            if live:
                _systemctl("disable", "--now", unit_names(name)[1])
            for f in inst.files:
                os.remove(f)
                touched.append(f)
            if live:
                _systemctl("daemon-reload")
        else:
            path = inst.files[0]
            rest = _remove_block(open(path, encoding="utf-8").read(), name)
            if rest:
                _write(path, rest)
            else:
                os.remove(path)
            touched.append(path)
    if not touched:
        raise ScheduleError(f"no schedule named {name!r} (see `evidence-agent schedule list`)")
    return touched

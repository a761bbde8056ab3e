"""The contract between transports, parsers and the collector.

Why a contract: a probe must give identical facts whether its commands ran over
SSH or locally, so parsers see only :class:`RawOutput` and never a transport.
"""
from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence, Union, overload

#: Per-command output cap (bytes). Target output is untrusted: anything longer is cut
#: and the section is marked truncated.
MAX_SECTION_BYTES = 512 * 1024


class FactStatus(str, enum.Enum):
    """Whether a fact could be collected. Anything but COLLECTED carries a reason."""

    COLLECTED = "collected"
    PARTIAL = "partial"  # some parts known, others missing (each missing part says why)
    NOT_COLLECTED = "not_collected"


class ReasonCode(str, enum.Enum):
    """Why a fact is partial or not collected, from a closed set: reports and rules read the code, the
    free-text reason is the detail for people."""

    UNREACHABLE = "unreachable"
    AUTH_FAILED = "auth_failed"
    PERMISSION = "permission"
    TOOL_MISSING = "tool_missing"
    TIMED_OUT = "timed_out"
    TRUNCATED = "truncated"
    PARSE_ERROR = "parse_error"
    NOT_APPLICABLE = "not_applicable"
    OTHER = "other"

    @property
    def doc(self) -> str:
        return _REASON_DOCS[self.value]


_REASON_DOCS = {
    "unreachable": "the target (host, endpoint, URL) could not be reached",
    "auth_failed": "the transport could not log in",
    "permission": "reading it needs privileges the session lacks",
    "tool_missing": "the command or file it needs is absent on the target",
    "timed_out": "a command or the deadline cut it short",
    "truncated": "output was cut at a size/line cap or the stream ended early",
    "parse_error": "the output could not be understood",
    "not_applicable": "nothing to collect here (no such target declared, not this kind of host)",
    "other": "anything else (see the reason text)",
}

# First match wins: the text of reasons the probes and the collector write, mapped to a code. Explicit codes
# (Fact.reason_code) take precedence; this keeps every existing reason coded without touching each probe.
_REASON_PATTERNS: tuple[tuple[str, ReasonCode], ...] = (
    (r"parser error|cannot parse|could not parse|unparsable|not understood|unexpected output", ReasonCode.PARSE_ERROR),
    (r"timed? ?out|timeout|deadline", ReasonCode.TIMED_OUT),
    (r"truncat|cut off|output cut|no exit status|command did not run|ended early", ReasonCode.TRUNCATED),
    (r"authenticat|auth failed|login failed|password rejected|publickey", ReasonCode.AUTH_FAILED),
    (r"permission|privilege|needs root|as root|denied|not readable|unreadable|not allowed", ReasonCode.PERMISSION),
    (r"unreachable|refused|no route|cannot connect|could not connect|connect(ion)? (error|failed)|"
     r"name resolution|not resolv|host down|unreach", ReasonCode.UNREACHABLE),
    (r"not found|not installed|absent|missing|no such file", ReasonCode.TOOL_MISSING),
    (r"^no (tls|web|network|endpoint|url)|not applicable|nothing to|none declared|no .* declared|"
     r"no .* given|out of scope|not requested|skipped", ReasonCode.NOT_APPLICABLE),
)


def classify_reason(reason: Optional[str]) -> ReasonCode:
    """The reason code a free-text reason stands for (OTHER when no pattern matches)."""
    import re

    text = (reason or "").lower()
    for pat, code in _REASON_PATTERNS:
        if re.search(pat, text):
            return code
    return ReasonCode.OTHER


@dataclass(frozen=True)
class CommandSpec:
    """One shell command of a probe, run on the target with ``LC_ALL=C``.

    ``script`` is POSIX sh (dash/BusyBox compatible). ``privileged`` marks commands
    whose answer is only complete as root: without root they still run, and the
    parser says "needs privilege" where the output shows it.

    ``may_hang`` (the default) runs the whole command under ``timeout``. A registered probe sets it
    False and starts each outside tool that can block (package managers, D-Bus clients, daemons'
    CLIs: see tests/test_batch.py BLOCKING) as ``$_ea_g tool …``: the command then runs in a plain
    subshell, only that tool is under ``timeout`` (nothing is started when the tool is absent), and a
    cut still marks the command timed out. That saves two process starts per command on every host.
    Run alone, ``$_ea_g`` is empty and the script is ordinary sh.
    """

    name: str
    script: str
    timeout: float = 20.0
    privileged: bool = False
    may_hang: bool = True


class LazyCommands(Sequence[CommandSpec]):
    """A probe's commands, built on first use. Why: some scripts are made from a data table
    (``probes/data/*.yaml``), and importing a probe module must not read files; the commands are the same
    whenever they are built (a pure function of the shipped tables)."""

    def __init__(self, build: Callable[[], Sequence[CommandSpec]]) -> None:
        self._build = build
        self._built: Optional[tuple[CommandSpec, ...]] = None

    def _commands(self) -> tuple[CommandSpec, ...]:
        if self._built is None:
            self._built = tuple(self._build())
        return self._built

    @overload
    def __getitem__(self, i: int) -> CommandSpec: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[CommandSpec]: ...

    def __getitem__(self, i: Union[int, slice]) -> Union[CommandSpec, Sequence[CommandSpec]]:
        return self._commands()[i]

    def __len__(self) -> int:
        return len(self._commands())

    def __repr__(self) -> str:
        return f"LazyCommands({[c.name for c in self._commands()]})"


@dataclass
class RawOutput:
    """What one command printed, as the transport saw it (stdout and stderr merged)."""

    name: str
    script: str
    output: str
    exit_code: Optional[int]  # None: no exit status seen (timeout, truncated stream)
    started: str  # ISO-8601 UTC
    duration: float
    truncated: bool = False
    timed_out: bool = False
    error: Optional[str] = None  # transport-level problem for this command
    truncated_reason: Optional[str] = None  # why the output was cut (size, line count, line length, stream end)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.truncated and not self.timed_out and self.error is None

    @property
    def complete(self) -> bool:
        """The command ran to its end (any exit code) and its output is whole."""
        return self.exit_code is not None and not self.truncated and not self.timed_out and self.error is None


@dataclass
class Evidence:
    """A raw artefact behind a fact, written to the bundle as 자료<item>-<serial>_<host>_<label>.<ext>.

    ``content`` is untrusted target output: the bundle writer caps and frames it, and
    never uses it in a path. ``items`` are the guide items it evidences (first names the file).
    """

    label: str
    command: str
    content: str
    collected_at: str
    items: Sequence[str] = ()
    exit_code: Optional[int] = None
    ext: str = "txt"
    description_ko: str = ""
    description_en: str = ""


@dataclass
class Fact:
    """A probe's result for one host (or for the run, for network probes): typed data plus trust."""

    probe: str
    status: FactStatus
    data: dict[str, Any] = field(default_factory=dict)
    reason: Optional[str] = None
    source: str = "shell"  # shell | psutil | nmap | sslyze | http
    evidence: list[Evidence] = field(default_factory=list)
    reason_code: Optional[ReasonCode] = None  # None: derived from ``reason`` (classify_reason) unless collected

    def code(self) -> Optional[ReasonCode]:
        """The envelope's reason code: None when wholly collected, else the explicit code or the reason's."""
        if self.status == FactStatus.COLLECTED:
            return None
        return self.reason_code or classify_reason(self.reason)

    def to_json(self) -> dict[str, Any]:
        code = self.code()
        return {
            "probe": self.probe,
            "status": self.status.value,
            "reason_code": code.value if code else None,
            "reason": self.reason,
            "source": self.source,
            "data": self.data,
        }


def fact_from_entries(probe: str, data: dict[str, Any], entries: Sequence[dict[str, Any]], ok: str,
                      name: Callable[[dict[str, Any]], str], source: str, evidence: list[Evidence],
                      empty_reason: str) -> Fact:
    """A run-level fact made of per-target entries (endpoints, URLs): COLLECTED when every entry has
    status ``ok``, else PARTIAL with the reason naming each failed target; NOT_COLLECTED only when there is
    no entry at all. A target that could not be assessed is that target's (and its owner's) missing
    evidence, carried by its entry: it must not blank out the verdicts of hosts that own no such target."""
    if not entries:
        return Fact(probe=probe, status=FactStatus.NOT_COLLECTED, data=data, reason=empty_reason, source=source,
                    reason_code=ReasonCode.NOT_APPLICABLE)
    bad = [e for e in entries if e["status"] != ok]
    if not bad:
        return Fact(probe=probe, status=FactStatus.COLLECTED, data=data, source=source, evidence=evidence)
    reason = "; ".join(f"{name(e)}: {e['reason']}" for e in bad)
    return Fact(probe=probe, status=FactStatus.PARTIAL, data=data, reason=reason, source=source, evidence=evidence)


class Problem(str):
    """A reason with its code, set where the failure is known (a timed-out section, a missing tool, a file that
    needs root). It is a ``str`` for every existing use (messages, ``"; ".join``); :func:`fact_with_problems` and
    :func:`not_collected` take the envelope's reason code from it, so the code never has to be guessed back from
    the words (:func:`classify_reason` stays the fallback for plain strings)."""

    code: ReasonCode

    def __new__(cls, text: str, code: ReasonCode = ReasonCode.OTHER) -> "Problem":  # default: copy/pickle
        obj = super().__new__(cls, text)
        obj.code = code
        return obj



def about(prob: Optional[Problem], what: str) -> Problem:
    """``what: prob`` with prob's code: ``about(prob, "inetd configuration not read")`` where ``usable`` gave no
    output. A None ``prob`` (asking about a section that was fine: a caller's bug) is said as such, not hidden."""
    if prob is None:
        return Problem(f"{what}: no problem recorded", ReasonCode.OTHER)
    return Problem(f"{what}: {prob}", prob.code)


def code_of(reason: Optional[str]) -> Optional[ReasonCode]:
    """The code a reason was made with (None for a plain string: the fallback derives it from the text)."""
    return reason.code if isinstance(reason, Problem) else None


def first_code(problems: Sequence[str]) -> Optional[ReasonCode]:
    """The code of the first problem made with one (a :class:`Problem`); None: derive it from the text."""
    return next((c for c in map(code_of, problems) if c is not None), None)


def fact_with_problems(probe: str, data: dict[str, Any], problems: Sequence[str],
                       code: Optional[ReasonCode] = None) -> Fact:
    """COLLECTED when nothing was missing, else PARTIAL with every missing part named in the reason; the reason
    code is ``code``, else that of the first problem made with one (a :class:`Problem`)."""
    status = FactStatus.PARTIAL if problems else FactStatus.COLLECTED
    if problems and code is None:
        code = first_code(problems)
    return Fact(probe, status, data, reason="; ".join(problems) or None, reason_code=code if problems else None)


def not_collected(probe: str, reason: str, code: Optional[ReasonCode] = None) -> Fact:
    return Fact(probe=probe, status=FactStatus.NOT_COLLECTED, reason=reason, reason_code=code or code_of(reason))


def section_problem(out: Optional[RawOutput]) -> Optional[Problem]:
    """Why a section's output cannot be trusted, with its code, or None if it can be parsed."""
    if out is None:
        return Problem("command did not run (no output section)", ReasonCode.TRUNCATED)
    if out.error:
        return Problem(out.error, classify_reason(out.error))  # the transport's own words for this command
    if out.timed_out:
        return Problem(f"command timed out after {out.duration:.0f}s", ReasonCode.TIMED_OUT)
    if out.truncated:
        return Problem(f"output truncated ({out.truncated_reason})" if out.truncated_reason else "output truncated",
                       ReasonCode.TRUNCATED)
    if out.exit_code is None:
        return Problem("no exit status (output cut off)", ReasonCode.TRUNCATED)
    return None


def asdict(obj: Any) -> Any:
    """dataclass → JSON-able dict (enums to their values)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: asdict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (list, tuple)):
        return [asdict(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): asdict(v) for k, v in obj.items()}
    return obj


@dataclass(frozen=True)
class HostProbe:
    """Registry entry of a host probe module.

    ``items`` are the guide's detailed items the fact evidences: the first one names
    the evidence file (자료<item>-<serial>_<host>_<probe>.txt).
    ``local`` optionally replaces some commands' parsed data with psutil readings when
    the transport is local (it receives the parsed Fact and returns the final one).
    """

    name: str
    items: Sequence[str]
    commands: Sequence[CommandSpec]
    parse: Callable[[Mapping[str, RawOutput]], Fact]
    description_ko: str
    description_en: str
    local: Optional[Callable[[Fact], Fact]] = None

"""One compound shell script per host, and the parser of its framed output.

Why: every SSH command costs a round trip and a login-shell start (seconds on a
slow fleet), so all reads of a host run in one ``sh -s`` session. Each command's
output is framed by markers that carry a per-run random nonce, so a target cannot
forge a frame by printing marker-like text. The same script runs locally, which
keeps SSH and local facts identical.
"""
from __future__ import annotations

import secrets
import shlex
from datetime import datetime, timezone
from typing import Iterable, Optional, Sequence

from .base import MAX_SECTION_BYTES, CommandSpec, RawOutput

#: Run the script as root through ``sudo -n`` when asked and permitted: one escalation per host.
WRAPPER_PLAIN = "LC_ALL=C LANG=C exec sh -s"
WRAPPER_SUDO = (
    "if [ \"$(id -u)\" = 0 ]; then LC_ALL=C LANG=C exec sh -s; "
    "elif sudo -n true 2>/dev/null; then exec sudo -n env LC_ALL=C LANG=C sh -s; "
    "else echo '{nonce} NOSUDO'; LC_ALL=C LANG=C exec sh -s; fi"
)

# Why this shape: on a fleet, the framing itself was the largest cost on the target. Each command used to
# fork ``date`` twice and exec ``timeout`` + ``sh`` (~5 ms of the target's CPU per command, measured with
# benchmarks/target_cost.py). Now times come from /proc/uptime through the ``read`` builtin (no process),
# and a command runs in a subshell (a fork, no exec) where each outside tool that can block is started as
# ``$_ea_g tool …``: ``timeout`` for that tool only (none at all when the tool is absent), and a ``CUT``
# frame on descriptor 3 when it fires, so the command is reported as timed out. Its output is captured and
# sent with its frames in one write: one SSH packet per command rather than one per line or tool (the
# collector's CPU per packet is Python). A command declared ``may_hang`` still runs whole under
# ``timeout sh -c``, streamed. The host deadline bounds everything; a command it interrupts is reported as
# not run. Run alone (tests, an auditor replaying the evidence), ``$_ea_g`` is empty: plain sh.
# ``_ea_uid`` is computed once; commands print it where they report privilege.
_PRELUDE = r"""LC_ALL=C; LANG=C; export LC_ALL LANG
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH; export PATH
# a usable timeout: GNU, or BusyBox >= 1.30 (older BusyBox wants `timeout -t N`, and would run nothing)
if command -v timeout >/dev/null 2>&1 && timeout 5 true 2>/dev/null; then _ea_to=1; else _ea_to=; fi
_ea_uid=$(id -u 2>/dev/null); export _ea_uid
if [ -r /proc/uptime ] && read _ea_t _ea_x </proc/uptime && [ -n "$_ea_t" ]; then _ea_clk=up; else _ea_clk=; fi
_ea_now() {
  if [ -n "$_ea_clk" ]; then read _ea_t _ea_x </proc/uptime; else _ea_t=$(date +%s 2>/dev/null); fi
}
_ea_guard() {
  if [ -z "$_ea_to" ]; then "$@"; return; fi
  timeout "$_ea_lim" "$@"; _ea_r=$?
  [ "$_ea_r" = 124 ] && printf '\n%s CUT %s %s %s\n' "$_ea_m" "$_ea_n" "$_ea_lim" "$1" >&3
  return $_ea_r
}
_ea_g=_ea_guard
exec 3>&1
_ea_now; printf '\n%s CLOCK %s %s %s\n' "$_ea_m" "${_ea_clk:-epoch}" "$(date +%s 2>/dev/null)" "$_ea_t"
_ea() {
  _ea_n=$1; _ea_lim=$2
  if [ "$3" = 1 ] && [ -n "$_ea_to" ]; then
    _ea_now; printf '\n%s BEGIN %s %s\n' "$_ea_m" "$1" "$_ea_t"
    timeout "$2" sh -c "$4" </dev/null 2>&1; _ea_rc=$?
    _ea_now; printf '\n%s END %s %s %s\n' "$_ea_m" "$1" "$_ea_rc" "$_ea_t"
    return
  fi
  _ea_now; _ea_b=$_ea_t; _ea_s=$4
  _ea_o=$( { set --; eval "$_ea_s"; } </dev/null 2>&1 ); _ea_rc=$?
  _ea_now
  if [ -n "$_ea_o" ]; then
    printf '\n%s BEGIN %s %s\n%s\n\n%s END %s %s %s\n' "$_ea_m" "$1" "$_ea_b" "$_ea_o" "$_ea_m" "$1" "$_ea_rc" "$_ea_t"
  else
    printf '\n%s BEGIN %s %s\n\n%s END %s %s %s\n' "$_ea_m" "$1" "$_ea_b" "$_ea_m" "$1" "$_ea_rc" "$_ea_t"
  fi
}
"""


def new_nonce() -> str:
    return "@@EA-" + secrets.token_hex(8)


def build_script(commands: Sequence[CommandSpec], nonce: str) -> str:
    """The compound script: a prelude, then one framed section per command."""
    lines = [f"_ea_m={shlex.quote(nonce)}", _PRELUDE]
    lines.append("printf '\\n%s ID %s\\n' \"$_ea_m\" \"$_ea_uid\"")
    for c in commands:
        lines.append(f"_ea {shlex.quote(c.name)} {int(max(1, c.timeout))} {int(c.may_hang)} {shlex.quote(c.script)}")
    lines.append("printf '\\n%s DONE\\n' \"$_ea_m\"")
    return "\n".join(lines) + "\n"


def wrapper(become: bool, nonce: str) -> str:
    return WRAPPER_SUDO.format(nonce=nonce) if become else WRAPPER_PLAIN


class BatchResult:
    """Parsed frames of one script run."""

    def __init__(self) -> None:
        self.outputs: dict[str, RawOutput] = {}
        self.uid: Optional[int] = None
        self.sudo_refused = False
        self.done = False  # the script reached its end marker


class _Clock:
    """Turns the time tokens of the markers into epoch seconds.

    The script announces ``CLOCK up <epoch> <uptime>`` when /proc/uptime is readable (tokens are
    uptimes, 10 ms resolution, no process per read), else ``CLOCK epoch`` (tokens are ``date +%s``).
    """

    def __init__(self) -> None:
        self.offset: Optional[float] = 0.0  # epoch = token + offset; None: tokens unusable

    def announce(self, parts: list[str]) -> None:
        try:
            self.offset = float(int(parts[2])) - float(parts[3]) if parts[1] == "up" else 0.0
        except (IndexError, ValueError):
            self.offset = None if parts[1:2] == ["up"] else 0.0

    def epoch(self, token: Optional[str]) -> Optional[float]:
        try:
            return float(token or "") + self.offset if self.offset is not None else None
        except ValueError:
            return None


def _iso(epoch: Optional[float]) -> str:
    try:
        if epoch is None:
            raise ValueError
        return datetime.fromtimestamp(int(epoch), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError, OSError):
        return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stream(
    data: bytes,
    commands: Sequence[CommandSpec],
    nonce: str,
    stream_error: Optional[str] = None,
    section_cap: int = MAX_SECTION_BYTES,
) -> BatchResult:
    """Split the framed output into one RawOutput per command.

    A command whose END marker never came is marked truncated/timed out with
    ``stream_error`` as the reason; commands never started get an error entry.
    """
    specs = {c.name: c for c in commands}
    res = BatchResult()
    marker = nonce.encode()
    cur: Optional[str] = None
    buf = bytearray()
    began: Optional[float] = None
    over = False
    cut_names: set[str] = set()
    clock = _Clock()

    def close(rc: Optional[int], end_token: Optional[str], err: Optional[str]) -> None:
        nonlocal cur, buf, over
        if cur is None:
            return
        spec = specs.get(cur)
        text = bytes(buf).decode("utf-8", errors="replace")
        if text.startswith("\n"):
            text = text[1:]
        if text.endswith("\n"):
            text = text[:-1]
        end = clock.epoch(end_token)
        dur = round(max(0.0, end - began), 2) if end is not None and began is not None else 0.0
        timeout = spec.timeout if spec else 0
        timed_out = cur in cut_names or (rc == 124 and (spec is None or spec.may_hang) and dur >= max(0.0, timeout - 1))
        res.outputs[cur] = RawOutput(
            name=cur,
            script=spec.script if spec else "",
            output=text,
            exit_code=None if timed_out else rc,
            started=_iso(began),
            duration=dur,
            truncated=over or rc is None,
            timed_out=timed_out,
            error=err,
        )
        cur, buf, over = None, bytearray(), False

    for line in data.splitlines(keepends=True):
        if line.startswith(marker + b" "):
            parts = line[len(marker) + 1 :].decode("utf-8", "replace").split()
            kind = parts[0] if parts else ""
            if kind == "BEGIN" and len(parts) >= 2:
                close(None, None, "no END marker (output cut off)")
                cur, began = parts[1], clock.epoch(parts[2] if len(parts) > 2 else None)
                continue
            if kind == "END" and len(parts) >= 3 and parts[1] == cur:
                try:
                    rc: Optional[int] = int(parts[2])
                except ValueError:
                    rc = None
                close(rc, parts[3] if len(parts) > 3 else None, None)
                continue
            if kind == "CUT" and len(parts) >= 2:
                cut_names.add(parts[1])  # a tool inside that command hit its timeout: its output is incomplete
                continue
            if kind == "CLOCK" and len(parts) >= 2:
                clock.announce(parts)
                continue
            if kind == "ID" and len(parts) >= 2:
                try:
                    res.uid = int(parts[1])
                except ValueError:
                    pass
                continue
            if kind == "NOSUDO":
                res.sudo_refused = True
                continue
            if kind == "DONE":
                res.done = True
                continue
        if cur is not None:
            if len(buf) + len(line) > section_cap:
                buf.extend(line[: max(0, section_cap - len(buf))])
                over = True
            else:
                buf.extend(line)
    close(None, None, stream_error or "no END marker (output cut off)")
    for c in commands:
        if c.name not in res.outputs:
            res.outputs[c.name] = RawOutput(
                name=c.name, script=c.script, output="", exit_code=None,
                started=_iso(None), duration=0.0, truncated=False,
                error=stream_error or "command did not run (script ended early)",
            )
    return res


def dedupe(commands: Iterable[CommandSpec]) -> list[CommandSpec]:
    """Probes may share a command (same name): run it once."""
    seen: dict[str, CommandSpec] = {}
    for c in commands:
        prev = seen.get(c.name)
        if prev is not None and prev.script != c.script:
            raise ValueError(f"two probes define command {c.name!r} differently")
        seen.setdefault(c.name, c)
    return list(seen.values())

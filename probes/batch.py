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
        self.frames = 0  # marker lines seen: 0 means the probe script never ran (forced command, no shell)
        self.stream_error: Optional[str] = None  # why the stream ended early (deadline, size cap)
        self.unframed_bytes = 0  # bytes outside any section (banners, a forced command's output, garbage)
        self.total_bytes = 0

    def script_problem(self) -> Optional[str]:
        """Why the probe script's output cannot stand for the host, or None when the script ran.

        Connected is not collected: a hung shell, a forced command or garbage gives no frame at all.
        """
        if self.frames:
            return None
        why = self.stream_error or "the session ended"
        what = (f"{self.total_bytes} bytes without framing markers" if self.total_bytes
                else "no output at all")
        return f"connected, but the probe script did not run ({why}; {what})"


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


#: Per-command line caps: a section's text is split into lines by its parser, so a command printing endless
#: short lines costs a Python object per line. Beyond these the section is cut and marked truncated.
MAX_SECTION_LINES = 50_000
MAX_LINE_BYTES = 64 * 1024
#: A marker line is short (kind, name, two numbers); a longer line starting with the nonce is content.
_MAX_MARKER_LINE = 4096


class FrameParser:
    """Streams framed output into one RawOutput per command, in memory bounded whatever the target prints.

    Why streaming: splitting a host's whole output into lines cost ~1 GB for 32 MiB of short lines (one bytes
    object per line), and a handful of such hosts got the collector killed. Here bytes are fed as they arrive,
    marker lines are found with ``bytes.find`` (no per-line Python work), and only the current section is
    buffered, capped in bytes (``section_cap``), lines (``line_cap``) and line length (``line_bytes``).
    Output outside any section (a forced command, a banner, garbage) is counted and dropped.
    """

    def __init__(self, commands: Sequence[CommandSpec], nonce: str, section_cap: int = MAX_SECTION_BYTES,
                 line_cap: int = MAX_SECTION_LINES, line_bytes: int = MAX_LINE_BYTES) -> None:
        self.commands = list(commands)
        self.specs = {c.name: c for c in commands}
        self.marker = nonce.encode()
        self.key = b"\n" + self.marker + b" "
        self.section_cap, self.line_cap, self.line_bytes = section_cap, line_cap, line_bytes
        self.res = BatchResult()
        self.clock = _Clock()
        self.cut_names: set[str] = set()
        self.cur: Optional[str] = None
        self.buf = bytearray()
        self.lines = 0
        self.over: Optional[str] = None  # why the current section was cut
        self.began: Optional[float] = None
        # the stream is read as if preceded by a newline, so a marker on its first line is found too
        self.pend = bytearray(b"\n")
        self.skip_nl = True  # pend[0] is a newline that belongs to no section
        self.total = 0

    # -- feeding ---------------------------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        self.total += len(data)
        pend = self.pend
        pend += data
        pos, key = 0, self.key
        while True:
            i = pend.find(key, pos)
            if i < 0:
                safe = len(pend) - (len(key) - 1)  # a marker may start in the last bytes: keep them
                start = pos + self.skip_nl
                if safe >= start:
                    self._content(pend, start, safe)
                    pos, self.skip_nl = safe, False
                break
            self._content(pend, pos + self.skip_nl, i + 1)  # the newline before a marker ends the last line
            j = pend.find(b"\n", i + 1)
            if j < 0:
                if len(pend) - i > _MAX_MARKER_LINE:  # too long for a marker: content
                    self._content(pend, i + 1, len(pend))
                    pos, self.skip_nl = len(pend), False
                else:  # wait for the rest of the line
                    pos, self.skip_nl = i, True
                break
            if self._marker(bytes(pend[i + 1 + len(self.marker) + 1: j])):
                pos, self.skip_nl = j, True  # its newline may start the next marker's key
            else:
                self._content(pend, i + 1, j)
                pos, self.skip_nl = j, False
        del pend[:pos]

    def _content(self, pend: bytearray, a: int, b: int) -> None:
        if b <= a or self.cur is None:
            if b > a:
                self.res.unframed_bytes += b - a
            return
        if self.over:
            return
        room = self.section_cap - len(self.buf)
        if b - a > room:
            b = a + room
            self.over = f"output larger than {self.section_cap} bytes; cut"
        n = pend.count(b"\n", a, b)
        if self.lines + n > self.line_cap:
            k = a - 1
            for _ in range(self.line_cap - self.lines):
                k = pend.find(b"\n", k + 1)
            b, n = k + 1, self.line_cap - self.lines
            self.over = f"more than {self.line_cap} lines; cut"
        self.buf += pend[a:b]
        self.lines += n

    def _marker(self, raw: bytes) -> bool:
        """Handle one marker line (without the nonce); False when it is not a valid marker (then content)."""
        res = self.res
        parts = raw.decode("utf-8", "replace").split()
        kind = parts[0] if parts else ""
        if kind == "BEGIN" and len(parts) >= 2:
            self._close(None, None, "no END marker (output cut off)")
            self.cur, self.began = parts[1], self.clock.epoch(parts[2] if len(parts) > 2 else None)
        elif kind == "END" and len(parts) >= 3 and parts[1] == self.cur:
            try:
                rc: Optional[int] = int(parts[2])
            except ValueError:
                rc = None
            self._close(rc, parts[3] if len(parts) > 3 else None, None)
        elif kind == "CUT" and len(parts) >= 2:
            self.cut_names.add(parts[1])  # a tool inside that command hit its timeout: its output is incomplete
        elif kind == "CLOCK" and len(parts) >= 2:
            self.clock.announce(parts)
        elif kind == "ID" and len(parts) >= 2:
            try:
                res.uid = int(parts[1])
            except ValueError:
                pass
        elif kind == "NOSUDO":
            res.sudo_refused = True
        elif kind == "DONE":
            res.done = True
        else:
            return False
        res.frames += 1
        return True

    def _close(self, rc: Optional[int], end_token: Optional[str], err: Optional[str]) -> None:
        cur = self.cur
        if cur is None:
            return
        spec = self.specs.get(cur)
        over = self.over
        data = bytes(self.buf)
        if len(data) > self.line_bytes and any(len(x) > self.line_bytes for x in data.split(b"\n")):
            data = b"\n".join(x[: self.line_bytes] for x in data.split(b"\n"))
            over = over or f"a line longer than {self.line_bytes} bytes; cut"
        text = data.decode("utf-8", errors="replace")
        if text.startswith("\n"):
            text = text[1:]
        if text.endswith("\n"):
            text = text[:-1]
        end = self.clock.epoch(end_token)
        began = self.began
        dur = round(max(0.0, end - began), 2) if end is not None and began is not None else 0.0
        timeout = spec.timeout if spec else 0
        timed_out = cur in self.cut_names or (
            rc == 124 and (spec is None or spec.may_hang) and dur >= max(0.0, timeout - 1))
        self.res.outputs[cur] = RawOutput(
            name=cur,
            script=spec.script if spec else "",
            output=text,
            exit_code=None if timed_out else rc,
            started=_iso(began),
            duration=dur,
            truncated=bool(over) or rc is None,
            timed_out=timed_out,
            error=err,
            truncated_reason=over or (err if rc is None else None),
        )
        self.cur, self.buf, self.over, self.lines = None, bytearray(), None, 0

    def finish(self, stream_error: Optional[str] = None) -> BatchResult:
        """End of stream (EOF, deadline or cap, said by ``stream_error``): close what is open, fill the gaps."""
        self.total -= 1
        self.feed(b"\n")  # completes a last marker line that had no newline
        pend = self.pend
        if len(pend) > self.skip_nl:
            self._content(pend, int(self.skip_nl), len(pend) - 1)  # the tail, without the newline just added
        self.pend = bytearray()
        res = self.res
        res.stream_error = stream_error
        res.total_bytes = self.total
        self._close(None, None, stream_error or "no END marker (output cut off)")
        for c in self.commands:
            if c.name not in res.outputs:
                res.outputs[c.name] = RawOutput(
                    name=c.name, script=c.script, output="", exit_code=None,
                    started=_iso(None), duration=0.0, truncated=False,
                    error=stream_error or "command did not run (script ended early)",
                )
        return res


def parse_stream(
    data: bytes,
    commands: Sequence[CommandSpec],
    nonce: str,
    stream_error: Optional[str] = None,
    section_cap: int = MAX_SECTION_BYTES,
) -> BatchResult:
    """Split a whole framed output into one RawOutput per command (see :class:`FrameParser`).

    A command whose END marker never came is marked truncated/timed out with
    ``stream_error`` as the reason; commands never started get an error entry.
    """
    p = FrameParser(commands, nonce, section_cap=section_cap)
    p.feed(data)
    return p.finish(stream_error)


def dedupe(commands: Iterable[CommandSpec]) -> list[CommandSpec]:
    """Probes may share a command (same name): run it once."""
    seen: dict[str, CommandSpec] = {}
    for c in commands:
        prev = seen.get(c.name)
        if prev is not None and prev.script != c.script:
            raise ValueError(f"two probes define command {c.name!r} differently")
        seen.setdefault(c.name, c)
    return list(seen.values())

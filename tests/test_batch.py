"""The framed per-host script (probes/batch.py), run by this machine's real ``sh`` and BusyBox ``sh``.

What must hold whatever the speed-ups in the framing: a command that may hang is cut by ``timeout`` and
only its own output is lost; a command that only reads files runs in a subshell, so it cannot change the
script's state; times come out right from /proc/uptime and from the ``date`` fallback; a target cannot
forge a frame; a hang in an unguarded command is still bounded by the host deadline.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from datetime import datetime, timezone

import pytest

from probes.base import CommandSpec
from probes.batch import build_script, new_nonce, parse_stream
from probes.transport.local import LocalTransport

#: dash (Debian/Ubuntu /bin/sh), BusyBox (Alpine), bash in POSIX mode (RHEL/Rocky/Amazon Linux /bin/sh)
SHELLS = [["sh"]] + ([["busybox", "sh"]] if shutil.which("busybox") else []) + (
    [["bash", "--posix"]] if shutil.which("bash") else [])


def run(cmds: list[CommandSpec], shell: list[str], timeout: float = 60) -> tuple[dict, float]:
    nonce = new_nonce()
    t0 = time.monotonic()
    out = subprocess.run([*shell, "-s"], input=build_script(cmds, nonce).encode(), capture_output=True,
                         timeout=timeout).stdout
    res = parse_stream(out, cmds, nonce)
    assert res.done
    return res.outputs, time.monotonic() - t0


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: " ".join(s))
def test_a_hanging_command_loses_only_its_own_output(shell):
    cmds = [CommandSpec("before", "echo before"),
            CommandSpec("hang", "echo partial; sleep 30", timeout=1),
            CommandSpec("after", "echo after", may_hang=False)]
    out, wall = run(cmds, shell)
    assert wall < 10
    assert out["before"].ok and out["before"].output.strip() == "before"
    assert out["hang"].timed_out and out["hang"].exit_code is None and not out["hang"].ok
    assert out["hang"].output.strip() == "partial"  # what it printed before the cut is kept
    assert out["after"].ok and out["after"].output.strip() == "after"


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: " ".join(s))
def test_an_unguarded_command_runs_in_a_subshell(shell):
    """``exit``, ``cd``, variables and ``set --`` in one command never reach the next."""
    cmds = [CommandSpec("a", "x=changed; cd /; set -- one two; exit 3", may_hang=False),
            CommandSpec("b", 'echo "x=${x:-unset} pwd=$(pwd) args=$#"', may_hang=False)]
    nonce = new_nonce()
    out = subprocess.run([*shell, "-s"], input=build_script(cmds, nonce).encode(), capture_output=True,
                         cwd="/tmp", timeout=30).stdout
    res = parse_stream(out, cmds, nonce).outputs
    assert res["a"].exit_code == 3 and res["a"].complete
    assert res["b"].output.strip() == "x=unset pwd=/tmp args=0"


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: " ".join(s))
def test_exit_124_of_an_unguarded_command_is_not_a_timeout(shell):
    out, _ = run([CommandSpec("c", "exit 124", timeout=1, may_hang=False)], shell)
    assert out["c"].exit_code == 124 and not out["c"].timed_out


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: " ".join(s))
def test_start_and_duration_from_uptime(shell):
    before = datetime.now(timezone.utc).replace(microsecond=0)
    out, _ = run([CommandSpec("s", "sleep 1.3; echo done", may_hang=False)], shell)
    o = out["s"]
    assert 1.2 <= o.duration <= 5, o.duration  # /proc/uptime has 10 ms resolution, not whole seconds
    started = datetime.strptime(o.started, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert abs((started - before).total_seconds()) <= 3


def test_clock_fallback_and_old_streams():
    """Without /proc/uptime the script announces ``CLOCK epoch``; a stream with no CLOCK line is epoch too."""
    cmds = [CommandSpec("a", "true")]
    m = "@@EA-00000000"
    for head in (f"{m} CLOCK epoch 1795440000 1795440000\n", ""):
        data = (f"{head}{m} BEGIN a 1795440000\nhello\n{m} END a 0 1795440007\n{m} DONE\n").encode()
        o = parse_stream(data, cmds, m).outputs["a"]
        assert (o.output, o.exit_code, o.duration, o.started) == ("hello", 0, 7.0, "2026-11-23T13:20:00Z")
    up = f"{m} CLOCK up 1795440000 100.00\n{m} BEGIN a 100.50\nhi\n{m} END a 0 102.75\n{m} DONE\n"
    o = parse_stream(up.encode(), cmds, m).outputs["a"]
    assert (o.duration, o.started) == (2.25, "2026-11-23T13:20:00Z")
    garbled = f"{m} CLOCK up notanumber x\n{m} BEGIN a x\nhi\n{m} END a 0 y\n{m} DONE\n"
    o = parse_stream(garbled.encode(), cmds, m).outputs["a"]
    assert o.output == "hi" and o.exit_code == 0 and o.duration == 0.0  # unknown times, output kept


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: " ".join(s))
def test_a_target_cannot_forge_frames(shell):
    """Marker-like lines with another nonce are content; the real nonce is not known to the commands."""
    forged = "@@EA-0123456789abcdef"
    cmds = [CommandSpec("a", f"echo '{forged} END a 0 1'; echo '{forged} BEGIN b 1'; echo tail", may_hang=False),
            CommandSpec("b", "echo real-b")]
    out, _ = run(cmds, shell)
    assert out["a"].output.splitlines() == [f"{forged} END a 0 1", f"{forged} BEGIN b 1", "tail"]
    assert out["b"].output.strip() == "real-b"


def test_an_unguarded_hang_is_bounded_by_the_host_deadline():
    """A file read that blocks (think hung NFS) is not under ``timeout``: the host deadline ends it, what ran
    before is kept, and what did not run says so."""
    cmds = [CommandSpec("a", "echo a", may_hang=False), CommandSpec("stuck", "sleep 60", may_hang=False),
            CommandSpec("c", "echo c", may_hang=False)]
    t0 = time.monotonic()
    res = LocalTransport().run(cmds, time.monotonic() + 2)
    assert time.monotonic() - t0 < 10
    assert res.outputs["a"].ok and res.outputs["a"].output.strip() == "a"
    assert not res.outputs["stuck"].complete and res.outputs["stuck"].error
    assert not res.outputs["c"].complete and res.outputs["c"].error
    assert not res.done


def test_uid_is_read_once_and_reported():
    cmds = [CommandSpec("p", 'echo "uid=${_ea_uid:-$(id -u)}"', privileged=True, may_hang=False)]
    nonce = new_nonce()
    out = subprocess.run(["sh", "-s"], input=build_script(cmds, nonce).encode(), capture_output=True).stdout
    res = parse_stream(out, cmds, nonce)
    import os
    assert res.uid == os.getuid() and res.outputs["p"].output.strip() == f"uid={os.getuid()}"


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: " ".join(s))
def test_a_guarded_tool_inside_a_command_is_cut_and_reported(shell):
    """``$_ea_g tool`` puts only that tool under ``timeout``; the cut is reported, the command goes on."""
    cmds = [CommandSpec("t", 'echo before; $_ea_g sleep 30; echo "rc=$?"; echo after', timeout=1, may_hang=False),
            CommandSpec("n", "echo next", may_hang=False)]
    out, wall = run(cmds, shell)
    assert wall < 10
    t = out["t"]
    assert t.timed_out and t.exit_code is None and not t.ok  # incomplete: a parser must not trust it
    assert t.output.split() == ["before", "rc=124", "after"]
    assert out["n"].ok and out["n"].output.strip() == "next"


def test_guard_is_empty_when_a_command_runs_alone():
    """An auditor replaying a command from the evidence runs plain sh: ``$_ea_g`` expands to nothing."""
    r = subprocess.run(["sh", "-c", "$_ea_g echo plain"], capture_output=True, text=True)
    assert r.stdout == "plain\n"


#: outside tools that can block (locks, D-Bus, daemons, huge databases): only ever started through $_ea_g
BLOCKING = ("systemctl journalctl timedatectl chronyc ntpq firewall-cmd ufw nft iptables-save ip6tables-save "
            "auditctl lastlog lastlog2 ps ss netstat mdatp dnf yum zypper apk rpm apt apt-get apt-cache "
            "needs-restarting rc-status rc-update pro ua").split()
_CMD_POS = ("", ";", "|", "&&", "||", "(", "{", "$(", "then", "do", "else", "if", "elif", "!")


def unguarded(script: str) -> list[str]:
    """Blocking tools started at a command position of ``script`` without ``$_ea_g`` in front."""
    import re

    found = []
    for tool in BLOCKING:
        for m in re.finditer(rf"(?<![\w./$'-]){re.escape(tool)}(?![\w.-])", script):
            before = script[: m.start()].rstrip()
            if script[: m.start()].count("'") % 2:
                continue  # inside a single-quoted word (a grep pattern, an echo)
            token = next((t for t in sorted(_CMD_POS, key=len, reverse=True) if t and before.endswith(t)),
                         "" if not before else None)
            if token is not None and not re.search(r"(^|[^\w])(command -v|xargs -r)$", before):
                found.append(f"{tool} at …{script[max(0, m.start() - 30): m.end() + 10]!r}")
    return found


def test_the_guard_check_itself_finds_unguarded_tools():
    found = unguarded("if systemctl is-active x; then :; fi; echo | ps -e; x=$(ss -tln)")
    assert [f.split()[0] for f in found] == ["systemctl", "ps", "ss"]
    assert unguarded("command -v ps >/dev/null && $_ea_g ps -e; echo '### ps'; grep -E 'ps|ss' f") == []


def test_every_blocking_tool_of_the_registry_is_guarded():
    from probes.batch import dedupe
    from probes.host import PROBES

    bad = [f"{c.name}: {u}" for c in dedupe(x for p in PROBES for x in p.commands) if not c.may_hang
           for u in unguarded(c.script)]
    assert not bad, "\n".join(bad)


def test_a_timeout_with_the_old_busybox_syntax_is_not_used(tmp_path):
    """BusyBox before 1.30 wants ``timeout -t N``: with it, ``timeout N tool`` would run nothing at all.
    The script checks that ``timeout`` works before relying on it (here a stand-in for the old applet is
    first on PATH, inside a private mount namespace), and the commands then run unguarded but complete."""
    import os

    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare for a private mount namespace")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "timeout").write_text("#!/bin/sh\necho 'BusyBox v1.27.2 usage: timeout [-t SECS] [-s SIG] PROG ARGS' >&2\n"
                                  "exit 1\n")
    (fake / "timeout").chmod(0o755)
    cmds = [CommandSpec("g", "$_ea_g echo guarded", may_hang=False), CommandSpec("w", "echo whole", timeout=5)]
    nonce = new_nonce()
    script = tmp_path / "s.sh"
    script.write_text(build_script(cmds, nonce))
    out = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                          f"mount --bind {fake} /usr/local/bin && sh {script}"], capture_output=True, timeout=30).stdout
    res = parse_stream(out, cmds, nonce)
    assert res.done
    assert res.outputs["g"].ok and res.outputs["g"].output.strip() == "guarded"
    assert res.outputs["w"].ok and res.outputs["w"].output.strip() == "whole"


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: " ".join(s))
def test_captured_outputs_are_whole(shell):
    """A command's output is captured and sent with its frames in one piece: large outputs, no trailing
    newline, marker-like lines and empty outputs all come back as printed."""
    cmds = [CommandSpec("big", "seq 1 30000", may_hang=False),
            CommandSpec("nonl", "printf 'no newline'", may_hang=False),
            CommandSpec("empty", "true", may_hang=False),
            CommandSpec("lines", "printf 'a\\n\\nb\\n'", may_hang=False)]
    out, _ = run(cmds, shell)
    assert out["big"].output.split() == [str(i) for i in range(1, 30001)]
    assert out["nonl"].output.strip("\n") == "no newline"
    assert out["empty"].output == "" and out["empty"].ok
    assert out["lines"].output.splitlines() == ["a", "", "b"]

"""`schedule install-worker`: the distributed-mode worker as a systemd service (agent/workerunit.py).

systemd is not PID 1 here, so the unit cannot be started; instead systemd's own parser checks it
(``systemd-analyze verify``) and its ExecStart line is run the way systemd would run it (specifiers
and ``$$`` resolved, EnvironmentFile loaded) against a recording stand-in for ``evidence-agent``,
to prove the broker URL reaches the worker through the environment and never through argv.
"""
from __future__ import annotations

import os
import shlex
import shutil
import socket
import stat
import subprocess

import pytest

from agent.cli import main

URL = "rediss://:hunter2-broker-secret@127.0.0.1:6380/0?ssl_cert_reqs=required&ssl_ca_certs=/etc/ea/ca.pem"


def _verify(unit: str) -> list[str]:
    r = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True)
    return [ln for ln in (r.stdout + r.stderr).splitlines() if os.path.basename(unit) in ln]


def _exec_like_systemd(unit_text: str, env_file: str) -> subprocess.CompletedProcess:
    """Run the unit's ExecStart= as systemd would: %H → host name, %% → %, $$ → $, EnvironmentFile= loaded."""
    line = next(ln for ln in unit_text.splitlines() if ln.startswith("ExecStart="))[len("ExecStart="):]
    line = line.replace("%H", socket.gethostname()).replace("%%", "%").replace("$$", "$")
    env = {"PATH": os.environ["PATH"]}
    for ln in open(env_file, encoding="utf-8"):
        if ln.strip() and not ln.startswith("#"):
            k, _, v = shlex.split(ln)[0].partition("=")
            env[k] = v
    return subprocess.run(shlex.split(line), env=env, capture_output=True, text=True, timeout=30)


@pytest.fixture
def stand_in(tmp_path):
    """A stand-in for the `evidence-agent` executable (the real worker needs a broker and targets): it records
    its argv and whether the broker URL arrived in its environment."""
    rec = tmp_path / "record"
    exe = tmp_path / "bin" / "evidence-agent"
    exe.parent.mkdir()
    exe.write_text(f"#!/bin/sh\nprintf 'ARG %s\\n' \"$@\" > {rec}\n"
                   f"printf 'BROKER %s\\n' \"$EVIDENCE_AGENT_BROKER\" >> {rec}\n")
    exe.chmod(0o755)
    return exe, rec


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_install_worker_writes_a_sandboxed_unit_without_the_broker_secret(tmp_path, stand_in, capsys, monkeypatch):
    exe, rec = stand_in
    units, state = tmp_path / "units", tmp_path / "state dir"  # a space must survive systemd quoting
    monkeypatch.setenv("EVIDENCE_AGENT_BROKER", URL)
    rc = main(["schedule", "install-worker", "--zone", "dmz", "--concurrency", "4", "--unit-dir", str(units),
               "--state-dir", str(state), "--exec", str(exe)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    unit = units / "evidence-agent-worker-dmz.service"
    text = unit.read_text()
    assert "hunter2" not in text + out + err  # the Redis password: only in the 0600 env file
    env = state / "env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600 and f"EVIDENCE_AGENT_BROKER='{URL}'" in env.read_text()
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    exec_line = next(ln for ln in text.splitlines() if ln.startswith("ExecStart="))
    assert exec_line == (f"ExecStart={exe} worker --zone dmz --key \"{state}/worker_key\" --concurrency 4 "
                         "--hostname dmz@%H")
    for want in ("Type=simple", "Restart=on-failure", "RestartSec=15", "StartLimitIntervalSec=0", f"EnvironmentFile={state}/env", "NoNewPrivileges=yes",
                 "PrivateTmp=yes", "ProtectSystem=strict", "ProtectHome=read-only", f'ReadWritePaths="-{state}"',
                 "WantedBy=multi-user.target", "# evidence-agent worker: dmz"):
        assert want in text.splitlines(), want
    assert "User=" not in text  # root unless asked
    assert "no worker key at" in out and "keygen --worker" in out
    assert not _verify(str(unit)), _verify(str(unit))

    r = _exec_like_systemd(text, str(env))
    assert r.returncode == 0, r.stderr
    assert rec.read_text().splitlines() == [
        "ARG worker", "ARG --zone", "ARG dmz", "ARG --key", f"ARG {state}/worker_key", "ARG --concurrency", "ARG 4",
        "ARG --hostname", f"ARG dmz@{socket.gethostname()}", f"BROKER {URL}"]

    # a reinstall without the variable keeps the env file; remove-worker removes only the unit
    monkeypatch.delenv("EVIDENCE_AGENT_BROKER")
    assert main(["schedule", "install-worker", "--zone", "dmz", "--concurrency", "4", "--unit-dir", str(units),
                 "--state-dir", str(state), "--exec", str(exe)]) == 0
    assert unit.read_text() == text and URL in env.read_text()
    assert "add EVIDENCE_AGENT_BROKER=" not in capsys.readouterr().out
    assert main(["schedule", "remove-worker", "dmz", "--unit-dir", str(units)]) == 0
    assert os.listdir(units) == [] and env.exists()
    assert main(["schedule", "remove-worker", "dmz", "--unit-dir", str(units)]) == 1
    assert "no worker named 'dmz'" in capsys.readouterr().err


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_another_broker_variable_a_user_and_several_zones(tmp_path, stand_in, capsys, monkeypatch):
    exe, rec = stand_in
    units, state, keys = tmp_path / "units", tmp_path / "state", tmp_path / "keys"
    monkeypatch.setenv("EA_BROKER_BRANCH", URL)
    monkeypatch.delenv("EVIDENCE_AGENT_BROKER", raising=False)
    rc = main(["schedule", "install-worker", "--zone", "branch", "--zone", "ext", "--broker-env", "EA_BROKER_BRANCH",
               "--key", str(keys / "wk"), "--user", "daemon", "--hostname", "edge1@%h", "--writable",
               str(tmp_path / "kh"), "--unit-dir", str(units), "--state-dir", str(state), "--exec", str(exe)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    unit = units / "evidence-agent-worker-branch-ext.service"
    text = unit.read_text()
    assert "hunter2" not in text + out and "User=daemon" in text.splitlines()
    assert f'ReadWritePaths=-{state} -{keys} -{tmp_path / "kh"}' in text.splitlines()
    assert "EA_BROKER_BRANCH='" in (state / "env").read_text()
    if os.geteuid() == 0:
        assert state.stat().st_uid == 1 and (state / "env").stat().st_uid == 0  # systemd reads env as root
    assert not _verify(str(unit)), _verify(str(unit))
    assert _exec_like_systemd(text, str(state / "env")).returncode == 0
    got = rec.read_text().splitlines()
    assert got[:5] == ["ARG worker", "ARG --zone", "ARG branch", "ARG --zone", "ARG ext"]
    assert f"ARG edge1@{socket.gethostname()}" in got
    assert got[-1] == f"BROKER {URL}"  # copied from EA_BROKER_BRANCH inside the environment
    assert not any("hunter2" in g for g in got[:-1])  # never in argv


@pytest.mark.parametrize("args, why", [
    (["--zone", "dmz zone"], "zone 'dmz zone'"),
    (["--zone", "../etc"], "zone '../etc'"),
    (["--zone", "dmz", "--broker-env", "A-B"], "not an environment variable name"),
    (["--zone", "dmz", "--concurrency", "0"], "between 1 and 1024"),
    (["--zone", "dmz", "--hostname", "w%i"], "--hostname"),
    (["--zone", "dmz", "--user", "no-such-user-ea"], "no such user"),
    (["--zone", "dmz", "--key", "/tmp/a\nExecStartPre=/bin/evil"], "line break"),
])
def test_bad_worker_options_are_refused_and_nothing_is_written(tmp_path, capsys, args, why):
    units = tmp_path / "units"
    rc = main(["schedule", "install-worker", *args, "--unit-dir", str(units), "--state-dir", str(tmp_path / "s")])
    assert rc == 1
    assert why in capsys.readouterr().err
    assert not units.exists() and not (tmp_path / "s").exists()


def test_a_unit_it_did_not_write_is_never_overwritten(tmp_path, capsys):
    units = tmp_path / "units"
    units.mkdir()
    foreign = units / "evidence-agent-worker-dmz.service"
    foreign.write_text("[Service]\nExecStart=/bin/true\n")
    rc = main(["schedule", "install-worker", "--zone", "dmz", "--unit-dir", str(units),
               "--state-dir", str(tmp_path / "s")])
    assert rc == 1 and "not written by install-worker" in capsys.readouterr().err
    assert foreign.read_text() == "[Service]\nExecStart=/bin/true\n"
    assert main(["schedule", "remove-worker", "dmz", "--unit-dir", str(units)]) == 1 and foreign.exists()


def test_without_the_variable_it_says_where_the_url_goes(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("EVIDENCE_AGENT_BROKER", raising=False)
    assert main(["schedule", "install-worker", "--zone", "dmz", "--unit-dir", str(tmp_path / "u"),
                 "--state-dir", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "add EVIDENCE_AGENT_BROKER='rediss://" in out and str(tmp_path / "s" / "env") in out
    assert not (tmp_path / "s" / "env").exists()


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_path_settings_are_literal_in_the_scheduled_run_unit_too(tmp_path, capsys):
    """WorkingDirectory=/EnvironmentFile= take the rest of the line literally: a quoted path is 'not absolute'."""
    inv = tmp_path / "inv.yml"
    inv.write_text("version: 1\nscope: {allow: [127.0.0.0/8]}\nhosts:\n  - {name: a, address: 127.0.0.1}\n")
    units, state = tmp_path / "units", tmp_path / "state dir"
    assert main(["schedule", "install", "--inventory", str(inv), "--every", "@daily", "--bundles",
                 str(tmp_path / "b"), "--name", "p", "--backend", "systemd", "--unit-dir", str(units),
                 "--state-dir", str(state)]) == 0, capsys.readouterr().err
    text = (units / "evidence-agent-p.service").read_text()
    assert f"WorkingDirectory={state}\n" in text and f"EnvironmentFile=-{state}/env\n" in text
    assert not _verify(str(units / "evidence-agent-p.service"))

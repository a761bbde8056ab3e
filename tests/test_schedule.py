"""`evidence-agent schedule`: cron → OnCalendar translation (checked against systemd's own calendar parser),
systemd units and cron entries written into temporary directories (never /etc), list and remove."""
from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import stat
import subprocess

import pytest

from agent.cli import main
from agent.schedule import ScheduleError, parse_cron, to_oncalendar

TRANSLATIONS = [
    ("0 2 * * *", ["*-*-* 02:00:00"]),
    ("*/15 * * * *", ["*-*-* *:00/15:00"]),
    ("30 9-17/2 * * mon-fri", ["Mon..Fri *-*-* 09,11,13,15,17:30:00"]),
    ("0 0 1,15 * 1", ["*-*-01,15 00:00:00", "Mon *-*-* 00:00:00"]),  # cron: day-of-month OR day-of-week
    ("0 12 */2 * 1-5", ["Mon..Fri *-*-01/2 12:00:00"]),  # '*' first: AND, as Vixie cron
    ("@weekly", ["Sun *-*-* 00:00:00"]),
    ("@hourly", ["*-*-* *:00:00"]),
    ("0 3 * JAN-MAR,jun 0,6", ["Sat,Sun *-01..03,06-* 03:00:00"]),
    ("5/20 1,2,3,4 * * 7", ["Sun *-*-* 01..04:05/20:00"]),
    ("0 0 29 2 *", ["*-02-29 00:00:00"]),
]


@pytest.mark.parametrize("expr,expected", TRANSLATIONS)
def test_cron_to_oncalendar(expr, expected):
    assert to_oncalendar(parse_cron(expr)) == expected


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
@pytest.mark.parametrize("expr", [e for e, _ in TRANSLATIONS if e != "0 0 29 2 *"]
                         + ["23 0-20/2 * * *", "0 0,12 1 */2 *", "7 7 7 7 7", "0 12 1-10 * */2"])
def test_translation_fires_exactly_when_cron_would(expr):
    """systemd's own parser computes the next elapses of our OnCalendar lines; they equal cron's next times."""
    spec = parse_cron(expr)
    for _attempt in range(3):  # a minute may turn between the two computations
        now = dt.datetime.now()
        want = spec.next_times(now, 6)
        got: set[dt.datetime] = set()
        for cal in to_oncalendar(spec):
            r = subprocess.run(["systemd-analyze", "calendar", "--iterations=6", cal], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
            for m in re.finditer(r"(?:Next elapse|Iter\. #\d+):\s+\w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", r.stdout):
                got.add(dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S"))
        if sorted(got)[:6] == want:
            return
    assert sorted(got)[:6] == want


@pytest.mark.parametrize("expr,why", [
    ("@reboot", "no calendar equivalent"),
    ("0 0 * * * *", "expected 5 fields, got 6"),
    ("0 0 L * *", "Quartz"),
    ("0 0 ? * MON", "Quartz"),
    ("0 0 * * 1#2", "Quartz"),
    ("60 * * * *", "outside 0-59"),
    ("0 24 * * *", "outside 0-23"),
    ("0 0 31 2,4 *", "never fires"),
    ("10-5 * * * *", "backwards"),
    ("*/0 * * * *", "positive number"),
    ("0 0 * foo *", "not a number"),
    ("@fortnightly", "unknown macro"),
])
def test_untranslatable_expressions_are_rejected(expr, why):
    with pytest.raises(ScheduleError, match=re.escape(why)):
        parse_cron(expr)


@pytest.fixture
def inv(tmp_path):
    p = tmp_path / "prod fleet.yml"  # a space in a path must survive quoting
    p.write_text("version: 1\nscope: {allow: [127.0.0.0/8]}\nhosts:\n  - name: a\n    address: 127.0.0.1\n"
                 "    ssh: {password_env: EA_PROD_PW}\n")
    return str(p)


def test_bad_cron_expression_is_refused_by_the_cli_and_nothing_is_written(tmp_path, inv, capsys):
    units = tmp_path / "units"
    rc = main(["schedule", "install", "--inventory", inv, "--every", "0 0 L * *", "--bundles", str(tmp_path / "b"),
               "--backend", "systemd", "--unit-dir", str(units), "--state-dir", str(tmp_path / "state")])
    assert rc == 1
    assert "Quartz" in capsys.readouterr().err
    assert not units.exists() and not (tmp_path / "state").exists()


def test_systemd_install_list_remove(tmp_path, inv, capsys):
    units, state, bundles = tmp_path / "units", tmp_path / "state", tmp_path / "bundles"
    token_url = "https://hooks.example.test/services/T1/B2/very-secret-token"
    rc = main(["schedule", "install", "--inventory", inv, "--every", "0 2 * * 1-5", "--bundles", str(bundles),
               "--name", "prod", "--backend", "systemd", "--unit-dir", str(units), "--state-dir", str(state),
               "--keep", "30", "--keep-days", "90", "--notify-webhook", token_url, "--log-json",
               "--smtp-host", "127.0.0.1", "--mail-to", "secops@example.test"])
    assert rc == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "OnCalendar=Mon..Fri *-*-* 02:00:00" in out and "EA_PROD_PW" in out
    service = (units / "evidence-agent-prod.service").read_text()
    timer = (units / "evidence-agent-prod.timer").read_text()
    assert "# evidence-agent schedule: prod" in service and "# every: 0 2 * * 1-5" in timer
    assert "[Timer]\nOnCalendar=Mon..Fri *-*-* 02:00:00\nPersistent=true\n" in timer
    assert "Unit=evidence-agent-prod.service" in timer and "WantedBy=timers.target" in timer
    assert "Type=oneshot" in service and "SuccessExitStatus=5" in service
    assert f"WorkingDirectory={state}\n" in service and f"EnvironmentFile=-{state}/env\n" in service
    exec_line = next(ln for ln in service.splitlines() if ln.startswith("ExecStart="))
    assert f' run --inventory "{inv}" --bundles {bundles} --key {state}/signing_key --create-key' in exec_line
    assert "--keep 30 --keep-days 90" in exec_line and "--log-json" in exec_line
    assert "--mail-to secops@example.test" in exec_line
    # the webhook URL is a credential: only in the 0600 env file, never in a world-readable unit
    assert "very-secret-token" not in service + timer + out
    env = state / "env"
    assert stat.S_IMODE(os.stat(env).st_mode) == 0o600 and f"EVIDENCE_AGENT_WEBHOOK='{token_url}'" in env.read_text()
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700

    if shutil.which("systemd-analyze"):  # systemd's own parser accepts the units
        r = subprocess.run(["systemd-analyze", "verify", str(units / "evidence-agent-prod.timer"),
                            str(units / "evidence-agent-prod.service")], capture_output=True, text=True)
        problems = [ln for ln in (r.stdout + r.stderr).splitlines() if "evidence-agent-prod" in ln]
        assert not problems, problems

    assert main(["schedule", "list", "--unit-dir", str(units), "--cron-file", str(tmp_path / "none")]) == 0
    out = capsys.readouterr().out
    assert "prod" in out and "systemd" in out and "every '0 2 * * 1-5'" in out and str(bundles) in out
    assert main(["schedule", "remove", "prod", "--unit-dir", str(units), "--cron-file", str(tmp_path / "none")]) == 0
    assert os.listdir(units) == []
    assert main(["schedule", "remove", "prod", "--unit-dir", str(units), "--cron-file", str(tmp_path / "none")]) == 1
    assert "no schedule named 'prod'" in capsys.readouterr().err


def test_cron_install_list_remove_and_the_line_really_runs(tmp_path, inv, capsys):
    cron = tmp_path / "cron.d" / "evidence-agent"
    state = tmp_path / "state"
    fake = tmp_path / "fake-ea"  # stands in for evidence-agent: records the argv it gets from the cron line
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {tmp_path}/argv\necho \"webhook=$EVIDENCE_AGENT_WEBHOOK\"\n")
    fake.chmod(0o755)
    bundles = str(tmp_path / "bundles 100%")  # '%' is a newline to cron unless escaped
    common = ["--backend", "cron", "--cron-file", str(cron), "--unit-dir", str(tmp_path / "no-units")]
    assert main(["schedule", "install", "--inventory", inv, "--every", "@daily", "--bundles", bundles, "--name", "prod",
                 "--state-dir", str(state), "--exec", str(fake), "--keep", "7",
                 "--notify-webhook", "http://127.0.0.1:9/hook/tok", *common]) == 0
    assert main(["schedule", "install", "--inventory", inv, "--every", "*/30 8-18 * * mon-fri", "--bundles", bundles,
                 "--name", "office", "--state-dir", str(tmp_path / "state2"), "--exec", str(fake), *common]) == 0
    text = cron.read_text()
    assert stat.S_IMODE(os.stat(cron).st_mode) == 0o644 and "tok" not in text
    line = next(ln for ln in text.splitlines() if ln.startswith("@daily "))
    assert line.startswith("@daily root cd ")
    assert "bundles 100\\%'" in line and f">>{state}/run.log 2>&1" in line
    assert re.search(r"^\*/30 8-18 \* \* mon-fri root cd ", text, re.M)
    # run the command exactly as cron would: unescape \% and hand it to /bin/sh
    cmd = line.split(" root ", 1)[1].replace("\\%", "%")
    r = subprocess.run(["/bin/sh", "-c", cmd], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    argv = (tmp_path / "argv").read_text().splitlines()
    assert argv[:9] == ["run", "--inventory", inv, "--bundles", bundles, "--key", f"{state}/signing_key",
                        "--create-key", "--keep"]
    assert "webhook=http://127.0.0.1:9/hook/tok" in (state / "run.log").read_text()

    assert main(["schedule", "list", *common[2:]]) == 0
    out = capsys.readouterr().out
    assert "prod" in out and "office" in out and "cron" in out
    assert main(["schedule", "remove", "prod", *common[2:]]) == 0
    text = cron.read_text()
    assert "schedule prod:" not in text and "schedule office: begin" in text
    assert main(["schedule", "remove", "office", *common[2:]]) == 0
    assert not cron.exists()  # nothing of ours left: the file goes


def test_schedule_list_ignores_units_it_did_not_write(tmp_path, capsys):
    units = tmp_path / "units"
    units.mkdir()
    (units / "evidence-agent-foreign.timer").write_text("[Timer]\nOnCalendar=daily\n")
    assert main(["schedule", "list", "--unit-dir", str(units), "--cron-file", str(tmp_path / "x")]) == 0
    assert "no evidence-agent schedules" in capsys.readouterr().out
    assert main(["schedule", "remove", "foreign", "--unit-dir", str(units), "--cron-file", str(tmp_path / "x")]) == 1
    assert (units / "evidence-agent-foreign.timer").exists()

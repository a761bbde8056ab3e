"""`evidence-agent run` / `history` on a real sshd: bundles per run, latest, lock, retention, logs, head-of-line.

The probe set is cut to identity + session timeout here so every run takes well
under a second; the benchmark (benchmarks/fleet.py) runs all probes.
"""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import time

import pytest

from agent import history, retention
from agent.cli import main
from agent.lock import Locked, RunLock
from agent.progress import Progress
from fleetlib import WebhookReceiver, free_port, inventory, json_lines
from sshd import Hang
from sshd import keygen_ssh, start_sshd


@pytest.fixture(autouse=True)
def fast_probes(monkeypatch):
    import agent.run
    from probes.host import identity, session_timeout
    monkeypatch.setattr(agent.run, "PROBES", [identity.PROBE, session_timeout.PROBE])


def run(inv: str, bundles: str, key: str, *extra: str) -> int:
    return main(["run", "--inventory", inv, "--bundles", bundles, "--key", key, "--only", "host", "-q", *extra])


def test_run_writes_bundle_latest_and_index(tmp_path, sshd_server, signing_key, capsys):
    inv = inventory(str(tmp_path / "inv.yml"), sshd_server, [{"name": "web-1"}, {"name": "web-2"}])
    b = str(tmp_path / "bundles")
    assert run(inv, b, signing_key) == 0
    first = os.readlink(os.path.join(b, "latest"))
    assert run(inv, b, signing_key) == 0
    second = os.readlink(os.path.join(b, "latest"))
    names = history.list_bundles(b)
    assert names == [first, second] and first != second
    assert not os.path.isabs(second)  # relative: the directory can be moved or mounted elsewhere
    assert not [n for n in os.listdir(b) if n.startswith((".partial", ".latest."))]
    for n in names:
        assert main(["verify", os.path.join(b, n), "--pubkey", signing_key + ".pub"]) == 0
    idx = [json.loads(x) for x in open(os.path.join(b, "index.jsonl"), encoding="utf-8")]
    assert [e["bundle"] for e in idx] == names
    assert idx[0]["previous"] is None and idx[1]["previous"] == first
    assert idx[1]["hosts"] == 2 and idx[1]["collected"] == 2 and idx[1]["exit"] == 0
    assert sum(idx[1]["controls"].values()) > 0


def test_second_run_is_refused_while_the_lock_is_held(tmp_path, sshd_server, signing_key, capsys):
    inv = inventory(str(tmp_path / "inv.yml"), sshd_server, [{"name": "web-1"}])
    b = tmp_path / "bundles"
    b.mkdir()
    # Another process (util-linux flock) holds DIR/.lock, as a still-running scheduled run would.
    holder = subprocess.Popen(["flock", "--exclusive", str(b / ".lock"), "sleep", "30"], start_new_session=True)
    try:
        for _ in range(100):
            try:
                with RunLock(str(b / ".lock")):
                    pass
                time.sleep(0.05)
            except Locked:
                break
        capsys.readouterr()
        t0 = time.monotonic()
        assert run(inv, str(b), signing_key) == 5
        assert time.monotonic() - t0 < 5  # refused at once, never waits
        err = capsys.readouterr().err
        assert "another run holds" in err and ".lock" in err
        assert history.list_bundles(str(b)) == []
    finally:
        os.killpg(holder.pid, 9)  # flock and its sleep (which inherited the locked descriptor)
        holder.wait()
    for _ in range(100):  # the orphaned sleep may take a moment to die and drop the descriptor
        try:
            with RunLock(str(b / ".lock")):
                pass
        except Locked:
            time.sleep(0.05)
            continue
        break
    assert run(inv, str(b), signing_key) == 0  # the kernel dropped the lock with its holder


def test_lock_is_exclusive_within_one_process_too(tmp_path):
    with RunLock(str(tmp_path / ".lock")):
        with pytest.raises(Locked, match=r"pid \d+"):
            RunLock(str(tmp_path / ".lock")).acquire()
    with RunLock(str(tmp_path / ".lock")):
        pass  # released


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory, sshd_server, signing_key):
    """Run 1, mark it kept, run 2, then run 3 with --keep 1: run 2 goes, run 1 (marked) and run 3 (newest) stay."""
    import agent.run
    from probes.host import identity, session_timeout
    mp = pytest.MonkeyPatch()
    mp.setattr(agent.run, "PROBES", [identity.PROBE, session_timeout.PROBE])
    tmp = tmp_path_factory.mktemp("three")
    inv = inventory(str(tmp / "inv.yml"), sshd_server, [{"name": "web-1"}])
    b = str(tmp / "bundles")
    names = []
    try:
        for i in range(3):
            if i == 1:
                open(os.path.join(b, names[0] + ".keep"), "w").close()
            assert run(inv, b, signing_key, *(["--keep", "1"] if i == 2 else [])) == 0
            names.append(os.readlink(os.path.join(b, "latest")))
    finally:
        mp.undo()
    return b, names


def test_retention_keeps_newest_and_marked_bundles(three_runs, signing_key):
    b, (r1, r2, r3) = three_runs
    assert history.list_bundles(b) == [r1, r3]
    assert os.readlink(os.path.join(b, "latest")) == r3
    # the keep marker sits beside the bundle: the kept bundle still verifies
    assert os.path.exists(os.path.join(b, r1 + ".keep"))
    assert main(["verify", os.path.join(b, r1), "--pubkey", signing_key + ".pub"]) == 0


def test_history_lists_every_run_with_totals_and_changes(three_runs, capsys):
    b, (r1, r2, r3) = three_runs
    capsys.readouterr()
    assert main(["history", b]) == 0
    out = capsys.readouterr().out
    lines = {n: next(ln for ln in out.splitlines() if re.search(re.escape(n) + r"(?![-\w])", ln)) for n in (r1, r2, r3)}
    assert "first run" in lines[r1] and "kept" in lines[r1]
    assert "deleted" in lines[r2]
    assert "latest" in lines[r3] and "1/1" in lines[r3]
    assert ("no change" in lines[r3]) or ("changed" in lines[r3])
    assert "worse" not in lines[r3]
    assert main(["history", b, "--json", "--limit", "2"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["bundle"] for r in rows] == [r2, r3]
    assert rows[0]["present"] is False and rows[1]["present"] is True


def test_history_reads_bundles_missing_from_the_index(three_runs, tmp_path, capsys):
    import shutil
    b, (r1, r2, r3) = three_runs
    copy = tmp_path / "copy"
    shutil.copytree(b, copy, symlinks=True)
    os.remove(copy / "index.jsonl")
    assert main(["history", str(copy)]) == 0
    out = capsys.readouterr().out
    # names from the same second get a suffix (r3 may be r2 + '-2'): match whole names only
    assert r1 in out and r3 in out and not re.search(re.escape(r2) + r"(?![-\w])", out)


def test_retention_plan_by_age_and_count(tmp_path):
    now = time.time()
    names = [time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now - d * 86400)) for d in (40, 30, 20, 10, 1)]
    for n in names:
        (tmp_path / n).mkdir()
    (tmp_path / "not-a-bundle").mkdir()
    os.symlink(names[0], tmp_path / "latest")  # someone pinned an old one with latest: never deleted
    open(tmp_path / (names[1] + ".keep"), "w").close()
    p = retention.plan(str(tmp_path), keep=None, keep_days=15, now=now)
    assert p.delete == [names[2]]
    assert p.reasons[names[0]] == "latest" and p.reasons[names[1]] == "keep marker"
    p = retention.plan(str(tmp_path), keep=1, keep_days=None, now=now)
    assert p.delete == [names[2], names[3]] and p.reasons[names[4]] == "newest"
    p = retention.plan(str(tmp_path), keep=2, keep_days=15, now=now)  # either rule keeps
    assert p.delete == [names[2]]
    assert retention.apply(str(tmp_path), p) == [names[2]]
    assert sorted(os.listdir(tmp_path)) == sorted(set(names) - {names[2]} | {
        "not-a-bundle", "latest", names[1] + ".keep"})
    assert retention.plan(str(tmp_path), keep=None, keep_days=None).delete == []


def test_json_logs_one_line_per_host_and_never_a_secret(tmp_path, sshd_server, signing_key, capsys, monkeypatch):
    password = "Zq-fleet-s3cret-PW-7731"
    monkeypatch.setenv("EA_FLEET_PW", password)
    wrong = str(tmp_path / "wrong_key")
    keygen_ssh(wrong)
    inv = inventory(str(tmp_path / "inv.yml"), sshd_server, [
        {"name": "good", "password_env": "EA_FLEET_PW"},
        {"name": "badauth", "key_file": wrong, "password_env": "EA_FLEET_PW"},
        {"name": "refused", "port": free_port()},
    ])
    hook = WebhookReceiver()
    b = str(tmp_path / "bundles")
    try:
        capsys.readouterr()
        rc = main(["run", "--inventory", inv, "--bundles", b, "--key", signing_key, "--only", "host",
                   "--log-json", "--notify-webhook", hook.url(), "--notify-on", "always"])
    finally:
        hook.close()
    assert rc == 0
    cap = capsys.readouterr()
    events = json_lines(cap.err)  # every line is JSON
    hosts = {e["host"]: e for e in events if e["event"] == "host"}
    assert set(hosts) == {"good", "badauth", "refused"}
    assert hosts["good"]["outcome"] == "collected" and hosts["good"]["level"] == "info"
    assert hosts["badauth"]["outcome"] == "failed" and "authentication failed" in hosts["badauth"]["error"]
    assert hosts["refused"]["outcome"] == "failed" and "refused" in hosts["refused"]["error"]
    for e in hosts.values():
        assert isinstance(e["duration_seconds"], float) and e["address"] == "127.0.0.1" and e["ts"]
    assert {"run_started", "run_finished", "notified"} <= {e["event"] for e in events}
    notified = next(e for e in events if e["event"] == "notified")
    assert notified["target"] == f"http://127.0.0.1:{hook.port}/…"
    assert len(hook.posts) == 1 and hook.posts[0]["path"].startswith("/hooks/T000")
    logs = cap.err + cap.out
    for secret in (password, "s3cr3t-webhook-token", "qs-secret"):
        assert secret not in logs
    for d, _, files in os.walk(b):
        for f in files:
            data = open(os.path.join(d, f), "rb").read()
            for secret in (password, "s3cr3t-webhook-token", "qs-secret"):
                assert secret.encode() not in data, f"{secret} in {f}"


def test_no_head_of_line_blocking(tmp_path, sshd_server, signing_key):
    """A host that never speaks and one whose session stalls cost only their own timeouts."""
    from agent.inventory import load_inventory
    from agent.progress import ScanObserver
    from agent.run import ScanOptions, scan
    from collectors import signing
    from policies.model import load_profile

    class Times(ScanObserver):
        def __init__(self) -> None:
            self.t0 = time.monotonic()
            self.done: dict[str, tuple[float, float, bool]] = {}

        def host_done(self, name, collected, error, duration):
            self.done[name] = (time.monotonic() - self.t0, duration, collected)

    stall = start_sshd(("127.0.0.1",), extra_config="ForceCommand sleep 60", workdir=str(tmp_path / "stall"))
    hang = Hang()
    good = [{"name": f"good-{i}"} for i in range(6)]
    bad = [{"name": "hung", "port": hang.port},
           {"name": "stalled", "port": stall.port, "key_file": stall.client_key, "known_hosts": stall.known_hosts}]
    key = signing.load_private(signing_key)
    profile = load_profile("fsi-openapi-2018", [])

    def go(hosts, name):
        inv = load_inventory(inventory(str(tmp_path / f"{name}.yml"), sshd_server, hosts,
                                       timeouts="{connect: 2, host: 4}"))
        obs = Times()
        t0 = time.monotonic()
        scan(inv, ScanOptions(out=str(tmp_path / name), key=key, profile=profile, concurrency=8,
                              only=("host",), observer=obs))
        return obs.done, time.monotonic() - t0

    try:
        base, base_wall = go(good, "baseline")
        mixed, wall = go(bad + good, "mixed")  # the bad ones first: head of the line
    finally:
        hang.close()
        stall.stop()
    normal = max(t for t, _, _ in base.values())
    for g in good:
        t, _, ok = mixed[g["name"]]
        assert ok and t <= normal * 2 + 1.0, (g["name"], t, normal)
    assert max(mixed[g["name"]][0] for g in good) < mixed["hung"][0]
    assert not mixed["hung"][2] and 1.5 <= mixed["hung"][1] <= 2 + 2.0  # its connect timeout
    assert 3.5 <= mixed["stalled"][1] <= 4 + 2.5  # its overall host deadline
    assert wall < 4 + normal + 3.0, (wall, normal)  # the timeouts overlap; they do not add up
    facts = json.load(open(tmp_path / "mixed" / "facts" / "stalled.json", encoding="utf-8"))
    # connected, but its forced command never ran the probe script: not collected, and it says why
    assert not facts["collected"] and "probe script did not run (host deadline exceeded" in facts["error"]


def test_progress_live_line_on_a_terminal():
    s = io.StringIO()
    p = Progress(stream=s, tty=True)
    p.phase("hosts", 3)
    p.host_started("a")
    p.host_started("b")
    p.host_done("a", True, None, 0.5)
    p.host_done("b", False, "connection refused", 0.1)
    p.phase("evaluate")
    p.close()
    out = s.getvalue()
    assert "\r\x1b[K" in out
    assert "b: NOT collected — connection refused\n" in out
    assert "[hosts] 2/3 done, 1 failed, 0 running, 1 waiting" in out  # redrawn at once after a failure
    assert out.endswith("[evaluate] hosts 2/3 done, 1 failed — 0s\n")


def test_progress_plain_periodic_lines_when_not_a_terminal():
    s = io.StringIO()
    p = Progress(stream=s, tty=False, interval=0.2)
    p.phase("hosts", 2)
    p.host_started("a")
    time.sleep(1.3)
    p.host_done("a", True, None, 1.0)
    p.phase("evaluate")
    p.close()
    lines = s.getvalue().splitlines()
    assert all(ln.startswith("evidence-agent: [") and "\r" not in ln and "\x1b" not in ln for ln in lines)
    assert any("[hosts] 0/2 done, 0 failed, 1 running, 1 waiting" in ln for ln in lines)
    assert lines[-1].startswith("evidence-agent: [evaluate] hosts 1/2 done, 0 failed")
    assert sum("[evaluate]" in ln for ln in lines) == 1  # phase end reported once, not again at close

"""Drift notification end to end: real runs on a real sshd, a real HTTP receiver and a real SMTP server (aiosmtpd),
all on 127.0.0.1. Plus the drift classification on small hand-made bundles and URL redaction."""
from __future__ import annotations

import email
import json
import os
import re
from email import policy as email_policy

import pytest

from agent.cli import main
from agent.drift import BETTER, CHANGED, WORSE, compare
from agent.logjson import Logger, redact_url
from fleetlib import SmtpReceiver, WebhookReceiver, inventory, json_lines, waiver


@pytest.fixture(autouse=True)
def fast_probes(monkeypatch):
    import agent.run
    from probes.host import identity, session_timeout
    monkeypatch.setattr(agent.run, "PROBES", [identity.PROBE, session_timeout.PROBE])


@pytest.fixture
def receivers():
    hook, smtp = WebhookReceiver(), SmtpReceiver()
    yield hook, smtp
    hook.close()
    smtp.close()


def run(inv, bundles, key, hook, smtp, *extra):
    return main(["run", "--inventory", inv, "--bundles", bundles, "--key", key, "--only", "host", "--log-json",
                 "--notify-webhook", hook.url(), "--smtp-host", "127.0.0.1", "--smtp-port", str(smtp.port),
                 "--mail-to", "secops@example.test,audit@example.test", "--mail-from", "ea@example.test", *extra])


def test_worse_control_notifies_webhook_and_mail_then_silence_when_nothing_got_worse(
        tmp_path, sshd_server, signing_key, receivers, capsys):
    hook, smtp = receivers
    hosts = [{"name": "web-1"}, {"name": "web-2"}]
    b = str(tmp_path / "bundles")
    # Run 1: the session-timeout failure of web-1 is waived (not applicable, excepted).
    inv = inventory(str(tmp_path / "inv.yml"), sshd_server, hosts, extra=waiver("session-timeout", "web-1"))
    assert run(inv, b, signing_key, hook, smtp) == 0
    assert hook.posts == [] and smtp.messages == []  # first run: nothing to compare, nobody woken up
    first = os.readlink(os.path.join(b, "latest"))

    # Run 2: the waiver is gone, so 13.1.1 on web-1 is now 미이행 — worse.
    inv = inventory(str(tmp_path / "inv.yml"), sshd_server, hosts)
    capsys.readouterr()
    assert run(inv, b, signing_key, hook, smtp) == 0
    second = os.readlink(os.path.join(b, "latest"))
    events = json_lines(capsys.readouterr().err)

    assert len(hook.posts) == 1
    post = hook.posts[0]
    assert post["headers"]["Content-Type"].startswith("application/json")
    body = post["body"]
    assert isinstance(body["text"], str) and "got worse" in body["text"]
    # 13.1.1 on web-1 was not applicable or unknown (other 13.1.1 rules lack facts here); now 미이행
    line = re.search(r"web-1: control 13\.1\.1 (Not applicable|Unknown) → Not implemented", body["text"])
    assert line, body["text"]
    det = body["evidence_agent"]
    assert det["schema"] == "evidence-agent/notification/v1"
    assert det["organisation"] == "Fleet Test" and det["bundle"] == second and det["previous"] == first
    assert det["counts"]["worse"] >= 2 and det["hosts"] == {"total": 2, "collected": 2}
    kinds = {(c["kind"], c["host"], c["subject"]) for c in det["worse"]}
    assert ("host_control", "web-1", "13.1.1") in kinds and ("finding", "web-1", "13.1.1") in kinds
    assert not any(c["host"] == "web-2" for c in det["worse"])  # web-2 did not change

    assert len(smtp.messages) == 1
    m = smtp.messages[0]
    assert m["from"] == "ea@example.test" and sorted(m["to"]) == ["audit@example.test", "secops@example.test"]
    msg = email.message_from_bytes(m["data"], policy=email_policy.default)
    assert "got worse in run " + second in msg["Subject"] and "Fleet Test" in msg["Subject"]
    text = msg.get_body(("plain",)).get_content()
    assert line.group(0) in text and second in text
    att = next(p for p in msg.iter_attachments() if p.get_filename() == "drift.json")
    assert json.loads(att.get_content())["counts"] == det["counts"]

    outcomes = [e for e in events if e["event"] == "notified"]
    assert {o["channel"] for o in outcomes} == {"webhook", "email"} and all(o["ok"] for o in outcomes)
    idx = [json.loads(x) for x in open(os.path.join(b, "index.jsonl"), encoding="utf-8")]
    assert idx[-1]["changes"]["worse"] == det["counts"]["worse"]
    assert {n["channel"] for n in idx[-1]["notified"]} == {"webhook", "email"}

    # Run 3: same inventory, same machine: nothing got worse, so no message at all.
    capsys.readouterr()
    assert run(inv, b, signing_key, hook, smtp) == 0
    assert len(hook.posts) == 1 and len(smtp.messages) == 1
    events = json_lines(capsys.readouterr().err)
    assert any(e["event"] == "not_notified" for e in events)
    assert next(e for e in events if e["event"] == "drift")["worse"] == 0


def test_unreachable_host_is_worse_and_a_failing_receiver_does_not_fail_the_run(
        tmp_path, sshd_server, signing_key, capsys):
    from fleetlib import free_port
    failing = WebhookReceiver(status=500)
    b = str(tmp_path / "bundles")
    try:
        inv = inventory(str(tmp_path / "inv.yml"), sshd_server, [{"name": "web-1"}, {"name": "db-1"}])
        assert main(["run", "-i", inv, "-b", b, "--key", signing_key, "--only", "host", "-q",
                     "--notify-webhook", failing.url()]) == 0
        inv = inventory(str(tmp_path / "inv.yml"), sshd_server, [{"name": "web-1"}, {"name": "db-1", "port": free_port()}])
        capsys.readouterr()
        assert main(["run", "-i", inv, "-b", b, "--key", signing_key, "--only", "host", "--log-json",
                     "--notify-webhook", failing.url()]) == 0
    finally:
        failing.close()
    assert len(failing.posts) == 2  # tried, and retried once on HTTP 500
    worse = failing.posts[0]["body"]["evidence_agent"]["worse"]
    assert any(c["kind"] == "host_collection" and c["host"] == "db-1" and c["after"] == "not collected" for c in worse)
    err = capsys.readouterr().err
    failed = [e for e in json_lines(err) if e["event"] == "notify_failed"]
    assert len(failed) == 1 and "HTTP 500" in failed[0]["msg"] and failed[0]["level"] == "error"
    assert "s3cr3t-webhook-token" not in err
    idx = [json.loads(x) for x in open(os.path.join(b, "index.jsonl"), encoding="utf-8")]
    assert idx[-1]["notified"] == [{"channel": "webhook", "ok": False, "target": f"http://127.0.0.1:{failing.port}/…"}]


def test_incomplete_mail_settings_are_refused(tmp_path, signing_key, capsys):
    inv = tmp_path / "i.yml"
    inv.write_text("version: 1\nscope: {allow: [127.0.0.0/8]}\nhosts: []\n")
    assert main(["run", "-i", str(inv), "-b", str(tmp_path / "b"), "--key", signing_key,
                 "--smtp-host", "127.0.0.1"]) == 1
    assert "--mail-to" in capsys.readouterr().err
    assert main(["run", "-i", str(inv), "-b", str(tmp_path / "b"), "--key", signing_key,
                 "--notify-webhook", "ftp://127.0.0.1/x"]) == 1
    assert not os.path.exists(tmp_path / "b")


# -- classification on hand-made bundles ------------------------------------------------------------

def _bundle(root, name, hosts, controls, network=None, listening=None):
    d = root / name
    (d / "facts").mkdir(parents=True)
    (d / "results.json").write_text(json.dumps({
        "run": {"finished": "2026-01-01T00:00:00Z"},
        "hosts": [{"name": h, "address": a, "collected": ok, "error": None if ok else "refused"}
                  for h, (a, ok) in hosts.items()],
        "controls": [{"id": cid, "status": st, "hosts": [
            {"name": h, "status": hs, "findings": [{"rule": r, "status": fs} for r, fs in f.items()]}
            for h, (hs, f) in hc.items()]} for cid, (st, hc) in controls.items()]}))
    if network is not None:
        (d / "facts" / "_network.json").write_text(json.dumps({"facts": {"network_scan": {"status": "collected",
            "data": {"scans": [{"vantage": "internal", "cidr": "10.0.0.0/24", "error": None,
                                "hosts": [{"address": a, "ports": [{"port": p, "proto": "tcp", "state": "open"}
                                                                   for p in ps]} for a, ps in network[0].items()],
                                "undeclared_hosts": network[1]}]}}}}))
    for h, socks in (listening or {}).items():
        (d / "facts" / f"{h}.json").write_text(json.dumps({"host": {"name": h}, "facts": {"listening": {
            "status": "collected", "data": {"sockets": [{"proto": "tcp", "address": a, "port": p} for a, p in socks]}}}}))
    return str(d)


def test_classification_of_changes(tmp_path):
    hosts = {"a": ("10.0.0.1", True), "b": ("10.0.0.2", True)}
    old = _bundle(tmp_path, "old", hosts, {
        "13.1.1": ("partial", {"a": ("implemented", {"r1": "implemented"}), "b": ("not_implemented", {"r1": "not_implemented"})}),
        "14.3.1": ("implemented", {"a": ("implemented", {"r2": "implemented"})}),
        "14.6.1": ("not_implemented", {"a": ("not_implemented", {"r3": "not_implemented"})}),
    }, network=({"10.0.0.1": [22]}, []), listening={"a": [("127.0.0.1", 5432)]})
    new = _bundle(tmp_path, "new", {**hosts, "b": ("10.0.0.2", False)}, {
        "13.1.1": ("not_implemented", {"a": ("not_implemented", {"r1": "not_implemented"}), "b": ("unknown", {"r1": "unknown"})}),
        "14.3.1": ("implemented", {"a": ("implemented", {"r2": "implemented"})}),
        "14.6.1": ("unknown", {"a": ("unknown", {"r3": "unknown"})}),
    }, network=({"10.0.0.1": [22, 8080]}, ["10.0.0.9"]), listening={"a": [("127.0.0.1", 5432), ("127.0.0.1", 6379)]})
    d = compare(old, new)
    by = {(c.kind, c.subject, c.host): c.direction for c in d.changes}
    assert by[("control", "13.1.1", None)] == WORSE  # partial → not implemented
    assert by[("host_control", "13.1.1", "a")] == WORSE and by[("finding", "13.1.1", "a")] == WORSE
    assert by[("host_collection", "b", "b")] == WORSE
    assert by[("host_control", "14.6.1", "a")] == CHANGED  # failing → unknown: not better, not an alarm
    assert by[("port", "10.0.0.1 tcp/8080", None)] == WORSE  # newly open to nmap
    assert by[("port", "127.0.0.1 tcp/6379", "a")] == CHANGED  # loopback listener only
    assert by[("network_host", "10.0.0.9", None)] == WORSE
    assert not any(c.subject == "14.3.1" for c in d.changes)
    assert d.previous == "old" and d.short().startswith(f"{len(d.worse)} worse")
    back = compare(new, old)
    assert {(c.kind, c.subject, c.host) for c in back.better} >= {
        ("control", "13.1.1", None), ("host_collection", "b", "b"), ("port", "10.0.0.1 tcp/8080", None),
        ("network_host", "10.0.0.9", None)}
    assert compare(None, new).short() == "first run" and compare(old, old).short() == "no change"
    assert BETTER  # exported


def test_webhook_urls_are_redacted_in_logs():
    assert redact_url("https://hooks.slack.com/services/T0/B0/XyZ") == "https://hooks.slack.com/…"
    assert redact_url("https://user:pw@chat.example:8443/hooks/abc?token=t") == "https://chat.example:8443/…"
    assert redact_url("http://[::1]:9000/") == "http://[::1]:9000"
    import io
    s = io.StringIO()
    log = Logger(json_lines=True, stream=s)
    log.add_secret("https://hooks.example/services/SECRET")
    log.info("x", "posting to https://hooks.example/services/SECRET failed", url="https://hooks.example/services/SECRET",
             note="password=hunter2")
    out = s.getvalue()
    assert "SECRET" not in out and "hunter2" not in out and json.loads(out)["url"] == "***"

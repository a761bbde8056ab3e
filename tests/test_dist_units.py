"""Distributed mode's pure parts, without a broker: the signed result envelope, task payloads, inventory keys."""
from __future__ import annotations

import json

import pytest

from agent.dist import envelope, payload
from agent.dist.broker import BrokerConfig, BrokerError, mask
from agent.dist.controller import check_inventory, vantage_jobs
from agent.inventory import load_inventory
from agent.run import ScanOptions
from agent.yamlsrc import ConfigError
from collectors import signing


@pytest.fixture(scope="module")
def wkeys(tmp_path_factory):
    d = tmp_path_factory.mktemp("k")
    return signing.keygen(str(d / "a")), signing.keygen(str(d / "b"))


def _body(task_id="t1", zone="dmz", content="uid=0(root)\n"):
    return {"task_id": task_id, "zone": zone, "kind": "host", "name": "web-1", "worker": {"hostname": "w"},
            "record": {"collected": True, "facts": {"os": {"status": "collected"}}, "evidence": {"os": ["@0"]}},
            "evidence": [{"host": "web-1", "header": {}, "ev": {"label": "os", "command": "c", "content": content,
                                                                 "collected_at": "x", "items": ["14.6.1"]}}]}


def test_envelope_accepts_listed_key_only(wkeys):
    a, b = wkeys
    res = envelope.seal(_body(), a)
    body, fp = envelope.open_result(res, [signing.pub_line(a.public)], "t1", "dmz", 1 << 20)
    assert fp == signing.fingerprint(a.public) and body["record"]["collected"]
    with pytest.raises(envelope.Refused, match="does not accept for zone 'dmz'"):
        envelope.open_result(res, [signing.pub_line(b.public)], "t1", "dmz", 1 << 20)


def test_envelope_detects_changed_evidence_and_facts(wkeys):
    a, _ = wkeys
    ok = [signing.pub_line(a.public)]
    res = envelope.seal(_body(), a)
    forged = json.loads(json.dumps(res))
    forged["body"]["evidence"][0]["ev"]["content"] = "uid=1000(alice)\n"  # content no longer matches its hash
    with pytest.raises(envelope.Refused, match="does not verify"):
        envelope.open_result(forged, ok, "t1", "dmz", 1 << 20)
    forged = json.loads(json.dumps(res))
    forged["body"]["record"]["facts"]["os"]["status"] = "not_collected"
    with pytest.raises(envelope.Refused, match="does not verify"):
        envelope.open_result(forged, ok, "t1", "dmz", 1 << 20)


def test_envelope_binds_task_zone_and_size(wkeys):
    a, _ = wkeys
    ok = [signing.pub_line(a.public)]
    res = envelope.seal(_body(), a)
    with pytest.raises(envelope.Refused, match="another task or zone"):
        envelope.open_result(res, ok, "t2", "dmz", 1 << 20)  # a replayed result of another task
    with pytest.raises(envelope.Refused, match="over the 100-byte cap"):
        envelope.open_result(res, ok, "t1", "dmz", 100)
    with pytest.raises(envelope.Refused, match="not a signed"):
        envelope.open_result({"body": _body()}, ok, "t1", "dmz", 1 << 20)
    # a bundle signature is never a worker signature (namespaces differ)
    msg = envelope._canonical({**_body(), "schema": envelope.SCHEMA})
    wrong_ns = {"body": {**_body(), "schema": envelope.SCHEMA}, "signature": signing.sign(msg, a)}
    with pytest.raises(envelope.Refused, match="does not verify"):
        envelope.open_result(wrong_ns, ok, "t1", "dmz", 1 << 20)


INV = """version: 1
scope: {allow: [127.0.0.0/8]}
defaults:
  ssh: {key_file: /nonexistent/id, known_hosts: /nonexistent/kh}
hosts:
  - {name: a, address: 127.0.0.1, zone: internal, declare: {owner: "pw hunter2 in a note"}}
  - {name: b, address: 127.0.0.2}
networks:
  - {name: n1, cidr: 127.0.0.0/30, zone: internal}
  - {name: n2, cidr: 127.0.1.0/30, zone: dmz, vantage: external}
tls:
  - {host: 127.0.0.5, port: 8443, zone: dmz}
web:
  - http://127.0.0.6/
  - {url: "http://127.0.0.7:8080/", vantage: external}
%s
"""


def _inv(tmp_path, extra="", name="inv.yml"):
    p = tmp_path / name
    p.write_text(INV % extra)
    return load_inventory(str(p))


def test_payload_round_trip_carries_no_declarations(tmp_path):
    inv = _inv(tmp_path)
    t = payload.encode(payload.host_task("r", inv, inv.hosts[0], "internal"))
    assert "hunter2" not in json.dumps(t)  # declarations stay with the controller
    inv2, h = payload.inventory_for(payload.check(json.loads(json.dumps(t))))
    assert (h.name, h.address, h.ssh.key_file, inv2.timeouts.host) == ("a", "127.0.0.1", "/nonexistent/id", 180.0)
    t["host"]["address"] = "192.0.2.1"  # documentation address: never contacted, refused by the scope check
    with pytest.raises(Exception, match="outside|scope"):
        payload.inventory_for(t)
    with pytest.raises(payload.PayloadError, match="schema"):
        payload.check({"schema": "x"})
    big = {**t, "pad": "x" * (payload.MAX_TASK_BYTES + 1)}
    with pytest.raises(payload.PayloadError, match="cap"):
        payload.check(big)


def test_vantage_split(tmp_path):
    inv = _inv(tmp_path)
    jobs = vantage_jobs(inv, ScanOptions(out="", key=None, profile=None))  # type: ignore[arg-type]
    assert {z: [n["name"] for n in j.networks] for z, j in jobs.items() if j.networks} == {
        "internal": ["n1"], "external": ["n2"]}
    assert [e["host"] for e in jobs["dmz"].endpoints] == ["127.0.0.5"]
    assert jobs["default"].urls == ["http://127.0.0.6/"] and jobs["external"].urls == ["http://127.0.0.7:8080/"]


def test_zone_without_worker_keys_is_refused_by_name(tmp_path, wkeys):
    a, _ = wkeys
    inv = _inv(tmp_path, "workers:\n  internal: [\"%s\"]\n" % signing.pub_line(a.public))
    with pytest.raises(ConfigError, match=r"workers\.default.*no worker key is accepted for zone 'default' \(host b"):
        check_inventory(inv, ("host", "network", "tls", "web"))
    with pytest.raises(ConfigError, match="zone 'external'"):
        check_inventory(inv, ("network",))


def test_bad_worker_key_names_file_line_and_key(tmp_path):
    with pytest.raises(ConfigError) as e:
        _inv(tmp_path, "workers:\n  dmz:\n    - ssh-ed25519 AAAAnot-base64\n")
    msg = str(e.value)
    assert "inv.yml:18: workers.dmz[0]: not an OpenSSH ssh-ed25519 public key line" in msg, msg
    p = tmp_path / "t.yml"
    p.write_text(INV.replace("vantage: external}", "vantage: \"ext ernal\"}", 1) % "")
    with pytest.raises(ConfigError, match=r"t\.yml:10: networks\[1\]\.vantage: invalid zone name 'ext ernal'"):
        load_inventory(str(p))


def test_broker_url_comes_from_the_environment(tmp_path):
    inv = _inv(tmp_path, "broker: {url_env: EA_TEST_BROKER}")
    assert BrokerConfig.resolve(None, None) is None  # no broker: the single-process run
    with pytest.raises(BrokerError, match=r"\$EA_TEST_BROKER, which is not set"):
        BrokerConfig.resolve(None, inv.broker, env={})
    cfg = BrokerConfig.resolve(None, inv.broker, env={"EA_TEST_BROKER": "redis://:pw@127.0.0.1:1/0"})
    assert cfg is not None and cfg.url.endswith(":1/0")
    assert mask(cfg.url) == "redis://***@127.0.0.1:1/0"
    with pytest.raises(ConfigError, match="url_env"):
        _inv(tmp_path, "broker: {url_env: \"redis://:pw@h/0\"}", "y.yml")


def test_keygen_worker_prints_the_inventory_line(tmp_path, capsys):
    from agent.cli import main

    assert main(["keygen", "--out", str(tmp_path / "wk"), "--worker", "dmz"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("inventory:"))
    inv = _inv(tmp_path, line.split("inventory:", 1)[1].strip())
    assert len(inv.workers["dmz"]) == 1 and inv.workers["dmz"][0].startswith("ssh-ed25519 ")

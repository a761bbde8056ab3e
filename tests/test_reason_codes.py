"""Reason codes are set where the failure is known, not guessed back from the words: a damaged section, a tool
that is absent, a file that needs root, a refused connection or a login that cannot happen each carry their
code (probes.base.Problem, TransportError.code) into the fact's envelope, results.json and the report; the
text classification (classify_reason) is only the fallback for reasons made without one."""
from __future__ import annotations

import dataclasses
import json
import os
import socket
from typing import Any

import pytest

from agent.cli import main
from host_fixture_loader import load
from output.report_model import build_model
from probes.base import (
    FactStatus, Problem, RawOutput, ReasonCode, about, classify_reason, fact_with_problems, not_collected,
    section_problem,
)
from probes.host import by_name
from probes.host.common import usable


def raw(**kw: Any) -> RawOutput:
    base = dict(name="x", script="", output="", exit_code=0, started="2026-11-23T00:00:00Z", duration=3.0)
    base.update(kw)
    return RawOutput(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("out,code", [
    (None, ReasonCode.TRUNCATED),  # the script ended before this section
    (raw(timed_out=True, exit_code=None), ReasonCode.TIMED_OUT),
    (raw(truncated=True, truncated_reason="over 512 KiB"), ReasonCode.TRUNCATED),
    (raw(exit_code=None), ReasonCode.TRUNCATED),
])
def test_a_damaged_section_says_its_code(out: Any, code: ReasonCode) -> None:
    p = section_problem(out)
    assert isinstance(p, Problem) and p.code is code
    assert section_problem(raw()) is None


def test_the_code_follows_the_problem_into_the_fact() -> None:
    _, prob = usable({"listen": raw(name="listen", timed_out=True, exit_code=None)}, "listen")
    assert prob is not None and prob.code is ReasonCode.TIMED_OUT and str(prob).startswith("listen: command timed")
    f = not_collected("listening", about(prob, "listening sockets not read"))
    assert f.reason == "listening sockets not read: listen: command timed out after 3s"
    assert f.reason_code is ReasonCode.TIMED_OUT and f.to_json()["reason_code"] == "timed_out"
    # the first problem made with a code decides; words alone are only the fallback
    partial = fact_with_problems("x", {}, ["target clock not read: ages not computed",
                                           Problem("sudoers not readable (needs privilege)", ReasonCode.PERMISSION)])
    assert partial.status is FactStatus.PARTIAL and partial.reason_code is ReasonCode.PERMISSION
    assert fact_with_problems("x", {}, []).reason_code is None
    assert fact_with_problems("x", {}, ["no lastlog on the target"]).code() is classify_reason("no lastlog on the target")


def test_words_that_mislead_the_fallback_are_coded_at_the_source() -> None:
    """sshd_config's key names ("passwordauthentication") made the text fallback say auth_failed for a run
    without root; the probe now says what it knows: sshd -T needs privilege."""
    f = by_name("remote_admin").parse(load("debian12_nonroot"))
    assert f.status is FactStatus.PARTIAL and "passwordauthentication" in (f.reason or "")
    assert classify_reason(f.reason) is ReasonCode.AUTH_FAILED  # what the words alone would have said
    assert f.reason_code is ReasonCode.PERMISSION


@pytest.mark.parametrize("distro,probe,code", [
    ("busybox", "patch", ReasonCode.TOOL_MISSING),  # no package manager at all
    ("missing", "listening", ReasonCode.TOOL_MISSING),  # no ss/netstat: /proc/net only
    ("debian12_nonroot", "listening", ReasonCode.PERMISSION),  # other users' processes need root
    ("debian12_nonroot", "accounts", ReasonCode.PERMISSION),
    ("truncated", "listening", ReasonCode.TRUNCATED),
    ("truncated", "accounts", ReasonCode.TRUNCATED),  # shadow cut off (lastlog's timeout comes second)
])
def test_fixture_facts_carry_the_code_of_what_went_wrong(distro: str, probe: str, code: ReasonCode) -> None:
    f = by_name(probe).parse(load(distro))
    assert f.status is not FactStatus.COLLECTED and f.reason_code is code, (f.reason_code, f.reason)


@pytest.mark.parametrize("how,code", [("timed_out", ReasonCode.TIMED_OUT), ("truncated", ReasonCode.TRUNCATED),
                                      ("missing", ReasonCode.TRUNCATED)])
def test_every_probe_codes_a_damaged_section_explicitly(how: str, code: ReasonCode) -> None:
    """On a host where every probe is collected, damaging the first command each probe reads makes the fact carry
    that damage's code, set by the probe (reason_code), not derived from its words."""
    from probes.host import PROBES

    base = load("ubuntu2204")
    for p in PROBES:
        assert p.parse(base).status is FactStatus.COLLECTED, p.name
        outs = dict(base)
        first = p.commands[0].name
        if how == "missing":
            del outs[first]
        elif how == "truncated":
            outs[first] = dataclasses.replace(outs[first], truncated=True, output=outs[first].output[:40])
        else:
            outs[first] = dataclasses.replace(outs[first], timed_out=True, exit_code=None, output="")
        f = p.parse(outs)
        assert f.status is not FactStatus.COLLECTED, (p.name, first)
        assert f.reason_code is code, (p.name, first, f.reason_code, f.reason)


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: the connection is refused
    return port


def scan(tmp_path: Any, signing_key: str, ssh: str) -> str:
    inv = tmp_path / "inventory.yml"
    inv.write_text("version: 1\nscope: {allow: [127.0.0.0/8]}\n"
                   "defaults:\n  timeouts: {connect: 2, host: 10}\n"
                   f"hosts:\n  - {{name: web-1, transport: ssh, address: 127.0.0.1, ssh: {ssh}}}\n", encoding="utf-8")
    out = str(tmp_path / "bundle")
    assert main(["scan", "--inventory", str(inv), "--out", out, "--key", signing_key, "--only", "host", "-q"]) == 2
    return out


@pytest.mark.parametrize("case,code,words", [
    ("refused", "unreachable", ("(사유 구분: 접속 불가)", "(reason code: unreachable)")),
    ("no_key", "auth_failed", ("(사유 구분: 로그인 실패)", "(reason code: login failed)")),
])
def test_a_transport_failure_carries_its_code_to_results_and_report(tmp_path: Any, signing_key: str, case: str,
                                                                     code: str, words: tuple[str, str]) -> None:
    """A loopback port nobody listens on (refused: unreachable) and a key file that does not exist (no login
    possible: auth_failed): the code is set by the transport, kept in facts/<host>.json and results.json for the
    host and each of its unknown findings, and said in the report in both languages."""
    key = signing_key if case == "refused" else str(tmp_path / "no-such-key")
    out = scan(tmp_path, signing_key, f"{{port: {closed_port()}, key_file: {key}, host_key_policy: 'off'}}")
    with open(os.path.join(out, "facts", "web-1.json"), encoding="utf-8") as f:
        rec = json.load(f)
    assert rec["collected"] is False and rec["error_code"] == code, rec
    with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
        res = json.load(f)
    assert res["hosts"][0]["error_code"] == code
    findings = [f for c in res["controls"] for h in c.get("hosts", []) if h["name"] == "web-1" for f in h["findings"]]
    assert findings and all(f["status"] == "unknown" and f["reason_codes"] == [code] for f in findings)
    for lang, said in zip(("ko", "en"), words):
        m = build_model(out, lang=lang)
        assert [(h["name"], h["code"]) for h in m.cover.not_collected] == [("web-1", code)]
        assert m.cover.not_collected[0]["error"].endswith(said)
        lines = [x for i in m.items for x in i.summary if x.host == "web-1" and x.kind == "finding"]
        assert lines and all(x.text.endswith(said) for x in lines), lines[:2]

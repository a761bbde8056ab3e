"""The shell commands, run for real on this machine, agree with psutil (the local transport's source).

A listener of our own on 127.0.0.1 (TCP) and a bound UDP socket make sure there is
something to compare. Other processes on a shared machine may open and close
sockets meanwhile, so the shell's view is checked against psutil snapshots taken
just before and just after it.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time

import pytest

from probes.base import FactStatus
from probes.batch import dedupe
from probes.host import PROBES, interfaces, listening, os_release
from probes.transport.local import LocalTransport

psutil = pytest.importorskip("psutil")


def _run(probes):
    cmds = dedupe(c for p in probes for c in p.commands)
    return LocalTransport().run(cmds, time.monotonic() + 60)


def _key(s):
    addr = s["address"]
    if addr in ("*", "::", "0.0.0.0"):
        addr = "any"
    else:
        ip = ipaddress.ip_address(addr)
        addr = str(getattr(ip, "ipv4_mapped", None) or ip)
    return (s["proto"], addr, s["port"])


@pytest.fixture()
def own_sockets():
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(5)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    try:
        yield tcp.getsockname()[1], udp.getsockname()[1]
    finally:
        tcp.close()
        udp.close()


def test_listening_shell_matches_psutil(own_sockets):
    tcp_port, udp_port = own_sockets
    before = {_key(s) for s in listening.psutil_sockets()}
    res = _run([listening.PROBE])
    after = {_key(s) for s in listening.psutil_sockets()}
    fact = listening.PROBE.parse(res.outputs)
    assert fact.status in (FactStatus.COLLECTED, FactStatus.PARTIAL), fact.reason
    shell = {_key(s) for s in fact.data["sockets"]}
    assert ("tcp", "127.0.0.1", tcp_port) in shell
    assert ("udp", "127.0.0.1", udp_port) in shell
    assert before & after <= shell <= before | after, shell ^ (before & after)
    mine = [s for s in fact.data["sockets"] if s["port"] == tcp_port and s["proto"] == "tcp"]
    assert mine and mine[0]["loopback"] is True
    if os.geteuid() == 0 or fact.data["tool"] == "ss":  # ss shows our own sockets' owner even unprivileged
        assert mine[0]["pid"] == os.getpid()
        assert (
            mine[0]["process"] == psutil.Process().name()[:15]
            or mine[0]["process"] == psutil.Process().name()
        )


def test_listening_local_hook_uses_psutil(own_sockets):
    tcp_port, _ = own_sockets
    res = _run([listening.PROBE])
    shell_fact = listening.PROBE.parse(res.outputs)
    fact = listening.local(shell_fact)
    assert fact.source == "psutil" and fact.data["tool"] == "psutil"
    mine = [s for s in fact.data["sockets"] if s["port"] == tcp_port and s["proto"] == "tcp"]
    assert mine and mine[0]["pid"] == os.getpid() and mine[0]["loopback"]
    assert tcp_port in fact.data["tcp_ports"] and tcp_port not in fact.data["exposed_tcp_ports"]
    assert fact.data["inetd_services"] == shell_fact.data["inetd_services"]


def test_interfaces_shell_matches_psutil():
    res = _run([interfaces.PROBE])
    fact = interfaces.PROBE.parse(res.outputs)
    assert fact.status in (FactStatus.COLLECTED, FactStatus.PARTIAL), fact.reason
    ps = interfaces.psutil_interfaces()
    # psutil lists interfaces that have an address or a MAC; the shell lists all of them
    shell_names = {i["name"] for i in fact.data["interfaces"]}
    assert {i["name"] for i in ps} <= shell_names
    for i in ps:
        sh = next(x for x in fact.data["interfaces"] if x["name"] == i["name"])
        assert {(a["address"], a["prefixlen"]) for a in i["addresses"]} == {
            (a["address"], a["prefixlen"]) for a in sh["addresses"]
        }, i["name"]
        assert i["mac"] == sh["mac"], i["name"]
        assert i["up"] == sh["up"], i["name"]
    local = interfaces.local(fact)
    assert local.source == "psutil" and local.data["psutil_fields"] == ["interfaces"]
    assert local.data["all_private"] == fact.data["all_private"]
    assert local.data["default_routes"] == fact.data["default_routes"]


def test_boot_time_shell_matches_psutil():
    res = _run([os_release.PROBE])
    fact = os_release.PROBE.parse(res.outputs)
    assert fact.data["boot_time"] is not None
    shell_boot = fact.data["boot_time"]
    local = os_release.local(fact)
    assert local.source == "psutil"
    from datetime import datetime

    def ts(s):
        return datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").timestamp()

    assert abs(ts(shell_boot) - ts(local.data["boot_time"])) <= 2


def test_whole_registry_runs_here_quickly():
    t0 = time.monotonic()
    res = _run(PROBES)
    elapsed = time.monotonic() - t0
    assert res.done
    assert elapsed < 60, elapsed  # ~4 s on an idle 2-core VM; apt-get -s dominates and slows under load
    for p in PROBES:
        fact = p.parse(res.outputs)
        assert fact.status != FactStatus.NOT_COLLECTED or p.name in ("patch",), (p.name, fact.reason)
        for name in (c.name for c in p.commands):
            out = res.outputs[name]
            assert out.complete, (p.name, name, out.error)

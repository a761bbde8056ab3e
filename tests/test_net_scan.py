"""network_scan against planted loopback services: nmap must find exactly what is there."""
from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from agent.scope import Scope
from probes.base import FactStatus
from probes.net.nmap_scan import NmapOptions, is_live, parse_xml, scan_networks
from probes.net.tls import tls_ports_from_scan

pytest_plugins = ["netservers"]
pytestmark = pytest.mark.slow

#: Small list: the planted ports plus neighbours that must come back closed (never 2024 & co).
PORTS = "21,22,23,25,80,443,3306,8080,8443"


@pytest.fixture(scope="module")
def lab_scan(netlab):
    known = {netlab.svc: "svc01", netlab.weak: "weak01", netlab.strong: "strong01", netlab.expired: "old01",
             netlab.addr(9): "ghost01"}
    fact = scan_networks([{"name": "lab", "cidr": f"{netlab.net}.0/28", "zone": "dmz"}],
                         Scope.parse([netlab.scope_allow]), known, NmapOptions(ports=PORTS), "test-vantage",
                         time.monotonic() + 90)
    return fact


def test_scan_finds_exactly_the_planted_ports(netlab, lab_scan):
    assert lab_scan.status is FactStatus.COLLECTED, lab_scan.reason
    (scan,) = lab_scan.data["scans"]
    assert scan["error"] is None
    assert scan["scan_type"] == "syn" and scan["privileged"] is True
    assert (scan["vantage"], scan["zone"], scan["cidr"]) == ("test-vantage", "dmz", f"{netlab.net}.0/28")
    assert scan["nmap_version"] and scan["nmap_args"][-1] == f"{netlab.net}.0/28"
    assert {"-n", "--max-retries", "--host-timeout"} <= set(scan["nmap_args"])
    found = {h["address"]: {p["port"] for p in h["ports"] if p["state"] == "open"}
             for h in scan["hosts"] if h["live"]}
    assert found == netlab.planted_tcp


def test_scan_identifies_services(netlab, lab_scan):
    hosts = {h["address"]: {p["port"]: p for p in h["ports"]} for h in lab_scan.data["scans"][0]["hosts"]}
    svc = hosts[netlab.svc]
    assert (svc[21]["service"], svc[21]["product"], svc[21]["version"]) == ("ftp", "ProFTPD", "1.3.5")
    assert svc[23]["service"] == "telnet"
    assert (svc[3306]["service"], svc[3306]["version"]) == ("mysql", "5.7.33-log")
    for addr in (netlab.weak, netlab.strong, netlab.expired, netlab.good):
        assert hosts[addr][443]["tunnel"] == "ssl", addr
    assert hosts[netlab.web][80]["service"] == "http" and hosts[netlab.web][80]["tunnel"] is None


def test_loopback_hosts_without_open_ports_are_not_live(netlab, lab_scan):
    scan = lab_scan.data["scans"][0]
    assert scan["hosts_up"] == 16  # every 127.x answers...
    # ...but only planted hosts and inventory hosts are listed, and only planted ones are live.
    assert [h["address"] for h in scan["hosts"]] == sorted(
        list(netlab.planted_tcp) + [netlab.addr(9)], key=lambda a: tuple(int(x) for x in a.split(".")))
    assert scan["undeclared_hosts"] == [netlab.web, netlab.good]
    assert scan["inventory_missing"] == [netlab.addr(9)]
    ghost = next(h for h in scan["hosts"] if h["address"] == netlab.addr(9))
    assert ghost == {"address": netlab.addr(9), "in_inventory": True, "inventory_host": "ghost01",
                     "state": "up", "reason": "localhost-response", "live": False, "timed_out": False,
                     "ports": []}


def test_scan_evidence_is_the_nmap_xml(lab_scan):
    (ev,) = lab_scan.evidence
    assert ev.ext == "xml" and ev.items == ("14.3.1", "3.1.1", "15.1.1", "14.2.1")
    assert "<nmaprun" in ev.content and "</nmaprun>" in ev.content
    assert ev.command.startswith("nmap -n ")


def test_tls_endpoints_from_scan(netlab, lab_scan):
    eps = tls_ports_from_scan(lab_scan)
    assert [(e["host"], e["port"], e["starttls"]) for e in eps] == [
        (netlab.svc, 21, "ftp"), (netlab.weak, 443, None), (netlab.strong, 443, None),
        (netlab.expired, 443, None), (netlab.good, 443, None)]


def test_udp_short_list(netlab):
    lab_udp = netlab.addr(10)
    from netservers import UdpResponder

    responder = UdpResponder(lab_udp, 161, b"\x30\x00")
    try:
        fact = scan_networks([{"name": "udp", "cidr": f"{lab_udp}/32", "zone": "internal"}],
                             Scope.parse([netlab.scope_allow]), {},
                             NmapOptions(ports="22", udp_ports="137,161,500", service_detection=False),
                             "test", time.monotonic() + 60)
    finally:
        responder.stop()
    assert fact.status is FactStatus.COLLECTED, fact.reason
    (scan,) = fact.data["scans"]
    assert scan["udp_ports"] == "137,161,500" and "-sU" in scan["nmap_args"]
    (host,) = scan["hosts"]
    assert [(p["proto"], p["port"], p["state"]) for p in host["ports"]] == [("udp", 161, "open")]
    assert responder.received >= 1


def test_deadline_stops_nmap_and_says_so(netlab):
    # A listener that never accepts: the kernel completes handshakes, -sV then waits for a banner.
    addr = netlab.addr(11)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 8080))
    s.listen(16)
    try:
        t0 = time.monotonic()
        fact = scan_networks([{"name": "slow", "cidr": f"{addr}/32", "zone": "dmz"}],
                             Scope.parse([netlab.scope_allow]), {}, NmapOptions(ports="8080"), "test",
                             time.monotonic() + 2.0)
        took = time.monotonic() - t0
    finally:
        s.close()
    assert took < 8
    assert fact.status is not FactStatus.COLLECTED
    (scan,) = fact.data["scans"]
    assert scan["error"] and "deadline" in scan["error"]
    assert "deadline" in fact.reason


def test_missing_nmap_is_not_collected(netlab):
    fact = scan_networks([{"name": "n", "cidr": f"{netlab.addr(12)}/32", "zone": "dmz"}],
                         Scope.parse([netlab.scope_allow]), {},
                         NmapOptions(nmap_path="/nonexistent/nmap"), "test", time.monotonic() + 10)
    assert fact.status is FactStatus.NOT_COLLECTED
    assert "nmap" in fact.reason and fact.data["scans"][0]["error"]


def test_invalid_port_spec_is_refused():
    with pytest.raises(ValueError):
        scan_networks([{"name": "n", "cidr": "127.0.9.12/32", "zone": "dmz"}], Scope.parse(["127.0.9.0/24"]),
                      {},
                      NmapOptions(ports="22 --script=all"), "test", time.monotonic() + 10)


# -- parser, without a network --------------------------------------------------------------

XML = """<?xml version="1.0" encoding="UTF-8"?>
<nmaprun scanner="nmap" args="nmap ..." start="1" version="7.93" xmloutputversion="1.05">
<host><status state="up" reason="echo-reply" reason_ttl="64"/><address addr="10.0.0.5" addrtype="ipv4"/>
<ports><extraports state="closed" count="999"/></ports></host>
<host><status state="up" reason="user-set" reason_ttl="0"/><address addr="10.0.0.6" addrtype="ipv4"/>
<ports><extraports state="filtered" count="1000"/></ports></host>
<host><status state="up" reason="syn-ack" reason_ttl="64"/><address addr="10.0.0.7" addrtype="ipv4"/>
<address addr="00:11:22:33:44:55" addrtype="mac"/>
<ports><port protocol="tcp" portid="22"><state state="open" reason="syn-ack"/>
<service name="ssh" product="OpenSSH" version="9.2p1" method="probed" conf="10"/></port>
<port protocol="tcp" portid="23"><state state="closed" reason="reset"/></port>
<port protocol="udp" portid="161"><state state="open|filtered" reason="no-response"/>
<service name="snmp" method="table" conf="3"/></port></ports></host>
<host><status state="up" reason="echo-reply"/><address addr="10.0.1.9" addrtype="ipv4"/></host>
"""


def test_parse_live_definition_off_loopback(tmp_path: Path):
    """Off loopback a discovery answer is enough, -Pn's user-set is not; a cut file keeps what was read."""
    p = tmp_path / "scan.xml"
    p.write_text(XML)  # no </nmaprun>: as left by a killed nmap
    rec, problem = parse_xml(str(p), "10.0.0.0/24", {"10.0.0.6": "db01", "10.0.0.8": "app01"})
    assert problem and "incomplete" in problem
    by = {h["address"]: h for h in rec["hosts"]}
    assert set(by) == {"10.0.0.5", "10.0.0.6", "10.0.0.7", "10.0.0.8"}  # 10.0.1.9 is outside the network
    assert by["10.0.0.5"]["live"] and not by["10.0.0.5"]["ports"]
    assert not by["10.0.0.6"]["live"] and by["10.0.0.6"]["inventory_host"] == "db01"
    assert by["10.0.0.7"]["ports"] == [
        {"port": 22, "proto": "tcp", "state": "open", "service": "ssh", "product": "OpenSSH",
         "version": "9.2p1", "extrainfo": None, "tunnel": None, "method": "probed"},
        {"port": 161, "proto": "udp", "state": "open|filtered", "service": "snmp", "product": None,
         "version": None, "extrainfo": None, "tunnel": None, "method": "table"}]
    assert by["10.0.0.8"]["state"] == "down" and not by["10.0.0.8"]["live"]
    assert rec["undeclared_hosts"] == ["10.0.0.5", "10.0.0.7"]
    assert rec["inventory_missing"] == ["10.0.0.6", "10.0.0.8"]
    assert rec["nmap_version"] == "7.93"


def test_parse_timed_out_host_and_unfinished_scan(tmp_path: Path):
    p = tmp_path / "scan.xml"
    p.write_text('<?xml version="1.0"?><nmaprun version="7.93">'
                 '<host timedout="true"><status state="up" reason="echo-reply"/>'
                 '<address addr="10.0.0.5" addrtype="ipv4"/></host>'
                 '<runstats><finished exit="success"/></runstats></nmaprun>')
    rec, problem = parse_xml(str(p), "10.0.0.0/24", {"10.0.0.9": "app"}, complete=False)
    assert problem is None and rec["finished_ok"]
    assert rec["hosts_timed_out"] == ["10.0.0.5"]
    by = {h["address"]: h for h in rec["hosts"]}
    assert by["10.0.0.5"]["timed_out"] is True
    assert by["10.0.0.9"]["state"] == "unknown"  # the scan did not finish: absence proves nothing
    assert rec["inventory_missing"] == []


def test_is_live_on_loopback_needs_an_open_port():
    assert not is_live({"address": "127.0.0.5", "state": "up", "reason": "echo-reply", "ports": []})
    assert is_live({"address": "127.0.0.5", "state": "up", "reason": "localhost-response",
                    "ports": [{"state": "open"}]})
    assert not is_live({"address": "::1", "state": "up", "reason": "echo-reply", "ports": []})

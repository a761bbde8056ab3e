"""Out-of-scope targets are refused before any packet: a counting listener sees nothing."""
from __future__ import annotations

import time

import pytest

from agent.scope import Scope, ScopeError
from probes.net.nmap_scan import NmapOptions, scan_networks
from probes.net.tls import TlsOptions, assess_tls
from probes.net.web import WebOptions, check_web

pytest_plugins = ["netservers"]
pytestmark = pytest.mark.slow


@pytest.fixture
def quiet_outside(netlab):
    """Yields the lab; afterwards insists that the out-of-scope listener was never contacted."""
    before = netlab.outside_listener.accepted
    yield netlab
    assert netlab.outside_listener.accepted == before == 0


def test_scan_refuses_network_outside_scope(quiet_outside):
    nl = quiet_outside
    scope = Scope.parse([nl.scope_allow])
    for cidr in (f"127.{nl.n}.8.0/30", f"127.{nl.n}.8.0/23", f"{nl.outside}/32"):
        with pytest.raises(ScopeError):
            scan_networks([{"name": "x", "cidr": cidr, "zone": "dmz"}], scope, {},
                          NmapOptions(ports=str(nl.outside_port)), "test", time.monotonic() + 30)
    # One bad network refuses the whole call, before the good one is scanned.
    with pytest.raises(ScopeError):
        scan_networks([{"name": "ok", "cidr": f"{nl.addr(14)}/32", "zone": "dmz"},
                       {"name": "bad", "cidr": nl.outside_net, "zone": "dmz"}], scope, {},
                      NmapOptions(ports=str(nl.outside_port)), "test", time.monotonic() + 30)


def test_scan_refuses_denied_range(quiet_outside):
    nl = quiet_outside
    scope = Scope.parse(["127.0.0.0/8"], deny=[nl.outside_net])
    with pytest.raises(ScopeError):
        scan_networks([{"name": "x", "cidr": f"127.{nl.n}.8.0/28", "zone": "dmz"}], scope, {},
                      NmapOptions(ports=str(nl.outside_port)), "test", time.monotonic() + 30)


def test_tls_refuses_endpoint_outside_scope(quiet_outside):
    nl = quiet_outside
    with pytest.raises(ScopeError):
        assess_tls([{"host": nl.strong, "port": 443}, {"host": nl.outside, "port": nl.outside_port}],
                   Scope.parse([nl.scope_allow]), TlsOptions(), time.monotonic() + 30)


def test_web_refuses_url_outside_scope(quiet_outside):
    nl = quiet_outside
    seen = len(nl.http_server.requests)
    with pytest.raises(ScopeError):
        check_web([f"http://{nl.web}/", f"http://{nl.outside}:{nl.outside_port}/"],
                  Scope.parse([nl.scope_allow]), WebOptions(), time.monotonic() + 30)
    assert len(nl.http_server.requests) == seen  # the in-scope URL was not requested either


def test_web_refuses_non_http_url(quiet_outside):
    with pytest.raises(ValueError):
        check_web([f"ftp://{quiet_outside.svc}/"], Scope.parse([quiet_outside.scope_allow]), WebOptions(),
                  time.monotonic() + 30)

"""Network probes: look at targets from the outside (nmap port scans, sslyze TLS, HTTP checks).

Each returns a run-level :class:`probes.base.Fact` whose evidence is the raw tool output.
Every target must pass :class:`common.scope.Scope` before a packet is sent.

* :mod:`probes.net.nmap_scan` — ``scan_networks`` → fact ``network_scan`` (3.1.1, 14.2.1, 14.3.1, 15.1.1)
* :mod:`probes.net.tls` — ``assess_tls``, ``tls_ports_from_scan`` → fact ``tls`` (15.4.1, 12.1.1)
* :mod:`probes.net.web` — ``check_web`` → fact ``web`` (14.5.1)
"""

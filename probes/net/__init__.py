"""Network probes: look at targets from the outside (nmap port scans, sslyze TLS, HTTP checks).

Each returns a run-level :class:`probes.base.Fact` whose evidence is the raw tool output.
Every target must pass :class:`agent.scope.Scope` before a packet is sent.
"""

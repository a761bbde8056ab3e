"""Probes: how facts are fetched (transports) and how raw output becomes typed facts (parsers).

A host probe is a module in ``probes.host`` that declares the shell commands it
needs (``COMMANDS``) and a pure ``parse(outputs)`` function from their raw output
to a typed fact. Transports (``probes.transport``) only move bytes; they never
interpret them. Network probes (``probes.net``) look at targets from the outside.
"""

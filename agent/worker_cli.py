"""``evidence-agent worker``: a collection worker for one or more zones (distributed mode, ``agent.dist``).

It consumes the queue of each zone it serves, runs the same probes as a single-process run, and signs every
result with its own key (``--key``, never the bundle's signing key). The broker URL holds the Redis password, so
it is read from ``--broker`` or, better, from ``$EVIDENCE_AGENT_BROKER`` (a systemd EnvironmentFile), and never
printed unmasked.
"""
from __future__ import annotations

import argparse
import os
from typing import Any

from collectors import signing

from .cli_common import EXIT_BROKER, EXIT_INVALID, EXIT_OK, EXIT_OUTPUT, default_key, err




def default_worker_key() -> str:
    return os.path.join(os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"), "evidence-agent",
                        "worker_key")


def register(sub: Any) -> None:
    w = sub.add_parser(
        "worker", help="serve one or more zones as a collection worker (distributed mode: Celery + Redis)",
        description="Consume the work queue of each --zone from the Redis broker, collect the hosts and network "
                    "families the controller (`scan --broker`) sends, and return each result signed with this "
                    "worker's own Ed25519 key. List that key's public line in the inventory under "
                    "workers: {ZONE: [...]} so the controller accepts its results. Exit codes: 0 stopped, "
                    "1 bad arguments, 4 key problem, 7 broker unreachable.")
    w.add_argument("--zone", action="append", required=True, metavar="NAME",
                   help="a zone this worker serves (repeatable); hosts without zone: are in zone 'default'")
    w.add_argument("--broker", help="redis:// or rediss:// URL (default: $EVIDENCE_AGENT_BROKER; prefer the "
                                    "variable: a URL on the command line is visible in the process list)")
    w.add_argument("--key", default=None, help=f"this worker's Ed25519 key (default {default_worker_key()}, created "
                                               "on first use; its public line is printed)")
    w.add_argument("--concurrency", "-c", type=int, default=8, help="tasks run at once (default: %(default)s)")
    w.add_argument("--pool", choices=("prefork", "threads", "solo"), default="prefork",
                   help="prefork (default): a killed task process gives its task back at once; threads: lighter")
    w.add_argument("--hostname", help="worker name shown in evidence (default: this machine's host name)")
    w.add_argument("--identity", metavar="FILE", help="SSH private key for targets (default: each host's "
                                                       "inventory key_file, read on this machine)")
    w.add_argument("--known-hosts", metavar="FILE", help="known_hosts for targets (default: the inventory's)")
    w.add_argument("--scope", nargs="+", action="extend", metavar="CIDR",
                   help="this worker's own bound: it refuses any task whose target lies outside these networks, "
                        "whatever the task's scope says (recommended: anyone who can write to the broker can queue "
                        "a task)")
    w.add_argument("--visibility-timeout", type=float, default=600.0,
                   help="seconds before a task held by a dead worker is handed out again (default: %(default)s)")
    w.add_argument("--ca-file", help="CA bundle for a rediss:// broker")
    w.add_argument("--cert-file", help="client certificate for a rediss:// broker")
    w.add_argument("--key-file", dest="tls_key_file", help="client key for a rediss:// broker")
    w.add_argument("--log-json", action="store_true", help="one JSON object per log line (task_id, zone, host, worker)")
    w.set_defaults(func=cmd_worker)


def cmd_worker(a: argparse.Namespace) -> int:
    from .dist import worker as dw
    from .dist.broker import BrokerConfig, BrokerError, make_app, mask, ping, queue
    from .inventory import _NAME
    from .logjson import Logger

    url = a.broker or os.environ.get("EVIDENCE_AGENT_BROKER")
    if not url:
        err("worker: give --broker URL or set EVIDENCE_AGENT_BROKER")
        return EXIT_INVALID
    bad = [z for z in a.zone if not _NAME.fullmatch(z)]
    if bad:
        err(f"worker: invalid zone name {bad[0]!r} (letters, digits, '.', '_' and '-')")
        return EXIT_INVALID
    if a.concurrency < 1:
        err("worker: --concurrency must be at least 1")
        return EXIT_INVALID
    path = a.key or default_worker_key()
    try:
        if os.path.exists(path):
            key = signing.load_private(path)
        else:
            key = signing.keygen(path)
            err(f"worker: created key {path}; accept it in the inventory under workers: "
                f"{{{a.zone[0]}: [\"{signing.pub_line(key.public, 'evidence-agent-worker')}\"]}}")
        bundle_key = default_key()
        if os.path.exists(bundle_key) and signing.same_key(key.public, signing.load_private(bundle_key).public):
            err("worker: --key is the bundle signing key; a worker must have its own key (never the bundle's)")
            return EXIT_OUTPUT
    except (signing.SignatureError, OSError) as e:
        err(f"worker: {e}")
        return EXIT_OUTPUT
    tls = {k: v for k, v in (("ca_file", a.ca_file), ("cert_file", a.cert_file), ("key_file", a.tls_key_file)) if v}
    cfg = BrokerConfig(url, tls, visibility_timeout=a.visibility_timeout)
    try:
        ping(cfg)
    except BrokerError as e:
        err(f"worker: {e}")
        return EXIT_BROKER
    scope = None
    if a.scope:
        from common.scope import Scope

        try:
            scope = Scope.parse(a.scope)
        except ValueError as e:
            err(f"worker: --scope: {e}")
            return EXIT_INVALID
    host = a.hostname or dw.hostname()
    log = Logger(json_lines=a.log_json)
    dw.CONTEXT = dw.WorkerContext(key=key, zones=tuple(a.zone), hostname=host, identity=a.identity,
                                  known_hosts=a.known_hosts, logger=log, scope=scope)
    log.info("worker-start", f"serving zone(s) {', '.join(a.zone)} from {mask(url)} as {host} "
             f"(key {signing.fingerprint(key.public)})", worker=host, zone=",".join(a.zone))
    # loaded once here, before the pool forks: prefork task processes inherit the collector and the probes' command
    # tables instead of each importing and reading them again
    from .run import collect_host
    from probes.host import PROBES

    assert collect_host
    for probe in PROBES:  # the probes' command tables too (read on first use)
        list(probe.commands)
    app = make_app(cfg)
    worker = app.Worker(hostname=f"ea-{'+'.join(a.zone)}@{host}", queues=[queue(z) for z in a.zone],
                        concurrency=a.concurrency, pool=a.pool, loglevel="WARNING", without_gossip=True,
                        without_mingle=True, optimization="fair", quiet=True)
    worker.start()
    return int(worker.exitcode or EXIT_OK)

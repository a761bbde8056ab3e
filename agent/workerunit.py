"""A collection worker of the distributed mode as a systemd service: ``evidence-agent-worker-NAME.service``.

``evidence-agent schedule install-worker --zone dmz`` writes a long-running service that runs
``evidence-agent worker --zone dmz --key KEY [--concurrency N] --hostname NAME@%H`` (issue 15).

Why it looks the way it does:

* the broker URL holds the Redis password, so it never goes into the world-readable unit nor onto
  a command line (``ps`` shows argv to everyone): it lives in ``STATE/env`` (mode 0600, read by
  systemd as root through ``EnvironmentFile=``) and reaches the worker as the environment variable
  ``EVIDENCE_AGENT_BROKER``. With ``--broker-env VAR`` the file holds ``VAR`` instead, and a
  ``/bin/sh`` wrapper copies it into ``EVIDENCE_AGENT_BROKER`` (still environment, never argv);
* a worker is a daemon that talks to a network broker and to targets, so it gets more sandboxing
  than the scheduled run: the file system read-only except its state directory and the key's
  directory (``known_hosts`` beside it), private ``/tmp``, no new privileges, kernel tunables,
  modules, logs and clock protected, only IP, unix, netlink and packet sockets (nmap needs the
  last two as root);
* ``Restart=on-failure`` every 15 s with no start limit: a broker down for maintenance is waited out
  instead of leaving the unit failed for good, and a wrong URL shows in the journal every 15 s rather
  than in a tight loop; Celery's late acknowledgement redelivers what a crashed worker was doing.
"""
from __future__ import annotations

import os
import pwd
import re
from dataclasses import dataclass, field
from typing import Optional

from .schedule import (DEFAULT_STATE_ROOT, DEFAULT_UNIT_DIR, ScheduleError, _pythonpath, _sd_path, _sd_quote,
                       _systemctl, _write, default_exe, detect_backend, write_env)

MARKER = "evidence-agent worker"
BROKER_ENV = "EVIDENCE_AGENT_BROKER"  # what `evidence-agent worker` reads when --broker is not given
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,55}$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
STOP_TIMEOUT = 120  # seconds for a warm shutdown (running tasks finish) before SIGKILL; late acks redeliver


def unit_name(name: str) -> str:
    return f"evidence-agent-worker-{name}.service"


def validate_zone(zone: str, what: str = "zone") -> str:
    if not _NAME.match(zone):
        raise ScheduleError(f"{what} {zone!r}: letters, digits, '_' and '-' only, starting with a letter or digit "
                            "(max 56)")
    return zone


@dataclass
class WorkerJob:
    """One worker service as installed: its zones, key and how it reaches the broker."""

    zones: list[str]
    state_dir: str
    key: Optional[str] = None  # the worker's own Ed25519 key; default STATE/worker_key
    concurrency: Optional[int] = None  # tasks at once (default: the worker's own)
    broker_env: str = BROKER_ENV  # variable of STATE/env holding the broker URL
    user: str = "root"
    name: Optional[str] = None  # unit suffix; default the zones joined by '-'
    hostname: Optional[str] = None  # Celery node name; default NAME@%H (unique per machine and zone set)
    writable: list[str] = field(default_factory=list)  # more ReadWritePaths (e.g. a known_hosts directory)
    exe: Optional[list[str]] = None

    def __post_init__(self) -> None:
        if not self.zones:
            raise ScheduleError("install-worker needs at least one --zone")
        for z in self.zones:
            validate_zone(z)
        self.name = validate_zone(self.name or "-".join(self.zones)[:56], "worker name")
        if not _ENV.match(self.broker_env):
            raise ScheduleError(f"--broker-env {self.broker_env!r}: not an environment variable name")
        if self.concurrency is not None and not 1 <= self.concurrency <= 1024:
            raise ScheduleError(f"--concurrency {self.concurrency}: must be between 1 and 1024")
        if self.hostname is not None and not re.fullmatch(r"(?:[A-Za-z0-9_.@-]|%[hH]){1,128}", self.hostname):
            raise ScheduleError(f"--hostname {self.hostname!r}: letters, digits, '.', '_', '-', '@' (and %h) only")

    @property
    def key_path(self) -> str:
        return self.key or os.path.join(self.state_dir, "worker_key")

    def command(self) -> list[str]:
        """``evidence-agent worker …``; argv holds no secret (the broker URL comes from the environment)."""
        args = [*(self.exe or default_exe()), "worker"]
        for z in self.zones:
            args += ["--zone", z]
        args += ["--key", self.key_path]
        if self.concurrency is not None:
            args += ["--concurrency", str(self.concurrency)]
        return args


def render(job: WorkerJob) -> str:
    """The unit file's text (deterministic, so a reinstall with the same options rewrites the same bytes)."""
    assert job.name is not None
    for p in (job.state_dir, job.key_path, *job.writable):
        if "\n" in p or "\r" in p:
            raise ScheduleError(f"{p!r}: a line break cannot be written into a unit file")
    cmd = " ".join(_sd_quote(a) for a in job.command())
    hostname = job.hostname or f"{job.name}@%H"  # systemd expands %H (this machine's host name)
    cmd += " --hostname " + hostname.replace("%h", "%H")
    if job.broker_env != BROKER_ENV:
        # copy VAR into EVIDENCE_AGENT_BROKER inside the environment; "$$" is systemd's escape for "$"
        script = BROKER_ENV + '="$' + job.broker_env + '" exec "$@"'
        cmd = f"/bin/sh -c {_sd_quote(script)} evidence-agent-worker {cmd}"
    pp = _pythonpath() if (job.exe or default_exe())[-1] == "agent.cli" else None
    env_lines = f"Environment={_sd_quote('PYTHONPATH=' + pp)}\n" if pp else ""
    rw = [job.state_dir, os.path.dirname(os.path.abspath(job.key_path)), *job.writable]
    rw_line = " ".join(_sd_quote("-" + p) for p in dict.fromkeys(rw))  # '-': a missing path is not an error
    user = f"User={job.user}\n" if job.user != "root" else ""  # Group=: the user's primary group
    return (
        f"# {MARKER}: {job.name}\n"
        f"# Written by `evidence-agent schedule install-worker`; remove with "
        f"`evidence-agent schedule remove-worker {job.name}`.\n"
        f"# zones: {' '.join(job.zones)}\n# key: {job.key_path}\n# state: {job.state_dir}\n"
        f"# broker: ${job.broker_env} from {os.path.join(job.state_dir, 'env')} (never in this file)\n\n"
        "[Unit]\n"
        f"Description=evidence-agent collection worker ({', '.join(job.zones)})\n"
        "Wants=network-online.target\nAfter=network-online.target\n"
        "StartLimitIntervalSec=0\n\n"
        "[Service]\nType=simple\n"
        f"{user}"
        f"WorkingDirectory={_sd_path(job.state_dir)}\n"
        f"EnvironmentFile={_sd_path(os.path.join(job.state_dir, 'env'))}\n"
        f"{env_lines}"
        f"ExecStart={cmd}\n"
        "Restart=on-failure\nRestartSec=15\n"
        f"TimeoutStopSec={STOP_TIMEOUT}\n"
        "UMask=0077\nNoNewPrivileges=yes\nPrivateTmp=yes\n"
        "ProtectSystem=strict\nProtectHome=read-only\n"
        f"ReadWritePaths={rw_line}\n"
        "ProtectKernelTunables=yes\nProtectKernelModules=yes\nProtectKernelLogs=yes\nProtectControlGroups=yes\n"
        "ProtectClock=yes\nProtectHostname=yes\nRestrictSUIDSGID=yes\nRestrictRealtime=yes\nLockPersonality=yes\n"
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK AF_PACKET\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )


@dataclass
class WorkerInstalled:
    name: str
    unit: str
    env_file: Optional[str]  # written now (the broker variable was set in the installer's environment)
    env_needed: Optional[str]  # the line to add by hand when it was not
    activated: bool = False
    notes: list[str] = field(default_factory=list)


def install(job: WorkerJob, unit_dir: Optional[str] = None, enable: bool = True,
            environ: Optional[dict[str, str]] = None) -> WorkerInstalled:
    """Write the unit (and STATE/env when ``job.broker_env`` is set in ``environ``); enable it on a live systemd
    with the default unit directory. A unit file not written by install-worker is never overwritten."""
    assert job.name is not None
    environ = os.environ if environ is None else environ
    if job.user != "root":
        try:
            pw = pwd.getpwnam(job.user)
        except KeyError:
            raise ScheduleError(f"--user {job.user!r}: no such user on this machine") from None
    d = unit_dir or DEFAULT_UNIT_DIR
    path = os.path.join(d, unit_name(job.name))
    if os.path.exists(path) and f"# {MARKER}: {job.name}\n" not in open(path, encoding="utf-8").read():
        raise ScheduleError(f"{path} exists and was not written by install-worker; not overwriting it")
    text = render(job)
    os.makedirs(job.state_dir, mode=0o700, exist_ok=True)
    if job.user != "root" and os.geteuid() == 0:
        os.chown(job.state_dir, pw.pw_uid, pw.pw_gid)  # the worker writes there; env stays root's (systemd reads it)
    url = environ.get(job.broker_env)
    env_file = write_env(job.state_dir, {job.broker_env: url}) if url else None
    env_path = os.path.join(job.state_dir, "env")
    needed = None if url or os.path.exists(env_path) else (
        f"{job.broker_env}='rediss://:PASSWORD@BROKER:6380/0?ssl_cert_reqs=required&ssl_ca_certs=CA.pem'")
    _write(path, text)
    inst = WorkerInstalled(job.name, path, env_file, needed)
    if needed:
        inst.notes.append(f"the service needs the broker URL: add {needed} to {env_path} (mode 0600), or rerun "
                          f"with {job.broker_env} set in the environment")
    if not os.path.exists(job.key_path):
        inst.notes.append(f"no worker key at {job.key_path}: create it with `evidence-agent keygen --worker --out "
                          f"{job.key_path}` and list its public key under `workers: {{{job.zones[0]}: [...]}}` "
                          "in the controller's inventory")
    live = unit_dir is None and detect_backend() == "systemd"
    if enable and live:
        ok1, msg1 = _systemctl("daemon-reload")
        ok2, msg2 = _systemctl("enable", "--now", unit_name(job.name)) if ok1 else (False, "")
        inst.activated = ok1 and ok2
        if not inst.activated:
            inst.notes.append(f"systemctl failed: {msg1 or msg2}")
    else:
        inst.notes.append(f"activate with: systemctl daemon-reload && systemctl enable --now {unit_name(job.name)}")
    return inst


def remove(name: str, unit_dir: Optional[str] = None) -> str:
    """Remove worker unit ``name`` (only one that install-worker wrote); the state directory and key stay."""
    validate_zone(name, "worker name")
    path = os.path.join(unit_dir or DEFAULT_UNIT_DIR, unit_name(name))
    if not os.path.exists(path) or f"# {MARKER}: {name}\n" not in open(path, encoding="utf-8").read():
        raise ScheduleError(f"no worker named {name!r} installed by install-worker ({path})")
    live = unit_dir is None and detect_backend() == "systemd"
    if live:
        _systemctl("disable", "--now", unit_name(name))
    os.remove(path)
    if live:
        _systemctl("daemon-reload")
    return path


def default_state_dir(name: str) -> str:
    return os.path.join(DEFAULT_STATE_ROOT, f"worker-{name}")

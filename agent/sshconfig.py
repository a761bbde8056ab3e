"""``defaults: {ssh_config: ~/.ssh/config}``: take how to reach a host from the operator's own OpenSSH config.

Why: ops teams already keep HostName, User, Port, IdentityFile, ProxyJump and UserKnownHostsFile there;
retyping them into the inventory drifts. Only those six options are read (through paramiko's SSHConfig, so
Host patterns, negation and ``Host *`` defaults work as in OpenSSH, first value wins); anything written in
the inventory (the host's ``ssh:`` or ``defaults.ssh``) wins over the file; nothing that weakens checking
(StrictHostKeyChecking, ciphers) is taken. What was taken is returned so it is recorded with the host.
"""
from __future__ import annotations

import os
from typing import Any, Optional

import paramiko

#: OpenSSH option (lower case, as paramiko returns it) -> inventory ssh key
OPTIONS = {"user": "user", "port": "port", "identityfile": "key_file", "userknownhostsfile": "known_hosts",
           "proxyjump": "jump"}


class SshConfigError(ValueError):
    pass


def load(path: str) -> paramiko.SSHConfig:
    p = os.path.expanduser(path)
    try:
        return paramiko.SSHConfig.from_path(p)
    except OSError as e:
        raise SshConfigError(f"cannot read ssh_config {p}: {e.strerror or e}") from None
    except Exception as e:  # a syntax paramiko refuses (e.g. Match exec without its helper)
        raise SshConfigError(f"cannot parse ssh_config {p}: {type(e).__name__}: {str(e)[:200]}") from None


def lookup(cfg: paramiko.SSHConfig, name: str, explicit: set[str]) -> dict[str, Any]:
    """What the file says for host ``name``, as inventory values, leaving out keys in ``explicit`` (written in the
    inventory). ``address`` is the HostName when the file gives one. ProxyJump names must be inventory hosts
    (checked by the caller); ``none`` means direct."""
    try:
        found = cfg.lookup(name)
    except Exception as e:
        raise SshConfigError(f"ssh_config lookup for {name!r} failed: {type(e).__name__}: {str(e)[:200]}") from None
    out: dict[str, Any] = {}
    hostname = found.get("hostname")
    if hostname and hostname != name and "address" not in explicit:
        out["address"] = hostname
    for opt, key in OPTIONS.items():
        if opt not in found or key in explicit:
            continue
        v = found[opt]
        if opt == "identityfile":
            v = v[0] if isinstance(v, list) and v else v
        elif opt == "userknownhostsfile":
            v = str(v).split()[0]
        elif opt == "port":
            try:
                v = int(v)
            except ValueError:
                raise SshConfigError(f"ssh_config Port for {name!r} is not a number: {v!r}") from None
            if not 1 <= v <= 65535:
                raise SshConfigError(f"ssh_config Port for {name!r} is out of range: {v}")
        elif opt == "proxyjump":
            v = () if str(v).lower() == "none" else tuple(x.strip() for x in str(v).split(",") if x.strip())
            for hop in v:
                if "@" in hop or ":" in hop or hop.startswith("ssh://"):
                    raise SshConfigError(f"ssh_config ProxyJump {hop!r} for {name!r}: name an inventory host (its user "
                                         "and port come from its own inventory entry)")
        out[key] = v
    return out


def record(path: Optional[str], taken: dict[str, Any]) -> dict[str, Any]:
    """The transport record's ``ssh_config`` entry: the file and what came from it (key files by path only)."""
    return {"file": os.path.expanduser(path or ""),
            **{k: (list(v) if isinstance(v, tuple) else v) for k, v in taken.items()}}

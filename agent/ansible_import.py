"""``evidence-agent inventory from-ansible``: turn the operator's Ansible inventory into ours.

Why run ``ansible-inventory --list`` rather than parse files: static INI/YAML, group_vars, host_vars and dynamic
plugins then all resolve exactly as Ansible resolves them for the operator. What is mapped:

* ``ansible_host`` → address (else the inventory name), ``ansible_user``/``ansible_ssh_user`` → ssh.user,
  ``ansible_port``/``ansible_ssh_port`` → ssh.port, ``ansible_ssh_private_key_file``/``ansible_private_key_file``
  → ssh.key_file, ``ansible_become`` → become, ``ansible_connection: local`` → transport local;
* ``ProxyJump`` (``-o ProxyJump=…`` or ``-J …`` in ``ansible_ssh_common_args``/``ansible_ssh_extra_args``) →
  ssh.jump: a hop that is an Ansible host (by name or address) is named; another ``[user@]host[:port]`` becomes
  a ``collect: false`` hop of its own;
* groups → roles and zones through a small mapping file (``roles: {group: [role…]}``, ``zones: {group: zone}``,
  optional ``defaults:`` copied into the inventory's defaults, e.g. known_hosts).

Never mapped: passwords (``ansible_password``, ``ansible_become_pass``…: use ``password_env``), other
connection types, hosts outside ``--scope``. Each is named (variable names only, never values) in the result.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from typing import Any, Optional

import yaml

from .inventory import _NAME, load_inventory
from .scope import Scope, ScopeError
from .yamlsrc import ConfigError

MAPPED = {"ansible_host", "ansible_ssh_host", "ansible_user", "ansible_ssh_user", "ansible_port", "ansible_ssh_port",
          "ansible_ssh_private_key_file", "ansible_private_key_file", "ansible_become", "ansible_connection",
          "ansible_ssh_common_args", "ansible_ssh_extra_args"}
SECRET = re.compile(r"pass|secret|token|vault", re.I)
#: variables Ansible itself sets on every host; not the operator's, so not reported as unmapped
_INTERNAL = {"inventory_file", "inventory_dir", "ansible_python_interpreter", "ansible_facts"}


class ImportError_(ValueError):
    """The conversion cannot go on (ansible-inventory failed, a bad mapping file, an invalid result)."""


def find_ansible_inventory(given: Optional[str]) -> str:
    for c in ([given] if given else []) + [shutil.which("ansible-inventory"),
                                           os.path.join(os.path.dirname(sys.executable), "ansible-inventory")]:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    raise ImportError_("ansible-inventory not found: install ansible-core, or give --ansible-inventory PATH")


def ansible_list(inventory: str, limit: Optional[str], exe: str, timeout: float = 300) -> dict[str, Any]:
    argv = [exe, "-i", inventory, "--list"] + (["--limit", limit] if limit else [])
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_INVENTORY_UNPARSED_WARNING="True")
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise ImportError_(f"ansible-inventory did not finish within {timeout:g}s") from None
    except OSError as e:
        raise ImportError_(f"cannot run {exe}: {e.strerror or e}") from None
    if r.returncode != 0:
        raise ImportError_(f"ansible-inventory failed ({r.returncode}): {r.stderr.strip()[-800:]}")
    try:
        data = json.loads(r.stdout)
    except ValueError:
        raise ImportError_("ansible-inventory --list did not print JSON") from None
    if not isinstance(data, dict):
        raise ImportError_("ansible-inventory --list printed an unexpected document")
    return data


def load_mapping(path: Optional[str]) -> dict[str, Any]:
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            m = yaml.safe_load(f) or {}
    except OSError as e:
        raise ImportError_(f"cannot read --map {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ImportError_(f"--map {path} is not valid YAML: {str(e)[:300]}") from None
    if not isinstance(m, dict) or set(m) - {"roles", "zones", "defaults"}:
        raise ImportError_(f"--map {path}: expected a mapping with roles, zones and defaults only "
                           f"(got {sorted(m) if isinstance(m, dict) else type(m).__name__})")
    for k in ("roles", "zones"):
        if not isinstance(m.get(k) or {}, dict):
            raise ImportError_(f"--map {path}: {k} must map group names to values")
    return m


def _groups_of(data: dict[str, Any]) -> dict[str, list[str]]:
    """host -> every group it is in, parents included, in the order ansible-inventory lists groups."""
    parents: dict[str, set[str]] = {}
    direct: dict[str, list[str]] = {}
    for g, body in data.items():
        if g == "_meta" or not isinstance(body, dict):
            continue
        for child in body.get("children") or []:
            parents.setdefault(child, set()).add(g)
        for h in body.get("hosts") or []:
            direct.setdefault(h, []).append(g)

    def up(g: str, seen: set[str]) -> list[str]:
        out = []
        for p in sorted(parents.get(g, ())):
            if p not in seen:
                seen.add(p)
                out += [p] + up(p, seen)
        return out

    out: dict[str, list[str]] = {}
    for h, gs in direct.items():
        seen: set[str] = set(gs)
        allg = list(gs)
        for g in gs:
            allg += up(g, seen)
        out[h] = [g for g in dict.fromkeys(allg) if g not in ("all", "ungrouped")]
    return out


def _proxy_jump(v: dict[str, Any]) -> Optional[str]:
    for key in ("ansible_ssh_common_args", "ansible_ssh_extra_args"):
        text = v.get(key)
        if not isinstance(text, str):
            continue
        try:
            words = shlex.split(text)
        except ValueError:
            continue
        for i, w in enumerate(words):
            nxt = words[i + 1] if i + 1 < len(words) else ""
            if w == "-J" and nxt:
                return nxt
            if w.startswith("-J") and len(w) > 2:
                return w[2:]
            opt = nxt if w == "-o" else (w[2:] if w.startswith("-o") else "")
            m = re.match(r"(?i)proxyjump[ =]+(.+)", opt)
            if m:
                return m.group(1).strip()
    return None


def _split_hop(spec: str) -> tuple[Optional[str], str, Optional[int]]:
    m = re.fullmatch(r"(?:ssh://)?(?:([^@]+)@)?(\[[^\]]+\]|[^:]+)(?::(\d+))?", spec.strip())
    if not m:
        raise ValueError(spec)
    return m.group(1), m.group(2).strip("[]"), int(m.group(3)) if m.group(3) else None


def _is_ip(a: str) -> bool:
    try:
        ipaddress.ip_address(a)
        return True
    except ValueError:
        return False


def convert(data: dict[str, Any], scope: Scope, mapping: dict[str, Any], source: str
            ) -> tuple[dict[str, Any], list[str]]:
    """Our inventory (as a dict) and the list of what was not mapped (host and variable names, never values)."""
    hostvars: dict[str, dict[str, Any]] = ((data.get("_meta") or {}).get("hostvars") or {})
    groups = _groups_of(data)
    names = list(dict.fromkeys(list(hostvars) + list(groups)))
    roles_map = mapping.get("roles") or {}
    zones_map = mapping.get("zones") or {}
    notes: list[str] = []
    unmapped_vars: dict[str, set[str]] = {}
    hosts: list[dict[str, Any]] = []
    by_address: dict[str, str] = {}
    skipped: set[str] = set()
    for name in names:
        v = hostvars.get(name) or {}
        address = str(v.get("ansible_host") or v.get("ansible_ssh_host") or name)
        if not _NAME.fullmatch(name):
            notes.append(f"host {name!r}: not a valid host name here (letters, digits, '.', '_', '-'); skipped")
            skipped.add(name)
            continue
        conn = str(v.get("ansible_connection") or "ssh")
        if conn not in ("ssh", "smart", "paramiko", "local"):
            notes.append(f"host {name}: ansible_connection {conn!r} is not supported (ssh or local); skipped")
            skipped.add(name)
            continue
        if conn != "local" and _is_ip(address):
            try:
                scope.check_address(address, f"host {name}")
            except ScopeError as e:
                notes.append(f"{e}; skipped")
                skipped.add(name)
                continue
        h: dict[str, Any] = {"name": name}
        if conn == "local":
            h["transport"] = "local"
        else:
            h["address"] = address
            by_address.setdefault(address, name)
        ssh: dict[str, Any] = {}
        user = v.get("ansible_user") or v.get("ansible_ssh_user")
        if user:
            ssh["user"] = str(user)
        port = v.get("ansible_port") or v.get("ansible_ssh_port")
        if port:
            try:
                ssh["port"] = int(port)
            except (TypeError, ValueError):
                notes.append(f"host {name}: ansible_port is not a number; not mapped")
        key = v.get("ansible_ssh_private_key_file") or v.get("ansible_private_key_file")
        if key:
            ssh["key_file"] = str(key)
        if conn != "local" and ssh:
            h["ssh"] = ssh
        if str(v.get("ansible_become", "")).lower() in ("true", "yes", "1"):
            h["become"] = True
        gs = groups.get(name, [])
        roles = []
        for g in gs:
            r = roles_map.get(g)
            roles += r if isinstance(r, list) else ([r] if r else [])
        if roles:
            h["roles"] = list(dict.fromkeys(str(x) for x in roles))
        zone = next((zones_map[g] for g in gs if g in zones_map), None)
        if zone:
            h["zone"] = str(zone)
        unmapped_groups = [g for g in gs if g not in roles_map and g not in zones_map]
        if mapping and unmapped_groups:
            notes.append(f"host {name}: groups without a role or zone in the mapping: {', '.join(unmapped_groups)}")
        pj = _proxy_jump(v)
        if pj and conn != "local":
            h["_proxy"] = pj
        for k in v:
            if k in MAPPED or k in _INTERNAL or not k.startswith("ansible_"):
                continue
            unmapped_vars.setdefault(k, set()).add(name)
        hosts.append(h)

    # ProxyJump: name Ansible hosts, make collect: false hops for the others
    hops: dict[str, dict[str, Any]] = {}
    known = {h["name"] for h in hosts}
    for h in hosts:
        pj = h.pop("_proxy", None)
        if not pj or pj.lower() == "none":
            continue
        chain = []
        for spec in pj.split(","):
            try:
                user, addr, port = _split_hop(spec)
            except ValueError:
                notes.append(f"host {h['name']}: ProxyJump {spec!r} not understood; host skipped")
                chain = None
                break
            hop = addr if addr in known else by_address.get(addr)
            if hop is None:
                hop = "jump-" + re.sub(r"[^A-Za-z0-9._-]", "-", addr).strip("-._")[:50]
                if hop not in hops:
                    entry: dict[str, Any] = {"name": hop, "address": addr, "collect": False}
                    hs = {k: v for k, v in (("user", user), ("port", port)) if v}
                    if hs:
                        entry["ssh"] = hs
                    if _is_ip(addr):
                        try:
                            scope.check_address(addr, f"jump host {hop}")
                        except ScopeError as e:
                            notes.append(f"host {h['name']}: {e}; host skipped")
                            chain = None
                            break
                    hops[hop] = entry
            chain.append(hop)
        if chain is None:
            skipped.add(h["name"])
            continue
        if chain:
            h.setdefault("ssh", {})["jump"] = chain if len(chain) > 1 else chain[0]
    hosts = [h for h in hosts if h["name"] not in skipped]
    for k, who in sorted(unmapped_vars.items()):
        what = "a secret: never written, use ssh.password_env" if SECRET.search(k) else "not mapped"
        notes.append(f"variable {k} ({what}) on {len(who)} host(s): {', '.join(sorted(who)[:5])}"
                     + (" …" if len(who) > 5 else ""))
    out: dict[str, Any] = {"version": 1, "organisation": None, "scope": {"allow": [str(n) for n in scope.allow]}}
    if mapping.get("defaults"):
        out["defaults"] = mapping["defaults"]
    out["hosts"] = hosts + list(hops.values())
    if out["organisation"] is None:
        del out["organisation"]
    return out, notes


def write(inv: dict[str, Any], notes: list[str], out_path: str, source: str) -> None:
    """Write the inventory with a header naming its source and what was not mapped, then validate it as any
    inventory is validated (the file is removed again when it does not validate)."""
    source = source.replace("\n", " ")
    head = [f"# converted from the Ansible inventory {source} by `evidence-agent inventory from-ansible`"]
    head += ["# not mapped:"] + [f"#   - {n}" for n in notes] if notes else ["# everything was mapped"]
    text = "\n".join(head) + "\n" + yaml.safe_dump(inv, sort_keys=False, allow_unicode=True, width=120)
    tmp = out_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    try:
        load_inventory(tmp)
    except ConfigError as e:
        os.unlink(tmp)
        raise ImportError_(f"the converted inventory does not validate: {e}") from None
    os.replace(tmp, out_path)

"""Host firewall (guide 14.4.1): nftables/iptables/firewalld/ufw — active, default policies, rules.

Why: the guide asks that servers be protected by an information-protection
system; the host firewall is the part visible on the server. The full rulesets
are the evidence (the raw outputs); the fact keeps the counts and policies a
rule can check. Reading rules needs root: without it the backend says
``readable: false`` and ``active`` stays null unless firewalld/ufw answer.

On iptables-nft systems the iptables rules are also nftables tables: the total
``rule_count`` then counts the nftables view only.

Fact schema (``data``)::

    active: bool|null                  # some backend filters inbound traffic
    frontend: "firewalld"|"ufw"|null   # the managing tool when one is active
    default_input_policy: "drop"|"reject"|"accept"|null
    rule_count: int|null
    nftables: {available: bool, readable: bool|null, tables: [str], rule_count: int|null,
               input_chains: [{table, chain, policy, rules: int}]}
    iptables: {available: bool, readable: bool|null, variant: "nf_tables"|"legacy"|null,
               ipv4: {policies: {chain: policy}, rule_count: int} | null,
               ipv6: {policies: {chain: policy}, rule_count: int} | null}
    firewalld: {installed: bool, running: bool|null, default_zone: str|null,
                zones: [{name, target, interfaces: [str], sources: [str], services: [str], ports: [str]}]}
    ufw: {installed: bool, active: bool|null, default_incoming: str|null, default_outgoing: str|null,
          rules: int|null, enabled_in_config: bool|null}
    services: {unit: {enabled: bool|null, active: bool|null}}
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Optional

from ..base import (
    CommandSpec, Fact, HostProbe, Problem, RawOutput, ReasonCode, about, fact_with_problems, not_collected,
)
from .common import SERVICES, needs_privilege, services, split_parts, unit_state, usable

NFT = CommandSpec(
    "nft_ruleset",
    "echo \"uid=${_ea_uid:-$(id -u)}\"; if command -v nft >/dev/null 2>&1; then echo '### nft'; $_ea_g nft list ruleset 2>&1; "
    "echo \"rc=$?\"; else echo '### nft absent'; fi",
    timeout=20,
    privileged=True,
    may_hang=False,
)
IPTABLES = CommandSpec(
    "iptables_rules",
    'echo "uid=${_ea_uid:-$(id -u)}"; for t in iptables-save ip6tables-save; do if command -v $t >/dev/null 2>&1; then '
    'echo "### $t"; $_ea_g $t 2>&1; echo "rc=$?"; else echo "### $t absent"; fi; done',
    timeout=20,
    privileged=True,
    may_hang=False,
)
FIREWALLD = CommandSpec(
    "firewalld",
    'echo "uid=${_ea_uid:-$(id -u)}"; if command -v firewall-cmd >/dev/null 2>&1; then echo \'### state\'; $_ea_g firewall-cmd '
    '--state 2>&1; echo "rc=$?"; '
    "if $_ea_g firewall-cmd --state >/dev/null 2>&1; then echo '### default-zone'; $_ea_g firewall-cmd --get-default-zone "
    "2>&1; "
    "for z in $($_ea_g firewall-cmd --get-active-zones 2>/dev/null | grep -v '^[[:space:]]'); do echo \"### zone "
    "$z\"; "
    "$_ea_g firewall-cmd --zone=\"$z\" --list-all 2>&1; done; fi; else echo '### absent'; fi",
    timeout=30,
    privileged=True,
    may_hang=False,
)
UFW = CommandSpec(
    "ufw",
    'echo "uid=${_ea_uid:-$(id -u)}"; if command -v ufw >/dev/null 2>&1; then echo \'### status\'; $_ea_g ufw status verbose '
    '2>&1; echo "rc=$?"; '
    "else echo '### absent'; fi; echo '### conf'; for f in /etc/ufw/ufw.conf /etc/default/ufw; do "
    '[ -r "$f" ] && grep -H -E \'^(ENABLED|DEFAULT_[A-Z]+_POLICY)=\' "$f"; done; true',
    timeout=20,
    privileged=True,
    may_hang=False,
)
COMMANDS = (NFT, IPTABLES, FIREWALLD, UFW, SERVICES)

_UNITS = ("firewalld", "nftables", "netfilter-persistent", "iptables", "ip6tables", "ufw")


def _rc(lines: list[str]) -> Optional[int]:
    for ln in reversed(lines):
        m = re.match(r"^rc=(\d+)$", ln.strip())
        if m:
            return int(m.group(1))
    return None


def parse_nft(lines: list[str]) -> dict[str, Any]:
    """``nft list ruleset`` → tables, rule count and the input-hook base chains.

    Depth is tracked by braces: a line directly inside a chain (depth 2) is a rule
    unless it is the chain's ``type ... hook ...`` line; set/map/flowtable blocks
    and multi-line rule continuations sit deeper and are not counted again.
    """
    tables: list[str] = []
    chains: list[dict[str, Any]] = []
    depth = 0
    cur_table: Optional[str] = None
    cur_chain: Optional[dict[str, Any]] = None
    total = 0
    drops_in_table: dict[str, bool] = {}
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#") or re.match(r"^rc=\d+$", line):
            continue
        opens, closes = line.count("{"), line.count("}")
        if depth == 0:
            m = re.match(r"^table\s+(\w+)\s+(\S+)\s*\{", line)
            if m:
                cur_table = f"{m.group(1)} {m.group(2)}"
                tables.append(cur_table)
        elif depth == 1:
            m = re.match(r"^chain\s+(\S+)\s*\{", line)
            cur_chain = None
            if m:
                cur_chain = {
                    "table": cur_table,
                    "chain": m.group(1),
                    "hook": None,
                    "policy": None,
                    "rules": 0,
                }
                chains.append(cur_chain)
        elif depth == 2 and cur_chain is not None and line != "}":
            if line.startswith("type ") and " hook " in line:
                hm = re.search(r"\shook\s+(\w+)", line)
                pm = re.search(r"policy\s+(\w+)", line)
                cur_chain["hook"] = hm.group(1) if hm else None
                cur_chain["policy"] = pm.group(1) if pm else "accept"
            elif not line.startswith(("comment ", "devices ")):
                cur_chain["rules"] += 1
                total += 1
                if re.search(r"\b(drop|reject)\b", line) and cur_table:
                    drops_in_table[cur_table] = True
        depth = max(0, depth + opens - closes)
    inputs = [
        {
            "table": c["table"],
            "chain": c["chain"],
            "policy": c["policy"],
            "rules": c["rules"],
            "drops": drops_in_table.get(c["table"] or "", False),
        }
        for c in chains
        if c["hook"] == "input"
    ]
    return {"tables": tables, "rule_count": total, "input_chains": inputs}


def parse_iptables_save(lines: list[str]) -> Optional[dict[str, Any]]:
    policies: dict[str, str] = {}
    rules = 0
    table = None
    seen = False
    variant = None
    input_drops = False
    for ln in lines:
        s = ln.strip()
        m = re.match(r"^# Generated by .*?\((nf_tables|legacy)\)", s)
        if m:
            variant = m.group(1)
        if s.startswith("*"):
            table, seen = s[1:], True
        elif s.startswith(":") and table == "filter":
            f = s[1:].split()
            if len(f) >= 2 and f[1] != "-":
                policies[f[0]] = f[1]
        elif s.startswith("-A "):
            rules += 1
            if table == "filter" and re.search(r"-j (DROP|REJECT)\b", s):
                input_drops = True
    if not seen:
        return {"policies": {}, "rule_count": 0, "variant": variant, "drops": False, "empty": True}
    return {
        "policies": policies,
        "rule_count": rules,
        "variant": variant,
        "drops": input_drops,
        "empty": False,
    }


def parse_firewalld(text: str) -> dict[str, Any]:
    parts = split_parts(text)
    if not parts or parts[0][0] == "absent":
        return {"installed": False, "running": False, "default_zone": None, "zones": []}
    d: dict[str, Any] = {"installed": True, "running": None, "default_zone": None, "zones": []}
    for header, lines in parts:
        body = [ln for ln in lines if ln.strip() and not re.match(r"^rc=\d+$", ln.strip())]
        if header == "state":
            joined = " ".join(body).lower()
            if "not running" in joined:
                d["running"] = False
            elif "running" in joined:
                d["running"] = True
            elif needs_privilege(joined):
                d["running"] = None
        elif header == "default-zone" and body:
            d["default_zone"] = body[0].strip()
        elif header.startswith("zone "):
            z: dict[str, Any] = {
                "name": header.split()[1],
                "target": None,
                "interfaces": [],
                "sources": [],
                "services": [],
                "ports": [],
            }
            for ln in body:
                k, _, v = ln.strip().partition(":")
                k = k.strip()
                if k in ("interfaces", "sources", "services", "ports"):
                    z[k] = v.split()
                elif k == "target":
                    z["target"] = v.strip()
            d["zones"].append(z)
    return d


def parse_ufw(text: str) -> dict[str, Any]:
    parts = dict(split_parts(text))
    d: dict[str, Any] = {
        "installed": "status" in parts,
        "active": None,
        "default_incoming": None,
        "default_outgoing": None,
        "rules": None,
        "enabled_in_config": None,
    }
    if "absent" in parts:
        d["active"] = False
    status = parts.get("status", [])
    joined = "\n".join(status)
    m = re.search(r"^Status:\s*(\w+)", joined, re.M)
    if m:
        d["active"] = m.group(1) == "active"
        rules = 0
        in_table = False
        for ln in status:
            if ln.startswith("--"):
                in_table = True
                continue
            if in_table and ln.strip() and not re.match(r"^rc=\d+$", ln.strip()):
                rules += 1
        d["rules"] = rules if (in_table or d["active"]) else None
    m = re.search(r"^Default:\s*(\w+) \(incoming\),\s*(\w+) \(outgoing\)", joined, re.M)
    if m:
        d["default_incoming"], d["default_outgoing"] = m.group(1), m.group(2)
    for ln in parts.get("conf", []):
        _, _, kv = ln.partition(":")
        k, _, v = kv.partition("=")
        v = v.strip().strip('"')
        if k == "ENABLED":
            d["enabled_in_config"] = v.lower() == "yes"
        elif k == "DEFAULT_INPUT_POLICY" and d["default_incoming"] is None and d["active"]:
            d["default_incoming"] = v.lower()
    return d


def parse(outputs: Mapping[str, RawOutput]) -> Fact:
    problems: list[str] = []
    nft_out, nprob = usable(outputs, "nft_ruleset")
    ipt_out, iprob = usable(outputs, "iptables_rules")
    if nft_out is None and ipt_out is None:
        return not_collected("firewall", Problem(f"rulesets not read: {nprob}; {iprob}",
                                                 nprob.code if nprob else ReasonCode.OTHER))

    nft: dict[str, Any] = {
        "available": False,
        "readable": None,
        "tables": [],
        "rule_count": None,
        "input_chains": [],
    }
    if nft_out is None:
        problems.append(about(nprob, "nftables not read"))
        nft["available"] = None
    else:
        parts = split_parts(nft_out.output)
        for header, lines in parts:
            if header == "nft":
                nft["available"] = True
                body = "\n".join(lines)
                if _rc(lines) == 0:
                    nft.update(parse_nft(lines))
                    nft["readable"] = True
                elif needs_privilege(body):
                    nft["readable"] = False
                    problems.append(Problem("nft list ruleset: needs privilege", ReasonCode.PERMISSION))
                else:
                    nft["readable"] = False
                    problems.append(
                        "nft list ruleset failed: " + body.strip().splitlines()[0][:150]
                        if body.strip()
                        else "nft list ruleset failed"
                    )

    ipt: dict[str, Any] = {"available": False, "readable": None, "variant": None, "ipv4": None, "ipv6": None}
    if ipt_out is None:
        problems.append(about(iprob, "iptables not read"))
        ipt["available"] = None
    else:
        for header, lines in split_parts(ipt_out.output):
            name = header.split()[0]
            if header.endswith(" absent"):
                continue
            ipt["available"] = True
            body = "\n".join(lines)
            key = "ipv4" if name == "iptables-save" else "ipv6"
            if _rc(lines) == 0 and not needs_privilege(body):
                r = parse_iptables_save(lines)
                if r is not None:
                    ipt["variant"] = ipt["variant"] or r["variant"]
                    ipt[key] = {"policies": r["policies"], "rule_count": r["rule_count"], "drops": r["drops"]}
                    ipt["readable"] = True if ipt["readable"] is not False else False
            else:
                ipt["readable"] = False
                problems.append(f"{name}: " + ("needs privilege" if needs_privilege(body) else "failed"))

    fwd_out, fprob = usable(outputs, "firewalld")
    fwd = (
        parse_firewalld(fwd_out.output)
        if fwd_out is not None
        else {"installed": None, "running": None, "default_zone": None, "zones": []}
    )
    if fwd_out is None:
        problems.append(about(fprob, "firewalld not read"))
    ufw_out, uprob = usable(outputs, "ufw")
    ufw = (
        parse_ufw(ufw_out.output)
        if ufw_out is not None
        else {
            "installed": None,
            "active": None,
            "default_incoming": None,
            "default_outgoing": None,
            "rules": None,
            "enabled_in_config": None,
        }
    )
    if ufw_out is None:
        problems.append(about(uprob, "ufw not read"))
    elif ufw["installed"] and ufw["active"] is None:
        problems.append(
            "ufw status: needs privilege" if needs_privilege(ufw_out.output) else "ufw status unknown"
        )

    svc, sprob = services(outputs)
    if svc is None:
        problems.append(sprob or "services")
    units = {}
    for u in _UNITS:
        st = unit_state(svc, [u])
        if st["unit"]:
            units[u] = {"enabled": st["enabled"], "active": st["active"]}

    # Inbound filtering, backend by backend.
    signals: list[Optional[bool]] = []
    policy: Optional[str] = None
    frontend = None
    if fwd.get("running"):
        frontend = "firewalld"
        signals.append(True)
        policy = "reject"
    if ufw.get("active"):
        frontend = frontend or "ufw"
        signals.append(True)
        inc = ufw.get("default_incoming")
        policy = policy or ({"deny": "drop", "reject": "reject", "allow": "accept"}.get(inc or ""))
    if nft["readable"]:
        ins = nft["input_chains"]
        filt = any(c["policy"] in ("drop", "reject") or c["drops"] for c in ins)
        signals.append(filt)
        if ins and policy is None:
            policy = "drop" if any(c["policy"] == "drop" for c in ins) else "accept"
    if ipt["readable"] and ipt["ipv4"] is not None:
        pol = ipt["ipv4"]["policies"].get("INPUT")
        filt = pol in ("DROP", "REJECT") or ipt["ipv4"]["drops"]
        signals.append(filt)
        if policy is None and pol:
            policy = pol.lower()
    if any(s is True for s in signals):
        active: Optional[bool] = True
    elif (
        signals
        and nft["readable"] is not False
        and ipt["readable"] is not False
        and (nft["available"] or ipt["available"])
    ):
        active = False
    elif (
        not nft["available"]
        and not ipt["available"]
        and fwd.get("installed") is False
        and ufw.get("installed") is False
    ):
        active = False  # no firewall tooling at all (the kernel may still hold rules: see reason)
        problems.append(Problem("no nft/iptables/firewalld/ufw on the host: kernel rules, if any, not read",
                                ReasonCode.TOOL_MISSING))
    else:
        active = None
    if policy is None and fwd.get("running") is False and not ufw.get("active") and active is False:
        policy = "accept"

    if nft["readable"] and nft["rule_count"] is not None:
        total: Optional[int] = nft["rule_count"]
        if ipt["variant"] == "legacy":
            total += sum((ipt[k] or {}).get("rule_count", 0) for k in ("ipv4", "ipv6"))
    elif ipt["readable"]:
        total = sum((ipt[k] or {}).get("rule_count", 0) for k in ("ipv4", "ipv6"))
    else:
        total = None
    for k in ("ipv4", "ipv6"):
        if ipt[k] is not None:
            ipt[k].pop("drops", None)
    for c in nft["input_chains"]:
        c.pop("drops", None)

    data = {
        "active": active,
        "frontend": frontend,
        "default_input_policy": policy,
        "rule_count": total,
        "nftables": nft,
        "iptables": ipt,
        "firewalld": fwd,
        "ufw": ufw,
        "services": units,
    }
    return fact_with_problems("firewall", data, problems)


PROBE = HostProbe(
    name="firewall",
    items=("14.4.1",),
    commands=COMMANDS,
    parse=parse,
    description_ko="호스트 방화벽(nftables/iptables/firewalld/ufw) 활성화 여부, 기본 정책, 규칙 수",
    description_en="Host firewall (nftables/iptables/firewalld/ufw): active, default policies, rule count",
)

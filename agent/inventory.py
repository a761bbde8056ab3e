"""The inventory (YAML, version 1): what to collect from, how to reach it, and the allowed scope.

Validation is strict (unknown keys are errors) because a misspelt key silently
ignored would mean a control silently unchecked. Every error names file, line and
key. Secrets are never read from the file: passwords come from an environment
variable named by ``password_env``.
"""
from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field, replace
from typing import Any, Optional

from probes.transport.ssh import HostKeyPolicy, SshOptions

from .scope import Scope, ScopeError
from .yamlsrc import ConfigError, Node, load

#: Host and network names become file names in the bundle (``facts/<name>.json``, ``evidence/…_<name>_…``),
#: so a name is accepted only when it is a safe file name on Linux, macOS and Windows *as it is*: letters,
#: digits, '.', '_' and '-', starting and ending with a letter or digit, at most 63 characters, not a Windows
#: device name (CON, NUL, COM1…). Names are unique ignoring case. So the name → file-name mapping is the
#: identity over accepted names, and two hosts can never share a file (``web1`` vs ``web1_`` or ``web1.``).
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?")
_NAME_RULE = ("letters, digits, '.', '_' and '-', starting and ending with a letter or digit, at most 63 "
              "characters (it becomes a file name in the bundle)")
_WINDOWS_DEVICES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
_SSH_KEYS = {"user", "port", "key_file", "known_hosts", "host_key_policy", "password_env", "become",
             "legacy_algorithms", "connect_timeout", "jump", "max_sessions"}
DAY = 86400.0  # upper bound of every timeout: a larger one is a typo (or .inf) that would unbound a run
_SECRET_KEYS = {"password", "passphrase", "secret", "token"}


@dataclass
class Timeouts:
    """Seconds. ``command`` caps every command (None: each probe command's own limit, 5–90 s);
    ``host`` bounds a whole host, connection included."""

    connect: float = 10.0
    command: Optional[float] = None
    host: float = 180.0


@dataclass
class Host:
    name: str
    address: str
    transport: str  # ssh | local
    roles: list[str] = field(default_factory=list)
    zone: Optional[str] = None
    ssh: SshOptions = field(default_factory=SshOptions)
    become: bool = False
    declared: dict[str, Any] = field(default_factory=dict)  # free declarations policies may read
    line: Optional[int] = None
    addresses: list[str] = field(default_factory=list)  # aliases it owns too (NAT, VIP, load-balancer front end)
    public: Optional[bool] = None  # a public server (14.5.1) whatever its zone; false: declared not public
    collect: bool = True  # false: a jump host only (reached, never collected nor judged)
    route: tuple[str, ...] = ()  # the full chain of jump hosts to it, first hop first (empty: direct)
    ssh_config: dict[str, Any] = field(default_factory=dict)  # what came from ssh_config (file and values)

    def meta(self) -> dict[str, Any]:
        m = {"name": self.name, "address": self.address, "transport": self.transport,
             "roles": list(self.roles), "zone": self.zone, "declared": self.declared,
             "addresses": list(self.addresses), "public": self.public}
        if self.route:  # only then: a direct host's record stays as it was
            m["jump"] = list(self.route)
        return m


@dataclass
class Network:
    name: str
    cidr: str
    zone: Optional[str] = None
    vantage: Optional[str] = None  # the zone whose worker scans it (distributed mode); None: its own zone

    @property
    def served_by(self) -> str:
        return self.vantage or self.zone or DEFAULT_ZONE


@dataclass
class TlsEndpoint:
    host: str
    port: int
    name: Optional[str] = None
    server_name: Optional[str] = None
    external_institution: bool = False
    zone: Optional[str] = None
    vantage: Optional[str] = None  # the zone whose worker assesses it (distributed mode); None: its own zone

    @property
    def served_by(self) -> str:
        return self.vantage or self.zone or DEFAULT_ZONE


#: the zone of what declares none, in distributed mode (workers started with ``--zone default`` serve it)
DEFAULT_ZONE = "default"


@dataclass
class Broker:
    """Distributed mode (``agent.dist``): the Redis broker and result store. The URL holds the password, so the
    inventory names only the environment variable it is read from (``url_env``) — never the URL itself."""

    url_env: str = "EVIDENCE_AGENT_BROKER"
    tls: dict[str, str] = field(default_factory=dict)  # ca_file, cert_file, key_file (paths)
    max_result_bytes: int = 32 * 1024 * 1024
    line: Optional[int] = None


@dataclass
class Inventory:
    path: str
    organisation: Optional[str]
    scope: Scope
    hosts: list[Host]
    networks: list[Network]
    tls: list[TlsEndpoint] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    timeouts: Timeouts = field(default_factory=Timeouts)
    policy: dict[str, Any] = field(default_factory=dict)  # parameter overrides (global/zones/roles/hosts)
    waivers: list[dict[str, Any]] = field(default_factory=list)
    declared: dict[str, Any] = field(default_factory=dict)  # organisation-wide declarations (declare:)
    nmap: dict[str, Any] = field(default_factory=dict)
    tls_options: dict[str, Any] = field(default_factory=dict)
    web_options: dict[str, Any] = field(default_factory=dict)  # probes.net.web.WebOptions fields
    jump_hosts: dict[str, Host] = field(default_factory=dict)  # every host used as a hop (collect: false too)
    url_zones: dict[str, str] = field(default_factory=dict)  # web URL → zone that checks it (distributed mode)
    broker: Optional[Broker] = None
    workers: dict[str, list[str]] = field(default_factory=dict)  # zone → accepted worker public keys (OpenSSH lines)

    def host(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)


_HOSTNAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?")


def _address(node: Node, value: str) -> str:
    """An IP literal or a DNS host name (ASCII labels), before anything is resolved: other text is refused
    here with its line rather than handed to the resolver."""
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if not _HOSTNAME.fullmatch(value):
        raise node.error(f"not an IP address or host name: {value!r}")
    return value


def check_name(node: Node, kind: str, seen: dict[str, tuple[str, Optional[int]]]) -> str:
    """A host or network name that is safe and unique (ignoring case) as a file name; ConfigError otherwise."""
    name = node.req_str()
    if not _NAME.fullmatch(name):
        raise node.error(f"invalid {kind} name {name!r}: {_NAME_RULE}")
    if name.split(".")[0].lower() in _WINDOWS_DEVICES:
        raise node.error(f"invalid {kind} name {name!r}: a reserved device name on Windows")
    prev = seen.get(name.lower())
    if prev is not None:
        same = "" if prev[0] == name else f" ({prev[0]!r} differs only in letter case)"
        raise node.error(f"duplicate {kind} name {name!r}{same}, first on line {prev[1]}; names are compared "
                         "ignoring case because bundles are unpacked on case-insensitive file systems too")
    seen[name.lower()] = (name, node.line)
    return name


def _ssh(node: Node, base: SshOptions) -> SshOptions:
    node.mapping()
    for k in node.value:
        if str(k).lower() in _SECRET_KEYS:
            raise node.error("secrets must not be written in the inventory; use password_env: VARIABLE_NAME",
                             f"{node.key}.{k}", getattr(node.value, "key_lines", {}).get(str(k)))
    node.mapping(_SSH_KEYS)
    o = replace(base)
    if node.has("user"):
        o.user = node.get("user").req_str()
    if node.has("port"):
        o.port = node.get("port").int(lo=1, hi=65535) or o.port
    if node.has("key_file"):
        o.key_file = node.get("key_file").str()
    if node.has("known_hosts"):
        o.known_hosts = node.get("known_hosts").req_str()
    if node.has("host_key_policy"):
        o.host_key_policy = node.get("host_key_policy").req_str(tuple(p.value for p in HostKeyPolicy))
    if node.has("password_env"):
        v = node.get("password_env").req_str()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v):
            raise node.get("password_env").error("must be the NAME of an environment variable")
        o.password_env = v
    if node.has("become"):
        o.become = node.get("become").bool()
    if node.has("legacy_algorithms"):
        o.legacy_algorithms = node.get("legacy_algorithms").bool()
    if node.has("connect_timeout"):
        o.connect_timeout = node.get("connect_timeout").num(lo=0.5, hi=DAY) or o.connect_timeout
    if node.has("jump"):
        j = node.get("jump")
        if j.value is None:
            o.jump = ()
        elif isinstance(j.value, str):
            o.jump = (j.req_str(),)
        else:
            o.jump = tuple(n.req_str() for n in j.seq())
    if node.has("max_sessions"):
        o.max_sessions = node.get("max_sessions").int(lo=1, hi=1000) or o.max_sessions
    return o


def _expand(path: Optional[str], inv_dir: str) -> Optional[str]:
    if not path:
        return path
    p = os.path.expanduser(path)
    return p if os.path.isabs(p) else os.path.normpath(os.path.join(inv_dir, p))


def load_inventory(path: str, text: Optional[str] = None) -> Inventory:
    """Parse and validate; raises ConfigError (bad file) or ScopeError-as-ConfigError (target out of scope)."""
    root = Node(path, load(path, text))
    if root.value is None:
        raise ConfigError(path, 1, "", "the inventory is empty")
    root.mapping({"version", "organisation", "scope", "defaults", "hosts", "networks", "tls", "web", "policy",
                  "waivers", "nmap", "tls_options", "web_options", "declare", "broker", "workers"}, required=("version", "scope"))
    version = root.get("version")
    if version.int() != 1:
        raise version.error("unsupported inventory version (expected 1)")
    inv_dir = os.path.dirname(os.path.abspath(path))

    sc = root.get("scope").mapping({"allow", "deny"}, required=("allow",))
    allow, deny = [], []
    for lst, name in ((allow, "allow"), (deny, "deny")):
        for n in sc.get(name).seq():
            s = n.req_str()
            try:
                ipaddress.ip_network(s, strict=False)
            except ValueError:
                raise n.error(f"not an IP network: {s!r}") from None
            lst.append(s)
    if not allow:
        raise sc.get("allow").error("scope.allow must list at least one network")
    scope = Scope.parse(allow, deny)

    defaults = root.get("defaults")
    base_ssh = SshOptions()
    timeouts = Timeouts()
    if defaults.value is not None:
        defaults.mapping({"ssh", "timeouts", "ssh_config"})
        if defaults.has("ssh"):
            base_ssh = _ssh(defaults.get("ssh"), base_ssh)
        if defaults.has("timeouts"):
            t = defaults.get("timeouts").mapping({"connect", "command", "host"})
            timeouts = Timeouts(
                connect=t.get("connect").num(timeouts.connect, lo=0.5, hi=DAY) or timeouts.connect,
                command=t.get("command").num(timeouts.command, lo=1, hi=DAY),
                host=t.get("host").num(timeouts.host, lo=1, hi=DAY) or timeouts.host,
            )

    ssh_cfg, ssh_cfg_path = None, None
    if defaults.has("ssh_config"):  # opt in: the operator's OpenSSH config (agent.sshconfig)
        from . import sshconfig

        ssh_cfg_path = _expand(defaults.get("ssh_config").req_str(), inv_dir)
        try:
            ssh_cfg = sshconfig.load(ssh_cfg_path or "")
        except sshconfig.SshConfigError as e:
            raise defaults.get("ssh_config").error(str(e)) from None
    hosts: list[Host] = []
    names: dict[str, tuple[str, Optional[int]]] = {}
    jump_nodes: dict[str, Node] = {}  # where each host's jump list was written, for errors
    for hn in root.get("hosts").seq():
        hn.mapping({"name", "address", "transport", "roles", "zone", "ssh", "become", "declare", "addresses",
                    "public", "collect"}, required=("name",))
        name = check_name(hn.get("name"), "host", names)
        transport = hn.get("transport").str("ssh", choices=("ssh", "local")) or "ssh"
        address = hn.get("address").str("127.0.0.1" if transport == "local" else None)
        taken: dict[str, Any] = {}
        if ssh_cfg is not None and transport == "ssh":
            from . import sshconfig

            explicit = {k for n in (hn.get("ssh"), defaults.get("ssh")) if isinstance(n.value, dict) for k in n.value}
            if address:
                explicit.add("address")
            try:
                taken = sshconfig.lookup(ssh_cfg, name, explicit)
            except sshconfig.SshConfigError as e:
                raise hn.get("name").error(f"{e} ({ssh_cfg_path})") from None
            address = taken.get("address", address)
        if not address:
            raise hn.get("address").error("required for ssh hosts" + (
                " (or a HostName for it in ssh_config)" if ssh_cfg is not None else ""))
        try:
            scope.check_address(_address(hn.get("address"), address), f"host {name}")
        except ScopeError as e:
            raise hn.get("address").error(str(e)) from None
        ssh = _ssh(hn.get("ssh"), base_ssh) if hn.has("ssh") else replace(base_ssh)
        for k, v in taken.items():  # only what the inventory did not write itself
            if k != "address":
                setattr(ssh, k, v)
        if not (defaults.get("ssh").has("connect_timeout") or hn.get("ssh").has("connect_timeout")):
            ssh.connect_timeout = timeouts.connect  # timeouts.connect applies unless ssh.connect_timeout says otherwise
        ssh.key_file = _expand(ssh.key_file, inv_dir)
        ssh.known_hosts = _expand(ssh.known_hosts, inv_dir) or ssh.known_hosts
        declared = hn.get("declare").value if hn.has("declare") else {}
        if declared is not None and not isinstance(declared, dict):
            raise hn.get("declare").error("expected a mapping of declarations (e.g. compensating_controls)")
        aliases = []
        for an in hn.get("addresses").seq():  # other addresses the host owns: each an IP inside scope
            a = an.req_str()
            try:
                ipaddress.ip_address(a)
                scope.check_address(a, f"host {name} alias")
            except ScopeError as e:
                raise an.error(str(e)) from None
            except ValueError:
                raise an.error(f"not an IP address: {a!r}") from None
            aliases.append(str(ipaddress.ip_address(a)))
        hosts.append(Host(
            name=name, address=address, transport=transport,
            roles=hn.get("roles").str_list(), zone=hn.get("zone").str(),
            ssh=ssh, become=hn.get("become").bool(ssh.become),
            declared=_plain(declared or {}), line=hn.line, addresses=aliases,
            public=hn.get("public").bool() if hn.has("public") else None,
            collect=hn.get("collect").bool(True),
            ssh_config=sshconfig_record(ssh_cfg_path, taken) if taken else {},
        ))
        jump_nodes[name] = hn.get("ssh").get("jump") if hn.get("ssh").has("jump") else defaults.get("ssh").get("jump")
        if "jump" in taken:  # errors then point at the host and say where the hop names came from
            jump_nodes[name] = Node(hn.path, hn.value, f"{hn.key}.ssh.jump (ProxyJump in {ssh_cfg_path})", hn.line)
    jump_hosts = _routes(hosts, jump_nodes)
    hosts = [h for h in hosts if h.collect]

    networks: list[Network] = []
    net_names: dict[str, tuple[str, Optional[int]]] = {}
    for nn in root.get("networks").seq():
        nn.mapping({"name", "cidr", "zone", "vantage"}, required=("name", "cidr"))
        net_name = check_name(nn.get("name"), "network", net_names)
        cidr = nn.get("cidr").req_str()
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise nn.get("cidr").error(f"not an IP network: {cidr!r}") from None
        try:
            scope.check_network(cidr, f"network {net_name}")
        except ScopeError as e:
            raise nn.get("cidr").error(str(e)) from None
        networks.append(Network(net_name, cidr, nn.get("zone").str(), _zone(nn.get("vantage"))))

    tls: list[TlsEndpoint] = []
    for tn in root.get("tls").seq():
        tn.mapping({"host", "port", "name", "server_name", "external_institution", "zone", "vantage"},
                   required=("host",))
        host = tn.get("host").req_str()
        try:
            scope.check_address(_address(tn.get("host"), host), "tls endpoint")
        except ScopeError as e:
            raise tn.get("host").error(str(e)) from None
        tls.append(TlsEndpoint(host, tn.get("port").int(443, 1, 65535) or 443, tn.get("name").str(),
                               tn.get("server_name").str(), tn.get("external_institution").bool(),
                               tn.get("zone").str(), _zone(tn.get("vantage"))))

    urls: list[str] = []
    url_zones: dict[str, str] = {}
    for entry in root.get("web").seq():
        un = entry
        if isinstance(entry.value, dict):  # {url, zone, vantage}: which zone's worker checks it
            entry.mapping({"url", "zone", "vantage"}, required=("url",))
            un = entry.get("url")
            where = _zone(entry.get("vantage")) or entry.get("zone").str()
            if where:
                url_zones[un.req_str()] = where
        u = un.req_str()
        m = re.match(r"^https?://(\[[^\]]+\]|[^/:]+)", u)
        if not m:
            raise un.error(f"not an http(s) URL: {u!r}")
        try:
            scope.check_address(_address(un, m.group(1).strip("[]")), "web URL")
        except ScopeError as e:
            raise un.error(str(e)) from None
        urls.append(u)

    policy = root.get("policy")
    if policy.value is not None:
        policy.mapping({"params", "zones", "roles", "hosts", "set_by"})
    waivers = root.get("waivers")
    nmap = root.get("nmap")
    if nmap.value is not None:
        _nmap_options(nmap)
    tls_opts = root.get("tls_options")
    if tls_opts.value is not None:
        tls_opts.mapping({"ca_file", "network_timeout", "robot", "http_headers", "deadline"})
        _limits(tls_opts, ("network_timeout", "deadline"))
    web_opts = _web_options(root.get("web_options"), inv_dir)
    org = root.get("organisation").str()
    decl = root.get("declare")
    if decl.value is not None and not isinstance(decl.value, dict):
        raise decl.error("expected a mapping of organisation-wide declarations (e.g. no_public_servers)")
    return Inventory(
        path=path, organisation=org, scope=scope, hosts=hosts, networks=networks, tls=tls, urls=urls,
        timeouts=timeouts, policy=_policy_with_lines(policy),
        waivers=[_with_line(w) for w in waivers.seq()], nmap=_plain(nmap.value or {}),
        declared=_plain(decl.value or {}),
        tls_options={k: (_expand(v, inv_dir) if k == "ca_file" else v) for k, v in _plain(tls_opts.value or {}).items()},
        web_options=web_opts, jump_hosts=jump_hosts, url_zones=url_zones,
        broker=_broker(root.get("broker")), workers=_workers(root.get("workers")),
    )


def _zone(node: Node) -> Optional[str]:
    """A zone or vantage name: it names a work queue (``ea.zone.<name>``), so the host-name rule applies."""
    if node.value is None:
        return None
    name = node.req_str()
    if not _NAME.fullmatch(name):
        raise node.error(f"invalid zone name {name!r}: {_NAME_RULE.replace('a file name in the bundle', 'a queue name')}")
    return name


def _broker(node: Node) -> Optional[Broker]:
    if node.value is None:
        return None
    node.mapping({"url_env", "tls", "max_result_bytes"})
    env = node.get("url_env").str("EVIDENCE_AGENT_BROKER") or "EVIDENCE_AGENT_BROKER"
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env):
        raise node.get("url_env").error(f"url_env names an environment variable (the URL holds the password): {env!r}")
    tls: dict[str, str] = {}
    if node.has("tls"):
        t = node.get("tls").mapping({"ca_file", "cert_file", "key_file"})
        inv_dir = os.path.dirname(os.path.abspath(node.path))
        tls = {k: _expand(t.get(k).req_str(), inv_dir) or "" for k in ("ca_file", "cert_file", "key_file") if t.has(k)}
    cap = node.get("max_result_bytes").int(32 * 1024 * 1024, 1024, 1024 ** 3) or 32 * 1024 * 1024
    return Broker(url_env=env, tls=tls, max_result_bytes=cap, line=node.line)


def _workers(node: Node) -> dict[str, list[str]]:
    """zone → the worker public keys whose results are accepted for it. Checked here (a key that does not
    parse is a load error naming its line), so a typo never silently refuses a whole zone at run time."""
    if node.value is None:
        return {}
    from collectors import signing

    node.mapping()
    out: dict[str, list[str]] = {}
    for zone, keys in node.items():
        _zone(Node(node.path, zone, f"{node.key}.{zone}" if node.key else zone, keys.line))
        lst = []
        for kn in keys.seq():
            line = kn.req_str().strip()
            try:
                signing.load_public(line)
            except Exception as e:
                raise kn.error(f"not an OpenSSH ssh-ed25519 public key line: {e}") from None
            lst.append(line)
        out[zone] = lst
    return out


def sshconfig_record(path: Optional[str], taken: dict[str, Any]) -> dict[str, Any]:
    from .sshconfig import record

    return record(path, taken)


def _routes(hosts: list[Host], nodes: dict[str, Node]) -> dict[str, Host]:
    """Resolve every ``ssh.jump`` into the full chain of hops (``Host.route``), as OpenSSH does for ``-J a,b``: the
    first hop is reached by its own jump list, the others in the order written. Each hop must be an ssh host of
    this inventory (so its address was checked against scope.allow like any target); a loop is refused."""
    by_name = {h.name: h for h in hosts}
    done: dict[str, tuple[str, ...]] = {}

    def chain(h: Host, seen: tuple[str, ...]) -> tuple[str, ...]:
        if h.name in done:
            return done[h.name]
        node = nodes[h.name]
        hops = h.ssh.jump
        if hops and h.transport != "ssh":
            raise node.error("jump hosts apply to ssh hosts only")
        for hop in hops:
            target = by_name.get(hop)
            if target is None:
                raise node.error(f"jump host {hop!r} is not a host of this inventory (add it, with collect: false "
                                 "if it is only a hop)")
            if target.transport != "ssh":
                raise node.error(f"jump host {hop!r} is not an ssh host")
            if hop == h.name or hop in seen:
                raise node.error(f"jump hosts form a loop: {' > '.join(seen + (h.name, hop))}")
        r: tuple[str, ...] = ()
        if hops:
            r = chain(by_name[hops[0]], seen + (h.name,)) + tuple(hops)
            if len(set(r)) != len(r) or h.name in r:
                raise node.error(f"jump hosts form a loop: {' > '.join(r + (h.name,))}")
        done[h.name] = r
        return r

    used: dict[str, Host] = {}
    for h in hosts:
        h.route = chain(h, ())
        for hop in h.route:
            used[hop] = by_name[hop]
    return used


#: seconds (web and tls limits): positive, finite, and below a day (a typo of minutes for seconds shows up here)
_MAX_SECONDS = 86400.0
_WEB_SECONDS = ("connect_timeout", "read_timeout", "request_timeout", "url_timeout", "deadline")


def _limits(node: Node, keys: tuple[str, ...]) -> dict[str, float]:
    """Validate time limits of an options mapping; errors name the file, the line and the key."""
    import math

    out: dict[str, float] = {}
    for k in keys:
        if not node.has(k):
            continue
        n = node.get(k)
        v = n.value
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise n.error(f"must be a positive, finite number of seconds (got {v!r})")
        if v > _MAX_SECONDS:
            raise n.error(f"{v} seconds is more than a day; limits are in seconds")
        out[k] = float(v)
    return out


def _web_options(node: Node, inv_dir: str) -> dict[str, Any]:
    """``web_options``: the HTTP checks' limits (see probes.net.web.WebOptions and README)."""
    if node.value is None:
        return {}
    node.mapping(set(_WEB_SECONDS) | {"max_body_bytes", "tls_verify"})
    out: dict[str, Any] = dict(_limits(node, _WEB_SECONDS))
    if node.has("max_body_bytes"):
        out["max_body_bytes"] = node.get("max_body_bytes").int(lo=1024, hi=64 * 1024 * 1024)
    if node.has("tls_verify"):
        v = node.get("tls_verify").req_str()
        out["tls_verify"] = v if v in ("system", "disabled", "off") else _expand(v, inv_dir)
    return out


_NMAP_KEYS = {"ports", "top_ports", "udp_ports", "service_detection", "version_intensity", "timing", "max_retries",
              "host_timeout", "min_rate", "max_rate", "skip_discovery", "scan_type", "overall_timeout"}


def _nmap_options(node: Node) -> None:
    """Validate nmap settings with the probe's own rules, so a bad value fails before any scan."""
    node.mapping(_NMAP_KEYS)
    from probes.net.nmap_scan import NmapOptions

    if node.has("overall_timeout"):
        node.get("overall_timeout").num(lo=1, hi=DAY)
    settings = {k: v for k, v in _plain(node.value).items() if k != "overall_timeout"}
    try:
        NmapOptions(**settings).validate()
    except (TypeError, ValueError) as e:
        key = next((k for k in settings if k in str(e)), "")
        raise node.error(str(e), f"{node.key}.{key}" if key else node.key,
                         node.value.key_lines.get(key) if hasattr(node.value, "key_lines") else None) from None


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


def _policy_with_lines(policy: Node) -> dict[str, Any]:
    """The policy overrides plus ``__source__``: {"params.KEY" or "roles.R.params.KEY": "file:line"}, so an
    override of the wrong type is refused naming where it was written (policies.engine.check_param_types)."""
    d = _plain(policy.value or {})
    lines: dict[str, str] = {}

    def layer(n: Node, prefix: str) -> None:
        if isinstance(n.value, dict):
            for k, v in n.items():
                lines[prefix + k] = f"{v.path}:{v.line}"

    if isinstance(policy.value, dict):
        layer(policy.get("params"), "params.")
        for scope in ("zones", "roles", "hosts"):
            if isinstance(policy.get(scope).value, dict):
                for name, sn in policy.get(scope).items():
                    layer(sn.get("params"), f"{scope}.{name}.params.")
    if lines:
        d["__source__"] = lines
    return d


def _with_line(n: Node) -> dict[str, Any]:
    d = _plain(n.mapping().value)
    d["__source__"] = f"{n.path}:{n.line}"
    return d

"""The facts' typed contract: one frozen pydantic model per fact's ``data``.

Why: a probe's output, its docstring and the YAML rules that read it name the same fields; these models are
the one place those names live. The tests validate every parser's output on every recorded host against its
model, ``scripts/gen_facts_schema.py`` publishes them as ``facts.schema.json`` and ``docs/facts.md``, and
:mod:`policies.factpaths` refuses a rule that reads a field no model has.

Conventions: ``null`` (None) always means *not observed* (not read, not readable, not applicable), never
"no"/"zero"; a list is empty when the probe looked and found nothing. Units are in the field descriptions.
Models describe the data of a COLLECTED or PARTIAL fact; a NOT_COLLECTED fact's data is empty.
"""
from __future__ import annotations

from typing import Optional, Union

from pydantic import BaseModel, ConfigDict, Field


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def d(text: str, **kw):  # noqa: ANN201 - a pydantic FieldInfo
    """A required field with its description (required: the parser always emits the key)."""
    return Field(description=text, **kw)


def opt(text: str):  # noqa: ANN201
    """A field the parser emits only in some cases (absent = not applicable)."""
    return Field(default=None, description=text)


Int = Optional[int]
Str = Optional[str]
Bool = Optional[bool]
Num = Optional[float]


# ---------------------------------------------------------------- identity
class IdentityOs(_Data):
    id: Str = d("os-release ID")
    version_id: Str = d("os-release VERSION_ID")
    pretty_name: Str = d("os-release PRETTY_NAME")
    id_like: list[str] = d("os-release ID_LIKE, split on spaces")
    version_codename: Str = d("os-release VERSION_CODENAME")


class IdentityInterface(_Data):
    name: str = d("interface name")
    mac: Str = d("link-layer (MAC) address")
    addresses: list[str] = d("addresses with prefix length (CIDR)")


class Identity(_Data):
    """Host identity for facts/<host>.json: which machine the evidence came from."""
    hostname: str = d("the target's hostname (first line of `hostname`, at most 255 characters)")
    os: Optional[IdentityOs] = d("/etc/os-release (null: not read)")
    kernel: Str = d("kernel release (uname -r)")
    machine: Str = d("hardware name (uname -m)")
    interfaces: Optional[list[IdentityInterface]] = d("interfaces with MACs and addresses (null: not read)")


# ---------------------------------------------------------------- session_timeout
class TmoutEffective(_Data):
    value: Int = d("effective TMOUT, seconds")
    file: str = d("file of the effective assignment")
    line: int = d("line of the effective assignment")
    readonly: bool = d("made readonly after being set (a later file cannot override it)")
    exported: bool = d("exported somewhere")
    conditional: bool = d("the assignment is indented (inside an if/case block): it may not apply to every login")


class TmoutAssignment(_Data):
    file: str = d("file read by a login shell")
    line: int = d("line number")
    raw: str = d("the line as written (at most 200 characters)")
    value: Int = d("assigned value, seconds (null: not a literal number, or no assignment)")
    readonly: bool = d("the line makes TMOUT readonly")
    exported: bool = d("the line exports TMOUT")
    conditional: bool = d("the line is indented (inside an if/case block)")
    ignored_reason: Str = opt("why this assignment does not count (not a literal number, already readonly)")


class SshdAlive(_Data):
    source: str = d("'sshd -T' or 'config'")
    client_alive_interval: Int = d("ClientAliveInterval, seconds (a dead-peer keepalive, not an idle timeout)")
    client_alive_count_max: Int = d("ClientAliveCountMax")


class SessionTimeout(_Data):
    """Session idle timeout (13.1.1): shell TMOUT, logind StopIdleSessionSec, sshd ClientAlive*."""
    tmout: Optional[TmoutEffective] = d("effective TMOUT assignment (null: none)")
    tmout_assignments: list[TmoutAssignment] = d("every TMOUT line in the files a login shell sources, in order")
    logind_stop_idle_seconds: Int = d("systemd-logind StopIdleSessionSec, seconds (null: not set)")
    idle_timeout_seconds: Int = d("the enforced idle timeout, seconds: smallest >0 of TMOUT and logind")
    idle_timeout_source: Str = d("'TMOUT' or 'logind': where idle_timeout_seconds comes from")
    sshd: Optional[SshdAlive] = d("sshd keepalive settings (null: not read)")
    sshd_problem: Str = d("why sshd settings were not read")


# ---------------------------------------------------------------- os
class UpdateSource(_Data):
    kind: str = d("'apt' or 'rpm'")
    source: str = d("suite or repository id")
    file: str = d("configuration file")
    enabled: bool = d("the source is enabled")
    security: bool = d("a vendor security channel")
    extended: bool = d("an extended-support channel (ESM, ELS)")


class Os(_Data):
    """Operating system, kernel, boot time and end-of-life status (14.6.1). Fact name ``os``."""
    id: Str = d("os-release ID ('debian', 'ubuntu', 'rhel', 'rocky', 'amzn'...)")
    version_id: Str = d("os-release VERSION_ID ('12', '22.04', '9.4')")
    version: Str = d("finer version (/etc/debian_version '12.7', redhat-release)")
    pretty_name: Str = d("os-release PRETTY_NAME")
    id_like: list[str] = d("os-release ID_LIKE")
    codename: Str = d("release codename")
    family: str = d("'debian', 'rhel', 'amazon', 'suse', 'alpine' or 'other'")
    kernel: Str = d("uname -r")
    machine: Str = d("uname -m")
    boot_time: Str = d("boot time, ISO-8601 UTC")
    uptime_seconds: Int = d("uptime, seconds")
    now: Str = d("the target's clock when collected, ISO-8601 UTC")
    eol_date: Str = d("end of regular security support, ISO date")
    eol: Bool = d("now is past eol_date (null: release not in the EOL table)")
    extended_support_end: Str = d("end of the extended programme (Debian LTS, Ubuntu ESM, RHEL ELS), ISO date")
    extended_support_name: Str = d("name of the extended programme")
    extended_eol: Bool = d("now is past extended_support_end (null: there is none)")
    extended_needs_enrolment: Bool = d("the extended programme needs enrolment (ESM, ELS: true; Debian LTS: false)")
    support_phase: Str = d("'regular', 'extended' or 'ended' (null: unknown)")
    eol_table_date: str = d("when the EOL table was last reviewed, ISO date")
    eol_source: Str = d("vendor page the release's dates come from")
    eol_recorded: Str = d("when the release's entry was recorded, ISO date")
    eol_certain: Bool = d("false: the table says a date is unsure (see eol_note)")
    eol_note: Str = d("note on an unsure date")
    update_sources: list[UpdateSource] = d("configured package sources (at most 100)")
    security_source: Bool = d("a vendor security channel is configured (null: not read / not modelled)")
    security_sources: list[str] = d("the security channels found")
    extended_enrolled: Bool = d("the extended channel is configured")
    extended_evidence: Str = d("what shows the enrolment")
    container: Str = d("container type ('docker', 'podman', 'lxc'...; null: none detected)")
    container_evidence: list[str] = d("what shows the container")
    own_kernel: Bool = d("false in a container (shares the host's kernel); null: not checked")
    psutil_fields: list[str] = d("fields replaced by psutil readings (local transport only)")


# ---------------------------------------------------------------- patch
class PendingPackage(_Data):
    name: str = d("package name")
    from_version: Str = d("installed version")
    to_version: str = d("candidate version")
    security: Bool = d("the candidate is a security update (null: not known)")
    origin: Str = d("repository/suite of the candidate")


class RecentUpdate(_Data):
    time: str = d("when, ISO-8601 UTC")
    action: str = d("install, upgrade, ...")
    package: str = d("package name")
    version: Str = d("version installed")


class RebootSignals(_Data):
    flag_file: Bool = d("/var/run/reboot-required exists")
    needs_restarting: Bool = d("needs-restarting -r says a reboot is needed")
    newer_kernel_installed: Bool = d("a newer kernel than the running one is installed")


class Patch(_Data):
    """Patch level (14.6.1): pending and security updates, last update, reboot needed, key versions."""
    manager: Str = d("'apt', 'dnf', 'yum', 'zypper' or 'apk'")
    index_updated: Str = d("newest package-index file, ISO-8601 UTC")
    index_age_days: Int = d("age of the package index, days (a stale index undercounts pending updates)")
    security_index: Bool = d("apt: an index of a security suite is present (null: not apt / not read)")
    pending_total: Int = d("packages with a newer version in the cached index")
    pending_security: Int = d("of which security updates (null: not counted for this manager)")
    security_advisories: Int = d("dnf/yum: distinct security advisories")
    pending: list[PendingPackage] = d("pending updates (at most 500)")
    pending_truncated: bool = d("the pending list was cut at its cap")
    last_update: Str = d("newest package install/upgrade, ISO-8601 UTC")
    days_since_update: Int = d("days since last_update")
    last_update_source: Str = d("'dpkg.log', 'rpm installtime', 'dpkg status' or 'apk db'")
    recent_updates: list[RecentUpdate] = d("recent package changes, newest last (at most 30)")
    reboot_required: Bool = d("true if any signal says so; false only if a check ran and said no")
    reboot_signals: RebootSignals = d("the individual reboot signals")
    running_kernel: Str = d("running kernel release")
    newest_installed_kernel: Str = d("newest installed kernel release")
    packages: dict[str, str] = d("key packages installed: name → version (probes/data/key_packages.yaml)")
    components: dict[str, str] = d("component (openssl, openssh, nginx...) → version")


# ---------------------------------------------------------------- antivirus
class AvService(_Data):
    unit: str = d("service unit name")
    enabled: Bool = d("enabled at boot")
    active: Bool = d("running now")


class AvProduct(_Data):
    name: str = d("product name")
    vendor: str = d("vendor")
    verified: bool = d("the table's names were checked against the product")
    installed: bool = d("an install path, service or process was found")
    running: Bool = d("one of its processes runs")
    realtime: Bool = d("real-time/on-access scanning visible")
    signature_date: Str = d("signature database date, ISO-8601 UTC")
    signature_age_days: Int = d("signature age, days")
    scheduled_scan: Bool = d("a crontab/timer runs its scanner (null: schedule not visible on the host)")
    services: list[AvService] = d("its service units")
    matched: list[str] = d("what recognised it ('process clamd', 'path /etc/clamav'...)")


class Antivirus(_Data):
    """Anti-malware (14.1.1): engine, running, real-time scanning, signature age, scheduled scans."""
    products: list[AvProduct] = d("recognised products (probes/data/antivirus.yaml)")
    any_installed: Bool = d("some product is installed")
    any_running: Bool = d("some product runs")
    any_realtime: Bool = d("some product scans in real time")
    newest_signature_age_days: Int = d("age of the newest signature database, days")
    schedule_entries: list[str] = d("crontab/timer lines naming a scanner (file:line)")


# ---------------------------------------------------------------- listening
class Socket(_Data):
    proto: str = d("'tcp' or 'udp'")
    family: str = d("'ipv4', 'ipv6' or 'any'")
    address: str = d("bound address")
    port: int = d("port")
    interface: Str = d("bound interface (address%iface)")
    process: Str = d("process name (null: not visible without root)")
    pid: Int = d("process id")
    loopback: bool = d("bound to loopback only")
    wildcard: bool = d("bound to every address")


class InetdService(_Data):
    service: str = d("service name")
    source: str = d("inetd.conf / xinetd.d file")
    enabled: bool = d("the entry is enabled")


class Snmp(_Data):
    configured: bool = d("snmpd configuration present")
    default_community: Bool = d("public/private community configured (null: configuration not readable)")
    directives: list[str] = d("community/access directives (or why they are unreadable)")


class DatabaseListener(_Data):
    engine: str = d("database engine")
    port: int = d("port")
    address: str = d("bound address")
    process: Str = d("process name")
    loopback: bool = d("bound to loopback only")
    matched_by: str = d("'process' or 'port'")


class WebListener(_Data):
    server: str = d("web server ('other': a web port, unknown program)")
    port: int = d("port")
    address: str = d("bound address")
    process: Str = d("process name")
    loopback: bool = d("bound to loopback only")
    matched_by: str = d("'process' or 'port'")


class Listening(_Data):
    """Listening services (14.3.1, 14.4.1, 14.5.1): every listening TCP/UDP socket and what it is. Which
    services are insecure is a rule parameter (`insecure_services`), matched with
    `matching_services(listening.sockets, params.insecure_services)`."""
    tool: Str = d("'ss', 'netstat', 'proc' or 'psutil'")
    sockets: list[Socket] = d("every listening socket")
    processes_visible: Bool = d("false: not root, other users' processes unknown")
    tcp_ports: list[int] = d("listening TCP ports (any address)")
    udp_ports: list[int] = d("listening UDP ports")
    exposed_tcp_ports: list[int] = d("TCP ports bound beyond loopback")
    exposed_udp_ports: list[int] = d("UDP ports bound beyond loopback")
    inetd_services: Optional[list[InetdService]] = d("entries of inetd.conf / xinetd.d (null: not read)")
    snmp: Optional[Snmp] = d("snmpd configuration (null: not read)")
    databases: list[DatabaseListener] = d("database engines listening")
    web_servers: list[WebListener] = d("web servers listening")
    web_role: bool = d("a web server listens beyond loopback")
    db_on_web_host: bool = d("a database engine listens on a web-role host")


# ---------------------------------------------------------------- interfaces
class Address(_Data):
    address: str = d("address")
    prefixlen: Int = d("prefix length, bits")
    family: str = d("'ipv4' or 'ipv6'")
    category: str = d("'loopback', 'link_local', 'private', 'shared', 'documentation', 'benchmark', "
                      "'multicast', 'public' or 'reserved'")
    private: bool = d("in 10/8, 172.16/12, 192.168/16 or fd00::/8")


class Interface(_Data):
    name: str = d("interface name")
    mac: Str = d("MAC address")
    up: Bool = d("link is up")
    loopback: bool = d("a loopback interface")
    wireless: Bool = d("a wireless interface")
    addresses: list[Address] = d("its addresses")


class NonPrivateAddress(_Data):
    address: str = d("address")
    interface: str = d("interface")
    category: str = d("category (see Address.category)")


class Route(_Data):
    family: str = d("'ipv4' or 'ipv6'")
    gateway: Str = d("gateway address")
    interface: Str = d("outgoing interface")


class Interfaces(_Data):
    """Interfaces and addresses (15.2.1, 15.3.1): private or not, default route, wireless."""
    tool: Str = d("'ip', 'ifconfig' or 'psutil'")
    interfaces: list[Interface] = d("interfaces")
    private_addresses: list[str] = d("addresses in 10/8, 172.16/12, 192.168/16, fd00::/8")
    public_addresses: list[str] = d("globally routable addresses")
    other_addresses: list[str] = d("shared CGNAT 100.64/10, documentation, benchmark, other reserved")
    global_addresses: list[str] = d("every address of global scope (not loopback, link-local, multicast)")
    non_private_addresses: list[NonPrivateAddress] = d("global-scope addresses outside the private ranges")
    all_private: Bool = d("every global-scope address is private (null: none seen)")
    default_routes: list[Route] = d("default routes")
    wireless: list[str] = d("wireless interface names")
    psutil_fields: list[str] = d("fields replaced by psutil readings (local transport only)")


# ---------------------------------------------------------------- firewall
class NftChain(_Data):
    table: str = d("nftables table")
    chain: str = d("chain name")
    policy: Str = d("chain policy")
    rules: int = d("rules in the chain")


class Nftables(_Data):
    available: bool = d("nft is installed")
    readable: Bool = d("the ruleset could be read (false: needs root)")
    tables: list[str] = d("tables")
    rule_count: Int = d("rules in all tables")
    input_chains: list[NftChain] = d("chains hooked on input")


class IptFamily(_Data):
    policies: dict[str, str] = d("built-in chain → policy")
    rule_count: int = d("rules")


class Iptables(_Data):
    available: bool = d("iptables is installed")
    readable: Bool = d("rules could be read (false: needs root)")
    variant: Str = d("'nf_tables' or 'legacy'")
    ipv4: Optional[IptFamily] = d("IPv4 tables (null: not read)")
    ipv6: Optional[IptFamily] = d("IPv6 tables (null: not read)")


class FirewalldZone(_Data):
    name: str = d("zone")
    target: Str = d("zone target")
    interfaces: list[str] = d("interfaces in the zone")
    sources: list[str] = d("sources in the zone")
    services: list[str] = d("allowed services")
    ports: list[str] = d("allowed ports")


class Firewalld(_Data):
    installed: bool = d("firewalld is installed")
    running: Bool = d("firewalld runs")
    default_zone: Str = d("default zone")
    zones: list[FirewalldZone] = d("active zones")


class Ufw(_Data):
    installed: bool = d("ufw is installed")
    active: Bool = d("ufw is active")
    default_incoming: Str = d("default incoming policy")
    default_outgoing: Str = d("default outgoing policy")
    rules: Int = d("rule count")
    enabled_in_config: Bool = d("ENABLED=yes in /etc/ufw/ufw.conf")


class UnitState(_Data):
    enabled: Bool = d("enabled at boot")
    active: Bool = d("running now")


class Firewall(_Data):
    """Host firewall (14.4.1): nftables/iptables/firewalld/ufw — active, default policies, rules."""
    active: Bool = d("some backend filters inbound traffic")
    frontend: Str = d("'firewalld' or 'ufw' when one is active")
    default_input_policy: Str = d("'drop', 'reject' or 'accept'")
    rule_count: Int = d("rules in all backends (nftables view on iptables-nft systems)")
    nftables: Nftables = d("nftables")
    iptables: Iptables = d("iptables")
    firewalld: Firewalld = d("firewalld")
    ufw: Ufw = d("ufw")
    services: dict[str, UnitState] = d("firewall service unit → state")


# ---------------------------------------------------------------- remote_admin
class Ssh(_Data):
    installed: Bool = d("sshd is installed")
    running: Bool = d("sshd runs")
    source: Str = d("'sshd -T' or 'config'")
    problem: Str = d("why sshd settings were not read")
    permit_root_login: Str = d("yes|no|prohibit-password|without-password|forced-commands-only")
    root_password_login: Bool = d("PermitRootLogin yes")
    password_authentication: Bool = d("PasswordAuthentication")
    kbd_interactive_authentication: Bool = d("KbdInteractiveAuthentication")
    pubkey_authentication: Bool = d("PubkeyAuthentication")
    permit_empty_passwords: Bool = d("PermitEmptyPasswords")
    use_pam: Bool = d("UsePAM")
    authentication_methods: Str = d("AuthenticationMethods ('any' = single factor)")
    mfa: Bool = d("every AuthenticationMethods list has 2+ methods, or an OTP PAM module")
    mfa_methods: list[str] = d("what makes it multi-factor")
    ports: list[int] = d("Port")
    listen_addresses: list[str] = d("ListenAddress")
    ciphers: list[str] = d("Ciphers offered")
    macs: list[str] = d("MACs offered")
    kex_algorithms: list[str] = d("KexAlgorithms offered")
    host_key_algorithms: list[str] = d("HostKeyAlgorithms offered")
    x11_forwarding: Bool = d("X11Forwarding")
    max_auth_tries: Int = d("MaxAuthTries")
    login_grace_time: Str = d("LoginGraceTime")
    allow_users: list[str] = d("AllowUsers")
    allow_groups: list[str] = d("AllowGroups")
    deny_users: list[str] = d("DenyUsers")
    deny_groups: list[str] = d("DenyGroups")
    banner: Str = d("Banner")
    unset_keys: list[str] = d("keys absent from the config files (config source only)")


class RemoteService(_Data):
    service: str = d("'ssh', 'telnet', 'rlogin', 'rsh', 'rexec', 'vnc' or 'xrdp'")
    installed: Bool = d("binary or unit present")
    running: Bool = d("a process runs")
    enabled: Bool = d("enabled at boot")
    listening: Bool = d("its port listens")
    ports: list[int] = d("its listening ports")
    via_inetd: Bool = d("started from inetd/xinetd")


class RemoteAdmin(_Data):
    """Remote administration (14.2.1, 13.1.1): sshd's effective settings and other remote-login services."""
    ssh: Ssh = d("sshd settings")
    services: list[RemoteService] = d("remote-login services")


# ---------------------------------------------------------------- accounts
class Account(_Data):
    name: str = d("login name")
    uid: int = d("user id")
    gid: int = d("primary group id")
    gecos: str = d("GECOS field")
    home: str = d("home directory")
    shell: str = d("login shell as written (empty means /bin/sh)")
    login_shell: bool = d("shell is not nologin/false")
    system: bool = d("0 < uid < UID_MIN")
    password_state: str = d("'empty', 'locked', 'set', 'no_password_field', 'needs_privilege' or 'unknown'")
    hash_algo: Str = d("sha512|sha256|yescrypt|gost-yescrypt|bcrypt|md5|des|bsdi|scrypt|sunmd5|unknown")
    password_in_passwd: bool = d("a hash or empty field in /etc/passwd itself")
    password_last_change: Str = d("last password change, ISO date")
    password_age_days: Int = d("days since the last password change")
    must_change_password: Bool = d("the password must be changed at next login")
    password_max_days: Int = d("maximum password age, days")
    password_never_expires: Bool = d("no maximum password age")
    password_expired: Bool = d("the password is past its maximum age")
    inactive_days: Int = d("days after password expiry until the account is disabled")
    expires: Str = d("account expiry, ISO date")
    account_never_expires: Bool = d("no expiry, or 9999-12-31 and later")
    account_expired: Bool = d("the account is past its expiry")
    last_login: Str = d("last login, ISO-8601 UTC")
    last_login_days: Int = d("days since the last login")
    last_login_from: Str = d("where the last login came from")
    never_logged_in: Bool = d("no login recorded")
    generic_name: bool = d("a shared/generic account name")
    admin: bool = d("uid 0, admin group member or sudoers entry")


class DuplicateUid(_Data):
    uid: int = d("user id")
    names: list[str] = d("accounts sharing it")


class Sudoer(_Data):
    principal: str = d("user or %group")
    nopasswd: bool = d("NOPASSWD")
    all_commands: bool = d("may run ALL commands")


class AccountPolicy(_Data):
    pass_max_days: Int = d("login.defs PASS_MAX_DAYS, days")
    pass_min_days: Int = d("login.defs PASS_MIN_DAYS, days")
    pass_warn_age: Int = d("login.defs PASS_WARN_AGE, days")
    pass_min_len: Int = d("login.defs PASS_MIN_LEN")
    uid_min: Int = d("login.defs UID_MIN")
    uid_max: Int = d("login.defs UID_MAX")
    inactive_days: Int = d("useradd INACTIVE, days")
    default_expire: Str = d("useradd EXPIRE")
    encrypt_method: Str = d("login.defs ENCRYPT_METHOD")


class Accounts(_Data):
    """Local accounts (13.1.1, 5.3.1): who can log in, how, and since when. No hash leaves the target."""
    accounts: list[Account] = d("every account of /etc/passwd")
    login_accounts: list[str] = d("accounts with a login shell")
    uid0_non_root: list[str] = d("uid 0 accounts other than root")
    empty_password: list[str] = d("accounts with an empty password")
    unlocked_login_accounts: list[str] = d("login shell and a usable (set or empty) password")
    no_expiry: list[str] = d("login accounts that never expire")
    password_never_expires: list[str] = d("login accounts with no password maximum age")
    never_logged_in: list[str] = d("login accounts never logged in")
    generic_accounts: list[str] = d("login accounts with shared/generic names")
    duplicate_uids: list[DuplicateUid] = d("uids shared by several accounts")
    admin_groups: dict[str, list[str]] = d("admin group → members")
    sudoers: Optional[list[Sudoer]] = d("sudoers entries (null: not readable)")
    policy: AccountPolicy = d("login.defs/useradd defaults")
    shadow_readable: Bool = d("/etc/shadow could be read (null: not known)")
    last_login_source: Str = d("'lastlog' or 'lastlog2'")
    now: Str = d("the target's clock, ISO-8601 UTC")


# ---------------------------------------------------------------- password_policy
class PwHash(_Data):
    encrypt_method: Str = d("login.defs ENCRYPT_METHOD")
    pam_unix_method: Str = d("method on pam_unix's password line (sha512|yescrypt|md5...)")
    sha_crypt_rounds: Int = d("SHA_CRYPT_*_ROUNDS")
    yescrypt_cost_factor: Int = d("YESCRYPT_COST_FACTOR")
    algorithms: Optional[dict[str, int]] = d("hashes in /etc/shadow by algorithm → count (null: needs privilege)")
    weak_hash_accounts: Optional[list[str]] = d("accounts with md5/des/bsdi/sunmd5 hashes (null: needs privilege)")


class PwQuality(_Data):
    module: Str = d("'pam_pwquality', 'pam_cracklib' or 'pam_passwdqc'")
    minlen: Int = d("minimum length, characters")
    dcredit: Int = d("digit credit (negative: required count)")
    ucredit: Int = d("upper-case credit")
    lcredit: Int = d("lower-case credit")
    ocredit: Int = d("other-character credit")
    minclass: Int = d("minimum character classes")
    maxrepeat: Int = d("maximum repeated characters")
    maxclassrepeat: Int = d("maximum consecutive characters of one class")
    difok: Int = d("characters that must differ from the old password")
    retry: Int = d("prompts before failing")
    enforce_for_root: Bool = d("rules apply to root too")
    dictcheck: Int = d("dictionary check (0: off)")


class PwHistory(_Data):
    module: Str = d("'pam_pwhistory' or 'pam_unix'")
    remember: Int = d("old passwords remembered")


class PwLockout(_Data):
    module: Str = d("'pam_faillock', 'pam_tally2' or 'pam_tally'")
    deny: Int = d("failures before lockout")
    unlock_time: Int = d("lockout duration, seconds")
    fail_interval: Int = d("window for counting failures, seconds")
    even_deny_root: Bool = d("root is locked out too")
    root_unlock_time: Int = d("root's lockout duration, seconds")


class PwAging(_Data):
    pass_max_days: Int = d("login.defs PASS_MAX_DAYS, days")
    pass_min_days: Int = d("login.defs PASS_MIN_DAYS, days")
    pass_warn_age: Int = d("login.defs PASS_WARN_AGE, days")


class PasswordPolicy(_Data):
    """Password and lockout policy (13.1.1, 12.1.1). A value left to a compiled-in default is null."""
    hash: PwHash = d("hashing method and hashes in use")
    quality: PwQuality = d("password quality rules")
    history: PwHistory = d("password history")
    lockout: PwLockout = d("failed-login lockout")
    aging: PwAging = d("login.defs defaults for new accounts")
    pam_files: list[str] = d("PAM and module configuration files read")


# ---------------------------------------------------------------- logging_time
class Syslog(_Data):
    daemon: Str = d("'rsyslog', 'syslog-ng' or 'syslogd'")
    running: Bool = d("the daemon runs")
    remote_forwarding: Bool = d("logs are forwarded to a remote host")
    remote_targets: list[str] = d("remote targets")


class Journald(_Data):
    installed: Bool = d("systemd-journald present")
    running: Bool = d("journald runs")
    storage: Str = d("Storage= setting")
    persistent: Bool = d("the journal is kept on disk")
    max_retention_days: Num = d("MaxRetentionSec, days")
    system_max_use: Str = d("SystemMaxUse=")
    oldest_entry: Str = d("oldest journal entry, ISO-8601 UTC")
    span_days: Int = d("days covered by the journal")
    disk_usage: Str = d("journal disk usage")


class LogrotateFile(_Data):
    path: str = d("log file pattern")
    period: Str = d("daily|weekly|monthly|yearly")
    rotate: Int = d("rotations kept")
    maxage: Int = d("maxage, days")
    size_based: bool = d("rotated by size")
    retention_days: Int = d("period × rotate (or maxage), days")
    config: str = d("configuration file")


class Logrotate(_Data):
    installed: Bool = d("logrotate present")
    configured: bool = d("a configuration was read")
    default_period: Str = d("global period")
    default_rotate: Int = d("global rotate count")
    files: list[LogrotateFile] = d("per-file settings")


class ObservedLog(_Data):
    log: str = d("log file")
    files: int = d("rotated files present")
    oldest: str = d("oldest file's time, ISO-8601 UTC")
    span_days: Int = d("days covered on disk")


class Auditd(_Data):
    installed: Bool = d("auditd present")
    running: Bool = d("auditd runs")
    enabled: Bool = d("enabled at boot")
    rules: Int = d("audit rules loaded")
    log_file: Str = d("log_file")
    num_logs: Int = d("num_logs")
    max_log_file_mb: Int = d("max_log_file, MB")
    max_log_file_action: Str = d("max_log_file_action")


class TimeService(_Data):
    running: Bool = d("the service runs")
    enabled: Bool = d("enabled at boot")


class TimeSync(_Data):
    service: Str = d("'chronyd', 'ntpd', 'systemd-timesyncd' or 'openntpd'")
    services: dict[str, TimeService] = d("time service → state")
    synchronized: Bool = d("the clock is synchronised (null also when no time service runs)")
    sync_source: Str = d("'chronyc', 'ntpq' or 'timedatectl'")
    ntp_enabled: Bool = d("timedatectl NTP enabled")
    reference: Str = d("reference server")
    stratum: Int = d("stratum")
    offset_seconds: Num = d("clock offset, seconds")
    servers: list[str] = d("configured time servers")
    timezone: Str = d("time zone")


class LoggingTime(_Data):
    """Logging and time (7.2.1): log daemons, retention, auditd, time synchronisation."""
    syslog: Syslog = d("syslog daemon")
    journald: Journald = d("systemd journal")
    logrotate: Logrotate = d("logrotate")
    syslog_retention_days: Int = d("configured retention of /var/log/syslog or /var/log/messages, days")
    auth_log_retention_days: Int = d("configured retention of /var/log/auth.log or /var/log/secure, days")
    observed: list[ObservedLog] = d("rotated files present on disk")
    auditd: Auditd = d("auditd")
    time: TimeSync = d("time synchronisation")


# ---------------------------------------------------------------- network_scan (run level)
class ScanPort(_Data):
    port: int = d("port")
    proto: str = d("'tcp' or 'udp'")
    state: str = d("nmap state (open, open|filtered)")
    service: Str = d("service name")
    product: Str = d("product")
    version: Str = d("version")
    extrainfo: Str = d("extra information")
    tunnel: Str = d("'ssl' when nmap saw TLS under the service")
    method: Str = d("'probed' or 'table' (name guessed from the port number only)")


class ScanHost(_Data):
    address: str = d("address")
    in_inventory: bool = d("declared in the inventory")
    inventory_host: Str = d("inventory name")
    state: str = d("'up', 'down' or 'unknown' (the scan did not finish)")
    reason: Str = d("nmap's reason (echo-reply, syn-ack, localhost-response, user-set...)")
    live: bool = d("has an open port or answered discovery on a non-loopback network")
    timed_out: bool = d("nmap gave up on it (--host-timeout): its ports are unknown")
    ports: list[ScanPort] = d("open TCP ports, open and open|filtered UDP ports")


class Scan(_Data):
    network: str = d("inventory name of the network")
    cidr: str = d("as scanned")
    zone: Str = d("inventory zone (dmz, internal...)")
    vantage: Str = d("where the scanner stood")
    scan_type: Str = d("'syn' or 'connect'")
    privileged: Bool = d("scanner ran as root")
    started: Str = d("ISO-8601 UTC")
    finished: Str = d("ISO-8601 UTC")
    nmap_seconds: Num = d("wall time of the nmap run, seconds")
    nmap_args: list[str] = d("argv as run")
    nmap_version: Str = d("nmap version")
    ports_scanned: Str = d("'top:1000' or the explicit TCP spec")
    udp_ports: Str = d("UDP spec scanned (null: none)")
    udp_skipped: Str = d("why UDP was asked for but not scanned")
    discovery: Str = d("'ping' or 'skipped (-Pn)'")
    hosts_up: Int = d("hosts nmap reported up")
    hosts: list[ScanHost] = d("live hosts, inventory hosts of the network, abandoned hosts")
    undeclared_hosts: list[str] = d("live, not in the inventory")
    inventory_missing: list[str] = d("in the inventory and this network, not live")
    hosts_timed_out: list[str] = d("hosts nmap abandoned at --host-timeout")
    error: Str = d("set when the scan failed or was cut short")


class NetworkScan(_Data):
    """nmap scans of the declared networks (3.1.1, 14.2.1, 14.3.1, 15.1.1). Fact name ``network_scan``."""
    scans: list[Scan] = d("one scan per declared network")


# ---------------------------------------------------------------- tls (run level)
class EphemeralKey(_Data):
    type: str = d("key type")
    size: int = d("size, bits")


class CipherSuite(_Data):
    name: str = d("IANA/RFC name")
    openssl_name: str = d("OpenSSL name")
    key_size: int = d("symmetric key, bits (0 for NULL)")
    null: bool = d("NULL cipher")
    export: bool = d("export-grade")
    rc4: bool = d("RC4")
    des: bool = d("single DES")
    three_des: bool = Field(alias="3des", description="triple DES")
    cbc: bool = d("CBC mode")
    anonymous: bool = d("no authentication")
    forward_secrecy: bool = d("authenticated (EC)DHE, or any TLS 1.3 suite")
    ephemeral_key: Optional[EphemeralKey] = d("ephemeral key of the exchange")


class Sans(_Data):
    dns: list[str] = d("DNS names")
    ip: list[str] = d("IP addresses")


class CertInChain(_Data):
    subject: str = d("subject")
    issuer: str = d("issuer")
    sans: Sans = d("subject alternative names")
    serial: str = d("serial number")
    sha256: str = d("SHA-256 fingerprint")
    not_before: str = d("ISO-8601 UTC")
    not_after: str = d("ISO-8601 UTC")
    expired: bool = d("past not_after")
    not_yet_valid: bool = d("before not_before")
    days_left: int = d("whole days to not_after (negative once expired)")
    key_type: str = d("public key type")
    key_size: Int = d("public key size, bits")
    curve: Str = d("EC curve")
    signature_algorithm: str = d("signature algorithm")
    signature_hash: Str = d("signature hash")
    self_signed: bool = d("self-signed")


class Certificate(_Data):
    chain: list[CertInChain] = d("as sent by the server, leaf first")
    hostname_match: bool = d("leaf SANs (RFC 6125) match server_name or ip")
    trusted_by_system_store: bool = d("chain validates against the system CA store")
    system_trust_error: Str = d("why not")
    trusted_by_ca_file: Bool = d("chain validates against the internal CA file (null: none given)")
    ca_file_trust_error: Str = d("why not")
    ocsp_stapling: bool = d("the server stapled an OCSP response")
    ocsp_must_staple: bool = d("the certificate requires stapling")
    deployments: int = d("distinct leaf certificates the server sent")


class Hsts(_Data):
    present: bool = d("Strict-Transport-Security sent")
    max_age: Int = d("max-age, seconds")
    include_subdomains: bool = d("includeSubDomains")
    preload: bool = d("preload")


class TlsVulns(_Data):
    heartbleed: Bool = d("vulnerable to Heartbleed")
    ccs_injection: Bool = d("vulnerable to CCS injection")
    robot: Str = d("sslyze RobotScanResultEnum name")
    robot_vulnerable: Bool = d("vulnerable to ROBOT")
    insecure_renegotiation: Bool = d("secure renegotiation NOT supported")
    client_renegotiation_dos: Bool = d("client-initiated renegotiation accepted")
    compression: Bool = d("TLS compression (CRIME)")
    fallback_scsv: Bool = d("TLS_FALLBACK_SCSV supported (true is good)")


class TlsEndpoint(_Data):
    host: str = d("host as declared")
    port: int = d("port")
    ip: str = d("address connected to")
    server_name: Str = d("SNI and the name validated against the certificate")
    starttls: Str = d("smtp, ftp, pop3, imap, ldap, xmpp, xmpp_server, rdp, postgres")
    status: str = d("'assessed', 'cleartext' (a STARTTLS service refused the upgrade) or 'unknown'")
    reason: Str = d("why unknown or cleartext")
    highest_version: Str = d("highest protocol accepted")
    protocols: dict[str, Bool] = d("'SSL 2.0'…'TLS 1.3' → accepted")
    cipher_suites: dict[str, list[CipherSuite]] = d("protocol → accepted suites")
    certificate: Optional[Certificate] = d("certificate (null: none seen)")
    client_cert_requested: Str = d("'none', 'optional' or 'required' (mTLS)")
    hsts: Optional[Hsts] = d("HSTS (HTTPS endpoints only)")
    http_error: Str = d("HTTP request over TLS failed")
    vulnerabilities: TlsVulns = d("known TLS flaws")
    errors: dict[str, str] = d("sslyze scan command → error (its fields are null)")
    evidence: Str = d("label of this endpoint's sslyze JSON")


class Tls(_Data):
    """TLS assessment of endpoints (15.4.1, 12.1.1). Fact name ``tls``."""
    sslyze_version: Str = opt("sslyze version")
    system_ca_file: Str = opt("the store behind trusted_by_system_store")
    ca_file: Str = opt("internal CA file behind trusted_by_ca_file")
    endpoints: list[TlsEndpoint] = d("assessed endpoints")


# ---------------------------------------------------------------- web (run level)
class RedirectHop(_Data):
    url: str = d("URL requested")
    status: int = d("HTTP status")
    location: Str = d("Location header")


class RedirectRefused(_Data):
    location: str = d("Location not followed")
    reason: str = d("why (scope)")


class HttpsRedirect(_Data):
    checked: bool = d("the plain-HTTP twin was tried")
    http_url: Str = d("the plain-HTTP URL tried")
    reachable: Bool = d("plain HTTP answered at all")
    redirects_to_https: Bool = d("it redirects to HTTPS")
    status: Int = d("HTTP status")
    location: Str = d("Location header")
    reason: Str = d("why not checked / not reachable")


class VersionHeader(_Data):
    header: str = d("header name")
    value: str = d("header value")
    has_version: bool = d("contains a version number")


class DirectoryListing(_Data):
    found: bool = d("a directory listing was served")
    paths: list[str] = d("paths that listed")


class DefaultPage(_Data):
    id: str = d("entry id in probes/data/web_default_pages.yaml")
    path: str = d("path")
    status: int = d("HTTP status")
    what: str = d("what the page is")


class NotFoundPage(_Data):
    path: str = d("a random path")
    status: Int = d("HTTP status")
    soft_404: bool = d("answered 200")
    stack_trace: bool = d("body shows a stack trace")
    version_strings: list[str] = d("product/version strings in body and headers")


class MalformedPage(_Data):
    status: Int = d("HTTP status")
    stack_trace: bool = d("body shows a stack trace")
    version_strings: list[str] = d("product/version strings")
    error: Str = d("request error")


class ErrorPages(_Data):
    not_found: NotFoundPage = d("response to a random path")
    malformed: MalformedPage = d("response to a malformed request")


class WebUrl(_Data):
    url: str = d("URL as declared")
    ip: Str = d("address connected to")
    status: str = d("'checked' or 'unknown'")
    reason: Str = d("why unknown")
    status_code: Int = d("HTTP status of the final response")
    final_url: Str = d("URL after redirects")
    redirect_chain: list[RedirectHop] = d("redirects followed")
    redirect_refused: Optional[RedirectRefused] = d("a redirect not followed (scope)")
    https_redirect: Optional[HttpsRedirect] = d("HTTP → HTTPS redirect check (null: URL not checked)")
    version_disclosure: list[VersionHeader] = d("headers naming software")
    discloses_version: bool = d("some header has a version number")
    directory_listing: DirectoryListing = d("directory listing check")
    default_pages: list[DefaultPage] = d("default/test pages found")
    default_pages_checked: int = d("default pages requested")
    error_pages: Optional[ErrorPages] = d("error handling (null: URL not checked)")
    security_headers: dict[str, Str] = d("security header → value (null: absent)")
    trace_enabled: Bool = d("TRACE answered 200 echoing the request")
    requests: int = d("requests sent for this URL")
    errors: list[str] = d("individual requests that failed")
    evidence: Str = d("label of the request/response transcript")


class DefaultPagesList(_Data):
    version: str = d("table version")
    entries: int = d("entries")


class Web(_Data):
    """Public web server checks (14.5.1). Fact name ``web``."""
    tls_verification: Str = opt("'system', 'ca_file:<path>' or 'disabled (internal CA)'")
    default_pages_list: Optional[DefaultPagesList] = opt("the default-page table used")
    urls: list[WebUrl] = d("checked URLs")


#: fact name → model of its ``data``
HOST_FACTS: dict[str, type[_Data]] = {
    "identity": Identity, "session_timeout": SessionTimeout, "os": Os, "patch": Patch, "antivirus": Antivirus,
    "listening": Listening, "interfaces": Interfaces, "firewall": Firewall, "remote_admin": RemoteAdmin,
    "accounts": Accounts, "password_policy": PasswordPolicy, "logging_time": LoggingTime,
}
RUN_FACTS: dict[str, type[_Data]] = {"network_scan": NetworkScan, "tls": Tls, "web": Web}
FACTS: dict[str, type[_Data]] = {**HOST_FACTS, **RUN_FACTS}


def validate(name: str, data: dict) -> _Data:
    """Validate a fact's data against its model (raises pydantic.ValidationError)."""
    return FACTS[name].model_validate(data)


__all__ = ["FACTS", "HOST_FACTS", "RUN_FACTS", "validate", "Union"]

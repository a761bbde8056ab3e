"""A lab of real, different Linux hosts built from namespaces on this machine, for tests and benchmarks.

Why: one loopback sshd shows that collection works, not that facts *differ* the way
the hosts differ. The lab starts several hosts that really are different, each with

* its own network namespace: a veth whose peer sits on a bridge that lives in a
  separate "switch" namespace (nothing is created in, or changed on, the root
  namespace's interfaces, routes or firewall);
* its own mount namespace, made private *before* anything is mounted, where per-host
  ``/etc`` files (passwd, shadow, group, login.defs, hosts, profile.d, ssh, sudoers.d)
  and an empty ``/root/.bashrc`` are bind-mounted over the machine's, plus tmpfs on
  ``/run`` (sshd's privilege-separation directory, sudo's timestamps) and on apt's
  cache and lists: the machine's real files are never written;
* its own PID namespace (``ps`` shows only that host's processes) and UTS namespace
  (its own hostname);
* its own sshd (own host key; ``AuthorizedKeysFile`` is the lab's client key),
  listeners and stand-in daemons named like the real ones (``comm`` is the script name).

Scans run inside a scanner namespace on the same bridge, with ``scope.allow`` set to
the lab subnet only (plus, for network-vantage scenarios, a documentation range such as 203.0.113.16/28 that
exists only inside the lab: ``HostSpec.extra_addresses`` puts such an address on a host's interface,
``Lab(scanner_addresses=…, external_scanner=…)`` gives the scanner one and starts a second scanner namespace,
:data:`EXT_SCANNER_NS`, at the "external" vantage). ``HostSpec.tls_ports`` serves listener ports over TLS with a
self-signed lab certificate; a listener on port 21 is an FTP server that refuses AUTH TLS. Every namespace, interface, process and file is named with the
prefix ``ea-lab-``; a crashed earlier run is cleaned up at start, and :meth:`Lab.stop`
removes everything even after a failure. A lock file serialises labs across processes.

Planted differences (what the tests assert):

=============  ===========================================================================
lab-web        TMOUT=300 readonly; listeners 80/443 (``nginx``), 23 (``in.telnetd``);
               ``clamd`` runs; iptables INPUT policy DROP with a few ACCEPT rules;
               sshd ClientAliveInterval 300; PASS_MAX_DAYS 90
lab-db         TMOUT=900 (not readonly); listener 3306 (``mysqld``); no AV; no firewall;
               extra UID-0 account ``toor``; ``guest`` with an empty password;
               ``svc-batch`` whose password never expires; ``auditor`` (passwordless
               sudo) and ``auditor2`` (no sudo); PASS_MAX_DAYS 99999
lab-legacy     no TMOUT; sshd with an RSA host key only, ``HostKeyAlgorithms ssh-rsa``,
               ``KexAlgorithms diffie-hellman-group14-sha1``
lab-dark       a namespace whose iptables DROPs every packet: a silent-drop host
lab-void       an address of the subnet with nothing behind it
=============  ===========================================================================

Every host has an empty apt index ("never updated"; ``HostSpec.apt_index=True`` gives one this machine's
lists, read-only): patch facts then do not depend on this machine's package state, and a full
``apt-get -s dist-upgrade`` over real lists costs ~2 s CPU per host on this image (its apt config disables
the package cache), which would dominate the lab's run time. ``HostSpec.apt_state`` instead gives a host a
crafted Debian 12 apt state (its own sources, lists and dpkg.log, see ``_apt_state``) for the 14.6.1 verdicts.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence, Union

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PREFIX = "ea-lab-"
SWITCH_NS = PREFIX + "switch"
SCANNER_NS = PREFIX + "scanner"
LOCK_FILE = os.path.join(tempfile.gettempdir(), "ea-lab.lock")
BRIDGE = "br0"
SUBNET = "10.231.0.0/24"  # netns lab address (only inside the lab's namespaces)
PREFIX_LEN = 24
SCANNER_IP = "10.231.0.2"  # netns lab address
VOID_IP = "10.231.0.99"  # netns lab address: nothing answers here
EXT_SCANNER_NS = PREFIX + "ext"  # a scanner at the "external" vantage (only when Lab(external_scanner=...))
CONNECT_TIMEOUT = 3  # seconds, the scan inventories' ssh connect_timeout

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
FAKE_HASH = "$y$j9T$ea.lab.salt.not.real$ea.lab.hash.not.a.real.password.hash.000"  # never matches anything


# --------------------------------------------------------------------------------------------------------------
# host specifications

@dataclass
class Account:
    name: str
    uid: int
    gid: int
    shell: str = "/bin/bash"
    password: str = FAKE_HASH  # shadow field 2: "" = empty password, "!" locked, "*" no password
    max_days: str = "90"  # shadow field 5: 99999 = never expires
    home: Optional[str] = None  # default: a directory in the lab
    groups: tuple[str, ...] = ()


@dataclass
class HostSpec:
    name: str  # inventory name and hostname
    ip: str
    roles: tuple[str, ...] = ()
    zone: str = "internal"
    tmout: Optional[str] = None  # /etc/profile.d/tmout.sh content (None: no such file)
    listeners: dict[str, tuple[int, ...]] = field(default_factory=dict)  # process name -> TCP ports
    daemons: tuple[str, ...] = ()  # idle processes with these names (stand-ins)
    iptables: Optional[str] = None  # iptables-restore input (None: no firewall at all)
    accounts: tuple[Account, ...] = ()
    sudoers: str = ""
    login_defs: dict[str, str] = field(default_factory=dict)
    sshd_extra: str = ""
    host_key: str = "ed25519"  # ed25519 | rsa
    apt_index: bool = False  # True: this machine's package lists (read-only); False: none (never updated)
    sshd: bool = True  # False: a netns only (the silent-drop host)
    #: (interface, address/prefix) on a veth pair that lives entirely inside the host's own namespace: the host
    #: reports the address (e.g. a documentation-range 192.0.2.10/24 for 15.2.1) but it reaches nothing
    local_addresses: tuple[tuple[str, str], ...] = ()
    # A crafted apt state (see _apt_state): bookworm + bookworm-security sources and lists that list this
    # machine's installed packages at their installed versions, and a dpkg.log whose newest upgrade is
    # ``apt_days_ago`` days old. "current": nothing newer anywhere; "security_pending": one package
    # (``apt_pending``) has a newer version in bookworm-security. None: ``apt_index`` decides.
    apt_state: Optional[str] = None
    apt_days_ago: int = 2
    apt_pending: str = "openssl"
    extra_addresses: tuple[str, ...] = ()  # more "addr/prefix" on eth0 (documentation ranges, lab netns only); sshd too
    tls_ports: tuple[int, ...] = ()  # listener ports served over TLS (self-signed lab certificate), HTTP inside


WEB_FIREWALL = f"""*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -s {SUBNET} -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -p tcp -m multiport --dports 80,443 -j ACCEPT
-A INPUT -p icmp -j ACCEPT
COMMIT
"""  # netns lab address (the rules live in lab-web's namespace only)

DARK_FIREWALL = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT DROP [0:0]
COMMIT
"""


def default_specs() -> list[HostSpec]:
    return [
        HostSpec(
            name="lab-web", ip="10.231.0.11", roles=("web",), zone="dmz",  # netns lab address
            tmout="# session timeout (guide 13.1.1)\nTMOUT=300\nreadonly TMOUT\nexport TMOUT\n",
            listeners={"nginx": (80, 443), "in.telnetd": (23,)},
            daemons=("clamd",),
            iptables=WEB_FIREWALL,
            login_defs={"PASS_MAX_DAYS": "90", "PASS_MIN_DAYS": "1", "PASS_WARN_AGE": "7"},
            sshd_extra="ClientAliveInterval 300\nClientAliveCountMax 0\n",
        ),
        HostSpec(
            name="lab-db", ip="10.231.0.12", roles=("db",), zone="internal",  # netns lab address
            tmout="TMOUT=900\nexport TMOUT\n",
            listeners={"mysqld": (3306,)},
            accounts=(
                Account("toor", 0, 0, password=FAKE_HASH, max_days="90"),
                Account("guest", 1010, 1010, password="", max_days="90"),
                Account("svc-batch", 1011, 1011, max_days="99999"),
                Account("auditor", 1001, 1001, groups=("sudo",)),
                Account("auditor2", 1002, 1002),
            ),
            sudoers="auditor ALL=(ALL:ALL) NOPASSWD: ALL\n",
            login_defs={"PASS_MAX_DAYS": "99999", "PASS_MIN_DAYS": "0", "PASS_WARN_AGE": "7"},
        ),
        HostSpec(
            name="lab-legacy", ip="10.231.0.13", roles=("app",), zone="internal",  # netns lab address
            host_key="rsa",
            sshd_extra="HostKeyAlgorithms ssh-rsa\nKexAlgorithms diffie-hellman-group14-sha1\n",
            login_defs={"PASS_MAX_DAYS": "99999"},
        ),
        HostSpec(name="lab-dark", ip="10.231.0.20", iptables=DARK_FIREWALL, sshd=False),  # netns lab address
    ]


# --------------------------------------------------------------------------------------------------------------
# small helpers

class LabError(RuntimeError):
    pass


def _run(argv: Sequence[str], check: bool = True, timeout: float = 30, **kw: Any) -> subprocess.CompletedProcess:
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({r.returncode}): {(r.stderr or r.stdout).strip()[-800:]}")
    return r


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run(["ip", *args], check=check)


def _write(path: str, text: str, mode: int = 0o644) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)


def preflight() -> Optional[str]:
    """Why the lab cannot run here (None: it can)."""
    if sys.platform != "linux":
        return "the namespace lab needs Linux"
    if os.geteuid() != 0:
        return "the namespace lab needs root (ip netns, unshare, bind mounts)"
    for tool in ("ip", "unshare", "nsenter", "ssh-keygen", "iptables-restore"):
        if not shutil.which(tool):
            return f"the namespace lab needs {tool!r} (iproute2, util-linux, openssh-client, iptables)"
    if not os.path.exists(SSHD):
        return "the namespace lab needs sshd (openssh-server)"
    probe = f"{PREFIX}pf-{os.getpid()}"
    _ip("netns", "del", probe, check=False)
    r = _ip("netns", "add", probe, check=False)
    if r.returncode != 0:
        return f"`ip netns add` is not permitted here: {r.stderr.strip()[:200]}"
    try:
        r = _run(["ip", "netns", "exec", probe, "unshare", "--mount", "--propagation", "private", "--pid", "--fork",
                  "--mount-proc", "--uts", "sh", "-c", "hostname ea-lab-preflight && iptables -S >/dev/null"],
                 check=False)
        if r.returncode != 0:
            return f"mount/PID/UTS namespaces or iptables are not permitted here: {r.stderr.strip()[:200]}"
    finally:
        _ip("netns", "del", probe, check=False)
    return None


def have_sudo() -> bool:
    return shutil.which("sudo") is not None


def lab_namespaces() -> list[str]:
    r = _ip("netns", "list", check=False)
    return [line.split()[0] for line in r.stdout.splitlines() if line.startswith(PREFIX)]


def _kill_pids(pids: Iterable[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _delete_namespace(ns: str) -> None:
    """Kill what still runs in a lab namespace (only lab processes can be there) and delete it."""
    r = _ip("netns", "pids", ns, check=False)
    _kill_pids(int(p) for p in r.stdout.split() if p.isdigit())
    for _ in range(50):
        if not _ip("netns", "pids", ns, check=False).stdout.split():
            break
        time.sleep(0.02)
    _ip("netns", "del", ns, check=False)


def cleanup_stale() -> list[str]:
    """Remove namespaces and temp dirs left by a crashed earlier lab (call with the lab lock held)."""
    removed = []
    for ns in lab_namespaces():
        pf = ns.removeprefix(PREFIX + "pf-")
        if pf != ns and pf.isdigit() and os.path.exists(f"/proc/{pf}"):
            continue  # another process's preflight check, still running
        _delete_namespace(ns)
        removed.append(ns)
    tmp = tempfile.gettempdir()
    for name in os.listdir(tmp):
        p = os.path.join(tmp, name)
        if name.startswith(PREFIX) and os.path.isdir(p) and os.path.exists(os.path.join(p, ".ea-lab")):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


class _Lock:
    def __init__(self, path: str = LOCK_FILE) -> None:
        self.path = path
        self.fd: Optional[int] = None

    def acquire(self, timeout: float = 180) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        end = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > end:
                    os.close(fd)
                    raise LabError(f"another namespace lab holds {self.path}") from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


# --------------------------------------------------------------------------------------------------------------
# per-host files

LISTENER = """\
# Lab stand-in daemon: listens on the TCP ports given as arguments (none: just idles); "443s" serves port 443 over
# TLS with the lab certificate (../tls.crt, ../tls.key). Its process name (comm) is this file's name.
import os, select, socket, ssl, sys, threading
banners = {{23: b"\\xff\\xfb\\x01\\xff\\xfb\\x03{host} login: ", 3306: b"\\x0a5.7.44-lab\\x00"}}
here = os.path.dirname(os.path.dirname(os.path.abspath(sys.argv[0])))
socks, tls = [], set()
for a in sys.argv[1:]:
    p = int(a.rstrip("s"))
    if a.endswith("s"):
        tls.add(p)
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", p)); s.listen(64); socks.append(s)
ctx = None
if tls:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(here, "tls.crt"), os.path.join(here, "tls.key"))


def serve(c, port):
    try:
        c.settimeout(5)
        if port in tls:
            c = ctx.wrap_socket(c, server_side=True)
        if port == 21:  # an FTP server without TLS: AUTH TLS is refused
            c.sendall(b"220 {host} FTP server ready\\r\\n")
            line = c.recv(1024)
            c.sendall(b"502 AUTH TLS not supported\\r\\n" if line.upper().startswith(b"AUTH") else
                      b"530 Please login with USER and PASS\\r\\n")
        elif port in (80, 8080) or port in tls:
            c.settimeout(0.5)
            try:
                c.recv(4096)
            except OSError:
                pass
            body = b"{host}\\n"
            c.sendall(b"HTTP/1.0 200 OK\\r\\nServer: lab\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(body) + body)
        elif banners.get(port):
            c.sendall(banners[port])
    except (OSError, ssl.SSLError):
        pass
    finally:
        c.close()


while True:
    if not socks:
        select.select([], [], [])
    for s in select.select(socks, [], [])[0]:
        try:
            c, _ = s.accept()
        except OSError:
            continue
        threading.Thread(target=serve, args=(c, s.getsockname()[1]), daemon=True).start()
"""


def _passwd_group_shadow(spec: HostSpec, homes: str) -> tuple[str, str, str]:
    today = int(time.time() // 86400)
    sshd_uid = 102
    try:
        import pwd
        sshd_uid = pwd.getpwnam("sshd").pw_uid
    except (KeyError, ImportError):
        pass
    passwd = [
        "root:x:0:0:root:/root:/bin/bash",
        "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
        "bin:x:2:2:bin:/bin:/usr/sbin/nologin",
        "sys:x:3:3:sys:/dev:/usr/sbin/nologin",
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
        f"sshd:x:{sshd_uid}:65534::/run/sshd:/usr/sbin/nologin",
    ]
    shadow = [
        f"root:{FAKE_HASH}:{today - 30}:0:90:7:::",
        f"daemon:*:{today - 400}:0:99999:7:::",
        f"bin:*:{today - 400}:0:99999:7:::",
        f"sys:*:{today - 400}:0:99999:7:::",
        f"nobody:*:{today - 400}:0:99999:7:::",
        f"sshd:*:{today - 400}:0:99999:7:::",
    ]
    groups: dict[str, tuple[int, list[str]]] = {
        "root": (0, []), "daemon": (1, []), "bin": (2, []), "sys": (3, []), "adm": (4, []),
        "sudo": (27, []), "shadow": (42, []), "nogroup": (65534, []),
    }
    for a in spec.accounts:
        home = a.home or os.path.join(homes, a.name)
        passwd.append(f"{a.name}:x:{a.uid}:{a.gid}:{a.name}:{home}:{a.shell}")
        shadow.append(f"{a.name}:{a.password}:{today - 10}:0:{a.max_days}:7:::")
        if a.gid not in {g for g, _ in groups.values()}:
            groups[a.name] = (a.gid, [])
        for g in a.groups:
            groups[g][1].append(a.name)
    group = [f"{n}:x:{gid}:{','.join(members)}" for n, (gid, members) in groups.items()]
    return "\n".join(passwd) + "\n", "\n".join(group) + "\n", "\n".join(shadow) + "\n"


def _sshd_config(spec: HostSpec, authorized_keys: str) -> str:
    key = "ssh_host_rsa_key" if spec.host_key == "rsa" else "ssh_host_ed25519_key"
    return textwrap.dedent(f"""\
        # {spec.name}: lab sshd (bind-mounted over /etc/ssh inside this host's mount namespace only)
        Port 22
        ListenAddress {spec.ip}
        """) + "".join(f"ListenAddress {a.split('/')[0]}\n" for a in spec.extra_addresses) + textwrap.dedent(f"""\
        HostKey /etc/ssh/{key}
        AuthorizedKeysFile {authorized_keys}
        PermitRootLogin prohibit-password
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        PermitEmptyPasswords no
        UsePAM no
        StrictModes no
        LogLevel ERROR
        PidFile /run/sshd.pid
        MaxStartups 200:30:400
        MaxSessions 50
        UseDNS no
        Subsystem sftp internal-sftp
        """) + spec.sshd_extra


def _init_script(spec: HostSpec, d: str) -> str:
    """The shell that becomes PID 1 of the host: mounts, hostname, firewall, daemons, sshd, then waits."""
    q = shlex.quote
    lines = [
        "set -eu",
        f"D={q(d)}",
        f"hostname {q(spec.name)}",
        # The mount namespace is already private (unshare --propagation private): nothing below leaves it.
        "mount -t tmpfs -o mode=0755,size=16m ea-lab-run /run",
        "mkdir -p /run/sshd && chmod 0755 /run/sshd",
        "ip link set lo up",
    ]
    if spec.sshd:
        for f in ("passwd", "group", "shadow", "login.defs", "hosts", "hostname"):
            lines.append(f"if [ -e /etc/{f} ]; then mount --bind \"$D/etc/{f}\" /etc/{f}; fi")
        for dname in ("profile.d", "ssh", "sudoers.d"):
            lines.append(f"if [ -d /etc/{dname} ]; then mount --bind \"$D/etc/{dname}\" /etc/{dname}; fi")
        lines.append("if [ -e /root/.bashrc ]; then mount --bind \"$D/empty\" /root/.bashrc; fi")
        # apt: a private cache (nothing written to the machine's), and either no package index at all (cheap: a
        # full `apt-get -s dist-upgrade` over this machine's lists costs ~2 s CPU per host) or this machine's,
        # read-only
        lines.append("if [ -d /var/cache/apt ]; then mount -t tmpfs -o size=64m ea-lab-apt /var/cache/apt; fi")
        if spec.apt_state:
            # the crafted state (files under $D/apt, $D/log): lists, sources and logs of this host only
            lines.append("mount --bind \"$D/apt/lists\" /var/lib/apt/lists")
            lines.append("mount --bind \"$D/apt/sources.list.d\" /etc/apt/sources.list.d")
            lines.append("if [ -e /etc/apt/sources.list ]; then mount --bind \"$D/empty\" /etc/apt/sources.list; fi")
            lines.append("if [ -e /var/log/dpkg.log ]; then mount --bind \"$D/log/dpkg.log\" /var/log/dpkg.log; fi")
            lines.append("if [ -e /var/log/dpkg.log.1 ]; then mount --bind \"$D/empty\" /var/log/dpkg.log.1; fi")
            lines.append("if [ -e /var/log/apt/history.log ]; then mount --bind \"$D/empty\" /var/log/apt/history.log; fi")
        elif spec.apt_index:
            lines.append("if [ -d /var/lib/apt/lists ]; then mount --bind /var/lib/apt/lists /var/lib/apt/lists && "
                         "mount -o remount,bind,ro /var/lib/apt/lists; fi")
        else:
            lines.append("if [ -d /var/lib/apt/lists ]; then mount -t tmpfs -o size=1m ea-lab-apt-lists "
                         "/var/lib/apt/lists && mkdir /var/lib/apt/lists/partial; fi")
    if spec.iptables:
        lines.append("iptables-restore < \"$D/iptables.rules\"")
    for name, ports in spec.listeners.items():
        args = " ".join(f"{p}s" if p in spec.tls_ports else str(p) for p in ports)
        lines.append(f"\"$D/bin/{name}\" {args} >>\"$D/daemons.log\" 2>&1 &")
    for name in spec.daemons:
        lines.append(f"\"$D/bin/{name}\" >>\"$D/daemons.log\" 2>&1 &")
    ports = [p for ps in spec.listeners.values() for p in ps]
    if spec.sshd:
        lines.append(f"{q(SSHD)} -D -e 2>>\"$D/sshd.log\" &")
        ports.append(22)
    else:
        lines.append("sleep 2147483647 &")
    # ready when every port listens (ss reads this namespace's sockets)
    for p in ports:
        lines.append(f"n=0; until ss -Hltn 'sport = :{p}' | grep -q LISTEN; do n=$((n+1)); "
                     f"[ $n -lt 500 ] || {{ echo 'port {p} never listened' >&2; exit 1; }}; sleep 0.02; done")
    lines += ["echo $$ > \"$D/ready\"", "wait"]
    return "\n".join(lines) + "\n"


def _installed_packages(status: str = "/var/lib/dpkg/status") -> list[dict[str, str]]:
    """This machine's installed packages (Package, Version, Architecture, Multi-Arch) from dpkg's database."""
    out = []
    with open(status, encoding="utf-8", errors="replace") as f:
        for stanza in f.read().split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line[:1] not in (" ", "\t") and ":" in line:
                    k, v = line.split(":", 1)
                    fields[k] = v.strip()
            if fields.get("Status", "").endswith(" installed") and "Package" in fields and "Version" in fields:
                out.append(fields)
    return out


def _apt_state(spec: HostSpec, d: str) -> None:
    """A Debian 12 apt state a real ``apt-cache policy`` reads: sources for bookworm and bookworm-security, and
    lists (Release + Packages) that carry every installed package at its installed version (so nothing is
    newer), bookworm-security a handful of them — plus, for "security_pending", a newer version of one package
    in bookworm-security. The Release files are not signed (apt verifies signatures when it downloads, not when
    it reads its lists). dpkg.log holds one upgrade ``apt_days_ago`` days ago."""
    if spec.apt_state not in ("current", "security_pending"):
        raise LabError(f"{spec.name}: apt_state must be 'current' or 'security_pending', not {spec.apt_state!r}")
    import email.utils
    pkgs = _installed_packages()
    names = {p["Package"] for p in pkgs}
    if spec.apt_pending not in names:
        raise LabError(f"{spec.name}: apt_pending {spec.apt_pending!r} is not installed on this machine")
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip() or "amd64"
    lists = os.path.join(d, "apt", "lists")
    srcd = os.path.join(d, "apt", "sources.list.d")
    os.makedirs(os.path.join(lists, "partial"), exist_ok=True)
    os.makedirs(srcd, exist_ok=True)
    os.makedirs(os.path.join(d, "log"), exist_ok=True)

    def stanza(p: dict[str, str], version: str) -> str:
        s = f"Package: {p['Package']}\nVersion: {version}\nArchitecture: {p.get('Architecture', 'all')}\n"
        if p.get("Multi-Arch"):
            s += f"Multi-Arch: {p['Multi-Arch']}\n"
        return s + f"Filename: pool/main/lab/{p['Package']}_{version}.deb\nSize: 1\n"

    security = [p for p in pkgs if p["Package"] in {spec.apt_pending, "libc6", "openssh-server", "libssl3"}]
    bump = {spec.apt_pending} if spec.apt_state == "security_pending" else set()
    now = time.time()
    for host, suite, label, rows in (
        ("deb.debian.org_debian", "bookworm", "Debian", [stanza(p, p["Version"]) for p in pkgs]),
        ("deb.debian.org_debian-security", "bookworm-security", "Debian-Security",
         [stanza(p, p["Version"] + ("+lab1" if p["Package"] in bump else "")) for p in security]),
    ):
        base = os.path.join(lists, f"{host}_dists_{suite}")
        _write(f"{base}_main_binary-{arch}_Packages", "\n".join(rows))
        _write(f"{base}_Release", f"Origin: Debian\nLabel: {label}\nSuite: {suite}\nCodename: bookworm\n"
               f"Date: {email.utils.formatdate(now, usegmt=True)}\nArchitectures: {arch}\nComponents: main\n")
    _write(os.path.join(srcd, "debian.sources"),
           "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\n\n"
           "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\nComponents: main\n")
    p = next(x for x in pkgs if x["Package"] == spec.apt_pending)
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now - spec.apt_days_ago * 86400))
    _write(os.path.join(d, "log", "dpkg.log"),
           f"{when} upgrade {p['Package']}:{p.get('Architecture', 'all')} {p['Version']}~old {p['Version']}\n")


# --------------------------------------------------------------------------------------------------------------
# the lab

@dataclass
class LabHost:
    spec: HostSpec
    ns: str
    dir: str
    veth: str
    proc: Optional[subprocess.Popen] = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def ip(self) -> str:
        return self.spec.ip


class Lab:
    """The running lab. ``with Lab() as lab:`` (or :func:`start` … :meth:`stop`). A pytest fixture::

        @pytest.fixture(scope="module")
        def netlab():
            why = lab.preflight()
            if why:
                pytest.skip(why)
            with lab.Lab() as running:
                yield running
    """

    def __init__(self, specs: Optional[list[HostSpec]] = None, scanner_addresses: Sequence[str] = (),
                 external_scanner: Optional[str] = None,
                 more_scanners: Optional[dict[str, Sequence[str]]] = None) -> None:
        """``scanner_addresses``: more "addr/prefix" on the scanner's interface; ``external_scanner``: "addr/prefix"
        of a second scanner namespace (:data:`EXT_SCANNER_NS`, the "external" vantage) on the same bridge. Both
        are meant for documentation ranges (203.0.113.0/24, 198.51.100.0/24), configured only inside the lab.
        ``more_scanners``: further namespaces on the bridge, name (``ea-lab-…``) → ["addr/prefix", …] (e.g. one
        per zone worker and one for a broker, tests/test_lab_distributed.py)."""
        self.specs = specs if specs is not None else default_specs()
        self.scanner_addresses = tuple(scanner_addresses)
        self.external_scanner = external_scanner
        self.more_scanners = {ns: tuple(a) for ns, a in (more_scanners or {}).items()}
        bad = [ns for ns in self.more_scanners if not ns.startswith(PREFIX) or ns in (SCANNER_NS, EXT_SCANNER_NS)]
        if bad:
            raise LabError(f"a lab namespace is named {PREFIX}… and is not a built-in one: {bad[0]!r}")
        self.dir = ""
        self.hosts: dict[str, LabHost] = {}
        self.namespaces: list[str] = []
        self.client_key = ""
        self.known_hosts = ""
        self.authorized_keys = ""
        self.startup_seconds = 0.0
        self._lock = _Lock()
        self._started = False

    # -- lifecycle ------------------------------------------------------------------------------------------
    def __enter__(self) -> "Lab":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> "Lab":
        why = preflight()
        if why:
            raise LabError(why)
        t0 = time.monotonic()
        self._lock.acquire()
        self._started = True
        try:
            cleanup_stale()
            self.dir = tempfile.mkdtemp(prefix=PREFIX)
            os.chmod(self.dir, 0o755)  # auditor's sshd reads authorized_keys after dropping privileges
            open(os.path.join(self.dir, ".ea-lab"), "w").close()
            keygens = self._write_files()
            self._network()
            for p in keygens:
                if p.wait(30) != 0:
                    raise LabError("ssh-keygen failed: " + (p.stderr.read() if p.stderr else b"").decode()[-500:])
            self._finish_keys()
            for h in self.hosts.values():
                self._launch(h)
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def stop(self) -> None:
        """Kill every lab process tree, delete every lab namespace and the lab directory. Never raises."""
        if not self._started:
            return
        for h in self.hosts.values():
            p = h.proc
            if p is not None and p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)  # unshare, and PID 1 of the host (which takes its namespace)
                except (ProcessLookupError, PermissionError):
                    pass
            if p is not None:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    pass
        for ns in list(dict.fromkeys(self.namespaces + lab_namespaces())):
            try:
                _delete_namespace(ns)
            except Exception:  # teardown goes on whatever happens
                pass
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        self._lock.release()
        self._started = False

    # -- setup ----------------------------------------------------------------------------------------------
    def _write_files(self) -> list[subprocess.Popen]:
        """Per-host /etc trees, scripts and keys. Returns the ssh-keygen processes (run in parallel)."""
        procs = []

        def keygen(path: str, kind: str = "ed25519") -> None:
            argv = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", os.path.basename(path), "-f", path]
            if kind == "rsa":
                argv[4:4] = ["-b", "2048"]
            procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))

        self.client_key = os.path.join(self.dir, "client_key")
        self.known_hosts = os.path.join(self.dir, "known_hosts")
        self.authorized_keys = os.path.join(self.dir, "authorized_keys")
        keygen(self.client_key)
        for i, spec in enumerate(self.specs):
            d = os.path.join(self.dir, spec.name)
            h = LabHost(spec, PREFIX + spec.name.removeprefix("lab-"), d, f"v{i}-{spec.name.removeprefix('lab-')}"[:15])
            self.hosts[spec.name] = h
            etc = os.path.join(d, "etc")
            for sub in ("profile.d", "ssh", "sudoers.d", "bin", "home"):
                os.makedirs(os.path.join(etc if sub in ("profile.d", "ssh", "sudoers.d") else d, sub), exist_ok=True)
            for root, dirs, _files in os.walk(d):
                for x in dirs:
                    os.chmod(os.path.join(root, x), 0o755)
            os.chmod(d, 0o755)
            os.chmod(os.path.join(etc, "sudoers.d"), 0o750)
            homes = os.path.join(d, "home")
            passwd, group, shadow = _passwd_group_shadow(spec, homes)
            _write(os.path.join(etc, "passwd"), passwd)
            _write(os.path.join(etc, "group"), group)
            _write(os.path.join(etc, "shadow"), shadow, 0o640)
            os.chown(os.path.join(etc, "shadow"), 0, 42)
            for a in spec.accounts:
                if a.uid != 0:
                    hd = a.home or os.path.join(homes, a.name)
                    os.makedirs(hd, exist_ok=True)
                    os.chown(hd, a.uid, a.gid)
                    os.chmod(hd, 0o755)
            defs = "".join(f"{k}\t{v}\n" for k, v in spec.login_defs.items())
            _write(os.path.join(etc, "login.defs"), f"# {spec.name} login.defs (lab)\nUMASK\t022\n" + defs +
                   "ENCRYPT_METHOD YESCRYPT\n")
            _write(os.path.join(etc, "hosts"), f"127.0.0.1\tlocalhost\n{spec.ip}\t{spec.name}\n")  # netns lab address
            _write(os.path.join(etc, "hostname"), spec.name + "\n")
            if spec.tmout is not None:
                _write(os.path.join(etc, "profile.d", "tmout.sh"), spec.tmout)
            _write(os.path.join(etc, "profile.d", "lang.sh"), "# lab: locale\nexport LANG=C.UTF-8\n")
            if spec.sudoers:
                _write(os.path.join(etc, "sudoers.d", "lab"), spec.sudoers, 0o440)
            _write(os.path.join(etc, "ssh", "sshd_config"), _sshd_config(spec, self.authorized_keys))
            for f in ("moduli", "ssh_config"):
                if os.path.exists(f"/etc/ssh/{f}"):
                    shutil.copy(f"/etc/ssh/{f}", os.path.join(etc, "ssh", f))
            if spec.sshd:
                keygen(os.path.join(etc, "ssh", f"ssh_host_{spec.host_key}_key"), spec.host_key)
            open(os.path.join(d, "empty"), "w").close()
            for name in list(spec.listeners) + list(spec.daemons):
                _write(os.path.join(d, "bin", name),
                       f"#!{sys.executable} -S\n" + LISTENER.format(host=spec.name), 0o755)
            if spec.iptables:
                _write(os.path.join(d, "iptables.rules"), spec.iptables)
            if spec.apt_state:
                _apt_state(spec, d)
            if spec.tls_ports:  # a self-signed certificate for the TLS listeners (read by the listener in the netns)
                from pathlib import Path

                from netservers import make_self_signed
                c = make_self_signed(Path(d), "lab-tls", spec.name)
                shutil.copy(c.cert, os.path.join(d, "tls.crt"))
                shutil.copy(c.key, os.path.join(d, "tls.key"))
            _write(os.path.join(d, "init.sh"), _init_script(spec, d), 0o755)
        return procs

    def _finish_keys(self) -> None:
        shutil.copy(self.client_key + ".pub", self.authorized_keys)
        os.chmod(self.authorized_keys, 0o644)
        lines = []
        for h in self.hosts.values():
            if h.spec.sshd:
                pub = open(os.path.join(h.dir, "etc", "ssh", f"ssh_host_{h.spec.host_key}_key.pub")).read().split()
                lines.append(f"{h.ip} {pub[0]} {pub[1]}\n")
        _write(self.known_hosts, "".join(lines))

    def _network(self) -> None:
        """Switch namespace with a bridge; one veth per host and one for the scanner, created from the switch
        namespace (the root namespace's interfaces are never touched)."""
        def add_ns(ns: str) -> None:
            _ip("netns", "add", ns)
            self.namespaces.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")

        add_ns(SWITCH_NS)
        _ip("-n", SWITCH_NS, "link", "add", BRIDGE, "type", "bridge")
        _ip("-n", SWITCH_NS, "link", "set", BRIDGE, "up")
        ports = [(SCANNER_NS, "v-scanner", [f"{SCANNER_IP}/{PREFIX_LEN}", *self.scanner_addresses])]
        if self.external_scanner:
            ports.append((EXT_SCANNER_NS, "v-ext", [self.external_scanner]))
        ports += [(ns, f"v-s{i}", list(a)) for i, (ns, a) in enumerate(self.more_scanners.items())]
        ports += [(h.ns, h.veth, [f"{h.ip}/{PREFIX_LEN}", *h.spec.extra_addresses]) for h in self.hosts.values()]
        for ns, veth, addrs in ports:
            add_ns(ns)
            _ip("-n", SWITCH_NS, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("-n", SWITCH_NS, "link", "set", veth, "master", BRIDGE)
            _ip("-n", SWITCH_NS, "link", "set", veth, "up")
            for a in addrs:  # the first is the subnet address; others (documentation ranges) live in this netns only
                _ip("-n", ns, "addr", "add", a, "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
        for h in self.hosts.values():  # host-only addresses: both ends of the pair stay in the host's namespace
            for ifname, cidr in h.spec.local_addresses:
                _ip("-n", h.ns, "link", "add", ifname, "type", "veth", "peer", "name", (ifname + "-p")[:15])
                _ip("-n", h.ns, "addr", "add", cidr, "dev", ifname)
                _ip("-n", h.ns, "link", "set", ifname, "up")

    def _launch(self, h: LabHost) -> None:
        log = open(os.path.join(h.dir, "init.log"), "wb")
        h.proc = subprocess.Popen(
            ["ip", "netns", "exec", h.ns, "unshare", "--mount", "--propagation", "private", "--uts", "--pid",
             "--fork", "--mount-proc", "--kill-child", "--", "sh", os.path.join(h.dir, "init.sh")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()

    def _wait_ready(self, timeout: float = 20) -> None:
        end = time.monotonic() + timeout
        pending = dict(self.hosts)
        while pending:
            for name, h in list(pending.items()):
                if os.path.exists(os.path.join(h.dir, "ready")):
                    del pending[name]
                elif h.proc is not None and h.proc.poll() is not None:
                    raise LabError(f"{name} failed to start: {self._logs(h)}")
            if pending and time.monotonic() > end:
                raise LabError("lab hosts not ready in time: " + "; ".join(f"{n}: {self._logs(h)}"
                                                                         for n, h in pending.items()))
            if pending:
                time.sleep(0.02)
        # the bridge carries traffic: the scanner reads every sshd's banner
        targets = [h.ip for h in self.hosts.values() if h.spec.sshd]
        code = ("import socket,sys\nfor a in sys.argv[1:]:\n"
                "    s=socket.create_connection((a,22),timeout=5); assert s.recv(4)==b'SSH-', a; s.close()\n")
        r = self.run_in_scanner([sys.executable, "-S", "-c", code, *targets], check=False, timeout=20)
        if r.returncode != 0:
            raise LabError(f"lab sshds not reachable from the scanner namespace: {r.stderr.strip()[-500:]}")

    def _logs(self, h: LabHost) -> str:
        out = []
        for f in ("init.log", "sshd.log", "daemons.log"):
            p = os.path.join(h.dir, f)
            if os.path.exists(p):
                t = open(p, errors="replace").read().strip()
                if t:
                    out.append(f"{f}: {t[-600:]}")
        return " | ".join(out) or "(no output)"

    # -- using the lab --------------------------------------------------------------------------------------
    def host(self, name: str) -> LabHost:
        return self.hosts[name]

    def run_in_scanner(self, argv: Sequence[str], check: bool = False, timeout: float = 120, ns: str = SCANNER_NS,
                       **kw: Any) -> subprocess.CompletedProcess:
        """Run a command inside a scanner namespace (on the lab bridge, nothing else reachable); ``ns``:
        :data:`SCANNER_NS`, :data:`EXT_SCANNER_NS` or one of ``more_scanners``."""
        if ns not in (SCANNER_NS, EXT_SCANNER_NS, *self.more_scanners):
            raise LabError(f"not a lab scanner namespace: {ns}")
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        r = subprocess.run(["ip", "netns", "exec", ns, *argv], timeout=timeout, **kw)
        if check and r.returncode != 0:
            raise LabError(f"{argv[0]} in {ns} failed ({r.returncode}): {str(r.stderr)[-800:]}")
        return r

    def host_exec(self, name: str, argv: Sequence[str], timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a command inside a lab host (all of its namespaces), e.g. to look at its files."""
        h = self.hosts[name]
        pid1 = self._pid1(h)
        return _run(["nsenter", "-t", str(pid1), "--mount", "--uts", "--pid", "--net", "--", *argv],
                    check=False, timeout=timeout)

    def _pid1(self, h: LabHost) -> int:
        """The host's PID 1 (the init shell) as seen from here: the child of its unshare process."""
        assert h.proc is not None
        with open(f"/proc/{h.proc.pid}/task/{h.proc.pid}/children") as f:
            kids = f.read().split()
        if not kids:
            raise LabError(f"{h.name} is not running")
        return int(kids[0])

    def pids(self, name: str) -> list[int]:
        """Every process of a lab host (PIDs as seen from here)."""
        out, todo = [], [self._pid1(self.hosts[name])]
        while todo:
            p = todo.pop()
            out.append(p)
            try:
                with open(f"/proc/{p}/task/{p}/children") as f:
                    todo += [int(x) for x in f.read().split()]
            except OSError:
                pass
        return out

    def inventory(self, hosts: Iterable[Union[str, dict[str, Any]]], connect_timeout: float = CONNECT_TIMEOUT,
                  command_timeout: float = 60, host_timeout: float = 120, extra: str = "",
                  more: Optional[dict[str, Any]] = None) -> str:
        """Inventory YAML for lab hosts. An entry is a lab host name, or a dict with ``name`` and optionally
        ``host`` (the lab host it points at; default: name), ``address`` (e.g. :data:`VOID_IP`), ``ssh``,
        ``become``, ``roles``, ``zone``. The command timeout is generous (60 s, the product default is 20 s):
        on 2 busy cores several concurrent ``apt-get -s`` runs can take longer than 20 s, and the tests compare
        facts between hosts, which a timed-out command would make flaky."""
        rows = []
        for e in hosts:
            e = {"name": e} if isinstance(e, str) else dict(e)
            base = self.hosts.get(e.pop("host", e["name"]))
            row: dict[str, Any] = {"name": e.pop("name"),
                                   "address": e.pop("address", base.ip if base else None),
                                   "transport": "ssh",
                                   "roles": e.pop("roles", list(base.spec.roles) if base else []),
                                   "zone": e.pop("zone", base.spec.zone if base else "internal")}
            if row["address"] is None:
                raise LabError(f"no address for inventory host {row['name']!r}")
            row.update(e)
            rows.append(row)
        body = {
            "version": 1,
            "organisation": "evidence-agent namespace lab",
            "scope": {"allow": [SUBNET]},
            "defaults": {
                "ssh": {"user": "root", "key_file": self.client_key, "known_hosts": self.known_hosts,
                        "host_key_policy": "strict", "connect_timeout": connect_timeout},
                "timeouts": {"connect": connect_timeout, "command": command_timeout, "host": host_timeout},
            },
            "hosts": rows,
        }
        body.update(more or {})  # networks, nmap, declare … ; a wider scope.allow only for lab-namespace ranges
        # JSON is YAML: no quoting surprises, and the inventory loader gives line numbers all the same
        return json.dumps(body, indent=2, ensure_ascii=False) + "\n" + extra

    def scan(self, inventory: Union[str, Iterable[Union[str, dict[str, Any]]]], out_dir: str, key: str,
             *extra_args: str, timeout: float = 180, ns: str = SCANNER_NS) -> tuple[int, str, str]:
        """Run ``python -m agent.cli scan`` inside the scanner namespace. ``inventory`` is YAML text or a list
        of hosts for :meth:`inventory`. Returns (returncode, stdout, stderr)."""
        text = inventory if isinstance(inventory, str) else self.inventory(inventory)
        inv = os.path.abspath(out_dir.rstrip("/")) + ".inventory.yml"
        os.makedirs(os.path.dirname(inv), exist_ok=True)
        _write(inv, text, 0o600)
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        r = self.run_in_scanner([sys.executable, "-m", "agent.cli", "scan", "--inventory", inv, "--out", out_dir,
                                 "--key", key, *extra_args], timeout=timeout, cwd=ROOT, env=env, ns=ns)
        return r.returncode, r.stdout, r.stderr


def start(specs: Optional[list[HostSpec]] = None) -> Lab:
    return Lab(specs).start()

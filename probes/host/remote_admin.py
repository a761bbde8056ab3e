"""Remote administration (guide 14.2.1, 13.1.1): sshd's effective settings and other remote-login services.

Why: the guide asks that remote administration be controlled (encrypted
channel, additional authentication, no cleartext TELNET) and that access to
systems go through safe methods. sshd settings come from ``sshd -T`` when it
can run (root), else from the configuration files (values not set there stay
null: OpenSSH's compiled-in default applies, and it differs by version).
telnet, rlogin/rsh/rexec, VNC and xrdp are reported from binaries, service
units, inetd entries, processes and listening sockets.

Fact schema (``data``)::

    ssh: {
        installed: bool|null, running: bool|null, source: "sshd -T"|"config"|null, problem: str|null,
        permit_root_login: str|null,          # yes|no|prohibit-password|without-password|forced-commands-only
        root_password_login: bool|null,       # PermitRootLogin yes
        password_authentication: bool|null,
        kbd_interactive_authentication: bool|null,
        pubkey_authentication: bool|null,
        permit_empty_passwords: bool|null,
        use_pam: bool|null,
        authentication_methods: str|null,     # "any" = single factor
        mfa: bool|null,                       # every AuthenticationMethods list has 2+ methods,
                                              # or an OTP PAM module
        mfa_methods: [str],
        ports: [int], listen_addresses: [str],
        ciphers: [str], macs: [str], kex_algorithms: [str], host_key_algorithms: [str],   # as offered;
                                              # which are weak is the ssh-algorithms rule's params
        x11_forwarding: bool|null, max_auth_tries: int|null, login_grace_time: str|null,
        allow_users: [str], allow_groups: [str], deny_users: [str], deny_groups: [str],
        banner: str|null, unset_keys: [str],   # keys absent from the config files (config source only)
    }
    services: [{service: "ssh"|"telnet"|"rlogin"|"rsh"|"rexec"|"vnc"|"xrdp", installed: bool|null,
                running: bool|null, enabled: bool|null, listening: bool|null, ports: [int],
                via_inetd: bool|null}]

Which of these services are cleartext is the admin-encrypted-channels rule's
``cleartext_admin_services`` parameter, not the probe's judgement.
"""

from __future__ import annotations

import re
import shlex
from typing import Any, Mapping, Optional

from ..base import (
    CommandSpec, Fact, HostProbe, LazyCommands, Problem, RawOutput, ReasonCode, about, fact_with_problems,
    section_problem,
)
from . import sshd
from .common import (
    INETD,
    LISTEN,
    PAM_CONF,
    PROCESSES,
    SERVICES,
    load_data,
    processes_and_services,
    running,
    split_files,
    unit_state,
    usable,
)
from .listening import parse_inetd, parse_listen



def _algos() -> Any:
    """probes/data/ssh_algorithms.yaml, read on first use (load_data caches it), never at import."""
    return load_data("ssh_algorithms.yaml")


def _services() -> list[dict[str, Any]]:
    """The remote-administration services of probes/data/services.yaml, read on first use."""
    return load_data("services.yaml")["remote_admin"]


def _remote_bins() -> CommandSpec:
    """Built from the services table on first use (see LazyCommands)."""
    return CommandSpec(
        "remote_bins",
        "for f in "
        + " ".join(shlex.quote(b) for r in _services() for b in r.get("binaries", []))
        + '; do [ -e "$f" ] && echo "$f"; done; true',
        timeout=5,
        may_hang=False,
    )


COMMANDS = LazyCommands(lambda: (*sshd.COMMANDS, PAM_CONF, LISTEN, INETD, PROCESSES, SERVICES, _remote_bins()))

_SUPERSERVERS = {"systemd", "inetd", "xinetd"}
_INETD_NAMES = {
    "telnet": {"telnet"},
    "rlogin": {"login", "rlogin"},
    "rsh": {"shell", "rsh", "cmd"},
    "rexec": {"exec", "rexec"},
    "vnc": {"vnc", "vnc-server"},
    "xrdp": set(),
    "ssh": {"ssh"},
}


def _bool(settings: Mapping[str, list[str]], *keys: str) -> Optional[bool]:
    for k in keys:
        v = settings.get(k)
        if v:
            w = v[0].split()[0].lower() if v[0].split() else ""
            if w in ("yes", "true"):
                return True
            if w in ("no", "false"):
                return False
    return None


def _first(settings: Mapping[str, list[str]], key: str) -> Optional[str]:
    v = settings.get(key)
    return v[0].strip() if v else None


def _list(settings: Mapping[str, list[str]], key: str) -> list[str]:
    out: list[str] = []
    for v in settings.get(key, []):
        for part in re.split(r"[,\s]+", v.strip()):
            if part:
                out.append(part)
    return out


def pam_mfa(pam_text: Optional[str]) -> list[str]:
    """OTP/second-factor PAM modules on sshd's auth stack (following includes of the files read)."""
    if not pam_text:
        return []
    files = dict(split_files(pam_text))
    mods = set(_algos()["mfa_pam_modules"])
    found: list[str] = []
    seen: set[str] = set()

    def walk(path: str, depth: int) -> None:
        if path in seen or depth > 5:
            return
        seen.add(path)
        for ln in files.get(path, []):
            f = ln.split()
            if not f:
                continue
            if f[0] in ("@include",) and len(f) > 1:
                walk("/etc/pam.d/" + f[1], depth + 1)
                continue
            if f[0].lstrip("-") == "auth" and len(f) >= 3:
                if f[1] in ("include", "substack"):
                    walk("/etc/pam.d/" + f[2], depth + 1)
                    continue
                module = (
                    f[2] if not f[1].startswith("[") else next((x for x in f[2:] if x.endswith(".so")), "")
                )
                name = module.rsplit("/", 1)[-1]
                if name in mods and name not in found:
                    found.append(name)

    walk("/etc/pam.d/sshd", 0)
    return found


def ssh_settings(outputs: Mapping[str, RawOutput]) -> dict[str, Any]:
    settings, source, problem = sshd.effective(outputs)
    t = outputs.get("sshd_T")
    not_installed = t is not None and t.complete and "sshd: not found" in t.output
    ran = t is not None and t.complete and not not_installed and bool(t.output.strip())
    t_prob = section_problem(t)  # a missing section too: the settings then come from the config files
    if t_prob and settings is not None and not problem:
        problem = Problem(f"sshd -T: {t_prob}; settings from the config files", t_prob.code)
    d: dict[str, Any] = {
        "installed": False if not_installed else (True if ran else None),
        "running": None,
        "source": source if settings is not None else None,
        "problem": None if not_installed else problem,
    }
    keys = [
        "permit_root_login",
        "root_password_login",
        "password_authentication",
        "kbd_interactive_authentication",
        "pubkey_authentication",
        "permit_empty_passwords",
        "use_pam",
        "authentication_methods",
        "mfa",
        "x11_forwarding",
        "max_auth_tries",
        "login_grace_time",
        "banner",
    ]
    lists = [
        "mfa_methods",
        "ports",
        "listen_addresses",
        "ciphers",
        "macs",
        "kex_algorithms",
        "host_key_algorithms",
        "allow_users",
        "allow_groups",
        "deny_users",
        "deny_groups",
        "unset_keys",
    ]
    for k in keys:
        d[k] = None
    for k in lists:
        d[k] = []
    if settings is None:
        return d
    prl = _first(settings, "permitrootlogin")
    d["permit_root_login"] = prl.lower() if prl else None
    d["root_password_login"] = None if prl is None else prl.lower() == "yes"
    d["password_authentication"] = _bool(settings, "passwordauthentication")
    d["kbd_interactive_authentication"] = _bool(
        settings, "kbdinteractiveauthentication", "challengeresponseauthentication"
    )
    d["pubkey_authentication"] = _bool(settings, "pubkeyauthentication")
    d["permit_empty_passwords"] = _bool(settings, "permitemptypasswords")
    d["use_pam"] = _bool(settings, "usepam")
    d["x11_forwarding"] = _bool(settings, "x11forwarding")
    mat = _first(settings, "maxauthtries")
    d["max_auth_tries"] = int(mat) if mat and mat.isdecimal() else None
    d["login_grace_time"] = _first(settings, "logingracetime")
    banner = _first(settings, "banner")
    d["banner"] = None if banner in (None, "none") else banner
    am = _first(settings, "authenticationmethods")
    d["authentication_methods"] = am
    ports = []
    for p in _list(settings, "port"):
        if p.isdecimal():
            ports.append(int(p))
    d["ports"] = sorted(set(ports))
    la = []
    for v in settings.get("listenaddress", []):
        la.append(v.split()[0])
    d["listen_addresses"] = la
    d["ciphers"] = _list(settings, "ciphers")
    d["macs"] = _list(settings, "macs")
    d["kex_algorithms"] = _list(settings, "kexalgorithms")
    d["host_key_algorithms"] = _list(settings, "hostkeyalgorithms")
    for k, key in (
        ("allow_users", "allowusers"),
        ("allow_groups", "allowgroups"),
        ("deny_users", "denyusers"),
        ("deny_groups", "denygroups"),
    ):
        d[k] = _list(settings, key)
    # MFA: every alternative of AuthenticationMethods chains two or more methods,
    # or keyboard-interactive through PAM with an OTP module.
    pam_out, pam_prob = usable(outputs, "pam_conf")
    pam_mods = pam_mfa(pam_out.output if pam_out is not None else None)
    if pam_prob:
        d["problem"] = "; ".join(
            filter(None, [d["problem"], f"PAM stack not read ({pam_prob}): OTP modules unknown"])
        )
    methods: list[str] = []
    mfa: Optional[bool] = None
    if am and am != "any":
        alts = am.split()
        if all(len(a.split(",")) >= 2 for a in alts):
            mfa = True
            methods.append(f"AuthenticationMethods {am}")
    if pam_mods and d["kbd_interactive_authentication"] and d["use_pam"] is not False:
        methods += pam_mods
        if am and am != "any" and "keyboard-interactive" in am:
            mfa = True
        elif d["password_authentication"] is False and d["pubkey_authentication"] is False:
            mfa = True  # only keyboard-interactive (PAM with OTP) remains
    if mfa is None and (am is not None or source == "sshd -T") and not pam_prob:
        mfa = False
    d["mfa"] = mfa
    d["mfa_methods"] = methods
    if source == "config":
        wanted = [
            "permitrootlogin",
            "passwordauthentication",
            "pubkeyauthentication",
            "permitemptypasswords",
            "usepam",
            "authenticationmethods",
            "ciphers",
            "macs",
            "kexalgorithms",
            "port",
        ]
        d["unset_keys"] = [k for k in wanted if k not in settings]
    return d


def parse(outputs: Mapping[str, RawOutput]) -> Fact:
    problems: list[str] = []
    ssh = ssh_settings(outputs)
    if ssh["problem"]:
        problems.append(ssh["problem"])
    procs, svc = processes_and_services(outputs, problems)
    lst, lprob = usable(outputs, "listen")
    socks = parse_listen(lst.output)[1] if lst is not None else None
    if lst is None:
        problems.append(about(lprob, "listening sockets not read"))
    ino, iprob = usable(outputs, "inetd")
    inetd = [s for s in parse_inetd(ino.output) if s["enabled"]] if ino is not None else None
    if ino is None:
        problems.append(about(iprob, "inetd not read"))
    bins_out, bprob = usable(outputs, "remote_bins")
    bins = {ln.strip() for ln in bins_out.output.splitlines()} if bins_out is not None else None
    if bins_out is None:
        problems.append(about(bprob, "binaries not checked"))

    rows = []
    for r in _services():
        is_running = running(procs, r["processes"])
        states = [unit_state(svc, [u]) for u in r["units"] if not u.endswith("@")]
        if svc is not None:
            # template units (vncserver@:1.service): match by prefix
            for u in r["units"]:
                if u.endswith("@"):
                    for name in svc["units"]:
                        if name.startswith(u):
                            states.append(unit_state(svc, [name]))
        known = [s for s in states if s["unit"]]
        enabled = (
            any(s["enabled"] for s in known)
            if known
            else (False if svc and svc["init"] != "unknown" else None)
        )
        if known and not any(s["active"] for s in known) and is_running is None:
            is_running = False
        if any(s["active"] for s in known):
            is_running = True
        names = {p[:15] for p in r["processes"]}
        ports: list[int] = []
        listening: Optional[bool] = None
        if socks is not None:
            # socket activation (systemd, inetd) holds the port for the service: count it by port
            hits = [
                s
                for s in socks
                if s["proto"] == "tcp"
                and (
                    (s["process"] and s["process"][:15] in names)
                    or ((not s["process"] or s["process"] in _SUPERSERVERS) and s["port"] in r["ports"])
                )
            ]
            if r["service"] == "ssh" and ssh["ports"]:
                hits += [
                    s
                    for s in socks
                    if s["proto"] == "tcp"
                    and (not s["process"] or s["process"] in _SUPERSERVERS)
                    and s["port"] in ssh["ports"]
                    and s not in hits
                ]
            ports = sorted({s["port"] for s in hits})
            listening = bool(hits)
        via_inetd = (
            None
            if inetd is None
            else any(s["service"] in _INETD_NAMES.get(r["service"], set()) for s in inetd)
        )
        installed: Optional[bool] = None
        if bins is not None:
            installed = (
                bool(bins & set(r.get("binaries", []))) or bool(known) or bool(via_inetd) or bool(is_running)
            )
        rows.append(
            {
                "service": r["service"],
                "installed": installed,
                "running": is_running,
                "enabled": enabled,
                "listening": listening,
                "ports": ports,
                "via_inetd": via_inetd,
            }
        )
    ssh_row = next(r for r in rows if r["service"] == "ssh")
    ssh["running"] = ssh_row["running"]
    if ssh["installed"] is None and ssh_row["installed"] is not None:
        ssh["installed"] = ssh_row["installed"]
    if ssh["source"] == "config" and ssh["unset_keys"] and ssh["installed"] is not False:
        problems.append(Problem(
            "sshd -T not available (needs privilege?): settings read from the config files; not set "
            "there (OpenSSH default applies, unknown here): " + ", ".join(ssh["unset_keys"]), ReasonCode.PERMISSION))
    data = {"ssh": ssh, "services": rows}
    return fact_with_problems("remote_admin", data, problems)


PROBE = HostProbe(
    name="remote_admin",
    items=("14.2.1", "13.1.1"),
    commands=COMMANDS,
    parse=parse,
    description_ko=(
        "원격관리 통제(sshd 유효 설정, root 로그인, 암호·다중인증, "
        "암호 알고리즘, telnet/rlogin/VNC/xrdp)"
    ),
    description_en=(
        "Remote administration (sshd effective settings, root login, MFA, algorithms, "
        "telnet/rlogin/VNC/xrdp)"
    ),
)

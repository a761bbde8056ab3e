"""Local accounts (guide 13.1.1, 5.3.1; account plan 002): who can log in, how, and since when.

Why: the guide asks for one account per person, no unused or shared accounts,
administrator rights reviewed, and accounts revoked when people leave; the
account plan asks that accounts get a real expiry instead of 9999-12-31 and
that accounts without authentication never be used.

SECRETS: password hashes never leave the target. ``/etc/shadow`` is reduced by
awk on the target to the hash's algorithm prefix ($6$, $y$...) or its state
(empty, locked) and the aging fields (see :data:`probes.host.common.SHADOW`);
``/etc/passwd`` and ``/etc/group`` password fields are reduced the same way.
Without root the shadow fields are ``needs_privilege``, never guessed.

Fact schema (``data``)::

    accounts: [{
        name, uid: int, gid: int, gecos, home, shell,
        login_shell: bool,             # shell is not nologin/false (an empty shell means /bin/sh)
        system: bool,                  # 0 < uid < UID_MIN
        password_state: "empty"|"locked"|"set"|"no_password_field"|"needs_privilege"|"unknown",
        hash_algo: str|null,           # sha512|sha256|yescrypt|gost-yescrypt|bcrypt|md5|des|bsdi|
                                       # scrypt|sunmd5|unknown
        password_in_passwd: bool,      # a hash or empty field in /etc/passwd itself
        password_last_change: str|null, password_age_days: int|null, must_change_password: bool|null,
        password_max_days: int|null, password_never_expires: bool|null, password_expired: bool|null,
        inactive_days: int|null,
        expires: str|null,             # account expiry date (ISO)
        account_never_expires: bool|null,   # no expiry, or 9999-12-31 and later
        account_expired: bool|null,
        last_login: str|null, last_login_days: int|null, last_login_from: str|null,
        never_logged_in: bool|null,
        generic_name: bool,
        admin: bool,                   # uid 0, admin group member or sudoers entry
    }]
    login_accounts: [str]
    uid0_non_root: [str]
    empty_password: [str]
    unlocked_login_accounts: [str]     # login shell and a usable (set or empty) password
    no_expiry: [str]                   # login accounts that never expire
    password_never_expires: [str]      # login accounts with no password maximum age
    never_logged_in: [str]             # login accounts
    generic_accounts: [str]            # login accounts with shared/generic names
    duplicate_uids: [{uid, names}]
    admin_groups: {group: [members]}
    sudoers: [{principal, nopasswd: bool, all_commands: bool}] | null   # null: not readable
    policy: {pass_max_days, pass_min_days, pass_warn_age, pass_min_len, uid_min, uid_max,
             inactive_days, default_expire, encrypt_method}
    shadow_readable: bool|null
    last_login_source: "lastlog"|"lastlog2"|null
    now: str|null
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Mapping, Optional

from ..base import (
    CommandSpec, Fact, HostProbe, Problem, RawOutput, ReasonCode, about, fact_with_problems, not_collected,
)
from .common import (
    COMMENT,
    LOGIN_DEFS,
    NOLOGIN_SHELLS,
    NOW,
    SHADOW,
    day_to_iso,
    days_since,
    iso,
    keyvals,
    load_data,
    now_of,
    show_files,
    split_files,
    split_parts,
    to_int,
    usable,
)



def _table() -> Any:
    """probes/data/accounts.yaml, read on first use (load_data caches it), never at import."""
    return load_data("accounts.yaml")

PASSWD = CommandSpec(
    "passwd",
    "if command -v awk >/dev/null 2>&1; then echo 'passwd: ok'; awk -F: 'NF >= 7 { p = $2; "
    'if (p == "x" || p == "*" || p == "!" || p == "!!") s = p; else if (p == "") s = "(empty)"; '
    'else s = "(hash)"; print $1 ":" s ":" $3 ":" $4 ":" substr($5, 1, 64) ":" $6 ":" $7 }\' '
    "/etc/passwd; else echo 'passwd: awk missing'; fi",
    timeout=10,
    may_hang=False,
)
GROUP = CommandSpec(
    "group",
    'if command -v awk >/dev/null 2>&1; then awk -F: \'NF >= 3 { print $1 ":" $3 ":" $4 }\' /etc/group; '
    "else echo 'group: awk missing'; fi",
    timeout=10,
    may_hang=False,
)
LASTLOG = CommandSpec(
    "lastlog",
    "if command -v lastlog2 >/dev/null 2>&1; then echo '### lastlog2'; $_ea_g lastlog2 2>&1; "
    "elif command -v lastlog >/dev/null 2>&1; then echo '### lastlog'; $_ea_g lastlog 2>&1; "
    "else echo '### none'; fi",
    timeout=20,
    may_hang=False,
)
SUDOERS = CommandSpec(
    "sudoers",
    'echo "uid=${_ea_uid:-$(id -u)}"; '
    + show_files("/etc/sudoers /etc/sudoers.d/*", drop=COMMENT + "|^Defaults", width=200) + "true",
    timeout=10,
    privileged=True,
    may_hang=False,
)
COMMANDS = (PASSWD, SHADOW, GROUP, LASTLOG, SUDOERS, LOGIN_DEFS, NOW)

_ALGOS = {
    "$1$": "md5",
    "$2a$": "bcrypt",
    "$2b$": "bcrypt",
    "$2y$": "bcrypt",
    "$2x$": "bcrypt",
    "$5$": "sha256",
    "$6$": "sha512",
    "$y$": "yescrypt",
    "$gy$": "gost-yescrypt",
    "$7$": "scrypt",
    "$md5$": "sunmd5",
    "$sha1$": "sha1crypt",
    "des": "des",
    "bsdi": "bsdi",
}
NEVER_DAYS = 2932896  # 9999-12-31 in days since 1970-01-01
_LASTLOG_DATE = re.compile(r"(\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d [+-]\d{4} \d{4})\s*$")


def hash_algo(prefix: str) -> Optional[str]:
    if not prefix:
        return None
    return _ALGOS.get(prefix, "unknown")


def parse_passwd(text: str) -> Optional[list[dict[str, Any]]]:
    lines = text.splitlines()
    if not lines or lines[0].strip() != "passwd: ok":
        return None
    out = []
    for ln in lines[1:]:
        f = ln.split(":")
        if len(f) < 7 or not f[2].lstrip("-").isdecimal():
            continue
        out.append(
            {
                "name": f[0],
                "pwfield": f[1],
                "uid": int(f[2]),
                "gid": to_int(f[3]),
                "gecos": f[4],
                "home": f[5],
                "shell": f[6],
            }
        )
    return out


def parse_shadow(text: str) -> tuple[Optional[dict[str, dict[str, Any]]], str]:
    """({name: fields}, status) where status is ok|needs_privilege|absent|awk_missing|garbled."""
    m = re.search(r"^shadow: (.+)$", text, re.M)
    state = m.group(1).strip() if m else ""
    if state.startswith("not readable"):
        return None, "needs_privilege"
    if state == "absent":
        return {}, "absent"
    if state == "awk missing":
        return None, "awk_missing"
    if state != "ok":
        return None, "garbled"
    out: dict[str, dict[str, Any]] = {}
    for ln in text.splitlines():
        f = ln.split(":")
        if ln.startswith(("uid=", "shadow: ")) or not ln.strip():
            continue
        if len(f) != 9 or f[1] not in ("set", "empty", "locked"):
            # a line we cannot read: its account's state is unknown, not "no shadow entry"
            out[f[0]] = {
                "state": "unknown",
                "algo": None,
                "lastchg": None,
                "min": None,
                "max": None,
                "warn": None,
                "inactive": None,
                "expire": None,
            }
            continue
        out[f[0]] = {
            "state": f[1],
            "algo": hash_algo(f[2]),
            "lastchg": to_int(f[3]),
            "min": to_int(f[4]),
            "max": to_int(f[5]),
            "warn": to_int(f[6]),
            "inactive": to_int(f[7]),
            "expire": to_int(f[8]),
        }
    return out, "ok"


def parse_groups(text: str) -> dict[str, dict[str, Any]]:
    groups = {}
    for ln in text.splitlines():
        f = ln.split(":")
        if len(f) == 3 and f[1].isdecimal():
            groups[f[0]] = {"gid": int(f[1]), "members": [m for m in f[2].split(",") if m]}
    return groups


def parse_lastlog(text: str) -> tuple[Optional[str], dict[str, dict[str, Any]], list[str]]:
    """(source, {name: {epoch|None, from, never}}, names whose date could not be read)."""
    parts = split_parts(text)
    if not parts or parts[0][0] == "none":
        return None, {}, []
    source, lines = parts[0]
    out: dict[str, dict[str, Any]] = {}
    unparsed: list[str] = []
    for ln in lines[1:] if lines and lines[0].startswith("Username") else lines:
        f = ln.split()
        if not f:
            continue
        name = f[0]
        if "**" in ln:
            out[name] = {"epoch": None, "from": None, "never": "Never logged in" in ln or None}
            if "Never logged in" not in ln:
                unparsed.append(name)
            continue
        m = _LASTLOG_DATE.search(ln)
        if not m:
            unparsed.append(name)
            continue
        try:
            t = int(datetime.strptime(m.group(1).replace("  ", " "), "%a %b %d %H:%M:%S %z %Y").timestamp())
        except ValueError:
            unparsed.append(name)
            continue
        head = ln[: m.start()].split()
        frm = head[2] if len(head) >= 3 else None
        out[name] = {"epoch": t, "from": frm, "never": False}
    return source, out, unparsed


def parse_sudoers(text: str) -> Optional[list[dict[str, Any]]]:
    if "(not readable)" in text:
        return None
    out = []
    for path, lines in split_files(text):
        for ln in lines:
            s = ln.strip()
            if not s or s.startswith(
                ("Cmnd_Alias", "User_Alias", "Host_Alias", "Runas_Alias", "@include", "#")
            ):
                continue
            m = re.match(r"^(\S+)\s+\S+\s*=\s*(.*)$", s)
            if not m:
                continue
            rest = m.group(2)
            out.append(
                {
                    "principal": m.group(1),
                    "nopasswd": "NOPASSWD" in rest,
                    "all_commands": bool(re.search(r"(^|[\s:)])ALL\s*$", rest)),
                    "source": path,
                }
            )
    return out


def is_generic(name: str) -> bool:
    n = name.lower()
    if n in _table()["generic_names"]:
        return True
    return any(re.fullmatch(re.escape(p) + r"\d+", n) for p in _table()["generic_prefixes"])


def _pw_expired(
    known: bool, today: Optional[int], lastchg: Optional[int], maxd: Optional[int]
) -> Optional[bool]:
    if not known or today is None:
        return None
    if lastchg and maxd is not None and maxd < 99999:
        return today > lastchg + maxd
    return False


def parse(outputs: Mapping[str, RawOutput]) -> Fact:
    pw_out, prob = usable(outputs, "passwd")
    if pw_out is None:
        return not_collected("accounts", about(prob, "/etc/passwd not read"))
    users = parse_passwd(pw_out.output)
    if users is None:
        return not_collected(
            "accounts", "/etc/passwd not read: " + (pw_out.output.strip()[:100] or "no output")
        )
    problems: list[str] = []
    now = now_of(outputs)
    today = int(now // 86400) if now is not None else None
    if now is None:
        problems.append("target clock not read: ages not computed")

    sh_out, sprob = usable(outputs, "shadow")
    if sh_out is None:
        shadow, sstate = None, "unread"
        problems.append(about(sprob, "shadow not read"))
    else:
        shadow, sstate = parse_shadow(sh_out.output)
        if sstate == "needs_privilege":
            problems.append(Problem("/etc/shadow not readable: password states need privilege", ReasonCode.PERMISSION))
        elif sstate not in ("ok", "absent"):
            problems.append(Problem(f"/etc/shadow not parsed ({sstate})", ReasonCode.PARSE_ERROR))

    ld_out, lprob = usable(outputs, "login_defs")
    defs: dict[str, str] = {}
    useradd: dict[str, str] = {}
    if ld_out is None:
        problems.append(about(lprob, "login.defs not read"))
    else:
        files = dict(split_files(ld_out.output))
        defs = keyvals(files.get("/etc/login.defs", []))
        useradd = keyvals(files.get("/etc/default/useradd", []), sep="=")
    uid_min = to_int(defs.get("UID_MIN")) or 1000
    policy = {
        "pass_max_days": to_int(defs.get("PASS_MAX_DAYS")),
        "pass_min_days": to_int(defs.get("PASS_MIN_DAYS")),
        "pass_warn_age": to_int(defs.get("PASS_WARN_AGE")),
        "pass_min_len": to_int(defs.get("PASS_MIN_LEN")),
        "uid_min": to_int(defs.get("UID_MIN")),
        "uid_max": to_int(defs.get("UID_MAX")),
        "inactive_days": to_int(useradd.get("INACTIVE")),
        "default_expire": useradd.get("EXPIRE") or None,
        "encrypt_method": defs.get("ENCRYPT_METHOD"),
    }

    gr_out, gprob = usable(outputs, "group")
    groups = parse_groups(gr_out.output) if gr_out is not None else {}
    if gr_out is None:
        problems.append(about(gprob, "/etc/group not read"))
    su_out, suprob = usable(outputs, "sudoers")
    sudoers = parse_sudoers(su_out.output) if su_out is not None else None
    if sudoers is None and su_out is not None:
        problems.append(Problem("sudoers not readable (needs privilege)", ReasonCode.PERMISSION))
    elif suprob is not None:
        problems.append(suprob)
    sudo_users = {e["principal"] for e in sudoers or [] if not e["principal"].startswith("%")}
    sudo_groups = {e["principal"][1:] for e in sudoers or [] if e["principal"].startswith("%")}
    # sudo/wheel always; other groups (Ubuntu's "admin") only when sudoers grants them rights
    admin_names = list(_table()["admin_groups"]) + sorted(sudo_groups - set(_table()["admin_groups"]))
    admin_groups = {g: groups[g]["members"] for g in admin_names if g in groups}
    gid_admin = {groups[g]["gid"] for g in admin_groups}

    ll_out, llprob = usable(outputs, "lastlog")
    ll_source, lastlog, unparsed = parse_lastlog(ll_out.output) if ll_out is not None else (None, {}, [])
    if ll_out is None:
        problems.append(about(llprob, "last logins not read"))
    elif ll_source is None:
        problems.append(Problem("no lastlog/lastlog2 on the target: last logins unknown", ReasonCode.TOOL_MISSING))
    names = {u["name"] for u in users}
    unparsed = [n for n in unparsed if n in names]
    if unparsed:
        problems.append(Problem(f"last login not understood for {len(unparsed)} account(s) (locale?)",
                                ReasonCode.PARSE_ERROR))

    accounts = []
    for u in users:
        shell = u["shell"].strip()
        login_shell = shell not in NOLOGIN_SHELLS
        pwf = u["pwfield"]
        in_passwd = pwf in ("(hash)", "(empty)")
        s = shadow.get(u["name"]) if shadow is not None else None
        algo: Optional[str] = None
        if pwf == "(empty)":
            state = "empty"
        elif pwf == "(hash)":
            state, algo = "set", "unknown"
        elif shadow is None:
            state = "needs_privilege" if sstate == "needs_privilege" else "unknown"
        elif s is None:
            state = "no_password_field" if pwf == "x" else "locked"
        else:
            state, algo = s["state"], s["algo"]
        lastchg = s["lastchg"] if s else None
        maxd = s["max"] if s else None
        expire = s["expire"] if s else None
        known = s is not None
        acct = {
            "name": u["name"],
            "uid": u["uid"],
            "gid": u["gid"],
            "gecos": u["gecos"],
            "home": u["home"],
            "shell": shell or "/bin/sh",
            "login_shell": login_shell,
            "system": 0 < u["uid"] < uid_min,
            "password_state": state,
            "hash_algo": algo,
            "password_in_passwd": in_passwd,
            "password_last_change": day_to_iso(lastchg) if lastchg else None,
            "password_age_days": (today - lastchg) if (today is not None and lastchg) else None,
            "must_change_password": (lastchg == 0) if known else None,
            "password_max_days": maxd,
            "password_never_expires": (maxd is None or maxd >= 99999) if known else None,
            "password_expired": _pw_expired(known, today, lastchg, maxd),
            "inactive_days": s["inactive"] if s else None,
            "expires": day_to_iso(expire) if expire is not None and expire < NEVER_DAYS else None,
            "account_never_expires": (expire is None or expire >= NEVER_DAYS) if known else None,
            "account_expired": (today >= expire)
            if (known and today is not None and expire is not None)
            else (False if known else None),
        }
        ll = lastlog.get(u["name"]) if ll_source else None
        if ll_source is None or u["name"] in unparsed:
            acct.update(
                {
                    "last_login": None,
                    "last_login_days": None,
                    "last_login_from": None,
                    "never_logged_in": None,
                }
            )
        elif ll is None:
            acct.update(
                {
                    "last_login": None,
                    "last_login_days": None,
                    "last_login_from": None,
                    "never_logged_in": None,
                }
            )
        else:
            acct.update(
                {
                    "last_login": iso(ll["epoch"]),
                    "last_login_days": days_since(ll["epoch"], now),
                    "last_login_from": ll["from"],
                    "never_logged_in": ll["never"],
                }
            )
        acct["generic_name"] = is_generic(u["name"])
        member_groups = {g for g, members in admin_groups.items() if u["name"] in members}
        acct["admin"] = (
            u["uid"] == 0 or u["gid"] in gid_admin or bool(member_groups) or u["name"] in sudo_users
        )
        accounts.append(acct)

    login = [a for a in accounts if a["login_shell"]]
    by_uid: dict[int, list[str]] = {}
    for a in accounts:
        by_uid.setdefault(a["uid"], []).append(a["name"])
    data = {
        "accounts": accounts,
        "login_accounts": [a["name"] for a in login],
        "uid0_non_root": [a["name"] for a in accounts if a["uid"] == 0 and a["name"] != "root"],
        "empty_password": [a["name"] for a in accounts if a["password_state"] == "empty"],
        "unlocked_login_accounts": [a["name"] for a in login if a["password_state"] in ("set", "empty")],
        "no_expiry": [a["name"] for a in login if a["account_never_expires"]],
        "password_never_expires": [a["name"] for a in login if a["password_never_expires"]],
        "never_logged_in": [a["name"] for a in login if a["never_logged_in"]],
        "generic_accounts": [a["name"] for a in login if a["generic_name"]],
        "duplicate_uids": [{"uid": k, "names": v} for k, v in sorted(by_uid.items()) if len(v) > 1],
        "admin_groups": admin_groups,
        "sudoers": [{k: v for k, v in e.items() if k != "source"} for e in sudoers]
        if sudoers is not None
        else None,
        "policy": policy,
        "shadow_readable": True
        if sstate in ("ok", "absent")
        else (False if sstate == "needs_privilege" else None),
        "last_login_source": ll_source,
        "now": iso(now),
    }
    return fact_with_problems("accounts", data, problems)


PROBE = HostProbe(
    name="accounts",
    items=("13.1.1", "5.3.1"),
    commands=COMMANDS,
    parse=parse,
    description_ko=(
        "계정 현황(로그인 가능 계정, UID 0, 빈 암호, 만료일 미설정, "
        "최종 로그인, 공용 계정, 관리자 권한)"
    ),
    description_en=(
        "Accounts (login accounts, UID 0, empty passwords, no expiry, last login, shared names, admins)"
    ),
)

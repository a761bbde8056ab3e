"""Password and lockout policy (guide 13.1.1, 12.1.1): hashing method, quality rules, history, lockout.

Why: the guide asks for hard-to-guess passwords and safe one-way hashing of
them (12.1.1 lists SHA-224/256/384/512 as safe one-way algorithms). This fact
reads login.defs, the PAM password/auth stacks (Debian ``common-*``, RHEL
``system-auth``/``password-auth``) and pwquality.conf / faillock.conf, and counts
the hash algorithms in use from the target-side shadow summary (no hash ever
leaves the host, see :mod:`probes.host.accounts`).

Only values that are set somewhere are reported; a value left to the module's
compiled-in default is null (defaults differ between versions).

Fact schema (``data``)::

    hash: {encrypt_method: str|null,          # login.defs ENCRYPT_METHOD
           pam_unix_method: str|null,         # sha512|yescrypt|md5|... on pam_unix's password line
           sha_crypt_rounds: int|null, yescrypt_cost_factor: int|null,
           algorithms: {algo: count}|null,    # hashes in /etc/shadow by algorithm (null: needs privilege)
           weak_hash_accounts: [str]|null}    # md5, des, bsdi, sunmd5 hashes
    quality: {module: "pam_pwquality"|"pam_cracklib"|"pam_passwdqc"|null,
              minlen, dcredit, ucredit, lcredit, ocredit, minclass, maxrepeat, maxclassrepeat, difok,
              retry: int|null,
              enforce_for_root: bool|null, dictcheck: int|null}
    history: {module: "pam_pwhistory"|"pam_unix"|null, remember: int|null}
    lockout: {module: "pam_faillock"|"pam_tally2"|"pam_tally"|null, deny: int|null, unlock_time: int|null,
              fail_interval: int|null, even_deny_root: bool|null, root_unlock_time: int|null}
    aging: {pass_max_days, pass_min_days, pass_warn_age}   # login.defs defaults for new accounts
    pam_files: [str]                          # PAM and module configuration files read
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Optional

from ..base import Fact, HostProbe, Problem, RawOutput, ReasonCode, about, fact_with_problems, not_collected
from .accounts import parse_shadow
from .common import LOGIN_DEFS, PAM_CONF, SHADOW, keyvals, split_files, to_int, usable

COMMANDS = (LOGIN_DEFS, PAM_CONF, SHADOW)

_PASSWORD_STACKS = ("/etc/pam.d/common-password", "/etc/pam.d/system-auth", "/etc/pam.d/password-auth")
_AUTH_STACKS = (
    "/etc/pam.d/common-auth",
    "/etc/pam.d/system-auth",
    "/etc/pam.d/password-auth",
    "/etc/pam.d/common-account",
)
_QUALITY_KEYS = (
    "minlen",
    "dcredit",
    "ucredit",
    "lcredit",
    "ocredit",
    "minclass",
    "maxrepeat",
    "maxclassrepeat",
    "difok",
    "retry",
    "dictcheck",
)
_UNIX_METHODS = ("md5", "bigcrypt", "sha256", "sha512", "blowfish", "yescrypt", "gost_yescrypt")
WEAK_ALGOS = ("md5", "des", "bsdi", "sunmd5")


def pam_lines(lines: list[str]) -> list[dict[str, Any]]:
    """PAM rules → [{type, control, module, args: {k: v|True}}] (bracketed controls kept whole)."""
    out = []
    for ln in lines:
        s = ln.strip()
        if not s or s.startswith("#"):
            continue
        m = re.match(r"^(-?)(auth|account|password|session)\s+(\[[^\]]*\]|\S+)\s+(\S+)\s*(.*)$", s)
        if not m:
            continue
        args: dict[str, Any] = {}
        for a in m.group(5).split():
            k, eq, v = a.partition("=")
            args[k] = v if eq else True
        out.append(
            {
                "type": m.group(2),
                "control": m.group(3),
                "module": m.group(4).rsplit("/", 1)[-1],
                "args": args,
                "optional": m.group(1) == "-",
            }
        )
    return out


def conf_values(lines: list[str]) -> dict[str, Any]:
    """``key = value`` / bare ``key`` lines (pwquality.conf, faillock.conf)."""
    out: dict[str, Any] = {}
    for ln in lines:
        s = ln.split("#", 1)[0].strip()
        if not s:
            continue
        if "=" in s:
            k, _, v = s.partition("=")
            out[k.strip()] = v.strip()
        else:
            out[s] = True
    return out


def _int(v: Any) -> Optional[int]:
    if v is True or v is None:
        return None
    return to_int(v)


def parse(outputs: Mapping[str, RawOutput]) -> Fact:
    pam_out, prob = usable(outputs, "pam_conf")
    if pam_out is None:
        return not_collected("password_policy", about(prob, "PAM configuration not read"))
    files = dict(split_files(pam_out.output))
    problems: list[str] = []
    unreadable = [p for p, lines in files.items() if lines[:1] == ["(not readable)"]]
    if unreadable:
        problems.append(Problem("not readable (needs privilege): " + ", ".join(unreadable), ReasonCode.PERMISSION))

    pw_rules = [r for p in _PASSWORD_STACKS for r in pam_lines(files.get(p, [])) if r["type"] == "password"]
    auth_rules = [
        r for p in _AUTH_STACKS for r in pam_lines(files.get(p, [])) if r["type"] in ("auth", "account")
    ]
    if not any(p in files for p in _PASSWORD_STACKS):
        problems.append(Problem("no PAM password stack found (common-password/system-auth)", ReasonCode.TOOL_MISSING))

    # Quality: pwquality.conf (+ .d) then module arguments.
    qmod = next(
        (r for r in pw_rules if r["module"] in ("pam_pwquality.so", "pam_cracklib.so", "pam_passwdqc.so")),
        None,
    )
    qvals: dict[str, Any] = {}
    if qmod is not None and qmod["module"] == "pam_pwquality.so":
        for p in sorted(f for f in files if f.startswith("/etc/security/pwquality.conf")):
            if p.startswith("/etc/security/pwquality.conf.d/"):
                continue
            qvals.update(conf_values(files[p]))
        for p in sorted(f for f in files if f.startswith("/etc/security/pwquality.conf.d/")):
            qvals.update(conf_values(files[p]))
    if qmod is not None:
        qvals.update(qmod["args"])
    quality: dict[str, Any] = {"module": qmod["module"][:-3] if qmod else None}
    for k in _QUALITY_KEYS:
        quality[k] = _int(qvals.get(k))
    quality["enforce_for_root"] = (
        bool(qvals.get("enforce_for_root")) if qmod and qmod["module"] != "pam_passwdqc.so" else None
    )

    # History: pam_pwhistory remember=, or pam_unix remember=.
    hist = next((r for r in pw_rules if r["module"] == "pam_pwhistory.so"), None)
    unix_pw = next((r for r in pw_rules if r["module"] == "pam_unix.so"), None)
    if hist is not None:
        history = {"module": "pam_pwhistory", "remember": _int(hist["args"].get("remember"))}
    elif unix_pw is not None and "remember" in unix_pw["args"]:
        history = {"module": "pam_unix", "remember": _int(unix_pw["args"].get("remember"))}
    else:
        history = {"module": None, "remember": None}

    # Lockout: pam_faillock (+ faillock.conf), pam_tally2, pam_tally.
    lmod = next(
        (r for r in auth_rules if r["module"] in ("pam_faillock.so", "pam_tally2.so", "pam_tally.so")), None
    )
    lvals: dict[str, Any] = {}
    if lmod is not None and lmod["module"] == "pam_faillock.so":
        lvals.update(conf_values(files.get("/etc/security/faillock.conf", [])))
    if lmod is not None:
        for r in auth_rules:
            if r["module"] == lmod["module"]:
                lvals.update(r["args"])
    lockout = {
        "module": lmod["module"][:-3] if lmod else None,
        "deny": _int(lvals.get("deny")),
        "unlock_time": _int(lvals.get("unlock_time")),
        "fail_interval": _int(lvals.get("fail_interval")),
        "even_deny_root": bool(lvals.get("even_deny_root")) if lmod else None,
        "root_unlock_time": _int(lvals.get("root_unlock_time")),
    }

    ld_out, lprob = usable(outputs, "login_defs")
    defs: dict[str, str] = {}
    if ld_out is None:
        problems.append(about(lprob, "login.defs not read"))
    else:
        defs = keyvals(dict(split_files(ld_out.output)).get("/etc/login.defs", []))
    method = None
    if unix_pw is not None:
        method = next((m for m in _UNIX_METHODS if m in unix_pw["args"]), None)
    sh_out, sprob = usable(outputs, "shadow")
    algos: Optional[dict[str, int]] = None
    weak: Optional[list[str]] = None
    if sh_out is None:
        problems.append(about(sprob, "shadow summary not read"))
    else:
        shadow, state = parse_shadow(sh_out.output)
        if shadow is None:
            problems.append(
                "hash algorithms: /etc/shadow " + ("needs privilege" if state == "needs_privilege" else state)
            )
        else:
            algos = {}
            weak = []
            for name, s in shadow.items():
                if s["algo"]:
                    algos[s["algo"]] = algos.get(s["algo"], 0) + 1
                    if s["algo"] in WEAK_ALGOS:
                        weak.append(name)
    data = {
        "hash": {
            "encrypt_method": defs.get("ENCRYPT_METHOD"),
            "pam_unix_method": method,
            "sha_crypt_rounds": to_int(defs.get("SHA_CRYPT_MIN_ROUNDS") or defs.get("SHA_CRYPT_MAX_ROUNDS")),
            "yescrypt_cost_factor": to_int(defs.get("YESCRYPT_COST_FACTOR")),
            "algorithms": algos,
            "weak_hash_accounts": weak,
        },
        "quality": quality,
        "history": history,
        "lockout": lockout,
        "aging": {
            "pass_max_days": to_int(defs.get("PASS_MAX_DAYS")),
            "pass_min_days": to_int(defs.get("PASS_MIN_DAYS")),
            "pass_warn_age": to_int(defs.get("PASS_WARN_AGE")),
        },
        "pam_files": sorted(files),
    }
    return fact_with_problems("password_policy", data, problems)


PROBE = HostProbe(
    name="password_policy",
    items=("13.1.1", "12.1.1"),
    commands=COMMANDS,
    parse=parse,
    description_ko="비밀번호 정책(해시 알고리즘, 복잡도, 재사용 제한, 로그인 실패 잠금)",
    description_en="Password and lockout policy (hash algorithm, complexity, history, lockout)",
)

"""Patch level (guide 14.6.1): pending updates, security updates, last update, reboot needed, key versions.

Why: the guide asks that security patches be reviewed and applied regularly and
that OS and software versions be kept as a list. The probe never refreshes a
package index (no ``apt-get update``, dnf/yum run cache-only with ``-C``): it
reports what the target's own cached index says, plus the index's age, so a
stale index is visible instead of passing for "nothing pending".

Security updates: apt counts upgrades whose candidate comes from a ``*-security`` suite
(``apt-cache policy`` of the installed packages, filtered on the target; older recordings hold
``apt list --upgradable``, and ``apt-get -s dist-upgrade`` is the fallback without apt-cache);
dnf/yum count the packages named by ``updateinfo list --security``. zypper and
apk have no security count here (null).

Fact schema (``data``)::

    manager: "apt"|"dnf"|"yum"|"zypper"|"apk"|null
    index_updated: str|null       # newest package-index file on the target (ISO UTC)
    index_age_days: int|null      # its age; a stale index undercounts pending updates
    security_index: bool|null     # apt: an index of a security suite is there (-security, /updates, ESM);
                                  # without one "0 security updates" says nothing. null: not apt / not read
    pending_total: int|null       # packages with a newer version in the cached index
    pending_security: int|null    # of which security updates
    security_advisories: int|null # dnf/yum: distinct advisories (RHSA/ALAS/...)
    pending: [{name, from_version, to_version, security: bool|null, origin}]   # at most 500
    pending_truncated: bool
    last_update: str|null         # newest package install/upgrade (ISO UTC)
    days_since_update: int|null
    last_update_source: "dpkg.log"|"rpm installtime"|"dpkg status"|"apk db"|null
    recent_updates: [{time, action, package, version}]   # newest last, at most 30
    reboot_required: bool|null    # true if any signal says so; false only if a check ran and said no
    reboot_signals: {flag_file: bool|null, needs_restarting: bool|null, newer_kernel_installed: bool|null}
    running_kernel: str|null
    newest_installed_kernel: str|null
    packages: {name: version}     # key packages installed (data/key_packages.yaml)
    components: {component: version}  # openssl, openssh, apache, nginx, mysql, postgresql...
"""

from __future__ import annotations

import re
import shlex
from datetime import datetime, timezone
from typing import Any, Mapping, Optional

from ..base import (
    CommandSpec, Fact, FactStatus, HostProbe, LazyCommands, Problem, RawOutput, ReasonCode, about, first_code,
)
from .common import NOW, days_since, iso, load_data, now_of, split_parts, tz_of, usable



def _key() -> Any:
    """probes/data/key_packages.yaml, read on first use (load_data caches it), never at import."""
    return load_data("key_packages.yaml")


def _glob_ere(glob: str) -> str:
    """A dpkg-query name pattern (shell glob) as an awk ERE: ``php[0-9]*-common`` → ``php[0-9].*-common``."""
    out = []
    for ch in glob:
        out.append(".*" if ch == "*" else "." if ch == "?" else ch if ch.isalnum() or ch in "[]-" else "\\" + ch)
    return "".join(out)

_APT_POLICY_AWK = r"""
/^[EW]: / { print "! " $0; next }
/^rc=[0-9]+$/ { print; next }
/^[^ ].*:$/ { p = substr($0, 1, length($0) - 1); i = ""; c = ""; v = ""; next }
$1 == "Installed:" { i = $2; next }
$1 == "Candidate:" { c = $2; next }
/^ [ *][ *][ *] [^ ]/ { v = ($1 == "***") ? $2 : $1; next }
i != "" && i != "(none)" && c != "(none)" && c != i && v == c && $1 ~ /^-?[0-9]+$/ && NF >= 3 {
  s = (p in o) ? o[p] "," $3 : $3; o[p] = s; if (!(p in f)) { f[p] = i; t[p] = c; n[++k] = p } }
END { for (j = 1; j <= k; j++) print n[j], f[n[j]], t[n[j]], o[n[j]] }"""
# installed packages as ``dpkg-query -W -f='${binary:Package}'`` names them (arch-qualified when Multi-Arch: same);
# paragraph mode (RS=""): one record per package stanza, whether or not the file ends with a blank line
_INSTALLED_AWK = (
    "BEGIN { RS = \"\"; FS = \"\\n\" } { p = s = a = m = \"\"; for (i = 1; i <= NF; i++) { "
    "if ($i ~ /^Package: /) p = substr($i, 10); else if ($i ~ /^Status: /) s = $i; "
    "else if ($i ~ /^Architecture: /) a = substr($i, 15); else if ($i ~ /^Multi-Arch: same/) m = 1 } "
    "if (s ~ / installed$/) print (m ? p \":\" a : p) }"
)
_APT_POLICY = (
    # installed packages straight from dpkg's database (what ``dpkg-query -W -f='${binary:Package}'`` lists)
    "awk " + shlex.quote(_INSTALLED_AWK) + " /var/lib/dpkg/status | "
    "{ $_ea_g xargs -r apt-cache policy 2>&1; echo \"rc=$?\"; } | awk " + shlex.quote(_APT_POLICY_AWK.strip()) + "; "
)

PKG_UPDATES = CommandSpec(
    "pkg_updates",
    "if command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1; then echo '### manager apt'; "
    "echo '### index'; set -- /var/lib/apt/lists/*Release; [ -f \"$1\" ] && stat -c '%Y %n' \"$@\"; "
    # apt-cache policy on the installed packages gives each one's installed and candidate version without
    # building a dependency cache (half the CPU of ``apt list --upgradable``, 1/7 of a simulation); awk keeps
    # only the upgradable ones: ``name installed candidate suite[,suite]``, and apt's own E:/W: lines.
    "if command -v apt-cache >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then echo '### policy'; "
    + _APT_POLICY +
    "elif command -v apt >/dev/null 2>&1; then echo '### list'; $_ea_g apt list --upgradable 2>&1; echo \"rc=$?\"; "
    "else echo '### simulate'; $_ea_g apt-get -s -o Debug::NoLocking=1 -o APT::Get::Show-User-Simulation-Note=false "
    'dist-upgrade 2>&1; echo "rc=$?"; fi; '
    "elif command -v dnf >/dev/null 2>&1; then echo '### manager dnf'; "
    "echo '### index'; for f in /var/cache/dnf/*/repodata/repomd.xml; do [ -f \"$f\" ] && stat -c '%Y %n' "
    "\"$f\"; done; "
    "echo '### check-update'; $_ea_g dnf -C -q --noplugins check-update 2>&1; echo \"rc=$?\"; "
    "elif command -v yum >/dev/null 2>&1; then echo '### manager yum'; "
    "echo '### index'; for f in /var/cache/yum/*/*/*/repomd.xml /var/cache/yum/*/repomd.xml; do "
    '[ -f "$f" ] && stat -c \'%Y %n\' "$f"; done; '
    "echo '### check-update'; $_ea_g yum -C -q --noplugins check-update 2>&1; echo \"rc=$?\"; "
    "elif command -v zypper >/dev/null 2>&1; then echo '### manager zypper'; "
    "echo '### list-updates'; $_ea_g zypper --non-interactive --no-refresh list-updates 2>&1; echo \"rc=$?\"; "
    "elif command -v apk >/dev/null 2>&1; then echo '### manager apk'; "
    "echo '### index'; for f in /var/cache/apk/APKINDEX.*.tar.gz /lib/apk/db/*.tar.gz; do "
    '[ -f "$f" ] && stat -c \'%Y %n\' "$f"; done; '
    "echo '### version'; $_ea_g apk version -l '<' 2>&1; echo \"rc=$?\"; "
    "else echo '### manager none'; fi",
    timeout=120,
    may_hang=False,
)

PKG_SECURITY = CommandSpec(
    "pkg_security",
    "if command -v dnf >/dev/null 2>&1; then echo '### updateinfo dnf'; "
    '$_ea_g dnf -C -q --noplugins updateinfo list --security --available 2>&1; echo "rc=$?"; '
    "elif command -v yum >/dev/null 2>&1; then echo '### updateinfo yum'; "
    '$_ea_g yum -C -q --noplugins updateinfo list security 2>&1; echo "rc=$?"; '
    "else echo '### updateinfo none'; fi",
    timeout=120,
    may_hang=False,
)

PKG_HISTORY = CommandSpec(
    "pkg_history",
    "if command -v dpkg >/dev/null 2>&1; then echo '### dpkg-status'; stat -c '%Y' /var/lib/dpkg/status "
    "2>&1; "
    "echo '### dpkg-log'; set --; for f in /var/log/dpkg.log.1 /var/log/dpkg.log; do [ -r \"$f\" ] && "
    "set -- \"$@\" \"$f\"; done; [ $# -gt 0 ] && grep -h -E '^[0-9-]+ [0-9:]+ (install|upgrade) ' \"$@\" | tail -n 30; "
    "echo '### apt-history'; [ -r /var/log/apt/history.log ] && "
    "grep -E '^(Start-Date|Commandline):' /var/log/apt/history.log | tail -n 20; fi; "
    "if command -v rpm >/dev/null 2>&1 && { [ -d /var/lib/rpm ] || [ -d /usr/lib/sysimage/rpm ]; }; then "
    "echo '### rpm-installtime'; "
    "$_ea_g rpm -qa --qf '%{INSTALLTIME} %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\\n' 2>&1 | sort -rn | head -n 30; "
    "fi; "
    "if [ -f /lib/apk/db/installed ]; then echo '### apk-db'; stat -c '%Y' /lib/apk/db/installed; fi; true",
    timeout=60,
    may_hang=False,
)

def _versions_awk() -> str:
    """Key packages' ``ii  name version`` lines, as ``dpkg-query -W`` with the key_packages.yaml globs gives them."""
    return (
        "BEGIN { RS = \"\"; FS = \"\\n\" } { p = s = v = \"\"; for (i = 1; i <= NF; i++) { "
        "if ($i ~ /^Package: /) p = substr($i, 10); else if ($i ~ /^Status: /) s = substr($i, 9); "
        "else if ($i ~ /^Version: /) v = substr($i, 10) } "
        "if (s == \"install ok installed\" && p ~ /^(" + "|".join(_glob_ere(n) for n in _key()["deb"])
        + ")$/) print \"ii  \" p \" \" v }"
    )


def _pkg_versions() -> CommandSpec:
    """Built from the key-packages table on first use (see LazyCommands)."""
    key = _key()
    return CommandSpec(
        "pkg_versions",
        # dpkg's database read by one awk (dpkg-query costs twice as much); same ``ii  name version`` lines
        "if command -v dpkg-query >/dev/null 2>&1; then echo '### dpkg'; "
        "if [ -r /var/lib/dpkg/status ]; then awk " + shlex.quote(_versions_awk()) + " /var/lib/dpkg/status; "
        "else dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Version}\\n' "
        + " ".join(shlex.quote(n) for n in key["deb"])
        + " 2>/dev/null | grep '^ii'; fi; fi; "
        "if command -v rpm >/dev/null 2>&1 && { [ -d /var/lib/rpm ] || [ -d /usr/lib/sysimage/rpm ]; }; then "
        "echo '### rpm'; "
        "$_ea_g rpm -qa --qf '%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n' "
        + " ".join(shlex.quote(n) for n in key["rpm"])
        + " 2>&1 | sort; fi; "
        "if command -v apk >/dev/null 2>&1; then echo '### apk'; $_ea_g apk info -v 2>/dev/null | grep -E '^("
        + "|".join(re.escape(n) for n in key["apk"])
        + ")-[0-9]'; fi; true",
        timeout=60,
        may_hang=False,
    )


REBOOT = CommandSpec(
    "reboot_status",
    "echo '### running'; uname -r; "
    "echo '### flag'; if [ -f /var/run/reboot-required ]; then echo present; "
    "head -n 20 /var/run/reboot-required.pkgs 2>/dev/null; else echo absent; fi; "
    "echo '### flag-mechanism'; for f in /usr/share/update-notifier/notify-reboot-required "
    '/etc/kernel/postinst.d/update-notifier /usr/sbin/needrestart; do [ -e "$f" ] && echo "$f"; done; '
    "echo '### needs-restarting'; if command -v dnf >/dev/null 2>&1; then $_ea_g dnf -C -q needs-restarting -r "
    "2>&1; "
    'echo "rc=$?"; elif command -v needs-restarting >/dev/null 2>&1; then $_ea_g needs-restarting -r 2>&1; echo '
    '"rc=$?"; '
    "else echo absent; fi; "
    # the glob is sorted like ``ls``; builtins only (this was ls | grep | grep | head)
    "echo '### kernels'; _n=0; for k in /boot/vmlinu[xz]-*; do [ -e \"$k\" ] || continue; "
    "case ${k##*/} in *rescue*) continue;; esac; _n=$((_n + 1)); [ $_n -le 30 ] && echo \"${k##*/}\"; done; "
    "true",
    timeout=60,
    may_hang=False,
)

COMMANDS = LazyCommands(lambda: (PKG_UPDATES, PKG_SECURITY, PKG_HISTORY, _pkg_versions(), REBOOT, NOW))

MAX_PENDING = 500

_INST = re.compile(r"^Inst (\S+) (?:\[([^\]]*)\] )?\((\S+) (.*?) \[[^\]]*\]\)")
#: ``RHSA-2024:8447 Important/Sec. kernel-...``, ``ALAS2KERNEL-5.10-2024-071 important/Sec. kernel-...``
_ADVISORY = re.compile(r"^([A-Z][A-Za-z0-9]*-[\w.:-]*\d[\w.:-]*)\s+(\S*[Ss]ec\S*)\s+(\S+-\S+)$")


def _rc(lines: list[str]) -> Optional[int]:
    for line in reversed(lines):
        m = re.match(r"^rc=(\d+)$", line.strip())
        if m:
            return int(m.group(1))
    return None


def _index_age(lines: list[str]) -> Optional[int]:
    times = [int(ln.split()[0]) for ln in lines if ln.split() and ln.split()[0].isdecimal()]
    return max(times) if times else None


def _security_index(lines: list[str]) -> bool:
    """Whether apt's lists hold a security suite's Release file (``…_dists_bookworm-security_InRelease``,
    ``…_dists_buster_updates_InRelease``, ESM's ``…-infra-security_…``)."""
    names = [ln.split(None, 1)[1] for ln in lines if len(ln.split(None, 1)) == 2]
    return any(re.search(r"_dists_[^/]*(-security|_updates)_(In)?Release$", n) for n in names)


def nevra_name(nevra: str) -> str:
    """``openssl-1:3.0.7-27.el9_4.x86_64`` → ``openssl``."""
    base = re.sub(r"\.(x86_64|aarch64|i686|noarch|ppc64le|s390x|armv7hl|src)$", "", nevra)
    parts = base.rsplit("-", 2)
    return parts[0] if len(parts) == 3 else base


def parse_apt(lines: list[str]) -> list[dict[str, Any]]:
    pending = []
    for line in lines:
        m = _INST.match(line)
        if not m:
            continue
        origin = m.group(4)
        pending.append(
            {
                "name": m.group(1),
                "from_version": m.group(2),
                "to_version": m.group(3),
                "security": bool(re.search(r"-security\b|Debian-Security:", origin)),
                "origin": origin[:200],
            }
        )
    return pending


_APT_LIST = re.compile(r"^(\S+?)/(\S+)\s+(\S+)\s+(\S+)\s+\[upgradable from: ([^\]]+)\]")


def parse_apt_list(lines: list[str]) -> list[dict[str, Any]]:
    """``apt list --upgradable``: ``name/suite[,suite] newver arch [upgradable from: oldver]``."""
    pending = []
    for line in lines:
        m = _APT_LIST.match(line.strip())
        if not m:
            continue
        suites = m.group(2).split(",")
        pending.append({
            "name": m.group(1),
            "from_version": m.group(5),
            "to_version": m.group(3),
            "security": any(x.endswith("-security") for x in suites),
            "origin": m.group(2)[:200],
        })
    return pending


def parse_apt_policy(lines: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Our filtered ``apt-cache policy``: ``name installed candidate suite[,suite]`` rows, ``! E:`` errors."""
    pending, errors = [], []
    for line in lines:
        if line.startswith("! "):
            errors.append(line[2:].strip())
            continue
        f = line.split()
        if len(f) != 4 or line.startswith("rc="):
            continue
        suites = f[3].split(",")
        pending.append({
            "name": f[0],
            "from_version": f[1],
            "to_version": f[2],
            "security": any(x.split("/")[0].endswith("-security") for x in suites),
            "origin": f[3][:200],
        })
    return pending, errors


def parse_check_update(lines: list[str]) -> list[dict[str, Any]]:
    """``dnf/yum check-update``: ``name.arch  version  repo`` rows (yum wraps long names)."""
    pending: list[dict[str, Any]] = []
    carry: list[str] = []
    for line in lines:
        if re.match(r"^(Obsoleting|Security:|rc=|Last metadata|Loaded plugins)", line.strip()):
            if line.strip().startswith("Obsoleting"):
                break
            continue
        toks = carry + line.split()
        if not toks:
            carry = []
            continue
        if len(toks) < 3:
            carry = toks if "." in toks[0] else []
            continue
        carry = []
        name_arch, version, repo = toks[0], toks[1], toks[2]
        if "." not in name_arch or not re.match(r"^[\w:.+~^-]+$", version):
            continue
        pending.append(
            {
                "name": name_arch.rsplit(".", 1)[0],
                "from_version": None,
                "to_version": version,
                "security": None,
                "origin": repo,
            }
        )
    return pending


def parse_updateinfo(lines: list[str]) -> tuple[set[str], set[str]]:
    """(package names, advisory ids) of ``updateinfo list --security``."""
    names: set[str] = set()
    advisories: set[str] = set()
    for line in lines:
        m = _ADVISORY.match(line.strip())
        if m:
            advisories.add(m.group(1))
            names.add(nevra_name(m.group(3)))
    return names, advisories


def parse_history(text: str, tz: Optional[timezone]) -> dict[str, Any]:
    """Newest install/upgrade time and the recent updates, from dpkg.log or rpm INSTALLTIME."""
    tz = tz or timezone.utc
    best: Optional[int] = None
    source = None
    recent: list[dict[str, Any]] = []
    fallback: Optional[tuple[int, str]] = None
    for header, lines in split_parts(text):
        if header == "dpkg-log":
            for line in lines:
                m = re.match(r"^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) (install|upgrade) (\S+) (\S+) (\S+)", line)
                if not m:
                    continue
                t = int(datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}").replace(tzinfo=tz).timestamp())
                recent.append(
                    {"time": iso(t), "action": m.group(3), "package": m.group(4), "version": m.group(6)}
                )
                if best is None or t > best:
                    best, source = t, "dpkg.log"
        elif header == "rpm-installtime":
            for line in lines:
                m = re.match(r"^(\d{9,11}) (\S+)$", line.strip())
                if not m:
                    continue
                t = int(m.group(1))
                recent.append({"time": iso(t), "action": "install", "package": m.group(2), "version": None})
                if best is None or t > best:
                    best, source = t, "rpm installtime"
        elif header in ("dpkg-status", "apk-db"):
            for line in lines:
                if line.strip().isdecimal():
                    fallback = (int(line.strip()), "dpkg status" if header == "dpkg-status" else "apk db")
    if best is None and fallback:
        best, source = fallback
    recent.sort(key=lambda r: r["time"] or "")
    return {"last": best, "source": source, "recent": recent[-30:]}


def _kver(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v))


def parse_reboot(text: str) -> dict[str, Any]:
    parts = dict(split_parts(text))
    running = (parts.get("running") or [""])[0].strip() or None
    flag_lines = [ln.strip() for ln in parts.get("flag", []) if ln.strip()]
    mechanism = [ln for ln in parts.get("flag-mechanism", []) if ln.strip()]
    if flag_lines and flag_lines[0] == "present":
        flag: Optional[bool] = True
    elif flag_lines and flag_lines[0] == "absent" and mechanism:
        flag = False
    else:
        flag = None  # nothing on this host writes the flag file: its absence says nothing
    nr_lines = parts.get("needs-restarting", [])
    nr: Optional[bool] = None
    rc = _rc(nr_lines)
    if rc is not None:
        joined = "\n".join(nr_lines)
        if rc == 1 and re.search(r"reboot is required|Reboot is required", joined):
            nr = True
        elif rc == 0:
            nr = False
    kernels = []
    for ln in parts.get("kernels", []):
        m = re.match(r"^vmlinu[xz]-(.+)$", ln.strip())
        if m:
            kernels.append(m.group(1))
    newest = max(kernels, key=_kver) if kernels else None
    newer: Optional[bool] = None
    if newest and running:
        newer = _kver(newest) > _kver(running)
    signals = {"flag_file": flag, "needs_restarting": nr, "newer_kernel_installed": newer}
    known = [v for v in signals.values() if v is not None]
    required = True if any(known) else (False if known else None)
    return {"required": required, "signals": signals, "running": running, "newest": newest}


def parse_versions(text: str) -> tuple[dict[str, str], dict[str, str]]:
    pkgs: dict[str, str] = {}
    for header, lines in split_parts(text):
        for line in lines:
            f = line.split()
            if header == "dpkg" and len(f) >= 3 and f[0] == "ii":
                pkgs[f[1].split(":", 1)[0]] = f[2]
            elif header == "rpm" and len(f) == 2 and "not installed" not in line:
                v = f[1][2:] if f[1].startswith("0:") else f[1]
                pkgs[f[0]] = v
            elif header == "apk" and len(f) == 1:
                m = re.match(r"^(.+?)-(\d[^-]*-r\d+)$", f[0])
                if m:
                    pkgs[m.group(1)] = m.group(2)
    comps: dict[str, str] = {}
    for comp, patterns in _key()["components"].items():
        for pat in patterns:
            hit = sorted(n for n in pkgs if re.match(pat, n))
            if hit:
                comps[comp] = pkgs[hit[0]]
                break
    return pkgs, comps


def parse(outputs: Mapping[str, RawOutput]) -> Fact:
    problems: list[str] = []
    up, prob = usable(outputs, "pkg_updates")
    parts = split_parts(up.output) if up is not None else []
    pmap = dict(parts)
    manager = next((h.split()[1] for h, _ in parts if h.startswith("manager ")), None)
    if manager == "none":
        manager = None
    now = now_of(outputs)
    data: dict[str, Any] = {"manager": manager}
    idx = _index_age(pmap.get("index", []))
    data["index_updated"] = iso(idx)
    data["index_age_days"] = days_since(idx, now)
    data["security_index"] = _security_index(pmap.get("index", [])) if manager == "apt" else None
    pending: Optional[list[dict[str, Any]]] = None
    sec_count: Optional[int] = None
    advisories: Optional[int] = None
    if manager == "apt":
        how = next((h for h in ("policy", "list", "simulate") if h in pmap), "policy")
        lines = pmap.get(how, [])
        rc = _rc(lines)
        errors: list[str] = []
        if how == "policy":
            found, errors = parse_apt_policy(lines)
        if idx is None:
            problems.append(Problem("apt has no package index (/var/lib/apt/lists is empty): pending updates unknown",
                                    ReasonCode.TOOL_MISSING))
        elif rc != 0 or any(e.startswith("E:") for e in errors):
            detail = "; ".join(errors) if errors else " ".join(lines[-2:])
            problems.append(f"apt {how} failed (rc={rc}): " + detail[:200])
        else:
            pending = found if how == "policy" else parse_apt_list(lines) if how == "list" else parse_apt(lines)
            sec_count = sum(1 for p in pending if p["security"])
    elif manager in ("dnf", "yum"):
        lines = pmap.get("check-update", [])
        rc = _rc(lines)
        if rc in (0, 100):
            pending = parse_check_update(lines)
            if rc == 100 and not pending:
                problems.append(Problem(f"{manager} check-update reported updates but none could be parsed",
                                        ReasonCode.PARSE_ERROR))
                pending = None
        else:
            problems.append(
                f"{manager} -C check-update failed (rc={rc}; no cached metadata?): "
                + " ".join(ln.strip() for ln in lines if ln.strip() and not ln.startswith("rc="))[:200]
            )
        sec, sprob = usable(outputs, "pkg_security")
        if sec is None:
            problems.append(about(sprob, "security updates not read"))
        else:
            slines = [ln for _, ls in split_parts(sec.output) for ln in ls]
            src = _rc(slines)
            if src == 0:
                names, advs = parse_updateinfo(slines)
                advisories = len(advs)
                if pending is not None:
                    for p in pending:
                        p["security"] = p["name"] in names
                    sec_count = sum(1 for p in pending if p["security"])
                else:
                    sec_count = len(names)
            else:
                problems.append(f"{manager} updateinfo failed (rc={src})")
    elif manager == "zypper":
        lines = pmap.get("list-updates", [])
        if _rc(lines) == 0:
            pending = [
                {
                    "name": f[2].strip(),
                    "from_version": f[3].strip(),
                    "to_version": f[4].strip(),
                    "security": None,
                    "origin": f[1].strip(),
                }
                for f in (ln.split("|") for ln in lines)
                if len(f) >= 6 and f[0].strip() == "v"
            ]
        else:
            problems.append("zypper list-updates failed")
        problems.append("zypper: security updates not counted")
    elif manager == "apk":
        lines = pmap.get("version", [])
        if _rc(lines) == 0:
            pending = []
            for ln in lines:
                m = re.match(r"^(\S+?)-(\d\S*)\s+<\s+(\S+)", ln.strip())
                if m:
                    pending.append(
                        {
                            "name": m.group(1),
                            "from_version": m.group(2),
                            "to_version": m.group(3),
                            "security": None,
                            "origin": None,
                        }
                    )
        else:
            problems.append("apk version failed")
        problems.append("apk: security updates not counted")
    elif up is None:
        problems.append(about(prob, "pending updates not read"))
    else:
        problems.append(Problem("no known package manager (apt, dnf, yum, zypper, apk)", ReasonCode.TOOL_MISSING))
    data["pending_total"] = len(pending) if pending is not None else None
    data["pending_security"] = sec_count
    data["security_advisories"] = advisories
    data["pending"] = (pending or [])[:MAX_PENDING]
    data["pending_truncated"] = bool(pending and len(pending) > MAX_PENDING)

    hist, hprob = usable(outputs, "pkg_history")
    h = (
        parse_history(hist.output, tz_of(outputs))
        if hist is not None
        else {"last": None, "source": None, "recent": []}
    )
    if hist is None:
        problems.append(about(hprob, "update history not read"))
    elif h["last"] is None:
        problems.append("no package install/upgrade time found")
    data["last_update"] = iso(h["last"])
    data["days_since_update"] = days_since(h["last"], now)
    data["last_update_source"] = h["source"]
    data["recent_updates"] = h["recent"]

    rb, rprob = usable(outputs, "reboot_status")
    r = (
        parse_reboot(rb.output)
        if rb is not None
        else {
            "required": None,
            "signals": {"flag_file": None, "needs_restarting": None, "newer_kernel_installed": None},
            "running": None,
            "newest": None,
        }
    )
    if rb is None:
        problems.append(about(rprob, "reboot status not read"))
    data["reboot_required"] = r["required"]
    data["reboot_signals"] = r["signals"]
    data["running_kernel"] = r["running"]
    data["newest_installed_kernel"] = r["newest"]

    ver, vprob = usable(outputs, "pkg_versions")
    pkgs, comps = parse_versions(ver.output) if ver is not None else ({}, {})
    if ver is None:
        problems.append(about(vprob, "package versions not read"))
    data["packages"] = pkgs
    data["components"] = comps
    if now is None:
        problems.append("target clock not read: ages not computed")

    status = FactStatus.PARTIAL if problems else FactStatus.COLLECTED
    if data["pending_total"] is None and data["last_update"] is None:
        status = FactStatus.NOT_COLLECTED
    return Fact("patch", status, data, reason="; ".join(problems) or None, reason_code=first_code(problems))


PROBE = HostProbe(
    name="patch",
    items=("14.6.1",),
    commands=COMMANDS,
    parse=parse,
    description_ko=(
        "보안패치 적용 현황(미적용 업데이트, 보안 업데이트 수, "
        "최종 업데이트 일시, 재부팅 필요 여부, 주요 패키지 버전)"
    ),
    description_en=(
        "Patch level (pending and security updates, last update, reboot required, key package versions)"
    ),
)

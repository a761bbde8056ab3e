"""Operating system, kernel, boot time and end-of-life status (guide 14.6.1).

Why: an unsupported release gets no security patches, whatever the patch
policy says. The end-of-life dates come from ``probes/data/os_eol.yaml``, a
dated table with a source and recording date per release; a release missing
from it gives ``eol: null`` (unknown), never "supported". Past regular support
a release is supported only through its extended programme: Debian LTS ships
through the same security suite (no enrolment), Ubuntu ESM and RHEL ELS need
the host enrolled — so the configured update sources are part of this fact.

Fact schema (``data``)::

    id: str|null                # os-release ID ("debian", "ubuntu", "rhel", "rocky", "amzn"...)
    version_id: str|null        # os-release VERSION_ID ("12", "22.04", "9.4", "2023")
    version: str|null           # finer version if any (/etc/debian_version "12.7", redhat-release)
    pretty_name: str|null
    id_like: [str]
    codename: str|null
    family: "debian"|"rhel"|"amazon"|"suse"|"alpine"|"other"
    kernel: str|null            # uname -r
    machine: str|null           # uname -m
    boot_time: str|null         # ISO-8601 UTC
    uptime_seconds: int|null
    now: str|null               # the target's clock when collected (ISO-8601 UTC)
    eol_date: str|null          # end of regular security support (ISO date)
    eol: bool|null              # now is past eol_date; null when the release is not in the table
    extended_support_end: str|null   # end of an extended programme (Debian LTS, Ubuntu ESM, RHEL ELS)
    extended_support_name: str|null
    extended_eol: bool|null     # now is past extended_support_end (null when there is none)
    extended_needs_enrolment: bool|null  # Ubuntu ESM, RHEL ELS: true; Debian LTS: false
    support_phase: "regular"|"extended"|"ended"|null
    eol_table_date: str         # when the EOL table was last reviewed
    eol_source: str|null        # the vendor page the release's dates come from
    eol_recorded: str|null      # when the release's entry was recorded
    eol_certain: bool|null      # false: the table says a date is unsure (eol_note says which)
    eol_note: str|null
    update_sources: [{kind: "apt"|"rpm", source, file, enabled, security: bool, extended: bool}]  # <= 100
    security_source: bool|null  # a vendor security channel is configured (apt <codename>-security,
                                # an enabled errata-carrying rpm repo); null when not read/not modelled
    security_sources: [str]     # which ones
    extended_enrolled: bool|null     # the extended channel is there (Debian LTS: = security_source;
                                     # Ubuntu: pro esm-infra enabled or ESM suite; RHEL: *-els-* repo)
    extended_evidence: str|null
    container: str|null         # "docker", "podman", "lxc", "openvz"... (systemd-detect-virt -c, marker files)
    container_evidence: [str]
    own_kernel: bool|null       # false in a container (it shares the host's kernel); null: not checked
    psutil_fields: [str]        # fields replaced by psutil readings (local transport only)
"""

from __future__ import annotations

import re
import time
from datetime import date, datetime, timezone
from typing import Any, Mapping, Optional

from ..base import (
    CommandSpec, Fact, HostProbe, Problem, RawOutput, ReasonCode, about, fact_with_problems, not_collected,
)
from . import identity, update_sources
from .common import NOW, iso, load_data, now_of, usable

OS_BOOT = CommandSpec(
    "os_boot",
    "echo '### uptime'; cat /proc/uptime 2>&1; echo '### btime'; grep '^btime' /proc/stat 2>&1; "
    "for f in /etc/debian_version /etc/redhat-release /etc/system-release /etc/alpine-release "
    "/etc/SuSE-release; do "
    '[ -f "$f" ] && { echo "### file $f"; head -n 3 "$f"; }; done; ' + update_sources.CONTAINER_SCRIPT + "; true",
    timeout=5,
    may_hang=False,
)

UPDATE_SOURCES = CommandSpec("update_sources", update_sources.UPDATE_SOURCES_SCRIPT, timeout=20, may_hang=False)

COMMANDS = (identity.OS_RELEASE, identity.UNAME, OS_BOOT, UPDATE_SOURCES, NOW)

_FAMILY_IDS = {
    "debian": "debian",
    "ubuntu": "debian",
    "raspbian": "debian",
    "linuxmint": "debian",
    "kali": "debian",
    "rhel": "rhel",
    "centos": "rhel",
    "rocky": "rhel",
    "almalinux": "rhel",
    "ol": "rhel",
    "fedora": "rhel",
    "cloudlinux": "rhel",
    "eurolinux": "rhel",
    "amzn": "amazon",
    "alpine": "alpine",
    "sles": "suse",
    "sled": "suse",
    "opensuse-leap": "suse",
    "opensuse-tumbleweed": "suse",
    "opensuse": "suse",
}


def family_of(os_id: Optional[str], id_like: list[str]) -> str:
    if os_id in _FAMILY_IDS:
        return _FAMILY_IDS[os_id]
    for like in id_like:
        if like in ("debian", "ubuntu"):
            return "debian"
        if like in ("rhel", "fedora", "centos"):
            return "rhel"
        if like in ("suse", "opensuse"):
            return "suse"
    return "other"


def eol_entry(
    os_id: Optional[str], version_id: Optional[str]
) -> tuple[Optional[dict[str, Any]], Optional[str]]:
    """The EOL table row of a release, and why there is none."""
    table = load_data("os_eol.yaml")
    if not os_id or not version_id:
        return None, "release has no ID/VERSION_ID"
    rows = table["releases"].get(os_id)
    if rows is None:
        return None, f"no EOL data for {os_id}"
    how = table["version_key"].get(os_id, "full")
    nums = version_id.split(".")
    key = nums[0] if how == "major" else ".".join(nums[:2]) if how == "major_minor" else version_id
    row = rows.get(key)
    if row is None:
        return None, f"{os_id} {key} not in the EOL table of {table['table_date']}"
    return row, None


def _date(v: Any) -> Optional[date]:
    if isinstance(v, date):
        return v
    try:
        return date.fromisoformat(str(v))
    except (TypeError, ValueError):
        return None


def parse_boot(text: str) -> dict[str, Any]:
    uptime = btime = None
    files: dict[str, str] = {}
    container: Optional[list[str]] = None
    cur = None
    for line in text.splitlines():
        if line.startswith("### "):
            cur = line[4:].strip()
            if cur == "container":
                container = []
            continue
        if cur == "container" and container is not None:
            container.append(line)
        elif cur == "uptime":
            m = re.match(r"^(\d+)(?:\.\d+)?\s", line + " ")
            if m:
                uptime = int(m.group(1))
        elif cur == "btime":
            m = re.match(r"^btime\s+(\d+)", line)
            if m:
                btime = int(m.group(1))
        elif cur and cur.startswith("file ") and line.strip():
            files.setdefault(cur[5:], line.strip())
    return {"uptime": uptime, "btime": btime, "files": files, "container": container}


def parse(outputs: Mapping[str, RawOutput]) -> Fact:
    rel, prob = usable(outputs, "os_release")
    if rel is None or not rel.output.strip():
        return not_collected("os", about(prob, "os-release not read") if prob else
                             Problem("os-release not read: empty output", ReasonCode.TOOL_MISSING))
    osr = identity.parse_os_release(rel.output)
    problems: list[str] = []
    data: dict[str, Any] = {
        "id": osr.get("id"),
        "version_id": osr.get("version_id"),
        "version": None,
        "pretty_name": osr.get("pretty_name"),
        "id_like": osr.get("id_like") or [],
        "codename": osr.get("version_codename"),
    }
    data["family"] = family_of(data["id"], data["id_like"])
    un, prob = usable(outputs, "uname")
    parts = un.output.split() if un is not None and un.exit_code == 0 else []
    data["kernel"] = parts[1] if len(parts) > 1 else None
    data["machine"] = parts[2] if len(parts) > 2 else None
    if data["kernel"] is None:
        problems.append(prob or "uname: no output")

    boot, prob = usable(outputs, "os_boot")
    b = parse_boot(boot.output) if boot is not None else {"uptime": None, "btime": None, "files": {}, "container": None}
    if boot is None:
        problems.append(prob or "os_boot")
    data["boot_time"] = iso(b["btime"])
    data["uptime_seconds"] = b["uptime"]
    if b["btime"] is None or b["uptime"] is None:
        problems.append("boot time/uptime not read from /proc")
    for f in ("/etc/debian_version", "/etc/redhat-release", "/etc/system-release", "/etc/alpine-release"):
        if f == "/etc/debian_version" and data["id"] != "debian":
            continue  # Ubuntu's says "bookworm/sid"
        if f in b["files"]:
            v = b["files"][f]
            m = re.search(r"release\s+([\w.]+)", v)
            data["version"] = m.group(1) if m else v.split()[0][:40]
            break

    now = now_of(outputs)
    data["now"] = iso(now)
    table = load_data("os_eol.yaml")
    row, why = eol_entry(data["id"], data["version_id"])
    data["eol_table_date"] = str(table["table_date"])
    data["eol_source"] = row.get("source") if row else None
    data["eol_recorded"] = str(row["recorded"]) if row and row.get("recorded") else None
    data["eol_certain"] = bool(row.get("certain")) if row else None
    data["eol_note"] = row.get("note") if row else None
    eol_d = _date(row.get("eol")) if row else None
    ext_d = _date(row.get("extended")) if row else None
    prog = (table.get("programmes") or {}).get(row.get("programme") or "") if row and ext_d else None
    data["eol_date"] = eol_d.isoformat() if eol_d else None
    data["extended_support_end"] = ext_d.isoformat() if ext_d else None
    data["extended_support_name"] = prog["name"] if prog else None
    data["extended_needs_enrolment"] = bool(prog["enrolment"]) if prog else None
    today = datetime.fromtimestamp(now, timezone.utc).date() if now is not None else None
    data["eol"] = (today > eol_d) if (today and eol_d) else None
    data["extended_eol"] = (today > ext_d) if (today and ext_d) else None
    data["support_phase"] = (
        None if data["eol"] is None
        else "regular" if not data["eol"]
        else "extended" if data["extended_eol"] is False
        else "ended"
    )
    if row is None:
        problems.append(f"end of life unknown: {why}")
    elif today is None:
        problems.append("target clock not read: eol not computed")

    src, sprob = usable(outputs, "update_sources")
    data.update(_security_sources(data, src.output if src is not None else None, table,
                                  row.get("programme") if row and ext_d else None))
    if src is None:
        problems.append(about(sprob, "update sources not read"))
    cont = update_sources.parse_container(b["container"]) if b["container"] is not None else None
    data["container"] = cont["container"] if cont else None
    data["container_evidence"] = cont["evidence"] if cont else []
    # a container shares its host's kernel; null when the check did not run
    data["own_kernel"] = None if cont is None else cont["container"] is None
    data["psutil_fields"] = []
    return fact_with_problems("os", data, problems)


def _security_sources(data: dict[str, Any], text: Optional[str], table: dict[str, Any],
                      programme: Optional[str]) -> dict[str, Any]:
    """The update-source facts: configured sources, the security channel, the extended channel's enrolment."""
    out: dict[str, Any] = {"update_sources": [], "security_source": None, "security_sources": [],
                           "extended_enrolled": None, "extended_evidence": None}
    if text is None:
        return out
    s = update_sources.parse_sources(text)
    fam, os_id = data["family"], data["id"]
    srcs: list[dict[str, Any]] = []
    ext_seen: list[str] = []
    if fam == "debian":
        sec, esm = update_sources.apt_security(s["apt"], os_id, data["codename"])
        sec_ids, esm_ids = {id(e) for e in sec}, {id(e) for e in esm}
        for e in s["apt"]:
            srcs.append({"kind": "apt", "source": f"{e['type']} {e['uri']} {e['suite']}", "file": e["file"],
                         "enabled": e["enabled"], "security": id(e) in sec_ids, "extended": id(e) in esm_ids})
        names = sorted({f"{e['suite']} ({e['uri']})" for e in sec})
        out["security_sources"] = names
        if sec:
            out["security_source"] = True
        elif s["apt_unreadable"]:
            out["security_source"] = None
        else:
            out["security_source"] = False
        ext_seen = sorted({f"{e['suite']} ({e['uri']})" for e in esm})
    elif fam in ("rhel", "amazon"):
        sec, els = update_sources.rpm_security(s["rpm"], os_id, table.get("rpm_security_repos") or {},
                                               table.get("rpm_els_repos") or [])
        sec_ids, els_ids = {id(r) for r in sec}, {id(r) for r in els}
        for r in s["rpm"]:
            srcs.append({"kind": "rpm", "source": r["id"], "file": r["file"], "enabled": r["enabled"],
                         "security": id(r) in sec_ids, "extended": id(r) in els_ids})
        out["security_sources"] = sorted({r["id"] for r in sec} | {r["id"] for r in els})
        if os_id in (table.get("rpm_security_repos") or {}):
            out["security_source"] = bool(sec or els)
        ext_seen = sorted(r["id"] for r in els)
    out["update_sources"] = srcs[:100]
    pro = s["pro"]
    if programme == "debian-lts":
        # Debian LTS ships through the release's own security suite: no enrolment to see
        out["extended_enrolled"] = out["security_source"]
        out["extended_evidence"] = (
            "security suite configured: " + ", ".join(out["security_sources"]) if out["security_source"]
            else "no security suite configured" if out["security_source"] is False else None)
    elif programme == "ubuntu-esm":
        infra = pro["services"].get("esm-infra")
        esm_infra = [x for x in ext_seen if "-infra-" in x]
        if infra == "enabled" or esm_infra:
            out["extended_enrolled"] = True
            out["extended_evidence"] = "; ".join(
                ([f"pro status: esm-infra {infra}"] if infra else [])
                + ([f"ESM suite configured: {', '.join(esm_infra)}"] if esm_infra else []))
        elif pro["attached"] is False or infra is not None:
            out["extended_enrolled"] = False
            out["extended_evidence"] = ("pro status: esm-infra " + infra if infra is not None
                                        else "not attached to Ubuntu Pro, no ESM suite configured")
        elif not pro["tool"] and not s["apt_unreadable"]:
            out["extended_enrolled"] = False
            out["extended_evidence"] = "no Ubuntu Pro client (pro/ua) and no ESM suite configured"
    elif programme == "rhel-els":
        if ext_seen:
            out["extended_enrolled"] = True
            out["extended_evidence"] = "ELS repository enabled: " + ", ".join(ext_seen)
        elif s["rpm"]:
            out["extended_enrolled"] = False
            out["extended_evidence"] = "no *-els-* repository enabled in /etc/yum.repos.d"
    return out


def local(fact: Fact) -> Fact:
    """Local transport: boot time and uptime from psutil."""
    try:
        import psutil

        bt = psutil.boot_time()
    except Exception:  # noqa: BLE001 - psutil absent or /proc unreadable: keep the shell values
        return fact
    fact.data["boot_time"] = iso(bt)
    fact.data["uptime_seconds"] = int(time.time() - bt)
    fact.data["psutil_fields"] = ["boot_time", "uptime_seconds"]
    fact.source = "psutil"
    return fact


PROBE = HostProbe(
    name="os",
    items=("14.6.1",),
    commands=COMMANDS,
    parse=parse,
    description_ko="운영체제 및 커널 버전, 부팅 시각, 지원 종료(EOL) 여부",
    description_en="OS and kernel version, boot time, end-of-life status",
    local=local,
)

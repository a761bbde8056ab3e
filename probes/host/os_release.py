"""Operating system, kernel, boot time and end-of-life status (guide 14.6.1).

Why: an unsupported release gets no security patches, whatever the patch
policy says. The end-of-life dates come from ``probes/data/os_eol.yaml``, a
dated table with its sources; a release missing from it gives ``eol: null``
(unknown), never "supported".

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
    eol_table_date: str         # when the EOL table was last checked
    eol_source: str|null
    psutil_fields: [str]        # fields replaced by psutil readings (local transport only)
"""

from __future__ import annotations

import re
import time
from datetime import date, datetime, timezone
from typing import Any, Mapping, Optional

from ..base import CommandSpec, Fact, HostProbe, RawOutput, fact_with_problems, not_collected
from . import identity
from .common import NOW, iso, load_data, now_of, usable

OS_BOOT = CommandSpec(
    "os_boot",
    "echo '### uptime'; cat /proc/uptime 2>&1; echo '### btime'; grep '^btime' /proc/stat 2>&1; "
    "for f in /etc/debian_version /etc/redhat-release /etc/system-release /etc/alpine-release "
    "/etc/SuSE-release; do "
    '[ -f "$f" ] && { echo "### file $f"; head -n 3 "$f"; }; done; true',
    timeout=5,
    may_hang=False,
)

COMMANDS = (identity.OS_RELEASE, identity.UNAME, OS_BOOT, NOW)

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
    cur = None
    for line in text.splitlines():
        if line.startswith("### "):
            cur = line[4:].strip()
            continue
        if cur == "uptime":
            m = re.match(r"^(\d+)(?:\.\d+)?\s", line + " ")
            if m:
                uptime = int(m.group(1))
        elif cur == "btime":
            m = re.match(r"^btime\s+(\d+)", line)
            if m:
                btime = int(m.group(1))
        elif cur and cur.startswith("file ") and line.strip():
            files.setdefault(cur[5:], line.strip())
    return {"uptime": uptime, "btime": btime, "files": files}


def parse(outputs: Mapping[str, RawOutput]) -> Fact:
    rel, prob = usable(outputs, "os_release")
    if rel is None or not rel.output.strip():
        return not_collected("os", f"os-release not read: {prob or 'empty output'}")
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
    b = parse_boot(boot.output) if boot is not None else {"uptime": None, "btime": None, "files": {}}
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
    data["eol_source"] = table["sources"].get(data["id"] or "") if row else None
    eol_d = _date(row.get("eol")) if row else None
    ext_d = _date(row.get("extended")) if row else None
    data["eol_date"] = eol_d.isoformat() if eol_d else None
    data["extended_support_end"] = ext_d.isoformat() if ext_d else None
    data["extended_support_name"] = row.get("extended_name") if row and ext_d else None
    today = datetime.fromtimestamp(now, timezone.utc).date() if now is not None else None
    data["eol"] = (today > eol_d) if (today and eol_d) else None
    data["extended_eol"] = (today > ext_d) if (today and ext_d) else None
    if row is None:
        problems.append(f"end of life unknown: {why}")
    elif today is None:
        problems.append("target clock not read: eol not computed")
    data["psutil_fields"] = []
    return fact_with_problems("os", data, problems)


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

"""Where a host gets its security updates from, and whether it runs its own kernel (guide 14.6.1).

Why: "0 security updates pending" means something only when a security source is configured (an apt
``<codename>-security`` suite, an rpm vendor repository carrying errata); a release past regular support is
still supported only through its extended channel — Debian LTS through the same security suite (no
enrolment), Ubuntu ESM and RHEL ELS only when the host is enrolled. A container shares its host's kernel,
so "reboot pending" does not apply to it. Pure parsers from command output; the commands are in
``os_release`` (one batched script per host).
"""

from __future__ import annotations

import re
from typing import Any, Optional

#: credentials in a repository URL (``https://user:pass@host/``) are stripped on the target; this is the
#: same rule applied again to whatever arrives, so nothing of the kind reaches a fact
_USERINFO = re.compile(r"://[^/@\s]*@")

UPDATE_SOURCES_SCRIPT = (
    # apt: one-line sources and deb822 .sources (blank lines kept: they separate deb822 stanzas); comments
    # dropped, credentials in URIs cut on the target
    "echo '### apt'; for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list "
    "/etc/apt/sources.list.d/*.sources; do [ -f \"$f\" ] || continue; echo \"## file $f\"; "
    "if [ -r \"$f\" ]; then grep -v '^[[:space:]]*#' \"$f\" | sed -e 's#://[^/@[:space:]]*@#://#g' | "
    "head -n 300; else echo '## unreadable'; fi; done; "
    # rpm family: repository ids and their enabled flags only (baseurl lines can carry credentials)
    "echo '### rpm'; for f in /etc/yum.repos.d/*.repo; do [ -f \"$f\" ] || continue; echo \"## file $f\"; "
    "grep -E '^[[:space:]]*(\\[|enabled[[:space:]]*=)' \"$f\" | head -n 400; done; "
    # Ubuntu Pro: the machine token's presence (never its content) and, when attached or an esm source is
    # there, the service table of `pro status` (only esm/SERVICE lines: account names stay on the host)
    "echo '### pro'; if command -v pro >/dev/null 2>&1 || command -v ua >/dev/null 2>&1; then _t=; "
    "echo 'client present'; "
    "[ -e /var/lib/ubuntu-advantage/private/machine-token.json ] && _t=1 && echo 'token present'; "
    "[ -r /var/lib/ubuntu-advantage/private ] || echo 'private unreadable'; "
    "for f in /etc/apt/sources.list.d/ubuntu-esm-*; do [ -e \"$f\" ] && _t=1; done; "
    "if [ -n \"$_t\" ]; then if command -v pro >/dev/null 2>&1; then "
    "$_ea_g pro status 2>&1 | grep -E '^(SERVICE|esm-)|not attached'; "
    "else $_ea_g ua status 2>&1 | grep -E '^(SERVICE|esm-)|not attached'; fi; fi; "
    "else echo 'absent'; fi; true"
)

CONTAINER_SCRIPT = (
    # cheap reads only (builtins where possible: this runs on every host): marker files of docker, podman and
    # systemd-nspawn/LXC (/run/systemd/container, first line via `read`), OpenVZ's /proc/vz; when none is there,
    # systemd-detect-virt -c (reads files only), or without it PID 1's cgroup lines that name a runtime
    "echo '### container'; _k=; [ -f /.dockerenv ] && echo 'file /.dockerenv' && _k=1; "
    "[ -f /run/.containerenv ] && echo 'file /run/.containerenv' && _k=1; "
    "if [ -f /run/systemd/container ]; then _c=; read -r _c </run/systemd/container; _k=1; "
    "echo \"file /run/systemd/container $_c\"; fi; "
    "[ -d /proc/vz ] && [ ! -d /proc/bc ] && echo 'openvz' && _k=1; "
    "if [ -z \"$_k\" ]; then if command -v systemd-detect-virt >/dev/null 2>&1; then "
    "echo \"detect-virt $(systemd-detect-virt -c 2>/dev/null)\"; "
    "else grep -E 'docker|lxc|kubepods|libpod|containerd|machine\\.slice' /proc/1/cgroup 2>/dev/null; fi; fi"
)


def _sections(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    cur: Optional[str] = None
    for line in text.splitlines():
        if line.startswith("### "):
            cur = line[4:].strip()
            out.setdefault(cur, [])
        elif cur is not None:
            out[cur].append(line)
    return out


def _files(lines: list[str]) -> list[tuple[str, list[str]]]:
    files: list[tuple[str, list[str]]] = []
    for line in lines:
        if line.startswith("## file "):
            files.append((line[8:].strip(), []))
        elif files:
            files[-1][1].append(line)
    return files


def parse_apt_sources(lines: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """One-line (``deb [opts] uri suite comp…``) and deb822 (``Types/URIs/Suites/Components/Enabled``) entries.

    Returns ``[{file, type, uri, suite, components, enabled}]`` (one per suite) and unreadable files.
    """
    entries: list[dict[str, Any]] = []
    unreadable: list[str] = []
    for path, body in _files(lines):
        if body[:1] == ["## unreadable"]:
            unreadable.append(path)
            continue
        if path.endswith(".sources"):
            stanza: dict[str, str] = {}
            for line in body + [""]:
                if not line.strip():
                    if stanza:
                        entries.extend(_deb822(path, stanza))
                    stanza = {}
                    continue
                m = re.match(r"^([\w-]+):\s*(.*)$", line)
                if m:
                    key = m.group(1).lower()
                    stanza[key] = m.group(2).strip()
                    last = key
                elif line[:1] in (" ", "\t") and stanza:
                    stanza[last] = (stanza[last] + " " + line.strip()).strip()  # continuation line
            continue
        for line in body:
            f = line.split("#", 1)[0].strip()
            m = re.match(r"^(deb|deb-src)\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s*(.*)$", f)
            if m:
                entries.append({"file": path[:200], "type": m.group(1),
                                "uri": _USERINFO.sub("://", m.group(3))[:200], "suite": m.group(4)[:100],
                                "components": m.group(5).split()[:20], "enabled": True})
    return entries, unreadable


def _deb822(path: str, st: dict[str, str]) -> list[dict[str, Any]]:
    enabled = st.get("enabled", "yes").lower() not in ("no", "false", "0")
    out = []
    for typ in st.get("types", "").split():
        for uri in st.get("uris", "").split():
            for suite in st.get("suites", "").split():
                out.append({"file": path[:200], "type": typ, "uri": _USERINFO.sub("://", uri)[:200],
                            "suite": suite[:100], "components": st.get("components", "").split()[:20],
                            "enabled": enabled})
    return out


def parse_rpm_repos(lines: list[str]) -> list[dict[str, Any]]:
    """``[id]`` sections and ``enabled=`` of /etc/yum.repos.d/*.repo (a repo without the key is enabled)."""
    repos: list[dict[str, Any]] = []
    for path, body in _files(lines):
        for line in body:
            s = line.strip()
            m = re.match(r"^\[([^\]]+)\]$", s)
            if m:
                repos.append({"file": path[:200], "id": m.group(1).strip()[:100], "enabled": True})
                continue
            m = re.match(r"^enabled\s*=\s*(\S+)", s)
            if m and repos and repos[-1]["file"] == path[:200]:
                repos[-1]["enabled"] = m.group(1).lower() in ("1", "yes", "true", "on")
    return repos


def parse_pro(lines: list[str]) -> dict[str, Any]:
    """Ubuntu Pro: ``{tool, token, private_readable, attached, services: {name: status}}``.

    ``attached`` is true when ``pro status`` lists an ENTITLED/STATUS table or the token is present, false
    when it says "not attached" or no token (and no esm source) is visible in a readable private directory,
    null when the client is absent or the machine's state could not be seen.
    """
    body = [ln.strip() for ln in lines if ln.strip()]
    if "client present" not in body:  # "absent", or the section is missing
        return {"tool": False, "token": None, "attached": None, "services": {}}
    token = "token present" in body
    private_readable = "private unreadable" not in body
    services: dict[str, str] = {}
    table = False
    not_attached = False
    for ln in body:
        if ln.startswith("SERVICE"):
            table = "STATUS" in ln.split()
        elif re.search(r"not attached", ln):
            not_attached = True
        elif ln.startswith("esm-") and table:
            f = ln.split()
            if len(f) >= 3:
                services[f[0]] = f[2]  # SERVICE ENTITLED STATUS DESCRIPTION
    if not_attached:
        attached: Optional[bool] = False
    elif token or services:
        attached = True
    elif private_readable:
        attached = False
    else:
        attached = None
    return {"tool": True, "token": token if private_readable or token else None, "attached": attached,
            "services": services}


def parse_container(lines: list[str]) -> dict[str, Any]:
    """``{container: name|null, evidence: [str]}``: which container this host runs in (none: null)."""
    body = [ln.strip() for ln in lines if ln.strip()]
    evidence: list[str] = []
    kind: Optional[str] = None
    detect: Optional[str] = None
    for ln in body:
        if ln.startswith("file /.dockerenv"):
            evidence.append("/.dockerenv exists")
            kind = kind or "docker"
        elif ln.startswith("file /run/.containerenv"):
            evidence.append("/run/.containerenv exists")
            kind = kind or "podman"
        elif ln.startswith("file /run/systemd/container"):
            v = ln.split(None, 2)[2].strip()[:40] if len(ln.split(None, 2)) > 2 else ""
            evidence.append(f"/run/systemd/container says {v or '(empty)'}")
            kind = kind or (v or "container")
        elif ln == "openvz":
            evidence.append("/proc/vz without /proc/bc (OpenVZ/Virtuozzo container)")
            kind = kind or "openvz"
        elif re.match(r"^\d+:", ln):
            evidence.append("PID 1 cgroup " + ln[:120])
            m = re.search(r"docker|lxc|kubepods|libpod|containerd|machine\.slice", ln)
            kind = kind or {"libpod": "podman", "kubepods": "kubernetes", "machine.slice": "systemd-nspawn"}.get(
                m.group(0) if m else "", m.group(0) if m else "container")
        elif ln.startswith("detect-virt"):
            v = ln[len("detect-virt"):].strip()
            detect = v or None
    if detect and detect != "none":
        evidence.insert(0, f"systemd-detect-virt -c: {detect}")
        kind = detect
    return {"container": kind, "evidence": evidence}


def apt_security(entries: list[dict[str, Any]], os_id: Optional[str], codename: Optional[str]
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(security entries, ESM entries) among the enabled ``deb`` entries.

    Debian: ``<codename>-security`` (``<codename>/updates`` up to Debian 10, and the ``stable-security``
    style aliases); Ubuntu: ``<codename>-security``; ESM: ``<codename>-infra-security`` /
    ``-apps-security`` (esm.ubuntu.com).
    """
    sec, esm = [], []
    for e in entries:
        if e["type"] != "deb" or not e["enabled"]:
            continue
        s = e["suite"].rstrip("/")
        if re.search(r"-(infra|apps)-(security|updates)$", s) or "esm.ubuntu.com" in e["uri"]:
            esm.append(e)
            continue
        if codename:
            ok = s in (f"{codename}-security", f"{codename}/updates")
        else:
            ok = s.endswith("-security") or s.endswith("/updates")
        if not ok and os_id == "debian":
            ok = s in ("stable-security", "oldstable-security", "oldoldstable-security")
        if ok:
            sec.append(e)
    return sec, esm


def rpm_security(repos: list[dict[str, Any]], os_id: Optional[str], patterns: dict[str, list[str]],
                 els_patterns: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(security repos, ELS repos) among the enabled repositories, by the vendor's repository ids."""
    pats = [re.compile(p) for p in patterns.get(os_id or "", [])]
    els = [re.compile(p) for p in els_patterns]
    sec = [r for r in repos if r["enabled"] and any(p.search(r["id"]) for p in pats)]
    ext = [r for r in repos if r["enabled"] and any(p.search(r["id"]) for p in els)]
    return sec, ext


def parse_sources(text: str) -> dict[str, Any]:
    """The ``update_sources`` command's output as ``{apt, apt_unreadable, rpm, pro}``."""
    sec = _sections(text)
    apt, unreadable = parse_apt_sources(sec.get("apt", []))
    return {"apt": apt, "apt_unreadable": unreadable, "rpm": parse_rpm_repos(sec.get("rpm", [])),
            "pro": parse_pro(sec.get("pro", [])), "read": bool(sec)}

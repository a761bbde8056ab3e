"""Last line of defence against secrets in evidence: password hashes, private keys, tokens.

Probes already avoid reading secrets (the accounts probe strips hashes on the
target); this pass catches what slips through anyway (a config file with a
password, a hash in a log line) before anything is written to a bundle or a log.
"""
from __future__ import annotations

import re

_RULES: list[tuple[re.Pattern[str], str]] = [
    # crypt(3) hashes: $1$ md5, $2a/b/y$ bcrypt, $5$ sha256, $6$ sha512, $y$ yescrypt, $gy$, $7$ scrypt
    (re.compile(r"\$(1|2[abxy]|5|6|7|y|gy|sha1|md5)\$[./A-Za-z0-9$=,]{8,}"), r"$\1$<redacted>"),
    (re.compile(r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(-----END \1PRIVATE KEY-----|\Z)", re.S),
     r"-----BEGIN \1PRIVATE KEY----- <redacted> -----END \1PRIVATE KEY-----"),
]

#: ``*password*=value``, ``client_secret: value``, ``API_TOKEN=value``...: the name stays, the value goes.
_ASSIGN = re.compile(r"(?i)(?:pass(?:word|wd)|pwd|secret|token|api[_-]?key)\w*\s*[=:]\s*(\"[^\"]*\"|'[^']*'|[^\s\"']+)")
_KEYWORDS = ("pass", "pwd", "secret", "token", "api")
_AUTH = re.compile(r"(?i)(authorization:\s*(?:bearer|basic)\s+)\S+")


def _assignments(text: str, low: str) -> str:
    """Redact assignment values. Why not one case-insensitive ``sub``: on ~100 KB of evidence per host
    that scan cost ~10 ms of the collector's CPU; finding the keywords with ``str.find`` first and matching
    only there gives the same result at a fraction."""
    starts: list[int] = []
    for k in _KEYWORDS:
        i = low.find(k)
        while i >= 0:
            starts.append(i)
            i = low.find(k, i + 1)
    if not starts:
        return text
    out, last = [], 0
    for p in sorted(starts):
        if p < last:
            continue
        m = _ASSIGN.match(text, p)
        if m:
            out.append(text[last:m.start(1)])
            out.append("<redacted>")
            last = m.end()
    out.append(text[last:])
    return "".join(out)


def _keep_name(m: re.Match[str]) -> str:
    return m.group(0)[: m.start(1) - m.start(0)] + "<redacted>"


def redact(text: str) -> str:
    for pat, repl in _RULES:
        text = pat.sub(repl, text)
    low = text.lower()
    # lower() never shortens a character, so equal lengths mean equal offsets (always so for ASCII)
    text = _assignments(text, low) if len(low) == len(text) else _ASSIGN.sub(_keep_name, text)
    if "authorization" in low:
        text = _AUTH.sub(r"\1<redacted>", text)
    return text

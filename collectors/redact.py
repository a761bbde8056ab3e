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
    (re.compile(r"(?i)\b(\w*(?:password|passwd|pwd|secret|token|api[_-]?key)\w*)(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s\"']+)"),
     r"\1\2<redacted>"),
    (re.compile(r"(?i)(authorization:\s*(?:bearer|basic)\s+)\S+"), r"\1<redacted>"),
]


def redact(text: str) -> str:
    for pat, repl in _RULES:
        text = pat.sub(repl, text)
    return text

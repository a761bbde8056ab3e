"""Text from targets made visible and inert for terminals, HTML and Markdown.

Why: a certificate's CN or SAN, an SSH banner, an HTTP header or a file name in a
tampered bundle is chosen by whoever controls the target or the bundle. Control
characters in it would move the operator's terminal cursor, rewrite lines or set
the window title (ESC sequences), and bidirectional overrides (U+202E …) would make
a name read differently than it is. Each such character is shown as an escape
(``\\x1b``, ``\\u202e``) instead; everything else, Korean included, is kept.
"""
from __future__ import annotations

import re
from typing import Any

# C0 (but tab and newline), DEL, C1, and the Unicode bidirectional controls and isolates
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _esc(m: "re.Match[str]") -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def visible(x: Any) -> str:
    """``x`` as text with every control and bidi character shown as an escape."""
    s = "" if x is None else str(x)
    return _CONTROL.sub(_esc, s)


def one_line(x: Any) -> str:
    """As :func:`visible`, newlines and tabs too (a terminal line, a table cell)."""
    return visible(x).replace("\n", "\\n").replace("\t", "\\t")

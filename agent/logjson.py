"""Run logs for people and for log pipelines: plain lines, or one JSON object per line (``--log-json``).

Every line is an *event* with fields (``host``, ``duration_seconds``, ``outcome`` …),
so a scheduled run can be searched in the journal or shipped to a SIEM without
parsing prose. Secrets never reach a line: callers log only names, counts and
transport errors (which are secret-free by construction), webhook URLs are logged
through :func:`redact_url`, and as a last guard every known secret value
(passwords named by ``password_env``, the SMTP password) is masked in whatever is
written, together with the patterns of :func:`collectors.redact.redact`.
"""
from __future__ import annotations

import json
import sys
import threading
import time
from typing import IO, Any, Optional
from urllib.parse import urlsplit

from collectors.redact import redact, redact_obj


def redact_url(url: str) -> str:
    """``https://hooks.example/services/T0/B0/XXXX?token=y`` → ``https://hooks.example/…``: path and query
    of a webhook often *are* the credential; user info too."""
    try:
        u = urlsplit(url)
        host = u.hostname or "?"
        if ":" in host:
            host = f"[{host}]"
        port = f":{u.port}" if u.port else ""
    except ValueError:
        return "<unparsable URL>"
    tail = "/…" if (u.path not in ("", "/") or u.query or u.fragment) else ""
    return f"{u.scheme}://{host}{port}{tail}"


class Logger:
    """Thread-safe line logger to ``stream`` (stderr by default)."""

    def __init__(self, json_lines: bool = False, stream: Optional[IO[str]] = None, quiet: bool = False) -> None:
        self.json_lines = json_lines
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self._secrets: list[str] = []
        self._lock = threading.Lock()

    def add_secret(self, value: Optional[str]) -> None:
        """Mask this value wherever it would appear (short values are masked too: a leak is a leak)."""
        if value and value not in self._secrets:
            self._secrets.append(value)
            self._secrets.sort(key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "***")
        return redact(text)

    def log(self, event: str, msg: str = "", level: str = "info", **fields: Any) -> None:
        """One event. ``msg`` is the human sentence; ``fields`` the structured part (JSON-serialisable)."""
        if self.quiet and level == "info" and not self.json_lines:
            return
        if self.json_lines:
            rec: dict[str, Any] = {"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                   "level": level, "event": event}
            if msg:
                rec["msg"] = msg
            rec.update({k: v for k, v in fields.items() if v is not None})
            # each value redacted on its own (a JSON-escaped line would hide a multi-line key from the detectors)
            line = json.dumps(redact_obj(rec), ensure_ascii=False, default=str)
        else:
            prefix = "evidence-agent: " + ("" if level == "info" else f"{level}: ")
            line = prefix + (msg or event)
        line = self.scrub(line)
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()

    def info(self, event: str, msg: str = "", **fields: Any) -> None:
        self.log(event, msg, "info", **fields)

    def warning(self, event: str, msg: str = "", **fields: Any) -> None:
        self.log(event, msg, "warning", **fields)

    def error(self, event: str, msg: str = "", **fields: Any) -> None:
        self.log(event, msg, "error", **fields)

"""Helpers for the fleet, schedule and notification tests: real local receivers and small inventories.

Receivers listen on 127.0.0.1 only: an ``http.server`` for webhooks and an
``aiosmtpd`` SMTP server, both in-process, recording what they were sent.
"""
from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional

from sshd import SshdServer


class WebhookReceiver:
    """A real HTTP server on 127.0.0.1 that records every POST (path, headers, JSON body)."""

    def __init__(self, status: int = 200) -> None:
        self.posts: list[dict[str, Any]] = []
        self.status = status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                outer.posts.append({"path": self.path, "headers": dict(self.headers), "body": body, "raw": raw})
                self.send_response(outer.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hooks/T000/B000/s3cr3t-webhook-token?auth=qs-secret") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpReceiver:
    """aiosmtpd on 127.0.0.1 (in-process thread) that keeps every message it accepts."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[dict[str, Any]] = []
        outer = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                outer.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                                       "data": envelope.content})
                return "250 Message accepted for delivery"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def inventory(path: str, srv: SshdServer, hosts: list[dict[str, Any]], extra: str = "",
              timeouts: str = "{connect: 3, host: 30}") -> str:
    """An inventory of ssh hosts on the test sshd; each host dict: name, optional port/key/password_env/address."""
    lines = [
        "version: 1", "organisation: Fleet Test", "scope:", "  allow: [127.0.0.0/8]", "defaults:",
        f"  ssh: {{user: root, key_file: {srv.client_key}, known_hosts: {srv.known_hosts}, "
        f"host_key_policy: strict, port: {srv.port}}}",
        f"  timeouts: {timeouts}", "hosts:",
    ]
    for h in hosts:
        lines.append(f"  - name: {h['name']}")
        lines.append(f"    address: {h.get('address', '127.0.0.1')}")
        lines.append("    roles: [web]")
        ssh = {k: h[k] for k in ("port", "key_file", "password_env", "known_hosts") if k in h}
        if ssh:
            lines.append("    ssh: {" + ", ".join(f"{k}: {v}" for k, v in ssh.items()) + "}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n" + extra)
    return path


def waiver(rule: str, host: str) -> str:
    return (f"waivers:\n  - {{rule: {rule}, host: {host}, reason: test exception, approver: CISO, "
            f"expires: 2999-12-31}}\n")


def json_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if line.strip():
            out.append(json.loads(line))
    return out


Optional  # typing re-export

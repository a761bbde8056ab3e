"""Drift notifications: a JSON webhook (Slack, Mattermost, Teams, anything that reads ``text``) and e-mail (SMTP).

A webhook receiver is not a scan target, so it is not checked against the
inventory's scope; but its URL usually *is* a credential (Slack's
``/services/T…/B…/secret``), so it is never logged whole (see
:func:`agent.logjson.redact_url`) and schedules keep it in a 0600 environment
file, not in a world-readable unit. The SMTP password likewise comes from an
environment variable named by ``--smtp-password-env``.

Payload of the webhook (``Content-Type: application/json``)::

    {"text": "<the summary, one line per change>",          # what chat tools display
     "evidence_agent": {"schema": "evidence-agent/notification/v1", "organisation", "bundle",
                        "bundle_path", "previous", "counts": {"worse", "better", "changed"},
                        "hosts": {"total", "collected"}, "worse": [Change…], "better": [Change…],
                        "changed": [Change…]}}

The e-mail carries the same summary as its text body and the structured part as
an attached ``drift.json``.
"""
from __future__ import annotations

import ipaddress
import json
import os
import smtplib
import socket
import ssl
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Optional
from urllib.parse import urlsplit

from .drift import BETTER, CHANGED, WORSE, Drift
from .logjson import redact_url

SCHEMA = "evidence-agent/notification/v1"


class NotifyError(Exception):
    """Delivery failed; the message never contains the webhook URL or a password."""


@dataclass
class Webhook:
    url: str
    timeout: float = 10.0

    def validate(self) -> None:
        u = urlsplit(self.url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"--notify-webhook must be an http(s) URL, got {redact_url(self.url)}")


@dataclass
class Smtp:
    host: str
    mail_to: list[str]
    port: int = 25
    mail_from: Optional[str] = None
    starttls: bool = False
    ssl: bool = False
    user: Optional[str] = None
    password_env: Optional[str] = None
    timeout: float = 20.0
    extra_headers: dict[str, str] = field(default_factory=dict)

    def password(self) -> Optional[str]:
        if not self.password_env:
            return None
        v = os.environ.get(self.password_env)
        if v is None:
            raise NotifyError(f"environment variable {self.password_env} (--smtp-password-env) is not set")
        return v


def subject(drift: Drift, organisation: Optional[str]) -> str:
    who = f"{organisation}: " if organisation else ""
    n = drift.counts()
    return f"[evidence-agent] {who}{n[WORSE]} change(s) got worse in run {drift.current}"


def text(drift: Drift, organisation: Optional[str], bundle_path: str) -> str:
    return (f"{subject(drift, organisation)}\n{drift.summary()}\nBundle: {bundle_path}")


def details(drift: Drift, organisation: Optional[str], bundle_path: str, hosts: dict[str, int]) -> dict[str, Any]:
    by = {k: [asdict(c) for c in drift.changes if c.direction == k] for k in (WORSE, BETTER, CHANGED)}
    return {"schema": SCHEMA, "organisation": organisation, "bundle": drift.current, "bundle_path": bundle_path,
            "previous": drift.previous, "counts": drift.counts(), "hosts": hosts, **by}


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def send_webhook(hook: Webhook, payload: dict[str, Any]) -> int:
    """POST the payload; returns the HTTP status. Raises NotifyError on anything but 2xx."""
    hook.validate()
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    req = urllib.request.Request(hook.url, data=body, method="POST",
                                 headers={"Content-Type": "application/json; charset=utf-8",
                                          "User-Agent": "evidence-agent"})
    host = urlsplit(hook.url).hostname or ""
    # Environment proxies apply to real receivers; a loopback receiver is always reached directly.
    handlers: list[Any] = [urllib.request.ProxyHandler({})] if _is_loopback(host) else []
    opener = urllib.request.build_opener(*handlers)
    last: Optional[str] = None
    for _attempt in range(2):  # one retry: receivers hiccup; more would delay the run's end
        try:
            with opener.open(req, timeout=hook.timeout) as r:
                r.read(65536)
                return int(r.status)
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code} {e.reason}"
            if e.code < 500:
                break
        except (urllib.error.URLError, OSError, socket.timeout) as e:
            reason = getattr(e, "reason", e)
            last = f"{type(reason).__name__}: {reason}".split("\n")[0][:200]
    raise NotifyError(f"webhook {redact_url(hook.url)} failed: {last}")


def send_mail(cfg: Smtp, subj: str, body: str, attachment: dict[str, Any]) -> None:
    msg = EmailMessage()
    msg["Subject"] = subj
    msg["From"] = cfg.mail_from or f"evidence-agent@{socket.getfqdn()}"
    msg["To"] = ", ".join(cfg.mail_to)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain="evidence-agent")
    for k, v in cfg.extra_headers.items():
        msg[k] = v
    msg.set_content(body)
    msg.add_attachment(json.dumps(attachment, ensure_ascii=False, indent=2).encode("utf-8"),
                       maintype="application", subtype="json", filename="drift.json")
    password = cfg.password()
    try:
        if cfg.ssl:
            s: smtplib.SMTP = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout,
                                               context=ssl.create_default_context())
        else:
            s = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        with s:
            if cfg.starttls:
                s.starttls(context=ssl.create_default_context())
            if cfg.user:
                s.login(cfg.user, password or "")
            refused = s.send_message(msg)
    except smtplib.SMTPAuthenticationError:
        raise NotifyError(f"SMTP {cfg.host}:{cfg.port}: authentication failed for {cfg.user!r}") from None
    except (smtplib.SMTPException, OSError) as e:
        raise NotifyError(f"SMTP {cfg.host}:{cfg.port}: {type(e).__name__}: {str(e)[:200]}") from None
    if refused:
        raise NotifyError(f"SMTP {cfg.host}:{cfg.port}: recipients refused: {', '.join(sorted(refused))}")


def notify(drift: Drift, organisation: Optional[str], bundle_path: str, hosts: dict[str, int],
           webhook: Optional[Webhook], smtp: Optional[Smtp]) -> list[dict[str, Any]]:
    """Send to every configured channel; one failing channel does not stop the other.

    Returns one outcome per channel: ``{"channel", "ok", "error"?}`` (safe to log and to index).
    """
    outcomes: list[dict[str, Any]] = []
    body = text(drift, organisation, bundle_path)
    det = details(drift, organisation, bundle_path, hosts)
    if webhook is not None:
        try:
            status = send_webhook(webhook, {"text": body, "evidence_agent": det})
            outcomes.append({"channel": "webhook", "target": redact_url(webhook.url), "ok": True, "status": status})
        except (NotifyError, ValueError) as e:
            outcomes.append({"channel": "webhook", "target": redact_url(webhook.url), "ok": False, "error": str(e)})
    if smtp is not None:
        try:
            send_mail(smtp, subject(drift, organisation), body, det)
            outcomes.append({"channel": "email", "target": f"{smtp.host}:{smtp.port}", "ok": True,
                             "recipients": len(smtp.mail_to)})
        except NotifyError as e:
            outcomes.append({"channel": "email", "target": f"{smtp.host}:{smtp.port}", "ok": False, "error": str(e)})
    return outcomes

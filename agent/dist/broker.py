"""The Celery application over one Redis server (broker and result store), configured for evidence collection.

Settings that matter and why: JSON only (a pickled payload would let anyone who can write to the broker run code
in every worker); late acknowledgement plus reject-on-worker-lost (a worker killed mid-task gives the task back
to the queue, and the controller keeps only its first result); prefetch of one task (a slow host never holds
queued ones hostage); ``task_track_started`` (the controller times a host from when a worker took it).
"""
from __future__ import annotations

import os
import re
import ssl
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

QUEUE_PREFIX = "ea.zone."
TASK_NAME = "evidence_agent.collect"


class BrokerError(RuntimeError):
    """The broker cannot be used (down, refused the password, bad URL). The message never holds the password."""


def mask(url: str) -> str:
    """The URL with its password (and user) replaced: safe for messages and logs."""
    return re.sub(r"(?<=//)[^@/]*@", "***@", url)


def queue(zone: str) -> str:
    return QUEUE_PREFIX + zone


@dataclass
class BrokerConfig:
    url: str
    tls: dict[str, str] = field(default_factory=dict)  # ca_file, cert_file, key_file
    visibility_timeout: float = 600.0  # seconds before an unacknowledged task of a dead worker is redelivered

    @classmethod
    def resolve(cls, given: Optional[str], inv_broker: Any,
                env: Optional[Mapping[str, str]] = None) -> Optional["BrokerConfig"]:
        """``--broker URL`` wins, else the inventory's ``broker.url_env`` variable, else EVIDENCE_AGENT_BROKER
        when the inventory has a ``broker:`` section. None: single-process mode."""
        env = os.environ if env is None else env
        tls = dict(getattr(inv_broker, "tls", None) or {})
        if given:
            return cls(given, tls)
        if inv_broker is None:
            return None
        url = env.get(inv_broker.url_env)
        if not url:
            raise BrokerError(f"the inventory's broker section reads the broker URL from ${inv_broker.url_env}, "
                              "which is not set")
        return cls(url, tls)

    def ssl_options(self) -> Optional[dict[str, Any]]:
        """kombu/redis-py TLS options for rediss:// URLs (certificate always verified)."""
        if not self.url.startswith("rediss://") and not self.tls:
            return None
        opts: dict[str, Any] = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
        if self.tls.get("ca_file"):
            opts["ssl_ca_certs"] = self.tls["ca_file"]
        if self.tls.get("cert_file"):
            opts["ssl_certfile"] = self.tls["cert_file"]
        if self.tls.get("key_file"):
            opts["ssl_keyfile"] = self.tls["key_file"]
        return opts

    def redis(self, timeout: float = 5.0) -> Any:
        """A plain redis-py client on the same server (liveness checks, delivery counts, result polling)."""
        import redis

        kw: dict[str, Any] = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
        for k, v in (self.ssl_options() or {}).items():
            kw[k] = v
        try:
            return redis.Redis.from_url(self.url, **kw)
        except ValueError as e:
            raise BrokerError(f"not a usable Redis URL {mask(self.url)}: {e}") from None


def ping(cfg: BrokerConfig, timeout: float = 5.0) -> None:
    """Raise BrokerError with a clear reason when the broker cannot be reached or refuses us."""
    import redis

    try:
        cfg.redis(timeout).ping()
    except redis.AuthenticationError:
        raise BrokerError(f"the broker at {mask(cfg.url)} refused the password") from None
    except redis.ResponseError as e:  # e.g. NOAUTH when the URL has no password
        raise BrokerError(f"the broker at {mask(cfg.url)} refused the connection: {mask(str(e))}") from None
    except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
        raise BrokerError(f"cannot reach the broker at {mask(cfg.url)}: {mask(str(e)) or type(e).__name__}") from None


def make_app(cfg: BrokerConfig) -> Any:
    """The Celery app; the collection task is registered on it (``agent.dist.worker.collect``)."""
    from celery import Celery

    from . import worker

    app = Celery("evidence_agent", broker=cfg.url, backend=cfg.url, set_as_current=False)
    app.conf.update(
        task_serializer="json", result_serializer="json", accept_content=["json"], result_accept_content=["json"],
        task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
        task_track_started=True, result_expires=7 * 86400, result_extended=False,
        broker_connection_retry_on_startup=False, broker_connection_max_retries=3,
        broker_transport_options={"visibility_timeout": cfg.visibility_timeout},
        result_backend_transport_options={"visibility_timeout": cfg.visibility_timeout},
        worker_hijack_root_logger=False, worker_send_task_events=False, task_send_sent_event=False,
        broker_heartbeat=0, worker_cancel_long_running_tasks_on_connection_loss=True,
    )
    ssl_opts = cfg.ssl_options()
    if ssl_opts:
        app.conf.broker_use_ssl = ssl_opts
        app.conf.redis_backend_use_ssl = ssl_opts
    app.task(name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True)(worker.collect)
    return app

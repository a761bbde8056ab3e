"""The test broker (tests/redislab.py) is what it claims: authenticated, ephemeral, killable, TLS when asked.

The distributed mode's fault tests lean on these properties, so each is checked against the
real ``redis-server`` and the real client libraries (redis-py, kombu, Celery's result backend).
"""
from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess

import pytest

redis = pytest.importorskip("redis")

from tests.redislab import REDIS_SERVER, start_in_netns, start_redis  # noqa: E402
from tests.sshd import free_port  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.exists(REDIS_SERVER),
                                reason="redis-server not installed (scripts/system-deps.sh test)")


def test_password_is_required_and_the_config_is_as_claimed():
    with start_redis() as srv:
        assert srv.url == f"redis://:{srv.password}@127.0.0.1:{srv.port}/0"
        with pytest.raises(redis.AuthenticationError):  # no password: NOAUTH
            redis.Redis(host="127.0.0.1", port=srv.port, socket_timeout=2).ping()
        with pytest.raises(redis.AuthenticationError):  # a wrong one
            redis.Redis(host="127.0.0.1", port=srv.port, password=srv.password + "x", socket_timeout=2).ping()
        c = srv.client()
        assert c.ping() is True
        cfg = {k: c.config_get(k)[k] for k in ("bind", "protected-mode", "save", "appendonly", "unixsocket",
                                                "maxmemory-policy", "port", "tls-port")}
        assert cfg == {"bind": "127.0.0.1", "protected-mode": "yes", "save": "", "appendonly": "no",
                       "unixsocket": "", "maxmemory-policy": "noeviction", "port": str(srv.port), "tls-port": "0"}
        assert int(c.config_get("maxmemory")["maxmemory"]) == 64 * 1024 * 1024
        assert stat.S_IMODE(os.stat(srv.conf).st_mode) == 0o600 and stat.S_IMODE(os.stat(srv.dir).st_mode) == 0o700
        assert srv.password not in srv.log_tail(10**6)
        d = srv.dir
    assert not os.path.exists(d) and not srv.running  # close() removed its files and process


def test_two_servers_never_share_a_port_or_a_password():
    with start_redis() as a, start_redis() as b:
        assert a.port != b.port and a.password != b.password
        a.client().set("k", "a")
        assert b.client().get("k") is None


def test_kill_makes_the_client_fail_and_restart_brings_an_empty_broker_back():
    with start_redis() as srv:
        c = srv.client(socket_timeout=2, socket_connect_timeout=2)
        c.set("queued", "task")
        pid = srv.proc.pid
        srv.kill()
        assert srv.proc.returncode == -signal.SIGKILL and not os.path.exists(f"/proc/{pid}/status")
        with pytest.raises(redis.ConnectionError):
            c.ping()
        srv.restart()
        assert srv.proc.pid != pid
        c2 = redis.Redis.from_url(srv.url)  # the same URL reaches the new process
        assert c2.ping() is True and c2.get("queued") is None  # nothing persisted across the loss


def test_stop_is_orderly_and_saves_nothing():
    with start_redis() as srv:
        srv.client().set("k", "v")
        srv.stop()
        assert srv.proc.returncode == 0
        assert not [f for f in os.listdir(srv.dir) if f.endswith((".rdb", ".aof")) or f.startswith("appendonly")]


def test_tls_recipe_verifies_the_server_and_refuses_plaintext():
    with start_redis(tls=True) as srv:
        t = srv.tls_files
        assert srv.url.startswith(f"rediss://:{srv.password}@127.0.0.1:{srv.port}/0?ssl_cert_reqs=required"
                                  f"&ssl_ca_certs={t.ca_file}")
        assert srv.client().ping() is True
        cfg = srv.client().config_get("port")
        assert cfg["port"] == "0"  # TLS only: no plaintext listener at all
        with pytest.raises(redis.ConnectionError):  # plaintext to the TLS port
            redis.Redis(host="127.0.0.1", port=srv.port, password=srv.password, socket_timeout=2).ping()
        unverified = srv.url.split("?")[0] + "?ssl_cert_reqs=required"  # system CAs do not know the test CA
        with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
            redis.Redis.from_url(unverified, socket_timeout=2).ping()

        # the same URL as Celery's broker (kombu) and result backend: a message goes through the TLS broker
        kombu = pytest.importorskip("kombu")
        with kombu.Connection(srv.url, connect_timeout=5) as conn:
            q = conn.SimpleQueue("ea.zone.test")
            q.put({"host": "web-1"})
            msg = q.get(timeout=5)
            assert msg.payload == {"host": "web-1"}
            msg.ack()
            q.close()
        celery = pytest.importorskip("celery")
        app = celery.Celery("redislab-test", broker=srv.url, backend=srv.url)
        assert app.backend.client.ping() is True


def test_tls_client_certificates_when_required():
    with start_redis(tls_client_auth=True) as srv:
        t = srv.tls_files
        assert f"&ssl_certfile={t.client_cert}&ssl_keyfile={t.client_key}" in srv.url
        assert srv.client().ping() is True
        without_cert = srv.url.split("&ssl_certfile=")[0]
        with pytest.raises(redis.ConnectionError):
            redis.Redis.from_url(without_cert, socket_timeout=2).ping()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"), reason="needs root and iproute2 (ip netns)")
def test_a_broker_inside_a_network_namespace_is_reachable_only_there():
    ns = f"ea-redis-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for args in (["link", "set", "lo", "up"], ["link", "add", "ea0", "type", "veth", "peer", "name", "ea0-p"],
                     ["addr", "add", "192.0.2.10/24", "dev", "ea0"], ["link", "set", "ea0", "up"],
                     ["link", "set", "ea0-p", "up"]):
            subprocess.run(["ip", "-n", ns, *args], check=True)  # a documentation address, only inside ns
        port = free_port()  # free on this machine's loopback too, so a refusal there means isolation
        srv = start_in_netns(ns, "192.0.2.10", port)
        try:
            assert srv.url == f"redis://:{srv.password}@192.0.2.10:{port}/0"
            assert open(f"/proc/{srv.proc.pid}/comm").read().strip() == "redis-server"  # ip exec'd it: kill works
            assert srv.ping()
            srv.kill()
            assert not srv.ping()
            srv.restart()
            assert srv.ping()
        finally:
            srv.close()
        with pytest.raises(redis.ConnectionError):  # the host's loopback never had it
            redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=1).ping()
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def test_acl_user_instead_of_requirepass():
    with start_redis(username="evidence-agent") as srv:
        assert srv.url == f"redis://evidence-agent:{srv.password}@127.0.0.1:{srv.port}/0"
        acl = open(srv.acl_file).read()
        assert srv.password not in acl and "user default off" in acl  # only the SHA-256 of the password
        assert srv.client().ping() is True
        with pytest.raises(redis.AuthenticationError):  # password alone logs in as the disabled default user
            redis.Redis(host="127.0.0.1", port=srv.port, password=srv.password, socket_timeout=2).ping()
        with pytest.raises(redis.ResponseError, match="no permissions"):  # -@dangerous
            srv.client().flushall()

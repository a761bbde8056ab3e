"""docs/distributed.md and its examples stay true: they parse, carry what they need, hold no secret and no real
address, and the documented Redis configuration really runs a Celery task over TLS with the ACL user.
"""
from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import sys
import textwrap

import pytest
import yaml

from collectors import signing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "distributed.md")
COMPOSE = os.path.join(ROOT, "docs", "examples", "compose.yaml")
K8S = os.path.join(ROOT, "docs", "examples", "k8s-worker.yaml")
ALLOWED_NETS = [ipaddress.ip_network(n) for n in ("127.0.0.0/8", "::1/128", "192.0.2.0/24", "198.51.100.0/24",
                                                  "203.0.113.0/24", "2001:db8::/32")]


def _text(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _blocks(lang: str = "") -> list[str]:
    """The fenced code blocks of docs/distributed.md with that language tag ('' = untagged)."""
    return [m.group(2) for m in re.finditer(r"^```(\w*)\n(.*?)^```", _text(DOC), re.S | re.M) if m.group(1) == lang]


def _block_after(marker: str) -> str:
    doc = _text(DOC)
    i = doc.index(marker)
    m = re.compile(r"^```\w*\n(.*?)^```", re.S | re.M).search(doc, i)
    assert m, marker
    return m.group(1)


# -- the examples ---------------------------------------------------------------------------------------------

def test_compose_example_has_broker_two_zone_workers_and_a_one_shot_controller():
    c = yaml.safe_load(_text(COMPOSE))
    svc = c["services"]
    assert {"redis", "worker-internal", "worker-dmz", "controller"} <= set(svc)
    redis = svc["redis"]
    assert "ports" not in redis  # never published on the Docker host
    assert c["networks"]["broker"]["internal"] is True and "broker" in redis["networks"]
    conf = c["configs"]["redis_conf"]["content"].splitlines()
    for want in ("protected-mode yes", "port 0", "tls-port 6380", "aclfile /run/secrets/users.acl", 'save ""',
                 "appendonly no", "maxmemory-policy noeviction", "tls-auth-clients no"):
        assert want in conf, want
    zones = []
    for name in ("worker-internal", "worker-dmz"):
        w = svc[name]
        cmd = w["command"]
        assert cmd[:2] == ["worker", "--zone"] and "--key" in cmd and "--hostname" in cmd
        zones.append(cmd[2])
        assert "broker" in w["networks"] and f"zone-{cmd[2]}" in w["networks"]
        assert "broker_url" in w["secrets"] and "signing_key" not in str(w["secrets"])  # workers never sign bundles
        assert w["entrypoint"][:2] == ["/bin/sh", "-c"] and "/run/secrets/broker_url" in w["entrypoint"][2]
        assert w["depends_on"]["redis"]["condition"] == "service_healthy"
    assert sorted(zones) == ["dmz", "internal"]
    ctl = svc["controller"]
    assert ctl["restart"] == "no" and ctl["profiles"] == ["run"] and ctl["command"][0] in ("run", "scan")
    assert "signing_key" in ctl["secrets"] and ctl["networks"] == ["broker"]
    for s in c["secrets"].values():  # secrets come from files the operator makes, never inline
        assert set(s) == {"file"}


def test_k8s_example_has_per_zone_secret_deployment_and_network_policy():
    docs = [d for d in yaml.safe_load_all(_text(K8S)) if d]
    by_kind: dict[str, list[dict]] = {}
    for d in docs:
        assert {"apiVersion", "kind", "metadata"} <= set(d)
        by_kind.setdefault(d["kind"], []).append(d)
    secrets = {s["metadata"]["name"]: s for s in by_kind["Secret"]}
    policies = by_kind["NetworkPolicy"]
    assert len(by_kind["Deployment"]) == 2 and len(policies) == 2
    broker_blocks, zone_blocks = set(), []
    for dep in by_kind["Deployment"]:
        spec = dep["spec"]
        labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items()
        ctr = spec["template"]["spec"]["containers"][0]
        assert ctr["args"][:2] == ["worker", "--zone"] and "--key" in ctr["args"]
        zone = ctr["args"][2]
        env = {e["name"]: e for e in ctr["env"]}
        ref = env["EVIDENCE_AGENT_BROKER"]["valueFrom"]["secretKeyRef"]
        assert ref["name"] in secrets and ref["key"] in secrets[ref["name"]]["stringData"]
        assert not any("rediss://" in str(a) or "redis://" in str(a) for a in ctr["args"])
        sc = ctr["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
        assert spec["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
        mine = [p for p in policies if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()]
        assert len(mine) == 1, f"one NetworkPolicy must select the {zone} workers"
        pol = mine[0]["spec"]
        assert "Egress" in pol["policyTypes"] and "Ingress" in pol["policyTypes"] and pol["ingress"] == []
        cidrs = [t["ipBlock"]["cidr"] for rule in pol["egress"] for t in rule["to"] if "ipBlock" in t]
        broker = [rule for rule in pol["egress"] for t in rule["to"] if "ipBlock" in t and t["ipBlock"]["cidr"].endswith("/32")]
        assert len(broker) == 1 and broker[0]["ports"] == [{"protocol": "TCP", "port": 6380}]
        broker_blocks.add(broker[0]["to"][0]["ipBlock"]["cidr"])
        zone_blocks += [c for c in cidrs if not c.endswith("/32")]
    assert len(broker_blocks) == 1 and len(set(zone_blocks)) == 2  # one broker; each zone its own range only


@pytest.mark.parametrize("path", [COMPOSE, K8S, DOC])
def test_no_literal_password_and_only_documentation_addresses(path):
    text = _text(path)
    for m in re.finditer(r"rediss?://([^:/@\s]*):([^@\s]*)@", text):
        assert m.group(2) == "PASSWORD", m.group(0)  # a placeholder, never a value
    assert not re.search(r"^\s*requirepass\s+(?!<)\S", text, re.M)
    if path == K8S:
        for d in yaml.safe_load_all(text):
            if d and d["kind"] == "Secret":
                assert all(v == "" for v in d.get("stringData", {}).values()) and "data" not in d
    found = set()
    for m in re.finditer(r"(?<![\w.:])(\d{1,3}(?:\.\d{1,3}){3}|[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{0,4}){2,7})(/\d{1,3})?"
                         r"(?![\w.])", text):
        try:
            net = ipaddress.ip_network(m.group(1) + (m.group(2) or ""), strict=False)
        except ValueError:
            continue  # not an address (a time, a version)
        found.add(str(net))
        assert any(net.subnet_of(a) for a in ALLOWED_NETS if a.version == net.version), \
            f"{os.path.basename(path)}: {m.group(0)} is neither loopback nor a documentation address"
    if path != COMPOSE:
        assert found  # the check saw the addresses the file does have


def test_the_guide_names_the_log_fields_queues_and_inventory_keys():
    doc = _text(DOC)
    for word in ("`task_id`", "`zone`", "`host`", "`worker`", "`event`", "ea.zone.", "url_env", "workers:",
                 "vantage:", "keygen --worker", "install-worker", "examples/compose.yaml", "examples/k8s-worker.yaml",
                 "requirepass", "protected-mode", "maxmemory", "rediss://"):
        assert word in doc, word
    readme = _text(os.path.join(ROOT, "README.md"))
    assert "docs/distributed.md" in readme and "install-worker" in readme


def test_the_guide_inventory_example_is_valid():
    inv = next(yaml.safe_load(b) for b in _blocks("yaml") if "workers:" in b)
    assert inv["broker"]["url_env"] == "EVIDENCE_AGENT_BROKER" and "url" not in inv["broker"]
    for zone, keys in inv["workers"].items():
        for line in keys:
            signing.load_public(line)  # real ssh-ed25519 public keys, not placeholders
    zones = {h["zone"] for h in inv["hosts"]} | {n.get("vantage") or n["zone"] for n in inv["networks"]}
    assert zones <= set(inv["workers"])  # every zone that gets tasks has an accepted key


def test_the_guide_inventory_example_loads_with_the_inventory_loader(tmp_path):
    from agent.inventory import Inventory, load_inventory

    if "broker" not in getattr(Inventory, "__dataclass_fields__", {}):
        pytest.skip("this tree's inventory loader has no broker:/workers: keys yet (agent/dist not merged)")
    src = next(b for b in _blocks("yaml") if "workers:" in b)
    p = tmp_path / "inventory.yml"
    p.write_text(src)
    inv = load_inventory(str(p))
    assert inv.broker is not None and inv.broker.url_env == "EVIDENCE_AGENT_BROKER"
    assert set(inv.workers) == {"internal", "dmz", "ext"}


# -- the documented broker configuration really runs ----------------------------------------------------------

CELERY_APP = textwrap.dedent('''
    import os
    from celery import Celery
    app = Celery("docs-check", broker=os.environ["EVIDENCE_AGENT_BROKER"], backend=os.environ["EVIDENCE_AGENT_BROKER"])
    app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"], task_acks_late=True,
                    task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
                    broker_connection_retry_on_startup=False, worker_hijack_root_logger=False)

    @app.task(name="docs.add")
    def add(a, b):
        return a + b
''')


def _documented_server(conf_text: str, acl_text: str, tls_names: dict[str, str]):
    """A RedisServer that runs the docs' configuration with only address, port and file paths replaced."""
    from tests.redislab import RedisServer
    from tests.sshd import free_port

    acl = [ln for ln in acl_text.splitlines() if ln.strip()]
    assert acl[0] == "user default off"
    user, rules = re.fullmatch(r"user (\S+) on #<sha256 of the password> (.+)", acl[1]).groups()
    port = free_port()
    srv = RedisServer("127.0.0.1", port, tls=True, username=user, acl_rules=rules)
    t = srv.tls_files
    paths = {tls_names["cert"]: t.server_cert, tls_names["key"]: t.server_key, tls_names["ca"]: t.ca_file}
    out = []
    for line in conf_text.splitlines():
        d, _, arg = line.partition(" ")
        if d == "bind":
            line = "bind 127.0.0.1"
        elif d == "tls-port":
            line = f"tls-port {port}"
        elif d == "aclfile":
            line = f"aclfile {srv.acl_file}"
        elif arg in paths:
            line = f"{d} {paths[arg]}"
        out.append(line)
    srv.config = "\n".join(out + [f"dir {srv.dir}", f"logfile {srv.log}"]) + "\n"
    return srv


def _celery_round_trip(tmp_path, url: str) -> int:
    (tmp_path / "docs_celery_app.py").write_text(CELERY_APP)
    env = dict(os.environ, EVIDENCE_AGENT_BROKER=url, PYTHONPATH=str(tmp_path))
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "docs_celery_app", "worker", "-P", "solo",
                               "-Q", "ea.zone.docs", "-n", "docs@%h", "--without-gossip", "--without-mingle",
                               "--without-heartbeat", "-l", "error"], env=env, cwd=str(tmp_path),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        code = ("import sys; sys.path.insert(0, sys.argv[1]); import docs_celery_app as m; "
                "print(m.add.apply_async((2, 3), queue='ea.zone.docs').get(timeout=30))")
        r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr[-2000:]
        return int(r.stdout.strip().splitlines()[-1])
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(5)


def test_the_documented_redis_config_acl_and_url_run_a_celery_task(tmp_path):
    redis = pytest.importorskip("redis")
    pytest.importorskip("celery")
    srv = _documented_server(_block_after("`/etc/redis/redis.conf` for the broker"), _block_after("`/etc/redis/users.acl`"),
                             {"cert": "/etc/redis/tls/redis.crt", "key": "/etc/redis/tls/redis.key",
                              "ca": "/etc/redis/tls/ca.crt"})
    with srv:
        url = _block_after("The URL the controller and the workers get").strip()
        url = (url.replace("PASSWORD", srv.password).replace("192.0.2.10:6380", f"127.0.0.1:{srv.port}")
               .replace("/etc/evidence-agent/broker-ca.pem", srv.tls_files.ca_file))
        assert url == srv.url  # the documented URL form is the one the test server answers
        c = srv.client()
        with pytest.raises(redis.ResponseError, match="no permissions"):  # -@dangerous: CONFIG refused
            c.config_get("maxmemory")
        with pytest.raises(redis.ConnectionError):  # the default user is off: no password-only login
            redis.Redis(host="127.0.0.1", port=srv.port, password=srv.password, ssl=True,
                        ssl_ca_certs=srv.tls_files.ca_file, socket_timeout=3).ping()
        assert _celery_round_trip(tmp_path, url) == 5


def test_the_compose_redis_config_starts(tmp_path):
    pytest.importorskip("redis")
    conf = yaml.safe_load(_text(COMPOSE))["configs"]["redis_conf"]["content"]
    acl = "user default off\nuser evidence-agent on #<sha256 of the password> ~* &* +@all -@dangerous\n"
    with _documented_server(conf, acl, {"cert": "/tls/redis.crt", "key": "/tls/redis.key", "ca": "/tls/ca.crt"}) as srv:
        assert srv.client().ping() is True

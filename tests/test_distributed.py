"""Distributed mode on real parts: a password-protected redis-server, `evidence-agent worker` processes per zone,
a real sshd as the targets, the CLI controller. Checks that verdicts equal a single-process run's, that every
result is signed by an accepted worker key and recorded, and that each fault ends as 점검불가 with its reason while
the rest of the run is still signed."""
from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time

import pytest

from agent.cli import main
from conftest import ROOT, write_inventory
from distlab import Redis, Worker, worker_key
from sshd import Hang
from test_e2e_spine import results, scan

sys.path.insert(0, os.path.join(ROOT, "scripts"))
from lab_verdicts import verdicts  # noqa: E402

pytestmark = pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server not installed "
                                "(scripts/system-deps.sh test installs it)")

INV = """version: 1
organisation: Test Fintech
scope:
  allow: [127.0.0.0/8]
defaults:
  ssh: {{user: root, key_file: {key}, known_hosts: {kh}, host_key_policy: strict, connect_timeout: 3}}
  timeouts: {{host: {host_timeout}}}
hosts:
  - {{name: app-1, address: 127.0.0.1, transport: ssh, roles: [app], zone: internal, ssh: {{port: {port}}}}}
  - {{name: app-2, address: 127.0.0.2, transport: ssh, roles: [app], zone: internal, ssh: {{port: {port}}}}}
  - {{name: web-1, address: 127.0.0.3, transport: ssh, roles: [web], zone: dmz, ssh: {{port: {port}}}}}
{extra_hosts}
workers:
{workers}
"""


def write(tmp, srv, workers: dict[str, list[str]], extra_hosts: str = "", host_timeout: int = 60,
          name: str = "inventory.yml") -> str:
    kh = tmp / "known_hosts"
    if not kh.exists():  # the sshd listens on 127.0.0.1 only; 127.0.0.2/3 reach it through loopback routing
        host_key = open(srv.known_hosts).read().split()[1:3]
        kh.write_text("".join(f"[127.0.0.{i}]:{srv.port} {host_key[0]} {host_key[1]}\n" for i in (1, 2, 3, 4)))
    w = "\n".join(f"  {z}: [{', '.join(json.dumps(k) for k in keys)}]" for z, keys in workers.items())
    return write_inventory(str(tmp / name), INV.format(key=srv.client_key, kh=kh, port=srv.port, workers=w,
                                                       extra_hosts=extra_hosts, host_timeout=host_timeout))


@pytest.fixture(scope="module")
def sshd_all(tmp_path_factory):
    """One sshd on 127.0.0.1-4 (a target per address, as distinct hosts)."""
    from sshd import start_sshd

    srv = start_sshd(addresses=("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def broker():
    with Redis() as r:
        yield r


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("wkeys")
    return {n: (str(d / n), worker_key(str(d / n))) for n in ("w-int", "w-dmz", "w-rogue", "w-int2")}


@pytest.fixture(scope="module")
def workers(broker, keys):
    ws = [Worker(["internal"], broker.url, keys["w-int"][0], "w-int"),
          Worker(["dmz"], broker.url, keys["w-dmz"][0], "w-dmz")]
    for w in ws:
        w.start(wait=False)
    for w in ws:
        w.wait_ready()
    yield {w.name: w for w in ws}
    for w in ws:
        w.stop()


def in_background(inv: str, out: str, key: str, *extra: str) -> tuple[threading.Thread, list[int]]:
    """`scan` (host family) running in a thread; its exit code lands in the list."""
    rc: list[int] = []
    th = threading.Thread(target=lambda: rc.append(scan(inv, out, key, *extra)))
    th.start()
    return th, rc


def wait_for(cond, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end and not cond():
        time.sleep(0.2)


def facts(out: str, host: str) -> dict:
    with open(os.path.join(out, "facts", f"{host}.json"), encoding="utf-8") as f:
        return json.load(f)


def test_two_zones_equal_single_process(tmp_path, sshd_all, broker, keys, workers, signing_key):
    inv = write(tmp_path, sshd_all, {"internal": [keys["w-int"][1]], "dmz": [keys["w-dmz"][1]]})
    single, dist = str(tmp_path / "single"), str(tmp_path / "dist")
    assert scan(inv, single, signing_key) == 0
    assert scan(inv, dist, signing_key, "--broker", broker.url) == 0
    a, b = verdicts(results(single)), verdicts(results(dist))
    assert len(a) > 40
    assert a == b
    res = results(dist)
    assert [h["name"] for h in res["hosts"]] == ["app-1", "app-2", "web-1"]  # each host once, inventory order
    assert all(h["collected"] for h in res["hosts"])
    # who collected what: the verified key, its zone and host name, in facts and in every evidence header
    by = {h: facts(dist, h)["worker"] for h in ("app-1", "app-2", "web-1")}
    assert {by["app-1"]["hostname"], by["app-2"]["hostname"], by["web-1"]["hostname"]} == {"w-int", "w-dmz"}
    assert by["web-1"]["hostname"] == "w-dmz" and by["web-1"]["zone"] == "dmz"
    assert by["app-1"]["fingerprint"].startswith("SHA256:")
    ev = facts(dist, "web-1")["evidence"]["os"][0]
    head = open(os.path.join(dist, ev), encoding="utf-8").read(2000)
    assert f"collected by: worker w-dmz (zone dmz, key {by['web-1']['fingerprint']})" in head
    fps = {w["hostname"]: w["fingerprint"] for w in res["run"]["distributed"]["workers"]}
    assert set(fps) == {"w-int", "w-dmz"}
    assert broker.password not in json.dumps(res)  # the broker URL is recorded masked
    assert main(["verify", dist, "--pubkey", signing_key + ".pub"]) == 0
    # the worker never held the bundle key: the bundle's signer is not a worker key
    assert res["run"]["distributed"]["broker"].startswith("redis://***@")


def test_no_worker_for_a_zone(tmp_path, sshd_all, broker, keys, workers, signing_key):
    extra = "  - {name: branch-1, address: 127.0.0.4, transport: ssh, zone: branch, ssh: {port: %d}}" % sshd_all.port
    inv = write(tmp_path, sshd_all, {"internal": [keys["w-int"][1]], "dmz": [keys["w-dmz"][1]],
                                     "branch": [keys["w-int2"][1]]}, extra_hosts=extra, host_timeout=6)
    out = str(tmp_path / "b")
    t0 = time.monotonic()
    assert scan(inv, out, signing_key, "--broker", broker.url) == 0
    took = time.monotonic() - t0
    res = results(out)
    hosts = {h["name"]: h for h in res["hosts"]}
    assert not hosts["branch-1"]["collected"]
    assert "no worker serves zone 'branch'" in hosts["branch-1"]["error"]
    assert hosts["branch-1"]["error_code"] == "unreachable"
    assert all(hosts[h]["collected"] for h in ("app-1", "app-2", "web-1"))
    assert took < 6 + 20  # by the host deadline (plus the other hosts' collection), not forever
    assert main(["verify", out, "--pubkey", signing_key + ".pub"]) == 0


def test_unknown_worker_key_is_refused(tmp_path, sshd_all, broker, keys, workers, signing_key):
    # the dmz worker's results are signed by a key the inventory does not list for dmz
    inv = write(tmp_path, sshd_all, {"internal": [keys["w-int"][1]], "dmz": [keys["w-rogue"][1]]})
    out = str(tmp_path / "b")
    assert scan(inv, out, signing_key, "--broker", broker.url) == 0
    hosts = {h["name"]: h for h in results(out)["hosts"]}
    assert hosts["app-1"]["collected"] and hosts["app-2"]["collected"]
    assert not hosts["web-1"]["collected"]
    assert "which the inventory does not accept for zone 'dmz'" in hosts["web-1"]["error"]
    assert os.listdir(os.path.join(out, "evidence"))  # the accepted hosts' evidence is there
    assert not any("_web-1_" in f for f in os.listdir(os.path.join(out, "evidence")))  # nothing of the refused one


def test_zone_without_accepted_keys_is_a_load_error(tmp_path, sshd_all, broker, keys, signing_key, capsys):
    inv = write(tmp_path, sshd_all, {"internal": [keys["w-int"][1]]})
    out = str(tmp_path / "b")
    assert scan(inv, out, signing_key, "--broker", broker.url) == 1
    assert "no worker key is accepted for zone 'dmz' (host web-1)" in capsys.readouterr().err
    assert not os.path.exists(out)


def test_broker_down_at_start(tmp_path, sshd_all, keys, signing_key, capsys):
    inv = write(tmp_path, sshd_all, {"internal": [keys["w-int"][1]], "dmz": [keys["w-dmz"][1]]})
    out = str(tmp_path / "b")
    from sshd import free_port

    url = f"redis://:s3cret-pw@127.0.0.1:{free_port()}/0"
    assert scan(inv, out, signing_key, "--broker", url) == 7
    err = capsys.readouterr().err
    assert "cannot reach the broker at redis://***@127.0.0.1:" in err
    assert "s3cret-pw" not in err
    assert not os.path.exists(out)


def test_wrong_broker_password(tmp_path, sshd_all, broker, keys, signing_key, capsys):
    inv = write(tmp_path, sshd_all, {"internal": [keys["w-int"][1]], "dmz": [keys["w-dmz"][1]]})
    url = broker.url.replace(broker.password, "not-the-password")
    assert scan(inv, str(tmp_path / "b"), signing_key, "--broker", url) == 7
    err = capsys.readouterr().err
    assert "refused the password" in err and "not-the-password" not in err


def _slow_run(tmp_path, sshd_all, broker, keys, signing_key, kill):
    """A target that never answers holds the task of zone `slow`; ``kill(first, second)`` kills (part of) the
    worker holding it. Returns (rc, out, first worker, second worker)."""
    hang = Hang()
    extra = ("  - {name: slow-1, address: 127.0.0.1, transport: ssh, zone: slow, ssh: {port: %d, connect_timeout: 7}}"
             % hang.port)  # the task lasts ~7 s: time to kill its worker while it holds it
    inv = write(tmp_path, sshd_all, {"internal": [keys["w-int"][1]], "dmz": [keys["w-dmz"][1]],
                                     "slow": [keys["w-int2"][1]]}, extra_hosts=extra, host_timeout=10)
    first = Worker(["slow"], broker.url, keys["w-int2"][0], "w-slow-a", pool="prefork", concurrency=1).start()
    second = None
    out = str(tmp_path / "b")
    try:
        th, rc = in_background(inv, out, signing_key, "--broker", broker.url)
        wait_for(lambda: '"task-start"' in first.log(), 30)
        assert '"task-start"' in first.log(), first.log()
        second = Worker(["slow"], broker.url, keys["w-int2"][0], "w-slow-b", pool="prefork", concurrency=1).start()
        kill(first)
        th.join(120)
        assert not th.is_alive()
    finally:
        hang.close()
        first.kill()
        if second:
            second.stop()
    return rc, out


def _check_once(rc, out):
    assert rc == [0]
    res = results(out)
    assert [h["name"] for h in res["hosts"]].count("slow-1") == 1  # never twice in the results
    assert all(h["collected"] for h in res["hosts"] if h["name"] != "slow-1")
    rec = facts(out, "slow-1")
    assert not rec["collected"]  # the target still never answers: the second attempt's own reason
    assert rec["worker"]["attempt"] == 2, rec
    assert "SSH banner" in rec["error"] or "timed out" in rec["error"], rec["error"]
    return rec


def test_task_process_killed_is_redelivered_by_late_ack(tmp_path, sshd_all, broker, keys, workers, signing_key):
    """Only the pool process running the task dies (OOM killer, a crash): late acknowledgement with
    reject-on-worker-lost puts the task back at once, and a worker of the zone runs it a second time."""
    def kill_task_process(w):
        import signal

        children = w.pids()[1:]  # the main process first, then its pool process
        assert children, w.pids()
        for pid in children:
            os.kill(pid, signal.SIGKILL)

    rc, out = _slow_run(tmp_path, sshd_all, broker, keys, signing_key, kill_task_process)
    _check_once(rc, out)


def test_worker_killed_is_given_out_again_once(tmp_path, sshd_all, broker, keys, workers, signing_key):
    """The whole worker dies (kill -9, its machine gone): the controller sees it no longer answers, gives the task
    out once more, and the zone's other worker collects it; the result appears once."""
    rc, out = _slow_run(tmp_path, sshd_all, broker, keys, signing_key, lambda w: w.kill())
    rec = _check_once(rc, out)
    assert rec["worker"]["hostname"] == "w-slow-b"


def test_broker_lost_mid_run(tmp_path, sshd_all, keys, signing_key, capsys):
    """The broker dies while a host is in flight (its zone `slow` has no worker yet: the task waits in the queue):
    what arrived is kept, the rest is 점검불가, the bundle is signed, and the exit code says the broker was lost (7)."""
    hang = Hang()
    with Redis() as r:
        extra = "  - {name: slow-1, address: 127.0.0.1, transport: ssh, zone: slow, ssh: {port: %d}}" % hang.port
        inv = write(tmp_path, sshd_all, {"internal": [keys["w-int"][1]], "dmz": [keys["w-dmz"][1]],
                                         "slow": [keys["w-dmz"][1]]}, extra_hosts=extra, host_timeout=120)
        ws = [Worker(["internal"], r.url, keys["w-int"][0], "w-int-x", concurrency=4),
              Worker(["dmz"], r.url, keys["w-dmz"][0], "w-dmz-x", concurrency=4)]
        for w in ws:
            w.start()
        out = str(tmp_path / "b")
        try:
            th, rc = in_background(inv, out, signing_key, "--broker", r.url)
            wait_for(lambda: all(os.path.exists(os.path.join(out, "facts", f"{h}.json")) for h in ("app-1", "web-1")),
                     60)
            assert not os.path.exists(os.path.join(out, "facts", "slow-1.json"))  # still in flight
            r.kill()
            th.join(90)
            assert not th.is_alive()
        finally:
            hang.close()
            for w in ws:
                w.kill()
    assert rc == [7]
    assert "lost the broker mid-run" in capsys.readouterr().err
    res = results(out)
    hosts = {h["name"]: h for h in res["hosts"]}
    assert hosts["app-1"]["collected"] and hosts["web-1"]["collected"]
    assert not hosts["slow-1"]["collected"] and "lost the broker mid-run" in hosts["slow-1"]["error"]
    assert "lost" in res["run"]["distributed"]
    assert main(["verify", out, "--pubkey", signing_key + ".pub"]) == 0


pytest_plugins = ["netservers"]

NET_INV = """version: 1
organisation: Test Fintech
scope:
  allow: [{allow}]
networks:
{networks}
tls:
{tls}
nmap: {{ports: "21,23,80,443,3306", service_detection: false, host_timeout: "90s", overall_timeout: 240, timing: 3}}
tls_options: {{network_timeout: 15, robot: false, ca_file: {ca}}}
workers:
{workers}
"""


def _net_inventory(tmp, netlab, parts: dict[str, tuple[list[int], list[int]]], keys, name: str) -> str:
    """parts: vantage → (addresses to scan as /32 networks, addresses with a declared TLS endpoint)."""
    nets, tls = [], []
    for v, (scan_, tls_) in parts.items():
        nets += [f"  - {{name: {v}-{i}, cidr: {netlab.addr(i)}/32, zone: {v}}}" for i in scan_]
        tls += [f"  - {{host: {netlab.addr(i)}, port: 443, vantage: {v}}}" for i in tls_]
    workers = "\n".join(f"  {v}: [{json.dumps(keys['w-int'][1])}]" for v in parts)
    return write_inventory(str(tmp / name), NET_INV.format(allow=netlab.scope_allow, networks="\n".join(nets) or "  []",
                                                           tls="\n".join(tls) or "  []", ca=netlab.ca_file,
                                                           workers=workers))


def test_network_families_over_vantages_equal_merged_single_runs(tmp_path, netlab, broker, keys, signing_key):
    """Network families (nmap, then TLS and web over what it found) run by the worker of each vantage: the run's
    verdicts equal those of one single-process run per vantage, merged with `merge`."""
    # zones of their own: the module's workers (serving internal and dmz, with other keys) must not take these tasks
    parts = {"lan": ([5, 6], []), "edge": ([2, 3], []), "external": ([6], [3])}
    w = Worker(list(parts), broker.url, keys["w-int"][0], "w-net", concurrency=4).start()
    try:
        inv = _net_inventory(tmp_path, netlab, parts, keys, "all.yml")
        dist = str(tmp_path / "dist")
        only = ["--only", "network,tls,web"]
        assert scan(inv, dist, signing_key, "--broker", broker.url, *only) == 0
    finally:
        w.stop()
    singles = []
    for v, p in parts.items():
        sub = _net_inventory(tmp_path, netlab, {v: p}, keys, f"{v}.yml")
        out = str(tmp_path / f"single-{v}")
        assert main(["scan", "--inventory", sub, "--out", out, "--key", signing_key, "-q", "--vantage", v, *only]) == 0
        singles.append(out)
    merged = str(tmp_path / "merged")
    assert main(["merge", *singles, "--out", merged, "--key", signing_key, "--pubkey", signing_key + ".pub"]) == 0
    a, b = verdicts(results(merged)), verdicts(results(dist))

    def seen(bundle):  # what each run saw, for the failure message (a loaded machine can time a probe out)
        f = json.load(open(os.path.join(bundle, "facts", "_network.json"), encoding="utf-8"))["facts"]
        return {k: (v["status"], [(e.get("host"), e.get("port"), e.get("status"), e.get("reason"))
                                  for e in (v.get("data") or {}).get("endpoints", []) or []]) for k, v in f.items()}

    assert a == b, (seen(merged), seen(dist))
    net = json.load(open(os.path.join(dist, "facts", "_network.json"), encoding="utf-8"))
    assert net["vantages"] == ["edge", "external", "lan"]
    eps = {(e["host"], e["port"]): e for e in net["facts"]["tls"]["data"]["endpoints"]}
    # found by the edge scan and declared for the external vantage: one endpoint, seen from both
    assert sorted(eps[(netlab.strong, 443)]["vantages"]) == ["edge", "external"], eps[(netlab.strong, 443)]
    assert main(["verify", dist, "--pubkey", signing_key + ".pub"]) == 0


def test_scheduled_run_with_broker(tmp_path, sshd_all, broker, keys, workers, signing_key, capsys):
    """`run --broker`: the scheduled verb goes through the workers too (bundle, latest, index), and its JSON log
    names each task's id, zone, host and worker (joinable with the workers' own logs)."""
    inv = write(tmp_path, sshd_all, {"internal": [keys["w-int"][1]], "dmz": [keys["w-dmz"][1]]})
    root = str(tmp_path / "bundles")
    assert main(["run", "--inventory", inv, "--bundles", root, "--key", signing_key, "--only", "host", "-q",
                 "--log-json", "--broker", broker.url]) == 0
    latest = os.path.join(root, "latest")
    assert facts(latest, "web-1")["worker"]["hostname"] == "w-dmz"
    line = open(os.path.join(root, "index.jsonl"), encoding="utf-8").read()
    assert broker.password not in line
    err = capsys.readouterr().err
    assert broker.password not in err
    events = [json.loads(x) for x in err.splitlines() if x.startswith("{")]
    done = [e for e in events if e.get("event") == "task-result" and e.get("host") == "web-1"]
    assert done and done[0]["zone"] == "dmz" and done[0]["worker"] == "w-dmz" and done[0]["task_id"]
    assert done[0]["task_id"] == facts(latest, "web-1")["worker"]["task_id"]
    assert '"task-done"' in workers["w-dmz"].log() and done[0]["task_id"] in workers["w-dmz"].log()


def test_worker_scope_bounds_what_a_task_can_reach(tmp_path, sshd_all, broker, keys, workers, signing_key):
    """A worker started with --scope refuses a target outside it even when the task's own scope allows it (anyone
    with the broker password can queue a task)."""
    extra = ("  - {name: s-in, address: 127.0.0.4, transport: ssh, zone: scoped, ssh: {port: %d}}\n"
             "  - {name: s-out, address: 127.0.0.1, transport: ssh, zone: scoped, ssh: {port: %d}}"
             % (sshd_all.port, sshd_all.port))
    inv = write(tmp_path, sshd_all, {"internal": [keys["w-int"][1]], "dmz": [keys["w-dmz"][1]],
                                     "scoped": [keys["w-int2"][1]]}, extra_hosts=extra)
    w = Worker(["scoped"], broker.url, keys["w-int2"][0], "w-scoped", extra=["--scope", "127.0.0.4/32"]).start()
    out = str(tmp_path / "b")
    try:
        assert scan(inv, out, signing_key, "--broker", broker.url) == 0
    finally:
        w.stop()
    hosts = {h["name"]: h for h in results(out)["hosts"]}
    assert hosts["s-in"]["collected"]
    assert not hosts["s-out"]["collected"]
    assert "outside this worker's --scope" in hosts["s-out"]["error"] and "w-scoped" in hosts["s-out"]["error"]

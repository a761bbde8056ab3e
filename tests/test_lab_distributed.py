"""Distributed mode in the namespace lab (issue 15): zone workers in network namespaces that reach only their own
zone's hosts plus the broker; a run over two zones and an external vantage gives the same verdicts as the
single-process runs at those vantages, merged.

The lab (tests/lab.py, one bridge in its own switch namespace): ``lab-core`` (zone internal, 10.231.0.17, HTTP on
8080) and ``lab-front`` (zone dmz, 10.231.0.33, HTTPS on 443, and a second address 203.0.113.17 from a
documentation range that exists only inside the lab, with sshd and HTTPS on it: its "public" face). Namespaces at
three vantages, each fenced by iptables OUTPUT rules of its own (policy: only loopback, its zone's range and the
broker): the internal worker (10.231.0.2 → 10.231.0.16/28), the dmz worker (10.231.0.3 → 10.231.0.32/28), the
external worker (203.0.113.2 → 203.0.113.16/28). The broker (a password-protected redis-server) and the
controller (``scan --broker``) run in a fourth namespace (10.231.0.5, 203.0.113.5). The single-process runs use
the same three namespaces, so each vantage sees exactly what its worker sees.

Run: ``python -m pytest -q tests/test_lab_distributed.py`` (root, nmap, redis-server; marked ``lab``).
"""
from __future__ import annotations

import html
import ipaddress
import json
import os
import re
import shutil
import sys
from typing import Any

import pytest

import lab as labmod
from agent.cli import main
from distlab import Redis, Worker, worker_key

sys.path.insert(0, os.path.join(labmod.ROOT, "scripts"))
from lab_verdicts import verdicts  # noqa: E402

pytestmark = pytest.mark.lab

INT_NET = "10.231.0.16/28"  # netns lab address range (zone internal)
DMZ_NET = "10.231.0.32/28"  # netns lab address range (zone dmz)
PUBLIC_NET = "203.0.113.16/28"  # documentation range: exists only inside the lab's namespaces (dmz's public face)
FRONT_PUBLIC = "203.0.113.17"  # netns lab address (documentation range)
DMZ_NS = labmod.PREFIX + "wdmz"
BROKER_NS = labmod.PREFIX + "broker"
BROKER_IP = "10.231.0.5"  # netns lab address
WORKER_NS = {"internal": labmod.SCANNER_NS, "dmz": DMZ_NS, "external": labmod.EXT_SCANNER_NS}
REACH = {"internal": INT_NET, "dmz": DMZ_NET, "external": PUBLIC_NET}  # what each worker namespace may reach
LAB_RANGES = [ipaddress.ip_network(n) for n in (labmod.SUBNET, "203.0.113.0/24")]  # netns lab address ranges

SPECS = [
    labmod.HostSpec(name="lab-core", ip="10.231.0.17", roles=("app",), zone="internal",  # netns lab address
                    listeners={"gunicorn": (8080,)}),
    labmod.HostSpec(name="lab-front", ip="10.231.0.33", roles=("web",), zone="dmz",  # netns lab address
                    extra_addresses=(f"{FRONT_PUBLIC}/24",), listeners={"nginx": (443,)}, tls_ports=(443,)),
]
HOSTS = {"internal": ["lab-core"], "dmz": ["lab-front"], "external": []}
NETWORKS = [
    {"name": "lab-internal", "cidr": INT_NET, "zone": "internal"},
    {"name": "lab-dmz", "cidr": DMZ_NET, "zone": "dmz"},
    {"name": "lab-public", "cidr": PUBLIC_NET, "zone": "dmz", "vantage": "external"},  # scanned from outside
    # the internal range as seen from outside (no route there): "covered, nothing open" for 14.2.1 / 15.1.1
    {"name": "lab-internal-outside", "cidr": INT_NET, "zone": "internal", "vantage": "external"},
]
NMAP = {"ports": "22,443,8080", "service_detection": False, "host_timeout": "60s", "overall_timeout": 120,
        "timing": 4}


def fence(zone: str, broker_port: int) -> str:
    """iptables rules for a worker namespace: loopback, the broker, its zone's range; everything else refused."""
    return (f"*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT DROP [0:0]\n-A OUTPUT -o lo -j ACCEPT\n"
            f"-A OUTPUT -d {BROKER_IP}/32 -p tcp --dport {broker_port} -j ACCEPT\n"
            f"-A OUTPUT -d {REACH[zone]} -j ACCEPT\n"
            "-A OUTPUT -p tcp -j REJECT --reject-with tcp-reset\n-A OUTPUT -j REJECT\nCOMMIT\n")


def inventory(netlab: labmod.Lab, vantage: str | None, workers: dict[str, list[str]]) -> str:
    """The whole inventory (vantage None: the distributed run), or one vantage's share of it: its zone's hosts and
    the networks it scans. A vantage without hosts of its own (external) still declares every host, run with
    ``--only network,tls,web``: the scan labels declared addresses as the distributed run's does."""
    hosts = [h for z in HOSTS for h in HOSTS[z] if vantage in (None, z) or not HOSTS.get(vantage or "")]
    nets = [n for n in NETWORKS if vantage in (None, n.get("vantage") or n["zone"])]
    return netlab.inventory(hosts, more={
        "scope": {"allow": [labmod.SUBNET, PUBLIC_NET]},  # lab-only ranges
        "networks": nets, "nmap": NMAP, "tls_options": {"network_timeout": 3, "robot": False},
        "workers": workers})


READY = """
import sys, time
from agent.dist.broker import BrokerConfig, make_app
app = make_app(BrokerConfig(sys.argv[1]))
want, end = set(sys.argv[2:]), time.monotonic() + 60
while time.monotonic() < end:
    if want <= {n.split('@', 1)[1] for n in (app.control.inspect(timeout=0.5).active_queues() or {})}:
        sys.exit(0)
sys.exit(1)
"""


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=labmod.ROOT)


@pytest.fixture(scope="module")
def netlab():
    why = labmod.preflight()
    if why:
        pytest.skip(why)
    for tool in ("nmap", "redis-server", "redis-cli"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not installed")
    with labmod.Lab(SPECS, external_scanner="203.0.113.2/24",  # netns lab address
                    more_scanners={DMZ_NS: ["10.231.0.3/24"],  # netns lab address
                                   BROKER_NS: [f"{BROKER_IP}/24", "203.0.113.5/24"]}) as running:  # netns lab addr
        # the external vantage has no address of the lab subnet: an on-link route to the broker only
        labmod._ip("-n", labmod.EXT_SCANNER_NS, "route", "add", f"{BROKER_IP}/32", "dev", "eth0")
        yield running


@pytest.fixture(scope="module")
def cluster(netlab, tmp_path_factory):
    """The broker in its namespace, a fence in every worker namespace, and one worker per zone/vantage."""
    d = tmp_path_factory.mktemp("wkeys")
    keys = {z: (str(d / z), worker_key(str(d / z))) for z in WORKER_NS}
    broker = Redis(bind=BROKER_IP, netns=BROKER_NS)
    broker.start()
    workers: list[Worker] = []
    try:
        for zone, ns in WORKER_NS.items():
            netlab.run_in_scanner(["iptables-restore"], input=fence(zone, broker.port), check=True, ns=ns)
        for zone, ns in WORKER_NS.items():
            workers.append(Worker([zone], broker.url, keys[zone][0], f"w-{zone}", concurrency=2, netns=ns,
                                  log_path=str(d / f"w-{zone}.log")).start(wait=False))
        r = netlab.run_in_scanner([sys.executable, "-c", READY, broker.url, *(w.name for w in workers)],
                                  ns=BROKER_NS, env=_env(), cwd=labmod.ROOT, timeout=90)
        assert r.returncode == 0, r.stderr[-1500:] + "\n".join(w.log()[-1500:] for w in workers)
        yield {"broker": broker, "keys": keys, "workers": {w.name: w for w in workers}}
    finally:
        for w in workers:
            w.stop()
        broker.stop()
        shutil.rmtree(broker.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def runs(netlab, cluster, signing_key, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("labdist")
    accepted = {z: [k[1]] for z, k in cluster["keys"].items()}
    out: dict[str, Any] = {}
    for zone, ns in WORKER_NS.items():  # single-process, each in its vantage's (fenced) namespace
        b = str(tmp / zone)
        extra = ("--only", "network,tls,web") if not HOSTS[zone] else ()
        rc, so, se = netlab.scan(inventory(netlab, zone, accepted), b, signing_key, "--vantage", zone, "-q",
                                 *extra, timeout=300, ns=ns)
        assert os.path.exists(os.path.join(b, "results.json")), f"{zone}: {rc}\n{so[-1500:]}\n{se[-3000:]}"
        out[zone] = b
    merged = str(tmp / "merged")
    assert main(["merge", *out.values(), "--out", merged, "--key", signing_key, "--pubkey", signing_key + ".pub"]) == 0
    dist = str(tmp / "dist")
    rc, so, se = netlab.scan(inventory(netlab, None, accepted), dist, signing_key, "--broker", cluster["broker"].url,
                             "-q", timeout=300, ns=BROKER_NS)
    assert os.path.exists(os.path.join(dist, "results.json")), f"{rc}\n{so[-1500:]}\n{se[-3000:]}\n" + \
        "\n".join(w.log()[-1500:] for w in cluster["workers"].values())
    return {**out, "merged": merged, "dist": dist, "dist_rc": rc}


def load(bundle: str, name: str) -> dict[str, Any]:
    with open(os.path.join(bundle, name), encoding="utf-8") as f:
        return json.load(f)


def connects(netlab: labmod.Lab, ns: str, addr: str, port: int) -> bool:
    code = ("import socket,sys\ntry:\n    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()\n"
            "except OSError:\n    sys.exit(1)\n")
    return netlab.run_in_scanner([sys.executable, "-S", "-c", code, addr, str(port)], ns=ns,
                                 timeout=20).returncode == 0


def test_each_worker_namespace_reaches_only_its_zone_and_the_broker(netlab, cluster):
    port = cluster["broker"].port
    front, core = netlab.host("lab-front").ip, netlab.host("lab-core").ip
    for ns in WORKER_NS.values():
        assert connects(netlab, ns, BROKER_IP, port), ns
    # both hosts answer on the bridge (from the unfenced broker namespace): a refusal below is the fence's
    assert connects(netlab, BROKER_NS, core, 22) and connects(netlab, BROKER_NS, front, 22)
    assert connects(netlab, WORKER_NS["internal"], core, 22)
    assert not connects(netlab, WORKER_NS["internal"], front, 22)  # the dmz host, from the internal worker
    assert not connects(netlab, WORKER_NS["internal"], FRONT_PUBLIC, 22)
    assert connects(netlab, WORKER_NS["dmz"], front, 22)
    assert not connects(netlab, WORKER_NS["dmz"], core, 22)
    assert connects(netlab, WORKER_NS["external"], FRONT_PUBLIC, 443)
    assert not connects(netlab, WORKER_NS["external"], front, 22)
    assert not connects(netlab, WORKER_NS["external"], core, 22)


def test_distributed_verdicts_equal_merged_single_process_runs(runs):
    assert runs["dist_rc"] in (0, 2), runs["dist_rc"]
    single, dist = load(runs["merged"], "results.json"), load(runs["dist"], "results.json")
    a, b = verdicts(single), verdicts(dist)
    assert len(a) > 40
    diff = {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}
    assert not diff, json.dumps(diff, indent=1, ensure_ascii=False)
    # not an empty agreement: both hosts collected, the external view is judged on the dmz host
    assert all(h["collected"] for h in dist["hosts"]), dist["hosts"]
    ctl = next(c for c in dist["controls"] if c["id"] == "14.2.1")
    f = next(f for h in ctl["hosts"] if h["name"] == "lab-front" for f in h["findings"]
             if f["rule"] == "remote-admin-not-external")
    assert f["status"] == "not_implemented" and f"{FRONT_PUBLIC}:22" in f["detail"]["en"], f


#: what differs between any two runs: times (a host's clock and uptime too) and who collected it
VOLATILE = {"started", "finished", "nmap_seconds", "collected_at", "duration_seconds", "worker", "elapsed_seconds",
            "now", "uptime_seconds"}


RANDOM_404 = re.compile(r"/ea-[0-9a-f]+-404")  # the web probe's not-found path is random per run


def _stable(x: Any) -> Any:
    """A fact without its times, worker record and random probe path (they differ between any two runs)."""
    if isinstance(x, dict):
        return {k: _stable(v) for k, v in x.items() if k not in VOLATILE}
    if isinstance(x, list):
        return [_stable(v) for v in x]
    return RANDOM_404.sub("/ea-RANDOM-404", x) if isinstance(x, str) else x


def test_network_facts_equal_merged_single_process_runs(runs):
    """Beyond the verdicts: each vantage's scans, TLS endpoints and URLs are the same facts either way."""
    a = load(runs["merged"], "facts/_network.json")["facts"]
    b = load(runs["dist"], "facts/_network.json")["facts"]
    assert set(a) == set(b) == {"network_scan", "tls", "web"}
    key = {"network_scan": ("scans", lambda s: (s["vantage"], s["network"])),
           "tls": ("endpoints", lambda e: (e["host"], e["port"])), "web": ("urls", lambda u: u["url"])}
    for fam, (field, k) in key.items():
        assert a[fam]["status"] == b[fam]["status"] == "collected", (fam, a[fam].get("reason"), b[fam].get("reason"))
        xs = sorted((_stable(x) for x in a[fam]["data"][field]), key=k)
        ys = sorted((_stable(y) for y in b[fam]["data"][field]), key=k)
        assert [k(x) for x in xs] == [k(y) for y in ys], fam
        for x, y in zip(xs, ys):
            diff = {f: (x.get(f), y.get(f)) for f in set(x) | set(y) if x.get(f) != y.get(f)}
            assert not diff, (fam, k(x), json.dumps(diff, ensure_ascii=False)[:3000])
    assert len(a["network_scan"]["data"]["scans"]) == 4 and len(a["tls"]["data"]["endpoints"]) == 2


def test_host_facts_equal_single_process_runs(runs):
    """A worker collects a host as the single-process run does: the same facts, times aside."""
    for zone, names in HOSTS.items():
        for name in names:
            a = load(runs[zone], f"facts/{name}.json")
            b = load(runs["dist"], f"facts/{name}.json")
            assert a["collected"] and b["collected"], (name, a["error"], b["error"])
            assert set(a["facts"]) == set(b["facts"]) and len(a["facts"]) > 10, name
            for fact in a["facts"]:
                assert _stable(a["facts"][fact]) == _stable(b["facts"][fact]), (name, fact)
            assert {k: len(v) for k, v in a["evidence"].items()} == {k: len(v) for k, v in b["evidence"].items()}


def test_each_host_was_collected_by_its_zones_worker(runs, cluster):
    dist = runs["dist"]
    for zone, names in HOSTS.items():
        for name in names:
            w = load(dist, f"facts/{name}.json")["worker"]
            assert (w["zone"], w["hostname"]) == (zone, f"w-{zone}"), w
    net = load(dist, "facts/_network.json")
    assert net["vantages"] == ["dmz", "external", "internal"]
    for v, facts in net["by_vantage"].items():
        assert facts["network_scan"]["worker"]["hostname"] == f"w-{v}", (v, facts["network_scan"].get("worker"))
        assert facts["network_scan"]["status"] == "collected", (v, facts["network_scan"].get("reason"))
    scans = {s["vantage"]: s for s in net["facts"]["network_scan"]["data"]["scans"]}
    assert set(scans) == {"internal", "dmz", "external"}
    run = load(dist, "results.json")["run"]["distributed"]
    assert {w["hostname"] for w in run["workers"]} == {"w-internal", "w-dmz", "w-external"}


def test_bundles_verify(runs, signing_key):
    for b in ("internal", "dmz", "external", "merged", "dist"):
        assert main(["verify", runs[b], "--pubkey", signing_key + ".pub"]) == 0, b


ADDR = re.compile(r"(?<![\w.:])(\d{1,3}(?:\.\d{1,3}){3})(?:/\d{1,2})?(?![\w.])")
NMAP_ARGS = re.compile(r'<nmaprun [^>]*\bargs="([^"]*)"')


def test_nmap_command_lines_name_only_lab_addresses(runs):
    """The scanner's scope: every address or range on every nmap command line (as nmap itself records it in its
    XML output, kept as evidence) is a lab one, and each vantage ran its own scan."""
    scans: dict[str, set[str]] = {}
    for b in ("internal", "dmz", "external", "dist"):
        ev = os.path.join(runs[b], "evidence")
        for name in sorted(os.listdir(ev)):
            if not name.endswith(".xml"):
                continue
            with open(os.path.join(ev, name), encoding="utf-8", errors="replace") as f:
                m = NMAP_ARGS.search(f.read(20000))
            assert m, name
            line = html.unescape(m.group(1))
            addrs = ADDR.findall(line)
            assert addrs, line
            for a in addrs:
                assert any(ipaddress.ip_address(a) in n for n in LAB_RANGES), (b, name, a, line)
            scans.setdefault(b, set()).update(addrs)
    assert scans == {"internal": {"10.231.0.16"}, "dmz": {"10.231.0.32"}, "external": {"203.0.113.16", "10.231.0.16"},
                     "dist": {"10.231.0.16", "10.231.0.32", "203.0.113.16"}}, scans  # netns lab addresses

"""Benchmark of the network probes against the bare tools, on the same loopback targets.

Why: the scan and TLS probes wrap nmap and sslyze; the wrapping must cost next to
nothing (scan: at most 1.1x bare nmap with the same options), and the TLS probe
must stay far quicker than the usual shell tool (at least 20x testssl.sh --parallel
on the same ten endpoints), or a fleet-wide run would not fit its window.

(a) discovery + port scan of 127.0.5.0/24 (a handful of listeners started here):
    ``scan_networks`` vs ``nmap`` run with exactly the argv ``scan_networks`` builds.
(b) TLS assessment of ten endpoints on 127.0.6.1-10:443 (one nginx, or s_server each):
    ``assess_tls`` vs ``testssl --parallel`` (Debian package testssl.sh), default checks.

Traffic stays on loopback. As root with iproute2, the benchmark re-runs itself in a
fresh network namespace that has only ``lo`` (so no tool can reach anything else,
and no listener of the host shows up in the /24), and deletes it afterwards. All
servers it starts are stopped at the end, also on failure or Ctrl-C.

Run:  sudo /tmp/vtest/bin/python benchmarks/net_bench.py [--repeat 3] [--skip-testssl]
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from agent.scope import Scope  # noqa: E402
from probes.net.nmap_scan import NmapOptions, build_args, find_nmap, scan_networks  # noqa: E402
from probes.net.tls import TlsOptions, assess_tls  # noqa: E402

import netservers as ns  # noqa: E402

SCAN_NET = "127.0.5.0/24"
TLS_HOSTS = [f"127.0.6.{i}" for i in range(1, 11)]


def in_netns(argv: list[str]) -> int:
    name = f"ea-bench-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        return subprocess.call(["ip", "netns", "exec", name, sys.executable, __file__, "--inside", *argv])
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def plant_scan_targets(lab: ns.Lab, tmp: Path) -> dict[str, set[int]]:
    planted = {
        "127.0.5.10": {21: ns.FTP_BANNER, 3306: ns.MYSQL_BANNER},
        "127.0.5.20": {23: ns.TELNET_BANNER},
        "127.0.5.30": {22: b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"},
        "127.0.5.40": {25: b"220 mail.example.test ESMTP Postfix (Debian/GNU)\r\n"},
        "127.0.5.200": {21: ns.FTP_BANNER, 22: b"SSH-2.0-OpenSSH_8.4p1\r\n"},
    }
    for host, ports in planted.items():
        for port, banner in ports.items():
            lab.tcp(host, port, banner)
    lab.http("127.0.5.50", 80, tmp / "www")
    cert = ns.make_self_signed(tmp / "pki", "scan", "scan.test")
    lab.s_server("127.0.5.60", 443, cert, ["tls1_2", "tls1_3"])
    out = {h: set(p) for h, p in planted.items()}
    out["127.0.5.50"] = {80}
    out["127.0.5.60"] = {443}
    return out


def bench_scan(repeat: int, planted: dict[str, set[int]]) -> dict[str, object]:
    scope = Scope.parse([SCAN_NET])
    opts = NmapOptions()  # production defaults: top 1000 TCP, -sV light, -T4, --max-retries 1
    path, version, problem = find_nmap(opts)
    if problem:
        raise SystemExit(problem)
    ours, bare, overhead = [], [], []
    fact = None
    bare_cmd = ""
    for i in range(repeat):
        for which in (("ours", "bare") if i % 2 == 0 else ("bare", "ours")):
            if which == "ours":
                t = time.monotonic()
                fact = scan_networks([{"name": "bench", "cidr": SCAN_NET, "zone": "dmz"}], scope, {}, opts,
                                     "benchmark", time.monotonic() + 600)
                ours.append(time.monotonic() - t)
                assert fact.status.value == "collected", fact.reason
                overhead.append(ours[-1] - fact.data["scans"][0]["nmap_seconds"])
            else:
                with tempfile.TemporaryDirectory() as d:
                    xml = os.path.join(d, "bare.xml")
                    args, _ = build_args(SCAN_NET, opts, os.geteuid() == 0, xml)
                    argv = [path] + args
                    bare_cmd = " ".join(shlex.quote(a) for a in argv).replace(xml, "<xml>")
                    t = time.monotonic()
                    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600,
                                   check=True)
                    bare.append(time.monotonic() - t)
    assert fact is not None
    found = {h["address"]: {p["port"] for p in h["ports"]}
             for h in fact.data["scans"][0]["hosts"] if h["live"]}
    return {"ours": ours, "bare": bare, "overhead": overhead, "found_ok": found == planted, "found": found,
            "bare_cmd": bare_cmd,
            "nmap_version": version, "hosts_up": fact.data["scans"][0]["hosts_up"]}


NGINX_TLS = """worker_processes 2;
error_log {p}/logs/error.log;
pid {p}/logs/nginx.pid;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {p}/b; proxy_temp_path {p}/p; fastcgi_temp_path {p}/f;
    uwsgi_temp_path {p}/u; scgi_temp_path {p}/s;
{servers}
}}
"""


def plant_tls_targets(lab: ns.Lab, tmp: Path) -> str:
    """Ten TLS endpoints: one nginx (2 workers, like a real server) when installed, else s_server each.

    Even addresses accept TLS 1.2/1.3 with strong suites, odd ones TLS 1.0-1.2 with everything
    OpenSSL still has (``ALL:@SECLEVEL=0``).
    """
    certs = [ns.make_self_signed(tmp / "pki", f"tls{i}", f"tls{i}.test") for i in range(len(TLS_HOSTS))]
    if shutil.which("nginx"):
        blocks = []
        for i, (host, cert) in enumerate(zip(TLS_HOSTS, certs)):
            if i % 2 == 0:
                prot, ciph = "TLSv1.2 TLSv1.3", "HIGH:!aNULL"
            else:
                prot, ciph = "TLSv1 TLSv1.1 TLSv1.2", "ALL:@SECLEVEL=0"
            blocks.append(f"    server {{ listen {host}:443 ssl; ssl_certificate {cert.cert}; "
                          f"ssl_certificate_key {cert.key}; ssl_protocols {prot}; ssl_ciphers '{ciph}'; "
                          f"location / {{ return 200 'ok'; }} }}")
        prefix = tmp / "nginx-tls"
        lab.nginx(NGINX_TLS.format(p=prefix, servers="\n".join(blocks)), prefix,
                  [(h, 443) for h in TLS_HOSTS])
        return "nginx 2 workers"
    for i, (host, cert) in enumerate(zip(TLS_HOSTS, certs)):
        if i % 2 == 0:
            lab.s_server(host, 443, cert, ["tls1_2", "tls1_3"])
        else:
            lab.s_server(host, 443, cert, ["tls1", "tls1_1", "tls1_2"], cipher="ALL:@SECLEVEL=0")
    return "openssl s_server (one connection at a time)"


def bench_tls(tmp: Path, skip_testssl: bool, testssl_timeout: float) -> dict[str, object]:
    eps = [{"host": h, "port": 443} for h in TLS_HOSTS]
    t = time.monotonic()
    fact = assess_tls(eps, Scope.parse(["127.0.6.0/24"]), TlsOptions(), time.monotonic() + 300)
    ours = time.monotonic() - t
    assessed = sum(1 for e in fact.data["endpoints"] if e["status"] == "assessed")
    res: dict[str, object] = {"ours": ours, "assessed": assessed, "testssl": None, "testssl_cmd": None,
                              "testssl_note": None}
    tool = shutil.which("testssl") or shutil.which("testssl.sh")
    if skip_testssl:
        res["testssl_note"] = "skipped (--skip-testssl)"
        return res
    if not tool:
        res["testssl_note"] = "testssl.sh not installed (apt-get install testssl.sh)"
        return res
    targets = tmp / "testssl-targets.txt"
    # --nodns none: no DNS lookups; no --phone-out: no CRL/OCSP fetches. One line per endpoint.
    targets.write_text("".join(f"--nodns none --warnings off --color 0 {h}:443\n" for h in TLS_HOSTS))
    outdir = tmp / "testssl-out"
    outdir.mkdir()
    argv = [tool, "--quiet", "--color", "0", "--warnings", "off", "--parallel", "--file", str(targets)]
    res["testssl_cmd"] = " ".join(shlex.quote(a) for a in argv).replace(str(targets), "<10 endpoints file>")
    t = time.monotonic()
    log = tmp / "testssl.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=outdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        proc.wait(timeout=testssl_timeout)
        res["testssl"] = time.monotonic() - t
        res["testssl_rc"] = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        res["testssl"] = time.monotonic() - t
        res["testssl_note"] = f"killed at the {testssl_timeout:.0f}s limit (a lower bound)"
    # testssl ends each endpoint's report with " Done <date> [  NNs] -->> host:port (ip) <<--".
    text = log.read_text(errors="replace")
    res["testssl_done"] = sum(1 for line in text.splitlines() if line.startswith(" Done ") and "-->>" in line)
    return res


def main() -> int:
    # sslyze loads its bundled trust stores, which hold a few legacy roots cryptography warns about.
    warnings.filterwarnings("ignore", message=".*serial number which wasn't positive.*")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="scan runs per variant (median reported)")
    ap.add_argument("--skip-testssl", action="store_true")
    ap.add_argument("--testssl-timeout", type=float, default=900.0)
    ap.add_argument("--no-netns", action="store_true", help="stay in the current network namespace")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    passthrough = [x for x in sys.argv[1:] if x != "--inside"]
    if not a.inside and not a.no_netns and os.geteuid() == 0 and shutil.which("ip"):
        return in_netns(passthrough)
    missing = ns.have("nmap", "openssl")
    if missing:
        print(f"{missing} not installed", file=sys.stderr)
        return 2
    where = "private network namespace (lo only)" if a.inside else "host loopback"
    with tempfile.TemporaryDirectory(prefix="ea-bench-") as d, ns.Lab() as lab:
        tmp = Path(d)
        planted = plant_scan_targets(lab, tmp)
        tls_server = plant_tls_targets(lab, tmp)
        print(f"evidence-agent network benchmark — {where}, {os.cpu_count()} CPUs, uid {os.geteuid()}")
        s = bench_scan(a.repeat, planted)
        mo, mb = statistics.median(s["ours"]), statistics.median(s["bare"])
        print(f"\n(a) discovery + top-1000 TCP scan + -sV light of {SCAN_NET} "
              f"({len(planted)} hosts with listeners, nmap {s['nmap_version']}, "
              f"{s['hosts_up']} addresses up), {a.repeat} runs each:")
        print(f"    scan_networks : median {mo:6.2f}s  runs {', '.join(f'{x:.2f}' for x in s['ours'])}")
        print(f"    bare nmap     : median {mb:6.2f}s  runs {', '.join(f'{x:.2f}' for x in s['bare'])}")
        best = min(s["ours"]) / min(s["bare"])
        print(f"    ratio ours/bare = {mo / mb:.3f} (medians), {best:.3f} (best runs)  (target <= 1.10)")
        print(f"    time spent outside nmap by scan_networks (nmap -V, XML parse, evidence): "
              f"median {statistics.median(s['overhead']) * 1000:.0f} ms")
        print(f"    found exactly the planted ports: {s['found_ok']}")
        print(f"    bare command  : {s['bare_cmd']}")
        t = bench_tls(tmp, a.skip_testssl, a.testssl_timeout)
        print(f"\n(b) TLS assessment of {len(TLS_HOSTS)} endpoints (127.0.6.1-10:443, {tls_server}):")
        print(f"    assess_tls    : {t['ours']:6.2f}s  ({t['assessed']}/{len(TLS_HOSTS)} assessed)")
        if t["testssl"] is not None:
            print(f"    testssl       : {t['testssl']:6.2f}s  ({t['testssl_done']}/{len(TLS_HOSTS)} endpoint reports "
                  f"completed, exit {t.get('testssl_rc')}) {t.get('testssl_note') or ''}")
            print(f"    ratio testssl/ours = {t['testssl'] / t['ours']:.1f}x  (target >= 20x)")
            print(f"    testssl cmd   : {t['testssl_cmd']}")
        else:
            print(f"    testssl       : {t['testssl_note']}")
    print("\nall benchmark servers stopped")
    return 0


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)
    sys.exit(main())

"""End to end on real parts: a real sshd, the CLI, the bundle, `verify`, and the standard-tool recipe of the README."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time

import pytest

from agent.cli import main
from conftest import ROOT, write_inventory
from sshd import Hang, free_port

INV = """version: 1
organisation: Test Fintech
scope:
  allow: [127.0.0.0/8]
defaults:
  ssh: {{user: root, key_file: {key}, known_hosts: {kh}, host_key_policy: strict, connect_timeout: 3}}
  timeouts: {{host: 60}}
hosts:
  - name: web-1
    address: 127.0.0.1
    transport: ssh
    roles: [web]
    zone: dmz
    ssh: {{port: {port}}}
  - name: agent-local
    transport: local
    roles: [app]
{extra}
"""


def inventory(tmp_path, srv, extra: str = "", **kw) -> str:
    body = INV.format(key=kw.get("key", srv.client_key), kh=kw.get("kh", srv.known_hosts), port=srv.port, extra=extra)
    return write_inventory(str(tmp_path / "inventory.yml"), body)


def scan(inv: str, out: str, key: str, *extra: str) -> int:
    return main(["scan", "--inventory", inv, "--out", out, "--key", key, "--only", "host", "-q", *extra])


def results(out: str) -> dict:
    with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
        return json.load(f)


def control(res: dict, cid: str) -> dict:
    return next(c for c in res["controls"] if c["id"] == cid)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, sshd_server, signing_key):
    tmp = tmp_path_factory.mktemp("e2e")
    out = str(tmp / "bundle")
    assert scan(inventory(tmp, sshd_server), out, signing_key) == 0
    return out


def test_bundle_layout_and_results(bundle):
    res = results(bundle)
    assert res["schema"] == "evidence-agent/results/v1"
    assert res["run"]["profile"] == "fsi-openapi-2018"
    assert {h["name"]: h["collected"] for h in res["hosts"]} == {"web-1": True, "agent-local": True}
    c = control(res, "13.1.1")
    assert c["title"].startswith("오픈API") or c["title"]  # Korean title from the catalog
    hosts = {h["name"]: h for h in c["hosts"]}
    assert set(hosts) == {"web-1", "agent-local"}
    f = next(x for x in hosts["web-1"]["findings"] if x["rule"] == "session-timeout")
    # This machine sets no TMOUT: the rule must say so, not pass for lack of evidence.
    assert f["status"] == "not_implemented"
    assert "TMOUT" in f["detail"]["en"]
    assert any(re.match(r"evidence/자료13\.1\.1-\d+_web-1_session_timeout\.txt$", e) for e in f["evidence"])
    for e in f["evidence"]:
        assert os.path.exists(os.path.join(bundle, e))
    assert os.path.exists(os.path.join(bundle, "facts", "web-1.json"))
    facts = json.load(open(os.path.join(bundle, "facts", "web-1.json"), encoding="utf-8"))
    assert facts["transport"]["host_key_policy"] == "strict"
    assert facts["transport"]["host_key_fingerprint_sha256"].startswith("SHA256:")
    assert facts["facts"]["identity"]["data"]["hostname"] == socket.gethostname()


def test_evidence_header_records_provenance(bundle):
    ev = [f for f in os.listdir(os.path.join(bundle, "evidence")) if "web-1_session_timeout" in f][0]
    text = open(os.path.join(bundle, "evidence", ev), encoding="utf-8").read()
    assert "# host: web-1 (127.0.0.1)" in text
    assert "verified against known_hosts" in text
    assert re.search(r"# collected: \d{4}-\d\d-\d\dT", text)
    assert "$ set --; for f in /etc/profile" in text  # the command that produced the output


def test_ssh_and_local_give_identical_facts(bundle):
    a = json.load(open(os.path.join(bundle, "facts", "web-1.json"), encoding="utf-8"))["facts"]
    b = json.load(open(os.path.join(bundle, "facts", "agent-local.json"), encoding="utf-8"))["facts"]
    assert a["session_timeout"] == b["session_timeout"]
    assert a["identity"]["data"]["hostname"] == b["identity"]["data"]["hostname"]


def test_verify_cli_accepts_fresh_bundle(bundle, signing_key, capsys):
    assert main(["verify", bundle, "--pubkey", signing_key + ".pub"]) == 0
    assert capsys.readouterr().out.startswith("valid:")


def readme_recipe() -> str:
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    m = re.search(r"<!-- verify-recipe -->\s*```sh\n(.*?)```", text, re.S)
    assert m, "README must hold the standard-tool verification recipe"
    return m.group(1)


def run_recipe(bundle: str, signers: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """The README block as printed, as one script file run by plain ``sh`` (no -e or pipefail added here:
    the script itself must stop on a failed step)."""
    script = os.path.join(os.path.dirname(signers), "verify.sh")
    with open(script, "w") as f:
        f.write(readme_recipe())
    return subprocess.run(["sh", script], env=dict(os.environ, BUNDLE=bundle, SIGNERS=signers),
                          capture_output=True, text=True, timeout=timeout)


def test_standard_tool_recipe_from_readme(bundle, signing_key, tmp_path):
    signers = tmp_path / "allowed_signers"
    pub = open(signing_key + ".pub").read().split()
    signers.write_text(f'evidence-agent namespaces="evidence-agent" {pub[0]} {pub[1]}\n')
    r = run_recipe(bundle, str(signers))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Good \"evidence-agent\" signature" in r.stdout + r.stderr
    assert r.stdout.rstrip().endswith("bundle verified")


@pytest.mark.parametrize("tamper", ["change", "add", "remove"])
def test_tampering_is_detected_by_verify_and_by_the_recipe(bundle, signing_key, tmp_path, tamper, capsys):
    import shutil
    copy = str(tmp_path / "copy")
    shutil.copytree(bundle, copy)
    target = sorted(os.listdir(os.path.join(copy, "evidence")))[0]
    path = os.path.join(copy, "evidence", target)
    if tamper == "change":
        data = bytearray(open(path, "rb").read())
        data[-2] ^= 0x01
        open(path, "wb").write(bytes(data))
        named = f"evidence/{target}"
    elif tamper == "add":
        open(os.path.join(copy, "evidence", "extra.txt"), "w").write("x")
        named = "evidence/extra.txt"
    else:
        os.remove(path)
        named = f"evidence/{target}"
    assert main(["verify", copy, "--pubkey", signing_key + ".pub"]) == 1
    out = capsys.readouterr().out
    assert "INVALID" in out and named in out
    signers = tmp_path / "allowed_signers"
    pub = open(signing_key + ".pub").read().split()
    signers.write_text(f'evidence-agent namespaces="evidence-agent" {pub[0]} {pub[1]}\n')
    r = run_recipe(copy, str(signers))
    assert r.returncode != 0, r.stdout + r.stderr
    assert "bundle verified" not in r.stdout


def test_verify_rejects_other_signer(bundle, tmp_path, capsys):
    from collectors import signing
    other = signing.keygen(str(tmp_path / "other"))
    assert main(["verify", bundle, "--pubkey", other.path + ".pub"]) == 1
    assert "not by the given --pubkey" in capsys.readouterr().out


def test_verify_reports_stale(bundle, signing_key):
    time.sleep(0.01)
    assert main(["verify", bundle, "--pubkey", signing_key + ".pub", "--max-age-days", "0"]) == 3
    assert main(["verify", bundle, "--pubkey", signing_key + ".pub", "--max-age-days", "30"]) == 0


def test_failures_are_per_host_and_bundle_is_still_signed(tmp_path, sshd_server, signing_key):
    from sshd import keygen_ssh
    wrong = str(tmp_path / "wrong_key")
    keygen_ssh(wrong)
    empty_kh = tmp_path / "empty_known_hosts"
    empty_kh.write_text("")
    hang = Hang()
    refused = free_port()
    extra = f"""  - name: refused
    address: 127.0.0.1
    ssh: {{port: {refused}}}
  - name: hung
    address: 127.0.0.1
    ssh: {{port: {hang.port}}}
  - name: wrong-key
    address: 127.0.0.1
    ssh: {{port: {sshd_server.port}, key_file: {wrong}}}
  - name: unknown-hostkey
    address: 127.0.0.1
    ssh: {{port: {sshd_server.port}, known_hosts: {empty_kh}}}
"""
    out = str(tmp_path / "b")
    t0 = time.monotonic()
    try:
        assert scan(inventory(tmp_path, sshd_server, extra), out, signing_key) == 0
    finally:
        hang.close()
    # the hung host costs only its own connect timeout (3 s), never the run: the others finish regardless
    assert time.monotonic() - t0 < 120
    res = results(out)
    hosts = {h["name"]: h for h in res["hosts"]}
    assert hosts["web-1"]["collected"] and hosts["agent-local"]["collected"]
    assert not hosts["refused"]["collected"] and "refused" in hosts["refused"]["error"]
    assert not hosts["hung"]["collected"] and re.search(r"timed out|negotiation|banner", hosts["hung"]["error"], re.I)
    assert not hosts["wrong-key"]["collected"] and "authentication failed" in hosts["wrong-key"]["error"]
    assert not hosts["unknown-hostkey"]["collected"] and "unknown host key" in hosts["unknown-hostkey"]["error"]
    per_host = {h["name"]: h for h in control(res, "13.1.1")["hosts"]}
    for bad in ("refused", "hung", "wrong-key", "unknown-hostkey"):
        assert per_host[bad]["status"] == "unknown"
        assert "not collected" in per_host[bad]["findings"][0]["detail"]["en"]
    assert per_host["web-1"]["status"] in ("implemented", "partial", "not_implemented")
    assert main(["verify", out, "--pubkey", signing_key + ".pub"]) == 0


def test_no_host_collected_exits_2(tmp_path, sshd_server, signing_key):
    body = f"""version: 1
scope: {{allow: [127.0.0.0/8]}}
hosts:
  - name: refused
    address: 127.0.0.1
    ssh: {{port: {free_port()}, key_file: {sshd_server.client_key}, known_hosts: {sshd_server.known_hosts}}}
"""
    inv = write_inventory(str(tmp_path / "inv.yml"), body)
    out = str(tmp_path / "b")
    assert scan(inv, out, signing_key) == 2
    assert main(["verify", out, "--pubkey", signing_key + ".pub"]) == 0  # still a signed, valid bundle


def test_accept_new_records_the_new_key(tmp_path, sshd_server, signing_key):
    kh = tmp_path / "kh"
    body = f"""version: 1
scope: {{allow: [127.0.0.1/32]}}
hosts:
  - name: tofu
    address: 127.0.0.1
    ssh: {{port: {sshd_server.port}, key_file: {sshd_server.client_key}, known_hosts: {kh},
           host_key_policy: accept-new}}
"""
    out = str(tmp_path / "b")
    assert scan(write_inventory(str(tmp_path / "i.yml"), body), out, signing_key) == 0
    facts = json.load(open(os.path.join(out, "facts", "tofu.json"), encoding="utf-8"))
    assert facts["collected"]
    assert facts["transport"]["host_key_accepted_new"].startswith("ssh-ed25519")
    assert sshd_server.host_pub.split()[1] in kh.read_text()


def test_accept_new_on_many_hosts_at_once_keeps_every_key(tmp_path, signing_key):
    """Workers accepting new keys at the same time append to known_hosts; none overwrites another's key.
    Then a strict run over the same hosts succeeds from that file (the cached parse sees the new lines)."""
    from sshd import start_sshd

    addrs = tuple(f"127.0.3.{i}" for i in range(1, 9))
    srv = start_sshd(addrs, workdir=str(tmp_path / "sshd"))
    try:
        kh = tmp_path / "kh"
        kh.write_text("# known_hosts of the test\n")
        hosts = "".join(f"  - {{name: h{i}, address: {a}}}\n" for i, a in enumerate(addrs))
        body = (f"version: 1\nscope: {{allow: [127.0.3.0/24]}}\n"
                f"defaults:\n  ssh: {{port: {srv.port}, key_file: {srv.client_key}, known_hosts: {kh}, "
                f"host_key_policy: POLICY}}\nhosts:\n{hosts}")
        inv = write_inventory(str(tmp_path / "i.yml"), body.replace("POLICY", "accept-new"))
        assert main(["scan", "--inventory", inv, "--out", str(tmp_path / "b1"), "--key", signing_key,
                     "--only", "host", "-q", "-j", "8"]) == 0
        lines = [ln for ln in kh.read_text().splitlines() if ln and not ln.startswith("#")]
        assert sorted(ln.split()[0] for ln in lines) == sorted(f"[{a}]:{srv.port}" for a in addrs)
        assert all(ln.split()[2] == srv.host_pub.split()[1] for ln in lines)
        inv = write_inventory(str(tmp_path / "s.yml"), body.replace("POLICY", "strict"))
        assert main(["scan", "--inventory", inv, "--out", str(tmp_path / "b2"), "--key", signing_key,
                     "--only", "host", "-q", "-j", "8"]) == 0
        for i in range(len(addrs)):
            rec = json.load(open(tmp_path / "b2" / "facts" / f"h{i}.json", encoding="utf-8"))
            assert rec["collected"] and "host_key_accepted_new" not in rec["transport"]
    finally:
        srv.stop()


@pytest.mark.parametrize("body,line,key", [
    ("version: 1\nscope:\n  allow: [127.0.0.0/8]\nhosts:\n  - name: a\n    adress: 127.0.0.1\n", 6, "hosts[0].adress"),
    ("version: 1\nscope:\n  allow: [127.0.0.0/8]\nhosts:\n  - name: a\n    address: 127.0.0.1\n    ssh: {port: many}\n", 7,
     "hosts[0].ssh.port"),
    ("version: 1\nscope:\n  allow: [127.0.0.0/8]\nhosts:\n  - name: a\n    address: 127.0.0.1\n    ssh:\n      password: hunter2\n", 8,
     "hosts[0].ssh.password"),
    ("version: 1\nscope:\n  allow: [127.0.0.0/8\nhosts: []\n", 4, ""),
    ("version: 2\nscope:\n  allow: [127.0.0.0/8]\n", 1, "version"),
])
def test_malformed_inventory_names_file_line_key(tmp_path, signing_key, capsys, body, line, key):
    inv = write_inventory(str(tmp_path / "bad.yml"), body)
    out = str(tmp_path / "never")
    assert scan(inv, out, signing_key) == 1
    err = capsys.readouterr().err
    assert f"bad.yml:{line}:" in err
    assert key in err
    assert "hunter2" not in err
    assert not os.path.exists(out)


def test_target_outside_scope_is_refused_before_any_connection(tmp_path, signing_key, capsys):
    hang = Hang()  # would count any connection attempt
    body = f"""version: 1
scope: {{allow: [127.0.9.0/24]}}
hosts:
  - name: outside
    address: 127.0.0.1
    ssh: {{port: {hang.port}}}
"""
    out = str(tmp_path / "never")
    try:
        assert scan(write_inventory(str(tmp_path / "i.yml"), body), out, signing_key) == 1
        time.sleep(0.2)
        assert hang.conns == []
    finally:
        hang.close()
    err = capsys.readouterr().err
    assert "outside scope.allow" in err and "i.yml:5: hosts[0].address" in err
    assert not os.path.exists(out)


def test_non_empty_out_dir_is_refused(tmp_path, signing_key):
    out = tmp_path / "full"
    out.mkdir()
    (out / "x").write_text("keep me")
    inv = write_inventory(str(tmp_path / "i.yml"), "version: 1\nscope: {allow: [127.0.0.0/8]}\nhosts: []\n")
    assert scan(inv, str(out), signing_key) == 4
    assert (out / "x").read_text() == "keep me"


def test_keygen_writes_0600_key_that_ssh_keygen_reads(tmp_path, capsys):
    k = str(tmp_path / "k")
    assert main(["keygen", "--out", k]) == 0
    assert oct(os.stat(k).st_mode & 0o777) == "0o600"
    r = subprocess.run(["ssh-keygen", "-l", "-f", k + ".pub"], capture_output=True, text=True)
    assert r.returncode == 0 and "ED25519" in r.stdout
    fp = r.stdout.split()[1]
    assert fp in capsys.readouterr().out
    assert main(["keygen", "--out", k]) == 4  # never silently replaces a key


def test_scan_baseline_is_recorded_and_reported(tmp_path, signing_key, capsys):
    inv = write_inventory(str(tmp_path / "i.yml"), "version: 1\nscope: {allow: [127.0.0.0/8]}\n"
                                                   "hosts:\n  - {name: me, transport: local}\n")
    old, new = str(tmp_path / "old"), str(tmp_path / "new")
    assert scan(inv, old, signing_key) == 0
    assert scan(inv, new, signing_key, "--baseline", old) == 0
    run = results(new)["run"]
    assert run["baseline"]["path"] == os.path.abspath(old) and run["baseline"]["run_id"] == results(old)["run"]["id"]
    assert main(["verify", new, "--pubkey", signing_key + ".pub"]) == 0  # recorded inside the signed results
    html = str(tmp_path / "r.html")
    assert main(["report", new, "--format", "html", "--out", html]) == 0
    assert "이전 점검 대비 변경 사항" in open(html, encoding="utf-8").read()
    assert scan(inv, str(tmp_path / "x"), signing_key, "--baseline", str(tmp_path / "nope")) == 1

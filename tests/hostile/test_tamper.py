"""Every way of tampering with a bundle is refused by `verify` (and by the README's stock-tools recipe), and none
of them hangs: byte changes in each kind of file, files added, removed or renamed, signatures swapped or made by
another key, symbolic links, FIFOs and devices in place of files, and hostile or broken zips.

`verify`, `report`, `merge` and `attach` run as separate processes under a timeout: a FIFO or a link to /dev/zero
used to block them for ever, and a hang must fail the test, not the suite.
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT
from collectors import signing
from test_e2e_spine import run_recipe

TIMEOUT = 60
INV = """version: 1
organisation: Tamper Test
scope: {allow: [127.0.0.0/8]}
hosts:
  - {name: app-1, transport: local, address: 127.0.0.1, roles: [app]}
"""


def cli(*args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("EVIDENCE_AGENT_PUBKEY", None)
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    signing.keygen(str(d / "good"))
    signing.keygen(str(d / "other"))
    signers = d / "allowed_signers"
    pub = open(str(d / "good.pub")).read().split()
    signers.write_text(f'evidence-agent namespaces="evidence-agent" {pub[0]} {pub[1]}\n')
    return {"good": str(d / "good"), "other": str(d / "other"), "signers": str(signers)}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, keys):
    d = tmp_path_factory.mktemp("tamper")
    inv = d / "inv.yml"
    inv.write_text(INV)
    out = str(d / "bundle")
    r = cli("scan", "--inventory", str(inv), "--out", out, "--key", keys["good"], "--only", "host", "-q",
            timeout=300)
    assert r.returncode == 0, r.stderr
    return out


def _first(root: str, sub: str, ext: str = "") -> str:
    return next(f"{sub}/{f}" for f in sorted(os.listdir(os.path.join(root, sub))) if f.endswith(ext))


def _flip(path: str) -> None:
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0x01
    open(path, "wb").write(bytes(data))


def _outside_copy(root: str, rel: str) -> str:
    """A same-content copy of a bundle file, outside the bundle."""
    dst = os.path.join(os.path.dirname(root), "outside-" + rel.replace("/", "_"))
    shutil.copyfile(os.path.join(root, rel), dst)
    return dst


def _replace_with_link(root: str, rel: str, target: str) -> None:
    p = os.path.join(root, rel)
    os.remove(p)
    os.symlink(target, p)


def _replace_with_fifo(root: str, rel: str) -> None:
    p = os.path.join(root, rel)
    os.remove(p)
    os.mkfifo(p)


def _replace_with_device(root: str, rel: str) -> None:
    p = os.path.join(root, rel)
    os.remove(p)
    os.mknod(p, stat.S_IFCHR | 0o600, os.makedev(1, 5))  # what /dev/zero is


def _resign(root: str, key: str) -> None:
    """Re-seal with another key: every hash is right, the signer is not the trusted one."""
    import json

    from collectors.bundle import seal

    pred = json.load(open(os.path.join(root, "manifest.json"), encoding="utf-8"))["predicate"]
    seal(root, signing.load_private(key), {k: v for k, v in pred.items() if k not in ("signer", "sealed")})


def _link_dir(root: str, sub: str) -> None:
    copy = os.path.join(os.path.dirname(root), "outside-" + sub)
    shutil.copytree(os.path.join(root, sub), copy)
    shutil.rmtree(os.path.join(root, sub))
    os.symlink(copy, os.path.join(root, sub))


EV_TXT, EV_ANY, FACTS = ("evidence", ".txt"), ("evidence", ""), ("facts", ".json")

#: name -> (change(root, keys), problem text expected in verify's output)
CASES = {
    "byte-evidence": (lambda r, k: _flip(os.path.join(r, _first(r, *EV_TXT))), "content changed"),
    "byte-facts": (lambda r, k: _flip(os.path.join(r, _first(r, *FACTS))), "content changed"),
    "byte-results": (lambda r, k: _flip(os.path.join(r, "results.json")), "results.json"),
    "byte-inventory": (lambda r, k: _flip(os.path.join(r, "inventory.json")), "inventory.json"),
    "byte-allowed_signers": (lambda r, k: _flip(os.path.join(r, "allowed_signers")), "allowed_signers"),
    "byte-manifest": (lambda r, k: _flip(os.path.join(r, "manifest.json")), "manifest.json"),
    "byte-manifest.sig": (lambda r, k: _flip(os.path.join(r, "manifest.json.sig")), "manifest.json.sig"),
    "byte-SHA256SUMS": (lambda r, k: _flip(os.path.join(r, "SHA256SUMS")), "SHA256SUMS"),
    "byte-SHA256SUMS.sig": (lambda r, k: _flip(os.path.join(r, "SHA256SUMS.sig")), "SHA256SUMS.sig"),
    "truncate-evidence": (lambda r, k: open(os.path.join(r, _first(r, *EV_TXT)), "r+b").truncate(10),
                          "content changed (size"),
    "append-evidence": (lambda r, k: open(os.path.join(r, _first(r, *EV_TXT)), "ab").write(b"x"), "content changed (size"),
    "add-file": (lambda r, k: open(os.path.join(r, "evidence", "extra.txt"), "w").write("x"), "added"),
    "add-hidden-file": (lambda r, k: open(os.path.join(r, "facts", ".hidden"), "w").write("x"), "added"),
    "remove-evidence": (lambda r, k: os.remove(os.path.join(r, _first(r, *EV_ANY))), "missing"),
    "remove-manifest": (lambda r, k: os.remove(os.path.join(r, "manifest.json")), "missing"),
    "rename-evidence": (lambda r, k: os.rename(os.path.join(r, _first(r, *EV_TXT)),
                                               os.path.join(r, "evidence", "renamed.txt")), "renamed.txt"),
    "swap-signatures": (lambda r, k: (os.rename(os.path.join(r, "SHA256SUMS.sig"), os.path.join(r, "x")),
                                      os.rename(os.path.join(r, "manifest.json.sig"),
                                                os.path.join(r, "SHA256SUMS.sig")),
                                      os.rename(os.path.join(r, "x"), os.path.join(r, "manifest.json.sig"))),
                        ".sig"),
    "resigned-other-key": (lambda r, k: _resign(r, k["other"]), "not by the given --pubkey"),
    "symlink-same-content": (lambda r, k: _replace_with_link(r, _first(r, *EV_TXT), _outside_copy(r, _first(r, *EV_TXT))),
                             "symbolic link"),
    "symlink-dev-zero": (lambda r, k: _replace_with_link(r, _first(r, *EV_TXT), "/dev/zero"), "symbolic link"),
    "symlink-manifest": (lambda r, k: _replace_with_link(r, "manifest.json", _outside_copy(r, "manifest.json")),
                         "symbolic link"),
    "symlink-dir": (lambda r, k: _link_dir(r, "evidence"), "symbolic link"),
    "fifo-evidence": (lambda r, k: _replace_with_fifo(r, _first(r, *EV_TXT)), "FIFO"),
    "fifo-manifest": (lambda r, k: _replace_with_fifo(r, "manifest.json"), "FIFO"),
    "device-evidence": (lambda r, k: _replace_with_device(r, _first(r, *EV_TXT)), "device"),
}


def tampered(pristine: str, tmp_path, name: str, keys) -> str:
    root = str(tmp_path / "b")
    shutil.copytree(pristine, root, symlinks=True)
    CASES[name][0](root, keys)
    return root


def test_pristine_bundle_verifies_and_is_pinned(pristine, keys, tmp_path):
    r = cli("verify", pristine, "--pubkey", keys["good"] + ".pub")
    assert r.returncode == 0, r.stdout + r.stderr
    assert run_recipe(pristine, keys["signers"]).returncode == 0


@pytest.mark.parametrize("name", sorted(CASES))
def test_tampered_folder_is_rejected_without_hanging(pristine, keys, tmp_path, name):
    root = tampered(pristine, tmp_path, name, keys)
    r = cli("verify", root, "--pubkey", keys["good"] + ".pub")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "INVALID" in r.stdout and CASES[name][1] in r.stdout, r.stdout
    assert "Traceback" not in r.stderr
    rec = run_recipe(root, keys["signers"], timeout=TIMEOUT)
    assert rec.returncode != 0, rec.stdout + rec.stderr
    assert "bundle verified" not in rec.stdout


@pytest.mark.parametrize("name", ["fifo-evidence", "symlink-dev-zero", "symlink-same-content", "device-evidence"])
def test_report_merge_attach_refuse_special_files(pristine, keys, tmp_path, name):
    root = tampered(pristine, tmp_path, name, keys)
    doc = tmp_path / "doc.txt"
    doc.write_text("policy document")
    for args in (["report", root, "--out", str(tmp_path / "r.html"), "--pubkey", keys["good"] + ".pub"],
                 ["report", root, "--out", str(tmp_path / "r2.html"), "--allow-invalid"],
                 ["merge", root, "--out", str(tmp_path / "merged"), "--key", keys["good"]],
                 ["attach", root, "--item", "1.1.1", str(doc), "--key", keys["good"]],
                 ["diff", root, root]):
        r = cli(*args)
        assert "Traceback" not in r.stderr, (args, r.stderr)
        if args[0] == "diff":
            assert "does not verify" in r.stderr
        elif "--allow-invalid" not in args:
            assert r.returncode == 1, (args, r.stdout, r.stderr)


def test_unpinned_verify_has_its_own_exit_code(pristine, keys, tmp_path):
    env_home = tmp_path / "home"  # no default signing key there
    r = subprocess.run([sys.executable, "-m", "agent.cli", "verify", pristine], capture_output=True, text=True,
                       timeout=TIMEOUT, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT, XDG_CONFIG_HOME=str(env_home),
                                                          EVIDENCE_AGENT_PUBKEY=""))
    assert r.returncode == 6, r.stdout + r.stderr
    assert "UNPINNED" in r.stdout
    root = tampered(pristine, tmp_path, "resigned-other-key", keys)
    # the trusted key configured by environment pins it: another signer is refused
    r = subprocess.run([sys.executable, "-m", "agent.cli", "verify", root], capture_output=True, text=True,
                       timeout=TIMEOUT, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT, XDG_CONFIG_HOME=str(env_home),
                                                          EVIDENCE_AGENT_PUBKEY=keys["good"] + ".pub"))
    assert r.returncode == 1, r.stdout + r.stderr
    # and so does the default signing key's .pub
    cfg = env_home / "evidence-agent"
    cfg.mkdir(parents=True)
    shutil.copy(keys["good"] + ".pub", cfg / "signing_key.pub")
    r = subprocess.run([sys.executable, "-m", "agent.cli", "verify", root], capture_output=True, text=True,
                       timeout=TIMEOUT, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT, XDG_CONFIG_HOME=str(env_home),
                                                          EVIDENCE_AGENT_PUBKEY=""))
    assert r.returncode == 1 and "not by the given --pubkey" in r.stdout, r.stdout + r.stderr


# -- zips ---------------------------------------------------------------------------------------

def _good_zip(pristine: str, tmp_path, keys) -> str:
    out = str(tmp_path / "good.zip")
    r = cli("pack", pristine, "--out", out, "--pubkey", keys["good"] + ".pub")
    assert r.returncode == 0, r.stderr
    return out


def _rewrite(src: str, dst: str, edit) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for zi in zin.infolist():
            data = zin.read(zi)
            for zi2, data2 in edit(zi, data):
                zout.writestr(zi2, data2)


def _patch_first_local_header(path: str, offset: int, value: bytes) -> None:
    data = bytearray(open(path, "rb").read())
    data[offset:offset + len(value)] = value
    # the central directory keeps its own copy of these fields: patch it too
    cd = data.find(b"PK\x01\x02")
    data[cd + offset + 2:cd + offset + 2 + len(value)] = value
    open(path, "wb").write(bytes(data))


def zip_cases(good: str, tmp_path) -> dict[str, str]:
    d = tmp_path / "zips"
    d.mkdir()
    out: dict[str, str] = {}

    def make(name, edit):
        p = str(d / f"{name}.zip")
        _rewrite(good, p, edit)
        out[name] = p

    make("zip-slip", lambda zi, b: [(zi, b)] + ([(zipfile.ZipInfo("../escaped.txt"), b"x")]
                                                if zi.filename.endswith("results.json") else []))
    make("absolute-path", lambda zi, b: [(zi, b)] + ([(zipfile.ZipInfo("/tmp/abs.txt"), b"x")]
                                                     if zi.filename.endswith("results.json") else []))

    def link(zi, b):
        if zi.filename.endswith(".txt") and "evidence" in zi.filename and not out.get("_linked"):
            out["_linked"] = "1"
            li = zipfile.ZipInfo(zi.filename)
            li.external_attr = (stat.S_IFLNK | 0o777) << 16
            return [(li, b"/etc/passwd")]
        return [(zi, b)]
    make("symlink-entry", link)
    out.pop("_linked", None)
    make("duplicate", lambda zi, b: [(zi, b), (zi, b)] if zi.filename.endswith("results.json") else [(zi, b)])
    make("changed-byte", lambda zi, b: [(zi, b[:-2] + bytes([b[-2] ^ 1]) + b[-1:] if zi.filename.endswith(
        "results.json") else b)])
    trunc = str(d / "truncated.zip")
    data = open(good, "rb").read()
    open(trunc, "wb").write(data[: len(data) // 2])
    out["truncated"] = trunc
    badcrc = str(d / "bad-crc.zip")
    with zipfile.ZipFile(good) as z:
        zi = z.infolist()[0]
        off = zi.header_offset
    raw = bytearray(data)
    # flip one byte of the first entry's compressed data: the CRC check (or inflate) fails on read
    name_len = int.from_bytes(raw[off + 26:off + 28], "little")
    extra_len = int.from_bytes(raw[off + 28:off + 30], "little")
    raw[off + 30 + name_len + extra_len + 2] ^= 0xFF
    open(badcrc, "wb").write(bytes(raw))
    out["bad-crc"] = badcrc
    stored = str(d / "bad-crc-stored.zip")  # stored (not deflated): only the CRC can tell the change
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(stored, "w", zipfile.ZIP_STORED) as zout:
        for zi in zin.infolist():
            zout.writestr(zi.filename, zin.read(zi))
    raw2 = bytearray(open(stored, "rb").read())
    i = raw2.find(b'"schema"')  # inside results.json's data
    raw2[i + 2] ^= 0x01
    open(stored, "wb").write(bytes(raw2))
    out["bad-crc-stored"] = stored
    enc = str(d / "encrypted.zip")
    shutil.copy(good, enc)
    _patch_first_local_header(enc, 6, b"\x01\x08")  # general purpose flags: encrypted + UTF-8
    out["encrypted"] = enc
    d64 = str(d / "deflate64.zip")
    shutil.copy(good, d64)
    _patch_first_local_header(d64, 8, b"\x09\x00")  # compression method 9: deflate64
    out["deflate64"] = d64
    notzip = str(d / "not-a.zip")
    open(notzip, "wb").write(b"this is not a zip\n" * 10)
    out["not-a-zip"] = notzip
    return out


def test_bad_zips_are_rejected_cleanly(pristine, keys, tmp_path):
    good = _good_zip(pristine, tmp_path, keys)
    r = cli("verify", good, "--pubkey", keys["good"] + ".pub")
    assert r.returncode == 0, r.stdout + r.stderr
    cases = zip_cases(good, tmp_path)
    assert len(cases) == 11
    for name, path in cases.items():
        r = cli("verify", path, "--pubkey", keys["good"] + ".pub")
        assert r.returncode == 1, (name, r.stdout, r.stderr)
        assert "INVALID" in r.stdout and "Traceback" not in r.stderr, (name, r.stdout, r.stderr)
        r = cli("report", path, "--out", str(tmp_path / f"{name}.html"))
        assert r.returncode == 1 and "Traceback" not in r.stderr, (name, r.stdout, r.stderr)
    assert not os.path.exists(str(tmp_path / "escaped.txt"))
    assert not os.path.exists("/tmp/abs.txt")

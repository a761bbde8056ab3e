"""pack → verify a .zip (and unsafe or tampered zips fail); attach → re-signed revision that still verifies."""
from __future__ import annotations

import hashlib
import json
import os
import stat
import zipfile

import pytest

import reportlib
from agent.cli import main
from collectors.archive import ArchiveError, UTF8_FLAG, safe_extract
from collectors.verify import verify_bundle, verify_path
from output.report_model import build_model


@pytest.fixture()
def bundle(tmp_path):
    return reportlib.copy("B", str(tmp_path))


def pub() -> str:
    return reportlib.key() + ".pub"


# -- pack ---------------------------------------------------------------------------------------

def test_pack_then_verify_zip(bundle, tmp_path, capsys):
    out = str(tmp_path / "handover.zip")
    assert main(["pack", bundle, "--out", out, "--pubkey", pub()]) == 0
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        assert all(zi.flag_bits & UTF8_FLAG for zi in z.infolist())  # Korean names survive on Windows
        assert any(n.startswith("bundle-B/evidence/자료13.1.1-") for n in names)
        assert "bundle-B/manifest.json" in names
    assert main(["verify", out, "--pubkey", pub()]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("valid:")
    assert main(["pack", bundle, "--out", out]) == 4  # never overwrites


def test_pack_default_path_and_refuses_invalid_bundle(bundle):
    assert main(["pack", bundle]) == 0
    assert os.path.isfile(bundle + ".zip")
    with open(os.path.join(bundle, "results.json"), "a") as f:
        f.write(" ")
    assert main(["pack", bundle, "--out", bundle + "-2.zip"]) == 1


def test_report_and_diff_read_a_packed_bundle(bundle, tmp_path, capsys):
    """Ops teams receive the .zip: report and diff read it directly (extracted to a temporary folder, removed
    after), the report lands beside the zip, its evidence links point where the zip unpacks, and a tampered
    zip is refused like a tampered folder."""
    import tempfile

    z = str(tmp_path / "handover.zip")
    assert main(["pack", bundle, "--out", z]) == 0
    capsys.readouterr()
    before = set(os.listdir(tempfile.gettempdir()))
    assert main(["report", z, "--format", "html"]) == 0
    html_path = str(tmp_path / "handover.report.html")
    assert capsys.readouterr().out.strip() == html_path
    html = open(html_path, encoding="utf-8").read()
    assert 'href="bundle-B/evidence/' in html  # relative to the report, as if unzipped beside it
    assert main(["report", z, "--format", "xlsx", "--lang", "en"]) == 0
    assert os.path.isfile(str(tmp_path / "handover.report.xlsx"))
    old = reportlib.bundle("A")  # made on first use (its scan prints)
    capsys.readouterr()
    assert main(["diff", old, z, "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["new"]["bundle"] == z and d["old"]["bundle"] == os.path.abspath(reportlib.bundle("A"))
    assert main(["report", bundle, "--baseline", z, "--format", "json", "--out", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["changes"]["old"]["bundle"] == z
    leftovers = {n for n in set(os.listdir(tempfile.gettempdir())) - before if n.startswith("evidence-agent-")}
    assert not leftovers
    bad = str(tmp_path / "bad.zip")
    _rewrite(z, bad, lambda n, d: d.replace(b"TMOUT", b"TMOUX") if "session_timeout" in n else d)
    assert main(["report", bad, "--out", str(tmp_path / "bad.html")]) == 1
    assert main(["report", str(tmp_path / "nothing.zip")]) == 1


def _rewrite(src: str, dst: str, change) -> None:
    with zipfile.ZipFile(src) as zi, zipfile.ZipFile(dst, "w") as zo:
        for info in zi.infolist():
            data = zi.read(info)
            data = change(info.filename, data)
            if data is not None:
                zo.writestr(info, data)


def test_tampered_zip_fails(bundle, tmp_path):
    good = str(tmp_path / "good.zip")
    assert main(["pack", bundle, "--out", good]) == 0
    bad = str(tmp_path / "bad.zip")
    _rewrite(good, bad, lambda n, d: d.replace(b"TMOUT", b"TMOUX") if "session_timeout" in n else d)
    v = verify_path(bad, open(pub()).read())
    assert not v.valid and any("content changed" in p for p in v.problems)
    assert main(["verify", bad]) == 1
    extra = str(tmp_path / "extra.zip")
    _rewrite(good, extra, lambda n, d: d)
    with zipfile.ZipFile(extra, "a") as z:
        z.writestr("bundle-B/evidence/자료1.1.1-9_forged.txt", "forged")
    assert not verify_path(extra).valid


@pytest.mark.parametrize("name", ["../evil.txt", "/abs.txt", "a/../../evil.txt", "C:/x.txt", "a\\..\\b.txt"])
def test_unsafe_paths_rejected(tmp_path, name):
    z = str(tmp_path / "u.zip")
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(zipfile.ZipInfo(name), "x")
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(ArchiveError):
        safe_extract(z, str(dest))
    assert not (tmp_path / "evil.txt").exists()
    assert not verify_path(z).valid


def test_symlink_and_size_cap_rejected(tmp_path):
    z = str(tmp_path / "l.zip")
    with zipfile.ZipFile(z, "w") as zf:
        zi = zipfile.ZipInfo("b/link")
        zi.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(zi, "/etc/passwd")
    (tmp_path / "o1").mkdir()
    with pytest.raises(ArchiveError, match="link"):
        safe_extract(z, str(tmp_path / "o1"))
    big = str(tmp_path / "big.zip")
    with zipfile.ZipFile(big, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("b/zeros", b"\0" * (5 * 1024 * 1024))
    (tmp_path / "o2").mkdir()
    with pytest.raises(ArchiveError, match="bytes"):
        safe_extract(big, str(tmp_path / "o2"), max_total=1024 * 1024)


# -- attach -------------------------------------------------------------------------------------

def test_attach_declares_status_and_reseals(bundle, tmp_path, capsys):
    doc = tmp_path / "CISO 임명장.pdf"
    doc.write_bytes(b"%PDF-1.4 appointment")
    org = tmp_path / "org.png"
    org.write_bytes(b"\x89PNG org chart")
    old_manifest = open(os.path.join(bundle, "manifest.json"), "rb").read()
    rc = main(["attach", bundle, "--item", "1.1.1", str(doc), str(org), "--note", "CISO 임명장, 조직도",
               "--status", "implemented", "--by", "홍길동", "--key", reportlib.key()])
    assert rc == 0
    out = capsys.readouterr().out
    assert "evidence/자료1.1.1-1_manual_CISO_임명장.pdf" in out and "evidence/자료1.1.1-2_manual_org.png" in out
    assert main(["verify", bundle, "--pubkey", pub()]) == 0

    m = json.load(open(os.path.join(bundle, "manifest.json"), encoding="utf-8"))["predicate"]
    assert m["revision"] == 2
    rec = m["revisions"][0]
    assert rec["revision"] == 1 and rec["reason"] == "attach 1.1.1 by 홍길동"
    assert rec["manifest_sha256"] == hashlib.sha256(old_manifest).hexdigest()
    assert open(os.path.join(bundle, "revisions", "1", "manifest.json"), "rb").read() == old_manifest
    assert os.path.isfile(os.path.join(bundle, "revisions", "1", "manifest.json.sig"))
    assert os.path.isfile(os.path.join(bundle, "revisions", "1", "results.json"))

    res = reportlib.results(bundle)
    c = next(c for c in res["controls"] if c["id"] == "1.1.1")
    assert c["status"] == "implemented" and c["status_source"] == "declared"
    assert c["manual_answer"]["declared_by"] == "person" and c["manual_answer"]["by"] == "홍길동"
    assert c["manual_answer"]["files"] == ["evidence/자료1.1.1-1_manual_CISO_임명장.pdf",
                                           "evidence/자료1.1.1-2_manual_org.png"]
    others = [x for x in res["controls"] if x["id"] != "1.1.1"]
    before = [x for x in reportlib.results(reportlib.bundle("B"))["controls"] if x["id"] != "1.1.1"]
    assert others == before  # THAT item only

    model = build_model(bundle)
    it = next(i for i in model.items if i.id == "1.1.1")
    assert it.declared and it.status_label == "이행"
    assert [e.ref for e in it.evidence] == ["자료1.1.1-1", "자료1.1.1-2"]
    assert "CISO 임명장, 조직도 (CISO 임명장.pdf)" in it.evidence[0].description
    assert any(s.kind == "declared" and "홍길동" in s.text for s in it.summary)
    assert model.cover.revision == 2 and model.cover.declared_count == 1

    # a second attach continues the serial numbers and the revision chain
    more = tmp_path / "minutes.txt"
    more.write_text("회의록")
    assert main(["attach", bundle, "--item", "1.1.1", str(more), "--key", reportlib.key(), "--by", "kim"]) == 0
    assert os.path.isfile(os.path.join(bundle, "evidence", "자료1.1.1-3_manual_minutes.txt"))
    m = json.load(open(os.path.join(bundle, "manifest.json"), encoding="utf-8"))["predicate"]
    assert m["revision"] == 3 and [r["revision"] for r in m["revisions"]] == [1, 2]
    assert verify_bundle(bundle, open(pub()).read()).valid


def test_tampering_after_attach_fails(bundle, tmp_path):
    doc = tmp_path / "policy.pdf"
    doc.write_bytes(b"policy")
    assert main(["attach", bundle, "--item", "1.2.1", str(doc), "--key", reportlib.key()]) == 0
    ev = os.path.join(bundle, "evidence", "자료1.2.1-1_manual_policy.pdf")
    with open(ev, "ab") as f:
        f.write(b" edited")
    assert main(["verify", bundle]) == 1
    with open(ev, "wb") as f:
        f.write(b"policy")
    assert main(["verify", bundle, "--pubkey", pub()]) == 0
    old = os.path.join(bundle, "revisions", "1", "manifest.json")
    data = open(old, "rb").read()
    with open(old, "wb") as f:
        f.write(data.replace(b'"revision": 1', b'"revision": 7'))
    v = verify_bundle(bundle)
    assert not v.valid and any("revisions/1" in p for p in v.problems)


def test_attach_refusals(bundle, tmp_path):
    doc = tmp_path / "x.txt"
    doc.write_text("x")
    key = reportlib.key()
    assert main(["attach", bundle, "--item", "9.9.9", str(doc), "--key", key]) == 1
    assert main(["attach", bundle, "--item", "5.1.1", "--status", "not_applicable", "--key", key]) == 1  # no reason
    assert main(["attach", bundle, "--item", "5.1.1", str(doc), "--key", str(tmp_path / "nokey")]) == 4
    assert main(["verify", bundle, "--pubkey", pub()]) == 0  # nothing was changed by the refusals
    assert not os.path.exists(os.path.join(bundle, "revisions"))
    with open(os.path.join(bundle, "results.json"), "a") as f:
        f.write(" ")
    assert main(["attach", bundle, "--item", "5.1.1", str(doc), "--key", key]) == 1  # never re-sign tampering
    assert not os.path.exists(os.path.join(bundle, "revisions"))


def test_attach_not_applicable_with_reason(bundle):
    assert main(["attach", bundle, "--item", "10.1.1", "--status", "not_applicable", "--reason",
                 "전산실 없음 (클라우드 사용)", "--key", reportlib.key(), "--by", "ops"]) == 0
    c = next(c for c in reportlib.results(bundle)["controls"] if c["id"] == "10.1.1")
    assert c["status"] == "not_applicable" and c["manual_answer"]["reason"] == "전산실 없음 (클라우드 사용)"
    assert main(["verify", bundle, "--pubkey", pub()]) == 0

"""No secret reaches a bundle: the corpus of secret forms (tests/data/secrets_corpus.yaml) is planted on a real
scanned host (tests/secretlab.py), and no bundle file — evidence, facts, results, inventory, manifest — holds
any of them; every one was counted in results.json ``redactions``; the final scan before signing found nothing.
The same redaction guards log lines, and ordinary configuration stays readable."""
from __future__ import annotations

import io
import json
import os

import pytest

import secretlab
from agent.cli import main
from agent.logjson import Logger
from collectors.redact import redact, redact_obj, scan_text

FORMS = secretlab.load_corpus()
ALL_SECRETS = [s for f in FORMS for s in f["secrets"]]


def test_corpus_is_large_and_unique():
    assert len(FORMS) >= 37
    assert len({f["id"] for f in FORMS}) == len(FORMS)
    assert {f["where"] for f in FORMS} <= set(secretlab.PLACES)


@pytest.mark.parametrize("form", FORMS, ids=[f["id"] for f in FORMS])
def test_each_form_is_redacted_as_text_and_as_json(form):
    out = redact(form["text"])
    assert not [s for s in form["secrets"] if s in out], out
    assert "<redacted>" in out
    assert scan_text(out) == []  # idempotent: nothing left to find, the mark itself is not a secret
    doc = redact_obj({"line": form["text"], "lines": [form["text"]]})
    assert not [s for s in form["secrets"] if s in json.dumps(doc)]


@pytest.fixture(scope="module")
def planted(tmp_path_factory, signing_key):
    why = secretlab.available()
    if why:
        pytest.skip(why)
    return secretlab.plant_and_scan(str(tmp_path_factory.mktemp("planted")), signing_key, FORMS)


def test_planted_secrets_never_reach_the_bundle(planted, signing_key):
    assert secretlab.leaks(planted, ALL_SECRETS + secretlab.INVENTORY_SECRETS) == {}
    assert main(["verify", planted, "--pubkey", signing_key + ".pub"]) == 0


def test_planting_reached_evidence_and_facts(planted):
    """Not vacuous: the planted files were read and printed, with the secrets cut out."""
    ev = os.path.join(planted, "evidence")
    text = "".join(open(os.path.join(ev, f), encoding="utf-8").read() for f in os.listdir(ev))
    assert "==> /etc/ssh/sshd_config.d/zz-ea-secrets.conf <==" in text
    assert "bindpw <redacted>" in text and "mysql -p<redacted>" in text and "-----BEGIN RSA PRIVATE KEY-----" in text
    facts = open(os.path.join(planted, "facts", "planted.json"), encoding="utf-8").read()
    assert "MYSQL_PASS=<redacted>" in facts  # the TMOUT line copied into the session_timeout fact
    inv = json.load(open(os.path.join(planted, "inventory.json"), encoding="utf-8"))
    assert "<redacted>" in inv["organisation"] and inv["hosts"][0]["declared"]["note"] == "bindpw <redacted>"


def test_redactions_counted_and_final_scan_clean(planted):
    res = json.load(open(os.path.join(planted, "results.json"), encoding="utf-8"))
    assert res["redactions"]["total"] >= len(FORMS)
    man = json.load(open(os.path.join(planted, "manifest.json"), encoding="utf-8"))
    assert man["predicate"]["secret_scan"]["found"] == 0
    assert man["predicate"]["secret_scan"]["files_scanned"] >= 10


def test_log_lines_are_redacted():
    buf = io.StringIO()
    log = Logger(json_lines=True, stream=buf)
    for f in FORMS:  # as a whole message and as a field (target output quoted in an error)
        log.error("host", f["text"], error=f["text"])
    text = buf.getvalue()
    assert not [s for s in ALL_SECRETS if s in text]


@pytest.mark.parametrize("text", [
    "passwd: /etc/passwd",
    "accounts with an empty password: guest",
    "Last password change                                    : Jan 01, 2026",
    "PREVENT_NO_AUTH superuser",
    "password    requisite     pam_pwquality.so retry=3",
    "auth    [success=1 default=ignore]  pam_unix.so nullok",
    "pubkeyauthentication yes",
    "hostkey /etc/ssh/ssh_host_ed25519_key",
    "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGr9rfnjmNDF49rGpaC32Vje7w9jeXalYxSDpdNIckFs root@host",
    "AAAAC3NzaC1lZDI1NTE5AAAAIGr9rfnjmNDF49rGpaC32Vje7w9jeXalYxSDpdNIckFsAAAAAAAAAAAA",
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUJ8v0l3yqHn3m1Dd0kVuwU4QdX9owCgYIKoZIzj0EAwIwJTEj\n-----END CERTIFICATE-----",
    "export TMOUT=600; readonly TMOUT",
    "password=${DB_PASSWORD}",
])
def test_evidence_that_is_not_secret_is_kept(text):
    assert redact(text) == text


def test_public_key_material_in_json_is_kept_private_key_is_not():
    """sslyze's ephemeral keys are random base64 under public-key fields: evidence, not secrets. A private key is
    recognised by its structure wherever it is."""
    eph = "BJ2mWq3vQ8Yc0ZpL7sXoT1uGfN4rKaE9hD6yBtVwM5iJxHgCRnSlOkU2dPeIbFqA0zYjX3c7v8W1oLmN4pK6sQ9rT2uV5wXyZaBcDeFg"
    doc = {"ephemeral_key": {"public_bytes": eph}, "note": eph}
    out = redact_obj(doc)
    assert out["ephemeral_key"]["public_bytes"] == eph  # kept
    assert out["note"] == "<redacted>"  # the same bytes anywhere else: key material
    key_line = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgbMgeIrbBdwyW2CeG"
    assert redact_obj({"public_bytes": key_line})["public_bytes"] == "<redacted>"


def test_credential_named_keys_and_batches(monkeypatch):
    """``{"password": "…"}`` in facts: key and value are separate strings, the key names the value a secret. Large
    documents are scanned in batches: a secret at any position is found."""
    import collectors.redact as R

    monkeypatch.setattr(R, "_BATCH", 64)
    doc = {"filler": ["x" * 50] * 20, "cfg": {"password": "Kv1Secretqw", "db_pass": "ok", "password_state": "locked",
                                              "api_key": "Kv2Secretqw"}, "tail": ["y" * 40, "rootpw Kv3Secretqw"]}
    out = json.dumps(redact_obj(doc))
    assert "Kv1Secretqw" not in out and "Kv2Secretqw" not in out and "Kv3Secretqw" not in out
    assert '"password_state": "locked"' in out and '"db_pass": "ok"' in out


def test_final_scan_of_a_large_document_streams_and_agrees(monkeypatch):
    """A document larger than a batch is scanned from its text (no second copy in memory) with the same result."""
    import collectors.redact as R

    eph = "BJ2mWq3vQ8Yc0ZpL7sXoT1uGfN4rKaE9hD6yBtVwM5iJxHgCRnSlOkU2dPeIbFqA0zYjX3c7v8W1oLmN4pK6sQ9r"
    doc = {"hosts": [{"password": "Kv1Secretqw", "public_bytes": eph, "line": "mysql -pKv2Secretqw",
                      "note": "x\"y\\z", "n": i} for i in range(40)]}
    raw = json.dumps(doc).encode()
    monkeypatch.setattr(R, "_BATCH", 256)
    assert len(raw) > R._BATCH
    assert sorted(R.scan_bytes(raw, True)) == sorted(["password"] * 80)
    assert R.scan_bytes(json.dumps(redact_obj(doc)).encode(), True) == []


def test_final_scan_never_rewrites_a_signed_artefact(tmp_path):
    """Found in CI: an SSHSIG signature kept in revisions/<n>/ (after attach) looks like a high-entropy secret;
    rewriting it broke the revision chain. Signed artefacts at any depth are the tool's own and never rewritten,
    while the same text in an evidence file is still caught (so this test can fail)."""
    import base64
    import os

    from collectors import bundle as b

    blob = base64.b64encode(os.urandom(300)).decode()
    sig = "-----BEGIN SSH SIGNATURE-----\n" + "\n".join(blob[i:i + 70] for i in range(0, len(blob), 70)) \
        + "\n-----END SSH SIGNATURE-----\n"
    for rel in ("revisions/2/manifest.json.sig", "sources/ext/SHA256SUMS.sig", "evidence/planted.txt"):
        os.makedirs(tmp_path / os.path.dirname(rel), exist_ok=True)
        (tmp_path / rel).write_text(sig if rel.endswith(".sig") else "aws_secret_access_key = " + blob[:40] + "\n")
    (tmp_path / "revisions/2/results.json").write_text('{"note": "password=hunter2hunter2"}')
    report = b.final_scan(str(tmp_path))
    assert (tmp_path / "revisions/2/manifest.json.sig").read_text() == sig
    assert (tmp_path / "sources/ext/SHA256SUMS.sig").read_text() == sig
    assert "revisions/2/results.json" not in report["files"]  # sealed (and scanned) at its own revision
    assert report["files"] == ["evidence/planted.txt"]

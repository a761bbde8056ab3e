"""Reliability figures of the bundle: tamper cases tried / rejected, secrets planted / leaked, redaction cost.

    sudo .venv/bin/python benchmarks/reliability_bundles.py [--compare-rev REV] [--skip-plant]

* tamper: every folder case of tests/hostile/test_tamper.py (byte changes in each kind of file, files added,
  removed, renamed, swapped signatures, another signer, links, FIFOs, devices) and every bad zip, each checked by
  `verify` in its own process under a timeout (a hang counts as not rejected), and each folder case also by the
  README's stock-tools recipe run as one script;
* secrets: the corpus tests/data/secrets_corpus.yaml planted on this machine in a private mount namespace
  (tests/secretlab.py), scanned, and every bundle file searched for every planted secret (needs root);
* redaction cost: CPU per host of the redaction pass (evidence, facts, the final scan before signing) on a real
  host's bundle, and of the previous pass (``git show REV:collectors/redact.py``) on the same evidence.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests"), os.path.join(ROOT, "tests", "hostile")]


def tamper_figures(work: Path) -> tuple[int, int, list[str]]:
    import test_tamper as T
    from collectors import signing

    keys = {"good": str(work / "good"), "other": str(work / "other"), "signers": str(work / "allowed_signers")}
    signing.keygen(keys["good"])
    signing.keygen(keys["other"])
    pub = open(keys["good"] + ".pub").read().split()
    Path(keys["signers"]).write_text(f'evidence-agent namespaces="evidence-agent" {pub[0]} {pub[1]}\n')
    inv = work / "inv.yml"
    inv.write_text(T.INV)
    pristine = str(work / "pristine")
    r = T.cli("scan", "--inventory", str(inv), "--out", pristine, "--key", keys["good"], "--only", "host", "-q",
              timeout=600)
    assert r.returncode == 0, r.stderr
    tried = rejected = 0
    failed: list[str] = []
    for name in sorted(T.CASES):
        case = work / f"case-{name}"
        case.mkdir()
        root = T.tampered(pristine, case, name, keys)
        for how in ("verify", "recipe"):
            tried += 1
            try:
                if how == "verify":
                    ok = T.cli("verify", root, "--pubkey", keys["good"] + ".pub").returncode == 1
                else:
                    ok = T.run_recipe(root, keys["signers"]).returncode != 0
            except subprocess.TimeoutExpired:
                ok = False
            rejected += ok
            if not ok:
                failed.append(f"{name} ({how})")
    good = str(work / "good.zip")
    T.cli("pack", pristine, "--out", good, "--pubkey", keys["good"] + ".pub")
    zdir = work / "zips"
    zdir.mkdir()
    for name, path in T.zip_cases(good, zdir).items():
        tried += 1
        try:
            r = T.cli("verify", path, "--pubkey", keys["good"] + ".pub")
            ok = r.returncode == 1 and "Traceback" not in r.stderr
        except subprocess.TimeoutExpired:
            ok = False
        rejected += ok
        if not ok:
            failed.append(f"{name} (zip)")
    return tried, rejected, failed


def secret_figures(work: Path) -> tuple[int, int, int, dict]:
    import secretlab
    from collectors import signing

    forms = secretlab.load_corpus()
    key = str(work / "key")
    signing.keygen(key)
    bundle = secretlab.plant_and_scan(str(work), key, forms)
    secrets = [s for f in forms for s in f["secrets"]] + secretlab.INVENTORY_SECRETS
    leaks = secretlab.leaks(bundle, secrets)
    leaked_forms = sum(1 for f in forms if any(s in leaks for s in f["secrets"]))
    leaked_forms += sum(1 for s in secretlab.INVENTORY_SECRETS if s in leaks)
    res = json.load(open(os.path.join(bundle, "results.json"), encoding="utf-8"))
    return len(forms) + len(secretlab.INVENTORY_SECRETS), leaked_forms, res["redactions"]["total"], leaks


def _cpu(fn, rounds: int = 5, inner: int = 10, cold: bool = False) -> float:
    """Best CPU time of ``fn``; ``cold``: the per-line result cache emptied before each call (a host whose lines
    were never seen), else warm (a fleet host like the ones before it)."""
    from collectors import redact as R

    fn()
    best = float("inf")
    for _ in range(rounds):
        total = 0.0
        for _ in range(inner):
            if cold:
                R._LINE_CACHE.clear()
            t0 = time.process_time()
            fn()
            total += time.process_time() - t0
        best = min(best, total / inner)
    return best


def cost_figures(work: Path, rev: str) -> list[str]:
    from collectors import signing
    from collectors.bundle import file_list
    from collectors.redact import redact, redact_obj, scan_bytes

    key = str(work / "key")
    signing.keygen(key)
    inv = work / "inv.yml"
    inv.write_text("version: 1\nscope: {allow: [127.0.0.0/8]}\nhosts:\n  - {name: h, transport: local}\n")
    out = str(work / "b")
    subprocess.run([sys.executable, "-m", "agent.cli", "scan", "-i", str(inv), "--out", out, "--key", key, "--only",
                    "host", "-q"], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), check=True, capture_output=True)
    ev_dir = os.path.join(out, "evidence")
    texts = [open(os.path.join(ev_dir, f), encoding="utf-8").read() for f in sorted(os.listdir(ev_dir))]
    facts = json.load(open(os.path.join(out, "facts", "h.json"), encoding="utf-8"))
    files = [(rel, open(os.path.join(out, rel), "rb").read()) for rel in file_list(out)
             if rel not in ("manifest.json", "manifest.json.sig", "SHA256SUMS", "SHA256SUMS.sig", "allowed_signers")]
    kb = sum(len(t.encode()) for t in texts) / 1024
    lines = [f"redaction cost per host (CPU, best of 5×10; one real host: {len(texts)} evidence files, {kb:.0f} KB):"]
    for cold in (True, False):
        ev = _cpu(lambda: [redact(t) for t in texts], cold=cold)
        fa = _cpu(lambda: redact_obj(facts), cold=cold)
        # the final scan reads back what the writer wrote: its lines were just seen (warm) unless nothing was
        fs = _cpu(lambda: [scan_bytes(d, rel.endswith(".json")) for rel, d in files], cold=cold)
        lines.append(f"  now, {'cold (lines never seen)' if cold else 'warm (fleet host like the last)'}: "
                     f"evidence {ev * 1000:.2f} ms + facts {fa * 1000:.2f} ms + final scan {fs * 1000:.2f} ms "
                     f"= {(ev + fa + fs) * 1000:.2f} ms")
    try:
        src = subprocess.run(["git", "show", f"{rev}:collectors/redact.py"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout
        p = work / "old_redact.py"
        p.write_text(src)
        spec = importlib.util.spec_from_file_location("old_redact", p)
        old = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(old)  # type: ignore[union-attr]
        before = _cpu(lambda: [old.redact(t) for t in texts])
        lines.append(f"  before ({rev}): evidence {before * 1000:.2f} ms (facts, results and logs were not redacted; "
                     "no final scan)")
    except (subprocess.CalledProcessError, OSError) as e:
        lines.append(f"  before: not measured ({e})")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--compare-rev", default="ee8111a", help="git revision whose redaction is 'before'")
    ap.add_argument("--skip-plant", action="store_true", help="no secret planting (it needs root and unshare)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ea-reliability-") as tmp:
        work = Path(tmp)
        for d in ("tamper", "secrets", "cost"):
            (work / d).mkdir()
        t0 = time.monotonic()
        tried, rejected, failed = tamper_figures(work / "tamper")
        print(f"tamper cases: {tried} tried, {rejected} rejected ({time.monotonic() - t0:.1f} s)"
              + (f"; NOT rejected: {', '.join(failed)}" if failed else ""))
        import secretlab

        why = "--skip-plant" if a.skip_plant else secretlab.available()
        if why:
            print(f"secrets: not planted ({why})")
        else:
            planted, leaked, redactions, leaks = secret_figures(work / "secrets")
            print(f"secrets: {planted} forms planted, {leaked} leaked; {redactions} redactions counted in results"
                  + (f"; leaked: {sorted(leaks)}" if leaks else ""))
        for line in cost_figures(work / "cost", a.compare_rev):
            print(line)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

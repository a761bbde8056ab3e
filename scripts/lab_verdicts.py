"""Every verdict of a full scan of the namespace lab, per rule and host: the before/after record of rule changes.

    sudo .venv/bin/python scripts/lab_verdicts.py [--json OUT.json] [--compare BEFORE.json] [--out BUNDLE]

Why: a change to the rules or the engine must be reviewed as the verdicts it changes on real, different hosts,
not only as policy cases. The lab (tests/lab.py: hosts in their own namespaces, a scanner namespace, nothing
outside them) is scanned with every probe family; the table printed is rule × host → status, and with
``--compare`` only the verdicts that differ from an earlier record.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests import lab as labmod  # noqa: E402

HOSTS = ["lab-web", "lab-db", {"name": "lab-legacy", "ssh": {"legacy_algorithms": True}}]


def verdicts(results: dict) -> dict[str, str]:
    out = {}
    for c in results.get("controls", []):
        for h in c.get("hosts", []):
            for f in h.get("findings", []):
                out[f"{c['id']} {f['rule']} @ {h['name']}"] = f["status"]
        out[f"{c['id']} (item)"] = c["status"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="write the verdicts here")
    ap.add_argument("--compare", help="an earlier --json record: print only what changed")
    ap.add_argument("--out", help="keep the bundle here (a new folder) instead of a temporary one")
    a = ap.parse_args()
    why = labmod.preflight()
    if why:
        print(f"lab unavailable: {why}", file=sys.stderr)
        return 1
    from collectors import signing
    with tempfile.TemporaryDirectory(prefix="ea-verdicts-") as tmp, labmod.Lab() as lab:
        key = os.path.join(tmp, "key")
        signing.keygen(key)
        body = json.loads(lab.inventory(HOSTS))
        body["networks"] = [{"name": "lab", "cidr": labmod.SUBNET, "zone": "internal"}]
        inv = json.dumps(body, indent=2)
        out = os.path.abspath(a.out) if a.out else os.path.join(tmp, "bundle")
        rc, so, se = lab.scan(inv, out, key, "-q", timeout=600)
        if not os.path.exists(os.path.join(out, "results.json")):
            print(f"scan failed (exit {rc}):\n{so[-2000:]}\n{se[-2000:]}", file=sys.stderr)
            return 1
        with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
            v = verdicts(json.load(f))
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(v, f, indent=1, ensure_ascii=False, sort_keys=True)
    if a.compare:
        with open(a.compare, encoding="utf-8") as f:
            before = json.load(f)
        keys = sorted(set(before) | set(v))
        changed = [(k, before.get(k, "-"), v.get(k, "-")) for k in keys if before.get(k) != v.get(k)]
        for k, b, n in changed:
            print(f"{k:60} {b:16} -> {n}")
        print(f"{len(changed)} of {len(keys)} verdicts changed")
    else:
        for k in sorted(v):
            print(f"{k:60} {v[k]}")
    print(f"scan exit {rc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

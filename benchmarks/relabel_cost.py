"""What stable per-item evidence names (collectors.labels.relabel) cost at the end of a run, on a synthetic bundle.

    python benchmarks/relabel_cost.py [--hosts 500]

Builds a bundle folder like a fleet run leaves it before sealing — per host the evidence files of every host probe
(4 KiB each, with the usual header line), a facts file citing them, and results' controls whose findings cite them
for every item the fsi-openapi-2018 rules serve — then times relabel and prints files, names and seconds.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from collectors.bundle import iter_readable  # noqa: E402
from collectors.labels import relabel  # noqa: E402
from policies.model import load_profile  # noqa: E402


def build(root: str, n_hosts: int) -> tuple[list, list]:
    prof = load_profile("fsi-openapi-2018")
    facts_by_probe: dict[str, set] = {}
    for r in prof.rules:
        if r.scope == "host":
            for f in r.facts:
                facts_by_probe.setdefault(f, set()).update(r.items)
    os.makedirs(os.path.join(root, "evidence"))
    os.makedirs(os.path.join(root, "facts"))
    index, per_host = [], {}
    serial: dict[str, int] = {}
    body = "x" * 4000 + "\n"
    for h in range(n_hosts):
        name = f"host-{h:04d}"
        files = {}
        for probe, items in sorted(facts_by_probe.items()):
            item = sorted(items)[0]
            serial[item] = serial.get(item, 0) + 1
            rel = f"evidence/자료{item}-{serial[item]}_{name}_{probe}.txt"
            with open(os.path.join(root, rel), "w", encoding="utf-8") as f:
                f.write(f"# evidence-agent evidence file ({rel.split('/')[-1]})\n{body}")
            index.append({"file": rel, "host": name, "label": probe, "items": sorted(items)})
            files[probe] = rel
        per_host[name] = files
        with open(os.path.join(root, "facts", f"{name}.json"), "w", encoding="utf-8") as f:
            for piece in iter_readable({"host": {"name": name}, "evidence": {k: [v] for k, v in files.items()}}):
                f.write(piece)
    controls = []
    for c in prof.catalog.controls:
        cid = str(c["id"])
        hosts = []
        for name, files in per_host.items():
            ev = [rel for probe, rel in files.items() if cid in facts_by_probe[probe]]
            if ev:
                hosts.append({"name": name, "evidence": ev, "findings": [{"rule": "r", "evidence": ev}]})
        controls.append({"id": cid, "hosts": hosts})
    return index, controls


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, default=500)
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="ea-relabel-")
    try:
        index, controls = build(root, a.hosts)
        t0 = time.perf_counter()
        new = relabel(root, index, controls)
        dt = time.perf_counter() - t0
        print(f"hosts {a.hosts}: {len(index)} evidence files -> {len(new)} per-item names in {dt:.2f} s "
              f"({dt / a.hosts * 1000:.1f} ms/host)")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Regenerates docs/report-screenshot.png from a real scan of the namespace lab (needs root).

    sudo .venv/bin/python scripts/report_screenshot.py [--anchor item-14.3.1]

Brings the lab up (tests/lab.py: hosts that really differ, all inside network namespaces),
scans lab-web, lab-db and lab-legacy, renders the HTML report and screenshots one item.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from browser import Browser  # noqa: E402
from collectors import signing  # noqa: E402
from lab import Lab  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--anchor", default="item-13.1.1", help="element id of the item to show")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "report-screenshot.png"))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="ea-shot-")
    key = os.path.join(tmp, "key")
    signing.keygen(key)
    bundle = os.path.join(tmp, "bundle")
    with Lab() as lab:
        hosts = ["lab-web", "lab-db", {"name": "lab-legacy", "ssh": {"legacy_algorithms": True}}]
        rc, out, err = lab.scan(hosts, bundle, key, "-q")
        if rc != 0:
            print(out, err, file=sys.stderr)
            return rc
    html = bundle + ".report.html"
    subprocess.run([sys.executable, "-m", "agent.cli", "report", bundle, "--format", "html", "--out", html],
                   check=True, cwd=ROOT)
    with Browser() as b:
        b.open(html)
        b.screenshot(a.out, selector=f'[id="{a.anchor}"]')
    print(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

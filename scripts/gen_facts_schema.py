#!/usr/bin/env python3
"""Write facts.schema.json and docs/facts.md from the fact models (probes/facts.py).

Run after changing a model: ``python scripts/gen_facts_schema.py`` (``--check`` exits 1 when the committed
files differ from what the code generates; tests/test_facts_contract.py runs that check).
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from probes.factschema import markdown, schema_text  # noqa: E402

OUTPUTS = {ROOT / "facts.schema.json": schema_text, ROOT / "docs" / "facts.md": markdown}


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for path, make in OUTPUTS.items():
        text = make()
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"out of date (run scripts/gen_facts_schema.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

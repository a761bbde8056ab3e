"""Load a recorded host (tests/fixtures/host/<distro>/) as the RawOutputs a transport would give.

Layout of a fixture directory:

* ``<command>.txt`` — the command's output (one trailing newline is dropped);
* ``_meta.yaml`` (optional) — ``exit_codes: {command: rc}`` (default 0),
  ``truncated: [command]``, ``timed_out: [command]``, ``inherit: <distro>`` to
  take the commands this directory lacks from another one, ``absent: [command]``
  for commands that must not be inherited (the section is then missing, as when
  a script ends early), and ``source:`` saying where the outputs come from.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from probes.base import RawOutput  # noqa: E402
from probes.batch import dedupe  # noqa: E402
from probes.host import PROBES  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "host"
SCRIPTS = {c.name: c.script for c in dedupe(c for p in PROBES for c in p.commands)}


def distros() -> list[str]:
    return sorted(p.name for p in FIXTURES.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def meta(distro: str) -> dict:
    f = FIXTURES / distro / "_meta.yaml"
    return (yaml.safe_load(f.read_text(encoding="utf-8")) or {}) if f.exists() else {}


def load(distro: str, _seen: Optional[set[str]] = None) -> dict[str, RawOutput]:
    seen = _seen or set()
    if distro in seen:
        raise ValueError(f"inherit loop at {distro}")
    seen.add(distro)
    d = FIXTURES / distro
    m = meta(distro)
    outputs: dict[str, RawOutput] = {}
    if m.get("inherit"):
        outputs.update(load(m["inherit"], seen))
    for name in m.get("absent", []):
        outputs.pop(name, None)
    codes = m.get("exit_codes", {}) or {}
    for f in sorted(d.glob("*.txt")):
        name = f.stem
        text = f.read_text(encoding="utf-8")
        if text.endswith("\n"):
            text = text[:-1]
        timed_out = name in (m.get("timed_out") or [])
        outputs[name] = RawOutput(
            name=name,
            script=SCRIPTS.get(name, ""),
            output=text,
            exit_code=None if timed_out else codes.get(name, 0),
            started="2026-11-23T00:00:00Z",
            duration=0.1,
            truncated=name in (m.get("truncated") or []),
            timed_out=timed_out,
        )
    return outputs

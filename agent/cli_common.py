"""What every sub-command module shares: exit codes, error printing, the default paths, reading keys.

Why its own module: ``cli`` registers the sub-commands of ``cli_report`` and ``fleet_cli``; when those
reached back into ``cli`` for these helpers the modules imported each other (a cycle). Now each of them
imports this one, and this one imports nothing of the agent. Nothing here reads the environment or a
file at import: the default signing key follows ``EVIDENCE_AGENT_KEY`` / ``XDG_CONFIG_HOME`` as they are
when the command runs.
"""
from __future__ import annotations

import os
import sys
from typing import Optional

from collectors import signing

EXIT_OK, EXIT_INVALID, EXIT_NO_HOST, EXIT_STALE, EXIT_OUTPUT, EXIT_LOCKED, EXIT_UNPINNED = 0, 1, 2, 3, 4, 5, 6
EXIT_BROKER = 7  # distributed mode: the broker cannot be reached (no bundle), or was lost mid-run (bundle signed)
EXIT_INTERRUPTED = 130
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_INVENTORY = os.path.join(HERE, "data", "default-inventory.yaml")


def default_key() -> str:
    """The signing key used when ``--key`` is not given."""
    return os.environ.get("EVIDENCE_AGENT_KEY") or os.path.join(
        os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"), "evidence-agent", "signing_key")


def err(msg: str) -> None:
    print(f"evidence-agent: {msg}", file=sys.stderr)


def read_pubkey(path: Optional[str]) -> tuple[Optional[str], bool]:
    """(the --pubkey file's text or None when not given, ok); not ok (after an error message) when unreadable."""
    if not path:
        return None, True
    try:
        with open(path) as f:
            return f.read(), True
    except OSError as e:
        err(f"cannot read --pubkey {path}: {e.strerror}")
        return None, False


def load_key(path: str, create: bool) -> signing.KeyPair:
    """The signing key at ``path``; created (and said so) when missing and ``create`` allows it."""
    if not os.path.exists(path):
        if not create:
            raise signing.SignatureError(f"signing key {path} does not exist (create it with `evidence-agent keygen`)")
        kp = signing.keygen(path)
        err(f"created a new signing key {path} ({signing.fingerprint(kp.public)}); public key in {path}.pub")
        return kp
    return signing.load_private(path)

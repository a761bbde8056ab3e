"""Shared fixtures: a real sshd on loopback, a signing key, and a helper to run the CLI in-process."""
from __future__ import annotations

import os
import sys
from typing import Iterator

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
TESTS = os.path.dirname(os.path.abspath(__file__))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

from collectors import signing  # noqa: E402
from sshd import SshdServer, start_sshd  # noqa: E402


@pytest.fixture(scope="session")
def sshd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdServer]:
    if os.geteuid() != 0:
        pytest.skip("needs root to run a test sshd (make test runs as root)")
    srv = start_sshd(("127.0.0.1",), workdir=str(tmp_path_factory.mktemp("sshd")))
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("key") / "signing_key")
    signing.keygen(path)
    return path


def write_inventory(path: str, body: str) -> str:
    with open(path, "w") as f:
        f.write(body)
    return path

"""Host probes parsed from recorded/written fixtures (tests/fixtures/host/<distro>/), table-driven.

Each fixture folder carries its expectations in ``_expected.yaml``: ``recorded`` (``real``: recorded on a real
system; ``documentation``: written by hand from the tools' documented formats; ``mixed``, with a ``note`` saying
which part is which) and ``expect: {probe: {JMESPath expression on the fact's data: expected value}}`` — the way
rules read facts; ``@status`` is the fact's status. The probes under test are the registry's
(:data:`probes.host.PROBES`): every registered probe must have expectations in some fixture.
"""

from __future__ import annotations

import json

import jmespath
import pytest
import yaml

from host_fixture_loader import FIXTURES, distros, load
from probes.base import FactStatus
from probes.host import PROBES, by_name
from policies.expr import bind_params, evaluate
from policies.model import load_profile

RECORDED = ("real", "documentation", "mixed")


def expectations(distro: str) -> dict:
    """The fixture's ``_expected.yaml`` (an error names the file when it is missing or malformed)."""
    path = FIXTURES / distro / "_expected.yaml"
    assert path.exists(), f"{path}: every fixture states its expected facts"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict) and set(doc) <= {"recorded", "note", "expect"}, f"{path}: keys {sorted(doc or {})}"
    return doc


EXPECTED: list[tuple[str, str, str, object]] = [
    (d, probe, expr, value)
    for d in distros()
    for probe, rows in (expectations(d).get("expect") or {}).items()
    for expr, value in (rows or {}).items()
]


@pytest.fixture(scope="module")
def facts() -> dict:
    cache: dict = {}

    def get(distro: str, probe: str):
        key = (distro, probe)
        if key not in cache:
            cache[key] = by_name(probe).parse(load(distro))
        return cache[key]

    return get  # type: ignore[return-value]


#: every built-in rule's parameter defaults (names are unique, or equal where two rules share one)
RULE_PARAMS = {k: v for r in load_profile("fsi-openapi-2018").rules for k, v in r.params.items()}


@pytest.mark.parametrize(
    "distro,probe,expr,expected", EXPECTED, ids=[f"{d}-{p}-{e}" for d, p, e, _ in EXPECTED]
)
def test_expected(facts, distro, probe, expr, expected):
    fact = facts(distro, probe)
    if expr == "@status":
        assert fact.status.value == expected, fact.reason
        return
    # what is weak or insecure is the rules' params (ssh-algorithms, no-insecure-services), applied here to each
    # distribution's real output
    got = evaluate(bind_params(expr, RULE_PARAMS), fact.data) if "params." in expr else jmespath.search(expr, fact.data)
    assert got == expected, f"{distro} {probe} {expr}: {got!r} (status {fact.status.value}: {fact.reason})"


def test_every_fixture_distro_is_exercised():
    used = {d for d, _, _, _ in EXPECTED}
    assert set(distros()) <= used, set(distros()) - used


def test_every_registered_probe_has_expectations():
    """A probe added to the registry without expected facts in any fixture fails here (identity and session
    timeout included); an expectation for a probe the registry does not have is a typo."""
    names = [p.name for p in PROBES]
    covered = {p for _, p, _, _ in EXPECTED}
    assert not set(names) - covered, f"registered probes without expectations: {sorted(set(names) - covered)}"
    assert not covered - set(names), f"expectations for unknown probes: {sorted(covered - set(names))}"
    # and more than a status: at least one field of each probe's data is checked
    fields = {p for _, p, e, _ in EXPECTED if e != "@status"}
    assert set(names) <= fields, sorted(set(names) - fields)


@pytest.mark.parametrize("distro", distros())
def test_every_fixture_says_how_it_was_made(distro):
    doc = expectations(distro)
    assert doc.get("recorded") in RECORDED, f"{distro}/_expected.yaml: recorded must be one of {RECORDED}"
    assert doc.get("note"), f"{distro}/_expected.yaml: a note on where the outputs come from"
    from host_fixture_loader import meta

    if meta(distro).get("recorded"):  # record.py stamps the time of a real recording in _meta.yaml
        assert doc["recorded"] != "documentation", distro


@pytest.mark.parametrize("distro", distros())
def test_all_probes_parse_every_fixture(distro):
    """No probe raises on any fixture; facts are JSON; status and reason agree."""
    outputs = load(distro)
    for p in PROBES:
        fact = p.parse(outputs)
        assert fact.probe == p.name
        json.dumps(fact.to_json())
        if fact.status == FactStatus.COLLECTED:
            assert fact.reason is None, (p.name, fact.reason)
        else:
            assert fact.reason, (p.name, fact.status)


MY_PROBES = [p.name for p in PROBES]
#: (probe, command) whose loss cannot show on that host: the command is not consulted there.
UNUSED = {
    ("ubuntu2204", "patch", "pkg_security"),  # apt: security origin is in the simulation
    ("ubuntu2204", "remote_admin", "sshd_config"),  # sshd -T answered
    ("rhel9", "remote_admin", "sshd_config"),
    ("ubuntu2204", "session_timeout", "sshd_config"),  # sshd -T answered
    ("rhel9", "session_timeout", "sshd_config"),
}


@pytest.mark.parametrize("distro", ["ubuntu2204", "rhel9"])
@pytest.mark.parametrize("how", ["truncated", "timed_out", "missing"])
def test_damaged_section_is_never_collected(distro, how):
    """Any one damaged section of a probe makes it PARTIAL/NOT_COLLECTED with a reason, never 'fine'."""
    import dataclasses

    for name in MY_PROBES:
        probe = by_name(name)
        for cmd in probe.commands:
            if (distro, name, cmd.name) in UNUSED:
                continue
            outputs = load(distro)
            assert cmd.name in outputs, (distro, cmd.name)
            if how == "missing":
                del outputs[cmd.name]
            elif how == "truncated":
                outputs[cmd.name] = dataclasses.replace(
                    outputs[cmd.name], truncated=True, output=outputs[cmd.name].output[:40]
                )
            else:
                outputs[cmd.name] = dataclasses.replace(
                    outputs[cmd.name], timed_out=True, exit_code=None, output=""
                )
            fact = probe.parse(outputs)
            assert fact.status != FactStatus.COLLECTED, (distro, name, cmd.name, how)
            assert fact.reason

"""Every host parser (probes/host/*) on random, truncated and spliced output: a Fact with a status (and a reason
when not fully collected), never an exception escaping (issue 16, standing suite)."""
from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host_fixture_loader import distros, load
from probes.base import FactStatus, RawOutput
from probes.host import PROBES

RECORDED = {d: load(d) for d in distros()}
TOKENS = st.sampled_from(["=", ":", " ", "\t", "\n", "#", "0", "1", "99999", "-1", "yes", "no", "root", "tcp",
                          "LISTEN", "127.0.0.1:22", "[::]:80", "PASS_MAX_DAYS", "TMOUT", "x", "ii", "/usr/sbin",
                          "active", "inactive", "enabled", "\x00", "é", "Permit", "Protocol", "*", "{", "}", "\"",
                          "ERROR", "$6$x", "uid=0", "NAME=", "VERSION_ID="])
TEXT = st.one_of(st.text(max_size=400), st.lists(TOKENS, max_size=120).map("".join))


def raw(name: str, text: str, rc, truncated: bool, timed_out: bool) -> RawOutput:
    return RawOutput(name=name, script="", output=text, exit_code=None if timed_out else rc,
                     started="2026-01-01T00:00:00Z", duration=0.1, truncated=truncated, timed_out=timed_out,
                     truncated_reason="more than 50000 lines; cut" if truncated else None)


def check(probe, outs) -> None:
    fact = probe.parse(outs)
    assert fact.status in set(FactStatus)
    if fact.status != FactStatus.COLLECTED:
        assert fact.reason, (probe.name, fact)
    fact.to_json()


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: p.name)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_output(probe, data):
    outs = {}
    for c in probe.commands:
        if data.draw(st.integers(0, 9), label="present") > 0:  # now and then a section is missing
            outs[c.name] = raw(c.name, data.draw(TEXT), data.draw(st.sampled_from([0, 1, 2, 124, 127, None])),
                               data.draw(st.booleans()), data.draw(st.booleans()))
    if data.draw(st.booleans(), label="drop one"):
        outs.pop(data.draw(st.sampled_from([c.name for c in probe.commands])), None)
    check(probe, outs)


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: p.name)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(distro=st.sampled_from(sorted(RECORDED)), cut=st.floats(min_value=0, max_value=1), junk=st.text(max_size=30),
       cut_it=st.booleans())
def test_truncated_and_spliced_real_output(probe, distro, cut, junk, cut_it):
    """Real recorded outputs of each distribution, cut at a random point (as a 32 MiB or deadline cut would) and
    with random text spliced in."""
    outs = {}
    for c in probe.commands:
        o = RECORDED[distro].get(c.name)
        if o is None:
            continue
        n = int(len(o.output) * cut)
        outs[c.name] = replace(o, output=o.output[:n] + junk + o.output[n:] if not cut_it else o.output[:n],
                               truncated=cut_it or o.truncated, exit_code=None if cut_it else o.exit_code)
    check(probe, outs)

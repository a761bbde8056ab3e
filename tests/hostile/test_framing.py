"""The streaming frame parser (probes/batch.py): chunking never changes the result, caps hold, and random or
truncated input gives per-command errors, never an exception."""
from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probes.base import CommandSpec
from probes.batch import FrameParser, parse_stream

M = "@@EA-00000000deadbeef"
CMDS = [CommandSpec("a", "true"), CommandSpec("b", "true"), CommandSpec("c", "true")]


def stream(bodies: dict[str, bytes], done: bool = True) -> bytes:
    out = [f"{M} NOSUDO\n\n{M} CLOCK up 1795440000 100.00\n\n{M} ID 0\n".encode()]
    for n, body in bodies.items():
        out.append(f"\n{M} BEGIN {n} 100.5\n".encode() + body + f"\n\n{M} END {n} 0 101.0\n".encode())
    if done:
        out.append(f"\n{M} DONE\n".encode())
    return b"".join(out)


def chunked(data: bytes, sizes: list[int]) -> FrameParser:
    p = FrameParser(CMDS, M)
    i = 0
    for n in sizes:
        p.feed(data[i:i + n])
        i += n
    p.feed(data[i:])
    return p


def as_tuple(res):
    return (res.uid, res.done, res.sudo_refused, res.frames,
            {k: (o.output, o.exit_code, o.truncated, o.timed_out, o.error, o.truncated_reason)
             for k, o in res.outputs.items()})


def test_whole_and_byte_by_byte_agree():
    data = stream({"a": b"line1\nline2", "b": f"{M}X not a marker\n{M} BOGUS\ntail".encode(), "c": b""})
    whole = parse_stream(data, CMDS, M)
    p = FrameParser(CMDS, M)
    for i in range(len(data)):
        p.feed(data[i:i + 1])
    assert as_tuple(p.finish()) == as_tuple(whole)
    o = whole.outputs
    assert o["a"].output == "line1\nline2\n"  # as the line-splitting parser gave it
    assert f"{M} BOGUS" in o["b"].output and o["b"].complete
    assert whole.done and whole.uid == 0 and whole.sudo_refused


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(bodies=st.dictionaries(st.sampled_from(["a", "b", "c"]), st.binary(max_size=300)),
       done=st.booleans(), cut=st.integers(min_value=0, max_value=2000),
       sizes=st.lists(st.integers(min_value=1, max_value=97), max_size=40))
def test_random_chunking_and_truncation(bodies, done, cut, sizes):
    data = stream(bodies, done)[:cut] if cut < 2000 else stream(bodies, done)
    whole = parse_stream(data, CMDS, M, stream_error="host deadline exceeded")
    p = chunked(data, sizes)
    assert as_tuple(p.finish("host deadline exceeded")) == as_tuple(whole)
    for c in CMDS:  # every command has an entry, complete or with a reason
        o = whole.outputs[c.name]
        assert o.complete or o.error or o.truncated or o.timed_out


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000))
def test_random_bytes_never_raise(data):
    res = parse_stream(data, CMDS, M, stream_error="x")
    assert set(res.outputs) == {"a", "b", "c"}
    assert res.frames == 0 and res.script_problem()


def test_endless_short_lines_inside_a_section_are_capped_by_lines():
    p = FrameParser(CMDS, M, line_cap=1000)
    p.feed(f"{M} BEGIN a 1\n".encode())
    for _ in range(200):
        p.feed(b"y\n" * 4096)
    res = p.finish("output larger than 32 MiB; cut")
    o = res.outputs["a"]
    assert o.truncated and o.truncated_reason == "more than 1000 lines; cut"
    assert o.output.count("\n") <= 1000 and len(p.buf) == 0
    assert res.outputs["b"].error == "output larger than 32 MiB; cut"


def test_section_byte_cap_and_line_length_cap():
    p = FrameParser(CMDS, M, section_cap=10_000, line_bytes=100)
    p.feed(stream({"a": b"x" * 50_000, "b": b"short\n" + b"z" * 500 + b"\nend"}))
    res = p.finish()
    a, b = res.outputs["a"], res.outputs["b"]
    assert a.truncated and "larger than 10000 bytes" in a.truncated_reason and len(a.output) <= 10_000
    assert b.truncated and "a line longer than 100 bytes" in b.truncated_reason
    assert b.output.splitlines() == ["short", "z" * 100, "end"]


def test_parser_buffer_stays_small_on_unframed_flood():
    p = FrameParser(CMDS, M)
    rnd = random.Random(1)
    for _ in range(300):
        p.feed(bytes(rnd.getrandbits(8) for _ in range(1000)) + b"\n" + M.encode()[:10])
        assert len(p.pend) < 5000
    res = p.finish("output larger than 32 MiB; cut")
    assert "probe script did not run" in res.script_problem() and "without framing" in res.script_problem()


def test_a_real_command_printing_endless_lines_is_cut_with_its_reason():
    """Through the real local transport: the flooding command's section is cut by line count, the stream by the
    host cap, and what came before is intact."""
    import time

    from probes.transport.local import LocalTransport

    cmds = [CommandSpec("before", "echo fine", may_hang=False), CommandSpec("flood", "yes", timeout=20),
            CommandSpec("after", "echo after", may_hang=False)]
    t0 = time.monotonic()
    res = LocalTransport().run(cmds, time.monotonic() + 30)
    assert time.monotonic() - t0 < 30
    assert res.outputs["before"].ok and res.outputs["before"].output.strip() == "fine"
    flood = res.outputs["flood"]
    assert flood.truncated and flood.truncated_reason == "more than 50000 lines; cut"
    assert flood.output.count("\n") < 50_000
    assert res.outputs["after"].error == "output larger than 32 MiB; cut"
    assert res.stream_error == "output larger than 32 MiB; cut" and not res.done and res.frames >= 3

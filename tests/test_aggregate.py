"""The aggregation rule, stated once in policies.engine.aggregate, checked exhaustively and by properties."""
from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from policies.engine import IMPL, NA, NI, PART, UNK, aggregate

ALL = [IMPL, PART, NI, NA, UNK]
statuses = st.lists(st.sampled_from(ALL), max_size=12)


def reference(s: list[str]) -> str:
    """The README's wording, written independently of the implementation."""
    applicable = [x for x in s if x != NA]
    if not applicable:
        return NA
    known = [x for x in applicable if x != UNK]
    failed = [x for x in known if x in (NI, PART)]
    if failed:
        passed = [x for x in known if x == IMPL]
        return NI if not passed and all(x == NI for x in failed) else PART
    return UNK if UNK in applicable else IMPL


def test_exhaustive_up_to_four_entries() -> None:
    for n in range(5):
        for combo in itertools.product(ALL, repeat=n):
            assert aggregate(combo) == reference(list(combo)), combo


def test_table() -> None:
    assert aggregate([]) == NA
    assert aggregate([NA, NA]) == NA
    assert aggregate([IMPL, IMPL]) == IMPL
    assert aggregate([IMPL, NI]) == PART
    assert aggregate([NI, UNK]) == NI
    assert aggregate([IMPL, UNK]) == UNK
    assert aggregate([IMPL, NI, UNK]) == PART
    assert aggregate([PART]) == PART
    assert aggregate([UNK, NA]) == UNK


@given(statuses)
def test_never_implemented_without_every_applicable_entry_passing(s: list[str]) -> None:
    if aggregate(s) == IMPL:
        assert all(x in (IMPL, NA) for x in s) and IMPL in s


@given(statuses)
def test_a_known_failure_is_never_hidden(s: list[str]) -> None:
    if NI in s or PART in s:
        assert aggregate(s) in (NI, PART)


@given(statuses)
def test_unknown_only_when_nothing_known_failed(s: list[str]) -> None:
    if aggregate(s) == UNK:
        assert UNK in s and NI not in s and PART not in s


@given(statuses, st.integers(min_value=0, max_value=5))
def test_not_applicable_entries_do_not_change_the_result(s: list[str], extra: int) -> None:
    assert aggregate(s + [NA] * extra) == aggregate(s)


@given(statuses, st.randoms())
def test_order_does_not_matter(s: list[str], rnd) -> None:
    t = list(s)
    rnd.shuffle(t)
    assert aggregate(t) == aggregate(s)


@given(st.lists(statuses, min_size=1, max_size=5))
def test_host_then_item_aggregation_never_turns_failure_into_pass(hosts: list[list[str]]) -> None:
    per_host = [aggregate(h) for h in hosts]
    item = aggregate(per_host)
    if any(x in (NI, PART) for h in hosts for x in h):
        assert item in (NI, PART)

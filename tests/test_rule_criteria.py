"""Each (rule, item) pair quotes that item's own guide text, so column A never shows words the item does not say.

The quote of a rule for an item (``rule.criterion_for(item)``) is split on "…"; every fragment must appear
verbatim in the item's catalog text (``ko`` + ``criterion_ko``, the guide's own words, see the catalog's
header). Compared after normalising layout only: whitespace runs, the guide's list bullets (•, line-leading
"-" and "·"), its example brackets 《》 and footnote marks (*, ※) are not words of the guide, so a quote may
drop them. Nothing else is forgiven: a paraphrase, a word from another item or from another document (the
account plan 002) fails.
"""
from __future__ import annotations

import re
from typing import Any

import pytest

from policies.model import available_profiles, load_profile

MIN_FRAGMENT = 5  # characters: "백신" or "계정" alone would be found in almost any item


def norm(text: str) -> str:
    t = re.sub(r"(?m)^\s*[-·•]\s+", " ", text)  # list bullets at line start
    t = re.sub(r"[•《》※*]", " ", t)
    return re.sub(r"\s+", " ", t).strip()


def fragments(quote: str) -> list[str]:
    return [f for f in (norm(x) for x in quote.split("…")) if f]


def _pairs() -> list[Any]:
    out = []
    for name in available_profiles():
        prof = load_profile(name)
        for rule in prof.rules:
            for item in rule.items:
                out.append(pytest.param(name, rule.id, item, id=f"{name}:{rule.id}@{item}"))
    return out


PROFILES: dict[str, Any] = {}


def profile(name: str) -> Any:
    if name not in PROFILES:
        PROFILES[name] = load_profile(name)
    return PROFILES[name]


def item_text(prof: Any, item: str) -> str:
    c = prof.catalog.control(item) or {}
    return norm(" ".join(str(c.get(k) or "") for k in ("ko", "criterion_ko")))


def test_norm_forgives_layout_only() -> None:
    text = "• 시스템 별로 다른 안전한 비밀번호 설정* 및 갱신\n  - 서버의 경우\n    사용목적과 관계없는"
    assert "시스템 별로 다른 안전한 비밀번호 설정 및 갱신" in norm(text)
    assert "서버의 경우 사용목적과 관계없는" in norm(text)
    assert fragments("《안전한 암호 알고리즘의 예》 … 일방향 암호") == ["안전한 암호 알고리즘의 예", "일방향 암호"]
    assert "비밀번호를 설정" not in norm(text)  # a changed particle is a paraphrase, not a quote


@pytest.mark.parametrize("name,rule_id,item", _pairs())
def test_item_exists(name: str, rule_id: str, item: str) -> None:
    assert profile(name).catalog.control(item) is not None, f"{rule_id}: item {item} not in catalog {name}"


@pytest.mark.parametrize("name,rule_id,item", _pairs())
def test_criterion_quotes_the_items_own_text(name: str, rule_id: str, item: str) -> None:
    prof = profile(name)
    rule = next(r for r in prof.rules if r.id == rule_id)
    quote = rule.criterion_for(item)
    frags = fragments(quote)
    assert frags, f"{rule_id}@{item}: empty criterion"
    # a rule serving another profile's item through a crosswalk quotes the item of its own profile it came from
    src_profile, src_item = rule.quoted_from.get(item, (name, item))
    text = item_text(profile(src_profile), src_item)
    short = [f for f in frags if len(f) < MIN_FRAGMENT]
    assert not short, f"{rule_id}@{item}: fragments too short to be a quote: {short}"
    missing = [f for f in frags if f not in text]
    assert not missing, (f"{rule_id}@{item} ({rule.source}): not in item {item}'s guide text: {missing}")

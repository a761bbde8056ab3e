"""The condition language of rules: JMESPath (https://jmespath.org), a small, safe, well-known query language.

Why JMESPath: it reads JSON facts, compares and filters, has no side effects, no
loops and no access to Python; AWS CLI users already know it. Examples::

    session_timeout.idle_timeout_seconds <= params.max_idle_seconds
    length(listening.sockets[?contains(params.insecure_ports, port)]) > `0`
    !(antivirus.any_running)
    contains(host.roles, 'web')

Missing data evaluates to null, and comparisons with null are null (false):
a rule therefore only passes when its pass condition holds on real values.
Messages are templates with ``{expression}`` placeholders filled from the same data.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

import jmespath
from jmespath import functions
from jmespath.exceptions import JMESPathError


class ExprError(ValueError):
    pass


class _Functions(functions.Functions):
    """A few helpers the standard set lacks (still side-effect free)."""

    @functions.signature({"types": ["array", "null"]}, {"types": ["array", "null"]})
    def _func_intersect(self, a: Any, b: Any) -> list[Any]:
        b = b or []
        return [x for x in (a or []) if x in b]

    @functions.signature({"types": ["array", "null"]}, {"types": ["array", "null"]})
    def _func_difference(self, a: Any, b: Any) -> list[Any]:
        b = b or []
        return [x for x in (a or []) if x not in b]

    @functions.signature({"types": ["string", "null"]}, {"types": ["string"]})
    def _func_regex(self, s: Any, pattern: str) -> bool:
        return bool(s is not None and re.search(pattern, s))

    @functions.signature({"types": ["string", "number", "null"]}, {"types": ["string", "number", "null"]})
    def _func_version_lt(self, a: Any, b: Any) -> Any:
        """Dotted version comparison: version_lt('1.1', '1.2') is true; null when either is null."""
        if a is None or b is None:
            return None

        def key(v: Any) -> list[int]:
            return [int(x) for x in re.findall(r"\d+", str(v))]

        return key(a) < key(b)


_OPTIONS = jmespath.Options(custom_functions=_Functions())


@lru_cache(maxsize=4096)
def compile_expr(expr: str) -> Any:
    try:
        return jmespath.compile(expr)
    except JMESPathError as e:
        raise ExprError(f"invalid JMESPath expression {expr!r}: {e}") from None


def evaluate(expr: str, data: Any) -> Any:
    try:
        return compile_expr(expr).search(data, options=_OPTIONS)
    except ExprError:
        raise
    except JMESPathError as e:
        raise ExprError(f"cannot evaluate {expr!r}: {e}") from None


def truthy(v: Any) -> bool:
    """JMESPath truthiness: false, null, empty string/list/object are false."""
    return v not in (None, False, "", [], {})


_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


def render(template: str, data: Any, none: str = "-") -> str:
    """Fill ``{expr}`` placeholders; lists are joined with ", "; errors show as ⟨?expr⟩ rather than raising."""

    def one(m: re.Match[str]) -> str:
        try:
            v = evaluate(m.group(1).strip(), data)
        except ExprError:
            return f"⟨?{m.group(1)}⟩"
        return fmt(v, none)

    return _PLACEHOLDER.sub(one, template)


def fmt(v: Any, none: str = "-") -> str:
    if v is None or v == []:
        return none
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, list):
        return ", ".join(fmt(x, none) for x in v)
    if isinstance(v, dict):
        return json.dumps(v, ensure_ascii=False, sort_keys=True)
    return str(v)

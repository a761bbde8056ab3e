"""Rules checked against the facts' schema when they are loaded.

Why: a misspelt field in a rule would not fail — JMESPath gives null for a missing key, and null makes the
verdict 점검불가 in an auditor's report. Every expression (``when``, ``of``, ``affirmed_by``, ``applies.when``)
and every ``{…}`` placeholder of a message is parsed (``jmespath.parser``) and each field path below a fact
name is resolved in :func:`probes.factschema.schema`; a filter or projection over a list moves to the list's
item model. Roots that are not facts (host metadata, the network views, params) are listed in ``OTHER_ROOTS``
and not resolved further: they are built by the engine, not by probes.
"""
from __future__ import annotations

import difflib
import re
from typing import Any, Optional

import jmespath.parser
from jmespath.exceptions import JMESPathError

from probes.facts import FACTS
from probes.factschema import deref, schema, strip_null

#: Roots of the rule context that are not facts (see policies/engine.py judge_host/run and policies/netview.py).
OTHER_ROOTS = frozenset({
    "host", "session", "params", "inventory", "net", "network", "tls_endpoints", "web_sites", "cleartext",
    "cleartext_unclear", "encryption_unverified", "evidence_labels",
})

_ROOT = object()
_ANY = object()
_PARAM = re.compile(r"(?<![\w.])params\.([A-Za-z_][A-Za-z0-9_]*)")
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
#: functions whose result has the type of their first argument (so a path after them can still be checked)
_SAME_TYPE = {"sort_by", "reverse", "having", "intersect", "difference", "not_null"}


class PathError(ValueError):
    pass


def _suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" — did you mean {close[0]!r}?" if close else ""


def _array(items: Any) -> Any:
    return {"type": "array", "items": items} if items is not _ANY else _ANY


def _items(ctx: Any) -> Any:
    if ctx is _ANY or ctx is _ROOT:
        return _ANY
    s, _ = strip_null(ctx)
    if isinstance(s, dict) and s.get("type") == "array":
        return s.get("items", _ANY)
    if isinstance(s, dict) and s.get("type") == "object" and isinstance(s.get("additionalProperties"), dict):
        return s["additionalProperties"]  # a map's values (value projection)
    return _ANY


def _field(name: str, ctx: Any, path: str) -> Any:
    if ctx is _ANY or name in ("null", "true", "false"):  # a bare null reads a missing key: null, as meant
        return _ANY
    if ctx is _ROOT:
        if name in FACTS:
            return schema()["properties"][name]
        if name in OTHER_ROOTS:
            return _ANY
        raise PathError(f"unknown fact or root {name!r}{_suggest(name, sorted(set(FACTS) | OTHER_ROOTS))}")
    s, _ = strip_null(ctx)
    if not isinstance(s, dict):
        return _ANY
    props = s.get("properties")
    if props is not None:
        if name in props:
            return props[name]
        extra = s.get("additionalProperties", True)
        if extra is False:
            where = f" of {path}" if path else ""
            raise PathError(f"no field {name!r}{where} in the facts schema{_suggest(name, sorted(props))}")
        return extra if isinstance(extra, dict) else _ANY
    if s.get("type") == "object":
        extra = s.get("additionalProperties", True)
        return extra if isinstance(extra, dict) else _ANY
    if s.get("type") == "array":
        raise PathError(f"{path} is a list: use {path}[].{name} or a filter to reach {name!r}")
    return _ANY


def _walk(node: dict[str, Any], ctx: Any, path: str) -> tuple[Any, str]:
    t = node["type"]
    ch = node.get("children", [])
    if t == "field":
        return _field(node["value"], ctx, path), (f"{path}.{node['value']}" if path else node["value"])
    if t == "subexpression" or t == "index_expression":
        c, p = _walk(ch[0], ctx, path)
        for x in ch[1:]:
            c, p = _walk(x, c, p)
        return c, p
    if t in ("index", "slice"):
        return (_items(ctx), path + "[]") if t == "index" else (ctx, path)
    if t in ("identity", "current"):
        return ctx, path
    if t == "projection" or t == "value_projection":
        left, p = _walk(ch[0], ctx, path)
        item = _items(left)
        r, rp = _walk(ch[1], item, p + "[]")
        return _array(r), rp
    if t == "filter_projection":
        left, p = _walk(ch[0], ctx, path)
        item = _items(left)
        _walk(ch[2], item, p + "[]")
        r, rp = _walk(ch[1], item, p + "[]")
        return _array(r), rp
    if t == "flatten":
        c, p = _walk(ch[0], ctx, path)
        inner = _items(c)
        if inner is not _ANY and isinstance(strip_null(inner)[0], dict) and strip_null(inner)[0].get("type") == "array":
            return inner, p
        return c, p
    if t == "pipe":
        c, p = _walk(ch[0], ctx, path)
        return _walk(ch[1], c, p)
    if t == "function_expression":
        first: Any = _ANY
        for i, x in enumerate(ch):
            if x["type"] == "expref":
                _walk(x["children"][0], _items(first), "")
                continue
            c, _ = _walk(x, ctx, path)
            if i == 0:
                first = c
        return (first if node["value"] in _SAME_TYPE else _ANY), ""
    if t == "or_expression":
        a, p = _walk(ch[0], ctx, path)
        _walk(ch[1], ctx, path)
        return a, p
    for x in ch:  # comparator, and/not, multi-select, key_val_pair, literal, expref...
        if isinstance(x, dict):
            _walk(x, ctx, path)
    return _ANY, ""


def check_expr(expr: str) -> None:
    """Raise :class:`PathError` when ``expr`` reads a fact field the schema does not have."""
    bound = _PARAM.sub("`null`", expr)
    try:
        ast = jmespath.parser.Parser().parse(bound).parsed
    except JMESPathError:
        return  # syntax errors are reported by the rule loader itself
    _walk(ast, _ROOT, "")


def check_template(text: str) -> None:
    for m in _PLACEHOLDER.finditer(text):
        check_expr(m.group(1).strip())


def check_fact_name(name: str) -> Optional[str]:
    """An error message when ``name`` is not a fact, else None."""
    if name in FACTS:
        return None
    return f"unknown fact {name!r}{_suggest(name, sorted(FACTS))}"


def check_rule_node(rn: Any) -> None:
    """Check one rule's YAML node (common.yamlsrc Node); raises its ConfigError at the offending key and line."""
    if rn.has("facts"):
        fn = rn.get("facts")
        for i, x in enumerate(fn.seq()):
            why = check_fact_name(str(x.value))
            if why:
                raise x.error(why)
    if rn.has("applies") and rn.get("applies").has("when"):
        _check(rn.get("applies").get("when"), expr=True)
    for key in ("fail", "advice", "unknown"):
        for m in rn.get(key).seq() if rn.has(key) else []:
            _check_msg(m)
    if rn.has("pass"):
        _check_msg(rn.get("pass"))
    for o in rn.get("observed").seq() if rn.has("observed") else []:
        _check(o.get("of"), expr=True)
        if o.has("affirmed_by"):
            _check(o.get("affirmed_by"), expr=True)
        for lang in ("ko", "en"):
            if o.has(lang):
                _check(o.get(lang), expr=False)
    for q in rn.get("requirements").seq() if rn.has("requirements") else []:
        fail = q.get("fail")
        for m in (fail.seq() if isinstance(fail.value, list) else ([fail] if fail.value is not None else [])):
            _check_msg(m)
        if q.has("pass"):
            _check_msg(q.get("pass"))


def _check_msg(m: Any) -> None:
    if not isinstance(m.value, dict):
        return
    if m.has("when"):
        _check(m.get("when"), expr=True)
    for lang in ("ko", "en"):
        if m.has(lang):
            _check(m.get(lang), expr=False)


def _check(n: Any, expr: bool) -> None:
    if not isinstance(n.value, str):
        return
    try:
        (check_expr if expr else check_template)(n.value)
    except PathError as e:
        raise n.error(str(e)) from None


__all__ = ["OTHER_ROOTS", "PathError", "check_expr", "check_template", "check_fact_name", "check_rule_node",
           "deref"]

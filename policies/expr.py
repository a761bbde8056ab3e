"""The condition language of rules: JMESPath (https://jmespath.org), a small, safe, well-known query language.

Why JMESPath: it reads JSON facts, compares and filters, has no side effects, no
loops and no access to Python; AWS CLI users already know it. Examples::

    session_timeout.idle_timeout_seconds <= params.max_idle_seconds
    count(listening.sockets[?contains(params.insecure_ports, port)]) > `0`
    !(antivirus.any_running)
    contains(host.roles, 'web')

Missing data evaluates to null, and comparisons with null are null (false):
a rule therefore only passes when its pass condition holds on real values.
Use ``count(x)`` rather than ``length(x)``: it gives null for missing data instead
of an error. Write ``!(a.b)``: in JMESPath ``!a.b`` means ``(!a).b`` (rule files
using the latter are rejected when loaded). ``params.NAME`` is replaced by the
parameter's value before evaluation, so it works inside filters too.
Messages are templates with ``{expression}`` placeholders filled from the same data.
"""
from __future__ import annotations

import json
import fnmatch
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

    @functions.signature({"types": ["array", "object", "string", "null"]})
    def _func_count(self, x: Any) -> Any:
        """Like length(), but null (missing data) stays null, so comparisons on it are neither pass nor fail."""
        return None if x is None else len(x)

    @functions.signature({"types": ["object", "null"]}, {"types": ["array", "null"]})
    def _func_pick(self, obj: Any, keys: Any) -> list[Any]:
        """Values of ``obj`` at each of ``keys`` that exist: pick({web: [80], db: [3306]}, ['web']) is [[80]]."""
        return [obj[k] for k in (keys or []) if isinstance(k, str) and k in (obj or {})]

    @functions.signature({"types": ["array", "null"]}, {"types": ["string"]}, {"types": ["array", "null"]})
    def _func_having(self, objs: Any, key: str, values: Any) -> list[Any]:
        """Objects whose ``key`` is one of ``values``: having(accounts.accounts, 'name', host.declared.x) —
        a filter cannot reach data outside the element (``[?contains(host.…, name)]`` sees the element only)."""
        vals = values or []
        return [o for o in (objs or []) if isinstance(o, dict) and o.get(key) in vals]

    @functions.signature({"types": ["array", "null"]}, {"types": ["array", "null"]})
    def _func_matching(self, items: Any, patterns: Any) -> list[Any]:
        """Items (an sshd list entry's +/-/^ prefix dropped) matching any shell-style pattern: matching(
        ssh.ciphers, ['*-cbc', 'arcfour*']). Lets rules hold "what is weak" as data the site can change."""
        pats = [str(x) for x in patterns or []]
        out = []
        for a in items or []:
            name = str(a).lstrip("+-^")
            if any(fnmatch.fnmatchcase(name, pat) for pat in pats):
                out.append(name)
        return out

    @functions.signature({"types": ["array", "null"]}, {"types": ["array", "null"]})
    def _func_matching_services(self, sockets: Any, table: Any) -> Any:
        """Listening sockets that a row of ``table`` names, each with the row's ``service``, ``reason`` and
        ``matched_by`` ('process' or 'port'); the first matching row wins. A row ``{service, proto: tcp|udp|any,
        ports, processes, reason}`` matches a socket on one of its ports with that protocol, or by process name
        (a service moved to another port; compared on 15 characters, as the kernel truncates them). Lets a rule
        hold "which services are insecure" as data a site can change: matching_services(listening.sockets,
        params.insecure_services). Null sockets (not observed) stay null."""
        if sockets is None:
            return None
        rows = [r for r in table or [] if isinstance(r, dict)]
        out = []
        for s in sockets:
            if not isinstance(s, dict):
                continue
            proc = s.get("process")
            for row in rows:
                by_port = (s.get("port") in (row.get("ports") or [])
                           and row.get("proto", "any") in (s.get("proto"), "any"))
                by_proc = bool(proc) and str(proc)[:15] in {str(p)[:15] for p in row.get("processes") or []}
                if by_port or by_proc:
                    out.append({**s, "service": row.get("service"), "reason": row.get("reason"),
                                "matched_by": "process" if by_proc else "port"})
                    break
        return out

    @functions.signature({"types": ["object", "null"]})
    def _func_true_keys(self, obj: Any) -> list[str]:
        """Keys whose value is true: true_keys({"TLS 1.0": true, "TLS 1.2": false}) is ["TLS 1.0"]."""
        return [k for k, v in (obj or {}).items() if v is True]

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


_PARAM = re.compile(r"(?<![\w.])params\.([A-Za-z_][A-Za-z0-9_]*)")


def bind_params(expr: str, params: dict[str, Any]) -> str:
    """Replace ``params.NAME`` by its JSON literal, so parameters work inside filters and projections
    (where JMESPath's current node is the element, not the root)."""
    if "params." not in expr:
        return expr
    names = _param_names(expr)
    key = tuple((n, _frozen(params[n])) for n in names if n in params)
    try:
        return _bind_cached(expr, key)
    except TypeError:  # an unhashable value (a mapping): bind without the cache
        return _bind(expr, params)


@lru_cache(maxsize=4096)
def _param_names(expr: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(m.group(1) for m in _PARAM.finditer(expr)))


def _frozen(v: Any) -> Any:
    return tuple(_frozen(x) for x in v) if isinstance(v, list) else v


@lru_cache(maxsize=8192)
def _bind_cached(expr: str, key: tuple[tuple[str, Any], ...]) -> str:
    """Rules are judged on every host with mostly the same parameters: bind each combination once."""
    return _bind(expr, {n: (list(v) if isinstance(v, tuple) else v) for n, v in key})


def _bind(expr: str, params: dict[str, Any]) -> str:
    def lit(m: re.Match[str]) -> str:
        if m.group(1) not in params:
            return m.group(0)
        return "`" + json.dumps(params[m.group(1)], ensure_ascii=False).replace("`", "\\`") + "`"

    return _PARAM.sub(lit, expr)


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


def render(template: str, data: Any, none: str = "-", params: Any = None) -> str:
    """Fill ``{expr}`` placeholders; lists are joined with ", "; errors show as ⟨?expr⟩ rather than raising."""

    def one(m: re.Match[str]) -> str:
        try:
            expr = m.group(1).strip()
            v = evaluate(bind_params(expr, params) if params else expr, data)
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

"""Rules and catalogs as data: loading and schema validation (errors name file, line and key).

A rule is one check over one or more facts, attached to one or more detailed items
of a catalog. Its conditions are JMESPath (see :mod:`policies.expr`).
"""
from __future__ import annotations

import enum
import glob
import os
import re
from dataclasses import dataclass, field, replace
from typing import Any, Optional

from common.yamlsrc import ConfigError, Node, load

from .expr import ExprError, compile_expr
from .factpaths import check_rule_node

HERE = os.path.dirname(os.path.abspath(__file__))


class Verdict(str, enum.Enum):
    """The one vocabulary of verdicts: engine, history, drift, attach and the renderers use these values."""

    IMPLEMENTED = "implemented"          # 이행: every requirement met, on observed evidence
    PARTIAL = "partial"                  # 부분이행: some requirements met
    NOT_IMPLEMENTED = "not_implemented"  # 미이행: none met
    NOT_APPLICABLE = "not_applicable"    # 해당없음
    UNKNOWN = "unknown"                  # 점검불가: evidence missing (never a pass)


STATUSES = tuple(v.value for v in Verdict)
RULE_KEYS = {"id", "items", "title", "criterion", "level", "scope", "facts", "params", "guide_limits", "applies",
             "fail", "pass", "advice", "unknown", "remediation", "vantage", "observed", "requirements"}


@dataclass
class Message:
    when: str
    ko: str
    en: str
    source: str = ""


@dataclass
class Observation:
    """A set a pass ranges over: it must be observed (non-empty) for the pass to count.

    ``affirmed_by`` is an expression over the host's data (usually ``host.declared.…``) with which
    the inventory affirms that the set really is empty; the affirmation is then named in the verdict.
    """
    of: str
    ko: str
    en: str
    affirmed_by: Optional[str] = None
    source: str = ""


@dataclass
class Requirement:
    """One requirement of the item that a rule checks; a rule with several gives 부분이행 when some hold."""
    id: str
    title: dict[str, str]
    fail: list[Message]
    passes: Message
    source: str = ""


@dataclass
class Rule:
    id: str
    items: list[str]
    title: dict[str, str]
    criterion: str  # the quote for the first item (kept for readers of older results)
    level: str  # must | recommend
    scope: str  # host | run | host+network (per host over what it owns, plus a row for what nobody owns)
    facts: list[str]
    params: dict[str, Any]
    guide_limits: dict[str, dict[str, Any]]
    applies: dict[str, Any]
    fail: list[Message]
    passes: Optional[Message]  # the only way to "implemented"
    advice: list[Message]
    unknown: list[Message]
    remediation: dict[str, str]
    vantage: Optional[str]  # network facts must come from this vantage, else the rule is unknown
    source: str  # file:line
    profile: str
    criteria: dict[str, str] = field(default_factory=dict)  # item -> the quote of THAT item's guide text
    observed: list[Observation] = field(default_factory=list)  # a pass needs each of these non-empty
    requirements: list[Requirement] = field(default_factory=list)  # several requirements: partial when some hold
    quoted_from: dict[str, tuple[str, str]] = field(default_factory=dict)  # item -> (profile, item) its quote is from

    def criterion_for(self, item: str) -> str:
        return self.criteria.get(item) or self.criterion


@dataclass
class Catalog:
    profile: str
    title: dict[str, str]
    answer_scale: str
    areas: list[dict[str, Any]]
    fields: list[dict[str, Any]]
    items: list[dict[str, Any]]
    controls: list[dict[str, Any]]
    source: str = ""
    path: str = ""
    form: dict[str, Any] = field(default_factory=dict)  # the profile's own form: labels, answer scale, prefix
    crosswalk: dict[str, Any] = field(default_factory=dict)  # {from: PROFILE, items: {my item: {items, roles}}}

    def control(self, cid: str) -> Optional[dict[str, Any]]:
        for c in self.controls:
            if str(c.get("id")) == cid:
                return c
        return None


@dataclass
class Profile:
    catalog: Catalog
    rules: list[Rule] = field(default_factory=list)


def _text(n: Node) -> dict[str, str]:
    n.mapping({"ko", "en"}, required=("ko", "en"))
    return {"ko": n.get("ko").req_str(), "en": n.get("en").req_str()}


_BANG_PATH = re.compile(r"!\s*[A-Za-z_][\w]*(\s*\[[^\]]*\])?\s*\.")


def _expr(n: Node) -> str:
    s = n.req_str()
    m = _BANG_PATH.search(s)
    if m:
        raise n.error(f"write !(a.b) with parentheses: in JMESPath {m.group(0)}… negates only the first name "
                      "(!a.b means (!a).b)")
    try:
        compile_expr(s)
    except ExprError as e:
        raise n.error(str(e)) from None
    return s


def _msg(n: Node) -> Message:
    n.mapping({"when", "ko", "en"}, required=("when", "ko", "en"))
    return Message(_expr(n.get("when")), n.get("ko").req_str(), n.get("en").req_str(), f"{n.path}:{n.line}")


def _observation(n: Node) -> Observation:
    n.mapping({"of", "ko", "en", "affirmed_by"}, required=("of", "ko", "en"))
    return Observation(_expr(n.get("of")), n.get("ko").req_str(), n.get("en").req_str(),
                       _expr(n.get("affirmed_by")) if n.has("affirmed_by") else None, f"{n.path}:{n.line}")


def _requirement(n: Node) -> Requirement:
    n.mapping({"id", "title", "fail", "pass"}, required=("id", "title", "pass"))
    fail = n.get("fail")
    return Requirement(n.get("id").req_str(), _text(n.get("title")),
                       [_msg(m) for m in fail.seq()] if isinstance(fail.value, list) else
                       ([_msg(fail)] if fail.value is not None else []),
                       _msg(n.get("pass")), f"{n.path}:{n.line}")


def _criteria(n: Node, items: list[str]) -> dict[str, str]:
    """``criterion``: one quote (a rule on one item, or the same words in each), or ``{item: quote}``."""
    if isinstance(n.value, dict):
        out = {}
        for k, v in n.items():
            if k not in items:
                raise v.error(f"criterion for item {k}, which the rule does not name in items")
            out[k] = v.req_str()
        missing = [i for i in items if i not in out]
        if missing:
            raise n.error(f"criterion missing for item(s) {', '.join(missing)}")
        return out
    text = n.req_str()
    return {i: text for i in items}


def load_rules(path: str) -> tuple[str, list[Rule]]:
    root = Node(path, load(path))
    root.mapping({"schema", "profile", "rules"}, required=("schema", "profile", "rules"))
    if root.get("schema").req_str() != "evidence-agent/rules/v1":
        raise root.get("schema").error("expected evidence-agent/rules/v1")
    profile = root.get("profile").req_str()
    rules = []
    for rn in root.get("rules").seq():
        rn.mapping(RULE_KEYS, required=("id", "items", "title", "criterion", "facts"))
        check_rule_node(rn)  # every fact name and field path against the facts schema (probes/facts.py)
        if not rn.get("observed").value:
            raise rn.error("a rule must say what its pass rests on: `observed: [{of: EXPR, ko, en}]` — a pass "
                           "over an empty or missing set is not evidence (see README, Verdicts)", rn._join("observed"))
        if not rn.has("pass") and not rn.has("requirements"):
            raise rn.error("a rule needs `pass` (or `requirements`, each with its own pass)", rn._join("pass"))
        params = rn.get("params").value or {}
        if not isinstance(params, dict):
            raise rn.get("params").error("expected a mapping of parameter defaults")
        limits: dict[str, dict[str, Any]] = {}
        if rn.has("guide_limits"):
            for k, ln in rn.get("guide_limits").items():
                ln.mapping({"min", "max", "source"})
                if k not in params:
                    raise ln.error("guide limit for a parameter the rule does not have")
                if isinstance(params[k], bool) or not isinstance(params[k], (int, float)):
                    raise ln.error(f"guide limit for a parameter that is not a number (default {params[k]!r})")
                limits[k] = {x: ln.get(x).num() for x in ("min", "max") if ln.has(x)}
                if ln.has("source"):  # the guide's sentence that states the value; without it, not called the guide's
                    limits[k]["source"] = ln.get("source").req_str()
        applies: dict[str, Any] = {}
        if rn.has("applies"):
            an = rn.get("applies").mapping({"roles", "zones", "transports", "os_families", "when", "not_roles", "why"})
            for k in ("roles", "zones", "transports", "os_families", "not_roles"):
                if an.has(k):
                    applies[k] = an.get(k).str_list()
            if an.has("when"):
                applies["when"] = _expr(an.get("when"))
            if an.has("why"):  # the words an auditor reads when `when` does not hold (never the expression)
                applies["why"] = _text(an.get("why"))
        items = rn.get("items").str_list()
        criteria = _criteria(rn.get("criterion"), items)
        rule = Rule(
            id=rn.get("id").req_str(),
            items=items,
            title=_text(rn.get("title")),
            criterion=criteria[items[0]] if items else "",
            level=rn.get("level").str("must", choices=("must", "recommend")) or "must",
            scope=rn.get("scope").str("host", choices=("host", "run", "host+network")) or "host",
            facts=rn.get("facts").str_list(),
            params={str(k): v for k, v in params.items()},
            guide_limits=limits,
            applies=applies,
            fail=[_msg(m) for m in rn.get("fail").seq()],
            passes=_msg(rn.get("pass")) if rn.has("pass") else None,
            advice=[_msg(m) for m in rn.get("advice").seq()],
            unknown=[_msg(m) for m in rn.get("unknown").seq()],
            remediation=_text(rn.get("remediation")) if rn.has("remediation") else {"ko": "", "en": ""},
            vantage=rn.get("vantage").str(),
            source=f"{path}:{rn.line}",
            profile=profile,
            criteria=criteria,
            observed=[_observation(o) for o in rn.get("observed").seq()],
            requirements=[_requirement(q) for q in rn.get("requirements").seq()],
        )
        if not rule.items:
            raise rn.get("items").error("a rule must name at least one detailed item")
        rules.append(rule)
    return profile, rules


def load_catalog(path: str) -> Catalog:
    root = Node(path, load(path))
    root.mapping(None, required=("schema", "profile", "controls"))
    if root.get("schema").req_str() != "evidence-agent/catalog/v1":
        raise root.get("schema").error("expected evidence-agent/catalog/v1")
    controls = []
    seen = set()
    for cn in root.get("controls").seq():
        cn.mapping(None, required=("id", "ko"))
        cid = cn.get("id").req_str()
        if cid in seen:
            raise cn.get("id").error(f"duplicate control id {cid}")
        seen.add(cid)
        controls.append(_plain(cn.value))
    title = root.get("title").value or {}
    return Catalog(
        profile=root.get("profile").req_str(), title=_plain(title),
        answer_scale=root.get("answer_scale").str("fsi") or "fsi",
        areas=_plain(root.get("areas").value or []), fields=_plain(root.get("fields").value or []),
        items=_plain(root.get("items").value or []), controls=controls,
        source=root.get("source").str("") or "", path=path,
        form=_plain(root.get("form").value or {}), crosswalk=_plain(root.get("crosswalk").value or {}),
    )


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def policy_dirs(extra: Optional[list[str]] = None) -> list[str]:
    return [HERE] + list(extra or [])


def available_profiles(extra: Optional[list[str]] = None) -> list[str]:
    names = []
    for d in policy_dirs(extra):
        for p in sorted(glob.glob(os.path.join(d, "catalog", "*.yaml"))):
            names.append(os.path.splitext(os.path.basename(p))[0])
    return names


def load_profile(name: str, extra: Optional[list[str]] = None) -> Profile:
    """The catalog named ``name`` plus every rule file (built-in and extra dirs) declaring that profile."""
    cat_path = None
    for d in policy_dirs(extra):
        p = os.path.join(d, "catalog", f"{name}.yaml")
        if os.path.exists(p):
            cat_path = p
    if cat_path is None:
        raise ConfigError(name, None, "--profile",
                          f"unknown profile (available: {', '.join(available_profiles(extra)) or 'none'})")
    catalog = load_catalog(cat_path)
    rules: list[Rule] = []
    ids: dict[str, str] = {}
    for d in policy_dirs(extra):
        for p in sorted(glob.glob(os.path.join(d, "rules", "*.yaml"))):
            prof, rs = load_rules(p)
            if prof != name:
                continue
            for r in rs:
                if r.id in ids:
                    raise ConfigError(p, None, f"rules[{r.id}]", f"duplicate rule id (also in {ids[r.id]})")
                ids[r.id] = r.source
                for it in r.items:
                    if catalog.control(it) is None:
                        raise ConfigError(r.source.rsplit(":", 1)[0], int(r.source.rsplit(":", 1)[1]), f"{r.id}.items",
                                          f"item {it} is not in catalog {name}")
                rules.append(r)
    rules += _crosswalked(catalog, extra, ids)
    return Profile(catalog, rules)


def _crosswalked(catalog: Catalog, extra: Optional[list[str]], ids: dict[str, str]) -> list[Rule]:
    """Rules of another profile that also evidence this profile's items, through the catalog's crosswalk.

    ``crosswalk: {from: fsi-openapi-2018, items: {S2-05-SE-1: {items: ["14.3.1"], roles: [important-pc]}}}``:
    every rule of ``from`` for 14.3.1 is used for S2-05-SE-1 — the same rule, not a copy to maintain — and,
    with ``roles``, only on inventory hosts with one of those roles (a rule that already names other roles
    is left out rather than widened).
    """
    cw = catalog.crosswalk or {}
    if not cw:
        return []
    src = str(cw.get("from") or "")
    where = f"{catalog.path}: crosswalk"
    if not src or src == catalog.profile:
        raise ConfigError(catalog.path, None, "crosswalk.from", "name another profile")
    other = load_profile(src, extra)
    out: list[Rule] = []
    for mine, spec in (cw.get("items") or {}).items():
        if catalog.control(str(mine)) is None:
            raise ConfigError(catalog.path, None, f"crosswalk.items.{mine}", f"no item {mine} in this catalog")
        if not isinstance(spec, dict) or set(spec) - {"items", "roles"} or not spec.get("items"):
            raise ConfigError(catalog.path, None, f"crosswalk.items.{mine}", "expected {items: [...], roles: [...]}")
        theirs = {str(x) for x in spec["items"]}
        roles = [str(x) for x in spec.get("roles") or []]
        for r in other.rules:
            if not theirs & set(r.items):
                continue
            if roles and r.applies.get("roles") and not set(roles) & set(r.applies["roles"]):
                continue
            rid = f"{r.id}@{mine}"
            if rid in ids:
                continue
            ids[rid] = where
            applies = dict(r.applies)
            if roles:
                applies["roles"] = sorted(set(roles) & set(r.applies["roles"])) if r.applies.get("roles") else roles
            via = next(i for i in r.items if i in theirs)  # the quote is of THAT item's text, in the other profile
            out.append(replace(r, id=rid, items=[str(mine)], applies=applies, profile=catalog.profile,
                               criteria={str(mine): r.criterion_for(via)}, criterion=r.criterion_for(via),
                               quoted_from={str(mine): (src, via)},
                               source=f"{r.source} (crosswalk {src} {', '.join(sorted(theirs))} → {mine})"))
    return out

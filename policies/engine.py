"""Turns facts into verdicts: rule → host → detailed item → control, with the aggregation documented once.

Per host per rule: ``implemented`` only when the pass condition holds on real
facts; ``not_implemented`` when a fail condition holds; ``not_applicable`` when
the rule does not apply; ``unknown`` otherwise (fact missing, host not collected,
or evidence insufficient) — never a pass.

Aggregation (per host over its rules, and per item over its hosts), see
:func:`aggregate`: not-applicable entries are ignored; any known failure makes
the result ``not_implemented`` (if nothing known passed) or ``partial``; only
when nothing known failed does an ``unknown`` make the result ``unknown``; all
passes make ``implemented``; nothing applicable makes ``not_applicable``.
"""
from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Optional

from common.yamlsrc import ConfigError
from probes.base import classify_reason

from . import netview
from .expr import ExprError, bind_params, evaluate, fmt, render, truthy
from .model import Profile, Rule, Verdict

IMPL, PART, NI, NA, UNK = (Verdict.IMPLEMENTED.value, Verdict.PARTIAL.value, Verdict.NOT_IMPLEMENTED.value,
                           Verdict.NOT_APPLICABLE.value, Verdict.UNKNOWN.value)  # plain str: JSON stays as before
LABELS = {
    "ko": {IMPL: "이행", PART: "부분이행", NI: "미이행", NA: "해당없음", UNK: "점검불가"},
    "en": {IMPL: "Implemented", PART: "Partially implemented", NI: "Not implemented", NA: "Not applicable",
           UNK: "Unknown"},
}
#: Labels per answer scale of a catalog: the guide's 이행/부분이행/미이행, or a review's 예/아니오/N/A.
SCALE_LABELS = {
    "fsi": LABELS,
    "yes_no": {
        "ko": {IMPL: "예", PART: "부분", NI: "아니오", NA: "N/A", UNK: "점검불가"},
        "en": {IMPL: "Yes", PART: "Partly", NI: "No", NA: "N/A", UNK: "Unknown"},
    },
}


def labels_for(scale: Optional[str], lang: str) -> dict[str, str]:
    return SCALE_LABELS.get(scale or "fsi", LABELS)[lang]


RUN_FACTS = ("network_scan", "tls", "web")
NETWORK_HOST = "_network"
#: rule scope: judged per host over what it owns, plus a network row for what no host owns
HOST_AND_NETWORK = "host+network"


def aggregate(statuses: Iterable[str]) -> str:
    s = [x for x in statuses if x != NA]
    if not s:
        return NA
    known = [x for x in s if x != UNK]
    if any(x in (NI, PART) for x in known):
        return NI if all(x == NI for x in known) else PART
    if UNK in s:
        return UNK
    return IMPL


def observed(v: Any) -> bool:
    """A value that is there: not null, and not an empty list, mapping or string. ``0`` and ``false`` count
    (they are observations); an empty set does not (a pass over it would be vacuous)."""
    if v is None:
        return False
    if isinstance(v, (list, dict, str)):
        return len(v) > 0
    return True


def summarize(controls: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts per status (all controls, and automated ones) and the automated controls' aggregate."""
    counts: dict[str, int] = {}
    auto: dict[str, int] = {}
    for c in controls:
        counts[c["status"]] = counts.get(c["status"], 0) + 1
        if not c.get("manual"):
            auto[c["status"]] = auto.get(c["status"], 0) + 1
    return {"controls": counts, "automated_controls": auto,
            "overall_automated": aggregate(c["status"] for c in controls if not c.get("manual"))}


@dataclass
class HostInput:
    meta: dict[str, Any]
    collected: bool
    error: Optional[str]
    facts: Optional[dict[str, dict[str, Any]]]  # probe -> Fact.to_json(); None: read from facts_file when judged
    evidence: dict[str, list[str]]  # probe -> evidence files
    session: Optional[dict[str, Any]] = None  # how the host was reached (transport info), rules see it as `session`
    facts_file: Optional[str] = None  # facts/<host>.json of the bundle, when facts are not kept in memory
    judged: Optional[list[tuple[int, dict[str, Any]]]] = None  # (rule index, finding), when judged early
    owned: Optional[list[str]] = None  # addresses the host owns (policies.netview), set when first judged
    error_code: Optional[str] = None  # ReasonCode of ``error``, set by the collector where the failure is known

    def load_facts(self) -> dict[str, dict[str, Any]]:
        """The facts; on large fleets the collector drops them from memory and they are read back here."""
        if self.facts is not None:
            return self.facts
        if not self.facts_file:
            return {}
        with open(self.facts_file, encoding="utf-8") as f:
            return json.load(f).get("facts") or {}


def parse_waivers(waivers: list[dict[str, Any]], rule_ids: set[str], today: dt.date) -> list[dict[str, Any]]:
    """Validate waivers; malformed ones stop the run (an ignored waiver would silently change verdicts)."""
    out = []
    for w in waivers:
        src = w.get("__source__", "waivers")
        path, _, line = src.rpartition(":")
        ln = int(line) if line.isdigit() else None
        for k in ("rule", "host", "reason", "approver", "expires"):
            if not w.get(k):
                raise ConfigError(path or src, ln, f"waivers.{k}", "required for every waiver")
        extra = set(w) - {"rule", "host", "reason", "approver", "expires", "__source__"}
        if extra:
            raise ConfigError(path or src, ln, f"waivers.{sorted(extra)[0]}", "unknown key")
        if w["rule"] not in rule_ids:
            raise ConfigError(path or src, ln, "waivers.rule", f"no rule {w['rule']!r} in this profile")
        try:
            exp = dt.date.fromisoformat(str(w["expires"])[:10])
        except ValueError:
            raise ConfigError(path or src, ln, "waivers.expires", "expected a date YYYY-MM-DD") from None
        out.append({"rule": w["rule"], "host": str(w["host"]), "reason": str(w["reason"]),
                    "approver": str(w["approver"]), "expires": exp.isoformat(), "active": exp >= today,
                    "source": src})
    return out


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "true/false"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "a mapping"
    return "null"


def _type_error(default: Any, value: Any) -> Optional[str]:
    """Why ``value`` cannot stand for a parameter whose default is ``default`` (None when it can)."""
    if default is None:
        return None
    if _kind(value) != _kind(default):
        return f"expected {_kind(default)} like the rule's default {json.dumps(default, ensure_ascii=False)}, " \
               f"got {json.dumps(value, ensure_ascii=False)}"
    if isinstance(default, list) and default:
        kinds = {_kind(x) for x in default}
        bad = [x for x in value if len(kinds) == 1 and _kind(x) not in kinds]
        if bad:
            return f"expected a list of {next(iter(kinds)).split(' ', 1)[-1]}s like the rule's default, " \
                   f"got {json.dumps(bad[0], ensure_ascii=False)} in it"
    if isinstance(default, dict):
        for k, x in value.items():
            why = _type_error(default.get(k, next(iter(default.values()), None)), x)
            if why:
                return f"{k}: {why}"
    return None


def check_param_types(profile: Profile, policy: dict[str, Any]) -> None:
    """Refuse an inventory parameter override whose type differs from the rule's default (``max_idle_seconds:
    lots`` would otherwise compare as null and quietly leave the rule unknown): ConfigError with file:line:key."""
    layers: list[tuple[str, Any]] = [("params", policy.get("params"))]
    for scope in ("zones", "roles", "hosts"):
        for name, body in (policy.get(scope) or {}).items():
            layers.append((f"{scope}.{name}.params", (body or {}).get("params") if isinstance(body, dict) else None))
    lines = policy.get("__source__") or {}
    for where, layer in layers:
        if not isinstance(layer, dict):
            continue
        for k, v in layer.items():
            rule_id, _, name = k.rpartition(".") if "." in k else ("", "", k)
            for rule in profile.rules:
                if (rule_id and rule.id != rule_id) or name not in rule.params:
                    continue
                why = _type_error(rule.params[name], v)
                if why:
                    src = lines.get(f"{where}.{k}", "inventory")
                    path, _, line = src.rpartition(":")
                    raise ConfigError(path or src, int(line) if line.isdigit() else None, f"policy.{where}.{k}",
                                      f"{why} (rule {rule.id}, {rule.source})")


def _codes(rule: Rule, fact_status: dict[str, dict[str, Any]], statuses: tuple[str, ...]) -> dict[str, Any]:
    """``reason_codes``: why an unknown verdict lacks evidence, as the closed set of probes.base.ReasonCode —
    the codes of the rule's facts in ``statuses`` (the code each fact carries; its words only when it has none)."""
    codes = []
    for f in rule.facts:
        st = fact_status.get(f) or {}
        if st.get("status") in statuses:
            code = st.get("reason_code") or classify_reason(st.get("reason")).value
            if code not in codes:
                codes.append(code)
    return {"reason_codes": codes} if codes else {}


class Evaluator:
    def __init__(self, profile: Profile, policy: dict[str, Any], waivers: list[dict[str, Any]],
                 today: Optional[dt.date] = None, inventory: Optional[dict[str, Any]] = None) -> None:
        self.profile = profile
        self.inventory = inventory or {}  # networks and organisation-wide declarations, for run-scope rules
        self.policy = policy or {}
        check_param_types(profile, self.policy)
        self.today = today or dt.date.today()
        self.waivers = parse_waivers(waivers, {r.id for r in profile.rules}, self.today)
        self.deviations: list[dict[str, Any]] = []
        self._dev_at: dict[int, tuple[int, int]] = {}  # deviation -> (rule, host) position, for a stable order
        self._lock = threading.Lock()  # hosts may be judged by the collector's workers, concurrently
        self._pos: dict[int, tuple[int, int]] = {}  # thread -> (rule, host) being judged

    # -- parameters -------------------------------------------------------------------------
    def params(self, rule: Rule, meta: dict[str, Any]) -> dict[str, Any]:
        """Rule defaults, then inventory overrides: global < zone < role < host. Loosening is recorded."""
        out = dict(rule.params)
        layers: list[tuple[str, dict[str, Any]]] = [("policy.params", self.policy.get("params") or {})]
        zone = meta.get("zone")
        if zone and zone in (self.policy.get("zones") or {}):
            layers.append((f"policy.zones.{zone}", (self.policy["zones"][zone] or {}).get("params") or {}))
        for role in meta.get("roles") or []:
            if role in (self.policy.get("roles") or {}):
                layers.append((f"policy.roles.{role}", (self.policy["roles"][role] or {}).get("params") or {}))
        name = meta.get("name")
        if name in (self.policy.get("hosts") or {}):
            layers.append((f"policy.hosts.{name}", (self.policy["hosts"][name] or {}).get("params") or {}))
        set_at: dict[str, str] = {}
        for where, layer in layers:
            for k, v in layer.items():
                key = k.split(".", 1)[1] if k.startswith(rule.id + ".") else k
                if "." in k and not k.startswith(rule.id + "."):
                    continue
                if key in out:
                    out[key] = v
                    set_at[key] = where
        for k, lim in rule.guide_limits.items():
            v = out.get(k)
            if not isinstance(v, (int, float)):
                continue
            looser = ("max" in lim and v > lim["max"]) or ("min" in lim and v < lim["min"])
            if looser:
                dev = {"rule": rule.id, "param": k, "value": v, "guide_limit": lim, "set_at": set_at.get(k),
                       "set_by": self.policy.get("set_by"), "host": name}
                with self._lock:
                    if dev not in self.deviations:
                        self.deviations.append(dev)
                        self._dev_at[id(dev)] = (self._pos.get(threading.get_ident(), (-1, -1)))
        return out

    # -- applicability --------------------------------------------------------------------------
    def applies(self, rule: Rule, meta: dict[str, Any], ctx: dict[str, Any],
                static_only: bool = False) -> Optional[str | dict[str, str]]:
        """None when the rule applies, else the reason it does not (in words, never a rule expression).

        The inventory-declared parts (roles, zones, transports) are checked before facts are
        required, so a rule for web servers is "not applicable" on a database host even when a
        fact is missing; conditions on facts (OS family, ``when``) only once the facts are there.
        """
        a = rule.applies
        roles = set(meta.get("roles") or [])
        if a.get("roles") and not roles & set(a["roles"]):
            return f"applies to roles {', '.join(a['roles'])} only"
        if a.get("not_roles") and roles & set(a["not_roles"]):
            return f"does not apply to roles {', '.join(a['not_roles'])}"
        if a.get("zones") and meta.get("zone") not in a["zones"]:
            return f"applies to zones {', '.join(a['zones'])} only"
        if a.get("transports") and meta.get("transport") not in a["transports"]:
            return f"applies to transports {', '.join(a['transports'])} only"
        if static_only:
            return None
        if a.get("os_families"):
            fam = ((ctx.get("os") or {}).get("family")) or ((ctx.get("identity") or {}).get("os") or {}).get("id")
            if fam is None:
                return None  # unknown OS: evaluate, the facts will say what they can
            if fam not in a["os_families"]:
                return f"applies to OS families {', '.join(a['os_families'])} only"
        if a.get("when"):
            try:
                if not truthy(evaluate(bind_params(a["when"], ctx.get("params") or {}), ctx)):
                    return a.get("why") or {"ko": "이 호스트에는 적용 조건이 성립하지 않음",
                                            "en": "the rule's applicability condition does not hold for this host"}
            except ExprError as e:
                return f"applicability error: {e}"
        return None

    # -- one rule on one subject ------------------------------------------------------------------
    def evaluate_rule(self, rule: Rule, meta: dict[str, Any], ctx: dict[str, Any],
                      fact_status: dict[str, dict[str, Any]]) -> dict[str, Any]:
        finding: dict[str, Any] = {"rule": rule.id, "level": rule.level, "items": rule.items}
        P = ctx.get("params") or {}
        missing = []
        for f in rule.facts:
            st = fact_status.get(f)
            if st is None and f == "network_scan" and rule.vantage:
                missing.append(f"no network scan from the {rule.vantage!r} vantage in this run; run "
                               f"`scan --only network --vantage {rule.vantage}` there and `merge` the bundles")
            elif st is None:
                missing.append(f"{f}: not collected (no such fact in this run)")
            elif st.get("status") == "not_collected":
                missing.append(f"{f}: {st.get('reason') or 'not collected'}")
        reason = self.applies(rule, meta, ctx, static_only=bool(missing))
        if reason is not None:
            return {**finding, "status": NA, "detail": reason if isinstance(reason, dict) else {"ko": reason, "en": reason}}
        if not missing and rule.vantage:
            seen = {s.get("vantage") for s in (ctx.get("network_scan") or {}).get("scans", []) or []
                    if not s.get("error")}
            if rule.vantage not in seen:
                missing.append(f"no network scan from the {rule.vantage!r} vantage "
                               f"(scanned from: {', '.join(sorted(x for x in seen if x)) or 'nowhere'}); "
                               f"run `scan --only network --vantage {rule.vantage}` there and `merge` the bundles")
        if missing:
            return {**finding, "status": UNK, "detail": {"ko": "증적 수집 불가 — " + "; ".join(missing),
                                                         "en": "evidence not collected — " + "; ".join(missing)},
                    **_codes(rule, fact_status, ("not_collected",))}
        try:
            unobserved = self._unobserved(rule, ctx, P)
            if rule.requirements:
                status, detail, reqs = self._requirements(rule, ctx, P, unobserved)
                finding["requirements"] = reqs
            else:
                status, detail = self._pass_fail(rule, ctx, P, unobserved)
            advice = [{"ko": render(m.ko, ctx, params=P), "en": render(m.en, ctx, params=P)} for m in rule.advice
                      if truthy(evaluate(bind_params(m.when, P), ctx))]
        except ExprError as e:
            return {**finding, "status": UNK, "detail": {"ko": f"규칙 평가 오류: {e}", "en": f"rule error: {e}"}}
        if status == UNK and detail is None:
            detail = self._why_unknown(rule, ctx, P, fact_status, unobserved)
        if status == UNK:
            finding.update(_codes(rule, fact_status, ("partial",)))
        affirmed = [a for a in unobserved if a.get("affirmed")]
        if affirmed and status in (IMPL, PART):
            finding["affirmed"] = [{"of": a["of"], "by": a["affirmed"]} for a in affirmed]
        finding.update(status=status, detail=detail)
        if advice:
            finding["advice"] = advice
        if status == NI:
            w = self.waiver(rule.id, meta.get("name"))
            if w is not None:
                finding["waiver"] = w
                if w["active"]:
                    finding["status"] = NA
                    finding["excepted"] = True
        return finding

    # -- the parts of a verdict --------------------------------------------------------------------
    def _unobserved(self, rule: Rule, ctx: dict[str, Any], P: dict[str, Any]) -> list[dict[str, Any]]:
        """The ``observed`` sets that are empty or missing: a pass over them would be vacuous.

        Each entry says why (the rule's own words) and, when the inventory affirms the emptiness
        (``affirmed_by``), by whom: an affirmed entry lets the pass stand and is named in the verdict.
        """
        out = []
        for o in rule.observed:
            if observed(evaluate(bind_params(o.of, P), ctx)):
                continue
            by = evaluate(bind_params(o.affirmed_by, P), ctx) if o.affirmed_by else None
            out.append({"of": o.of, "ko": render(o.ko, ctx, params=P), "en": render(o.en, ctx, params=P),
                        "affirmed": by if truthy(by) else None})
        return out

    @staticmethod
    def _vacuous(unobserved: list[dict[str, Any]]) -> Optional[dict[str, str]]:
        gaps = [u for u in unobserved if not u.get("affirmed")]
        if not gaps:
            return None
        return {"ko": "양성 증적 없음(빈 집합에 대한 통과는 증적이 아님) — " + "; ".join(u["ko"] for u in gaps),
                "en": "no positive observation (a pass over an empty set is not evidence) — "
                      + "; ".join(u["en"] for u in gaps)}

    @staticmethod
    def _affirmation_note(unobserved: list[dict[str, Any]], lang: str) -> str:
        notes = [u for u in unobserved if u.get("affirmed")]
        if not notes:
            return ""
        word = " — 인벤토리 선언: " if lang == "ko" else " — declared in the inventory: "
        return word + "; ".join(f"{u[lang]} ({fmt(u['affirmed'])})" for u in notes)

    def _pass_fail(self, rule: Rule, ctx: dict[str, Any], P: dict[str, Any],
                   unobserved: list[dict[str, Any]]) -> tuple[str, Optional[dict[str, str]]]:
        failed = [{"ko": render(m.ko, ctx, params=P), "en": render(m.en, ctx, params=P)} for m in rule.fail
                  if truthy(evaluate(bind_params(m.when, P), ctx))]
        if failed:
            return NI, {"ko": "; ".join(x["ko"] for x in failed), "en": "; ".join(x["en"] for x in failed)}
        if rule.passes is not None and truthy(evaluate(bind_params(rule.passes.when, P), ctx)):
            vacuous = self._vacuous(unobserved)
            if vacuous is not None:
                return UNK, vacuous
            return IMPL, {lang: render(getattr(rule.passes, lang), ctx, params=P)
                          + self._affirmation_note(unobserved, lang) for lang in ("ko", "en")}
        return UNK, None

    def _requirements(self, rule: Rule, ctx: dict[str, Any], P: dict[str, Any], unobserved: list[dict[str, Any]]
                      ) -> tuple[str, Optional[dict[str, str]], list[dict[str, Any]]]:
        """Each requirement met, not met or unknown; the rule's verdict is their aggregate (guide Section IV:
        all met → 이행, some → 부분이행, none → 미이행). A rule-level ``fail`` still fails the whole rule."""
        vacuous = self._vacuous(unobserved)
        reqs: list[dict[str, Any]] = []
        for q in rule.requirements:
            failed = [{"ko": render(m.ko, ctx, params=P), "en": render(m.en, ctx, params=P)} for m in q.fail
                      if truthy(evaluate(bind_params(m.when, P), ctx))]
            if failed:
                st, det = NI, {"ko": "; ".join(x["ko"] for x in failed), "en": "; ".join(x["en"] for x in failed)}
            elif truthy(evaluate(bind_params(q.passes.when, P), ctx)) and vacuous is None:
                st, det = IMPL, {"ko": render(q.passes.ko, ctx, params=P), "en": render(q.passes.en, ctx, params=P)}
            else:
                st, det = UNK, None
            reqs.append({"id": q.id, "title": q.title, "status": st, "detail": det})
        status = aggregate(r["status"] for r in reqs)
        whole = [{"ko": render(m.ko, ctx, params=P), "en": render(m.en, ctx, params=P)} for m in rule.fail
                 if truthy(evaluate(bind_params(m.when, P), ctx))]
        if whole:
            return NI, {"ko": "; ".join(x["ko"] for x in whole), "en": "; ".join(x["en"] for x in whole)}, reqs
        if status == UNK and vacuous is not None:
            return UNK, vacuous, reqs
        if status == UNK:
            return UNK, None, reqs
        mark = {IMPL: "충족", NI: "미충족", UNK: "확인불가"}, {IMPL: "met", NI: "not met", UNK: "unknown"}
        detail = {}
        for lang, marks in zip(("ko", "en"), mark):
            parts = []
            for r in reqs:
                text = (r["detail"] or {}).get(lang) or ""
                parts.append(f"[{marks.get(r['status'], r['status'])}] {r['title'][lang]}" + (f": {text}" if text else ""))
            detail[lang] = "; ".join(parts) + (self._affirmation_note(unobserved, lang) if status == IMPL else "")
        return status, detail, reqs

    def _why_unknown(self, rule: Rule, ctx: dict[str, Any], P: dict[str, Any],
                     fact_status: dict[str, dict[str, Any]],
                     unobserved: Optional[list[dict[str, Any]]] = None) -> dict[str, str]:
        try:
            explained = next(({"ko": render(m.ko, ctx, params=P), "en": render(m.en, ctx, params=P)}
                              for m in rule.unknown if truthy(evaluate(bind_params(m.when, P), ctx))), None)
        except ExprError:
            explained = None
        if explained:
            return explained
        partial = [f"{f}: {fact_status[f].get('reason')}" for f in rule.facts
                   if fact_status.get(f, {}).get("status") == "partial"]
        gaps = self._vacuous(unobserved or [])  # else the rule's own words for what was not seen
        if gaps and not partial:
            return gaps
        why = "; ".join(partial) or "the facts do not show the control in place"
        return {"ko": f"증적 불충분 — {why}", "en": f"insufficient evidence — {why}"}

    def waiver(self, rule_id: str, host: Optional[str]) -> Optional[dict[str, Any]]:
        for w in self.waivers:
            if w["rule"] == rule_id and w["host"] in ("*", host):
                return w
        return None

    # -- whole run -------------------------------------------------------------------------------
    def _judge(self, ri: int, si: int, rule: Rule, meta: dict[str, Any], ctx: dict[str, Any],
               fstatus: dict[str, Any], collected: bool, error: Optional[str], ev: list[str],
               error_code: Optional[str] = None) -> dict[str, Any]:
        self._pos[threading.get_ident()] = (ri, si)
        ctx["params"] = self.params(rule, meta)
        if not collected:
            f = {"rule": rule.id, "level": rule.level, "items": rule.items, "status": UNK,
                 "detail": {"ko": f"호스트 수집 실패: {error}", "en": f"host not collected: {error}"},
                 "reason_codes": [error_code or classify_reason(error).value]}
        else:
            f = self.evaluate_rule(rule, meta, ctx, fstatus)
        f["evidence"] = sorted(set(ev))
        f["params"] = {k: ctx["params"][k] for k in rule.params}
        return f

    def judge_host(self, si: int, h: HostInput, run_facts: dict[str, dict[str, Any]],
                   run_evidence: dict[str, list[str]]) -> list[tuple[int, dict[str, Any]]]:
        """Every host-scope rule on one host: ``(rule index, finding)``. Pure apart from deviations (locked),
        so the collector's workers call it as each host finishes, overlapping evaluation with collection;
        ``run`` then only assembles. ``si`` is the host's position in the inventory (orders deviations)."""
        run_ctx = {k: (v.get("data") or {}) for k, v in run_facts.items() if v.get("status") != "not_collected"}
        facts = h.load_facts()
        base = {k: (v.get("data") or {}) for k, v in facts.items() if v.get("status") != "not_collected"}
        if h.owned is None:
            h.owned = netview.host_addresses(h.meta, base)
        view = host_net_view(h.meta, run_ctx, h.owned)
        base.update(view)
        base.update({k: v for k, v in run_ctx.items() if k in RUN_FACTS})
        base["host"] = h.meta
        base["session"] = h.session or {}
        status = dict(facts)
        status.update({k: v for k, v in run_facts.items() if k in RUN_FACTS})
        out = []
        for ri, rule in enumerate(self.profile.rules):
            if rule.scope != "run":
                ev = [e for f in rule.facts for e in (h.evidence.get(f, []) + run_evidence.get(f, []))]
                if rule.scope == HOST_AND_NETWORK:  # the files of its own endpoints and URLs
                    ev = netview.own_evidence(ev, view)
                out.append((ri, self._judge(ri, si, rule, h.meta, dict(base), status, h.collected, h.error, ev,
                                                h.error_code)))
        return out

    def run(self, hosts: list[HostInput], run_facts: dict[str, dict[str, Any]],
            run_evidence: dict[str, list[str]]) -> dict[str, Any]:
        per_item: dict[str, dict[str, dict[str, Any]]] = {}
        net_meta: dict[str, Any] = {"name": NETWORK_HOST, "roles": [], "zone": None, "transport": "network"}
        run_ctx = {k: (v.get("data") or {}) for k, v in run_facts.items() if v.get("status") != "not_collected"}
        rules = list(self.profile.rules)
        # Host rules are judged one host at a time (its facts read once, then dropped: memory stays flat on
        # large fleets), or were judged already by the collector; results keep the order of a rule-by-rule
        # pass: records are laid out first in that order, and deviations are sorted back into it at the end.
        for rule in rules:
            names = [NETWORK_HOST] if rule.scope == "run" else [h.meta["name"] for h in hosts] + (
                [NETWORK_HOST] if rule.scope == HOST_AND_NETWORK else [])
            for item in rule.items:
                slot = per_item.setdefault(item, {})
                for n in names:
                    slot.setdefault(n, {"name": n, "findings": [], "evidence": []})

        def place(name: str, rule: Rule, f: dict[str, Any]) -> None:
            for item in rule.items:
                hrec = per_item[item][name]
                hrec["findings"].append(f)
                hrec["evidence"] = sorted(set(hrec["evidence"]) | set(f["evidence"]))

        # Run-scope rules and the network row see what no inventory host owns: every host's addresses first.
        for h in hosts:
            if h.owned is None:
                facts = h.load_facts()
                h.owned = netview.host_addresses(h.meta, {k: (v.get("data") or {}) for k, v in facts.items()
                                                          if v.get("status") != "not_collected"})
        net_ctx = dict(run_ctx)
        net_ctx.update(netview.network_view(run_ctx, {h.meta["name"]: h.owned or [] for h in hosts}))
        net_ctx["inventory"] = {"hosts": [{**h.meta, "owned": h.owned} for h in hosts],
                                "networks": self.inventory.get("networks") or [],
                                "declared": self.inventory.get("declared") or {}}
        net_ctx["host"] = net_meta
        for ri, rule in enumerate(rules):
            if rule.scope in ("run", HOST_AND_NETWORK):
                ev = [e for f in rule.facts for e in run_evidence.get(f, [])]
                if rule.scope == HOST_AND_NETWORK:
                    ev = netview.own_evidence(ev, net_ctx)
                place(NETWORK_HOST, rule, self._judge(ri, -1, rule, net_meta, dict(net_ctx), run_facts, True, None,
                                                      ev))
        for si, h in enumerate(hosts):
            judged = h.judged if h.judged is not None else self.judge_host(si, h, run_facts, run_evidence)
            for ri, f in judged:
                place(h.meta["name"], rules[ri], f)
        self.deviations.sort(key=lambda d: self._dev_at.get(id(d), (-1, -1)))
        controls = []
        for c in self.profile.catalog.controls:
            cid = str(c["id"])
            hosts_rec = list(per_item.get(cid, {}).values())
            for hr in hosts_rec:
                hr["status"] = aggregate(x["status"] for x in hr["findings"])
            rec: dict[str, Any] = {"id": cid, "title": c.get("ko"), "title_en": c.get("en"),
                                   "mode": c.get("mode", "manual")}
            if hosts_rec:
                rec["status"] = aggregate(hr["status"] for hr in hosts_rec)
                rec["hosts"] = hosts_rec
            else:
                rec["status"] = UNK
                rec["manual"] = True
                rec["hosts"] = []
                rec["detail"] = {"ko": "수동 점검 필요 (자동 수집 규칙 없음)", "en": "manual check needed (no automated rule)"}
            controls.append(rec)
        return {"controls": controls, "deviations": self.deviations,
                "waivers": [{k: v for k, v in w.items()} for w in self.waivers]}


def host_net_view(meta: dict[str, Any], run_ctx: dict[str, Any], owned: Optional[list[str]] = None) -> dict[str, Any]:
    """What the network probes saw on the addresses this host owns (its declared address, inventory
    aliases, and, given ``owned``, its interfaces' addresses), per vantage: see :mod:`policies.netview`."""
    return netview.host_view(meta, run_ctx, owned if owned is not None else netview.host_addresses(meta, {}))

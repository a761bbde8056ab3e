"""Merge bundles from several vantages (or partial runs) into one signed bundle, re-evaluated over the union.

Why: "reachable from outside" (14.2.1, 15.1.1) can only be judged by combining an
internal run with a scan made at an external vantage. Sources are verified first
(a bundle whose signature fails is refused), their manifests and signatures are
kept under ``sources/`` as evidence, and every fact keeps its vantage and time.
"""
from __future__ import annotations

import os
import uuid
from typing import Any, Optional

from collectors import signing
from collectors.bundle import BundleWriter, now_iso, read_json, safe_component
from collectors.safeio import read_regular
from collectors.verify import verify_bundle
from policies.engine import Evaluator, HostInput
from policies.model import load_profile
from policies.netview import dedupe_endpoints, dedupe_sites

from . import __version__
from .run import evaluation_inventory, finalize

SOURCE_FILES = ("manifest.json", "manifest.json.sig", "SHA256SUMS", "SHA256SUMS.sig", "allowed_signers")


class MergeError(ValueError):
    pass


def combine_network(parts: list[tuple[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Network facts of several vantages as one set: scans side by side, each endpoint and URL once with every
    vantage that saw it. Used by ``merge`` and by a distributed run (``agent.dist``), so a run over several
    zones is judged exactly as the merged single-zone runs would be."""
    scans: list[dict[str, Any]] = []
    endpoints: list[dict[str, Any]] = []
    sites: list[dict[str, Any]] = []
    status: dict[str, str] = {}
    for vantage, facts in parts:
        for probe, fact in facts.items():
            data = fact.get("data") or {}
            if probe == "network_scan":
                scans += [{**s, "vantage": s.get("vantage") or vantage} for s in data.get("scans", [])]
            elif probe == "tls":
                endpoints += [{**e, "vantage": e.get("vantage") or vantage} for e in data.get("endpoints", [])]
            elif probe == "web":
                sites += [{**s, "vantage": s.get("vantage") or vantage} for s in data.get("urls", [])]
            if fact.get("status") != "not_collected" or probe not in status:
                status[probe] = fact.get("status", "not_collected")
    run_facts: dict[str, dict[str, Any]] = {}
    for probe, data in (("network_scan", {"scans": scans}), ("tls", {"endpoints": dedupe_endpoints(endpoints)}),
                        ("web", {"urls": dedupe_sites(sites)})):
        if probe in status:
            run_facts[probe] = {"probe": probe, "status": status[probe], "reason": None, "data": data}
    return run_facts


def _index(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["file"]: e for e in results.get("evidence_index", [])}


def merge(sources: list[str], out: str, key: signing.KeyPair, pubkey_text: Optional[str] = None,
          policy_dirs: Optional[list[str]] = None) -> dict[str, Any]:
    if len(sources) < 1:
        raise MergeError("give at least one bundle")
    loaded = []
    for src in sources:
        v = verify_bundle(src, pubkey_text)
        if not v.valid:
            raise MergeError(f"{src}: refusing to merge a bundle that does not verify: {v.problems[0]}")
        try:
            res = read_json(src, "results.json")
            inv = read_json(src, "inventory.json") if os.path.exists(os.path.join(src, "inventory.json")) else {}
        except (OSError, ValueError) as e:
            raise MergeError(f"{src}: cannot read it as a bundle: {e}") from None
        loaded.append((src, res, inv, v.fingerprint))
    profiles = {r["run"]["profile"] for _, r, _, _ in loaded}
    if len(profiles) != 1:
        raise MergeError(f"bundles use different profiles: {', '.join(sorted(profiles))}")
    profile = load_profile(profiles.pop(), policy_dirs)

    writer = BundleWriter(out)
    writer.create()
    merged_from = []
    for i, (src, res, _, fp) in enumerate(loaded, 1):
        dest = f"sources/{i}-{safe_component(os.path.basename(os.path.normpath(src)))}"
        for f in SOURCE_FILES:
            p = os.path.join(src, f)
            if os.path.exists(p):
                os.makedirs(writer.path(dest), exist_ok=True)
                writer.write_bytes(f"{dest}/{f}", read_regular(src, f))
        merged_from.append({"bundle": os.path.basename(os.path.normpath(src)), "run_id": res["run"]["id"],
                            "vantage": res["run"].get("vantage"), "finished": res["run"].get("finished"),
                            "signer": fp, "kept_in": dest})

    # Hosts: the newest collected record wins; a host never collected keeps its newest failure.
    chosen: dict[str, tuple[dict[str, Any], str, dict[str, Any]]] = {}
    for src, res, _, _ in loaded:
        fdir = os.path.join(src, "facts")
        for f in sorted(os.listdir(fdir)) if os.path.isdir(fdir) else []:
            if not f.endswith(".json") or f == "_network.json":
                continue
            rec = read_json(src, f"facts/{f}")
            name = rec["host"]["name"]
            rec["_finished"] = res["run"].get("finished") or ""
            prev = chosen.get(name)
            if prev is None or (rec["collected"], rec["_finished"]) >= (prev[0]["collected"], prev[0]["_finished"]):
                chosen[name] = (rec, src, _index(res))
    hosts_in: list[HostInput] = []
    for name, (rec, src, idx) in chosen.items():
        evidence: dict[str, list[str]] = {}
        for probe, files in (rec.get("evidence") or {}).items():
            evidence[probe] = [writer.copy_evidence(src, f, name, idx.get(f, {})) for f in files]
        rec["evidence"] = evidence
        rec["merged_from"] = os.path.basename(os.path.normpath(src))
        rec.pop("_finished", None)
        writer.write_json(f"facts/{safe_component(name)}.json", rec)
        hosts_in.append(HostInput(meta=rec["host"], collected=rec["collected"], error=rec["error"],
                                  error_code=rec.get("error_code"),
                                  facts=rec.get("facts") or {}, evidence=evidence, session=rec.get("transport")))

    # Network facts: united, each scan/endpoint keeps its vantage and time.
    parts: list[tuple[str, dict[str, Any]]] = []
    run_evidence: dict[str, list[str]] = {}
    for src, res, _, _ in loaded:
        p = os.path.join(src, "facts", "_network.json")
        if not os.path.exists(p):
            continue
        net = read_json(src, "facts/_network.json")
        parts.append((net.get("vantage") or res["run"].get("vantage"), net.get("facts") or {}))
        idx = _index(res)
        for probe in (net.get("facts") or {}):
            run_evidence.setdefault(probe, []).extend(
                writer.copy_evidence(src, f, "network", idx.get(f, {})) for f in (net.get("evidence") or {}).get(probe, []))
    run_facts = combine_network(parts)
    if run_facts:
        writer.write_json("facts/_network.json", {"vantage": "merged", "facts": run_facts, "evidence": run_evidence})

    first_inv = loaded[0][2]
    hosts_meta = {h["name"]: h for _, _, inv, _ in loaded for h in inv.get("hosts", [])}
    allow = sorted({a for _, _, inv, _ in loaded for a in (inv.get("scope") or {}).get("allow", [])})
    deny = sorted({d for _, _, inv, _ in loaded for d in (inv.get("scope") or {}).get("deny", [])})
    merged_inv = {"organisation": first_inv.get("organisation"), "scope": {"allow": allow, "deny": deny},
                  "hosts": list(hosts_meta.values()),
                  "networks": [n for _, _, inv, _ in loaded for n in inv.get("networks", [])],
                  "policy": first_inv.get("policy") or {}, "waivers": first_inv.get("waivers") or [],
                  "declared": first_inv.get("declared") or {}}
    writer.write_json("inventory.json", merged_inv)
    evaluator = Evaluator(profile, merged_inv["policy"], merged_inv["waivers"],
                          inventory=evaluation_inventory(merged_inv))
    run_meta = {"id": str(uuid.uuid4()), "started": now_iso(), "profile": profile.catalog.profile,
                "tool_version": __version__, "vantage": "merged",
                "vantages": sorted({m["vantage"] for m in merged_from if m["vantage"]}),
                "only": sorted({x for _, r, _, _ in loaded for x in r["run"].get("only", [])}),
                "organisation": first_inv.get("organisation"), "scope": merged_inv["scope"],
                "merged_from": merged_from}
    return finalize(writer, evaluator, sorted(hosts_in, key=lambda h: h.meta["name"]), run_facts, run_evidence,
                    run_meta, key, {"merged_from": merged_from})

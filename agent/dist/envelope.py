"""A worker's result as a signed envelope: the controller accepts it only from a key the inventory lists for the
task's zone, for the task it sent, under a size cap.

The signature (SSHSIG, namespace ``evidence-agent-worker``: never valid as a bundle signature) covers the result
with each evidence file's content replaced by its SHA-256, so what is signed is the facts and the evidence hashes,
and the contents are checked against those hashes on arrival. The worker's key is its own: it never holds the
bundle's signing key, and a stolen worker key cannot sign a bundle.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from collectors import signing

NAMESPACE = "evidence-agent-worker"
SCHEMA = "evidence-agent/worker-result/v1"


class Refused(ValueError):
    """A result the controller does not accept; the message is the host's 점검불가 reason."""


def _canonical(body: dict[str, Any]) -> bytes:
    hashed = dict(body)
    hashed["evidence"] = [{**e, "ev": {**e["ev"], "content": {"sha256": hashlib.sha256(
        e["ev"]["content"].encode("utf-8", "surrogatepass")).hexdigest()}}} for e in body.get("evidence") or []]
    return json.dumps(hashed, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def seal(body: dict[str, Any], key: signing.KeyPair) -> dict[str, Any]:
    body = {**body, "schema": SCHEMA}
    return {"body": body, "signature": signing.sign(_canonical(body), key, NAMESPACE)}


def open_result(result: Any, accepted: list[str], task_id: str, zone: str, max_bytes: int) -> tuple[dict[str, Any], str]:
    """(the body, the signer's fingerprint) of a result that is well formed, within the cap, for this task and
    zone, and signed by one of the ``accepted`` public keys; :class:`Refused` with the reason otherwise."""
    if not isinstance(result, dict) or not isinstance(result.get("body"), dict) or not isinstance(
            result.get("signature"), str):
        raise Refused("the worker's result is not a signed evidence-agent result")
    size = len(json.dumps(result).encode())
    if size > max_bytes:
        raise Refused(f"the worker's result is {size} bytes, over the {max_bytes}-byte cap (broker.max_result_bytes)")
    body = result["body"]
    if body.get("schema") != SCHEMA:
        raise Refused("the worker's result has an unknown schema")
    try:
        evs = body.get("evidence") or []
        if not all(isinstance(e, dict) and isinstance(e.get("ev"), dict) and isinstance(e["ev"].get("content"), str)
                   for e in evs):
            raise Refused("the worker's result has malformed evidence")
        pub = signing.verify(_canonical(body), result["signature"], NAMESPACE)
    except signing.SignatureError as e:
        raise Refused(f"the worker's result signature does not verify ({e})") from None
    fp = signing.fingerprint(pub)
    if not any(signing.same_key(pub, signing.load_public(k)) for k in accepted):
        raise Refused(f"result signed by worker key {fp}, which the inventory does not accept for zone {zone!r} "
                      "(workers:)")
    if body.get("task_id") != task_id or body.get("zone") != zone:
        raise Refused(f"result of another task or zone (task {str(body.get('task_id'))[:40]!r}, zone "
                      f"{str(body.get('zone'))[:40]!r}) signed by {fp}")
    return body, fp

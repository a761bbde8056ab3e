"""TLS assessment of endpoints: protocol versions, cipher suites, certificates, known TLS flaws.

Why: 15.4.1 asks that communication with outside parties use secure channels
("안전한 TLS 프로토콜 사용, 안전한 암호알고리즘 및 강도 적용, 상호 인증"), and 12.1.1 that
data in transit be encrypted with safe algorithms. Both are judged from what the
servers actually accept, seen from the network, not from their configuration files.

How: one sslyze :class:`~sslyze.Scanner` for all endpoints, so servers are tested
concurrently (sslyze splits each scan into small one-connection jobs and bounds
connections per server). Every endpoint passes the Scope before sslyze sees it,
and sslyze is handed the already-checked IP address (it never resolves names
itself). An endpoint that cannot be reached, or that the deadline cut short, is
kept with ``status: "unknown"`` and the reason: it is never dropped.

Trust is checked here, offline, against the system CA store and, when given, an
internal CA file (``opts.ca_file``), with the same verifier (``cryptography``'s
RFC 5280 path validation, hostname and validity included) a client would run.
sslyze's own trust stores (Mozilla, Apple, ...) stay in the evidence JSON.

Fact ``tls`` (source ``sslyze``), ``data``::

    {"sslyze_version": str,
     "system_ca_file": str | null,   # the store behind trusted_by_system_store
     "ca_file": str | null,          # internal CA file behind trusted_by_ca_file
     "endpoints": [{
        "host": str, "port": int, "ip": str,
        "server_name": str | null,   # SNI and the name validated against the certificate
        "starttls": str | null,      # smtp, ftp, pop3, imap, ldap, xmpp, xmpp_server, rdp, postgres
        "status": "assessed" | "cleartext" | "unknown",   # cleartext: a STARTTLS service refused the upgrade
        "reason": str | null,        # why unknown (connectivity, deadline ...) or cleartext
        "highest_version": str | null,
        "protocols": {"SSL 2.0"|"SSL 3.0"|"TLS 1.0"|"TLS 1.1"|"TLS 1.2"|"TLS 1.3": bool | null},
        "cipher_suites": {<version>: [{      # accepted suites only
            "name": str,                     # IANA/RFC name
            "openssl_name": str,
            "key_size": int,                 # symmetric key bits (0 for NULL)
            "null": bool, "export": bool, "rc4": bool, "des": bool, "3des": bool, "cbc": bool,
            "anonymous": bool,
            "forward_secrecy": bool,         # authenticated (EC)DHE, or any TLS 1.3 suite
            "ephemeral_key": {"type": str, "size": int} | null}]},
        "certificate": null | {
            "chain": [{                      # as sent by the server, leaf first
                "subject": str, "issuer": str,
                "sans": {"dns": [str], "ip": [str]},
                "serial": str, "sha256": str,
                "not_before": str, "not_after": str,  # ISO-8601 UTC
                "expired": bool, "not_yet_valid": bool,
                "days_left": int,            # whole days to not_after (negative once expired)
                "key_type": str, "key_size": int | null, "curve": str | null,
                "signature_algorithm": str, "signature_hash": str | null,
                "self_signed": bool}],
            "hostname_match": bool,          # leaf SANs (RFC 6125) vs server_name or ip
            "trusted_by_system_store": bool,
            "system_trust_error": str | null,
            "trusted_by_ca_file": bool | null,   # null: no ca_file given
            "ca_file_trust_error": str | null,
            "ocsp_stapling": bool,           # the server stapled an OCSP response
            "ocsp_must_staple": bool,
            "deployments": int},             # distinct leaf certificates the server sent
        "client_cert_requested": "none" | "optional" | "required" | null,   # mTLS
        "hsts": null | {"present": bool, "max_age": int | null,
                        "include_subdomains": bool, "preload": bool},   # HTTPS endpoints only
        "http_error": str | null,            # HTTP request over TLS failed (not an HTTPS service?)
        "vulnerabilities": {
            "heartbleed": bool | null, "ccs_injection": bool | null,
            "robot": str | null,             # sslyze RobotScanResultEnum name
            "robot_vulnerable": bool | null,
            "insecure_renegotiation": bool | null,   # secure renegotiation NOT supported
            "client_renegotiation_dos": bool | null,
            "compression": bool | null,      # CRIME
            "fallback_scsv": bool | null},   # TLS_FALLBACK_SCSV supported (true is good)
        "errors": {<sslyze scan command>: str},   # commands that failed; their fields are null
        "evidence": str | null}]}           # label of this endpoint's sslyze JSON

COLLECTED when every endpoint was assessed, else PARTIAL (each endpoint carries its own status); NOT_COLLECTED
when no endpoint was given. Evidence: sslyze's JSON result per endpoint (items 15.4.1, 12.1.1).

:func:`tls_ports_from_scan` turns a ``network_scan`` fact into endpoints.
"""
from __future__ import annotations

import ipaddress
import json
import re
import ssl
import threading
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from common.scope import Scope

from ..base import Evidence, Fact, fact_from_entries

PROBE = "tls"
ITEMS = ("15.4.1", "12.1.1")

VERSIONS = ("SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3")
_VERSION_CMDS = ("ssl_2_0_cipher_suites", "ssl_3_0_cipher_suites", "tls_1_0_cipher_suites",
                 "tls_1_1_cipher_suites", "tls_1_2_cipher_suites", "tls_1_3_cipher_suites")
_ENUM_TO_VERSION = {"SSL_2_0": "SSL 2.0", "SSL_3_0": "SSL 3.0", "TLS_1_0": "TLS 1.0",
                    "TLS_1_1": "TLS 1.1", "TLS_1_2": "TLS 1.2", "TLS_1_3": "TLS 1.3"}
STARTTLS = ("smtp", "ftp", "pop3", "imap", "ldap", "xmpp", "xmpp_server", "rdp", "postgres")

#: Ports served with TLS from the first byte.
TLS_PORTS = {443, 8443, 465, 993, 995, 636, 990, 992, 994, 5986, 8883}
#: Ports (and nmap service names) whose protocol can upgrade to TLS and that sslyze can drive.
STARTTLS_PORTS = {25: "smtp", 587: "smtp", 110: "pop3", 143: "imap", 21: "ftp", 5432: "postgres",
                  389: "ldap", 5222: "xmpp", 5269: "xmpp_server", 3389: "rdp"}
STARTTLS_SERVICES = {"smtp": "smtp", "submission": "smtp", "pop3": "pop3", "imap": "imap", "ftp": "ftp",
                     "postgresql": "postgres", "ldap": "ldap", "xmpp-client": "xmpp",
                     "xmpp-server": "xmpp_server", "ms-wbt-server": "rdp"}
TLS_SERVICES = {"https", "ssl", "tls", "imaps", "pop3s", "smtps", "ldaps", "ftps", "https-alt"}


#: seconds for the whole TLS family when the inventory's ``tls_options.deadline`` does not say
DEFAULT_DEADLINE = 300.0


@dataclass(frozen=True)
class TlsOptions:
    """How to assess.

    Attributes:
        network_timeout: seconds per connection attempt (sslyze ``network_timeout``).
        network_max_retries: connection retries per attempt.
        per_server_connections: concurrent connections to one endpoint.
        concurrent_servers: endpoints scanned at the same time.
        ca_file: internal CA bundle (PEM): gives ``trusted_by_ca_file``.
        system_ca_file: the system store; None: OpenSSL's default
            (Debian: /etc/ssl/certs/ca-certificates.crt).
        robot: run the ROBOT test (several connections per RSA endpoint).
        http_headers: fetch ``/`` over TLS for HSTS (not on STARTTLS endpoints).
        max_evidence_bytes: cap of each endpoint's sslyze JSON.
    """

    network_timeout: int = 5
    network_max_retries: int = 1
    per_server_connections: int = 5
    concurrent_servers: int = 10
    ca_file: Optional[str] = None
    system_ca_file: Optional[str] = None
    robot: bool = True
    http_headers: bool = True
    max_evidence_bytes: int = 4 * 1024 * 1024


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------
# Endpoints from a network scan

def tls_ports_from_scan(network_scan: Any) -> list[dict[str, Any]]:
    """Endpoints worth a TLS assessment among the open TCP ports of a ``network_scan`` fact.

    Direct TLS: nmap saw TLS (``tunnel: ssl``) or named the service https/ssl/imaps...,
    or the port is a usual TLS port (443, 8443, 465, 993, 995, 636 ...).
    STARTTLS: SMTP (25/587), POP3 (110), IMAP (143), FTP (21), PostgreSQL (5432),
    LDAP (389), XMPP (5222/5269), RDP (3389), by port or nmap service name.
    Accepts the Fact or its ``data`` dict; order follows address then port.
    """
    data = network_scan.data if hasattr(network_scan, "data") else network_scan
    seen: dict[tuple[str, int], dict[str, Any]] = {}
    for scan in (data or {}).get("scans", []):
        for h in scan.get("hosts", []):
            for p in h.get("ports", []):
                if p.get("proto") != "tcp" or p.get("state") != "open":
                    continue
                port = int(p["port"])
                svc = (p.get("service") or "").lower()
                tunnel = (p.get("tunnel") or "").lower()
                starttls = None
                if tunnel == "ssl" or svc in TLS_SERVICES or port in TLS_PORTS:
                    pass
                elif svc in STARTTLS_SERVICES:
                    starttls = STARTTLS_SERVICES[svc]
                elif port in STARTTLS_PORTS and (not svc or p.get("method") != "probed"):
                    starttls = STARTTLS_PORTS[port]
                else:
                    continue
                seen.setdefault((h["address"], port), {"host": h["address"], "port": port,
                                                       "server_name": None, "starttls": starttls})
    return [seen[k] for k in sorted(seen, key=lambda k: (ipaddress.ip_address(k[0]), k[1]))]


# ---------------------------------------------------------------------------------------------
# Certificate analysis (offline)

def _san(cert: Any) -> tuple[list[str], list[str]]:
    from cryptography import x509

    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return ext.get_values_for_type(x509.DNSName), [str(i) for i in ext.get_values_for_type(x509.IPAddress)]


def hostname_matches(dns: Sequence[str], ips: Sequence[str], name: str) -> bool:
    """RFC 6125 matching of a reference name (DNS name or IP) against SAN values (no CN fallback)."""
    try:
        ip = ipaddress.ip_address(name)
        return any(ipaddress.ip_address(i) == ip for i in ips)
    except ValueError:
        pass
    name = name.rstrip(".").lower()
    for pattern in dns:
        p = pattern.rstrip(".").lower()
        if p == name:
            return True
        if p.startswith("*.") and "." in name:
            head, rest = name.split(".", 1)
            if head and rest == p[2:] and rest.count(".") >= 1:
                return True
    return False


def _key_info(cert: Any) -> tuple[str, Optional[int], Optional[str]]:
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size, None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size, key.curve.name
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size, None
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256, None
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456, None
    return type(key).__name__, None, None


def describe_certificate(cert: Any, now: Optional[datetime] = None) -> dict[str, Any]:
    """The fields of one certificate the policies judge (see the schema)."""
    from cryptography.hazmat.primitives import hashes

    now = now or _now()
    nb, na = cert.not_valid_before_utc, cert.not_valid_after_utc
    dns, ips = _san(cert)
    ktype, ksize, curve = _key_info(cert)
    try:
        hash_name = cert.signature_hash_algorithm.name if cert.signature_hash_algorithm else None
    except Exception:  # unsupported algorithm: reported by its OID below
        hash_name = None
    self_signed = False
    if cert.subject == cert.issuer:
        try:
            cert.verify_directly_issued_by(cert)
            self_signed = True
        except Exception:
            self_signed = False
    oid = cert.signature_algorithm_oid
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "sans": {"dns": list(dns), "ip": list(ips)},
        "serial": format(cert.serial_number, "x"),
        "sha256": cert.fingerprint(hashes.SHA256()).hex(),
        "not_before": _iso(nb),
        "not_after": _iso(na),
        "expired": now > na,
        "not_yet_valid": now < nb,
        "days_left": int((na - now).total_seconds() // 86400),
        "key_type": ktype,
        "key_size": ksize,
        "curve": curve,
        "signature_algorithm": getattr(oid, "_name", None) or oid.dotted_string,
        "signature_hash": hash_name,
        "self_signed": self_signed,
    }


class _TrustStore:
    """A PEM bundle loaded once per call, verified offline with cryptography's RFC 5280 verifier."""

    def __init__(self, path: Optional[str]):
        self.path = path
        self.store = None
        self.problem: Optional[str] = None
        if not path:
            self.problem = "no CA file"
            return
        try:
            from cryptography.x509 import load_pem_x509_certificates
            from cryptography.x509.verification import Store

            with warnings.catch_warnings():
                # System bundles carry a few legacy roots (negative serials) cryptography warns about.
                warnings.simplefilter("ignore")
                self.store = Store(load_pem_x509_certificates(Path(path).read_bytes()))
        except Exception as exc:  # unreadable or not PEM: every verification says so
            self.problem = f"CA file {path} not usable: {exc}"

    def verify(self, chain: Sequence[Any], name: str) -> tuple[bool, Optional[str]]:
        if self.store is None:
            return False, self.problem
        from cryptography import x509
        from cryptography.x509.verification import PolicyBuilder, VerificationError

        try:
            subject: Any = x509.IPAddress(ipaddress.ip_address(name))
        except ValueError:
            subject = x509.DNSName(name)
        try:
            verifier = PolicyBuilder().store(self.store).time(_now()).build_server_verifier(subject)
            verifier.verify(chain[0], list(chain[1:]))
            return True, None
        except VerificationError as exc:
            return False, str(exc)
        except Exception as exc:  # malformed certificates the verifier refuses outright
            return False, f"{type(exc).__name__}: {exc}"


def _system_ca_file(opts: TlsOptions) -> Optional[str]:
    if opts.system_ca_file:
        return opts.system_ca_file
    paths = ssl.get_default_verify_paths()
    for p in (paths.cafile, paths.openssl_cafile, "/etc/ssl/certs/ca-certificates.crt"):
        if p and Path(p).is_file():
            return p
    return None


# ---------------------------------------------------------------------------------------------
# sslyze result → fact entry

def _trace_text(trace: Any) -> str:
    if trace is None:
        return "unknown error"
    try:
        return "".join(trace.format_exception_only()).strip().splitlines()[-1][:500]
    except Exception:
        return str(trace)[:500]


def cipher_flags(name: str, openssl_name: str, key_size: int, anonymous: bool,
                 version: str) -> dict[str, Any]:
    """Weakness flags of one cipher suite, from its IANA name."""
    n = name.upper()
    tls13 = version == "TLS 1.3"
    anon = anonymous or "_ANON_" in n or openssl_name.startswith(("ADH-", "AECDH-"))
    return {
        "name": name,
        "openssl_name": openssl_name,
        "key_size": key_size,
        "null": "WITH_NULL" in n or n.startswith("TLS_NULL") or n.endswith("_NULL_MD5") or key_size == 0,
        "export": "EXPORT" in n,
        "rc4": "RC4" in n,
        "des": bool(re.search(r"(?<!3)DES(40)?_", n)) and "3DES" not in n,
        "3des": "3DES" in n or "DES_192_EDE3" in n,
        "cbc": "_CBC" in n,
        "anonymous": anon,
        "forward_secrecy": tls13 or (not anon and ("_DHE_" in n or "_ECDHE_" in n)),
    }


def _attempt(all_attempts: Any, cmd: str, errors: dict[str, str]) -> Any:
    att = getattr(all_attempts, cmd, None)
    if att is None:
        return None
    status = getattr(att.status, "value", str(att.status))
    if status == "COMPLETED":
        return att.result
    if status == "ERROR":
        reason = getattr(att.error_reason, "value", str(att.error_reason))
        errors[cmd] = f"{reason}: {_trace_text(att.error_trace)}"
    return None


def _entry_from_result(entry: dict[str, Any], res: Any, system: _TrustStore,
                       custom: Optional[_TrustStore]) -> None:
    conn = res.connectivity_result
    if res.scan_result is None or conn is None:
        trace = res.connectivity_error_trace
        if entry["starttls"] and getattr(getattr(trace, "exc_type", None), "__name__", "") == \
                "ServerRejectedOpportunisticTlsNegotiation":
            # the service answered and refused the upgrade: it speaks cleartext (a finding), not a failed assessment
            entry["status"] = "cleartext"
            said = re.findall(r'"([^"]{1,200})"', _trace_text(trace))  # sslyze's message without the address
            entry["reason"] = f"{entry['starttls']} service refused the TLS upgrade" + (f" ({said[-1]})" if said else "")
            return
        entry["status"] = "unknown"
        entry["reason"] = f"no TLS connection: {_trace_text(trace)}"
        return
    entry["status"] = "assessed"
    entry["highest_version"] = _ENUM_TO_VERSION.get(conn.highest_tls_version_supported.name)
    entry["client_cert_requested"] = {"DISABLED": "none", "OPTIONAL": "optional",
                                      "REQUIRED": "required"}.get(conn.client_auth_requirement.value)
    sr = res.scan_result
    errors: dict[str, str] = {}
    for version, cmd in zip(VERSIONS, _VERSION_CMDS):
        r = _attempt(sr, cmd, errors)
        if r is None:
            entry["protocols"][version] = None
            continue
        entry["protocols"][version] = bool(r.accepted_cipher_suites)
        suites = []
        for acc in r.accepted_cipher_suites:
            cs = acc.cipher_suite
            d = cipher_flags(cs.name, cs.openssl_name, cs.key_size, cs.is_anonymous, version)
            ek = acc.ephemeral_key
            d["ephemeral_key"] = None if ek is None else {"type": getattr(ek.type, "name", str(ek.type)),
                                                          "size": ek.size}
            suites.append(d)
        if suites:
            entry["cipher_suites"][version] = suites

    ci = _attempt(sr, "certificate_info", errors)
    if ci is not None and ci.certificate_deployments:
        dep = ci.certificate_deployments[0]
        chain = dep.received_certificate_chain
        now = _now()
        name = entry["server_name"] or entry["ip"]
        dns, ips = _san(chain[0])
        ok_sys, err_sys = system.verify(chain, name)
        cert: dict[str, Any] = {
            "chain": [describe_certificate(c, now) for c in chain],
            "hostname_match": hostname_matches(dns, ips, name),
            "trusted_by_system_store": ok_sys,
            "system_trust_error": err_sys,
            "trusted_by_ca_file": None,
            "ca_file_trust_error": None,
            "ocsp_stapling": dep.ocsp_response is not None,
            "ocsp_must_staple": bool(dep.leaf_certificate_has_must_staple_extension),
            "deployments": len(ci.certificate_deployments),
        }
        if custom is not None:
            cert["trusted_by_ca_file"], cert["ca_file_trust_error"] = custom.verify(chain, name)
        entry["certificate"] = cert

    v = entry["vulnerabilities"]
    r = _attempt(sr, "heartbleed", errors)
    v["heartbleed"] = None if r is None else bool(r.is_vulnerable_to_heartbleed)
    r = _attempt(sr, "openssl_ccs_injection", errors)
    v["ccs_injection"] = None if r is None else bool(r.is_vulnerable_to_ccs_injection)
    r = _attempt(sr, "robot", errors)
    if r is not None:
        v["robot"] = r.robot_result.name
        v["robot_vulnerable"] = r.robot_result.name.startswith("VULNERABLE")
    r = _attempt(sr, "session_renegotiation", errors)
    if r is not None:
        v["insecure_renegotiation"] = not r.supports_secure_renegotiation
        v["client_renegotiation_dos"] = bool(r.is_vulnerable_to_client_renegotiation_dos)
    r = _attempt(sr, "tls_compression", errors)
    v["compression"] = None if r is None else bool(r.supports_compression)
    r = _attempt(sr, "tls_fallback_scsv", errors)
    v["fallback_scsv"] = None if r is None else bool(r.supports_fallback_scsv)
    r = _attempt(sr, "http_headers", errors)
    if r is not None:
        if r.http_error_trace is not None:
            entry["http_error"] = _trace_text(r.http_error_trace)
        else:
            h = r.strict_transport_security_header
            entry["hsts"] = {"present": h is not None,
                             "max_age": None if h is None else h.max_age,
                             "include_subdomains": bool(h and h.include_subdomains),
                             "preload": bool(h and h.preload)}
    entry["errors"] = errors


def _blank_entry(ep: Mapping[str, Any], ip: Optional[str]) -> dict[str, Any]:
    return {
        "host": str(ep["host"]), "port": int(ep["port"]), "ip": ip,
        "server_name": ep.get("server_name") or None, "starttls": ep.get("starttls") or None,
        "status": "unknown", "reason": None, "highest_version": None,
        "protocols": {v: None for v in VERSIONS}, "cipher_suites": {},
        "certificate": None, "client_cert_requested": None, "hsts": None, "http_error": None,
        "vulnerabilities": {"heartbleed": None, "ccs_injection": None, "robot": None,
                            "robot_vulnerable": None, "insecure_renegotiation": None,
                            "client_renegotiation_dos": None, "compression": None, "fallback_scsv": None},
        "errors": {}, "evidence": None,
    }


def _server_name(ep: Mapping[str, Any]) -> Optional[str]:
    """The name to send as SNI and validate: explicit server_name, else a non-IP host."""
    if ep.get("server_name"):
        return str(ep["server_name"])
    try:
        ipaddress.ip_address(str(ep["host"]))
        return None
    except ValueError:
        return str(ep["host"])


def _label(ep: Mapping[str, Any]) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"tls_{ep['host']}_{ep['port']}")[:80]


def assess_tls(
    endpoints: Sequence[Mapping[str, Any]],
    scope: Scope,
    opts: TlsOptions,
    deadline: float,
) -> Fact:
    """Assess every endpoint (``host``, ``port``, optional ``server_name`` and ``starttls``).

    Raises :class:`common.scope.ScopeError` before any connection when an endpoint
    is out of scope, ValueError on an unknown ``starttls``.
    """
    from sslyze import (CertificateInfoExtraArgument, ProtocolWithOpportunisticTlsEnum, ScanCommand,
                        ScanCommandsExtraArguments, Scanner, ServerNetworkConfiguration,
                        ServerNetworkLocation, ServerScanRequest)
    from sslyze.__version__ import __version__ as sslyze_version
    from sslyze.json.json_output import ServerScanResultAsJson

    # Scope for every endpoint before the first connection.
    checked = []
    for ep in endpoints:
        st = ep.get("starttls")
        if st and st not in STARTTLS:
            raise ValueError(f"endpoint {ep['host']}:{ep['port']}: unknown starttls {st!r} "
                             f"(one of {STARTTLS})")
        ip = scope.check_address(str(ep["host"]), f"TLS endpoint {ep['host']}:{ep['port']}")
        checked.append((ep, ip))

    sys_path = _system_ca_file(opts)
    system = _TrustStore(sys_path)
    custom = _TrustStore(opts.ca_file) if opts.ca_file else None
    data: dict[str, Any] = {"sslyze_version": sslyze_version, "system_ca_file": sys_path,
                            "ca_file": opts.ca_file, "endpoints": []}
    entries: list[dict[str, Any]] = []
    requests: dict[Any, tuple[dict[str, Any], Mapping[str, Any]]] = {}
    reqs: list[Any] = []
    base_cmds = {ScanCommand(c) for c in _VERSION_CMDS} | {
        ScanCommand.CERTIFICATE_INFO, ScanCommand.TLS_COMPRESSION, ScanCommand.HEARTBLEED,
        ScanCommand.OPENSSL_CCS_INJECTION, ScanCommand.SESSION_RENEGOTIATION, ScanCommand.TLS_FALLBACK_SCSV}
    if opts.robot:
        base_cmds.add(ScanCommand.ROBOT)
    extra = ScanCommandsExtraArguments()
    if opts.ca_file and Path(opts.ca_file).is_file():
        extra = ScanCommandsExtraArguments(certificate_info=CertificateInfoExtraArgument(Path(opts.ca_file)))
    for ep, ip in checked:
        entry = _blank_entry(ep, ip)
        entry["server_name"] = _server_name(ep)
        entries.append(entry)
        scope.check_address(ip, f"TLS endpoint {ep['host']}:{ep['port']}")  # defence in depth
        name = entry["server_name"] or ip
        try:
            location = ServerNetworkLocation(hostname=name, port=int(ep["port"]), ip_address=ip)
            st = entry["starttls"]
            netcfg = ServerNetworkConfiguration(
                tls_server_name_indication=name,
                tls_opportunistic_encryption=ProtocolWithOpportunisticTlsEnum[st.upper()] if st else None,
                network_timeout=max(1, int(opts.network_timeout)),
                network_max_retries=max(0, int(opts.network_max_retries)),
            )
            cmds = set(base_cmds)
            if opts.http_headers and not st:
                cmds.add(ScanCommand.HTTP_HEADERS)
            req = ServerScanRequest(server_location=location, network_configuration=netcfg,
                                    scan_commands=cmds, scan_commands_extra_arguments=extra)
        except Exception as exc:
            entry["reason"] = f"cannot prepare the scan: {exc}"
            continue
        requests[req.uuid] = (entry, ep)
        reqs.append(req)

    results: dict[Any, Any] = {}
    failure: list[str] = []
    done = threading.Event()
    if requests and time.monotonic() < deadline:
        scanner = Scanner(per_server_concurrent_connections_limit=max(1, opts.per_server_connections),
                          concurrent_server_scans_limit=max(1, opts.concurrent_servers))

        def run() -> None:
            try:
                scanner.queue_scans(reqs)
                for res in scanner.get_results():
                    results[res.uuid] = res
            except Exception as exc:  # a bug or environment problem: endpoints stay unknown with it
                failure.append(f"{type(exc).__name__}: {exc}")
            finally:
                done.set()

        # sslyze's worker threads are daemons and every connection has network_timeout: when the
        # deadline comes first, we stop waiting and report the rest as unknown.
        threading.Thread(target=run, name="ea-sslyze", daemon=True).start()
        done.wait(timeout=max(0.0, deadline - time.monotonic()))
    elif requests:
        failure.append("deadline reached before the TLS scan started")

    evidence: list[Evidence] = []
    for uuid, (entry, ep) in list(requests.items()):
        res = results.get(uuid)
        if res is None:
            entry["reason"] = failure[0] if failure else \
                "deadline reached before this endpoint's scan finished"
            content = json.dumps({"endpoint": {k: entry[k] for k in ("host", "port", "ip", "server_name",
                                                                       "starttls")},
                                  "status": "unknown", "reason": entry["reason"]}, indent=2)
        else:
            try:
                _entry_from_result(entry, res, system, custom)
            except Exception as exc:  # a result we cannot read is reported, not raised
                entry["status"] = "unknown"
                entry["reason"] = f"sslyze result not readable: {type(exc).__name__}: {exc}"
            try:
                content = ServerScanResultAsJson.model_validate(res).model_dump_json(indent=2)
            except Exception as exc:
                content = json.dumps({"error": f"sslyze JSON export failed: {exc}"})
        if len(content) > opts.max_evidence_bytes:
            content = content[: opts.max_evidence_bytes] + "\n... (cut by evidence-agent)\n"
        label = _label(ep)
        entry["evidence"] = label
        evidence.append(Evidence(
            label=label,
            command=f"sslyze {sslyze_version} (Python API) scan of {entry['ip']}:{entry['port']}"
                    + (f" (SNI {entry['server_name']})" if entry["server_name"] else "")
                    + (f" STARTTLS {entry['starttls']}" if entry["starttls"] else ""),
            content=content,
            collected_at=_iso(_now()),
            items=ITEMS,
            ext="json",
            description_ko=f"{entry['host']}:{entry['port']} TLS 설정 점검 결과 (sslyze)",
            description_en=f"TLS assessment of {entry['host']}:{entry['port']} (sslyze)",
        ))
    for entry in entries:
        if entry["status"] == "unknown" and not entry["reason"]:
            entry["reason"] = "not scanned"
    data["endpoints"] = entries
    return _fact(data, evidence)


def _fact(data: dict[str, Any], evidence: list[Evidence]) -> Fact:
    # a cleartext endpoint was looked at to the end (it refused TLS): it counts as done, like an assessed one
    done = [{**e, "status": "assessed"} if e["status"] == "cleartext" else e for e in data["endpoints"]]
    return fact_from_entries(PROBE, data, done, "assessed", lambda e: f"{e['host']}:{e['port']}",
                             "sslyze", evidence, "no TLS endpoint given")

"""``evidence-agent``: collect signed security evidence for the financial-sector open-API self-check guide.

Exit codes (stable, for scripts):
  0  done (scan: the run completed, whatever the verdicts; verify: bundle valid)
  1  invalid input: inventory, policy, waiver or profile invalid, a target outside scope;
     verify: the bundle is NOT valid (tampered, missing file, bad signature)
  2  scan: no host could be collected
  3  verify: valid but stale (older than --max-age-days)
  4  output problem: the output directory is not empty (an unfinished bundle left by an interrupted scan is
     replaced, with a message), the key cannot be read or written
  5  another run holds the lock (run)
  6  verify: signatures and hashes hold, but no trusted key was given or configured, so the
     signer is NOT pinned (only the key inside the bundle was used; --pubkey, EVIDENCE_AGENT_PUBKEY
     or the default signing key's .pub pin it)
  130 interrupted (Ctrl-C: running hosts are cut at once, nothing is signed)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional, Sequence

from collectors import signing
from agent.yamlsrc import ConfigError

from . import __version__

from .cli_common import (DEFAULT_INVENTORY, EXIT_BROKER, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_NO_HOST,
                         EXIT_OK, EXIT_OUTPUT, EXIT_STALE, EXIT_UNPINNED, default_key, err as _err,
                         load_key as _load_key, read_pubkey)


def cmd_from_ansible(a: argparse.Namespace) -> int:
    import ipaddress

    from . import ansible_import as ai
    from .scope import Scope

    try:
        for c in a.scope:
            ipaddress.ip_network(c, strict=False)
    except ValueError as e:
        _err(f"--scope: {e}")
        return EXIT_INVALID
    try:
        mapping = ai.load_mapping(a.mapping)
        data = ai.ansible_list(a.inventory, a.limit, ai.find_ansible_inventory(a.ansible_inventory))
        inv, notes = ai.convert(data, Scope.parse(a.scope), mapping, a.inventory)
        if not inv["hosts"]:
            _err("no host could be mapped" + "".join(f"\n  - {n}" for n in notes))
            return EXIT_INVALID
        ai.write(inv, notes, a.out, a.inventory)
    except ai.ImportError_ as e:
        _err(str(e))
        return EXIT_INVALID
    print(f"wrote {a.out}: {sum(1 for h in inv['hosts'] if h.get('collect', True))} host(s), "
          f"{sum(1 for h in inv['hosts'] if h.get('collect') is False)} jump host(s) only")
    for n in notes:
        print(f"  not mapped: {n}")
    return 0


def cmd_keygen(a: argparse.Namespace) -> int:
    try:
        kp = signing.keygen(a.out, overwrite=a.force)
    except FileExistsError as e:
        _err(str(e) + " (use --force to replace it)")
        return EXIT_OUTPUT
    except OSError as e:
        _err(f"cannot write {a.out}: {e.strerror}")
        return EXIT_OUTPUT
    print(f"private key: {a.out} (mode 0600)\npublic key:  {a.out}.pub\nfingerprint: {signing.fingerprint(kp.public)}")
    if a.worker:  # what the controller's inventory needs to accept this worker's results
        print(f"inventory:   workers: {{{a.worker}: [\"{signing.pub_line(kp.public, 'evidence-agent-worker')}\"]}}")
        return EXIT_OK
    print(f"allowed_signers line: {signing.SIGNER_ID} namespaces=\"{signing.NAMESPACE}\" "
          f"{signing.pub_line(kp.public, '')}")
    return EXIT_OK


def cmd_scan(a: argparse.Namespace) -> int:
    from policies.model import load_profile
    from output.summary import render_summary

    from .inventory import load_inventory
    from .run import FAMILIES, ScanOptions

    only = tuple(x.strip() for x in a.only.split(",")) if a.only else FAMILIES
    bad = [x for x in only if x not in FAMILIES]
    if bad:
        _err(f"--only: unknown probe family {', '.join(bad)} (choose from {', '.join(FAMILIES)})")
        return EXIT_INVALID
    try:
        inv = load_inventory(a.inventory)
        profile = load_profile(a.profile, a.policy_dir)
    except ConfigError as e:
        _err(str(e))
        return EXIT_INVALID
    if not _free_out(a.out):
        return EXIT_OUTPUT
    try:
        key = _load_key(a.key, create=a.key == default_key() or a.create_key)
    except (signing.SignatureError, OSError) as e:
        _err(str(e))
        return EXIT_OUTPUT
    observer = None
    progress = None
    if not a.quiet:
        if sys.stderr.isatty():  # a live status line (hosts done/failed/running, phase)
            from .progress import Progress

            observer = Progress(tty=True)
        else:  # logs and CI: one plain line per host and phase
            progress = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    baseline = None
    if a.baseline:
        try:
            with open(os.path.join(a.baseline, "results.json"), encoding="utf-8") as f:
                old = json.load(f)
            baseline = {"path": os.path.abspath(a.baseline), "run_id": (old.get("run") or {}).get("id"),
                        "finished": (old.get("run") or {}).get("finished")}
        except (OSError, ValueError) as e:
            _err(f"--baseline {a.baseline}: not a bundle ({e})")
            return EXIT_INVALID
    opts = ScanOptions(out=a.out, key=key, profile=profile, concurrency=a.concurrency, only=only,
                       vantage=a.vantage, progress=progress, observer=observer, baseline=baseline)
    from .dist import broker_lost, scan_with
    from .dist.broker import BrokerError

    try:
        results = scan_with(inv, opts, a.broker)
    except BrokerError as e:
        _err(str(e))
        return EXIT_BROKER
    except KeyboardInterrupt:
        _err(f"interrupted: {a.out} is an unfinished, unsigned bundle; run the same command again to replace it")
        return EXIT_INTERRUPTED
    except ConfigError as e:
        _err(str(e))
        return EXIT_INVALID
    except FileExistsError as e:
        _err(str(e))
        return EXIT_OUTPUT
    finally:
        if observer is not None:
            observer.close()
    print(render_summary(results, lang=a.lang))
    if baseline:
        from output.diff import diff_bundles, render_text

        print(render_text(diff_bundles(a.baseline, a.out), lang=a.lang))
    print(("서명된 증적 번들: " if a.lang == "ko" else "Signed evidence bundle: ") + os.path.abspath(a.out))
    lost = broker_lost(results)
    if lost:
        _err(f"{lost}: what arrived before is in the signed bundle, the rest is 점검불가")
        return EXIT_BROKER
    if "host" in only and inv.hosts and not any(h["collected"] for h in results["hosts"]):
        _err("no host could be collected")
        return EXIT_NO_HOST
    return EXIT_OK


def trusted_pubkey_path(given: Optional[str]) -> tuple[Optional[str], str]:
    """Which key pins the signer: --pubkey, else $EVIDENCE_AGENT_PUBKEY, else the default signing key's .pub
    when it exists (the machine that signs also verifies). (None, "") when nothing is configured."""
    if given:
        return given, "--pubkey"
    env = os.environ.get("EVIDENCE_AGENT_PUBKEY")
    if env:
        return env, "EVIDENCE_AGENT_PUBKEY"
    if os.path.isfile(default_key() + ".pub"):
        return default_key() + ".pub", "the default signing key"
    return None, ""
def _free_out(out: str) -> bool:
    """True when ``out`` can receive a new bundle. An unfinished bundle left there by an interrupted or killed
    scan (its marker names a process that is gone) is removed, with a message; anything else is kept."""
    from collectors.bundle import unfinished_owner

    if not os.path.exists(out) or (os.path.isdir(out) and not os.listdir(out)):
        return True
    owner = unfinished_owner(out) if os.path.isdir(out) and not os.path.islink(out) else None
    if owner is None:
        _err(f"output directory {out} is not empty; give a new directory")
        return False
    if owner and owner != os.getpid() and os.path.exists(f"/proc/{owner}"):
        _err(f"output directory {out} is being written by another run (pid {owner}); give a new directory")
        return False
    import shutil

    shutil.rmtree(out)
    _err(f"removed {out}: an unfinished, unsigned bundle left by an interrupted run; scanning again")
    return True


def cmd_verify(a: argparse.Namespace) -> int:
    from collectors.verify import verify_path

    path, source = trusted_pubkey_path(a.pubkey)
    pub, ok = read_pubkey(path)
    if not ok:
        return EXIT_INVALID
    if pub is not None and source != "--pubkey":
        print(f"pinned to {path} ({source})", file=sys.stderr)
    v = verify_path(a.bundle, pub, a.max_age_days)  # a folder or a .zip of one
    from output.safe_text import one_line  # names inside a tampered bundle are chosen by whoever tampered

    for w in v.warnings:
        print(f"warning: {one_line(w)}", file=sys.stderr)
    if not v.valid:
        print(f"INVALID: {one_line(a.bundle)}")
        for p in v.problems:
            print(f"  - {one_line(p)}")
        return EXIT_INVALID
    age = f", {v.age_days:.1f} days old" if v.age_days is not None else ""
    if not v.pinned:
        print(f"valid but UNPINNED: {v.files} files, signed by {v.fingerprint}{age} — the signer is not checked "
              "against a trusted key (give --pubkey)")
        return EXIT_UNPINNED
    if v.stale:
        print(f"valid but STALE: {v.files} files, signed by {v.fingerprint}{age} (older than {a.max_age_days} days)")
        return EXIT_STALE
    print(f"valid: {v.files} files, signed by {v.fingerprint}{age}")
    return EXIT_OK


def cmd_merge(a: argparse.Namespace) -> int:
    from output.summary import render_summary

    from .merge import MergeError, merge

    pub, ok = read_pubkey(a.pubkey)
    if not ok:
        return EXIT_INVALID
    if os.path.exists(a.out) and (not os.path.isdir(a.out) or os.listdir(a.out)):
        _err(f"output directory {a.out} is not empty; give a new directory")
        return EXIT_OUTPUT
    try:
        key = _load_key(a.key, create=a.key == default_key())
        results = merge(a.bundles, a.out, key, pub, a.policy_dir)
    except (MergeError, ConfigError) as e:
        _err(str(e))
        return EXIT_INVALID
    except (signing.SignatureError, OSError) as e:
        _err(str(e))
        return EXIT_OUTPUT
    print(render_summary(results, lang=a.lang))
    print(("병합된 서명 번들: " if a.lang == "ko" else "Merged signed bundle: ") + os.path.abspath(a.out))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="evidence-agent",
        description="Collect technical security evidence (SSH/local probes, network scans), judge it against the "
                    "financial-sector open-API self-check guide, and write a signed evidence bundle.",
        epilog=__doc__.split("\n", 2)[2] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"evidence-agent {__version__}")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")

    s = sub.add_parser("scan", help="collect evidence from the inventory and write a signed bundle",
                       description="Run the probes on every inventory host and network, evaluate the policies, "
                                   "and write a signed evidence bundle into a new directory.")
    s.add_argument("--inventory", "-i", default=DEFAULT_INVENTORY,
                   help="inventory YAML (default: the built-in one: this machine and loopback)")
    s.add_argument("--out", "-o", required=True, help="bundle directory to create (must not exist or be empty)")
    s.add_argument("--key", default=default_key(),
                   help=f"Ed25519 signing key (default {default_key()}, created on first use)")
    s.add_argument("--create-key", action="store_true", help="create --key if it does not exist")
    s.add_argument("--profile", default="fsi-openapi-2018", help="control catalog and rules (default: %(default)s)")
    s.add_argument("--policy-dir", action="append", default=[],
                   help="extra folder with catalog/*.yaml and rules/*.yaml (repeatable)")
    s.add_argument("--concurrency", "-j", type=int, default=16, help="hosts collected at once (default: %(default)s)")
    s.add_argument("--only", help="probe families to run, comma separated: host,network,tls,web (default: all)")
    s.add_argument("--vantage", default="internal",
                   help="where this scanner stands, recorded with network facts (internal, external, dmz…)")
    s.add_argument("--baseline", metavar="OLD_BUNDLE",
                   help="a previous bundle: print what changed since, and record it so `report` adds the changes")
    s.add_argument("--lang", choices=("ko", "en"), default="ko", help="language of the summary (default: ko)")
    s.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    s.add_argument("--broker", metavar="URL",
                   help="distributed mode: send the collection to zone workers through this Redis broker "
                        "(redis:// or rediss://; default: the inventory's broker: section, whose URL is read from "
                        "an environment variable). Exit 7 when the broker cannot be reached or is lost mid-run")
    s.set_defaults(func=cmd_scan)

    v = sub.add_parser("verify", help="check a bundle's signature and every file's hash, offline",
                       description="Verify a bundle: signatures over manifest.json and SHA256SUMS, each file's "
                                   "hash, and that no file was added or removed.")
    v.add_argument("bundle", help="bundle folder, or a .zip made by `pack`")
    v.add_argument("--pubkey", help="trusted public key (.pub or allowed_signers line). Default: "
                                    "$EVIDENCE_AGENT_PUBKEY, else the default signing key's .pub if it exists; "
                                    "with none of them only the key inside the bundle is used and the exit code is "
                                    "6 (valid but unpinned)")
    v.add_argument("--max-age-days", type=float, default=None,
                   help="report the bundle as stale (exit 3) when its run finished longer ago than this")
    v.set_defaults(func=cmd_verify)

    m = sub.add_parser("merge", help="combine bundles from several vantages or partial runs into one signed bundle",
                       description="Verify each bundle, unite their facts (each keeping its vantage and time), "
                                   "evaluate the policies again over the union and sign the result. Source "
                                   "manifests and signatures are kept under sources/.")
    m.add_argument("bundles", nargs="+", metavar="BUNDLE")
    m.add_argument("--out", "-o", required=True, help="merged bundle directory to create")
    m.add_argument("--key", default=default_key(), help="signing key for the merged bundle")
    m.add_argument("--pubkey", help="require the source bundles to be signed by this key")
    m.add_argument("--policy-dir", action="append", default=[], help="extra policy folder (as for scan)")
    m.add_argument("--lang", choices=("ko", "en"), default="ko")
    m.set_defaults(func=cmd_merge)

    from .cli_report import add_parsers as add_bundle_commands

    add_bundle_commands(sub, default_key())  # report, diff, pack, attach: they work on an existing bundle

    inv = sub.add_parser("inventory", help="make an inventory from what ops already keep (Ansible)")
    isub = inv.add_subparsers(dest="inventory_cmd", metavar="SOURCE")
    fa = isub.add_parser("from-ansible", help="convert an Ansible inventory (runs your ansible-inventory --list)",
                         description="Run `ansible-inventory -i INVENTORY --list` and map ansible_host, ansible_user, "
                                     "ansible_port, ansible_ssh_private_key_file, ProxyJump and groups (through "
                                     "--map) into an evidence-agent inventory; what could not be mapped is named.")
    fa.add_argument("inventory", metavar="INVENTORY", help="an Ansible inventory (file, directory or plugin config)")
    fa.add_argument("--limit", help="an Ansible host pattern, as for ansible --limit")
    fa.add_argument("--map", dest="mapping", metavar="MAPPING.yml",
                    help="groups to roles and zones: {roles: {group: [role]}, zones: {group: zone}, defaults: {...}}")
    fa.add_argument("--scope", nargs="+", action="extend", required=True, metavar="CIDR",
                    help="scope.allow of the result (required): hosts outside it are left out and named")
    fa.add_argument("--out", "-o", required=True, help="inventory YAML to write")
    fa.add_argument("--ansible-inventory", metavar="PATH", help="the ansible-inventory program (default: on PATH)")
    fa.set_defaults(func=cmd_from_ansible)

    k = sub.add_parser("keygen", help="create an Ed25519 signing key pair (OpenSSH format)")
    k.add_argument("--out", required=True, help="private key path; the public key is written to OUT.pub")
    k.add_argument("--force", action="store_true", help="overwrite an existing key")
    k.add_argument("--worker", metavar="ZONE", help="a collection worker's key (distributed mode): also print the "
                                                    "inventory line that accepts it for ZONE")
    k.set_defaults(func=cmd_keygen)
    from . import fleet_cli; fleet_cli.register(sub)  # noqa: E702 (run, history, schedule)
    from . import worker_cli; worker_cli.register(sub)  # noqa: E702 (distributed mode: worker)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    import warnings

    # sslyze's bundled trust stores hold a few legacy roots that cryptography warns about on every run;
    # the warning says nothing about the targets, so it is kept out of users' terminals and logs.
    warnings.filterwarnings("ignore", message=".*serial number.*", module="sslyze")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="sslyze")
    try:
        from cryptography.utils import CryptographyDeprecationWarning

        warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning)
    except ImportError:  # pragma: no cover - cryptography always present with sslyze
        pass
    parser = build_parser()
    a = parser.parse_args(argv)
    if not getattr(a, "func", None):
        parser.print_help()
        return EXIT_INVALID
    try:
        return int(a.func(a))
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())

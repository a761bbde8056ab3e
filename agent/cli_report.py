"""Sub-commands that work on an existing bundle: ``report``, ``diff``, ``pack``, ``attach``.

Kept apart from :mod:`agent.cli` (which registers them) so the scan/verify
entry point stays small. None of them touches a host. Exit codes are those of
:mod:`agent.cli`: 0 done, 1 invalid input (not a bundle, a bundle that does
not verify, a bad option value), 4 output problem (cannot write, key unreadable).

Where rendered reports go: OUTSIDE the signed set. The default ``--out`` is
``<bundle>.report.<ext>`` beside the bundle folder, and a path inside the bundle
is refused — a file added to the bundle would make ``verify`` fail, and a report
is a view of the evidence, not evidence.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from typing import Any, Optional

from .cli_common import EXIT_INVALID, EXIT_OK, EXIT_OUTPUT, err as _err, read_pubkey as _read_pub

EXTENSIONS = {"html": "report.html", "xlsx": "report.xlsx", "md": "report.md", "json": "report.json",
              "pdf": "report.pdf"}


def _is_bundle(path: str) -> bool:
    if not os.path.isfile(os.path.join(path, "results.json")):
        _err(f"{path}: not a bundle folder (no results.json)")
        return False
    return True


def _open(stack: contextlib.ExitStack, path: str) -> Optional[str]:
    """The bundle folder to read: ``path`` itself, or a packed bundle (``pack``'s .zip) extracted safely into
    a temporary folder that is removed afterwards. None (reported) when it is neither."""
    if not os.path.isfile(path):
        return path if _is_bundle(path) else None
    from collectors.archive import ArchiveError, extracted

    try:
        root = stack.enter_context(extracted(path))
    except (ArchiveError, OSError) as e:
        _err(f"{path}: {e}")
        return None
    return root if _is_bundle(root) else None


def _named(d: dict, old: str, new: str) -> dict:
    """A diff names the bundles as the user gave them (a .zip, not the temporary folder it was read from)."""
    for side, given in (("old", old), ("new", new)):
        if isinstance(d.get(side), dict) and os.path.isfile(given):
            d[side]["bundle"] = os.path.abspath(given)
    return d


def _stem(path: str) -> str:
    """Where a report goes by default: beside the folder, or beside the .zip (named without .zip)."""
    p = os.path.abspath(path).rstrip(os.sep)
    return p[:-4] if os.path.isfile(p) and p.lower().endswith(".zip") else p


def _inside(path: str, folder: str) -> bool:
    p, f = os.path.realpath(path), os.path.realpath(folder)
    return p == f or p.startswith(f.rstrip(os.sep) + os.sep)


def default_report_path(bundle: str, fmt: str) -> str:
    root = _stem(bundle)
    return os.path.join(os.path.dirname(root), f"{os.path.basename(root)}.{EXTENSIONS[fmt]}")


def _results(bundle: str) -> dict:
    try:
        with open(os.path.join(bundle, "results.json"), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def cmd_report(a: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        root = _open(stack, a.bundle)
        base = _open(stack, a.baseline) if a.baseline else None
        if root is None or (a.baseline and base is None):
            return EXIT_INVALID
        return _report(a, root, base)


def _report(a: argparse.Namespace, root: str, baseline: Optional[str]) -> int:
    from output.diff import diff_bundles
    from output.report_model import build_model

    pub, ok = _read_pub(a.pubkey)
    if not ok:
        return EXIT_INVALID
    out = a.out or default_report_path(a.bundle, a.format)
    if out == "-" and a.format in ("xlsx", "pdf"):
        _err(f"--out -: a {a.format} file cannot go to standard output; give a file")
        return EXIT_INVALID
    if out != "-" and (_inside(out, root) or (os.path.isdir(a.bundle) and _inside(out, a.bundle))):
        _err(f"{out}: inside the signed bundle; rendered reports go outside it (verify would report an added file)")
        return EXIT_OUTPUT
    from agent.yamlsrc import ConfigError

    if a.criteria and not os.path.isfile(a.criteria):
        _err(f"--criteria {a.criteria}: no such file")
        return EXIT_INVALID
    try:
        model = build_model(root, lang=a.lang, policy_dirs=a.policy_dir, pubkey=pub, criteria_file=a.criteria)
    except ConfigError as e:
        _err(str(e))
        return EXIT_INVALID
    except (OSError, ValueError) as e:  # a link, FIFO or device in place of a file; unreadable JSON
        _err(f"{a.bundle}: not a readable bundle: {e}")
        return EXIT_INVALID
    if root != a.bundle:  # from a .zip: evidence links point where the zip unpacks, beside it
        model.bundle = os.path.join(os.path.dirname(os.path.abspath(a.bundle)), os.path.basename(root))
    v = model.cover.verification
    if not v.get("valid"):
        for p in v.get("problems") or []:
            _err(f"  - {p}")
        if not a.allow_invalid:
            _err(f"{a.bundle}: the bundle does not verify; not rendering it (--allow-invalid renders it with a "
                 "warning banner)")
            return EXIT_INVALID
    if not baseline:  # `scan --baseline OLD` recorded it in the signed results
        recorded = ((_results(root).get("run") or {}).get("baseline") or {}).get("path")
        if recorded and os.path.isfile(os.path.join(recorded, "results.json")):
            baseline = recorded
    if baseline:
        model.changes = _named(diff_bundles(baseline, root), a.baseline or baseline, a.bundle)
    text: Any
    if a.format == "html":
        from output.html import render_html

        text = render_html(model, None if out == "-" else out)
    elif a.format == "md":
        from output.markdown import render_markdown

        text = render_markdown(model)
    elif a.format == "json":
        text = json.dumps(model.to_json(), ensure_ascii=False, indent=2) + "\n"
    else:
        text = None
    try:
        if out == "-":
            sys.stdout.write(text)
            return EXIT_OK
        if a.format == "xlsx":
            from output.xlsx import write_xlsx

            write_xlsx(model, out)
        elif a.format == "pdf":
            from output.pdf import PdfError, write_pdf

            try:
                write_pdf(model, out)
            except PdfError as e:
                _err(str(e))
                return EXIT_OUTPUT
        else:
            with open(out, "w", encoding="utf-8") as f:
                f.write(text)
    except OSError as e:
        _err(f"cannot write {out}: {e.strerror}")
        return EXIT_OUTPUT
    print(out)
    return EXIT_OK


def cmd_diff(a: argparse.Namespace) -> int:
    from collectors.verify import verify_bundle
    from output.diff import diff_bundles, render_text

    with contextlib.ExitStack() as stack:
        old, new = _open(stack, a.old), _open(stack, a.new)
        if old is None or new is None:
            return EXIT_INVALID
        for given, b in ((a.old, old), (a.new, new)):
            if not verify_bundle(b).valid:
                _err(f"warning: {given} does not verify; its contents may have been changed")
        d = _named(diff_bundles(old, new), a.old, a.new)
    print(json.dumps(d, ensure_ascii=False, indent=2) if a.format == "json" else render_text(d, a.lang))
    return EXIT_OK


def cmd_pack(a: argparse.Namespace) -> int:
    from collectors.archive import ArchiveError, default_zip_path, pack
    from collectors.verify import verify_bundle

    if not _is_bundle(a.bundle):
        return EXIT_INVALID
    pub, ok = _read_pub(a.pubkey)
    if not ok:
        return EXIT_INVALID
    v = verify_bundle(a.bundle, pub)
    if not v.valid:
        _err(f"{a.bundle}: the bundle does not verify; not packing it")
        for p in v.problems:
            _err(f"  - {p}")
        return EXIT_INVALID
    out = default_zip_path(a.bundle, a.out)
    if os.path.exists(out):
        _err(f"{out} exists; give another --out")
        return EXIT_OUTPUT
    if _inside(out, a.bundle):
        _err(f"{out}: inside the bundle; write the zip elsewhere")
        return EXIT_OUTPUT
    try:
        n = pack(a.bundle, out)
    except (ArchiveError, OSError) as e:
        _err(f"cannot write {out}: {e}")
        return EXIT_OUTPUT
    print(f"{out} ({n} files)")
    return EXIT_OK


def _new_revision(a: argparse.Namespace, change: Any) -> Any:
    """What `attach` and `plan` share: the bundle checked, the signing key read, ``change(key, pub)`` made as a
    signed revision: its record, or an exit code (int) when any of that fails (nothing is changed then)."""
    from collectors import signing
    from collectors.attach import AttachError

    if not _is_bundle(a.bundle):
        return EXIT_INVALID
    pub, ok = _read_pub(a.pubkey)
    if not ok:
        return EXIT_INVALID
    try:
        key = signing.load_private(a.key)
    except signing.SignatureError as e:
        _err(str(e))
        return EXIT_OUTPUT
    try:
        return change(key, pub)
    except AttachError as e:
        _err(str(e))
        return EXIT_INVALID
    except OSError as e:
        _err(f"cannot update {a.bundle}: {e}")
        return EXIT_OUTPUT


def cmd_attach(a: argparse.Namespace) -> int:
    from collectors.attach import attach

    rec = _new_revision(a, lambda key, pub: attach(a.bundle, a.item, a.files, key, status=a.status, reason=a.reason,
                                                   by=a.by, note=a.note, pubkey=pub))
    if isinstance(rec, int):
        return rec
    for f in rec["files"]:
        print(f)
    print(f"revision {rec['revision']} sealed ({rec['record']['reason']})")
    return EXIT_OK


def cmd_plan(a: argparse.Namespace) -> int:
    from collectors.attach import add_plan

    rec = _new_revision(a, lambda key, pub: add_plan(a.bundle, a.item, a.due, a.text, key, by=a.by, pubkey=pub))
    if isinstance(rec, int):
        return rec
    print(f"revision {rec['revision']} sealed ({rec['record']['reason']})")
    return EXIT_OK


def cmd_criteria_init(a: argparse.Namespace) -> int:
    from agent.yamlsrc import ConfigError
    from output.form import criteria_template
    from policies.model import load_profile

    if os.path.exists(a.out):
        _err(f"{a.out} exists; not overwriting it")
        return EXIT_OUTPUT
    try:
        prof = load_profile(a.profile, a.policy_dir)
    except ConfigError as e:
        _err(str(e))
        return EXIT_INVALID
    try:
        with open(a.out, "x", encoding="utf-8") as f:
            f.write(criteria_template(prof.catalog))
    except OSError as e:
        _err(f"cannot write {a.out}: {e.strerror}")
        return EXIT_OUTPUT
    print(f"{a.out} ({len(prof.catalog.controls)} items)")
    return EXIT_OK


def add_parsers(sub: Any, default_key: str) -> None:
    r = sub.add_parser("report", help="render a bundle as HTML, XLSX, Markdown, PDF or JSON (no rescan)",
                       description="Render the guide's result form (점검기준 A … 향후 이행계획 E) from a bundle. "
                                   "The bundle is verified first. The report is written beside the bundle, "
                                   "never inside it.")
    r.add_argument("bundle", help="a bundle folder, or its .zip from `pack`")
    r.add_argument("--format", "-f", choices=tuple(EXTENSIONS), default="html")
    r.add_argument("--lang", choices=("ko", "en"), default="ko", help="labels language (default: ko)")
    r.add_argument("--out", "-o", help="file to write (default: BUNDLE.report.<ext> beside the bundle; '-' for "
                                       "standard output)")
    r.add_argument("--baseline", metavar="OLD_BUNDLE", help="add a 'changes since' section against an older bundle "
                                                            "(folder or .zip)")
    r.add_argument("--pubkey", help="verify against this public key")
    r.add_argument("--policy-dir", action="append", default=[], help="extra policy folder (as for scan); its "
                                                                      "criteria.yaml, if any, gives column A")
    r.add_argument("--criteria", metavar="FILE", help="the organisation's criteria (A) file, see `criteria init`")
    r.add_argument("--allow-invalid", action="store_true",
                   help="render a bundle that does not verify (a warning banner says so)")
    r.set_defaults(func=cmd_report)

    d = sub.add_parser("diff", help="compare two bundles: statuses, findings, hosts, ports, certificates")
    d.add_argument("old", help="a bundle folder or its .zip")
    d.add_argument("new", help="a bundle folder or its .zip")
    d.add_argument("--format", "-f", choices=("text", "json"), default="text")
    d.add_argument("--lang", choices=("ko", "en"), default="ko")
    d.set_defaults(func=cmd_diff)

    p = sub.add_parser("pack", help="put a verified bundle into one .zip (UTF-8 file names)")
    p.add_argument("bundle")
    p.add_argument("--out", "-o", help="zip to create (default: BUNDLE.zip beside the bundle)")
    p.add_argument("--pubkey", help="verify against this public key before packing")
    p.set_defaults(func=cmd_pack)

    t = sub.add_parser("attach", help="attach documents to an item, attest its manual part, re-sign",
                       description="Copy documents into evidence/ as 자료<ITEM>-<n>_manual_<name>, optionally record "
                                   "a person's attestation of the item's manual part (the whole item when it has "
                                   "no automated rule; never changes an automated verdict), keep the previous "
                                   "manifest under revisions/<n>/ and sign the bundle as revision n+1.")
    t.add_argument("bundle")
    t.add_argument("--item", required=True, help="detailed item, e.g. 1.1.1")
    t.add_argument("files", nargs="*", metavar="FILE")
    t.add_argument("--note", help="one-line description of the documents (shown in 증빙자료 B)")
    t.add_argument("--status", choices=("implemented", "partial", "not_implemented", "not_applicable"),
                   help="a person's answer for the item's manual part (mixed items: combined with the rules' "
                        "part in the report)")
    t.add_argument("--reason", help="why (required for partial, not_implemented, not_applicable)")
    t.add_argument("--by", help="who declares (default: the current user)")
    t.add_argument("--key", default=default_key, help=f"signing key (default {default_key})")
    t.add_argument("--pubkey", help="require the current bundle to be signed by this key")
    t.set_defaults(func=cmd_attach)
    _collect_trailing_files(t)

    pl = sub.add_parser("plan", help="store a remediation plan (E) for an item in the bundle, re-sign",
                        description="Record 향후 이행계획 (E: target date and how) for one item as a signed "
                                    "revision. A later `scan --baseline` carries open plans forward for items still "
                                    "not implemented; reports flag plans past their date.")
    pl.add_argument("bundle")
    pl.add_argument("--item", required=True, help="detailed item, e.g. 14.6.1")
    pl.add_argument("--due", required=True, help="target date YYYY-MM-DD")
    pl.add_argument("--text", required=True, help="how the item will be implemented")
    pl.add_argument("--by", help="who plans (default: the current user)")
    pl.add_argument("--key", default=default_key, help=f"signing key (default {default_key})")
    pl.add_argument("--pubkey", help="require the current bundle to be signed by this key")
    pl.set_defaults(func=cmd_plan)

    cr = sub.add_parser("criteria", help="the organisation's criteria file (column A)")
    crs = cr.add_subparsers(dest="criteria_cmd", required=True)
    ci = crs.add_parser("init", help="write a starting criteria.yaml with every item of a profile")
    ci.add_argument("--out", "-o", required=True, help="file to create (never overwritten)")
    ci.add_argument("--profile", default="fsi-openapi-2018")
    ci.add_argument("--policy-dir", action="append", default=[], help="extra policy folder (as for scan)")
    ci.set_defaults(func=cmd_criteria_init)


def _collect_trailing_files(parser: argparse.ArgumentParser) -> None:
    """Let FILEs follow options (``attach B --item 1.1.1 a.pdf b.pdf``).

    argparse fills the ``files`` positional (nargs=*) with nothing as soon as it
    meets BUNDLE, then rejects the files after ``--item`` as unrecognised (a long
    standing argparse limitation; parse_intermixed_args does not work with
    sub-commands). Leftover non-option words are the files; unknown options are
    still errors. A file whose name starts with '-' is given as ./-name.
    """
    plain = parser.parse_known_args

    def parse_known_args(args: Any = None, namespace: Any = None) -> Any:
        ns, extras = plain(args, namespace)
        ns.files = list(getattr(ns, "files", None) or []) + [x for x in extras if not x.startswith("-")]
        return ns, [x for x in extras if x.startswith("-")]

    parser.parse_known_args = parse_known_args  # type: ignore[method-assign]

"""Subcommands for unattended, repeated runs: ``run`` (what a timer calls), ``history`` and ``schedule``.

``register(subparsers)`` is called by :func:`agent.cli.build_parser`; the logic
lives in small modules (lock, history, retention, drift, notify, schedule,
progress, logjson) so each can be tested alone.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Optional

from agent.yamlsrc import ConfigError

from .cli_common import EXIT_BROKER, EXIT_INVALID, EXIT_LOCKED, EXIT_NO_HOST, EXIT_OK, EXIT_OUTPUT
WEBHOOK_ENV = "EVIDENCE_AGENT_WEBHOOK"


def register(sub: Any) -> None:
    from .cli_common import DEFAULT_INVENTORY, default_key

    r = sub.add_parser(
        "run", help="one scheduled run: a new timestamped bundle under DIR, latest, retention, drift notification",
        description="What a timer or CronJob calls. Writes a signed bundle DIR/<UTC time>/, points DIR/latest at "
                    "it, appends DIR/index.jsonl, compares with the previous run and notifies when something got "
                    "worse, then applies retention. Only one run per DIR at a time (exit 5 otherwise).")
    r.add_argument("--inventory", "-i", default=DEFAULT_INVENTORY, help="inventory YAML (default: built-in)")
    r.add_argument("--bundles", "-b", required=True, help="directory holding one bundle per run")
    r.add_argument("--key", default=default_key(), help=f"Ed25519 signing key (default {default_key()})")
    r.add_argument("--create-key", action="store_true", help="create --key if it does not exist")
    r.add_argument("--profile", default="fsi-openapi-2018", help="control catalog and rules (default: %(default)s)")
    r.add_argument("--policy-dir", action="append", default=[], help="extra policy folder (repeatable)")
    r.add_argument("--concurrency", "-j", type=int, default=16, help="hosts collected at once (default: %(default)s)")
    r.add_argument("--only", help="probe families, comma separated: host,network,tls,web (default: all)")
    r.add_argument("--vantage", default="internal", help="where this scanner stands (recorded with network facts)")
    r.add_argument("--broker", metavar="URL", help="distributed mode: collect through the zone workers of this Redis "
                                                   "broker (as for scan; exit 7 when it is unreachable or lost)")
    r.add_argument("--keep", type=int, help="retention: keep the N newest bundles")
    r.add_argument("--keep-days", type=float, help="retention: keep bundles younger than D days")
    _notify_args(r)
    r.add_argument("--notify-on", choices=("worse", "change", "always"), default="worse",
                   help="when to notify: something got worse (default), anything changed, or every run")
    r.add_argument("--log-json", action="store_true", help="log JSON lines on stderr (one per host, per event)")
    r.add_argument("--lang", choices=("ko", "en"), default="ko", help="language of the summary (default: ko)")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress display and no summary")
    r.set_defaults(func=cmd_run)

    h = sub.add_parser("history", help="list past runs of a bundles directory with totals and changes",
                       description="One line per run of `evidence-agent run`: time, hosts collected, control "
                                   "totals per status, and changes since the previous run.")
    h.add_argument("bundles", help="the --bundles directory of `run`")
    h.add_argument("--json", action="store_true", help="one JSON object per run instead of a table")
    h.add_argument("--limit", type=int, default=0, help="only the N most recent runs")
    h.set_defaults(func=cmd_history)

    s = sub.add_parser("schedule", help="install, list or remove a periodic run (systemd timer or cron)",
                       description="Install `evidence-agent run` as a systemd service + timer (where systemd runs) "
                                   "or as a cron entry; list and remove such schedules.")
    ss = s.add_subparsers(dest="schedule_cmd", metavar="ACTION")
    i = ss.add_parser("install", help="write a schedule")
    i.add_argument("--inventory", "-i", required=True, help="inventory YAML (validated now)")
    i.add_argument("--every", required=True, metavar="CRON",
                   help='cron expression, 5 fields ("0 2 * * *") or @daily/@hourly/@weekly/@monthly/@yearly')
    i.add_argument("--bundles", "-b", required=True, help="bundles directory of the runs")
    i.add_argument("--name", help="schedule name (default: the inventory file name)")
    i.add_argument("--backend", choices=("auto", "systemd", "cron"), default="auto",
                   help="systemd timer or cron entry (default: systemd when it is running, else cron)")
    i.add_argument("--unit-dir", help="write the systemd units here instead of /etc/systemd/system "
                                      "(then nothing is enabled)")
    i.add_argument("--cron-file", help="cron.d file to write (default /etc/cron.d/evidence-agent)")
    i.add_argument("--state-dir", help="working directory of the runs: signing key, env file, cron log "
                                       "(default /var/lib/evidence-agent/NAME)")
    i.add_argument("--key", help="signing key (default STATE/signing_key, created on the first run)")
    i.add_argument("--user", default="root", help="user of the cron entry (default: %(default)s)")
    i.add_argument("--no-enable", action="store_true", help="write the units but do not enable the timer")
    i.add_argument("--exec", dest="exe", help="evidence-agent executable to run (default: this installation)")
    # passed through to `run`
    i.add_argument("--profile")
    i.add_argument("--policy-dir", action="append", default=[])
    i.add_argument("--concurrency", "-j", type=int)
    i.add_argument("--only")
    i.add_argument("--vantage")
    i.add_argument("--keep", type=int)
    i.add_argument("--keep-days", type=float)
    i.add_argument("--notify-on", choices=("worse", "change", "always"))
    i.add_argument("--log-json", action="store_true")
    _notify_args(i)
    i.set_defaults(func=cmd_schedule_install)
    ls = ss.add_parser("list", help="show installed schedules")
    ls.add_argument("--unit-dir")
    ls.add_argument("--cron-file")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_schedule_list)
    rm = ss.add_parser("remove", help="remove a schedule (disables its timer)")
    rm.add_argument("name")
    rm.add_argument("--unit-dir")
    rm.add_argument("--cron-file")
    rm.set_defaults(func=cmd_schedule_remove)
    w = ss.add_parser("install-worker", help="install a distributed-mode collection worker as a systemd service",
                      description="Write evidence-agent-worker-NAME.service, which runs `evidence-agent worker "
                                  "--zone ZONE --key KEY` and restarts it on failure. The broker URL (it holds the "
                                  "Redis password) is never written into the unit: set it in the environment "
                                  "variable --broker-env while installing and it is stored in STATE/env (mode "
                                  "0600), or add it there yourself. See docs/distributed.md.")
    w.add_argument("--zone", action="append", required=True, help="zone whose queue it serves (repeatable)")
    w.add_argument("--broker-env", default="EVIDENCE_AGENT_BROKER", metavar="VAR",
                   help="environment variable holding the broker URL (default: %(default)s)")
    w.add_argument("--key", help="the worker's own Ed25519 key (default STATE/worker_key; "
                                 "`evidence-agent keygen --worker`)")
    w.add_argument("--concurrency", "-j", type=int, help="tasks at once (default: the worker's own)")
    w.add_argument("--hostname", help="worker node name (default NAME@%%H: this machine's host name)")
    w.add_argument("--name", help="unit name suffix (default: the zones joined by '-')")
    w.add_argument("--unit-dir", help="write the unit here instead of /etc/systemd/system (then nothing is enabled)")
    w.add_argument("--state-dir", help="working directory and env file (default /var/lib/evidence-agent/worker-NAME)")
    w.add_argument("--user", default="root", help="run the worker as this user (default: %(default)s)")
    w.add_argument("--writable", action="append", default=[], metavar="DIR",
                   help="another directory the sandboxed worker may write (e.g. its known_hosts folder)")
    w.add_argument("--no-enable", action="store_true", help="write the unit but do not enable it")
    w.add_argument("--exec", dest="exe", help="evidence-agent executable to run (default: this installation)")
    w.set_defaults(func=cmd_schedule_install_worker)
    rw = ss.add_parser("remove-worker", help="remove a worker service written by install-worker")
    rw.add_argument("name")
    rw.add_argument("--unit-dir")
    rw.set_defaults(func=cmd_schedule_remove_worker)
    s.set_defaults(func=lambda a: (s.print_help(), EXIT_INVALID)[1])


def _notify_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--notify-webhook", metavar="URL",
                   help=f"POST drift as JSON (Slack/Mattermost/Teams compatible); default ${WEBHOOK_ENV}")
    p.add_argument("--smtp-host", help="send drift by e-mail through this SMTP server")
    p.add_argument("--smtp-port", type=int, help="SMTP port (default 25; 465 with --smtp-ssl)")
    p.add_argument("--smtp-starttls", action="store_true", help="upgrade the SMTP connection with STARTTLS")
    p.add_argument("--smtp-ssl", action="store_true", help="SMTP over TLS from the start (port 465)")
    p.add_argument("--smtp-user", help="SMTP login user")
    p.add_argument("--smtp-password-env", metavar="VAR", help="environment variable holding the SMTP password")
    p.add_argument("--mail-to", action="append", default=[], help="recipient (repeatable, or comma separated)")
    p.add_argument("--mail-from", help="sender address (default evidence-agent@<this host>)")


def _err(msg: str) -> None:
    print(f"evidence-agent: {msg}", file=sys.stderr)


def _channels(a: argparse.Namespace) -> tuple[Any, Any]:
    """(Webhook|None, Smtp|None) from the options; raises ValueError on an incomplete configuration."""
    from .notify import Smtp, Webhook

    url = a.notify_webhook or os.environ.get(WEBHOOK_ENV) or None
    hook = Webhook(url) if url else None
    if hook:
        hook.validate()
    to = [x.strip() for v in a.mail_to for x in v.split(",") if x.strip()]
    smtp = None
    if a.smtp_host or to:
        if not (a.smtp_host and to):
            raise ValueError("e-mail needs both --smtp-host and --mail-to")
        if a.smtp_ssl and a.smtp_starttls:
            raise ValueError("--smtp-ssl and --smtp-starttls exclude each other")
        smtp = Smtp(host=a.smtp_host, port=a.smtp_port or (465 if a.smtp_ssl else 25), mail_to=to,
                    mail_from=a.mail_from, starttls=a.smtp_starttls, ssl=a.smtp_ssl, user=a.smtp_user,
                    password_env=a.smtp_password_env)
    return hook, smtp


class HostLog:
    """Observer writing one log line per finished host: name, address, outcome, duration, error."""

    def __init__(self, log: Any, addresses: dict[str, str]) -> None:
        self.log = log
        self.addresses = addresses

    def phase(self, name: str, total: Optional[int] = None) -> None:
        self.log.info("phase", f"phase: {name}" + (f" ({total} hosts)" if total is not None else ""),
                      phase=name, hosts=total)

    def host_started(self, name: str) -> None:
        pass

    def host_done(self, name: str, collected: bool, error: Optional[str], duration: float) -> None:
        outcome = "collected" if collected else "failed"
        msg = f"{name}: {outcome} in {duration:.1f}s" + (f" — {error}" if error else "")
        (self.log.info if collected else self.log.warning)(
            "host", msg, host=name, address=self.addresses.get(name), outcome=outcome,
            duration_seconds=round(duration, 3), error=error)

    def task(self, event: str, msg: str, **fields: Any) -> None:
        (self.log.warning if event in ("task-refused", "task-failed", "zone-without-worker", "worker-died",
                                       "broker-lost") else self.log.info)(event, msg, **fields)

    def close(self) -> None:
        pass


def _statuses_only(results: dict[str, Any]) -> dict[str, Any]:
    """results.json without the findings: what the summary, the history index and the notifications read."""
    return {**{k: results.get(k) for k in ("run", "hosts", "summary")},
            "controls": [{**{k: v for k, v in c.items() if k != "hosts"},
                          "hosts": [{"name": h.get("name"), "status": h.get("status")} for h in c.get("hosts") or []]}
                         for c in results.get("controls") or []]}


def cmd_run(a: argparse.Namespace) -> int:
    from collectors import signing
    from policies.model import load_profile

    from . import history, retention
    from .cli_common import default_key, load_key as _load_key
    from .drift import compare
    from .inventory import load_inventory
    from .lock import Locked, RunLock
    from .logjson import Logger, redact_url
    from .notify import notify
    from .progress import Fanout, Progress
    from .dist import broker_lost, scan_with
    from .dist.broker import BrokerError
    from .run import FAMILIES, ScanOptions

    log = Logger(json_lines=a.log_json, quiet=a.quiet)
    t0 = time.monotonic()
    only = tuple(x.strip() for x in a.only.split(",")) if a.only else FAMILIES
    bad = [x for x in only if x not in FAMILIES]
    if bad:
        log.error("invalid", f"--only: unknown probe family {', '.join(bad)} (choose from {', '.join(FAMILIES)})")
        return EXIT_INVALID
    if (a.keep is not None and a.keep < 1) or (a.keep_days is not None and a.keep_days <= 0):
        log.error("invalid", "--keep must be at least 1 and --keep-days more than 0")
        return EXIT_INVALID
    if a.concurrency < 1:
        log.error("invalid", "--concurrency must be at least 1")
        return EXIT_INVALID
    try:
        hook, smtp = _channels(a)
    except ValueError as e:
        log.error("invalid", str(e))
        return EXIT_INVALID
    if hook:
        log.add_secret(hook.url)
    if smtp and smtp.password_env:
        log.add_secret(os.environ.get(smtp.password_env))

    root = os.path.abspath(a.bundles)
    try:
        os.makedirs(root, exist_ok=True)
        lock = RunLock(os.path.join(root, ".lock"))
        lock.acquire()
    except Locked as e:
        log.error("locked", str(e), bundles=root)
        return EXIT_LOCKED
    except OSError as e:
        log.error("output", f"cannot use bundles directory {root}: {e.strerror}")
        return EXIT_OUTPUT
    try:
        try:
            inv = load_inventory(a.inventory)
            profile = load_profile(a.profile, a.policy_dir)
        except ConfigError as e:
            log.error("invalid", str(e))
            return EXIT_INVALID
        for h in inv.hosts:
            if h.ssh.password_env:
                log.add_secret(os.environ.get(h.ssh.password_env))
        try:
            key = _load_key(a.key, create=a.key == default_key() or a.create_key)
        except (signing.SignatureError, OSError) as e:
            log.error("output", str(e))
            return EXIT_OUTPUT
        for stale in history.remove_stale_partials(root):
            log.warning("stale_partial", f"removed {stale} left by an interrupted run", dir=stale)
        prev = history.latest(root) or (history.list_bundles(root) or [None])[-1]
        name = history.new_bundle_name(root)
        partial = os.path.join(root, history.PARTIAL_PREFIX + name)
        final = os.path.join(root, name)
        log.info("run_started", f"run {name}: {len(inv.hosts)} host(s), concurrency {a.concurrency}, into {final}",
                 bundle=name, bundles=root, hosts=len(inv.hosts), concurrency=a.concurrency,
                 inventory=os.path.abspath(a.inventory), only=list(only))
        observers: list[Any] = []
        tty = sys.stderr.isatty()
        if a.log_json or not tty:
            observers.append(HostLog(log, {h.name: h.address for h in inv.hosts}))
        if not a.quiet:
            if a.log_json:
                observers.append(Progress(tty=False, interval=30.0,
                                          emit=lambda line, counts: log.info("progress", line, **counts)))
            elif tty:
                observers.append(Progress(tty=True))
            else:
                observers.append(Progress(tty=False, interval=30.0))
        obs = Fanout(observers)
        opts = ScanOptions(out=partial, key=key, profile=profile, concurrency=a.concurrency, only=only,
                           vantage=a.vantage, observer=obs,
                           plans_from=os.path.join(root, prev) if prev else None)
        try:
            # only statuses are kept for the rest of the run (the bundle has everything): with the drift
            # comparison's two loaded results, whole findings would triple the memory of a large fleet
            full = scan_with(inv, opts, a.broker)
            lost = broker_lost(full)
            results = _statuses_only(full)
            del full
        except BrokerError as e:
            log.error("broker", str(e))
            return EXIT_BROKER
        except ConfigError as e:
            log.error("invalid", str(e))
            return EXIT_INVALID
        finally:
            obs.close()
        os.rename(partial, final)
        history.set_latest(root, name)
        drift = compare(os.path.join(root, prev) if prev else None, final)
        collected = sum(1 for h in results["hosts"] if h["collected"])
        code = EXIT_OK
        if "host" in only and inv.hosts and not collected:
            log.error("no_host", "no host could be collected")
            code = EXIT_NO_HOST
        if lost:
            log.error("broker_lost", f"{lost}: what arrived before is in the signed bundle, the rest is 점검불가")
            code = EXIT_BROKER
        log.info("drift", drift.short() if drift.previous else "first run in this directory: nothing to compare",
                 previous=drift.previous, **drift.counts())
        for c in drift.worse[:50]:
            log.warning("worse", c.text, kind=c.kind, subject=c.subject, host=c.host, before=c.before, after=c.after)

        outcomes: list[dict[str, Any]] = []
        want = {"worse": bool(drift.worse), "change": bool(drift.changes), "always": True}[a.notify_on]
        if want and (hook or smtp) and (drift.previous or a.notify_on == "always"):
            outcomes = notify(drift, inv.organisation, final,
                              {"total": len(results["hosts"]), "collected": collected}, hook, smtp)
            for o in outcomes:
                if o["ok"]:
                    log.info("notified", f"notified {o['channel']} {o['target']}", **o)
                else:
                    log.error("notify_failed", o["error"], **o)
        elif (hook or smtp) and drift.previous:
            log.info("not_notified", "nothing got worse: no notification" if a.notify_on == "worse"
                     else "nothing changed: no notification", channels=[
                         x for x, v in (("webhook", hook), ("email", smtp)) if v])

        duration = round(time.monotonic() - t0, 3)
        history.append_index(root, history.index_entry(name, results, drift, {
            "exit": code, "duration_seconds": duration, "only": list(only),
            "notified": [{k: v for k, v in o.items() if k in ("channel", "ok", "target")} for o in outcomes]}))

        p = retention.plan(root, a.keep, a.keep_days)
        gone = retention.apply(root, p)
        for g in gone:
            log.info("retention", f"deleted bundle {g} (retention)", deleted=g)
        log.info("run_finished", f"run {name} finished in {duration:.1f}s: {collected}/{len(results['hosts'])} "
                 f"host(s) collected; {drift.short()}", bundle=name, exit=code, duration_seconds=duration,
                 hosts=len(results["hosts"]), collected=collected,
                 controls=results["summary"].get("automated_controls"), worse=len(drift.worse),
                 deleted=gone or None, notify_target=redact_url(hook.url) if hook else None)
        if not a.quiet and not a.log_json:
            from output.summary import render_summary
            print(render_summary(results, lang=a.lang))
            print(("서명된 증적 번들: " if a.lang == "ko" else "Signed evidence bundle: ") + final)
            if drift.previous:
                print(drift.summary())
        return code
    finally:
        lock.release()


def cmd_history(a: argparse.Namespace) -> int:
    from . import history

    if not os.path.isdir(a.bundles):
        _err(f"{a.bundles}: not a directory")
        return EXIT_INVALID
    entries = history.runs(a.bundles)
    if a.limit and a.limit > 0:
        entries = entries[-a.limit:]
    if a.json:
        for e in entries:
            print(json.dumps(e, ensure_ascii=False, sort_keys=True))
    else:
        print(history.render_history(entries, history.latest(a.bundles)))
    return EXIT_OK


def cmd_schedule_install(a: argparse.Namespace) -> int:
    from . import schedule as sch
    from .inventory import load_inventory

    try:
        sch.parse_cron(a.every)
        name = sch.validate_name(a.name or sch.default_name(a.inventory))
    except sch.ScheduleError as e:
        _err(str(e))
        return EXIT_INVALID
    try:
        inv = load_inventory(a.inventory)
    except ConfigError as e:
        _err(str(e))
        return EXIT_INVALID
    try:
        hook, smtp = _channels(a)
    except ValueError as e:
        _err(str(e))
        return EXIT_INVALID
    backend = sch.detect_backend() if a.backend == "auto" else a.backend
    state = os.path.abspath(a.state_dir or os.path.join(sch.DEFAULT_STATE_ROOT, name))
    run_args: list[str] = []
    for opt, val in (("--profile", a.profile), ("--concurrency", a.concurrency), ("--only", a.only),
                     ("--vantage", a.vantage), ("--keep", a.keep), ("--keep-days", a.keep_days),
                     ("--notify-on", a.notify_on), ("--smtp-host", a.smtp_host), ("--smtp-port", a.smtp_port),
                     ("--smtp-user", a.smtp_user), ("--smtp-password-env", a.smtp_password_env),
                     ("--mail-from", a.mail_from)):
        if val is not None:
            run_args += [opt, f"{val:g}" if isinstance(val, float) else str(val)]
    for d in a.policy_dir:
        run_args += ["--policy-dir", os.path.abspath(d)]
    for t in (smtp.mail_to if smtp else []):
        run_args += ["--mail-to", t]
    for flag, on in (("--smtp-starttls", a.smtp_starttls), ("--smtp-ssl", a.smtp_ssl), ("--log-json", a.log_json)):
        if on:
            run_args.append(flag)
    env = {WEBHOOK_ENV: hook.url} if hook else {}
    job = sch.Job(name=name, every=a.every, inventory=os.path.abspath(a.inventory),
                  bundles=os.path.abspath(a.bundles), state_dir=state, run_args=run_args, env=env,
                  key=os.path.abspath(a.key) if a.key else None, user=a.user,
                  exe=[os.path.abspath(a.exe)] if a.exe else None)
    try:
        inst = sch.install(job, backend, a.unit_dir, a.cron_file, enable=not a.no_enable)
    except sch.ScheduleError as e:
        _err(str(e))
        return EXIT_INVALID
    except OSError as e:
        _err(f"cannot write the schedule: {e.filename}: {e.strerror}")
        return EXIT_OUTPUT
    print(f"schedule {name} ({backend}): every {a.every!r}"
          + (f" -> OnCalendar={' + '.join(inst.oncalendar)}" if inst.oncalendar else ""))
    for f in inst.files:
        print(f"  wrote {f}")
    print(f"  state directory: {state}; bundles: {job.bundles}")
    needs = sorted({h.ssh.password_env for h in inv.hosts if h.ssh.password_env}
                   | ({smtp.password_env} if smtp and smtp.password_env else set()))
    if needs:
        print(f"  the runs need {', '.join(needs)}: add NAME='value' lines to {os.path.join(state, 'env')} (mode 0600)")
    for n in inst.notes:
        print(f"  {n}")
    return EXIT_OK


def cmd_schedule_list(a: argparse.Namespace) -> int:
    from . import schedule as sch

    found = sch.list_installed(a.unit_dir, a.cron_file)
    if a.json:
        for f in found:
            print(json.dumps(f.__dict__, sort_keys=True))
        return EXIT_OK
    if not found:
        print("no evidence-agent schedules installed")
        return EXIT_OK
    for f in found:
        when = f"every {f.every!r}" + (f" (OnCalendar={' + '.join(f.oncalendar)})" if f.oncalendar else "")
        print(f"{f.name:20} {f.backend:8} {when}\n{'':29} inventory {f.inventory}\n{'':29} bundles   {f.bundles}"
              f"\n{'':29} files     {', '.join(f.files)}")
    return EXIT_OK


def cmd_schedule_remove(a: argparse.Namespace) -> int:
    from . import schedule as sch

    try:
        touched = sch.remove(a.name, a.unit_dir, a.cron_file)
    except sch.ScheduleError as e:
        _err(str(e))
        return EXIT_INVALID
    except OSError as e:
        _err(f"cannot remove the schedule: {e.filename}: {e.strerror}")
        return EXIT_OUTPUT
    for t in touched:
        print(f"removed schedule {a.name}: {t}")
    return EXIT_OK


def cmd_schedule_install_worker(a: argparse.Namespace) -> int:
    from . import schedule as sch
    from . import workerunit as wu

    try:
        job = wu.WorkerJob(zones=a.zone, state_dir="", key=os.path.abspath(a.key) if a.key else None,
                           concurrency=a.concurrency, broker_env=a.broker_env, user=a.user, name=a.name,
                           hostname=a.hostname, writable=[os.path.abspath(d) for d in a.writable],
                           exe=[os.path.abspath(a.exe)] if a.exe else None)
        assert job.name is not None
        job.state_dir = os.path.abspath(a.state_dir or wu.default_state_dir(job.name))
        inst = wu.install(job, a.unit_dir, enable=not a.no_enable)
    except sch.ScheduleError as e:
        _err(str(e))
        return EXIT_INVALID
    except OSError as e:
        _err(f"cannot write the worker service: {e.filename}: {e.strerror}")
        return EXIT_OUTPUT
    print(f"worker {inst.name}: zones {', '.join(job.zones)}")
    print(f"  wrote {inst.unit}")
    if inst.env_file:
        print(f"  wrote {inst.env_file} (${job.broker_env}, mode 0600)")
    print(f"  state directory: {job.state_dir}; key: {job.key_path}")
    for n in inst.notes:
        print(f"  {n}")
    return EXIT_OK


def cmd_schedule_remove_worker(a: argparse.Namespace) -> int:
    from . import schedule as sch
    from . import workerunit as wu

    try:
        path = wu.remove(a.name, a.unit_dir)
    except sch.ScheduleError as e:
        _err(str(e))
        return EXIT_INVALID
    except OSError as e:
        _err(f"cannot remove the worker service: {e.filename}: {e.strerror}")
        return EXIT_OUTPUT
    print(f"removed worker {a.name}: {path}")
    return EXIT_OK

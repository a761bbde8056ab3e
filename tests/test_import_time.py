"""Importing the code does no work: no data file is read, no logging is configured and no environment variable
is read when a module of ``common/``, ``probes/``, ``policies/``, ``collectors/``, ``agent/`` or ``output/`` is
imported. Why: a library user, a test or ``--help`` should not pay for (or be surprised by) tables being parsed,
a third party's log level being changed or the environment being read before a command runs; that work happens
on first use (functools.cache, probes.base.LazyCommands).

Every module is imported in a fresh interpreter with ``sys.addaudithook`` watching "open", ``os.environ``
replaced by a recording proxy and the logging configuration calls wrapped. A call is charged to the project
when the first frame outside the standard library that leads to it is one of the project's files (a third-party
library reading its own metadata while being imported is not ours). The child also proves its instruments
work: the same calls made from a file of the project after the imports are seen.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ["common", "probes", "policies", "collectors", "agent", "output"]

CHILD = r'''
import importlib, json, logging, logging.config, os, pkgutil, sys, sysconfig
ROOT = os.path.abspath(sys.argv[1])
sys.path.insert(0, ROOT)
STDLIB = os.path.realpath(sysconfig.get_paths()["stdlib"]) + os.sep
CODE = (".py", ".pyc", ".so", ".pth")
events = []
phase = ["import"]


def lib(path):
    """An installed library's file (the virtualenv may sit inside the project folder, as `make` puts it)."""
    parts = os.path.abspath(path).split(os.sep)
    return "site-packages" in parts or "dist-packages" in parts or os.path.abspath(path).endswith(".egg-info") or \
        any(p.endswith(".egg-info") for p in parts)


def ours(frame):
    """The project file and line that caused this call, or None when the first non-stdlib frame is not ours."""
    while frame is not None:
        fn = frame.f_code.co_filename
        real = os.path.realpath(fn)
        if fn.startswith("<") or (real.startswith(STDLIB) and "-packages" + os.sep not in real):
            frame = frame.f_back
            continue
        if fn.startswith(ROOT + os.sep) and not fn.startswith(os.path.join(ROOT, "tests") + os.sep) and not lib(fn):
            return os.path.relpath(fn, ROOT) + ":" + str(frame.f_lineno)
        return None
    return None


def note(kind, what, frame):
    where = ours(frame)
    if where:
        events.append({"phase": phase[0], "kind": kind, "what": what, "where": where})


def hook(event, args):
    if event != "open" or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    path = os.fsdecode(args[0])
    if path.endswith(CODE) or os.path.isdir(path):
        return
    if os.path.abspath(path).startswith(ROOT + os.sep) and not lib(path):  # the project's own data, whoever opens it
        events.append({"phase": phase[0], "kind": "open", "what": path, "where": ours(sys._getframe(1)) or "?"})
    else:
        note("open", path, sys._getframe(1))


real_env = os.environ


class RecordingEnviron:
    def __getattr__(self, name):
        return getattr(real_env, name)

    def __getitem__(self, k):
        note("env", k, sys._getframe(1))
        return real_env[k]

    def get(self, k, default=None):
        note("env", k, sys._getframe(1))
        return real_env.get(k, default)

    def __contains__(self, k):
        note("env", k, sys._getframe(1))
        return k in real_env

    def __iter__(self):
        return iter(real_env)

    def __len__(self):
        return len(real_env)

    def __setitem__(self, k, v):
        real_env[k] = v

    def __delitem__(self, k):
        del real_env[k]


def wrap(owner, name):
    orig = getattr(owner, name)

    def wrapped(*a, **kw):
        handler = [x for x in a if isinstance(x, logging.Handler)]
        if not (name == "addHandler" and handler and isinstance(handler[0], logging.NullHandler)):
            note("logging", f"logging {name}{tuple(str(x) for x in a)}", sys._getframe(1))
        return orig(*a, **kw)

    setattr(owner, name, wrapped)


for owner, name in ((logging.Logger, "setLevel"), (logging.Logger, "addHandler"), (logging, "basicConfig"),
                    (logging, "disable"), (logging, "captureWarnings"), (logging.config, "dictConfig"),
                    (logging.config, "fileConfig")):
    wrap(owner, name)
sys.addaudithook(hook)
os.environ = RecordingEnviron()

modules, errors = [], {}
for pkg in sys.argv[2].split(","):
    p = importlib.import_module(pkg)
    modules.append(pkg)
    modules += [m.name for m in pkgutil.walk_packages(p.__path__, pkg + ".")]
for name in modules:
    try:
        importlib.import_module(name)
    except Exception as e:  # noqa: BLE001 - reported to the test
        errors[name] = repr(e)

# the instruments themselves: the same kinds of call made from a project file are seen
phase[0] = "selfcheck"
code = ("from probes.host.common import load_data; load_data.cache_clear(); load_data('services.yaml'); "
        "import os, logging; os.environ.get('HOME'); logging.getLogger('ea-selfcheck').setLevel(10)")
exec(compile(code, os.path.join(ROOT, "probes", "_import_selfcheck.py"), "exec"), {})
print(json.dumps({"modules": modules, "errors": errors, "events": events}))
'''


def run_child(root: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    r = subprocess.run([sys.executable, "-c", CHILD, root, ",".join(PACKAGES)], capture_output=True, text=True,
                       timeout=180, env=env, cwd=root)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_importing_any_module_reads_no_file_configures_no_logging_and_reads_no_environment() -> None:
    out = run_child(ROOT)
    assert len(out["modules"]) > 60 and "probes.host.remote_admin" in out["modules"], out["modules"]
    assert not out["errors"], out["errors"]
    at_import = [e for e in out["events"] if e["phase"] == "import"]
    assert not at_import, "work done at import:\n" + "\n".join(
        f"  {e['where']}: {e['kind']} {e['what']}" for e in at_import)
    seen = {e["kind"] for e in out["events"] if e["phase"] == "selfcheck"}
    assert seen == {"open", "env", "logging"}, f"the instruments missed a kind of call: {out['events']}"

"""Layers only point down: the package graph (every import, function-level ones included) has no cycle, and
probes/ and policies/ never import agent/ (the CLI and orchestration sit on top of them, not under them)."""
from __future__ import annotations

import ast
import os
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("agent", "common", "probes", "policies", "collectors", "output")


def package_graph() -> dict[str, dict[str, list[str]]]:
    """package → imported package → files that import it."""
    g: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for pk in PACKAGES:
        for dirpath, _, files in os.walk(os.path.join(ROOT, pk)):
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(dirpath, name)
                tree = ast.parse(open(path, encoding="utf-8").read(), path)
                for n in ast.walk(tree):
                    mods = [a.name for a in n.names] if isinstance(n, ast.Import) else \
                        [n.module] if isinstance(n, ast.ImportFrom) and n.level == 0 and n.module else []
                    for m in mods:
                        top = m.split(".")[0]
                        if top in PACKAGES and top != pk:
                            g[pk][top].append(os.path.relpath(path, ROOT))
    return g


def test_probes_and_policies_import_nothing_from_agent():
    g = package_graph()
    assert "agent" not in g["probes"], g["probes"]["agent"]
    assert "agent" not in g["policies"], g["policies"]["agent"]
    assert set(g["common"]) == set(), dict(g["common"])


def test_the_package_graph_has_no_cycle():
    g = package_graph()
    state: dict[str, int] = {}

    def visit(n: str, stack: list[str]) -> None:
        state[n] = 1
        for m in g.get(n, {}):
            assert state.get(m) != 1, f"import cycle: {' → '.join(stack + [n, m])}"
            if m not in state:
                visit(m, stack + [n])
        state[n] = 2

    for p in PACKAGES:
        if p not in state:
            visit(p, [])
    assert "agent" in g and "probes" in g["agent"]  # the walk really saw imports


def test_the_old_module_names_are_the_moved_modules():
    import agent.scope
    import agent.yamlsrc
    import common.scope
    import common.yamlsrc
    assert agent.scope is common.scope and agent.yamlsrc is common.yamlsrc
    from agent.yamlsrc import ConfigError
    assert ConfigError is common.yamlsrc.ConfigError


def test_one_vocabulary_of_verdicts():
    from agent import drift, history
    from collectors import attach
    from policies import engine
    from policies.model import STATUSES, Verdict
    values = {v.value for v in Verdict}
    assert set(STATUSES) == values == {engine.IMPL, engine.PART, engine.NI, engine.NA, engine.UNK}
    assert set(history.STATUSES) == values and set(drift._RANK) == values
    assert set(attach.STATUSES) == values - {"unknown"}
    assert type(engine.IMPL) is str  # results.json keeps plain strings


def test_cli_modules_do_not_import_each_other() -> None:
    """cli registers cli_report's and fleet_cli's sub-commands; they share agent/cli_common.py instead of reaching
    back into cli (which made an import cycle)."""
    import ast
    import os

    agent_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "agent")
    for name in ("cli_report.py", "fleet_cli.py", "cli_common.py"):
        tree = ast.parse(open(os.path.join(agent_dir, name), encoding="utf-8").read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                mod = ("." * node.level) + (node.module or "")
                assert mod not in (".cli", "agent.cli"), f"{name} imports agent.cli"

"""Policies: the guide's control catalog and the rules (YAML data) that turn facts into verdicts.

``catalog/<profile>.yaml`` lists the detailed items; ``rules/*.yaml`` hold the checks;
:mod:`policies.engine` evaluates them. No rule is Python code.
"""

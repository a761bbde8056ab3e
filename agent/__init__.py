"""The agent: command-line interface, inventory loading, scope checks and run orchestration.

Entry point: ``evidence-agent`` (:func:`agent.cli.main`).
"""
__version__ = "0.1.0"

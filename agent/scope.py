"""Moved to :mod:`common.scope` (probes/ and policies/ must not import agent/). This name stays so that existing
imports keep working: it is the same module object, so monkeypatching either name patches both."""
import sys

from common import scope as _moved

sys.modules[__name__] = _moved

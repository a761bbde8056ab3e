"""Base helpers every layer may import (agent, probes, policies, collectors, output): the scope check and the
YAML source reader. They import nothing from the project, so the layers above only ever point down."""

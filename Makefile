# Daily verbs: `make run` (scan this machine with the built-in inventory), `make test`, `make bench`, `make reliability`, `make lint`.
# Both run and test set everything up on a fresh Debian machine: Debian packages (as root), a virtualenv, pinned pips.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EA := $(VENV)/bin/evidence-agent
STAMP := $(VENV)/.installed
BUNDLES ?= bundles
RUN_ARGS ?=

.PHONY: run test bench reliability lint fmt setup system-deps-run system-deps-test system-deps-bench clean

$(STAMP): requirements.txt requirements-test.txt setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt -r requirements-test.txt
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps -e .
	@$(PY) -c "import importlib.metadata as m; v=m.version('sslyze'); assert v.startswith('6.3'), 'sslyze resolved to '+v; print('sslyze', v, 'cryptography', m.version('cryptography'), 'paramiko', m.version('paramiko'))"
	touch $(STAMP)

setup: $(STAMP)

system-deps-run:
	@sh scripts/system-deps.sh run

system-deps-test:
	@sh scripts/system-deps.sh test

## Scan this machine (local transport + loopback network): a signed bundle under ./bundles/ plus its HTML/XLSX report
run: system-deps-run $(STAMP)
	@mkdir -p $(BUNDLES)
	@out=$(BUNDLES)/$$(date -u +%Y%m%dT%H%M%SZ); \
	  $(EA) scan --out $$out $(RUN_ARGS); rc=$$?; \
	  if [ -f $$out/results.json ]; then \
	    $(EA) report $$out --format html && $(EA) report $$out --format xlsx && $(EA) verify $$out; \
	  fi; exit $$rc

## Run the test suite (starts its own sshd, TLS/HTTP servers and namespace lab)
test: system-deps-test $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

system-deps-bench:
	@sh scripts/system-deps.sh bench

BENCH_VENV := .venv-bench
$(BENCH_VENV)/.installed: requirements-bench.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q --disable-pip-version-check -r requirements-bench.txt
	touch $@

## Performance figures (root: benchmarks run in their own network namespaces); ansible-core is the fleet peer
bench: system-deps-bench $(STAMP) $(BENCH_VENV)/.installed
	$(PY) benchmarks/net_bench.py
	$(PY) benchmarks/target_cost.py
	$(PY) benchmarks/fleet.py
	$(PY) benchmarks/lab_collect.py
	$(PY) benchmarks/bastion.py
	$(PY) benchmarks/distributed.py

## Reliability figures (root): SSH faults survived, killed runs left verifiable, tamper cases rejected, secrets leaked
reliability: system-deps-test $(STAMP)
	$(PY) benchmarks/reliability_faults.py
	$(PY) benchmarks/reliability_bundles.py
	$(PY) benchmarks/chatty_host.py

lint: $(STAMP)
	$(PY) -m pyflakes agent probes policies collectors output tests benchmarks
	$(PY) scripts/gen_facts_schema.py --check
	$(PY) -m mypy

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

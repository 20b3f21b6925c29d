# The two commands a newcomer types: `make test` and `make demo`.
# Both create .venv at the repository root when it is missing and install
# uglspot into it with its dev extra; nothing relies on packages installed by hand.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.uglspot-installed

.PHONY: test demo venv clean-venv

venv: $(STAMP)

# The official SoccerNet evaluator is the reference in tests; it needs only
# numpy and tqdm, so its heavy optional dependencies are not installed.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps 'SoccerNet==0.2.0'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

# Each `make demo` writes a new folder, so an earlier run is never overwritten.
demo: $(STAMP)
	$(PY) -m uglspot demo --out demo-runs/$$(date +%Y%m%d-%H%M%S)

clean-venv:
	rm -rf $(VENV)

# Two commands on a fresh machine with only Python 3.11: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup run test test-slow lint typecheck docs bench clean

setup: $(STAMP)

# torch is pinned and installed first so that the local CPU build is taken
# (any other spec pulls several GB of CUDA packages); every install passes the
# constraints file (torch==2.13.0) so that no later package can replace it.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) scripts/run.py $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q
	$(MAKE) lint typecheck docs

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check envs risk predictors agents scripts tests examples krakenrl paper hydra_plugins

typecheck: $(STAMP)
	$(VENV)/bin/mypy envs risk krakenrl agents paper

# the documentation site; --strict turns every warning into an error
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict -d site

bench: $(STAMP)
	$(PY) scripts/bench.py $(ARGS)

clean:
	rm -rf $(VENV) outputs mlruns site .pytest_cache .mypy_cache .ruff_cache

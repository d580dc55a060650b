PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint bench bench-sip compile-sip compile-rules clean-compiled clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Checking the shipped rule packs compiles their Hyperscan databases into the user's cache
# (rules/dbcache.py), so that the first `make demo` or gateway start reads them instead.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/afgw rules check rules/packs
	touch $@

demo: $(VENV)/.installed
	$(BIN)/afgw demo

test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(VENV)/.installed
	$(BIN)/python bench/smpp_throughput.py

bench-sip: $(VENV)/.installed
	$(BIN)/python bench/sip_cps.py

# The SIP core compiled with mypyc (optional: without it the same modules run as Python); the modules
# are listed in protocols/sip/_mypyc_build.py. A build from before is removed first, as below.
compile-sip: | $(BIN)/python
	rm -f protocols/sip/*.so
	$(BIN)/python protocols/sip/_mypyc_build.py build_ext --inplace

# The rules engine's message path compiled with mypyc (optional, as above); the modules are listed in
# rules/_mypyc_build.py, the loader and compiler stay Python. A build from before is removed first:
# the package refuses to import while it is older than its source.
compile-rules: | $(BIN)/python
	rm -f rules/*.so
	$(BIN)/python rules/_mypyc_build.py build_ext --inplace

clean-compiled:
	rm -f protocols/sip/*.so rules/*.so *__mypyc.*.so

clean: clean-compiled
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

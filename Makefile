PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint bench bench-sip compile-sip clean-compiled clean

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

# The SIP core compiled with mypyc (optional: without it the same modules run as Python).
SIP_COMPILED := uri headers message parser transaction dialog

compile-sip: $(VENV)/.installed
	$(BIN)/mypyc $(SIP_COMPILED:%=protocols/sip/%.py)

clean-compiled:
	rm -f protocols/sip/*.so *__mypyc.*.so

clean: clean-compiled
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint bench bench-sip compile clean-compiled clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Checking the shipped rule packs compiles their Hyperscan databases into the user's cache
# (rules/dbcache.py), so that the first `make demo` or gateway start reads them instead.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/afgw rules check rules/packs
	@touch $@

demo: $(VENV)/.installed compile
	$(BIN)/afgw demo

test: $(VENV)/.installed compile
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(VENV)/.installed compile
	$(BIN)/python bench/smpp_throughput.py

bench-sip: $(VENV)/.installed compile
	$(BIN)/python bench/sip_cps.py

# The modules that run for every message, compiled with mypyc in place, one group per package
# (afgw_compiled/build.py). A package whose build is older than its sources runs from the sources
# (afgw_compiled), so each build is remade when one of its sources changes. Where mypyc cannot build
# (no C compiler), the package runs as Python and make says so.
SIP_COMPILED   := uri headers message parser transaction dialog
RULES_COMPILED := engine predicates senders normalise homophones squeeze_fold condition velocity message
RULES_C        := _views.c
# linked with the system's libhs (libhyperscan-dev), built only where it is installed
RULES_C_HS     := _hs.c

define mypyc
	@rm -f $(1)/*.so
	@if $(BIN)/python -m afgw_compiled.build $(1) $(2) > $(1)/.compile.log 2>&1; then \
		echo "compiled $(1) with mypyc"; \
	else \
		rm -f $(1)/*.so; echo "mypyc could not build $(1) (see $(1)/.compile.log): it runs as Python"; \
	fi
	@touch $@
endef

compile: protocols/sip/.compiled rules/.compiled

protocols/sip/.compiled: $(SIP_COMPILED:%=protocols/sip/%.py) afgw_compiled/build.py | $(VENV)/.installed
	$(call mypyc,protocols/sip,$(SIP_COMPILED))

rules/.compiled: $(RULES_COMPILED:%=rules/%.py) $(RULES_C:%=rules/%) $(RULES_C_HS:%=rules/%) afgw_compiled/build.py | $(VENV)/.installed
	$(call mypyc,rules,$(RULES_COMPILED) $(RULES_C) $(RULES_C_HS:%=%:hs))

clean-compiled:
	rm -f protocols/sip/*.so rules/*.so *__mypyc.*.so protocols/sip/.compiled rules/.compiled

clean: clean-compiled
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

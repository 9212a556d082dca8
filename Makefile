# Two commands work on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint install guests clean

# Set-up pieces of one area (mk/adapters.mk: Datadog's test agent in its own venv).
-include mk/*.mk
.DEFAULT_GOAL := test

# Quiet pip, but say what is happening: the first install downloads ~150 MB and takes about a minute.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "make: creating the virtualenv $(VENV) with $(PY)"; $(PY) -m venv $(VENV); }
	@echo "make: installing observe-sdk with all extras and the test tools into $(VENV) (pip, quiet; about a minute the first time)"
	@$(BIN)/pip install -q --upgrade pip
	@$(BIN)/pip install -q -e ".[all,dev]"
	@touch $(STAMP)
	@echo "make: $(VENV) is ready"

install: $(STAMP)

demo: install
	$(BIN)/python -m cod_reference.demo

test: install ddagent
	$(BIN)/python -m pytest -q tests

bench: install
	$(BIN)/python -m pytest -q benchmarks --benchmark-only -p no:cacheprovider --benchmark-autosave

# ruff and mypy, configured in pyproject.toml (mypy: strict for observe_sdk).
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

# Rebuild the guest examples (needs clang/wasi-libc; the built .wasm are committed; the
# wasi:otel component is built by componentize-py, not committed: the tests build it too).
guests: install
	bash guest-examples/build.sh
	$(BIN)/python guest-examples/component/build.py

clean:
	rm -rf $(VENV) .venv-ddagent .pytest_cache .benchmarks

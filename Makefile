# wecom-bot: every target bootstraps its own virtualenv, so a fresh machine needs only these commands.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint typecheck bench clean help

help:
	@echo "make run        start the emulator + gateway demo on the embedded defaults"
	@echo "make test       ruff, mypy --strict, then the whole test suite (bootstraps .venv)"
	@echo "make lint       ruff check"
	@echo "make typecheck  mypy --strict on src/"
	@echo "make bench      run the benchmarks in bench/ and print the figures"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m wecom_bot.demo

test: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m bench.run_all

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info

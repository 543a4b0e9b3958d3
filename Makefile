# wecom-bot: every target bootstraps its own virtualenv, so a fresh machine needs only these commands.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
RUN_STAMP := $(VENV)/.run-stamp
DIST ?= dist

.PHONY: run test provision lint typecheck bench dist clean help

help:
	@echo "make run        start the emulator + gateway demo on the embedded defaults"
	@echo "make test       provision, ruff, mypy --strict, then the whole test suite (bootstraps .venv)"
	@echo "make provision  install the Debian packages the tests start (as root), or say how"
	@echo "make lint       ruff check"
	@echo "make typecheck  mypy --strict on src/"
	@echo "make bench      run the benchmarks in bench/ and print the figures"
	@echo "make dist       build the wheel into dist/ (pip install / pipx install it, see README)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# make run needs only the runtime extras, so its first run does not fetch the dev toolchain.
$(RUN_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[gateway,emulator]'
	touch $(RUN_STAMP)

# REAL=1 sends the demo's alerts to the group of WECOM_BOT_KEY instead of the emulator.
run: $(RUN_STAMP)
	$(PY) -m wecom_bot.demo $(if $(filter 1,$(REAL)),--real)

# Redis, Alertmanager, Chromium and fonts: the tests start them (scripts/provision).
provision:
	@scripts/provision

test: provision $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m bench.run_all

# The virtualenv alone, for targets that need only its pip (dist).
$(PY):
	$(PYTHON) -m venv $(VENV)

# build/ goes first: setuptools would otherwise pack files left there by an older build.
dist: $(PY)
	rm -rf build
	$(PY) -m pip wheel -q --disable-pip-version-check --no-deps -w $(DIST) .
	@ls $(DIST)/wecom_bot-*.whl

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist src/*.egg-info

# Everything a fresh machine needs: `make test` and `make demo`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-dev
RUN_STAMP := $(VENV)/.installed
LOCK   := requirements.lock
DEV_LOCK := requirements-dev.lock
LINTED := worker producers ops tests

.PHONY: test lint unit venv demo clean lock chromium

# The venv's own pip (bundled with Python) does the installs: nothing unpinned is fetched.
$(PY):
	$(PYTHON) -m venv $(VENV)

# Installs are hash-checked: exactly the packages pinned in the lock file, each file checked
# against its sha256 (a missing pin or a changed file stops the install). Then the project
# itself, editable, with no dependency resolved again and built with the locked setuptools.
$(STAMP): pyproject.toml $(DEV_LOCK) | $(PY)
	$(PY) -m pip install -q --require-hashes -r $(DEV_LOCK)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The demo needs tfq without the dev extras; an up-to-date dev install already has it (the
# dev lock pins every package of the runtime lock at the same version).
$(RUN_STAMP): pyproject.toml $(LOCK) | $(PY)
	@if [ ! $(STAMP) -nt pyproject.toml ] || [ ! $(STAMP) -nt $(DEV_LOCK) ] \
	  || [ ! $(STAMP) -nt $(LOCK) ]; then \
	  set -x; \
	  $(PY) -m pip install -q --require-hashes -r $(LOCK) && \
	  $(PY) -m pip install -q --no-deps --no-build-isolation -e .; \
	fi
	touch $(RUN_STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy

# The browser tests drive Debian's Chromium through Playwright (never a browser Playwright
# downloads): install chromium and chromium-driver when either binary is missing, as root
# or through sudo. `make demo` does not need them.
CHROMIUM     := /usr/bin/chromium
CHROMEDRIVER := /usr/bin/chromedriver
chromium:
	@if [ -x $(CHROMIUM) ] && [ -x $(CHROMEDRIVER) ]; then exit 0; fi; \
	if [ "$$(id -u)" -eq 0 ]; then sudo=; \
	elif command -v sudo >/dev/null 2>&1; then sudo=sudo; \
	else echo "make: the browser tests need $(CHROMIUM) and $(CHROMEDRIVER) (Debian's" \
	  "chromium and chromium-driver); not root and no sudo: install them as root" >&2; exit 1; fi; \
	echo "make: installing Debian's chromium and chromium-driver"; \
	{ $$sudo apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	} && [ -x $(CHROMIUM) ] && [ -x $(CHROMEDRIVER) ] \
	|| { echo "make: could not install chromium and chromium-driver with apt-get;" \
	  "the browser tests need $(CHROMIUM) and $(CHROMEDRIVER)" >&2; exit 1; }

# Lint, types, then the whole suite against a reachable Redis (a private one if needed).
test: lint chromium
	@url="$$($(PY) -m ops.testkit.localredis ensure)" || exit 1; \
	TFQ_REDIS_URL="$$url" $(VENV)/bin/pytest -q; status=$$?; \
	$(PY) -m ops.testkit.localredis stop; exit $$status
	@# The quick chaos run: its own private Redis (with AOF), exit 1 unless every zero holds,
	@# with the sandbox reading the vendor's pages the older way and the newest way.
	$(PY) -m ops.chaos --quick --dialect classic
	$(PY) -m ops.chaos --quick --dialect newest

# The whole queue on this machine: Redis (a private one if needed), the sandbox, a worker.
demo: $(RUN_STAMP)
	$(VENV)/bin/tfq demo

clean:
	rm -rf $(VENV) .tfq .mypy_cache .ruff_cache .pytest_cache

# Regenerate both lock files from pyproject.toml with pip-tools (in a throwaway venv), for
# CPython 3.11 on Linux x86_64. Pins already in the files are kept where pyproject.toml still
# allows them; `make lock LOCK_ARGS=--upgrade` moves every package to its newest version,
# `make lock LOCK_ARGS="--upgrade-package NAME"` one package. The runtime lock is constrained
# by the dev lock, so the two pin the same version of every package they share.
LOCK_PYTHON ?= python3.11
PIP_TOOLS   ?= pip-tools==7.6.2
LOCK_ARGS   ?=
PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make lock" "$$tmp/bin/pip-compile" -q \
	--generate-hashes --strip-extras --allow-unsafe --all-build-deps \
	--no-emit-index-url --no-emit-find-links --no-emit-trusted-host $(LOCK_ARGS)
lock:
	@$(LOCK_PYTHON) -c 'import platform as p, sys; sys.exit(sys.version_info[:2] != (3, 11) \
	  or p.system() != "Linux" or p.machine() != "x86_64")' \
	  || { echo "make lock: needs CPython 3.11 on Linux x86_64 (LOCK_PYTHON=...)"; exit 1; }
	@tmp="$$(mktemp -d)" && trap 'rm -rf "$$tmp"' EXIT && \
	$(LOCK_PYTHON) -m venv "$$tmp" && "$$tmp/bin/python" -m pip install -q "$(PIP_TOOLS)" && \
	echo "pip-compile: $(DEV_LOCK)" && $(PIP_COMPILE) --extra dev -o $(DEV_LOCK) pyproject.toml && \
	echo "pip-compile: $(LOCK)" && $(PIP_COMPILE) -c $(DEV_LOCK) -o $(LOCK) pyproject.toml

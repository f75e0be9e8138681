# Everything a newcomer needs: `make run` and `make test`. The venv is created on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
IMAGE ?= signaling:dev
BASE_IMAGE ?= python:3.11-slim-bookworm
PYTEST_ARGS ?=
# The mypyc-compiled build lives in a venv of its own (never .so files in the source tree).
VENV_COMPILED ?= .venv-compiled
PYC := $(VENV_COMPILED)/bin/python
SOURCES := $(shell find signaling -name '*.py' 2>/dev/null)

.PHONY: run test test-fast test-container fuzz lint typecheck image base-image bench bench-shared clean compat-deps compiled run-pure test-compiled

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# The hot path compiled with mypyc (gcc and Python headers needed; about a minute), as a
# wheel built from a copy of the sources and installed into $(VENV_COMPILED).
$(VENV_COMPILED)/.installed: pyproject.toml setup.py scripts/build-compiled.sh $(SOURCES)
	test -x $(PYC) || $(PYTHON) -m venv $(VENV_COMPILED)
	$(PYC) -m pip install --quiet --upgrade pip 'setuptools>=77' wheel 'mypy>=1.11'
	scripts/build-compiled.sh $(VENV_COMPILED) dev
	touch $@

compiled: $(VENV_COMPILED)/.installed

# Serve on $PORT (default 8080) with the embedded in-memory journal, compiled build.
# -P: the source tree in the current directory must not shadow the compiled package.
run: $(VENV_COMPILED)/.installed
	$(PYC) -P -m signaling

# The same, interpreted (no compiler needed).
run-pure: $(VENV)/.installed
	$(PY) -m signaling

# Node `ws` for the seed's unchanged test-two-clients.js.
tests/compat/node_modules/.package-lock.json: tests/compat/package.json tests/compat/package-lock.json
	cd tests/compat && npm ci --silent --no-audit --no-fund

compat-deps: tests/compat/node_modules/.package-lock.json

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check signaling tests scripts
	$(VENV)/bin/ruff format --check signaling tests scripts

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

# Inner loop: the pure core and wire codec only, a few seconds.
test-fast: $(VENV)/.installed
	$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

# Everything: lint, types, unit, integration over real sockets, compat (Node, aiortc),
# observability (real Prometheus) and container tests (skipped without an engine
# unless SIGNALING_REQUIRE_DOCKER=1).
test: $(VENV)/.installed compat-deps lint typecheck
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# The differential properties against websockets (tests/adversarial: the frame parser,
# about 250 examples a second, and the opening handshake, about 450) with many more
# examples than `make test` runs; FUZZ_EXAMPLES=N to change.
FUZZ_EXAMPLES ?= 200000
fuzz: $(VENV)/.installed
	SIGNALING_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -p no:cacheprovider --timeout=0 \
		tests/adversarial/test_frame_differential.py \
		tests/adversarial/test_handshake_differential.py -k agrees $(PYTEST_ARGS)

# The suite against the compiled build (CI runs it before `make test`, which is pure).
# --import-mode=append and PYTHONSAFEPATH keep the source tree behind the installed wheel,
# also for the server processes the tests start; tests/perf/test_build.py checks it.
test-compiled: $(VENV_COMPILED)/.installed compat-deps
	PYTHONSAFEPATH=1 SIGNALING_EXPECT_COMPILED=1 $(PYC) -m pytest -q -p no:cacheprovider \
		--import-mode=append tests/unit tests/integration tests/compat tests/perf $(PYTEST_ARGS)

test-container: $(VENV)/.installed
	$(PY) -m pytest -v tests/container $(PYTEST_ARGS)

image:
	IMAGE=$(IMAGE) BASE_IMAGE=$(BASE_IMAGE) scripts/build-image.sh

# A local Debian base image, for machines that cannot pull from a registry.
base-image:
	scripts/ci/base-image.sh signaling-base:bookworm

# From the repository alone: the server on one CPU, `python -m signaling.loadtest` on another.
bench: $(VENV_COMPILED)/.installed
	PYTHON=$(PYC) scripts/bench.sh

# Beside the Node seed and PeerJS servers, with ../shared/bench (needs node and npm;
# SHARED_BENCH=/work/shared/bench from a worktree deeper down).
SHARED_BENCH ?= ../shared/bench
bench-shared: $(VENV_COMPILED)/.installed
	PROJECT_CMD="$(PYC) -P -m signaling" $(SHARED_BENCH)/run.sh

clean:
	rm -rf $(VENV) $(VENV_COMPILED) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache tests/compat/node_modules

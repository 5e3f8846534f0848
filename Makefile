# flywheel: `make demo` runs the closed loop on this machine; `make test` runs every test.
# Targets install what they need on first use; the stamp makes a second run install nothing.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Triton and its python backend in a venv of their own: nvidia-pytriton pins numpy<2, Feast needs numpy>=2.
SERVING_VENV  := .serving-venv
SERVING_STAMP := $(SERVING_VENV)/.installed
# pytest -n is not used: the integration tests start real services that want the machine to themselves.
PYTEST_ARGS ?=

.PHONY: install demo test test-fast up down lint bench lock clean system-deps

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# requirements.lock pins every transitive version, so two installs resolve the same set.
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

$(SERVING_STAMP): images/triton/requirements.txt
	test -x $(SERVING_VENV)/bin/python || $(PYTHON) -m venv $(SERVING_VENV)
	$(SERVING_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SERVING_VENV)/bin/python -m pip install --quiet -r images/triton/requirements.txt
	touch $(SERVING_STAMP)

# Debian packages the tests run for real (prometheus, promtool, pushgateway); a no-op once installed.
system-deps:
	bash scripts/system-deps.sh

# The two virtual environments (and, for the tests, the Debian packages) are independent: installed side
# by side.
install:
	$(MAKE) --no-print-directory -j2 $(STAMP) $(SERVING_STAMP)

demo: install
	$(BIN)/flywheel demo

# --durations prints the slowest tests: where the 35-minute budget goes.
test:
	$(MAKE) --no-print-directory -j3 $(STAMP) $(SERVING_STAMP) system-deps
	$(BIN)/python -m pytest -m "" --durations=20 $(PYTEST_ARGS)

# Unit, SQL and DAG tests only: no scheduler, no servers.
test-fast: $(STAMP) system-deps
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

# Airflow in the background for interactive use (a new home first gets a short story); `make down` stops it.
up: $(STAMP) $(SERVING_STAMP)
	$(BIN)/flywheel up

down: $(STAMP)
	$(BIN)/flywheel down

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/sqlfluff lint dbt/models sql $(wildcard plugins/flywheel/*/sql)

bench: $(STAMP) $(SERVING_STAMP)
	@for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# Refresh the lock after changing dependencies in pyproject.toml.
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^flywheel' > requirements.lock

clean:
	rm -rf .flywheel

# Stepscope — a newcomer needs two commands: `make demo` and `make test`.
SHELL := /bin/bash
PY := .venv/bin/python
export PY
# DATABASE_URL / REDIS_URL win when set; otherwise the wrapper uses PostgreSQL and Redis on
# their default ports when they answer, and starts embedded ones under var/ when they do not
# (demo: kept in var/demo/; tests: fresh in var/test-PID/), stopping what it started at the end.
WITH_SERVICES := $(PY) -m tools.local_services run

.PHONY: install demo test lint typecheck check pytest services services-stop bench bench-quick screenshots sandbox clean

install: .venv/.installed

.venv/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	.venv/bin/pip install --quiet --disable-pip-version-check "pip==26.3"
	.venv/bin/pip install --quiet --disable-pip-version-check --group dev
	touch $@

# Start the demo's services and leave them running (var/services.env names them for manage.py).
services: install
	@$(PY) -m tools.local_services start

services-stop: install
	@$(PY) -m tools.local_services stop

demo: install
	@$(WITH_SERVICES) --profile demo -- tools/demo.sh

lint: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports

typecheck: install
	.venv/bin/mypy .

check: install
	@$(WITH_SERVICES) --profile test -- bash -c '$(PY) manage.py check && $(PY) manage.py makemigrations --check --dry-run'

pytest: install
	@$(WITH_SERVICES) --profile test -- .venv/bin/pytest -p no:cacheprovider $(PYTEST_ARGS)

# One set of services for both steps (nested runs reuse the outer one's).
test: lint typecheck
	@$(WITH_SERVICES) --profile test -- $(MAKE) --no-print-directory check pytest

sandbox: install
	$(PY) manage.py sandbox serve

bench: install
	@$(WITH_SERVICES) --profile test -- $(PY) -m bench.run --full

bench-quick: install
	@$(WITH_SERVICES) --profile test -- $(PY) -m bench.run --quick

screenshots: install
	@$(WITH_SERVICES) --profile test -- $(PY) -m tools.screenshots

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache staticfiles

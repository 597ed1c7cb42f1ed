# Stepscope — a newcomer needs two commands: `make demo` and `make test`.
SHELL := /bin/bash
PY := .venv/bin/python
export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/stepscope
export REDIS_URL ?= redis://127.0.0.1:6379/0
export PY

.PHONY: install demo test lint typecheck check pytest services bench bench-quick screenshots sandbox clean

install: .venv/.installed

.venv/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	.venv/bin/pip install --quiet --disable-pip-version-check "pip==26.3"
	.venv/bin/pip install --quiet --disable-pip-version-check --group dev
	touch $@

services: install
	@tools/ensure_services.sh

demo: install services
	@tools/demo.sh

lint: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

typecheck: install
	.venv/bin/mypy .

check: install services
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

pytest: install services
	.venv/bin/pytest -p no:cacheprovider $(PYTEST_ARGS)

test: lint typecheck check pytest

sandbox: install
	$(PY) manage.py sandbox serve

bench: install services
	$(PY) -m bench.run --full

bench-quick: install services
	$(PY) -m bench.run --quick

screenshots: install services
	$(PY) -m tools.screenshots

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache staticfiles

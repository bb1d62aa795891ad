# Watcher — two commands for a newcomer: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# Human-readable logs on a terminal; production keeps JSON (LOG_FORMAT=json, the default).
LOG_FORMAT ?= plain
# The demo on `make run`: a fake marketplace and two agents working it; WATCHER_DEMO=0 leaves
# them out (web, worker and beat only).
WATCHER_DEMO ?= 1
DEMO_MARKET_PORT ?= 9001
DEMO_ON := $(filter-out 0,$(WATCHER_DEMO))
export HOST PORT LOG_FORMAT DEMO_MARKET_PORT

.DEFAULT_GOAL := help
.PHONY: help venv run test lint format migrate admin demo demo-agents messages bench clean stop-redis

help:
	@echo "make run    - install, migrate, create the admin, load demo data, start web+worker+beat"
	@echo "make test   - install, lint, check migrations and run the whole test suite"
	@echo "make lint   - ruff check + ruff format --check + the import layering contracts"
	@echo "make format - ruff format + ruff check --fix"
	@echo "make messages - update locale/ru (needs gettext) and compile the .mo files"
	@echo "make bench  - run the benchmarks in bench/ (slow)"

# The virtualenv is (re)installed when a requirements file changes.
$(VENV)/.installed: requirements.txt requirements-dev.txt watcher/agent/requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.installed

migrate: venv
	$(PY) manage.py migrate --noinput

admin: venv
	$(PY) manage.py ensure_admin

demo: venv
	$(PY) manage.py load_demo --if-empty

# The demo agents' config files (API keys, 0600) go to the data folder.
demo-agents: venv
	$(PY) manage.py demo_agents --server http://$(HOST):$(PORT) --market http://127.0.0.1:$(DEMO_MARKET_PORT)

run: migrate admin demo $(if $(DEMO_ON),demo-agents)
	@echo ""
	@echo "  Admin:     http://$(HOST):$(PORT)/admin/"
	@echo "  Live:      http://$(HOST):$(PORT)/live/agents/"
	@echo "  Office:    http://$(HOST):$(PORT)/office/"
	@echo "  API docs:  http://$(HOST):$(PORT)/api/docs/"
	@echo "  Health:    http://$(HOST):$(PORT)/api/v1/watcher/health"
	@$(if $(DEMO_ON),echo "  Demo:      fake marketplace http://127.0.0.1:$(DEMO_MARKET_PORT)/_control and agents demo-agent-1 and demo-agent-2")
	@echo ""
	$(VENV)/bin/honcho start -f Procfile $(if $(DEMO_ON),,web worker beat)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@# The layering contracts are in pyproject.toml ([tool.importlinter]).
	$(VENV)/bin/lint-imports --no-cache

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint
	@# Without REDIS_URL the tests get their own embedded Redis and SQLite under data/test.
	$(PY) manage.py makemigrations --check --dry-run
	WATCHER_DATA_DIR=$${WATCHER_DATA_DIR:-$(CURDIR)/data/test} $(PY) -m pytest $(PYTEST_ARGS)

messages: venv
	$(PY) manage.py makemessages -l ru --ignore=.venv --ignore=data --ignore=bench --ignore=tests
	$(PY) manage.py compilemessages --ignore=.venv

bench: venv
	$(PY) bench/parser_speed.py
	$(PY) bench/parser_accuracy.py ../shared/eval/dev_pages.jsonl

stop-redis: venv
	$(PY) -c 'from pathlib import Path; from config.embedded_redis import stop_embedded_redis as s; print("stopped" if s(Path("data")) else "not running")'

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# Every target sets itself up: a fresh machine needs only Python 3.11+ (and make).
PYTHON ?= python3
VENV := .venv
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
RUN := $(UV) run --frozen --no-sync
# pytest processes (pytest-xdist): one per core; a test file stays in one process, so its
# module-scoped fixtures (a server process, say) start once. 0 runs everything in this one.
PYTEST_WORKERS ?= auto
HOST ?= 127.0.0.1
PORT ?= 8000

# The worker is ARQ glue and needs Redis: without TEST_REDIS_URL it is left out of the
# coverage gate (CI runs the suite both ways, so it is gated there).
COVERAGE_OMIT := $(if $(TEST_REDIS_URL),,--omit=worker/*)

export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.DEFAULT_GOAL := help
.PHONY: help install run worker frontend openapi browser kubectl test bench check lint format typecheck audit migrate revision clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet uv==$(UV_VERSION)

install: $(UV) ## Install the locked dependencies into .venv
	$(UV) sync --frozen --compile-bytecode

run: install migrate frontend ## Build the frontend, migrate the database and serve both on http://$(HOST):$(PORT)
	$(RUN) python -m app --host $(HOST) --port $(PORT)

worker: install migrate ## Run the outbox worker (needs REDIS_URL; without it the API relays events)
	$(RUN) python -m worker

# The single-page frontend (React, Vite): sources in frontend/, built into app/frontend/,
# which the API serves. It is built again when a source, the lock or the API's schema changes.
FRONTEND := frontend
FRONTEND_BUILT := app/frontend/index.html
FRONTEND_SOURCES := $(shell find $(FRONTEND) -path $(FRONTEND)/node_modules -prune -o \
	-path $(FRONTEND)/src/client -prune -o -type f -print 2>/dev/null)

$(FRONTEND)/node_modules/.package-lock.json: $(FRONTEND)/package-lock.json
	npm ci --prefix $(FRONTEND) --no-audit --no-fund --loglevel=error

$(FRONTEND_BUILT): $(FRONTEND)/node_modules/.package-lock.json $(FRONTEND_SOURCES)
	npm run build --prefix $(FRONTEND)

frontend: $(FRONTEND_BUILT) ## Build the frontend into app/frontend/ (when its sources changed)

openapi: install ## Write the API's OpenAPI document to frontend/openapi.json, the frontend client's source
	$(RUN) python -m app.cli openapi > $(FRONTEND)/openapi.json.new
	mv $(FRONTEND)/openapi.json.new $(FRONTEND)/openapi.json

# The browser tests drive Debian's Chromium through Playwright (no browser download).
CHROMIUM := $(shell command -v chromium 2>/dev/null)

browser: ## Install Debian's Chromium for the browser tests when it is missing
ifeq ($(CHROMIUM),)
	apt-get update -qq && apt-get install -y -qq chromium
endif

# The deployment tests render the Kubernetes overlays with kubectl's kustomize (no cluster).
KUBECTL := $(shell command -v kubectl 2>/dev/null)

kubectl: ## Install kubectl from the configured apt sources when it is missing
ifeq ($(KUBECTL),)
	apt-get update -qq && apt-get install -y -qq kubectl
endif

# A standard OpenID Connect provider (Node.js) that the OAuth tests sign in with.
OIDC_SERVER := tests/oidc_server

$(OIDC_SERVER)/node_modules/.package-lock.json: $(OIDC_SERVER)/package-lock.json
	npm ci --prefix $(OIDC_SERVER) --no-audit --no-fund --loglevel=error

test: install check frontend browser kubectl $(OIDC_SERVER)/node_modules/.package-lock.json ## Lint, type-check, test the frontend and run the whole suite with the coverage gate
	npm test --prefix $(FRONTEND)
	$(RUN) coverage erase
	$(RUN) coverage run -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)
	$(RUN) coverage combine --quiet
	$(RUN) coverage report $(COVERAGE_OMIT)

# The load generator, from Debian's packages when it is missing.
WRK := $(shell command -v wrk 2>/dev/null)

bench: install ## Measure the main paths against a bare FastAPI app: bench/REPORT.md (QUICK=1: one short round)
ifeq ($(WRK),)
	apt-get update -qq && apt-get install -y -qq wrk
endif
	$(RUN) python -m bench.run $(if $(QUICK),--quick) $(if $(PROFILE),--profile)

check: lint typecheck ## Lint and type-check without running tests

lint: install ## ruff lint and format check
	$(RUN) ruff check .
	$(RUN) ruff format --check .

format: install ## Apply ruff fixes and formatting
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

typecheck: install ## mypy --strict
	$(RUN) mypy

audit: install ## Look up the locked dependencies in PyPI's vulnerability data (pip-audit)
	$(UV) export --frozen --format requirements-txt --no-emit-project --output-file $(VENV)/requirements.txt
	$(RUN) pip-audit --strict --disable-pip --require-hashes -r $(VENV)/requirements.txt

migrate: install ## Upgrade the database at DATABASE_URL to the latest revision
	$(RUN) alembic upgrade head

revision: install ## New migration from model changes: make revision m="add posts"
	@test -n "$(m)" || (echo 'usage: make revision m="what changes"' && exit 2)
	$(RUN) alembic revision --autogenerate -m "$(m)"

clean: ## Remove the virtualenv, caches and local data
	rm -rf $(VENV) .coverage .coverage.* .mypy_cache .ruff_cache .pytest_cache .hypothesis var $(OIDC_SERVER)/node_modules \
		$(FRONTEND)/node_modules $(FRONTEND)/src/client app/frontend

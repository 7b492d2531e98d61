# The two commands of the README: `make run` and `make test`.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint typecheck unit bench-credit uv sync browser

uv:
	@command -v $(UV) >/dev/null 2>&1 || python3 -m pip install --quiet --user uv

sync: uv
	@$(UV) sync --frozen --quiet

run: sync  ## start the whole platform on the embedded default
	$(UV) run bnpl up --host $(HOST) --port $(PORT)

lint: sync
	$(UV) run ruff check src tests scripts
	$(UV) run ruff format --check src tests scripts

typecheck: sync
	$(UV) run mypy

browser:  ## Debian's chromium, which the browser tests (tests/e2e/web) drive; installed once
	bash scripts/apt-install.sh chromium

test: lint typecheck browser  ## lint, type-check, then the whole suite on real engines
	$(UV) run pytest -q

# The two commands of the README: `make run` and `make test`.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint typecheck unit bench-credit uv sync kafka-install

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

kafka-install: sync  ## Java 17 and Maven (Debian) if missing, then Kafka's broker jars into .bnpl/kafka, once
	@command -v java >/dev/null && command -v mvn >/dev/null \
		|| scripts/apt-install.sh openjdk-17-jre-headless maven
	@$(UV) run bnpl kafka install >/dev/null

test: lint typecheck kafka-install  ## lint, type-check, then the whole suite on real engines
	$(UV) run pytest -q

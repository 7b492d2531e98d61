# The two commands of the README: `make run` and `make test`.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint typecheck unit bench-credit uv sync test-deps deploy-tools deploy-check kafka-install browser

uv:
	@command -v $(UV) >/dev/null 2>&1 || python3 -m pip install --quiet --user uv

sync: uv
	@$(UV) sync --frozen --quiet

run: sync  ## start the whole platform on the embedded default
	$(UV) run bnpl up --host $(HOST) --port $(PORT)

lint: sync
	$(UV) run ruff check src tests scripts deploy
	$(UV) run ruff format --check src tests scripts deploy

typecheck: sync
	$(UV) run mypy

# What the suite runs for real beyond Python: Debian's nginx (tests/e2e/edge), and the pinned
# kustomize and checkov (tests/deploy). Each is installed once; later runs cost nothing.
test-deps: sync
	scripts/apt-install.sh nginx
	UV=$(UV) scripts/deploy-tools.sh

deploy-tools: sync
	UV=$(UV) scripts/deploy-tools.sh

# Lint the image, render every overlay, validate the manifests, the alert rules and the
# dashboard, without a cluster or a container engine (deploy/check.py).
deploy-check: deploy-tools
	$(UV) run python deploy/check.py

kafka-install: sync  ## Java 17 and Maven (Debian) if missing, then Kafka's broker jars into .bnpl/kafka, once
	@command -v java >/dev/null && command -v mvn >/dev/null \
		|| scripts/apt-install.sh openjdk-17-jre-headless maven
	@$(UV) run bnpl kafka install >/dev/null

browser:  ## Debian's chromium, which the browser tests (tests/e2e/web) drive; installed once
	bash scripts/apt-install.sh chromium

test: lint typecheck test-deps kafka-install browser  ## lint, type-check, then the whole suite on real engines
	$(UV) run pytest -q

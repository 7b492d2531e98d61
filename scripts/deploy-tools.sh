#!/usr/bin/env bash
# The tools `make deploy-check` and tests/deploy need beyond the Python environment, each at a
# pinned version, installed once into .tools/ (a second run costs nothing):
# - kustomize, built from the Go module proxy with the machine's Go;
# - checkov, in an environment of its own (`uv tool`): its dependency pins would otherwise
#   move the project's own (it holds packaging and pytest back).
set -euo pipefail
cd "$(dirname "$0")/.."
KUSTOMIZE_VERSION=v5.7.1
CHECKOV_VERSION=3.3.30
UV=${UV:-$(command -v uv || echo "$HOME/.local/bin/uv")}
mkdir -p .tools/bin
if [[ "$(.tools/bin/kustomize version 2>/dev/null)" != "$KUSTOMIZE_VERSION" ]]; then
  command -v go >/dev/null || { echo "kustomize needs Go (https://go.dev) to build" >&2; exit 1; }
  echo "building kustomize $KUSTOMIZE_VERSION (once)"
  GOBIN="$PWD/.tools/bin" GOFLAGS=-mod=mod go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
fi
# checkov's environment, made now rather than in the middle of a test (python: checkov itself
# takes seconds to start).
"$UV" tool run --quiet --from "checkov==$CHECKOV_VERSION" python -c pass

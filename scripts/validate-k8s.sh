#!/usr/bin/env bash
# Offline validation of deploy/kubernetes/*.yaml against the Kubernetes OpenAPI schemas
# (strict: unknown fields fail) with kubernetes-validate from PyPI, which bundles the schemas,
# so no cluster is needed. Installs it into a throw-away venv when it is not on PATH.
# Exit 0 when every manifest passes, 1 when one fails, 0 with a note when the validator
# cannot be installed (no python3 venv or no PyPI access).
set -euo pipefail
cd "$(dirname "$0")/.."
validator="$(command -v kubernetes-validate || true)"
if [ -z "$validator" ]; then
  venv="${TMPDIR:-/tmp}/loadchain-k8s-validate"
  if [ ! -x "$venv/bin/kubernetes-validate" ]; then
    if ! { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet kubernetes-validate; } >&2; then
      echo "validate-k8s: skipped, kubernetes-validate could not be installed" >&2
      exit 0
    fi
  fi
  validator="$venv/bin/kubernetes-validate"
fi
"$validator" --strict deploy/kubernetes/*.yaml

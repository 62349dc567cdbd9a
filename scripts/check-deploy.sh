#!/usr/bin/env bash
# Checks the deployment files offline: every Kubernetes manifest against the
# 1.30 schemas (strict; the native sidecar's restartPolicy needs 1.28+), the
# compose file against the compose specification, and the Dockerfiles with
# hadolint. The configs inside them are checked by `secrets-sync check` in
# tests/cli.rs, and against the config's JSON Schema here.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(scripts/install-tools.sh)"
echo "== kubernetes-validate (1.30, strict)"
"$bin/kubernetes-validate" -k 1.30.0 --strict --quiet k8s/*.yaml
echo "== compose specification"
"$bin/check-jsonschema" --builtin-schema vendor.compose-spec compose/docker-compose*.yml
echo "== config examples against the config's JSON Schema"
scripts/check-config-schema.sh "$bin"
echo "== hadolint"
"$bin/hadolint" Dockerfile Dockerfile.prebuilt
echo "deployment files OK"

#!/usr/bin/env bash
# Validates every example config against the committed JSON Schema
# (schema/secrets-sync.schema.json): config-examples/, the compose configs,
# the starter config `init` writes, the configs inside the ConfigMaps of k8s/ and
# the Go tool's example configs (tests/fixtures/go-tool), which must pass
# unchanged. Then each file of tests/fixtures/schema-invalid must be refused,
# so that this check is known to be able to fail.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-$(scripts/install-tools.sh)}"
schema=schema/secrets-sync.schema.json
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# The config of every ConfigMap in k8s/, as kubelet would mount it.
"$bin/python" - "$tmp" k8s/*.yaml <<'PY'
import os, sys
from ruamel.yaml import YAML
out = sys.argv[1]
for path in sys.argv[2:]:
    for i, doc in enumerate(YAML(typ="safe").load_all(open(path))):
        if doc and doc.get("kind") == "ConfigMap" and "config.yaml" in doc.get("data", {}):
            name = f"{os.path.basename(path)}-{i}-config.yaml"
            open(os.path.join(out, name), "w").write(doc["data"]["config.yaml"])
PY
k8s_configs=("$tmp"/*-config.yaml)
[ "${#k8s_configs[@]}" -ge 3 ] || { echo "expected the ConfigMaps of k8s/, found ${#k8s_configs[@]}" >&2; exit 1; }
"$bin/check-jsonschema" --schemafile "$schema" \
  config-examples/*.yaml compose/config*.yaml src/starter.yaml \
  "${k8s_configs[@]}" tests/fixtures/go-tool/*.yaml
for f in tests/fixtures/schema-invalid/*.yaml; do
  if "$bin/check-jsonschema" --schemafile "$schema" "$f" >"$tmp/out" 2>&1; then
    echo "$f: the schema accepts a config that check refuses" >&2
    exit 1
  fi
done
echo "config schema: examples valid, $(ls tests/fixtures/schema-invalid/*.yaml | wc -l) invalid configs refused"

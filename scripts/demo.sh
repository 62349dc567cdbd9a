#!/usr/bin/env bash
# The main job on a fresh machine: install OpenBao, start a dev server, seed
# example secrets, and run secrets-sync on config-examples/demo.yaml writing
# into ./demo-out. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

BAO="$(scripts/install-openbao.sh)"
PORT="${DEMO_VAULT_PORT:-8200}"
export VAULT_ADDR="http://127.0.0.1:$PORT" VAULT_TOKEN=root
export SECRETS_DIR="${SECRETS_DIR:-$PWD/demo-out}"
export STATUS_FILE="${STATUS_FILE:-$SECRETS_DIR/.ready-state}"
export HTTP_PORT="${HTTP_PORT:-8080}" METRICS_PORT="${METRICS_PORT:-8081}" LOG_FORMAT="${LOG_FORMAT:-text}"
export CONFIG_FILE="${CONFIG_FILE:-config-examples/demo.yaml}"

echo "== building secrets-sync"
cargo build --locked
echo "== starting OpenBao dev server on $VAULT_ADDR"
"$BAO" server -dev -dev-root-token-id=root -dev-listen-address="127.0.0.1:$PORT" \
  >"${TMPDIR:-/tmp}/secrets-sync-demo-bao.log" 2>&1 &
bao_pid=$!
trap 'kill $bao_pid 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 1 50); do
  "$BAO" status >/dev/null 2>&1 && break
  sleep 0.2
done
"$BAO" status >/dev/null

echo "== seeding example secrets"
"$BAO" kv put -mount=secret demo/tls tlsCrt="-----BEGIN CERTIFICATE-----
demo certificate
-----END CERTIFICATE-----" tlsKey="-----BEGIN PRIVATE KEY-----
demo key
-----END PRIVATE KEY-----" >/dev/null
"$BAO" kv put -mount=secret demo/database username=app password="demo-$(date +%s)" db-host=db.internal >/dev/null
"$BAO" kv put -mount=secret demo/api api-key=demo-api-key >/dev/null

echo "== running secrets-sync: files appear under $SECRETS_DIR (Ctrl-C to stop)"
echo "   try: curl -s localhost:$METRICS_PORT/status; $BAO kv put -mount=secret demo/database username=app password=rotated db-host=db.internal"
target/debug/secrets-sync run

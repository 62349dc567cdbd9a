#!/usr/bin/env bash
# Makes sure `systemd-analyze` is on this machine (Debian's `systemd`
# package), for the check of packaging/systemd/secrets-sync.service in
# tests/systemd.rs; prints its path. Nothing is started: only the offline
# `verify` and `security --offline=true` are used.
set -euo pipefail
if ! bin="$(command -v systemd-analyze)"; then
  echo "installing systemd (for systemd-analyze) from Debian's packages" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: systemd-analyze is missing and installing it needs root (apt-get install systemd)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends systemd >&2
  bin="$(command -v systemd-analyze)" || { echo "error: apt-get installed systemd but no systemd-analyze was found" >&2; exit 1; }
fi
"$bin" --version | head -n 1 >&2
echo "$bin"

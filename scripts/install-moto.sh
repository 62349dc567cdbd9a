#!/usr/bin/env bash
# Makes sure `moto_server` (AWS played locally: Secrets Manager, SSM, STS,
# IAM) and boto3 (the tests' AWS client for setting up) are there: installs
# moto[server] from PyPI when missing. Prints the path of moto_server.
set -euo pipefail
if ! command -v moto_server >/dev/null 2>&1 || ! python3 -c 'import boto3, moto' >/dev/null 2>&1; then
  echo "installing moto[server] from PyPI" >&2
  python3 -m pip install --disable-pip-version-check --root-user-action=ignore --quiet 'moto[server]>=5,<6' >&2
  hash -r
fi
command -v moto_server

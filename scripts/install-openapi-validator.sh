#!/usr/bin/env bash
# Makes sure openapi-spec-validator (PyPI) is there for the test that
# validates docs/openapi.json (the local secrets API's OpenAPI document);
# installs it when missing. Prints the python that has it.
set -euo pipefail
if ! python3 -c 'import openapi_spec_validator' >/dev/null 2>&1; then
  echo "installing openapi-spec-validator from PyPI" >&2
  python3 -m pip install --disable-pip-version-check --root-user-action=ignore --quiet 'openapi-spec-validator>=0.7,<0.8' >&2
fi
command -v python3

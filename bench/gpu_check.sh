#!/usr/bin/env bash
# The GPU checks of issue 15 in one short run on a CUDA machine: the tests that skip without CUDA
# (device choice, fp16/bf16 autocast, the overlap schedule, runtime auto on a GPU, ONNX Runtime's CUDA
# provider), then one throughput table (bench/gpu.py). Writes its logs under $OUT (default /tmp/gpu_check).
#
# The packages the machine lacks travel as wheels in .whl/ (bench/gpu_wheels.sh fetches them here).
#     bash bench/gpu_check.sh            # about 5 minutes on an H200
set -u -o pipefail
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 TWOENDS_CACHE_DIR=/tmp/twoends-gpu-cache PYTHONPATH="$PWD"
if ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site:$PWD"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee "$OUT/gpu.txt"
$PY -c "import torch, twoends; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" 2>&1 | tee -a "$OUT/gpu.txt"
timeout 300 $PY -m pytest -q -rs -p no:cacheprovider tests/test_gpu.py \
  tests/backends/test_torch_backend.py -k "cuda or gpu or autocast or overlap or device" 2>&1 | tee "$OUT/tests.txt"
timeout 240 $PY bench/gpu.py --photos 512 2>&1 | tee "$OUT/table.txt"

"""Top-1 agreement of each speed mode with plain float32, on the benchmark photos and the test photos.

python bench/agreement.py                # with the torch.compile modes (a minute of compiling)
python bench/agreement.py --no-compile
python bench/agreement.py --runtimes --photos 200   # PyTorch fp32 vs ONNX Runtime / OpenVINO (issue 15)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.photos import make_photos  # noqa: E402
from tests.photos import photo_arrays  # noqa: E402


def main() -> None:
    import twoends

    count = int(sys.argv[sys.argv.index("--photos") + 1]) if "--photos" in sys.argv else 96
    photos = list(photo_arrays().values()) + make_photos(Path(tempfile.gettempdir()) / "twoends-bench-photos", count)
    torch = dict(runtime="torch")  # the reference is PyTorch itself, whatever the default runtime
    modes = {
        "fp32 NCHW": dict(channels_last=False, **torch),
        "fp32 channels-last": dict(channels_last=True, **torch),
        "bf16 channels-last": dict(channels_last=True, precision="bf16", **torch),
        "fp32 + compile": dict(compile=True, **torch),
        "bf16 + compile": dict(precision="bf16", compile=True, **torch),
    }
    if "--runtimes" in sys.argv:
        modes = {
            "fp32 NCHW": modes["fp32 NCHW"],
            "onnxruntime fp32": dict(runtime="onnxruntime"),
            "openvino fp32": dict(runtime="openvino"),
            "openvino bf16": dict(runtime="openvino", precision="bf16"),
        }
    if "--no-compile" in sys.argv:
        modes = {k: v for k, v in modes.items() if "compile" not in k}
    results = {}
    for name, opts in modes.items():
        clf = twoends.load("efficientnet_lite0", batch_size=8, **opts)
        preds = clf.predict(photos)
        results[name] = (np.array([p.index for p in preds]), np.stack([p.probabilities for p in preds]))
    ref_top, ref_p = results["fp32 NCHW"]
    print(f"{len(photos)} photos (5 real + {count} crops/flips of them)")
    print(f"{'mode':22} {'top-1 agreement':>16} {'max |dp|':>9} {'mean |dp| of top-1':>19}")
    for name, (top, p) in results.items():
        agree = (top == ref_top).mean()
        dp = np.abs(p - ref_p)
        top1 = np.abs(p[np.arange(len(top)), ref_top] - ref_p[np.arange(len(top)), ref_top]).mean()
        print(f"{name:22} {agree:16.1%} {dp.max():9.4f} {top1:19.4f}")


if __name__ == "__main__":
    main()

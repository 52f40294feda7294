"""Rule 1: never import a framework the user has not imported."""

import subprocess
import sys

FRAMEWORKS = ["torch", "jax", "tensorflow", "keras", "onnxruntime", "transformers", "timm", "torchvision", "flax"]


def _imported_after(code: str) -> list[str]:
    probe = code + f"\nimport sys\nprint(','.join(m for m in {FRAMEWORKS!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def test_import_twoends_imports_no_framework():
    assert _imported_after("import twoends") == []


def test_head_on_numpy_imports_no_framework():
    code = (
        "import numpy as np, twoends\n"
        "x = np.random.default_rng(0).normal(size=(4, 10))\n"
        "twoends.softmax(x); twoends.topk(x, 3); twoends.Head()(x)\n"
    )
    assert _imported_after(code) == []


def test_public_api_is_explicit():
    import twoends

    assert sorted(twoends.__all__) == sorted(set(twoends.__all__))
    for name in twoends.__all__:
        assert hasattr(twoends, name), name

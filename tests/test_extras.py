"""Optional dependencies: the extras in pyproject.toml, and a missing one's error naming the extra to install.

A dependency is made missing by putting None in ``sys.modules`` (Python's own way to make
an import fail with ImportError), restored after each test. The wheel test
(tests/test_wheel.py) sees the same messages in a real environment without the extras.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import tomllib

import twoends
from twoends.extras import EXTRA_OF, install_hint, require

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
# what each module is called on the package index (only where it differs from the module)
DIST = {"multipart": "python-multipart", "grpc": "grpcio", "ai_edge_litert": "ai-edge-litert", "ray": "ray"}


def forget(monkeypatch, *modules):
    """Drop modules (and their submodules) from sys.modules, so that they are imported afresh."""
    for name in list(sys.modules):
        if any(name == m or name.startswith(m + ".") for m in modules):
            monkeypatch.delitem(sys.modules, name)


def hide(monkeypatch, *modules):
    """Make ``import m`` fail with ImportError, as when m is not installed."""
    forget(monkeypatch, *modules)
    for m in modules:
        monkeypatch.setitem(sys.modules, m, None)


def test_every_feature_has_its_extra():
    assert {"serve", "onnx", "openvino", "audio", "tensorflow", "ray", "calibrate", "parquet"} <= set(EXTRAS)


@pytest.mark.parametrize("module, extra", sorted(EXTRA_OF.items()))
def test_each_module_is_installed_by_the_extra_that_its_message_names(module, extra):
    names = {re.split(r"[<>=\[ ;]", req, maxsplit=1)[0].lower() for req in EXTRAS[extra]}
    assert DIST.get(module, module.replace("_", "-")) in names, (module, extra, names)


def test_the_message_format():
    assert install_hint("pyarrow.parquet") == 'pip install "twoends[parquet]"'
    assert install_hint("timm") == "pip install timm"
    assert install_hint("skimage") == "pip install scikit-image"


def test_parquet_output_without_pyarrow(monkeypatch, tmp_path):
    from twoends.writers import ParquetWriter

    hide(monkeypatch, "pyarrow")
    with pytest.raises(twoends.ConfigError) as e:
        ParquetWriter(str(tmp_path / "out.parquet"))
    assert str(e.value) == (
        'Parquet output needs pyarrow, which is not installed: pip install "twoends[parquet]" (or write .jsonl / .csv)'
    )


def test_calibration_without_scipy_or_matplotlib(monkeypatch, tmp_path):
    from twoends.calibrate import fit_temperature, plot_reliability, reliability_bins

    logits = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 0.5]])
    bins = reliability_bins(logits, np.array([0, 1, 1]), n_bins=5)
    hide(monkeypatch, "scipy", "matplotlib")
    with pytest.raises(
        twoends.ConfigError, match=re.escape('needs scipy, which is not installed: pip install "twoends[calibrate]"')
    ):
        fit_temperature(logits, np.array([0, 1, 1]))
    with pytest.raises(
        twoends.ConfigError,
        match=re.escape(
            'the reliability diagram needs matplotlib, which is not installed: pip install "twoends[calibrate]"'
        ),
    ):
        plot_reliability(bins, tmp_path / "r.png")


def test_an_onnx_model_without_onnxruntime(monkeypatch, tmp_path):
    hide(monkeypatch, "onnxruntime")
    with pytest.raises(twoends.ModelError) as e:
        twoends.load(f"onnx:{tmp_path / 'model.onnx'}")
    assert 'needs onnxruntime, which is not installed: pip install "twoends[onnx]"' in str(e.value)


def test_the_ray_engine_without_ray(monkeypatch):
    hide(monkeypatch, "ray")
    forget(monkeypatch, "twoends.distributed.ray")
    with pytest.raises(twoends.ConfigError) as e:
        importlib.import_module("twoends.distributed.ray")
    assert str(e.value) == (
        'the Ray engine needs ray, which is not installed: pip install "twoends[ray]" '
        "(or run without Ray: --engine local)"
    )


def test_serve_without_fastapi(monkeypatch):
    from click.testing import CliRunner

    from twoends.cli import main

    hide(monkeypatch, "fastapi", "uvicorn")
    forget(monkeypatch, "twoends.serve")
    r = CliRunner().invoke(main, ["serve", "--port", "0"])
    assert r.exit_code == 2
    assert 'twoends serve needs uvicorn, which is not installed: pip install "twoends[serve]"' in r.output


def test_a_broken_install_is_not_called_missing(monkeypatch, tmp_path):
    """Installed, but its own import fails: installing the extra again would not help, so the message says so."""
    (tmp_path / "halfinstalled").mkdir()
    (tmp_path / "halfinstalled" / "__init__.py").write_text("import a_dependency_that_is_gone\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(twoends.ConfigError, match="installed but failed to import: No module named 'a_dependency"):
        require("halfinstalled", "a feature")
    with pytest.raises(
        twoends.ConfigError,
        match="a feature needs not_a_module_at_all, which is not installed: pip install not_a_module_at_all",
    ):
        require("not_a_module_at_all", "a feature")


def test_a_tflite_model_without_litert(monkeypatch, tmp_path):
    hide(monkeypatch, "ai_edge_litert")
    with pytest.raises(twoends.ModelError) as e:
        twoends.load(f"tflite:{tmp_path / 'model.tflite'}")
    assert 'needs ai-edge-litert, which is not installed: pip install "twoends[tensorflow]"' in str(e.value)

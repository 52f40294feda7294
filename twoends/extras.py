"""Optional dependencies: which extra of twoends installs each one, and the one message when one is missing.

``pip install twoends`` is the light core (NumPy, Pillow, click, rich); a feature
that needs more names the extra that brings it, in one format everywhere::

    Parquet output needs pyarrow, which is not installed: pip install "twoends[parquet]"

The extras themselves are declared in pyproject.toml; tests/test_extras.py checks
that every module listed here belongs to the extra it names.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import ConfigError, TwoEndsError

__all__ = ["EXTRA_OF", "install_hint", "missing", "require"]

#: top-level module -> the extra of twoends that installs it
EXTRA_OF = {
    "torch": "torch",
    "fastapi": "serve",
    "uvicorn": "serve",
    "multipart": "serve",
    "grpc": "serve",
    "onnxruntime": "onnx",
    "onnx": "onnx",
    "onnxscript": "onnx",
    "openvino": "openvino",
    "soundfile": "audio",
    "av": "audio",
    "soxr": "audio",
    "tensorflow": "tensorflow",
    "ai_edge_litert": "tensorflow",
    "ray": "ray",
    "scipy": "calibrate",
    "matplotlib": "calibrate",
    "pyarrow": "parquet",
}

#: top-level module -> its name on the package index, where they differ
PIP_NAME = {
    "multipart": "python-multipart",
    "grpc": "grpcio",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "PIL": "pillow",
    "ai_edge_litert": "ai-edge-litert",
    "efficientnet_lite_pytorch": "efficientnet-lite-pytorch",
}


def _top(module: str) -> str:
    return module.partition(".")[0]


def install_hint(module: str) -> str:
    """``pip install "twoends[extra]"`` for a module an extra brings, else ``pip install <package>``."""
    top = _top(module)
    extra = EXTRA_OF.get(top)
    return f'pip install "twoends[{extra}]"' if extra else f"pip install {PIP_NAME.get(top, top)}"


def missing(
    feature: str, module: str, *, error: type[TwoEndsError] = ConfigError, alternative: str = ""
) -> TwoEndsError:
    """The error for ``feature`` needing ``module`` that is not installed (raise it ``from None``)."""
    top = _top(module)
    tail = f" ({alternative})" if alternative else ""
    return error(f"{feature} needs {PIP_NAME.get(top, top)}, which is not installed: {install_hint(top)}{tail}")


def require(module: str, feature: str, *, error: type[TwoEndsError] = ConfigError, alternative: str = "") -> ModuleType:
    """Import ``module`` for ``feature``; if it is not installed, an error that names the extra to install.

    A module that is installed but fails to import (a broken or mismatched install) says so
    with the original error instead: installing the extra again would not help.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        name = exc.name or ""
        if name and _top(name) != _top(module) and not module.startswith(name):
            raise error(f"{feature} needs {module}, which is installed but failed to import: {exc}") from exc
        raise missing(feature, module, error=error, alternative=alternative) from None

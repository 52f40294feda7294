"""ImageSpec: how a model wants its pixels, as plain data (``ImagePlan`` applies it).

The reference behaviour is torchvision's ``ImageClassification`` preset on a
PIL image: ``Resize(resize_size)`` (Pillow, antialiased) -> ``CenterCrop`` ->
``/255`` -> ``Normalize(mean, std)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

import numpy as np
from PIL import Image

from ..errors import ConfigError
from .protocol import DataSpec, Limits, resolve_input_spec

if TYPE_CHECKING:
    from .image_plan import ImagePlan

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

RESIZE_MODES = ("shorter", "longer", "exact")
CROPS = ("center", "none")
INTERPOLATIONS = {
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "hamming": Image.Resampling.HAMMING,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
CHANNEL_ORDERS = ("RGB", "BGR")
LAYOUTS = ("NCHW", "NHWC")
DTYPES = ("float32", "float16", "uint8")


@dataclass(frozen=True)
class ImageSpec(DataSpec):
    """The preprocessing a model expects, as plain data (JSON-serialisable).

    resize_mode:
      ``"shorter"``  shorter side -> ``resize_size``, aspect kept (torchvision ``Resize(int)``);
      ``"longer"``   longer side -> ``resize_size``, aspect kept (letterbox; the crop pads with 0);
      ``"exact"``    both sides scaled independently (squash). With ``crop="none"`` the target
                     is ``input_size``; with ``crop="center"`` it is ``input_size`` scaled by
                     ``resize_size / min(input_size)`` and then center-cropped (timm "squash").
    resize_size: ``None`` derives it as timm does: ``floor(side / crop_pct)`` where side is
      ``min(input_size)`` (``max`` for "longer").
    scale, mean, std: model input = ``(pixel * scale - mean) / std``; mean and std are in
      scaled units and listed in the model's ``channel_order`` (BGR models list B first).
    dtype ``"uint8"``: raw 0..255 pixels, no scale/mean/std (models that take bytes).
    """

    kind: ClassVar[str] = "image"
    #: fields a model's graph dictates: an explicit spec that leaves them at their default
    #: takes the model's own (see protocol.resolve_input_spec)
    model_owned: ClassVar[tuple[str, ...]] = ("layout",)

    input_size: tuple[int, int] = (224, 224)
    resize_mode: str = "shorter"
    resize_size: int | None = None
    crop_pct: float = 0.875
    crop: str = "center"
    interpolation: str = "bilinear"
    antialias: bool = True
    scale: float = 1 / 255
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    channel_order: str = "RGB"
    layout: str = "NCHW"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        try:
            self._check()
        except ConfigError:
            raise
        except (TypeError, ValueError, OverflowError) as e:  # a hand-edited sidecar or spec dict: say which
            raise ConfigError(
                f"invalid ImageSpec ({type(e).__name__}: {e}); see ImageSpec's fields and their types"
            ) from None

    def _check(self) -> None:
        # Normalise lists (from JSON) to tuples so equality and hashing are exact.
        size = _int_pair(self.input_size)
        object.__setattr__(self, "input_size", size)
        object.__setattr__(self, "mean", _float_triple("mean", self.mean))
        object.__setattr__(self, "std", _float_triple("std", self.std))
        _check_choice("resize_mode", self.resize_mode, RESIZE_MODES)
        _check_choice("crop", self.crop, CROPS)
        _check_choice("interpolation", self.interpolation, tuple(INTERPOLATIONS))
        _check_choice("channel_order", self.channel_order, CHANNEL_ORDERS)
        _check_choice("layout", self.layout, LAYOUTS)
        _check_choice("dtype", self.dtype, DTYPES)
        self._check_numbers()
        if self.crop == "none" and self.resize_mode != "exact":
            raise ConfigError(
                f"crop='none' needs resize_mode='exact', got resize_mode={self.resize_mode!r}: "
                "keeping the aspect ratio without a crop gives inputs of varying size; "
                "use crop='center' or resize_mode='exact'"
            )
        if not self.antialias:
            # Pillow always antialiases; pretending otherwise would be a silent lie.
            raise ConfigError(
                "antialias=False is not supported: Pillow (and torchvision on PIL images) "
                "always antialias; set antialias=True"
            )

    def _check_numbers(self) -> None:
        if min(self.input_size) < 1:
            raise ConfigError(f"input_size must be positive (H, W), got {self.input_size!r}")
        if self.resize_size is not None and (
            isinstance(self.resize_size, bool) or not isinstance(self.resize_size, int) or self.resize_size < 1
        ):
            raise ConfigError(f"resize_size must be a positive int or None, got {self.resize_size!r}")
        if not _is_real(self.crop_pct) or not 0 < self.crop_pct <= 1:
            raise ConfigError(f"crop_pct must be in (0, 1], got {self.crop_pct!r}; 0.875 is the common value")
        if not _is_real(self.scale) or not self.scale > 0 or not math.isfinite(self.scale):
            raise ConfigError(f"scale must be a positive number, got {self.scale!r}; use 1/255 for 0..1 inputs")
        if not all(math.isfinite(m) for m in self.mean):
            raise ConfigError(f"mean must be finite, got {self.mean!r}")
        if not all(math.isfinite(s) and s > 0 for s in self.std):
            raise ConfigError(f"std must be positive and finite, got {self.std!r}")
        if not isinstance(self.antialias, bool):
            raise ConfigError(f"antialias must be a bool, got {self.antialias!r}")

    # ---- derived sizes -------------------------------------------------
    @property
    def effective_resize_size(self) -> int:
        """``resize_size`` or, when None, ``floor(side / crop_pct)`` as timm derives it."""
        if self.resize_size is not None:
            return self.resize_size
        side = max(self.input_size) if self.resize_mode == "longer" else min(self.input_size)
        if self.crop == "none":
            return side
        # round() first guards against 224/0.875 = 255.99999999999997 style float noise.
        return math.floor(round(side / self.crop_pct, 6))

    def resize_target(self, height: int, width: int) -> tuple[int, int]:
        """The (H, W) an image of ``height x width`` is resized to (before cropping)."""
        rs = self.effective_resize_size
        if self.resize_mode == "exact":
            if self.crop == "none":
                return self.input_size
            h, w = self.input_size  # integer maths: 224 * (256 / 224) may floor to 255
            return max(1, h * rs // min(h, w)), max(1, w * rs // min(h, w))
        # torchvision's _compute_resized_output_size: the other side is int(size * long / short)
        short, long = (width, height) if width <= height else (height, width)
        if self.resize_mode == "shorter":
            new_short, new_long = rs, int(rs * long / short)
        else:  # "longer": scale so the long side is rs
            new_short, new_long = max(1, int(rs * short / long)), rs
        return (new_long, new_short) if width <= height else (new_short, new_long)

    # ---- serialisation -------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    def describe(self) -> str:
        h, w = self.input_size
        if self.resize_mode == "exact" and self.crop == "none":
            geo = f"resize to {h}x{w} ({self.interpolation})"
        else:
            geo = f"resize {self.resize_mode} side to {self.effective_resize_size} ({self.interpolation}), center-crop {h}x{w}"
        if self.dtype == "uint8":
            norm = "raw uint8 pixels"
        else:
            mean = ", ".join(f"{m:.4g}" for m in self.mean)
            std = ", ".join(f"{s:.4g}" for s in self.std)
            norm = f"x*{self.scale:.6g}, mean ({mean}), std ({std})"
        return f"{geo}; {norm}; {self.channel_order} {self.layout} {self.dtype}"

    def plan(self, limits: Limits | None = None) -> "ImagePlan":
        from .image_plan import ImagePlan

        return ImagePlan(self, limits)


def _is_real(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {list(choices)}, got {value!r}")


def _int_pair(value: Any) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    try:
        pair = tuple(value)
    except TypeError:
        pair = ()
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair):
        raise ConfigError(f"input_size must be (H, W) as two ints, got {value!r}; e.g. (224, 224)")
    return int(pair[0]), int(pair[1])


def _float_triple(name: str, value: Any) -> tuple[float, float, float]:
    items = tuple(value) if isinstance(value, (tuple, list, np.ndarray)) else ()
    if len(items) != 3 or not all(_is_real(v) or isinstance(v, (np.integer, np.floating)) for v in items):
        raise ConfigError(f"{name} must be three numbers (one per channel), got {value!r}")
    return float(items[0]), float(items[1]), float(items[2])


def resolve_spec(
    explicit: ImageSpec | Mapping[str, Any] | None = None,
    bundled: ImageSpec | None = None,
    default: ImageSpec | None = None,
) -> tuple[ImageSpec, str]:
    """Pick the spec to use and say where it came from.

    Precedence: ``explicit`` > ``bundled`` (the model's own) > ``default``.
    ``explicit`` may be a full ``ImageSpec`` (source ``"explicit"``) or a dict of
    overrides applied on top of the bundled spec (``"model+explicit"``), or of the
    default when the model bundles none (``"default+explicit"``).
    Returns ``(spec, source)`` with source in "explicit", "model", "default",
    "model+explicit", "default+explicit".
    """
    return resolve_input_spec(explicit, bundled, default or ImageSpec())  # type: ignore[return-value]

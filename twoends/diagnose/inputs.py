"""Checks of the input end: the batch a model is fed, against the spec it expects.

Every image model input starts as uint8 pixels p in 0..255 and becomes
``x = (p * scale - mean) / std``. Undoing a normalisation H on the batch gives
the pixels H implies, ``p_H = (x * std_H + mean_H) / scale_H``. Under the
normalisation really applied they lie in 0..255 (and, when the resize ran on
uint8 pixels as in Pillow pipelines, they are whole numbers); under a wrong one
they leave 0..255, or squeeze into a narrow band of it. That decides which of
the usual normalisations the batch went through, from the batch alone.

Channel order cannot be seen this way (swapped channels are still pixels in
0..255): ``known_answer.channel_order`` asks the model instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..head.arrays import to_numpy
from ..preprocess.spec import IMAGENET_MEAN, IMAGENET_STD, ImageSpec
from .finding import Finding

__all__ = ["batch_shape", "input_size", "normalization", "as_nchw"]

SLACK = 3.0  # pixel levels a float resize may overshoot 0..255 by
OUTSIDE = 0.002  # share of values allowed outside 0..255 (+- SLACK)
WIDER = 1.6  # another normalisation must explain a range this much wider to win


@dataclass(frozen=True)
class Normalization:
    name: str
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def pixels(self, x: np.ndarray) -> np.ndarray:
        """The 0..255 pixels this normalisation implies for an NCHW batch."""
        mean = np.asarray(self.mean)[None, :, None, None]
        std = np.asarray(self.std)[None, :, None, None]
        return (x * std + mean) / self.scale

    def affine(self):
        """(slope, offset) per channel: x = slope * p + offset."""
        std, mean = np.asarray(self.std), np.asarray(self.mean)
        return self.scale / std, -mean / std


def _n(name, scale, mean, std) -> Normalization:
    three = lambda v: (float(v),) * 3 if np.isscalar(v) else tuple(float(a) for a in v)  # noqa: E731
    return Normalization(name, scale, three(mean), three(std))


USUAL = (
    _n("raw 0..255 pixels (no scaling, no normalisation)", 1.0, 0.0, 1.0),
    _n("0..1 pixels (divided by 255, no mean/std)", 1 / 255, 0.0, 1.0),
    _n(
        "ImageNet mean/std ((p/255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225])",
        1 / 255,
        IMAGENET_MEAN,
        IMAGENET_STD,
    ),
    _n("(p - 127) / 128 (TensorFlow / Inception style)", 1 / 255, 127 / 255, 128 / 255),
    _n("-1..1 (p / 127.5 - 1)", 1 / 255, 0.5, 0.5),
    _n("ImageNet mean/std on 0..255 pixels (the /255 forgotten)", 1.0, IMAGENET_MEAN, IMAGENET_STD),
    _n("CLIP mean/std", 1 / 255, (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
)


def spec_normalization(spec: ImageSpec) -> Normalization:
    if spec.dtype == "uint8":
        return _n("raw uint8 pixels", 1.0, 0.0, 1.0)
    own = Normalization(f"the model's spec ({_describe(spec)})", spec.scale, spec.mean, spec.std)
    same = next((n for n in USUAL if _same(n, own)), None)  # say it by its usual name when it has one
    return Normalization(same.name, own.scale, own.mean, own.std) if same else own


def _describe(spec: ImageSpec) -> str:
    return f"scale {spec.scale:.5g}, mean {[round(m, 4) for m in spec.mean]}, std {[round(s, 4) for s in spec.std]}"


def _same(a: Normalization, b: Normalization) -> bool:
    """Two normalisations that map every pixel 0..255 to within one pixel level of each other."""
    sa, oa = a.affine()
    sb, ob = b.affine()
    # pixel under b of a's x: p' = (sa p + oa - ob) / sb
    lo = (oa - ob) / sb
    hi = (sa * 255 + oa - ob) / sb
    return bool(np.all(np.abs(lo) < 1.5) and np.all(np.abs(hi - 255) < 1.5))


def as_nchw(batch, spec: ImageSpec | None):
    """(NCHW float64 batch or None, list of findings about its shape)."""
    x = to_numpy(batch)
    findings = batch_shape(x, spec)
    if x.ndim == 3 and x.shape[0] == 3 or x.ndim == 3 and x.shape[-1] == 3:
        x = x[None]
    if x.ndim != 4:
        return None, findings
    if x.shape[1] != 3 and x.shape[-1] == 3:
        x = np.moveaxis(x, -1, 1)
    if x.shape[1] != 3:
        return None, findings
    return np.asarray(x, dtype=np.float64), findings


def batch_shape(batch, spec: ImageSpec | None) -> list[Finding]:
    """Check 'batch-dimension' and 'layout': a batch is 4-D, laid out as the spec says."""
    x = to_numpy(batch)
    shape = tuple(x.shape)
    layout = spec.layout if spec is not None else None
    out = []
    if x.ndim == 3 and 3 in (shape[0], shape[-1]):
        out.append(
            Finding(
                "batch-dimension",
                "error",
                "one image without a batch dimension",
                seen=f"the input has shape {shape}: one image, no leading batch axis",
                why="a model takes [batch, ...]; some layers accept an unbatched image and silently treat its "
                "channels (or rows) as the batch, others fail far from the cause",
                fix="add the batch axis: x[None] (NumPy) or x.unsqueeze(0) (PyTorch); twoends.Classifier.predict does it for you",
                evidence={"shape": list(shape)},
            )
        )
        x = x[None]
    elif x.ndim != 4:
        out.append(
            Finding(
                "batch-dimension",
                "error",
                f"a {x.ndim}-D input where a 4-D image batch was expected",
                seen=f"the input has shape {shape}",
                why="an image classifier takes [batch, channels, height, width] (or [batch, height, width, channels])",
                fix="stack preprocessed images into one 4-D array: np.stack(images) / torch.stack(images)",
                evidence={"shape": list(shape)},
            )
        )
        return out
    if x.ndim == 4 and layout is not None:
        want_first = layout == "NCHW"
        channels_first, channels_last = x.shape[1] == 3, x.shape[-1] == 3
        if (want_first and channels_last and not channels_first) or (
            not want_first and channels_first and not channels_last
        ):
            got = "NHWC" if want_first else "NCHW"
            fix = (
                "x.permute(0, 3, 1, 2) (PyTorch) or np.transpose(x, (0, 3, 1, 2))"
                if want_first
                else "np.transpose(x, (0, 2, 3, 1))"
            )
            out.append(
                Finding(
                    "layout",
                    "error",
                    f"channels in the wrong place: {got} where the model expects {layout}",
                    seen=f"the batch has shape {tuple(x.shape)}: channels {'last' if want_first else 'first'}",
                    why=f"the model reads axis {1 if want_first else 3} as its colour channels; {got} data either fails "
                    "or mixes pixels into channels",
                    fix=f"transpose, do not reshape: {fix}",
                    evidence={"shape": list(x.shape), "expected_layout": layout},
                )
            )
    return out


def input_size(batch, spec: ImageSpec) -> list[Finding]:
    """Check 'input-size': the spatial size matches the spec's input_size."""
    x, _ = as_nchw(batch, spec)
    if x is None:
        return []
    got, want = tuple(x.shape[2:]), tuple(spec.input_size)
    if got == want:
        return []
    return [
        Finding(
            "input-size",
            "warning",
            f"images of {got[0]}x{got[1]} where the model was trained on {want[0]}x{want[1]}",
            seen=f"spatial size {got[0]}x{got[1]}; the model's spec says input_size {want[0]}x{want[1]}",
            why="a network with global pooling still runs on other sizes and still answers confidently, but objects "
            "appear at another scale than in training and accuracy drops",
            fix=f"resize and crop as the spec says ({spec.describe()}); twoends.load/wrap apply it for you",
            evidence={"got": list(got), "expected": list(want)},
        )
    ]


def _implied(x: np.ndarray, norm: Normalization) -> dict:
    p = norm.pixels(x).ravel()
    if p.size > 400_000:  # statistics, not a census
        p = p[np.linspace(0, p.size - 1, 400_000).astype(np.int64)]
    lo, hi = np.quantile(p, [0.001, 0.999])
    outside = float(np.mean((p < -SLACK) | (p > 255 + SLACK)))
    whole = float(np.mean(np.abs(p - np.round(p)) < 0.02))
    return {
        "fits": outside <= OUTSIDE,
        "lo": float(lo),
        "hi": float(hi),
        "spread": float(hi - lo),
        "outside": outside,
        "whole": whole,
    }


def identify(x: np.ndarray, spec_norm: Normalization) -> tuple[Normalization | None, dict]:
    """The normalisation that best explains an NCHW batch (None: none of the usual ones), and the stats."""
    stats = {spec_norm.name: _implied(x, spec_norm)}
    for n in USUAL:
        stats[n.name] = _implied(x, n)
    cands = [spec_norm] + [n for n in USUAL if not _same(n, spec_norm)]
    stats[spec_norm.name] = _implied(x, spec_norm)
    fitting = [n for n in cands if stats[n.name]["fits"] and stats[n.name]["spread"] > 1.0]
    if not fitting:
        return None, stats
    whole = [n for n in fitting if stats[n.name]["whole"] > 0.9]
    if whole:  # on whole-number pixels: the exact fingerprint of the normalisation applied
        return (spec_norm if spec_norm in whole else whole[0]), stats
    widest = max(fitting, key=lambda n: stats[n.name]["spread"])
    if spec_norm in fitting and stats[widest.name]["spread"] < WIDER * stats[spec_norm.name]["spread"]:
        return spec_norm, stats
    return widest, stats


def normalization(batch, spec: ImageSpec) -> list[Finding]:
    """Check 'normalization': the batch went through the spec's scale/mean/std, not another."""
    x, _ = as_nchw(batch, spec)
    if x is None:
        return []
    if not np.all(np.isfinite(x)):
        return [
            Finding(
                "normalization",
                "error",
                "the batch holds NaN or infinite values",
                seen=f"{int(np.sum(~np.isfinite(x)))} of {x.size} values are not finite",
                why="one NaN spreads through every layer: the outputs for that image are NaN",
                fix="find where the preprocessing divides by zero or reads past an image; check the decoder",
            )
        ]
    if float(x.max() - x.min()) == 0.0:
        return []  # a constant batch says nothing about its normalisation
    if spec.channel_order == "BGR":
        x = x[:, ::-1]  # spec mean/std are listed in the model's order; the usual ones in RGB
    own = spec_normalization(spec)
    if spec.channel_order == "BGR":
        own = Normalization(own.name, own.scale, own.mean[::-1], own.std[::-1])
    found, stats = identify(x, own)
    if found is own:
        return []
    s = stats[own.name]
    seen = (
        f"undoing the model's normalisation gives 'pixels' from {s['lo']:.1f} to {s['hi']:.1f} "
        f"(real pixels lie in 0..255)"
    )
    mean = [round(float(v), 4) for v in x.mean(axis=(0, 2, 3))]
    std = [round(float(v), 4) for v in x.std(axis=(0, 2, 3))]
    evidence = {
        "batch_mean": mean,
        "batch_std": std,
        "implied_pixels_under_spec": [s["lo"], s["hi"]],
        "expected": own.name,
        "looks_like": None if found is None else found.name,
    }
    if found is None:
        return [
            Finding(
                "normalization",
                "error",
                "the inputs do not match the model's normalisation, nor any usual one",
                seen=f"{seen}; per-channel mean {mean}, std {std}",
                why="a network only works on the value range it was trained on; a wrong one still gives confident, worse answers",
                fix=f"normalise as the model expects: {own.name}; or let twoends.load/wrap preprocess the images",
                evidence=evidence,
            )
        ]
    f = stats[found.name]
    return [
        Finding(
            "normalization",
            "error",
            f"inputs look like {found.name}, the model expects {own.name}",
            seen=f"{seen}; under {found.name} they lie in {f['lo']:.1f}..{f['hi']:.1f}"
            + (" and are whole numbers" if f["whole"] > 0.9 else ""),
            why="a network only works on the value range it was trained on; a wrong one still gives confident, worse answers",
            fix=f"normalise as the model expects: {_fix_for(spec)}; or let twoends.load/wrap preprocess the images",
            evidence=evidence,
        )
    ]


def _fix_for(spec: ImageSpec) -> str:
    if spec.dtype == "uint8":
        return "feed raw uint8 pixels 0..255"
    mean = [round(m / spec.scale, 3) for m in spec.mean]
    std = [round(s / spec.scale, 3) for s in spec.std]
    return f"x = (pixels_0_255 - {mean}) / {std}"

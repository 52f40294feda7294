"""Checks that run the model: training mode, and known answers on real photos.

``training_mode`` looks at the module exactly as the user hands it over (a
twoends backend would put it in evaluation mode and hide the mistake); the
probe runs it without gradients and puts back every flag and buffer after.

Known answers: for an ImageNet-1k model (1000 outputs) a photo of a cat must
have a cat class in its top 5 and a cup of espresso an espresso or cup class.
The photos are scikit-image's ``chelsea`` and ``coffee``; without scikit-image
these checks are skipped and say so.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..head.activations import log_softmax
from ._probe import probe_for
from .finding import Finding

__all__ = ["training_mode", "known_answer", "channel_order", "KNOWN_ANSWERS", "known_photos"]

# ImageNet-1k class indices that are a right answer for each photo (human truth, not model output)
KNOWN_ANSWERS = {
    "chelsea": (281, 282, 283, 284, 285),  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    "coffee": (967, 968, 504),  # espresso, cup, coffee mug
}
TOP = 5


def training_mode(model: Any, batch: Any) -> list[Finding]:
    """Check 'training-mode': dropout / batch-norm active, seen from the flags and from two forward passes."""
    probe = probe_for(model)
    if probe is None:
        return []
    layers = probe.active_noisy_layers()
    if not probe.training_flag() and not layers:
        return []
    try:
        first = probe.forward(batch, seed=1)
        second = probe.forward(batch, seed=2)
    except Exception:  # the model cannot run on this batch (the shape checks say why): the flags still tell
        from .run import _flag_only

        return _flag_only(probe)
    moved = float(np.max(np.abs(first - second))) if first.shape == second.shape else float("inf")
    alone = float("nan")
    if first.ndim >= 2 and first.shape[0] > 1:
        try:
            alone = float(np.max(np.abs(probe.forward(batch[:1], seed=1) - first[:1])))
        except Exception:  # e.g. BatchNorm1d refusing a batch of one in training mode
            alone = float("nan")
    evaluated = probe.forward(batch, mode="eval")
    off = float(np.max(np.abs(first - evaluated))) if first.shape == evaluated.shape else float("inf")
    evidence = {
        "active_layers": layers[:20],
        "max_change_between_two_passes": moved,
        "max_change_alone_vs_in_batch": alone,
        "max_change_vs_eval_mode": off,
    }
    if not layers and off == 0.0:
        return [
            Finding(
                "training-mode",
                "info",
                "the model is in training mode, but no layer behaves differently",
                seen="model.training is True; it has no dropout or batch-norm layer in training mode, "
                "and its outputs equal those in eval mode",
                why="harmless today; a dropout or batch-norm layer added later would make predictions random",
                fix="call model.eval() before inference (twoends.wrap does it)",
                evidence=evidence,
            )
        ]
    shown = ", ".join(layers[:4]) + (f" and {len(layers) - 4} more" if len(layers) > 4 else "")
    seen = [f"{len(layers)} dropout/batch-norm layer(s) in training mode ({shown})"]
    if moved > 0:
        seen.append(f"two passes over the same batch differ by up to {moved:.3g}")
    if alone == alone and alone > 1e-4:
        seen.append(f"an input's outputs change by up to {alone:.3g} with the other inputs in its batch")
    seen.append(f"outputs differ from eval mode by up to {off:.3g}")
    return [
        Finding(
            "training-mode",
            "error",
            "the model is in training mode: dropout and batch-norm are active",
            seen="; ".join(seen),
            why="dropout drops random units on every call and batch-norm normalises with the batch's own statistics "
            "(and overwrites its running statistics): answers become random and depend on the batch",
            fix="call model.eval() before inference, and run under torch.inference_mode() (twoends.wrap does both)",
            evidence=evidence,
        )
    ]


def known_photos() -> dict[str, Any]:
    """The known-answer photos as RGB PIL images ({} when scikit-image is not installed)."""
    try:
        from skimage import data
    except ImportError:
        return {}
    from PIL import Image

    return {name: Image.fromarray(getattr(data, name)()).convert("RGB") for name in KNOWN_ANSWERS}


def _views(image) -> list:
    """The photo, its mirror, and four corner crops of 85%: evidence that does not hang on one crop."""
    from PIL import ImageOps

    w, h = image.size
    cw, ch = int(w * 0.85), int(h * 0.85)
    crops = [image.crop((x, y, x + cw, y + ch)) for x in (0, w - cw) for y in (0, h - ch)]
    return [image, ImageOps.mirror(image), *crops]


def _channel_axis(sample: np.ndarray) -> int:
    return 0 if sample.shape[0] == 3 else -1


def known_answer(
    preprocess: Callable, forward: Callable, *, labels: Sequence[str] | None = None, photos: dict | None = None
) -> list[Finding]:
    """Check 'known-answer': the pipeline (``preprocess`` one PIL image -> one model input,
    ``forward`` a batch -> outputs [N, 1000]) finds the cat in chelsea and the espresso in coffee."""
    photos = known_photos() if photos is None else photos
    if not photos:
        return []
    names = list(photos)
    batch = np.stack([np.asarray(preprocess(photos[n])) for n in names])
    z = np.asarray(forward(batch), dtype=np.float64)
    if z.ndim != 2 or z.shape[1] != 1000:
        return []
    from ..models import imagenet_labels

    ref = imagenet_labels()
    missed = []
    for i, name in enumerate(names):
        top = np.argsort(-z[i])[:TOP]
        if not set(top.tolist()) & set(KNOWN_ANSWERS[name]):
            missed.append((name, [ref[j] for j in top[:3]]))
    if not missed:
        return []
    said = "; ".join(f"{n}: top-3 {top}" for n, top in missed)
    truth = {n: [ref[j] for j in KNOWN_ANSWERS[n]] for n, _ in missed}
    return [
        Finding(
            "known-answer",
            "error",
            "the pipeline gets a known answer wrong: "
            + ", ".join(f"{n} is a {'cat' if n == 'chelsea' else 'cup of espresso'}" for n, _ in missed),
            seen=f"not one right class in the top {TOP} ({said}); right answers are {truth}",
            why="an ImageNet model that misses photos this plain is being fed something other than what it was trained on",
            fix="compare the preprocessing with the model's spec (size, crop, scale, mean/std, channel order, layout); "
            "twoends.load/wrap apply the model's own",
            evidence={"missed": dict(missed)},
        )
    ]


def channel_order(preprocess: Callable, forward: Callable, *, photos: dict | None = None) -> list[Finding]:
    """Check 'channel-order': the model recognises the known photos better with the channels reversed.

    Pixel statistics cannot see swapped channels (they are still pixels), the model
    can: on 6 views of each known photo, the log-probability of the right classes
    with the input as given is compared with the input's channels reversed.
    """
    photos = known_photos() if photos is None else photos
    if not photos:
        return []
    samples, truth = [], []
    for name, image in photos.items():
        for view in _views(image):
            samples.append(np.asarray(preprocess(view)))
            truth.append(KNOWN_ANSWERS[name])
    batch = np.stack(samples)
    axis = 1 if _channel_axis(samples[0]) == 0 else -1
    given = log_softmax(np.asarray(forward(batch), dtype=np.float64))
    if given.ndim != 2 or given.shape[1] != 1000:
        return []
    swapped = log_softmax(np.asarray(forward(np.ascontiguousarray(np.flip(batch, axis=axis))), dtype=np.float64))
    score = lambda lp: np.array([np.logaddexp.reduce(lp[i, list(t)]) for i, t in enumerate(truth)])  # noqa: E731
    diff = score(given) - score(swapped)
    decided = diff[np.abs(diff) > 1e-3]
    worse = float(np.mean(decided < 0)) if decided.size else 0.0
    if not (decided.size >= 4 and worse >= 0.75 and diff.mean() < -0.03):
        return []
    return [
        Finding(
            "channel-order",
            "warning",
            "the colour channels look reversed (BGR where the model expects RGB, or the other way)",
            seen=f"on {len(diff)} views of known photos, reversing the channels raises the right answer's probability "
            f"in {worse:.0%} of them (by {-diff.mean():.2f} nats on average)",
            why="colour is evidence to a model: with swapped channels it still answers, with less accuracy",
            fix="feed channels in the order of the model's spec: OpenCV's cv2.imread gives BGR, "
            "use cv2.cvtColor(img, cv2.COLOR_BGR2RGB) (or img[..., ::-1]); twoends decodes to RGB",
            evidence={"views": len(diff), "share_better_reversed": worse, "mean_log_prob_change": float(-diff.mean())},
        )
    ]

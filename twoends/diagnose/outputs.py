"""Checks of the output end: what was done to the model's outputs, and the labels put on them.

These read arrays only (NumPy, PyTorch, JAX: anything the head reads), so they
work on a pipeline that never touched twoends.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..head.activations import sigmoid, softmax
from ..head.arrays import to_numpy
from .finding import Finding

__all__ = ["probabilities_as_logits", "softmax_axis", "activation", "labels", "over_confidence"]

SUM_TOL = 1e-3
BACKGROUND = {"background", "__background__", "bg", "none", "unlabeled", "unlabelled", "other", "void"}


def _array(a: Any) -> np.ndarray:
    return np.asarray(to_numpy(a) if not isinstance(a, (list, tuple)) else np.asarray(a), dtype=np.float64)


def _rows_sum_to_one(p: np.ndarray, axis: int) -> bool:
    return bool(np.all(np.abs(p.sum(axis=axis) - 1.0) < SUM_TOL * max(1, p.shape[axis]) ** 0.5))


def _is_probability(a: np.ndarray) -> bool:
    return bool(a.size and np.all(np.isfinite(a)) and a.min() >= 0.0 and a.max() <= 1.0)


def probabilities_as_logits(logits, *, last_layer: str | None = None) -> list[Finding]:
    """Check 'probabilities-as-logits': what is about to be softmaxed is already a softmax.

    ``logits`` is what the pipeline treats as logits; ``last_layer`` the model's
    last registered layer ("softmax", "sigmoid", ...) when known.
    """
    z = _array(logits)
    z2 = z.reshape(1, -1) if z.ndim == 1 else z
    why = (
        "softmax of probabilities squeezes them towards uniform: softmax([0.9, 0.1]) = [0.69, 0.31]; "
        "the ranking survives, every probability, threshold and calibration does not"
    )
    if z2.ndim == 2 and z2.shape[-1] > 1 and _is_probability(z2) and _rows_sum_to_one(z2, -1):
        return [
            Finding(
                "probabilities-as-logits",
                "error",
                "these 'logits' are already probabilities: softmax would be applied twice",
                seen=f"every row of the {list(z.shape)} outputs lies in [0, 1] and sums to 1"
                + (f"; the model's last layer is a {last_layer}" if last_layer else ""),
                why=why,
                fix="use the outputs as probabilities as they are, or remove the model's final softmax and keep the logits; "
                "with twoends, say so once: twoends.wrap(model, ..., outputs='probabilities') (a final nn.Softmax / "
                "nn.Sigmoid layer is detected by itself) and the head takes log p",
                evidence={"row_sums": z2.sum(-1)[:8], "last_layer": last_layer},
            )
        ]
    if last_layer in ("softmax", "sigmoid"):
        return [
            Finding(
                "probabilities-as-logits",
                "error",
                f"the model ends in a {last_layer} layer: its outputs are probabilities",
                seen=f"the last registered layer of the model is a {last_layer}",
                why=why,
                fix=f"take the outputs before the final {last_layer} as logits (drop the layer), or treat them as probabilities: "
                "twoends.wrap(model, ..., outputs='probabilities')",
                evidence={"last_layer": last_layer},
            )
        ]
    return []


def softmax_axis(probabilities, *, num_classes: int | None = None) -> list[Finding]:
    """Check 'softmax-axis': a [batch, classes] array normalised over the batch instead of the classes.

    The class axis is the one whose length is ``num_classes`` (from the labels or
    the model); without it, the last axis.
    """
    p = _array(probabilities)
    if p.ndim != 2 or not _is_probability(p):
        return []
    axis = 1
    if num_classes is not None and p.shape[1] != num_classes and p.shape[0] == num_classes:
        axis = 0  # a [classes, batch] array: its own class axis is first
    other = 1 - axis
    if _rows_sum_to_one(p, axis) or not _rows_sum_to_one(p, other):
        return []
    batch, classes = p.shape[other], p.shape[axis]
    if classes == 1:
        return []  # one class: the activation check says what is wrong
    return [
        Finding(
            "softmax-axis",
            "error",
            "softmax over the batch axis instead of the class axis",
            seen=f"the {list(p.shape)} probabilities sum to 1 over axis {other} (the {batch} inputs) and to "
            f"{_span(p.sum(axis=axis))} over axis {axis} (the {classes} classes)",
            why="each probability then compares one input with the other inputs of its batch: answers change with "
            "the batch they are in" + (", and with a batch of one every class gets 1.0" if batch == 1 else ""),
            fix=f"normalise over the class axis: softmax(logits, dim={axis}) / axis={axis} "
            "(dim=-1 for [batch, classes]); twoends.softmax defaults to the last axis",
            evidence={"class_axis": axis, "sums_over_classes": p.sum(axis=axis)[:8]},
        )
    ]


def _span(v: np.ndarray) -> str:
    lo, hi = float(v.min()), float(v.max())
    return f"{lo:.3g}" if math.isclose(lo, hi, rel_tol=1e-3) else f"{lo:.3g}..{hi:.3g}"


def _which_activation(logits: np.ndarray, p: np.ndarray) -> str | None:
    """Which activation turned ``logits`` into ``p``: 'softmax', 'sigmoid' or None (neither)."""
    if logits.shape != p.shape:
        return None
    soft, sig = softmax(logits), sigmoid(logits)
    if np.allclose(p, soft, atol=1e-4):
        return "softmax"
    if np.allclose(p, sig, atol=1e-4):
        return "sigmoid"
    return None


def activation(
    *, probabilities=None, logits=None, used: str | None = None, multi_label: bool | None = None
) -> list[Finding]:
    """Check 'activation': softmax on a multi-label model; softmax over a single output logit.

    The activation used is ``used``, or read from ``probabilities`` (compared with
    ``logits`` when given; rows summing to 1 mean softmax). ``multi_label`` is what
    the model was trained for (None: unknown).
    """
    p = None if probabilities is None else _array(probabilities)
    z = None if logits is None else _array(logits)
    if p is not None and p.ndim == 1:
        p = p[None]
    if z is not None and z.ndim == 1:
        z = z[None]
    if used is None and p is not None:
        used = _which_activation(z, p) if z is not None else None
        if used is None and p.ndim == 2 and p.shape[1] > 1 and _is_probability(p) and _rows_sum_to_one(p, 1):
            used = "softmax"
        if used is None and p.ndim == 2 and p.shape[1] == 1 and np.allclose(p, 1.0):
            used = "softmax"  # the only thing that makes a single output exactly 1.0 everywhere
    n_out = next((a.shape[-1] for a in (z, p) if a is not None and a.ndim == 2), None)
    if used == "softmax" and n_out == 1:
        mistake = "softmax-one-logit"
    elif used == "softmax" and multi_label:
        mistake = "softmax-multi-label"
    elif used == "sigmoid" and multi_label is False and n_out and n_out > 1:
        mistake = "sigmoid-single-label"
    else:
        return []
    severity, title, seen, why, fix = _ACTIVATION_MISTAKES[mistake]
    return [
        Finding("activation", severity, title, seen=seen.format(n=n_out), why=why, fix=fix, evidence={"outputs": n_out})
    ]


# what 'activation' reports for each mistake: severity, title, seen ({n}: the number of outputs), why, fix
_ACTIVATION_MISTAKES = {
    "softmax-one-logit": (
        "error",
        "softmax over a single output logit: every probability is 1.0",
        "the model has one output per input and softmax was applied over it",
        "softmax normalises over classes; with one class the answer is always 1.0, whatever the input",
        "a single logit is a binary classifier: use sigmoid(logit) for P(positive) (twoends' activation='auto' does)",
    ),
    "softmax-multi-label": (
        "error",
        "softmax on a multi-label model",
        "the probabilities sum to 1 over the {n} classes (softmax), but the model is multi-label",
        "a multi-label model scores each class on its own (trained with sigmoid / BCE); softmax makes classes "
        "compete: two present classes share the mass, and an input with none still gets a confident class",
        "apply sigmoid to each logit and threshold each class (twoends: activation='sigmoid', thresholds=...)",
    ),
    "sigmoid-single-label": (
        "warning",
        "sigmoid on a single-label model",
        "sigmoid was applied to each of the {n} logits of a single-label (softmax-trained) model",
        "a softmax-trained model's logits are only meaningful relative to each other; per-class sigmoids "
        "are not probabilities of anything (they do not sum to 1 and shift with the logits' offset)",
        "use softmax over the class axis (twoends: activation='softmax' or 'auto')",
    ),
}


def labels(names: Sequence[str] | None, *, num_outputs: int | None) -> list[Finding]:
    """Check 'labels': one name per output, no off-by-one background class, no accidental duplicates."""
    if names is None:
        return []
    names = [str(n) for n in names]
    out = []
    if num_outputs is not None and len(names) != num_outputs:
        extra = len(names) - num_outputs
        first = names[0].strip().lower()
        if extra == 1 and first in BACKGROUND:
            title = f"the labels start with a '{names[0]}' class the model does not have"
            fix = "drop the first name: labels[1:] (the model's output 0 is the first real class)"
        elif extra == -1:
            title = "the model has one output more than there are labels (a background class?)"
            fix = (
                "if output 0 is background, use ['background'] + labels, or drop output 0 (logits[:, 1:]); "
                "never shift by guessing"
            )
        else:
            title = f"{len(names)} labels for {num_outputs} outputs"
            fix = "use the label file the model was trained with, one name per output, in output order"
        out.append(
            Finding(
                "labels",
                "error",
                title,
                seen=f"{len(names)} names (first {names[0]!r}, last {names[-1]!r}) for a model with {num_outputs} outputs",
                why="with a count mismatch every index may point at a neighbour's name: answers look plausible and are wrong",
                fix=fix,
                evidence={"labels": len(names), "outputs": num_outputs},
            )
        )
    shifted = _shift_against_imagenet(names)
    if shifted:
        out.append(
            Finding(
                "labels",
                "error",
                f"the labels are the ImageNet-1k names shifted by {shifted:+d}",
                seen=f"labels[i] equals the standard ImageNet-1k name of class i{-shifted:+d}",
                why="every prediction is named after the neighbouring class",
                fix="use the standard order (twoends.models.imagenet_labels()); if the model has a background "
                "output 0, keep it as its own class",
                evidence={"shift": shifted},
            )
        )
    dup = _duplicates(names)
    if dup and not _is_standard_imagenet(names):
        shown = ", ".join(f"{n!r} at {idx}" for n, idx in list(dup.items())[:5])
        out.append(
            Finding(
                "labels",
                "warning",
                f"{len(dup)} label name(s) repeat",
                seen=f"repeated names: {shown}",
                why="two outputs with one name make answers ambiguous; many repeats usually mean a mis-parsed label file",
                fix="check the label file against the model's documentation; give every output its own name",
                evidence={"duplicates": {n: idx for n, idx in list(dup.items())[:20]}},
            )
        )
    return out


def _duplicates(names: list[str]) -> dict[str, list[int]]:
    seen: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        seen.setdefault(n.strip(), []).append(i)
    return {n: idx for n, idx in seen.items() if len(idx) > 1}


def _imagenet() -> list[str]:
    from ..models import imagenet_labels

    return imagenet_labels()


def _is_standard_imagenet(names: list[str]) -> bool:
    # The standard list itself repeats 'crane' and 'maillot' (as do the original synset words): known, not a mistake.
    return len(names) == 1000 and names == _imagenet()


def _shift_against_imagenet(names: list[str]) -> int:
    if len(names) not in (999, 1000, 1001):
        return 0
    ref = _imagenet()
    for shift in (1, -1):
        pairs = [(i, i - shift) for i in range(len(names)) if 0 <= i - shift < len(ref)]
        if sum(names[i] == ref[j] for i, j in pairs) > 0.95 * len(pairs) and sum(
            names[i] == ref[i] for i in range(min(len(names), len(ref)))
        ) < 0.5 * len(ref):
            return shift
    return 0


def over_confidence(
    scores, targets, *, from_logits: bool = True, threshold: float = 0.1, alpha: float = 0.05
) -> list[Finding]:
    """Check 'over-confidence': on a labelled sample, ECE above ``threshold``.

    A small sample's accuracy is noisy, so the finding also needs the mean
    confidence to exceed the accuracy by more than the Hoeffding bound
    ``sqrt(ln(1/alpha) / 2n)``: a handful of images only flags a gross case.
    """
    from ..calibrate.metrics import calibration_report

    s = _array(scores)
    y = np.asarray(to_numpy(targets) if not isinstance(targets, (list, tuple)) else targets)
    if s.ndim != 2 or y.ndim != 1 or len(y) != len(s) or len(y) == 0:
        return []
    report = calibration_report(s, y.astype(np.int64), n_bins=10, top_k=(1,), from_logits=from_logits)
    conf = _mean_confidence(s, from_logits)
    gap = conf - report.accuracy
    bound = math.sqrt(math.log(1 / alpha) / (2 * report.n))
    if report.ece <= threshold or gap <= bound:
        return []
    return [
        Finding(
            "over-confidence",
            "warning",
            f"over-confident: ECE {report.ece:.2f} on {report.n} labelled inputs",
            seen=f"mean top-1 probability {conf:.2f} against an accuracy of {report.accuracy:.2f} "
            f"(ECE {report.ece:.3f} > {threshold}; the gap {gap:.2f} exceeds the sampling noise {bound:.2f})",
            why="a probability of 0.95 should be right 95% of the time; these are right far less often than they claim, "
            "so thresholds and risk decisions built on them are off",
            fix="fit a temperature on held-out labelled data (twoends calibrate val/ -o calib.json, or "
            "twoends.calibrate.fit_temperature) and apply it",
            evidence={"ece": report.ece, "accuracy": report.accuracy, "mean_confidence": conf, "n": report.n},
        )
    ]


def _mean_confidence(s: np.ndarray, from_logits: bool) -> float:
    if from_logits:
        p = softmax(s, axis=1)
    else:
        p = s
    return float(p.max(axis=1).mean())

"""One Prediction for an input cut into windows: the clip-level answer and its segments.

The documented aggregation (the usual rules of audio tagging):

* **softmax** models (one class per window): the clip's probabilities are the
  mean of its windows' probabilities; its logits are their log (softmax of
  them gives back that mean exactly). The temperature applies per window.
* **sigmoid** models (event tagging, one-logit detectors): a class is present
  in the clip when it is present in any window, so each class's logit is the
  maximum over the windows (its probability is the maximum probability).

A clip of one window is that window's Prediction, logits as the model gave them.

``segments``: consecutive windows are merged into spans in seconds: for softmax,
the top-1 label of each window; for sigmoid, every class at or over its
threshold (for a one-logit detector, its one class: e.g. the speech spans of a
voice detector). A segment's probability is the mean over its windows; spans of
a label closer than ``merge_gap`` seconds are joined.

NumPy only; this module knows nothing of audio (the times come with the windows).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from ..prediction import Prediction, Segment

__all__ = ["combine_windows"]


def combine_windows(
    head: Any,
    logits: Any,
    counts: Sequence[int],
    starts: Sequence[np.ndarray],
    ends: Sequence[np.ndarray],
    merge_gaps: Sequence[float],
    inputs: Sequence[str | None],
) -> list[Prediction]:
    """Predictions for inputs whose windows' outputs are stacked in ``logits`` ([sum(counts), C])."""
    binary = logits.shape[-1] == 1  # a one-logit detector, shown as [not X, X] with logits [0, z]
    # per-window probabilities, with the head's temperature and one-logit rule (arrays: a clip has many windows)
    x, p, bad_rows = head.probabilities(logits)
    out, at = [], 0
    for n, t0, t1, gap, name in zip(counts, starts, ends, merge_gaps, inputs, strict=True):
        rows = slice(at, at + n)
        at += n
        bad = np.flatnonzero(bad_rows[rows])
        if len(bad):
            first = head(logits[rows.start + bad[0] : rows.start + bad[0] + 1])[0]  # the head's own message
            msg = f"window {bad[0]} ({t0[bad[0]]:.2f} s) of {n}: {first.error['message']}"
            out.append(Prediction(input=name, model=head.model, error={"type": first.error["type"], "message": msg}))
            continue
        if n == 1:
            clip = head(logits[rows], inputs=[name])[0]  # the model's own logits, as for any input
        else:
            clip = _aggregate(head, x[rows], p[rows], binary, name)
        segs = _segments(head, x[rows], p[rows], t0, t1, gap, binary)
        out.append(dataclasses.replace(clip, segments=segs))
    return out


def _aggregate(head: Any, x: np.ndarray, p: np.ndarray, binary: bool, name: str | None) -> Prediction:
    activation = _activation(head, x.shape[1], binary)
    if activation == "sigmoid":
        z = x[:, 1:] if binary else x  # the model's own logits (after outputs= conversion)
        return head.replace(outputs="logits")(z.max(axis=0, keepdims=True), inputs=[name])[0]
    mean = p.mean(axis=0, keepdims=True)
    with np.errstate(divide="ignore"):
        pred = head.replace(outputs="logits", temperature=1.0)(np.log(mean), inputs=[name])[0]
    return dataclasses.replace(pred, temperature=head.temperature)


def _activation(head: Any, width: int, binary: bool) -> str:
    return "sigmoid" if binary else head.resolve_activation(width)


def _segments(
    head: Any, x: np.ndarray, p: np.ndarray, t0: np.ndarray, t1: np.ndarray, gap: float, binary: bool
) -> tuple[Segment, ...]:
    labels = head.resolve_labels(1 if binary else x.shape[1])
    if _activation(head, x.shape[1], binary) == "softmax":
        top = p.argmax(axis=1)
        on = {int(c): top == c for c in np.unique(top)}
    else:
        thr = np.broadcast_to(0.5 if head.thresholds is None else head.thresholds, (p.shape[1] - binary,))
        cols = p[:, 1:] if binary else p
        on = {c + binary: cols[:, c] >= thr[c] for c in range(cols.shape[1]) if (cols[:, c] >= thr[c]).any()}
    segs = []
    for c, mask in on.items():
        for a, b in _runs(mask, t0, t1, gap):
            segs.append(Segment(float(t0[a]), float(t1[b - 1]), labels[c], float(p[a:b, c][mask[a:b]].mean())))
    return tuple(sorted(segs, key=lambda s: (s.start, s.label)))


def _runs(mask: np.ndarray, t0: np.ndarray, t1: np.ndarray, gap: float) -> list[tuple[int, int]]:
    """[a, b) index ranges of consecutive True windows, joined across gaps of at most ``gap`` seconds."""
    runs: list[list[int]] = []
    for i in map(int, np.flatnonzero(mask)):
        if runs and (runs[-1][1] == i or t0[i] - t1[runs[-1][1] - 1] <= gap + 1e-9):
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    return [(a, b) for a, b in runs]

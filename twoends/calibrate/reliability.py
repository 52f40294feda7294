"""Reliability diagram + confidence histogram, written to a PNG.

matplotlib is imported only inside :func:`plot_reliability`, with the
non-interactive Agg backend, so the calibration code never needs a display
or matplotlib itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..extras import require
from .binning import ReliabilityBins

__all__ = ["plot_reliability"]

ACC_COLOR = "#2f6db5"
GAP_COLOR = "#e0584f"


def plot_reliability(bins: ReliabilityBins, path, *, title: str = "Reliability diagram", dpi: int = 120):
    """Write a reliability diagram for ``bins`` to ``path`` (PNG) and return the path.

    ``path`` may also be a binary file object (a notebook embeds the PNG from memory); it is returned.

    Top: one bar per non-empty bin at its accuracy, spanning the bin's edges;
    the gap between accuracy and the bin's mean confidence shaded red (above
    the bar: over-confident, inside it: under-confident); the diagonal of
    perfect calibration; the sample count over each bar (equal-width bins);
    ECE and MCE in the title. Bottom: how many samples fall in each bin (per
    0.01 of confidence for equal-mass bins, whose counts are equal by
    construction), with the mean confidence and the accuracy over all samples
    as vertical lines.
    """
    if not isinstance(bins, ReliabilityBins):
        raise ConfigError(
            f"expected ReliabilityBins (from reliability_bins(...) or a CalibrationReport's .bins), "
            f"got {type(bins).__name__}"
        )
    matplotlib = require("matplotlib", "the reliability diagram")
    matplotlib.use("Agg", force=False)  # no display needed; leaves a backend the user chose in place
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    to_file = hasattr(path, "write")
    path = path if to_file else Path(path)
    left, width = bins.edges[:-1], np.diff(bins.edges)
    used = bins.count > 0
    acc, conf = bins.accuracy, bins.mean_confidence

    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(6.4, 7.6), sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.08}
    )
    try:
        top.bar(
            left[used],
            acc[used],
            width=width[used],
            align="edge",
            color=ACC_COLOR,
            edgecolor="white",
            linewidth=0.8,
            label="accuracy",
        )
        over = used & (conf > acc)
        under = used & (conf <= acc)
        # over-confident: a pink bar from accuracy up to mean confidence; under-confident: the gap
        # lies inside the accuracy bar, so hatch only, keeping the bar's height readable
        top.bar(
            left[over],
            (conf - acc)[over],
            bottom=acc[over],
            width=width[over],
            align="edge",
            facecolor=GAP_COLOR,
            alpha=0.35,
            edgecolor=GAP_COLOR,
            hatch="//",
            linewidth=0.8,
        )
        top.bar(
            left[under],
            (acc - conf)[under],
            bottom=conf[under],
            width=width[under],
            align="edge",
            facecolor="none",
            edgecolor=GAP_COLOR,
            hatch="//",
            linewidth=0.8,
        )
        top.plot([0, 1], [0, 1], linestyle="--", color="0.3", linewidth=1.2, label="perfect calibration")
        mass = bins.binning == "mass"
        if not mass:  # equal-mass bins all hold about n / n_bins: said once in the title instead
            for x, w, a, c, n in zip(left[used], width[used], acc[used], conf[used], bins.count[used]):
                top.text(
                    x + w / 2,
                    max(a, c) + 0.015,
                    f"{int(n)}",
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    color="0.25",
                    rotation=90 if bins.n_bins > 12 else 0,
                )
        top.set_xlim(0, 1)
        top.set_ylim(0, 1.12)
        top.set_ylabel("accuracy")
        top.set_title(
            f"{title}\nECE {100 * bins.ece:.2f}%   MCE {100 * bins.mce:.2f}%   "
            f"n = {bins.n}   {bins.n_bins} "
            + (f"equal-mass bins (~{bins.n / bins.n_bins:.0f} each)" if mass else "equal-width bins"),
            fontsize=11,
        )
        handles, labels = top.get_legend_handles_labels()
        handles.append(Patch(facecolor=GAP_COLOR, alpha=0.35, edgecolor=GAP_COLOR, hatch="//"))
        labels.append("gap to mean confidence")
        top.legend(handles, labels, loc="upper left", fontsize=9, frameon=False)
        top.grid(alpha=0.25)

        # equal-mass bins have equal counts by construction: show density so the shape stays visible
        heights = bins.count / (width / 0.01) if mass else bins.count
        bottom.bar(left, heights, width=width, align="edge", color="0.55", edgecolor="white", linewidth=0.8)
        total = bins.count.sum()
        bottom.axvline(
            bins.conf_sum.sum() / total, color=GAP_COLOR, linestyle="--", linewidth=1.5, label="mean confidence"
        )
        bottom.axvline(bins.correct_sum.sum() / total, color=ACC_COLOR, linestyle="-", linewidth=1.5, label="accuracy")
        bottom.set_xlabel("confidence (top-1 probability)")
        bottom.set_ylabel("samples per 0.01" if mass else "samples")
        bottom.legend(loc="best", fontsize=9, frameon=False)
        bottom.grid(alpha=0.25)
        if not to_file:
            path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi, bbox_inches="tight", format="png")
    finally:
        plt.close(fig)
    return path

"""The reliability PNG: written, a real image of a sensible size, not blank; no import cost."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from twoends.calibrate import plot_reliability, reliability_bins
from twoends.errors import ConfigError


def bins_for(binning: str, scale: float):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(2000, 10)) * 2
    labels = np.where(rng.random(2000) < 0.6, z.argmax(1), rng.integers(0, 10, 2000))
    return reliability_bins(z * scale, labels, n_bins=15, binning=binning)


@pytest.mark.parametrize("binning,scale", [("width", 3.0), ("mass", 3.0), ("width", 0.3)])
def test_png_is_a_readable_image(tmp_path, binning, scale):
    out = plot_reliability(bins_for(binning, scale), tmp_path / "sub" / "rel.png", title="test")
    assert out.exists() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(out) as im:
        im.verify()
    with Image.open(out) as im:
        w, h = im.size
        pixels = np.asarray(im.convert("L"), dtype=float)
    assert 500 <= w <= 1600 and 600 <= h <= 1800 and h > w  # diagram over histogram
    assert pixels.std() > 10  # drawn on, not a blank canvas


def test_rejects_other_inputs(tmp_path):
    with pytest.raises(ConfigError, match="ReliabilityBins"):
        plot_reliability({"ece": 0.1}, tmp_path / "x.png")


def test_import_pulls_in_no_scipy_matplotlib_or_torch():
    code = (
        "import sys, twoends.calibrate; "
        "bad = [m for m in ('scipy', 'matplotlib', 'torch', 'sklearn') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr

"""Real-size benchmark photos: 640x480 JPEGs made from the bundled real photos by crops, flips and resizes."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.photos import photo_arrays  # noqa: E402


def make_photos(folder: Path, n: int, size=(640, 480), seed: int = 0) -> list[Path]:
    """``n`` distinct 640x480 JPEGs (quality 90) in ``folder``; reused if already there."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"photo_{i:05d}.jpg" for i in range(n)]
    if all(p.exists() for p in paths):
        return paths
    rng = np.random.default_rng(seed)
    sources = [Image.fromarray(a) for a in photo_arrays().values()]
    for i, path in enumerate(paths):
        img = sources[i % len(sources)]
        w, h = img.size
        scale = rng.uniform(0.6, 1.0)
        cw, ch = int(w * scale), int(h * scale)
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        out = img.crop((x0, y0, x0 + cw, y0 + ch))
        if rng.random() < 0.5:
            out = ImageOps.mirror(out)
        out.resize(size, Image.BICUBIC).save(path, quality=90)
    return paths

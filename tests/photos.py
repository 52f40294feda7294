"""Real photos for tests: skimage's bundled data and matplotlib's grace_hopper.jpg, written as JPEG/PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def photo_arrays() -> dict[str, np.ndarray]:
    import skimage.data as data
    from matplotlib import cbook

    arrays = {name: getattr(data, name)() for name in ("chelsea", "coffee", "astronaut", "rocket")}
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        arrays["grace_hopper"] = np.asarray(Image.open(f).convert("RGB"))
    return arrays


def write_photos(folder: Path, fmt: str = "jpg") -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, arr in photo_arrays().items():
        path = folder / f"{name}.{fmt}"
        Image.fromarray(arr).save(path, quality=95) if fmt == "jpg" else Image.fromarray(arr).save(path)
        paths[name] = path
    return paths

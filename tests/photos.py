"""Real photos for tests: skimage's bundled data and matplotlib's grace_hopper.jpg (nothing is downloaded).

The one loader every test folder uses: PIL images, NumPy arrays, or JPEG/PNG files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

PHOTO_NAMES = ("chelsea", "coffee", "astronaut", "rocket", "grace_hopper")


def load_photo(name: str) -> Image.Image:
    """One real photo as an RGB PIL image."""
    if name == "grace_hopper":
        import matplotlib.cbook as cbook

        with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
            return im.convert("RGB")
    from skimage import data

    return Image.fromarray(getattr(data, name)()).convert("RGB")


def load_photos() -> dict[str, Image.Image]:
    return {name: load_photo(name) for name in PHOTO_NAMES}


def photo_arrays() -> dict[str, np.ndarray]:
    return {name: np.asarray(im) for name, im in load_photos().items()}


def write_photos(folder: Path, fmt: str = "jpg") -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, im in load_photos().items():
        path = folder / f"{name}.{fmt}"
        im.save(path, quality=95) if fmt == "jpg" else im.save(path)
        paths[name] = path
    return paths

"""Real photos for the preprocessing tests, written to temporary JPEG/PNG files."""

from __future__ import annotations

import pathlib

import pytest
from PIL import Image

from tests.photos import PHOTO_NAMES, load_photo


@pytest.fixture(scope="session")
def photos() -> dict[str, Image.Image]:
    """The real photos as in-memory RGB PIL images."""
    return {name: load_photo(name) for name in PHOTO_NAMES}


@pytest.fixture(scope="session")
def photo_files(photos, tmp_path_factory) -> dict[str, dict[str, pathlib.Path]]:
    """Each photo saved as JPEG (quality 90) and PNG: {name: {"jpg": path, "png": path}}."""
    root = tmp_path_factory.mktemp("photos")
    out = {}
    for name, im in photos.items():
        jpg, png = root / f"{name}.jpg", root / f"{name}.png"
        im.save(jpg, quality=90)
        im.save(png)
        out[name] = {"jpg": jpg, "png": png}
    return out

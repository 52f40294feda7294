"""Real photos for the framework tests (scikit-image and matplotlib ship them; nothing is downloaded)."""

from __future__ import annotations

from PIL import Image

NAMES = ("chelsea", "coffee", "astronaut", "rocket", "grace_hopper")


def load_photo(name: str) -> Image.Image:
    if name == "grace_hopper":
        import matplotlib.cbook as cbook

        with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
            return im.convert("RGB")
    from skimage import data

    return Image.fromarray(getattr(data, name)()).convert("RGB")


def load_photos() -> dict[str, Image.Image]:
    return {name: load_photo(name) for name in NAMES}

"""The input end: decode anything into RGB, then apply the model's own preprocessing.

Pillow and NumPy only: importing this package never imports a framework.
"""

from .image import DEFAULT_MAX_PIXELS, decode_image, to_rgb
from .sources import IMAGE_EXTENSIONS, Item, is_single, iter_items
from .spec import IMAGENET_MEAN, IMAGENET_STD, ImagePlan, ImageSpec, resolve_spec

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGE_EXTENSIONS",
    "ImagePlan",
    "ImageSpec",
    "Item",
    "decode_image",
    "is_single",
    "iter_items",
    "resolve_spec",
    "to_rgb",
]

"""The input end: decode anything, then apply the model's own preprocessing.

Every kind of input is a spec and a plan implementing one protocol
(``protocol.InputSpec`` / ``protocol.InputPlan``): images (``ImageSpec`` /
``ImagePlan``) and texts (``TextSpec`` / ``TextPlan``).
Pillow and NumPy only: importing this package never imports a framework.
"""

from .image import DEFAULT_MAX_PIXELS, decode_image, to_rgb
from .image_plan import ImageInput, ImagePlan
from .protocol import InputPlan, InputSpec, Limits, resolve_input_spec
from .sources import IMAGE_EXTENSIONS, Item, is_single, iter_items
from .spec import IMAGENET_MEAN, IMAGENET_STD, ImageSpec, resolve_spec
from .text import TextPlan, TextSpec

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGE_EXTENSIONS",
    "ImageInput",
    "ImagePlan",
    "ImageSpec",
    "InputPlan",
    "InputSpec",
    "Item",
    "Limits",
    "TextPlan",
    "TextSpec",
    "decode_image",
    "is_single",
    "iter_items",
    "resolve_input_spec",
    "resolve_spec",
    "to_rgb",
]

"""The input end: decode anything, then apply the model's own preprocessing.

Every kind of input is a spec and a plan implementing one protocol
(``protocol.InputSpec`` / ``protocol.InputPlan``): images (``ImageSpec`` /
``ImagePlan``), texts (``TextSpec`` / ``TextPlan``) and audio clips
(``AudioSpec`` / ``AudioPlan``; decoding with soundfile and PyAV, imported when a clip is decoded).
Pillow and NumPy only: importing this package never imports a framework.
"""

from .audio import AUDIO_EXTENSIONS, DEFAULT_MAX_SECONDS, AudioClip, decode_audio
from .audio_spec import AudioPlan, AudioSpec
from .image import DEFAULT_MAX_PIXELS, decode_image, to_rgb
from .image_plan import ImageInput, ImagePlan
from .protocol import InputPlan, InputSpec, Limits, resolve_input_spec
from .sources import IMAGE_EXTENSIONS, Item, is_single, iter_items
from .spec import IMAGENET_MEAN, IMAGENET_STD, ImageSpec, resolve_spec
from .text import TextPlan, TextSpec

__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioClip",
    "AudioPlan",
    "AudioSpec",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_SECONDS",
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
    "decode_audio",
    "decode_image",
    "is_single",
    "iter_items",
    "resolve_input_spec",
    "resolve_spec",
    "to_rgb",
]

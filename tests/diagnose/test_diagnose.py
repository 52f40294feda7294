"""The doctor on real pipelines: each mistake injected fires its check with the right finding;
the correct pipelines raise nothing (zero findings, every photo, both models)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import twoends
from twoends.diagnose import check

torch = pytest.importorskip("torch")

ML_LABELS = ["red square", "green square", "blue square"]
INPUT_CHECKS = ["batch-dimension", "layout", "input-size", "normalization"]
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])[None, :, None, None]
IMAGENET_STD = np.array([0.229, 0.224, 0.225])[None, :, None, None]


def softmax(z, axis=-1):
    z = z - z.max(axis=axis, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=axis, keepdims=True)


def only(findings, name):
    """The findings, which must all come from check ``name`` (one at least)."""
    assert findings, f"expected a {name} finding, got none (ran {findings.ran}, skipped {findings.skipped})"
    assert {f.check for f in findings} == {name}, [str(f) for f in findings]
    return findings


# ------------------------------------------------------------------ no false alarms


@pytest.mark.slow
def test_correct_lite0_pipeline_raises_nothing(lite0, batch, logits):
    """Everything the user has, all correct: every check runs, none fires."""
    m = lite0.backend.module
    findings = check(
        m,
        batch=torch.from_numpy(batch),
        logits=torch.from_numpy(logits),
        probabilities=softmax(logits),
        labels=list(lite0.head.labels),
        spec=lite0.spec,
        preprocess=lite0.plan,
        targets=np.argmax(logits, axis=1),
    )
    assert list(findings) == []
    assert (
        set(findings.ran) == set(twoends.diagnose.CHECKS) - set(twoends.diagnose.audio.AUDIO_CHECKS)
        and findings.skipped == {}
    )
    assert not findings.failed


def test_correct_classifier_raises_nothing_on_photo_files(lite0, photo_files):
    findings = check(lite0, photo_files, checks=[c for c in twoends.diagnose.CHECKS if c != "channel-order"])
    assert list(findings) == []
    assert "known-answer" in findings.ran and "normalization" in findings.ran


@pytest.mark.parametrize("name", ["chelsea", "coffee", "astronaut", "rocket", "grace_hopper"])
def test_each_photo_alone_passes_the_input_checks(lite0, photos, name):
    x = lite0.plan(photos[name])[None]
    assert list(check(batch=x, spec=lite0.spec, checks=INPUT_CHECKS)) == []


def test_correct_multilabel_pipeline_raises_nothing(multilabel, ml_batch):
    net, spec = multilabel
    x, targets = ml_batch(64, seed=7)
    with torch.no_grad():
        z = net(x)
    p = torch.sigmoid(z)
    assert ((p > 0.5).numpy() == targets).mean() > 0.9  # it learnt the task: the pipeline is real
    findings = check(net, batch=x, logits=z, probabilities=p, labels=ML_LABELS, spec=spec, multi_label=True)
    assert list(findings) == []
    assert {"training-mode", "normalization", "activation", "labels", "probabilities-as-logits"} <= set(findings.ran)


# ------------------------------------------------------------------ the input end


@pytest.mark.parametrize(
    "mistake, looks_like",
    [
        ("raw", "raw 0..255"),
        ("unit", "0..1 pixels"),
        ("imagenet", "ImageNet mean/std ("),
        ("imagenet_255", "ImageNet mean/std on 0..255"),
    ],
)
def test_wrong_normalisation_is_named(lite0, batch, mistake, looks_like):
    pixels = batch * 128 + 127  # back to 0..255 (exactly: the spec is (p - 127) / 128)
    wrong = {
        "raw": pixels,
        "unit": pixels / 255,
        "imagenet": (pixels / 255 - IMAGENET_MEAN) / IMAGENET_STD,
        "imagenet_255": (pixels - IMAGENET_MEAN) / IMAGENET_STD,
    }[mistake]
    findings = only(check(batch=wrong.astype(np.float32), spec=lite0.spec, checks=INPUT_CHECKS), "normalization")
    f = findings[0]
    assert f.severity == "error" and f.evidence["looks_like"].startswith(looks_like.split(" (")[0])
    assert "(p - 127) / 128" in f.title and "(pixels_0_255 - [127.0, 127.0, 127.0]) / [128.0, 128.0, 128.0]" in f.fix


def test_wrong_normalisation_found_on_each_single_photo(lite0, photos):
    for name, im in photos.items():
        x = (lite0.plan(im)[None] * 128 + 127) / 255
        f = only(check(batch=x, spec=lite0.spec, checks=["normalization"]), "normalization")[0]
        assert f.evidence["looks_like"].startswith("0..1 pixels"), name


def test_imagenet_spec_model_fed_tf_style_inputs(lite0, batch):
    """The other direction: a model expecting ImageNet statistics fed (p - 127) / 128."""
    spec = lite0.spec.replace(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    f = only(check(batch=batch, spec=spec, checks=["normalization"]), "normalization")[0]
    assert f.evidence["looks_like"].startswith("(p - 127) / 128")


def test_nhwc_batch_is_a_layout_error(lite0, batch):
    f = only(check(batch=batch.transpose(0, 2, 3, 1), spec=lite0.spec, checks=INPUT_CHECKS), "layout")[0]
    assert "NHWC" in f.title and "permute(0, 3, 1, 2)" in f.fix


def test_missing_batch_dimension(lite0, batch):
    f = only(check(batch=torch.from_numpy(batch[0]), spec=lite0.spec, checks=INPUT_CHECKS), "batch-dimension")[0]
    assert f.evidence["shape"] == [3, 224, 224] and "unsqueeze(0)" in f.fix


def test_wrong_input_size(lite0, photos):
    small = twoends.preprocess.ImagePlan(lite0.spec.replace(input_size=[160, 160], resize_size=182))
    x = np.stack([small(im) for im in photos.values()])
    f = only(check(batch=x, spec=lite0.spec, checks=INPUT_CHECKS), "input-size")[0]
    assert f.severity == "warning" and f.evidence == {"got": [160, 160], "expected": [224, 224]}


@pytest.mark.slow
def test_bgr_channels_found_from_known_answers(lite0):
    def bgr(im):  # the OpenCV mistake: right normalisation, channels reversed
        return lite0.plan(im)[::-1].copy()

    f = only(check(lite0.backend.module, preprocess=bgr, checks=["channel-order"]), "channel-order")[0]
    assert f.severity == "warning" and f.evidence["share_better_reversed"] >= 0.75


def test_raw_pixels_fail_the_known_answer(lite0):
    def raw(im):  # forgot the normalisation
        return lite0.plan(im) * 128 + 127

    f = only(check(lite0.backend.module, preprocess=raw, checks=["known-answer"]), "known-answer")[0]
    assert f.severity == "error" and "chelsea is a cat" in f.title


# ------------------------------------------------------------------ the model


@pytest.mark.slow
def test_training_mode_found_before_twoends_fixes_it_and_nothing_is_changed(lite0, batch):
    m = lite0.backend.module
    buffers = {k: v.clone() for k, v in m.state_dict().items()}
    m.train()
    try:
        x = torch.from_numpy(batch[:2])
        f = only(check(m, batch=x, checks=["training-mode"]), "training-mode")[0]
        assert m.training  # the doctor reports; it does not silently fix
        after = m.state_dict()
        assert all(torch.equal(buffers[k], after[k]) for k in buffers)  # BN running stats untouched
    finally:
        m.eval()
    assert f.severity == "error" and "BatchNorm2d" in f.seen
    assert f.evidence["max_change_vs_eval_mode"] > 0.1


def test_dropout_seen_as_two_passes_that_differ(multilabel, ml_batch):
    net, spec = multilabel
    x, _ = ml_batch(16, seed=3)
    net.train()
    try:
        f = only(check(net, batch=x, checks=["training-mode"]), "training-mode")[0]
    finally:
        net.eval()
    assert "Dropout" in f.seen and f.evidence["max_change_between_two_passes"] > 0
    assert f.evidence["max_change_alone_vs_in_batch"] > 0  # batch-norm on batch statistics


# ------------------------------------------------------------------ the output end


def test_softmax_applied_twice(logits):
    f = only(check(logits=softmax(logits), checks=["probabilities-as-logits"]), "probabilities-as-logits")[0]
    assert f.severity == "error" and "sums to 1" in f.seen


def test_model_ending_in_softmax(lite0, batch):
    model = torch.nn.Sequential(lite0.backend.module, torch.nn.Softmax(dim=1))
    f = only(check(model, batch=batch[:2], checks=["probabilities-as-logits"]), "probabilities-as-logits")[0]
    assert f.evidence["last_layer"] == "softmax"


@pytest.mark.parametrize("rows", [5, 1])
def test_softmax_over_the_batch_axis(logits, lite0, rows):
    p = softmax(logits[:rows], axis=0)
    f = only(check(probabilities=p, labels=list(lite0.head.labels), checks=["softmax-axis"]), "softmax-axis")[0]
    assert f.evidence["class_axis"] == 1 and "dim=1" in f.fix
    if rows == 1:
        assert "every class gets 1.0" in f.why


def test_softmax_on_a_multilabel_model(multilabel, ml_batch):
    net, _ = multilabel
    x, targets = ml_batch(32, seed=5)
    with torch.no_grad():
        z = net(x)
    f = only(
        check(logits=z, probabilities=torch.softmax(z, -1), multi_label=True, checks=["activation"]), "activation"
    )[0]
    assert "multi-label" in f.title and "sigmoid" in f.fix
    # told by multi-hot targets instead of a flag
    assert check(probabilities=torch.softmax(z, -1), targets=targets, checks=["activation"])[0].check == "activation"


def test_softmax_over_a_single_logit(multilabel, ml_batch):
    net, _ = multilabel
    x, _ = ml_batch(8, seed=2)
    with torch.no_grad():
        z = net(x)[:, :1]  # a binary head: one logit
    f = only(check(logits=z, probabilities=torch.softmax(z, -1), checks=["activation"]), "activation")[0]
    assert "softmax over a single output logit" in f.title and "sigmoid" in f.fix


@pytest.mark.parametrize(
    "make, title",
    [
        (lambda names: ["background"] + names, "start with a 'background'"),
        (lambda names: names[1:] + ["extra"], "shifted by -1"),
        (lambda names: names[:-1], "one output more"),
        (lambda names: names[:500] * 2, "repeat"),
    ],
)
def test_labels_that_do_not_fit(lite0, logits, make, title):
    names = make(list(lite0.head.labels))
    found = only(check(logits=logits, labels=names, checks=["labels"]), "labels")
    assert any(title in f.title for f in found), [f.title for f in found]


@pytest.mark.slow
def test_over_confidence_on_a_labelled_sample(lite0, photos):
    """Sharpened logits (T = 0.1) on labelled views of the photos: ECE fires; the model's own logits do not."""
    from twoends.diagnose.model import _views

    truth = {"chelsea": 281, "coffee": 967, "rocket": 657}  # tabby, espresso, missile
    views = [(v, t) for n, t in truth.items() for v in _views(photos[n])]
    x = np.stack([lite0.plan(v) for v, _ in views])
    y = np.array([t for _, t in views])
    with torch.no_grad():
        z = lite0.backend.module(torch.from_numpy(x)).double().numpy()
    assert list(check(logits=z, targets=y, checks=["over-confidence"])) == []
    f = only(check(logits=z / 0.1, targets=y, checks=["over-confidence"]), "over-confidence")[0]
    assert f.evidence["ece"] > 0.1 and "calibrate" in f.fix


# ------------------------------------------------------------------ the report


def test_findings_serialise_to_json(logits):
    findings = check(logits=softmax(logits), labels=["background"] + [str(i) for i in range(1000)])
    data = json.loads(json.dumps(findings.to_dict()))
    assert data["ok"] is False and {f["check"] for f in data["findings"]} == {"probabilities-as-logits", "labels"}
    assert all(set(f) == {"check", "severity", "title", "seen", "why", "fix", "evidence"} for f in data["findings"])


def test_unknown_check_name_is_an_error():
    with pytest.raises(twoends.ConfigError, match="unknown check"):
        check(logits=np.zeros((1, 3)), checks=["nope"])

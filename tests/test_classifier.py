"""The embedded default, end to end, on real photos: the seed's gotchas made impossible."""

import numpy as np
import pytest

import twoends
from tests.photos import photo_arrays, write_photos

torch = pytest.importorskip("torch")
CATS = range(281, 286)


@pytest.fixture(scope="module")
def clf():
    return twoends.load("efficientnet_lite0")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return write_photos(tmp_path_factory.mktemp("photos"))


def test_real_photos_predict_the_right_classes(clf, photos):
    cat = clf.predict(photos["chelsea"])
    assert isinstance(cat, twoends.Prediction) and cat.index in CATS
    coffee = clf.predict(str(photos["coffee"]))
    assert coffee.index == 967 and coffee.label == "espresso" and coffee.probability > 0.5
    assert coffee.model == "efficientnet_lite0" and coffee.activation == "softmax"


def test_every_kind_of_input_gives_the_same_answer(clf, photos):
    path = photos["coffee"]
    from PIL import Image

    by_path = clf.predict(path)
    for x in (str(path), path.read_bytes(), Image.open(path), np.asarray(Image.open(path))):
        p = clf.predict(x)
        assert p.index == 967
        np.testing.assert_allclose(p.probabilities, by_path.probabilities, atol=1e-5)


def test_folder_glob_and_list_in_input_order(clf, photos):
    folder = photos["coffee"].parent
    names = sorted(p.name for p in folder.iterdir())
    by_folder = clf.predict(folder)
    assert [p.input.rsplit("/", 1)[-1] for p in by_folder] == names
    by_glob = clf.predict(str(folder / "c*.jpg"))
    assert [p.label for p in by_glob] == [p.label for p in by_folder if p.input.rsplit("/", 1)[-1].startswith("c")]
    listed = clf.predict([photos["coffee"], photos["chelsea"]], batch_size=1)
    assert listed[0].index == 967 and listed[1].index in CATS


def test_no_manual_batch_dimension_and_a_batch_stays_one(clf, photos):
    from PIL import Image

    x = clf.plan(Image.open(photos["chelsea"]).convert("RGB"))  # one preprocessed input, (3, H, W)
    one = clf.predict(torch.from_numpy(x))
    assert isinstance(one, twoends.Prediction) and one.index in CATS
    batch = torch.from_numpy(np.stack([x, x, x]))
    many = clf.predict(batch)
    assert len(many) == 3 and all(p.index == one.index for p in many)


def test_eval_and_inference_mode_are_always_on(clf, photos):
    module = clf.backend.module
    module.train()  # the classic mistake: a module left (or put back) in training mode
    with pytest.warns(RuntimeWarning, match="training mode"):
        p = clf.predict(photos["chelsea"])
    assert not module.training and p.index in CATS
    logits = clf.backend.forward(np.zeros((1, 3, 224, 224), np.float32))
    assert torch.is_inference(logits) and not logits.requires_grad


def test_softmax_on_the_class_axis_and_labels_attached(clf, photos):
    preds = clf.predict([photos["chelsea"], photos["coffee"]])
    for p in preds:
        assert p.probabilities.shape == (1000,)
        assert p.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
        assert p.top_k[0].label == p.label and isinstance(p.label, str)
        np.testing.assert_allclose(p.probabilities, torch.softmax(torch.from_numpy(p.logits), -1).numpy(), atol=1e-6)


def test_bad_inputs_give_error_rows_and_the_run_goes_on(clf, photos, tmp_path):
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(photos["coffee"].read_bytes()[:2000])
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    inputs = [photos["coffee"], truncated, empty, text, tmp_path / "missing.jpg", photos["chelsea"]]
    preds = clf.predict(inputs, batch_size=4)
    assert len(preds) == len(inputs)
    assert [p.ok for p in preds] == [True, False, False, False, False, True]
    assert preds[0].index == 967 and preds[-1].index in CATS
    for p, word in zip(preds[1:5], ["truncated", "empty", "image format", "no such file"]):
        assert p.error["type"] == "DecodeError" and word in p.error["message"].lower(), p.error


def test_pixel_limit(clf, photos):
    p = twoends.load("efficientnet_lite0", max_pixels=10_000).predict(photos["coffee"])
    assert p.error["type"] == "ImageTooLargeError" and "limit" in p.error["message"]


def test_mismatched_labels_fail_at_load_time():
    with pytest.raises(twoends.LabelError, match="1000 outputs.*999 names"):
        twoends.load("efficientnet_lite0", labels=[str(i) for i in range(999)])


def test_describe_says_where_the_spec_came_from(clf):
    d = clf.describe()
    assert d["spec_source"] == "model" and d["spec"]["input_size"] == [224, 224]
    over = twoends.load("efficientnet_lite0", spec={"input_size": (256, 256)})
    assert over.describe()["spec_source"] == "model+explicit"


def test_wrap_any_torch_module_with_spec_and_labels(photos):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
    spec = twoends.ImageSpec(input_size=(8, 8), resize_mode="exact", crop="none")
    clf = twoends.wrap(net, spec=spec, labels=["a", "b", "c", "d"], name="tiny")
    assert not net.training
    p = clf.predict(photos["rocket"])
    assert p.label in "abcd" and p.probabilities.shape == (4,) and p.model == "tiny"


def test_photo_arrays_are_real():
    arrays = photo_arrays()
    assert arrays["chelsea"].shape == (300, 451, 3) and arrays["grace_hopper"].ndim == 3


def test_an_option_the_adapter_does_not_take_is_a_clear_error():
    with pytest.raises(twoends.ConfigError, match="'weights' is not an option.*it takes"):
        twoends.wrap(torch.nn.Linear(3, 2), weights="ResNet50_Weights.IMAGENET1K_V2")

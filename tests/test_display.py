"""Notebook display: each ``_repr_html_`` rendered on real outputs (EfficientNet-Lite0 on real photos).

What must be there is checked in the HTML itself: labels, percentages as the numbers
format them, the thumbnail decoded back from its data URI, the reliability diagram's PNG,
the error text, and each finding's seen / why / fix. And no script: notebooks render it as is.
"""

from __future__ import annotations

import base64
import html
import io
import re

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch", reason="pip install --no-deps efficientnet-lite-pytorch")
pytest.importorskip("skimage")

from tests.photos import load_photo, write_photos

DATA_URI = re.compile(r'src="data:image/(jpeg|png);base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def clf():
    import twoends

    return twoends.load("efficientnet_lite0", device="cpu", top_k=5)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return write_photos(tmp_path_factory.mktemp("display"))


def images_in(text: str) -> list[tuple[str, Image.Image]]:
    out = []
    for kind, data in DATA_URI.findall(text):
        with Image.open(io.BytesIO(base64.b64decode(data))) as im:
            im.load()
            out.append((kind, im))
    return out


def test_a_prediction_shows_its_photo_labels_percentages_and_numbers(clf, photos):
    pred = clf.predict(str(photos["chelsea"]))
    page = pred._repr_html_()
    assert "<script" not in page.lower()
    for score in pred.top_k:
        assert html.escape(score.label) in page
        assert f"{score.probability:.1%}" in page
        assert f'style="width:{score.probability * 100:.1f}%"' in page  # the bar is as long as the probability
    assert f"{pred.entropy:.3f} nats" in page and f"{pred.margin:.1%}" in page
    ((kind, thumb),) = images_in(page)
    assert kind == "jpeg" and max(thumb.size) == 96
    # the thumbnail is the photo: its colours match the original shrunk the same way
    small = load_photo("chelsea").resize(thumb.size)
    assert np.abs(np.asarray(thumb, float) - np.asarray(small, float)).mean() < 12
    assert len(repr(pred)) < 120 and "tiger cat" in repr(pred)


def test_out_of_distribution_groups_and_members_are_shown(clf, photos):
    import dataclasses

    from twoends.prediction import GroupScore, MemberResult

    pred = clf.predict(str(photos["chelsea"]))
    second = clf.predict(str(photos["coffee"]))
    shown = dataclasses.replace(
        pred,
        ood=True,
        ood_score=7.25,
        groups=(GroupScore("cat", 0.92), GroupScore("dog", 0.03)),
        members=(MemberResult("lite0", pred.top_k), MemberResult("other", second.top_k)),
    )
    page = shown._repr_html_()
    assert "yes: none of the above" in page and "(score 7.250)" in page
    assert "cat 92.0%" in page and "dog 3.0%" in page
    assert f"lite0: {pred.label} {pred.probability:.1%}; other: {second.label} {second.probability:.1%}" in page
    assert "none of the above" not in dataclasses.replace(pred, ood=False, ood_score=0.5)._repr_html_()


def test_a_photo_given_in_memory_has_no_file_to_read_unless_passed(clf):
    from twoends.display import prediction_html

    im = load_photo("coffee")
    pred = clf.predict(im)
    assert pred.input.startswith("<") and not images_in(pred._repr_html_())
    assert len(images_in(prediction_html(pred, image=im))) == 1


def test_an_error_shows_in_red_with_its_message(clf, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not a JPEG at all")
    pred = clf.predict(str(broken))
    page = pred._repr_html_()
    assert not pred.ok and 'class="error"' in page
    assert html.escape(f"{pred.error['type']}: {pred.error['message']}") in page
    assert not images_in(page)


def test_a_list_of_predictions_is_a_table_with_one_row_each(clf, photos, tmp_path):
    broken = tmp_path / "empty.png"
    broken.write_bytes(b"")
    paths = [str(p) for p in photos.values()] + [str(broken)]
    preds = clf.predict(paths)
    page = preds._repr_html_()
    assert page.count("<tr>") == len(paths) + 1  # header + one row per input
    assert len(images_in(page)) == len(photos)  # the empty file has no thumbnail, only its error
    for p in preds[:-1]:
        assert f"<b>{html.escape(p.label)}</b>" in page and f"{p.probability:.1%}" in page
    assert "1 failed" in page and html.escape(preds[-1].error["message"]) in page
    assert repr(preds).startswith(f"PredictionList({len(paths)} predictions, 1 failed: ") and len(repr(preds)) < 160
    assert preds == list(preds) and isinstance(preds, list)  # still a plain list for everything else


def test_a_long_list_shows_its_first_rows_and_counts_the_rest(clf, photos):
    from twoends.display import predictions_html

    preds = clf.predict([str(photos["rocket"])] * 7)
    page = predictions_html(preds, limit=3, thumbnails=False)
    assert page.count("<tr>") == 4 and "... and 4 more rows" in page and not images_in(page)


def test_an_evaluation_shows_its_metrics_the_diagram_and_the_failures(clf, photos, tmp_path):
    from twoends.calibrate import load_labelled
    from twoends.calibrate.evaluate import evaluate

    truth = {
        "chelsea": "tiger cat",
        "coffee": "espresso",
        "rocket": "missile",
        "grace_hopper": "military uniform",
        "astronaut": "space shuttle",
    }
    for name, label in truth.items():
        (tmp_path / label).mkdir()
        Image.open(photos[name]).save(tmp_path / label / f"{name}.jpg")
    (tmp_path / "espresso" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff nothing else")
    result = evaluate(clf, load_labelled(tmp_path, clf.labels), n_bins=5)
    page = result._repr_html_()
    d = result.to_dict()
    assert d["n_evaluated"] == 5 and d["n_failed"] == 1
    for key in ("accuracy", "ece", "ece_mass", "mce"):
        assert f"<td>{d[key]:.1%}</td>" in page
    assert f"<td>{d['nll']:.3f}</td>" in page and f"<td>{d['brier']:.3f}</td>" in page
    ((kind, diagram),) = images_in(page)
    assert kind == "png" and diagram.size[0] > 300 and diagram.size[1] > 300
    assert "1 inputs failed" in page and "corrupt.jpg" in page
    assert "\n" not in repr(result) and f"accuracy={d['accuracy']:.4f}" in repr(result)


def test_a_doctor_report_shows_each_finding_with_seen_why_and_fix(clf):
    import twoends

    # your own pipeline with two mistakes: 0..1 pixels (no normalisation) and softmax over the batch axis
    photos = [load_photo(n).resize((224, 224)) for n in ("chelsea", "coffee", "rocket")]
    batch = np.stack([np.asarray(im, np.float32).transpose(2, 0, 1) / 255 for im in photos])
    logits = np.stack([clf.predict(im).logits for im in photos])
    wrong = np.exp(logits - logits.max(axis=0)) / np.exp(logits - logits.max(axis=0)).sum(axis=0)
    findings = twoends.check(batch=batch, probabilities=wrong, spec=clf.settled.spec, labels=list(clf.labels))
    page = findings._repr_html_()
    checks = [f.check for f in findings]
    assert findings.failed and "softmax-axis" in checks and "normalization" in checks
    for f in findings:
        for text in (f.check, f.title, f.seen, f.why, f.fix):
            assert html.escape(text) in page
        assert f"sev-{f.severity}" in page
    assert "fix the errors first" in page and "<script" not in page.lower()
    assert f"{len(findings.ran)} checks ran, {len(findings.skipped)} skipped" in page
    assert repr(findings).startswith("Findings(") and "softmax-axis" in repr(findings) and "\n" not in repr(findings)

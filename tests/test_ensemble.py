"""Ensembles on real photos with the bundled EfficientNet-Lite0 and Lite1 (real weights).

* the ensemble's probabilities are the mean of the members' calibrated probabilities
  (each member with its own temperature from its own calibration) to 1e-6;
* each member saw its own input size (224 and 240), and every file was decoded once;
* members whose classes come in another order, or lack some, are aligned by name;
* the ensemble runs through the CLI (``--model A+B``), carries the members' top-k,
  and can be calibrated like any model.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from photos import load_photos, write_photos

import twoends
from twoends.calibrate.calibration import Calibration
from twoends.models import imagenet_labels

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return write_photos(tmp_path_factory.mktemp("photos"))


def _calibrated(name: str, t: float):
    cal = Calibration(labels=tuple(imagenet_labels()), model=name, temperature=t)
    return twoends.load(name, calibration=cal, device="cpu")


@pytest.fixture(scope="module")
def members():
    return _calibrated("efficientnet_lite0", 1.4), _calibrated("efficientnet_lite1", 0.8)


def test_mean_of_calibrated_members_each_with_its_own_input_size(members, photos, monkeypatch):
    import twoends.preprocess.ensemble_plan as ep

    a, b = members
    ens = twoends.ensemble([a, b])
    seen = {m.name: [] for m in (a, b)}
    for m in (a, b):
        forward = m.backend.forward
        monkeypatch.setattr(m.backend, "forward", lambda x, f=forward, n=m.name: seen[n].append(tuple(x.shape)) or f(x))
    decoded = []
    decode = ep.decode_image
    monkeypatch.setattr(ep, "decode_image", lambda *args, **kw: decoded.append(args[0]) or decode(*args, **kw))
    paths = [str(p) for p in photos.values()]
    rows = ens.predict(paths)
    assert sorted(decoded) == sorted(paths)  # one decode per file, shared by the members
    assert {s[1:] for s in seen["efficientnet_lite0"]} == {(3, 224, 224)}
    assert {s[1:] for s in seen["efficientnet_lite1"]} == {(3, 240, 240)}
    monkeypatch.undo()
    alone_a, alone_b = a.predict(paths), b.predict(paths)
    for row, pa, pb in zip(rows, alone_a, alone_b):
        assert pa.temperature == 1.4 and pb.temperature == 0.8
        np.testing.assert_allclose(row.probabilities, (pa.probabilities + pb.probabilities) / 2, rtol=0, atol=1e-6)
        assert row.label == row.top_k[0].label and [m.model for m in row.members] == [a.name, b.name]
        assert row.members[0].top_k == pa.top_k and row.members[1].top_k == pb.top_k
        assert row.ood_score == pytest.approx((pa.ood_score + pb.ood_score) / 2, rel=1e-6)
    by_name = dict(zip(photos, rows))
    assert by_name["chelsea"].label in ("tabby", "tiger cat", "Egyptian cat")
    assert by_name["coffee"].label == "espresso"
    d = ens.describe()
    assert d["ensemble"]["combine"] == "probabilities" and [m["model"] for m in d["members"]] == [a.name, b.name]
    assert "members' mean" in d["ood"]["score"]


def test_weights_and_logit_averaging(members):
    a, b = members
    img = load_photos()["chelsea"]
    pa, pb = a.predict(img), b.predict(img)
    weighted = twoends.ensemble([a, b], weights=[3, 1]).predict(img)
    np.testing.assert_allclose(weighted.probabilities, (3 * pa.probabilities + pb.probabilities) / 4, atol=1e-6)
    by_logits = twoends.ensemble([a, b], combine="logits").predict(img)
    z = (pa.logits / 1.4 + pb.logits / 0.8) / 2  # each member's logits after its own temperature
    np.testing.assert_allclose(by_logits.probabilities, np.exp(z - z.max()) / np.exp(z - z.max()).sum(), atol=1e-6)


class _Reorder(torch.nn.Module):
    """A model's outputs in another order (or only some of them)."""

    def __init__(self, model, order):
        super().__init__()
        self.model, self.order = model, torch.as_tensor(order)
        self.num_classes = len(order)  # what twoends reads first (the last Linear still has 1000)

    def forward(self, x):
        return self.model(x)[:, self.order]


def test_members_with_other_label_orders_or_fewer_classes_are_aligned_by_name(members):
    from twoends.models.efficientnet_lite import build_module, spec_for

    a = twoends.load("efficientnet_lite0", device="cpu")
    names = imagenet_labels()
    order = np.random.default_rng(0).permutation(1000)
    shuffled = twoends.wrap(
        _Reorder(build_module("efficientnet_lite0"), order),
        spec=spec_for("efficientnet_lite0"),
        labels=[names[j] for j in order],
        name="lite0-shuffled",
        device="cpu",
    )
    cats = list(range(281, 286)) + [0, 1]
    few = twoends.wrap(
        _Reorder(build_module("efficientnet_lite0"), cats),
        spec=spec_for("efficientnet_lite0"),
        labels=[names[j] for j in cats],
        name="lite0-7-classes",
        device="cpu",
    )
    img = load_photos()["chelsea"]
    alone = a.predict(img)
    same = twoends.ensemble([a, shuffled]).predict(img)
    np.testing.assert_allclose(same.probabilities, alone.probabilities, atol=1e-6)  # same model, aligned by name
    assert same.members[1].top_k[0].label == alone.label
    ens = twoends.ensemble([a, few])
    row = ens.predict(img)
    p_few = few.predict(img).probabilities
    expected = alone.probabilities / 2  # the 7-class member contributes nothing to the other 993 classes
    expected[cats] += p_few / 2
    np.testing.assert_allclose(row.probabilities, expected, atol=1e-6)
    assert any("lacks 993 of the ensemble's 1000 classes" in n for n in ens.describe()["ensemble"]["alignment"])
    with pytest.raises(twoends.ConfigError, match="same classes"):
        twoends.ensemble([a, few], combine="logits")


def test_ensemble_raw_inputs_only_and_bad_members():
    a = twoends.load("efficientnet_lite0", device="cpu")
    ens = twoends.ensemble([a, a])
    row = ens.predict(np.zeros((3, 224, 224), dtype=np.float32))
    assert not row.ok and "each of its 2 members preprocesses its own" in row.error["message"]
    with pytest.raises(twoends.ConfigError, match="two or more"):
        twoends.ensemble([a])
    with pytest.raises(twoends.ConfigError, match="weights"):
        twoends.ensemble([a, a], weights=[1, -1])


def test_cli_ensemble_member_calibrations_and_its_own_calibration(photos, tmp_path):
    from click.testing import CliRunner

    from twoends.cli import main

    cal0 = Calibration(labels=tuple(imagenet_labels()), model="efficientnet_lite0", temperature=1.4).save(
        tmp_path / "c0.json"
    )
    ens_cal = Calibration(
        labels=tuple(imagenet_labels()), model="efficientnet_lite0+efficientnet_lite1", temperature=1.2
    ).save(tmp_path / "ens.json")
    out = CliRunner().invoke(
        main,
        [
            "predict",
            str(photos["chelsea"]),
            "--model",
            "efficientnet_lite0+efficientnet_lite1",
            "--format",
            "jsonl",
            "--member-calibration",
            f"efficientnet_lite0={cal0}",
            "--calibration",
            str(ens_cal),
            "--device",
            "cpu",
        ],
    )
    assert out.exit_code == 0, out.output
    row = json.loads(out.output.splitlines()[0])
    assert row["model"] == "efficientnet_lite0+efficientnet_lite1" and row["calibration"] == "ens.json"
    assert row["temperature"] == 1.2 and [m["temperature"] for m in row["members"]] == [1.4, 1.0]
    bad = CliRunner().invoke(
        main,
        [
            "predict",
            str(photos["chelsea"]),
            "--model",
            "efficientnet_lite0+efficientnet_lite1",
            "--member-calibration",
            f"lite9={cal0}",
        ],
    )
    assert bad.exit_code == 2 and "not a member" in bad.output


def test_an_ensemble_is_calibrated_like_any_model(photos, tmp_path):
    """`twoends calibrate --model A+B`: its own temperature and OOD threshold, in its own file, then applied."""
    from click.testing import CliRunner
    from PIL import Image

    from twoends.cli import main

    data = tmp_path / "val"
    for label, name in (("espresso", "coffee"), ("tabby", "chelsea"), ("missile", "rocket")):
        (data / label).mkdir(parents=True)
        img = Image.open(photos[name]).convert("RGB")
        w, h = img.size
        for i, f in enumerate((1.0, 0.9, 0.8, 0.7)):  # centred crops of the same photo
            cw, ch = int(w * f), int(h * f)
            img.crop(((w - cw) // 2, (h - ch) // 2, (w + cw) // 2, (h + ch) // 2)).save(data / label / f"{i}.png")
    model = "efficientnet_lite0+efficientnet_lite1"
    out = tmp_path / "ens.json"
    res = CliRunner().invoke(
        main,
        [
            "calibrate",
            str(data),
            "--model",
            model,
            "-o",
            str(out),
            "--ood",
            "--ood-tpr",
            "0.8",
            "--no-plot",
            "--device",
            "cpu",
            "--format",
            "json",
        ],
    )
    assert res.exit_code == 0, res.output
    saved = json.loads(out.read_text())
    assert saved["model"] == model and saved["n_classes"] == 1000 and saved["format_version"] == 2
    assert saved["ood"]["method"] == "energy" and saved["ood"]["tpr"] == 0.8
    ens = twoends.ensemble([twoends.load("efficientnet_lite0"), twoends.load("efficientnet_lite1")], calibration=out)
    row = ens.predict(str(photos["coffee"]))
    assert row.calibration == "ens.json" and row.temperature == saved["temperature"]
    assert row.ood == (row.ood_score > saved["ood"]["threshold"])

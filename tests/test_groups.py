"""Label groups on real photos: "is it a cat?" for the bundled EfficientNet-Lite0 (ImageNet cats are 281-285)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from photos import write_photos

import twoends
from twoends.cli import main

CATS = [281, 282, 283, 284, 285]
NAMED = {"cat": ["tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"], "dog": ["beagle", "basset"]}


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return write_photos(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="module")
def group_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("groups") / "groups.json"
    path.write_text(json.dumps({"cat": CATS, "dog": ["beagle", "basset"]}))
    return path


def test_the_tabby_photo_is_a_cat_group_sum_of_281_to_285(photos, group_file):
    clf = twoends.load("efficientnet_lite0", groups=str(group_file), device="cpu")
    row = clf.predict(str(photos["chelsea"]))
    groups = {g.label: g.probability for g in row.groups}
    assert groups["cat"] == pytest.approx(float(row.probabilities[CATS].sum()), rel=1e-6)
    assert row.probability < 0.5 < groups["cat"]  # torn between three cat classes, sure it is a cat
    assert [g.label for g in row.groups] == ["cat", "dog"]  # most probable first
    by_name = twoends.load("efficientnet_lite0", groups=NAMED, device="cpu").predict(str(photos["chelsea"]))
    assert {g.label: g.probability for g in by_name.groups} == pytest.approx(groups)
    coffee = {g.label: g.probability for g in clf.predict(str(photos["coffee"])).groups}
    assert coffee["cat"] < 0.01
    d = clf.describe()["groups"]
    assert d["groups"]["cat"] == CATS and "sum" in d["rule"]


def test_cli_groups_in_json_and_in_the_table(photos, group_file):
    out = CliRunner().invoke(
        main, ["predict", str(photos["chelsea"]), "--groups", str(group_file), "--format", "jsonl"]
    )
    assert out.exit_code == 0, out.output
    row = json.loads(out.output.splitlines()[0])
    assert row["groups"][0]["label"] == "cat" and row["ood_score"] < 0 and row["ood"] is None
    table = CliRunner().invoke(
        main, ["predict", str(photos["chelsea"]), "--groups", str(group_file), "--format", "table"]
    )
    assert table.exit_code == 0 and "groups" in table.output and "cat 9" in table.output


def test_unknown_class_names_in_a_group_file_are_an_error_with_did_you_mean(photos, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"cat": ["tabby", "tigercat"], "dog": ["beagel"]}))
    with pytest.raises(twoends.LabelError, match=r"'tigercat' in group 'cat' \(did you mean 'tiger cat'"):
        twoends.load("efficientnet_lite0", groups=str(bad))
    for command in (["predict", str(photos["chelsea"])], ["doctor"]):
        out = CliRunner().invoke(main, [*command, "--groups", str(bad)])
        assert out.exit_code == 2
        assert "2 unknown class name(s)" in out.output and "'beagle'" in out.output
    missing = CliRunner().invoke(main, ["predict", str(photos["chelsea"]), "--groups", str(tmp_path / "none.json")])
    assert missing.exit_code == 2 and "group file not found" in missing.output


def test_group_level_calibration_comes_with_its_groups_and_refuses_others():
    torch = pytest.importorskip("torch")
    from twoends.calibrate.fit import fit_calibration

    rng = np.random.default_rng(0)
    z, y = rng.normal(0, 2, (400, 4)), rng.integers(0, 4, 400)
    z[np.arange(400), y] += 2
    names = list("abcd")
    cal = fit_calibration(z, y, names, groups={"ab": ["a", "b"]}, level="groups", conformal=0.1).calibration
    assert cal.groups.names == ("ab", "(other)")  # the classes in no group form one more group
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(4))
    clf = twoends.wrap(model, labels=names, calibration=cal)
    assert clf.settled.head.groups.names == ("ab", "(other)") and clf.describe()["groups"]["sets"] == "groups"
    assert twoends.wrap(model, labels=names, calibration=cal, groups={"ab": [0, 1]}).settled.head.groups == cal.groups
    with pytest.raises(twoends.ConfigError, match="fitted for the groups"):
        twoends.wrap(model, labels=names, calibration=cal, groups={"ac": ["a", "c"]})
    with pytest.raises(twoends.ConfigError, match="overlap"):
        fit_calibration(z, y, names, groups={"ab": ["a", "b"], "bc": ["b", "c"]}, level="groups")

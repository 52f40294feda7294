"""The doctor on an ensemble: each member checked on its own ends; how the members line up, said."""

from __future__ import annotations

import json

from click.testing import CliRunner

import twoends
from twoends.cli import main


def test_a_member_with_shifted_labels_is_named(photo_files, lite0):
    from twoends.models.efficientnet_lite import build_module, spec_for

    names = list(lite0.labels)
    shifted = ["background"] + names[:-1]  # a TF-slim label file cut to 1000: every name one class off
    wrong = twoends.wrap(
        build_module("efficientnet_lite0"),
        spec=spec_for("efficientnet_lite0"),
        labels=shifted,
        name="lite0-shifted",
        device="cpu",
    )
    ens = twoends.ensemble([lite0, wrong])
    findings = twoends.check(ens, [str(p) for p in photo_files[:2]], checks=["normalization", "labels"])
    errors = [f for f in findings if f.severity == "error"]
    assert errors and all(f.title.startswith("member 'lite0-shifted': ") and f.check == "labels" for f in errors)
    assert any("shifted by +1" in f.title for f in errors)
    assert "normalization" in findings.ran and "labels" in findings.ran


def test_doctor_cli_on_an_ensemble_notes_the_members_preprocessing(photo_files):
    args = [
        "doctor",
        "--format",
        "json",
        "--device",
        "cpu",
        "--model",
        "efficientnet_lite0+efficientnet_lite1",
        str(photo_files[0]),
        "--check",
        "input-size",
        "--check",
        "labels",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    note = next(f for f in data["findings"] if f["check"] == "input-size")
    assert note["severity"] == "info" and "224x224" in note["seen"] and "240x240" in note["seen"]

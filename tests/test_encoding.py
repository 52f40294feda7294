"""One encoding: a Prediction to JSON and to Arrow and back, with -inf, +inf and NaN (twoends.encoding)."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest

from twoends import encoding, writers
from twoends.calibrate import fit_calibration
from twoends.calibrate.calibration import Calibration
from twoends.head import Head
from twoends.prediction import ClassScore, Prediction


def _odd_prediction() -> Prediction:
    """Every kind of number the convention covers: finite, -inf, +inf and NaN, in scalars and vectors."""
    return Prediction(
        input="x.jpg",
        label="b",
        index=1,
        probability=0.75,
        top_k=(ClassScore(1, "b", 0.75, 2.5), ClassScore(0, "a", 0.25, float("-inf"))),
        entropy=0.56,
        margin=0.5,
        activation="sigmoid",
        temperature=1.5,
        logits=np.array([float("-inf"), 2.5, np.nan, np.inf], np.float32),
        probabilities=np.array([0.0, 0.75, np.nan, 1.0], np.float32),
        positive_labels=("b",),
        prediction_set=("a", "b"),
        calibration="temperature",
        model="m",
    )


def _masked_prediction() -> Prediction:
    """A real Head's answer for a model that masks a class (logit -inf)."""
    head = Head(["cat", "dog", "masked"], top_k=3)
    return head(np.array([[2.0, 0.5, -np.inf]], np.float32), inputs=["photo.jpg"])[0]


PREDICTIONS = [_odd_prediction, _masked_prediction, lambda: Prediction.failed("y.jpg", ValueError("bad"), model="m")]


def test_the_convention_for_numbers():
    assert [encoding.json_number(x) for x in (1.5, float("-inf"), float("inf"), float("nan"), None)] == [
        1.5,
        "-inf",
        "inf",
        None,
        None,
    ]
    assert encoding.json_numbers(np.array([[1.0, -np.inf], [np.nan, np.inf]])) == [1.0, "-inf", None, "inf"]
    assert encoding.json_numbers(np.array([0.5, 2.0], np.float32)) == [0.5, 2.0]
    report = {"nll": float("inf"), "f1": float("nan"), "rows": [np.float32(-np.inf), 2], "name": "x"}
    assert encoding.json_safe(report) == {"nll": "inf", "f1": None, "rows": ["-inf", 2], "name": "x"}


@pytest.mark.parametrize("make", PREDICTIONS)
@pytest.mark.parametrize("vectors", [False, True])
def test_json_round_trip(make, vectors):
    pred = make()
    text = json.dumps(encoding.to_json(pred, vectors), allow_nan=False)  # strict JSON: no Infinity / NaN tokens
    assert "Infinity" not in text and "NaN" not in text
    back = encoding.from_row(json.loads(text))
    assert encoding.to_json(back, vectors) == pred.to_dict(vectors) == encoding.to_json(pred, vectors)
    if vectors and pred.logits is not None:
        np.testing.assert_array_equal(back.logits, pred.logits.astype(np.float64))  # -inf, +inf and NaN where they were


def test_masked_class_is_minus_inf_in_json_and_arrow():
    pred = _masked_prediction()
    assert pred.ok and pred.top_k[-1].label == "masked"
    assert pred.to_dict(True)["logits"][2] == "-inf" and pred.to_dict()["top_k"][-1]["logit"] == "-inf"
    row = encoding.to_arrow(pred, True)
    assert row["logits"][2] == float("-inf") and row["top_k"][-1]["logit"] == float("-inf")


@pytest.mark.parametrize("vectors", [False, True])
def test_arrow_round_trip_through_a_table_and_parquet(vectors, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    preds = [make() for make in PREDICTIONS]
    table = pa.Table.from_pylist([encoding.to_arrow(p, vectors) for p in preds], schema=encoding.arrow_schema(vectors))
    logits = table.column("top_k").to_pylist()[0][1]["logit"]
    assert logits == float("-inf")  # a real float in Arrow, not a string
    if vectors:
        col = table.column("logits").to_pylist()[0]
        assert col[0] == float("-inf") and col[2] is None and col[3] == float("inf")  # NaN is null
    # the Parquet writer writes the same rows under the same schema
    path = tmp_path / "out.parquet"
    w = writers.ParquetWriter(str(path), include_vectors=vectors)
    for p in preds:
        w.write(p)
    w.close()
    read = pq.read_table(path)
    assert read.schema == encoding.arrow_schema(vectors)
    for rows in (table.to_pylist(), read.to_pylist()):
        back = [encoding.from_row(r) for r in rows]
        assert [b.to_dict(vectors) for b in back] == [p.to_dict(vectors) for p in preds]


def test_json_lines_writer_writes_the_encoding():
    out = io.StringIO()
    w = writers.make_writer("jsonl", out, include_vectors=True)
    pred = _odd_prediction()
    w.write(pred)
    w.close()
    row = json.loads(out.getvalue())
    assert row == encoding.to_json(pred, True)
    assert row["logits"] == ["-inf", 2.5, None, "inf"]


def test_calibration_files_use_the_same_convention(tmp_path):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(400, 3)) * 3
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = (rng.random((400, 1)) < p.cumsum(1)).argmax(1)  # labels drawn from softmax(z): a T near 1
    fitted = fit_calibration(z, y, ["a", "b", "c"], data={"note": "x", "worst_nll": float("inf"), "f1": float("nan")})
    cal = fitted.calibration
    d = cal.to_dict()
    assert d["data"]["worst_nll"] == "inf" and d["data"]["f1"] is None
    path = cal.save(tmp_path / "cal.json")
    text = path.read_text()
    assert "Infinity" not in text and "NaN" not in text
    back = Calibration.load(path)
    assert back.to_dict() == d and back.id == cal.id
    assert math.isclose(back.temperature, cal.temperature)

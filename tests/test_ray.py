"""The Ray path gives the same predictions as the local path, on real photos, in the one schema.

One local Ray instance (2 CPUs) for the whole module: starting Ray takes about ten
seconds, and each Ray run starts its actors and loads the model in each of them.
"""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import twoends
from tests.photos import write_photos
from twoends import encoding
from twoends.cli import main
from twoends.prediction import ClassScore, Prediction

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
pytest.importorskip("torch")
tr = pytest.importorskip("twoends.distributed.ray")

pytestmark = pytest.mark.slow  # Ray start-up and per-actor model loading: tens of seconds in all

CORRUPT = b"\xff\xd8\xff\xe0 a JPEG header and then nothing"


@pytest.fixture(scope="module")
def ray_local():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    paths = write_photos(folder)
    (folder / "corrupt.jpg").write_bytes(CORRUPT)
    return folder, paths


@pytest.fixture(scope="module")
def inputs(photos):
    folder, paths = photos
    # a folder (expanded on the driver) three times, one path again, and encoded bytes: every kind the
    # Ray path takes, and enough blocks (10 of 2 rows) for two actors to finish them out of order
    return [str(folder)] * 3 + [str(paths["chelsea"]), paths["coffee"].read_bytes()]


@pytest.fixture(scope="module")
def local(inputs):
    return twoends.load("efficientnet_lite0").predict(inputs)


@pytest.fixture(scope="module")
def on_ray(ray_local, inputs):
    # blocks of 2 rows over 2 actors: with preserve_order=False this very run comes back out of order
    # (tried by hand), so the order asserted below is predict_paths' doing
    return list(tr.predict_paths(inputs, batch_size=2, concurrency=2, include_vectors=True))


def _assert_same(ray_pred, local_pred):
    assert ray_pred.input == local_pred.input
    _assert_same_row(ray_pred.to_dict(include_vectors=True), local_pred.to_dict(include_vectors=True))


def _assert_same_row(a, b):
    """Two rows of the schema: equal labels and fields, numbers to 1e-5."""
    if b["error"] is not None:
        assert a == b  # the same error row, word for word
        return
    assert a.keys() == b.keys()
    assert (a["input"], a["label"], a["index"]) == (b["input"], b["label"], b["index"])
    assert [s["label"] for s in a["top_k"]] == [s["label"] for s in b["top_k"]]
    # batches differ (2 rows on a 1-thread actor vs 8 locally): float32 sums may differ in the last bits
    np.testing.assert_allclose(
        [s["probability"] for s in a["top_k"]], [s["probability"] for s in b["top_k"]], atol=1e-5
    )
    if "logits" in b:
        np.testing.assert_allclose(a["probabilities"], b["probabilities"], atol=1e-5)
        np.testing.assert_allclose(a["logits"], b["logits"], atol=1e-4, rtol=1e-5)
    for key in ("probability", "entropy", "margin"):
        assert a[key] == pytest.approx(b[key], abs=1e-5), key
    for key in ("activation", "temperature", "positive_labels", "prediction_set", "calibration", "model", "error"):
        assert a[key] == b[key], key


def test_ray_gives_the_local_predictions_in_input_order(on_ray, local):
    assert [p.input for p in on_ray] == [p.input for p in local]  # (5 photos + corrupt) x 3, chelsea, the bytes
    assert len(on_ray) == 20
    for ray_pred, local_pred in zip(on_ray, local):
        _assert_same(ray_pred, local_pred)
    by_name = {p.input.rsplit("/", 1)[-1]: p for p in on_ray}
    assert by_name["coffee.jpg"].label == "espresso" and by_name["<bytes #19>"].label == "espresso"
    assert 281 <= by_name["chelsea.jpg"].index <= 285  # a cat
    corrupt = by_name["corrupt.jpg"]
    assert corrupt.error["type"] == "DecodeError" and "corrupt.jpg" in corrupt.error["message"]
    assert corrupt.label is None and corrupt.probability is None


def test_a_ray_dataset_of_bytes_gives_the_same_rows_in_the_typed_schema(ray_local, photos, local):
    folder, _ = photos
    files = ray.data.read_binary_files(str(folder), include_paths=True)
    tables = list(tr.predict_dataset(files, top_k=3).iter_batches(batch_format="pyarrow", batch_size=None))
    for table in tables:
        assert table.schema == tr.output_schema()
    rows = [row for table in tables for row in table.to_pylist()]
    expected = {p.input: p for p in local[:6]}  # the folder's six files
    got = {row["input"]: tr.to_prediction(row) for row in rows}
    assert sorted(got) == sorted(expected) and len(rows) == 6  # one row per file, none twice
    for name, pred in got.items():
        _assert_same_top3(pred, expected[name])


def _assert_same_top3(ray_pred, local_pred):
    if not local_pred.ok:
        assert ray_pred.error == local_pred.error
        return
    assert len(ray_pred.top_k) == 3
    assert [s.label for s in ray_pred.top_k] == [s.label for s in local_pred.top_k[:3]]
    np.testing.assert_allclose(
        [s.probability for s in ray_pred.top_k], [s.probability for s in local_pred.top_k[:3]], atol=1e-5
    )


def test_the_output_columns_are_the_parquet_writers(tmp_path):
    from twoends import writers

    if not hasattr(writers, "ParquetWriter"):
        pytest.skip("no Parquet writer in this tree")
    for vectors in (False, True):
        writer = writers.ParquetWriter(str(tmp_path / f"x{vectors}.parquet"), include_vectors=vectors)
        assert tr.output_schema(vectors) == writer.schema
        writer.close()


def test_rows_round_trip_to_the_same_dict_with_infinite_and_missing_values():
    import pyarrow as pa

    pred = Prediction(
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
    failed = Prediction.failed("y.jpg", ValueError("bad"), model="m")
    for vectors in (False, True):
        table = pa.Table.from_pylist(
            [encoding.to_arrow(p, vectors) for p in (pred, failed)], schema=tr.output_schema(vectors)
        )
        back = [tr.to_prediction(row) for row in table.to_pylist()]
        assert [p.to_dict(vectors) for p in back] == [pred.to_dict(vectors), failed.to_dict(vectors)]
        assert json.dumps([p.to_dict(vectors) for p in back], allow_nan=False)  # still valid JSON


def test_bad_settings_and_datasets_are_refused_with_the_fix(ray_local):
    with pytest.raises(twoends.ConfigError, match="concurrency"):
        tr.predict_dataset(["a.jpg"], concurrency=0)
    with pytest.raises(twoends.ConfigError, match="batch_size"):
        tr.predict_dataset(["a.jpg"], batch_size=0)
    with pytest.raises(twoends.ConfigError, match="read_binary_files"):
        tr.predict_dataset(ray.data.from_items([{"image": 1}]))
    with pytest.raises(twoends.ConfigError, match="no inputs"):
        tr.predict_dataset([])


def test_cli_engine_ray_writes_jsonl_in_input_order_and_resumes(ray_local, photos, local, tmp_path):
    folder, _ = photos
    expected = local[:6]  # the folder's six files, in the local engine's order
    # two rows already written by the local engine; --engine ray must write the other four, once each
    out = tmp_path / "out.jsonl"
    out.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in expected[:2]))
    args = ["predict", "--engine", "ray", str(folder), "-o", str(out), "--format", "jsonl", "--resume", "--top-k", "5"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 1, r.output  # 1: one input (the corrupt file) failed
    assert "4 inputs: 3 predicted, 1 failed (2 done before)" in r.stderr
    assert r.stdout == ""  # Ray's own output stays off the rows' way
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["input"] for row in rows] == [p.input for p in expected]
    for row, pred in zip(rows[2:], expected[2:]):
        _assert_same_row(row, pred.to_dict())
    assert sum(row["error"] is not None for row in rows) == 1


def test_cli_refuses_a_ray_address_without_the_ray_engine(photos):
    folder, _ = photos
    r = CliRunner().invoke(main, ["predict", "--ray-address", "auto", str(folder)])
    assert r.exit_code == 2 and "--engine ray" in r.stderr


def test_a_model_the_actors_cannot_load_is_a_twoends_error(ray_local, photos):
    folder, _ = photos
    with pytest.raises(twoends.ModelError, match="unknown model 'no_such_model'.*raised in a Ray actor"):
        list(tr.predict_paths([str(folder / "coffee.jpg")], "no_such_model"))

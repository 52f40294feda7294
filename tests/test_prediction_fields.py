"""The four new fields (ood_score, ood, groups, members) in every writer: JSON, CSV, Parquet and Arrow rows."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from importlib import resources

import jsonschema
import numpy as np
import pytest

from twoends import Head
from twoends.prediction import MemberResult
from twoends.writers import CSV_COLUMNS, ParquetWriter, make_writer

SCHEMA = json.loads((resources.files("twoends") / "data" / "prediction.schema.json").read_text())


def _rows():
    z = np.array([[2.0, -np.inf, 0.5, 1.0], [0.1, 0.2, 0.3, 0.4]])
    head = Head(list("abcd"), groups={"ab": ["a", "b"], "cd": [2, 3]}, ood_threshold=-2.0, top_k=2)
    member = head(z)
    rows = list(head(z))
    rows[0] = dataclasses.replace(
        rows[0],
        members=(
            MemberResult("m1", member[0].top_k, 1.5, -2.5),
            MemberResult("m2", member[1].top_k, 1.0, float("inf")),
        ),
    )
    return rows


def test_json_rows_follow_the_schema():
    for row in _rows():
        d = row.to_dict(include_vectors=True)
        jsonschema.validate(d, SCHEMA)
        assert {"ood_score", "ood", "groups", "members"} <= set(d)
    first = _rows()[0].to_dict()
    assert first["members"][0]["top_k"][1]["logit"] == 1.0 and first["members"][1]["ood_score"] == "inf"
    assert [g["label"] for g in first["groups"]] == ["ab", "cd"]


def test_csv_and_parquet_carry_the_fields():
    pq = pytest.importorskip("pyarrow.parquet")
    buf = io.StringIO()
    w = make_writer("csv", buf)
    for r in _rows():
        w.write(r)
    w.close()
    got = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert list(got[0]) == CSV_COLUMNS and json.loads(got[0]["groups"])[0]["label"] == "ab"
    assert got[1]["members"] == "" and got[0]["ood"] in ("True", "False")
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        w = ParquetWriter(f"{d}/x.parquet")
        for r in _rows():
            w.write(r)
        w.close()
        table = pq.read_table(f"{d}/x.parquet").to_pylist()
    assert table[0]["members"][1]["ood_score"] == float("inf") and table[1]["members"] is None
    assert table[0]["groups"] == _rows()[0].to_dict()["groups"] and table[0]["ood"] == _rows()[0].ood


def test_arrow_rows_round_trip():
    """The rows of Parquet and Ray Data (``twoends.encoding``): read back, the same JSON."""
    pa = pytest.importorskip("pyarrow")

    from twoends.encoding import arrow_schema, from_row, to_arrow

    rows = _rows()
    table = pa.Table.from_pylist([to_arrow(r) for r in rows], schema=arrow_schema())
    for back, row in zip(table.to_pylist(), rows):
        assert from_row(back).to_dict() == row.to_dict()
        assert from_row(row.to_dict()).to_dict() == row.to_dict()

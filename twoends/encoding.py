"""How a Prediction (and any report of numbers) leaves twoends: one encoding for JSON, one for Arrow.

Every writer goes through here: ``Prediction.to_dict`` (the CLI's JSON, JSON
lines and CSV, the server's responses) is ``to_json``; the Parquet writer and
Ray Data rows are ``to_arrow`` under ``arrow_schema``; calibration files and
the CLI's reports are ``json_safe``. ``from_row`` reads either back. ``segments`` (inputs
cut into windows: audio) are a list of ``{start, end, label, probability}`` in both.

The one convention for numbers that are not finite:

* **+-inf is a value.** A masked class has the logit -inf (probability 0); an
  NLL can be +inf. JSON has no infinities, so JSON writes the strings
  ``"-inf"`` and ``"inf"``; Arrow writes the IEEE float64 values -inf / +inf.
* **NaN is "no value"** (an undefined F1, a class a model gave no number for):
  ``null`` in JSON and in Arrow alike.
* Reading back: ``"-inf"`` / ``"inf"`` become -inf / +inf; ``null`` becomes NaN
  inside a vector (``logits``, ``probabilities``) and None in a scalar field
  (where None also means "not set", as in an error row).

So every JSON document twoends writes is strict JSON (``allow_nan=False``), and
``from_row(to_json(p))`` and ``from_row(to_arrow(p))`` give back a Prediction
whose ``to_json`` is the same.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - names for annotations only
    import pyarrow as pa

    from .prediction import Prediction

__all__ = ["json_number", "json_numbers", "json_safe", "to_json", "to_arrow", "arrow_schema", "from_row"]

_INF = {"-inf": float("-inf"), "inf": float("inf")}


def json_number(x: float | None) -> float | str | None:
    """One number for JSON: finite as is, +-inf as "inf" / "-inf", NaN (or None) as None."""
    if x is None or math.isfinite(x):
        return x
    return None if math.isnan(x) else ("-inf" if x < 0 else "inf")


def json_numbers(values: np.ndarray | None) -> list | None:
    """A float array (any shape, flattened) for JSON, by ``json_number``; one C-level pass when all are finite."""
    if values is None:
        return None
    flat = np.asarray(values).ravel()
    if np.isfinite(flat).all():
        return flat.tolist()
    return [json_number(x) for x in flat.tolist()]


def json_safe(x: Any) -> Any:
    """A nested report (dicts, lists, tuples, floats, NumPy scalars) with every number by ``json_number``."""
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return json_number(float(x))
    return x


def _arrow_number(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else x


def _arrow_numbers(values: np.ndarray | None) -> list | None:
    if values is None:
        return None
    return [None if math.isnan(x) else x for x in np.asarray(values, dtype=np.float64).ravel().tolist()]


def _scores(scores, number) -> list:
    return [
        {"index": s.index, "label": s.label, "probability": number(s.probability), "logit": number(s.logit)}
        for s in scores
    ]


def _fields(pred: "Prediction", include_vectors: bool, number, numbers) -> dict:
    """The fields of the one output schema (``twoends.prediction``), numbers written by ``number``."""
    out = {
        "input": pred.input,
        "label": pred.label,
        "index": pred.index,
        "probability": number(pred.probability),
        "top_k": _scores(pred.top_k, number),
        "entropy": number(pred.entropy),
        "margin": number(pred.margin),
        "activation": pred.activation,
        "temperature": number(pred.temperature),
        "positive_labels": list(pred.positive_labels) if pred.positive_labels is not None else None,
        "prediction_set": list(pred.prediction_set) if pred.prediction_set is not None else None,
        "calibration": pred.calibration,
        "model": pred.model,
        "segments": None
        if pred.segments is None
        else [
            {"start": s.start, "end": s.end, "label": s.label, "probability": number(s.probability)}
            for s in pred.segments
        ],
        "error": pred.error,
        "ood_score": number(pred.ood_score),
        "ood": pred.ood,
        "groups": None
        if pred.groups is None
        else [{"label": g.label, "probability": number(g.probability)} for g in pred.groups],
        "members": None
        if pred.members is None
        else [
            {
                "model": m.model,
                "temperature": number(m.temperature),
                "ood_score": number(m.ood_score),
                "top_k": _scores(m.top_k, number),
            }
            for m in pred.members
        ],
    }
    if include_vectors:
        out["logits"] = numbers(pred.logits)
        out["probabilities"] = numbers(pred.probabilities)
    return out


def to_json(pred: "Prediction", include_vectors: bool = False) -> dict:
    """The Prediction as a dict that ``json.dumps(..., allow_nan=False)`` writes: +-inf as strings, NaN as null."""
    return _fields(pred, include_vectors, json_number, json_numbers)


def to_arrow(pred: "Prediction", include_vectors: bool = False) -> dict:
    """The Prediction as one row of ``arrow_schema(include_vectors)``: +-inf as floats, NaN as null."""
    return _fields(pred, include_vectors, _arrow_number, _arrow_numbers)


def arrow_schema(include_vectors: bool = False) -> "pa.Schema":
    """The typed Arrow columns of ``to_arrow`` rows: ``top_k`` a list of structs, ``error`` a struct."""
    import pyarrow as pa  # only callers that write Arrow need it, and they have it

    score = pa.struct(
        [("index", pa.int64()), ("label", pa.string()), ("probability", pa.float64()), ("logit", pa.float64())]
    )
    fields = [
        ("input", pa.string()),
        ("label", pa.string()),
        ("index", pa.int64()),
        ("probability", pa.float64()),
        ("top_k", pa.list_(score)),
        ("entropy", pa.float64()),
        ("margin", pa.float64()),
        ("activation", pa.string()),
        ("temperature", pa.float64()),
        ("positive_labels", pa.list_(pa.string())),
        ("prediction_set", pa.list_(pa.string())),
        ("calibration", pa.string()),
        ("model", pa.string()),
        (
            "segments",
            pa.list_(
                pa.struct(
                    [
                        ("start", pa.float64()),
                        ("end", pa.float64()),
                        ("label", pa.string()),
                        ("probability", pa.float64()),
                    ]
                )
            ),
        ),
        ("error", pa.struct([("type", pa.string()), ("message", pa.string())])),
        ("ood_score", pa.float64()),
        ("ood", pa.bool_()),
        ("groups", pa.list_(pa.struct([("label", pa.string()), ("probability", pa.float64())]))),
        (
            "members",
            pa.list_(
                pa.struct(
                    [
                        ("model", pa.string()),
                        ("temperature", pa.float64()),
                        ("ood_score", pa.float64()),
                        ("top_k", pa.list_(score)),
                    ]
                )
            ),
        ),
    ]
    if include_vectors:
        fields += [("logits", pa.list_(pa.float64())), ("probabilities", pa.list_(pa.float64()))]
    return pa.schema(fields)


def _scalar(v: Any) -> Any:
    return _INF.get(v, v) if isinstance(v, str) else v


def _vector(values: list | None) -> np.ndarray | None:
    if values is None:
        return None
    return np.array([np.nan if v is None else _scalar(v) for v in values], dtype=np.float64)


def _tuple(values: list | None) -> tuple | None:
    return None if values is None else tuple(values)


def from_row(row: dict) -> "Prediction":
    """The Prediction of a ``to_json`` dict or a ``to_arrow`` row; its ``to_json`` equals the original's.

    ``log_probabilities`` is not written, so it is None here; ``logits`` and
    ``probabilities`` are there when the row was written with ``include_vectors``.
    """
    from .prediction import ClassScore, GroupScore, MemberResult, Prediction

    def scores(rows):
        return tuple(
            ClassScore(s["index"], s["label"], _scalar(s["probability"]), _scalar(s["logit"])) for s in rows or ()
        )

    top_k = scores(row["top_k"])
    groups, members = row.get("groups"), row.get("members")
    return Prediction(
        input=row["input"],
        label=row["label"],
        index=row["index"],
        probability=_scalar(row["probability"]),
        top_k=top_k,
        entropy=_scalar(row["entropy"]),
        margin=_scalar(row["margin"]),
        activation=row["activation"],
        temperature=_scalar(row["temperature"]),
        logits=_vector(row.get("logits")),
        probabilities=_vector(row.get("probabilities")),
        positive_labels=_tuple(row["positive_labels"]),
        prediction_set=_tuple(row["prediction_set"]),
        calibration=row["calibration"],
        model=row["model"],
        error=row["error"],
        segments=_segments(row.get("segments")),
        ood_score=_scalar(row.get("ood_score")),
        ood=row.get("ood"),
        groups=None if groups is None else tuple(GroupScore(g["label"], _scalar(g["probability"])) for g in groups),
        members=None
        if members is None
        else tuple(
            MemberResult(m["model"], scores(m["top_k"]), _scalar(m["temperature"]), _scalar(m["ood_score"]))
            for m in members
        ),
    )


def _segments(rows: list | None) -> tuple | None:
    from .prediction import Segment

    if rows is None:
        return None
    return tuple(Segment(s["start"], s["end"], s["label"], _scalar(s["probability"])) for s in rows)

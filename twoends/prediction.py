"""Prediction: what one input became. The ONE output schema of twoends.

The CLI's JSON lines and CSV, the server's responses and batch jobs all write
``Prediction.to_dict()``. The schema (also in README and in
``twoends/data/prediction.schema.json``)::

    {
      "input":          str | null,   # the path or id of the input
      "label":          str | null,   # top-1 class name (null when error is set)
      "index":          int | null,   # top-1 class index
      "probability":    float | null, # top-1 probability
      "top_k":          [{"index": int, "label": str, "probability": float, "logit": float}, ...],
      "entropy":        float | null, # nats; sum of per-class entropies for sigmoid heads
      "margin":         float | null, # top-1 minus top-2 probability
      "activation":     "softmax" | "sigmoid",
      "temperature":    float,
      "positive_labels": [str] | null,  # sigmoid (multi-label) heads: classes over threshold
      "prediction_set": [str] | null,   # conformal set, when a calibration provides one
      "calibration":    str | null,     # which calibration was applied, if any
      "model":          str | null,
      "segments":       [{"start": float, "end": float, "label": str, "probability": float}] | null,
                                      # inputs cut into windows (audio): where each label holds, in seconds
      "error":          null | {"type": str, "message": str},
      "ood_score":      float | null,   # out-of-distribution score, higher = less like the training data
      "ood":            bool | null,    # ood_score over the calibrated threshold ("none of the above"); null without one
      "groups":         [{"label": str, "probability": float}] | null,  # label groups, most probable first
      "members":        [{"model", "temperature", "ood_score", "top_k"}] | null,  # an ensemble's members
      "logits":         [float],        # only with include_vectors=True
      "probabilities":  [float]         # only with include_vectors=True
    }

Every input yields exactly one Prediction: either a result, or ``error`` set
and the result fields null. Numbers that are not finite follow the one
convention of ``twoends.encoding``: +-inf as the strings "-inf" / "inf" (a
masked class's logit), NaN as null.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np

from .encoding import json_number, to_json

__all__ = ["ClassScore", "GroupScore", "MemberResult", "Prediction", "PredictionBatch", "PredictionList", "Segment"]


@dataclass(frozen=True)
class ClassScore:
    """One class of the top-k: its index, name, probability and raw logit."""

    index: int
    label: str
    probability: float
    logit: float

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "label": self.label,
            "probability": json_number(self.probability),
            "logit": json_number(self.logit),
        }


@dataclass(frozen=True)
class GroupScore:
    """One label group ("cat" = several classes) and its probability."""

    label: str
    probability: float


@dataclass(frozen=True)
class MemberResult:
    """What one member of an ensemble said about the input: its top-k, temperature and OOD score."""

    model: str | None
    top_k: tuple[ClassScore, ...] = ()
    temperature: float = 1.0
    ood_score: float | None = None


@dataclass(frozen=True)
class Segment:
    """A span of an input (seconds from its start) where one label holds, with its mean probability."""

    start: float
    end: float
    label: str
    probability: float

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "label": self.label, "probability": json_number(self.probability)}


@dataclass(frozen=True, eq=False)
class Prediction:
    """The result for one input.

    ``logits``, ``probabilities`` and ``log_probabilities`` are the full
    vectors (NumPy, float32 or float64), always kept; ``top_k`` holds the best
    classes. ``error`` is set (and the result fields are None) when this input
    could not be predicted; the run goes on.
    """

    input: str | None = None
    label: str | None = None
    index: int | None = None
    probability: float | None = None
    top_k: tuple[ClassScore, ...] = ()
    entropy: float | None = None
    margin: float | None = None
    activation: str = "softmax"
    temperature: float = 1.0
    logits: np.ndarray | None = field(default=None, repr=False)
    probabilities: np.ndarray | None = field(default=None, repr=False)
    log_probabilities: np.ndarray | None = field(default=None, repr=False)
    positive_labels: tuple[str, ...] | None = None
    prediction_set: tuple[str, ...] | None = None
    calibration: str | None = None
    model: str | None = None
    error: dict | None = None
    segments: tuple[Segment, ...] | None = None
    ood_score: float | None = None
    ood: bool | None = None
    groups: tuple[GroupScore, ...] | None = None
    members: tuple[MemberResult, ...] | None = None

    @classmethod
    def failed(cls, input: str | None, error: BaseException | str, *, model: str | None = None) -> "Prediction":
        """An error row: one input that could not be predicted, and why."""
        if isinstance(error, BaseException):
            err = {"type": type(error).__name__, "message": str(error)}
        else:
            err = {"type": "Error", "message": str(error)}
        return cls(input=input, model=model, error=err)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def max_probability(self) -> float | None:
        return self.probability

    def top(self, k: int | None = None) -> list[tuple[str, float]]:
        """``[(label, probability), ...]`` best first (up to the k the head kept)."""
        if self.error is not None:  # [] would read as "no answer" and pass unnoticed
            from . import errors

            kind = getattr(errors, str(self.error.get("type")), None)
            kind = kind if isinstance(kind, type) and issubclass(kind, errors.TwoEndsError) else errors.ModelError
            raise kind(f"{self.input}: no prediction ({self.error['message']}); check .ok or .error first")
        scores = self.top_k if k is None else self.top_k[:k]
        return [(s.label, s.probability) for s in scores]

    def to_dict(self, include_vectors: bool = False) -> dict:
        """The one JSON-ready schema (see the module docstring), encoded by ``twoends.encoding.to_json``."""
        return to_json(self, include_vectors)

    def __repr__(self) -> str:
        if self.error:
            return f"Prediction(input={self.input!r}, error={self.error['type']}: {self.error['message']!r})"
        return f"Prediction(input={self.input!r}, label={self.label!r}, probability={self.probability:.4f})"

    def _repr_html_(self) -> str:  # a notebook shows the card of twoends.display (thumbnail, bars, entropy)
        from .display import prediction_html

        return prediction_html(self)


class PredictionBatch(Sequence[Prediction]):
    """The Predictions of one batch, in input order, with the stacked arrays.

    ``logits``, ``probabilities`` and ``log_probabilities`` are [B, C] NumPy
    arrays (rows of error inputs are NaN where the batch had no logits for them).
    """

    def __init__(self, predictions: Sequence[Prediction], logits=None, probabilities=None, log_probabilities=None):
        self._predictions = list(predictions)
        self.logits = logits
        self.probabilities = probabilities
        self.log_probabilities = log_probabilities

    def __getitem__(self, i):
        return self._predictions[i]

    def __len__(self) -> int:
        return len(self._predictions)

    def __iter__(self) -> Iterator[Prediction]:
        return iter(self._predictions)

    @property
    def labels(self) -> list[str | None]:
        return [p.label for p in self._predictions]

    def to_dicts(self, include_vectors: bool = False) -> list[dict]:
        return [p.to_dict(include_vectors) for p in self._predictions]

    def __repr__(self) -> str:
        from .display import short_list_repr

        return short_list_repr("PredictionBatch", self._predictions)

    def _repr_html_(self) -> str:
        from .display import predictions_html

        return predictions_html(self._predictions)


class PredictionList(list):
    """A plain list of Predictions (what ``predict`` returns for many inputs) that a notebook shows as a table."""

    def __repr__(self) -> str:  # one short line, however many predictions
        from .display import short_list_repr

        return short_list_repr("PredictionList", self)

    def _repr_html_(self) -> str:
        from .display import predictions_html

        return predictions_html(self)

"""Ensembles: several models, one answer, each member run the right way.

``twoends.ensemble([clf_a, clf_b], weights=None, combine="probabilities")`` gives a
Classifier (usable wherever one is: predict, predict_iter, the CLI's ``--model A+B``,
serve, Ray, evaluate, calibrate). What it does differently from gluing outputs:

* each input is decoded once; each member applies **its own** preprocessing
  (``preprocess/ensemble_plan.py``) and runs its own model;
* members are aligned **by class name**, never by position: the ensemble's classes
  are the union of the members' (in the first member's order, then new names in
  order of appearance); a member that lacks a class contributes nothing for it
  (``describe()`` lists which classes each member lacks);
* each member applies its own temperature (from its own calibration file) before
  averaging; by default the ensemble averages **probabilities**, the logits only
  when asked (``combine="logits"``, members with the same classes);
* the ensemble is a model of its own: it can be calibrated (``twoends calibrate
  --model A+B``: a temperature on the combined log-probabilities, conformal sets,
  an out-of-distribution threshold) with its own calibration file;
* its out-of-distribution score is the weighted mean of the members' scores
  (the energy of averaged probabilities is 0 for every input: it says nothing);
* every Prediction keeps what each member said (``members``: top-k, temperature, score).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any, Sequence

from .backends.base import Backend, ModelInfo
from .classifier import Classifier
from .errors import ConfigError
from .head.ensemble import combine_logits, combine_probabilities, weighted_mean
from .head.ood import describe_method, ood_scores
from .prediction import MemberResult, Prediction
from .preprocess.ensemble_plan import EnsembleSpec
from .preprocess.image import DEFAULT_MAX_PIXELS
from .preprocess.protocol import apply_deferred
from .runner import Prepared
from .settle import settle
from .timing import timed

__all__ = ["Ensemble", "align_labels", "ensemble"]

COMBINE = ("probabilities", "logits")


def align_labels(member_labels: Sequence[Sequence[str]]) -> tuple[list[str], list[list[int]]]:
    """The union of the members' class names and, per member, the union column of each of its outputs.

    A name repeated inside one model (ImageNet has two "crane"s) is matched by
    occurrence: the second "crane" of one member is the second "crane" of another.
    """
    union: list[str] = []
    where: dict[tuple[str, int], int] = {}
    columns = []
    for names in member_labels:
        seen: Counter = Counter()
        cols = []
        for name in names:
            key = (name, seen[name])
            seen[name] += 1
            if key not in where:
                where[key] = len(union)
                union.append(name)
            cols.append(where[key])
        columns.append(cols)
    return union, columns


class EnsembleBackend(Backend):
    """The members as one backend: a batch of tuples in, the combined logits out."""

    def __init__(self, members: Sequence[Classifier], weights: Sequence[float], combine: str, name: str):
        self.members, self.weights, self.combine = tuple(members), tuple(weights), combine
        self.kinds = tuple(_kind(m) for m in members)
        if len(set(self.kinds)) != 1:
            shown = ", ".join(f"{m.name}: {k}" for m, k in zip(members, self.kinds))
            raise ConfigError(
                f"an ensemble's members must share one activation (softmax or sigmoid), got {shown}: a softmax "
                "probability and a multi-label sigmoid probability do not average into anything meaningful"
            )
        self.labels, self.columns = align_labels([list(m.labels) for m in members])
        if combine == "logits" and any(len(c) != len(self.labels) for c in self.columns):
            raise ConfigError(
                "combine='logits' needs members with the same classes (in any order): a logit means nothing "
                f"outside its own model's softmax; these have {[len(m.labels) for m in members]} classes and "
                f"{len(self.labels)} together. Use combine='probabilities'"
            )
        spec = EnsembleSpec([m.spec for m in members], [m.name for m in members])
        self.info = ModelInfo(
            name=name,
            spec=spec,
            labels=self.labels,
            activation=self.kinds[0],
            outputs="logits",
            num_outputs=len(self.labels),
            notes=tuple(self.alignment()),
        )
        devices = sorted({str(m.backend.device) for m in members})
        self.device = devices[0] if len(devices) == 1 else ",".join(devices)

    def alignment(self) -> list[str]:
        """What describe() says about how the members' classes line up."""
        notes = []
        n = len(self.labels)
        for m, cols in zip(self.members, self.columns):
            if len(cols) < n:
                lacking = sorted(set(range(n)) - set(cols))
                shown = ", ".join(repr(self.labels[k]) for k in lacking[:5]) + (", ..." if len(lacking) > 5 else "")
                what = "probability 0 from it" if self.kinds[0] == "softmax" else "the mean of the other members"
                notes.append(
                    f"member {m.name!r} lacks {len(lacking)} of the ensemble's {n} classes ({shown}): "
                    f"it contributes nothing for them ({what})"
                )
            elif cols != sorted(cols):
                notes.append(f"member {m.name!r} has the ensemble's classes in another order: aligned by name")
        return notes

    def collate(self, inputs: Sequence[Any]) -> list:
        return list(inputs)  # tuples, one model input per member: each member stacks its own

    def run(self, batch: Sequence[tuple]) -> tuple[Any, list]:
        """The combined logits [B, C] and each member's PredictionBatch (its own head, its own temperature)."""
        outs = []
        for i, m in enumerate(self.members):
            column = apply_deferred(m.plan, [x[i] for x in batch])
            outs.append(m.head(m.backend.forward(m.backend.collate(column))))
        if self.combine == "logits":
            scaled = [o.logits / m.head.temperature for o, m in zip(outs, self.members)]
            return combine_logits(scaled, self.columns, len(self.labels), self.weights), outs
        probs = [o.probabilities for o in outs]
        return combine_probabilities(
            probs, self.columns, len(self.labels), self.weights, activation=self.kinds[0]
        ), outs

    def forward(self, batch: Sequence[tuple]) -> Any:
        return self.run(batch)[0]

    def describe(self) -> str:
        return f"Ensemble({', '.join(m.backend.describe() for m in self.members)})"


class Ensemble(Classifier):
    """A Classifier whose model is several members (see the module docstring)."""

    backend: EnsembleBackend

    @property
    def members(self) -> tuple[Classifier, ...]:
        return self.backend.members

    def describe(self) -> dict:
        out = super().describe()
        b = self.backend
        out["ensemble"] = {
            "combine": b.combine,
            "weights": list(b.weights),
            "alignment": b.alignment() or ["same classes, same order"],
            "ood_score": self._ood_note(),
        }
        out["ood"]["score"] = self._ood_note()
        out["members"] = [m.describe() for m in b.members]
        return out

    def _ood_note(self) -> str:
        method = self.settled.head.ood_method
        if self._member_scores():
            return f"the members' mean (weights {list(self.backend.weights)}) of their {describe_method(method, self.activation)}"
        return describe_method(method, self.activation) + " (of the ensemble's combined outputs)"

    def _member_scores(self) -> bool:
        # averaged probabilities have energy 0 and a meaningless max logit: score each member instead
        return self.backend.combine == "probabilities" and self.settled.head.ood_method != "max_probability"

    def _forward(self, good: list[Prepared], timings: Any = None) -> list[Prediction]:
        try:
            # the members' preprocess, forward and heads in one phase: they interleave member by member
            with timed(timings, "forward"):
                return self._run([p.value for p in good], [p.id for p in good])
        except Exception as exc:
            if len(good) == 1:
                return [Prediction.failed(good[0].id, exc, model=self.name)]
        return [pred for p in good for pred in self._forward([p], timings)]

    def _run(self, values: list, ids: list) -> list[Prediction]:
        b = self.backend
        combined, outs = b.run(values)
        scores = None
        if self._member_scores():
            method = self.settled.head.ood_method
            per_member = [ood_scores(o.logits, method, activation=k) for o, k in zip(outs, b.kinds)]
            scores = [float(s) for s in weighted_mean(per_member, b.weights)]
        preds = list(self.head(combined, inputs=ids, ood_scores=scores))
        rows = []
        for i, pred in enumerate(preds):
            failed = next(((m, o[i]) for m, o in zip(b.members, outs) if not o[i].ok), None)
            if failed is not None:
                m, bad = failed
                rows.append(
                    Prediction.failed(
                        ids[i], f"member {m.name!r}: {bad.error['type']}: {bad.error['message']}", model=self.name
                    )
                )
                continue
            members = tuple(
                MemberResult(m.name, o[i].top_k, o[i].temperature, o[i].ood_score) for m, o in zip(b.members, outs)
            )
            rows.append(dataclasses.replace(pred, members=members) if pred.ok else pred)
        return rows


def ensemble(
    members: Sequence[Classifier],
    weights: Sequence[float] | None = None,
    combine: str = "probabilities",
    *,
    name: str | None = None,
    temperature: float | None = None,
    calibration: Any = None,
    top_k: int | None = None,
    groups: Any = None,
    ood_method: str | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> Ensemble:
    """One Classifier from several (see the module docstring).

    ``members``: Classifiers from ``twoends.load`` / ``wrap``, each with its own
    calibration file if it has one. ``weights``: one number > 0 per member (default
    equal). ``combine``: "probabilities" (default) or "logits". The rest are the
    ensemble's own head settings, as in ``twoends.load``; ``calibration`` is a file
    fitted for the ensemble (``twoends calibrate --model A+B``).
    """
    members = list(members)
    if len(members) < 2 or not all(isinstance(m, Classifier) for m in members):
        raise ConfigError(
            f"an ensemble needs two or more twoends Classifiers (twoends.load / wrap), got "
            f"{[type(m).__name__ for m in members]}"
        )
    if combine not in COMBINE:
        raise ConfigError(f"combine must be one of {COMBINE}, got {combine!r}")
    weights = _weights(weights, len(members))
    for m in members:
        if m.labels is None:
            raise ConfigError(
                f"member {m.name!r} does not say its classes: the ensemble aligns members by class "
                "name; load it with labels="
            )
    backend = EnsembleBackend(members, weights, combine, name or "+".join(m.name for m in members))
    if ood_method is None and any(m.settled.head.outputs == "probabilities" for m in members):
        ood_method = "max_probability"  # a member that returns probabilities has no energy to average
    from .api import _load_calibration

    settled = settle(
        backend,
        temperature=temperature,
        calibration=_load_calibration(calibration),
        top_k=top_k,
        groups=groups,
        ood_method=ood_method,
        batch_size=batch_size or members[0].batch_size,
        workers=workers or max(m.workers for m in members),
        max_pixels=max_pixels,
        name=name,
    )
    return Ensemble(backend, settled)


def _kind(m: Classifier) -> str:
    # a one-logit binary member is shown as the two classes [not X, X], whose probabilities sum to 1
    return "softmax" if m.activation == "softmax" or m.settled.num_outputs == 1 else "sigmoid"


def _weights(weights: Sequence[float] | None, n: int) -> tuple[float, ...]:
    if weights is None:
        return (1.0,) * n
    try:
        w = tuple(float(x) for x in weights)
    except (TypeError, ValueError):
        raise ConfigError(f"weights must be numbers, one per member, got {weights!r}") from None
    if len(w) != n or not all(x > 0 and x != float("inf") for x in w):
        raise ConfigError(f"expected {n} weights > 0 (one per member), got {list(weights)}")
    return w

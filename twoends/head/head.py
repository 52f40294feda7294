"""Head: turns a batch of raw model outputs into Predictions, correctly.

It owns the decisions people get silently wrong at the output end:

* the activation is explicit: "softmax" (one class per input), "sigmoid"
  (multi-label), or "auto": sigmoid for a single output logit, softmax otherwise.
  Softmax over a single logit is always 1.0, so asking for it is an error.
* a single-logit binary model is shown as two classes ``[not X, X]`` with
  logits ``[0, z]``: softmax([0, z]) == [1 - sigmoid(z), sigmoid(z)], so top-k,
  entropy and margin mean the same as for any other model.
* the class axis is explicit, and the label count must match it.
* rows with NaN or +inf logits, or with every class masked (-inf), become
  error rows, never confident answers.
* outputs that are already probabilities (a model ending in a softmax) are
  turned back into logits (log p) instead of being softmaxed a second time.
* every row carries an out-of-distribution score (``head/ood.py``), and with a
  fitted threshold an ``ood`` flag ("none of the above"); with label groups, the
  probability of each group (``head/groups.py``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ConfigError
from ..label_groups import LabelGroups
from ..labels import LabelMap
from ..prediction import ClassScore, GroupScore, Prediction, PredictionBatch
from .activations import _quiet, log_sigmoid, log_softmax, sigmoid
from .arrays import check_temperature, namespace, to_numpy
from .groups import group_probabilities
from .kernels import select_top
from .ood import OOD_METHODS, ood_scores
from .uncertainty import binary_entropy, entropy, margin

__all__ = ["Head", "HeadSettings", "resolve_activation", "shown_labels"]

ACTIVATIONS = ("auto", "softmax", "sigmoid")
OUTPUTS = ("logits", "probabilities")

#: A conformal (or any) set-valued predictor: probabilities [B, C] (NumPy) -> class indices per row.
SetFunction = Callable[[np.ndarray], Sequence[Sequence[int]]]


@dataclass(frozen=True)
class HeadSettings:
    """Everything a Head applies, validated once (the settled record holds one of these)."""

    labels: LabelMap | None = None
    activation: str = "auto"
    temperature: float = 1.0
    thresholds: Any = None
    top_k: int = 5
    axis: int = -1
    outputs: str = "logits"
    model: str | None = None
    prediction_sets: SetFunction | None = None
    calibration: str | None = None
    ood_method: str = "energy"
    ood_threshold: float | None = None
    groups: LabelGroups | None = None
    #: set: the prediction sets are over these groups (a group-level calibration), not over the classes
    set_groups: LabelGroups | None = None

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.outputs not in OUTPUTS:
            raise ConfigError(f"outputs must be one of {OUTPUTS} (what the model returns), got {self.outputs!r}")
        top_k = self.top_k
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ConfigError(f"top_k must be a whole number >= 1, got {top_k!r}")
        if self.labels is not None and not isinstance(self.labels, LabelMap):
            object.__setattr__(self, "labels", LabelMap.from_any(self.labels))
        object.__setattr__(self, "temperature", check_temperature(self.temperature))
        if self.thresholds is not None:
            object.__setattr__(self, "thresholds", np.asarray(self.thresholds, dtype=np.float64))
        if self.ood_method not in OOD_METHODS:
            raise ConfigError(f"ood_method must be one of {OOD_METHODS}, got {self.ood_method!r}")
        if self.ood_threshold is not None:
            object.__setattr__(self, "ood_threshold", float(self.ood_threshold))


def resolve_activation(activation: str, num_outputs: int) -> str:
    """The activation applied to a model with ``num_outputs`` outputs ("auto": sigmoid for one)."""
    if activation == "auto":
        return "sigmoid" if num_outputs == 1 else "softmax"
    if activation == "softmax" and num_outputs == 1:
        raise ConfigError(
            "softmax over a single output is always 1.0: a model with one output logit is a binary "
            'classifier and needs activation="sigmoid" (or "auto")'
        )
    return activation


def shown_labels(labels: LabelMap | None, num_outputs: int) -> LabelMap:
    """The names of the classes shown, checked against the outputs; one logit shows [not X, X]."""
    binary = num_outputs == 1
    if labels is None:
        return LabelMap.default(2 if binary else num_outputs)
    if binary and len(labels) == 1:
        return LabelMap([f"not {labels[0]}", labels[0]], source=labels.source)
    return labels.check(2 if binary else num_outputs)


class Head:
    """Activation, temperature, thresholds and class axis -> Predictions.

    ``labels``: anything ``LabelMap.from_any`` takes, or None for "0".."C-1".
    ``thresholds``: per-class (or one) probability thresholds for sigmoid heads,
    default 0.5; classes at or over it are the prediction's ``positive_labels``.
    ``prediction_sets``: an optional function (a fitted conformal calibration)
    giving each row's set of plausible classes. ``Head.from_settings(s)`` builds
    one from a ``HeadSettings``; ``head.replace(top_k=3)`` a copy with changes.
    """

    def __init__(
        self,
        labels: Any = None,
        *,
        activation: str = "auto",
        temperature: float = 1.0,
        thresholds: Any = None,
        top_k: int = 5,
        axis: int = -1,
        outputs: str = "logits",
        model: str | None = None,
        prediction_sets: SetFunction | None = None,
        calibration: str | None = None,
        ood_method: str = "energy",
        ood_threshold: float | None = None,
        groups: Any = None,
    ):
        if groups is not None and not isinstance(groups, LabelGroups):
            if labels is None:
                raise ConfigError("groups need the class names they refer to: pass labels= too")
            groups = LabelGroups.resolve(groups, LabelMap.from_any(labels))
        self.settings = HeadSettings(
            labels=labels,
            activation=activation,
            temperature=temperature,
            thresholds=thresholds,
            top_k=top_k,
            axis=axis,
            outputs=outputs,
            model=model,
            prediction_sets=prediction_sets,
            calibration=calibration,
            ood_method=ood_method,
            ood_threshold=ood_threshold,
            groups=groups,
        )

    @classmethod
    def from_settings(cls, settings: HeadSettings) -> "Head":
        head = cls.__new__(cls)
        head.settings = settings
        return head

    def replace(self, **changes: Any) -> "Head":
        """A new Head with some settings changed (this one is never modified: it may be shared)."""
        return Head.from_settings(dataclasses.replace(self.settings, **changes))

    def __getattr__(self, name: str) -> Any:
        # labels, activation, temperature, ...: read from the settings
        if name != "settings" and name in HeadSettings.__dataclass_fields__:
            return getattr(self.settings, name)
        raise AttributeError(f"'Head' object has no attribute {name!r}")

    def __repr__(self) -> str:
        return (
            f"Head(activation={self.activation!r}, temperature={self.temperature}, top_k={self.top_k}, "
            f"outputs={self.outputs!r}, labels={self.labels!r})"
        )

    # --- decisions made from the number of outputs ------------------------------------

    def resolve_activation(self, num_outputs: int) -> str:
        """The activation this head applies to a model with ``num_outputs`` outputs."""
        return resolve_activation(self.activation, num_outputs)

    def resolve_labels(self, num_outputs: int) -> LabelMap:
        """The names of the classes shown, checked against the outputs."""
        return shown_labels(self.labels, num_outputs)

    def rerun(self, preds: Sequence[Prediction], *, num_outputs: int | None) -> list[Prediction]:
        """The same predictions under this head's settings, from the logits they carry.

        The stored logits are what a head worked on: log p for a model that returns
        probabilities (so they are taken as logits here), and ``[0, z]`` for a
        one-logit binary model, of which the model's own ``z`` is run again. A windowed input
        (a long audio clip) keeps its segments as they were computed.
        """
        good = [p for p in preds if p.ok and p.logits is not None]
        if not good:
            return list(preds)
        logits = np.stack([np.asarray(p.logits) for p in good])
        if num_outputs == 1:
            logits = logits[:, 1:]
        head = self if self.outputs == "logits" else self.replace(outputs="logits")
        # an ensemble's score comes from its members, not from its combined logits: keep it
        kept = [p.ood_score for p in good] if all(p.members is not None for p in good) else None
        fresh = iter(head(logits, inputs=[p.input for p in good], ood_scores=kept))
        return [_carried(next(fresh), p) if (p.ok and p.logits is not None) else p for p in preds]

    # --- the work ---------------------------------------------------------------------

    @_quiet
    def __call__(
        self, logits: Any, inputs: Sequence[str | None] | None = None, *, ood_scores: Sequence[float] | None = None
    ) -> PredictionBatch:
        """Predictions for a batch of outputs [B, C] (or one input's outputs [C]).

        ``ood_scores``: one out-of-distribution score per row computed elsewhere (an
        ensemble's, from its members), used instead of the head's own.
        """
        xp, x, activation, labels, binary = self._logits(logits, inputs)
        return self._predictions(xp, x, activation, labels, inputs, binary, ood_scores)

    @_quiet
    def probabilities(self, logits: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(logits, probabilities, bad rows)`` as NumPy, exactly as ``__call__`` computes them, without
        building a Prediction per row (for the many windows of a long clip). Logits are as the head
        shows them: log p for probability outputs, ``[0, z]`` for one logit."""
        xp, x, activation, _, binary = self._logits(logits, None)
        z = x if self.temperature == 1.0 else x / self.temperature
        p = xp.exp(log_softmax(z)) if activation == "softmax" or binary else sigmoid(z)
        return to_numpy(x), to_numpy(p), to_numpy(_bad_rows(xp, x))

    def _logits(self, logits: Any, inputs: Sequence[str | None] | None):
        xp, x = namespace(logits)
        if x.ndim == 1:
            x = xp.reshape(x, (1, x.shape[0]))
        elif self.axis not in (-1, x.ndim - 1):
            x = xp.moveaxis(x, self.axis, -1)
        if x.ndim != 2:
            raise ConfigError(
                f"Head turns outputs of shape [batch, classes] into Predictions, got shape {tuple(x.shape)}: "
                "for [batch, tokens, classes] use twoends.head.softmax / topk on the array directly"
            )
        batch, n_out = x.shape
        if inputs is not None and len(inputs) != batch:
            raise ConfigError(f"got {len(inputs)} input ids for a batch of {batch} outputs")
        activation = self.resolve_activation(n_out)
        labels = self.resolve_labels(n_out)
        if self.outputs == "probabilities":
            x = _probabilities_to_logits(xp, x, activation)
        if n_out == 1:
            x = xp.concat([xp.zeros_like(x), x], axis=1)  # [0, z]: see the module docstring
        return xp, x, activation, labels, n_out == 1

    def _predictions(self, xp, x, activation, labels, inputs, binary, given_ood=None) -> PredictionBatch:
        z = x if self.temperature == 1.0 else x / self.temperature
        if activation == "softmax" or binary:
            logp = log_softmax(z)
            p = xp.exp(logp)
            ent = entropy(p)
        else:
            p = sigmoid(z)
            logp = log_sigmoid(z)
            ent = binary_entropy(p)
        k = min(self.top_k, x.shape[1])
        _, idx = select_top(z, k, -1)
        bad = _bad_rows(xp, x)
        kind = "softmax" if binary else activation
        ood = (
            ood_scores(x, self.ood_method, activation=kind, probabilities=p)
            if given_ood is None
            else np.asarray(given_ood, dtype=np.float64)
        )
        grp = (
            None
            if self.groups is None
            else group_probabilities(self.groups.members, probabilities=p, logits=z, activation=kind)
        )
        host = [to_numpy(a) for a in (x, p, logp, idx, ent, margin(p), bad, ood)]
        x_np, p_np, logp_np, idx_np, ent_np, mar_np, bad_np, ood_np = host
        grp_np = None if grp is None else to_numpy(grp)
        sets = self._sets(p_np, bad_np, labels)
        preds = []
        for i in range(x_np.shape[0]):
            name = None if inputs is None else inputs[i]
            if bad_np[i]:
                preds.append(_error_row(name, x_np[i], self.model))
                continue
            top = tuple(ClassScore(int(j), labels[int(j)], float(p_np[i, j]), float(x_np[i, j])) for j in idx_np[i])
            preds.append(
                Prediction(
                    input=name,
                    label=top[0].label,
                    index=top[0].index,
                    probability=top[0].probability,
                    top_k=top,
                    entropy=float(ent_np[i]),
                    margin=float(mar_np[i]),
                    activation="sigmoid" if binary else activation,
                    temperature=self.temperature,
                    logits=x_np[i],
                    probabilities=p_np[i],
                    log_probabilities=logp_np[i],
                    positive_labels=self._positives(p_np[i], labels)
                    if activation == "sigmoid" and not binary
                    else None,
                    prediction_set=None if sets is None else sets[i],
                    calibration=self.calibration,
                    model=self.model,
                    ood_score=float(ood_np[i]),
                    ood=None if self.ood_threshold is None else bool(ood_np[i] > self.ood_threshold),
                    groups=None if grp_np is None else _group_scores(self.groups.names, grp_np[i]),
                )
            )
        return PredictionBatch(preds, x_np, p_np, logp_np)

    def _positives(self, p_row: np.ndarray, labels: LabelMap) -> tuple[str, ...]:
        thr = 0.5 if self.thresholds is None else self.thresholds
        hits = np.flatnonzero(p_row >= thr)
        return tuple(labels[int(j)] for j in hits[np.argsort(-p_row[hits], kind="stable")])

    def _sets(self, p_np: np.ndarray, bad: np.ndarray, labels: LabelMap) -> list[tuple[str, ...]] | None:
        """Each row's prediction set, by name: of classes, or of groups for a group-level calibration."""
        if self.prediction_sets is None:
            return None
        safe = np.where(bad[:, None], 0.0, p_np)  # error rows get no set; keep NaN out of the set function
        names = labels
        if self.set_groups is not None:
            names = self.set_groups.names
            safe = np.asarray(group_probabilities(self.set_groups.members, probabilities=safe), dtype=np.float64)
        return [tuple(names[int(j)] for j in row) for row in self.prediction_sets(safe)]


def _group_scores(names, probs: np.ndarray) -> tuple[GroupScore, ...]:
    order = np.argsort(-probs, kind="stable")
    return tuple(GroupScore(names[int(j)], float(probs[j])) for j in order)


def _carried(fresh: Prediction, old: Prediction) -> Prediction:
    """What a re-run cannot recompute from the logits is carried over as it was: an ensemble's
    members, and a windowed input's segments (its windows are not stored)."""
    changes = {k: getattr(old, k) for k in ("members", "segments") if getattr(old, k) is not None}
    return dataclasses.replace(fresh, **changes) if changes else fresh


def _bad_rows(xp, x):
    """Rows that cannot honestly be answered: NaN or +inf anywhere, or every class -inf."""
    invalid = xp.isnan(x) | (x == float("inf"))
    all_masked = xp.all(x == float("-inf"), axis=1)
    return xp.any(invalid, axis=1) | all_masked


def _error_row(name, row: np.ndarray, model) -> Prediction:
    n = row.shape[0]
    nan, pinf = int(np.isnan(row).sum()), int(np.isposinf(row).sum())
    if nan or pinf:
        what = " and ".join(s for s in (f"NaN at {nan}" if nan else "", f"+inf at {pinf}" if pinf else "") if s)
        msg = (
            f"model outputs contain {what} of {n} classes; expected finite logits (-inf allowed for masked classes). "
            "Check the input for NaN/inf values and the precision (float16 overflows above 65504)"
        )
    else:
        msg = f"every one of the {n} classes is masked (-inf): there is no class left to predict"
    return Prediction(input=name, model=model, logits=row, error={"type": "OutputError", "message": msg})


def _probabilities_to_logits(xp, p, activation):
    """Probabilities back to logits: log p for softmax, log(p / (1 - p)) for sigmoid.

    softmax(log p) == p exactly when p sums to 1, so nothing is applied twice.
    """
    if activation == "softmax":
        return xp.log(p)
    return xp.log(p) - xp.log1p(-p)

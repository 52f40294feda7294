"""Classifier: the four steps - preprocess, batch, forward, postprocess - for one input or a stream.

Everything that can be decided once is decided before the classifier is built
(``twoends.settle``: the settled record); per batch, the plan is only applied.
The Classifier talks to its input end only through the input protocol
(``twoends.preprocess.protocol``): it never asks whether inputs are images or texts.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, Iterator

import numpy as np

from .backends.base import Backend
from .errors import ConfigError, ModelError, TwoEndsError
from .head import Head
from .head.windows import combine_windows
from .prediction import Prediction, PredictionList
from .preprocess.protocol import Windows, apply_deferred
from .runner import Prepared, prepared_batches
from .settle import Settled, check_positive, settle
from .timing import timed

__all__ = ["Classifier"]


class Classifier:
    """A model with both of its ends attached.

    ``predict(x)`` gives one ``Prediction`` for one input (a path, bytes, a PIL
    image, a uint8 array, one preprocessed tensor, a text for a text model, an
    audio file or ``AudioClip(samples, rate)`` for an audio model) and
    a list for many (a folder, a glob, a list, a 4-D batch). ``predict_iter``
    streams in input order with bounded memory. Every input yields exactly one
    Prediction: a bad input becomes an error row and the rest go on.

    Its settings are the settled record ``self.settled`` (see ``twoends.settle``):
    built by ``twoends.load`` / ``wrap``, or here from the same keyword arguments.
    """

    def __init__(self, backend: Backend, settled: Settled | None = None, **settings: Any):
        if not isinstance(backend, Backend):
            raise ConfigError(
                f"Classifier needs a twoends Backend, got {type(backend).__name__}; use twoends.wrap(model)"
            )
        if settled is None:
            settled = settle(backend, **settings)
        elif settings:
            raise ConfigError(f"pass either a settled record or settings, not both (got {sorted(settings)})")
        self.backend = backend
        self.settled = settled
        self.head = Head.from_settings(settled.head)
        #: decoding overlaps the forward pass (True) or takes turns with it (False); None: by the device
        self.overlap: bool | None = None
        backend.plan_batches(settled.batch_size)
        self._looked = False  # the first batch's outputs are looked at once (probabilities taken for logits?)

    # read-only views of the settled record, for convenience
    name = property(lambda self: self.settled.name)
    spec = property(lambda self: self.settled.spec)
    plan = property(lambda self: self.settled.plan)
    spec_source = property(lambda self: self.settled.sources["spec"])
    labels_source = property(lambda self: self.settled.sources["labels"])
    batch_size = property(lambda self: self.settled.batch_size)
    workers = property(lambda self: self.settled.workers)
    max_pixels = property(lambda self: self.settled.limits.max_pixels)
    max_seconds = property(lambda self: self.settled.limits.max_seconds)
    calibration = property(lambda self: self.settled.calibration)

    @property
    def labels(self):
        """The class names as shown (``[not X, X]`` for one logit), once the outputs are known."""
        return self._settled_outputs().labels

    @property
    def activation(self) -> str:
        return self._settled_outputs().activation

    # --- public -------------------------------------------------------------------------

    def predict(self, x: Any, *, batch_size: int | None = None) -> Prediction | list[Prediction]:
        """One Prediction for one input; a list, in input order, for many (a notebook shows it as a table)."""
        results = PredictionList(self.predict_iter(x, batch_size=batch_size))
        if not self.plan.is_single(x):
            return results
        one = results[0]
        if one.error is not None and one.error["type"] == "ModelError":
            # one input and the model itself could not run on it: nothing to stream past, and an
            # error row whose .label is None would pass unnoticed
            raise ModelError(one.error["message"])
        return one

    def predict_iter(self, inputs: Any, *, batch_size: int | None = None, timings: Any = None) -> Iterator[Prediction]:
        """Predictions one by one, in input order, never holding more than a few batches.

        ``timings``: a ``twoends.timing.PhaseTimes`` that records where the time goes.
        """
        size = batch_size or self.batch_size
        check_positive("batch_size", size)
        # a model on the CPU shares the cores with decoding: take turns instead of overlapping,
        # unless its forward pass keeps to one core (Classifier.overlap says otherwise, to measure it)
        overlap = (
            self.overlap
            if self.overlap is not None
            else self.backend.single_threaded or not str(self.backend.device).startswith("cpu")
        )
        prepare = self.plan.prepare if timings is None else functools.partial(self.plan.prepare, timings=timings)
        per_call = self.backend.inputs_per_call(size)
        for group in prepared_batches(
            self.plan.items(inputs), prepare, workers=self.workers, size=per_call, overlap=overlap
        ):
            yield from self.predict_batch(group, timings=timings)

    def predict_batch(self, prepared: list[Prepared], *, timings: Any = None) -> list[Prediction]:
        """Run already-prepared inputs (see ``prepare``) as one batch; every input gets one row."""
        good = [p for p in prepared if p.error is None]
        results: dict[int, Prediction] = {}
        if good:
            for p, pred in zip(good, self._forward(good, timings), strict=True):
                results[id(p)] = pred
        return [
            results[id(p)] if p.error is None else Prediction.failed(p.id, p.error, model=self.name) for p in prepared
        ]

    def prepare(self, item: Any) -> Prepared:
        """Decode and preprocess one ``Item`` (for runners that parallelise elsewhere, e.g. Ray)."""
        try:
            return Prepared(item.id, self.plan.prepare(item))
        except Exception as exc:
            return Prepared(item.id, error=exc)

    def describe(self) -> dict:
        """Which model, backend, preprocessing (and from where), labels and head are in use."""
        return {
            **self._settled_outputs().describe(),
            "backend": self.backend.describe(),
            "device": self.backend.device,
            # which runtime runs the forward pass, why, and its check against PyTorch (twoends.runtimes)
            "runtime": getattr(self.backend, "runtime_report", None),
            "notes": list(self.backend.info.notes),
        }

    def __repr__(self) -> str:
        return f"Classifier({self.name!r}, {self.backend.describe()}, spec from {self.spec_source})"

    # --- steps --------------------------------------------------------------------------

    def _settled_outputs(self) -> Settled:
        # a backend that learns its number of outputs on the first batch: settle labels/activation then
        n = self.backend.info.num_outputs
        if n and self.settled.num_outputs != n:
            self.settled = self.settled.with_outputs(n)
        return self.settled

    def _warn_if_probabilities(self, preds: list[Prediction]) -> None:
        """A softmax inside the model's forward() is invisible to the backend: its outputs show it."""
        if self.settled.head.outputs != "logits" or self.settled.sources.get("outputs") == "explicit":
            return
        rows = [np.asarray(p.logits, dtype=np.float64) for p in preds if p.ok and p.logits is not None]
        if not rows or rows[0].ndim != 1 or rows[0].size < 2:
            return
        z = np.stack(rows)
        if np.isfinite(z).all() and ((z >= 0) & (z <= 1)).all() and np.allclose(z.sum(-1), 1, atol=1e-3):
            warnings.warn(
                f"{self.name}: the model's outputs look like probabilities (every row in [0, 1], summing to 1): "
                "a softmax inside forward()? They are softmaxed again, which flattens every answer. Pass "
                "outputs='probabilities' to twoends.wrap/load (or make the model return its logits)",
                RuntimeWarning,
                stacklevel=4,
            )

    def _forward(self, good: list[Prepared], timings: Any = None) -> list[Prediction]:
        try:
            with timed(timings, "preprocess"):
                values = apply_deferred(self.plan, [p.value for p in good])
            with timed(timings, "forward"):
                logits = self.backend.forward(self.backend.collate(values))
            with timed(timings, "postprocess"):  # on an accelerator this includes waiting for the device
                if isinstance(values[0], Windows):  # inputs cut into windows (long audio): one row per input
                    preds = combine_windows(
                        self.head,
                        logits,
                        [len(v) for v in values],
                        [v.starts for v in values],
                        [v.ends for v in values],
                        [v.merge_gap for v in values],
                        [p.id for p in good],
                    )
                else:
                    preds = list(self.head(logits, inputs=[p.id for p in good]))
        except Exception as exc:
            if len(good) == 1:
                return [Prediction.failed(good[0].id, _as_twoends_error(exc), model=self.name)]
        else:
            if not self._looked:
                self._looked = True
                self._warn_if_probabilities(preds)
            return preds
        # the batch failed as a whole: run its inputs one by one so only the culprits fail
        return [pred for p in good for pred in self._forward([p], timings)]


def _as_twoends_error(exc: Exception) -> Exception:
    """A failure inside the model's own code (a framework error) becomes a ModelError that says so;
    errors twoends raised (a bad input, NaN outputs) stay what they are."""
    if isinstance(exc, TwoEndsError):
        return exc
    return ModelError(
        f"the model failed on this input ({type(exc).__name__}: {str(exc).strip()[:500]}); the input was "
        "prepared as the settled spec says (clf.describe()): check that it is what the model expects "
        "(input size, layout NCHW/NHWC, dtype)"
    )

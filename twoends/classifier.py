"""Classifier: the four steps - preprocess, batch, forward, postprocess - for one input or a stream.

Everything that can be decided once is decided when the classifier is built
(rule 3: plan once, apply per batch): the preprocessing spec with where it came
from, the labels checked against the outputs, the activation. Per batch, the
plan is only applied.
"""

from __future__ import annotations

from typing import Any, Iterator

from .backends.base import Backend
from .errors import ConfigError
from .head import Head
from .prediction import Prediction, PredictionBatch
from .preprocess import DEFAULT_MAX_PIXELS, ImageSpec, decode_image, is_single, iter_items, resolve_spec
from .preprocess.text import TextSpec, is_single_text, iter_texts, resolve_text_spec
from .runner import Prepared, default_workers, prepared_batches

__all__ = ["Classifier"]


class Classifier:
    """A model with both of its ends attached.

    ``predict(x)`` gives one ``Prediction`` for one input (a path, bytes, a PIL
    image, a uint8 array, one preprocessed tensor) and a list for many (a
    folder, a glob, a list, a 4-D batch). ``predict_iter`` streams in input
    order with bounded memory. Every input yields exactly one Prediction: a
    bad input becomes an error row and the rest go on.

    Precedence for each setting: an explicit argument here > what the model
    ships (its backend's ``info``) > defaults; ``describe()`` says which.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        spec: ImageSpec | dict | None = None,
        labels: Any = None,
        activation: str | None = None,
        temperature: float = 1.0,
        thresholds: Any = None,
        top_k: int = 5,
        batch_size: int = 8,
        workers: int | None = None,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        name: str | None = None,
        prediction_sets: Any = None,
        calibration: Any = None,
    ):
        if not isinstance(backend, Backend):
            raise ConfigError(f"Classifier needs a twoends Backend, got {type(backend).__name__}; use twoends.wrap(model)")
        _check_positive("batch_size", batch_size)
        info = backend.info
        self.backend = backend
        self.name = name or info.name
        # the model's spec decides what an input is: text models take str as text, image models as paths
        self.text = isinstance(info.spec, TextSpec) or isinstance(spec, TextSpec)
        if self.text:
            self.spec, self.spec_source = resolve_text_spec(explicit=spec, bundled=info.spec)
        else:
            self.spec, self.spec_source = resolve_spec(explicit=spec, bundled=info.spec, default=ImageSpec())
        self.plan = self.spec.plan()  # ImagePlan, TextPlan, or a backend's own (e.g. an HF image processor)
        self.labels_source = "explicit" if labels is not None else ("model" if info.labels else "default")
        # a calibration file (or Calibration) sets the temperature, conformal sets and thresholds
        self.calibration = _calibration(calibration, temperature, thresholds, prediction_sets)
        if self.calibration is not None:
            settings = self.calibration.head_settings()
            temperature, thresholds = settings["temperature"], settings["thresholds"]
            prediction_sets, calibration = settings["prediction_sets"], settings["calibration"]
        self.head = Head(
            labels if labels is not None else info.labels,
            activation=activation or info.activation or "auto",
            temperature=temperature,
            thresholds=thresholds,
            top_k=top_k,
            outputs=info.outputs,
            model=self.name,
            prediction_sets=prediction_sets,
            calibration=calibration,
        )
        if info.num_outputs:  # fail now, not after the first batch of a long run
            self.head.resolve_activation(info.num_outputs)
            self.head.resolve_labels(info.num_outputs)
        if self.calibration is not None and (info.num_outputs or self.head.labels is not None):
            shown = self.head.resolve_labels(info.num_outputs) if info.num_outputs else self.head.labels
            self.calibration.check(shown, model=self.name,
                                   activation=self.head.resolve_activation(info.num_outputs) if info.num_outputs else None)
        self.batch_size = batch_size
        backend.plan_batches(batch_size)
        self.workers = default_workers() if workers is None else max(1, int(workers))
        self.max_pixels = max_pixels

    # --- public -------------------------------------------------------------------------

    def predict(self, x: Any, *, batch_size: int | None = None) -> Prediction | list[Prediction]:
        """One Prediction for one input; a list, in input order, for many."""
        results = list(self.predict_iter(x, batch_size=batch_size))
        return results[0] if (is_single_text if self.text else is_single)(x) else results

    def predict_iter(self, inputs: Any, *, batch_size: int | None = None) -> Iterator[Prediction]:
        """Predictions one by one, in input order, never holding more than a few batches."""
        size = batch_size or self.batch_size
        _check_positive("batch_size", size)
        items = iter_texts(inputs) if self.text else iter_items(inputs)
        # a model on the CPU shares the cores with decoding: take turns instead of overlapping
        overlap = not str(getattr(self.backend, "device", "cpu")).startswith("cpu")
        for group in prepared_batches(items, self._prepare, workers=self.workers, size=size, overlap=overlap):
            yield from self._run(group)

    def predict_batch(self, prepared: list[Prepared]) -> list[Prediction]:
        """Run already-prepared inputs (see ``prepare``) as one batch."""
        return self._run(prepared)

    def prepare(self, item: Any) -> Prepared:
        """Decode and preprocess one ``Item`` (for runners that parallelise elsewhere, e.g. Ray)."""
        try:
            return Prepared(item.id, self._prepare(item))
        except Exception as exc:
            return Prepared(item.id, error=exc)

    def describe(self) -> dict:
        """Which model, backend, preprocessing (and from where), labels and head are in use."""
        return {
            "model": self.name,
            "backend": self.backend.describe(),
            "device": self.backend.device,
            "spec": self.spec.to_dict(),
            "spec_source": self.spec_source,
            "labels": {"count": len(self.head.labels) if self.head.labels else None, "source": self.labels_source},
            "activation": self.head.activation,
            "outputs": self.backend.info.outputs,
            "temperature": self.head.temperature,
            "calibration": self.head.calibration,
            "notes": list(self.backend.info.notes),
        }

    def __repr__(self) -> str:
        return f"Classifier({self.name!r}, {self.backend.describe()}, spec from {self.spec_source})"

    # --- steps --------------------------------------------------------------------------

    def _prepare(self, item: Any) -> Any:
        if item.ready:
            return self._check_ready(item.payload)
        if self.text:
            return self.plan(item.payload)
        image = decode_image(item.payload, max_pixels=self.max_pixels, draft_size=self.plan.draft_size)
        if getattr(self.plan, "per_batch", False):
            return _Deferred(image)  # the plan runs per batch, in the model's thread (see _apply_deferred)
        return self.plan(image)

    def _check_ready(self, x: Any) -> Any:
        # a plan that knows its output shape refuses a ready input of another shape, with the fix
        check = getattr(self.plan, "check_ready", None)
        return x if check is None else check(x)

    def _run(self, group: list[Prepared]) -> list[Prediction]:
        good = [p for p in group if p.error is None]
        results: dict[int, Prediction] = {}
        if good:
            for p, pred in zip(good, self._forward(good)):
                results[id(p)] = pred
        return [results[id(p)] if p.error is None else Prediction.failed(p.id, p.error, model=self.name) for p in group]

    def _forward(self, good: list[Prepared]) -> list[Prediction]:
        try:
            values = self._apply_deferred([p.value for p in good])
            return list(self._head(self.backend.forward(self.backend.collate(values)), good))
        except Exception as exc:
            if len(good) == 1:
                return [Prediction.failed(good[0].id, exc, model=self.name)]
        # the batch failed as a whole: run its inputs one by one so only the culprits fail
        return [pred for p in good for pred in self._forward([p])]

    def _apply_deferred(self, values: list[Any]) -> list[Any]:
        """Run a per-batch plan on the decoded images of a batch (ready inputs pass as they are)."""
        where = [i for i, v in enumerate(values) if isinstance(v, _Deferred)]
        if not where:
            return values
        done = self.plan.apply_batch([values[i].image for i in where])
        out = list(values)
        for i, x in zip(where, done):
            out[i] = x
        return out

    def _head(self, logits: Any, good: list[Prepared]) -> PredictionBatch:
        return self.head(logits, inputs=[p.id for p in good])


class _Deferred:
    """A decoded image waiting for a per-batch plan (e.g. a Hugging Face processor)."""

    __slots__ = ("image",)

    def __init__(self, image: Any):
        self.image = image


def _calibration(calibration: Any, temperature: float, thresholds: Any, prediction_sets: Any):
    """The Calibration to apply (None for none); it cannot be combined with the settings it makes."""
    if calibration is None:
        return None
    if temperature != 1.0 or thresholds is not None or prediction_sets is not None:
        raise ConfigError(
            "a calibration sets the temperature, thresholds and prediction sets itself: got it together with "
            "temperature/thresholds/prediction_sets; pass one or the other"
        )
    from .calibrate.calibration import load_calibration

    return load_calibration(calibration)


def _check_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")

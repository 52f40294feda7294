"""``check``: run every check that applies to what the user has, and collect the findings.

Two ways in, one set of checks:

* your own pipeline: ``check(model, batch=x, logits=z, probabilities=p, labels=..., spec=...)``
  with whatever of those you have (arrays of any library); ``preprocess=`` (one PIL
  image -> one model input) lets the doctor run your preprocessing on known photos;
* a twoends Classifier: ``check(clf, photos)`` (``check(clf, clips)`` for an audio model).

Audio (a spec with a ``sample_rate``, or an audio Classifier) runs the checks of
``diagnose.audio`` on the input end instead of the image ones.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ConfigError
from ..head.arrays import to_numpy
from ..preprocess.spec import ImageSpec
from . import audio as _audio
from . import inputs as _in
from . import model as _model
from . import outputs as _out
from . import quantized as _quant
from ._probe import probe_for
from .finding import Finding, Findings

__all__ = ["check", "CHECKS"]

CHECKS = (
    "batch-dimension",
    "layout",
    "input-size",
    "normalization",
    "known-answer",
    "channel-order",
    "training-mode",
    "probabilities-as-logits",
    "softmax-axis",
    "activation",
    "labels",
    "over-confidence",
    "input-quantization",
    "quantized-outputs",
    *_audio.AUDIO_CHECKS,
)


class _Runner:
    def __init__(self, only: Sequence[str] | None):
        unknown = sorted(set(only or ()) - set(CHECKS))
        if unknown:
            raise ConfigError(f"unknown check(s) {unknown}; the checks are {list(CHECKS)}")
        self.only = set(only) if only else None
        self.findings: list[Finding] = []
        self.ran: list[str] = []
        self.skipped: dict[str, str] = {}

    def __call__(self, names: str | tuple, missing: str | None, fn: Callable[[], list[Finding]]) -> None:
        names = (names,) if isinstance(names, str) else names
        if self.only is not None and not self.only & set(names):
            return
        if missing:
            for n in names:
                self.skipped.setdefault(n, missing)
            return
        found = fn()
        if self.only is not None:
            found = [f for f in found if f.check in self.only]
        self.findings.extend(found)
        for n in names:
            self.ran.append(n) if n not in self.ran else None
            self.skipped.pop(n, None)

    def result(self) -> Findings:
        order = {n: i for i, n in enumerate(CHECKS)}
        rank = {"error": 0, "warning": 1, "info": 2}
        items = sorted(self.findings, key=lambda f: (rank[f.severity], order.get(f.check, 99)))
        return Findings(items, ran=[n for n in CHECKS if n in self.ran], skipped=self.skipped)


def check(
    model: Any = None,
    inputs: Any = None,
    *,
    batch: Any = None,
    logits: Any = None,
    probabilities: Any = None,
    activation: str | None = None,
    multi_label: bool | None = None,
    labels: Sequence[str] | None = None,
    spec: Any = None,
    targets: Any = None,
    preprocess: Callable | None = None,
    checks: Sequence[str] | None = None,
    ece_threshold: float = 0.1,
) -> Findings:
    """Look for the silent mistakes at both ends of a model; return the findings (a list).

    ``model``: your framework model as you run it (e.g. a ``torch.nn.Module``, checked
    as it is - a forgotten ``.eval()`` is found, not fixed), a twoends ``Classifier``,
    or None (output-end checks only).
    ``inputs``: photos (paths, folders, PIL images, ...) for a Classifier, or for your
    model together with ``preprocess``.
    ``batch``: the preprocessed batch you feed the model. ``logits``: what you treat as
    logits (computed from ``batch`` when not given). ``probabilities``: what you report
    after your activation. ``activation``: the one you apply ("softmax" / "sigmoid"),
    read from the arrays when not given. ``multi_label``: what the model was trained for.
    ``labels``: your class names. ``spec``: the preprocessing the model expects (an
    ImageSpec, an AudioSpec, or a dict of its fields). For audio, ``batch`` is the samples
    you feed (a [clips, samples] array or a list of 1-D arrays) and ``inputs`` the clips
    they came from (files or ``AudioClip`` s), whose lengths say what happened on the way.
    ``targets``: true classes for the batch (ints, or multi-hot rows) for the calibration check. ``preprocess``: your function
    from one RGB PIL image to one model input. ``checks``: run only these (see ``CHECKS``).

    Findings come sorted errors first; ``.ran`` and ``.skipped`` say what was checked.
    """
    from ..classifier import Classifier

    if isinstance(model, Classifier) and hasattr(model, "members"):  # an ensemble: each member on its own ends
        from .ensemble import check_ensemble

        return check_ensemble(
            model,
            lambda m: _check_classifier(
                m, inputs, labels=None, targets=targets, checks=checks, ece_threshold=ece_threshold
            ),
        )
    if isinstance(model, Classifier) and model.plan.kind == "audio":
        run = _Runner(checks)
        _audio.check_classifier(run, model, inputs)
        return run.result()
    if isinstance(model, Classifier):
        return _check_classifier(
            model, inputs, labels=labels, targets=targets, checks=checks, ece_threshold=ece_threshold
        )
    run = _Runner(checks)
    spec = _spec(spec)
    probe = probe_for(model)
    quantization = _quant.quantization_of(model) if model is not None else None  # a TFLite interpreter
    if getattr(spec, "kind", None) == "audio":  # the audio input end; the output end is checked as for any model
        rows = _audio.as_rows(batch) if batch is not None else None
        sources = _audio.decoded_sources(inputs) if inputs is not None else None
        if rows is None:
            run.skipped.update({n: "needs batch= (the samples fed to the model)" for n in _audio.AUDIO_CHECKS})
        else:
            audio = getattr(spec, "audio", spec)  # an HF extractor's spec holds its AudioSpec
            _audio.run_checks(run, rows, audio.sample_rate, audio.window, sources)
        batch = inputs = preprocess = None  # the image checks below do not apply
        if probe is not None:
            run("training-mode", None, lambda: _flag_only(probe))
    if model is not None and probe is None and quantization is None:
        raise ConfigError(
            f"the doctor cannot run a {type(model).__name__}: expected a torch.nn.Module, a TFLite "
            "interpreter or a twoends Classifier; pass model=None to check arrays only"
        )
    if inputs is not None:
        if preprocess is None:
            raise ConfigError(
                "inputs= needs preprocess= (your function from one PIL image to one model input), "
                "or pass a twoends Classifier as the model"
            )
        if batch is None:
            batch = np.stack([np.asarray(to_numpy(preprocess(im))) for im in _decode_all(inputs)])
    if targets is not None and multi_label is None:
        multi_label = np.asarray(to_numpy(targets) if not isinstance(targets, (list, tuple)) else targets).ndim == 2

    forward = (lambda b: probe.forward(b, mode="eval")) if probe else None
    if getattr(spec, "kind", None) != "audio":
        _image_input_checks(run, probe, batch, spec, preprocess, forward, labels)

    if logits is None and probe is not None and batch is not None:
        try:
            logits = forward(_batched(batch))
        except Exception as exc:  # the shape checks above say why, this says it failed
            run.skipped["probabilities-as-logits"] = f"the model could not run on the batch: {exc}"
    last = probe.last_activation() if probe else None
    run(
        "probabilities-as-logits",
        None if logits is not None else "needs logits= or the model and batch=",
        lambda: _out.probabilities_as_logits(logits, last_layer=last),
    )
    n_classes = len(labels) if labels is not None else None
    run(
        "softmax-axis",
        None if probabilities is not None else "needs probabilities=",
        lambda: _out.softmax_axis(probabilities, num_classes=n_classes),
    )
    run(
        "activation",
        None if (probabilities is not None or activation) else "needs probabilities= or activation=",
        lambda: _out.activation(probabilities=probabilities, logits=logits, used=activation, multi_label=multi_label),
    )
    n_out = _num_outputs(logits, probabilities, n_classes)
    run("labels", None if labels is not None else "needs labels=", lambda: _out.labels(labels, num_outputs=n_out))
    q_in, q_out = quantization or (None, None)
    no_batch = None if batch is not None else "needs batch= (the preprocessed inputs)"
    run("input-quantization", no_batch, lambda: _quant.input_quantization(batch, q_in))
    run(
        "quantized-outputs",
        None if logits is not None else "needs logits= or the model and batch=",
        lambda: _quant.quantized_outputs(logits, q_out),
    )
    run(
        "over-confidence",
        _calibration_missing(targets, logits, probabilities, multi_label),
        lambda: _over_confidence(logits, probabilities, targets, ece_threshold),
    )
    return run.result()


def _image_input_checks(run, probe, batch, spec, preprocess, forward, labels) -> None:
    # the model first: the training flag is read before anything runs it
    no_batch = None if batch is not None else "needs batch= (the preprocessed inputs)"
    run(
        "training-mode",
        None if probe else "needs the model",
        lambda: _model.training_mode(probe.module, _batched(batch)) if batch is not None else _flag_only(probe),
    )
    run(("batch-dimension", "layout"), no_batch, lambda: _in.batch_shape(batch, spec))
    no_spec = no_batch or (None if spec is not None else "needs spec= (the preprocessing the model expects)")
    run("input-size", no_spec, lambda: _in.input_size(batch, spec))
    run("normalization", no_spec, lambda: _in.normalization(batch, spec))
    no_known = None if (probe and preprocess) else "needs the model and preprocess= (your image -> input function)"
    if not no_known and not _model.known_photos():
        no_known = "needs scikit-image for its sample photos"
    run("known-answer", no_known, lambda: _model.known_answer(preprocess, forward, labels=labels))
    run("channel-order", no_known, lambda: _model.channel_order(preprocess, forward))


def _check_classifier(clf, inputs, *, labels, targets, checks, ece_threshold) -> Findings:
    """The same checks on a twoends Classifier: its own preprocessing and head are under test."""
    run = _Runner(checks)
    backend = clf.backend
    probe = probe_for(backend)
    photos = list(_decode_all(inputs)) if inputs is not None else list(_model.known_photos().values())
    batch = np.stack([clf.plan.apply(im) for im in photos]) if photos else None
    no_batch = None if batch is not None else "needs photos (or scikit-image for its sample photos)"

    def forward(b):
        return np.asarray(to_numpy(backend.forward(b)), dtype=np.float64)

    run(
        "training-mode",
        None if probe else "the backend exposes no module to probe",
        lambda: _model.training_mode(probe.module, batch) if batch is not None else _flag_only(probe),
    )
    run(("batch-dimension", "layout"), no_batch, lambda: _in.batch_shape(batch, clf.spec))
    run("input-size", no_batch, lambda: _in.input_size(batch, clf.spec))
    run("normalization", no_batch, lambda: _in.normalization(batch, clf.spec))
    no_known = None if _model.known_photos() else "needs scikit-image for its sample photos"
    head_labels = list(clf.settled.head.labels) if clf.settled.head.labels is not None else None
    run("known-answer", no_known, lambda: _model.known_answer(clf.plan, forward, labels=head_labels))
    run("channel-order", no_known, lambda: _model.channel_order(clf.plan, forward))
    logits = forward(batch) if batch is not None else None
    if clf.settled.outputs == "logits":
        last = probe.last_activation() if probe else None
        run(
            "probabilities-as-logits",
            None if logits is not None else no_batch,
            lambda: _out.probabilities_as_logits(logits, last_layer=last),
        )
    used = clf.settled.with_outputs(logits.shape[-1]).activation if logits is not None else None
    multi = None
    if targets is not None:
        multi = np.asarray(to_numpy(targets) if not isinstance(targets, (list, tuple)) else targets).ndim == 2
    elif clf.settled.head.activation in ("softmax", "sigmoid"):
        multi = clf.settled.head.activation == "sigmoid"
    run(
        "activation",
        None if logits is not None else no_batch,
        lambda: _out.activation(logits=logits, used=used, multi_label=multi),
    )
    names = labels if labels is not None else head_labels
    n_out = clf.settled.num_outputs or (logits.shape[-1] if logits is not None else None)
    run(
        "labels",
        None if names is not None else "the classifier has no labels",
        lambda: _out.labels(names, num_outputs=n_out),
    )
    _quant.run_on_classifier(run, backend, batch, no_batch)
    scaled = None if logits is None else logits / clf.settled.head.temperature
    run(
        "over-confidence",
        _calibration_missing(targets, scaled, None, multi),
        lambda: _over_confidence(scaled, None, targets, ece_threshold),
    )
    if clf.spec_source == "default" and (checks is None or "normalization" in checks):
        run.findings.append(
            Finding(
                "normalization",
                "info",
                "the model ships no preprocessing: twoends' default is in use",
                seen=f"spec source 'default' ({clf.spec.describe()})",
                why="the default is torchvision's ImageNet preprocessing; a model trained otherwise gets the wrong inputs",
                fix="pass the model's own spec: twoends.wrap(model, spec=ImageSpec(...)) or spec={'mean': ..., 'std': ...}",
                evidence={"spec": clf.spec.to_dict()},
            )
        )
    return run.result()


def _flag_only(probe) -> list[Finding]:
    if not probe.training_flag() and not probe.active_noisy_layers():
        return []
    layers = probe.active_noisy_layers()
    return [
        Finding(
            "training-mode",
            "error" if layers else "info",
            "the model is in training mode",
            seen=f"model.training is {probe.training_flag()}; {len(layers)} dropout/batch-norm layer(s) in training mode",
            why="dropout and batch-norm behave differently in training: answers become random and depend on the batch",
            fix="call model.eval() before inference (twoends.wrap does it)",
            evidence={"active_layers": layers[:20]},
        )
    ]


def _spec(spec: Any) -> Any:
    if spec is None or getattr(spec, "kind", None) in ("image", "audio"):
        return spec
    if isinstance(spec, dict):
        if "sample_rate" in spec:
            from ..preprocess.audio_spec import AudioSpec

            return AudioSpec.from_dict(spec)
        return ImageSpec.from_dict(spec)
    raise ConfigError(f"spec must be an ImageSpec, an AudioSpec or a dict of its fields, got {type(spec).__name__}")


def _decode_all(inputs: Any):
    from ..preprocess import decode_image, iter_items

    for item in iter_items(inputs):
        yield decode_image(item.payload)


def _batched(batch: Any):
    x = to_numpy(batch)
    return x[None] if x.ndim == 3 else batch


def _num_outputs(logits, probabilities, fallback):
    for a in (logits, probabilities):
        if a is not None:
            shape = to_numpy(a).shape
            return int(shape[-1]) if len(shape) else fallback
    return None


def _calibration_missing(targets, logits, probabilities, multi_label) -> str | None:
    if targets is None:
        return "needs targets= (true classes of a labelled sample)"
    if multi_label:
        return "ECE is defined here for single-label targets"
    if logits is None and probabilities is None:
        return "needs logits= or probabilities= (or the model and batch=)"
    return None


def _over_confidence(logits, probabilities, targets, threshold):
    if probabilities is not None:
        p = np.asarray(to_numpy(probabilities), dtype=np.float64)
        if p.ndim == 2 and np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
            return _out.over_confidence(p, targets, from_logits=False, threshold=threshold)
    if logits is None:
        return []
    return _out.over_confidence(logits, targets, from_logits=True, threshold=threshold)

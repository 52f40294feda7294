"""``load`` and ``wrap``: the two ways in, and the composition root.

This is the one place where a model's settings are resolved (``settle``), where
calibration files are read, and where run options become one ``RunOptions``
value for the backend. Everything after it only reads the settled record.
"""

from __future__ import annotations

from typing import Any

from .backends import backend_for
from .classifier import Classifier
from .options import RUNTIME_ENV, RunOptions
from .preprocess.audio import DEFAULT_MAX_SECONDS
from .preprocess.image import DEFAULT_MAX_PIXELS
from .settle import settle

__all__ = ["load", "wrap"]


def load(
    name: str,
    *,
    spec: Any = None,
    labels: Any = None,
    activation: str | None = None,
    outputs: str | None = None,
    temperature: float | None = None,
    thresholds: Any = None,
    top_k: int | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
    calibration: Any = None,
    groups: Any = None,
    ood_method: str | None = None,
    device: str | None = None,
    precision: str | None = None,
    compile: bool | None = None,
    channels_last: bool | str | None = None,
    runtime: str | None = None,
    run: RunOptions | None = None,
    **model_options: Any,
) -> Classifier:
    """A Classifier for a model known by name (``twoends models`` lists them).

    ``"efficientnet_lite0"`` (the embedded default; lite1, lite2), and prefixed
    names such as ``"torchvision:resnet50"``, ``"timm:..."``, ``"hf:ORG/NAME"``,
    ``"onnx:path.onnx"`` where those backends are installed; ``"silero_vad"``
    (speech / no speech in audio clips).
    ``max_pixels`` / ``max_seconds`` bound what one image / audio clip may cost
    (checked from the file's header before decoding; None: no limit).

    Run options (``device``, ``precision``, ``compile``, ``channels_last``,
    ``runtime``, or all of them as ``run=RunOptions(...)``) say how the model runs;
    ``runtime="auto"`` (the default) runs a PyTorch model's graph with ONNX Runtime or
    OpenVINO when that is faster and gives PyTorch's numbers (``twoends.runtimes``);
    ``model_options`` go to the model's builder (e.g. ``weights=`` for
    torchvision), which refuses any it does not take, with a did-you-mean.
    ``calibration``: a calibration file from ``twoends calibrate`` (or a
    Calibration): its temperature, conformal sets, thresholds and out-of-distribution
    threshold are applied, after checking that it was fitted for this model's classes.
    ``groups``: label groups, ``{"cat": [281, ..., 285], "dog": ["beagle", ...]}`` or a
    JSON file of them: every Prediction then carries each group's probability.
    ``ood_method``: the out-of-distribution score, "energy" (default), "max_logit"
    or "max_probability".
    """
    from . import runtimes
    from .models import fingerprint, load_backend

    run = RunOptions.of(
        run, device=device, precision=precision, compile=compile, channels_last=channels_last, runtime=runtime
    )
    # a cached export runs without building (or importing) the PyTorch model
    backend = runtimes.cached_backend(name, run, spec=spec, options=model_options)
    built = backend is None
    if built:
        backend = load_backend(name, run=run, labels=labels, **model_options)
    settled = settle(
        backend,
        spec=spec,
        labels=labels,
        activation=activation,
        outputs=outputs,
        temperature=temperature,
        thresholds=thresholds,
        top_k=top_k,
        batch_size=batch_size,
        workers=workers,
        max_pixels=max_pixels,
        max_seconds=max_seconds,
        calibration=_load_calibration(calibration),
        run=run,
        groups=groups,
        ood_method=ood_method,
    )
    if built:
        backend = runtimes.convert(
            backend,
            settled.plan,
            run,
            spec_key=_spec_key(settled),
            fingerprint=fingerprint(name, model_options) if spec is None else None,
        )
    return Classifier(backend, settled)


def wrap(
    model: Any,
    *,
    spec: Any = None,
    labels: Any = None,
    activation: str | None = None,
    outputs: str | None = None,
    temperature: float | None = None,
    thresholds: Any = None,
    top_k: int | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
    calibration: Any = None,
    groups: Any = None,
    ood_method: str | None = None,
    name: str | None = None,
    device: str | None = None,
    precision: str | None = None,
    compile: bool | None = None,
    channels_last: bool | str | None = None,
    runtime: str | None = None,
    run: RunOptions | None = None,
    **backend_options: Any,
) -> Classifier:
    """A Classifier around a model you already have in memory (e.g. a ``torch.nn.Module``).

    The model is put in evaluation mode and run without gradients. ``spec`` is
    its preprocessing (an ImageSpec, or a dict of overrides); ``labels`` its
    class names; ``outputs="probabilities"`` says the model already ends in a
    softmax/sigmoid. ``backend_options`` are the framework adapter's own (e.g.
    ``weights=`` for torchvision), rejected if unknown.

    Your module runs as it is (``runtime="torch"``) unless you ask for ``runtime="auto"``
    (or set TWOENDS_RUNTIME): exporting an in-memory module costs seconds per wrap, and
    the module is yours - hooks or later changes to it would not reach an exported graph.
    """
    import os

    from . import runtimes

    if runtime is None and run is None and not os.environ.get(RUNTIME_ENV):
        runtime = "torch"
    run = RunOptions.of(
        run, device=device, precision=precision, compile=compile, channels_last=channels_last, runtime=runtime
    )
    backend = backend_for(model, run=run, name=name, **backend_options)
    settled = settle(
        backend,
        spec=spec,
        labels=labels,
        activation=activation,
        outputs=outputs,
        temperature=temperature,
        thresholds=thresholds,
        top_k=top_k,
        batch_size=batch_size,
        workers=workers,
        max_pixels=max_pixels,
        max_seconds=max_seconds,
        calibration=_load_calibration(calibration),
        run=run,
        name=name,
        groups=groups,
        ood_method=ood_method,
    )
    return Classifier(runtimes.convert(backend, settled.plan, run, spec_key=_spec_key(settled), name=name), settled)


def _spec_key(settled: Any) -> Any:
    """What of the input end an exported graph depends on: an explicit spec (its input size) or nothing."""
    return settled.spec.to_dict() if settled.sources.get("spec") == "explicit" else None


def _load_calibration(calibration: Any) -> Any:
    """A calibration file (or a Calibration) -> a Calibration; calibrate/ is imported only when one is given."""
    if calibration is None:
        return None
    from .calibrate.calibration import load_calibration

    return load_calibration(calibration)
